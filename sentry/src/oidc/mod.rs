//! The OIDC discovery server (spec §10): `<prefix>/.well-known/openid-configuration` and
//! `<prefix>/jwks.json`. The request decisions are plain functions here; `server` wires them to
//! HTTP(S).

mod server;
mod tls;

pub use server::{OidcServer, Published, live_router, router};
pub use tls::{OidcTls, TlsFiles};

use serde::Serialize;

/// Discovery document path (joined to the prefix).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// JWKS path (joined to the prefix).
pub const JWKS_PATH: &str = "/jwks.json";

/// The two route paths for `-oidc-path-prefix`: unset or `/` → none; else one trailing `/`
/// removed and joined.
pub fn routes(prefix: Option<&str>) -> (String, String) {
    let prefix = match prefix {
        None | Some("/") => "",
        Some(p) => p.strip_suffix('/').unwrap_or(p),
    };
    let join = |path: &str| {
        let joined = format!("{prefix}{path}");
        if joined.starts_with('/') {
            joined
        } else {
            format!("/{joined}")
        }
    };
    (join(DISCOVERY_PATH), join(JWKS_PATH))
}

/// The allowed-hosts check: passes when the list is empty or holds `*`, the request host
/// (`X-Forwarded-Host` if present, else `Host`), or the host part of `host:port`.
pub fn host_allowed(allowed: &[String], host: &str, forwarded: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let host = forwarded.filter(|f| !f.is_empty()).unwrap_or(host);
    if allowed.iter().any(|a| a == "*" || a == host) {
        return true;
    }
    split_host_port(host).is_some_and(|h| allowed.iter().any(|a| a == h))
}

/// The host part of `host:port` / `[v6]:port`, as Go's `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Option<&str> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return after.strip_prefix(':').map(|_| host);
    }
    let (host, _port) = hostport.rsplit_once(':')?;
    (!host.contains(':')).then_some(host)
}

/// Static settings of the discovery document.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// `-jwt-issuer` (empty counts as unset here).
    pub issuer: Option<String>,
    /// `-oidc-jwks-uri`.
    pub jwks_uri: Option<String>,
    /// The prefixed JWKS path.
    pub jwks_path: String,
    pub signing_algorithm: String,
    /// Whether TLS is served (cert and key given): the derived scheme.
    pub tls: bool,
    /// `-oidc-allowed-hosts`.
    pub allowed_hosts: Vec<String>,
}

/// The discovery JSON, in upstream's member order.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DiscoveryDocument {
    pub issuer: String,
    pub jwks_uri: String,
    pub response_types_supported: [&'static str; 1],
    pub subject_types_supported: [&'static str; 1],
    pub id_token_signing_alg_values_supported: [String; 1],
    pub scopes_supported: [&'static str; 1],
    pub claims_supported: [&'static str; 7],
}

/// The `Host` value could not form a URL (answered with 400 `Invalid host`).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidHost;

impl Discovery {
    /// The document for one request. `X-Forwarded-Host` replaces `Host` only when the
    /// allow-list is non-empty and has no `*`, so it cannot inject an issuer otherwise.
    pub fn document(
        &self,
        host: &str,
        forwarded: Option<&str>,
    ) -> Result<DiscoveryDocument, InvalidHost> {
        let mut host = host;
        if !self.allowed_hosts.is_empty()
            && !self.allowed_hosts.iter().any(|h| h == "*")
            && let Some(f) = forwarded.filter(|f| !f.is_empty())
        {
            host = f;
        }
        if host
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '/' || c == '?' || c == '#')
        {
            return Err(InvalidHost);
        }
        let scheme = if self.tls { "https" } else { "http" };
        let derived = format!("{scheme}://{host}");
        let issuer = self
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| derived.clone());
        let jwks_uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                // An absolute path resolved against the issuer keeps only its scheme and
                // authority; an issuer without them (e.g. `dapr.io`) leaves just the path.
                format!("{}{}", origin(&issuer), self.jwks_path)
            }
        };
        Ok(DiscoveryDocument {
            issuer,
            jwks_uri,
            response_types_supported: ["id_token"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: [self.signing_algorithm.clone()],
            scopes_supported: ["openid"],
            claims_supported: ["sub", "iss", "aud", "exp", "iat", "nbf", "use"],
        })
    }
}

/// `scheme://authority` of a URL, or "" when it has none.
fn origin(url: &str) -> &str {
    let Some(idx) = url.find("://") else {
        return "";
    };
    let rest = &url[idx + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &url[..idx + 3 + end]
}

#[cfg(test)]
mod tests;
