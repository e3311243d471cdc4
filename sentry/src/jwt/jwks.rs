//! JWK sets (spec §5.5): parsing, checking against the signing key, and RFC 7638 thumbprints.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::key::PublicKey;

/// Why a JWKS does not fit the signing key; texts as upstream's (tests read the exit code only,
/// operators read the text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("failed to parse JWKS: {0}")]
    Parse(String),
    #[error("JWKS doesn't contain any keys")]
    Empty,
    #[error("JWKS doesn't contain a key with user-provided key ID {0:?}")]
    NoKeyWithId(String),
    #[error(
        "JWKS contains a key with user-provided key ID {0:?} but the key content doesn't match the signing key"
    )]
    KeyIdMismatch(String),
    #[error("JWKS doesn't contain a matching public key for the JWT signing key")]
    NoMatch,
}

/// A parsed JWK set: each key's members, in the order of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwks {
    keys: Vec<Map<String, Value>>,
}

impl Jwks {
    /// Parses `{"keys":[…]}` or a single bare JWK object.
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| JwksError::Parse(e.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(JwksError::Parse("expected a JSON object".into()));
        };
        let keys = match object.remove("keys") {
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(JwksError::Parse("\"keys\" must be an array".into())),
            None => vec![Value::Object(object)],
        };
        let keys = keys
            .into_iter()
            .map(|key| match key {
                Value::Object(key) if key.get("kty").is_some_and(Value::is_string) => Ok(key),
                _ => Err(JwksError::Parse("invalid key: missing \"kty\"".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// A set holding one key.
    pub fn single(key: Map<String, Value>) -> Self {
        Self { keys: vec![key] }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The set re-serialised (members of each key in alphabetical order), as served over OIDC.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "keys": self.keys }).to_string()
    }

    /// Checks that the set holds the signing key (spec §5.5).
    pub fn verify(&self, public: &PublicKey, key_id: Option<&str>) -> Result<(), JwksError> {
        if self.keys.is_empty() {
            return Err(JwksError::Empty);
        }
        if let Some(kid) = key_id {
            let with_kid: Vec<_> = self
                .keys
                .iter()
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .collect();
            if with_kid.is_empty() {
                return Err(JwksError::NoKeyWithId(kid.to_owned()));
            }
            if with_kid.iter().any(|k| matches_public(k, public)) {
                return Ok(());
            }
            return Err(JwksError::KeyIdMismatch(kid.to_owned()));
        }
        // PEM signing keys carry no kid, so only a content match can succeed.
        if self.keys.iter().any(|k| matches_public(k, public)) {
            Ok(())
        } else {
            Err(JwksError::NoMatch)
        }
    }
}

/// Whether a JWK holds `public`; keys whose `use` is present and not `sig` never match.
fn matches_public(key: &Map<String, Value>, public: &PublicKey) -> bool {
    if key.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return false;
    }
    let member = |name: &str| {
        key.get(name)
            .and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
    };
    let kty = key.get("kty").and_then(Value::as_str);
    let crv = key.get("crv").and_then(Value::as_str);
    match public {
        PublicKey::Rsa { n, e } => {
            kty == Some("RSA")
                && member("n").is_some_and(|v| strip_zeros(&v) == n.as_slice())
                && member("e").is_some_and(|v| strip_zeros(&v) == e.as_slice())
        }
        PublicKey::Ec { crv: c, x, y } => {
            kty == Some("EC")
                && crv == Some(*c)
                && member("x").is_some_and(|v| strip_zeros(&v) == strip_zeros(x))
                && member("y").is_some_and(|v| strip_zeros(&v) == strip_zeros(y))
        }
        PublicKey::Ed25519(x) => {
            kty == Some("OKP") && crv == Some("Ed25519") && member("x").as_deref() == Some(x)
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The public JWK members of `public` (the RFC 7638 required members only).
pub fn public_members(public: &PublicKey) -> Map<String, Value> {
    let b64 = |v: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(v));
    let mut m = Map::new();
    match public {
        PublicKey::Rsa { n, e } => {
            m.insert("e".into(), b64(e));
            m.insert("kty".into(), "RSA".into());
            m.insert("n".into(), b64(n));
        }
        PublicKey::Ec { crv, x, y } => {
            m.insert("crv".into(), (*crv).into());
            m.insert("kty".into(), "EC".into());
            m.insert("x".into(), b64(x));
            m.insert("y".into(), b64(y));
        }
        PublicKey::Ed25519(x) => {
            m.insert("crv".into(), "Ed25519".into());
            m.insert("kty".into(), "OKP".into());
            m.insert("x".into(), b64(x));
        }
    }
    m
}

/// The RFC 7638 SHA-256 thumbprint, as Go sentry prints it: **standard** base64 with padding.
pub fn thumbprint_kid(public: &PublicKey) -> String {
    // The required members, lexicographically ordered, no whitespace: serde_json's default map
    // is ordered, so this is the RFC's canonical form.
    let canonical = Value::Object(public_members(public)).to_string();
    STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}
