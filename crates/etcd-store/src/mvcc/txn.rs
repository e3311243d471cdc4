//! Txn: request validation (etcd `v3rpc/key.go`), compares and execution (`etcdserver/apply.go`).

use std::collections::BTreeSet;

use super::error::Error;
use super::kv::KvState;
use super::types::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, LeaseId, PutRequest,
    RangeRequest, RequestOp, ResponseOp, Revision, TxnRequest, TxnResponse,
};
use super::write::WriteTxn;

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// `checkRangeRequest`.
pub(crate) fn check_range_request(r: &RangeRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        Err(Error::EmptyKey)
    } else {
        Ok(())
    }
}

/// `checkPutRequest`.
pub(crate) fn check_put_request(r: &PutRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// `checkDeleteRequest`.
pub(crate) fn check_delete_request(r: &DeleteRangeRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        Err(Error::EmptyKey)
    } else {
        Ok(())
    }
}

/// Everything etcd's KV server checks on a Txn before proposing it: op counts against
/// `max_txn_ops` (nested txns get what the outer one left), empty keys, and keys written twice
/// (`checkTxnRequest` and `checkIntervals` on both branches).
pub fn validate_txn(req: &TxnRequest, max_txn_ops: usize) -> Result<(), Error> {
    check_txn(req, i64::try_from(max_txn_ops).unwrap_or(i64::MAX))?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

fn check_txn(req: &TxnRequest, max_ops: i64) -> Result<(), Error> {
    let opc = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    let opc = i64::try_from(opc).unwrap_or(i64::MAX);
    if opc > max_ops {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) => check_range_request(r)?,
            RequestOp::Put(r) => check_put_request(r)?,
            RequestOp::DeleteRange(r) => check_delete_request(r)?,
            RequestOp::Txn(t) => check_txn(t, max_ops.saturating_sub(opc))?,
        }
    }
    Ok(())
}

/// A delete interval as etcd's `checkIntervals` builds it: `[key, range_end)` with `range_end`
/// taken literally (so `[0]` covers no key there), or the single key.
struct Interval {
    begin: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn covers(&self, k: &[u8]) -> bool {
        match &self.end {
            None => k == self.begin.as_slice(),
            Some(end) => k >= self.begin.as_slice() && k < end.as_slice(),
        }
    }
}

type Intervals = (BTreeSet<Vec<u8>>, Vec<Interval>);

fn check_intervals(reqs: &[RequestOp]) -> Result<Intervals, Error> {
    let mut dels: Vec<Interval> = reqs
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(Interval {
                begin: d.key.clone(),
                end: (!d.range_end.is_empty()).then(|| d.range_end.clone()),
            }),
            _ => None,
        })
        .collect();
    let hits = |dels: &[Interval], k: &[u8]| dels.iter().any(|d| d.covers(k));
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in reqs {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || hits(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) || hits(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in reqs {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || hits(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// The branch every (nested) txn takes, decided up front against the pre-txn view like etcd's
/// `compareToPath`: nested compares do not see the writes of earlier ops.
pub(crate) struct Path {
    pub succeeded: bool,
    /// One entry per nested txn op of the chosen branch, in order.
    pub nested: Vec<Path>,
}

impl Path {
    pub fn decide(kv: &KvState, rev: Revision, req: &TxnRequest) -> Self {
        let succeeded = req.compare.iter().all(|c| compare_holds(kv, rev, c));
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let nested = ops
            .iter()
            .filter_map(|op| match op {
                RequestOp::Txn(t) => Some(Self::decide(kv, rev, t)),
                _ => None,
            })
            .collect();
        Self { succeeded, nested }
    }

    /// Visits the ops of the chosen branches (etcd `checkRequests`).
    pub fn check(
        &self,
        req: &TxnRequest,
        f: &mut impl FnMut(&RequestOp) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let ops = if self.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = self.nested.iter();
        for op in ops {
            match op {
                RequestOp::Txn(t) => {
                    if let Some(p) = nested.next() {
                        p.check(t, f)?;
                    }
                }
                op => f(op)?,
            }
        }
        Ok(())
    }
}

/// `applyCompare`: every key in the range must satisfy the compare; an empty range compares the
/// zero KeyValue, except that a VALUE compare on no key is false.
fn compare_holds(kv: &KvState, rev: Revision, c: &Compare) -> bool {
    let range = super::keys::KeyRange::new(&c.key, &c.range_end);
    let mut any = false;
    for (k, e) in kv.live_in(&range, rev) {
        any = true;
        if !compare_kv(c, &e.to_kv(k)) {
            return false;
        }
    }
    if any {
        return true;
    }
    !matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, &KeyValue::default())
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Value(v) => kv.value[..].cmp(v.as_slice()),
        CompareTarget::Create(r) => kv.create_revision.cmp(r),
        CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// `checkRequestRange`: a Range op's explicit revision against the pre-txn view. Unlike a plain
/// Range, a negative revision is compared as is (so it reads as compacted).
pub(crate) fn check_txn_range(kv: &KvState, op: &RequestOp) -> Result<(), Error> {
    let RequestOp::Range(r) = op else {
        return Ok(());
    };
    match r.revision {
        0 => Ok(()),
        rev if rev > kv.current_rev => Err(Error::FutureRev),
        rev if rev < kv.compact_rev => Err(Error::Compacted),
        _ => Ok(()),
    }
}

/// `checkRequestPut` against the pre-txn view.
pub(crate) fn check_txn_put(
    kv: &KvState,
    op: &RequestOp,
    lease_exists: &impl Fn(LeaseId) -> bool,
) -> Result<(), Error> {
    let RequestOp::Put(p) = op else { return Ok(()) };
    if (p.ignore_value || p.ignore_lease) && kv.get(&p.key, kv.current_rev).is_none() {
        return Err(Error::KeyNotFound);
    }
    if p.lease != 0 && !lease_exists(p.lease) {
        return Err(Error::LeaseNotFound);
    }
    Ok(())
}

/// Runs a read-only txn at the current revision.
pub(crate) fn read_only(kv: &KvState, req: &TxnRequest) -> Result<TxnResponse, Error> {
    let rev = kv.current_rev;
    let path = Path::decide(kv, rev, req);
    path.check(req, &mut |op| check_txn_range(kv, op))?;
    let ops = if path.succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        if let RequestOp::Range(r) = op {
            responses.push(ResponseOp::Range(kv.range(r, rev)?));
        }
    }
    Ok(TxnResponse {
        revision: rev,
        succeeded: path.succeeded,
        responses,
    })
}

/// `applyTxn`: runs the chosen branch inside `w`. The outer response's revision is filled in by
/// the caller after commit; nested responses keep 0, as in etcd.
pub(crate) fn execute(
    w: &mut WriteTxn<'_>,
    req: &TxnRequest,
    path: &Path,
    lease_exists: &impl Fn(LeaseId) -> bool,
) -> Result<TxnResponse, Error> {
    let ops = if path.succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut nested = path.nested.iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let resp = match op {
            RequestOp::Range(r) => ResponseOp::Range(w.range(r)?),
            RequestOp::Put(p) => ResponseOp::Put(w.put(p, lease_exists)?),
            RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(w.delete_range(d)),
            RequestOp::Txn(t) => {
                let Some(p) = nested.next() else {
                    return Err(Error::KeyNotFound);
                };
                ResponseOp::Txn(execute(w, t, p, lease_exists)?)
            }
        };
        responses.push(resp);
    }
    Ok(TxnResponse {
        revision: 0,
        succeeded: path.succeeded,
        responses,
    })
}
