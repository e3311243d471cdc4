//! One issued identity: the X.509-SVID chain with its private key (ready for rustls), and the
//! JWT-SVID sentry may add. Built from sentry's `SignCertificateResponse` with the checks of
//! `dapr/dapr:pkg/security/sentry.go` and kit `crypto/spiffe` (pure; no I/O).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use dapr_proto::sentry::v1::SignCertificateResponse;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::pem::{self, Certificate, PemError, PrivateKey};
use crate::spiffe::SpiffeId;
use crate::tls::PROVIDER;
use crate::verify::{VerifyError, peer_spiffe_id};

/// Renewal happens this far (1/2) through a certificate's validity (kit `renewalDivisor`).
const RENEWAL_DIVISOR: u32 = 2;

/// Why a sentry response is not a usable identity.
#[derive(Debug, thiserror::Error)]
pub enum SvidError {
    #[error("error parsing ValidUntil: {0}")]
    ValidUntil(&'static str),
    #[error("error parsing newly signed certificate: {0}")]
    Certificates(#[source] PemError),
    #[error("no certificates received from sentry")]
    NoCertificates,
    #[error("error parsing spiffe id from newly signed certificate: {0}")]
    Id(#[source] VerifyError),
    #[error("newly signed certificate does not match the private key: {0}")]
    Key(#[source] rustls::Error),
    #[error("error parsing JWT: {0}")]
    JwtParse(String),
    #[error("JWT audience is empty")]
    JwtAudienceEmpty,
    #[error("JWT audience mismatch")]
    JwtAudienceMismatch,
    #[error("failed to parse JWT SVID: jwtsvid: {0}")]
    JwtSvid(String),
    #[error("failed to parse per-audience JWT SVID for audience \"{audience}\": jwtsvid: {reason}")]
    PerAudienceJwtSvid { audience: String, reason: String },
}

/// A JWT-SVID as received (not signature-checked: it came over the verified channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSvid {
    pub token: String,
    pub expiry: SystemTime,
}

/// The current workload identity.
pub struct Svid {
    id: SpiffeId,
    chain: Vec<Certificate>,
    key: PrivateKey,
    certified: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
    jwt: Option<JwtSvid>,
}

impl std::fmt::Debug for Svid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Svid")
            .field("id", &self.id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("jwt", &self.jwt.as_ref().map(|j| j.expiry))
            .finish_non_exhaustive()
    }
}

impl Svid {
    /// An identity from a chain (leaf first) and its key; the ID comes from the leaf's URI SAN.
    pub fn new(
        chain: Vec<Certificate>,
        key: PrivateKey,
        jwt: Option<JwtSvid>,
    ) -> Result<Self, SvidError> {
        let leaf = chain.first().ok_or(SvidError::NoCertificates)?;
        let id = peer_spiffe_id(&[CertificateDer::from(leaf.der())]).map_err(SvidError::Id)?;
        let validity = leaf.parsed().validity().clone();
        let not_before = to_system_time(validity.not_before.timestamp());
        let not_after = to_system_time(validity.not_after.timestamp());
        let ders = chain
            .iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
        let certified = CertifiedKey::from_der(ders, key_der, &PROVIDER).map_err(SvidError::Key)?;
        Ok(Self {
            id,
            chain,
            key,
            certified: Arc::new(certified),
            not_before,
            not_after,
            jwt,
        })
    }

    /// Checks and takes sentry's answer to a CSR made with `key` (`trust_chain_certificates` is
    /// ignored, as upstream does).
    pub fn from_response(
        response: &SignCertificateResponse,
        key: PrivateKey,
        now: SystemTime,
    ) -> Result<Self, SvidError> {
        check_timestamp(response.valid_until.as_ref())?;
        let chain = pem::decode_certificates(&response.workload_certificate)
            .map_err(SvidError::Certificates)?;

        let mut jwt_token = None;
        if let Some(token) = response.jwt.as_deref().filter(|t| !t.is_empty()) {
            let claims = Claims::decode(token).map_err(SvidError::JwtParse)?;
            if claims.audience.is_empty() {
                return Err(SvidError::JwtAudienceEmpty);
            }
            jwt_token = Some(token);
        }
        for (audience, token) in &response.per_audience_jwts {
            let claims = Claims::decode(token).map_err(SvidError::JwtParse)?;
            if claims.audience != [audience.as_str()] {
                return Err(SvidError::JwtAudienceMismatch);
            }
        }

        let leaf = chain.first().ok_or(SvidError::NoCertificates)?;
        let id = peer_spiffe_id(&[CertificateDer::from(leaf.der())]).map_err(SvidError::Id)?;
        let jwt = match jwt_token {
            Some(token) => {
                let expiry = parse_jwt_svid(token, id.trust_domain().as_str(), now)
                    .map_err(SvidError::JwtSvid)?;
                tracing::info!(
                    "Successfully received JWT SVID with expiry: {}",
                    humantime_utc(expiry)
                );
                Some(JwtSvid {
                    token: token.to_owned(),
                    expiry,
                })
            }
            None => None,
        };
        for (audience, token) in &response.per_audience_jwts {
            parse_jwt_svid(token, audience, now).map_err(|reason| {
                SvidError::PerAudienceJwtSvid {
                    audience: audience.clone(),
                    reason,
                }
            })?;
        }
        Self::new(chain, key, jwt)
    }

    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    /// Leaf first, then intermediates.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    pub fn jwt(&self) -> Option<&JwtSvid> {
        self.jwt.as_ref()
    }

    /// What rustls serves and presents.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified
    }

