use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::testutil::{Alg, Ca, Leaf};

const ID: &str = "spiffe://public/ns/default/dapr-placement";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn renewal_is_half_way_through_the_full_validity() {
    // sentry back-dates by the clock skew: [t-5s, t+10s] renews at t+2.5s.
    let t = 1_000_000;
    assert_eq!(
        renewal_time(at(t - 5), at(t + 10), None, at(t)),
        at(t) + Duration::from_millis(2500)
    );
    assert_eq!(renewal_time(at(100), at(100), None, at(100)), at(100));
}

#[test]
fn a_jwt_expiring_sooner_moves_the_renewal_earlier() {
    let now = at(1_000);
    // cert renews at 1_500; JWT expires at 1_100 -> renew half-way there.
    assert_eq!(
        renewal_time(at(1_000), at(2_000), Some(at(1_100)), now),
        at(1_050)
    );
    // A long JWT does not delay the certificate's renewal.
    assert_eq!(
        renewal_time(at(1_000), at(2_000), Some(at(9_000)), now),
        at(1_500)
    );
    // An expired JWT: renew now.
    assert_eq!(renewal_time(at(1_000), at(2_000), Some(at(10)), now), now);
}

struct Issued {
    root: Ca,
    issuer: Ca,
    leaf: Leaf,
}

fn issued() -> Issued {
    let root = Ca::root(Alg::Ed25519);
    let issuer = root.intermediate(Alg::Ed25519);
    let leaf = issuer.leaf(Alg::Ed25519, ID);
    Issued { root, issuer, leaf }
}

fn response(i: &Issued) -> SignCertificateResponse {
    SignCertificateResponse {
        workload_certificate: format!("{}{}", i.leaf.cert.pem(), i.issuer.cert.pem()).into_bytes(),
        trust_chain_certificates: vec![i.root.cert.pem().into_bytes()],
        valid_until: Some(prost_types::Timestamp {
            seconds: 2_000_000_000,
            nanos: 0,
        }),
        jwt: None,
        per_audience_jwts: HashMap::new(),
    }
}

fn jwt(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[test]
fn a_response_becomes_an_identity_with_the_leafs_id_and_the_served_chain() {
    let i = issued();
    let svid = Svid::from_response(&response(&i), i.leaf.private_key(), SystemTime::now()).unwrap();
    assert_eq!(svid.id().to_string(), ID);
    assert_eq!(svid.chain().len(), 2);
    assert_eq!(svid.certified_key().cert.len(), 2);
    assert!(svid.jwt().is_none());
    assert!(svid.not_before() < svid.not_after());
    assert_eq!(svid.expiry_text().matches("expires on").count(), 1);
}

#[test]
fn bad_responses_are_rejected_with_upstreams_texts() {
    let i = issued();
    let key = || i.leaf.private_key();
    let now = SystemTime::now();

    let mut r = response(&i);
    r.valid_until = None;
    assert_eq!(
        Svid::from_response(&r, key(), now).unwrap_err().to_string(),
        "error parsing ValidUntil: invalid nil Timestamp"
    );
    let mut r = response(&i);
    r.valid_until = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    assert!(matches!(
        Svid::from_response(&r, key(), now),
        Err(SvidError::ValidUntil(_))
    ));

    let mut r = response(&i);
    r.workload_certificate = b"not pem".to_vec();
    assert_eq!(
        Svid::from_response(&r, key(), now).unwrap_err().to_string(),
        "error parsing newly signed certificate: no certificates found"
    );

    let other = i.issuer.leaf(Alg::Ed25519, ID);
    assert!(matches!(
        Svid::from_response(&response(&i), other.private_key(), now),
        Err(SvidError::Key(_))
    ));
}

#[test]
fn a_jwt_svid_is_kept_when_it_lists_the_trust_domain_and_checked_otherwise() {
    let i = issued();
    let now = SystemTime::now();
    let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    let header = r#"{"alg":"RS256","typ":"JWT"}"#;

    let mut r = response(&i);
    r.jwt = Some(jwt(
        header,
        &format!(r#"{{"sub":"{ID}","aud":["public"],"exp":{exp}}}"#),
    ));
    let svid = Svid::from_response(&r, i.leaf.private_key(), now).unwrap();
    assert_eq!(svid.jwt().unwrap().expiry, at(exp));
    assert!(svid.expiry_text().contains(", jwt expires on: "));

    let cases = [
        (
            jwt(header, &format!(r#"{{"sub":"{ID}","exp":{exp}}}"#)),
            "JWT audience is empty",
        ),
        (
            jwt(
                header,
                &format!(r#"{{"sub":"{ID}","aud":"other","exp":{exp}}}"#),
            ),
            "failed to parse JWT SVID: jwtsvid: expected audience in [\"public\"] (audience=[\"other\"])",
        ),
        (
            jwt(
                r#"{"alg":"HS256"}"#,
                &format!(r#"{{"sub":"{ID}","aud":"public","exp":{exp}}}"#),
            ),
            "failed to parse JWT SVID: jwtsvid: unable to parse JWT token",
        ),
        (
            jwt(
                r#"{"alg":"ES256","typ":"xyz"}"#,
                &format!(r#"{{"sub":"{ID}","aud":"public","exp":{exp}}}"#),
            ),
            "failed to parse JWT SVID: jwtsvid: token header type not equal to either JWT or JOSE",
        ),
        (
            jwt(header, r#"{"sub":"spiffe://public/a","aud":"public"}"#),
            "failed to parse JWT SVID: jwtsvid: token missing exp claim",
        ),
        (
            jwt(header, &format!(r#"{{"aud":"public","exp":{exp}}}"#)),
            "failed to parse JWT SVID: jwtsvid: token missing subject claim",
        ),
        (
            jwt(
                header,
                r#"{"sub":"spiffe://public/a","aud":"public","exp":1e300}"#,
            ),
            "failed to parse JWT SVID: jwtsvid: token has an invalid exp claim",
        ),
    ];
    for (token, want) in cases {
        let mut r = response(&i);
        r.jwt = Some(token);
        let err = Svid::from_response(&r, i.leaf.private_key(), now).unwrap_err();
        assert_eq!(err.to_string(), want);
    }

    let mut r = response(&i);
    r.jwt = Some("a.b".to_owned());
    assert!(matches!(
        Svid::from_response(&r, i.leaf.private_key(), now),
        Err(SvidError::JwtParse(_))
    ));
}

#[test]
fn per_audience_jwts_must_name_exactly_their_audience() {
    let i = issued();
    let now = SystemTime::now();
    let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    let header = r#"{"alg":"RS256"}"#;
    let mut r = response(&i);
    r.per_audience_jwts.insert(
        "a".to_owned(),
        jwt(
            header,
            &format!(r#"{{"sub":"{ID}","aud":["a","b"],"exp":{exp}}}"#),
        ),
    );
    assert_eq!(
        Svid::from_response(&r, i.leaf.private_key(), now)
            .unwrap_err()
            .to_string(),
        "JWT audience mismatch"
    );
    let mut r = response(&i);
    r.per_audience_jwts.insert(
        "a".to_owned(),
        jwt(
            header,
            &format!(r#"{{"sub":"{ID}","aud":"a","exp":{exp}}}"#),
        ),
    );
    assert!(Svid::from_response(&r, i.leaf.private_key(), now).is_ok());
}
