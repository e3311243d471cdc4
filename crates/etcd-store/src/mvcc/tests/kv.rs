//! Ranges, puts, deletes, revisions and compaction (etcd `mvcc/kvstore_test.go`, `apply.go`).

use super::support::*;
use crate::mvcc::*;

#[test]
fn a_fresh_store_is_at_revision_one_and_the_first_put_makes_it_two() {
    let mut s = store();
    assert_eq!(s.revision(), 1);
    let r = put(&mut s, "a", "1");
    assert_eq!(r.revision, 2);
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
}

#[test]
fn updates_keep_the_create_revision_and_count_versions() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "x");
    put(&mut s, "a", "2");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 4, 2));
    assert_eq!(kv.value, b("2"));
}

#[test]
fn a_delete_resets_the_version_and_a_new_put_starts_a_new_generation() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    let d = delete(&mut s, DeleteRangeRequest::key("a"));
    assert_eq!((d.deleted, d.revision), (1, 4));
    assert!(get(&s, "a").is_none());
    put(&mut s, "a", "3");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn deleting_nothing_does_not_move_the_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let d = delete(&mut s, DeleteRangeRequest::key("zz"));
    assert_eq!((d.deleted, d.revision), (0, 2));
    assert_eq!(s.revision(), 2);
}

#[test]
fn range_end_rules_single_key_interval_and_from_key() {
    let mut s = store();
    for k in ["a", "ab", "b", "c"] {
        put(&mut s, k, "v");
    }
    assert_eq!(keys(&s.range(&RangeRequest::key("a")).unwrap()), ["a"]);
    let r = RangeRequest {
        key: b("a"),
        range_end: b("c"),
        ..Default::default()
    };
    assert_eq!(keys(&s.range(&r).unwrap()), ["a", "ab", "b"]);
    let r = RangeRequest {
        key: b("ab"),
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(keys(&s.range(&r).unwrap()), ["ab", "b", "c"]);
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(s.range(&all).unwrap().count, 4);
    assert_eq!(
        keys(&s.range(&RangeRequest::prefix("a")).unwrap()),
        ["a", "ab"]
    );
    // An inverted interval is empty, not an error.
    let r = RangeRequest {
        key: b("c"),
        range_end: b("a"),
        ..Default::default()
    };
    assert_eq!(s.range(&r).unwrap().count, 0);
}

#[test]
fn prefix_end_increments_the_last_byte_below_0xff() {
    assert_eq!(prefix_end(b"dapr/jobs"), b("dapr/jobt"));
    assert_eq!(prefix_end(&[b'a', 0xff]), b("b"));
    assert_eq!(prefix_end(&[0xff, 0xff]), vec![0]);
    assert_eq!(prefix_end(b""), vec![0]);
}

#[test]
fn an_empty_key_is_refused() {
    // rpctypes.ErrGRPCEmptyKey
    let s = store();
    let e = s.range(&RangeRequest::default()).unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: key is not provided");
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[test]
fn limit_sets_more_and_count_is_the_whole_range() {
    let mut s = store();
    for k in ["k1", "k2", "k3"] {
        put(&mut s, k, "v");
    }
    let mut r = RangeRequest::prefix("k");
    r.limit = 2;
    let resp = s.range(&r).unwrap();
    assert_eq!(
        (keys(&resp), resp.more, resp.count),
        (vec!["k1".to_owned(), "k2".to_owned()], true, 3)
    );
    r.limit = 3;
    let resp = s.range(&r).unwrap();
    assert!(!resp.more);
    // The scheduler test's ListAllKeys pagination: next page from lastKey + "\0".
    let mut page = RangeRequest {
        key: b("k2\0"),
        range_end: prefix_end(b"k"),
        limit: 2,
        ..Default::default()
    };
    assert_eq!(keys(&s.range(&page).unwrap()), ["k3"]);
    page.limit = 0;
    assert!(!s.range(&page).unwrap().more);
}

#[test]
fn keys_only_and_count_only() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "2");
    let mut r = RangeRequest::prefix("");
    r.keys_only = true;
    let resp = s.range(&r).unwrap();
    assert!(
        resp.kvs
            .iter()
            .all(|kv| kv.value.is_empty() && kv.version == 1)
    );
    r.keys_only = false;
    r.count_only = true;
    let resp = s.range(&r).unwrap();
    assert_eq!((resp.kvs.len(), resp.count, resp.revision), (0, 2, 3));
}

