use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dapr_security::TrustDomain;
use serde_json::Value;

use super::*;

/// RFC 7638 §3.1's example RSA key and its thumbprint (base64url there; standard base64 here).
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_KID: &str = "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs=";

fn ed25519_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}

fn p256_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem()
}

fn jwks_for(key: &SigningKey, extra: &[(&str, &str)]) -> Jwks {
    let mut jwk = public_members(key.public());
    for (k, v) in extra {
        jwk.insert((*k).into(), (*v).into());
    }
    Jwks::single(jwk)
}

#[test]
fn the_kid_is_the_standard_base64_rfc7638_thumbprint() {
    let public = PublicKey::Rsa {
        n: URL_SAFE_NO_PAD.decode(RFC7638_N).unwrap(),
        e: vec![1, 0, 1],
    };
    assert_eq!(thumbprint_kid(&public), RFC7638_KID);
}

#[test]
fn an_empty_jwks_file_does_not_parse() {
    let err = Jwks::parse(b"").unwrap_err();
    assert!(
        err.to_string().starts_with("failed to parse JWKS: "),
        "{err}"
    );
}

#[test]
fn a_jwks_without_keys_is_rejected() {
    let key = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let jwks = Jwks::parse(br#"{"keys":[]}"#).unwrap();
    assert_eq!(
        jwks.verify(key.public(), None).unwrap_err().to_string(),
        "JWKS doesn't contain any keys"
    );
}

#[test]
fn a_jwks_with_another_key_is_rejected() {
    let key = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let other = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    assert_eq!(
        jwks_for(&other, &[])
            .verify(key.public(), None)
            .unwrap_err()
            .to_string(),
        "JWKS doesn't contain a matching public key for the JWT signing key"
    );
}

#[test]
fn a_matching_key_passes_unless_its_use_is_not_sig() {
    let key = SigningKey::from_pem(p256_pem().as_bytes()).unwrap();
    assert_eq!(
        jwks_for(&key, &[("use", "sig")]).verify(key.public(), None),
        Ok(())
    );
    assert_eq!(
        jwks_for(&key, &[("use", "enc")]).verify(key.public(), None),
        Err(JwksError::NoMatch)
    );
}

#[test]
fn a_bare_jwk_is_a_one_key_set() {
    let key = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let bare = Value::Object(public_members(key.public())).to_string();
    let jwks = Jwks::parse(bare.as_bytes()).unwrap();
    assert_eq!(jwks.verify(key.public(), None), Ok(()));
}

#[test]
fn a_user_key_id_must_exist_and_match() {
    let key = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let other = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let jwks = jwks_for(&key, &[("kid", "mine")]);
    assert_eq!(jwks.verify(key.public(), Some("mine")), Ok(()));
    assert_eq!(
        jwks.verify(key.public(), Some("yours"))
            .unwrap_err()
            .to_string(),
        r#"JWKS doesn't contain a key with user-provided key ID "yours""#
    );
    assert_eq!(
        jwks_for(&other, &[("kid", "mine")])
            .verify(key.public(), Some("mine"))
            .unwrap_err()
            .to_string(),
        r#"JWKS contains a key with user-provided key ID "mine" but the key content doesn't match the signing key"#
    );
}

#[test]
fn the_algorithm_must_fit_the_key() {
    let ed = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    assert_eq!(ed.check_algorithm("EdDSA"), Ok(()));
    assert_eq!(
        ed.check_algorithm("").unwrap_err().to_string(),
        "JWT signing algorithm required"
    );
    assert_eq!(
        ed.check_algorithm("rs256").unwrap_err().to_string(),
        "unsupported signature algorithm: rs256"
    );
    assert!(
        ed.check_algorithm("RS256")
            .unwrap_err()
            .to_string()
            .starts_with("JWT signing key is incompatible with algorithm RS256: ")
    );
    let ec = SigningKey::from_pem(p256_pem().as_bytes()).unwrap();
    assert_eq!(ec.check_algorithm("ES256"), Ok(()));
    assert!(ec.check_algorithm("ES384").is_err());
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn generated_keys_are_rsa_2048_with_a_thumbprint_kid_and_tokens_verify() {
    let bundle = JwtBundle::generate().unwrap();
    let jwks: Value = serde_json::from_slice(&bundle.jwks_json).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], thumbprint_kid(bundle.key.public()));
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert!(String::from_utf8_lossy(&bundle.key_pem).starts_with("-----BEGIN PRIVATE KEY-----"));
    // Reloading the stored pair passes the JWKS check.
    let reloaded = SigningKey::from_pem(&bundle.key_pem).unwrap();
    Jwks::parse(&bundle.jwks_json)
        .unwrap()
        .verify(reloaded.public(), None)
        .unwrap();

    let PublicKey::Rsa { n, e } = bundle.key.public().clone() else {
        panic!("not RSA")
    };
    let kid = thumbprint_kid(bundle.key.public());
    // A user algorithm is ignored for a generated key.
    let issuer = bundle
        .into_issuer(
            "ES256",
            None,
            Some("https://issuer".into()),
            Duration::from_secs(900),
            Duration::from_secs(7200),
        )
        .unwrap();
    assert_eq!(issuer.algorithm(), "RS256");
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let td = TrustDomain::parse("public").unwrap();
    let token = issuer
        .generate(
            &td,
            &["public".into(), "api".into()],
            "default",
            "myapp",
            now,
        )
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode_part(parts[0]);
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"})
    );
    let claims = decode_part(parts[1]);
    assert_eq!(claims["sub"], "spiffe://public/ns/default/myapp");
    assert_eq!(claims["aud"], serde_json::json!(["public", "api"]));
    assert_eq!(claims["iss"], "https://issuer");
    assert_eq!(claims["use"], "sig");
    assert_eq!(claims["iat"], 1_800_000_000u64);
    assert_eq!(claims["nbf"], 1_800_000_000u64 - 900);
    assert_eq!(claims["exp"], 1_800_000_000u64 + 7200);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 32);
    assert!(
        jti.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("RS256 signature verifies");
}

#[test]
fn tokens_omit_iss_unless_configured_and_reject_empty_inputs() {
    let key = SigningKey::from_pem(ed25519_pem().as_bytes()).unwrap();
    let jwks = jwks_for(&key, &[]);
    let issuer = JwtIssuer::new(
        key,
        "EdDSA".into(),
        "k".into(),
        None,
        Duration::ZERO,
        Duration::from_secs(60),
        jwks,
    );
    let td = TrustDomain::parse("td").unwrap();
    let token = issuer
        .generate(&td, &["td".into()], "ns", "app", SystemTime::now())
        .unwrap();
    let claims = decode_part(token.split('.').nth(1).unwrap());
    assert!(claims.get("iss").is_none());
    assert_eq!(claims["aud"], serde_json::json!(["td"]));
    assert_eq!(
        issuer
            .generate(&td, &[], "ns", "app", SystemTime::now())
            .unwrap_err()
            .to_string(),
        "audience cannot be empty"
    );
    assert_eq!(
        issuer
            .generate(&td, &["a".into()], "", "app", SystemTime::now())
            .unwrap_err()
            .to_string(),
        "namespace cannot be empty"
    );
}

#[test]
fn relative_jwt_file_flags_fall_back_to_the_default_names() {
    let files = JwtFiles::new("/creds", "custom.key", "/abs/keys.json");
    assert_eq!(files.key, std::path::Path::new("/creds/jwt.key"));
    assert_eq!(files.jwks, std::path::Path::new("/abs/keys.json"));
}
