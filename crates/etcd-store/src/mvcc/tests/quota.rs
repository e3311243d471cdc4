//! Space quota and the NOSPACE alarm (etcd `etcdserver/quota.go`, `apply.go` applierV3Capped).

use super::support::*;
use crate::mvcc::*;

const MIB: usize = 1 << 20;

fn small_quota() -> Store {
    Store::new(StoreConfig {
        quota_backend_bytes: 8 * MIB as i64,
        alarm_member_id: 7,
        ..StoreConfig::default()
    })
}

fn big_put(i: usize) -> Command {
    Command::Put(PutRequest::new(format!("dapr/jobs/{i}"), vec![b'x'; MIB]))
}

/// Puts 1 MiB values until one fails, as upstream's FillQuota does; returns how many succeeded.
fn fill(s: &mut Store) -> usize {
    for i in 0..64 {
        if let Err(e) = s.apply(big_put(i)).result {
            assert_eq!(e.to_string(), "etcdserver: mvcc: database space exceeded");
            assert_eq!(e.code(), Code::ResourceExhausted);
            return i;
        }
    }
    panic!("the quota never filled");
}

fn disarm_all(s: &mut Store) {
    for m in s.alarms(AlarmType::None) {
        let req = AlarmRequest {
            action: AlarmAction::Deactivate,
            member_id: m.member_id,
            alarm: m.alarm,
        };
        s.apply(Command::Alarm(req));
    }
}

#[test]
fn filling_the_quota_fails_the_write_and_raises_nospace() {
    let mut s = small_quota();
    let n = fill(&mut s);
    assert!((5..8).contains(&n), "{n} puts fit");
    assert!(
        get(&s, &format!("dapr/jobs/{n}")).is_none(),
        "the refused put was not applied"
    );
    assert_eq!(
        s.alarms(AlarmType::Nospace),
        [AlarmMember {
            alarm: AlarmType::Nospace,
            member_id: 7
        }]
    );
    let Ok(Response::Alarm(list)) = s.apply(Command::Alarm(AlarmRequest::default())).result else {
        panic!()
    };
    assert_eq!(list.alarms.len(), 1);
}

#[test]
fn while_nospace_is_raised_only_writes_that_add_data_are_refused() {
    let mut s = small_quota();
    grant(&mut s, 1, 20, 0).unwrap();
    fill(&mut s);
    // Even a tiny put is refused now.
    assert_eq!(
        s.apply(Command::Put(PutRequest::new("tiny", "1"))).result,
        Err(Error::NoSpace)
    );
    let put_txn = TxnRequest {
        failure: vec![put_op("x", "1")],
        ..Default::default()
    };
    assert_eq!(
        txn(&mut s, put_txn),
        Err(Error::NoSpace),
        "a put in either branch counts"
    );
    assert_eq!(grant(&mut s, 2, 20, 0), Err(Error::NoSpace));
    // Reads, deletes, delete-only txns, revokes and keep-alives still work.
    assert!(s.range(&RangeRequest::prefix("dapr/jobs/")).is_ok());
    assert_eq!(
        delete(&mut s, DeleteRangeRequest::key("dapr/jobs/0")).deleted,
        1
    );
    assert!(
        txn(
            &mut s,
            TxnRequest {
                success: vec![del_op("dapr/jobs/1", "")],
                ..Default::default()
            }
        )
        .is_ok()
    );
    s.promote(0, 0);
    assert!(s.renew(1, 0).is_ok());
    assert!(
        s.apply(Command::LeaseRevoke(LeaseRevokeRequest { id: 1 }))
            .result
            .is_ok()
    );
    // etcd's costTxn ignores puts inside nested txns, so those slip through.
    let nested = TxnRequest {
        success: vec![put_op("n", "1")],
        ..Default::default()
    };
    assert!(
        txn(
            &mut s,
            TxnRequest {
                success: vec![RequestOp::Txn(nested)],
                ..Default::default()
            }
        )
        .is_ok()
    );
}

#[test]
fn disarming_while_still_over_quota_lets_the_next_write_raise_it_again() {
    let mut s = small_quota();
    fill(&mut s);
    disarm_all(&mut s);
    assert!(s.alarms(AlarmType::None).is_empty());
    assert_eq!(s.apply(big_put(100)).result, Err(Error::NoSpace));
    assert_eq!(s.alarms(AlarmType::Nospace).len(), 1);
}

