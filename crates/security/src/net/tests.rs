use dapr_proto::sentry::v1::ca_client::CaClient;
use dapr_proto::sentry::v1::ca_server::{Ca as CaService, CaServer};
use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use tokio::sync::watch;

use super::*;
use crate::svid::Svid;
use crate::testutil::{Alg, Ca, Leaf};
use crate::tls;

#[test]
fn the_sni_is_the_host_part_of_the_address() {
    assert_eq!(
        host_of("dapr-sentry.dapr-system.svc:443"),
        "dapr-sentry.dapr-system.svc"
    );
    assert_eq!(host_of("127.0.0.1:50001"), "127.0.0.1");
    assert_eq!(host_of("[::1]:50001"), "::1");
    assert_eq!(host_of("localhost"), "localhost");
}

/// Answers with the caller's SPIFFE ID and address as the server saw them.
struct Echo;

#[tonic::async_trait]
impl CaService for Echo {
    async fn sign_certificate(
        &self,
        request: tonic::Request<SignCertificateRequest>,
    ) -> Result<tonic::Response<SignCertificateResponse>, tonic::Status> {
        let info = peer_info(&request).ok_or_else(|| tonic::Status::internal("no peer info"))?;
        let text = format!(
            "{} {}",
            info.peer_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            info.remote_addr.ip()
        );
        Ok(tonic::Response::new(SignCertificateResponse {
            workload_certificate: text.into_bytes(),
            ..Default::default()
        }))
    }
}

fn svid(leaf: &Leaf) -> watch::Sender<Option<Arc<Svid>>> {
    let svid = Svid::new(vec![leaf.certificate()], leaf.private_key(), None).unwrap();
    watch::channel(Some(Arc::new(svid))).0
}

#[tokio::test]
async fn grpc_over_mtls_hands_the_clients_spiffe_id_to_handlers() {
    let root = Ca::root(Alg::Ed25519);
    let server_id = "spiffe://cluster.local/ns/dapr-system/dapr-scheduler";
    let client_id = "spiffe://public/ns/default/myapp";
    let anchors = tls::fixed_anchors(root.anchors());
    let server_svid = svid(&root.leaf(Alg::Ed25519, server_id));
    let client_svid = svid(&root.leaf(Alg::P256, client_id));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_routes(
        tonic::service::Routes::new(CaServer::new(Echo)),
        listener,
        tls::server_config_mtls(anchors.clone(), server_svid.subscribe()),
        shutdown.clone(),
    ));

    let config = tls::client_config_mtls(
        anchors.clone(),
        client_svid.subscribe(),
        SpiffeId::parse(server_id).unwrap(),
    );
    let channel = connect_channel(&addr, config).await.unwrap();
    let answer = CaClient::new(channel)
        .sign_certificate(SignCertificateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8(answer.workload_certificate).unwrap(),
        format!("{client_id} 127.0.0.1")
    );

    // A lazy channel to the wrong ID fails on first use.
    let wrong = tls::client_config_mtls(
        anchors,
        client_svid.subscribe(),
        SpiffeId::parse(client_id).unwrap(),
    );
    let lazy = lazy_channel(&addr, wrong).unwrap();
    assert!(
        CaClient::new(lazy)
            .sign_certificate(SignCertificateRequest::default())
            .await
            .is_err()
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_accept_loop_drops_failed_handshakes_and_stops_on_shutdown() {
    let root = Ca::root(Alg::Ed25519);
    let server_svid = svid(&root.leaf(Alg::Ed25519, "spiffe://td/ns/a/b"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let acceptor = TlsAcceptor::from(tls::server_config_no_client_auth(server_svid.subscribe()));
    let mut accepted = accept_loop(listener, acceptor, shutdown.clone());

    // Plain bytes instead of a ClientHello: nothing is yielded for it.
    {
        use tokio::io::AsyncWriteExt as _;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    }
    // A real client gets through.
    let client = tls::client_config_no_client_auth(
        tls::fixed_anchors(root.anchors()),
        SpiffeId::parse("spiffe://td/ns/a/b").unwrap(),
    );
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("x").unwrap();
    let _client = TlsConnector::from(client).connect(name, tcp).await.unwrap();
    let (_, peer) = accepted.recv().await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");

    shutdown.cancel();
    assert!(accepted.recv().await.is_none());
}
