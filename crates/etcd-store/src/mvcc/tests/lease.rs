//! Leases (etcd `lease/lessor.go`, `etcdserver/apply.go` LeaseGrant/LeaseRevoke).

use super::support::*;
use crate::mvcc::*;

fn put_with_lease(s: &mut Store, k: &str, lease: LeaseId) -> Result<Response, Error> {
    s.apply(Command::Put(PutRequest {
        key: b(k),
        value: b("v").into(),
        lease,
        ..Default::default()
    }))
    .result
}

fn revoke(s: &mut Store, id: LeaseId) -> Applied {
    s.apply(Command::LeaseRevoke(LeaseRevokeRequest { id }))
}

#[test]
fn grant_raises_the_ttl_to_the_minimum_and_refuses_too_large_or_existing_ids() {
    let mut s = store();
    let g = grant(&mut s, 7, 1, 0).unwrap();
    assert_eq!((g.id, g.ttl, g.revision), (7, DEFAULT_MIN_LEASE_TTL, 1));
    assert_eq!(grant(&mut s, 8, 20, 0).unwrap().ttl, 20);
    // lease.ErrLeaseExists / ErrLeaseTTLTooLarge via rpctypes.
    assert_eq!(
        grant(&mut s, 7, 20, 0).unwrap_err().to_string(),
        "etcdserver: lease already exists"
    );
    let e = grant(&mut s, 9, MAX_LEASE_TTL + 1, 0).unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: too large lease TTL");
    assert_eq!(s.leases(), [7, 8]);
    assert_eq!(s.revision(), 1, "leases do not move the revision");
}

#[test]
fn grant_with_id_zero_picks_fresh_ids_deterministically() {
    let mut a = store();
    let mut b = store();
    grant(&mut a, 2, 10, 0).unwrap();
    grant(&mut b, 2, 10, 0).unwrap();
    let ids_a: Vec<_> = (0..3)
        .map(|_| grant(&mut a, 0, 10, 0).unwrap().id)
        .collect();
    let ids_b: Vec<_> = (0..3)
        .map(|_| grant(&mut b, 0, 10, 0).unwrap().id)
        .collect();
    assert_eq!(ids_a, ids_b);
    assert_eq!(ids_a, [1, 3, 4]);
    revoke(&mut a, 4);
    assert_eq!(
        grant(&mut a, 0, 10, 0).unwrap().id,
        5,
        "revoked ids are not handed out again soon"
    );
}

#[test]
fn a_put_needs_an_existing_lease() {
    // lease.ErrLeaseNotFound via rpctypes.ErrGRPCLeaseNotFound
    let mut s = store();
    let e = put_with_lease(&mut s, "a", 5).unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: requested lease not found");
    assert_eq!(e.code(), Code::NotFound);
}

#[test]
fn revoke_deletes_every_attached_key_in_one_revision() {
    let mut s = store();
    grant(&mut s, 1, 20, 0).unwrap();
    put_with_lease(&mut s, "a", 1).unwrap(); // 2
    put_with_lease(&mut s, "b", 1).unwrap(); // 3
    put(&mut s, "c", "free"); // 4
    let applied = revoke(&mut s, 1);
    assert_eq!(
        applied.result,
        Ok(Response::LeaseRevoke(LeaseRevokeResponse { revision: 5 }))
    );
    let deleted: Vec<_> = applied
        .events
        .iter()
        .map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision))
        .collect();
    assert_eq!(
        deleted,
        [
            (EventKind::Delete, b("a"), 5),
            (EventKind::Delete, b("b"), 5)
        ]
    );
    assert!(get(&s, "a").is_none() && get(&s, "c").is_some());
    assert!(s.leases().is_empty());
    assert_eq!(revoke(&mut s, 1).result, Err(Error::LeaseNotFound));
}

#[test]
fn revoking_a_lease_without_keys_keeps_the_revision() {
    let mut s = store();
    grant(&mut s, 1, 20, 0).unwrap();
    let applied = revoke(&mut s, 1);
    assert_eq!(applied.revision, 1);
    assert!(applied.events.is_empty());
}

#[test]
fn overwriting_or_deleting_a_key_detaches_it_from_its_lease() {
    let mut s = store();
    grant(&mut s, 1, 20, 0).unwrap();
    grant(&mut s, 2, 20, 0).unwrap();
    put_with_lease(&mut s, "a", 1).unwrap();
    put_with_lease(&mut s, "b", 1).unwrap();
    put_with_lease(&mut s, "c", 1).unwrap();
    put_with_lease(&mut s, "a", 2).unwrap(); // moves to lease 2
    put(&mut s, "b", "no lease"); // detaches
    delete(&mut s, DeleteRangeRequest::key("c"));
    s.promote(0, 0);
    assert!(s.time_to_live(1, true, 0).unwrap().keys.is_empty());
    assert_eq!(s.time_to_live(2, true, 0).unwrap().keys, [b("a")]);
    // ignore_lease keeps the attachment.
    s.apply(Command::Put(PutRequest {
        key: b("a"),
        value: b("x").into(),
        ignore_lease: true,
        ..Default::default()
    }));
    assert_eq!(get(&s, "a").unwrap().lease, 2);
    revoke(&mut s, 1);
    assert!(get(&s, "b").is_some());
}

