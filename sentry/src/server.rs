//! The `dapr.proto.sentry.v1.CA` gRPC service and its TLS listener (spec §7, §11).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse, ca_server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ca::CaBundle;
use crate::config::SentryConfig;
use crate::config::ValidatorKind;
use crate::jwt::JwtIssuer;
use crate::metrics::Metrics;
use crate::sign::{SignContext, SignError, Signed, select_validator, sign_validated};
use crate::validator::jwks::JwksValidator;
use crate::validator::kubernetes::KubeValidator;
use crate::validator::{self, ValidationError, Validators};
use dapr_security::TrustDomain;

/// Everything a request needs; shared by all requests of one CA generation. A reload (spec §6)
/// builds a new one with [`CaState::with_material`] and publishes it through [`CurrentCa`].
#[derive(Clone)]
pub struct CaState {
    pub bundle: Arc<CaBundle>,
    pub validators: Validators,
    pub config: SentryConfig,
    pub namespace: String,
    pub cluster_domain: String,
    pub metrics: Metrics,
    /// The JWT-SVID signer, with `-jwt-enabled`.
    pub jwt: Option<Arc<JwtIssuer>>,
    /// The jwks validator, when configured.
    pub jwks: Option<Arc<JwksValidator>>,
    /// The kubernetes validator, in kubernetes mode.
    pub kubernetes: Option<Arc<KubeValidator>>,
}

impl CaState {
    /// The same state over new CA material: validators, config and caches are kept (upstream
    /// does not re-read the config on a reload either).
    pub fn with_material(&self, bundle: Arc<CaBundle>, jwt: Option<Arc<JwtIssuer>>) -> Self {
        Self {
            bundle,
            jwt,
            ..self.clone()
        }
    }

    /// Runs validator `kind` (already selected and enabled) on the request.
    pub async fn validate(
        &self,
        kind: ValidatorKind,
        req: &SignCertificateRequest,
    ) -> Result<TrustDomain, ValidationError> {
        match kind {
            ValidatorKind::Jwks if let Some(jwks) = &self.jwks => {
                jwks.validate(req, SystemTime::now())
            }
            ValidatorKind::Kubernetes if let Some(kube) = &self.kubernetes => {
                kube.validate(req).await
            }
            _ => validator::validate(kind, req),
        }
    }

    /// Validates, then signs (spec §7.1).
    pub async fn sign(&self, req: &SignCertificateRequest) -> Result<Signed, SignError> {
        let kind = select_validator(req, &self.validators)?;
        let td = self.validate(kind, req).await?;
        sign_validated(req, &td, &self.context(), SystemTime::now())
    }

    /// The pure signing context over this state.
    pub fn context(&self) -> SignContext<'_> {
        SignContext {
            bundle: &self.bundle,
            validators: &self.validators,
            workload_cert_ttl: self.config.workload_cert_ttl,
            allowed_clock_skew: self.config.allowed_clock_skew,
            control_plane_namespace: &self.namespace,
            cluster_domain: &self.cluster_domain,
            jwt: self.jwt.as_deref(),
        }
    }
}

/// The CA generation in use. Requests take a snapshot ([`CurrentCa::get`]) and finish on it even
/// when a reload swaps in a new generation meanwhile.
#[derive(Clone)]
pub struct CurrentCa(Arc<RwLock<Arc<CaState>>>);

impl CurrentCa {
    pub fn new(state: Arc<CaState>) -> Self {
        Self(Arc::new(RwLock::new(state)))
    }

    /// The current generation. A poisoned lock still holds a complete `Arc` (the only writer
    /// replaces it in one assignment), so it is used as is.
    pub fn get(&self) -> Arc<CaState> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Publishes a new generation; later requests use it.
    pub fn replace(&self, state: Arc<CaState>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// The gRPC service.
pub struct CaService(pub CurrentCa);

#[tonic::async_trait]
impl ca_server::Ca for CaService {
    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id, namespace = %request.get_ref().namespace))]
    async fn sign_certificate(
        &self,
        request: tonic::Request<SignCertificateRequest>,
    ) -> Result<tonic::Response<SignCertificateResponse>, tonic::Status> {
        let state = self.0.get();
        state.metrics.request_received();
        match state.sign(request.get_ref()).await {
            Ok(signed) => {
                state.metrics.sign_succeeded();
                tracing::debug!(spiffe_id = %signed.spiffe_id, "signed certificate");
                Ok(tonic::Response::new(signed.response))
            }
            Err(error) => {
                state.metrics.sign_failed();
                match &error {
                    SignError::Sign(cause) => tracing::error!("Error signing identity: {cause}"),
                    SignError::Validation(e) => {
                        tracing::debug!("Failed to validate request: {e}")
                    }
                    other => tracing::debug!("Rejected request: {other}"),
                }
                Err(error.into_status())
            }
        }
    }
}

/// Serves `routes` over TLS on `listener` until `shutdown` fires. Each handshake runs in its
/// own task so a slow client cannot block others.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    routes: tonic::service::Routes,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    dapr_security::net::serve_routes(routes, listener, tls, shutdown).await
}
