//! SPIFFE trust-domain syntax, as go-spiffe v2.6 `spiffeid.TrustDomainFromString` checks it
//! (default build: no back-compat characters).
//!
//! This belongs in `dapr-security` once that crate has a trust-domain type; it lives here until
//! then because only the injector's start-up check needs it.

/// Why a string is not a trust domain (go-spiffe's texts).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustDomainError {
    #[error("trust domain is missing")]
    Missing,
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
    )]
    BadTrustDomainChar,
    #[error("scheme is missing or invalid")]
    WrongScheme,
    #[error("path cannot contain empty segments")]
    EmptySegment,
    #[error("path cannot contain dot segments")]
    DotSegment,
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
    )]
    BadPathSegmentChar,
}

const SCHEME: &str = "spiffe://";

/// Returns the trust domain named by `id_or_name`: a bare name (`example.org`) or, when it
/// contains `:/`, a SPIFFE ID (`spiffe://example.org/path`).
pub fn parse(id_or_name: &str) -> Result<&str, TrustDomainError> {
    if id_or_name.is_empty() {
        return Err(TrustDomainError::Missing);
    }
    if !id_or_name.contains(":/") {
        return if id_or_name.bytes().all(is_trust_domain_char) {
            Ok(id_or_name)
        } else {
            Err(TrustDomainError::BadTrustDomainChar)
        };
    }
    let rest = id_or_name
        .strip_prefix(SCHEME)
        .ok_or(TrustDomainError::WrongScheme)?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (domain, path) = rest.split_at(end);
    if !domain.bytes().all(is_trust_domain_char) {
        return Err(TrustDomainError::BadTrustDomainChar);
    }
    if domain.is_empty() {
        return Err(TrustDomainError::Missing);
    }
    validate_path(path)?;
    Ok(domain)
}

fn is_trust_domain_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
}

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')
}

/// `path` is empty or starts with `/` (it follows the trust domain up to the first `/`).
fn validate_path(path: &str) -> Result<(), TrustDomainError> {
    if path.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if !segment.bytes().all(is_path_char) {
            return Err(TrustDomainError::BadPathSegmentChar);
        }
        match *segment {
            "" if i == last => return Err(TrustDomainError::TrailingSlash),
            "" => return Err(TrustDomainError::EmptySegment),
            "." | ".." => return Err(TrustDomainError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_spiffe_ids_give_their_trust_domain() {
        assert_eq!(
            parse("integration.test.dapr.io"),
            Ok("integration.test.dapr.io")
        );
        assert_eq!(parse("cluster.local"), Ok("cluster.local"));
        assert_eq!(parse("spiffe://example.org"), Ok("example.org"));
        assert_eq!(
            parse("spiffe://example.org/ns/default/app"),
            Ok("example.org")
        );
    }

    #[test]
    fn invalid_trust_domains_are_rejected_with_go_spiffes_texts() {
        assert_eq!(parse(""), Err(TrustDomainError::Missing));
        assert_eq!(
            parse("Cluster.Local").unwrap_err().to_string(),
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
        );
        assert_eq!(
            parse("http://example.org"),
            Err(TrustDomainError::WrongScheme)
        );
        assert_eq!(parse("spiffe://"), Err(TrustDomainError::Missing));
        assert_eq!(parse("spiffe:///path"), Err(TrustDomainError::Missing));
        assert_eq!(
            parse("spiffe://ex ample"),
            Err(TrustDomainError::BadTrustDomainChar)
        );
        assert_eq!(
            parse("spiffe://example.org/"),
            Err(TrustDomainError::TrailingSlash)
        );
        assert_eq!(
            parse("spiffe://example.org//a"),
            Err(TrustDomainError::EmptySegment)
        );
        assert_eq!(
            parse("spiffe://example.org/a/.."),
            Err(TrustDomainError::DotSegment)
        );
        assert_eq!(
            parse("spiffe://example.org/a b"),
            Err(TrustDomainError::BadPathSegmentChar)
        );
    }
}
