//! A fresh key and CSR for every request (kit `fetchIdentity`): empty subject, no extensions,
//! signed by the new key.

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::rand_core::{CryptoRng, RngCore};
use rustls::pki_types::PrivatePkcs8KeyDer;

use crate::pem::PrivateKey;

/// kit `rsaKeyBits`.
const RSA_BITS: usize = 2048;

/// The kind of key an identity is requested for: Ed25519 for sentry, placement and scheduler;
/// RSA for the operator and the injector (their serving certificates are checked to be RSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    #[default]
    Ed25519,
    Rsa2048,
}

/// Why a key or CSR could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("failed to generate private key: {0}")]
    Key(String),
    #[error("failed to create csr: {0}")]
    Csr(String),
}

/// A new private key and a PEM `CERTIFICATE REQUEST` for it.
pub fn new_key_and_csr(kind: KeyKind) -> Result<(PrivateKey, Vec<u8>), CsrError> {
    let pair = match kind {
        KeyKind::Ed25519 => {
            KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| CsrError::Key(e.to_string()))?
        }
        KeyKind::Rsa2048 => {
            let der = generate_rsa2048_pkcs8().map_err(CsrError::Key)?;
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.as_slice()),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(|e| CsrError::Key(e.to_string()))?
        }
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(&pair)
        .and_then(|r| r.pem())
        .map_err(|e| CsrError::Csr(e.to_string()))?;
    let key =
        PrivateKey::from_pkcs8(pair.serialize_der()).map_err(|e| CsrError::Key(e.to_string()))?;
    Ok((key, csr.into_bytes()))
}

/// A new RSA-2048 private key as PKCS#8 DER (RustCrypto `rsa`: `ring` signs with RSA keys but
/// cannot make them). Used for operator/injector SVID keys and sentry's generated JWT key.
pub fn generate_rsa2048_pkcs8() -> Result<Vec<u8>, String> {
    let key = rsa::RsaPrivateKey::new(&mut OsRandom, RSA_BITS).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(der.as_bytes().to_vec())
}

/// The OS RNG through `ring` for the `rsa` crate, so no second RNG crate is needed.
struct OsRandom;

impl RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.try_fill_bytes(dest).is_err() {
            // Key generation cannot go on without randomness; this is not input-dependent.
            panic!("the operating system's random number generator failed");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new().fill(dest).map_err(|_| {
            rsa::rand_core::Error::new("the operating system's random number generator failed")
        })
    }
}

impl CryptoRng for OsRandom {}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer as _;

    use super::*;
    use crate::pem::KeyAlgorithm;

    fn parse_csr(pem: &[u8]) -> Vec<u8> {
        let block = ::pem::parse(pem).unwrap();
        assert_eq!(block.tag(), "CERTIFICATE REQUEST");
        block.into_contents()
    }

    #[test]
    fn ed25519_csrs_have_an_empty_subject_and_no_extensions() {
        let (key, csr) = new_key_and_csr(KeyKind::Ed25519).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        let der = parse_csr(&csr);
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        assert_eq!(req.certification_request_info.subject.iter().count(), 0);
        assert!(req.requested_extensions().is_none());
        req.verify_signature().unwrap();
    }

    #[test]
    fn rsa_keys_are_2048_bits_and_sign_their_csr() {
        let (key, csr) = new_key_and_csr(KeyKind::Rsa2048).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        let der = parse_csr(&csr);
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        req.verify_signature().unwrap();
        let spki = req.certification_request_info.subject_pki.parsed().unwrap();
        assert_eq!(spki.key_size(), 2048);
    }

    #[test]
    fn every_request_gets_a_fresh_key() {
        let (a, _) = new_key_and_csr(KeyKind::Ed25519).unwrap();
        let (b, _) = new_key_and_csr(KeyKind::Ed25519).unwrap();
        assert_ne!(a.pkcs8_der(), b.pkcs8_der());
    }
}
