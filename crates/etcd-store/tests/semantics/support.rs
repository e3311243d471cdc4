//! What every semantics test shares: the connection to the server under test, a key prefix of
//! its own, a lock that lets a few tests run alone, and assertions on gRPC errors.
//!
//! The server is named by `ETCD_ENDPOINT` (`http://127.0.0.1:<port>`); `ETCD_FLAVOR` says which
//! one it is (`etcd` or `ours`) for messages only: the assertions are the same on both.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use dapr_proto::etcd::{
    etcdserverpb::{
        DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
        RangeResponse, StatusRequest, StatusResponse, auth_client::AuthClient,
        cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
        maintenance_client::MaintenanceClient, watch_client::WatchClient,
    },
    mvccpb::KeyValue,
};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tonic::{Code, Status, transport::Channel};

/// Tests that observe the global revision, or move it for everybody (compaction), hold this
/// exclusively; all others share it. One lock per test binary is enough: each binary is one
/// process, and the script runs the binaries one after another.
static SERVER: RwLock<()> = RwLock::const_new(());

/// How long one test waits for something the server does on its own (watch events, expiry).
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Whether the test holds the server alone or shares it.
enum Guard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// A connected test: clients for every service and the test's own key prefix.
pub struct Etcd {
    pub kv: KvClient<Channel>,
    pub watch: WatchClient<Channel>,
    pub lease: LeaseClient<Channel>,
    pub cluster: ClusterClient<Channel>,
    pub maintenance: MaintenanceClient<Channel>,
    pub auth: AuthClient<Channel>,
    pub endpoint: String,
    pub flavor: String,
    prefix: Vec<u8>,
    _guard: Guard,
}

/// Connects for a test that shares the server with others, or returns `None` (after printing
/// why) when no server is configured, so a plain `cargo test` passes without etcd.
pub async fn connect(test: &str) -> Option<Etcd> {
    let endpoint = endpoint(test)?;
    let guard = Guard::Shared(SERVER.read().await);
    Some(open(test, endpoint, guard).await)
}

/// Like [`connect`], for a test that must be the only one talking to the server: it reads the
/// global revision or compacts.
pub async fn connect_alone(test: &str) -> Option<Etcd> {
    let endpoint = endpoint(test)?;
    let guard = Guard::Exclusive(SERVER.write().await);
    Some(open(test, endpoint, guard).await)
}

fn endpoint(test: &str) -> Option<String> {
    match std::env::var("ETCD_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            println!("{test}: skipped: ETCD_ENDPOINT not set");
            None
        }
    }
}

async fn open(test: &str, endpoint: String, guard: Guard) -> Etcd {
    let channel = Channel::from_shared(endpoint.clone())
        .unwrap_or_else(|e| panic!("ETCD_ENDPOINT {endpoint:?}: {e}"))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {endpoint}: {e}"));
    Etcd {
        kv: KvClient::new(channel.clone()),
        watch: WatchClient::new(channel.clone()),
        lease: LeaseClient::new(channel.clone()),
        cluster: ClusterClient::new(channel.clone()),
        maintenance: MaintenanceClient::new(channel.clone()),
        auth: AuthClient::new(channel),
        endpoint,
        flavor: std::env::var("ETCD_FLAVOR").unwrap_or_else(|_| "unknown".to_owned()),
        prefix: unique_prefix(test),
        _guard: guard,
    }
}

/// `sem/<test>/<pid>-<nanos>-<n>/`: unique per test run, so runs and tests never see each
/// other's keys.
fn unique_prefix(test: &str) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sem/{test}/{}-{nanos}-{n}/", std::process::id()).into_bytes()
}

impl Etcd {
    /// The test's prefix itself (ends with `/`).
    pub fn prefix(&self) -> Vec<u8> {
        self.prefix.clone()
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(name.as_bytes());
        key
    }

