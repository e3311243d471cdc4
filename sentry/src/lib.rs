//! Sentry: Dapr's mTLS certificate authority.
//!
//! Implemented: the CA (file store in standalone mode, Secret + ConfigMap store in kubernetes
//! mode; generation and validation), the insecure, jwks and kubernetes validators,
//! `SignCertificate` over TLS with sentry's own SPIFFE identity, the metrics, JWT-SVIDs and
//! the OIDC server. Not yet: reloading on credential changes and the cluster-domain lookup.

mod app;
pub mod ca;
pub mod config;
mod http_client;
pub mod identity;
pub mod jwt;
pub mod kube;
pub mod metrics;
pub mod oidc;
mod options;
pub mod server;
pub mod sign;
pub mod validator;

pub use options::{Mode, Options, OptionsError};
