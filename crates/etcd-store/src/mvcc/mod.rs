//! A deterministic MVCC key-value store with etcd v3.5 semantics.
//!
//! - Revisions: the store starts at revision 1; every command that changes keys (a put, a delete
//!   that deletes something, a txn with changes, a revoke of a lease with keys) moves it by one.
//!   Keys keep their history until compaction; a delete leaves a tombstone and resets `version`.
//! - Replicated writes go through [`Store::apply`] with a [`Command`]; reads ([`Store::range`],
//!   [`Store::read_txn`]) are served directly. Each applied write returns its watch [`Event`]s,
//!   and [`Store::events_since`] replays history for watchers that start in the past.
//! - Leases: grants, revokes and checkpoints are commands; expiry is leader-local
//!   ([`Store::promote`], [`Store::renew`], [`Store::expired`]); time always comes from the caller.
//! - Quota: `db_size` is a high-water mark of the accounted size (a bbolt file that only shrinks
//!   on defragment); crossing the quota raises the NOSPACE alarm, which then blocks every write
//!   that adds data until it is disarmed.

mod apply;
mod error;
mod history;
mod keys;
mod kv;
mod lease;
mod quota;
mod store;
mod txn;
mod types;
mod write;

pub use apply::{Applied, Command, Response};
pub use error::{Code, Error, WatchCompacted};
pub use keys::{KeyRange, prefix_end};
pub use lease::{
    DEFAULT_MIN_LEASE_TTL, EXPIRED_RETRY_MS, LeaseCheckpoint, LeaseGrantRequest,
    LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLive, MAX_LEASE_TTL,
};
pub use quota::{
    AlarmAction, AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DEFAULT_QUOTA_BYTES,
};
pub use store::{EventBatch, Store, StoreConfig, StoreState, StoreStatus};
pub use txn::{DEFAULT_MAX_TXN_OPS, validate_txn};
pub use types::{CompactRequest, CompactResponse};
pub use types::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Event,
    EventKind, KeyValue, LeaseId, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseOp, Revision, SortOrder, SortTarget, TxnRequest, TxnResponse,
};

#[cfg(test)]
mod tests;
