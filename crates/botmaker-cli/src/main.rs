//! The botmaker admin CLI (work in progress).
fn main() {}
