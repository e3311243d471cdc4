//! Dapr's security primitives shared by every control-plane binary: SPIFFE trust domains and
//! IDs (go-spiffe's rules and error texts) and PEM decoding of certificates and private keys
//! (dapr/kit `crypto/pem`'s rules).
//!
//! Later stages add the SVID client, rustls configs with SPIFFE peer verification and rotation;
//! the types here are what those build on.

mod der;
pub mod pem;
pub mod spiffe;
pub mod uid;

pub use pem::{Certificate, KeyAlgorithm, PemError, PrivateKey};
pub use spiffe::{SpiffeError, SpiffeId, TrustDomain};
