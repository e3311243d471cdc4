//! etcdserverpb/mvccpb messages ↔ the engine's plain types, and etcd's v3rpc request checks
//! (`v3rpc/key.go`) on the wire messages.
//!
//! Enum fields arrive as `i32`; a value this etcd version does not know is treated the way
//! etcd's Go code treats it where that is expressible (an unknown sort order does not sort, an
//! unknown sort target sorts by key, an unknown filter is ignored) and refused otherwise.

use dapr_proto::etcd::{
    etcdserverpb as pb,
    mvccpb::{self, event::EventType},
};
use tonic::Status;

use super::error::key_not_found;
use crate::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Error, Event,
    EventKind, KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};

use super::error::store_status;

// ---- proto → engine -------------------------------------------------------------------------

pub fn range_request(r: pb::RangeRequest) -> RangeRequest {
    use pb::range_request::{SortOrder as PbOrder, SortTarget as PbTarget};
    let sort_order = match PbOrder::try_from(r.sort_order) {
        Ok(PbOrder::Ascend) => SortOrder::Ascend,
        Ok(PbOrder::Descend) => SortOrder::Descend,
        Ok(PbOrder::None) | Err(_) => SortOrder::None,
    };
    let sort_target = match PbTarget::try_from(r.sort_target) {
        Ok(PbTarget::Version) => SortTarget::Version,
        Ok(PbTarget::Create) => SortTarget::Create,
        Ok(PbTarget::Mod) => SortTarget::Mod,
        Ok(PbTarget::Value) => SortTarget::Value,
        Ok(PbTarget::Key) | Err(_) => SortTarget::Key,
    };
    RangeRequest {
        key: r.key,
        range_end: r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order,
        sort_target,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    }
}

pub fn put_request(r: pb::PutRequest) -> PutRequest {
    PutRequest {
        key: r.key,
        value: r.value.into(),
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub fn delete_request(r: pb::DeleteRangeRequest) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: r.key,
        range_end: r.range_end,
        prev_kv: r.prev_kv,
    }
}

/// A compare; a target union of another kind than the target reads as the zero value, as Go's
/// generated getters (`c.GetVersion()`, ...) do.
pub fn compare(c: pb::Compare) -> Result<Compare, Status> {
    use pb::compare::{CompareResult as PbResult, CompareTarget as PbTarget, TargetUnion as U};
    let result = match PbResult::try_from(c.result) {
        Ok(PbResult::Equal) => CompareResult::Equal,
        Ok(PbResult::Greater) => CompareResult::Greater,
        Ok(PbResult::Less) => CompareResult::Less,
        Ok(PbResult::NotEqual) => CompareResult::NotEqual,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "etcdserver: unknown compare result {}",
                c.result
            )));
        }
    };
    let int = |want: fn(&U) -> Option<i64>| c.target_union.as_ref().and_then(want).unwrap_or(0);
    let target = match PbTarget::try_from(c.target) {
        Ok(PbTarget::Version) => CompareTarget::Version(int(|u| match u {
            U::Version(v) => Some(*v),
            _ => None,
        })),
        Ok(PbTarget::Create) => CompareTarget::Create(int(|u| match u {
            U::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        Ok(PbTarget::Mod) => CompareTarget::Mod(int(|u| match u {
            U::ModRevision(v) => Some(*v),
            _ => None,
        })),
        Ok(PbTarget::Lease) => CompareTarget::Lease(int(|u| match u {
            U::Lease(v) => Some(*v),
            _ => None,
        })),
        Ok(PbTarget::Value) => CompareTarget::Value(match &c.target_union {
            Some(U::Value(v)) => v.clone(),
            _ => Vec::new(),
        }),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "etcdserver: unknown compare target {}",
                c.target
            )));
        }
    };
    Ok(Compare {
        result,
        target,
        key: c.key,
        range_end: c.range_end,
    })
}

pub fn request_op(op: pb::RequestOp) -> Result<RequestOp, Status> {
    use pb::request_op::Request;
    Ok(match op.request.ok_or_else(key_not_found)? {
        Request::RequestRange(r) => RequestOp::Range(range_request(r)),
        Request::RequestPut(r) => RequestOp::Put(put_request(r)),
        Request::RequestDeleteRange(r) => RequestOp::DeleteRange(delete_request(r)),
        Request::RequestTxn(t) => RequestOp::Txn(txn_request(t)?),
    })
}

