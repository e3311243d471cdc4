//! The container UID check every control-plane binary runs in kubernetes mode (sentry spec
//! §3.2): running as root is refused unless `DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true`.

/// The override variable.
pub const SKIP_UID_CHECK_ENV: &str = "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK";

/// The check's refusal; wrapped by callers as `error creating security: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "current user UID({0}) is root. Dapr must be run as a non-root user in Kubernetes environments. To override this check, set the environment variable 'DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true'"
)]
pub struct RootUserError(pub u32);

/// What the check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidCheck {
    Skipped,
    NonRoot(u32),
}

/// The pure decision: effective uid + the override variable's value.
pub fn decide_uid(euid: Option<u32>, skip: Option<&str>) -> Result<UidCheck, RootUserError> {
    if skip == Some("true") {
        return Ok(UidCheck::Skipped);
    }
    match euid {
        Some(0) => Err(RootUserError(0)),
        Some(uid) => Ok(UidCheck::NonRoot(uid)),
        // Unknown (no /proc): nothing to refuse.
        None => Ok(UidCheck::NonRoot(u32::MAX)),
    }
}

/// Runs the check for this process and logs like upstream.
pub fn check_container_uid() -> Result<(), RootUserError> {
    let skip = std::env::var(SKIP_UID_CHECK_ENV).ok();
    match decide_uid(effective_uid(), skip.as_deref())? {
        UidCheck::Skipped => {
            tracing::warn!("Skipping container UID/GID check due to env override.")
        }
        UidCheck::NonRoot(uid) => {
            tracing::info!("Running in Kubernetes environment as user {uid}")
        }
    }
    Ok(())
}

/// The effective uid from `/proc/self/status` (`Uid: real effective saved fs`), without libc.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_effective_uid(&status)
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_refused_unless_overridden() {
        assert_eq!(decide_uid(Some(0), None), Err(RootUserError(0)));
        assert_eq!(decide_uid(Some(0), Some("true")), Ok(UidCheck::Skipped));
        assert_eq!(decide_uid(Some(0), Some("TRUE")), Err(RootUserError(0)));
        assert_eq!(decide_uid(Some(1000), None), Ok(UidCheck::NonRoot(1000)));
        assert!(
            RootUserError(0)
                .to_string()
                .starts_with("current user UID(0) is root.")
        );
    }

    #[test]
    fn the_effective_uid_is_the_second_field() {
        assert_eq!(parse_effective_uid("Name:\tx\nUid:\t1\t2\t3\t4\n"), Some(2));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }
}
