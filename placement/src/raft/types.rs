//! The openraft type configuration and timing of the election-only Raft group.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Cursor,
    time::Duration,
};

openraft::declare_raft_types!(
    /// Nothing is replicated: the application data and responses are unit, node ids are numbers
    /// given by [`node_ids`] and a node carries its `host:port` as written in the peer list.
    pub TypeConfig:
        D = (),
        R = (),
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A node id. openraft 0.9 needs `Copy` ids, so the `--initial-cluster` ids are numbered.
pub type NodeId = u64;

/// Numbers the peer ids: 1-based position among the ids sorted, so every replica numbers the same
/// peer set the same way whatever the order of its `--initial-cluster` list.
pub fn node_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, NodeId> {
    let sorted: BTreeSet<&str> = ids.into_iter().collect();
    sorted.into_iter().zip(1..).collect()
}

/// How often the leader sends heartbeats. Also openraft's per-AppendEntries timeout, so it leaves
/// room for a round trip on a busy node. Upstream uses 2s for both; faster means faster failover.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);

/// Bounds of the randomised election timeout of a follower that has no leader.
pub const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(1000);
pub const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(2000);

/// A leader that has not heard from a quorum for this long has lost leadership (upstream's
/// `LeaderLeaseTimeout`). openraft itself never steps down for that, so the election watches it.
/// Shorter than a follower's wait before it campaigns (its lease plus an election timeout, at
/// least 3s), so the old leader is gone before a new one can be elected.
pub const LEADER_LEASE: Duration = Duration::from_millis(2000);

/// openraft's configuration for these timings: no snapshots (the log only grows by one blank entry
/// per elected leader, and nothing is purged, so a restarted node always catches up from the log).
pub fn config(cluster_name: &str) -> Result<openraft::Config, Box<openraft::ConfigError>> {
    openraft::Config {
        cluster_name: cluster_name.to_owned(),
        heartbeat_interval: millis(HEARTBEAT_INTERVAL),
        election_timeout_min: millis(ELECTION_TIMEOUT_MIN),
        election_timeout_max: millis(ELECTION_TIMEOUT_MAX),
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    }
    .validate()
    .map_err(Box::new)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_do_not_depend_on_the_order_of_the_peer_list() {
        let a = node_ids(["p2", "p1", "p3"]);
        let b = node_ids(["p3", "p2", "p1"]);
        assert_eq!(a, b);
        assert_eq!(a.get("p1"), Some(&1));
        assert_eq!(a.get("p3"), Some(&3));
    }

    #[test]
    fn the_timings_are_a_valid_openraft_config() {
        let c = config("test").unwrap();
        assert!(c.heartbeat_interval < c.election_timeout_min);
        assert!(LEADER_LEASE < ELECTION_TIMEOUT_MAX + ELECTION_TIMEOUT_MIN);
    }
}
