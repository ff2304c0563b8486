//! Test helper: KairosDB's own conformance fixtures from the shared folder.

use std::path::PathBuf;

/// `shared/kairosdb-conformance/unit-resources/`, found relative to this crate.
pub(crate) fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/kairosdb-conformance/unit-resources");
    assert!(
        d.is_dir(),
        "conformance fixtures missing: {} (the shared folder must sit beside the repo)",
        d.display()
    );
    d
}

pub(crate) fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

/// Names of the fixtures whose file name matches `pred`.
pub(crate) fn names(pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .expect("read fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && pred(n))
        .collect();
    v.sort();
    v
}
