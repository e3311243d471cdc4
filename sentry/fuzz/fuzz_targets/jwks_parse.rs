//! JWK sets: sentry's own `jwks.json` parser (`Jwks`, checked against a signing key at
//! startup) and the jwks validator's `KeySet`, then a compact JWS verified against that set.
//! The input is `<jwks json>\0<token>`. Oracles: no panic; a parsed `Jwks` re-serialises to a
//! set that parses with the same keys. (Not value equality: serde_json without
//! `float_roundtrip` may move a numeric member by one ULP, e.g. `300000000000000000000008`
//! comes back as `2.9999999999999997e23`; JWK members sentry reads are strings.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry::jwt::Jwks;
use sentry::validator::verify::{Expect, KeySet, verify};
use sentry_fuzz::fixture;

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (json, token) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(jwks) = Jwks::parse(json) {
        let again = Jwks::parse(jwks.to_json().as_bytes()).expect("re-serialised JWKS parses");
        assert_eq!(
            without_numbers(&jwks.to_json()),
            without_numbers(&again.to_json())
        );
        let _ = jwks.verify(&f.jwt_public, None);
        let _ = jwks.verify(&f.jwt_public, Some("kid"));
    }
    if let Ok(keys) = KeySet::parse(json)
        && let Ok(token) = std::str::from_utf8(token)
    {
        let _ = verify(
            token,
            &keys,
            &Expect {
                audience: "dapr-sentry",
                subject: "spiffe://public/ns/default/myapp",
            },
            f.now,
        );
    }
});

/// The JSON with every number replaced by null (see the module comment).
fn without_numbers(json: &str) -> serde_json::Value {
    fn strip(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(_) => Value::Null,
            Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, strip(v))).collect()),
            other => other,
        }
    }
    strip(serde_json::from_str(json).expect("to_json writes JSON"))
}
