use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dapr_proto::sentry::v1::SignCertificateRequest;
use rcgen::{CertificateParams, KeyPair};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::ca::{CaBundle, generate};
use crate::validator::Validators;

const TTL: Duration = Duration::from_secs(3600);
const SKEW: Duration = Duration::from_secs(60);

fn bundle() -> CaBundle {
    generate(
        "localhost",
        "spiffe://localhost/ns/default/dapr-sentry",
        SKEW,
        SystemTime::now(),
    )
    .unwrap()
    .0
}

fn ctx<'a>(bundle: &'a CaBundle, validators: &'a Validators) -> SignContext<'a> {
    SignContext {
        bundle,
        validators,
        workload_cert_ttl: TTL,
        allowed_clock_skew: SKEW,
        control_plane_namespace: "dapr-system",
        cluster_domain: "cluster.local",
        jwt: None,
    }
}

fn csr(alg: &'static rcgen::SignatureAlgorithm) -> String {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::new(vec!["ignored.example".to_owned()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "ignored");
    p.serialize_request(&key).unwrap().pem().unwrap()
}

fn request(csr: String) -> SignCertificateRequest {
    SignCertificateRequest {
        id: "myapp".into(),
        namespace: "default".into(),
        certificate_signing_request: csr.into_bytes(),
        ..Default::default()
    }
}

fn status(req: &SignCertificateRequest) -> tonic::Status {
    let b = bundle();
    let v = Validators::standalone(&[]);
    sign_certificate(req, &ctx(&b, &v), SystemTime::now())
        .unwrap_err()
        .into_status()
}

#[test]
fn the_leaf_follows_the_svid_profile() {
    let b = bundle();
    let v = Validators::standalone(&[]);
    let now = SystemTime::now();
    let signed = sign_certificate(&request(csr(&rcgen::PKCS_ED25519)), &ctx(&b, &v), now).unwrap();
    let resp = signed.response;

    let blocks = pem::parse_many(&resp.workload_certificate).unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(
        resp.workload_certificate
            .ends_with(b"-----END CERTIFICATE-----\n")
    );
    assert_eq!(blocks[1].contents(), b.issuer_chain()[0].der());
    assert_eq!(
        resp.trust_chain_certificates,
        vec![b.trust_anchors_pem().as_bytes().to_vec()]
    );

    let (_, leaf) = X509Certificate::from_der(blocks[0].contents()).unwrap();
    assert!(
        leaf.subject().iter().next().is_none(),
        "subject must be empty"
    );
    assert!(
        leaf.verify_signature(Some(b.issuer_chain()[0].parsed().public_key()))
            .is_ok()
    );
    let now_s = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(
        leaf.validity().not_before.timestamp(),
        now_s - SKEW.as_secs() as i64
    );
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        now_s + TTL.as_secs() as i64
    );
    assert_eq!(
        resp.valid_until.unwrap().seconds,
        now_s + TTL.as_secs() as i64
    );
    assert!(!leaf.is_ca());
    assert!(leaf.basic_constraints().unwrap().is_none());

    let mut seen_san = false;
    for ext in leaf.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                seen_san = true;
                assert!(ext.critical, "SAN must be critical with an empty subject");
                let names: Vec<_> = san.general_names.iter().collect();
                assert_eq!(names.len(), 1);
                assert!(matches!(
                    names[0],
                    GeneralName::URI("spiffe://public/ns/default/myapp")
                ));
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ext.critical);
                assert!(ku.digital_signature());
                assert_eq!(ku.flags, 1);
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                assert!(eku.server_auth && eku.client_auth);
                assert!(!eku.any && eku.other.is_empty());
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                let ski = b.issuer_chain()[0]
                    .parsed()
                    .extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                        _ => None,
                    })
                    .unwrap();
                assert_eq!(aki.key_identifier.as_ref().unwrap().0, ski.as_slice());
            }
            other => panic!("unexpected extension {other:?}"),
        }
    }
    assert!(seen_san);
}

#[test]
fn every_key_type_can_be_signed_and_keeps_its_key() {
    let b = bundle();
    let v = Validators::standalone(&[]);
    for alg in [
        &rcgen::PKCS_ED25519,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
    ] {
        let csr_pem = csr(alg);
        let signed =
            sign_certificate(&request(csr_pem.clone()), &ctx(&b, &v), SystemTime::now()).unwrap();
        let blocks = pem::parse_many(&signed.response.workload_certificate).unwrap();
        let (_, leaf) = X509Certificate::from_der(blocks[0].contents()).unwrap();
        let csr_der = pem::parse(csr_pem).unwrap();
        let (_, parsed) = x509_parser::certification_request::X509CertificationRequest::from_der(
            csr_der.contents(),
        )
        .unwrap();
        assert_eq!(
            leaf.public_key().raw,
            parsed.certification_request_info.subject_pki.raw
        );
    }
}

#[test]
fn the_request_trust_domain_and_legacy_pem_type_are_honoured() {
    let b = bundle();
    let v = Validators::standalone(&[]);
    let csr_pem = csr(&rcgen::PKCS_ED25519).replace("CERTIFICATE REQUEST", "CERTIFICATE");
    let mut req = request(csr_pem);
    req.trust_domain = "example.org".into();
    req.token_validator = 1;
    let signed = sign_certificate(&req, &ctx(&b, &v), SystemTime::now()).unwrap();
    assert_eq!(
        signed.spiffe_id.to_string(),
        "spiffe://example.org/ns/default/myapp"
    );
}

