use rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::testutil::{Alg, Ca, Leaf};

const SERVER: &str = "spiffe://cluster.local/ns/dapr-system/dapr-placement";
const CLIENT: &str = "spiffe://public/ns/default/myapp";

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn svid(leaf: &Leaf, issuer: &Ca) -> watch::Sender<Option<Arc<Svid>>> {
    let chain = vec![
        leaf.certificate(),
        crate::pem::Certificate::from_der(issuer.der().to_vec()).unwrap(),
    ];
    let svid = Svid::new(chain, leaf.private_key(), None).unwrap();
    watch::channel(Some(Arc::new(svid))).0
}

/// Runs one handshake over an in-memory pipe; returns the client ID the server saw and the
/// server ID the client saw, or the first error.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> Result<(Option<SpiffeId>, SpiffeId), String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let accept = TlsAcceptor::from(server).accept(a);
    let name = ServerName::try_from("any.name.invalid").unwrap();
    let connect = TlsConnector::from(client).connect(name, b);
    let (accepted, connected) = tokio::join!(accept, connect);
    let (accepted, connected) = match (accepted, connected) {
        (Ok(a), Ok(c)) => (a, c),
        (a, c) => {
            return Err(format!(
                "server: {:?}; client: {:?}",
                a.err().map(|e| e.to_string()),
                c.err().map(|e| e.to_string())
            ));
        }
    };
    let seen_client = accepted
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| crate::verify::peer_spiffe_id(c).unwrap());
    let seen_server =
        crate::verify::peer_spiffe_id(connected.get_ref().1.peer_certificates().unwrap()).unwrap();
    assert_eq!(
        accepted.get_ref().1.alpn_protocol(),
        connected.get_ref().1.alpn_protocol()
    );
    Ok((seen_client, seen_server))
}

#[tokio::test]
async fn mtls_peers_see_each_others_spiffe_ids_with_every_key_type() {
    for alg in [Alg::Ed25519, Alg::P256, Alg::P384, Alg::Rsa] {
        let root = Ca::root(Alg::Ed25519);
        let issuer = root.intermediate(alg);
        let anchors = fixed_anchors(root.anchors());
        let server_svid = svid(&issuer.leaf(alg, SERVER), &issuer);
        let client_svid = svid(&issuer.leaf(alg, CLIENT), &issuer);
        let server = server_config_mtls(anchors.clone(), server_svid.subscribe());
        let client = client_config_mtls(anchors, client_svid.subscribe(), id(SERVER));
        let (seen_client, seen_server) = handshake(server, client).await.unwrap();
        assert_eq!(seen_client, Some(id(CLIENT)), "{alg:?}");
        assert_eq!(seen_server, id(SERVER), "{alg:?}");
    }
}

#[tokio::test]
async fn tls12_handshakes_verify_rsa_ecdsa_and_ed25519_signatures() {
    for alg in [Alg::Ed25519, Alg::P256, Alg::Rsa] {
        let root = Ca::root(alg);
        let anchors = fixed_anchors(root.anchors());
        let server_svid = svid(&root.leaf(alg, SERVER), &root);
        let client_svid = svid(&root.leaf(alg, CLIENT), &root);
        let server = server_config_mtls(anchors.clone(), server_svid.subscribe());
        let mut client = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
                anchors,
                id(SERVER),
            )))
            .with_client_cert_resolver(Arc::new(SvidResolver::new(client_svid.subscribe())));
        client.alpn_protocols = vec![b"h2".to_vec()];
        let (seen_client, _) = handshake(server, Arc::new(client)).await.unwrap();
        assert_eq!(seen_client, Some(id(CLIENT)), "{alg:?}");
    }
}

#[tokio::test]
async fn a_client_expecting_another_id_refuses_the_server() {
    let root = Ca::root(Alg::Ed25519);
    let anchors = fixed_anchors(root.anchors());
    let server_svid = svid(&root.leaf(Alg::Ed25519, SERVER), &root);
    let server = server_config_no_client_auth(server_svid.subscribe());
    let client = client_config_no_client_auth(
        anchors,
        id("spiffe://cluster.local/ns/dapr-system/dapr-sentry"),
    );
    let err = handshake(server, client).await.unwrap_err();
    assert!(err.contains("UnexpectedId"), "{err}");
}

#[tokio::test]
async fn an_mtls_server_refuses_clients_without_a_trusted_svid() {
    let root = Ca::root(Alg::Ed25519);
    let anchors = fixed_anchors(root.anchors());
    let server_svid = svid(&root.leaf(Alg::Ed25519, SERVER), &root);
    let server = server_config_mtls(anchors.clone(), server_svid.subscribe());

    let anonymous = client_config_no_client_auth(anchors.clone(), id(SERVER));
    let err = handshake(Arc::clone(&server), anonymous).await.unwrap_err();
    assert!(err.starts_with("server: Some("), "{err}");

    let stranger = Ca::root(Alg::Ed25519);
    let foreign = svid(&stranger.leaf(Alg::Ed25519, CLIENT), &stranger);
    let client = client_config_mtls(anchors, foreign.subscribe(), id(SERVER));
    let err = handshake(server, client).await.unwrap_err();
    assert!(err.contains("unknown authority"), "{err}");
}

#[tokio::test]
async fn a_renewed_svid_and_reloaded_anchors_apply_to_the_next_handshake() {
    let old_root = Ca::root(Alg::Ed25519);
    let new_root = Ca::root(Alg::Ed25519);
    let (anchors_tx, anchors) = watch::channel(Arc::new(old_root.anchors()));
    let server_svid = svid(&old_root.leaf(Alg::Ed25519, SERVER), &old_root);
    let client_svid = svid(&old_root.leaf(Alg::Ed25519, CLIENT), &old_root);
    let server = server_config_mtls(anchors.clone(), server_svid.subscribe());
    let client = client_config_mtls(anchors, client_svid.subscribe(), id(SERVER));
    handshake(Arc::clone(&server), Arc::clone(&client))
        .await
        .unwrap();

    // Rotate everything to the new root: the same configs now only accept new-root SVIDs.
    anchors_tx.send_replace(Arc::new(new_root.anchors()));
    let err = handshake(Arc::clone(&server), Arc::clone(&client))
        .await
        .unwrap_err();
    assert!(err.contains("unknown authority"), "{err}");
    server_svid.send_replace(
        svid(&new_root.leaf(Alg::Ed25519, SERVER), &new_root)
            .borrow()
            .clone(),
    );
    client_svid.send_replace(
        svid(&new_root.leaf(Alg::Ed25519, CLIENT), &new_root)
            .borrow()
            .clone(),
    );
    handshake(server, client).await.unwrap();
}

#[tokio::test]
async fn without_an_svid_the_server_has_no_certificate_to_serve() {
    let root = Ca::root(Alg::Ed25519);
    let anchors = fixed_anchors(root.anchors());
    let none = watch::channel(None).0;
    let server = server_config_no_client_auth(none.subscribe());
    let client = client_config_no_client_auth(anchors, id(SERVER));
    assert!(handshake(server, client).await.is_err());
}
