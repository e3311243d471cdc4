//! Process-level faults of `dapr-etcd` members on loopback: SIGKILL a member in the middle of
//! writes, kill the leader, kill the whole cluster, kill a single member. Acknowledged writes
//! survive, restarted members catch up from their data directories, writes resume after an
//! election and lease expiry stays right across a full restart.

mod faults_support;

use std::time::{Duration, Instant};

use dapr_proto::etcd::etcdserverpb::{
    LeaseGrantRequest, LeaseLeasesRequest, LeaseTimeToLiveRequest, PutRequest,
};
use faults_support::{Cluster, POLL, put, range_prefix, writer::Writer};

/// Time the writer gets to reach each of its milestones.
const PROGRESS: Duration = Duration::from_secs(60);
/// Puts while a member is down: more than the 1000 entries a leader keeps behind its last snapshot
/// (openraft's `max_in_snapshot_log_to_keep`) plus one snapshot interval, so the leader has purged
/// what the member misses and must send it a snapshot.
const DOWNTIME_PUTS: usize = 1300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_member_mid_write_loses_no_acknowledged_write_and_it_catches_up_after_restart() {
    // Snapshots every 100 applied entries: the killed member restarts from a snapshot plus its WAL
    // tail, and the others purge their logs while it is away — they keep 1000 entries behind their
    // last snapshot, so a member more than `DOWNTIME_PUTS` behind catches up from a snapshot.
    let mut cluster = Cluster::start("mid-write", 3, &["--snapshot-count", "100"]);
    let all = cluster.indices();
    let leader = cluster.wait_for_leader(&all, None).await;
    // Write through a follower (its puts are forwarded to the leader); kill the other follower.
    let writes_to = (leader + 1) % 3;
    let victim = (leader + 2) % 3;

    let writing = Instant::now();
    let writer = Writer::spawn(cluster.kv(writes_to), "k/");
    cluster.check("before the kill", writer.wait_acks(200, PROGRESS).await);
    cluster.kill(victim);
    let at_kill = writer.acks();
    let during = writer.wait_acks(at_kill + DOWNTIME_PUTS, PROGRESS).await;
    cluster.check("while a member is down", during);
    cluster.restart(victim);
    let at_restart = writer.acks();
    // It catches up while the writes go on.
    let after = writer.wait_acks(at_restart + 100, PROGRESS).await;
    cluster.check("after the restart", after);
    let outcome = writer.stop().await;
    println!(
        "acknowledged {} puts in {:?} ({} before the kill, {} before the restart), {} failed",
        outcome.acked.len(),
        writing.elapsed(),
        at_kill,
        at_restart,
        outcome.failed.len()
    );

    let caught_up = Instant::now();
    let revision = cluster.wait_converged(&all).await;
    println!(
        "{} caught up to revision {revision} {:?} after the writes stopped",
        cluster.name(victim),
        caught_up.elapsed()
    );
    // One writer, one put at a time: each acknowledged revision is above the previous one.
    for pair in outcome.acked.windows(2) {
        assert!(pair[0].1 < pair[1].1, "revisions went backwards: {pair:?}");
    }
    for i in all {
        let read = range_prefix(&mut cluster.kv(i), "k/", true).await;
        let (at, kvs) = cluster.check(cluster.name(i), read);
        assert_eq!(
            at,
            revision,
            "{} reads at another revision",
            cluster.name(i)
        );
        for (n, _) in &outcome.acked {
            let key = format!("k/{n}");
            if kvs.get(&key) != Some(&n.to_string()) {
                cluster.fail(&format!(
                    "{} lost the acknowledged {key}: {:?}",
                    cluster.name(i),
                    kvs.get(&key)
                ));
            }
        }
        // Anything else is a put whose outcome the writer never learnt.
        for key in kvs.keys() {
            let n: u64 = key["k/".len()..].parse().expect("a writer key");
            assert!(
                outcome.acked.iter().any(|(a, _)| *a == n)
                    || outcome.failed.iter().any(|(f, _)| *f == n),
                "{} has {key}, never written",
                cluster.name(i)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_lets_writes_resume_after_a_new_election() {
    let mut cluster = Cluster::start("leader-kill", 3, &[]);
    let all = cluster.indices();
    let leader = cluster.wait_for_leader(&all, None).await;
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let mut kv = cluster.kv(survivors[0]);
    for i in 0..50 {
        let written = kv.put(put(&format!("k/{i}"), &i.to_string())).await;
        cluster.check("put before the kill", written);
    }

    cluster.kill(leader);
    let killed = Instant::now();
    // The first put a survivor acknowledges, retried until it is.
    let resumed = async {
        let mut kv = cluster.kv(survivors[0]);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match kv.put(put("after-election", "1")).await {
                Ok(_) => return (killed.elapsed(), attempts),
                Err(e) if killed.elapsed() > Duration::from_secs(15) => {
                    cluster.fail(&format!("no write succeeded 15 s after the kill: {e}"))
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    };
    let elected = async {
        let new = cluster.wait_for_leader(&survivors, Some(leader)).await;
        (new, killed.elapsed())
    };
    let ((resume, attempts), (new_leader, election)) = tokio::join!(resumed, elected);
    println!(
        "killed leader {}: {} elected after {election:?}, first put acknowledged after {resume:?} \
         ({attempts} attempts)",
        cluster.name(leader),
        cluster.name(new_leader)
    );
    assert!(
        resume < Duration::from_secs(15),
        "writes resumed after {resume:?}"
    );
    for i in 50..100 {
        let written = kv.put(put(&format!("k/{i}"), &i.to_string())).await;
        cluster.check("put after the election", written);
    }

    cluster.restart(leader);
    let restarted = Instant::now();
    let rejoined = cluster.wait_for_leader(&all, None).await;
    let revision = cluster.wait_converged(&all).await;
    println!(
        "{} rejoined under {} and converged at revision {revision} after {:?}",
        cluster.name(leader),
        cluster.name(rejoined),
        restarted.elapsed()
    );
    assert_ne!(
        rejoined, leader,
        "the old leader cannot lead without the newer log"
    );
    for i in all {
        let read = range_prefix(&mut cluster.kv(i), "", true).await;
        let (_, kvs) = cluster.check(cluster.name(i), read);
        let expected: Vec<String> = (0..100)
            .map(|n| format!("k/{n}"))
            .chain(["after-election".to_owned()])
            .collect();
        let mut keys: Vec<&String> = kvs.keys().collect();
        let mut want: Vec<&String> = expected.iter().collect();
        keys.sort();
        want.sort();
        if keys != want {
            cluster.fail(&format!("{} has {keys:?}", cluster.name(i)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_restart_keeps_all_data_and_lease_expiry_stays_correct() {
    const TTL: i64 = 6;
    let mut cluster = Cluster::start("full-restart", 3, &[]);
    let all = cluster.indices();
    cluster.wait_for_leader(&all, None).await;
    let mut kv = cluster.kv(0);
    for i in 0..100 {
        let written = kv.put(put(&format!("p/{i}"), &i.to_string())).await;
        cluster.check("put", written);
    }
    // The lease last, so it is far from expiring when the cluster dies.
    let granted = cluster
        .lease(0)
        .lease_grant(LeaseGrantRequest { ttl: TTL, id: 0 })
        .await;
    let lease = cluster.check("lease grant", granted).into_inner().id;
    let leased = PutRequest {
        lease,
        ..put("leased", "v")
    };
    let written = kv.put(leased).await;
    cluster.check("leased put", written);

    for i in &all {
        cluster.kill(*i);
    }
    for i in &all {
        cluster.restart(*i);
    }
    let restarted = Instant::now();
    cluster.wait_for_leader(&all, None).await;
    let elected = Instant::now();
    let election = elected - restarted;
    println!("the restarted cluster agreed on a leader after {election:?}");

    // Right after: every member serves everything (linearizable reads).
    for &i in &all {
        let mut kv = cluster.kv(i);
        let read = range_prefix(&mut kv, "", false).await;
        let (_, kvs) = cluster.check(cluster.name(i), read);
        assert_eq!(
            kvs.len(),
            101,
            "{} after the restart: {kvs:?}",
            cluster.name(i)
        );
        assert!((0..100).all(|n| kvs.get(&format!("p/{n}")) == Some(&n.to_string())));
        assert_eq!(kvs.get("leased").map(String::as_str), Some("v"));
    }
    let asked = LeaseTimeToLiveRequest {
        id: lease,
        keys: true,
    };
    let ttl = cluster.lease(1).lease_time_to_live(asked).await;
    let ttl = cluster.check("lease time-to-live", ttl).into_inner();
    println!(
        "after the restart: lease ttl {} s of {} s",
        ttl.ttl, ttl.granted_ttl
    );
    assert_eq!(ttl.granted_ttl, TTL, "{ttl:?}");
    // Promote gives the full TTL plus an election timeout (2 s).
    assert!(ttl.ttl > 0 && ttl.ttl <= TTL + 2, "{ttl:?}");
    assert_eq!(ttl.keys, [b"leased".to_vec()], "{ttl:?}");

    // A new leader gives every lease its full TTL again (etcd's Promote), so the key lives about
    // TTL more, and is revoked by TTL + election + a margin.
    let deadline = restarted + election + Duration::from_secs(TTL as u64 + 5);
    let gone = loop {
        let read = range_prefix(&mut cluster.kv(2), "leased", false).await;
        if cluster.check("range", read).1.is_empty() {
            break elected.elapsed();
        }
        if Instant::now() >= deadline {
            cluster.fail(&format!(
                "the lease did not expire within {:?} of the restart",
                deadline - restarted
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    println!("the leased key was revoked {gone:?} after the election (TTL {TTL} s)");
    assert!(
        gone >= Duration::from_secs(TTL as u64 - 1),
        "the lease expired {gone:?} after the election, before its TTL"
    );

    let revision = cluster.wait_converged(&all).await;
    for &i in &all {
        let read = range_prefix(&mut cluster.kv(i), "", true).await;
        let (at, kvs) = cluster.check(cluster.name(i), read);
        assert_eq!(at, revision);
        assert_eq!(kvs.len(), 100, "{}: {kvs:?}", cluster.name(i));
        assert!((0..100).all(|n| kvs.get(&format!("p/{n}")) == Some(&n.to_string())));
    }
    let asked = LeaseTimeToLiveRequest {
        id: lease,
        keys: false,
    };
    let ttl = cluster.lease(0).lease_time_to_live(asked).await;
    let ttl = cluster.check("lease time-to-live", ttl).into_inner();
    assert_eq!(ttl.ttl, -1, "the lease outlived its expiry: {ttl:?}");
    let leases = cluster.lease(0).lease_leases(LeaseLeasesRequest {}).await;
    let leases = cluster.check("lease leases", leases).into_inner();
    assert!(leases.leases.is_empty(), "{leases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_single_member_replays_its_wal_after_sigkill() {
    const PUTS: i64 = 1000;
    let mut cluster = Cluster::start("single", 1, &[]);
    cluster.wait_for_leader(&[0], None).await;
    let mut kv = cluster.kv(0);
    let started = Instant::now();
    let mut revisions = Vec::new();
    for i in 0..PUTS {
        let written = kv.put(put(&format!("k/{i}"), &i.to_string())).await;
        let reply = cluster.check("put", written).into_inner();
        revisions.push(reply.header.expect("header").revision);
    }
    println!(
        "{PUTS} sequential puts acknowledged in {:?}",
        started.elapsed()
    );
    let last = *revisions.last().expect("puts");
    assert_eq!(revisions, (last - PUTS + 1..=last).collect::<Vec<_>>());

    cluster.kill(0);
    cluster.restart(0);
    let restarted = Instant::now();
    cluster.wait_for_leader(&[0], None).await;
    println!("the member was back after {:?}", restarted.elapsed());
    let status = cluster.status(0).await;
    let status = cluster.check("status", status);
    assert_eq!(status.header.expect("header").revision, last);
    let read = range_prefix(&mut cluster.kv(0), "k/", false).await;
    let (at, kvs) = cluster.check("range", read);
    assert_eq!(at, last, "the revision changed across the restart");
    assert_eq!(kvs.len(), PUTS as usize);
    assert!((0..PUTS).all(|n| kvs.get(&format!("k/{n}")) == Some(&n.to_string())));
    let next = cluster.kv(0).put(put("next", "1")).await;
    let next = cluster.check("put after the restart", next).into_inner();
    assert_eq!(next.header.expect("header").revision, last + 1);
}
