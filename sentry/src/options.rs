//! Every flag of upstream's `sentry` (dapr/dapr `cmd/sentry/options` at v1.18.3).

use clap::{ArgAction, Parser};
use dapr_flags::{
    GoDuration,
    groups::{HealthzArgs, LogArgs, MetricsArgs, go_bool},
};

/// Sentry's command line.
#[derive(Parser, Clone, Debug)]
#[command(name = "sentry", about = "Dapr mTLS certificate authority", version)]
pub struct Options {
    /// standalone: path to a Configuration YAML file; kubernetes: name of a Configuration object.
    #[arg(long = "config", default_value = "daprsystem")]
    pub config: String,

    /// Directory holding the CA files (watched for changes).
    #[arg(
        long = "issuer-credentials",
        default_value = "/var/run/secrets/dapr.io/credentials"
    )]
    pub issuer_credentials: String,

    /// Root (trust anchors) certificate file name.
    #[arg(long = "issuer-ca-filename", default_value = "ca.crt")]
    pub issuer_ca_filename: String,

    /// Issuer certificate file name.
    #[arg(long = "issuer-certificate-filename", default_value = "issuer.crt")]
    pub issuer_certificate_filename: String,

    /// Issuer private key file name.
    #[arg(long = "issuer-key-filename", default_value = "issuer.key")]
    pub issuer_key_filename: String,

    /// Control-plane trust domain.
    #[arg(long = "trust-domain", default_value = "localhost")]
    pub trust_domain: String,

    /// gRPC CA port.
    #[arg(long = "port", default_value_t = 50001)]
    pub port: u16,

    /// gRPC bind host ("" = all interfaces).
    #[arg(long = "listen-address", default_value = "")]
    pub listen_address: String,

    /// standalone or kubernetes.
    #[arg(long = "mode", default_value = "standalone")]
    pub mode: String,

    /// Path to a kubeconfig, used out of cluster (default $HOME/.kube/config).
    #[arg(long = "kubeconfig")]
    pub kubeconfig: Option<String>,

    /// Issue JWT-SVIDs in SignCertificate responses.
    #[arg(long = "jwt-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub jwt_enabled: bool,

    /// JWT signing key (only an absolute path is honoured, as upstream).
    #[arg(long = "jwt-key-filename", default_value = "jwt.key")]
    pub jwt_key_filename: String,

    /// JWKS file (only an absolute path is honoured, as upstream).
    #[arg(long = "jwks-filename", default_value = "jwks.json")]
    pub jwks_filename: String,

    /// `iss` claim; given at all (even empty) means set.
    #[arg(long = "jwt-issuer")]
    pub jwt_issuer: Option<String>,

    /// JWS algorithm (case-sensitive).
    #[arg(long = "jwt-signing-algorithm", default_value = "RS256")]
    pub jwt_signing_algorithm: String,

    /// `kid` to use when the signing key has none.
    #[arg(long = "jwt-key-id")]
    pub jwt_key_id: Option<String>,

    /// JWT lifetime.
    #[arg(long = "jwt-ttl", default_value = "24h")]
    pub jwt_ttl: GoDuration,

    /// Start the OIDC discovery HTTP server (with --jwt-enabled).
    #[arg(long = "oidc-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub oidc_enabled: bool,

    #[arg(long = "oidc-server-listen-port", default_value_t = 9080)]
    pub oidc_server_listen_port: u16,

    #[arg(long = "oidc-server-listen-address", default_value = "localhost")]
    pub oidc_server_listen_address: String,

    /// Require a TLS cert and key for the OIDC server.
    #[arg(long = "oidc-server-tls-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub oidc_server_tls_enabled: bool,

    #[arg(long = "oidc-server-tls-cert-file")]
    pub oidc_server_tls_cert_file: Option<String>,

    #[arg(long = "oidc-server-tls-key-file")]
    pub oidc_server_tls_key_file: Option<String>,

    /// Forces `jwks_uri` in the discovery document.
    #[arg(long = "oidc-jwks-uri")]
    pub oidc_jwks_uri: Option<String>,

    /// Prefix for the OIDC routes.
    #[arg(long = "oidc-path-prefix")]
    pub oidc_path_prefix: Option<String>,

    /// Host allow-list (comma separated, repeatable).
    #[arg(long = "oidc-allowed-hosts", value_delimiter = ',', action = ArgAction::Append)]
    pub oidc_allowed_hosts: Vec<String>,

    #[command(flatten)]
    pub healthz: HealthzArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Positional arguments pflag would collect and ignore.
    #[arg(hide = true)]
    pub ignored_args: Vec<String>,
}