#[test]
fn delete_compact_defragment_disarm_recovers_like_upstreams_recover_quota() {
    let mut s = small_quota();
    fill(&mut s);
    delete(&mut s, DeleteRangeRequest::prefix("dapr/jobs"));
    let before = s.status();
    assert!(before.db_size >= 7 * MIB as u64);
    let rev = s.status().revision;
    compact(&mut s, rev).unwrap();
    let compacted = s.status();
    assert!(
        compacted.db_size_in_use < 64 * 1024,
        "compaction frees the history: {compacted:?}"
    );
    assert_eq!(
        compacted.db_size, before.db_size,
        "but the file keeps its size until defragment"
    );
    assert!(
        compacted.db_size >= 2 * compacted.db_size_in_use,
        "so the defrag loop would run"
    );
    s.apply(Command::Defragment);
    let defragged = s.status();
    assert_eq!(defragged.db_size, defragged.db_size_in_use);
    disarm_all(&mut s);
    assert!(s.apply(big_put(0)).result.is_ok());
}

#[test]
fn alarm_activate_and_deactivate_answer_like_etcd() {
    let mut s = store();
    let act = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 3,
        alarm: AlarmType::Nospace,
    };
    let Ok(Response::Alarm(r)) = s.apply(Command::Alarm(act)).result else {
        panic!()
    };
    assert_eq!(
        r.alarms,
        [AlarmMember {
            alarm: AlarmType::Nospace,
            member_id: 3
        }]
    );
    let none = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 3,
        alarm: AlarmType::None,
    };
    let Ok(Response::Alarm(r)) = s.apply(Command::Alarm(none)).result else {
        panic!()
    };
    assert!(r.alarms.is_empty());
    let get_corrupt = AlarmRequest {
        action: AlarmAction::Get,
        member_id: 0,
        alarm: AlarmType::Corrupt,
    };
    let Ok(Response::Alarm(r)) = s.apply(Command::Alarm(get_corrupt)).result else {
        panic!()
    };
    assert!(r.alarms.is_empty());
    let off = AlarmRequest {
        action: AlarmAction::Deactivate,
        member_id: 4,
        alarm: AlarmType::Nospace,
    };
    let Ok(Response::Alarm(r)) = s.apply(Command::Alarm(off)).result else {
        panic!()
    };
    assert!(
        r.alarms.is_empty(),
        "deactivating another member's alarm removes nothing"
    );
    assert_eq!(s.status().alarms.len(), 1);
}

#[test]
fn a_corrupt_alarm_stops_reads_and_writes() {
    let mut s = store();
    let act = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 1,
        alarm: AlarmType::Corrupt,
    };
    s.apply(Command::Alarm(act));
    let e = s
        .apply(Command::Put(PutRequest::new("a", "1")))
        .result
        .unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: corrupt cluster");
    assert_eq!(s.range(&RangeRequest::key("a")), Err(Error::Corrupt));
}

#[test]
fn a_negative_quota_disables_it_and_zero_means_two_gib() {
    let off = Store::new(StoreConfig {
        quota_backend_bytes: -1,
        ..StoreConfig::default()
    });
    assert!(off.quota_available(u64::MAX));
    let default = store();
    assert_eq!(default.config().quota_bytes(), Some(DEFAULT_QUOTA_BYTES));
    // The scheduler's default --etcd-space-quota of 9.2E does not overflow anything.
    let huge = Store::new(StoreConfig {
        quota_backend_bytes: i64::MAX,
        ..StoreConfig::default()
    });
    assert!(huge.quota_available(1 << 40));
}

#[test]
fn db_size_is_a_high_water_mark_and_in_use_tracks_history() {
    let mut s = store();
    let empty = s.status();
    assert_eq!(empty.db_size, empty.db_size_in_use);
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    let two = s.status();
    assert!(two.db_size_in_use > empty.db_size_in_use);
    compact(&mut s, 3).unwrap();
    let after = s.status();
    assert!(after.db_size_in_use < two.db_size_in_use);
    assert_eq!(after.db_size, two.db_size);
}
