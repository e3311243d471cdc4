//! Serving tonic routes on a bound listener with the shared shutdown token.

use tokio::net::TcpListener;
use tokio_stream::{StreamExt as _, wrappers::TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Serves `routes` over plaintext HTTP/2 until `shutdown` fires. A request for a service that is
/// not in `routes` is answered with `Unimplemented`.
pub async fn serve_plaintext(
    listener: TcpListener,
    routes: Routes,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Small gRPC frames must not wait for delayed ACKs (Go sets TCP_NODELAY by default).
            TcpListenerStream::new(listener).map(|conn| {
                conn.inspect(|tcp| {
                    let _ = tcp.set_nodelay(true);
                })
            }),
            shutdown.cancelled_owned(),
        )
        .await
}
