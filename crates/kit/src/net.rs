//! Listeners bound the way upstream's Go `net.Listen("tcp", host:port)` binds them.

use std::{io, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

use crate::coalesce::Coalescing;
use tokio_util::sync::CancellationToken;

/// Pause after a failed `accept` (e.g. out of file descriptors) so a loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `host:port` as Go does: an empty host means every interface (IPv6 dual-stack where
/// available, else IPv4), like Go's `:port`; a name binds its first IPv4 address (`localhost` →
/// 127.0.0.1, what Go peers and the integration tests dial), else its first address.
pub async fn bind_tcp(host: &str, port: u16) -> io::Result<TcpListener> {
    if host.is_empty() {
        return match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port))).await,
        };
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let target = prefer_ipv4(&resolved).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no address found for {host}"),
        )
    })?;
    TcpListener::bind(target).await
}

/// Accepted connections with TCP_NODELAY set, for tonic's `serve_with_incoming*`: small gRPC
/// frames must not wait for delayed ACKs (Go sets this by default; tonic's own nodelay setting
/// applies only to listeners tonic binds itself). Responses that are ready together are written
/// together ([`Coalescing`]), as grpc-go's writer does.
pub fn incoming_nodelay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = io::Result<Coalescing<tokio::net::TcpStream>>> {
    use tokio_stream::StreamExt as _;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        conn.map(|tcp| {
            let _ = tcp.set_nodelay(true);
            Coalescing::new(tcp)
        })
    })
}

/// The first IPv4 address, else the first address (Go's `first(isIPv4)`, then any).
pub fn prefer_ipv4(addresses: &[SocketAddr]) -> Option<SocketAddr> {
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
}

/// Accepts connections and closes them at once until `shutdown` fires.
///
/// Placeholder behind a port a service must already open (upstream's `ports/*` cases dial it)
/// while the protocol behind it is not implemented; `what` names it in logs.
pub async fn accept_and_drop(
    what: &'static str,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> io::Result<()> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, listener = what, "closing connection: not implemented yet");
                    drop(stream);
                }
                Err(error) => {
                    tracing::warn!(%error, listener = what, "failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn an_empty_host_accepts_loopback_connections() {
        let l = bind_tcp("", 0).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn localhost_binds_the_ipv4_loopback() {
        let l = bind_tcp("localhost", 0).await.unwrap();
        assert_eq!(l.local_addr().unwrap().ip(), std::net::Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn ipv4_is_preferred_over_an_earlier_ipv6_address() {
        let v6: SocketAddr = "[::1]:8201".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:8201".parse().unwrap();
        assert_eq!(prefer_ipv4(&[v6, v4]), Some(v4));
        assert_eq!(prefer_ipv4(&[v6]), Some(v6));
        assert_eq!(prefer_ipv4(&[]), None);
    }

    #[tokio::test]
    async fn the_placeholder_closes_connections_and_stops_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_and_drop("test", listener, token.clone()));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            stream.read(&mut buf).await.unwrap(),
            0,
            "connection is closed"
        );
        token.cancel();
        task.await.unwrap().unwrap();
    }
}
