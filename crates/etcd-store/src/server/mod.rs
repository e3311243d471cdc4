//! The etcd v3 gRPC front door: KV, Watch, Lease, Maintenance, Cluster and Auth served over a
//! [`Node`], wire-compatible with etcd v3.5.30 (`etcdserver/api/v3rpc`), so `etcdctl`,
//! clientv3 and the Rust `etcd-client` work unchanged.
//!
//! Each service validates a request like etcd's v3rpc layer, converts it to the engine's types
//! ([`convert`]), reads locally or proposes a [`crate::mvcc::Command`] through the node, and
//! fills the response header (cluster id, member id, revision, raft term) as etcd's `header.fill`.

mod auth;
mod cluster;
pub mod convert;
mod error;
mod kv;
mod lease;
mod maintenance;
mod watch;

use std::{sync::Arc, time::Duration};

use dapr_proto::etcd::etcdserverpb::{
    ResponseHeader, auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::node::Node;

pub use error::{node_status, store_status};

/// etcd's default `--max-request-bytes` (1.5 MiB): larger proposals fail with
/// `etcdserver: request is too large`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// What etcd's gRPC server accepts beyond `--max-request-bytes` (`grpcOverheadBytes`), so that an
/// oversized request reaches the size check and gets etcd's error instead of a transport one.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// etcd's default watch progress notify interval (`progressReportInterval`).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(600);
/// etcd's floor for `--experimental-watch-progress-notify-interval`.
const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// The version Maintenance.Status reports: the etcd release whose API this front door serves.
pub const ETCD_VERSION: &str = "3.5.30";

/// What every service shares.
pub(crate) struct Shared {
    pub node: Node,
    /// This member's client URLs, as Cluster.MemberList reports them.
    pub client_urls: Vec<String>,
    pub max_request_bytes: usize,
    pub progress_interval: Duration,
    /// Ends open streams (watch, keep-alive) so a graceful server stop does not wait on them.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// A response header as etcd's `header.fill`: `revision` 0 means "the current revision".
    pub fn header(&self, revision: i64) -> ResponseHeader {
        let revision = if revision == 0 {
            self.node.machine().read().revision()
        } else {
            revision
        };
        ResponseHeader {
            cluster_id: self.node.cluster_id(),
            member_id: self.node.id(),
            revision,
            raft_term: self.node.raft_term(),
        }
    }

    /// etcd's `ErrRequestTooLarge` check on what would be proposed.
    pub fn check_size(&self, encoded_len: usize) -> Result<(), tonic::Status> {
        // The proposal wraps the request in an InternalRaftRequest with a small header.
        const PROPOSAL_OVERHEAD: usize = 16;
        if encoded_len.saturating_add(PROPOSAL_OVERHEAD) > self.max_request_bytes {
            return Err(error::request_too_large());
        }
        Ok(())
    }
}

/// The etcd v3 services of one member; [`Services::into_routes`] mounts them on a tonic server.
pub struct Services {
    node: Node,
    client_urls: Vec<String>,
    max_request_bytes: usize,
    progress_interval: Duration,
    shutdown: CancellationToken,
}

impl Services {
    pub fn new(node: Node) -> Self {
        Self {
            node,
            client_urls: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            shutdown: CancellationToken::new(),
        }
    }

    /// The client URLs MemberList reports for this member (etcd `--advertise-client-urls`).
    pub fn with_client_urls(mut self, urls: Vec<String>) -> Self {
        self.client_urls = urls;
        self
    }

    /// etcd `--max-request-bytes`.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// How often a watch with `progress_notify` gets an empty progress response when it saw no
    /// events (etcd `--experimental-watch-progress-notify-interval`, at least 100 ms).
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval.max(MIN_PROGRESS_INTERVAL);
        self
    }

    /// Open watch and keep-alive streams end when `token` fires.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    pub fn into_routes(self) -> Routes {
        let max_recv = self.max_request_bytes.saturating_add(GRPC_OVERHEAD_BYTES);
        let shared = Arc::new(Shared {
            node: self.node,
            client_urls: self.client_urls,
            max_request_bytes: self.max_request_bytes,
            progress_interval: self.progress_interval,
            shutdown: self.shutdown,
        });
        Routes::new(
            KvServer::new(kv::KvService::new(Arc::clone(&shared)))
                .max_decoding_message_size(max_recv),
        )
        .add_service(
            WatchServer::new(watch::WatchService::new(Arc::clone(&shared)))
                .max_decoding_message_size(max_recv),
        )
        .add_service(
            LeaseServer::new(lease::LeaseService::new(Arc::clone(&shared)))
                .max_decoding_message_size(max_recv),
        )
        .add_service(
            MaintenanceServer::new(maintenance::MaintenanceService::new(Arc::clone(&shared)))
                .max_decoding_message_size(max_recv),
        )
        .add_service(
            ClusterServer::new(cluster::ClusterService::new(Arc::clone(&shared)))
                .max_decoding_message_size(max_recv),
        )
        .add_service(
            AuthServer::new(auth::AuthService::new(shared)).max_decoding_message_size(max_recv),
        )
    }
}
