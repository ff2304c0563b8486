//! Ingest JSON parsing (spec §2). TODO(helper): implement.

use kairosdb_model::WriteBatch;

/// Result of parsing one ingest body.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Points of every metric object that passed validation (spec §2.6: stored even
    /// when other objects fail).
    pub batch: WriteBatch,
    /// KairosDB error texts in encounter order (Appendix A). Non-empty → HTTP 400.
    pub errors: Vec<String>,
}

/// Parses an (already decompressed) ingest body.
pub fn parse_ingest(body: &[u8]) -> IngestOutcome {
    let _ = body;
    IngestOutcome::default()
}
