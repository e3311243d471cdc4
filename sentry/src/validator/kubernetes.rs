//! The kubernetes validator (spec §8.2): TokenReview, then the pod / service-account /
//! app-id / namespace checks against the list+watch caches. The checks are pure functions
//! over the review result and the cached objects.

use base64::Engine as _;
use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_security::TrustDomain;
use serde_json::{Value, json};

use super::ValidationError;
use crate::kube::cache::Store;
use crate::kube::{KubeClient, KubeError};

/// The audience every Dapr service-account token is requested for.
pub const SENTRY_AUDIENCE: &str = "dapr.io/sentry";
const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const CONTROL_PLANE_SERVICES: [&str; 5] =
    ["operator", "placement", "injector", "sentry", "scheduler"];

/// Why the kubernetes validator refused a request; texts as upstream's.
#[derive(Debug, thiserror::Error)]
pub enum KubeValidationError {
    #[error("validator not ready")]
    NotReady,
    #[error("token review failed: {0}")]
    TokenReview(#[source] KubeError),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("authentication failed")]
    NotAuthenticated,
    #[error("provided token is not a properly structured service account token")]
    NotServiceAccount,
    #[error("failed to parse Kubernetes token: {0}")]
    ParseToken(String),
    #[error("kubernetes.io/pod/name claim is missing from Kubernetes token")]
    NoPodName,
    #[error("failed to get pod of identity")]
    NoPod,
    #[error("namespace mismatch; received namespace: {0}")]
    NamespaceMismatch(String),
    #[error("pod service account mismatch")]
    ServiceAccountMismatch,
    #[error("control plane service in namespace '{0}' is not allowed")]
    ControlPlaneNamespace(String),
    #[error("unknown control plane service '{0}'")]
    UnknownControlPlane(String),
    #[error("control plane service '{0}' cannot have annotation 'dapr.io/app-id'")]
    ControlPlaneAppId(String),
    #[error("app-id mismatch. expected: {expected}, received: {received}")]
    AppIdMismatch { expected: String, received: String },
    #[error("failed to get configuration")]
    NoConfiguration,
    #[error("failed to parse trust domain {0:?}: {1}")]
    TrustDomain(String, #[source] dapr_security::SpiffeError),
}

/// `system:serviceaccount:<ns>:<name>` → `(ns, name)`.
pub fn service_account(username: &str) -> Result<(String, String), KubeValidationError> {
    let parts: Vec<&str> = username.split(':').collect();
    if parts.len() != 4 || parts[0] != "system" {
        return Err(KubeValidationError::NotServiceAccount);
    }
    Ok((parts[2].to_owned(), parts[3].to_owned()))
}

/// The `kubernetes.io.pod.name` claim of a token read without verification: a compact JWS
/// (its payload) or, as the tests send, a bare JSON object.
pub fn pod_name(token: &str) -> Result<String, KubeValidationError> {
    let trimmed = token.trim();
    let claims: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| KubeValidationError::ParseToken(e.to_string()))?
    } else {
        let payload = trimmed
            .split('.')
            .nth(1)
            .ok_or_else(|| KubeValidationError::ParseToken("invalid JWT".into()))?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| KubeValidationError::ParseToken(e.to_string()))?;
        serde_json::from_slice(&raw).map_err(|e| KubeValidationError::ParseToken(e.to_string()))?
    };
    claims
        .pointer("/kubernetes.io/pod/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .ok_or(KubeValidationError::NoPodName)
}

/// The identity a pod may request.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    pub id: String,
    pub control_plane: bool,
    /// `dapr.io/config` annotation, for app pods.
    pub config: Option<String>,
}

fn annotation<'a>(pod: &'a Value, name: &str) -> Option<&'a str> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
}

