//! The jwks validator (spec §8.3): options, the key-set source (inline, base64, file or URL,
//! refreshed in the background for URLs) and request validation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use dapr_flags::GoDuration;
use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_security::TrustDomain;
use http_body_util::Full;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ValidationError;
use super::verify::{self, Expect, KeySet};
use dapr_kube_lite::http::{Endpoint, HttpError, add_pem_roots, client_config};

/// Default background refresh bound for URL sources.
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(600);
/// How often a local-file source is checked for changes.
const FILE_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Default HTTP timeout for URL sources.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url(String),
    File(std::path::PathBuf),
    Inline(Vec<u8>),
}

/// Parsed validator options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksOptions {
    pub source: Source,
    pub ca_certificate: Option<String>,
    pub min_refresh_interval: Duration,
    pub request_timeout: Duration,
}

/// Option errors (fatal at start-up).
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("property 'location' must not be empty")]
    NoSource,
    #[error(
        "failed to parse property 'location': not a URL, path to local file, or JSON value (optionally base64-encoded)"
    )]
    BadSource,
    #[error("failed to decode validator options: {key}: {reason}")]
    Decode { key: String, reason: String },
}

impl JwksOptions {
    /// Reads the string options of `tokenValidators[{name: jwks}]`.
    pub fn parse(options: &[(String, String)]) -> Result<Self, OptionsError> {
        let get = |k: &str| {
            options
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let duration =
            |k: &str, default: Duration, min: Duration| match get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => parse_duration(v)
                    .map(|d| if d > min { d } else { default })
                    .map_err(|reason| OptionsError::Decode {
                        key: k.to_owned(),
                        reason,
                    }),
            };
        let min_refresh_interval = duration(
            "minRefreshInterval",
            DEFAULT_MIN_REFRESH,
            Duration::from_secs(1),
        )?;
        let request_timeout = duration(
            "requestTimeout",
            DEFAULT_REQUEST_TIMEOUT,
            Duration::from_millis(1),
        )?;
        let source = parse_source(get("source").unwrap_or(""))?;
        let ca_certificate = get("caCertificate")
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        Ok(Self {
            source,
            ca_certificate,
            min_refresh_interval,
            request_timeout,
        })
    }
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    v.parse::<GoDuration>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

/// Classifies the `source` option (spec §8.3 order: URL, file, JSON, base64 JSON).
pub fn parse_source(value: &str) -> Result<Source, OptionsError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(OptionsError::NoSource);
    }
    if value.starts_with("https://") || value.starts_with("http://") {
        return Ok(Source::Url(value.to_owned()));
    }
    if std::path::Path::new(value).is_file() {
        return Ok(Source::File(value.into()));
    }
    if serde_json::from_str::<serde_json::Value>(value).is_ok() {
        return Ok(Source::Inline(value.as_bytes().to_vec()));
    }
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    match b64.decode(value.trim_end_matches('=')) {
        Ok(raw) if serde_json::from_slice::<serde_json::Value>(&raw).is_ok() => {
            Ok(Source::Inline(raw))
        }
        _ => Err(OptionsError::BadSource),
    }
}

/// Why the key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to fetch {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: HttpError,
    },
    #[error("failed to fetch {url}: unexpected status code {status}")]
    Status { url: String, status: u16 },
    #[error("invalid URL {0:?}")]
    Url(String),
    #[error("failed to build TLS client: {0}")]
    Tls(#[source] rustls::Error),
    #[error("{0}")]
    Parse(#[from] verify::KeySetError),
}

/// The validator: the current key set and the expected audience.
pub struct JwksValidator {
    sentry_id: String,
    keys: watch::Receiver<Option<Arc<KeySet>>>,
}

impl JwksValidator {
    /// Loads the key set once (an error is fatal: `failed to init cache: …`) and, for URL
    /// sources, keeps refreshing it until `shutdown`.
    pub async fn start(
        options: JwksOptions,
        sentry_id: String,
        shutdown: CancellationToken,
    ) -> Result<Self, LoadError> {
        let fetcher = Fetcher::new(&options)?;
        let first = fetcher.load().await?;
        tracing::info!(keys = first.len(), "loaded JWKS for the jwks validator");
        let (tx, keys) = watch::channel(Some(Arc::new(first)));
        // URL: re-fetch every `minRefreshInterval`. File: poll its modification time (the
        // upstream watches the directory; polling keeps this free of a notify dependency).
        let (interval, file) = match &options.source {
            Source::Url(_) => (options.min_refresh_interval, None),
            Source::File(path) => (FILE_POLL_INTERVAL, Some(path.clone())),
            Source::Inline(_) => return Ok(Self { sentry_id, keys }),
        };
        let modified =
            |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut last_modified = file.as_deref().and_then(modified);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                if let Some(path) = &file {
                    let now = modified(path);
                    if now == last_modified {
                        continue;
                    }
                    last_modified = now;
                }
                match fetcher.load().await {
                    Ok(set) => {
                        tracing::info!(keys = set.len(), "reloaded JWKS");
                        let _ = tx.send(Some(Arc::new(set)));
                    }
                    Err(error) => tracing::warn!(%error, "failed to refresh JWKS"),
                }
            }
        });
        Ok(Self { sentry_id, keys })
    }

    /// A validator over a fixed key set (tests).
    pub fn with_keys(keys: KeySet, sentry_id: String) -> Self {
        let (_tx, rx) = watch::channel(Some(Arc::new(keys)));
        Self {
            sentry_id,
            keys: rx,
        }
    }

    /// Validates a request; the result is the trust domain for its SPIFFE ID.
    pub fn validate(
        &self,
        req: &SignCertificateRequest,
        now: SystemTime,
    ) -> Result<TrustDomain, ValidationError> {
        if req.token.is_empty() {
            return Err(ValidationError::NoToken);
        }
        let Some(keys) = self.keys.borrow().clone() else {
            return Err(ValidationError::JwksNotReady);
        };
        let td = super::validate_common(req)?;
        let subject = format!("spiffe://{}/ns/{}/{}", td.as_str(), req.namespace, req.id);
        verify::verify(
            &req.token,
            &keys,
            &Expect {
                audience: &self.sentry_id,
                subject: &subject,
            },
            now,
        )
        .map_err(ValidationError::Token)?;
        Ok(td)
    }
}

