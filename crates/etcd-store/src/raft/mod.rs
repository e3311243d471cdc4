//! Replication of the [`crate::mvcc::Store`] with openraft: the type configuration, the state
//! machine (the store plus durable snapshots), and the peer transport.

pub mod machine;
pub mod network;
pub(crate) mod split_vote;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::mvcc::{Command, Error, Response, Revision};

/// A member's Raft id: its 1-based position among the sorted member names, identical on every
/// member because all of them are given the same `--etcd-initial-cluster`.
pub type NodeId = u64;

/// What a write returns to whoever proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `None` for Raft's own entries (blank, membership).
    pub result: Option<Result<Response, Error>>,
    /// The store revision after the entry.
    pub revision: Revision,
}

openraft::declare_raft_types!(
    /// Commands are the engine's; a member's address is its peer URL.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);
