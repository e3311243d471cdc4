//! KV.Txn: compares on value/version/create/mod revision, Then/Else branches, nesting, and the
//! revision a transaction takes.

use dapr_proto::etcd::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader, ResponseOp,
    TxnRequest, TxnResponse,
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op::Request,
    response_op::Response,
};
use tonic::{Code, Status};

use crate::support::{
    Etcd, assert_status, connect, connect_alone, header_revision, msg, prefix_end,
};

fn compare(key: Vec<u8>, result: CompareResult, target: TargetUnion) -> Compare {
    let target_kind = match target {
        TargetUnion::Version(_) => CompareTarget::Version,
        TargetUnion::CreateRevision(_) => CompareTarget::Create,
        TargetUnion::ModRevision(_) => CompareTarget::Mod,
        TargetUnion::Value(_) => CompareTarget::Value,
        TargetUnion::Lease(_) => CompareTarget::Lease,
    };
    Compare {
        result: result.into(),
        target: target_kind.into(),
        key,
        target_union: Some(target),
        range_end: Vec::new(),
    }
}

fn put(key: Vec<u8>, value: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })),
    }
}

fn get(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key,
            ..Default::default()
        })),
    }
}

fn delete(key: Vec<u8>, range_end: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key,
            range_end,
            prev_kv: true,
        })),
    }
}

/// The header of one op's response inside a txn response.
fn op_header(op: &ResponseOp) -> Option<&ResponseHeader> {
    match op.response.as_ref()? {
        Response::ResponseRange(r) => r.header.as_ref(),
        Response::ResponsePut(r) => r.header.as_ref(),
        Response::ResponseDeleteRange(r) => r.header.as_ref(),
        Response::ResponseTxn(r) => r.header.as_ref(),
    }
}

impl Etcd {
    async fn txn(&mut self, request: TxnRequest) -> Result<TxnResponse, Status> {
        self.kv.txn(request).await.map(tonic::Response::into_inner)
    }
}

#[tokio::test]
async fn compares_pick_the_branch_and_report_succeeded() {
    let Some(mut etcd) = connect("txn_compare").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("k", "v2").await.header.as_ref());
    let k = etcd.key("k");
    let cases = [
        (
            CompareResult::Equal,
            TargetUnion::Value(b"v2".to_vec()),
            true,
        ),
        (
            CompareResult::Equal,
            TargetUnion::Value(b"v1".to_vec()),
            false,
        ),
        (
            CompareResult::NotEqual,
            TargetUnion::Value(b"v1".to_vec()),
            true,
        ),
        (
            CompareResult::Greater,
            TargetUnion::Value(b"v1".to_vec()),
            true,
        ),
        (
            CompareResult::Less,
            TargetUnion::Value(b"v3".to_vec()),
            true,
        ),
        (CompareResult::Equal, TargetUnion::Version(2), true),
        (CompareResult::Greater, TargetUnion::Version(2), false),
        (CompareResult::Less, TargetUnion::Version(3), true),
        (CompareResult::Equal, TargetUnion::CreateRevision(r1), true),
        (CompareResult::Equal, TargetUnion::CreateRevision(0), false),
        (CompareResult::Equal, TargetUnion::ModRevision(r2), true),
        (CompareResult::Equal, TargetUnion::ModRevision(r1), false),
        (CompareResult::Less, TargetUnion::ModRevision(r2 + 1), true),
        (CompareResult::Equal, TargetUnion::Lease(0), true),
    ];
    for (result, target, want) in cases {
        let label = format!("{result:?} {target:?}");
        let response = etcd
            .txn(TxnRequest {
                compare: vec![compare(k.clone(), result, target)],
                success: vec![get(k.clone())],
                failure: vec![],
            })
            .await
            .expect("txn");
        assert_eq!(response.succeeded, want, "{label}");
        // Only the chosen branch runs: an empty failure branch answers no responses.
        assert_eq!(response.responses.len(), usize::from(want), "{label}");
    }

    // All compares must hold (AND).
    let response = etcd
        .txn(TxnRequest {
            compare: vec![
                compare(
                    k.clone(),
                    CompareResult::Equal,
                    TargetUnion::Value(b"v2".to_vec()),
                ),
                compare(k.clone(), CompareResult::Equal, TargetUnion::Version(1)),
            ],
            ..Default::default()
        })
        .await
        .expect("txn");
    assert!(!response.succeeded);
}

