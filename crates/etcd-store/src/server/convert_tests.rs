use dapr_proto::etcd::etcdserverpb::{
    compare::{CompareResult as PbResult, CompareTarget as PbTarget, TargetUnion},
    range_request::{SortOrder as PbOrder, SortTarget as PbTarget2},
    request_op::Request,
    response_op::Response as PbResponse,
};
use tonic::Code;

use super::*;

fn put_op(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(Request::RequestPut(pb::PutRequest {
            key: key.to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        })),
    }
}

#[test]
fn a_range_request_keeps_every_field_and_maps_the_sort_enums() {
    let r = range_request(pb::RangeRequest {
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
        limit: 3,
        revision: 7,
        sort_order: PbOrder::Descend.into(),
        sort_target: PbTarget2::Mod.into(),
        serializable: true,
        keys_only: true,
        count_only: false,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: 4,
    });
    assert_eq!(
        r,
        RangeRequest {
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
            limit: 3,
            revision: 7,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Mod,
            keys_only: true,
            count_only: false,
            min_mod_revision: 1,
            max_mod_revision: 2,
            min_create_revision: 3,
            max_create_revision: 4,
        }
    );
}

#[test]
fn unknown_sort_enums_mean_no_sort_by_key() {
    let r = range_request(pb::RangeRequest {
        key: b"a".to_vec(),
        sort_order: 42,
        sort_target: 42,
        ..Default::default()
    });
    assert_eq!(
        (r.sort_order, r.sort_target),
        (SortOrder::None, SortTarget::Key)
    );
}

#[test]
fn a_compare_reads_its_target_union_and_zero_when_the_union_is_of_another_kind() {
    let c = compare(pb::Compare {
        result: PbResult::Greater.into(),
        target: PbTarget::Mod.into(),
        key: b"k".to_vec(),
        range_end: vec![],
        target_union: Some(TargetUnion::ModRevision(9)),
    })
    .expect("valid compare");
    assert_eq!(
        c,
        Compare::new(b"k".to_vec(), CompareResult::Greater, CompareTarget::Mod(9))
    );

    let c = compare(pb::Compare {
        result: PbResult::Equal.into(),
        target: PbTarget::Create.into(),
        key: b"k".to_vec(),
        range_end: vec![],
        target_union: Some(TargetUnion::Value(b"x".to_vec())),
    })
    .expect("valid compare");
    assert_eq!(c.target, CompareTarget::Create(0));

    let c = compare(pb::Compare {
        target: PbTarget::Value.into(),
        key: b"k".to_vec(),
        ..Default::default()
    })
    .expect("valid compare");
    assert_eq!(c.target, CompareTarget::Value(Vec::new()));
}

