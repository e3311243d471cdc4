//! Listeners bound the way upstream's Go `net.Listen("tcp", host:port)` binds them.

use std::{io, net::SocketAddr};

use tokio::net::TcpListener;

/// Binds `host:port`; an empty host means every interface (IPv6 dual-stack where available,
/// else IPv4), like Go's `:port`. `localhost` binds the loopback address it resolves to first.
pub async fn bind_tcp(host: &str, port: u16) -> io::Result<TcpListener> {
    if host.is_empty() {
        return match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port))).await,
        };
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    TcpListener::bind((host, port)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_empty_host_accepts_loopback_connections() {
        let l = bind_tcp("", 0).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_explicit_host_binds_only_there() {
        let l = bind_tcp("127.0.0.1", 0).await.unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
    }
}
