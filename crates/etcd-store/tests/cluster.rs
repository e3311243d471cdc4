//! Replication and durability of the store, driven through [`Node`] in-process: writes on any
//! member, leader loss, restarts from the data directory, leases across restarts.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use dapr_etcd_store::{
    mvcc::{Command, LeaseGrantRequest, PutRequest, RangeRequest, Response, StoreConfig},
    node::{Node, NodeConfig},
};
use dapr_testing::free_port;
use tokio_util::sync::CancellationToken;

const SETTLE: Duration = Duration::from_secs(20);

struct Member {
    config: NodeConfig,
    node: Node,
    token: CancellationToken,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dapr-etcd-cluster-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn configs(names: &[&str], root: &Path) -> Vec<NodeConfig> {
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let cluster: Vec<(String, String)> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| ((*n).to_owned(), format!("http://127.0.0.1:{p}")))
        .collect();
    names
        .iter()
        .zip(&ports)
        .map(|(n, p)| NodeConfig {
            name: (*n).to_owned(),
            initial_cluster: cluster.clone(),
            peer_listen: format!("127.0.0.1:{p}"),
            data_dir: root.join(n),
            store: StoreConfig::default(),
            snapshot_count: 10_000,
            auto_compaction: dapr_etcd_store::compactor::AutoCompaction::Off,
            peer_tls: None,
        })
        .collect()
}

async fn start(config: NodeConfig) -> Member {
    let token = CancellationToken::new();
    let node = Node::start(config.clone(), token.clone()).await.unwrap();
    Member {
        config,
        node,
        token,
    }
}

async fn stop(member: Member) -> NodeConfig {
    member.token.cancel();
    member.node.stop().await;
    member.config
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

async fn get(node: &Node, key: &str) -> Option<String> {
    node.linearize().await.unwrap();
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

/// Waits until `node` has applied at least `revision`.
async fn caught_up(node: &Node, revision: i64) {
    tokio::time::timeout(SETTLE, async {
        loop {
            if node.machine().read().revision() >= revision {
                return;
            }
            let mut applied = node.machine().applied_index();
            let _ = tokio::time::timeout(Duration::from_millis(100), applied.changed()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("member {} never reached revision {revision}", node.name()));
}

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
async fn a_single_member_keeps_every_acknowledged_write_across_a_restart() {
    let root = temp_dir("single");
    let config = configs(&["solo"], &root).remove(0);
    let member = start(config).await;
    let mut last = 0;
    for i in 0..50 {
        last = put(&member.node, &format!("k{i}"), &format!("v{i}")).await;
    }
    let config = stop(member).await;

    let member = start(config).await;
    caught_up(&member.node, last).await;
    assert_eq!(member.node.machine().read().revision(), last);
    assert_eq!(get(&member.node, "k49").await.as_deref(), Some("v49"));
    // New writes continue the revision sequence.
    assert_eq!(put(&member.node, "after", "x").await, last + 1);
    stop(member).await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_survive_losing_the_leader_and_a_restarted_member_catches_up() {
    let root = temp_dir("three");
    let mut configs = configs(&["a", "b", "c"], &root).into_iter();
    let (ca, cb, cc) = (
        configs.next().unwrap(),
        configs.next().unwrap(),
        configs.next().unwrap(),
    );
    let (a, b, c) = tokio::join!(start(ca), start(cb), start(cc));
    let mut members = vec![a, b, c];
    let l = leader(&members.iter().collect::<Vec<_>>()).await;
    let follower = (l + 1) % 3;

    // A write on a follower is forwarded to the leader.
    let rev = put(&members[follower].node, "from-follower", "1").await;
    for m in &members {
        caught_up(&m.node, rev).await;
    }

    // Lose the leader: the other two elect a new one and keep accepting writes.
    let old = members.remove(l);
    let old_config = stop(old).await;
    let survivors: Vec<&Member> = members.iter().collect();
    let new_leader = leader(&survivors).await;
    let mut last = 0;
    for i in 0..20 {
        last = put(&members[(new_leader + i) % 2].node, &format!("k{i}"), "v").await;
    }

    // The old leader comes back from its directory and catches up.
    let back = start(old_config).await;
    caught_up(&back.node, last).await;
    assert_eq!(get(&back.node, "k19").await.as_deref(), Some("v"));
    assert_eq!(get(&back.node, "from-follower").await.as_deref(), Some("1"));

    members.push(back);
    for m in members {
        stop(m).await;
    }
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_survives_a_full_restart_and_then_expires_with_its_keys() {
    let root = temp_dir("lease");
    let config = configs(&["solo"], &root).remove(0);
    let member = start(config).await;
    let reply = member
        .node
        .write(Command::LeaseGrant(LeaseGrantRequest {
            id: 0,
            ttl: 5,
            now_ms: 0,
        }))
        .await
        .unwrap();
    let Some(Ok(Response::LeaseGrant(grant))) = reply.result else {
        panic!("{reply:?}");
    };
    let mut req = PutRequest::new("leased", "v");
    req.lease = grant.id;
    member.node.write(Command::Put(req)).await.unwrap();
    let config = stop(member).await;

    let member = start(config).await;
    // Right after the restart the lease and its key are still there (a new leader gives every
    // lease its full TTL again) ...
    assert_eq!(get(&member.node, "leased").await.as_deref(), Some("v"));
    assert_eq!(member.node.machine().read().leases(), vec![grant.id]);
    // ... and it expires later, taking the key with it.
    tokio::time::timeout(Duration::from_secs(15), async {
        while get(&member.node, "leased").await.is_some() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the leased key never expired");
    assert!(member.node.machine().read().leases().is_empty());
    stop(member).await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_auto_compaction_drops_history_older_than_the_retention() {
    let root = temp_dir("compaction");
    let mut config = configs(&["solo"], &root).remove(0);
    config.auto_compaction =
        dapr_etcd_store::compactor::AutoCompaction::Period(Duration::from_millis(500));
    let member = start(config).await;
    let first = put(&member.node, "k", "v1").await;
    put(&member.node, "k", "v2").await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while member.node.machine().read().compact_revision() < first {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the leader never compacted");
    let old = member.node.machine().read().range(&RangeRequest {
        key: b"k".to_vec(),
        revision: first,
        ..RangeRequest::default()
    });
    // Reading at the compaction revision itself is still allowed; anything older is gone.
    if member.node.machine().read().compact_revision() > first {
        assert!(old.is_err(), "{old:?}");
    }
    assert_eq!(get(&member.node, "k").await.as_deref(), Some("v2"));
    stop(member).await;
    let _ = std::fs::remove_dir_all(root);
}
