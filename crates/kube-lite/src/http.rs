//! A small HTTP/1.1 client over TCP or rustls (ring): one request per fresh connection with a
//! custom rustls config. Used by the Kubernetes client here and by sentry's JWKS fetcher.
//!
//! Why not `reqwest` or `kube`: the callers only need "one request on a fresh connection with a
//! custom rustls config" (custom roots, Ed25519 client certs, an explicit TLS server name);
//! hyper's `conn::http1` does that with crates already in the graph.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("dial tcp {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(#[source] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] http::Error),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
}

/// Where to connect and how.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// TLS config and the name to verify; `None` = plain HTTP.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Endpoint {
    /// Sends one request on a fresh connection; the response body streams from it.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, HttpError> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| HttpError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut request = request;
        if !request.headers().contains_key(http::header::HOST) {
            request.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_str(&addr).map_err(http::Error::from)?,
            );
        }
        match &self.tls {
            Some((config, name)) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(HttpError::Tls)?;
                send_on(TokioIo::new(tls), request).await
            }
            None => send_on(TokioIo::new(tcp), request).await,
        }
    }

    /// GET/POST with a deadline, collecting the whole body.
    pub async fn call(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, Bytes), HttpError> {
        let run = async {
            let response = self.send(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}

async fn send_on<T>(
    io: T,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "http connection ended");
        }
    });
    Ok(sender.send_request(request).await?)
}

/// A rustls client config on ring with the given roots and optional client certificate.
pub fn client_config(
    roots: rustls::RootCertStore,
    client_auth: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_root_certificates(roots);
    match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Adds every certificate of a PEM text to a root store; the count added.
pub fn add_pem_roots(roots: &mut rustls::RootCertStore, pem: &[u8]) -> usize {
    certificates(pem)
        .into_iter()
        .filter(|c| roots.add(c.clone()).is_ok())
        .count()
}

/// The leading `CERTIFICATE` blocks of a PEM text, as DER (none when it does not parse).
pub fn certificates(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    pem::parse_many(pem)
        .unwrap_or_default()
        .into_iter()
        .take_while(|block| block.tag() == "CERTIFICATE")
        .map(|block| rustls::pki_types::CertificateDer::from(block.into_contents()))
        .collect()
}
