//! Sentry: Dapr's mTLS certificate authority.
//!
//! Implemented: the CA (file store in standalone mode, Secret + ConfigMap store in kubernetes
//! mode; generation and validation), the insecure, jwks and kubernetes validators,
//! `SignCertificate` over TLS with sentry's own SPIFFE identity, the metrics, JWT-SVIDs and
//! the OIDC server, reloading the CA material on credential changes without a restart, and the
//! cluster-domain lookup in kubernetes mode.

mod app;
pub mod ca;
pub mod cluster_domain;
pub mod config;
pub mod identity;
pub mod jwt;
pub mod kube;
pub mod material;
pub mod metrics;
pub mod oidc;
mod options;
pub mod reload;
pub mod server;
pub mod sign;
pub mod validator;

pub use options::{Mode, Options, OptionsError};
