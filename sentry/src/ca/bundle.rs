//! A validated X.509 bundle (spec §5.3) and the key that signs with it.

use std::time::SystemTime;

use dapr_security::{Certificate, PemError, PrivateKey, pem};
use rcgen::{Issuer, KeyPair};

use super::verify::verify_to_anchors;

/// Why a bundle is not usable; texts as upstream's `verifyX509Bundle`.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("failed to decode trust anchors: {0}")]
    DecodeAnchors(#[source] PemError),
    #[error("certificate in trust anchor is not self-signed: x509: signature verification failed")]
    AnchorNotSelfSigned,
    #[error(transparent)]
    Chain(PemError),
    #[error("intermediate certificate is not valid for signing")]
    NotForSigning,
    #[error("issuer chain is empty after re-encoding")]
    EmptyChain,
    #[error(transparent)]
    Key(PemError),
    #[error("issuer key is not usable for signing: {0}")]
    UnusableKey(#[source] rcgen::Error),
    #[error("issuer key does not match issuer certificate")]
    KeyMismatch,
    #[error("issuer chain does not belong to trust anchors: {0}")]
    NotTrusted(String),
}

/// Trust anchors, issuer chain and issuer key, checked against each other.
pub struct CaBundle {
    trust_anchors: Vec<Certificate>,
    trust_anchors_pem: String,
    /// The issuer first; self-signed certificates removed.
    issuer_chain: Vec<Certificate>,
    issuer_chain_pem: String,
    issuer_key: PrivateKey,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaBundle")
            .field("trust_anchors", &self.trust_anchors.len())
            .field("issuer_chain", &self.issuer_chain.len())
            .finish_non_exhaustive()
    }
}

impl CaBundle {
    /// Validates user- or store-supplied PEM (spec §5.3, in upstream's order) at `now`.
    pub fn from_pem(
        anchors_pem: &[u8],
        chain_pem: &[u8],
        key_pem: &[u8],
        now: SystemTime,
    ) -> Result<Self, BundleError> {
        let trust_anchors =
            pem::decode_certificates(anchors_pem).map_err(BundleError::DecodeAnchors)?;
        if !trust_anchors.iter().all(Certificate::is_self_signed) {
            return Err(BundleError::AnchorNotSelfSigned);
        }
        let trust_anchors_pem = pem::encode_certificates(&trust_anchors);

        let mut chain = pem::decode_certificate_chain(chain_pem).map_err(BundleError::Chain)?;
        if chain.len() > 1 && chain.last().is_some_and(Certificate::is_self_signed) {
            chain.pop();
        }
        {
            let first = chain[0].parsed();
            let has_bc = first.basic_constraints().ok().flatten().is_some();
            let cert_sign = first
                .key_usage()
                .ok()
                .flatten()
                .is_some_and(|ku| ku.value.key_cert_sign());
            if !first.is_ca() && !has_bc && !cert_sign {
                return Err(BundleError::NotForSigning);
            }
        }
        let issuer_chain: Vec<Certificate> = chain
            .iter()
            .filter(|c| !c.is_self_signed())
            .cloned()
            .collect();
        if issuer_chain.is_empty() {
            return Err(BundleError::EmptyChain);
        }
        let issuer_chain_pem = pem::encode_certificates(&issuer_chain);

        let issuer_key = PrivateKey::from_pem(key_pem).map_err(BundleError::Key)?;
        let key_pair =
            KeyPair::try_from(issuer_key.pkcs8_der()).map_err(BundleError::UnusableKey)?;
        if key_pair.public_key_raw()
            != chain[0]
                .parsed()
                .public_key()
                .subject_public_key
                .data
                .as_ref()
        {
            return Err(BundleError::KeyMismatch);
        }
        verify_to_anchors(&chain, &trust_anchors, now).map_err(BundleError::NotTrusted)?;

        let issuer = Issuer::from_ca_cert_der(&chain[0].der().to_vec().into(), key_pair)
            .map_err(BundleError::UnusableKey)?;
        Ok(Self {
            trust_anchors,
            trust_anchors_pem,
            issuer_chain,
            issuer_chain_pem,
            issuer_key,
            issuer,
        })
    }

    /// The trust anchors, re-encoded and concatenated.
    pub fn trust_anchors_pem(&self) -> &str {
        &self.trust_anchors_pem
    }

    /// The trust anchors.
    pub fn trust_anchors(&self) -> &[Certificate] {
        &self.trust_anchors
    }

    /// The issuer chain (issuer first, no self-signed certificate).
    pub fn issuer_chain(&self) -> &[Certificate] {
        &self.issuer_chain
    }

    /// The issuer chain as PEM.
    pub fn issuer_chain_pem(&self) -> &str {
        &self.issuer_chain_pem
    }

    /// The issuer key as PKCS#8 PEM.
    pub fn issuer_key_pem(&self) -> String {
        self.issuer_key.to_pem()
    }

    /// The signer for leaf certificates.
    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The issuer certificate's NotAfter, unix seconds.
    pub fn issuer_not_after(&self) -> i64 {
        self.issuer_chain[0]
            .parsed()
            .validity()
            .not_after
            .timestamp()
    }
}
