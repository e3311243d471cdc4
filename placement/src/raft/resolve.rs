//! The Raft listener's address: Go's `net.ResolveTCPAddr("tcp", host:port)` with upstream's DNS
//! retry (a pod's own DNS record may appear after the pod starts).

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::BuildHasher,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

/// Upstream retries the lookup 240 times, 0.5s ± 0.25s apart: about two minutes.
pub const RESOLVE_ATTEMPTS: u32 = 240;
const RESOLVE_INTERVAL: Duration = Duration::from_millis(500);
const RESOLVE_JITTER: Duration = Duration::from_millis(250);

/// Resolves `host:port` to the one address to bind, looking names up with the system resolver.
pub async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    resolve_with(host, port, RESOLVE_ATTEMPTS, |host, port| async move {
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(Iterator::collect)
    })
    .await
}

/// [`resolve`] with the lookup and the number of attempts given (tests).
///
/// An empty host is every interface; an IP literal is itself; `localhost` is 127.0.0.1 without a
/// lookup (Go prefers IPv4); a name is looked up until it has an address, and the first IPv4
/// address wins over IPv6 ones, as Go's `ResolveTCPAddr` does.
pub async fn resolve_with<L, F>(
    host: &str,
    port: u16,
    attempts: u32,
    mut lookup: L,
) -> io::Result<SocketAddr>
where
    L: FnMut(String, u16) -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    if host.is_empty() {
        return Ok(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match lookup(host.to_owned(), port).await {
            Ok(addrs) => match preferred(&addrs) {
                Some(addr) => return Ok(addr),
                None => io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
            },
            Err(error) => error,
        };
        if attempt >= attempts {
            return Err(error);
        }
        tracing::debug!(%host, attempt, %error, "raft address not resolvable yet, retrying");
        tokio::time::sleep(jittered(RESOLVE_INTERVAL, RESOLVE_JITTER)).await;
    }
}

fn preferred(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

/// `base ± jitter`, drawn from the per-process random hasher keys (no RNG dependency needed).
fn jittered(base: Duration, jitter: Duration) -> Duration {
    let span = u64::try_from(jitter.as_millis()).unwrap_or(0) * 2 + 1;
    let offset = RandomState::new().hash_one(0u8) % span;
    (base + Duration::from_millis(offset)).saturating_sub(jitter)
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    fn no_lookup(_: String, _: u16) -> std::future::Ready<io::Result<Vec<SocketAddr>>> {
        panic!("no lookup expected")
    }

    #[tokio::test]
    async fn literals_empty_hosts_and_localhost_need_no_lookup() {
        let cases = [
            ("", "0.0.0.0:1"),
            ("127.0.0.2", "127.0.0.2:1"),
            ("::1", "[::1]:1"),
            ("localhost", "127.0.0.1:1"),
            ("LOCALHOST", "127.0.0.1:1"),
        ];
        for (host, want) in cases {
            let got = resolve_with(host, 1, 1, no_lookup).await.unwrap();
            assert_eq!(got.to_string(), want, "{host}");
        }
    }

    #[tokio::test]
    async fn the_first_ipv4_address_of_a_name_wins() {
        let got = resolve_with("pod", 7, 1, |_, port| async move {
            Ok(vec![
                SocketAddr::new("fd00::1".parse().unwrap(), port),
                SocketAddr::new("10.0.0.2".parse().unwrap(), port),
                SocketAddr::new("10.0.0.3".parse().unwrap(), port),
            ])
        })
        .await
        .unwrap();
        assert_eq!(got.to_string(), "10.0.0.2:7");

        let got = resolve_with("pod", 7, 1, |_, port| async move {
            Ok(vec![SocketAddr::new("fd00::1".parse().unwrap(), port)])
        })
        .await
        .unwrap();
        assert_eq!(got.to_string(), "[fd00::1]:7");
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_is_retried_until_it_resolves() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let started = tokio::time::Instant::now();
        let got = resolve_with("pod", 7, RESOLVE_ATTEMPTS, move |_, port| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => Err(io::Error::other("nxdomain")),
                    1 => Ok(vec![]),
                    _ => Ok(vec![SocketAddr::new("10.0.0.9".parse().unwrap(), port)]),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got.to_string(), "10.0.0.9:7");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500) && waited <= Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_that_never_resolves_fails_after_the_last_attempt() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let err = resolve_with("pod", 7, 3, move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err(io::Error::other("nxdomain")) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "nxdomain");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for _ in 0..100 {
            let d = jittered(RESOLVE_INTERVAL, RESOLVE_JITTER);
            assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(750));
        }
    }
}
