//! The space quota, end to end as upstream's `FillQuota`/`RecoverQuota` drive it: fill the
//! database until `database space exceeded`, see the NOSPACE alarm and what it blocks, then
//! delete, compact, defragment and disarm until writes work again.
//!
//! Filling the database disturbs every other client of the server, so this is its own test
//! binary with a single test, which `hack/etcd/test-store.sh` runs after the main suite. It
//! needs `ETCD_QUOTA_BYTES` (the server's `--quota-backend-bytes`) and skips unless that is at
//! most [`MAX_QUOTA`]: filling a large quota would take too long.

#[path = "semantics/support.rs"]
mod support;

use dapr_proto::etcd::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmType, CompactionRequest, DefragmentRequest, DeleteRangeRequest,
    LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, alarm_request::AlarmAction,
    request_op::Request,
};
use tonic::{Code, Status};

use support::{Etcd, assert_status, connect_alone, header_revision, msg, prefix_end};

/// The largest quota this test fills (in 1 MiB puts, as upstream's `FillQuota` does).
const MAX_QUOTA: u64 = 64 << 20;
const VALUE_SIZE: usize = 1 << 20;

async fn alarms(etcd: &mut Etcd) -> Vec<AlarmMember> {
    let request = AlarmRequest {
        action: AlarmAction::Get.into(),
        member_id: 0,
        alarm: AlarmType::None.into(),
    };
    etcd.maintenance
        .alarm(request)
        .await
        .expect("alarm list")
        .into_inner()
        .alarms
}

/// RecoverQuota's disarm: one DEACTIVATE per listed alarm, each answered with that alarm.
async fn disarm_all(etcd: &mut Etcd) {
    for alarm in alarms(etcd).await {
        let request = AlarmRequest {
            action: AlarmAction::Deactivate.into(),
            member_id: alarm.member_id,
            alarm: alarm.alarm,
        };
        let disarmed = etcd
            .maintenance
            .alarm(request)
            .await
            .expect("disarm")
            .into_inner();
        assert_eq!(
            disarmed.alarms,
            [alarm],
            "disarm answers the alarm it removed"
        );
    }
    assert!(
        alarms(etcd).await.is_empty(),
        "no alarm left after disarming"
    );
}

fn put_op(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value: b"v".to_vec(),
            ..Default::default()
        })),
    }
}

async fn txn(etcd: &mut Etcd, request: TxnRequest) -> Result<bool, Status> {
    etcd.kv.txn(request).await.map(|r| r.into_inner().succeeded)
}

