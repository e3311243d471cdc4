//! Snapshots: the replicated state round-trips through serde and restores every derived index.

use super::support::*;
use crate::mvcc::*;

fn busy_store() -> Store {
    let mut s = store();
    grant(&mut s, 1, 20, 0).unwrap();
    grant(&mut s, 2, 30, 0).unwrap();
    s.apply(Command::Put(PutRequest {
        key: b("dapr/leadership/0"),
        value: b("x").into(),
        lease: 1,
        ..Default::default()
    }));
    put(&mut s, "dapr/jobs/a", "1");
    put(&mut s, "dapr/jobs/a", "2");
    delete(&mut s, DeleteRangeRequest::key("dapr/jobs/a"));
    put(&mut s, "dapr/jobs/b", "1");
    compact(&mut s, 3).unwrap();
    let act = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 9,
        alarm: AlarmType::Nospace,
    };
    s.apply(Command::Alarm(act));
    s
}

#[test]
fn a_restored_store_equals_the_original() {
    let s = busy_store();
    let json = serde_json::to_vec(s.state()).unwrap();
    let state: StoreState = serde_json::from_slice(&json).unwrap();
    let restored = Store::restore(StoreConfig::default(), state);
    assert_eq!(
        restored.state(),
        s.state(),
        "derived lease keys and sizes are rebuilt"
    );
    assert_eq!(restored.status(), s.status());
    let all = RangeRequest::prefix("");
    assert_eq!(restored.range(&all), s.range(&all));
    assert_eq!(
        restored.events_since(&KeyRange::From(vec![0]), 3, 100),
        s.events_since(&KeyRange::From(vec![0]), 3, 100)
    );
}

#[test]
fn a_restored_store_keeps_applying_identically() {
    let mut a = busy_store();
    let mut b = Store::restore(StoreConfig::default(), a.state().clone());
    let cmds = vec![
        Command::Alarm(AlarmRequest {
            action: AlarmAction::Deactivate,
            member_id: 9,
            alarm: AlarmType::Nospace,
        }),
        Command::Put(PutRequest::new("dapr/jobs/c", "1")),
        Command::LeaseRevoke(LeaseRevokeRequest { id: 1 }),
        Command::LeaseGrant(LeaseGrantRequest {
            id: 0,
            ttl: 5,
            now_ms: 0,
        }),
    ];
    for cmd in cmds {
        assert_eq!(a.apply(cmd.clone()), b.apply(cmd));
    }
    assert_eq!(a.state(), b.state());
}

#[test]
fn leases_restart_without_deadlines_until_promoted() {
    let s = busy_store();
    let mut restored = Store::restore(StoreConfig::default(), s.state().clone());
    assert!(!restored.is_primary());
    assert_eq!(restored.time_to_live(1, true, 0), Err(Error::NotPrimary));
    restored.promote(100_000, 0);
    let ttl = restored.time_to_live(1, true, 100_000).unwrap();
    assert_eq!((ttl.ttl, ttl.keys), (20, vec![b("dapr/leadership/0")]));
}
