//! Txn semantics (etcd `etcdserver/apply.go` Txn, `v3rpc/key.go` checks).

use super::support::*;
use crate::mvcc::*;

fn cmp(k: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare::new(k, result, target)
}

#[test]
fn create_revision_zero_guards_a_put_like_the_leadership_election() {
    let mut s = store();
    let elect = |v: &str| TxnRequest {
        compare: vec![cmp(
            "dapr/leadership/0",
            CompareResult::Equal,
            CompareTarget::Create(0),
        )],
        success: vec![put_op("dapr/leadership/0", v)],
        failure: vec![get_op("dapr/leadership/0")],
    };
    let r = txn(&mut s, elect("one")).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 2);
    let r = txn(&mut s, elect("two")).unwrap();
    assert!(!r.succeeded);
    assert_eq!(
        r.revision, 2,
        "a txn that took a read-only branch does not move the revision"
    );
    let ResponseOp::Range(got) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(got.kvs[0].value, b("one"));
}

#[test]
fn compares_on_every_target_and_result() {
    let mut s = store();
    put(&mut s, "k", "m"); // 2
    put(&mut s, "k", "m"); // 3, version 2
    let check = |s: &mut Store, c: Compare| {
        txn(
            s,
            TxnRequest {
                compare: vec![c],
                ..Default::default()
            },
        )
        .unwrap()
        .succeeded
    };
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Equal, CompareTarget::Value(b("m")))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Greater, CompareTarget::Value(b("a")))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Less, CompareTarget::Value(b("z")))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::NotEqual, CompareTarget::Value(b("x")))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Equal, CompareTarget::Version(2))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Equal, CompareTarget::Create(2))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Equal, CompareTarget::Mod(3))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Greater, CompareTarget::Mod(2))
    ));
    assert!(check(
        &mut s,
        cmp("k", CompareResult::Equal, CompareTarget::Lease(0))
    ));
    assert!(!check(
        &mut s,
        cmp("k", CompareResult::Less, CompareTarget::Version(2))
    ));
    // A missing key compares as the zero KeyValue, except on VALUE, which is always false.
    assert!(check(
        &mut s,
        cmp("nope", CompareResult::Equal, CompareTarget::Version(0))
    ));
    assert!(check(
        &mut s,
        cmp("nope", CompareResult::Equal, CompareTarget::Mod(0))
    ));
    assert!(!check(
        &mut s,
        cmp("nope", CompareResult::Equal, CompareTarget::Value(vec![]))
    ));
    assert!(!check(
        &mut s,
        cmp(
            "nope",
            CompareResult::NotEqual,
            CompareTarget::Value(b("x"))
        )
    ));
}

#[test]
fn range_compares_require_every_key_in_the_range() {
    let mut s = store();
    put(&mut s, "p/a", "1");
    put(&mut s, "p/b", "1");
    let mut c = cmp("p/", CompareResult::Equal, CompareTarget::Value(b("1")));
    c.range_end = prefix_end(b"p/");
    let req = TxnRequest {
        compare: vec![c.clone()],
        ..Default::default()
    };
    assert!(txn(&mut s, req.clone()).unwrap().succeeded);
    put(&mut s, "p/c", "2");
    assert!(!txn(&mut s, req).unwrap().succeeded);
    c.target = CompareTarget::Mod(10);
    c.result = CompareResult::Less;
    assert!(
        txn(
            &mut s,
            TxnRequest {
                compare: vec![c],
                ..Default::default()
            }
        )
        .unwrap()
        .succeeded
    );
}

#[test]
fn a_txn_with_several_writes_takes_one_revision_and_later_ops_see_earlier_ones() {
    let mut s = store();
    put(&mut s, "old", "x");
    let req = TxnRequest {
        success: vec![
            put_op("a", "1"),
            put_op("b", "2"),
            del_op("old", ""),
            get_op("a"),
        ],
        ..Default::default()
    };
    let applied = s.apply(Command::Txn(req));
    let Ok(Response::Txn(r)) = applied.result else {
        panic!()
    };
    assert_eq!(r.revision, 3);
    assert_eq!(s.revision(), 3);
    let ResponseOp::Put(p) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(p.revision, 3);
    let ResponseOp::Range(got) = &r.responses[3] else {
        panic!()
    };
    assert_eq!((got.kvs[0].mod_revision, got.revision), (3, 3));
    assert_eq!(applied.events.len(), 3);
    assert!(applied.events.iter().all(|e| e.revision() == 3));
}