#[test]
fn a_rolled_back_txn_leaves_lease_attachments_alone() {
    let mut s = store();
    grant(&mut s, 1, 20, 0).unwrap();
    put(&mut s, "k", "1");
    let ops = vec![
        RequestOp::DeleteRange(DeleteRangeRequest {
            key: b("a"),
            range_end: vec![0],
            prev_kv: false,
        }),
        RequestOp::Put(PutRequest {
            key: b("k"),
            lease: 1,
            ignore_value: true,
            ..Default::default()
        }),
    ];
    assert!(
        txn(
            &mut s,
            TxnRequest {
                success: ops,
                ..Default::default()
            }
        )
        .is_err()
    );
    s.promote(0, 0);
    assert!(s.time_to_live(1, true, 0).unwrap().keys.is_empty());
}

#[test]
fn only_the_primary_lessor_tracks_expiry() {
    let mut s = store();
    grant(&mut s, 1, 10, 0).unwrap();
    assert!(
        s.expired(1_000_000, 10).is_empty(),
        "followers never expire leases"
    );
    assert_eq!(s.renew(1, 0), Err(Error::NotPrimary));
    s.promote(1_000, 0);
    assert!(s.expired(10_999, 10).is_empty());
    assert_eq!(s.expired(11_000, 10), [1]);
    assert!(
        s.expired(12_000, 10).is_empty(),
        "reported once per retry interval"
    );
    assert_eq!(s.expired(11_000 + EXPIRED_RETRY_MS, 10), [1]);
    s.demote();
    assert!(s.expired(100_000, 10).is_empty());
}

#[test]
fn keep_alive_restarts_the_full_ttl() {
    let mut s = store();
    s.promote(0, 0);
    grant(&mut s, 1, 10, 0).unwrap();
    assert_eq!(s.time_to_live(1, false, 4_500).unwrap().ttl, 5);
    assert_eq!(s.renew(1, 8_000), Ok(10));
    assert_eq!(s.time_to_live(1, false, 8_000).unwrap().ttl, 10);
    assert!(s.expired(17_999, 10).is_empty());
    assert_eq!(s.expired(18_000, 10), [1]);
    // An expired lease is as good as revoked for keep-alives.
    assert_eq!(s.renew(1, 18_000), Err(Error::LeaseNotFound));
    assert_eq!(s.renew(99, 0), Err(Error::LeaseNotFound));
    assert_eq!(s.time_to_live(99, false, 0), Err(Error::LeaseNotFound));
}

#[test]
fn a_new_leader_gives_every_lease_its_full_ttl_again() {
    let mut s = store();
    s.promote(0, 0);
    grant(&mut s, 1, 20, 0).unwrap();
    s.demote();
    s.promote(15_000, 1_000);
    let ttl = s.time_to_live(1, false, 15_000).unwrap();
    assert_eq!((ttl.ttl, ttl.granted_ttl), (21, 20));
    assert!(s.expired(35_999, 10).is_empty());
}

#[test]
fn a_checkpoint_shortens_the_ttl_a_new_leader_grants() {
    let mut s = store();
    grant(&mut s, 1, 60, 0).unwrap();
    s.apply(Command::LeaseCheckpoint(vec![
        LeaseCheckpoint {
            id: 1,
            remaining_ttl: 7,
        },
        LeaseCheckpoint {
            id: 9,
            remaining_ttl: 1,
        },
    ]));
    s.promote(0, 0);
    assert_eq!(s.time_to_live(1, false, 0).unwrap().ttl, 7);
    assert_eq!(s.renew(1, 0), Ok(60));
}

#[test]
fn expiry_then_revoke_is_the_leaders_job() {
    let mut s = store();
    s.promote(0, 0);
    let id = grant(&mut s, 0, 20, 0).unwrap().id;
    s.apply(Command::Put(PutRequest {
        key: b("dapr/leadership/0"),
        value: b("x").into(),
        lease: id,
        ..Default::default()
    }));
    let due = s.expired(20_000, 10);
    assert_eq!(due, [id]);
    for id in due {
        let applied = revoke(&mut s, id);
        assert_eq!(applied.events.len(), 1);
    }
    assert!(get(&s, "dapr/leadership/0").is_none());
    assert!(s.expired(40_000, 10).is_empty());
}
