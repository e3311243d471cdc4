//! Watch: the bidi stream, prefixes, replay from a past revision, prev_kv, progress requests and
//! cancellation. (Watching a compacted revision is in `compact.rs`: it needs the server alone.)

use std::time::Duration;

use dapr_proto::etcd::{
    etcdserverpb::{
        DeleteRangeRequest, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest,
        WatchRequest, WatchResponse, watch_create_request::FilterType, watch_request::RequestUnion,
    },
    mvccpb::{Event, event::EventType},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::support::{Etcd, PATIENCE, connect, header_revision, prefix_end};

/// One open Watch stream.
pub struct Watcher {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

impl Etcd {
    /// Opens a Watch stream, sends `create` and returns the stream with the first response.
    pub async fn open_watch(&mut self, create: WatchCreateRequest) -> (Watcher, WatchResponse) {
        Watcher::open(self, create).await
    }
}

impl Watcher {
    /// Opens a stream, sends `create` and returns the stream with the first response.
    pub async fn open(etcd: &mut Etcd, create: WatchCreateRequest) -> (Self, WatchResponse) {
        let (requests, rx) = mpsc::channel(16);
        // Queue the create before the call: the server sends its response headers with the
        // first message, and the call only returns once the headers arrived.
        requests
            .send(create_request(create))
            .await
            .expect("queue create");
        let responses = etcd
            .watch
            .watch(ReceiverStream::new(rx))
            .await
            .expect("open watch stream")
            .into_inner();
        let mut watcher = Self {
            requests,
            responses,
        };
        let created = watcher.next().await;
        (watcher, created)
    }

    pub async fn send(&self, request: RequestUnion) {
        self.requests
            .send(WatchRequest {
                request_union: Some(request),
            })
            .await
            .expect("send watch request");
    }

    /// The next response; panics after [`PATIENCE`].
    pub async fn next(&mut self) -> WatchResponse {
        self.next_within(PATIENCE)
            .await
            .expect("a watch response in time")
    }

    /// The next response, or `None` if none arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<WatchResponse> {
        match tokio::time::timeout(wait, self.responses.message()).await {
            Err(_elapsed) => None,
            Ok(message) => Some(
                message
                    .expect("watch stream error")
                    .expect("watch stream open"),
            ),
        }
    }

    /// Collects events from responses until there are `count` of them.
    pub async fn events(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < count {
            let response = self.next().await;
            assert!(!response.canceled, "watch canceled: {response:?}");
            events.extend(response.events);
        }
        assert_eq!(events.len(), count, "more events than expected: {events:?}");
        events
    }
}

pub fn create_request(create: WatchCreateRequest) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(create)),
    }
}

fn kind(event: &Event) -> EventType {
    EventType::try_from(event.r#type).expect("known event type")
}

#[tokio::test]
async fn a_prefix_watch_sees_puts_and_deletes_with_their_previous_values() {
    let Some(mut etcd) = connect("watch_prefix").await else {
        return;
    };
    let prefix = etcd.prefix();
    let (mut watcher, created) = etcd
        .open_watch(WatchCreateRequest {
            range_end: prefix_end(&prefix),
            key: prefix,
            prev_kv: true,
            ..Default::default()
        })
        .await;
    assert!(created.created && !created.canceled, "{created:?}");
    assert!(created.events.is_empty());
    assert!(header_revision(created.header.as_ref()) > 0);

    let r1 = header_revision(etcd.put("a", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("a", "v2").await.header.as_ref());
    let deleted = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("a"),
            ..Default::default()
        })
        .await
        .expect("delete");
    let r3 = header_revision(deleted.header.as_ref());

    let events = watcher.events(3).await;
    let (put1, put2, delete) = (&events[0], &events[1], &events[2]);
    assert_eq!(kind(put1), EventType::Put);
    let kv = put1.kv.as_ref().expect("kv");
    assert_eq!(
        (
            etcd.name(&kv.key),
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        ("a", &b"v1"[..], r1, r1, 1)
    );
    assert!(put1.prev_kv.is_none(), "a created key has no previous kv");

    assert_eq!(kind(put2), EventType::Put);
    let kv = put2.kv.as_ref().expect("kv");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"v2"[..], r1, r2, 2)
    );
    assert_eq!(put2.prev_kv.as_ref().expect("prev kv").value, b"v1");

    // A delete event names the key at the delete's revision, with no value, version or create
    // revision; prev_kv holds what was deleted.
    assert_eq!(kind(delete), EventType::Delete);
    let kv = delete.kv.as_ref().expect("kv");
    assert_eq!(
        (
            etcd.name(&kv.key),
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        ("a", &b""[..], 0, r3, 0)
    );
    let prev = delete.prev_kv.as_ref().expect("prev kv");
    assert_eq!(
        (prev.value.as_slice(), prev.mod_revision, prev.version),
        (&b"v2"[..], r2, 2)
    );
}

