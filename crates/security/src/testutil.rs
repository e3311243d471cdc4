//! Certificate minting for the unit tests (rcgen): CAs, intermediates and SVID leaves with any
//! of the key algorithms Dapr peers use.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::anchors::TrustAnchors;
use crate::pem::{Certificate, PrivateKey};

/// Key algorithms for minted certificates.
#[derive(Debug, Clone, Copy)]
pub enum Alg {
    Ed25519,
    P256,
    P384,
    Rsa,
}

pub fn key(alg: Alg) -> KeyPair {
    let sig: &'static SignatureAlgorithm = match alg {
        Alg::Ed25519 => &rcgen::PKCS_ED25519,
        Alg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Alg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        Alg::Rsa => &rcgen::PKCS_RSA_SHA256,
    };
    match alg {
        Alg::Rsa => {
            let (key, _) = crate::csr::new_key_and_csr(crate::csr::KeyKind::Rsa2048).unwrap();
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()),
                sig,
            )
            .unwrap()
        }
        _ => KeyPair::generate_for(sig).unwrap(),
    }
}

/// A CA that can sign intermediates and leaves.
pub struct Ca {
    pub cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl Ca {
    pub fn root(alg: Alg) -> Self {
        let key = key(alg);
        let params = ca_params("cluster.local");
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn intermediate(&self, alg: Alg) -> Self {
        let key = key(alg);
        let params = ca_params("issuer");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::from_pem(self.cert.pem().as_bytes()).unwrap()
    }

    /// A leaf with the given URI SANs, valid for `validity` around now.
    pub fn leaf_with(
        &self,
        alg: Alg,
        uris: &[&str],
        customise: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let key = key(alg);
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI((*u).try_into().unwrap()))
            .collect();
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = SystemTime::now();
        p.not_before = (now - Duration::from_secs(60)).into();
        p.not_after = (now + Duration::from_secs(3600)).into();
        customise(&mut p);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert, key }
    }

    pub fn leaf(&self, alg: Alg, id: &str) -> Leaf {
        self.leaf_with(alg, &[id], |_| {})
    }
}

pub struct Leaf {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Leaf {
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn certificate(&self) -> Certificate {
        Certificate::from_der(self.cert.der().to_vec()).unwrap()
    }

    pub fn private_key(&self) -> PrivateKey {
        PrivateKey::from_pkcs8(self.key.serialize_der()).unwrap()
    }
}
