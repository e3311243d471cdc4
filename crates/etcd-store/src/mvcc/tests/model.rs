//! Property-style test: random puts, deletes, txns, ranges (also at past revisions) and
//! compactions against a naive model that keeps a full copy of the keyspace per revision.

use std::collections::BTreeMap;

use super::support::Rng;
use crate::mvcc::*;

const KEYS: &[&str] = &["a", "ab", "abc", "b", "ba", "c", "d/1", "d/2", "d/3", "e"];

type Snapshot = BTreeMap<Vec<u8>, KeyValue>;

/// The model: one full keyspace per revision (index = revision), plus the compaction revision.
struct Model {
    revs: Vec<Snapshot>,
    compact: Revision,
}

impl Model {
    fn rev(&self) -> Revision {
        i64::try_from(self.revs.len()).unwrap() - 1
    }

    fn latest(&self) -> &Snapshot {
        self.revs.last().unwrap()
    }

    fn matches(range: &KeyRange, k: &[u8]) -> bool {
        range.contains(k)
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        let cur = self.rev();
        if req.revision > cur {
            return Err(Error::FutureRev);
        }
        let at = if req.revision <= 0 { cur } else { req.revision };
        if at < self.compact {
            return Err(Error::Compacted);
        }
        let range = KeyRange::new(&req.key, &req.range_end);
        let mut kvs: Vec<KeyValue> = self.revs[usize::try_from(at).unwrap()]
            .values()
            .filter(|kv| Self::matches(&range, &kv.key))
            .cloned()
            .collect();
        let count = kvs.len() as i64;
        if req.count_only {
            return Ok(RangeResponse {
                revision: cur,
                kvs: vec![],
                more: false,
                count,
            });
        }
        let key = |kv: &KeyValue| match req.sort_target {
            SortTarget::Key => (kv.key.clone(), 0),
            SortTarget::Version => (vec![], kv.version),
            SortTarget::Create => (vec![], kv.create_revision),
            SortTarget::Mod => (vec![], kv.mod_revision),
            SortTarget::Value => (kv.value.to_vec(), 0),
        };
        match req.sort_order {
            SortOrder::Ascend => kvs.sort_by_key(key),
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(key(kv))),
            SortOrder::None => {}
        }
        let mut more = false;
        if req.limit > 0 && kvs.len() > req.limit as usize {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            revision: cur,
            kvs,
            more,
            count,
        })
    }

    fn compare(&self, c: &Compare) -> bool {
        let range = KeyRange::new(&c.key, &c.range_end);
        let hits: Vec<&KeyValue> = self
            .latest()
            .values()
            .filter(|kv| range.contains(&kv.key))
            .collect();
        let zero = KeyValue::default();
        let test = |kv: &KeyValue| {
            let ord = match &c.target {
                CompareTarget::Value(v) => kv.value[..].cmp(v.as_slice()),
                CompareTarget::Version(v) => kv.version.cmp(v),
                CompareTarget::Create(v) => kv.create_revision.cmp(v),
                CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
                CompareTarget::Lease(v) => kv.lease.cmp(v),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if hits.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && test(&zero);
        }
        hits.into_iter().all(test)
    }

    /// Runs write ops on a working copy at revision rev+1; returns responses and events.
    fn write(&mut self, ops: &[RequestOp]) -> (Vec<ResponseOp>, Vec<Event>) {
        let before = self.latest().clone();
        let mut work = before.clone();
        let next = self.rev() + 1;
        let mut events = Vec::new();
        let mut resps = Vec::new();
        for op in ops {
            let cur = if events.is_empty() { self.rev() } else { next };
            match op {
                RequestOp::Put(p) => {
                    let (create, version) = match work.get(&p.key) {
                        Some(old) => (old.create_revision, old.version + 1),
                        None => (next, 1),
                    };
                    let kv = KeyValue {
                        key: p.key.clone(),
                        create_revision: create,
                        mod_revision: next,
                        version,
                        value: p.value.clone(),
                        lease: 0,
                    };
                    let prev_kv = if version == 1 {
                        None
                    } else {
                        before.get(&p.key).cloned()
                    };
                    events.push(Event {
                        kind: EventKind::Put,
                        kv: kv.clone(),
                        prev_kv,
                    });
                    work.insert(p.key.clone(), kv);
                    resps.push(ResponseOp::Put(PutResponse {
                        revision: next,
                        prev_kv: None,
                    }));
                }
                RequestOp::DeleteRange(d) => {
                    let range = KeyRange::new(&d.key, &d.range_end);
                    let victims: Vec<Vec<u8>> =
                        work.keys().filter(|k| range.contains(k)).cloned().collect();
                    for k in &victims {
                        work.remove(k);
                        let kv = KeyValue {
                            key: k.clone(),
                            mod_revision: next,
                            ..KeyValue::default()
                        };
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv,
                            prev_kv: before.get(k).cloned(),
                        });
                    }
                    let revision = if events.is_empty() { self.rev() } else { next };
                    resps.push(ResponseOp::DeleteRange(DeleteRangeResponse {
                        revision,
                        deleted: victims.len() as i64,
                        prev_kvs: vec![],
                    }));
                }
                RequestOp::Range(r) => {
                    let range = KeyRange::new(&r.key, &r.range_end);
                    let kvs: Vec<KeyValue> = work
                        .values()
                        .filter(|kv| range.contains(&kv.key))
                        .cloned()
                        .collect();
                    let count = kvs.len() as i64;
                    resps.push(ResponseOp::Range(RangeResponse {
                        revision: cur,
                        kvs,
                        more: false,
                        count,
                    }));
                }
                RequestOp::Txn(_) => unreachable!("the generator makes no nested txns"),
            }
        }
        if !events.is_empty() {
            self.revs.push(work);
        }
        (resps, events)
    }
}

