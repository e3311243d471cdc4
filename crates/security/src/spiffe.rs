//! SPIFFE trust domains and IDs with go-spiffe v2's validation rules and error messages.

use std::fmt;

const SCHEME_PREFIX: &str = "spiffe://";

/// Why a trust domain, ID or path segment is invalid (texts as go-spiffe's `spiffeid` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeError {
    #[error("cannot be empty")]
    Empty,
    #[error("scheme is missing or invalid")]
    WrongScheme,
    #[error("trust domain is missing")]
    MissingTrustDomain,
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
    )]
    BadTrustDomainChar,
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

/// A validated SPIFFE trust domain name (`[a-z0-9._-]+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parses a trust domain name, or takes the trust domain of a `spiffe://…` ID
    /// (go-spiffe `TrustDomainFromString`).
    pub fn parse(id_or_name: &str) -> Result<Self, SpiffeError> {
        if id_or_name.is_empty() {
            return Err(SpiffeError::MissingTrustDomain);
        }
        if id_or_name.contains(":/") {
            return SpiffeId::parse(id_or_name).map(|id| id.trust_domain().clone());
        }
        if !id_or_name.bytes().all(is_trust_domain_char) {
            return Err(SpiffeError::BadTrustDomainChar);
        }
        Ok(Self(id_or_name.to_owned()))
    }

    /// The trust domain name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain's own ID, `spiffe://<td>`.
    pub fn id_string(&self) -> String {
        format!("{SCHEME_PREFIX}{}", self.0)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated SPIFFE ID: `spiffe://<trust domain><path>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    /// Empty or `/seg(/seg)*`.
    path: String,
}

impl SpiffeId {
    /// Parses a SPIFFE ID string (go-spiffe `spiffeid.FromString`).
    pub fn parse(id: &str) -> Result<Self, SpiffeError> {
        if id.is_empty() {
            return Err(SpiffeError::Empty);
        }
        let rest = id
            .strip_prefix(SCHEME_PREFIX)
            .ok_or(SpiffeError::WrongScheme)?;
        let (td, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if td.is_empty() {
            return Err(SpiffeError::MissingTrustDomain);
        }
        if !td.bytes().all(is_trust_domain_char) {
            return Err(SpiffeError::BadTrustDomainChar);
        }
        validate_path(path)?;
        Ok(Self {
            trust_domain: TrustDomain(td.to_owned()),
            path: path.to_owned(),
        })
    }

    /// Builds `spiffe://<td>/<seg>/<seg>…`, validating every segment (go-spiffe `FromSegments`).
    pub fn from_segments(td: &TrustDomain, segments: &[&str]) -> Result<Self, SpiffeError> {
        let mut path = String::new();
        for segment in segments {
            validate_path_segment(segment)?;
            path.push('/');
            path.push_str(segment);
        }
        Ok(Self {
            trust_domain: td.clone(),
            path,
        })
    }

    /// The Dapr workload ID `spiffe://<td>/ns/<namespace>/<app id>`.
    pub fn workload(td: &TrustDomain, namespace: &str, app_id: &str) -> Result<Self, SpiffeError> {
        Self::from_segments(td, &["ns", namespace, app_id])
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path (empty or starting with `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The namespace and app id of a Dapr workload id (`/ns/<namespace>/<app-id>[/...]`).
    pub fn namespace_and_app(&self) -> Option<(&str, &str)> {
        workload_of_path(&self.path)
    }
}

/// The namespace and app id named by a SPIFFE path `/ns/<namespace>/<app-id>[/...]` (extra
/// segments allowed), or `None` when it names no namespace and app.
pub fn workload_of_path(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.split('/');
    if parts.next() != Some("") || parts.next() != Some("ns") {
        return None;
    }
    let namespace = parts.next().filter(|s| !s.is_empty())?;
    let app_id = parts.next().filter(|s| !s.is_empty())?;
    Some((namespace, app_id))
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME_PREFIX}{}{}", self.trust_domain, self.path)
    }
}

fn validate_path(path: &str) -> Result<(), SpiffeError> {
    if path.is_empty() {
        return Ok(());
    }
    if !path.starts_with('/') {
        return Err(SpiffeError::BadPathSegmentChar);
    }
    if path.ends_with('/') {
        // go-spiffe v2.6 `ValidatePath`: "//" is an empty segment, "/" and "/a/" a trailing slash.
        return Err(if path.ends_with("//") {
            SpiffeError::EmptySegment
        } else {
            SpiffeError::TrailingSlash
        });
    }
    path[1..].split('/').try_for_each(validate_path_segment)
}

/// One path segment: non-empty, not `.`/`..`, chars `[A-Za-z0-9._-]`.
pub fn validate_path_segment(segment: &str) -> Result<(), SpiffeError> {
    match segment {
        "" => Err(SpiffeError::EmptySegment),
        "." | ".." => Err(SpiffeError::DotSegment),
        s if s.bytes().all(is_path_segment_char) => Ok(()),
        _ => Err(SpiffeError::BadPathSegmentChar),
    }
}

fn is_trust_domain_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_')
}

fn is_path_segment_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domains_parse_from_names_and_spiffe_ids_as_the_injector_checks_them() {
        assert_eq!(
            TrustDomain::parse("integration.test.dapr.io").map(|t| t.as_str().to_owned()),
            Ok("integration.test.dapr.io".to_owned())
        );
        assert_eq!(
            TrustDomain::parse("cluster.local").map(|t| t.as_str().to_owned()),
            Ok("cluster.local".to_owned())
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org").map(|t| t.as_str().to_owned()),
            Ok("example.org".to_owned())
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org/ns/default/app")
                .map(|t| t.as_str().to_owned()),
            Ok("example.org".to_owned())
        );
    }

    #[test]
    fn invalid_control_plane_trust_domains_are_rejected_with_go_spiffes_texts() {
        assert_eq!(TrustDomain::parse(""), Err(SpiffeError::MissingTrustDomain));
        assert_eq!(
            TrustDomain::parse("Cluster.Local").unwrap_err().to_string(),
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
        );
        assert_eq!(
            TrustDomain::parse("http://example.org"),
            Err(SpiffeError::WrongScheme)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://"),
            Err(SpiffeError::MissingTrustDomain)
        );
        assert_eq!(
            TrustDomain::parse("spiffe:///path"),
            Err(SpiffeError::MissingTrustDomain)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://ex ample"),
            Err(SpiffeError::BadTrustDomainChar)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org/"),
            Err(SpiffeError::TrailingSlash)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org//a"),
            Err(SpiffeError::EmptySegment)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org/a/.."),
            Err(SpiffeError::DotSegment)
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org/a b"),
            Err(SpiffeError::BadPathSegmentChar)
        );
    }

    #[test]
    fn trust_domains_follow_go_spiffe_rules() {
        assert_eq!(TrustDomain::parse("public").unwrap().as_str(), "public");
        assert_eq!(
            TrustDomain::parse("integration.test-dapr_io")
                .unwrap()
                .as_str(),
            "integration.test-dapr_io"
        );
        assert_eq!(TrustDomain::parse(""), Err(SpiffeError::MissingTrustDomain));
        assert_eq!(
            TrustDomain::parse("Upper").unwrap_err().to_string(),
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
        );
        assert_eq!(
            TrustDomain::parse("spiffe://td/ns/x").unwrap().as_str(),
            "td"
        );
        assert_eq!(
            TrustDomain::parse("http://td"),
            Err(SpiffeError::WrongScheme)
        );
    }

    #[test]
    fn ids_parse_and_print_round_trip() {
        let id = SpiffeId::parse("spiffe://localhost/ns/default/dapr-sentry").unwrap();
        assert_eq!(id.trust_domain().as_str(), "localhost");
        assert_eq!(id.path(), "/ns/default/dapr-sentry");
        assert_eq!(id.to_string(), "spiffe://localhost/ns/default/dapr-sentry");
        assert_eq!(SpiffeId::parse("spiffe://td").unwrap().path(), "");
    }

    #[test]
    fn invalid_ids_name_the_problem() {
        assert_eq!(SpiffeId::parse(""), Err(SpiffeError::Empty));
        assert_eq!(SpiffeId::parse("spiffe:/td"), Err(SpiffeError::WrongScheme));
        assert_eq!(
            SpiffeId::parse("spiffe:///a"),
            Err(SpiffeError::MissingTrustDomain)
        );
        assert_eq!(
            SpiffeId::parse("spiffe://td/"),
            Err(SpiffeError::TrailingSlash)
        );
        assert_eq!(
            SpiffeId::parse("spiffe://td/a//b"),
            Err(SpiffeError::EmptySegment)
        );
        assert_eq!(
            SpiffeId::parse("spiffe://td/a/"),
            Err(SpiffeError::TrailingSlash)
        );
        assert_eq!(
            SpiffeId::parse("spiffe://td/a/../b"),
            Err(SpiffeError::DotSegment)
        );
        assert_eq!(
            SpiffeId::parse("spiffe://td/a b").unwrap_err().to_string(),
            "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
        );
    }

    #[test]
    fn workload_ids_validate_every_segment() {
        let td = TrustDomain::parse("public").unwrap();
        assert_eq!(
            SpiffeId::workload(&td, "default", "myapp")
                .unwrap()
                .to_string(),
            "spiffe://public/ns/default/myapp"
        );
        assert_eq!(
            SpiffeId::workload(&td, "", "a"),
            Err(SpiffeError::EmptySegment)
        );
        assert_eq!(
            SpiffeId::workload(&td, "ns", ".."),
            Err(SpiffeError::DotSegment)
        );
        assert_eq!(
            SpiffeId::workload(&td, "ns", "my:app"),
            Err(SpiffeError::BadPathSegmentChar)
        );
        let long = "n".repeat(253);
        assert!(SpiffeId::workload(&td, &long, "a").is_ok());
    }
}
