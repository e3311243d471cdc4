//! Election-only Raft over plain TCP: in-process nodes on loopback ports.

mod raft_support;

use std::time::{Duration, Instant};

use placement::raft::{Election, RaftError, RaftOptions};
use raft_support::{ELECTION_DEADLINE, Node, peers, start, start_one, wait_for_leader};
use tokio::{io::AsyncWriteExt, net::TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_becomes_leader_within_milliseconds() {
    let peers = peers(1);
    let started = Instant::now();
    let nodes = start(&peers, |_| None).await;
    assert_eq!(wait_for_leader(&nodes, Duration::from_secs(2)).await, 0);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let node = nodes.into_iter().next().unwrap();
    node.stop()
        .await
        .expect("shutting a leader down is not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_one_leader_and_a_new_one_when_it_shuts_down() {
    let peers = peers(3);
    let mut nodes = start(&peers, |_| None).await;
    let first = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    let leaders = nodes.iter().filter(|n| n.is_leader()).count();
    assert_eq!(leaders, 1, "exactly one leader");

    let old = nodes.remove(first);
    let mut old_leadership = old.leadership.clone();
    old.stop()
        .await
        .expect("a leader's own shutdown is not lost leadership");
    assert!(!*old_leadership.borrow_and_update());

    let second = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    assert_eq!(nodes.iter().filter(|n| n.is_leader()).count(), 1);
    assert!(!nodes[1 - second].run.is_finished());
    for node in nodes {
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_followers_are_gone_loses_leadership() {
    let peers = peers(3);
    let mut nodes = start(&peers, |_| None).await;
    let leader = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    let leader = nodes.remove(leader);
    for follower in nodes {
        follower.stop().await.unwrap();
    }
    let started = Instant::now();
    let mut leadership = leader.leadership.clone();
    let result = tokio::time::timeout(Duration::from_secs(10), leader.run)
        .await
        .expect("the leader gives up within a few seconds")
        .unwrap();
    assert!(
        matches!(result, Err(RaftError::LostLeadership)),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().to_string(), "lost leadership");
    assert!(!*leadership.borrow_and_update());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_rejoins_with_empty_state_without_disturbing_the_leader() {
    let peers = peers(3);
    let mut nodes = start(&peers, |_| None).await;
    let leader = wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    let follower = (leader + 1) % 3;
    let id = nodes[follower].id.clone();
    let old = nodes.remove(follower);
    old.stop().await.unwrap();
    let leader = if leader > follower {
        leader - 1
    } else {
        leader
    };
    nodes.push(start_one(&peers, &id, None).await);

    // The rejoined node catches up rather than campaigning: the leader stays leader well past
    // the followers' election timeouts.
    let still_running =
        tokio::time::timeout(Duration::from_secs(5), wait_for_any_exit(&mut nodes)).await;
    assert!(still_running.is_err(), "a node stopped: {still_running:?}");
    assert!(nodes[leader].is_leader());
    assert_eq!(nodes.iter().filter(|n| n.is_leader()).count(), 1);

    // And with it the group still has a quorum once the other follower goes.
    let other = (0..3).find(|&i| i != leader && i != 2).unwrap();
    let other = nodes.remove(other);
    other.stop().await.unwrap();
    let still_running =
        tokio::time::timeout(Duration::from_secs(4), wait_for_any_exit(&mut nodes)).await;
    assert!(still_running.is_err(), "a node stopped: {still_running:?}");
    assert_eq!(nodes.iter().filter(|n| n.is_leader()).count(), 1);
    for node in nodes {
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_raft_port_does_not_hurt_the_cluster() {
    let peers = peers(3);
    let mut nodes = start(&peers, |_| None).await;
    let leader = wait_for_leader(&nodes, ELECTION_DEADLINE).await;

    for node in &nodes {
        // Connect and close without a byte (the `ports` test).
        drop(TcpStream::connect(("127.0.0.1", node.port)).await.unwrap());
        // Bytes that are no frame.
        let mut conn = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        // A well-formed length with a body that is no request.
        let mut conn2 = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
        conn2
            .write_all(&[0, 0, 0, 4, b'n', b'u', b'l', b'l'])
            .await
            .unwrap();
        // A length prefix past the frame limit.
        let mut conn3 = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
        conn3.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        conn3.write_all(&[0; 1024]).await.unwrap();
        // A frame that never finishes.
        let mut conn4 = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
        conn4.write_all(&[0, 0, 1, 0, b'{']).await.unwrap();
        drop((conn, conn2, conn3));
        std::mem::forget(conn4);
    }

    // Heartbeats still flow: the leader keeps its quorum past the leader lease.
    let still_running = tokio::time::timeout(
        placement::raft::LEADER_LEASE * 2,
        wait_for_any_exit(&mut nodes),
    )
    .await;
    assert!(still_running.is_err(), "a node stopped: {still_running:?}");
    assert!(nodes[leader].is_leader());

    // And new connections still work: the followers elect a new leader.
    let old = nodes.remove(leader);
    old.stop().await.unwrap();
    wait_for_leader(&nodes, ELECTION_DEADLINE).await;
    for node in nodes {
        node.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_node_missing_from_the_peer_list_fails_to_bind_with_upstreams_message() {
    let peers = peers(2);
    let err = Election::bind(RaftOptions {
        id: "other".into(),
        peers: peers.clone(),
        tls: None,
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "address for node other not found in raft peers [{{placement-0 {}}} {{placement-1 {}}}]",
            peers[0].address, peers[1].address
        )
    );
}

#[tokio::test]
async fn the_raft_listener_binds_the_resolved_own_address() {
    let port = dapr_testing::free_port();
    let peers = vec![placement::peers::Peer {
        id: "a".into(),
        address: format!("localhost:{port}"),
    }];
    let election = Election::bind(RaftOptions {
        id: "a".into(),
        peers,
        tls: None,
    })
    .await
    .unwrap();
    assert_eq!(
        election.local_addr().to_string(),
        format!("127.0.0.1:{port}")
    );
}

/// Resolves when any node's `run` has finished (which none should, in these checks).
async fn wait_for_any_exit(nodes: &mut [Node]) -> String {
    loop {
        for node in nodes.iter() {
            if node.run.is_finished() {
                return node.id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
