//! The store benchmark (being written).

/// Runs the benchmark.
pub fn main() {}
