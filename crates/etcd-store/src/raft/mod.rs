//! Replication of the [`crate::mvcc::Store`] with openraft: the type configuration, the state
//! machine (the store plus durable snapshots), and the peer transport.

pub mod machine;
pub mod network;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::mvcc::{Command, Error, Response, Revision};

/// A member's Raft id: its 1-based position among the sorted member names, identical on every
/// member because all of them are given the same `--etcd-initial-cluster`.
pub type NodeId = u64;

/// A Raft log entry's payload: one command, or several queued client writes applied in order
/// (group commit: one entry, one replication round trip and one fsync for all of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    One(Command),
    Batch(Vec<Command>),
}

/// The outcome of one command of a [`Proposal::Batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: Result<Response, Error>,
    /// The store revision right after this command.
    pub revision: Revision,
}

/// What a write returns to whoever proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `None` for Raft's own entries (blank, membership) and for batches.
    pub result: Option<Result<Response, Error>>,
    /// The store revision after the entry.
    pub revision: Revision,
    /// One outcome per command of a batch, in order.
    pub batch: Vec<Outcome>,
}

openraft::declare_raft_types!(
    /// Commands are the engine's; a member's address is its peer URL.
    pub TypeConfig:
        D = Proposal,
        R = Reply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);
