//! Operator: Dapr's Kubernetes operator.
//!
//! Scaffold stage: every upstream flag is parsed and checked, and the gRPC API, conversion
//! webhook, healthz and metrics listeners are bound. None of the operator's jobs is implemented
//! yet: every Operator RPC answers `Unimplemented`, the webhook answers `501 Not Implemented`,
//! and there is no kube client, Service reconciler, watchdog, leader election or sentry identity.

mod app;
mod env;
mod options;
mod webhook;

pub use env::{NamespaceError, OperatorEnv};
pub use options::{Options, OptionsError, Watchdog};
