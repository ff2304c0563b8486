//! The `kairosdb` binary. TODO(helper): implement.

fn main() {}
