//! dapr-security's decoders: certificate lists and chains, private keys (PKCS#8 / SEC1 /
//! PKCS#1 PEM and raw PKCS#8), SPIFFE ids and trust domains, and sentry's JWT signing-key
//! decoding on top. Oracles: no panic; what decodes re-encodes and decodes to the same value.
#![no_main]

use dapr_security::pem::{decode_certificate_chain, decode_certificates, encode_certificates};
use dapr_security::{PrivateKey, SpiffeId, TrustDomain};
use libfuzzer_sys::fuzz_target;
use sentry::jwt::SigningKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = decode_certificates(data) {
        let again = decode_certificates(encode_certificates(&certs).as_bytes())
            .expect("re-encoded certificates decode");
        assert_eq!(certs, again);
        for c in &certs {
            let _ = c.is_self_signed();
        }
    }
    let _ = decode_certificate_chain(data);

    if let Ok(key) = PrivateKey::from_pem(data) {
        let again = PrivateKey::from_pem(key.to_pem().as_bytes()).expect("re-encoded key decodes");
        assert_eq!(key.pkcs8_der(), again.pkcs8_der());
        assert_eq!(key.algorithm(), again.algorithm());
        let _ = SigningKey::from_private(&key);
    }
    let _ = PrivateKey::from_pkcs8(data.to_vec());
    let _ = SigningKey::from_pem(data);

    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(td) = TrustDomain::parse(s) {
            assert_eq!(TrustDomain::parse(&td.id_string()).ok(), Some(td.clone()));
        }
        if let Ok(id) = SpiffeId::parse(s) {
            assert_eq!(SpiffeId::parse(&id.to_string()).ok(), Some(id.clone()));
        }
    }
});