#[tokio::test]
async fn filling_the_quota_raises_nospace_until_compact_defrag_and_disarm() {
    let Some(quota) = std::env::var("ETCD_QUOTA_BYTES")
        .ok()
        .and_then(|q| q.parse::<u64>().ok())
    else {
        println!("skipped: ETCD_QUOTA_BYTES not set");
        return;
    };
    if quota > MAX_QUOTA {
        println!("skipped: ETCD_QUOTA_BYTES {quota} is above {MAX_QUOTA}");
        return;
    }
    let Some(mut etcd) = connect_alone("quota").await else {
        return;
    };
    assert!(
        alarms(&mut etcd).await.is_empty(),
        "the server starts without alarms"
    );
    let member_id = etcd.status().await.header.expect("header").member_id;

    // Fill: 1 MiB values until the server refuses. Bounded: the quota counts the database file,
    // which grows by at least the value size per put.
    let value = vec![b'x'; VALUE_SIZE];
    let mut filled = 0;
    let error = loop {
        assert!(
            filled <= 2 * quota / VALUE_SIZE as u64 + 8,
            "{filled} MiB written into a {quota} byte quota"
        );
        let request = PutRequest {
            key: etcd.key(&format!("fill/{filled:04}")),
            value: value.clone(),
            ..Default::default()
        };
        match etcd.put_req(request).await {
            Ok(_) => filled += 1,
            Err(status) => break status,
        }
    };
    assert_eq!(
        (error.code(), error.message()),
        (Code::ResourceExhausted, msg::NO_SPACE),
        "after {filled} puts: {error:?}"
    );
    assert!(filled > 0, "the first put already failed");

    // The alarm is raised, for this member.
    let raised = alarms(&mut etcd).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (raised[0].member_id, raised[0].alarm),
        (member_id, i32::from(AlarmType::Nospace))
    );
    // Status lists it too, in gogoproto's text form of the AlarmMember (trailing space included).
    let status = etcd.status().await;
    assert_eq!(
        status.errors,
        [format!("memberID:{member_id} alarm:NOSPACE ")],
        "{status:?}"
    );

    // Disarming while the database is still full only lasts until the next write that does not
    // fit. (etcd is usually a little *over* the quota here — its size is only refreshed when a
    // backend batch commits, so a few puts pass on a stale size — and then even a 1-byte put
    // re-raises the alarm; our store accounts every write at once and stops just *under* it, so
    // the write used here is one that cannot fit on either.)
    disarm_all(&mut etcd).await;
    let big = PutRequest {
        key: etcd.key("after-disarm"),
        value: vec![b'x'; 1 << 20],
        ..Default::default()
    };
    assert_status(
        etcd.put_req(big).await,
        Code::ResourceExhausted,
        msg::NO_SPACE,
    );
    let small = PutRequest {
        key: etcd.key("small"),
        value: b"v".to_vec(),
        ..Default::default()
    };
    assert_eq!(
        alarms(&mut etcd).await,
        raised,
        "the write raised the alarm again"
    );

    // While it is raised every write that adds data is refused, however small.
    assert_status(
        etcd.put_req(small.clone()).await,
        Code::ResourceExhausted,
        msg::NO_SPACE,
    );
    let grant = etcd
        .lease
        .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
        .await
        .map(tonic::Response::into_inner);
    assert_status(grant, Code::ResourceExhausted, msg::NO_SPACE);
    let put_txn = TxnRequest {
        success: vec![put_op(etcd.key("small"))],
        ..Default::default()
    };
    assert_status(
        txn(&mut etcd, put_txn.clone()).await,
        Code::ResourceExhausted,
        msg::NO_SPACE,
    );

    // Reads, deletes and delete-only txns still work.
    let prefix = etcd.key("fill/");
    let count = etcd
        .range(RangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            count_only: true,
            ..Default::default()
        })
        .await
        .expect("range under NOSPACE")
        .count;
    assert_eq!(count, filled as i64);
    let delete_txn = TxnRequest {
        success: vec![RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: etcd.key("fill/0000"),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    assert!(
        txn(&mut etcd, delete_txn)
            .await
            .expect("delete-only txn under NOSPACE")
    );
    let deleted = etcd
        .delete_req(DeleteRangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            ..Default::default()
        })
        .await
        .expect("delete under NOSPACE");
    assert_eq!(deleted.deleted, filled as i64 - 1);

    // Deleting alone does not lift the alarm.
    assert_status(
        etcd.put_req(small.clone()).await,
        Code::ResourceExhausted,
        msg::NO_SPACE,
    );

    // RecoverQuota: compact at the current revision, defragment, disarm every listed alarm.
    let revision = etcd.status().await.header.expect("header").revision;
    assert_eq!(revision, header_revision(deleted.header.as_ref()));
    etcd.kv
        .compact(CompactionRequest {
            revision,
            physical: true,
        })
        .await
        .expect("compact under NOSPACE");
    etcd.maintenance
        .defragment(DefragmentRequest {})
        .await
        .expect("defragment under NOSPACE");
    let status = etcd.status().await;
    assert!(
        status.db_size < quota as i64,
        "defragment shrank the file below the quota: {status:?}"
    );
    disarm_all(&mut etcd).await;
    assert!(etcd.status().await.errors.is_empty());

    // Writes work again.
    etcd.put_req(small).await.expect("put after recovery");
    assert!(txn(&mut etcd, put_txn).await.expect("txn after recovery"));
    let lease = etcd
        .lease
        .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
        .await
        .expect("grant after recovery");
    assert!(lease.into_inner().id > 0);
}
