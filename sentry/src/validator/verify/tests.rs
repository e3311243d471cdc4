use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::json;

use super::*;

const AUD: &str = "spiffe://localhost/ns/default/dapr-sentry";
const SUB: &str = "spiffe://public/ns/default/myapp";

fn key() -> (Ed25519KeyPair, KeySet) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({"kty":"OKP","crv":"Ed25519","kid":"mykey","alg":"EdDSA",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
    let set = KeySet::parse(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap();
    (pair, set)
}

fn token(pair: &Ed25519KeyPair, header: Value, claims: Value) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = pair.sign(msg.as_bytes());
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"aud":[AUD],"sub":SUB,"exp":now()+3600,"iat":now()})
}

fn check(t: &str, set: &KeySet) -> Result<Map<String, Value>, VerifyError> {
    verify(
        t,
        set,
        &Expect {
            audience: AUD,
            subject: SUB,
        },
        SystemTime::now(),
    )
}

#[test]
fn a_token_signed_by_the_keyed_eddsa_key_verifies() {
    let (pair, set) = key();
    let t = token(&pair, json!({"alg":"EdDSA","kid":"mykey"}), claims());
    assert_eq!(check(&t, &set).unwrap()["sub"], SUB);
}

#[test]
fn each_claim_failure_names_the_claim_like_jwx() {
    let (pair, set) = key();
    let h = json!({"alg":"EdDSA","kid":"mykey"});
    let cases = [
        ("aud", json!("other"), "\"aud\""),
        ("sub", json!("spiffe://public/ns/default/other"), "\"sub\""),
        ("exp", json!(now() - 3600), "\"exp\""),
        ("nbf", json!(now() + 3600), "\"nbf\""),
    ];
    for (claim, value, text) in cases {
        let mut c = claims();
        c[claim] = value;
        let err = check(&token(&pair, h.clone(), c), &set).unwrap_err();
        assert!(err.to_string().contains(text), "{claim}: {err}");
    }
}

#[test]
fn the_kid_is_required_and_must_be_known() {
    let (pair, set) = key();
    let t = token(&pair, json!({"alg":"EdDSA"}), claims());
    assert_eq!(check(&t, &set).unwrap_err(), VerifyError::NoKid);
    let t = token(&pair, json!({"alg":"EdDSA","kid":"x"}), claims());
    assert_eq!(
        check(&t, &set).unwrap_err().to_string(),
        "failed to find key with key ID \"x\" in key set"
    );
}

#[test]
fn a_header_alg_that_differs_from_the_keys_alg_cannot_verify() {
    let (_, set) = key();
    let (other, _) = key();
    let t = token(&other, json!({"alg":"RS256","kid":"mykey"}), claims());
    assert!(
        check(&t, &set)
            .unwrap_err()
            .to_string()
            .contains("could not verify message")
    );
    assert_eq!(check("{\"a\":1}", &set).unwrap_err(), VerifyError::Format);
}
