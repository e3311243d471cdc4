//! The injector's environment as a typed [`InjectorConfig`] (upstream
//! `pkg/injector/service/config.go`, read with `envconfig`, plus the variables the security
//! library reads), and upstream's fatal start-up checks on it.
//!
//! Reading is a pure function of a map of variables (and of the resolv.conf text, for the
//! cluster domain) so that every rule is unit-tested without touching the process environment.
//!
//! `envconfig` semantics kept here: a variable that is set but empty counts as set (it replaces
//! a code default with `""` and satisfies `required`), except for the default-true booleans and
//! the run-as integers, which treat empty as unset.

pub mod cluster_domain;
pub mod service;
pub mod tolerations;

use std::{collections::HashMap, fmt, io};

pub use service::{Service, ServiceError};
pub use tolerations::Toleration;

/// `SIDECAR_IMAGE_PULL_POLICY`, mapped as upstream maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Never,
    IfNotPresent,
}

impl PullPolicy {
    /// `Always`/`Never`/`IfNotPresent` verbatim; anything else (even empty) is `IfNotPresent`.
    pub fn from_env_value(value: &str) -> Self {
        match value {
            "Always" => Self::Always,
            "Never" => Self::Never,
            _ => Self::IfNotPresent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::Never => "Never",
            Self::IfNotPresent => "IfNotPresent",
        }
    }
}

/// The actors service injected sidecars are pointed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorsService {
    /// `ACTORS_SERVICE_NAME`, `placement` when empty.
    pub name: String,
    pub service: Service,
}

/// A configured reminders service (`REMINDERS_SERVICE_NAME` non-empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemindersService {
    pub name: String,
    /// Upstream quirk kept: for the name `default` the address is not parsed and stays empty
    /// (name `""`, port 0).
    pub service: Service,
}

/// Everything the injector reads from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectorConfig {
    /// `SIDECAR_IMAGE` (required): the daprd image.
    pub sidecar_image: String,
    /// `SIDECAR_IMAGE_PULL_POLICY` (default `Always`).
    pub sidecar_image_pull_policy: PullPolicy,
    /// `NAMESPACE` (required): the injector's own, control-plane namespace.
    pub namespace: String,
    /// `KUBE_CLUSTER_DOMAIN`, detected from resolv.conf when empty.
    pub kube_cluster_domain: String,
    /// `ALLOWED_SERVICE_ACCOUNTS`: comma-separated `namespace:name` glob patterns.
    pub allowed_service_accounts: String,
    /// `ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES` (deprecated): same syntax, merged in.
    pub allowed_service_accounts_prefix_names: String,
    /// `IGNORE_ENTRYPOINT_TOLERATIONS`; unparsable JSON means none (with a warning).
    pub ignore_entrypoint_tolerations: Vec<Toleration>,
    /// `ACTORS_ENABLED` (default true).
    pub actors_enabled: bool,
    /// `ACTORS_SERVICE_NAME` + `ACTORS_SERVICE_ADDRESS`.
    pub actors_service: ActorsService,
    /// `REMINDERS_SERVICE_NAME` + `REMINDERS_SERVICE_ADDRESS`; `None` = built-in reminders.
    pub reminders_service: Option<RemindersService>,
    /// `SIDECAR_RUN_AS_NON_ROOT` (default true).
    pub run_as_non_root: bool,
    /// `SIDECAR_RUN_AS_USER`; unset or empty = field omitted.
    pub run_as_user: Option<i64>,
    /// `SIDECAR_RUN_AS_GROUP`; unset or empty = field omitted.
    pub run_as_group: Option<i64>,
    /// `SIDECAR_READ_ONLY_ROOT_FILESYSTEM` (default true).
    pub read_only_root_filesystem: bool,
    /// `ENABLE_K8S_DOWNWARD_APIS` (default false).
    pub enable_k8s_downward_apis: bool,
    /// `SIDECAR_DROP_ALL_CAPABILITIES` (default false).
    pub sidecar_drop_all_capabilities: bool,
    /// `NATIVE_SIDECAR_ENABLED` (default false).
    pub native_sidecar_enabled: bool,
    /// `DAPR_TRUST_ANCHORS_FILE` (default `/var/run/dapr.io/tls/ca.crt`; the chart mounts
    /// `/var/run/secrets/dapr.io/tls/ca.crt` and sets it).
    pub trust_anchors_file: String,
    /// `DAPR_CONTROL_PLANE_TRUST_DOMAIN` (default `cluster.local`).
    pub control_plane_trust_domain: String,
    /// `DAPR_SENTRY_ADDRESS` (default `""`): where the injector gets its own certificate.
    pub sentry_address: String,
    /// `DAPR_COMPONENT_SOCKETS_FOLDER` (default `/tmp/dapr-components-sockets`).
    pub component_sockets_folder: String,
    /// `SENTRY_LOCAL_IDENTITY` when non-empty, else `dapr-injector`.
    pub sentry_identity: String,
    /// `DAPR_SENTRY_TOKEN_FILE`: an alternative sentry token file (set but empty fails every
    /// certificate request, as upstream).
    pub sentry_token_file: Option<String>,
    /// `DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK` is exactly `true`.
    pub skip_uid_gid_check: bool,
    /// Non-fatal problems found while reading, to be logged.
    pub warnings: Vec<ConfigWarning>,
}

