//! Reloading the issuer credentials without a restart (spec §6): replacing the files makes
//! sentry sign with the new issuer and serve a certificate from it; invalid replacement
//! material is fatal as at start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dapr_proto::sentry::v1::{
    SignCertificateRequest, SignCertificateResponse, ca_client::CaClient,
};
use dapr_security::{Certificate, pem};
use dapr_testing::{Child, free_port, wait_for_status};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;

const SENTRY: &str = env!("CARGO_BIN_EXE_sentry");
const START: Duration = Duration::from_secs(20);
/// 500 ms polling + 2 s settle time + reload, with room for a busy machine.
const RELOAD: Duration = Duration::from_secs(20);
const TRUST_DOMAIN: &str = "integration.test.dapr.io";

/// Accepts any server certificate and keeps the last chain presented, so the test can check it
/// against the anchors it expects at that moment.
#[derive(Debug)]
struct Recorder {
    seen: Mutex<Vec<Certificate>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| Certificate::from_der(c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = chain;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A running sentry over a credentials directory.
struct Sentry {
    child: Child,
    dir: PathBuf,
    grpc: u16,
    metrics: u16,
}

impl Sentry {
    /// Starts sentry over an empty credentials directory (so it generates a CA) and waits
    /// until it is healthy.
    async fn start(name: &str) -> Self {
        Self::start_with(name, &[]).await
    }

    async fn start_with(name: &str, extra: &[String]) -> Self {
        let dir = std::env::temp_dir().join(format!("sentry-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("creds")).unwrap();
        std::fs::write(dir.join("sentry.yaml"), "").unwrap();
        let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
        let args = [
            format!("-port={grpc}"),
            format!("-healthz-port={healthz}"),
            format!("-metrics-port={metrics}"),
            "-listen-address=127.0.0.1".to_owned(),
            "-metrics-listen-address=127.0.0.1".to_owned(),
            format!("-issuer-credentials={}", dir.join("creds").display()),
            format!("-config={}", dir.join("sentry.yaml").display()),
            format!("-trust-domain={TRUST_DOMAIN}"),
            "-log-level=debug".to_owned(),
        ];
        let args: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
        let child = Child::spawn(SENTRY, &args).unwrap();
        let ready =
            tokio::task::spawn_blocking(move || wait_for_status(healthz, "/healthz", 200, START))
                .await
                .unwrap();
        ready.unwrap_or_else(|e| panic!("{e:?}\n{}", child.output()));
        Self {
            child,
            dir,
            grpc,
            metrics,
        }
    }

    fn creds(&self) -> PathBuf {
        self.dir.join("creds")
    }

    /// A fresh TLS connection (so each call sees the certificate served at that moment); the
    /// recorder holds the chain sentry presented.
    async fn connect(&self) -> (CaClient<tonic::transport::Channel>, Arc<Recorder>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            provider: Arc::clone(&provider),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let grpc = self.grpc;
        let channel = tonic::transport::Endpoint::from_static("http://sentry.invalid")
            .connect_with_connector(tower::service_fn(move |_| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", grpc)).await?;
                    let name = ServerName::try_from("sentry.invalid").unwrap();
                    let stream = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", self.child.output()));
        (CaClient::new(channel), recorder)
    }

    /// Signs a workload certificate; returns the chain (leaf, issuer…) and the chain sentry
    /// served on that connection.
    async fn sign(&self) -> (Vec<Certificate>, Vec<Certificate>) {
        let (response, served) = self.sign_with_audiences(Vec::new()).await;
        let signed = pem::decode_certificate_chain(&response.workload_certificate).unwrap();
        (signed, served)
    }

    async fn sign_with_audiences(
        &self,
        jwt_audiences: Vec<String>,
    ) -> (SignCertificateResponse, Vec<Certificate>) {
        let (mut client, recorder) = self.connect().await;
        let response = client
            .sign_certificate(SignCertificateRequest {
                id: "myapp".into(),
                namespace: "default".into(),
                certificate_signing_request: csr(),
                jwt_audiences,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", self.child.output()))
            .into_inner();
        let served = recorder.seen.lock().unwrap().clone();
        (response, served)
    }

    fn metric(&self, name: &str) -> Option<String> {
        let (_, body) = dapr_testing::http_get(self.metrics, "/metrics").unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
    }
}

fn csr() -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

/// A user CA: root and issuer (ECDSA P-256, as older installs have), valid for 100 days.
struct MintedCa {
    root: Certificate,
    root_pem: String,
    issuer_pem: String,
    issuer_key_pem: String,
    issuer_not_after: i64,
}

fn ca_params(org: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::OrganizationName, org);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(100);
    p
}

fn mint_ca() -> MintedCa {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca_params(TRUST_DOMAIN);
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let issuer_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let issuer_params = ca_params("rotated issuer");
    let issuer_not_after = issuer_params.not_after.unix_timestamp();
    let issuer = issuer_params.signed_by(&issuer_key, &root_issuer).unwrap();
    MintedCa {
        root: Certificate::from_der(root.der().to_vec()).unwrap(),
        root_pem: root.pem(),
        issuer_pem: issuer.pem(),
        issuer_key_pem: issuer_key.serialize_pem(),
        issuer_not_after,
    }
}

fn write_ca(dir: &Path, ca: &MintedCa) {
    std::fs::write(dir.join("ca.crt"), &ca.root_pem).unwrap();
    std::fs::write(dir.join("issuer.crt"), &ca.issuer_pem).unwrap();
    std::fs::write(dir.join("issuer.key"), &ca.issuer_key_pem).unwrap();
}

/// `chain` is leaf + issuer, the leaf signed by the issuer and the issuer by `root`.
fn chains_to(chain: &[Certificate], root: &Certificate) -> bool {
    matches!(chain, [leaf, issuer, ..] if leaf.is_signed_by(issuer) && issuer.is_signed_by(root))
}

fn uri_sans(cert: &Certificate) -> Vec<String> {
    let parsed = cert.parsed();
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_issuer_credentials_are_used_for_signing_and_serving_without_a_restart() {
    let sentry = Sentry::start("replace").await;
    let generated =
        pem::decode_certificates(&std::fs::read(sentry.creds().join("ca.crt")).unwrap())
            .unwrap()
            .remove(0);
    let (signed, served) = sentry.sign().await;
    assert!(chains_to(&signed, &generated), "{}", sentry.child.output());
    assert!(chains_to(&served, &generated), "{}", sentry.child.output());
    // Generating the CA counts as a change; sentry's own writes do not cause a reload.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sentry
            .metric("dapr_sentry_issuercert_changed_total")
            .as_deref(),
        Some("1")
    );
    assert!(
        !sentry.child.output().contains("Issuer credentials changed"),
        "{}",
        sentry.child.output()
    );

    let rotated = mint_ca();
    write_ca(&sentry.creds(), &rotated);
    let deadline = Instant::now() + RELOAD;
    let signed = loop {
        let (signed, _) = sentry.sign().await;
        if chains_to(&signed, &rotated.root) {
            break signed;
        }
        assert!(chains_to(&signed, &generated), "{}", sentry.child.output());
        assert!(
            Instant::now() < deadline,
            "still signing with the old issuer\n{}",
            sentry.child.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        uri_sans(&signed[0]),
        ["spiffe://public/ns/default/myapp".to_owned()]
    );

    // The next handshake presents sentry's own certificate from the new issuer.
    let (_, served) = sentry.sign().await;
    assert!(
        chains_to(&served, &rotated.root),
        "{}",
        sentry.child.output()
    );
    assert_eq!(
        uri_sans(&served[0]),
        [format!("spiffe://{TRUST_DOMAIN}/ns/default/dapr-sentry")]
    );

    assert_eq!(
        sentry
            .metric("dapr_sentry_issuercert_expiry_timestamp")
            .as_deref(),
        Some(rotated.issuer_not_after.to_string().as_str())
    );
    let changed: u64 = sentry
        .metric("dapr_sentry_issuercert_changed_total")
        .unwrap()
        .parse()
        .unwrap();
    assert!(changed >= 2, "{changed}");
    let output = sentry.child.output();
    assert!(
        output.contains("Issuer credentials changed; reloading"),
        "{output}"
    );
    // The user's files are not rewritten.
    assert_eq!(
        std::fs::read_to_string(sentry.creds().join("issuer.key")).unwrap(),
        rotated.issuer_key_pem
    );
    sentry.child.signal("INT").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_replacement_credentials_make_sentry_exit_1_as_at_start() {
    let mut sentry = Sentry::start("invalid").await;
    // An issuer from one CA next to the root of another: the chain does not verify.
    let (one, other) = (mint_ca(), mint_ca());
    write_ca(
        &sentry.creds(),
        &MintedCa {
            root_pem: other.root_pem,
            ..one
        },
    );
    let status = tokio::task::block_in_place(|| sentry.child.wait_exit(RELOAD));
    assert_eq!(status.code(), Some(1), "{}", sentry.child.output());
    let output = sentry.child.output();
    assert!(
        output.contains("error creating CA: failed to get CA bundle: failed to verify CA bundle: issuer chain does not belong to trust anchors"),
        "{output}"
    );
}

/// The `alg` in a JWT's header.
fn jwt_alg(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap_or_default();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["alg"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_jwt_key_is_published_and_used_without_a_restart() {
    let oidc = free_port();
    let sentry = Sentry::start_with(
        "jwt",
        &[
            "-jwt-enabled=true".to_owned(),
            "-oidc-enabled=true".to_owned(),
            format!("-oidc-server-listen-port={oidc}"),
            "-oidc-server-listen-address=127.0.0.1".to_owned(),
            "-oidc-server-tls-enabled=false".to_owned(),
            // Only used for a key sentry did not generate (its own is always RS256).
            "-jwt-signing-algorithm=ES256".to_owned(),
        ],
    )
    .await;
    let discovery = || {
        let (status, body) =
            dapr_testing::http_get(oidc, "/.well-known/openid-configuration").unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id_token_signing_alg_values_supported"]
            .clone()
    };
    assert_eq!(discovery(), serde_json::json!(["RS256"]));
    let (response, _) = sentry.sign_with_audiences(vec!["aud".into()]).await;
    assert_eq!(
        jwt_alg(response.jwt.as_deref().unwrap_or_default()),
        "RS256"
    );

    // A user-supplied ECDSA P-256 key and its JWKS.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let point = key.public_key_raw();
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
    );
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "kid": "rotated"}]});
    std::fs::write(sentry.creds().join("jwt.key"), key.serialize_pem()).unwrap();
    std::fs::write(sentry.creds().join("jwks.json"), jwks.to_string()).unwrap();

    let deadline = Instant::now() + RELOAD;
    loop {
        let (_, body) = dapr_testing::http_get(oidc, "/jwks.json").unwrap();
        if body.contains(&x) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the old JWKS: {body}\n{}",
            sentry.child.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(discovery(), serde_json::json!(["ES256"]));
    let (response, _) = sentry.sign_with_audiences(vec!["aud".into()]).await;
    assert_eq!(
        jwt_alg(response.jwt.as_deref().unwrap_or_default()),
        "ES256"
    );
    sentry.child.signal("INT").unwrap();
}
