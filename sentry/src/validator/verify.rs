//! JWS verification against a JWK set and the claim checks of the jwks validator (spec §8.3).
//! Pure: token + keys + expectations + clock → claims or a typed error whose text carries the
//! substrings upstream's jwx produces (the suite matches `"aud"`, `"sub"`, `"exp"`, `"nbf"`
//! and `could not verify message`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

/// Clock skew jwx allows for `exp`, `nbf` and `iat` (upstream passes 5 minutes).
pub const ALLOWED_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a token was rejected; wrapped by the validator as `token validation failed: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("failed to parse jws: invalid compact serialization format")]
    Format,
    #[error("failed to parse jws: {0}")]
    Header(String),
    #[error("failed to find matching key: no key ID (\"kid\") specified in token")]
    NoKid,
    #[error("failed to find key with key ID {0:?} in key set")]
    UnknownKid(String),
    #[error("algorithm in the message does not match any of the inferred algorithms")]
    AlgorithmMismatch,
    #[error("could not verify message using any of the signatures or keys")]
    Signature,
    #[error("failed to parse token claims: {0}")]
    Claims(String),
    #[error("\"exp\" not satisfied")]
    Expired,
    #[error("\"nbf\" not satisfied")]
    NotYetValid,
    #[error("\"iat\" not satisfied")]
    IssuedInFuture,
    #[error("claim \"aud\" not found")]
    NoAudience,
    #[error("\"aud\" not satisfied")]
    Audience,
    #[error("\"sub\" not satisfied: claim \"sub\" does not exist")]
    NoSubject,
    #[error("\"sub\" not satisfied: values do not match")]
    Subject,
}

/// A JWK set reduced to what verification needs.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Map<String, Value>>,
}

/// Why a JWK set could not be read.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse JWK set: {0}")]
pub struct KeySetError(String);

impl KeySet {
    /// Parses `{"keys":[…]}` (a single bare JWK is accepted too, as jwx does).
    pub fn parse(json: &[u8]) -> Result<Self, KeySetError> {
        let value: Value = serde_json::from_slice(json).map_err(|e| KeySetError(e.to_string()))?;
        let Value::Object(mut obj) = value else {
            return Err(KeySetError("expected a JSON object".into()));
        };
        let keys = match obj.remove("keys") {
            Some(Value::Array(keys)) => keys
                .into_iter()
                .filter_map(|k| match k {
                    Value::Object(m) => Some(m),
                    _ => None,
                })
                .collect(),
            Some(_) => return Err(KeySetError("\"keys\" must be an array".into())),
            None if obj.contains_key("kty") => vec![obj],
            None => Vec::new(),
        };
        Ok(Self { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What the claims must satisfy.
pub struct Expect<'a> {
    pub audience: &'a str,
    pub subject: &'a str,
}

/// Verifies the compact JWS `token` with `keys`, then the claims; returns the claims.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expect<'_>,
    now: SystemTime,
) -> Result<Map<String, Value>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Format);
    };
    let header: Map<String, Value> = decode_json(h).map_err(VerifyError::Header)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(VerifyError::NoKid)?;
    let key = keys
        .keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| VerifyError::UnknownKid(kid.to_owned()))?;
    if key
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return Err(VerifyError::Signature);
    }
    let alg = match key.get("alg").and_then(Value::as_str) {
        Some(alg) => alg.to_owned(),
        None => {
            let header_alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
            if !inferred_algorithms(key).contains(&header_alg) {
                return Err(VerifyError::AlgorithmMismatch);
            }
            header_alg.to_owned()
        }
    };
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| VerifyError::Signature)?;
    let message = &token[..h.len() + 1 + p.len()];
    verify_signature(key, &alg, message.as_bytes(), &signature)?;
    let claims: Map<String, Value> = decode_json(p).map_err(VerifyError::Claims)?;
    check_claims(&claims, expect, now)?;
    Ok(claims)
}

/// The claim checks, with [`ALLOWED_SKEW`].
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expect<'_>,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let skew = ALLOWED_SKEW.as_secs_f64();
    let time = |name: &str| claims.get(name).and_then(Value::as_f64);
    if let Some(exp) = time("exp")
        && now - skew >= exp
    {
        return Err(VerifyError::Expired);
    }
    if let Some(iat) = time("iat")
        && now + skew < iat
    {
        return Err(VerifyError::IssuedInFuture);
    }
    if let Some(nbf) = time("nbf")
        && now + skew < nbf
    {
        return Err(VerifyError::NotYetValid);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => return Err(VerifyError::NoAudience),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(_) => Vec::new(),
    };
    if !audiences.contains(&expect.audience) {
        return Err(VerifyError::Audience);
    }
    match claims.get("sub").and_then(Value::as_str) {
        None => Err(VerifyError::NoSubject),
        Some(sub) if sub != expect.subject => Err(VerifyError::Subject),
        Some(_) => Ok(()),
    }
}

fn decode_json(part: &str) -> Result<Map<String, Value>, String> {
    let raw = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&raw).map_err(|e| e.to_string())
}

/// Algorithms jwx infers from a key without `alg`.
fn inferred_algorithms(key: &Map<String, Value>) -> &'static [&'static str] {
    match (
        key.get("kty").and_then(Value::as_str),
        key.get("crv").and_then(Value::as_str),
    ) {
        (Some("RSA"), _) => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        (Some("EC"), Some("P-256")) => &["ES256"],
        (Some("EC"), Some("P-384")) => &["ES384"],
        (Some("EC"), Some("P-521")) => &["ES512"],
        (Some("OKP"), Some("Ed25519")) => &["EdDSA"],
        _ => &[],
    }
}

fn member(key: &Map<String, Value>, name: &str) -> Result<Vec<u8>, VerifyError> {
    key.get(name)
        .and_then(Value::as_str)
        .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
        .ok_or(VerifyError::Signature)
}

fn verify_signature(
    key: &Map<String, Value>,
    alg: &str,
    message: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
    let ok = match (kty, alg) {
        ("RSA", _) => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(VerifyError::Signature),
            };
            let components = signature::RsaPublicKeyComponents {
                n: member(key, "n")?,
                e: member(key, "e")?,
            };
            components.verify(params, message, sig).is_ok()
        }
        ("EC", "ES256" | "ES384") => {
            let (algorithm, crv): (&signature::EcdsaVerificationAlgorithm, _) = if alg == "ES256" {
                (&signature::ECDSA_P256_SHA256_FIXED, "P-256")
            } else {
                (&signature::ECDSA_P384_SHA384_FIXED, "P-384")
            };
            if key.get("crv").and_then(Value::as_str) != Some(crv) {
                return Err(VerifyError::Signature);
            }
            let mut point = vec![4u8];
            point.extend(member(key, "x")?);
            point.extend(member(key, "y")?);
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, sig)
                .is_ok()
        }
        ("OKP", "EdDSA") => {
            if key.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err(VerifyError::Signature);
            }
            UnparsedPublicKey::new(&signature::ED25519, member(key, "x")?)
                .verify(message, sig)
                .is_ok()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Signature)
    }
}

#[cfg(test)]
mod tests;
