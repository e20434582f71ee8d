//! Micro-benchmark of `advance` (filled in below).
fn main() {}