/// Code defaults that apply when a variable is unset.
pub const DEFAULT_PULL_POLICY: PullPolicy = PullPolicy::Always;
pub const DEFAULT_TRUST_ANCHORS_FILE: &str = "/var/run/dapr.io/tls/ca.crt";
pub const DEFAULT_CONTROL_PLANE_TRUST_DOMAIN: &str = "cluster.local";
pub const DEFAULT_COMPONENT_SOCKETS_FOLDER: &str = "/tmp/dapr-components-sockets";
pub const DEFAULT_SENTRY_IDENTITY: &str = "dapr-injector";

/// A Go `strconv.Atoi` failure, with Go's text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AtoiError {
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    Syntax(String),
    #[error("strconv.Atoi: parsing {0:?}: value out of range")]
    Range(String),
}

/// Why the environment cannot be read (upstream's texts after `Error getting config: `).
///
/// The inner error's text is part of each message, as upstream formats it, so it is not also
/// exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("required key {0} missing value")]
    MissingRequired(&'static str),
    #[error("failed to parse configuration: invalid value for actor service address: {0}")]
    ActorsServiceAddress(ServiceError),
    #[error("failed to parse configuration: invalid value for reminder service address: {0}")]
    RemindersServiceAddress(ServiceError),
    #[error("failed to parse configuration: failed to parse runAsUser: {0}")]
    RunAsUser(AtoiError),
    #[error("failed to parse configuration: failed to parse runAsGroup: {0}")]
    RunAsGroup(AtoiError),
}

/// A fatal start-up error about the environment, with upstream's full text (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartupError {
    #[error("Error getting config: {0}")]
    Config(ConfigError),
    #[error("Failed to get current namespace: 'NAMESPACE' environment variable is empty")]
    EmptyNamespace,
    #[error("control plane trust domain is required")]
    TrustDomainRequired,
    #[error("invalid control plane trust domain: {0}")]
    InvalidTrustDomain(dapr_security::SpiffeError),
}

/// A problem upstream logs and then carries on from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWarning {
    /// resolv.conf could not be read; the cluster domain falls back to `cluster.local`
    /// (logged at error level upstream).
    ClusterDomain { error: String },
    /// `IGNORE_ENTRYPOINT_TOLERATIONS` is not a JSON array of tolerations; none are used.
    Tolerations { value: String, error: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClusterDomain { error } => write!(
                f,
                "Failed to get clusterDomain err:{error}, set default:{}",
                cluster_domain::DEFAULT_CLUSTER_DOMAIN
            ),
            Self::Tolerations { value, error } => {
                write!(
                    f,
                    "Couldn't parse entrypoint tolerations ({value}): {error}"
                )
            }
        }
    }
}