#[test]
fn control_plane_ids_in_sentrys_namespace_get_dns_names() {
    let b = bundle();
    let v = Validators::standalone(&[]);
    let dns = |id: &str, ns: &str| {
        let mut req = request(csr(&rcgen::PKCS_ED25519));
        req.id = id.into();
        req.namespace = ns.into();
        let signed = sign_certificate(&req, &ctx(&b, &v), SystemTime::now()).unwrap();
        let blocks = pem::parse_many(&signed.response.workload_certificate).unwrap();
        let (_, leaf) = X509Certificate::from_der(blocks[0].contents()).unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        san.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        dns("dapr-injector", "dapr-system"),
        ["dapr-sidecar-injector.dapr-system.svc"]
    );
    assert_eq!(
        dns("dapr-operator", "dapr-system"),
        ["dapr-webhook.dapr-system.svc"]
    );
    assert_eq!(
        dns("dapr-scheduler", "dapr-system"),
        [
            "dapr-scheduler-server-0.dapr-scheduler-server.dapr-system.svc.cluster.local",
            "dapr-scheduler-server-1.dapr-scheduler-server.dapr-system.svc.cluster.local",
            "dapr-scheduler-server-2.dapr-scheduler-server.dapr-system.svc.cluster.local",
        ]
    );
    assert!(dns("dapr-injector", "other").is_empty());
    assert!(dns("dapr-placement", "dapr-system").is_empty());
}

#[test]
fn validator_selection_errors_match_upstream() {
    let mut req = request(csr(&rcgen::PKCS_ED25519));
    req.token_validator = -1;
    let s = status(&req);
    assert_eq!(
        (s.code(), s.message()),
        (
            tonic::Code::InvalidArgument,
            "the requested validator is not enabled"
        )
    );

    let b = bundle();
    let v = Validators::standalone(&[crate::config::ValidatorKind::Jwks]);
    req.token_validator = 0;
    let s = sign_certificate(&req, &ctx(&b, &v), SystemTime::now())
        .unwrap_err()
        .into_status();
    assert_eq!(
        (s.code(), s.message()),
        (
            tonic::Code::InvalidArgument,
            "a validator name must be specified in this environment"
        )
    );
    req.token_validator = 1;
    let s = sign_certificate(&req, &ctx(&b, &v), SystemTime::now())
        .unwrap_err()
        .into_status();
    assert_eq!(s.message(), "the requested validator is not enabled");
}

#[test]
fn validation_runs_before_csr_parsing() {
    let mut req = request(String::new());
    let s = status(&req);
    assert_eq!(
        (s.code(), s.message()),
        (
            tonic::Code::PermissionDenied,
            "invalid request: CSR is required"
        )
    );
    req = request(csr(&rcgen::PKCS_ED25519));
    req.namespace.clear();
    let s = status(&req);
    assert_eq!(
        (s.code(), s.message()),
        (
            tonic::Code::PermissionDenied,
            "invalid request: namespace is required"
        )
    );
}

#[test]
fn bad_csrs_are_invalid_arguments() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let s = status(&request(key.serialize_pem()));
    assert_eq!(
        (s.code(), s.message()),
        (
            tonic::Code::InvalidArgument,
            "invalid certificate signing request"
        )
    );

    let s = status(&request("not pem".into()));
    assert_eq!(s.message(), "invalid certificate signing request");

    let junk = dapr_security::pem::encode_block("CERTIFICATE REQUEST", b"junk");
    let s = status(&request(junk));
    assert_eq!(s.code(), tonic::Code::InvalidArgument);
    assert!(
        s.message()
            .starts_with("failed to parse certificate signing request: "),
        "{}",
        s.message()
    );

    // Flip a byte of the signature (the last bytes of the DER).
    let good = pem::parse(csr(&rcgen::PKCS_ED25519)).unwrap();
    let mut der = good.contents().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0xff;
    let s = status(&request(dapr_security::pem::encode_block(
        "CERTIFICATE REQUEST",
        &der,
    )));
    assert_eq!(
        (s.code(), s.message()),
        (tonic::Code::InvalidArgument, "invalid signature")
    );
}

#[test]
fn an_unbuildable_spiffe_id_is_an_internal_error() {
    let mut req = request(csr(&rcgen::PKCS_ED25519));
    req.id = "my:app".into();
    let s = status(&req);
    assert_eq!(
        (s.code(), s.message()),
        (tonic::Code::Internal, "failed to sign certificate")
    );
}

#[test]
fn with_jwt_enabled_responses_carry_one_jwt_for_all_audiences_and_one_per_audience() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let key = crate::jwt::SigningKey::from_pem(
        KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .serialize_pem()
            .as_bytes(),
    )
    .unwrap();
    let jwks = crate::jwt::Jwks::single(crate::jwt::public_members(key.public()));
    let issuer = JwtIssuer::new(key, "EdDSA".into(), "kid".into(), None, SKEW, TTL, jwks);
    let b = bundle();
    let v = Validators::standalone(&[]);
    let mut c = ctx(&b, &v);
    c.jwt = Some(&issuer);
    let mut req = request(csr(&rcgen::PKCS_ED25519));
    req.jwt_audiences = vec!["api".into(), "public".into()];
    let resp = sign_certificate(&req, &c, SystemTime::now())
        .unwrap()
        .response;
    let aud = |token: &str| {
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], "spiffe://public/ns/default/myapp");
        claims["aud"].clone()
    };
    // Trust domain first, duplicates kept.
    assert_eq!(
        aud(resp.jwt.as_deref().unwrap()),
        serde_json::json!(["public", "api", "public"])
    );
    let mut keys: Vec<_> = resp.per_audience_jwts.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["api", "public"]);
    for (audience, token) in &resp.per_audience_jwts {
        assert_eq!(aud(token), serde_json::json!([audience]));
    }
}
