//! KV.Range: single keys, range ends, paging, count/keys only, sorting and past revisions.

use dapr_proto::etcd::etcdserverpb::{
    DeleteRangeRequest, RangeRequest,
    range_request::{SortOrder, SortTarget},
};
use tonic::Code;

use crate::support::{assert_status, connect, header_revision, msg, prefix_end};

#[tokio::test]
async fn a_single_key_range_returns_its_revisions_and_version() {
    let Some(mut etcd) = connect("single_key").await else {
        return;
    };
    let created = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let kv = etcd.get("k").await.expect("k exists");
    assert_eq!(
        (
            kv.key.as_slice(),
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease
        ),
        (etcd.key("k").as_slice(), &b"v1"[..], created, created, 1, 0)
    );

    // Each put bumps mod_revision to the put's revision and the version by one.
    let modified = header_revision(etcd.put("k", "v2").await.header.as_ref());
    assert!(modified > created);
    let kv = etcd.get("k").await.expect("k exists");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (created, modified, 2)
    );
    assert_eq!(kv.value, b"v2");

    // A delete ends the key's life; a put afterwards starts a new one at version 1.
    let deleted = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("k"),
            ..Default::default()
        })
        .await
        .expect("delete k");
    assert_eq!(deleted.deleted, 1);
    assert!(etcd.get("k").await.is_none());
    let recreated = header_revision(etcd.put("k", "v3").await.header.as_ref());
    assert!(recreated > header_revision(deleted.header.as_ref()));
    let kv = etcd.get("k").await.expect("k exists again");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (recreated, recreated, 1)
    );
}

#[tokio::test]
async fn a_missing_key_reads_as_no_kvs_and_count_zero() {
    let Some(mut etcd) = connect("missing_key").await else {
        return;
    };
    let response = etcd
        .range(RangeRequest {
            key: etcd.key("absent"),
            ..Default::default()
        })
        .await
        .expect("range");
    assert!(response.kvs.is_empty());
    assert_eq!((response.count, response.more), (0, false));
    assert!(header_revision(response.header.as_ref()) > 0);
}

#[tokio::test]
async fn a_prefix_range_ends_before_the_prefix_end() {
    let Some(mut etcd) = connect("prefix").await else {
        return;
    };
    for name in ["p/c", "p/a", "p/b", "p", "p0", "o"] {
        etcd.put(name, name).await;
    }
    let key = etcd.key("p/");
    let response = etcd
        .range(RangeRequest {
            range_end: prefix_end(&key),
            key,
            ..Default::default()
        })
        .await
        .expect("prefix range");
    assert_eq!(etcd.names(&response.kvs), ["p/a", "p/b", "p/c"]);
    assert_eq!((response.count, response.more), (3, false));

    // [key, range_end) is half-open: the end itself is excluded, the start included.
    let response = etcd
        .range(RangeRequest {
            key: etcd.key("p"),
            range_end: etcd.key("p/b"),
            ..Default::default()
        })
        .await
        .expect("explicit range");
    assert_eq!(etcd.names(&response.kvs), ["p", "p/a"]);

    // A range_end at or before the key selects nothing.
    let response = etcd
        .range(RangeRequest {
            key: etcd.key("p/b"),
            range_end: etcd.key("p/a"),
            ..Default::default()
        })
        .await
        .expect("inverted range");
    assert_eq!((response.kvs.len(), response.count), (0, 0));
}

