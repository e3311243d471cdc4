//! Dapr's security crate, shared by every control-plane binary:
//!
//! - SPIFFE trust domains and IDs (go-spiffe's rules and error texts) and PEM decoding of
//!   certificates and private keys (dapr/kit `crypto/pem`'s rules);
//! - trust anchors from inline PEM or a watched file ([`anchors`]);
//! - SPIFFE X.509-SVID verification ([`verify`]) and rustls server/client configs that use the
//!   current SVID and anchors per handshake ([`tls`]);
//! - the sentry client that fetches and rotates our own SVID ([`Provider`], [`Security`]);
//! - a TLS accept loop, tonic serving with the peer's SPIFFE ID, and tonic channels over rustls
//!   ([`net`]).
//!
//! Known differences from the Go implementation (all deliberate, none visible on the wire):
//! - the trust-anchors file is polled for content changes every 500 ms instead of watched with
//!   fsnotify;
//! - the renewal deadline is converted from wall-clock to a `tokio::time` deadline once per
//!   issued SVID (so paused-clock tests work); a wall-clock jump is not followed until renewal;
//! - path building is webpki's: like Go it checks validity, CA flags and signatures with no EKU
//!   or name restriction, but it does not check the anchor certificate's own validity period.

pub mod anchors;
pub mod csr;
mod der;
pub mod identity_dir;
pub mod net;
pub mod pem;
pub mod provider;
pub mod request;
pub mod sentry_client;
pub mod spiffe;
pub mod svid;
pub mod tls;
pub mod uid;
pub mod verify;

pub use anchors::{AnchorsError, AnchorsSource, TrustAnchors};
pub use csr::KeyKind;
pub use pem::{Certificate, KeyAlgorithm, PemError, PrivateKey};
pub use provider::{Provider, ProviderError, ProviderOptions, Security};
pub use spiffe::{SpiffeError, SpiffeId, TrustDomain, workload_of_path};
pub use svid::Svid;
pub use verify::{VerifyError, peer_spiffe_id, verify_svid};

#[cfg(test)]
mod testutil;
