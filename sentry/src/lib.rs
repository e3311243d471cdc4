//! Sentry: Dapr's mTLS certificate authority.
//!
//! Implemented: the standalone CA (file store, generation, bundle validation), the insecure
//! validator, `SignCertificate` over TLS with sentry's own SPIFFE identity, the metrics,
//! JWT-SVIDs (signing key + JWKS loading, checks and generation) and the OIDC server.
//! Not yet: the jwks and kubernetes validators, the Kubernetes store and reloading on
//! credential changes.

mod app;
pub mod ca;
pub mod config;
pub mod identity;
pub mod jwt;
pub mod metrics;
pub mod oidc;
mod options;
pub mod server;
pub mod sign;
pub mod validator;

pub use options::{Mode, Options, OptionsError};
