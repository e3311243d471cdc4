//! HTTP(S) wiring of the OIDC server: axum routes over a plain or TLS listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use dapr_kit::healthz::Gate;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::{Discovery, host_allowed, routes};

/// How often to look for TLS files that do not exist yet (upstream: 5 s).
const TLS_WAIT: Duration = Duration::from_secs(5);

/// The TLS certificate and key paths, when TLS is served.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the OIDC server needs.
#[derive(Debug, Clone)]
pub struct OidcServer {
    pub listen_address: String,
    pub port: u16,
    pub path_prefix: Option<String>,
    pub discovery: Discovery,
    /// The JWKS as served (re-serialised).
    pub jwks_json: String,
    pub tls: Option<TlsFiles>,
}

struct Shared {
    discovery: Discovery,
    jwks_json: String,
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
            Some(files) => {
                if !wait_for_files(files, &shutdown).await {
                    return Ok(());
                }
                let config = load_tls(files).context("failed to load TLS certificate and key")?;
                tracing::info!(
                    "Loaded TLS certificate from {} and key from {}",
                    files.cert.display(),
                    files.key.display()
                );
                Some(TlsAcceptor::from(Arc::new(config)))
            }
            None => None,
        };
        let app = router(&discovery_path, &jwks_path, self.discovery, self.jwks_json);

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
    let shared = Arc::new(Shared {
        discovery,
        jwks_json,
    });
    Router::new()
        .route(discovery_path, any(handle_discovery))
        .route(jwks_path, any(handle_jwks))
        .fallback(not_found)
        .with_state(shared)
}

/// Checks at once, then every 5 s; false when shut down first.
async fn wait_for_files(files: &TlsFiles, shutdown: &CancellationToken) -> bool {
    loop {
        if files.cert.exists() && files.key.exists() {
            return true;
        }
        tracing::warn!(
            "Waiting for TLS certificate and key files to be available: {}, {}",
            files.cert.display(),
            files.key.display()
        );
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(TLS_WAIT) => {}
        }
    }
}

/// TLS ≥ 1.2 with the PEM cert chain and key (PKCS#1, PKCS#8 or SEC1).
fn load_tls(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "tls: failed to find any PEM data in certificate input"
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
    if shared.jwks_json.is_empty() {
        return go_error(StatusCode::NOT_FOUND, "OIDC configuration not available");
    }
    match shared.discovery.document(host, forwarded) {
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
    if shared.jwks_json.is_empty() {
        return go_error(StatusCode::NOT_FOUND, "JWKS not available");
    }
    json(shared.jwks_json.clone())
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