#[test]
fn sorting_by_target_and_order() {
    let mut s = store();
    put(&mut s, "a", "3");
    put(&mut s, "b", "1");
    put(&mut s, "c", "2");
    put(&mut s, "b", "1'");
    let mut r = RangeRequest::prefix("");
    r.sort_order = SortOrder::Descend;
    assert_eq!(keys(&s.range(&r).unwrap()), ["c", "b", "a"]);
    r.sort_target = SortTarget::Value;
    r.sort_order = SortOrder::Ascend;
    assert_eq!(keys(&s.range(&r).unwrap()), ["b", "c", "a"]);
    // A non-key target without an order sorts ascending.
    r.sort_order = SortOrder::None;
    r.sort_target = SortTarget::Mod;
    assert_eq!(keys(&s.range(&r).unwrap()), ["a", "c", "b"]);
    // Ties keep key order, also descending.
    r.sort_order = SortOrder::Descend;
    r.sort_target = SortTarget::Create;
    assert_eq!(keys(&s.range(&r).unwrap()), ["c", "b", "a"]);
    r.sort_target = SortTarget::Version;
    assert_eq!(keys(&s.range(&r).unwrap()), ["b", "a", "c"]);
    // With a sort, limit applies after sorting the whole range.
    r.limit = 1;
    let resp = s.range(&r).unwrap();
    assert_eq!(
        (keys(&resp), resp.more, resp.count),
        (vec!["b".to_owned()], true, 3)
    );
}

#[test]
fn min_and_max_revision_filters_prune_after_counting() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "b", "1"); // 3
    put(&mut s, "c", "1"); // 4
    put(&mut s, "a", "2"); // 5
    let mut r = RangeRequest::prefix("");
    r.min_mod_revision = 3;
    r.max_mod_revision = 4;
    let resp = s.range(&r).unwrap();
    assert_eq!(
        (keys(&resp), resp.count),
        (vec!["b".to_owned(), "c".to_owned()], 3)
    );
    let mut r = RangeRequest::prefix("");
    r.max_create_revision = 2;
    assert_eq!(keys(&s.range(&r).unwrap()), ["a"]);
    let mut r = RangeRequest::prefix("");
    r.min_create_revision = 4;
    assert_eq!(keys(&s.range(&r).unwrap()), ["c"]);
}

#[test]
fn reads_at_past_revisions_see_the_old_state_with_the_current_header() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    delete(&mut s, DeleteRangeRequest::key("a")); // 4
    let mut r = RangeRequest::key("a");
    r.revision = 2;
    let resp = s.range(&r).unwrap();
    assert_eq!((resp.kvs[0].value.to_vec(), resp.revision), (b("1"), 4));
    r.revision = 3;
    assert_eq!(s.range(&r).unwrap().kvs[0].version, 2);
    r.revision = 4;
    assert!(s.range(&r).unwrap().kvs.is_empty());
    r.revision = 1;
    assert!(s.range(&r).unwrap().kvs.is_empty());
}

#[test]
fn a_future_revision_is_refused() {
    // mvcc.ErrFutureRev via rpctypes.ErrGRPCFutureRev
    let mut s = store();
    put(&mut s, "a", "1");
    let mut r = RangeRequest::key("a");
    r.revision = 3;
    let e = s.range(&r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(e.code(), Code::OutOfRange);
}

#[test]
fn compaction_removes_old_revisions_and_reads_below_it_fail() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "b", "1"); // 4
    let resp = compact(&mut s, 3).unwrap();
    assert_eq!(resp, Response::Compact(CompactResponse { revision: 4 }));
    let mut r = RangeRequest::key("a");
    r.revision = 2;
    // mvcc.ErrCompacted via rpctypes.ErrGRPCCompacted
    assert_eq!(
        s.range(&r).unwrap_err().to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    r.revision = 3;
    assert_eq!(s.range(&r).unwrap().kvs[0].value, b("2"));
    assert_eq!(
        get(&s, "a").unwrap().version,
        2,
        "versions survive compaction"
    );
}