#[tokio::test]
async fn compares_on_a_missing_key_see_zero_and_never_a_value() {
    let Some(mut etcd) = connect("txn_missing").await else {
        return;
    };
    let k = etcd.key("absent");
    let cases = [
        (CompareResult::Equal, TargetUnion::CreateRevision(0), true),
        (CompareResult::Equal, TargetUnion::ModRevision(0), true),
        (CompareResult::Equal, TargetUnion::Version(0), true),
        (CompareResult::Equal, TargetUnion::Value(Vec::new()), false),
        (
            CompareResult::NotEqual,
            TargetUnion::Value(b"x".to_vec()),
            false,
        ),
    ];
    for (result, target, want) in cases {
        let label = format!("{result:?} {target:?}");
        let response = etcd
            .txn(TxnRequest {
                compare: vec![compare(k.clone(), result, target)],
                ..Default::default()
            })
            .await
            .expect("txn");
        assert_eq!(response.succeeded, want, "{label}");
    }
}

#[tokio::test]
async fn the_create_revision_zero_idiom_creates_only_once() {
    let Some(mut etcd) = connect("txn_create_once").await else {
        return;
    };
    let k = etcd.key("lock");
    let create_once = |value: &str| TxnRequest {
        compare: vec![compare(
            k.clone(),
            CompareResult::Equal,
            TargetUnion::CreateRevision(0),
        )],
        success: vec![put(k.clone(), value)],
        failure: vec![get(k.clone())],
    };

    let first = etcd.txn(create_once("first")).await.expect("first txn");
    assert!(first.succeeded);
    let revision = header_revision(first.header.as_ref());
    match &first.responses[..] {
        [op] => match &op.response {
            Some(Response::ResponsePut(put)) => {
                assert_eq!(header_revision(put.header.as_ref()), revision);
            }
            other => panic!("expected a put response, got {other:?}"),
        },
        other => panic!("expected one response, got {other:?}"),
    }

    let second = etcd.txn(create_once("second")).await.expect("second txn");
    assert!(!second.succeeded);
    match &second.responses[..] {
        [op] => match &op.response {
            Some(Response::ResponseRange(range)) => {
                assert_eq!(range.kvs[0].value, b"first");
                assert_eq!(range.kvs[0].create_revision, revision);
            }
            other => panic!("expected a range response, got {other:?}"),
        },
        other => panic!("expected one response, got {other:?}"),
    }
}

