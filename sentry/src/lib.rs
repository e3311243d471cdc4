//! Sentry: Dapr's mTLS certificate authority.
//!
//! Implemented: the standalone CA (file store, generation, bundle validation), the insecure
//! validator, `SignCertificate` over TLS with sentry's own SPIFFE identity, and the metrics.
//! Not yet: JWT-SVIDs, OIDC, the jwks and kubernetes validators, the Kubernetes store and
//! reloading on credential changes.

mod app;
pub mod ca;
pub mod config;
pub mod identity;
pub mod metrics;
mod options;
pub mod server;
pub mod sign;
pub mod validator;

pub use options::{Mode, Options, OptionsError};
