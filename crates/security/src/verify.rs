//! SPIFFE X.509-SVID verification with go-spiffe's `x509svid.Verify` rules, which is what Go
//! peers (daprd, the upstream control plane) apply to us and what we apply to them:
//!
//! 1. the leaf has exactly one URI SAN and it is a valid SPIFFE ID;
//! 2. the leaf is not a CA and has neither `keyCertSign` nor `cRLSign`;
//! 3. a path leaf → presented intermediates → one of the trust anchors exists, with validity
//!    times checked and no EKU restriction (Go's `ExtKeyUsageAny`) and no name check.
//!
//! Dapr uses one anchor set for every trust domain, so the leaf's trust domain does not select
//! the anchors. Path building is webpki's (`rustls-webpki`), with an EKU validator that accepts
//! any EKU list, so there is no divergence from Go on EKUs.

use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::anchors::TrustAnchors;
use crate::spiffe::{SpiffeError, SpiffeId};
use crate::tls::PROVIDER;

/// Why a presented chain is not a valid SVID (texts as go-spiffe's, prefixed `x509svid: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("x509svid: empty certificates chain")]
    EmptyChain,
    #[error("x509svid: unable to parse certificate: {0}")]
    Parse(String),
    #[error("x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN")]
    NoUriSan,
    #[error("x509svid: could not get leaf SPIFFE ID: certificate contains more than one URI SAN")]
    ManyUriSans,
    #[error("x509svid: could not get leaf SPIFFE ID: {0}")]
    BadId(#[source] SpiffeError),
    #[error("x509svid: leaf certificate with CA flag set to true")]
    LeafIsCa,
    #[error("x509svid: leaf certificate with KeyCertSign key usage")]
    LeafCertSign,
    #[error("x509svid: leaf certificate with KeyCrlSign key usage")]
    LeafCrlSign,
    #[error("x509svid: could not verify leaf certificate: {0}")]
    Path(String),
    /// The chain is a valid SVID but names someone else (go-spiffe `AuthorizeID`).
    #[error("unexpected ID \"{0}\"")]
    UnexpectedId(SpiffeId),
}

/// Verifies `chain` (leaf first) against `anchors` at `now` and returns the leaf's SPIFFE ID.
pub fn verify_svid(
    chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    now: UnixTime,
) -> Result<SpiffeId, VerifyError> {
    let (leaf, intermediates) = chain.split_first().ok_or(VerifyError::EmptyChain)?;
    let parsed = parse(leaf)?;
    let id = id_from_cert(&parsed)?;
    check_leaf_is_end_entity(&parsed)?;
    for der in intermediates {
        parse(der)?;
    }

    let end_entity =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| VerifyError::Parse(webpki_text(&e)))?;
    end_entity
        .verify_for_usage(
            PROVIDER.signature_verification_algorithms.all,
            anchors.webpki_anchors(),
            intermediates,
            now,
            AnyExtendedKeyUsage,
            None,
            None,
        )
        .map_err(|e| VerifyError::Path(webpki_text(&e)))?;
    Ok(id)
}

/// [`verify_svid`] plus the check that the ID is exactly `expected`.
pub fn verify_svid_id(
    chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    now: UnixTime,
    expected: &SpiffeId,
) -> Result<SpiffeId, VerifyError> {
    let id = verify_svid(chain, anchors, now)?;
    if &id != expected {
        return Err(VerifyError::UnexpectedId(id));
    }
    Ok(id)
}

/// The SPIFFE ID in the leaf (first) certificate of an already verified peer chain, for
/// authorizers that run after the handshake (e.g. from `ServerConnection::peer_certificates`).
pub fn peer_spiffe_id(certs: &[CertificateDer<'_>]) -> Result<SpiffeId, VerifyError> {
    let leaf = certs.first().ok_or(VerifyError::EmptyChain)?;
    id_from_cert(&parse(leaf)?)
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, VerifyError> {
    match X509Certificate::from_der(der.as_ref()) {
        Ok((_, cert)) => Ok(cert),
        Err(e) => Err(VerifyError::Parse(e.to_string())),
    }
}

/// go-spiffe `x509svid.IDFromCert`.
fn id_from_cert(cert: &X509Certificate<'_>) -> Result<SpiffeId, VerifyError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| VerifyError::Parse(e.to_string()))?;
    let mut uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    match (uris.next(), uris.next()) {
        (None, _) => Err(VerifyError::NoUriSan),
        (Some(_), Some(_)) => Err(VerifyError::ManyUriSans),
        (Some(uri), None) => SpiffeId::parse(uri).map_err(VerifyError::BadId),
    }
}

fn check_leaf_is_end_entity(cert: &X509Certificate<'_>) -> Result<(), VerifyError> {
    let bad = |e: x509_parser::error::X509Error| VerifyError::Parse(e.to_string());
    if let Some(bc) = cert.basic_constraints().map_err(bad)?
        && bc.value.ca
    {
        return Err(VerifyError::LeafIsCa);
    }
    if let Some(ku) = cert.key_usage().map_err(bad)? {
        if ku.value.key_cert_sign() {
            return Err(VerifyError::LeafCertSign);
        }
        if ku.value.crl_sign() {
            return Err(VerifyError::LeafCrlSign);
        }
    }
    Ok(())
}

/// Go's `ExtKeyUsageAny`: any (well-formed) EKU list, or none, is acceptable on every
/// certificate of the path.
struct AnyExtendedKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// Go-like texts for the path errors operators see most; webpki's debug form otherwise.
fn webpki_text(error: &webpki::Error) -> String {
    match error {
        // A candidate issuer whose signature does not check out is no issuer at all (Go reports
        // both as an unknown authority).
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            "x509: certificate signed by unknown authority".to_owned()
        }
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            format!("x509: certificate has expired or is not yet valid ({error:?})")
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
