//! Sentry's outbound HTTPS against an in-process server with Ed25519 certificates: the jwks
//! validator fetching its key set from an HTTPS URL with an inline custom CA. (The Kubernetes
//! client's own TLS test lives in `dapr-kube-lite`.)

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

fn ca() -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    (cert, Issuer::new(p, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    dns: &str,
    eku: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut p = CertificateParams::new(vec![dns.to_owned()]).unwrap();
    p.extended_key_usages = vec![eku];
    (p.signed_by(&key, issuer).unwrap(), key)
}

/// Answers every request on one connection with `body`, after recording the request head.
async fn serve_once(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    body: &'static str,
) -> String {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut stream = tokio_rustls::TlsAcceptor::from(tls)
        .accept(tcp)
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the request head");
        head.extend_from_slice(&buf[..n]);
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn the_jwks_validator_fetches_over_https_with_an_inline_ca() {
    use sentry::validator::jwks::{JwksOptions, JwksValidator};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca_cert, ca) = ca();
    let (server_cert, server_key) = leaf(&ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"mykey","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    let server = tokio::spawn(serve_once(listener, Arc::new(tls), jwks));

    let options = JwksOptions::parse(&[
        ("source".into(), format!("https://localhost:{port}/")),
        ("caCertificate".into(), ca_cert.pem()),
        ("requestTimeout".into(), "5s".into()),
    ])
    .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let validator = JwksValidator::start(
        options,
        "spiffe://localhost/ns/default/dapr-sentry".into(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let head = server.await.unwrap();
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    // The fetched set is in use: a token with its kid but a bad signature is refused by
    // signature, not by a missing key.
    let req = dapr_proto::sentry::v1::SignCertificateRequest {
        id: "myapp".into(),
        namespace: "default".into(),
        certificate_signing_request: b"csr".to_vec(),
        token: "eyJhbGciOiJFZERTQSIsImtpZCI6Im15a2V5In0.e30.AAAA".into(),
        ..Default::default()
    };
    let err = validator
        .validate(&req, std::time::SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not verify message"), "{err}");
    shutdown.cancel();
}