/// Sentry's run mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Kubernetes,
}

/// Invalid option combinations, checked in upstream's order; each is fatal (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("Invalid options: invalid mode: {0}")]
    InvalidMode(String),
    #[error(
        "Invalid options: oidc-server-tls-cert-file is required when OIDC HTTP server is enabled (unless oidc-server-tls-enabled is false)"
    )]
    OidcCertRequired,
    #[error(
        "Invalid options: oidc-server-tls-key-file is required when OIDC HTTP server is enabled (unless oidc-server-tls-enabled is false)"
    )]
    OidcKeyRequired,
    #[error("Invalid options: jwt-issuer cannot be set when jwt-enabled is false")]
    IssuerWithoutJwt,
    #[error("both OIDC TLS certificate and key must be provided if one is specified")]
    OidcCertKeyPair,
}

impl Options {
    /// Parses the process's argv, Go style.
    pub fn from_args() -> Self {
        dapr_flags::parse()
    }

    /// Checks the options in upstream's order; the first failure wins.
    pub fn validate(&self) -> Result<Mode, OptionsError> {
        let mode = match self.mode.as_str() {
            "standalone" => Mode::Standalone,
            "kubernetes" => Mode::Kubernetes,
            other => return Err(OptionsError::InvalidMode(other.to_owned())),
        };
        if self.oidc_enabled && self.oidc_server_tls_enabled {
            if self.oidc_server_tls_cert_file.is_none() {
                return Err(OptionsError::OidcCertRequired);
            }
            if self.oidc_server_tls_key_file.is_none() {
                return Err(OptionsError::OidcKeyRequired);
            }
        }
        if self.jwt_issuer.is_some() && !self.jwt_enabled {
            return Err(OptionsError::IssuerWithoutJwt);
        }
        if self.oidc_server_tls_cert_file.is_some() != self.oidc_server_tls_key_file.is_some() {
            return Err(OptionsError::OidcCertKeyPair);
        }
        Ok(mode)
    }

