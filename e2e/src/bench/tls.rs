//! A rustls client that trusts a sentry by its SPIFFE ID, not a DNS name, and the check of the
//! workload chains it returns — both dapr-security's, i.e. the go-spiffe rules daprd applies.

use std::sync::Arc;

use dapr_security::verify::{VerifyError, verify_svid_id};
use dapr_security::{Certificate, SpiffeId, TrustAnchors, tls};
use rustls::pki_types::{CertificateDer, UnixTime};

/// A client config (ALPN h2, no client certificate) that requires the server's SVID to chain to
/// `anchors` and to name exactly `expected_id`.
pub fn client_config(anchors: TrustAnchors, expected_id: SpiffeId) -> Arc<rustls::ClientConfig> {
    tls::client_config_no_client_auth(tls::fixed_anchors(anchors), expected_id)
}

/// Checks an issued chain (leaf first) as an SVID for `expected_id` against `anchors`.
pub fn check_workload_chain(
    chain: &[Certificate],
    anchors: &TrustAnchors,
    expected_id: &SpiffeId,
) -> Result<SpiffeId, VerifyError> {
    let ders: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der()))
        .collect();
    verify_svid_id(&ders, anchors, UnixTime::now(), expected_id)
}
