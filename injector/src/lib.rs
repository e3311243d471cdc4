//! Injector: Dapr's sidecar injector (a mutating admission webhook).
//!
//! Scaffold stage: every upstream flag is parsed, the environment is read into a typed
//! [`InjectorConfig`] with upstream's fatal checks, and the webhook, healthz and metrics listeners
//! are bound. Injection is not implemented yet: `/mutate` answers `501 Not Implemented`, over
//! plain HTTP, and there is no kube client, sentry identity or caBundle patching.

mod app;
pub mod config;
mod options;
mod webhook;

pub use config::{ConfigError, InjectorConfig, StartupError};
pub use options::Options;
