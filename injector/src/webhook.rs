//! The admission webhook listener, scaffold stage: plain HTTP, and `/mutate` answers
//! `501 Not Implemented`. Upstream serves HTTPS with the injector's SVID (RSA key) and answers
//! every `/mutate` AdmissionReview with a JSON Patch adding daprd.

use axum::{Router, http::StatusCode, routing::any};
use dapr_kit::CancellationToken;
use tokio::net::TcpListener;

/// Upstream's path of the admission endpoint (other paths are 404).
pub const MUTATE_PATH: &str = "/mutate";

/// What `/mutate` answers until injection is implemented.
pub const NOT_IMPLEMENTED_BODY: &str =
    "the dapr-sidecar-injector is a scaffold: sidecar injection is not implemented yet\n";

/// The webhook's routes.
pub fn router() -> Router {
    Router::new().route(
        MUTATE_PATH,
        any(|| async { (StatusCode::NOT_IMPLEMENTED, NOT_IMPLEMENTED_BODY) }),
    )
}

/// Serves [`router`] on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
