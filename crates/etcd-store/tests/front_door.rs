//! The `dapr-etcd` binary end to end: its etcd v3 gRPC front door driven with the generated tonic
//! clients (what etcd's own clients send), its flags and its shutdown.

use std::time::{Duration, Instant};

use dapr_proto::etcd::{
    etcdserverpb::{
        Compare, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest,
        RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest, WatchResponse,
        compare::{CompareResult, CompareTarget, TargetUnion},
        kv_client::KvClient,
        lease_client::LeaseClient,
        request_op::Request,
        watch_client::WatchClient,
        watch_request::RequestUnion,
    },
    mvccpb::event::EventType,
};
use dapr_testing::{Child, free_port};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Streaming, transport::Channel};

const START: Duration = Duration::from_secs(30);
const PATIENCE: Duration = Duration::from_secs(15);

struct Server {
    child: Child,
    channel: Channel,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `dapr-etcd` on free ports and connects once a range succeeds.
async fn start(extra: &[&str]) -> Server {
    let (client, peer) = (free_port(), free_port());
    let dir = TempDir(std::env::temp_dir().join(format!(
        "dapr-etcd-front-door-{}-{client}",
        std::process::id()
    )));
    let data = dir.0.to_string_lossy().into_owned();
    let client_url = format!("http://127.0.0.1:{client}");
    let cluster = format!("n1=http://127.0.0.1:{peer}");
    let mut args = vec![
        "--name",
        "n1",
        "--data-dir",
        &data,
        "--listen-client-urls",
        &client_url,
    ];
    args.extend(["--initial-cluster", &cluster]);
    args.extend(extra);
    let child = Child::spawn(env!("CARGO_BIN_EXE_dapr-etcd"), &args).expect("spawn dapr-etcd");
    let deadline = Instant::now() + START;
    loop {
        if let Ok(channel) = Channel::from_shared(client_url.clone())
            .expect("url")
            .connect()
            .await
        {
            let probe = RangeRequest {
                key: b"probe".to_vec(),
                ..Default::default()
            };
            if KvClient::new(channel.clone()).range(probe).await.is_ok() {
                return Server {
                    child,
                    channel,
                    _dir: dir,
                };
            }
        }
        assert!(
            Instant::now() < deadline,
            "dapr-etcd did not serve in time:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

async fn open_watch(
    channel: &Channel,
    create: WatchCreateRequest,
) -> (mpsc::Sender<WatchRequest>, Streaming<WatchResponse>) {
    let (tx, rx) = mpsc::channel(8);
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(create)),
    })
    .await
    .expect("queue create");
    let stream = WatchClient::new(channel.clone())
        .watch(ReceiverStream::new(rx))
        .await
        .expect("watch")
        .into_inner();
    (tx, stream)
}

async fn next(stream: &mut Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a watch response in time")
        .expect("watch stream error")
        .expect("watch stream open")
}

#[tokio::test]
async fn puts_ranges_and_txns_carry_etcds_headers_and_revisions() {
    let server = start(&[]).await;
    let mut kv = KvClient::new(server.channel.clone());
    let first = kv.put(put("a/1", "x")).await.expect("put").into_inner();
    let header = first.header.expect("header");
    assert!(
        header.cluster_id != 0 && header.member_id != 0 && header.raft_term >= 1,
        "{header:?}"
    );
    kv.put(put("a/2", "y")).await.expect("put");

    let range = kv
        .range(RangeRequest {
            key: b"a/".to_vec(),
            range_end: b"a0".to_vec(),
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    let keys: Vec<_> = range
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(range.count, 2);
    assert_eq!(range.header.expect("header").revision, header.revision + 1);

    // Compare-and-swap on the mod revision: the stale one fails, the current one succeeds.
    let cas = |revision: i64| TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal.into(),
            target: CompareTarget::Mod.into(),
            key: b"a/1".to_vec(),
            target_union: Some(TargetUnion::ModRevision(revision)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(put("a/1", "swapped"))),
        }],
        failure: vec![RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: b"a/1".to_vec(),
                ..Default::default()
            })),
        }],
    };
    let failed = kv
        .txn(cas(header.revision - 1))
        .await
        .expect("txn")
        .into_inner();
    assert!(!failed.succeeded);
    let swapped = kv
        .txn(cas(header.revision))
        .await
        .expect("txn")
        .into_inner();
    assert!(swapped.succeeded);
    let got = kv
        .range(RangeRequest {
            key: b"a/1".to_vec(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.kvs[0].value, b"swapped");
    assert_eq!(got.kvs[0].version, 2);

    let empty = kv
        .put(put("", "v"))
        .await
        .expect_err("an empty key is refused");
    assert_eq!(empty.message(), "etcdserver: key is not provided");
}

#[tokio::test]
async fn a_watch_replays_then_follows_and_a_slow_watcher_misses_nothing() {
    let server = start(&[]).await;
    let mut kv = KvClient::new(server.channel.clone());
    let first = kv
        .put(put("w/k", "1"))
        .await
        .expect("put")
        .into_inner()
        .header
        .expect("header")
        .revision;
    kv.put(put("w/k", "2")).await.expect("put");

    let create = WatchCreateRequest {
        key: b"w/".to_vec(),
        range_end: b"w0".to_vec(),
        start_revision: first,
        prev_kv: true,
        ..Default::default()
    };
    let (_requests, mut stream) = open_watch(&server.channel, create).await;
    assert!(next(&mut stream).await.created);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(next(&mut stream).await.events);
    }
    assert_eq!(seen[1].prev_kv.as_ref().expect("prev kv").value, b"1");

    // Far more writes than the feed buffers while nobody reads the stream: the watch falls back
    // to history and still delivers every revision exactly once, in order.
    // 8 KiB values: 48 MB of events, far more than HTTP/2 flow control lets the client buffer, and
    // more batches than the feed keeps.
    const WRITES: usize = 6000;
    let value = "v".repeat(8192);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut kv = kv.clone();
            let value = value.clone();
            tokio::spawn(async move {
                for i in 0..WRITES / 8 {
                    kv.put(put(&format!("w/{w}/{i}"), &value))
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut revisions: Vec<i64> = seen
        .iter()
        .map(|e| e.kv.as_ref().expect("kv").mod_revision)
        .collect();
    while revisions.len() < 2 + WRITES {
        for event in next(&mut stream).await.events {
            assert_eq!(event.r#type, i32::from(EventType::Put));
            revisions.push(event.kv.expect("kv").mod_revision);
        }
    }
    let expected: Vec<i64> = (first..first + 2 + WRITES as i64).collect();
    assert_eq!(revisions, expected);
}

#[tokio::test]
async fn progress_notify_reports_the_revision_on_a_quiet_watch() {
    let server = start(&["--watch-progress-notify-interval-ms", "200"]).await;
    let mut kv = KvClient::new(server.channel.clone());
    let written = kv
        .put(put("p/k", "v"))
        .await
        .expect("put")
        .into_inner()
        .header
        .expect("header")
        .revision;
    let create = WatchCreateRequest {
        key: b"p/quiet".to_vec(),
        progress_notify: true,
        ..Default::default()
    };
    let (_requests, mut stream) = open_watch(&server.channel, create).await;
    let created = next(&mut stream).await;
    let progress = next(&mut stream).await;
    assert!(
        progress.events.is_empty() && !progress.created && !progress.canceled,
        "{progress:?}"
    );
    assert_eq!(progress.watch_id, created.watch_id);
    assert!(progress.header.expect("header").revision >= written);
}

#[tokio::test]
async fn leases_keep_alive_and_revoking_deletes_attached_keys() {
    let server = start(&[]).await;
    let mut lease = LeaseClient::new(server.channel.clone());
    let mut kv = KvClient::new(server.channel.clone());
    let granted = lease
        .lease_grant(LeaseGrantRequest { ttl: 20, id: 0 })
        .await
        .expect("grant")
        .into_inner();
    assert_eq!(granted.ttl, 20);
    kv.put(PutRequest {
        lease: granted.id,
        ..put("l/k", "v")
    })
    .await
    .expect("put with lease");

    let (tx, rx) = mpsc::channel(4);
    tx.send(LeaseKeepAliveRequest { id: granted.id })
        .await
        .expect("queue");
    let mut alive = lease
        .lease_keep_alive(ReceiverStream::new(rx))
        .await
        .expect("keep-alive")
        .into_inner();
    let renewed = tokio::time::timeout(PATIENCE, alive.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert_eq!((renewed.id, renewed.ttl), (granted.id, 20));

    lease
        .lease_revoke(LeaseRevokeRequest { id: granted.id })
        .await
        .expect("revoke");
    let gone = kv
        .range(RangeRequest {
            key: b"l/k".to_vec(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert!(gone.kvs.is_empty());
    tx.send(LeaseKeepAliveRequest { id: granted.id })
        .await
        .expect("send");
    let after = tokio::time::timeout(PATIENCE, alive.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert_eq!(after.ttl, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_with_a_watch_open() {
    let mut server = start(&[]).await;
    let create = WatchCreateRequest {
        key: b"s/k".to_vec(),
        ..Default::default()
    };
    let (_requests, mut stream) = open_watch(&server.channel, create).await;
    assert!(next(&mut stream).await.created);
    server.child.signal("TERM").expect("signal");
    let status = tokio::task::block_in_place(|| server.child.wait_exit(Duration::from_secs(10)));
    assert!(status.success(), "{status:?}\n{}", server.child.output());
}

#[test]
fn a_member_missing_from_the_initial_cluster_fails_to_start() {
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("dapr-etcd-front-door-bad-{}", std::process::id()));
    let data = dir.to_string_lossy().into_owned();
    let args = [
        "--name",
        "n9",
        "--data-dir",
        &data,
        "--listen-client-urls",
        &url,
        "--initial-cluster",
        "n1=http://127.0.0.1:1",
    ];
    let mut child = Child::spawn(env!("CARGO_BIN_EXE_dapr-etcd"), &args).expect("spawn");
    let status = child.wait_exit(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!status.success());
    assert!(
        child
            .output()
            .contains("member \"n9\" is not in --initial-cluster"),
        "{}",
        child.output()
    );
}
