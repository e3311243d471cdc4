//! JWT material (spec §5.1, §5.2, §5.4, §5.5, §9): the signing key and its JWKS, loaded from the
//! credentials directory (even when JWT issuing is off), or generated as RSA-2048.

mod jwks;
mod key;
mod token;

use std::path::{Path, PathBuf};

pub use dapr_security::csr::generate_rsa2048_pkcs8 as generate_rsa_pkcs8;
pub use jwks::{Jwks, JwksError, public_members, thumbprint_kid};
pub use key::{AlgorithmError, KeyError, PublicKey, SigningKey};
pub use token::{JwtIssuer, TokenError};

use crate::ca::store::{StoreError, read_optional, write_0600};

/// The algorithm sentry uses for keys it generates itself.
pub const GENERATED_ALGORITHM: &str = "RS256";

/// Where the JWT key and JWKS live.
#[derive(Debug, Clone)]
pub struct JwtFiles {
    pub key: PathBuf,
    pub jwks: PathBuf,
}

impl JwtFiles {
    /// Upstream's quirk: only absolute flag values are honoured; relative ones fall back to
    /// `<dir>/jwt.key` and `<dir>/jwks.json`.
    pub fn new(dir: &str, key_flag: &str, jwks_flag: &str) -> Self {
        let resolve = |flag: &str, default: &str| {
            if Path::new(flag).is_absolute() {
                PathBuf::from(flag)
            } else {
                Path::new(dir).join(default)
            }
        };
        Self {
            key: resolve(key_flag, "jwt.key"),
            jwks: resolve(jwks_flag, "jwks.json"),
        }
    }

    /// Reads and checks the pair; `None` when either file is missing.
    pub fn load(&self, key_id: Option<&str>) -> Result<Option<JwtBundle>, JwtLoadError> {
        let Some(key_pem) = read_optional(&self.key).map_err(JwtLoadError::Read)? else {
            return Ok(None);
        };
        let key = SigningKey::from_pem(&key_pem).map_err(JwtLoadError::Key)?;
        let Some(jwks_json) = read_optional(&self.jwks).map_err(JwtLoadError::Read)? else {
            return Ok(None);
        };
        JwtBundle::from_parts(key_pem, key, jwks_json, key_id).map(Some)
    }

    /// Writes the pair, mode 0600.
    pub fn store(&self, bundle: &JwtBundle) -> Result<(), StoreError> {
        write_0600(&self.key, &bundle.key_pem)?;
        write_0600(&self.jwks, &bundle.jwks_json)
    }
}

/// Why the JWT material could not be loaded (all fatal).
#[derive(Debug, thiserror::Error)]
pub enum JwtLoadError {
    #[error(transparent)]
    Read(StoreError),
    #[error("failed to load JWT signing key: {0}")]
    Key(#[source] KeyError),
    #[error("failed to verify JWKS: {0}")]
    Jwks(#[source] JwksError),
    #[error("failed to generate JWT signing key: {0}")]
    Generate(String),
}

/// A signing key and the JWKS that publishes it.
#[derive(Debug)]
pub struct JwtBundle {
    pub key_pem: Vec<u8>,
    pub key: SigningKey,
    pub jwks_json: Vec<u8>,
    pub jwks: Jwks,
    /// Made by sentry (the algorithm is then forced to RS256).
    pub generated: bool,
}

impl JwtBundle {
    /// A stored pair (e.g. the Kubernetes Secret's `jwt.key` + `jwks.json`), parsed and checked.
    pub fn from_pem(
        key_pem: Vec<u8>,
        jwks_json: Vec<u8>,
        key_id: Option<&str>,
    ) -> Result<Self, JwtLoadError> {
        let key = SigningKey::from_pem(&key_pem).map_err(JwtLoadError::Key)?;
        Self::from_parts(key_pem, key, jwks_json, key_id)
    }

    fn from_parts(
        key_pem: Vec<u8>,
        key: SigningKey,
        jwks_json: Vec<u8>,
        key_id: Option<&str>,
    ) -> Result<Self, JwtLoadError> {
        let jwks = Jwks::parse(&jwks_json).map_err(JwtLoadError::Jwks)?;
        jwks.verify(key.public(), key_id)
            .map_err(JwtLoadError::Jwks)?;
        Ok(Self {
            key_pem,
            key,
            jwks_json,
            jwks,
            generated: false,
        })
    }

    /// A fresh RSA-2048 key; its JWK has `kid` = thumbprint, `alg` RS256, `use` sig (spec §5.2).
    pub fn generate() -> Result<Self, JwtLoadError> {
        let pkcs8 = generate_rsa_pkcs8().map_err(JwtLoadError::Generate)?;
        let private = dapr_security::PrivateKey::from_pkcs8(pkcs8)
            .map_err(|e| JwtLoadError::Generate(e.to_string()))?;
        let key = SigningKey::from_private(&private).map_err(JwtLoadError::Key)?;
        let mut jwk = public_members(key.public());
        jwk.insert("kid".into(), thumbprint_kid(key.public()).into());
        jwk.insert("alg".into(), GENERATED_ALGORITHM.into());
        jwk.insert("use".into(), "sig".into());
        let jwks = Jwks::single(jwk);
        Ok(Self {
            key_pem: private.to_pem().into_bytes(),
            key,
            jwks_json: jwks.to_json().into_bytes(),
            jwks,
            generated: true,
        })
    }

    /// The issuer for this bundle: kid from `-jwt-key-id` or the thumbprint; the algorithm
    /// checked against the key (forced to RS256 for a generated key).
    pub fn into_issuer(
        self,
        algorithm: &str,
        key_id: Option<&str>,
        issuer: Option<String>,
        allowed_clock_skew: std::time::Duration,
        ttl: std::time::Duration,
    ) -> Result<JwtIssuer, AlgorithmError> {
        let kid = match key_id {
            Some(kid) => {
                tracing::info!("Using JWT kid from configuration: {kid}");
                kid.to_owned()
            }
            None => {
                let kid = thumbprint_kid(self.key.public());
                tracing::info!(
                    "Using JWT kid from thumbprint: {kid}, please ensure this aligns with your JWKS"
                );
                kid
            }
        };
        let algorithm = if self.generated {
            GENERATED_ALGORITHM
        } else {
            algorithm
        };
        self.key.check_algorithm(algorithm)?;
        Ok(JwtIssuer::new(
            self.key,
            algorithm.to_owned(),
            kid,
            issuer,
            allowed_clock_skew,
            ttl,
            self.jwks,
        ))
    }
}

#[cfg(test)]
mod tests;
