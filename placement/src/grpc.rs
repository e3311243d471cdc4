//! `dapr.proto.placement.v1.Placement/ReportDaprStatus` (spec §8.1): a thin adapter from the
//! RPC to the dissemination router.
//!
//! The service is written out by hand instead of using the generated `PlacementServer` so that
//! orders go out through [`OrderCodec`], which encodes an order once however many streams
//! receive it (a table update to N hosts would otherwise be cloned and encoded N times).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{BufMut as _, Bytes};
use dapr_proto::placement::v1::Host;
use dapr_security::net::peer_info;
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{
    Request, Response, Status, Streaming,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Body as HttpBody, BoxFuture, Service, StdError, http},
    server::NamedService,
};

use crate::{
    authz::{self, Caller, Peer},
    dissemination::{
        core::Outgoing,
        shell::{Conn, Router},
    },
};

const SERVICE: &str = "dapr.proto.placement.v1.Placement";
const REPORT_PATH: &str = "/dapr.proto.placement.v1.Placement/ReportDaprStatus";

/// The placement gRPC service.
#[derive(Clone)]
pub struct PlacementService {
    node_id: Arc<str>,
    leader: watch::Receiver<bool>,
    router: Router,
    /// Whether the server runs mTLS (callers are then authorized by their SPIFFE ID).
    mtls: bool,
}

impl PlacementService {
    pub fn new(node_id: &str, leader: watch::Receiver<bool>, router: Router, mtls: bool) -> Self {
        Self {
            node_id: node_id.into(),
            leader,
            router,
            mtls,
        }
    }

    async fn report(
        self,
        request: Request<Streaming<Host>>,
    ) -> Result<Response<UnboundedReceiverStream<Result<Arc<Outgoing>, Status>>>, Status> {
        if !*self.leader.borrow() {
            return Err(Status::failed_precondition(format!(
                "node id={} is not a leader. Only the leader can serve requests",
                self.node_id
            )));
        }
        if self.router.is_closing() {
            return Err(Status::unavailable("placement server is shutting down"));
        }
        let tls = peer_info(&request);
        let peer = if self.mtls {
            Peer::Mtls(
                tls.and_then(|info| info.peer_id.as_ref())
                    .and_then(|id| Caller::from_spiffe_path(id.path())),
            )
        } else {
            Peer::Anonymous
        };
        let remote = request
            .remote_addr()
            .or_else(|| tls.map(|info| info.remote_addr));
        let remote_text = remote.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let mut inbound = request.into_inner();
        let first = match inbound.message().await {
            Ok(Some(host)) => host,
            Ok(None) => return Err(Status::unknown("EOF")),
            Err(status) => return Err(status),
        };
        if let Err(status) = authz::authorize(&peer, &first) {
            tracing::warn!(
                "Authorization failed for stream {remote_text}: {}",
                status.message()
            );
            return Err(status);
        }
        tracing::info!(
            "Received status report connection from new namespace={} id={} host={}",
            first.namespace,
            first.id,
            first.name
        );
        let (tx, rx) = mpsc::unbounded_channel();
        self.router.add(
            Conn {
                inbound,
                tx,
                peer,
                remote,
            },
            first,
        );
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }
}

impl NamedService for PlacementService {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for PlacementService
where
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
        if req.uri().path() != REPORT_PATH {
            return Box::pin(async move { Ok(Status::unimplemented("").into_http()) });
        }
        let method = ReportSvc(self.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(OrderCodec);
            Ok(grpc.streaming(method, req).await)
        })
    }
}

struct ReportSvc(PlacementService);

impl tonic::server::StreamingService<Host> for ReportSvc {
    type Response = Arc<Outgoing>;
    type ResponseStream = UnboundedReceiverStream<Result<Arc<Outgoing>, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<Host>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(service.report(request))
    }
}

/// Decodes hosts with prost; encodes each shared order once.
#[derive(Clone, Copy, Default)]
struct OrderCodec;

impl Codec for OrderCodec {
    type Encode = Arc<Outgoing>;
    type Decode = Host;
    type Encoder = OrderEncoder;
    type Decoder = HostDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        OrderEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        HostDecoder
    }
}

struct OrderEncoder;

impl Encoder for OrderEncoder {
    type Item = Arc<Outgoing>;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let bytes = item
            .encoded
            .get_or_init(|| Bytes::from(item.order.encode_to_vec()));
        dst.put_slice(bytes);
        Ok(())
    }
}

struct HostDecoder;

impl Decoder for HostDecoder {
    type Item = Host;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Host>, Status> {
        Host::decode(src)
            .map(Some)
            .map_err(|error| Status::internal(format!("failed to decode Host: {error}")))
    }
}
