//! PEM decoding with dapr/kit `crypto/pem`'s rules: certificate lists stop at the first block that
//! is not a `CERTIFICATE`; private keys are PKCS#8, SEC1 (`EC PRIVATE KEY`) or PKCS#1
//! (`RSA PRIVATE KEY`) and are kept as PKCS#8.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der;

/// Why PEM input could not be decoded (texts as upstream's kit where tests check them).
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("no certificates found")]
    NoCertificates,
    #[error("failed to parse certificate: {0}")]
    BadCertificate(String),
    #[error("certificate chain is not valid")]
    InvalidChain,
    #[error("key is not PEM encoded")]
    KeyNotPem,
    #[error("unsupported block type {0}")]
    UnsupportedBlockType(String),
    #[error("failed to parse private key: {0}")]
    BadKey(&'static str),
}

/// A DER certificate that parsed once with x509-parser.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Certificate {
    /// Checks that `der` is a certificate and keeps it.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PemError> {
        X509Certificate::from_der(&der).map_err(|e| PemError::BadCertificate(e.to_string()))?;
        Ok(Self { der })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed view (always succeeds: checked at construction).
    pub fn parsed(&self) -> X509Certificate<'_> {
        match X509Certificate::from_der(&self.der) {
            Ok((_, cert)) => cert,
            Err(_) => unreachable!("certificate DER was validated on construction"),
        }
    }

    /// Whether `issuer`'s key verifies this certificate's signature (Go `CheckSignatureFrom`,
    /// without its CA flag checks).
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        let issuer = issuer.parsed();
        self.parsed()
            .verify_signature(Some(issuer.public_key()))
            .is_ok()
    }

    /// Whether the certificate verifies with its own key.
    pub fn is_self_signed(&self) -> bool {
        self.parsed().verify_signature(None).is_ok()
    }

    /// PEM `CERTIFICATE` block ending in a newline.
    pub fn to_pem(&self) -> String {
        encode_block("CERTIFICATE", &self.der)
    }
}

/// Encodes one PEM block (64-char lines, `\n` endings), as Go's `pem.EncodeToMemory`.
pub fn encode_block(tag: &str, der: &[u8]) -> String {
    let p = pem::Pem::new(tag, der.to_vec());
    pem::encode_config(
        &p,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Every leading `CERTIFICATE` block (kit `DecodePEMCertificates`); none → `no certificates found`.
pub fn decode_certificates(input: &[u8]) -> Result<Vec<Certificate>, PemError> {
    let blocks = pem::parse_many(input).unwrap_or_default();
    let certs = blocks
        .into_iter()
        .take_while(|b| b.tag() == "CERTIFICATE")
        .map(|b| Certificate::from_der(b.into_contents()))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(PemError::NoCertificates);
    }
    Ok(certs)
}

/// Certificates where each is signed by the next (kit `DecodePEMCertificatesChain`).
pub fn decode_certificate_chain(input: &[u8]) -> Result<Vec<Certificate>, PemError> {
    let certs = decode_certificates(input)?;
    if certs.windows(2).any(|w| !w[0].is_signed_by(&w[1])) {
        return Err(PemError::InvalidChain);
    }
    Ok(certs)
}

/// Concatenated PEM of `certs`.
pub fn encode_certificates<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> String {
    certs.into_iter().map(Certificate::to_pem).collect()
}

/// Private key algorithms Dapr uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa,
}

/// A private key held as PKCS#8 DER.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Decodes the first PEM block of `input` (kit `DecodePEMPrivateKey`).
    pub fn from_pem(input: &[u8]) -> Result<Self, PemError> {
        let block = pem::parse_many(input)
            .ok()
            .and_then(|b| b.into_iter().next())
            .ok_or(PemError::KeyNotPem)?;
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8(block.into_contents()),
            "EC PRIVATE KEY" => Self::from_sec1(block.contents()),
            "RSA PRIVATE KEY" => Self::from_pkcs1(block.contents()),
            other => Err(PemError::UnsupportedBlockType(other.to_owned())),
        }
    }

    /// A PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self, PemError> {
        let items = der::sequence_items(&pkcs8).ok_or(PemError::BadKey("malformed PKCS#8"))?;
        let alg = items
            .get(1)
            .filter(|t| t.tag == 0x30)
            .ok_or(PemError::BadKey("malformed PKCS#8 algorithm"))?;
        let (oid, params) = der::read_tlv(alg.value).ok_or(PemError::BadKey("malformed OID"))?;
        let algorithm = match oid.raw {
            der::OID_ED25519 => KeyAlgorithm::Ed25519,
            der::OID_RSA => KeyAlgorithm::Rsa,
            der::OID_EC => curve(params)?,
            _ => return Err(PemError::BadKey("unknown PKCS#8 key algorithm")),
        };
        Ok(Self { algorithm, pkcs8 })
    }

    fn from_sec1(sec1: &[u8]) -> Result<Self, PemError> {
        let items = der::sequence_items(sec1).ok_or(PemError::BadKey("malformed EC key"))?;
        let params = items
            .iter()
            .find(|t| t.tag == 0xa0)
            .ok_or(PemError::BadKey("EC key without curve parameters"))?;
        let algorithm = curve(params.value)?;
        let mut alg = der::OID_EC.to_vec();
        alg.extend_from_slice(params.value);
        Ok(Self {
            algorithm,
            pkcs8: der::pkcs8_wrap(&alg, sec1),
        })
    }

    fn from_pkcs1(pkcs1: &[u8]) -> Result<Self, PemError> {
        der::sequence_items(pkcs1).ok_or(PemError::BadKey("malformed RSA key"))?;
        let mut alg = der::OID_RSA.to_vec();
        alg.extend_from_slice(&[0x05, 0x00]);
        Ok(Self {
            algorithm: KeyAlgorithm::Rsa,
            pkcs8: der::pkcs8_wrap(&alg, pkcs1),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PKCS#8 PEM (`PRIVATE KEY`).
    pub fn to_pem(&self) -> String {
        encode_block("PRIVATE KEY", &self.pkcs8)
    }
}

fn curve(params: &[u8]) -> Result<KeyAlgorithm, PemError> {
    let (oid, _) = der::read_tlv(params).ok_or(PemError::BadKey("missing curve"))?;
    match oid.raw {
        der::OID_P256 => Ok(KeyAlgorithm::EcdsaP256),
        der::OID_P384 => Ok(KeyAlgorithm::EcdsaP384),
        der::OID_P521 => Ok(KeyAlgorithm::EcdsaP521),
        _ => Err(PemError::BadKey("unsupported elliptic curve")),
    }
}

#[cfg(test)]
mod tests;
