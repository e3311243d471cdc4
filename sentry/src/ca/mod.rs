//! CA material: the trust anchors, the issuer chain and the issuer key (spec §5), loaded from
//! the file store, validated, or generated.

mod bundle;
pub(crate) mod generate;
pub mod store;
mod verify;

use std::time::{Duration, SystemTime};

pub use bundle::{BundleError, CaBundle};
pub(crate) use generate::random_serial;
pub use generate::{GenerateError, GeneratedPem, generate};
pub use store::{FileStore, StoreError};

use crate::jwt::{JwtBundle, JwtFiles, JwtLoadError};

/// Why the CA could not be built; texts follow upstream's `error creating CA: …` chain.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("failed to get CA bundle: {0}")]
    Read(#[source] StoreError),
    #[error("failed to get CA bundle: failed to verify CA bundle: {0}")]
    Verify(#[source] BundleError),
    #[error("failed to get CA bundle: {0}")]
    Jwt(#[source] JwtLoadError),
    #[error("failed to generate CA bundle: {0}")]
    Generate(#[source] GenerateError),
    #[error("failed to generate CA bundle: {0}")]
    GenerateJwt(#[source] JwtLoadError),
    #[error("failed to store CA bundle: {0}")]
    Store(#[source] StoreError),
    #[error("failed to get CA bundle: {0}")]
    KubeGet(#[source] kube_store::KubeStoreError),
    #[error("failed to store CA bundle: {0}")]
    KubeStore(#[source] kube_store::KubeStoreError),
}

/// The JWT side of the store: where the files are and how to check them.
#[derive(Debug, Clone)]
pub struct JwtStore {
    pub files: JwtFiles,
    /// `-jwt-enabled`: generate (and store) a key when none exists.
    pub enabled: bool,
    /// `-jwt-key-id`.
    pub key_id: Option<String>,
}

/// What [`load`] found or made.
#[derive(Debug)]
pub struct Loaded {
    pub bundle: CaBundle,
    /// Present when the files exist (checked even with JWT off) or JWT is on (then generated).
    pub jwt: Option<JwtBundle>,
    /// Something was generated and stored.
    pub generated: bool,
}

/// Loads the bundle from `store`, or generates and stores a new one when any file is missing.
/// Returns the bundle and whether it was generated.
pub fn load_or_generate(
    store: &FileStore,
    trust_domain: &str,
    sentry_id: &str,
    skew: Duration,
    now: SystemTime,
) -> Result<(CaBundle, bool), CaError> {
    let loaded = load(store, None, trust_domain, sentry_id, skew, now)?;
    Ok((loaded.bundle, loaded.generated))
}

/// Upstream's order (spec §5.1, §5.2): read and verify the X.509 files, then the JWT files
/// (even with JWT off), then generate what is missing and store everything.
pub fn load(
    store: &FileStore,
    jwt: Option<&JwtStore>,
    trust_domain: &str,
    sentry_id: &str,
    skew: Duration,
    now: SystemTime,
) -> Result<Loaded, CaError> {
    let x509 = match store.load().map_err(CaError::Read)? {
        Some(pem) => Some(
            CaBundle::from_pem(&pem.trust_anchors, &pem.issuer_chain, &pem.issuer_key, now)
                .map_err(CaError::Verify)?,
        ),
        None => None,
    };
    let jwt_bundle = match jwt {
        Some(j) => j.files.load(j.key_id.as_deref()).map_err(CaError::Jwt)?,
        None => None,
    };

    let loaded = complete(
        x509,
        jwt_bundle,
        jwt.is_some_and(|j| j.enabled),
        trust_domain,
        sentry_id,
        skew,
        now,
    )?;
    let Loaded {
        bundle,
        jwt: jwt_bundle,
        generated,
    } = loaded;
    if generated {
        store
            .store(
                bundle.trust_anchors_pem(),
                bundle.issuer_chain_pem(),
                &bundle.issuer_key_pem(),
            )
            .map_err(CaError::Store)?;
        if let (Some(j), Some(b)) = (jwt, &jwt_bundle)
            && j.enabled
        {
            j.files.store(b).map_err(CaError::Store)?;
        }
        tracing::info!("Self-signed certs and JWT root key generated and persisted successfully");
    }
    Ok(Loaded {
        bundle,
        jwt: jwt_bundle,
        generated,
    })
}

/// The store-independent part of loading (spec §5.1, §5.2): keep what was found, generate the
/// X.509 bundle when none was found and the JWT bundle when JWT is on and none was found.
pub fn complete(
    x509: Option<CaBundle>,
    mut jwt_bundle: Option<JwtBundle>,
    jwt_enabled: bool,
    trust_domain: &str,
    sentry_id: &str,
    skew: Duration,
    now: SystemTime,
) -> Result<Loaded, CaError> {
    let mut generated = false;
    let bundle = match x509 {
        Some(bundle) => {
            tracing::info!("Root and issuer certs found: using credentials from store");
            bundle
        }
        None => {
            tracing::info!("Root and issuer certs not found: generating self signed CA");
            tracing::info!("Generating self-signed CA certs and persisting to store");
            generated = true;
            generate(trust_domain, sentry_id, skew, now)
                .map_err(CaError::Generate)?
                .0
        }
    };
    if jwt_enabled && jwt_bundle.is_none() {
        tracing::info!("Generating JWT signing key and persisting to store");
        jwt_bundle = Some(JwtBundle::generate().map_err(CaError::GenerateJwt)?);
        generated = true;
    }
    Ok(Loaded {
        bundle,
        jwt: jwt_bundle,
        generated,
    })
}

pub mod kube_store;

#[cfg(test)]
mod tests;
