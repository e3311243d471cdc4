//! Suites against real peers.
