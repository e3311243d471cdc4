//! The peer transport over mTLS, driven through [`Node`] in-process: `https` peer URLs with the
//! scheduler's SVIDs and the production SPIFFE configs from `dapr_security::tls` (the server
//! takes an SVID of any trust domain under the anchors; the client requires the server to be
//! exactly the scheduler's id), rcgen-minted CAs standing in for sentry.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use dapr_etcd_store::{
    mvcc::{Command, PutRequest, RangeRequest, Response, StoreConfig},
    node::{Node, NodeConfig, NodeError, PeerTls},
    raft::network::{PeerRequest, PeerResponse, Peers},
};
use dapr_security::{Certificate, PrivateKey, SpiffeId, Svid, TrustAnchors, tls};
use dapr_testing::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the scheduler's members present to each other (`security.control_plane_id`).
const SCHEDULER_ID: &str = "spiffe://public/ns/default/dapr-scheduler";
/// Bounds an election or a member catching up; generous for 2 busy cores.
const SETTLE: Duration = Duration::from_secs(20);
/// How long a member cut off by TLS is watched for a write it must never apply.
const EXCLUDED_FOR: Duration = Duration::from_secs(3);

/// Panics on tokio worker threads, i.e. in spawned tasks (tokio swallows those; a test's own
/// assertions run on its thread and are not counted).
static TASK_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_task_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                TASK_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn assert_no_task_panicked() {
    assert_eq!(
        TASK_PANICS.load(Ordering::SeqCst),
        0,
        "a spawned task panicked"
    );
}

/// A trust root standing in for sentry's.
struct Ca {
    pem: String,
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
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// An X.509-SVID for `spiffe_id` (no DNS or IP SAN: the SPIFFE verifiers ignore names).
    fn svid(&self, spiffe_id: &str) -> Svid {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Svid::new(
            vec![Certificate::from_der(cert.der().to_vec()).unwrap()],
            PrivateKey::from_pkcs8(key.serialize_der()).unwrap(),
            None,
        )
        .unwrap()
    }

    fn anchors(&self) -> tls::AnchorsReceiver {
        tls::fixed_anchors(TrustAnchors::from_pem(self.pem.as_bytes()).unwrap())
    }
}

/// A member's peer TLS as the scheduler builds it (`server_config_mtls` / `client_config`):
/// its SVID from `issuer`, trusting only `trusted`.
fn peer_tls(issuer: &Ca, trusted: &Ca) -> PeerTls {
    peer_tls_as(issuer, trusted, SCHEDULER_ID)
}

/// Like [`peer_tls`], with an SVID for `id`.
fn peer_tls_as(issuer: &Ca, trusted: &Ca, id: &str) -> PeerTls {
    let svid = watch::channel(Some(Arc::new(issuer.svid(id)))).1;
    PeerTls {
        server: tls::server_config_mtls(trusted.anchors(), svid.clone()),
        client: tls::client_config_mtls(
            trusted.anchors(),
            svid,
            SpiffeId::parse(SCHEDULER_ID).unwrap(),
        ),
        peer_id: Some(SpiffeId::parse(SCHEDULER_ID).unwrap()),
    }
}

struct Member {
    node: Node,
    token: CancellationToken,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dapr-etcd-peer-tls-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// One config per entry of `tls`, all with `https` peer URLs on loopback.
fn configs(root: &Path, tls: Vec<PeerTls>) -> Vec<NodeConfig> {
    let ports: Vec<u16> = tls.iter().map(|_| free_port()).collect();
    let cluster: Vec<(String, String)> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("scheduler-{i}"), format!("https://127.0.0.1:{p}")))
        .collect();
    tls.into_iter()
        .zip(&cluster)
        .zip(&ports)
        .map(|((tls, (name, _)), port)| NodeConfig {
            name: name.clone(),
            initial_cluster: cluster.clone(),
            peer_listen: format!("127.0.0.1:{port}"),
            data_dir: root.join(name),
            store: StoreConfig::default(),
            snapshot_count: 10_000,
            auto_compaction: dapr_etcd_store::compactor::AutoCompaction::Off,
            peer_tls: Some(tls),
        })
        .collect()
}

