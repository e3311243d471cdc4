//! JWT-SVIDs (spec §9): JWS compact serialisation, hand-rolled — the header and claims are
//! fixed and small, so a JWT library would add weight without removing code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dapr_security::{SpiffeId, TrustDomain};
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

use super::jwks::Jwks;
use super::key::SigningKey;

/// Why a token could not be made; texts as upstream's `jwt.Generate`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("audience cannot be empty")]
    NoAudience,
    #[error("namespace cannot be empty")]
    NoNamespace,
    #[error("app ID cannot be empty")]
    NoAppId,
    #[error("error creating SPIFFE ID: {0}")]
    SpiffeId(#[source] dapr_security::SpiffeError),
    #[error("error generating nonce: failed to generate random nonce")]
    Nonce,
    #[error("error signing JWT token: {0}")]
    Sign(String),
}

/// Signs JWT-SVIDs with sentry's signing key.
#[derive(Debug)]
pub struct JwtIssuer {
    key: SigningKey,
    alg: String,
    kid: String,
    issuer: Option<String>,
    allowed_clock_skew: Duration,
    ttl: Duration,
    jwks: Jwks,
}

impl JwtIssuer {
    /// `alg` must already be checked against `key`.
    pub fn new(
        key: SigningKey,
        alg: String,
        kid: String,
        issuer: Option<String>,
        allowed_clock_skew: Duration,
        ttl: Duration,
        jwks: Jwks,
    ) -> Self {
        Self {
            key,
            alg,
            kid,
            issuer,
            allowed_clock_skew,
            ttl,
            jwks,
        }
    }

    /// The JWS algorithm.
    pub fn algorithm(&self) -> &str {
        &self.alg
    }

    /// The JWKS served over OIDC.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// A token for `spiffe://<td>/ns/<namespace>/<app_id>` with `aud` = `audiences`.
    pub fn generate(
        &self,
        trust_domain: &TrustDomain,
        audiences: &[String],
        namespace: &str,
        app_id: &str,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        if audiences.is_empty() {
            return Err(TokenError::NoAudience);
        }
        if namespace.is_empty() {
            return Err(TokenError::NoNamespace);
        }
        if app_id.is_empty() {
            return Err(TokenError::NoAppId);
        }
        let subject =
            SpiffeId::workload(trust_domain, namespace, app_id).map_err(TokenError::SpiffeId)?;
        let mut nonce = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TokenError::Nonce)?;
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut claims = json!({
            "aud": audiences,
            "exp": secs(now + self.ttl),
            "iat": secs(now),
            "jti": hex(&nonce),
            "nbf": secs(now - self.allowed_clock_skew),
            "sub": subject.to_string(),
            "use": "sig",
        });
        if let (Some(iss), Value::Object(map)) = (&self.issuer, &mut claims) {
            map.insert("iss".into(), Value::String(iss.clone()));
        }
        let header = json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.alg, signing_input.as_bytes())
            .map_err(TokenError::Sign)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
