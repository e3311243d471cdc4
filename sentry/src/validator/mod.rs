//! Request validators (spec §7.2, §8): which are enabled, which is the default, and the checks
//! each makes. `insecure` is synchronous and pure; `jwks` and `kubernetes` hold runtime state
//! (key set, API caches) and are run by the server (`CaState::validate`).

use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_security::TrustDomain;

use crate::config::ValidatorKind;

pub mod jwks;
pub mod kubernetes;
pub mod verify;

/// Why a validator refused a request; the text is the gRPC `PermissionDenied` message.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// §7.2 problems, joined with `\n`.
    #[error("invalid request: {}", .0.join("\n"))]
    InvalidRequest(Vec<&'static str>),
    #[error("{0}")]
    TrustDomain(#[source] dapr_security::SpiffeError),
    #[error("the request does not contain a token")]
    NoToken,
    #[error("jwks validator not ready")]
    JwksNotReady,
    #[error("token validation failed: {0}")]
    Token(#[source] verify::VerifyError),
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::KubeValidationError),
    #[error("{0} validator is not implemented yet")]
    NotImplemented(&'static str),
}

/// The enabled validators and the default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub enabled: Vec<ValidatorKind>,
    pub default: Option<ValidatorKind>,
}

impl Validators {
    /// Standalone: configured validators only (no default), else `insecure` as the default.
    pub fn standalone(configured: &[ValidatorKind]) -> Self {
        if configured.is_empty() {
            Self {
                enabled: vec![ValidatorKind::Insecure],
                default: Some(ValidatorKind::Insecure),
            }
        } else {
            Self {
                enabled: configured.to_vec(),
                default: None,
            }
        }
    }

    /// Kubernetes: `kubernetes` always, as the default, plus the configured ones.
    pub fn kubernetes(configured: &[ValidatorKind]) -> Self {
        let mut enabled = vec![ValidatorKind::Kubernetes];
        enabled.extend(configured.iter().copied());
        Self {
            enabled,
            default: Some(ValidatorKind::Kubernetes),
        }
    }

    /// Whether the proto number names an enabled validator.
    pub fn enabled(&self, number: i32) -> Option<ValidatorKind> {
        ValidatorKind::from_number(number).filter(|k| self.enabled.contains(k))
    }
}

/// Runs validator `kind` on the request; the result is the trust domain for the SPIFFE ID.
pub fn validate(
    kind: ValidatorKind,
    req: &SignCertificateRequest,
) -> Result<TrustDomain, ValidationError> {
    match kind {
        ValidatorKind::Insecure => validate_common(req),
        ValidatorKind::Kubernetes => Err(ValidationError::NotImplemented("kubernetes")),
        ValidatorKind::Jwks => Err(ValidationError::NotImplemented("jwks")),
    }
}

/// The checks every validator makes (upstream `internal.Validate`).
pub fn validate_common(req: &SignCertificateRequest) -> Result<TrustDomain, ValidationError> {
    let mut problems = Vec::new();
    if req.id.is_empty() {
        problems.push("parameter app-id cannot be empty");
    } else if req.id.contains('.') {
        problems.push("parameter app-id cannot contain dots");
    }
    if req.id.len() > 64 {
        problems.push("app ID must be 64 characters or less");
    }
    if req.certificate_signing_request.is_empty() {
        problems.push("CSR is required");
    }
    if req.namespace.is_empty() {
        problems.push("namespace is required");
    }
    if !problems.is_empty() {
        return Err(ValidationError::InvalidRequest(problems));
    }
    let td = if req.trust_domain.is_empty() {
        "public"
    } else {
        &req.trust_domain
    };
    TrustDomain::parse(td).map_err(ValidationError::TrustDomain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> SignCertificateRequest {
        SignCertificateRequest {
            id: "myapp".into(),
            namespace: "default".into(),
            certificate_signing_request: b"csr".to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn the_trust_domain_defaults_to_public() {
        assert_eq!(validate_common(&req()).unwrap().as_str(), "public");
        let r = SignCertificateRequest {
            trust_domain: "spiffe://example.org/x".into(),
            ..req()
        };
        assert_eq!(validate_common(&r).unwrap().as_str(), "example.org");
    }

    #[test]
    fn every_problem_is_reported_with_upstreams_text() {
        let empty = SignCertificateRequest::default();
        assert_eq!(
            validate_common(&empty).unwrap_err().to_string(),
            "invalid request: parameter app-id cannot be empty\nCSR is required\nnamespace is required"
        );
        let dots = SignCertificateRequest {
            id: format!("a.{}", "b".repeat(64)),
            ..req()
        };
        assert_eq!(
            validate_common(&dots).unwrap_err().to_string(),
            "invalid request: parameter app-id cannot contain dots\napp ID must be 64 characters or less"
        );
        let ok64 = SignCertificateRequest {
            id: "a".repeat(64),
            ..req()
        };
        assert!(validate_common(&ok64).is_ok());
    }

    #[test]
    fn a_bad_trust_domain_gives_go_spiffes_text() {
        let r = SignCertificateRequest {
            trust_domain: "Bad".into(),
            ..req()
        };
        assert_eq!(
            validate_common(&r).unwrap_err().to_string(),
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
        );
    }

    #[test]
    fn standalone_defaults_to_insecure_unless_validators_are_configured() {
        let v = Validators::standalone(&[]);
        assert_eq!(v.default, Some(ValidatorKind::Insecure));
        assert_eq!(v.enabled(1), Some(ValidatorKind::Insecure));
        assert_eq!(v.enabled(-1), None);
        let v = Validators::standalone(&[ValidatorKind::Jwks]);
        assert_eq!(v.default, None);
        assert_eq!(v.enabled(1), None);
        assert_eq!(v.enabled(3), Some(ValidatorKind::Jwks));
    }
}
