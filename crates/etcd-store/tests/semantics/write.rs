//! KV.Put and KV.DeleteRange: previous values, ignore_value/ignore_lease, argument errors,
//! delete counts and the revision a write takes.

use dapr_proto::etcd::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};
use tonic::Code;

use crate::support::{assert_status, connect, connect_alone, header_revision, msg, prefix_end};

#[tokio::test]
async fn put_returns_the_previous_kv_when_asked() {
    let Some(mut etcd) = connect("put_prev_kv").await else {
        return;
    };
    let first = etcd
        .put_req(PutRequest {
            key: etcd.key("k"),
            value: b"v1".to_vec(),
            prev_kv: true,
            ..Default::default()
        })
        .await
        .expect("first put");
    assert!(first.prev_kv.is_none(), "no previous kv for a new key");
    let r1 = header_revision(first.header.as_ref());

    let second = etcd
        .put_req(PutRequest {
            key: etcd.key("k"),
            value: b"v2".to_vec(),
            prev_kv: true,
            ..Default::default()
        })
        .await
        .expect("second put");
    let prev = second.prev_kv.expect("previous kv");
    assert_eq!(
        (
            prev.value.as_slice(),
            prev.create_revision,
            prev.mod_revision,
            prev.version
        ),
        (&b"v1"[..], r1, r1, 1)
    );

    // Without the flag nothing is returned.
    let third = etcd
        .put_req(PutRequest {
            key: etcd.key("k"),
            value: b"v3".to_vec(),
            ..Default::default()
        })
        .await
        .expect("third put");
    assert!(third.prev_kv.is_none());
}

#[tokio::test]
async fn ignore_value_keeps_the_value_and_still_makes_a_new_version() {
    let Some(mut etcd) = connect("ignore_value").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "kept").await.header.as_ref());
    let response = etcd
        .put_req(PutRequest {
            key: etcd.key("k"),
            ignore_value: true,
            prev_kv: true,
            ..Default::default()
        })
        .await
        .expect("put with ignore_value");
    let r2 = header_revision(response.header.as_ref());
    assert_eq!(response.prev_kv.expect("prev kv").value, b"kept");
    let kv = etcd.get("k").await.expect("k");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"kept"[..], r1, r2, 2)
    );

    assert_status(
        etcd.put_req(PutRequest {
            key: etcd.key("absent"),
            ignore_value: true,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        msg::KEY_NOT_FOUND,
    );
    assert_status(
        etcd.put_req(PutRequest {
            key: etcd.key("absent"),
            ignore_lease: true,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        msg::KEY_NOT_FOUND,
    );
    assert_status(
        etcd.put_req(PutRequest {
            key: etcd.key("k"),
            value: b"x".to_vec(),
            ignore_value: true,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        msg::VALUE_PROVIDED,
    );
    assert_status(
        etcd.put_req(PutRequest {
            key: etcd.key("k"),
            lease: 1,
            ignore_lease: true,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        msg::LEASE_PROVIDED,
    );
}

#[tokio::test]
async fn an_empty_key_is_rejected() {
    let Some(mut etcd) = connect("empty_key").await else {
        return;
    };
    assert_status(
        etcd.put_req(PutRequest {
            key: Vec::new(),
            value: b"v".to_vec(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        msg::EMPTY_KEY,
    );
    assert_status(
        etcd.range(RangeRequest::default()).await,
        Code::InvalidArgument,
        msg::EMPTY_KEY,
    );
    assert_status(
        etcd.delete_req(DeleteRangeRequest::default()).await,
        Code::InvalidArgument,
        msg::EMPTY_KEY,
    );
}

#[tokio::test]
async fn delete_range_counts_and_returns_what_it_deleted() {
    let Some(mut etcd) = connect("delete").await else {
        return;
    };
    for name in ["d/a", "d/b", "d/c", "e"] {
        etcd.put(name, name).await;
    }
    let key = etcd.key("d/");
    let response = etcd
        .delete_req(DeleteRangeRequest {
            range_end: prefix_end(&key),
            key,
            prev_kv: true,
        })
        .await
        .expect("delete prefix");
    let revision = header_revision(response.header.as_ref());
    assert_eq!(response.deleted, 3);
    assert_eq!(etcd.names(&response.prev_kvs), ["d/a", "d/b", "d/c"]);
    assert_eq!(response.prev_kvs[1].value, b"d/b");
    assert_eq!(etcd.all_names().await, ["e"]);

    // One revision for the whole delete: every tombstone carries it (seen at the previous
    // revision all three exist, at this one none).
    let key = etcd.key("d/");
    let at = |revision| RangeRequest {
        key: key.clone(),
        range_end: prefix_end(&key),
        revision,
        count_only: true,
        ..Default::default()
    };
    assert_eq!(etcd.range(at(revision - 1)).await.expect("before").count, 3);
    assert_eq!(etcd.range(at(revision)).await.expect("after").count, 0);

    // Without prev_kv only the count comes back.
    let response = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("e"),
            ..Default::default()
        })
        .await
        .expect("delete e");
    assert_eq!((response.deleted, response.prev_kvs.len()), (1, 0));
}

#[tokio::test]
async fn deleting_nothing_does_not_move_the_revision() {
    let Some(mut etcd) = connect_alone("delete_nothing").await else {
        return;
    };
    let before = etcd.revision().await;
    let response = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("absent"),
            prev_kv: true,
            ..Default::default()
        })
        .await
        .expect("delete absent");
    assert_eq!((response.deleted, response.prev_kvs.len()), (0, 0));
    assert_eq!(header_revision(response.header.as_ref()), before);
    assert_eq!(etcd.revision().await, before);

    // A put always moves it by exactly one.
    let put = header_revision(etcd.put("k", "v").await.header.as_ref());
    assert_eq!(put, before + 1);
}

#[tokio::test]
async fn a_request_above_the_request_size_limit_is_rejected() {
    let Some(mut etcd) = connect("request_too_large").await else {
        return;
    };
    // etcd's default --max-request-bytes is 1.5 MiB; upstream's FillQuota writes 1 MiB values.
    let ok = PutRequest {
        key: etcd.key("1mib"),
        value: vec![b'x'; 1 << 20],
        ..Default::default()
    };
    etcd.put_req(ok).await.expect("a 1 MiB put");
    let big = PutRequest {
        key: etcd.key("big"),
        value: vec![b'x'; 1_600_000],
        ..Default::default()
    };
    assert_status(
        etcd.put_req(big).await,
        Code::InvalidArgument,
        msg::REQUEST_TOO_LARGE,
    );
    assert!(etcd.get("big").await.is_none());
}
