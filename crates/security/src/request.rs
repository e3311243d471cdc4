//! What we send to sentry: the request fields and the token (dapr/dapr `pkg/security/sentry.go`
//! and `pkg/security/token`). Environment and file access go through [`Env`] so the rules are
//! testable without touching the process environment.

use std::path::Path;

use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_proto::sentry::v1::sign_certificate_request::TokenValidator;

/// The projected service-account token with the sentry audience.
pub const KUBE_TOKEN_PATH: &str = "/var/run/secrets/dapr.io/sentrytoken/token";
/// The legacy service-account token (still accepted by older sentries).
pub const LEGACY_KUBE_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Names a token file (used with the JWKS validator).
pub const TOKEN_FILE_ENV: &str = "DAPR_SENTRY_TOKEN_FILE";

/// App ids that get the control-plane trust domain when they run in the control-plane namespace.
const CONTROL_PLANE_APPS: [&str; 5] = [
    "dapr-operator",
    "dapr-placement",
    "dapr-injector",
    "dapr-sentry",
    "dapr-scheduler",
];

/// Why no token could be produced.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("environmental variable DAPR_SENTRY_TOKEN_FILE is set with an empty value")]
    EmptyEnv,
    #[error("failed to read token at path '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token at path '{0}' is empty")]
    Empty(String),
}

/// The process environment and file system, as the token rules see them.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// The real environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// The token and its validator, looked up afresh for every request (§14.4).
pub fn sentry_token(
    env: &dyn Env,
    kubernetes: bool,
) -> Result<(String, TokenValidator), TokenError> {
    if let Some(path) = env.var(TOKEN_FILE_ENV) {
        if path.is_empty() {
            return Err(TokenError::EmptyEnv);
        }
        let token = token_from_file(env, Path::new(&path))?;
        let validator = if kubernetes {
            TokenValidator::Kubernetes
        } else {
            TokenValidator::Jwks
        };
        return Ok((token, validator));
    }
    if kubernetes {
        let token = match env.read(Path::new(KUBE_TOKEN_PATH)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let legacy = env
                    .read(Path::new(LEGACY_KUBE_TOKEN_PATH))
                    .unwrap_or_default();
                if !legacy.is_empty() {
                    tracing::warn!(
                        "Initializing using the legacy service account token with access to Kubernetes APIs, which is discouraged. This usually happens when running against an older version of the Dapr control plane."
                    );
                }
                legacy
            }
            Err(_) => Vec::new(),
        };
        if !token.is_empty() {
            return Ok((
                String::from_utf8_lossy(&token).into_owned(),
                TokenValidator::Kubernetes,
            ));
        }
    }
    Ok((String::new(), TokenValidator::Unknown))
}

fn token_from_file(env: &dyn Env, path: &Path) -> Result<String, TokenError> {
    let shown = path.display().to_string();
    let bytes = env.read(path).map_err(|source| {
        tracing::warn!("Failed to read token at path '{shown}': {source}");
        TokenError::Read {
            path: shown.clone(),
            source,
        }
    })?;
    if bytes.is_empty() {
        tracing::warn!("Token at path '{shown}' is empty");
        return Err(TokenError::Empty(shown));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The parts of a request that do not change between fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pub id: String,
    pub namespace: String,
    pub trust_domain: String,
    pub kubernetes: bool,
}

impl RequestTemplate {
    /// §14.3: `SENTRY_LOCAL_IDENTITY` overrides the app id; the namespace is `$NAMESPACE`
    /// (`default` when unset); the control-plane trust domain only for control-plane app ids in
    /// the control-plane namespace.
    pub fn new(
        env: &dyn Env,
        app_id: &str,
        control_plane_trust_domain: &str,
        control_plane_namespace: &str,
        kubernetes: bool,
    ) -> Self {
        let namespace = env.var("NAMESPACE").unwrap_or_else(|| "default".to_owned());
        let trust_domain =
            if CONTROL_PLANE_APPS.contains(&app_id) && control_plane_namespace == namespace {
                control_plane_trust_domain.to_owned()
            } else {
                String::new()
            };
        let id = env
            .var("SENTRY_LOCAL_IDENTITY")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| app_id.to_owned());
        Self {
            id,
            namespace,
            trust_domain,
            kubernetes,
        }
    }

    /// A request for `csr_pem` with the token current right now.
    pub fn request(
        &self,
        env: &dyn Env,
        csr_pem: Vec<u8>,
    ) -> Result<SignCertificateRequest, TokenError> {
        let (token, validator) = sentry_token(env, self.kubernetes)?;
        Ok(SignCertificateRequest {
            id: self.id.clone(),
            token,
            trust_domain: self.trust_domain.clone(),
            namespace: self.namespace.clone(),
            certificate_signing_request: csr_pem,
            token_validator: validator as i32,
            jwt_audiences: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