#[tokio::test]
async fn a_nul_range_end_reads_every_key_from_the_key_on() {
    let Some(mut etcd) = connect("from_key").await else {
        return;
    };
    for name in ["a", "b", "c"] {
        etcd.put(name, name).await;
    }
    let response = etcd
        .range(RangeRequest {
            key: etcd.key("b"),
            range_end: vec![0],
            ..Default::default()
        })
        .await
        .expect("from-key range");
    let start = etcd.key("b");
    assert_eq!(etcd.names(&response.kvs[..2]), ["b", "c"]);
    assert!(response.kvs.iter().all(|kv| kv.key >= start));
    assert!(
        response.kvs.windows(2).all(|w| w[0].key < w[1].key),
        "keys are sorted"
    );
    assert_eq!(response.count, response.kvs.len() as i64);

    // Key `\0` with range_end `\0`: all keys (what the upstream suite reads on every member).
    let response = etcd
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        })
        .await
        .expect("all keys");
    assert!(
        response.count >= 3,
        "count {} covers our three keys",
        response.count
    );
    assert!(response.kvs.is_empty());
}

#[tokio::test]
async fn limit_sets_more_and_count_stays_the_full_total() {
    let Some(mut etcd) = connect("limit").await else {
        return;
    };
    for name in ["1", "2", "3", "4", "5"] {
        etcd.put(name, name).await;
    }
    let prefix = etcd.prefix();
    let page = |key: Vec<u8>, limit| RangeRequest {
        key,
        range_end: prefix_end(&prefix),
        limit,
        ..Default::default()
    };

    let response = etcd
        .range(page(etcd.prefix(), 2))
        .await
        .expect("first page");
    assert_eq!(etcd.names(&response.kvs), ["1", "2"]);
    assert_eq!((response.count, response.more), (5, true));

    // The next page starts just after the last key: lastKey + "\0" (upstream's ListAllKeys).
    let mut next = response.kvs[1].key.clone();
    next.push(0);
    let response = etcd.range(page(next, 2)).await.expect("second page");
    assert_eq!(etcd.names(&response.kvs), ["3", "4"]);
    assert_eq!((response.count, response.more), (3, true));

    let mut next = response.kvs[1].key.clone();
    next.push(0);
    let response = etcd.range(page(next, 2)).await.expect("last page");
    assert_eq!(etcd.names(&response.kvs), ["5"]);
    assert_eq!((response.count, response.more), (1, false));

    // A limit equal to the total is not "more"; zero means no limit.
    let response = etcd
        .range(page(etcd.prefix(), 5))
        .await
        .expect("exact limit");
    assert_eq!(
        (response.kvs.len(), response.count, response.more),
        (5, 5, false)
    );
    let response = etcd.range(page(etcd.prefix(), 0)).await.expect("no limit");
    assert_eq!(
        (response.kvs.len(), response.count, response.more),
        (5, 5, false)
    );
}

#[tokio::test]
async fn count_only_and_keys_only_strip_the_answer() {
    let Some(mut etcd) = connect("count_keys_only").await else {
        return;
    };
    let put = header_revision(etcd.put("a", "value-a").await.header.as_ref());
    etcd.put("b", "value-b").await;
    let prefix = etcd.prefix();

    let response = etcd
        .range(RangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            count_only: true,
            ..Default::default()
        })
        .await
        .expect("count only");
    assert_eq!(
        (response.kvs.len(), response.count, response.more),
        (0, 2, false)
    );

    // count_only with a limit still counts everything and says nothing about "more".
    let response = etcd
        .range(RangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            count_only: true,
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("count only with limit");
    assert_eq!((response.kvs.len(), response.count), (0, 2));

    let response = etcd
        .range(RangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            keys_only: true,
            ..Default::default()
        })
        .await
        .expect("keys only");
    assert_eq!(etcd.names(&response.kvs), ["a", "b"]);
    let a = &response.kvs[0];
    assert!(a.value.is_empty(), "keys_only drops values");
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (put, put, 1)
    );
}