    /// When this identity should be renewed, seen at `now` (see [`renewal_time`]).
    pub fn renewal_time(&self, now: SystemTime) -> SystemTime {
        renewal_time(
            self.not_before,
            self.not_after,
            self.jwt.as_ref().map(|j| j.expiry),
            now,
        )
    }

    /// `"cert expires on: …[, jwt expires on: …]"`, as kit logs identities.
    pub(crate) fn expiry_text(&self) -> String {
        let mut text = format!("cert expires on: {}", humantime_utc(self.not_after));
        if let Some(jwt) = &self.jwt {
            text.push_str(&format!(", jwt expires on: {}", humantime_utc(jwt.expiry)));
        }
        text
    }
}

/// Half-way through the certificate's full validity (which includes sentry's clock-skew
/// back-dating); with a JWT-SVID, the earlier of that and half-way from `now` to the JWT's expiry
/// (kit `calculateRenewalTime`).
pub fn renewal_time(
    not_before: SystemTime,
    not_after: SystemTime,
    jwt_expiry: Option<SystemTime>,
    now: SystemTime,
) -> SystemTime {
    let validity = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    let cert = not_before + validity / RENEWAL_DIVISOR;
    match jwt_expiry {
        Some(expiry) => {
            let left = expiry.duration_since(now).unwrap_or(Duration::ZERO);
            cert.min(now + left / RENEWAL_DIVISOR)
        }
        None => cert,
    }
}

pub(crate) fn humantime_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match x509_parser::time::ASN1Time::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX)) {
        Ok(asn1) => asn1.to_string(),
        Err(_) => format!("{secs}s since the epoch"),
    }
}

fn to_system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    }
}

/// protobuf `Timestamp.CheckValid`: within 0001-01-01 … 9999-12-31 and nanos in `[0, 1e9)`.
fn check_timestamp(ts: Option<&prost_types::Timestamp>) -> Result<(), SvidError> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    let ts = ts.ok_or(SvidError::ValidUntil("invalid nil Timestamp"))?;
    if ts.seconds < MIN_SECONDS {
        return Err(SvidError::ValidUntil("timestamp before 0001-01-01"));
    }
    if ts.seconds > MAX_SECONDS {
        return Err(SvidError::ValidUntil("timestamp after 9999-12-31"));
    }
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(SvidError::ValidUntil("timestamp has out-of-range nanos"));
    }
    Ok(())
}

/// The header and claims of a JWT, decoded without checking the signature.
struct Claims {
    header: serde_json::Map<String, serde_json::Value>,
    body: serde_json::Map<String, serde_json::Value>,
    audience: Vec<String>,
}

impl Claims {
    fn decode(token: &str) -> Result<Self, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(body), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("invalid JWT: expected three dot-separated parts".to_owned());
        };
        let header = decode_object(header)?;
        let body = decode_object(body)?;
        let audience = match body.get("aud") {
            None => Vec::new(),
            Some(serde_json::Value::String(a)) => vec![a.clone()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "invalid aud claim".to_owned())?,
            Some(_) => return Err("invalid aud claim".to_owned()),
        };
        Ok(Self {
            header,
            body,
            audience,
        })
    }
}

fn decode_object(part: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("invalid base64: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))
}

/// go-spiffe `jwtsvid.ParseInsecure(token, [audience])`; returns the expiry.
fn parse_jwt_svid(token: &str, audience: &str, now: SystemTime) -> Result<SystemTime, String> {
    let claims = Claims::decode(token).map_err(|_| "unable to parse JWT token".to_owned())?;
    let alg = claims
        .header
        .get("alg")
        .and_then(|a| a.as_str())
        .unwrap_or("");
    if !["RS", "ES", "PS"].iter().any(|p| alg.starts_with(p)) {
        return Err("unable to parse JWT token".to_owned());
    }
    match claims.header.get("typ").map(|t| t.as_str()) {
        None | Some(Some("JWT" | "JOSE")) => {}
        Some(_) => return Err("token header type not equal to either JWT or JOSE".to_owned()),
    }
    let subject = claims
        .body
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or("");
    if subject.is_empty() {
        return Err("token missing subject claim".to_owned());
    }
    let Some(exp) = claims.body.get("exp").and_then(serde_json::Value::as_f64) else {
        return Err("token missing exp claim".to_owned());
    };
    SpiffeId::parse(subject).map_err(|e| format!("token has an invalid subject claim: {e}"))?;
    let expiry = Duration::try_from_secs_f64(exp.max(0.0))
        .ok()
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .ok_or_else(|| "token has an invalid exp claim".to_owned())?;
    if expiry < now {
        return Err("token has expired".to_owned());
    }
    if !claims.audience.iter().any(|a| a == audience) {
        return Err(format!(
            "expected audience in [\"{audience}\"] (audience={:?})",
            claims.audience
        ));
    }
    Ok(expiry)
}

#[cfg(test)]
mod tests;
