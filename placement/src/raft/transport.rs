//! The server half of the Raft transport: accepts peers (mTLS when configured) and feeds their
//! RPCs to our openraft node, one request at a time per connection.

use std::{net::SocketAddr, time::Duration};

use openraft::Raft;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    RaftTls,
    frame::{Request, Response, read_frame, write_frame},
    types::TypeConfig,
};

/// A byte stream to or from a peer: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
pub type BoxedIo = Box<dyn Io>;

/// A peer gets this long to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection with no request for this long is closed (a leader's connection carries a
/// heartbeat every few hundred milliseconds; this reaps half-open connections of dead peers).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Writing one response may take this long before the peer is given up on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts peers until `shutdown`, then closes every connection.
pub async fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    tls: Option<RaftTls>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let span = tracing::debug_span!("placement.raft.conn", %peer);
                    connections.spawn(handle(tcp, peer, raft.clone(), tls.clone()).instrument(span));
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a raft connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn handle(tcp: TcpStream, peer: SocketAddr, raft: Raft<TypeConfig>, tls: Option<RaftTls>) {
    // Best effort: a heartbeat is small and latency matters more than batching.
    let _ = tcp.set_nodelay(true);
    let mut io: BoxedIo = match tls {
        None => Box::new(tcp),
        Some(tls) => {
            let acceptor = TlsAcceptor::from((tls.server)());
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "raft tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("raft tls handshake timed out");
                    return;
                }
            };
            let certs = stream.get_ref().1.peer_certificates().unwrap_or_default();
            if !(tls.authorize_client)(certs) {
                tracing::warn!(%peer, "raft peer is not authorized, closing the connection");
                return;
            }
            Box::new(stream)
        }
    };
    loop {
        let request =
            match tokio::time::timeout(IDLE_TIMEOUT, read_frame::<_, Request>(&mut io)).await {
                Ok(Ok(Some(request))) => request,
                Ok(Ok(None)) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%peer, %error, "closing raft connection");
                    return;
                }
                Err(_) => {
                    tracing::debug!("closing idle raft connection");
                    return;
                }
            };
        let response = match request {
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut io, &response)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "failed to answer a raft peer");
                return;
            }
            Err(_) => {
                tracing::debug!("timed out answering a raft peer");
                return;
            }
        }
    }
}
