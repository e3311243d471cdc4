//! Helpers shared by the engine tests.

use crate::mvcc::*;

pub fn store() -> Store {
    Store::new(StoreConfig::default())
}

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn put(s: &mut Store, k: &str, v: &str) -> PutResponse {
    match s.apply(Command::Put(PutRequest::new(k, v))).result {
        Ok(Response::Put(r)) => r,
        other => panic!("put {k}: {other:?}"),
    }
}

pub fn put_err(s: &mut Store, req: PutRequest) -> Error {
    match s.apply(Command::Put(req)).result {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

pub fn delete(s: &mut Store, req: DeleteRangeRequest) -> DeleteRangeResponse {
    match s.apply(Command::DeleteRange(req)).result {
        Ok(Response::DeleteRange(r)) => r,
        other => panic!("delete: {other:?}"),
    }
}

pub fn txn(s: &mut Store, req: TxnRequest) -> Result<TxnResponse, Error> {
    s.apply(Command::Txn(req)).result.map(|r| match r {
        Response::Txn(t) => t,
        other => panic!("not a txn response: {other:?}"),
    })
}

pub fn get(s: &Store, k: &str) -> Option<KeyValue> {
    s.range(&RangeRequest::key(k))
        .expect("range")
        .kvs
        .into_iter()
        .next()
}

pub fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

pub fn compact(s: &mut Store, rev: Revision) -> Result<Response, Error> {
    s.apply(Command::Compact(CompactRequest {
        revision: rev,
        physical: true,
    }))
    .result
}

pub fn grant(
    s: &mut Store,
    id: LeaseId,
    ttl: i64,
    now_ms: u64,
) -> Result<LeaseGrantResponse, Error> {
    s.apply(Command::LeaseGrant(LeaseGrantRequest { id, ttl, now_ms }))
        .result
        .map(|r| match r {
            Response::LeaseGrant(g) => g,
            other => panic!("not a grant response: {other:?}"),
        })
}

pub fn put_op(k: &str, v: &str) -> RequestOp {
    RequestOp::Put(PutRequest::new(k, v))
}

pub fn get_op(k: &str) -> RequestOp {
    RequestOp::Range(RangeRequest::key(k))
}

pub fn del_op(k: &str, end: &str) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key: b(k),
        range_end: b(end),
        prev_kv: false,
    })
}

/// splitmix64: a tiny deterministic generator, so failures reproduce from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