#[tokio::test]
async fn sorting_orders_by_the_target_and_limits_after_sorting() {
    let Some(mut etcd) = connect("sort").await else {
        return;
    };
    // Creation order c, a, b; then b is written twice more and a once: versions a=2, b=3, c=1.
    for (name, value) in [
        ("c", "3"),
        ("a", "1"),
        ("b", "2"),
        ("b", "5"),
        ("a", "4"),
        ("b", "6"),
    ] {
        etcd.put(name, value).await;
    }
    let prefix = etcd.prefix();
    let sorted = |target: SortTarget, order: SortOrder, limit| RangeRequest {
        key: prefix.clone(),
        range_end: prefix_end(&prefix),
        sort_target: target.into(),
        sort_order: order.into(),
        limit,
        ..Default::default()
    };
    let cases = [
        (SortTarget::Key, SortOrder::Descend, ["c", "b", "a"]),
        (SortTarget::Key, SortOrder::Ascend, ["a", "b", "c"]),
        (SortTarget::Key, SortOrder::None, ["a", "b", "c"]),
        (SortTarget::Version, SortOrder::Ascend, ["c", "a", "b"]),
        (SortTarget::Version, SortOrder::Descend, ["b", "a", "c"]),
        // A non-key target with no order sorts ascending.
        (SortTarget::Version, SortOrder::None, ["c", "a", "b"]),
        (SortTarget::Create, SortOrder::Ascend, ["c", "a", "b"]),
        (SortTarget::Mod, SortOrder::Ascend, ["c", "a", "b"]),
        (SortTarget::Mod, SortOrder::Descend, ["b", "a", "c"]),
        (SortTarget::Value, SortOrder::Ascend, ["c", "a", "b"]),
        (SortTarget::Value, SortOrder::Descend, ["b", "a", "c"]),
    ];
    for (target, order, want) in cases {
        let response = etcd
            .range(sorted(target, order, 0))
            .await
            .expect("sorted range");
        assert_eq!(etcd.names(&response.kvs), want, "{target:?} {order:?}");
    }

    // The limit applies to the sorted result, not to the first keys in key order.
    let response = etcd
        .range(sorted(SortTarget::Key, SortOrder::Descend, 2))
        .await
        .expect("sorted page");
    assert_eq!(etcd.names(&response.kvs), ["c", "b"]);
    assert_eq!((response.count, response.more), (3, true));
    let response = etcd
        .range(sorted(SortTarget::Version, SortOrder::Descend, 1))
        .await
        .expect("sorted page");
    assert_eq!(etcd.names(&response.kvs), ["b"]);
    assert_eq!((response.count, response.more), (3, true));
}

#[tokio::test]
async fn reads_at_a_past_revision_see_the_store_as_it_was() {
    let Some(mut etcd) = connect("past_revision").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("k", "v2").await.header.as_ref());
    let deleted = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("k"),
            ..Default::default()
        })
        .await
        .expect("delete");
    let r3 = header_revision(deleted.header.as_ref());

    let key = etcd.key("k");
    let at = |revision| RangeRequest {
        key: key.clone(),
        revision,
        ..Default::default()
    };
    let response = etcd.range(at(r1 - 1)).await.expect("before creation");
    assert!(response.kvs.is_empty());
    let response = etcd.range(at(r1)).await.expect("at r1");
    assert_eq!(response.kvs[0].value, b"v1");
    assert_eq!(
        (response.kvs[0].mod_revision, response.kvs[0].version),
        (r1, 1)
    );
    let response = etcd.range(at(r2)).await.expect("at r2");
    assert_eq!(response.kvs[0].value, b"v2");
    assert_eq!(
        (
            response.kvs[0].create_revision,
            response.kvs[0].mod_revision,
            response.kvs[0].version
        ),
        (r1, r2, 2)
    );
    // The header of a past read carries the current revision, not the one asked for.
    assert!(header_revision(response.header.as_ref()) >= r3);
    let response = etcd.range(at(r3)).await.expect("at r3");
    assert!(response.kvs.is_empty());
    // Revision 0 means "now"; a revision above the current one is an error.
    let response = etcd.range(at(0)).await.expect("now");
    assert!(response.kvs.is_empty());
    let now = etcd.revision().await;
    assert_status(
        etcd.range(at(now + 1_000_000)).await,
        Code::OutOfRange,
        msg::FUTURE_REV,
    );
}
