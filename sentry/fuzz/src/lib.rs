//! Fixtures shared by the fuzz targets: one CA, a few valid CSRs and a JWT issuer, made once
//! per process (key generation is far slower than one fuzz iteration), and the oracle every
//! request-path target applies to errors.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair, SignatureAlgorithm};
use sentry::ca::{CaBundle, GeneratedPem};
use sentry::jwt::{JwtBundle, JwtIssuer, PublicKey};

/// Trust domain of the fixture CA.
pub const TRUST_DOMAIN: &str = "cluster.local";
/// Sentry's own namespace in the fixture (control-plane ids there get DNS SANs).
pub const CONTROL_PLANE_NAMESPACE: &str = "dapr-system";

/// Everything generated once.
pub struct Fixture {
    /// The clock every target signs at; the CA is valid around it.
    pub now: SystemTime,
    pub bundle: CaBundle,
    pub pem: GeneratedPem,
    /// PEM CSRs for each key type sentry accepts.
    pub csrs: Vec<String>,
    /// A JWT issuer over a generated RSA key (`-jwt-enabled`).
    pub jwt: JwtIssuer,
    /// The public half of the JWT key, for `Jwks::verify`.
    pub jwt_public: PublicKey,
}

/// The process-wide fixture.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = SystemTime::now();
        let (bundle, pem) = sentry::ca::generate(
            TRUST_DOMAIN,
            "spiffe://cluster.local/ns/dapr-system/dapr-sentry",
            Duration::from_secs(15 * 60),
            now,
        )
        .expect("generate the fixture CA");
        let csrs = [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ]
        .into_iter()
        .map(csr)
        .collect();
        let jwt_bundle = JwtBundle::generate().expect("generate the JWT key");
        let jwt_public = jwt_bundle.key.public().clone();
        let jwt = jwt_bundle
            .into_issuer(
                "RS256",
                None,
                Some("https://sentry.example".into()),
                Duration::from_secs(15 * 60),
                Duration::from_secs(3600),
            )
            .expect("RS256 fits a generated key");
        Fixture {
            now,
            bundle,
            pem,
            csrs,
            jwt,
            jwt_public,
        }
    })
}

fn csr(alg: &'static SignatureAlgorithm) -> String {
    let key = KeyPair::generate_for(alg).expect("generate a CSR key");
    let mut params = CertificateParams::new(vec!["ignored.example".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ignored");
    params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .expect("serialize the CSR")
}

/// Upstream's `SignCertificate` answers only these codes; anything else is a bug.
pub fn assert_upstream_code(status: &tonic::Status) {
    assert!(
        matches!(
            status.code(),
            tonic::Code::InvalidArgument | tonic::Code::PermissionDenied | tonic::Code::Internal
        ),
        "unexpected gRPC code {:?}: {}",
        status.code(),
        status.message()
    );
}
