//! Binding the etcd listeners where Go binds them, and the placeholder behind them.

use std::{io, net::SocketAddr, time::Duration};

use dapr_kit::CancellationToken;
use tokio::net::TcpListener;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `host:port` as Go's `net.Listen("tcp", ...)` does: a name binds its first IPv4 address
/// (`localhost` → 127.0.0.1, which is what the integration tests' etcd client dials), else its
/// first address; an empty host binds every interface.
pub async fn bind_prefer_ipv4(host: &str, port: u16) -> io::Result<TcpListener> {
    if host.is_empty() {
        return dapr_kit::net::bind_tcp("", port).await;
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

/// The first IPv4 address, else the first address.
pub fn prefer_ipv4(addresses: &[SocketAddr]) -> Option<SocketAddr> {
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
}

/// Accepts connections and closes them at once until `shutdown` fires.
///
/// Placeholder for the embedded etcd member: it keeps the etcd ports open while etcd is not
/// implemented.
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
                    tracing::debug!(%peer, listener = what, "closing connection: etcd is not implemented yet");
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

    #[test]
    fn ipv4_is_preferred_over_an_earlier_ipv6_address() {
        let v6: SocketAddr = "[::1]:2379".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:2379".parse().unwrap();
        assert_eq!(prefer_ipv4(&[v6, v4]), Some(v4));
        assert_eq!(prefer_ipv4(&[v6]), Some(v6));
        assert_eq!(prefer_ipv4(&[]), None);
    }

    #[tokio::test]
    async fn localhost_binds_the_ipv4_loopback() {
        let listener = bind_prefer_ipv4("localhost", 0).await.unwrap();
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
        let task = tokio::spawn(accept_and_drop("etcd client", listener, token.clone()));

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
