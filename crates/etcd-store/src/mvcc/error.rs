//! Engine errors. `Display` is exactly the description etcd's gRPC layer sends
//! (`api/v3/v3rpc/rpctypes/error.go`, v3.5.30), and [`Error::code`] its gRPC status code, so the
//! gRPC layer maps errors without matching strings.

use serde::{Deserialize, Serialize};

use super::types::Revision;

/// The gRPC status code an [`Error`] travels with (a plain mirror, so this crate needs no tonic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    OutOfRange,
    ResourceExhausted,
    Unavailable,
    DataLoss,
}

/// A request the engine refused. Nothing was applied when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// mvcc.ErrCompacted ("mvcc: required revision has been compacted") as the client sees it.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// mvcc.ErrFutureRev ("mvcc: required revision is a future revision") as the client sees it.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// lease.ErrLeaseNotFound ("lease not found") as the client sees it.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    /// A leader-only lease operation (renew, time-to-live) on a replica that is not the primary
    /// lessor; the gRPC layer forwards to the leader (etcd: lease.ErrNotPrimary).
    #[error("not a primary lessor")]
    NotPrimary,
    /// [`super::Store::read_txn`] was handed a txn that writes; propose it instead.
    #[error("etcdserver: txn with writes must be proposed")]
    NotReadOnly,
    /// The revision counter would overflow i64 (unreachable in practice; refused, not panicked).
    #[error("mvcc: revision overflow")]
    RevisionOverflow,
}

impl Error {
    /// The gRPC status code etcd sends with this error.
    pub fn code(&self) -> Code {
        match self {
            Self::EmptyKey
            | Self::KeyNotFound
            | Self::ValueProvided
            | Self::LeaseProvided
            | Self::TooManyOps
            | Self::DuplicateKey
            | Self::NotReadOnly => Code::InvalidArgument,
            Self::Compacted | Self::FutureRev | Self::LeaseTtlTooLarge | Self::RevisionOverflow => {
                Code::OutOfRange
            }
            Self::NoSpace => Code::ResourceExhausted,
            Self::LeaseNotFound => Code::NotFound,
            Self::LeaseExists => Code::FailedPrecondition,
            Self::Corrupt => Code::DataLoss,
            Self::NotPrimary => Code::Unavailable,
        }
    }
}

/// A watch (or event replay) asked for history that compaction removed; etcd answers with a
/// WatchResponse carrying `compact_revision` and cancels the watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "etcdserver: mvcc: required revision has been compacted (compact revision {compact_revision})"
)]
pub struct WatchCompacted {
    pub compact_revision: Revision,
}
