//! Lease: grant, revoke, the keep-alive stream, time-to-live and listing (etcd `v3rpc/lease.go`).

use std::{pin::Pin, sync::Arc};

use dapr_proto::etcd::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, lease_server::Lease,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response as GrpcResponse, Status, Streaming};

use super::{
    Shared,
    error::{no_result, node_status, store_status, unexpected},
};
use crate::{
    clock::now_ms,
    mvcc::{self, Command, Response},
    node::NodeError,
};

/// Keep-alive responses buffered before the stream waits for the client.
const KEEPALIVE_BUFFER: usize = 16;

pub(crate) struct LeaseService {
    shared: Arc<Shared>,
}

impl LeaseService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn write(&self, cmd: Command) -> Result<Response, Status> {
        let reply = self.shared.node.write(cmd).await.map_err(node_status)?;
        reply
            .result
            .ok_or_else(no_result)?
            .map_err(|e| store_status(&e))
    }
}

/// One keep-alive answer: the renewed TTL, or 0 for a lease that is gone (etcd turns
/// `ErrLeaseNotFound` into TTL 0); other errors end the stream.
pub(crate) async fn keep_alive_once(
    shared: &Shared,
    id: i64,
) -> Result<LeaseKeepAliveResponse, Status> {
    let ttl = match shared.node.keep_alive(id).await {
        Ok(ttl) => ttl,
        Err(NodeError::Store(mvcc::Error::LeaseNotFound)) => 0,
        Err(e) => return Err(node_status(e)),
    };
    Ok(LeaseKeepAliveResponse {
        header: Some(shared.header(0)),
        id,
        ttl,
    })
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    #[tracing::instrument(level = "trace", skip_all)]
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<GrpcResponse<LeaseGrantResponse>, Status> {
        let r = request.into_inner();
        let cmd = Command::LeaseGrant(mvcc::LeaseGrantRequest {
            id: r.id,
            ttl: r.ttl,
            now_ms: now_ms(),
        });
        match self.write(cmd).await? {
            Response::LeaseGrant(g) => Ok(GrpcResponse::new(LeaseGrantResponse {
                header: Some(self.shared.header(g.revision)),
                id: g.id,
                ttl: g.ttl,
                error: String::new(),
            })),
            _ => Err(unexpected()),
        }
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<GrpcResponse<LeaseRevokeResponse>, Status> {
        let id = request.into_inner().id;
        match self
            .write(Command::LeaseRevoke(mvcc::LeaseRevokeRequest { id }))
            .await?
        {
            Response::LeaseRevoke(r) => Ok(GrpcResponse::new(LeaseRevokeResponse {
                header: Some(self.shared.header(r.revision)),
            })),
            _ => Err(unexpected()),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<GrpcResponse<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(KEEPALIVE_BUFFER);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shared.shutdown.cancelled() => return,
                    () = tx.closed() => return,
                    next = requests.next() => next,
                };
                // End of the client's stream (or a transport error): done, as etcd's recv loop.
                let Some(Ok(req)) = next else { return };
                let answer = keep_alive_once(&shared, req.id).await;
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(GrpcResponse::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<GrpcResponse<LeaseTimeToLiveResponse>, Status> {
        let r = request.into_inner();
        let response = match self.shared.node.time_to_live(r.id, r.keys).await {
            Ok(t) => LeaseTimeToLiveResponse {
                header: Some(self.shared.header(0)),
                id: t.id,
                ttl: t.ttl,
                granted_ttl: t.granted_ttl,
                keys: t.keys,
            },
            // etcd answers a lease it does not know with TTL -1 rather than an error.
            Err(NodeError::Store(mvcc::Error::LeaseNotFound)) => LeaseTimeToLiveResponse {
                header: Some(self.shared.header(0)),
                id: r.id,
                ttl: -1,
                ..Default::default()
            },
            Err(e) => return Err(node_status(e)),
        };
        Ok(GrpcResponse::new(response))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<GrpcResponse<LeaseLeasesResponse>, Status> {
        let leases = self.shared.node.machine().read().leases();
        Ok(GrpcResponse::new(LeaseLeasesResponse {
            header: Some(self.shared.header(0)),
            leases: leases.into_iter().map(|id| LeaseStatus { id }).collect(),
        }))
    }
}