#[tokio::test]
async fn every_write_of_a_txn_shares_one_revision_and_later_ops_see_earlier_ones() {
    let Some(mut etcd) = connect("txn_one_revision").await else {
        return;
    };
    etcd.put("old/1", "x").await;
    etcd.put("old/2", "y").await;
    let old = etcd.key("old/");
    let response = etcd
        .txn(TxnRequest {
            compare: vec![],
            success: vec![
                put(etcd.key("a"), "1"),
                put(etcd.key("b"), "2"),
                delete(old.clone(), prefix_end(&old)),
                get(etcd.key("a")),
            ],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert!(response.succeeded, "no compares: success");
    let revision = header_revision(response.header.as_ref());
    // Each op's own header carries only the revision (etcd fills cluster/member/term on the
    // outer header alone).
    for op in &response.responses {
        assert_eq!(
            op_header(op),
            Some(&ResponseHeader {
                revision,
                ..Default::default()
            })
        );
    }
    let a = etcd.get("a").await.expect("a");
    let b = etcd.get("b").await.expect("b");
    assert_eq!((a.mod_revision, b.mod_revision), (revision, revision));
    match &response.responses[2].response {
        Some(Response::ResponseDeleteRange(delete)) => {
            assert_eq!(delete.deleted, 2);
            assert_eq!(etcd.names(&delete.prev_kvs), ["old/1", "old/2"]);
        }
        other => panic!("expected a delete response, got {other:?}"),
    }
    // A read after a write in the same txn sees the write.
    match &response.responses[3].response {
        Some(Response::ResponseRange(range)) => {
            assert_eq!(range.kvs[0].value, b"1");
            assert_eq!(range.kvs[0].mod_revision, revision);
        }
        other => panic!("expected a range response, got {other:?}"),
    }
}

#[tokio::test]
async fn txns_nest_in_then_and_else() {
    let Some(mut etcd) = connect("txn_nested").await else {
        return;
    };
    etcd.put("flag", "on").await;
    let flag = etcd.key("flag");
    let inner = TxnRequest {
        compare: vec![compare(
            flag.clone(),
            CompareResult::Equal,
            TargetUnion::Value(b"off".to_vec()),
        )],
        success: vec![put(etcd.key("inner-then"), "x")],
        failure: vec![put(etcd.key("inner-else"), "y")],
    };
    let outer = TxnRequest {
        compare: vec![compare(
            flag.clone(),
            CompareResult::Equal,
            TargetUnion::Value(b"on".to_vec()),
        )],
        success: vec![
            put(etcd.key("outer-then"), "z"),
            RequestOp {
                request: Some(Request::RequestTxn(inner)),
            },
        ],
        failure: vec![put(etcd.key("outer-else"), "w")],
    };
    let response = etcd.txn(outer).await.expect("nested txn");
    assert!(response.succeeded);
    match &response.responses[1].response {
        Some(Response::ResponseTxn(inner)) => {
            assert!(!inner.succeeded);
            assert_eq!(inner.responses.len(), 1);
            // etcd leaves a nested txn's own header all zero (revision included), while the ops
            // inside it carry the outer revision like any op of a txn.
            assert_eq!(inner.header, Some(ResponseHeader::default()));
            let revision = header_revision(response.header.as_ref());
            assert_eq!(
                op_header(&inner.responses[0]),
                Some(&ResponseHeader {
                    revision,
                    ..Default::default()
                })
            );
        }
        other => panic!("expected a txn response, got {other:?}"),
    }
    assert_eq!(etcd.all_names().await, ["flag", "inner-else", "outer-then"]);
}

#[tokio::test]
async fn a_txn_writing_one_key_twice_is_rejected() {
    let Some(mut etcd) = connect("txn_duplicate").await else {
        return;
    };
    let k = etcd.key("k");
    let request = TxnRequest {
        success: vec![put(k.clone(), "1"), put(k.clone(), "2")],
        ..Default::default()
    };
    assert_status(
        etcd.txn(request).await,
        Code::InvalidArgument,
        msg::DUPLICATE_KEY,
    );

    // A put inside a deleted range counts as writing the same key twice too.
    let request = TxnRequest {
        success: vec![
            delete(etcd.prefix(), prefix_end(&etcd.prefix())),
            put(k.clone(), "1"),
        ],
        ..Default::default()
    };
    assert_status(
        etcd.txn(request).await,
        Code::InvalidArgument,
        msg::DUPLICATE_KEY,
    );

    // The same key in Then and Else is fine: only one branch runs.
    let request = TxnRequest {
        success: vec![put(k.clone(), "1")],
        failure: vec![put(k.clone(), "2")],
        ..Default::default()
    };
    assert!(etcd.txn(request).await.expect("txn").succeeded);
    assert!(etcd.get("k").await.is_some());
}

#[tokio::test]
async fn a_read_only_txn_does_not_move_the_revision() {
    let Some(mut etcd) = connect_alone("txn_read_only").await else {
        return;
    };
    let written = header_revision(etcd.put("k", "v").await.header.as_ref());
    let k = etcd.key("k");
    let response = etcd
        .txn(TxnRequest {
            compare: vec![compare(
                k.clone(),
                CompareResult::Equal,
                TargetUnion::Value(b"v".to_vec()),
            )],
            success: vec![get(k.clone())],
            failure: vec![],
        })
        .await
        .expect("read-only txn");
    assert_eq!(header_revision(response.header.as_ref()), written);

    // Nor does a txn whose only write deletes nothing, or a failed compare with no else.
    let response = etcd
        .txn(TxnRequest {
            success: vec![delete(etcd.key("absent"), Vec::new())],
            ..Default::default()
        })
        .await
        .expect("empty delete txn");
    assert_eq!(header_revision(response.header.as_ref()), written);
    let response = etcd
        .txn(TxnRequest {
            compare: vec![compare(
                k.clone(),
                CompareResult::Equal,
                TargetUnion::Value(b"other".to_vec()),
            )],
            success: vec![put(k.clone(), "w")],
            failure: vec![],
        })
        .await
        .expect("failed txn");
    assert!(!response.succeeded);
    assert_eq!(header_revision(response.header.as_ref()), written);
    assert_eq!(etcd.revision().await, written);
}

#[tokio::test]
async fn a_txn_above_max_txn_ops_is_rejected() {
    // The limit is a server flag (etcd --max-txn-ops, default 128; the scheduler passes its own
    // --etcd-max-txn-ops); the script tells the suite what the server under test was given.
    let Some(max) = std::env::var("ETCD_MAX_TXN_OPS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        println!("a_txn_above_max_txn_ops_is_rejected: skipped: ETCD_MAX_TXN_OPS not set");
        return;
    };
    let Some(mut etcd) = connect("txn_max_ops").await else {
        return;
    };
    let keys: Vec<_> = (0..=max).map(|i| etcd.key(&format!("k{i:05}"))).collect();
    let puts = |n: usize| {
        keys[..n]
            .iter()
            .map(|k| put(k.clone(), "v"))
            .collect::<Vec<_>>()
    };
    // The count is the largest of compares, success and failure, not their sum.
    let request = TxnRequest {
        success: puts(max),
        failure: puts(max),
        ..Default::default()
    };
    let response = etcd.txn(request).await.expect("txn at the limit");
    assert_eq!(response.responses.len(), max);
    let request = TxnRequest {
        success: puts(max + 1),
        ..Default::default()
    };
    assert_status(
        etcd.txn(request).await,
        Code::InvalidArgument,
        msg::TOO_MANY_OPS,
    );
}