async fn start(config: NodeConfig) -> Member {
    let token = CancellationToken::new();
    let node = Node::start(config, token.clone()).await.unwrap();
    Member { node, token }
}

async fn start_all(configs: Vec<NodeConfig>) -> Vec<Member> {
    let mut configs = configs.into_iter();
    let (a, b, c) = (
        configs.next().unwrap(),
        configs.next().unwrap(),
        configs.next().unwrap(),
    );
    let (a, b, c) = tokio::join!(start(a), start(b), start(c));
    vec![a, b, c]
}

async fn stop(members: Vec<Member>) {
    for member in members {
        member.token.cancel();
        member.node.stop().await;
    }
}

async fn put(node: &Node, key: &str, value: &str) -> i64 {
    let reply = node
        .write(Command::Put(PutRequest::new(key, value)))
        .await
        .unwrap();
    assert!(
        matches!(reply.result, Some(Ok(Response::Put(_)))),
        "{reply:?}"
    );
    reply.revision
}

/// The value of `key` in `node`'s applied state, without a read barrier.
fn local(node: &Node, key: &str) -> Option<String> {
    let store = node.machine().read();
    let resp = store
        .range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        })
        .unwrap();
    resp.kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

/// A linearizable read (on a follower, a read-index round trip to the leader).
async fn get(node: &Node, key: &str) -> Option<String> {
    node.linearize().await.unwrap();
    local(node, key)
}

