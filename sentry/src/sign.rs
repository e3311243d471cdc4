//! `SignCertificate` as a pure function (spec §7): request + CA + clock → response or a gRPC
//! error with upstream's exact code and message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use dapr_security::{SpiffeError, SpiffeId, TrustDomain, pem::encode_block};
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, KeyUsagePurpose, PublicKeyData,
    SanType,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::ca::CaBundle;
use crate::config::ValidatorKind;
use crate::jwt::{JwtIssuer, TokenError};
use crate::validator::{self, ValidationError, Validators};

/// What signing needs besides the request.
pub struct SignContext<'a> {
    pub bundle: &'a CaBundle,
    pub validators: &'a Validators,
    pub workload_cert_ttl: Duration,
    pub allowed_clock_skew: Duration,
    /// Sentry's own namespace (`$NAMESPACE`): control-plane ids there get extra DNS SANs.
    pub control_plane_namespace: &'a str,
    /// Cluster domain for the scheduler's DNS SANs (standalone: the trust domain).
    pub cluster_domain: &'a str,
    /// Set with `-jwt-enabled`: every response also carries JWT-SVIDs (spec §9).
    pub jwt: Option<&'a JwtIssuer>,
}

/// Why a request failed; `into_status` gives upstream's code and message.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("a validator name must be specified in this environment")]
    NoValidator,
    #[error("the requested validator is not enabled")]
    ValidatorNotEnabled,
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("invalid certificate signing request")]
    InvalidCsr,
    #[error("failed to parse certificate signing request: {0}")]
    ParseCsr(String),
    #[error("invalid signature")]
    InvalidSignature,
    #[error("failed to sign certificate")]
    Sign(#[source] SignFailure),
    #[error("failed to generate JWT: {0}")]
    Jwt(#[source] TokenError),
    #[error("failed to generate JWT for audience {0}: {1}")]
    AudienceJwt(String, #[source] TokenError),
}

/// The cause behind `failed to sign certificate` (logged, not returned).
#[derive(Debug, thiserror::Error)]
pub enum SignFailure {
    #[error("failed to build SPIFFE ID: {0}")]
    SpiffeId(#[from] SpiffeError),
    #[error("{0}")]
    X509(#[from] rcgen::Error),
}

impl SignError {
    /// The gRPC status upstream answers with.
    pub fn into_status(self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Self::NoValidator
            | Self::ValidatorNotEnabled
            | Self::InvalidCsr
            | Self::ParseCsr(_)
            | Self::InvalidSignature => tonic::Status::invalid_argument(message),
            Self::Validation(_) => tonic::Status::permission_denied(message),
            Self::Sign(_) | Self::Jwt(_) | Self::AudienceJwt(..) => {
                tonic::Status::internal(message)
            }
        }
    }
}

/// A signed leaf: the response and the SPIFFE ID it carries.
#[derive(Debug)]
pub struct Signed {
    pub response: SignCertificateResponse,
    pub spiffe_id: SpiffeId,
}

/// Validates, parses and signs one request (spec §7.1 order), with the synchronous
/// validators only (the server runs the async ones itself, then [`sign_validated`]).
pub fn sign_certificate(
    req: &SignCertificateRequest,
    ctx: &SignContext<'_>,
    now: SystemTime,
) -> Result<Signed, SignError> {
    let kind = select_validator(req, ctx.validators)?;
    let trust_domain = validator::validate(kind, req)?;
    sign_validated(req, &trust_domain, ctx, now)
}

/// Steps 1-3 of §7.1: the validator the request names, or the default, if enabled.
pub fn select_validator(
    req: &SignCertificateRequest,
    validators: &Validators,
) -> Result<ValidatorKind, SignError> {
    let requested = if req.token_validator != 0 {
        req.token_validator
    } else {
        validators.default.map_or(0, |k| k.number())
    };
    if requested == 0 {
        return Err(SignError::NoValidator);
    }
    validators
        .enabled(requested)
        .ok_or(SignError::ValidatorNotEnabled)
}

/// Steps 5-11 of §7.1, once a validator has accepted the request and named its trust domain.
pub fn sign_validated(
    req: &SignCertificateRequest,
    trust_domain: &TrustDomain,
    ctx: &SignContext<'_>,
    now: SystemTime,
) -> Result<Signed, SignError> {
    let block = pem::parse_many(&req.certificate_signing_request)
        .ok()
        .and_then(|b| b.into_iter().next())
        .ok_or(SignError::InvalidCsr)?;
    if !matches!(block.tag(), "CERTIFICATE REQUEST" | "CERTIFICATE") {
        return Err(SignError::InvalidCsr);
    }
    let (_, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| SignError::ParseCsr(e.to_string()))?;
    csr.verify_signature()
        .map_err(|_| SignError::InvalidSignature)?;
    // The leaf carries the CSR's key as is, whatever its type.
    let public_key =
        rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
            .map_err(|e| SignError::Sign(SignFailure::X509(e)))?;

    let dns = control_plane_dns(req, ctx);
    let mut signed = sign_identity(
        &public_key,
        trust_domain,
        &req.namespace,
        &req.id,
        dns,
        ctx,
        now,
    )
    .map_err(SignError::Sign)?;
    if let Some(issuer) = ctx.jwt {
        add_jwts(&mut signed.response, issuer, trust_domain, req, now)?;
    }
    Ok(signed)
}

/// Adds the JWT for all audiences and one per audience; the audiences are the trust domain
/// followed by the requested ones, order kept, duplicates not removed (spec §9).
fn add_jwts(
    response: &mut SignCertificateResponse,
    issuer: &JwtIssuer,
    trust_domain: &TrustDomain,
    req: &SignCertificateRequest,
    now: SystemTime,
) -> Result<(), SignError> {
    let audiences: Vec<String> = std::iter::once(trust_domain.as_str().to_owned())
        .chain(req.jwt_audiences.iter().cloned())
        .collect();
    let token = issuer
        .generate(trust_domain, &audiences, &req.namespace, &req.id, now)
        .map_err(SignError::Jwt)?;
    response.jwt = Some(token);
    for audience in &audiences {
        let token = issuer
            .generate(
                trust_domain,
                std::slice::from_ref(audience),
                &req.namespace,
                &req.id,
                now,
            )
            .map_err(|e| SignError::AudienceJwt(audience.clone(), e))?;
        response.per_audience_jwts.insert(audience.clone(), token);
    }
    Ok(())
}

/// Signs a leaf for `spiffe://<td>/ns/<namespace>/<id>` with the issuer key (spec §5.6).
pub fn sign_identity(
    public_key: &impl PublicKeyData,
    trust_domain: &TrustDomain,
    namespace: &str,
    id: &str,
    dns: Vec<String>,
    ctx: &SignContext<'_>,
    now: SystemTime,
) -> Result<Signed, SignFailure> {
    let spiffe_id = SpiffeId::workload(trust_domain, namespace, id)?;
    let not_after = now + ctx.workload_cert_ttl;

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.serial_number = Some(crate::ca::random_serial());
    params.not_before = (now - ctx.allowed_clock_skew).into();
    params.not_after = not_after.into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = vec![SanType::URI(spiffe_id.to_string().try_into()?)];
    for name in dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(name.try_into()?));
    }
    let leaf = params.signed_by(public_key, ctx.bundle.issuer())?;

    let mut chain = encode_block("CERTIFICATE", leaf.der());
    chain.push_str(ctx.bundle.issuer_chain_pem());
    let valid_until = not_after.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(Signed {
        response: SignCertificateResponse {
            workload_certificate: chain.into_bytes(),
            trust_chain_certificates: vec![ctx.bundle.trust_anchors_pem().as_bytes().to_vec()],
            valid_until: Some(prost_types::Timestamp {
                seconds: valid_until.as_secs() as i64,
                nanos: valid_until.subsec_nanos() as i32,
            }),
            jwt: None,
            per_audience_jwts: Default::default(),
        },
        spiffe_id,
    })
}

/// Extra DNS SANs for control-plane services in sentry's own namespace (spec §7.3).
fn control_plane_dns(req: &SignCertificateRequest, ctx: &SignContext<'_>) -> Vec<String> {
    if req.namespace != ctx.control_plane_namespace {
        return Vec::new();
    }
    let ns = &req.namespace;
    match req.id.as_str() {
        "dapr-injector" => vec![format!("dapr-sidecar-injector.{ns}.svc")],
        "dapr-operator" => vec![format!("dapr-webhook.{ns}.svc")],
        "dapr-scheduler" => (0..3)
            .map(|i| {
                format!(
                    "dapr-scheduler-server-{i}.dapr-scheduler-server.{ns}.svc.{}",
                    ctx.cluster_domain
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