    /// The kubeconfig path: the flag, else `$HOME/.kube/config`, else none.
    pub fn kubeconfig_path(&self) -> Option<String> {
        self.kubeconfig.clone().or_else(|| {
            std::env::var("HOME")
                .ok()
                .filter(|h| !h.is_empty())
                .map(|h| format!("{h}/.kube/config"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Options {
        dapr_flags::try_parse_from::<Options, _, _>(
            std::iter::once("sentry").chain(args.iter().copied()),
        )
        .unwrap()
    }

    #[test]
    fn defaults_match_upstream() {
        let o = parse(&[]);
        assert_eq!(o.config, "daprsystem");
        assert_eq!(o.issuer_credentials, "/var/run/secrets/dapr.io/credentials");
        assert_eq!(o.port, 50001);
        assert_eq!(o.trust_domain, "localhost");
        assert_eq!(o.jwt_ttl.get(), Duration::from_secs(24 * 3600));
        assert_eq!(o.jwt_signing_algorithm, "RS256");
        assert_eq!(o.oidc_server_listen_port, 9080);
        assert_eq!(o.oidc_server_listen_address, "localhost");
        assert!(o.oidc_server_tls_enabled);
        assert_eq!(o.validate(), Ok(Mode::Standalone));
    }

    #[test]
    fn the_integration_harness_command_line_parses() {
        let o = parse(&[
            "-log-level=info",
            "-port=40001",
            "-issuer-ca-filename=ca.crt",
            "-issuer-certificate-filename=issuer.crt",
            "-issuer-key-filename=issuer.key",
            "-metrics-port=40002",
            "-metrics-listen-address=127.0.0.1",
            "-healthz-port=40003",
            "-healthz-listen-address=127.0.0.1",
            "-listen-address=127.0.0.1",
            "-issuer-credentials=/tmp/creds",
            "-config=/tmp/sentry.yaml",
            "-trust-domain=integration.test.dapr.io",
            "-jwt-enabled=true",
            "-jwt-ttl=2h",
            "-jwt-issuer=https://localhost:1234",
            "-oidc-enabled=true",
            "-oidc-server-listen-port=40004",
            "-oidc-server-tls-enabled=false",
            "-oidc-allowed-hosts=localhost,example.com",
            "-oidc-allowed-hosts=api.example.com",
        ]);
        assert_eq!(o.port, 40001);
        assert_eq!(o.metrics.port(), Ok(40002));
        assert_eq!(o.healthz.healthz_port, 40003);
        assert_eq!(o.config, "/tmp/sentry.yaml");
        assert!(o.jwt_enabled);
        assert_eq!(o.jwt_ttl.get(), Duration::from_secs(7200));
        assert_eq!(o.jwt_issuer.as_deref(), Some("https://localhost:1234"));
        assert_eq!(
            o.oidc_allowed_hosts,
            ["localhost", "example.com", "api.example.com"]
        );
        assert_eq!(o.validate(), Ok(Mode::Standalone));
    }

    #[test]
    fn the_helm_chart_command_line_parses() {
        let o = parse(&[
            "--mode",
            "kubernetes",
            "--log-level",
            "info",
            "--log-as-json",
            "--enable-metrics",
            "--metrics-port",
            "9090",
            "--trust-domain",
            "cluster.local",
            "--jwt-enabled=true",
            "--jwt-key-filename=/tmp/jwt.key",
            "--jwks-filename=/tmp/jwt.jwks",
            "--jwt-issuer=dapr.io",
            "--jwt-signing-algorithm=RS256",
            "--jwt-key-id=jwt-key-id",
            "--oidc-enabled=true",
            "--oidc-server-listen-address=0.0.0.0",
            "--oidc-jwks-uri=/v1/jwks",
            "--oidc-path-prefix=/v1",
            "--oidc-allowed-hosts=dapr.io",
            "--oidc-server-tls-cert-file=/c",
            "--oidc-server-tls-key-file=/k",
            "--oidc-server-tls-enabled=true",
        ]);
        assert_eq!(o.validate(), Ok(Mode::Kubernetes));
        assert!(o.log.log_as_json);
        assert_eq!(o.jwt_key_id.as_deref(), Some("jwt-key-id"));
    }

    #[test]
    fn option_checks_run_in_upstreams_order() {
        assert_eq!(
            parse(&["--mode=cloud", "--jwt-issuer=x"]).validate(),
            Err(OptionsError::InvalidMode("cloud".into()))
        );
        assert_eq!(
            parse(&["--oidc-enabled"])
                .validate()
                .unwrap_err()
                .to_string(),
            "Invalid options: oidc-server-tls-cert-file is required when OIDC HTTP server is enabled (unless oidc-server-tls-enabled is false)"
        );
        assert_eq!(
            parse(&["--oidc-enabled", "--oidc-server-tls-cert-file=/c"]).validate(),
            Err(OptionsError::OidcKeyRequired)
        );
        assert_eq!(
            parse(&["--jwt-issuer="]).validate(),
            Err(OptionsError::IssuerWithoutJwt)
        );
        assert_eq!(
            parse(&["--oidc-server-tls-key-file="]).validate(),
            Err(OptionsError::OidcCertKeyPair)
        );
        assert_eq!(
            parse(&[
                "--oidc-enabled",
                "--jwt-enabled",
                "--oidc-server-tls-enabled=false"
            ])
            .validate(),
            Ok(Mode::Standalone)
        );
    }
}