#[test]
fn a_write_txn_that_changes_nothing_keeps_the_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let r = txn(
        &mut s,
        TxnRequest {
            success: vec![del_op("zz", "")],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((r.revision, s.revision()), (2, 2));
    let ResponseOp::DeleteRange(d) = &r.responses[0] else {
        panic!()
    };
    assert_eq!((d.deleted, d.revision), (0, 2));
}

#[test]
fn read_only_txns_are_served_without_a_command() {
    let mut s = store();
    put(&mut s, "a", "1");
    let req = TxnRequest {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Value(b("1")))],
        success: vec![get_op("a")],
        failure: vec![],
    };
    let r = s.read_txn(&req).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 2);
    let write = TxnRequest {
        success: vec![put_op("a", "2")],
        ..Default::default()
    };
    assert_eq!(s.read_txn(&write), Err(Error::NotReadOnly));
}

#[test]
fn nested_txns_decide_on_the_pre_txn_state_and_report_revision_zero() {
    let mut s = store();
    let inner = TxnRequest {
        // "a" does not exist before the txn, even though the outer branch creates it first.
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Create(0))],
        success: vec![put_op("b", "created")],
        failure: vec![put_op("b", "saw-a")],
    };
    let outer = TxnRequest {
        success: vec![put_op("a", "1"), RequestOp::Txn(inner)],
        ..Default::default()
    };
    let r = txn(&mut s, outer).unwrap();
    assert_eq!(get(&s, "b").unwrap().value, b("created"));
    let ResponseOp::Txn(nested) = &r.responses[1] else {
        panic!()
    };
    assert!(nested.succeeded);
    assert_eq!((nested.revision, r.revision), (0, 2));
}

