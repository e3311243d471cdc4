//! The storage engine of the scheduler's embedded, etcd-compatible store.
//!
//! [`mvcc`] is the pure core: a deterministic multi-version key-value store with etcd v3
//! semantics (revisions, compaction, transactions, leases, the space-quota alarm). It has no
//! clocks, threads or I/O: the Raft layer feeds it [`mvcc::Command`]s through
//! [`mvcc::Store::apply`] (time arrives inside commands), snapshots it with serde, and a gRPC layer
//! maps etcdserverpb messages onto its plain Rust types.

mod clock;
pub mod compactor;
pub mod disk;
pub mod mvcc;
pub mod node;
pub mod raft;
pub mod server;

pub use mvcc::*;