fn random_key(rng: &mut Rng) -> Vec<u8> {
    rng.pick(KEYS).as_bytes().to_vec()
}

fn random_range_end(rng: &mut Rng, key: &[u8]) -> Vec<u8> {
    match rng.below(4) {
        0 => vec![],
        1 => vec![0],
        2 => prefix_end(key),
        _ => random_key(rng),
    }
}

fn random_write_op(rng: &mut Rng) -> RequestOp {
    let key = random_key(rng);
    match rng.below(3) {
        0 | 1 => RequestOp::Put(PutRequest::new(key, format!("v{}", rng.below(5)))),
        _ => {
            let range_end = random_range_end(rng, &key);
            RequestOp::DeleteRange(DeleteRangeRequest {
                key,
                range_end,
                prev_kv: false,
            })
        }
    }
}

fn random_compare(rng: &mut Rng, model: &Model) -> Compare {
    let key = random_key(rng);
    let n = rng.below(u64::try_from(model.rev()).unwrap() + 2) as i64;
    let target = match rng.below(4) {
        0 => CompareTarget::Value(format!("v{}", rng.below(5)).into_bytes()),
        1 => CompareTarget::Version(n % 4),
        2 => CompareTarget::Create(if rng.chance(50) { 0 } else { n }),
        _ => CompareTarget::Mod(n),
    };
    let result = *rng.pick(&[
        CompareResult::Equal,
        CompareResult::NotEqual,
        CompareResult::Greater,
        CompareResult::Less,
    ]);
    let range_end = if rng.chance(25) {
        random_range_end(rng, &key)
    } else {
        vec![]
    };
    Compare {
        result,
        target,
        key,
        range_end,
    }
}

/// etcd's duplicate-key rule for flat branches (see `txn::check_intervals`).
fn has_duplicate(ops: &[RequestOp]) -> bool {
    let covered = |k: &[u8]| {
        ops.iter().any(|op| match op {
            RequestOp::DeleteRange(d) if d.range_end.is_empty() => d.key == k,
            RequestOp::DeleteRange(d) => d.key.as_slice() <= k && k < d.range_end.as_slice(),
            _ => false,
        })
    };
    let puts: Vec<&[u8]> = ops
        .iter()
        .filter_map(|op| {
            if let RequestOp::Put(p) = op {
                Some(p.key.as_slice())
            } else {
                None
            }
        })
        .collect();
    puts.iter()
        .enumerate()
        .any(|(i, k)| puts[..i].contains(k) || covered(k))
}

fn random_range(rng: &mut Rng, model: &Model) -> RangeRequest {
    let key = random_key(rng);
    let range_end = random_range_end(rng, &key);
    let revision = if rng.chance(40) {
        rng.below(u64::try_from(model.rev()).unwrap() + 2) as i64
    } else {
        0
    };
    let (sort_order, sort_target) = if rng.chance(30) {
        (
            *rng.pick(&[SortOrder::Ascend, SortOrder::Descend]),
            *rng.pick(&[
                SortTarget::Key,
                SortTarget::Version,
                SortTarget::Mod,
                SortTarget::Value,
            ]),
        )
    } else {
        (SortOrder::None, SortTarget::Key)
    };
    RangeRequest {
        key,
        range_end,
        limit: rng.below(4) as i64,
        revision,
        sort_order,
        sort_target,
        keys_only: rng.chance(20),
        count_only: rng.chance(10),
        ..RangeRequest::default()
    }
}

/// How often each interesting outcome happened, to prove the generator reaches them.
#[derive(Default)]
struct Coverage {
    txn_success: usize,
    txn_failure: usize,
    duplicates: usize,
    compactions: usize,
    range_errors: usize,
    past_reads: usize,
}

