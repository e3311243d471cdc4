//! Job names: composing the engine's name from the request (dapr
//! `pkg/scheduler/server/internal/serialize`, spec §6.1), the etcd keys, and validating the
//! composed name (go-etcd-cron `internal/api/validator`, spec §7.5).

use super::go::quote;

/// Prefix of job keys in etcd.
pub const JOBS_PREFIX: &str = "dapr/jobs/";
/// Prefix of counter keys in etcd.
pub const COUNTERS_PREFIX: &str = "dapr/counters/";

/// Upstream bounds a composed name at 512 bytes to keep etcd keys bounded.
pub const MAX_JOB_NAME_LEN: usize = 512;

/// Who a job is for (the `JobMetadata.target` oneof, with the namespace and app id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `target.job`: an app's job.
    App { namespace: &'a str, app_id: &'a str },
    /// `target.actor`: an actor reminder.
    Actor {
        namespace: &'a str,
        actor_type: &'a str,
        actor_id: &'a str,
    },
}

impl Target<'_> {
    /// The composed name's prefix for one job's metadata, trailing `||` included
    /// (upstream `PrefixFromMetadata`): `app||<ns>||<app>||`,
    /// `actorreminder||<ns>||<type>||<id>||`. Trimming it from a composed name gives the
    /// job's own name even when names or ids contain `||`.
    pub fn prefix(&self) -> String {
        match self {
            Target::App { namespace, app_id } => format!("app||{namespace}||{app_id}||"),
            Target::Actor {
                namespace,
                actor_type,
                actor_id,
            } => format!("actorreminder||{namespace}||{actor_type}||{actor_id}||"),
        }
    }

    /// The engine's name for job `name` (upstream `buildJobName`).
    pub fn compose(&self, name: &str) -> String {
        let mut composed = self.prefix();
        composed.push_str(name);
        composed
    }

    /// The prefix ListJobs, DeleteByMetadata and DeleteByNamePrefix range over (upstream
    /// `KeyFromMetadata`): an actor target with an empty id covers every id of its type;
    /// with `as_prefix` there is no trailing `||`, so `app||ns||a` also covers `app||ns||ab`.
    pub fn range_prefix(&self, as_prefix: bool) -> String {
        let mut s = match self {
            Target::App { namespace, app_id } => format!("app||{namespace}||{app_id}"),
            Target::Actor {
                namespace,
                actor_type,
                actor_id,
            } => {
                if actor_id.is_empty() {
                    format!("actorreminder||{namespace}||{actor_type}")
                } else {
                    format!("actorreminder||{namespace}||{actor_type}||{actor_id}")
                }
            }
        };
        if !as_prefix {
            s.push_str("||");
        }
        s
    }

    /// Recovers a job's own name from its composed name, or `None` when the composed name
    /// does not start with this target's prefix.
    pub fn strip<'n>(&self, composed: &'n str) -> Option<&'n str> {
        composed.strip_prefix(self.prefix().as_str())
    }
}

/// The prefixes of every job in a namespace (upstream `PrefixesFromNamespace`).
pub fn namespace_prefixes(namespace: &str) -> [String; 2] {
    [
        format!("actorreminder||{namespace}||"),
        format!("app||{namespace}||"),
    ]
}

/// `dapr/jobs/<composed>`.
pub fn job_key(composed: &str) -> String {
    format!("{JOBS_PREFIX}{composed}")
}

/// `dapr/counters/<composed>`.
pub fn counter_key(composed: &str) -> String {
    format!("{COUNTERS_PREFIX}{composed}")
}

/// The composed name of a `dapr/jobs/...` key, if it is one.
pub fn name_from_job_key(key: &str) -> Option<&str> {
    key.strip_prefix(JOBS_PREFIX)
}

/// A rejected job name. Displays as upstream's validator error (returned unwrapped, gRPC
/// `Unknown`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("job name cannot be empty")]
    Empty,
    #[error("job name is invalid {}: must be at most {MAX_JOB_NAME_LEN} characters", quote(.0))]
    TooLong(String),
    #[error("job name is invalid {}: must not contain '/', '\\', '#' or '?'", quote(.0))]
    ForbiddenCharacter(String),
    #[error("job name is invalid {}: must not contain control characters", quote(.0))]
    ControlCharacter(String),
    #[error("job name is invalid {}: must not be a path traversal sequence", quote(.0))]
    PathTraversal(String),
}

/// Validates a composed job name (upstream `Validator.JobName`), in upstream's order: empty,
/// longer than 512 bytes, `/ \ # ?`, control characters (C0, DEL, C1), `.` or `..`.
pub fn validate_job_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_JOB_NAME_LEN {
        return Err(NameError::TooLong(name.to_owned()));
    }
    if name.contains(['#', '?', '/', '\\']) {
        return Err(NameError::ForbiddenCharacter(name.to_owned()));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter(name.to_owned()));
    }
    if name == "." || name == ".." {
        return Err(NameError::PathTraversal(name.to_owned()));
    }
    Ok(())
}

/// Validates a delete prefix as upstream's `DeletePrefixes` does: `prefix + "a"`, and an
/// empty prefix is not checked.
pub fn validate_prefix(prefix: &str) -> Result<(), NameError> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_job_name(&format!("{prefix}a"))
}

#[cfg(test)]
mod tests;
