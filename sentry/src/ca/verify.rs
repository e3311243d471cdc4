//! Path verification of an issuer chain to the trust anchors, with the parts of Go's
//! `x509.Certificate.Verify` defaults that matter for a CA bundle: validity at the current time,
//! CA flags on every issuing certificate, and serverAuth-compatible EKUs.

use std::time::{SystemTime, UNIX_EPOCH};

use dapr_security::Certificate;

/// Checks that `chain[0]` verifies to one of `anchors` through `chain[1..]`. Errors read like
/// Go's `x509` errors.
pub(super) fn verify_to_anchors(
    chain: &[Certificate],
    anchors: &[Certificate],
    now: SystemTime,
) -> Result<(), String> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    for (i, cert) in chain.iter().enumerate() {
        check_cert(cert, now, i > 0)?;
    }
    let last = chain.last().ok_or("x509: empty chain")?;
    // The chain may already end in an anchor (a self-signed root left in the chain).
    if anchors.iter().any(|a| a.der() == last.der()) {
        return Ok(());
    }
    let mut signers = anchors.iter().filter(|a| last.is_signed_by(a)).peekable();
    if signers.peek().is_none() {
        return Err("x509: certificate signed by unknown authority".into());
    }
    // Any usable anchor will do; otherwise report why the first one is not.
    let mut first_error = None;
    for anchor in signers {
        match check_cert(anchor, now, true) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

fn check_cert(cert: &Certificate, now: i64, must_be_ca: bool) -> Result<(), String> {
    let parsed = cert.parsed();
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time is outside [{}, {}]",
            validity.not_before, validity.not_after
        ));
    }
    if must_be_ca && !parsed.is_ca() {
        return Err("x509: certificate is not authorized to sign other certificates".into());
    }
    if let Ok(Some(eku)) = parsed.extended_key_usage()
        && !eku.value.any
        && !eku.value.server_auth
    {
        return Err("x509: certificate specifies an incompatible key usage".into());
    }
    Ok(())
}
