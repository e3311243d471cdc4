//! Member-to-member traffic: Raft RPCs plus the requests a follower hands to its leader (writes,
//! read-index, lease keep-alives), as one unary gRPC method carrying postcard-encoded messages
//! over the peer URL's port — TLS when the URL says `https` and the node was given peer TLS.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf as _, BufMut as _, Bytes};
use openraft::{
    BasicNode, RaftNetwork, RaftNetworkFactory,
    error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    },
};
use serde::{Deserialize, Serialize};
use tonic::{
    Status,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Body as HttpBody, BoxFuture, Service, StdError, http},
    server::NamedService,
    transport::Channel,
};

use super::{NodeId, Proposal, Reply, TypeConfig};
use crate::mvcc::{Error as StoreError, LeaseId, LeaseTimeToLive};

const SERVICE: &str = "dapr.etcdstore.v1.Peer";
const CALL_PATH: &str = "/dapr.etcdstore.v1.Peer/Call";

/// Bounds a forwarded client request end to end.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds dialling a peer (TCP connect, plus the TLS handshake on `https`), so an unresponsive
/// member is redialled rather than waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A request to a peer.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum PeerRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A write proposed on a follower, for the leader to replicate.
    Forward(Proposal),
    /// "Confirm you are still the leader and tell me your commit index."
    ReadIndex,
    KeepAlive(LeaseId),
    TimeToLive {
        id: LeaseId,
        keys: bool,
    },
}

/// Why a forwarded request failed on the leader's side.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("etcdserver: {0}")]
    Other(String),
}

/// A peer's answer.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum PeerResponse {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Forward(Result<Reply, ForwardError>),
    ReadIndex(Result<u64, ForwardError>),
    KeepAlive(Result<i64, ForwardError>),
    TimeToLive(Result<LeaseTimeToLive, ForwardError>),
}

/// What serves peer requests (the node).
pub trait PeerHandler: Send + Sync + 'static {
    fn handle(&self, request: PeerRequest) -> BoxFuture<PeerResponse, Infallible>;
}

/// The peer gRPC service.
pub struct PeerService<H> {
    handler: Arc<H>,
    /// Under mTLS: the only client identity allowed (every member's own SVID id).
    allowed: Option<dapr_security::SpiffeId>,
}

impl<H> Clone for PeerService<H> {
    fn clone(&self) -> Self {
        Self {
            handler: Arc::clone(&self.handler),
            allowed: self.allowed.clone(),
        }
    }
}

impl<H: PeerHandler> PeerService<H> {
    pub fn new(handler: Arc<H>) -> Self {
        Self {
            handler,
            allowed: None,
        }
    }

    /// Accepts only calls whose client certificate carries `id` (etcd's allowed peer names:
    /// another workload's SVID from the same trust root must not reach the Raft port).
    pub fn allow_only(mut self, id: Option<dapr_security::SpiffeId>) -> Self {
        self.allowed = id;
        self
    }
}

impl<H> NamedService for PeerService<H> {
    const NAME: &'static str = SERVICE;
}

impl<H, B> Service<http::Request<B>> for PeerService<H>
where
    H: PeerHandler,
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != CALL_PATH {
            return Box::pin(async move { Ok(Status::unimplemented("").into_http()) });
        }
        if let Some(allowed) = &self.allowed {
            let caller = req
                .extensions()
                .get::<dapr_security::net::TlsConnectInfo>()
                .and_then(|info| info.peer_id.as_ref());
            if caller != Some(allowed) {
                let caller = caller.map_or_else(|| "none".to_owned(), ToString::to_string);
                return Box::pin(async move {
                    Ok(Status::permission_denied(format!(
                        "peer identity {caller} is not a member of this cluster"
                    ))
                    .into_http())
                });
            }
        }
        let method = CallSvc(Arc::clone(&self.handler));
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(BytesCodec)
                .apply_max_message_size_config(Some(usize::MAX), Some(usize::MAX));
            Ok(grpc.unary(method, req).await)
        })
    }
}

struct CallSvc<H>(Arc<H>);

impl<H: PeerHandler> tonic::server::UnaryService<Bytes> for CallSvc<H> {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let handler = Arc::clone(&self.0);
        Box::pin(async move {
            let request: PeerRequest = postcard::from_bytes(request.get_ref())
                .map_err(|e| Status::invalid_argument(format!("bad peer request: {e}")))?;
            let Ok(response) = handler.handle(request).await;
            let bytes = postcard::to_allocvec(&response)
                .map_err(|e| Status::internal(format!("peer response: {e}")))?;
            Ok(tonic::Response::new(Bytes::from(bytes)))
        })
    }
}

