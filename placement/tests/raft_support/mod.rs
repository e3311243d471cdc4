//! In-process Raft clusters on loopback ports for the election tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use placement::{
    peers::Peer,
    raft::{Election, RaftError, RaftOptions, RaftTls},
};
use tokio::{sync::watch, task::JoinHandle, task::JoinSet};
use tokio_util::sync::CancellationToken;

/// Generous bound for an election on a loaded CI machine (upstream's tests allow 10–20 s).
pub const ELECTION_DEADLINE: Duration = Duration::from_secs(15);

/// One running node.
pub struct Node {
    pub id: String,
    pub port: u16,
    pub leadership: watch::Receiver<bool>,
    pub shutdown: CancellationToken,
    pub run: JoinHandle<Result<(), RaftError>>,
}

impl Node {
    pub fn is_leader(&self) -> bool {
        *self.leadership.borrow()
    }

    /// Cancels the node and returns what its `run` returned.
    pub async fn stop(self) -> Result<(), RaftError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.run)
            .await
            .expect("run returns promptly after shutdown")
            .expect("run task does not panic")
    }
}

/// `n` peers on free loopback ports.
pub fn peers(n: usize) -> Vec<Peer> {
    (0..n)
        .map(|i| Peer {
            id: format!("placement-{i}"),
            address: format!("127.0.0.1:{}", dapr_testing::free_port()),
        })
        .collect()
}

/// Binds and runs every peer of `peers`, each with `tls(i)`.
pub async fn start(peers: &[Peer], tls: impl Fn(usize) -> Option<RaftTls>) -> Vec<Node> {
    // Shown for failing tests only; RUST_LOG=openraft=debug for the Raft core's view.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_test_writer()
        .try_init();
    let mut nodes = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        nodes.push(start_one(peers, &peer.id, tls(i)).await);
    }
    nodes
}

/// Binds and runs the peer `id` of `peers`.
pub async fn start_one(peers: &[Peer], id: &str, tls: Option<RaftTls>) -> Node {
    let election = Election::bind(RaftOptions {
        id: id.to_owned(),
        peers: peers.to_vec(),
        tls,
    })
    .await
    .expect("binding the raft address");
    let port = election.local_addr().port();
    let leadership = election.leadership();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(election.run(shutdown.clone()));
    Node {
        id: id.to_owned(),
        port,
        leadership,
        shutdown,
        run,
    }
}

/// Waits until one of `nodes` leads and returns its index; panics after `deadline`.
pub async fn wait_for_leader(nodes: &[Node], deadline: Duration) -> usize {
    let mut waiting = JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut rx = node.leadership.clone();
        waiting.spawn(async move { rx.wait_for(|leads| *leads).await.map(|_| i) });
    }
    let found = tokio::time::timeout(deadline, async {
        while let Some(joined) = waiting.join_next().await {
            if let Ok(Ok(i)) = joined {
                return Some(i);
            }
        }
        None
    })
    .await;
    waiting.shutdown().await;
    found
        .expect("a leader is elected before the deadline")
        .expect("a node is still running")
}
