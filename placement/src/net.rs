//! The Raft listener: bound where upstream binds it, and (for now) a placeholder behind it.

use std::{io, net::SocketAddr, time::Duration};

use dapr_kit::CancellationToken;
use tokio::net::TcpListener;

use crate::peers::RaftAddress;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds the Raft address. Upstream resolves it with Go's `ResolveTCPAddr`, which prefers IPv4
/// (`localhost` → 127.0.0.1, what peers and the integration tests dial), and binds that one IP;
/// an empty host binds every interface.
pub async fn bind_raft(address: &RaftAddress) -> io::Result<TcpListener> {
    if address.host.is_empty() {
        return dapr_kit::net::bind_tcp("", address.port).await;
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((address.host.as_str(), address.port))
        .await?
        .collect();
    let target = prefer_ipv4(&resolved).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no address found for {}", address.host),
        )
    })?;
    TcpListener::bind(target).await
}

/// The first IPv4 address, else the first address (Go's `first(isIPv4)` then fallback).
pub fn prefer_ipv4(addresses: &[SocketAddr]) -> Option<SocketAddr> {
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
}

/// Accepts connections and closes them at once until `shutdown` fires.
///
/// Placeholder for the Raft transport: it keeps the port open (integration case `ports/placement`
/// dials it) while leader election is not implemented.
pub async fn accept_and_drop(listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "closing raft connection: raft is not implemented yet");
                    drop(stream);
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a raft connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_preferred_over_an_earlier_ipv6_address() {
        let v6: SocketAddr = "[::1]:8201".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:8201".parse().unwrap();
        assert_eq!(prefer_ipv4(&[v6, v4]), Some(v4));
        assert_eq!(prefer_ipv4(&[v6]), Some(v6));
        assert_eq!(prefer_ipv4(&[]), None);
    }

    #[tokio::test]
    async fn localhost_binds_the_ipv4_loopback() {
        let listener = bind_raft(&RaftAddress {
            host: "localhost".into(),
            port: 0,
        })
        .await
        .unwrap();
        assert_eq!(
            listener.local_addr().unwrap().ip(),
            std::net::Ipv4Addr::LOCALHOST
        );
    }

    #[tokio::test]
    async fn the_placeholder_accepts_then_closes_and_stops_on_shutdown() {
        use tokio::io::AsyncReadExt;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_and_drop(listener, token.clone()));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            conn.read(&mut buf).await.unwrap(),
            0,
            "the server closes the connection"
        );

        token.cancel();
        task.await.unwrap().unwrap();
    }
}