/// Passes bytes through unchanged in both directions.
#[derive(Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("peer {0} is unknown")]
    UnknownPeer(NodeId),
    #[error("peer {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("peer call timed out")]
    Timeout,
    #[error("peer call failed: {0}")]
    Status(#[from] Status),
    #[error("bad peer message: {0}")]
    Codec(#[from] postcard::Error),
}

/// Channels to every peer, created lazily and shared by all callers.
#[derive(Clone)]
pub struct Peers {
    addresses: Arc<HashMap<NodeId, String>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    channels: Arc<Mutex<HashMap<NodeId, Channel>>>,
}

impl Peers {
    /// `addresses` maps member ids to their peer URLs (`http(s)://host:port`).
    pub fn new(addresses: HashMap<NodeId, String>, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            addresses: Arc::new(addresses),
            tls,
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn channel(&self, target: NodeId) -> Result<Channel, CallError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(&target) {
            return Ok(channel.clone());
        }
        let url = self
            .addresses
            .get(&target)
            .ok_or(CallError::UnknownPeer(target))?;
        let (secure, hostport) = split_url(url);
        let channel = match (&self.tls, secure) {
            // The timeout covers the TCP connect and the TLS handshake: without it a member
            // that does not answer the dial (frozen, or partitioned mid-dial) holds the
            // channel's one in-flight dial until the kernel gives up (minutes), and every call
            // to that member fails meanwhile, even once it is back.
            (Some(tls), true) => {
                let (endpoint, dialer) =
                    dapr_security::net::tls_endpoint(hostport, Arc::clone(tls))
                        .map_err(|e| CallError::Status(Status::unavailable(e.to_string())))?;
                endpoint
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect_with_connector_lazy(dialer)
            }
            _ => {
                let (endpoint, dialer) = dapr_security::net::tcp_endpoint(hostport)
                    .map_err(|e| CallError::Status(Status::unavailable(e.to_string())))?;
                endpoint
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect_with_connector_lazy(dialer)
            }
        };
        channels.insert(target, channel.clone());
        Ok(channel)
    }

    /// One request/response exchange with `target`, bounded by `timeout`.
    pub async fn call(
        &self,
        target: NodeId,
        request: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, CallError> {
        let channel = self.channel(target)?;
        let body = Bytes::from(postcard::to_allocvec(request)?);
        let exchange = async {
            let mut grpc = tonic::client::Grpc::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX);
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static(CALL_PATH);
            let response = grpc
                .unary(tonic::Request::new(body), path, BytesCodec)
                .await?;
            Ok::<_, CallError>(response.into_inner())
        };
        let bytes = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout)??;
        Ok(postcard::from_bytes(&bytes)?)
    }
}

/// `(is https, host:port)` of a peer URL; a bare `host:port` counts as http.
pub fn split_url(url: &str) -> (bool, &str) {
    if let Some(rest) = url.strip_prefix("https://") {
        (true, rest.trim_end_matches('/'))
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest.trim_end_matches('/'))
    } else {
        (false, url.trim_end_matches('/'))
    }
}

/// openraft's view of the transport.
#[derive(Clone)]
pub struct Network {
    pub peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            target,
            peers: self.peers.clone(),
        }
    }
}

pub struct Connection {
    target: NodeId,
    peers: Peers,
}

impl Connection {
    async fn exchange<E: std::error::Error>(
        &self,
        request: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, RPCError<NodeId, BasicNode, E>> {
        self.peers
            .call(self.target, &request, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallError::Timeout | CallError::Codec(_) => {
                    RPCError::Network(NetworkError::new(&e))
                }
                _ => RPCError::Unreachable(Unreachable::new(&e)),
            })
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected peer response");
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.exchange(PeerRequest::Append(rpc), &option).await? {
            PeerResponse::Append(result) => result.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.exchange(PeerRequest::Snapshot(rpc), &option).await? {
            PeerResponse::Snapshot(result) => result.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.exchange(PeerRequest::Vote(rpc), &option).await? {
            PeerResponse::Vote(result) => result.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        }
    }
}
