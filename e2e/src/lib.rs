//! Suites against real peers, and the load generators `make bench-*` runs against them.

pub mod bench;