#[test]
fn duplicate_keys_in_one_txn_are_refused() {
    // rpctypes.ErrGRPCDuplicateKey, from checkIntervals.
    let mut s = store();
    let dup = |success: Vec<RequestOp>| {
        txn(
            &mut store(),
            TxnRequest {
                success,
                ..Default::default()
            },
        )
    };
    assert_eq!(
        dup(vec![put_op("a", "1"), put_op("a", "2")]),
        Err(Error::DuplicateKey)
    );
    assert_eq!(
        dup(vec![put_op("a", "1"), del_op("a", "")]),
        Err(Error::DuplicateKey)
    );
    assert_eq!(
        dup(vec![del_op("a", "c"), put_op("b", "1")]),
        Err(Error::DuplicateKey)
    );
    let nested = TxnRequest {
        success: vec![put_op("a", "1")],
        failure: vec![put_op("a", "2")],
        ..Default::default()
    };
    assert_eq!(
        dup(vec![put_op("a", "0"), RequestOp::Txn(nested.clone())]),
        Err(Error::DuplicateKey)
    );
    // The same key in both branches of one nested txn is fine, and so are two deletes.
    assert!(dup(vec![RequestOp::Txn(nested)]).is_ok());
    assert!(dup(vec![del_op("a", "c"), del_op("b", "")]).is_ok());
    // A put in `success` and the same key in `failure` never both run.
    let req = TxnRequest {
        success: vec![put_op("a", "1")],
        failure: vec![put_op("a", "2")],
        ..Default::default()
    };
    assert!(txn(&mut s, req).is_ok());
    assert_eq!(
        Error::DuplicateKey.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
}

#[test]
fn a_from_key_delete_does_not_count_as_covering_a_put_but_the_txn_stays_atomic() {
    // checkIntervals takes range_end "\0" literally, so it covers no key and the txn passes the
    // check; etcd would then panic applying a put with ignore_value of the just-deleted key. We
    // refuse the txn and roll back what it had done.
    let mut s = store();
    put(&mut s, "b", "1");
    let ops = vec![
        del_op("a", "\0"),
        RequestOp::Put(PutRequest {
            key: b("b"),
            ignore_value: true,
            ..Default::default()
        }),
    ];
    let before = s.state().clone();
    assert_eq!(
        txn(
            &mut s,
            TxnRequest {
                success: ops,
                ..Default::default()
            }
        ),
        Err(Error::KeyNotFound)
    );
    assert_eq!(s.state(), &before);
    // Delete-everything then put in one txn is accepted: both changes share one revision.
    let ops = vec![del_op("a", "\0"), put_op("b", "2")];
    let applied = s.apply(Command::Txn(TxnRequest {
        success: ops,
        ..Default::default()
    }));
    assert!(applied.result.is_ok());
    let kinds: Vec<_> = applied
        .events
        .iter()
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(kinds, [(EventKind::Delete, 3), (EventKind::Put, 3)]);
    assert_eq!(get(&s, "b").unwrap().version, 1);
}

#[test]
fn too_many_operations_are_refused() {
    // rpctypes.ErrGRPCTooManyOps; nested txns get the budget the outer one left.
    let mut s = Store::new(StoreConfig {
        max_txn_ops: 2,
        ..StoreConfig::default()
    });
    let three = vec![put_op("a", "1"), put_op("b", "1"), put_op("c", "1")];
    let e = txn(
        &mut s,
        TxnRequest {
            success: three,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: too many operations in txn request"
    );
    let nested = TxnRequest {
        success: vec![put_op("x", "1")],
        ..Default::default()
    };
    let req = TxnRequest {
        success: vec![put_op("a", "1"), RequestOp::Txn(nested)],
        ..Default::default()
    };
    assert_eq!(txn(&mut s, req), Err(Error::TooManyOps));
    let ok = TxnRequest {
        success: vec![put_op("a", "1"), put_op("b", "1")],
        ..Default::default()
    };
    assert!(txn(&mut s, ok).is_ok());
}

#[test]
fn a_range_op_with_a_bad_revision_fails_the_whole_txn_before_any_write() {
    let mut s = store();
    put(&mut s, "a", "1");
    let mut r = RangeRequest::key("a");
    r.revision = 9;
    let req = TxnRequest {
        success: vec![put_op("b", "1"), RequestOp::Range(r)],
        ..Default::default()
    };
    assert_eq!(txn(&mut s, req), Err(Error::FutureRev));
    assert!(get(&s, "b").is_none());
    compact(&mut s, 2).unwrap();
    let mut r = RangeRequest::key("a");
    r.revision = 1;
    let req = TxnRequest {
        success: vec![RequestOp::Range(r)],
        ..Default::default()
    };
    assert_eq!(txn(&mut s, req), Err(Error::Compacted));
}

#[test]
fn a_put_with_an_unknown_lease_fails_the_txn() {
    let mut s = store();
    let op = RequestOp::Put(PutRequest {
        key: b("a"),
        lease: 42,
        ..Default::default()
    });
    let e = txn(
        &mut s,
        TxnRequest {
            success: vec![put_op("b", "1"), op],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: requested lease not found");
    assert_eq!(s.revision(), 1);
}

#[test]
fn prefix_deletes_inside_txns_return_prev_kvs() {
    let mut s = store();
    put(&mut s, "dapr/jobs/a", "1");
    put(&mut s, "dapr/jobs/b", "1");
    let mut d = DeleteRangeRequest::prefix("dapr/jobs/");
    d.prev_kv = true;
    let req = TxnRequest {
        compare: vec![cmp(
            "dapr/jobs/a",
            CompareResult::Equal,
            CompareTarget::Mod(2),
        )],
        success: vec![RequestOp::DeleteRange(d)],
        failure: vec![],
    };
    let r = txn(&mut s, req).unwrap();
    let ResponseOp::DeleteRange(d) = &r.responses[0] else {
        panic!()
    };
    assert_eq!((d.deleted, d.prev_kvs.len(), d.revision), (2, 2, 4));
}