pub fn txn_request(t: pb::TxnRequest) -> Result<TxnRequest, Status> {
    Ok(TxnRequest {
        compare: t
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: t
            .success
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
        failure: t
            .failure
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
    })
}

// ---- etcd's v3rpc checks (key.go), on the wire messages --------------------------------------

pub fn check_range(r: &pb::RangeRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(store_status(&Error::EmptyKey));
    }
    Ok(())
}

pub fn check_put(r: &pb::PutRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(store_status(&Error::EmptyKey));
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(store_status(&Error::ValueProvided));
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(store_status(&Error::LeaseProvided));
    }
    Ok(())
}

pub fn check_delete(r: &pb::DeleteRangeRequest) -> Result<(), Status> {
    if r.key.is_empty() {
        return Err(store_status(&Error::EmptyKey));
    }
    Ok(())
}

/// `checkTxnRequest`: op counts (a nested txn gets what its parent left), empty compare keys,
/// each op's own check, and a RequestOp without a request (`ErrGRPCKeyNotFound`).
pub fn check_txn(t: &pb::TxnRequest, max_ops: i64) -> Result<(), Status> {
    use pb::request_op::Request;
    let opc = t.compare.len().max(t.success.len()).max(t.failure.len());
    let opc = i64::try_from(opc).unwrap_or(i64::MAX);
    if opc > max_ops {
        return Err(store_status(&Error::TooManyOps));
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(store_status(&Error::EmptyKey));
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range(r)?,
            Some(Request::RequestPut(r)) => check_put(r)?,
            Some(Request::RequestDeleteRange(r)) => check_delete(r)?,
            Some(Request::RequestTxn(t)) => check_txn(t, max_ops.saturating_sub(opc))?,
            None => return Err(key_not_found()),
        }
    }
    Ok(())
}

// ---- engine → proto -------------------------------------------------------------------------

pub fn kv(kv: KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.to_vec(),
        lease: kv.lease,
    }
}

/// A header that carries only a revision: what etcd puts on the responses inside a txn.
fn inner_header(revision: i64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        revision,
        ..Default::default()
    })
}

pub fn range_response(r: RangeResponse, header: Option<pb::ResponseHeader>) -> pb::RangeResponse {
    pb::RangeResponse {
        header,
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

pub fn put_response(r: PutResponse, header: Option<pb::ResponseHeader>) -> pb::PutResponse {
    pb::PutResponse {
        header,
        prev_kv: r.prev_kv.map(kv),
    }
}

pub fn delete_response(
    r: DeleteRangeResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header,
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

pub fn txn_response(r: TxnResponse, header: Option<pb::ResponseHeader>) -> pb::TxnResponse {
    pb::TxnResponse {
        header,
        succeeded: r.succeeded,
        responses: r.responses.into_iter().map(response_op).collect(),
    }
}

fn response_op(op: ResponseOp) -> pb::ResponseOp {
    use pb::response_op::Response;
    let response = match op {
        ResponseOp::Range(r) => {
            let h = inner_header(r.revision);
            Response::ResponseRange(range_response(r, h))
        }
        ResponseOp::Put(r) => {
            let h = inner_header(r.revision);
            Response::ResponsePut(put_response(r, h))
        }
        ResponseOp::DeleteRange(r) => {
            let h = inner_header(r.revision);
            Response::ResponseDeleteRange(delete_response(r, h))
        }
        ResponseOp::Txn(r) => {
            let h = inner_header(r.revision);
            Response::ResponseTxn(txn_response(r, h))
        }
    };
    pb::ResponseOp {
        response: Some(response),
    }
}

/// A watch event; `prev_kv` only when the watch asked for it.
pub fn event(e: &Event, prev_kv: bool) -> mvccpb::Event {
    let kind = match e.kind {
        EventKind::Put => EventType::Put,
        EventKind::Delete => EventType::Delete,
    };
    mvccpb::Event {
        r#type: kind.into(),
        kv: Some(kv(e.kv.clone())),
        prev_kv: if prev_kv {
            e.prev_kv.clone().map(kv)
        } else {
            None
        },
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
