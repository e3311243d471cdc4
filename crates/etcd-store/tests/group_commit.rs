//! Group commit across members: writes that reach the leader and its followers at the same time
//! share Raft entries (a follower's forwarded writes join the leader's queue), and every one of
//! them is acknowledged with its own revision and readable on every member.

// The member-process harness; this binary uses part of it.
#[allow(dead_code)]
mod faults_support;

use std::collections::HashSet;

use faults_support::{Cluster, put, range_prefix};

/// Concurrent puts sent to each member.
const PER_MEMBER: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_every_member_share_raft_entries() {
    let cluster = Cluster::start("group-commit", 3, &[]);
    let all = cluster.indices();
    let leader = cluster.wait_for_leader(&all, None).await;
    let before = cluster
        .check("status", cluster.status(leader).await)
        .raft_index;

    let mut writes = Vec::new();
    for member in all.clone() {
        for n in 0..PER_MEMBER {
            let mut kv = cluster.kv(member);
            writes.push(tokio::spawn(async move {
                let key = format!("g/{member}/{n}");
                kv.put(put(&key, &key))
                    .await
                    .map(|r| r.into_inner().header.map_or(0, |h| h.revision))
                    .map_err(|e| format!("put {key}: {e}"))
            }));
        }
    }
    let mut revisions = HashSet::new();
    for write in writes {
        let revision = cluster.check("put", write.await.expect("put task"));
        assert!(
            revisions.insert(revision),
            "revision {revision} acknowledged twice"
        );
    }

    let total = 3 * PER_MEMBER;
    let after = cluster
        .check("status", cluster.status(leader).await)
        .raft_index;
    let entries = after - before;
    println!("{total} concurrent puts through 3 members took {entries} Raft entries");
    assert!(
        entries * 2 <= total as u64,
        "{total} concurrent puts took {entries} Raft entries: little or no group commit"
    );
    let revision = cluster.wait_converged(&all).await;
    for i in all {
        let read = range_prefix(&mut cluster.kv(i), "g/", true).await;
        let (at, kvs) = cluster.check(cluster.name(i), read);
        assert_eq!(at, revision);
        assert_eq!(kvs.len(), total, "{} misses writes", cluster.name(i));
        assert!(kvs.iter().all(|(k, v)| k == v));
    }
}
