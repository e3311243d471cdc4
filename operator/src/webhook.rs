//! The CRD conversion webhook listener, scaffold stage: plain HTTP, and `/convert` answers
//! `501 Not Implemented`. Upstream serves HTTPS with the operator's SVID and converts
//! `subscriptions.dapr.io` between v1alpha1 and v2alpha1.

use axum::{Router, http::StatusCode, routing::any};
use dapr_kit::CancellationToken;
use tokio::net::TcpListener;

/// Upstream's path of the conversion endpoint (other paths are 404).
pub const CONVERT_PATH: &str = "/convert";

/// What `/convert` answers until conversion is implemented.
pub const NOT_IMPLEMENTED_BODY: &str =
    "the dapr-operator conversion webhook is a scaffold: CRD conversion is not implemented yet\n";

/// The webhook's routes.
pub fn router() -> Router {
    Router::new().route(
        CONVERT_PATH,
        any(|| async { (StatusCode::NOT_IMPLEMENTED, NOT_IMPLEMENTED_BODY) }),
    )
}

/// Serves [`router`] on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
