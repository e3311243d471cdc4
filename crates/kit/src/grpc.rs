//! Serving tonic routes on a bound listener with the shared shutdown token.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Serves `routes` over plaintext HTTP/2 until `shutdown` fires. A request for a service that is
/// not in `routes` is answered with `Unimplemented`.
pub async fn serve_plaintext(
    listener: TcpListener,
    routes: Routes,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    serve_plaintext_with(listener, routes, None, shutdown).await
}

/// Server-side HTTP/2 keepalive: ping every `interval`, drop the connection when an ack takes
/// longer than `timeout` (grpc-go `keepalive.ServerParameters{Time, Timeout}`).
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Applies the settings every one of our gRPC servers shares.
pub fn server_builder(keepalive: Option<Keepalive>) -> tonic::transport::Server {
    let builder = tonic::transport::Server::builder();
    match keepalive {
        Some(k) => builder
            .http2_keepalive_interval(Some(k.interval))
            .http2_keepalive_timeout(Some(k.timeout)),
        None => builder,
    }
}

/// As [`serve_plaintext`], with keepalive settings.
pub async fn serve_plaintext_with(
    listener: TcpListener,
    routes: Routes,
    keepalive: Option<Keepalive>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    server_builder(keepalive)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            crate::net::incoming_nodelay(listener),
            shutdown.cancelled_owned(),
        )
        .await
}
