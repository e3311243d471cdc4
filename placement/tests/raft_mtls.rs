//! Election-only Raft over mTLS: rcgen-minted SVIDs (SPIFFE URI SANs), rustls's stock verifiers
//! standing in for dapr-security's SPIFFE checks.

mod raft_support;

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use placement::raft::RaftTls;
use raft_support::{ELECTION_DEADLINE, peers, start, start_one, wait_for_leader};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

const PLACEMENT_ID: &str = "spiffe://public/ns/default/dapr-placement";

struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "cluster.local");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// An SVID for `spiffe_id`, also valid for 127.0.0.1 (the stock server verifier checks it).
    fn leaf(&self, spiffe_id: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![
            SanType::URI(spiffe_id.try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert, key)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Transport TLS for one node: its SVID from `ca`, trusting only `ca`; counts authorizations.
fn tls(ca: &Ca, authorized: Arc<AtomicUsize>) -> RaftTls {
    let (cert, key) = ca.leaf(PLACEMENT_ID);
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .unwrap();
    let server = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.clone()], key.clone_key())
            .unwrap(),
    );
    let client = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .unwrap(),
    );
    RaftTls {
        server: Arc::new(move || server.clone()),
        client: Arc::new(move || client.clone()),
        authorize_client: Arc::new(move |certs| {
            authorized.fetch_add(1, Ordering::SeqCst);
            !certs.is_empty()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_over_mtls() {
    let ca = Ca::new();
    let authorized = Arc::new(AtomicUsize::new(0));
    let peers = peers(3);
    let mut nodes = start(&peers, |_| Some(tls(&ca, authorized.clone()))).await;
    let leader = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    assert_eq!(nodes.iter().filter(|n| n.is_leader()).count(), 1);
    assert!(authorized.load(Ordering::SeqCst) > 0);

    // Plain TCP and garbage at a TLS port are only a failed handshake.
    for node in &nodes {
        drop(TcpStream::connect(("127.0.0.1", node.port)).await.unwrap());
        let mut conn = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
        conn.write_all(&[0, 0, 0, 4, b'n', b'u', b'l', b'l'])
            .await
            .unwrap();
    }

    let old = nodes.remove(leader);
    old.stop().await.unwrap();
    wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    for node in nodes {
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_certificate_from_another_trust_root_cannot_take_part() {
    let ca = Ca::new();
    let rogue_ca = Ca::new();
    let authorized = Arc::new(AtomicUsize::new(0));
    let peers = peers(3);
    let rogue = start_one(
        &peers,
        &peers[2].id,
        Some(tls(&rogue_ca, authorized.clone())),
    )
    .await;
    let mut nodes = Vec::new();
    for peer in &peers[..2] {
        nodes.push(start_one(&peers, &peer.id, Some(tls(&ca, authorized.clone()))).await);
    }
    let leader = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    assert!(!rogue.is_leader());

    // The two good nodes are a quorum on their own, and the rogue never disturbs them.
    let settled = tokio::time::timeout(Duration::from_secs(4), async {
        let mut rx = rogue.leadership.clone();
        rx.wait_for(|leads| *leads).await.is_ok()
    })
    .await;
    assert!(settled.is_err(), "the rogue node became leader");
    assert!(nodes[leader].is_leader());
    assert!(!nodes[leader].run.is_finished());

    rogue.stop().await.unwrap();
    for node in nodes {
        node.stop().await.unwrap();
    }
}