/// Steps 7-10 of §8.2 over a cached pod.
pub fn check_pod(
    pod: &Value,
    sa_namespace: &str,
    sa_name: &str,
    sentry_namespace: &str,
    req: &SignCertificateRequest,
) -> Result<Expected, KubeValidationError> {
    if sa_namespace != req.namespace {
        return Err(KubeValidationError::NamespaceMismatch(
            req.namespace.clone(),
        ));
    }
    let service_account = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if service_account != sa_name {
        return Err(KubeValidationError::ServiceAccountMismatch);
    }
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let pod_namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let app_id = annotation(pod, "dapr.io/app-id");
    let expected = match annotation(pod, "dapr.io/control-plane") {
        Some(service) => {
            if pod_namespace != sentry_namespace {
                return Err(KubeValidationError::ControlPlaneNamespace(
                    pod_namespace.to_owned(),
                ));
            }
            if !CONTROL_PLANE_SERVICES.contains(&service) {
                return Err(KubeValidationError::UnknownControlPlane(
                    pod_name.to_owned(),
                ));
            }
            if app_id.is_some() {
                return Err(KubeValidationError::ControlPlaneAppId(pod_name.to_owned()));
            }
            Expected {
                id: format!("dapr-{service}"),
                control_plane: true,
                config: None,
            }
        }
        None => Expected {
            id: app_id.unwrap_or(pod_name).to_owned(),
            control_plane: false,
            config: annotation(pod, "dapr.io/config").map(str::to_owned),
        },
    };
    if expected.id != req.id {
        return Err(KubeValidationError::AppIdMismatch {
            expected: expected.id,
            received: req.id.clone(),
        });
    }
    Ok(expected)
}

/// Step 11: the trust domain from a cached `Configuration` (`None` = no annotation).
pub fn configuration_trust_domain(
    configuration: Option<&Value>,
) -> Result<TrustDomain, KubeValidationError> {
    let td = configuration
        .and_then(|c| c.pointer("/spec/accessControl/trustDomain"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if td.is_empty() {
        return TrustDomain::parse("public")
            .map_err(|e| KubeValidationError::TrustDomain("public".into(), e));
    }
    TrustDomain::parse(td).map_err(|e| KubeValidationError::TrustDomain(td.to_owned(), e))
}

/// The running validator.
pub struct KubeValidator {
    pub client: KubeClient,
    pub pods: Store,
    pub configurations: Store,
    /// `spiffe://<td>/ns/<ns>/dapr-sentry`.
    pub sentry_id: String,
    pub sentry_namespace: String,
    pub sentry_trust_domain: TrustDomain,
}

impl KubeValidator {
    /// Waits for both caches (the readiness gate opens after this).
    pub async fn wait_synced(&self) -> bool {
        self.pods.wait_synced().await && self.configurations.wait_synced().await
    }

    /// Validates a request; the result is the trust domain for its SPIFFE ID.
    pub async fn validate(
        &self,
        req: &SignCertificateRequest,
    ) -> Result<TrustDomain, ValidationError> {
        if !self.wait_synced().await {
            return Err(KubeValidationError::NotReady.into());
        }
        super::validate_common(req)?;
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": req.token, "audiences": [SENTRY_AUDIENCE, self.sentry_id]},
        });
        let status = self
            .client
            .call(http::Method::POST, TOKEN_REVIEW_PATH, Some(&review))
            .await
            .map_err(KubeValidationError::TokenReview)?;
        let status = status.get("status").cloned().unwrap_or(Value::Null);
        if let Some(error) = status
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            return Err(KubeValidationError::InvalidToken(error.to_owned()).into());
        }
        if !status
            .get("authenticated")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(KubeValidationError::NotAuthenticated.into());
        }
        let username = status
            .pointer("/user/username")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (sa_namespace, sa_name) = service_account(username)?;
        let pod_name = pod_name(&req.token)?;
        let Some(pod) = self.pods.get(&sa_namespace, &pod_name) else {
            tracing::error!(
                "Failed to get pod {sa_namespace}/{pod_name} for requested identity: not found"
            );
            return Err(KubeValidationError::NoPod.into());
        };
        let expected = check_pod(&pod, &sa_namespace, &sa_name, &self.sentry_namespace, req)?;
        if expected.control_plane {
            return Ok(self.sentry_trust_domain.clone());
        }
        let Some(config) = expected.config else {
            return Ok(configuration_trust_domain(None)?);
        };
        let Some(configuration) = self.configurations.get(&req.namespace, &config) else {
            tracing::error!(
                "Failed to get configuration {}/{config}: not found",
                req.namespace
            );
            return Err(KubeValidationError::NoConfiguration.into());
        };
        Ok(configuration_trust_domain(Some(&configuration))?)
    }
}

#[cfg(test)]
mod tests;