#[tokio::test]
async fn a_watch_from_a_past_revision_replays_history_then_goes_live() {
    let Some(mut etcd) = connect("watch_replay").await else {
        return;
    };
    let r1 = header_revision(etcd.put("k", "v1").await.header.as_ref());
    let r2 = header_revision(etcd.put("k", "v2").await.header.as_ref());
    etcd.put("other", "not watched").await;

    let (mut watcher, created) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("k"),
            start_revision: r1,
            prev_kv: true,
            ..Default::default()
        })
        .await;
    assert!(created.created, "{created:?}");
    let events = watcher.events(2).await;
    let revisions: Vec<_> = events
        .iter()
        .map(|e| e.kv.as_ref().expect("kv").mod_revision)
        .collect();
    assert_eq!(revisions, [r1, r2]);
    assert!(events[0].prev_kv.is_none());
    assert_eq!(events[1].prev_kv.as_ref().expect("prev kv").value, b"v1");

    let r3 = header_revision(etcd.put("k", "v3").await.header.as_ref());
    let events = watcher.events(1).await;
    assert_eq!(events[0].kv.as_ref().expect("kv").mod_revision, r3);
}

#[tokio::test]
async fn the_writes_of_one_txn_arrive_in_one_response() {
    use dapr_proto::etcd::etcdserverpb::{PutRequest, RequestOp, TxnRequest, request_op::Request};
    let Some(mut etcd) = connect("watch_txn").await else {
        return;
    };
    let prefix = etcd.prefix();
    let (mut watcher, _) = etcd
        .open_watch(WatchCreateRequest {
            range_end: prefix_end(&prefix),
            key: prefix,
            ..Default::default()
        })
        .await;
    let put = |key: Vec<u8>| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value: b"v".to_vec(),
            ..Default::default()
        })),
    };
    let response = etcd
        .kv
        .txn(TxnRequest {
            success: vec![put(etcd.key("b")), put(etcd.key("a"))],
            ..Default::default()
        })
        .await
        .expect("txn")
        .into_inner();
    let revision = header_revision(response.header.as_ref());
    let response = watcher.next().await;
    assert_eq!(header_revision(response.header.as_ref()), revision);
    let keys: Vec<_> = response
        .events
        .iter()
        .map(|e| etcd.name(&e.kv.as_ref().expect("kv").key).to_owned())
        .collect();
    // Events keep the order of the txn's operations.
    assert_eq!(keys, ["b", "a"]);
}

#[tokio::test]
async fn filters_drop_puts_or_deletes() {
    let Some(mut etcd) = connect("watch_filters").await else {
        return;
    };
    let (mut watcher, _) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("k"),
            filters: vec![FilterType::Noput.into()],
            ..Default::default()
        })
        .await;
    etcd.put("k", "v").await;
    let deleted = etcd
        .delete_req(DeleteRangeRequest {
            key: etcd.key("k"),
            ..Default::default()
        })
        .await
        .expect("delete");
    let events = watcher.events(1).await;
    assert_eq!(kind(&events[0]), EventType::Delete);
    assert_eq!(
        events[0].kv.as_ref().expect("kv").mod_revision,
        header_revision(deleted.header.as_ref())
    );
}

#[tokio::test]
async fn a_progress_request_reports_the_current_revision_without_events() {
    let Some(mut etcd) = connect("watch_progress").await else {
        return;
    };
    let written = header_revision(etcd.put("k", "v").await.header.as_ref());
    let (mut watcher, created) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("k"),
            progress_notify: true,
            ..Default::default()
        })
        .await;
    watcher
        .send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
        .await;
    let progress = watcher.next().await;
    assert!(progress.events.is_empty(), "{progress:?}");
    assert!(!progress.created && !progress.canceled, "{progress:?}");
    // etcd answers a stream-wide progress request with watch id -1 (clientv3.InvalidWatchID).
    assert_eq!(progress.watch_id, -1, "{progress:?} (created {created:?})");
    assert!(header_revision(progress.header.as_ref()) >= written);
}

#[tokio::test]
async fn cancel_stops_one_watch_and_names_it() {
    let Some(mut etcd) = connect("watch_cancel").await else {
        return;
    };
    let (mut watcher, first) = etcd
        .open_watch(WatchCreateRequest {
            key: etcd.key("a"),
            ..Default::default()
        })
        .await;
    // A second watch on the same stream gets its own id.
    watcher
        .send(RequestUnion::CreateRequest(WatchCreateRequest {
            key: etcd.key("b"),
            ..Default::default()
        }))
        .await;
    let second = watcher.next().await;
    assert!(second.created);
    assert_ne!(first.watch_id, second.watch_id);

    watcher
        .send(RequestUnion::CancelRequest(WatchCancelRequest {
            watch_id: first.watch_id,
        }))
        .await;
    let canceled = watcher.next().await;
    assert!(canceled.canceled, "{canceled:?}");
    assert_eq!(canceled.watch_id, first.watch_id);

    // Only the second watch still reports.
    etcd.put("a", "ignored").await;
    etcd.put("b", "seen").await;
    let response = watcher.next().await;
    assert_eq!(response.watch_id, second.watch_id);
    assert_eq!(
        etcd.name(&response.events[0].kv.as_ref().expect("kv").key),
        "b"
    );
    assert!(
        watcher
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}
