//! The `SignCertificate` request path (server `CaState::sign`, minus the async kubernetes
//! validator): validator selection, the insecure or jwks validator, CSR parsing and signing,
//! with arbitrary id / namespace / trust domain / token / validator number / CSR bytes.
//! Oracles: no panic; errors are one of upstream's gRPC codes; a signed leaf parses, is signed
//! by the issuer and carries exactly `spiffe://<td>/ns/<namespace>/<id>`.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_security::pem::decode_certificates;
use libfuzzer_sys::fuzz_target;
use sentry::config::ValidatorKind;
use sentry::sign::{SignContext, select_validator, sign_validated};
use sentry::validator::jwks::JwksValidator;
use sentry::validator::verify::KeySet;
use sentry::validator::{self, Validators};
use sentry_fuzz::{CONTROL_PLANE_NAMESPACE, assert_upstream_code, fixture};

/// Go's `time.Duration` tops out at i64::MAX nanoseconds: the config cannot ask for more.
const MAX_GO_DURATION_SECS: u64 = i64::MAX as u64 / 1_000_000_000;

#[derive(Debug, Arbitrary)]
enum Csr {
    /// One of the fixture's valid CSRs (index modulo their number).
    Valid(u8),
    /// A valid CSR with bytes appended (PEM allows trailing data).
    ValidThen(u8, Vec<u8>),
    /// A valid CSR with one byte flipped.
    Flipped(u8, u16, u8),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Mode {
    /// Standalone with no configured validators: insecure is the default.
    Standalone,
    /// Standalone with `jwks` configured: no default.
    StandaloneJwks,
    /// Kubernetes mode (kubernetes default) plus `jwks`.
    KubernetesJwks,
}

#[derive(Debug, Arbitrary)]
struct Input {
    id: String,
    namespace: String,
    trust_domain: String,
    token: String,
    token_validator: i32,
    csr: Csr,
    jwt_audiences: Vec<String>,
    mode: Mode,
    jwt_enabled: bool,
    /// `namespace` is sentry's own (control-plane DNS SANs).
    control_plane: bool,
    ttl_secs: u64,
    skew_secs: u64,
    /// JWK set the jwks validator holds.
    jwks: String,
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let csr = match input.csr {
        Csr::Valid(i) => f.csrs[usize::from(i) % f.csrs.len()].clone().into_bytes(),
        Csr::ValidThen(i, tail) => {
            let mut b = f.csrs[usize::from(i) % f.csrs.len()].clone().into_bytes();
            b.extend(tail);
            b
        }
        Csr::Flipped(i, at, x) => {
            let mut b = f.csrs[usize::from(i) % f.csrs.len()].clone().into_bytes();
            let at = usize::from(at) % b.len();
            b[at] ^= x;
            b
        }
        Csr::Raw(b) => b,
    };
    let namespace = if input.control_plane {
        CONTROL_PLANE_NAMESPACE.to_owned()
    } else {
        input.namespace
    };
    let req = SignCertificateRequest {
        id: input.id,
        token: input.token,
        trust_domain: input.trust_domain,
        namespace,
        certificate_signing_request: csr,
        token_validator: input.token_validator,
        jwt_audiences: input.jwt_audiences,
    };
    let validators = match input.mode {
        Mode::Standalone => Validators::standalone(&[]),
        Mode::StandaloneJwks => Validators::standalone(&[ValidatorKind::Jwks]),
        Mode::KubernetesJwks => Validators::kubernetes(&[ValidatorKind::Jwks]),
    };
    let ctx = SignContext {
        bundle: &f.bundle,
        validators: &validators,
        workload_cert_ttl: Duration::from_secs(input.ttl_secs % MAX_GO_DURATION_SECS),
        allowed_clock_skew: Duration::from_secs(input.skew_secs % MAX_GO_DURATION_SECS),
        control_plane_namespace: CONTROL_PLANE_NAMESPACE,
        cluster_domain: "cluster.local",
        jwt: input.jwt_enabled.then_some(&f.jwt),
    };
    let jwks = KeySet::parse(input.jwks.as_bytes())
        .ok()
        .map(|keys| JwksValidator::with_keys(keys, "dapr-sentry".into()));

    // As `CaState::sign`: select, validate, sign.
    let result = select_validator(&req, &validators)
        .and_then(|kind| match (kind, &jwks) {
            (ValidatorKind::Jwks, Some(v)) => Ok(v.validate(&req, f.now)?),
            _ => Ok(validator::validate(kind, &req)?),
        })
        .and_then(|td| sign_validated(&req, &td, &ctx, f.now));
    match result {
        Err(e) => assert_upstream_code(&e.into_status()),
        Ok(signed) => {
            let chain = String::from_utf8(signed.response.workload_certificate)
                .expect("the chain is PEM text");
            let certs = decode_certificates(chain.as_bytes()).expect("the chain decodes");
            assert!(certs[0].is_signed_by(&f.bundle.issuer_chain()[0]));
            let td = signed.spiffe_id.trust_domain().as_str().to_owned();
            assert_eq!(
                signed.spiffe_id.to_string(),
                format!("spiffe://{td}/ns/{}/{}", req.namespace, req.id)
            );
            let leaf = certs[0].parsed();
            let uris: Vec<String> = leaf
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|n| match n {
                            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(uris, vec![signed.spiffe_id.to_string()]);
            if input.jwt_enabled {
                assert!(signed.response.jwt.is_some());
            }
        }
    }
});
