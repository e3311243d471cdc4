use super::*;
use crate::mvcc::KeyValue;

fn put(key: &str, revision: Revision, value_len: usize) -> Event {
    Event {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key.as_bytes().to_vec(),
            mod_revision: revision,
            create_revision: revision,
            version: 1,
            value: vec![b'x'; value_len].into(),
            lease: 0,
        },
        prev_kv: None,
    }
}

fn state(range: KeyRange) -> WatchState {
    WatchState {
        range,
        next: 1,
        behind: false,
        prev_kv: false,
        progress_notify: false,
        no_put: false,
        no_delete: false,
        quiet: true,
    }
}

#[test]
fn a_watch_wants_events_in_its_range_that_its_filters_let_through() {
    let mut w = state(KeyRange::prefix(b"a/"));
    assert!(w.wants(&put("a/1", 2, 1)));
    assert!(!w.wants(&put("b/1", 2, 1)));
    w.no_put = true;
    assert!(!w.wants(&put("a/1", 2, 1)));
    let mut delete = put("a/1", 3, 0);
    delete.kind = EventKind::Delete;
    assert!(w.wants(&delete));
    w.no_delete = true;
    assert!(!w.wants(&delete));
}

#[test]
fn replayed_events_are_split_between_revisions_never_inside_one() {
    let events = [
        put("a", 2, 600),
        put("b", 2, 600),
        put("c", 3, 600),
        put("d", 4, 10),
    ];
    let refs: Vec<&Event> = events.iter().collect();
    let chunks = chunks(&refs, 1000);
    let keys: Vec<Vec<&[u8]>> = chunks
        .iter()
        .map(|c| c.iter().map(|e| e.kv.key.as_slice()).collect())
        .collect();
    // Revision 2 alone exceeds the limit but stays whole; 3 and 4 fit together afterwards.
    assert_eq!(keys, vec![vec![&b"a"[..], b"b"], vec![b"c", b"d"]]);
}

#[test]
fn small_replays_travel_in_one_response() {
    let events = [put("a", 2, 1), put("b", 3, 1)];
    let refs: Vec<&Event> = events.iter().collect();
    assert_eq!(chunks(&refs, 1 << 20).len(), 1);
    assert!(chunks(&[], 10).is_empty());
}

#[test]
fn the_progress_interval_gets_at_most_a_tenth_of_jitter() {
    let base = Duration::from_secs(10);
    for _ in 0..20 {
        let d = jittered(base);
        assert!(d >= base && d < base + base / 10, "{d:?}");
    }
    assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
}
