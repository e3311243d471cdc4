//! A rustls client that trusts a sentry by its SPIFFE ID, not a DNS name.
//!
//! Sentry's SVID (`spiffe://<td>/ns/<ns>/dapr-sentry`) carries a URI SAN and no DNS name, so
//! webpki's hostname check cannot apply; daprd checks the chain and the ID the same way.

use std::sync::Arc;

use dapr_security::Certificate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;

/// Longest chain walked from leaf to an anchor: leaf, issuer, optional intermediate.
const MAX_CHAIN: usize = 4;

/// Trusts exactly `anchors` and requires the leaf's URI SANs to be exactly `[expected_id]`.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    anchors: Vec<Certificate>,
    expected_id: String,
    provider: Arc<CryptoProvider>,
}

impl SpiffeServerVerifier {
    pub fn new(
        anchors: Vec<Certificate>,
        expected_id: String,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            anchors,
            expected_id,
            provider,
        }
    }
}

/// A client config (ALPN h2) that verifies the server with [`SpiffeServerVerifier`].
pub fn client_config(
    anchors: Vec<Certificate>,
    expected_id: String,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = SpiffeServerVerifier::new(anchors, expected_id, Arc::clone(&provider));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Whether `leaf` chains to one of `anchors` through `intermediates` (signatures only).
pub fn chains_to(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
) -> bool {
    let mut current = leaf;
    for _ in 0..MAX_CHAIN {
        if anchors.iter().any(|a| current.is_signed_by(a)) {
            return true;
        }
        match intermediates
            .iter()
            .find(|i| i.der() != current.der() && current.is_signed_by(i))
        {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// The URI SANs of a certificate.
pub fn uri_sans(cert: &Certificate) -> Vec<String> {
    let parsed = cert.parsed();
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let bad = |m: String| rustls::Error::General(m);
        let leaf = Certificate::from_der(end_entity.to_vec()).map_err(|e| bad(e.to_string()))?;
        let intermediates = intermediates
            .iter()
            .map(|c| Certificate::from_der(c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if !chains_to(&leaf, &intermediates, &self.anchors) {
            return Err(bad("server chain does not lead to the trust anchors".into()));
        }
        let uris = uri_sans(&leaf);
        if uris != [self.expected_id.as_str()] {
            return Err(bad(format!(
                "server SPIFFE ID {uris:?}, expected {}",
                self.expected_id
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
