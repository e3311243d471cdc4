//! The Kubernetes client against in-process servers:
//! - over HTTPS like the suite's fake API server (cert for `cluster.local`, not the dialled host;
//!   mTLS with an Ed25519 PKCS#8 client key; kubeconfig with file paths);
//! - list+watch over plain HTTP with watches that end after one response, as the fake server's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dapr_kube_lite::{KubeClient, ListWatch, WatchEvent};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
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
    let head = read_head(&mut stream).await;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    head
}

async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the request head");
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A plain-HTTP fake API server: lists answer `list` (the first `failing_lists` with a 500);
/// each watch answers the next scripted body (or nothing) and then closes, as the suite's does.
#[derive(Clone, Default)]
struct FakeApi {
    list: String,
    failing_lists: Arc<Mutex<usize>>,
    watches: Arc<Mutex<VecDeque<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    async fn serve(self, listener: TcpListener) {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let head = read_head(&mut tcp).await;
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            self.requests.lock().unwrap().push(path.clone());
            let response = if path.contains("watch=true") {
                let body = self.watches.lock().unwrap().pop_front().unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}"
                )
            } else {
                let fail = {
                    let mut failing = self.failing_lists.lock().unwrap();
                    let fail = *failing > 0;
                    *failing = failing.saturating_sub(1);
                    fail
                };
                let (status, body) = if fail {
                    ("500 Internal Server Error", "{}")
                } else {
                    ("200 OK", self.list.as_str())
                };
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            tcp.write_all(response.as_bytes()).await.unwrap();
            tcp.shutdown().await.unwrap();
        }
    }
}

/// Starts `api` and writes a kubeconfig for it; the client and the temp dir to remove.
async fn plain_client(api: FakeApi, name: &str) -> (KubeClient, std::path::PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(api.serve(listener));
    let dir = std::env::temp_dir().join(format!("kube-lite-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\ncurrent-context: c\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
    let client = KubeClient::from_kubeconfig(&dir.join("kubeconfig")).unwrap();
    (client, dir)
}

fn namespace(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

#[tokio::test]
async fn list_watch_reports_the_list_then_watch_events_then_relists_when_the_watch_ends() {
    let api = FakeApi {
        list: json!({
            "kind": "NamespaceList",
            "metadata": {"resourceVersion": "7"},
            "items": [namespace("a")],
        })
        .to_string(),
        ..FakeApi::default()
    };
    // Two events in one response, the last without its newline.
    api.watches.lock().unwrap().push_back(format!(
        "{}\n{}",
        json!({"type": "ADDED", "object": namespace("b")}),
        json!({"type": "DELETED", "object": namespace("a")}),
    ));
    let (client, dir) = plain_client(api.clone(), "watch").await;
    let mut watch = ListWatch::new(client, "/api/v1/namespaces");
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("an event in time")
    };

    assert_eq!(next().await, WatchEvent::Listed(vec![namespace("a")]));
    assert_eq!(next().await, WatchEvent::Applied(namespace("b")));
    assert_eq!(next().await, WatchEvent::Deleted(namespace("a")));
    assert_eq!(next().await, WatchEvent::Listed(vec![namespace("a")]));
    let requests = api.requests.lock().unwrap().clone();
    assert_eq!(requests[0], "/api/v1/namespaces");
    assert_eq!(
        requests[1],
        "/api/v1/namespaces?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=7"
    );
    assert_eq!(requests[2], "/api/v1/namespaces");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn list_watch_retries_a_failed_list() {
    let api = FakeApi {
        list: json!({"kind": "NamespaceList", "items": [namespace("default")]}).to_string(),
        failing_lists: Arc::new(Mutex::new(2)),
        ..FakeApi::default()
    };
    let (client, dir) = plain_client(api.clone(), "retry").await;
    let mut watch = ListWatch::new(client, "/api/v1/namespaces");
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a list in time");
    assert_eq!(event, WatchEvent::Listed(vec![namespace("default")]));
    assert_eq!(api.requests.lock().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_kubeconfig_with_ed25519_mtls_and_a_tls_server_name_reaches_the_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca_cert, ca) = ca();
    let (server_cert, server_key) = leaf(&ca, "cluster.local", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&ca, "client", ExtendedKeyUsagePurpose::ClientAuth);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![
                server_cert.der().clone(),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();

    let dir = std::env::temp_dir().join(format!("kube-lite-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), client_cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), client_key.serialize_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster:\n    server: https://localhost:{port}\n    certificate-authority: {ca}\n    tls-server-name: cluster.local\ncontexts:\n- name: default\n  context:\n    cluster: default\n    user: default\nusers:\n- name: default\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncurrent-context: default\n",
        ca = dir.join("ca.crt").display(),
        crt = dir.join("tls.crt").display(),
        key = dir.join("tls.key").display(),
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();

    let server = tokio::spawn(serve_once(
        listener,
        Arc::new(tls),
        r#"{"kind":"PodList","items":[]}"#,
    ));
    let client = KubeClient::from_kubeconfig(&dir.join("kubeconfig")).unwrap();
    let list = client.get("/api/v1/pods").await.unwrap();
    assert_eq!(list["kind"], "PodList");
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /api/v1/pods HTTP/1.1\r\n"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}
