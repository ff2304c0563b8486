//! Telnet line parsing (spec §3). TODO(helper): implement.
//!
//! Fixed surface (the server codes against it): [`parse_line`] and [`Line`].

use kairosdb_model::BatchBuilder;

/// What one line was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `put`/`putm`/`puts`: this many points were pushed into the builder.
    Points(usize),
    /// `version`: the server answers with its version line.
    Version,
    /// Blank line: ignored.
    Empty,
}

/// Parses one line (without its `\n`; a trailing `\r` is allowed) and pushes its
/// points into `builder`. `Err` holds a short reason for the log; the line is counted
/// as bad and the connection goes on.
pub fn parse_line(line: &[u8], builder: &mut BatchBuilder) -> Result<Line, String> {
    let _ = (line, builder);
    Err("not implemented".to_string())
}
