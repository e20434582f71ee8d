//! `weft`: the command-line tool.

fn main() {}
