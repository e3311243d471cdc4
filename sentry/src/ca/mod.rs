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

/// Why the CA could not be built; texts follow upstream's `error creating CA: …` chain.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("failed to get CA bundle: {0}")]
    Read(#[source] StoreError),
    #[error("failed to get CA bundle: failed to verify CA bundle: {0}")]
    Verify(#[source] BundleError),
    #[error("failed to generate CA bundle: {0}")]
    Generate(#[source] GenerateError),
    #[error("failed to store CA bundle: {0}")]
    Store(#[source] StoreError),
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
    if let Some(pem) = store.load().map_err(CaError::Read)? {
        tracing::info!("Root and issuer certs found: using credentials from store");
        let bundle =
            CaBundle::from_pem(&pem.trust_anchors, &pem.issuer_chain, &pem.issuer_key, now)
                .map_err(CaError::Verify)?;
        return Ok((bundle, false));
    }
    tracing::info!("Root and issuer certs not found: generating self signed CA");
    tracing::info!("Generating self-signed CA certs and persisting to store");
    let (bundle, pem) = generate(trust_domain, sentry_id, skew, now).map_err(CaError::Generate)?;
    store
        .store(&pem.trust_anchors, &pem.issuer_chain, &pem.issuer_key)
        .map_err(CaError::Store)?;
    tracing::info!("Self-signed certs and JWT root key generated and persisted successfully");
    Ok((bundle, true))
}

#[cfg(test)]
mod tests;
