//! The JWT signing key (spec §5.4): RSA, ECDSA (P-256/P-384) or Ed25519, held as a `ring` key
//! pair, with its public half in the form JWKs compare against.

use dapr_security::{KeyAlgorithm, PemError, PrivateKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

/// Why a JWT signing key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to decode JWT signing key: {0}")]
    Decode(#[source] PemError),
    #[error("failed to decode JWT signing key: {0}")]
    Rejected(String),
}

/// Why a signing algorithm does not fit the key (spec §5.5).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlgorithmError {
    #[error("JWT signing algorithm required")]
    Required,
    #[error("unsupported signature algorithm: {0}")]
    Unsupported(String),
    #[error("JWT signing key is incompatible with algorithm {alg}: {reason}")]
    Incompatible { alg: String, reason: &'static str },
}

/// The public half of a signing key, as big-endian bytes (no leading zeros for RSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A parsed signing key.
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    pair: Pair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Decodes a PEM key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = PrivateKey::from_pem(pem).map_err(KeyError::Decode)?;
        Self::from_private(&key)
    }

    /// Builds the signer from a decoded private key.
    pub fn from_private(key: &PrivateKey) -> Result<Self, KeyError> {
        let der = key.pkcs8_der();
        let rejected = |e: ring::error::KeyRejected| KeyError::Rejected(e.to_string());
        let (pair, public) = match key.algorithm() {
            KeyAlgorithm::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                let parts = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let public = PublicKey::Rsa {
                    n: strip_zeros(&parts.n).to_vec(),
                    e: strip_zeros(&parts.e).to_vec(),
                };
                (Pair::Rsa(pair), public)
            }
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let (alg, crv, len) = if key.algorithm() == KeyAlgorithm::EcdsaP256 {
                    (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pair =
                    EcdsaKeyPair::from_pkcs8(alg, der, &SystemRandom::new()).map_err(rejected)?;
                // Uncompressed point: 0x04 || X || Y.
                let point = pair.public_key().as_ref();
                let public = PublicKey::Ec {
                    crv,
                    x: point[1..1 + len].to_vec(),
                    y: point[1 + len..].to_vec(),
                };
                (Pair::Ec(pair), public)
            }
            KeyAlgorithm::EcdsaP521 => {
                return Err(KeyError::Rejected(
                    "ECDSA P-521 JWT signing keys are not supported".into(),
                ));
            }
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
                let public = PublicKey::Ed25519(pair.public_key().as_ref().to_vec());
                (Pair::Ed25519(pair), public)
            }
        };
        Ok(Self {
            algorithm: key.algorithm(),
            pair,
            public,
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Checks that `alg` (case-sensitive JWS name) can be used with this key.
    pub fn check_algorithm(&self, alg: &str) -> Result<(), AlgorithmError> {
        let wanted: &[KeyAlgorithm] = match alg {
            "" => return Err(AlgorithmError::Required),
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => &[KeyAlgorithm::Rsa],
            "ES256" => &[KeyAlgorithm::EcdsaP256],
            "ES384" => &[KeyAlgorithm::EcdsaP384],
            "ES512" => &[KeyAlgorithm::EcdsaP521],
            "EdDSA" => &[KeyAlgorithm::Ed25519],
            other => return Err(AlgorithmError::Unsupported(other.to_owned())),
        };
        if wanted.contains(&self.algorithm) {
            return Ok(());
        }
        let reason = match wanted[0] {
            KeyAlgorithm::Rsa => "expected an RSA key",
            KeyAlgorithm::EcdsaP256 => "expected an ECDSA P-256 key",
            KeyAlgorithm::EcdsaP384 => "expected an ECDSA P-384 key",
            KeyAlgorithm::EcdsaP521 => "expected an ECDSA P-521 key",
            KeyAlgorithm::Ed25519 => "expected an Ed25519 key",
        };
        Err(AlgorithmError::Incompatible {
            alg: alg.to_owned(),
            reason,
        })
    }

    /// Signs `message` with `alg` (already checked with [`Self::check_algorithm`]).
    pub fn sign(&self, alg: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    other => return Err(format!("unsupported algorithm {other} for an RSA key")),
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .map_err(|_| "RSA signing failed".to_owned())?;
                Ok(out)
            }
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_owned()),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
