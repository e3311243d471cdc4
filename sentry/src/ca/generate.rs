//! A fresh self-signed root and issuer (spec §5.2).

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};

use super::{BundleError, CaBundle};

/// Self-generated roots and issuers live 365 days.
const CA_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// PEM of a generated bundle, as written to the store.
pub struct GeneratedPem {
    pub trust_anchors: String,
    pub issuer_chain: String,
    pub issuer_key: String,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("failed to generate CA: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Generates an Ed25519 root (`O=<td>`) and issuer (`O=<sentry id>`), valid from `now - skew`
/// for 365 days.
pub fn generate(
    trust_domain: &str,
    sentry_id: &str,
    skew: Duration,
    now: SystemTime,
) -> Result<(CaBundle, GeneratedPem), GenerateError> {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut root = ca_params(trust_domain, skew, now)?;
    root.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let root_cert = root.self_signed(&root_key)?;

    let issuer_key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut issuer = ca_params(sentry_id, skew, now)?;
    issuer.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    issuer.use_authority_key_identifier_extension = true;
    let root_issuer = Issuer::new(root, root_key);
    let issuer_cert = issuer.signed_by(&issuer_key, &root_issuer)?;

    let pem = GeneratedPem {
        trust_anchors: root_cert.pem(),
        issuer_chain: issuer_cert.pem(),
        issuer_key: issuer_key.serialize_pem(),
    };
    let bundle = CaBundle::from_pem(
        pem.trust_anchors.as_bytes(),
        pem.issuer_chain.as_bytes(),
        pem.issuer_key.as_bytes(),
        now,
    )?;
    Ok((bundle, pem))
}

fn ca_params(
    organization: &str,
    skew: Duration,
    now: SystemTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, organization);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serial_number = Some(random_serial());
    params.not_before = (now - skew).into();
    params.not_after = (now + CA_TTL).into();
    Ok(params)
}

/// A random serial in [0, 2^128).
pub(crate) fn random_serial() -> SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // SystemRandom only fails when the OS RNG is unavailable; a zero serial is still valid DER.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    SerialNumber::from_slice(&bytes)
}
