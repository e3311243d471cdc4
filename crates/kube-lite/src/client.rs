//! A minimal Kubernetes API client (sentry spec §3.3): in-cluster config or a kubeconfig with file
//! paths or inline data, client certificates of any type rustls/ring takes (Ed25519 included),
//! `tls-server-name`, bearer tokens. Fixed paths only — no discovery — and no rate limiting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{Endpoint, HttpError, add_pem_roots, client_config};

/// Deadline of one non-watch API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Kubernetes client errors.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("invalid kubeconfig {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("the server could not find the requested resource ({0})")]
    NotFound(String),
    #[error("the server responded with status {status} for {path}: {body}")]
    Status {
        status: u16,
        path: String,
        body: String,
    },
    #[error("failed to decode the response of {path}: {reason}")]
    Decode { path: String, reason: String },
}

impl KubeError {
    /// Whether the API answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

/// A connection recipe for the API server.
#[derive(Clone)]
pub struct KubeClient {
    endpoint: Endpoint,
    token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    item: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    tls_server_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Context {
    cluster: String,
    #[serde(default)]
    user: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

impl KubeClient {
    /// In-cluster when `KUBERNETES_SERVICE_HOST`/`_PORT` are set and the service-account token
    /// is readable; otherwise the kubeconfig at `kubeconfig`.
    pub fn from_env(kubeconfig: Option<&str>) -> Result<Self, KubeError> {
        if let (Ok(host), Ok(port)) = (
            std::env::var("KUBERNETES_SERVICE_HOST"),
            std::env::var("KUBERNETES_SERVICE_PORT"),
        ) && let Ok(token) = std::fs::read_to_string(Path::new(SA_DIR).join("token"))
        {
            return Self::in_cluster(&host, &port, token.trim().to_owned());
        }
        let path = kubeconfig.unwrap_or_default();
        Self::from_kubeconfig(Path::new(path))
    }

    fn in_cluster(host: &str, port: &str, token: String) -> Result<Self, KubeError> {
        let err = |reason: String| KubeError::Config {
            path: SA_DIR.into(),
            reason,
        };
        let port: u16 = port
            .parse()
            .map_err(|_| err(format!("bad port {port:?}")))?;
        let ca = std::fs::read(Path::new(SA_DIR).join("ca.crt")).map_err(|e| err(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        add_pem_roots(&mut roots, &ca);
        let config = client_config(roots, None).map_err(|e| err(e.to_string()))?;
        let name = ServerName::try_from(host.to_owned()).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            endpoint: Endpoint {
                host: host.trim_matches(['[', ']']).to_owned(),
                port,
                tls: Some((Arc::new(config), name)),
            },
            token: Some(token),
        })
    }

    /// Builds a client from a kubeconfig file (current context).
    pub fn from_kubeconfig(path: &Path) -> Result<Self, KubeError> {
        let err = |reason: String| KubeError::Config {
            path: path.display().to_string(),
            reason,
        };
        let raw = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let config: Kubeconfig = serde_yaml::from_str(&raw).map_err(|e| err(e.to_string()))?;
        let context = find(&config.contexts, &config.current_context)
            .or_else(|| config.contexts.first().and_then(|c| c.item.as_ref()))
            .ok_or_else(|| err("no context".into()))?;
        let cluster = find(&config.clusters, &context.cluster)
            .ok_or_else(|| err(format!("cluster {:?} not found", context.cluster)))?;
        let user = find(&config.users, &context.user);
        let base = path.parent().unwrap_or(Path::new("."));
        let read =
            |file: &Option<PathBuf>, data: &Option<String>| -> Result<Option<Vec<u8>>, KubeError> {
                if let Some(data) = data {
                    return base64::engine::general_purpose::STANDARD
                        .decode(data.trim())
                        .map(Some)
                        .map_err(|e| err(e.to_string()));
                }
                match file {
                    Some(f) => std::fs::read(base.join(f))
                        .map(Some)
                        .map_err(|e| err(format!("{}: {e}", f.display()))),
                    None => Ok(None),
                }
            };

        let uri: http::Uri = cluster
            .server
            .parse()
            .map_err(|_| err(format!("bad server {:?}", cluster.server)))?;
        let https = uri.scheme_str() != Some("http");
        let host = uri
            .host()
            .ok_or_else(|| err("server has no host".into()))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });

        let mut token = None;
        let tls = if https {
            let mut roots = rustls::RootCertStore::empty();
            if let Some(ca) = read(
                &cluster.certificate_authority,
                &cluster.certificate_authority_data,
            )? {
                add_pem_roots(&mut roots, &ca);
            }
            let mut auth = None;
            if let Some(user) = user {
                let cert = read(&user.client_certificate, &user.client_certificate_data)?;
                let key = read(&user.client_key, &user.client_key_data)?;
                if let (Some(cert), Some(key)) = (cert, key) {
                    auth = Some((
                        crate::http::certificates(&cert),
                        private_key(&key).map_err(err)?,
                    ));
                }
            }
            let config = client_config(roots, auth).map_err(|e| err(e.to_string()))?;
            let name = cluster
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.clone());
            let name = ServerName::try_from(name).map_err(|e| err(e.to_string()))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        if let Some(user) = user {
            token = match (&user.token, &user.token_file) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(f)) => Some(
                    std::fs::read_to_string(base.join(f))
                        .map_err(|e| err(e.to_string()))?
                        .trim()
                        .to_owned(),
                ),
                _ => None,
            };
        }
        Ok(Self {
            endpoint: Endpoint { host, port, tls },
            token,
        })
    }

    fn request(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Request<Full<Bytes>>, KubeError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
            .body(Full::new(body.unwrap_or_default().into()))
            .map_err(|e| KubeError::Http(e.into()))
    }

    /// One JSON call; non-2xx answers are errors (404 → [`KubeError::NotFound`]).
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, KubeError> {
        let body = body.map(|b| b.to_string().into_bytes());
        let request = self.request(method, path, body)?;
        let (status, raw) = self.endpoint.call(request, CALL_TIMEOUT).await?;
        if status == http::StatusCode::NOT_FOUND {
            return Err(KubeError::NotFound(path.to_owned()));
        }
        if !status.is_success() {
            return Err(KubeError::Status {
                status: status.as_u16(),
                path: path.to_owned(),
                body: String::from_utf8_lossy(&raw).into_owned(),
            });
        }
        serde_json::from_slice(&raw).map_err(|e| KubeError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, KubeError> {
        self.call(http::Method::GET, path, None).await
    }

    /// A streaming request (watches); the caller reads the body.
    pub async fn stream(&self, path: &str) -> Result<http::Response<Incoming>, KubeError> {
        let request = self.request(http::Method::GET, path, None)?;
        let response = self.endpoint.send(request).await?;
        if !response.status().is_success() {
            return Err(KubeError::Status {
                status: response.status().as_u16(),
                path: path.to_owned(),
                body: String::new(),
            });
        }
        Ok(response)
    }
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items
        .iter()
        .find(|i| i.name == name)
        .and_then(|i| i.item.as_ref())
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    let blocks = pem::parse_many(pem).map_err(|e| e.to_string())?;
    for block in blocks {
        let der = block.contents().to_vec();
        match block.tag() {
            "PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs8(der.into())),
            "EC PRIVATE KEY" => return Ok(PrivateKeyDer::Sec1(der.into())),
            "RSA PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs1(der.into())),
            _ => {}
        }
    }
    Err("no private key found in client key".into())
}
