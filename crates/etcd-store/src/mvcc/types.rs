//! Plain request/response types of the KV API (the engine-side mirror of etcdserverpb's KV messages).
//!
//! Field meanings follow `api/v3/etcdserverpb/rpc.proto` and `api/v3/mvccpb/kv.proto` (v3.5.30).
//! Every response carries `revision`: what etcd puts into `ResponseHeader.revision`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A store revision (etcd's int64 main revision).
pub type Revision = i64;
/// A lease id; 0 means "no lease".
pub type LeaseId = i64;

/// One key at one revision (mvccpb.KeyValue).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Vec<u8>,
    /// Revision of the last creation of this key.
    pub create_revision: Revision,
    /// Revision of the last modification of this key.
    pub mod_revision: Revision,
    /// Number of modifications since creation; a delete resets it to 0.
    pub version: i64,
    /// Shared with the stored revision (watch events and reads copy nothing).
    pub value: Bytes,
    /// Attached lease, 0 for none.
    pub lease: LeaseId,
}

/// RangeRequest.SortOrder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

/// RangeRequest.SortTarget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// KV.Range. `range_end` empty = the single key; `[0]` = every key ≥ `key`; else `[key, range_end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; ≤ 0 means no limit.
    pub limit: i64,
    /// Read at this revision; ≤ 0 means the current one.
    pub revision: Revision,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: Revision,
    pub max_mod_revision: Revision,
    pub min_create_revision: Revision,
    pub max_create_revision: Revision,
}

impl RangeRequest {
    /// A request for one key.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    /// A request for every key that starts with `prefix` (clientv3's `WithPrefix`).
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key: Vec<u8> = prefix.into();
        if key.is_empty() {
            // clientv3: an empty prefix means every key.
            return Self {
                key: vec![0],
                range_end: vec![0],
                ..Self::default()
            };
        }
        let range_end = super::prefix_end(&key);
        Self {
            key,
            range_end,
            ..Self::default()
        }
    }
}

/// KV.Range result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    pub revision: Revision,
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// Number of keys in the range (before `limit` and the min/max filters).
    pub count: i64,
}

/// KV.Put.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Vec<u8>,
    /// Shared, not copied, by the Raft log entry and the stored revision.
    pub value: Bytes,
    pub lease: LeaseId,
    pub prev_kv: bool,
    /// Keep the current value (the key must exist; `value` must be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist; `lease` must be 0).
    pub ignore_lease: bool,
}

impl PutRequest {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: Bytes::from(value.into()),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub revision: Revision,
    pub prev_kv: Option<KeyValue>,
}

/// KV.DeleteRange; `range_end` as in [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub prev_kv: bool,
}

impl DeleteRangeRequest {
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let r = RangeRequest::prefix(prefix);
        Self {
            key: r.key,
            range_end: r.range_end,
            prev_kv: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    pub revision: Revision,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// Compare.CompareResult.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// Compare.target together with its target_union value. The gRPC layer maps a target whose union
/// member is missing (or of another kind) to the zero value, as etcd's `compareKV` does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    Create(Revision),
    Mod(Revision),
    Value(Vec<u8>),
    Lease(LeaseId),
}

/// One Txn guard; with a `range_end` every key in the range must satisfy it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl Compare {
    pub fn new(key: impl Into<Vec<u8>>, result: CompareResult, target: CompareTarget) -> Self {
        Self {
            result,
            target,
            key: key.into(),
            range_end: Vec::new(),
        }
    }
}

/// One operation of a Txn branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

/// KV.Txn: if every `compare` holds run `success`, else `failure`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    /// Whether the txn only reads (etcd's `isTxnReadonly`: every op of both branches is a Range;
    /// a nested Txn counts as a write). Read-only txns never bump the revision and need no Raft.
    pub fn is_read_only(&self) -> bool {
        self.success
            .iter()
            .chain(&self.failure)
            .all(|op| matches!(op, RequestOp::Range(_)))
    }
}

/// KV.Txn result. As in etcd, the `revision` of a nested txn's response is 0; only the outer
/// response carries the header revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub revision: Revision,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

/// KV.Compact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactRequest {
    pub revision: Revision,
    /// etcd waits for the physical compaction before answering; ours is always complete.
    pub physical: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactResponse {
    pub revision: Revision,
}

/// mvccpb.Event.EventType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as a watcher sees it. For a delete, `kv` holds only the key and the deleting
/// revision in `mod_revision` (as etcd's watchable store patches it). `prev_kv` is the key as of
/// the revision before the change; creations (version 1) have none, like etcd's watch server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision this event happened at.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}