/// Waits until `node` has applied at least `revision`.
async fn caught_up(node: &Node, revision: i64) {
    tokio::time::timeout(SETTLE, async {
        let mut applied = node.machine().applied_index();
        while node.machine().read().revision() < revision {
            let _ = tokio::time::timeout(Duration::from_millis(100), applied.changed()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("member {} never reached revision {revision}", node.name()));
}

/// The index in `members` of the one that leads.
async fn leader(members: &[&Member]) -> usize {
    tokio::time::timeout(SETTLE, async {
        loop {
            for (i, m) in members.iter().enumerate() {
                if m.node.raft_status().0 == Some(m.node.id()) {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no leader elected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_mtls_elect_replicate_and_forward_a_followers_write() {
    count_task_panics();
    let root = temp_dir("three");
    let ca = Ca::new();
    let tls = (0..3).map(|_| peer_tls(&ca, &ca)).collect();
    let members = start_all(configs(&root, tls)).await;
    let l = leader(&members.iter().collect::<Vec<_>>()).await;
    let follower = (l + 1) % 3;

    put(&members[l].node, "via-leader", "1").await;
    for m in &members {
        assert_eq!(get(&m.node, "via-leader").await.as_deref(), Some("1"));
    }

    // The follower forwards its write to the leader over the TLS peer channel.
    let rev = put(&members[follower].node, "via-follower", "2").await;
    for m in &members {
        caught_up(&m.node, rev).await;
        assert_eq!(get(&m.node, "via-follower").await.as_deref(), Some("2"));
    }

    stop(members).await;
    assert_no_task_panicked();
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_certificate_from_another_ca_never_joins_and_the_other_two_carry_on() {
    count_task_panics();
    let root = temp_dir("foreign");
    let (ca, foreign) = (Ca::new(), Ca::new());
    let tls = vec![
        peer_tls(&ca, &ca),
        peer_tls(&ca, &ca),
        peer_tls(&foreign, &foreign),
    ];
    let members = start_all(configs(&root, tls)).await;
    let good: Vec<&Member> = members[..2].iter().collect();
    let rogue = &members[2].node;

    // Two of three are a quorum: they elect and take writes through either of them.
    let l = leader(&good).await;
    put(&good[l].node, "first", "1").await;
    let rev = put(&good[1 - l].node, "second", "2").await;
    for m in &good {
        caught_up(&m.node, rev).await;
        assert_eq!(get(&m.node, "second").await.as_deref(), Some("2"));
    }

    // The rogue never sees them, and its own write fails cleanly for want of a leader.
    let applied = tokio::time::timeout(EXCLUDED_FOR, async {
        let mut applied = rogue.machine().applied_index();
        while local(rogue, "first").is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(100), applied.changed()).await;
        }
    });
    let write = tokio::time::timeout(
        SETTLE,
        rogue.write(Command::Put(PutRequest::new("rogue", "x"))),
    );
    let (applied, write) = tokio::join!(applied, write);
    assert!(applied.is_err(), "the foreign-CA member applied a write");
    assert_eq!(local(rogue, "second"), None);
    assert!(
        matches!(write, Ok(Err(NodeError::NoLeader))),
        "a write on the foreign-CA member: {write:?}"
    );
    assert_ne!(rogue.raft_status().0, Some(rogue.id()));
    for m in &good {
        assert_eq!(local(&m.node, "rogue"), None);
    }
    // The good pair still has its leader.
    assert_eq!(leader(&good).await, l);

    stop(members).await;
    assert_no_task_panicked();
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_member_answers_only_an_authenticated_tls_peer() {
    count_task_panics();
    let root = temp_dir("plaintext");
    let ca = Ca::new();
    let tls = (0..3).map(|_| peer_tls(&ca, &ca)).collect();
    let configs = configs(&root, tls);
    let https = configs[0].initial_cluster[0].1.clone();
    let hostport = https.trim_start_matches("https://").to_owned();
    let members = start_all(configs).await;
    leader(&members.iter().collect::<Vec<_>>()).await;

    let call = |url: String, client| async move {
        let peers = Peers::new([(1, url)].into_iter().collect(), client);
        peers
            .call(1, &PeerRequest::ReadIndex, Duration::from_secs(5))
            .await
    };

    // The scheduler's own client gets an answer ...
    let good = call(https.clone(), Some(peer_tls(&ca, &ca).client)).await;
    assert!(matches!(good, Ok(PeerResponse::ReadIndex(_))));

    // ... a plaintext peer and a TLS client without a certificate do not.
    let plaintext = call(format!("http://{hostport}"), None).await;
    let Err(error) = plaintext else {
        panic!("a plaintext peer got an answer from an https member");
    };
    println!("plaintext peer: {error}");
    let anonymous =
        tls::client_config_no_client_auth(ca.anchors(), SpiffeId::parse(SCHEDULER_ID).unwrap());
    let Err(error) = call(https.clone(), Some(anonymous)).await else {
        panic!("a peer without a client certificate got an answer");
    };
    println!("peer without a certificate: {error}");
    // ... nor does another workload holding an SVID from the same trust root.
    let other = peer_tls_as(&ca, &ca, "spiffe://public/ns/default/some-app").client;
    let Err(error) = call(https.clone(), Some(other)).await else {
        panic!("a peer with another workload's SVID got an answer");
    };
    println!("peer with another workload's id: {error}");

    stop(members).await;
    assert_no_task_panicked();
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_finishes_the_tls_handshake_is_redialled() {
    count_task_panics();
    let ca = Ca::new();
    // A frozen member: the kernel completes the TCP handshake, nobody answers the ClientHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, mut accepts) = watch::channel(0_usize);
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            accepted.send_replace(held.len());
        }
    });
    let peers = Peers::new(
        [(1, format!("https://127.0.0.1:{port}"))]
            .into_iter()
            .collect(),
        Some(peer_tls(&ca, &ca).client),
    );
    let started = std::time::Instant::now();
    let redialled = tokio::time::timeout(SETTLE, async {
        loop {
            let call = peers.call(1, &PeerRequest::ReadIndex, Duration::from_millis(500));
            assert!(call.await.is_err(), "the frozen peer answered");
            if *accepts.borrow_and_update() >= 2 {
                return;
            }
        }
    })
    .await;
    println!("redialled after {:?}", started.elapsed());
    holder.abort();
    assert!(
        redialled.is_ok(),
        "the stalled handshake was never given up"
    );
    assert_no_task_panicked();
}