fn run(seed: u64, steps: usize, cov: &mut Coverage) {
    let mut rng = Rng(seed);
    let mut s = Store::new(StoreConfig::default());
    let mut m = Model {
        revs: vec![Snapshot::new(), Snapshot::new()],
        compact: -1,
    };
    let mut log: Vec<Event> = Vec::new();
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(10) {
            0..=2 => {
                let RequestOp::Put(p) = random_write_op(&mut rng) else {
                    continue;
                };
                let applied = s.apply(Command::Put(p.clone()));
                let (resps, events) = m.write(&[RequestOp::Put(p)]);
                assert_eq!(
                    applied.result,
                    Ok(Response::Put(match &resps[0] {
                        ResponseOp::Put(r) => r.clone(),
                        _ => unreachable!(),
                    })),
                    "{ctx}"
                );
                assert_eq!(applied.events, events, "{ctx}");
                log.extend(events);
            }
            3 => {
                let RequestOp::DeleteRange(d) = random_write_op(&mut rng) else {
                    continue;
                };
                let applied = s.apply(Command::DeleteRange(d.clone()));
                let (resps, events) = m.write(&[RequestOp::DeleteRange(d)]);
                let ResponseOp::DeleteRange(want) = &resps[0] else {
                    unreachable!()
                };
                assert_eq!(
                    applied.result,
                    Ok(Response::DeleteRange(want.clone())),
                    "{ctx}"
                );
                assert_eq!(applied.events, events, "{ctx}");
                log.extend(events);
            }
            4..=5 => {
                let compare: Vec<Compare> = (0..rng.below(3))
                    .map(|_| random_compare(&mut rng, &m))
                    .collect();
                let branch = |rng: &mut Rng| -> Vec<RequestOp> {
                    (0..rng.below(4))
                        .map(|_| {
                            if rng.chance(25) {
                                RequestOp::Range(RangeRequest {
                                    key: random_key(rng),
                                    range_end: random_range_end(rng, b"a"),
                                    ..Default::default()
                                })
                            } else {
                                random_write_op(rng)
                            }
                        })
                        .collect()
                };
                let success = branch(&mut rng);
                let failure = branch(&mut rng);
                let req = TxnRequest {
                    compare: compare.clone(),
                    success: success.clone(),
                    failure: failure.clone(),
                };
                let applied = s.apply(Command::Txn(req));
                if has_duplicate(&success) || has_duplicate(&failure) {
                    assert_eq!(applied.result, Err(Error::DuplicateKey), "{ctx}");
                    cov.duplicates += 1;
                    continue;
                }
                let ok = compare.iter().all(|c| m.compare(c));
                if ok {
                    cov.txn_success += 1
                } else {
                    cov.txn_failure += 1
                }
                let (resps, events) = m.write(if ok { &success } else { &failure });
                let want = TxnResponse {
                    revision: m.rev(),
                    succeeded: ok,
                    responses: resps,
                };
                assert_eq!(applied.result, Ok(Response::Txn(want)), "{ctx}");
                assert_eq!(applied.events, events, "{ctx}");
                log.extend(events);
            }
            6..=8 => {
                let req = random_range(&mut rng, &m);
                let want = m.range(&req);
                cov.range_errors += usize::from(want.is_err());
                cov.past_reads +=
                    usize::from(want.is_ok() && req.revision > 0 && req.revision < m.rev());
                assert_eq!(s.range(&req), want, "{ctx}: {req:?}");
            }
            _ => {
                let target = m.compact
                    + 1
                    + rng.below(u64::try_from(m.rev() - m.compact).unwrap() + 1) as i64;
                let got = s
                    .apply(Command::Compact(CompactRequest {
                        revision: target,
                        physical: false,
                    }))
                    .result;
                if target > m.rev() {
                    assert_eq!(got, Err(Error::FutureRev), "{ctx}");
                } else {
                    assert!(got.is_ok(), "{ctx}");
                    m.compact = target;
                    cov.compactions += 1;
                }
            }
        }
        assert_eq!(s.revision(), m.rev(), "{ctx}");
    }
    let start = (m.compact + 1).max(1);
    let replay = s
        .events_since(&KeyRange::From(vec![0]), start, usize::MAX)
        .unwrap();
    let want: Vec<Event> = log.into_iter().filter(|e| e.revision() >= start).collect();
    assert_eq!(replay.events, want, "seed {seed}: replay from {start}");
    let restored = Store::restore(
        StoreConfig::default(),
        serde_json::from_slice(&serde_json::to_vec(s.state()).unwrap()).unwrap(),
    );
    assert_eq!(
        restored.state(),
        s.state(),
        "seed {seed}: snapshot round trip"
    );
}

#[test]
fn random_operations_agree_with_a_naive_model() {
    let mut cov = Coverage::default();
    for seed in 1..=40 {
        run(seed, 400, &mut cov);
    }
    for (what, n) in [
        ("txns taking success", cov.txn_success),
        ("txns taking failure", cov.txn_failure),
        ("duplicate-key txns", cov.duplicates),
        ("compactions", cov.compactions),
        ("refused ranges", cov.range_errors),
        ("past reads", cov.past_reads),
    ] {
        assert!(n >= 50, "only {n} {what}");
    }
}
