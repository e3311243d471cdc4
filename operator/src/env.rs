//! The environment variables the operator reads, as a plain value built from a map so that it
//! can be tested without touching the process environment.

use std::collections::HashMap;

/// The app id the operator asks sentry for, unless `SENTRY_LOCAL_IDENTITY` overrides it.
pub const DEFAULT_SENTRY_IDENTITY: &str = "dapr-operator";

/// The operator's environment (upstream: `pkg/operator`, `pkg/security`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorEnv {
    /// `NAMESPACE`: the control-plane namespace (required, checked by [`OperatorEnv::namespace`]).
    pub namespace: Option<String>,
    /// `ENABLE_WEBHOOKS`: anything but `false` (any case) serves the conversion webhook.
    pub enable_webhooks: bool,
    /// `DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK` is exactly `true`: allow running as root.
    pub skip_uid_gid_check: bool,
    /// `DAPR_SENTRY_TOKEN_FILE`: an alternative sentry token file (set but empty is an error
    /// at every certificate request, as upstream).
    pub sentry_token_file: Option<String>,
    /// `SENTRY_LOCAL_IDENTITY` when non-empty, else `dapr-operator`.
    pub sentry_identity: String,
}

/// Why `$NAMESPACE` cannot be used (upstream `security.CurrentNamespaceOrError`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamespaceError {
    #[error("'NAMESPACE' environment variable not set")]
    NotSet,
    #[error("'NAMESPACE' environment variable is empty")]
    Empty,
}

impl OperatorEnv {
    /// Reads the variables from `vars` (the process environment in production).
    pub fn from_vars(vars: &HashMap<String, String>) -> Self {
        let get = |key: &str| vars.get(key).cloned();
        Self {
            namespace: get("NAMESPACE"),
            enable_webhooks: !get("ENABLE_WEBHOOKS")
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
            skip_uid_gid_check: get("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK").as_deref()
                == Some("true"),
            sentry_token_file: get("DAPR_SENTRY_TOKEN_FILE"),
            sentry_identity: get("SENTRY_LOCAL_IDENTITY")
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| DEFAULT_SENTRY_IDENTITY.to_owned()),
        }
    }

    /// Reads the process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self::from_vars(
            &std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    /// The control-plane namespace: `$NAMESPACE`, which must be set and non-empty.
    pub fn namespace(&self) -> Result<&str, NamespaceError> {
        match self.namespace.as_deref() {
            None => Err(NamespaceError::NotSet),
            Some("") => Err(NamespaceError::Empty),
            Some(ns) => Ok(ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OperatorEnv {
        OperatorEnv::from_vars(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn an_empty_environment_enables_webhooks_and_lacks_a_namespace() {
        let e = env(&[]);
        assert!(e.enable_webhooks);
        assert!(!e.skip_uid_gid_check);
        assert_eq!(e.sentry_token_file, None);
        assert_eq!(e.sentry_identity, "dapr-operator");
        assert_eq!(e.namespace(), Err(NamespaceError::NotSet));
    }

    #[test]
    fn the_integration_harness_environment_is_accepted() {
        let e = env(&[
            ("KUBERNETES_SERVICE_HOST", "anything"),
            ("NAMESPACE", "dapr-system"),
        ]);
        assert_eq!(e.namespace(), Ok("dapr-system"));
        assert!(e.enable_webhooks);
    }

    #[test]
    fn an_empty_namespace_is_reported_as_empty() {
        assert_eq!(
            env(&[("NAMESPACE", "")]).namespace(),
            Err(NamespaceError::Empty)
        );
    }

    #[test]
    fn only_false_in_any_case_disables_webhooks() {
        for off in ["false", "FALSE", "False"] {
            assert!(!env(&[("ENABLE_WEBHOOKS", off)]).enable_webhooks, "{off}");
        }
        for on in ["", "0", "no", "true", " false"] {
            assert!(env(&[("ENABLE_WEBHOOKS", on)]).enable_webhooks, "{on:?}");
        }
    }

    #[test]
    fn the_uid_check_is_skipped_only_for_exactly_true() {
        assert!(env(&[("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK", "true")]).skip_uid_gid_check);
        for v in ["True", "1", "yes", ""] {
            assert!(
                !env(&[("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK", v)]).skip_uid_gid_check,
                "{v:?}"
            );
        }
    }

    #[test]
    fn a_non_empty_sentry_local_identity_overrides_the_app_id() {
        assert_eq!(
            env(&[("SENTRY_LOCAL_IDENTITY", "op-2")]).sentry_identity,
            "op-2"
        );
        assert_eq!(
            env(&[("SENTRY_LOCAL_IDENTITY", "")]).sentry_identity,
            "dapr-operator"
        );
    }

    #[test]
    fn a_set_but_empty_sentry_token_file_is_kept_as_set() {
        assert_eq!(
            env(&[("DAPR_SENTRY_TOKEN_FILE", "")])
                .sentry_token_file
                .as_deref(),
            Some("")
        );
    }
}