#[test]
fn compacting_twice_or_into_the_future_fails_like_etcd() {
    // kvstore.go updateCompactRev: rev <= compactMainRev → ErrCompacted; rev > currentRev → ErrFutureRev.
    let mut s = store();
    put(&mut s, "a", "1");
    assert_eq!(compact(&mut s, 5), Err(Error::FutureRev));
    assert!(compact(&mut s, 2).is_ok());
    assert_eq!(compact(&mut s, 2), Err(Error::Compacted));
    assert_eq!(compact(&mut s, 1), Err(Error::Compacted));
    assert_eq!(s.compact_revision(), 2);
}

#[test]
fn compaction_drops_deleted_keys_but_keeps_a_tombstone_at_the_compaction_revision() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    delete(&mut s, DeleteRangeRequest::key("a")); // 3
    put(&mut s, "b", "1"); // 4
    delete(&mut s, DeleteRangeRequest::key("b")); // 5
    compact(&mut s, 5).unwrap();
    assert!(!s.state.kv.keys.contains_key(b"a".as_slice()));
    assert_eq!(s.state.kv.keys[b"b".as_slice()].revs.len(), 1);
    put(&mut s, "c", "1"); // 6
    compact(&mut s, 6).unwrap();
    assert!(!s.state.kv.keys.contains_key(b"b".as_slice()));
}

#[test]
fn put_returns_the_previous_value_when_asked() {
    let mut s = store();
    put(&mut s, "a", "1");
    let mut req = PutRequest::new("a", "2");
    req.prev_kv = true;
    let Ok(Response::Put(r)) = s.apply(Command::Put(req)).result else {
        panic!()
    };
    assert_eq!(r.prev_kv.unwrap().value, b("1"));
}

#[test]
fn ignore_value_and_ignore_lease_need_an_existing_key() {
    let mut s = store();
    let req = PutRequest {
        key: b("a"),
        ignore_value: true,
        ..Default::default()
    };
    // etcdserver.ErrKeyNotFound via rpctypes.ErrGRPCKeyNotFound
    assert_eq!(
        put_err(&mut s, req.clone()).to_string(),
        "etcdserver: key not found"
    );
    put(&mut s, "a", "1");
    s.apply(Command::Put(req));
    assert_eq!(get(&s, "a").unwrap().value, b("1"));
    assert_eq!(get(&s, "a").unwrap().version, 2);
    let bad = PutRequest {
        key: b("a"),
        value: b("x").into(),
        ignore_value: true,
        ..Default::default()
    };
    assert_eq!(
        put_err(&mut s, bad).to_string(),
        "etcdserver: value is provided"
    );
    let bad = PutRequest {
        key: b("a"),
        lease: 5,
        ignore_lease: true,
        ..Default::default()
    };
    assert_eq!(
        put_err(&mut s, bad).to_string(),
        "etcdserver: lease is provided"
    );
}

#[test]
fn delete_range_returns_prev_kvs_and_deletes_in_one_revision() {
    let mut s = store();
    for k in ["p/1", "p/2", "q"] {
        put(&mut s, k, "v");
    }
    let mut req = DeleteRangeRequest::prefix("p/");
    req.prev_kv = true;
    let applied = s.apply(Command::DeleteRange(req));
    let Ok(Response::DeleteRange(r)) = applied.result else {
        panic!()
    };
    assert_eq!((r.deleted, r.revision, r.prev_kvs.len()), (2, 5, 2));
    assert_eq!(applied.events.len(), 2);
    assert!(
        applied
            .events
            .iter()
            .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == 5)
    );
}
