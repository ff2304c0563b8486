//! `kairosdb-bench`: load tool for the whole server. TODO: implement.

fn main() {}
