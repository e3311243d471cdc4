//! Engine and node errors as the gRPC statuses etcd sends (`api/v3rpc/rpctypes/error.go`).

use tonic::{Code, Status};

use crate::{mvcc, node::NodeError};

fn code(code: mvcc::Code) -> Code {
    match code {
        mvcc::Code::InvalidArgument => Code::InvalidArgument,
        mvcc::Code::NotFound => Code::NotFound,
        mvcc::Code::FailedPrecondition => Code::FailedPrecondition,
        mvcc::Code::OutOfRange => Code::OutOfRange,
        mvcc::Code::ResourceExhausted => Code::ResourceExhausted,
        mvcc::Code::Unavailable => Code::Unavailable,
        mvcc::Code::DataLoss => Code::DataLoss,
    }
}

/// An engine error with etcd's code and message.
pub fn store_status(e: &mvcc::Error) -> Status {
    Status::new(code(e.code()), e.to_string())
}

/// A node error: engine errors as [`store_status`]; `no leader`, `request timed out` and
/// `server stopped` are Unavailable as in etcd (clients retry them).
pub fn node_status(e: NodeError) -> Status {
    match e {
        NodeError::Store(e) => store_status(&e),
        NodeError::NoLeader | NodeError::Timeout | NodeError::Stopped => {
            Status::unavailable(e.to_string())
        }
        NodeError::Internal(_) => Status::unknown(e.to_string()),
    }
}

/// `rpctypes.ErrGRPCRequestTooLarge`.
pub(crate) fn request_too_large() -> Status {
    Status::invalid_argument("etcdserver: request is too large")
}

/// `rpctypes.ErrGRPCKeyNotFound`: also what etcd answers for a RequestOp without a request.
pub(crate) fn key_not_found() -> Status {
    store_status(&mvcc::Error::KeyNotFound)
}

/// A write whose Raft entry carried no engine result (cannot happen for our commands).
pub(crate) fn no_result() -> Status {
    Status::unknown("etcdserver: the write produced no result")
}

/// A write answered with a response of another kind (cannot happen).
pub(crate) fn unexpected() -> Status {
    Status::unknown("etcdserver: unexpected response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_etcds_code_and_message() {
        let status = store_status(&mvcc::Error::Compacted);
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(
            status.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let status = node_status(NodeError::Store(mvcc::Error::NoSpace));
        assert_eq!(
            (status.code(), status.message()),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded"
            )
        );
    }

    #[test]
    fn leaderless_and_timed_out_requests_are_unavailable() {
        let status = node_status(NodeError::NoLeader);
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "etcdserver: no leader")
        );
        let status = node_status(NodeError::Timeout);
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "etcdserver: request timed out")
        );
    }
}
