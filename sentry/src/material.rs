//! Building the CA material (spec §5): the X.509 bundle from the file store or the Kubernetes
//! store, generated when missing, plus the JWT issuer. One code path, used at start and on
//! every reload (spec §6), so a reload fails exactly as a start would.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ca::kube_store::KubeStore;
use crate::ca::{self, CaBundle, CaError, FileStore, JwtStore};
use crate::jwt::{AlgorithmError, JwtIssuer};
use crate::metrics::Metrics;

/// Where the X.509 bundle lives.
pub enum Store {
    /// Standalone: `ca.crt`, `issuer.crt`, `issuer.key` in `-issuer-credentials`.
    Files(FileStore),
    /// Kubernetes: Secret and ConfigMap `dapr-trust-bundle` (the files are only watched).
    Kube(KubeStore),
}

/// The `-jwt-*` flags that shape the issuer.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub signing_algorithm: String,
    pub issuer: Option<String>,
    pub ttl: Duration,
}

/// Everything needed to (re)build the material.
pub struct CaSource {
    pub store: Store,
    /// JWT files and flags; loaded and checked even with JWT off (spec §5.1).
    pub jwt_store: JwtStore,
    pub jwt: JwtSettings,
    pub trust_domain: String,
    pub sentry_id: String,
    pub allowed_clock_skew: Duration,
}

/// What one load produced.
pub struct Material {
    pub bundle: Arc<CaBundle>,
    /// The JWT-SVID signer, with `-jwt-enabled`.
    pub jwt: Option<Arc<JwtIssuer>>,
    /// Something was generated and written to the store.
    pub generated: bool,
}

/// Why the material could not be built; every variant reads `error creating CA: …` as
/// upstream's `sentry.New` wraps it. The cause is part of the message and deliberately not a
/// `#[source]`: the inner errors already print their own causes, and an alternate (`{:#}`)
/// rendering would otherwise repeat them.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("error creating CA: {0}")]
    Ca(CaError),
    #[error("error creating CA: {0}")]
    Jwt(AlgorithmError),
}

impl CaSource {
    /// Reads (or generates and stores) the bundle, then builds the JWT issuer.
    pub async fn load(&self) -> Result<Material, MaterialError> {
        let now = SystemTime::now();
        let skew = self.allowed_clock_skew;
        let loaded = match &self.store {
            Store::Kube(store) => {
                store
                    .load(
                        self.jwt_store.enabled,
                        self.jwt_store.key_id.as_deref(),
                        &self.trust_domain,
                        &self.sentry_id,
                        skew,
                        now,
                    )
                    .await
            }
            Store::Files(store) => ca::load(
                store,
                Some(&self.jwt_store),
                &self.trust_domain,
                &self.sentry_id,
                skew,
                now,
            ),
        }
        .map_err(MaterialError::Ca)?;
        let ca::Loaded {
            bundle,
            jwt,
            generated,
        } = loaded;
        let jwt = match jwt {
            Some(jwt) if self.jwt_store.enabled => {
                tracing::info!("JWT issuing enabled");
                let issuer = jwt
                    .into_issuer(
                        &self.jwt.signing_algorithm,
                        self.jwt_store.key_id.as_deref(),
                        self.jwt.issuer.clone(),
                        skew,
                        self.jwt.ttl,
                    )
                    .map_err(MaterialError::Jwt)?;
                Some(Arc::new(issuer))
            }
            _ => None,
        };
        tracing::info!("CA certificate key pair ready");
        Ok(Material {
            bundle: Arc::new(bundle),
            jwt,
            generated,
        })
    }
}

impl Material {
    /// The metrics every CA build records (spec §5.2, §6): the issuer's expiry, and a change
    /// when the material was generated.
    pub fn record(&self, metrics: &Metrics) {
        metrics.set_issuer_expiry(self.bundle.issuer_not_after());
        if self.generated {
            metrics.issuer_changed();
        }
    }
}
