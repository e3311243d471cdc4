//! Leader failover with real processes: SIGKILL the leader of a 3-replica cluster while simulated
//! daprds (spec §9, §8.11) are connected, and check that every daprd gets a full table from the
//! new leader.

mod failover_support;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use dapr_proto::placement::v1::{Host, placement_client::PlacementClient};
use failover_support::{Cluster, Event, PROCESS, host_name, spread, start_daprds, wait_for_tables};
use placement::raft::{ELECTION_TIMEOUT_MAX, LEADER_LEASE};
use tonic::Code;

/// Upstream's integration tests allow 10–20 s for a 3-replica election.
const ELECTION: Duration = Duration::from_secs(20);
/// Bound for every daprd to hold a full table (the brief's "generous" bound).
const CONVERGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_leader_is_killed_a_survivor_leads_and_every_daprd_gets_a_full_table_from_it() {
    const DAPRDS: usize = 20;
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_one_leader(&[0, 1, 2], ELECTION);
    let want: BTreeSet<String> = (1..=DAPRDS).map(host_name).collect();

    let attached = Instant::now();
    let (daprds, mut events) = start_daprds(DAPRDS, &cluster.grpc_addresses());
    let (initial, _) = wait_for_tables(&mut events, DAPRDS, &want, attached, None, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("before the kill: {e}\n{}", cluster.dump()));
    let mut initial: Vec<Duration> = initial.iter().map(|t| *t - attached).collect();

    let old = cluster.nodes[leader].id.clone();
    let killed = cluster.nodes[leader].kill();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (new_leader, seen) = cluster.wait_for_one_leader(&survivors, ELECTION);
    let new = cluster.nodes[new_leader].id.clone();
    assert_ne!(new, old, "the killed node cannot lead");
    let (firsts, log) = wait_for_tables(&mut events, DAPRDS, &want, killed, Some(leader), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("after killing {old}: {e}\n{}", cluster.dump()));
    let mut failover: Vec<Duration> = firsts.iter().map(|t| *t - killed).collect();
    assert!(
        failover.iter().all(|d| *d < CONVERGE),
        "{failover:?}\n{}",
        cluster.dump()
    );

    // Every table applied after the kill came from the new leader, and it is still the only one.
    let after_kill = |e: &&(Instant, Event)| e.0 >= killed;
    for (_, event) in log.iter().filter(after_kill) {
        if let Event::Applied { daprd, server, .. } = event {
            assert_eq!(
                *server, new_leader,
                "daprd {daprd} applied a table from a node that does not lead: {event:?}"
            );
        }
    }
    // Only the new leader accepted streams, and only the dead node failed to dial.
    for (_, event) in log.iter().filter(after_kill) {
        match event {
            Event::Connected { daprd, server } => assert_eq!(
                *server,
                new_leader,
                "daprd {daprd} was accepted by a node that does not lead\n{}",
                cluster.dump()
            ),
            Event::DialFailed { daprd, server } => assert_eq!(
                *server,
                leader,
                "daprd {daprd} could not dial a survivor\n{}",
                cluster.dump()
            ),
            _ => {}
        }
    }
    assert_eq!(
        cluster.leaders(&survivors),
        [new_leader],
        "{}",
        cluster.dump()
    );
    let state = cluster.nodes[new_leader].state();
    let hosts: BTreeSet<String> = state["tables"]["default"]["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts in {state}"))
        .iter()
        .map(|h| h["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(hosts, want, "{state}");

    let count = |pred: &dyn Fn(&Event) -> bool| {
        log.iter().filter(after_kill).filter(|e| pred(&e.1)).count()
    };
    let refused = count(&|e| {
        matches!(
            e,
            Event::Ended {
                code: Code::FailedPrecondition,
                ..
            }
        )
    });
    let dial_failures = count(&|e| matches!(e, Event::DialFailed { .. }));
    let rounds: BTreeSet<u64> = log
        .iter()
        .filter(after_kill)
        .filter_map(|(_, e)| match e {
            Event::Applied { version, .. } => Some(*version),
            _ => None,
        })
        .collect();
    let old_streams_ended: BTreeSet<String> = log
        .iter()
        .filter(after_kill)
        .filter_map(|(_, e)| match e {
            Event::Ended {
                server,
                code,
                message,
                ..
            } if *server == leader => Some(format!("{code:?}: {message}")),
            _ => None,
        })
        .collect();
    eprintln!(
        "failover: initial full table on all {DAPRDS} daprds: {}",
        spread(&mut initial)
    );
    eprintln!(
        "failover: killed leader {old}; new leader {new} visible after {:.2}s; \
         first full table on all {DAPRDS} daprds: {}",
        (seen - killed).as_secs_f64(),
        spread(&mut failover)
    );
    eprintln!(
        "failover: after the kill {refused} streams were refused by a follower, \
         {dial_failures} dials failed, the new leader completed {} rounds (versions {:?}..={:?}); \
         streams to {old} ended with {old_streams_ended:?}",
        rounds.len(),
        rounds.first(),
        rounds.last(),
    );

    cluster.interrupt(&survivors);
    drop(daprds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_killed_leader_restarted_with_the_same_id_and_ports_rejoins_as_a_follower() {
    const DAPRDS: usize = 3;
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_one_leader(&[0, 1, 2], ELECTION);
    let want: BTreeSet<String> = (1..=DAPRDS).map(host_name).collect();
    let attached = Instant::now();
    let (daprds, mut events) = start_daprds(DAPRDS, &cluster.grpc_addresses());
    wait_for_tables(&mut events, DAPRDS, &want, attached, None, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("before the kill: {e}\n{}", cluster.dump()));

    let killed = cluster.nodes[leader].kill();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (new_leader, _) = cluster.wait_for_one_leader(&survivors, ELECTION);
    wait_for_tables(&mut events, DAPRDS, &want, killed, Some(leader), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("after the kill: {e}\n{}", cluster.dump()));

    let restarted = Instant::now();
    cluster.nodes[leader].restart();
    // Long enough for a rejoining node that wrongly campaigned to have taken over, or for the
    // leader to have stepped down: a leader lease plus two election timeouts.
    let window = LEADER_LEASE + ELECTION_TIMEOUT_MAX * 2;
    while restarted.elapsed() < window {
        assert_eq!(
            cluster.leaders(&[0, 1, 2]),
            [new_leader],
            "the leader changed after {:?}\n{}",
            restarted.elapsed(),
            cluster.dump()
        );
        let exits: Vec<String> = cluster
            .nodes
            .iter_mut()
            .filter_map(|node| node.exited().map(|status| format!("{} {status}", node.id)))
            .collect();
        assert!(exits.is_empty(), "exited: {exits:?}\n{}", cluster.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    let rejoined = &cluster.nodes[leader];
    assert_eq!(rejoined.leads(), Some(false), "{}", cluster.dump());
    // A follower's state is Go's `null` (spec §11.2) and it refuses streams (§8.1).
    assert_eq!(rejoined.state(), serde_json::Value::Null);
    let status = refuse(rejoined.grpc)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.dump()));
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        format!(
            "node id={} is not a leader. Only the leader can serve requests",
            rejoined.id
        )
    );

    // The daprds on the new leader were not disturbed by the rejoin.
    let mut disturbed = Vec::new();
    while let Ok((at, event)) = events.try_recv() {
        if at >= restarted {
            disturbed.push(event);
        }
    }
    assert!(
        disturbed.is_empty(),
        "daprd streams changed after the rejoin: {disturbed:?}\n{}",
        cluster.dump()
    );

    cluster.interrupt(&[0, 1, 2]);
    drop(daprds);
}

/// Opens a stream to the gRPC port and returns the status it is refused with.
async fn refuse(port: u16) -> Result<tonic::Status, String> {
    let mut client = PlacementClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("dialling :{port}: {e}"))?;
    let first = Host {
        name: "10.0.0.99:50002".into(),
        id: "probe".into(),
        namespace: "default".into(),
        ..Host::default()
    };
    match tokio::time::timeout(
        PROCESS,
        client.report_dapr_status(tokio_stream::iter([first])),
    )
    .await
    {
        Err(_) => Err(format!("no answer from :{port} within {PROCESS:?}")),
        Ok(Ok(_)) => Err(format!("a follower on :{port} accepted a stream")),
        Ok(Err(status)) => Ok(status),
    }
}
