//! Table dissemination: the pure per-namespace state machine and the tasks that drive it.

pub mod core;
pub mod shell;
