use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, name);
    (params.self_signed(&key).unwrap(), key)
}

#[test]
fn certificates_stop_at_the_first_other_block() {
    let (a, _) = ca("a");
    let (b, _) = ca("b");
    let input = format!(
        "comment\n{}{}{}",
        a.pem(),
        encode_block("PRIVATE KEY", b"x"),
        b.pem()
    );
    let certs = decode_certificates(input.as_bytes()).unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].der(), a.der().as_ref());
    assert!(certs[0].is_self_signed());
}

#[test]
fn no_certificates_is_an_error() {
    assert_eq!(
        decode_certificates(b"nothing").unwrap_err().to_string(),
        "no certificates found"
    );
    let key = encode_block("PRIVATE KEY", b"x");
    assert!(matches!(
        decode_certificates(key.as_bytes()),
        Err(PemError::NoCertificates)
    ));
}

#[test]
fn a_chain_must_be_signed_in_order() {
    let (a, _) = ca("a");
    let (b, _) = ca("b");
    let input = format!("{}{}", a.pem(), b.pem());
    assert_eq!(
        decode_certificate_chain(input.as_bytes())
            .unwrap_err()
            .to_string(),
        "certificate chain is not valid"
    );
    assert_eq!(
        decode_certificate_chain(a.pem().as_bytes()).unwrap().len(),
        1
    );
}

#[test]
fn pem_encoding_ends_with_a_newline() {
    let (a, _) = ca("a");
    let cert = Certificate::from_der(a.der().to_vec()).unwrap();
    let pem = cert.to_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
}

#[test]
fn pkcs8_keys_of_each_type_are_recognised() {
    for (alg, want) in [
        (&rcgen::PKCS_ED25519, KeyAlgorithm::Ed25519),
        (&rcgen::PKCS_ECDSA_P256_SHA256, KeyAlgorithm::EcdsaP256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, KeyAlgorithm::EcdsaP384),
    ] {
        let key = KeyPair::generate_for(alg).unwrap();
        let parsed = PrivateKey::from_pem(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(parsed.algorithm(), want);
        assert_eq!(parsed.pkcs8_der(), key.serialized_der());
    }
}

#[test]
fn sec1_keys_are_rewrapped_as_pkcs8() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // ring's PKCS#8 drops the curve from the inner SEC1 structure; rebuild a Go-style SEC1
    // (version, key, [0] curve, [1] public key) from its parts.
    let items = der::sequence_items(key.serialized_der()).unwrap();
    let inner = der::sequence_items(items[2].value).unwrap();
    let mut sec1 = Vec::new();
    sec1.extend_from_slice(inner[0].raw);
    sec1.extend_from_slice(inner[1].raw);
    sec1.extend(der::tlv(0xa0, der::OID_P256));
    for item in &inner[2..] {
        sec1.extend_from_slice(item.raw);
    }
    let sec1 = der::tlv(0x30, &sec1);
    let parsed = PrivateKey::from_pem(encode_block("EC PRIVATE KEY", &sec1).as_bytes()).unwrap();
    assert_eq!(parsed.algorithm(), KeyAlgorithm::EcdsaP256);
    let reparsed = PrivateKey::from_pkcs8(parsed.pkcs8_der().to_vec()).unwrap();
    assert_eq!(reparsed.algorithm(), KeyAlgorithm::EcdsaP256);
    assert!(KeyPair::try_from(parsed.pkcs8_der()).is_ok());
}

#[test]
fn pkcs1_keys_are_rewrapped_as_rsa_pkcs8() {
    let pkcs1 = der::tlv(0x30, &[0x02, 0x01, 0x00]);
    let parsed = PrivateKey::from_pem(encode_block("RSA PRIVATE KEY", &pkcs1).as_bytes()).unwrap();
    assert_eq!(parsed.algorithm(), KeyAlgorithm::Rsa);
    assert!(parsed.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn key_errors_match_upstream() {
    assert_eq!(
        PrivateKey::from_pem(b"junk").unwrap_err().to_string(),
        "key is not PEM encoded"
    );
    assert_eq!(
        PrivateKey::from_pem(encode_block("CERTIFICATE", b"x").as_bytes())
            .unwrap_err()
            .to_string(),
        "unsupported block type CERTIFICATE"
    );
}
