//! Sentry's own serving identity (spec §11): an SVID for `dapr-sentry` signed in-process with a
//! fresh Ed25519 key, served through a resolver so it can be renewed at half its lifetime.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use dapr_security::{SpiffeError, TrustDomain, pem};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::server::CaState;
use crate::sign::{SignFailure, sign_identity};

/// Sentry's app id.
pub const SENTRY_ID: &str = "dapr-sentry";

/// Why sentry could not get its own certificate.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid trust domain: {0}")]
    TrustDomain(#[from] SpiffeError),
    #[error("failed to generate key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("failed to sign sentry's certificate: {0}")]
    Sign(#[from] SignFailure),
    #[error("failed to decode sentry's certificate: {0}")]
    Decode(#[from] dapr_security::PemError),
    #[error("unusable key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The current serving certificate, swapped on renewal.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

impl ServingCert {
    /// Issues the first certificate; returns it and when it should be renewed.
    pub fn issue(
        state: &CaState,
        trust_domain: &str,
        provider: &CryptoProvider,
    ) -> Result<(Arc<Self>, SystemTime), IdentityError> {
        let (key, renew_at) = issue(state, trust_domain, provider)?;
        Ok((
            Arc::new(Self {
                current: RwLock::new(Arc::new(key)),
            }),
            renew_at,
        ))
    }

    /// Replaces the certificate with a fresh one; returns the next renewal time.
    pub fn renew(
        &self,
        state: &CaState,
        trust_domain: &str,
        provider: &CryptoProvider,
    ) -> Result<SystemTime, IdentityError> {
        let (key, renew_at) = issue(state, trust_domain, provider)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(key);
        }
        Ok(renew_at)
    }
}

fn issue(
    state: &CaState,
    trust_domain: &str,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, SystemTime), IdentityError> {
    let td = TrustDomain::parse(trust_domain)?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let now = SystemTime::now();
    let signed = sign_identity(
        &key,
        &td,
        &state.namespace,
        SENTRY_ID,
        Vec::new(),
        &state.context(),
        now,
    )?;
    let chain: Vec<CertificateDer<'static>> =
        pem::decode_certificates(&signed.response.workload_certificate)?
            .into_iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let certified = CertifiedKey::from_der(chain, key_der, provider)?;
    // Renew at half of the remaining lifetime, as every SVID holder does.
    let lifetime = state.config.workload_cert_ttl;
    Ok((certified, now + lifetime / 2))
}

/// The TLS server config: TLS ≥ 1.2, ALPN h2, no client certificate.
pub fn server_config(
    cert: Arc<ServingCert>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// How long to sleep until `at` (at least a second, so a tiny TTL cannot spin).
pub fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now())
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}
