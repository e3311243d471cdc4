//! The binary end to end: generate a CA into an empty directory, serve `SignCertificate` over
//! TLS with sentry's own SPIFFE identity, and issue a workload certificate.

use std::sync::Arc;
use std::time::Duration;

use dapr_proto::sentry::v1::{SignCertificateRequest, ca_client::CaClient};
use dapr_security::{Certificate, pem};
use dapr_testing::{Child, free_port, wait_for_status};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;

const SENTRY: &str = env!("CARGO_BIN_EXE_sentry");
const START: Duration = Duration::from_secs(20);

/// Trusts exactly `anchors` and requires the leaf's only URI SAN to be `expected_id`; no DNS
/// name check (SVIDs carry none).
#[derive(Debug)]
struct SpiffeVerifier {
    anchors: Vec<Certificate>,
    expected_id: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let bad = |m: &str| rustls::Error::General(m.to_owned());
        let leaf = Certificate::from_der(end_entity.to_vec()).map_err(|e| bad(&e.to_string()))?;
        let issuer = Certificate::from_der(
            intermediates
                .first()
                .ok_or_else(|| bad("no issuer"))?
                .to_vec(),
        )
        .map_err(|e| bad(&e.to_string()))?;
        if !leaf.is_signed_by(&issuer) || !self.anchors.iter().any(|a| issuer.is_signed_by(a)) {
            return Err(bad("untrusted chain"));
        }
        let parsed = leaf.parsed();
        let san = parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .ok_or_else(|| bad("no SAN"))?;
        let uris: Vec<&str> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .collect();
        if uris != [self.expected_id.as_str()] {
            return Err(bad(&format!("unexpected SPIFFE ID {uris:?}")));
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

fn csr() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_ca_issues_a_workload_certificate_over_tls() {
    let dir = std::env::temp_dir().join(format!("sentry-tls-{}", std::process::id()));
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
        "-trust-domain=integration.test.dapr.io".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = Child::spawn(SENTRY, &args).unwrap();
    let ready =
        tokio::task::spawn_blocking(move || wait_for_status(healthz, "/healthz", 200, START))
            .await
            .unwrap();
    ready.unwrap_or_else(|e| panic!("{e:?}\n{}", child.output()));

    let anchors =
        pem::decode_certificates(&std::fs::read(dir.join("creds/ca.crt")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = SpiffeVerifier {
        anchors: anchors.clone(),
        expected_id: "spiffe://integration.test.dapr.io/ns/default/dapr-sentry".to_owned(),
        provider: Arc::clone(&provider),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
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
        .unwrap_or_else(|e| panic!("{e:?}\n{}", child.output()));

    let response = CaClient::new(channel)
        .sign_certificate(SignCertificateRequest {
            id: "myapp".into(),
            namespace: "default".into(),
            certificate_signing_request: csr(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let chain = pem::decode_certificate_chain(&response.workload_certificate).unwrap();
    assert_eq!(chain.len(), 2);
    assert!(anchors.iter().any(|a| chain[1].is_signed_by(a)));
    let leaf = chain[0].parsed();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(matches!(
        san.value.general_names.as_slice(),
        [GeneralName::URI("spiffe://public/ns/default/myapp")]
    ));
    assert_eq!(response.trust_chain_certificates.len(), 1);
    assert_eq!(
        response.valid_until.unwrap().seconds,
        leaf.validity().not_after.timestamp()
    );

    let (_, body) = dapr_testing::http_get(metrics, "/metrics").unwrap();
    assert!(
        body.contains("dapr_sentry_cert_sign_success_total 1"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("dapr_sentry_issuercert_expiry_timestamp ")),
        "{body}"
    );
    child.signal("INT").unwrap();
}