    /// Strips the test prefix, for readable assertions on key lists.
    pub fn name<'a>(&self, key: &'a [u8]) -> &'a str {
        let rest = key.strip_prefix(self.prefix.as_slice()).unwrap_or(key);
        std::str::from_utf8(rest).unwrap_or("<non-utf8>")
    }

    pub fn names(&self, kvs: &[KeyValue]) -> Vec<String> {
        kvs.iter().map(|kv| self.name(&kv.key).to_owned()).collect()
    }

    pub async fn put(&mut self, name: &str, value: &str) -> PutResponse {
        self.put_req(PutRequest {
            key: self.key(name),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e}"))
    }

    pub async fn put_req(&mut self, request: PutRequest) -> Result<PutResponse, Status> {
        self.kv.put(request).await.map(tonic::Response::into_inner)
    }

    pub async fn range(&mut self, request: RangeRequest) -> Result<RangeResponse, Status> {
        self.kv
            .range(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn get(&mut self, name: &str) -> Option<KeyValue> {
        let response = self
            .range(RangeRequest {
                key: self.key(name),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"));
        assert!(
            response.kvs.len() <= 1,
            "a single-key range returned {}",
            response.kvs.len()
        );
        response.kvs.into_iter().next()
    }

    /// Everything under the test's prefix, in key order.
    pub async fn all(&mut self) -> RangeResponse {
        let prefix = self.prefix();
        self.range(RangeRequest {
            range_end: prefix_end(&prefix),
            key: prefix,
            ..Default::default()
        })
        .await
        .expect("range over the test prefix")
    }

    /// The names (keys without the prefix) of everything under the test's prefix.
    pub async fn all_names(&mut self) -> Vec<String> {
        let kvs = self.all().await.kvs;
        self.names(&kvs)
    }

    pub async fn delete_req(
        &mut self,
        request: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Status> {
        self.kv
            .delete_range(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn status(&mut self) -> StatusResponse {
        self.maintenance
            .status(StatusRequest {})
            .await
            .expect("maintenance status")
            .into_inner()
    }

    /// The store's current revision, as a read reports it.
    pub async fn revision(&mut self) -> i64 {
        let response = self
            .range(RangeRequest {
                key: self.key("\u{1}revision-probe"),
                ..Default::default()
            })
            .await
            .expect("range for the revision");
        header_revision(response.header.as_ref())
    }
}

/// etcd's `clientv3.GetPrefixRangeEnd`: the prefix with its last byte below 0xff incremented and
/// the rest dropped; `\0` (every key from the start key on) for a prefix of only 0xff bytes.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub fn header_revision(header: Option<&dapr_proto::etcd::etcdserverpb::ResponseHeader>) -> i64 {
    header.expect("response header").revision
}

/// Asserts a gRPC error's code and exact message (etcd's clients match on both).
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    match result {
        Ok(value) => panic!("expected {code:?} {message:?}, got a success: {value:?}"),
        Err(status) => assert_eq!(
            (status.code(), status.message()),
            (code, message),
            "unexpected error {status:?}"
        ),
    }
}

/// etcd's error strings the suite checks, byte for byte as etcd v3.5.30 sends them
/// (`api/v3rpc/rpctypes/error.go`).
pub mod msg {
    pub const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
    pub const FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
    pub const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
    pub const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";
    pub const LEASE_EXISTS: &str = "etcdserver: lease already exists";
    pub const LEASE_TTL_TOO_LARGE: &str = "etcdserver: too large lease TTL";
    pub const DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";
    pub const KEY_NOT_FOUND: &str = "etcdserver: key not found";
    pub const EMPTY_KEY: &str = "etcdserver: key is not provided";
    pub const VALUE_PROVIDED: &str = "etcdserver: value is provided";
    pub const LEASE_PROVIDED: &str = "etcdserver: lease is provided";
    pub const REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";
    pub const TOO_MANY_OPS: &str = "etcdserver: too many operations in txn request";
    pub const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";
}
