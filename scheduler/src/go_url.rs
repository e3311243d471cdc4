//! Just enough of Go's `net/url.Parse` to accept and reject the peer URLs of
//! `--etcd-initial-cluster` as upstream does, and to read their host and port.

/// The parts of a parsed URL the scheduler uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Lower-cased scheme ("" when absent).
    pub scheme: String,
    /// `url.Hostname()`: the host without port and without IPv6 brackets.
    pub hostname: String,
    /// `url.Port()`: the digits after the host's colon ("" when absent).
    pub port: String,
}

/// Why Go's `url.Parse` rejects a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("net/url: invalid control character in URL")]
    ControlCharacter,
    #[error("missing protocol scheme")]
    MissingScheme,
    #[error("first path segment in URL cannot contain colon")]
    ColonInFirstSegment,
    #[error("missing ']' in host")]
    MissingBracket,
    #[error("invalid port after host")]
    InvalidPort,
    #[error("invalid URL escape")]
    InvalidEscape,
}

/// Go's `url.Parse(raw)` (not via a request).
pub fn parse(raw: &str) -> Result<Url, UrlError> {
    let (raw, _fragment) = raw.split_once('#').unwrap_or((raw, ""));
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(UrlError::ControlCharacter);
    }
    let mut url = Url {
        scheme: String::new(),
        hostname: String::new(),
        port: String::new(),
    };
    if raw == "*" {
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let rest = rest.split_once('?').map_or(rest, |(path, _query)| path);
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // A rootless path after a scheme is opaque (`localhost:2380` parses, host-less).
            return Ok(url);
        }
        let segment = rest.split_once('/').map_or(rest, |(s, _)| s);
        if segment.contains(':') {
            return Err(UrlError::ColonInFirstSegment);
        }
    }
    let mut path = rest;
    if rest.starts_with("//") && (!url.scheme.is_empty() || !rest.starts_with("///")) {
        let authority = &rest[2..];
        let (authority, tail) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        path = tail;
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_user, host)| host);
        let (hostname, port) = split_host(host)?;
        check_escapes(hostname)?;
        url.hostname = hostname.to_owned();
        url.port = port.to_owned();
    }
    check_escapes(path)?;
    Ok(url)
}

/// Go's `getScheme`.
fn scheme(raw: &str) -> Result<(&str, &str), UrlError> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err(UrlError::MissingScheme),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseHost`, returning `(Hostname(), Port())`.
fn split_host(host: &str) -> Result<(&str, &str), UrlError> {
    if let Some(inner) = host.strip_prefix('[') {
        let close = inner.rfind(']').ok_or(UrlError::MissingBracket)?;
        let port = optional_port(&inner[close + 1..])?;
        return Ok((&inner[..close], port));
    }
    match host.rfind(':') {
        Some(i) => Ok((&host[..i], optional_port(&host[i..])?)),
        None => Ok((host, "")),
    }
}

/// Go's `validOptionalPort`: "" or ":" followed by digits only.
fn optional_port(colon_port: &str) -> Result<&str, UrlError> {
    if colon_port.is_empty() {
        return Ok("");
    }
    let digits = colon_port.strip_prefix(':').ok_or(UrlError::InvalidPort)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(UrlError::InvalidPort)
    }
}

/// Every `%` must start a two-hex-digit escape (Go's `unescape`).
fn check_escapes(s: &str) -> Result<(), UrlError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::InvalidEscape)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(UrlError::InvalidEscape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(scheme: &str, hostname: &str, port: &str) -> Url {
        Url {
            scheme: scheme.into(),
            hostname: hostname.into(),
            port: port.into(),
        }
    }

    #[test]
    fn peer_urls_yield_scheme_host_and_port() {
        assert_eq!(
            parse("http://127.0.0.1:2380"),
            Ok(url("http", "127.0.0.1", "2380"))
        );
        assert_eq!(
            parse(
                "HTTPS://dapr-scheduler-server-0.dapr-scheduler-server.ns.svc.cluster.local:2380"
            ),
            Ok(url(
                "https",
                "dapr-scheduler-server-0.dapr-scheduler-server.ns.svc.cluster.local",
                "2380"
            ))
        );
        assert_eq!(parse("http://[::1]:2380/x"), Ok(url("http", "::1", "2380")));
        assert_eq!(parse("http://user@host"), Ok(url("http", "host", "")));
    }

    #[test]
    fn a_missing_scheme_parses_like_go_does() {
        // `host:port` reads as scheme `localhost` with an opaque part, not as an error.
        assert_eq!(parse("localhost:2380"), Ok(url("localhost", "", "")));
        assert_eq!(parse("127.0.0.1:2380"), Err(UrlError::ColonInFirstSegment));
        assert_eq!(parse(":2380"), Err(UrlError::MissingScheme));
    }

    #[test]
    fn malformed_hosts_are_rejected() {
        assert_eq!(parse("http://[::1:2380"), Err(UrlError::MissingBracket));
        assert_eq!(parse("http://host:port"), Err(UrlError::InvalidPort));
        assert_eq!(parse("http://ho%zzst:1"), Err(UrlError::InvalidEscape));
        assert_eq!(parse("http://host:1\n"), Err(UrlError::ControlCharacter));
    }
}