#[test]
fn a_compare_with_an_unknown_result_is_refused() {
    let status = compare(pb::Compare {
        result: 9,
        key: b"k".to_vec(),
        ..Default::default()
    })
    .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[test]
fn a_nested_txn_converts_recursively() {
    let inner = pb::TxnRequest {
        success: vec![put_op(b"b")],
        ..Default::default()
    };
    let t = txn_request(pb::TxnRequest {
        compare: vec![],
        success: vec![
            put_op(b"a"),
            pb::RequestOp {
                request: Some(Request::RequestTxn(inner)),
            },
        ],
        failure: vec![pb::RequestOp {
            request: Some(Request::RequestDeleteRange(pb::DeleteRangeRequest {
                key: b"a".to_vec(),
                range_end: vec![0],
                prev_kv: true,
            })),
        }],
    })
    .expect("valid txn");
    assert_eq!(t.success.len(), 2);
    match &t.success[1] {
        RequestOp::Txn(inner) => assert_eq!(
            inner.success,
            vec![RequestOp::Put(PutRequest::new("b", "v"))]
        ),
        other => panic!("expected a nested txn, got {other:?}"),
    }
    assert_eq!(
        t.failure,
        vec![RequestOp::DeleteRange(DeleteRangeRequest {
            key: b"a".to_vec(),
            range_end: vec![0],
            prev_kv: true
        })]
    );
}

#[test]
fn the_txn_checks_follow_etcds_order_and_messages() {
    let message = |r: Result<(), Status>| r.expect_err("refused").message().to_owned();
    let two = pb::TxnRequest {
        success: vec![put_op(b"a"), put_op(b"b")],
        ..Default::default()
    };
    assert_eq!(
        message(check_txn(&two, 1)),
        "etcdserver: too many operations in txn request"
    );
    check_txn(&two, 2).expect("at the limit");

    let empty_op = pb::TxnRequest {
        success: vec![pb::RequestOp { request: None }],
        ..Default::default()
    };
    assert_eq!(
        message(check_txn(&empty_op, 10)),
        "etcdserver: key not found"
    );

    let empty_key = pb::TxnRequest {
        success: vec![put_op(b"")],
        ..Default::default()
    };
    assert_eq!(
        message(check_txn(&empty_key, 10)),
        "etcdserver: key is not provided"
    );

    // A nested txn gets what the outer one left: 2 - 1 = 1 op.
    let nested = pb::TxnRequest {
        success: vec![pb::RequestOp {
            request: Some(Request::RequestTxn(two)),
        }],
        ..Default::default()
    };
    assert_eq!(
        message(check_txn(&nested, 2)),
        "etcdserver: too many operations in txn request"
    );
}

#[test]
fn put_checks_match_etcds_messages() {
    let check = |r: pb::PutRequest| check_put(&r).map_err(|s| (s.code(), s.message().to_owned()));
    assert_eq!(
        check(pb::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ignore_value: true,
            ..Default::default()
        }),
        Err((
            Code::InvalidArgument,
            "etcdserver: value is provided".to_owned()
        ))
    );
    assert_eq!(
        check(pb::PutRequest {
            key: b"k".to_vec(),
            lease: 5,
            ignore_lease: true,
            ..Default::default()
        }),
        Err((
            Code::InvalidArgument,
            "etcdserver: lease is provided".to_owned()
        ))
    );
    assert_eq!(
        check(pb::PutRequest {
            key: b"k".to_vec(),
            ..Default::default()
        }),
        Ok(())
    );
}

#[test]
fn responses_inside_a_txn_carry_only_their_revision() {
    let t = TxnResponse {
        revision: 5,
        succeeded: true,
        responses: vec![
            ResponseOp::Put(PutResponse {
                revision: 5,
                prev_kv: None,
            }),
            ResponseOp::Txn(TxnResponse {
                revision: 0,
                succeeded: false,
                responses: vec![],
            }),
        ],
    };
    let header = pb::ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 5,
        raft_term: 3,
    };
    let out = txn_response(t, Some(header));
    assert_eq!(out.header, Some(header));
    match &out.responses[0].response {
        Some(PbResponse::ResponsePut(p)) => {
            assert_eq!(
                p.header,
                Some(pb::ResponseHeader {
                    revision: 5,
                    ..Default::default()
                })
            );
        }
        other => panic!("expected a put response, got {other:?}"),
    }
    match &out.responses[1].response {
        Some(PbResponse::ResponseTxn(t)) => assert!(!t.succeeded),
        other => panic!("expected a txn response, got {other:?}"),
    }
}

#[test]
fn an_event_keeps_prev_kv_only_when_asked() {
    let e = Event {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: b"k".to_vec(),
            mod_revision: 4,
            ..Default::default()
        },
        prev_kv: Some(KeyValue {
            key: b"k".to_vec(),
            value: b"old".to_vec().into(),
            mod_revision: 3,
            create_revision: 3,
            version: 1,
            lease: 0,
        }),
    };
    let with = event(&e, true);
    assert_eq!(with.r#type, i32::from(EventType::Delete));
    assert_eq!(with.kv.as_ref().map(|kv| kv.mod_revision), Some(4));
    assert_eq!(with.prev_kv.map(|kv| kv.value), Some(b"old".to_vec()));
    assert_eq!(event(&e, false).prev_kv, None);
}
