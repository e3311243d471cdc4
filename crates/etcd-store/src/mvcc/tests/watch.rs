//! Events for watchers (etcd `mvcc/watchable_store*.go`, `v3rpc/watch.go` prev_kv).

use super::support::*;
use crate::mvcc::*;

fn all() -> KeyRange {
    KeyRange::From(vec![0])
}

#[test]
fn every_write_yields_events_with_prev_kv() {
    let mut s = store();
    let created = s.apply(Command::Put(PutRequest::new("a", "1")));
    assert_eq!(created.revision, 2);
    assert_eq!(created.events.len(), 1);
    assert_eq!(created.events[0].kind, EventKind::Put);
    assert!(
        created.events[0].prev_kv.is_none(),
        "a creation has no prev_kv"
    );
    let updated = s.apply(Command::Put(PutRequest::new("a", "2")));
    assert_eq!(updated.events[0].prev_kv.as_ref().unwrap().value, b("1"));
    let deleted = s.apply(Command::DeleteRange(DeleteRangeRequest::key("a")));
    let ev = &deleted.events[0];
    assert_eq!(ev.kind, EventKind::Delete);
    assert_eq!(
        ev.kv,
        KeyValue {
            key: b("a"),
            mod_revision: 4,
            ..KeyValue::default()
        }
    );
    assert_eq!(ev.prev_kv.as_ref().unwrap().value, b("2"));
    let failed = s.apply(Command::Put(PutRequest {
        key: b("x"),
        lease: 9,
        ..Default::default()
    }));
    assert!(failed.result.is_err() && failed.events.is_empty());
}

#[test]
fn replay_from_a_past_revision_matches_what_was_applied() {
    let mut s = store();
    let mut applied = Vec::new();
    applied.extend(
        s.apply(Command::Put(PutRequest::new("dapr/jobs/a", "1")))
            .events,
    );
    applied.extend(s.apply(Command::Put(PutRequest::new("other", "1"))).events);
    applied.extend(
        s.apply(Command::Put(PutRequest::new("dapr/jobs/a", "2")))
            .events,
    );
    let txn = TxnRequest {
        success: vec![put_op("dapr/jobs/b", "1"), del_op("dapr/jobs/a", "")],
        ..Default::default()
    };
    applied.extend(s.apply(Command::Txn(txn)).events);
    let batch = s.events_since(&all(), 1, 100).unwrap();
    assert_eq!(batch.events, applied);
    assert_eq!(batch.next_revision, 6);
    let jobs = s
        .events_since(&KeyRange::prefix(b"dapr/jobs"), 4, 100)
        .unwrap();
    let seen: Vec<_> = jobs
        .events
        .iter()
        .map(|e| (e.kind, e.kv.key.clone(), e.revision()))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Put, b("dapr/jobs/a"), 4),
            (EventKind::Put, b("dapr/jobs/b"), 5),
            (EventKind::Delete, b("dapr/jobs/a"), 5)
        ]
    );
    assert_eq!(s.events_since(&all(), 6, 100).unwrap().events, []);
}

#[test]
fn replay_pages_by_whole_revisions() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    let txn = TxnRequest {
        success: vec![put_op("b", "1"), put_op("c", "1")],
        ..Default::default()
    };
    s.apply(Command::Txn(txn)); // 3
    put(&mut s, "d", "1"); // 4
    let first = s.events_since(&all(), 2, 2).unwrap();
    assert_eq!(first.events.len(), 3, "revision 3 is not split");
    assert_eq!(first.next_revision, 4);
    let rest = s.events_since(&all(), first.next_revision, 2).unwrap();
    assert_eq!((rest.events.len(), rest.next_revision), (1, 5));
}

#[test]
fn replay_below_the_compaction_revision_reports_it() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "a", "3"); // 4
    compact(&mut s, 3).unwrap();
    assert_eq!(
        s.events_since(&all(), 2, 10),
        Err(WatchCompacted {
            compact_revision: 3
        })
    );
    // From the compaction revision itself is allowed (etcd: minRev < compactRev fails).
    let batch = s.events_since(&all(), 3, 10).unwrap();
    let revs: Vec<_> = batch.events.iter().map(Event::revision).collect();
    assert_eq!(revs, [3, 4]);
    assert_eq!(batch.events[1].prev_kv.as_ref().unwrap().value, b("2"));
    assert!(
        batch.events[0].prev_kv.is_none(),
        "its predecessor was compacted away"
    );
}

#[test]
fn key_ranges_follow_the_range_end_rules() {
    assert!(KeyRange::new(b"a", b"").contains(b"a"));
    assert!(!KeyRange::new(b"a", b"").contains(b"ab"));
    assert!(KeyRange::new(b"a", b"\0").contains(b"zzz"));
    assert!(!KeyRange::new(b"b", b"\0").contains(b"a"));
    assert!(KeyRange::prefix(b"dapr/jobs").contains(b"dapr/jobs/x"));
    assert!(!KeyRange::prefix(b"dapr/jobs").contains(b"dapr/jobt"));
    assert!(KeyRange::prefix(b"").contains(b"\x01"));
}