/// dapr/kit `IsTruthy`: trimmed, case-insensitive `y`, `yes`, `true`, `t`, `on` or `1`.
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "t" | "on" | "1"
    )
}

/// Empty (not trimmed) is true, anything else is [`is_truthy`].
fn is_truthy_default_true(value: &str) -> bool {
    value.is_empty() || is_truthy(value)
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, decimal digits.
pub fn atoi(value: &str) -> Result<i64, AtoiError> {
    use std::num::IntErrorKind::{NegOverflow, PosOverflow};
    value.parse::<i64>().map_err(|e| match e.kind() {
        PosOverflow | NegOverflow => AtoiError::Range(value.to_owned()),
        _ => AtoiError::Syntax(value.to_owned()),
    })
}

impl InjectorConfig {
    /// Reads the configuration from `vars`, in upstream's order: required keys (in struct
    /// order, so a missing `SIDECAR_IMAGE` is reported before `NAMESPACE`), the cluster domain
    /// (calling `read_resolv_conf` only when `KUBE_CLUSTER_DOMAIN` is empty), then the parsed
    /// fields.
    pub fn from_env(
        vars: &HashMap<String, String>,
        read_resolv_conf: impl FnOnce() -> io::Result<String>,
    ) -> Result<Self, ConfigError> {
        let get = |key: &str| vars.get(key).map(String::as_str);
        let or_empty = |key: &str| get(key).unwrap_or_default();
        let sidecar_image =
            get("SIDECAR_IMAGE").ok_or(ConfigError::MissingRequired("SIDECAR_IMAGE"))?;
        let namespace = get("NAMESPACE").ok_or(ConfigError::MissingRequired("NAMESPACE"))?;
        let mut warnings = Vec::new();

        let kube_cluster_domain = match or_empty("KUBE_CLUSTER_DOMAIN") {
            "" => match read_resolv_conf() {
                Ok(content) => cluster_domain::from_resolv_conf(&content),
                Err(error) => {
                    warnings.push(ConfigWarning::ClusterDomain {
                        error: error.to_string(),
                    });
                    cluster_domain::DEFAULT_CLUSTER_DOMAIN.to_owned()
                }
            },
            domain => domain.to_owned(),
        };

        let actors_service = match or_empty("ACTORS_SERVICE_NAME") {
            "" => ActorsService {
                name: "placement".to_owned(),
                service: Service::placement(),
            },
            name => ActorsService {
                name: name.to_owned(),
                service: Service::parse(or_empty("ACTORS_SERVICE_ADDRESS"))
                    .map_err(ConfigError::ActorsServiceAddress)?,
            },
        };
        let reminders_service = match or_empty("REMINDERS_SERVICE_NAME") {
            "" => None,
            "default" => Some(RemindersService {
                name: "default".to_owned(),
                service: Service {
                    name: String::new(),
                    port: 0,
                },
            }),
            name => Some(RemindersService {
                name: name.to_owned(),
                service: Service::parse(or_empty("REMINDERS_SERVICE_ADDRESS"))
                    .map_err(ConfigError::RemindersServiceAddress)?,
            }),
        };

        let raw_tolerations = or_empty("IGNORE_ENTRYPOINT_TOLERATIONS");
        let ignore_entrypoint_tolerations = if raw_tolerations.is_empty() {
            Vec::new()
        } else {
            tolerations::parse(raw_tolerations).unwrap_or_else(|error| {
                warnings.push(ConfigWarning::Tolerations {
                    value: raw_tolerations.to_owned(),
                    error: error.to_string(),
                });
                Vec::new()
            })
        };

        let optional_int = |key: &str| match or_empty(key) {
            "" => Ok(None),
            value => atoi(value).map(Some),
        };
        let run_as_user = optional_int("SIDECAR_RUN_AS_USER").map_err(ConfigError::RunAsUser)?;
        let run_as_group = optional_int("SIDECAR_RUN_AS_GROUP").map_err(ConfigError::RunAsGroup)?;

        Ok(Self {
            sidecar_image: sidecar_image.to_owned(),
            sidecar_image_pull_policy: get("SIDECAR_IMAGE_PULL_POLICY")
                .map_or(DEFAULT_PULL_POLICY, PullPolicy::from_env_value),
            namespace: namespace.to_owned(),
            kube_cluster_domain,
            allowed_service_accounts: or_empty("ALLOWED_SERVICE_ACCOUNTS").to_owned(),
            allowed_service_accounts_prefix_names: or_empty(
                "ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES",
            )
            .to_owned(),
            ignore_entrypoint_tolerations,
            actors_enabled: is_truthy_default_true(or_empty("ACTORS_ENABLED")),
            actors_service,
            reminders_service,
            run_as_non_root: is_truthy_default_true(or_empty("SIDECAR_RUN_AS_NON_ROOT")),
            run_as_user,
            run_as_group,
            read_only_root_filesystem: is_truthy_default_true(or_empty(
                "SIDECAR_READ_ONLY_ROOT_FILESYSTEM",
            )),
            enable_k8s_downward_apis: is_truthy(or_empty("ENABLE_K8S_DOWNWARD_APIS")),
            sidecar_drop_all_capabilities: is_truthy(or_empty("SIDECAR_DROP_ALL_CAPABILITIES")),
            native_sidecar_enabled: is_truthy(or_empty("NATIVE_SIDECAR_ENABLED")),
            trust_anchors_file: get("DAPR_TRUST_ANCHORS_FILE")
                .unwrap_or(DEFAULT_TRUST_ANCHORS_FILE)
                .to_owned(),
            control_plane_trust_domain: get("DAPR_CONTROL_PLANE_TRUST_DOMAIN")
                .unwrap_or(DEFAULT_CONTROL_PLANE_TRUST_DOMAIN)
                .to_owned(),
            sentry_address: or_empty("DAPR_SENTRY_ADDRESS").to_owned(),
            component_sockets_folder: get("DAPR_COMPONENT_SOCKETS_FOLDER")
                .unwrap_or(DEFAULT_COMPONENT_SOCKETS_FOLDER)
                .to_owned(),
            sentry_identity: match or_empty("SENTRY_LOCAL_IDENTITY") {
                "" => DEFAULT_SENTRY_IDENTITY.to_owned(),
                id => id.to_owned(),
            },
            sentry_token_file: get("DAPR_SENTRY_TOKEN_FILE").map(str::to_owned),
            skip_uid_gid_check: get("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK") == Some("true"),
            warnings,
        })
    }

    /// Upstream's checks after reading: the namespace must be non-empty, then the control-plane
    /// trust domain must be given and valid.
    pub fn check_identity(&self) -> Result<(), StartupError> {
        if self.namespace.is_empty() {
            return Err(StartupError::EmptyNamespace);
        }
        if self.control_plane_trust_domain.is_empty() {
            return Err(StartupError::TrustDomainRequired);
        }
        dapr_security::TrustDomain::parse(&self.control_plane_trust_domain)
            .map_err(StartupError::InvalidTrustDomain)?;
        Ok(())
    }

    /// [`InjectorConfig::from_env`] followed by [`InjectorConfig::check_identity`]: every fatal
    /// start-up check on the environment, with upstream's messages.
    pub fn load(
        vars: &HashMap<String, String>,
        read_resolv_conf: impl FnOnce() -> io::Result<String>,
    ) -> Result<Self, StartupError> {
        let config = Self::from_env(vars, read_resolv_conf).map_err(StartupError::Config)?;
        config.check_identity()?;
        Ok(config)
    }

    /// The deprecation warning upstream logs when the prefix-names variable is used.
    pub fn prefix_names_deprecation(&self) -> Option<&'static str> {
        (!self.allowed_service_accounts_prefix_names.is_empty()).then_some(
            "ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES is deprecated; use ALLOWED_SERVICE_ACCOUNTS instead, which now supports glob patterns",
        )
    }
}

#[cfg(test)]
mod tests;
