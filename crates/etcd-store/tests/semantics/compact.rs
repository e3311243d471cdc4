//! KV.Compact and what compaction does to reads and watches of old revisions. Compaction is
//! global, so these tests hold the server alone.

use dapr_proto::etcd::etcdserverpb::{
    CompactionRequest, CompactionResponse, RangeRequest, WatchCreateRequest,
};
use tonic::{Code, Status};

use crate::support::{Etcd, assert_status, connect_alone, header_revision, msg};

async fn compact(etcd: &mut Etcd, revision: i64) -> Result<CompactionResponse, Status> {
    etcd.kv
        .compact(CompactionRequest {
            revision,
            physical: true,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn reads_below_the_compacted_revision_fail_and_at_it_succeed() {
    let Some(mut etcd) = connect_alone("compact_reads").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("k", "v2").await.header.as_ref());
    let r3 = header_revision(etcd.put("k", "v3").await.header.as_ref());

    let response = compact(&mut etcd, r2).await.expect("compact");
    assert_eq!(header_revision(response.header.as_ref()), r3);

    let key = etcd.key("k");
    let at = |revision| RangeRequest {
        key: key.clone(),
        revision,
        ..Default::default()
    };
    assert_status(etcd.range(at(r1)).await, Code::OutOfRange, msg::COMPACTED);
    // The compacted revision itself stays readable; so does everything after it.
    let response = etcd
        .range(at(r2))
        .await
        .expect("read at the compacted revision");
    assert_eq!(response.kvs[0].value, b"v2");
    assert_eq!(
        (response.kvs[0].create_revision, response.kvs[0].version),
        (r1, 2)
    );
    assert_eq!(
        etcd.range(at(r3)).await.expect("read at r3").kvs[0].value,
        b"v3"
    );

    // Compacting again at or below it, or beyond the current revision, fails.
    assert_status(
        compact(&mut etcd, r2).await,
        Code::OutOfRange,
        msg::COMPACTED,
    );
    assert_status(
        compact(&mut etcd, r1).await,
        Code::OutOfRange,
        msg::COMPACTED,
    );
    assert_status(
        compact(&mut etcd, r3 + 1000).await,
        Code::OutOfRange,
        msg::FUTURE_REV,
    );
    // Compacting at the current revision is fine, and the latest values survive it.
    compact(&mut etcd, r3)
        .await
        .expect("compact at the current revision");
    let kv = etcd.get("k").await.expect("k");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"v3"[..], r1, r3, 3)
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_is_canceled_with_the_compact_revision() {
    let Some(mut etcd) = connect_alone("compact_watch").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("k", "v2").await.header.as_ref());
    compact(&mut etcd, r2).await.expect("compact");

    let (mut watcher, first) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("k"),
            start_revision: r1,
            ..Default::default()
        })
        .await;
    // etcd first confirms the watch, then cancels it naming the compaction.
    assert!(first.created && !first.canceled, "{first:?}");
    let canceled = watcher.next().await;
    assert!(canceled.canceled, "{canceled:?}");
    assert_eq!(
        (canceled.watch_id, canceled.compact_revision),
        (first.watch_id, r2)
    );
    assert!(canceled.events.is_empty());

    // From the compacted revision itself the watch works.
    let (mut watcher, created) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("k"),
            start_revision: r2,
            ..Default::default()
        })
        .await;
    assert!(
        created.created && created.compact_revision == 0,
        "{created:?}"
    );
    let events = watcher.events(1).await;
    assert_eq!(events[0].kv.as_ref().expect("kv").mod_revision, r2);
}
