//! Sentry's view of a Dapr `Configuration` file (spec §4): workload cert TTL, clock skew and
//! token validators.

use std::time::Duration;

use dapr_flags::GoDuration;
use serde::Deserialize;

/// Default leaf lifetime.
const DEFAULT_WORKLOAD_CERT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default backdating of NotBefore.
const DEFAULT_ALLOWED_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Token validators a request can name (`SignCertificateRequest.TokenValidator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidatorKind {
    Insecure,
    Kubernetes,
    Jwks,
}

impl ValidatorKind {
    /// The proto enum number.
    pub fn number(self) -> i32 {
        match self {
            Self::Insecure => 1,
            Self::Kubernetes => 2,
            Self::Jwks => 3,
        }
    }

    /// The enum value for a proto number.
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::Insecure),
            2 => Some(Self::Kubernetes),
            3 => Some(Self::Jwks),
            _ => None,
        }
    }

    /// Lower-case name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Insecure => "insecure",
            Self::Kubernetes => "kubernetes",
            Self::Jwks => "jwks",
        }
    }
}

/// The settings sentry uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SentryConfig {
    pub workload_cert_ttl: Duration,
    pub allowed_clock_skew: Duration,
    /// Configured `tokenValidators` (only `jwks` is allowed), with their options as strings.
    pub token_validators: Vec<(ValidatorKind, Vec<(String, String)>)>,
}

impl Default for SentryConfig {
    fn default() -> Self {
        Self {
            workload_cert_ttl: DEFAULT_WORKLOAD_CERT_TTL,
            allowed_clock_skew: DEFAULT_ALLOWED_CLOCK_SKEW,
            token_validators: Vec::new(),
        }
    }
}

/// Config errors; the app wraps them as `loading default config. couldn't find config name …`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Parse(#[source] serde_yaml::Error),
    #[error("error parsing WorkloadCertTTL duration: {0}")]
    WorkloadCertTtl(String),
    #[error("error parsing AllowedClockSkew duration: {0}")]
    AllowedClockSkew(String),
    #[error(
        "invalid token validator: the built-in 'kubernetes' and 'insecure' validators cannot be configured manually"
    )]
    BuiltinValidator,
    #[error("invalid token validator name: '{0}'; supported values: 'jwks'")]
    UnknownValidator(String),
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    mtls: Option<Mtls>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Mtls {
    #[serde(default, rename = "workloadCertTTL")]
    workload_cert_ttl: Option<String>,
    #[serde(default)]
    allowed_clock_skew: Option<String>,
    #[serde(default)]
    token_validators: Option<Vec<TokenValidator>>,
}

#[derive(Deserialize)]
struct TokenValidator {
    #[serde(default)]
    name: String,
    #[serde(default)]
    options: Option<serde_yaml::Mapping>,
}

/// Reads and parses the standalone config file.
pub fn load_file(path: &str) -> Result<SentryConfig, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(ConfigError::Read)?;
    parse(&expand_env(&raw, |k| std::env::var(k).ok()))
}

/// Parses config YAML (already env-expanded); empty input means defaults.
pub fn parse(yaml: &str) -> Result<SentryConfig, ConfigError> {
    let file: File = if yaml.trim().is_empty() {
        File::default()
    } else {
        serde_yaml::from_str::<Option<File>>(yaml)
            .map_err(ConfigError::Parse)?
            .unwrap_or_default()
    };
    let mtls = file.spec.and_then(|s| s.mtls).unwrap_or_default();
    let mut config = SentryConfig::default();
    if let Some(ttl) = mtls.workload_cert_ttl.filter(|s| !s.is_empty()) {
        config.workload_cert_ttl = parse_duration(&ttl).map_err(ConfigError::WorkloadCertTtl)?;
    }
    if let Some(skew) = mtls.allowed_clock_skew.filter(|s| !s.is_empty()) {
        config.allowed_clock_skew = parse_duration(&skew).map_err(ConfigError::AllowedClockSkew)?;
    }
    for validator in mtls.token_validators.unwrap_or_default() {
        let kind = match validator.name.to_ascii_lowercase().as_str() {
            "jwks" => ValidatorKind::Jwks,
            "kubernetes" | "insecure" => return Err(ConfigError::BuiltinValidator),
            _ => return Err(ConfigError::UnknownValidator(validator.name)),
        };
        let options = validator
            .options
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (yaml_string(&k), yaml_string(&v)))
            .collect();
        // Two `jwks` entries: the last one wins.
        config.token_validators.retain(|(k, _)| *k != kind);
        config.token_validators.push((kind, options));
    }
    Ok(config)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<GoDuration>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

fn yaml_string(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

/// `$VAR` / `${VAR}` expansion as Go's `os.ExpandEnv` (unset → empty).
pub fn expand_env(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let rest = &input[i + 1..];
        if let Some(body) = rest.strip_prefix('{') {
            if let Some(end) = body.find('}') {
                let name = &body[..end];
                out.push_str(&lookup(name).unwrap_or_default());
                for _ in 0..end + 2 {
                    chars.next();
                }
                continue;
            }
            out.push('$');
            continue;
        }
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(j, _)| j);
        if len == 0 {
            out.push('$');
            continue;
        }
        out.push_str(&lookup(&rest[..len]).unwrap_or_default());
        for _ in 0..len {
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_defaults() {
        assert_eq!(parse("").unwrap(), SentryConfig::default());
        assert_eq!(
            parse("\n\n").unwrap().workload_cert_ttl,
            Duration::from_secs(86400)
        );
    }

    #[test]
    fn mtls_durations_are_go_durations() {
        let c = parse(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  mtls:\n    workloadCertTTL: 10s\n    allowedClockSkew: 5s\n    unknown: x\n",
        )
        .unwrap();
        assert_eq!(c.workload_cert_ttl, Duration::from_secs(10));
        assert_eq!(c.allowed_clock_skew, Duration::from_secs(5));
        assert!(
            parse("spec:\n  mtls:\n    workloadCertTTL: ten\n")
                .unwrap_err()
                .to_string()
                .starts_with("error parsing WorkloadCertTTL duration: ")
        );
    }

    #[test]
    fn token_validators_allow_only_jwks() {
        let c = parse(
            "spec:\n  mtls:\n    tokenValidators:\n    - name: JWKS\n      options:\n        minRefreshInterval: 2m\n        n: 5\n",
        )
        .unwrap();
        assert_eq!(c.token_validators.len(), 1);
        assert_eq!(c.token_validators[0].0, ValidatorKind::Jwks);
        assert!(c.token_validators[0].1.contains(&("n".into(), "5".into())));
        assert_eq!(
            parse("spec:\n  mtls:\n    tokenValidators:\n    - name: insecure\n")
                .unwrap_err()
                .to_string(),
            "invalid token validator: the built-in 'kubernetes' and 'insecure' validators cannot be configured manually"
        );
        assert_eq!(
            parse("spec:\n  mtls:\n    tokenValidators:\n    - name: foo\n")
                .unwrap_err()
                .to_string(),
            "invalid token validator name: 'foo'; supported values: 'jwks'"
        );
    }

    #[test]
    fn env_expansion_follows_go() {
        let env = |k: &str| (k == "A").then(|| "1".to_owned());
        assert_eq!(expand_env("x$A-${A}$B${B}$", env), "x1-1$");
        assert_eq!(expand_env("$ a", env), "$ a");
    }
}
