//! Sockets around the rustls configs: a TLS accept loop, tonic serving over its connections with
//! the peer's SPIFFE ID available to handlers, and a tonic `Channel` dialled over rustls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dapr_kit::coalesce::Coalescing;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument as _;

use crate::spiffe::SpiffeId;
use crate::verify::peer_spiffe_id;

/// A client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Finished handshakes waiting for the server; a full queue slows accepting down.
const ACCEPT_QUEUE: usize = 64;

/// Accepts on `listener` until `shutdown` fires and yields finished handshakes. Each handshake
/// runs in its own task so a slow or hostile client cannot hold up the others.
pub fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    let span = tracing::info_span!("security.accept", addr = ?listener.local_addr().ok());
    let accept = async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "failed to accept connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Small gRPC frames must not wait for delayed ACKs (Go sets this by default).
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    };
    tokio::spawn(accept.instrument(span));
    rx
}

/// Who is on the other end of a served connection; tonic puts it into every request's
/// extensions (read it with [`peer_info`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConnectInfo {
    pub remote_addr: SocketAddr,
    /// The client's SVID ID when it presented a (verified) certificate.
    pub peer_id: Option<SpiffeId>,
}

/// The connection info of the connection a request came in on.
pub fn peer_info<T>(request: &tonic::Request<T>) -> Option<&TlsConnectInfo> {
    request.extensions().get::<TlsConnectInfo>()
}

/// A server-side TLS connection tonic can serve; responses ready together are encrypted and
/// written together ([`Coalescing`]).
pub struct TlsConn {
    stream: Coalescing<TlsStream<TcpStream>>,
    info: TlsConnectInfo,
}

impl TlsConn {
    pub fn new(stream: TlsStream<TcpStream>, remote_addr: SocketAddr) -> Self {
        let peer_id = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| peer_spiffe_id(certs).ok());
        Self {
            stream: Coalescing::new(stream),
            info: TlsConnectInfo {
                remote_addr,
                peer_id,
            },
        }
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The accepted connections as tonic's `incoming` stream, for
/// `Router::serve_with_incoming_shutdown`.
pub fn incoming(
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
) -> impl Stream<Item = Result<TlsConn, Infallible>> {
    use tokio_stream::StreamExt as _;
    ReceiverStream::new(accepted).map(|(stream, addr)| Ok(TlsConn::new(stream, addr)))
}

/// Serves `routes` on `listener` with `config` until `shutdown` fires.
pub async fn serve_routes(
    routes: tonic::service::Routes,
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let accepted = accept_loop(listener, TlsAcceptor::from(config), shutdown.clone());
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(accepted), shutdown.cancelled_owned())
        .await
}

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("invalid address '{address}': {source}")]
    Address {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("error establishing connection to '{address}': {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The host part of `host:port` (brackets of an IPv6 literal removed), used as SNI.
pub fn host_of(address: &str) -> &str {
    let host = match address.rfind(':') {
        Some(i) if !address[i + 1..].contains(']') => &address[..i],
        _ => address,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Dials TCP + rustls to one address for tonic; the peer is checked by the config's verifier,
/// the SNI is the host part of the address (any name works: no DNS-name check).
#[derive(Clone)]
pub struct TlsDialer {
    connector: TlsConnector,
    target: String,
    sni: String,
}

impl TlsDialer {
    pub fn new(address: &str, config: Arc<ClientConfig>) -> Self {
        Self {
            connector: TlsConnector::from(config),
            target: address.to_owned(),
            sni: host_of(address).to_owned(),
        }
    }
}

type DialFuture<T> = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<Coalescing<T>>>> + Send>>;

impl tower::Service<Uri> for TlsDialer {
    type Response = TokioIo<Coalescing<tokio_rustls::client::TlsStream<TcpStream>>>;
    type Error = std::io::Error;
    type Future = DialFuture<tokio_rustls::client::TlsStream<TcpStream>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&this.target).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(this.sni)
                .or_else(|_| ServerName::try_from("spiffe.invalid".to_owned()))
                .map_err(std::io::Error::other)?;
            let stream = this.connector.connect(name, tcp).await?;
            Ok(TokioIo::new(Coalescing::new(stream)))
        })
    }
}

/// Dials plain TCP (no delay) to one address for tonic, with requests that are ready together
/// written together ([`Coalescing`]): a unary call's headers and body then leave in one write
/// instead of two, and so do the calls of concurrent callers.
#[derive(Clone)]
pub struct TcpDialer {
    target: String,
}

impl TcpDialer {
    pub fn new(address: &str) -> Self {
        Self {
            target: address.to_owned(),
        }
    }
}

impl tower::Service<Uri> for TcpDialer {
    type Response = TokioIo<Coalescing<TcpStream>>;
    type Error = std::io::Error;
    type Future = DialFuture<TcpStream>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let target = self.target.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(Coalescing::new(tcp)))
        })
    }
}

/// The tonic endpoint of `host:port`; the dialer decides how it is reached.
fn endpoint_for(address: &str) -> Result<Endpoint, ChannelError> {
    Endpoint::from_shared(format!("http://{address}")).map_err(|source| ChannelError::Address {
        address: address.to_owned(),
        source,
    })
}

/// The endpoint and plaintext dialer for `address` (`host:port`).
pub fn tcp_endpoint(address: &str) -> Result<(Endpoint, TcpDialer), ChannelError> {
    let endpoint = endpoint_for(address)?;
    Ok((endpoint, TcpDialer::new(address)))
}

/// The endpoint and dialer for `address` (`host:port`); set timeouts etc. on the endpoint.
pub fn tls_endpoint(
    address: &str,
    config: Arc<ClientConfig>,
) -> Result<(Endpoint, TlsDialer), ChannelError> {
    let endpoint = endpoint_for(address)?;
    Ok((endpoint, TlsDialer::new(address, config)))
}

/// Dials `address` now over TCP + rustls (`config` verifies the server).
pub async fn connect_channel(
    address: &str,
    config: Arc<ClientConfig>,
) -> Result<Channel, ChannelError> {
    let (endpoint, connector) = tls_endpoint(address, config)?;
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| ChannelError::Connect {
            address: address.to_owned(),
            source,
        })
}

/// A channel to `address` that connects on first use and reconnects as needed.
pub fn lazy_channel(address: &str, config: Arc<ClientConfig>) -> Result<Channel, ChannelError> {
    let (endpoint, connector) = tls_endpoint(address, config)?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

#[cfg(test)]
mod tests;