struct Fetcher {
    source: Source,
    endpoint: Option<(Endpoint, String)>,
    timeout: Duration,
}

impl Fetcher {
    fn new(options: &JwksOptions) -> Result<Self, LoadError> {
        let endpoint = match &options.source {
            Source::Url(url) => Some(endpoint_for(url, options.ca_certificate.as_deref())?),
            _ => None,
        };
        Ok(Self {
            source: options.source.clone(),
            endpoint,
            timeout: options.request_timeout,
        })
    }

    async fn load(&self) -> Result<KeySet, LoadError> {
        let raw: Bytes = match (&self.source, &self.endpoint) {
            (Source::Inline(raw), _) => raw.clone().into(),
            (Source::File(path), _) => std::fs::read(path)
                .map_err(|source| LoadError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .into(),
            (Source::Url(url), Some((endpoint, path))) => {
                let request = http::Request::get(path.as_str())
                    .header(http::header::ACCEPT, "application/json")
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| LoadError::Fetch {
                        url: url.clone(),
                        source: e.into(),
                    })?;
                let (status, body) =
                    endpoint
                        .call(request, self.timeout)
                        .await
                        .map_err(|source| LoadError::Fetch {
                            url: url.clone(),
                            source,
                        })?;
                if !status.is_success() {
                    return Err(LoadError::Status {
                        url: url.clone(),
                        status: status.as_u16(),
                    });
                }
                body
            }
            (Source::Url(url), None) => return Err(LoadError::Url(url.clone())),
        };
        Ok(KeySet::parse(&raw)?)
    }
}

/// The endpoint and request path for a JWKS URL.
fn endpoint_for(url: &str, ca_pem: Option<&str>) -> Result<(Endpoint, String), LoadError> {
    let bad = || LoadError::Url(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let https = uri.scheme_str() == Some("https");
    if !https {
        tracing::warn!("JWKS source {url} uses plain HTTP");
    }
    let host = uri
        .host()
        .ok_or_else(bad)?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let tls = if https {
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                let text = if pem.trim_start().starts_with("-----BEGIN") {
                    pem.as_bytes().to_vec()
                } else {
                    std::fs::read(pem).map_err(|source| LoadError::Read {
                        path: pem.to_owned(),
                        source,
                    })?
                };
                add_pem_roots(&mut roots, &text);
            }
            None => tracing::warn!(
                "no caCertificate given for the JWKS URL and no system roots are bundled"
            ),
        }
        let config = client_config(roots, None).map_err(LoadError::Tls)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| bad())?;
        Some((Arc::new(config), name))
    } else {
        None
    };
    Ok((Endpoint { host, port, tls }, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<JwksOptions, OptionsError> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JwksOptions::parse(&v)
    }

    #[test]
    fn options_take_go_durations_and_fall_back_below_the_minimum() {
        let o = opts(&[
            ("source", "{\"keys\":[]}"),
            ("minRefreshInterval", "2m"),
            ("requestTimeout", "1m"),
        ])
        .unwrap();
        assert_eq!(o.min_refresh_interval, Duration::from_secs(120));
        assert_eq!(o.request_timeout, Duration::from_secs(60));
        let o = opts(&[("source", "{}"), ("minRefreshInterval", "1")]).unwrap();
        assert_eq!(o.min_refresh_interval, DEFAULT_MIN_REFRESH);
        assert!(
            opts(&[("source", "{}"), ("requestTimeout", "soon")])
                .unwrap_err()
                .to_string()
                .starts_with("failed to decode validator options: ")
        );
    }

    #[test]
    fn sources_are_urls_json_or_base64_json() {
        assert!(matches!(parse_source("https://x/"), Ok(Source::Url(_))));
        assert_eq!(
            parse_source("eyJrZXlzIjpbXX0").unwrap(),
            Source::Inline(b"{\"keys\":[]}".to_vec())
        );
        assert_eq!(
            parse_source("").unwrap_err().to_string(),
            "property 'location' must not be empty"
        );
        assert!(matches!(
            parse_source("not json"),
            Err(OptionsError::BadSource)
        ));
    }

    #[test]
    fn a_request_without_a_token_is_refused_first() {
        let v = JwksValidator::with_keys(KeySet::default(), "spiffe://x/ns/y/dapr-sentry".into());
        let req = SignCertificateRequest::default();
        assert_eq!(
            v.validate(&req, SystemTime::now()).unwrap_err().to_string(),
            "the request does not contain a token"
        );
    }
}
