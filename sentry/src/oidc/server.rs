//! HTTP(S) wiring of the OIDC server: axum routes over a plain or TLS listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use dapr_kit::healthz::Gate;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::{Discovery, OidcTls, host_allowed, routes};
use crate::jwt::JwtIssuer;

/// Everything the OIDC server needs.
#[derive(Debug, Clone)]
pub struct OidcServer {
    pub listen_address: String,
    pub port: u16,
    pub path_prefix: Option<String>,
    pub discovery: Discovery,
    /// The JWKS and algorithm as served; replaced when the CA material is reloaded.
    pub published: watch::Receiver<Published>,
    /// The TLS certificate, when TLS is served; reloaded with the CA material.
    pub tls: Option<Arc<OidcTls>>,
}

/// What the server publishes from the CA's JWT material. Upstream builds it when the (re)started
/// OIDC server starts; here it is swapped when the material is reloaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The JWKS as served (re-serialised).
    pub jwks_json: String,
    /// The signing algorithm named in the discovery document.
    pub signing_algorithm: String,
}

impl Published {
    /// What `issuer` publishes.
    pub fn of(issuer: &JwtIssuer) -> Self {
        Self {
            jwks_json: issuer.jwks().to_json(),
            signing_algorithm: issuer.algorithm().to_owned(),
        }
    }
}

struct Shared {
    discovery: Discovery,
    published: watch::Receiver<Published>,
}

impl OidcServer {
    /// Waits for the TLS files, listens, marks `gate` ready and serves until `shutdown`.
    pub async fn run(self, gate: Gate, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (discovery_path, jwks_path) = routes(self.path_prefix.as_deref());
        if self.discovery.allowed_hosts.is_empty() {
            tracing::info!("OIDC server will accept requests for any host");
        } else {
            tracing::info!(
                "OIDC server will only accept requests for hosts: {:?}",
                self.discovery.allowed_hosts
            );
        }
        let tls = match &self.tls {
            Some(tls) => {
                if !tls.wait_for_files(&shutdown).await {
                    return Ok(());
                }
                tls.reload()?;
                Some(TlsAcceptor::from(Arc::new(tls.server_config()?)))
            }
            None => None,
        };
        let app = live_router(&discovery_path, &jwks_path, self.discovery, self.published);

        let addr = format!("{}:{}", self.listen_address, self.port);
        let listener = dapr_kit::servers::bind("OIDC", &self.listen_address, self.port)
            .await
            .with_context(|| format!("failed to listen on {addr}"))?;
        gate.set_ready();
        let stop = shutdown.clone().cancelled_owned();
        match tls {
            None => {
                tracing::info!("Starting OIDC HTTP server (insecure) on {addr}");
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
            Some(acceptor) => {
                tracing::info!("Starting OIDC HTTP server on {addr}");
                let listener = TlsListener::spawn(listener, acceptor, shutdown.clone())?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
        }
        gate.set_not_ready();
        tracing::info!("Shutting down OIDC HTTP server");
        Ok(())
    }
}

/// The two routes (any method reaches the handlers, as Go's `ServeMux`); everything else 404.
pub fn router(
    discovery_path: &str,
    jwks_path: &str,
    discovery: Discovery,
    jwks_json: String,
) -> Router {
    // A receiver keeps the last value after its sender is gone.
    let (_, published) = watch::channel(Published {
        jwks_json,
        signing_algorithm: discovery.signing_algorithm.clone(),
    });
    live_router(discovery_path, jwks_path, discovery, published)
}

/// [`router`] serving whatever `published` holds at the time of each request (its algorithm
/// replaces `discovery.signing_algorithm`).
pub fn live_router(
    discovery_path: &str,
    jwks_path: &str,
    discovery: Discovery,
    published: watch::Receiver<Published>,
) -> Router {
    let shared = Arc::new(Shared {
        discovery,
        published,
    });
    Router::new()
        .route(discovery_path, any(handle_discovery))
        .route(jwks_path, any(handle_jwks))
        .fallback(not_found)
        .with_state(shared)
}

async fn handle_discovery(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (host, forwarded) = hosts(&headers);
    if !host_allowed(&shared.discovery.allowed_hosts, host, forwarded) {
        return forbidden(host, forwarded);
    }
    if method != Method::GET {
        return go_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let published = shared.published.borrow().clone();
    if published.jwks_json.is_empty() {
        return go_error(StatusCode::NOT_FOUND, "OIDC configuration not available");
    }
    let discovery = Discovery {
        signing_algorithm: published.signing_algorithm,
        ..shared.discovery.clone()
    };
    match discovery.document(host, forwarded) {
        Ok(doc) => match serde_json::to_string(&doc) {
            Ok(mut body) => {
                body.push('\n');
                json(body)
            }
            Err(_) => go_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
        Err(_) => {
            tracing::error!("Failed to parse host '{host}'");
            go_error(StatusCode::BAD_REQUEST, "Invalid host")
        }
    }
}

async fn handle_jwks(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (host, forwarded) = hosts(&headers);
    if !host_allowed(&shared.discovery.allowed_hosts, host, forwarded) {
        return forbidden(host, forwarded);
    }
    if method != Method::GET {
        return go_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let jwks_json = shared.published.borrow().jwks_json.clone();
    if jwks_json.is_empty() {
        return go_error(StatusCode::NOT_FOUND, "JWKS not available");
    }
    json(jwks_json)
}

async fn not_found() -> Response {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

fn hosts(headers: &HeaderMap) -> (&str, Option<&str>) {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    (
        get(header::HOST).unwrap_or(""),
        get(header::HeaderName::from_static("x-forwarded-host")),
    )
}

fn forbidden(host: &str, forwarded: Option<&str>) -> Response {
    tracing::warn!(
        "Request from unauthorized domain: {}",
        forwarded.filter(|f| !f.is_empty()).unwrap_or(host)
    );
    go_error(StatusCode::FORBIDDEN, "Forbidden: unauthorized domain")
}

fn json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Go's `http.Error`: text plus newline, plain-text content type, nosniff.
fn go_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

/// A listener yielding finished TLS handshakes; each handshake runs in its own task so a slow
/// client cannot hold up the others.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn spawn(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let rx = dapr_security::net::accept_loop(listener, acceptor, shutdown);
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop only ends on shutdown; graceful shutdown stops serving first.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
