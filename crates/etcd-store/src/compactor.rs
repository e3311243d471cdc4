//! etcd's auto-compaction (`--auto-compaction-mode` / `--auto-compaction-retention`), run by the
//! leader. Without it the store keeps every revision, and ours keeps history in memory.
//!
//! - `revision` mode: every 5 minutes, compact to `current revision - retention`.
//! - `periodic` mode: sample the revision every `retention / 10` (at most every hour) and
//!   compact to the newest sample that is at least `retention` old.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

use crate::mvcc::Revision;

/// How the leader compacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    Off,
    /// Keep this many revisions.
    Revisions(i64),
    /// Keep this much time of history.
    Period(Duration),
}

/// etcd's revision compactor checks every 5 minutes.
pub const REVISION_INTERVAL: Duration = Duration::from_secs(300);

impl AutoCompaction {
    /// etcd's flag pair: mode `revision` (retention = a count) or `periodic` (a duration, or a
    /// bare number of hours). A zero retention turns compaction off.
    pub fn from_flags(
        mode: &str,
        retention: &str,
        parse_duration: impl Fn(&str) -> Option<Duration>,
    ) -> Result<Self, String> {
        match mode {
            "revision" => match retention.trim().parse::<i64>() {
                Ok(0) => Ok(Self::Off),
                Ok(n) if n > 0 => Ok(Self::Revisions(n)),
                _ => Err(format!(
                    "invalid auto compaction retention {retention:?} for mode revision"
                )),
            },
            "periodic" => {
                let period = match retention.trim().parse::<u64>() {
                    Ok(hours) => Some(Duration::from_secs(hours.saturating_mul(3600))),
                    Err(_) => parse_duration(retention),
                };
                match period {
                    Some(d) if d.is_zero() => Ok(Self::Off),
                    Some(d) => Ok(Self::Period(d)),
                    None => Err(format!(
                        "invalid auto compaction retention {retention:?} for mode periodic"
                    )),
                }
            }
            other => Err(format!("unsupported auto compaction mode {other:?}")),
        }
    }

    /// How often the leader looks.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Self::Off => None,
            Self::Revisions(_) => Some(REVISION_INTERVAL),
            Self::Period(d) => {
                Some((*d / 10).clamp(Duration::from_millis(100), Duration::from_secs(3600)))
            }
        }
    }
}

/// The periodic compactor's memory: revision samples, oldest first.
#[derive(Debug, Default)]
pub struct Samples {
    samples: VecDeque<(Instant, Revision)>,
}

impl Samples {
    /// Records the revision seen at `now` and returns the revision to compact to, if any: the
    /// newest sample taken at least `retention` ago (older samples are dropped).
    pub fn record(
        &mut self,
        now: Instant,
        revision: Revision,
        retention: Duration,
    ) -> Option<Revision> {
        self.samples.push_back((now, revision));
        let mut target = None;
        while let Some(&(at, rev)) = self.samples.front() {
            if now.duration_since(at) >= retention {
                target = Some(rev);
                self.samples.pop_front();
            } else {
                break;
            }
        }
        target
    }
}

/// The revision compactor's target: `current - retention`, when positive.
pub fn revision_target(current: Revision, retention: i64) -> Option<Revision> {
    let target = current.saturating_sub(retention);
    (target > 0).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> Option<Duration> {
        s.strip_suffix('m')
            .and_then(|m| m.parse().ok())
            .map(|m: u64| Duration::from_secs(m * 60))
    }

    #[test]
    fn flags_map_to_etcds_modes() {
        assert_eq!(
            AutoCompaction::from_flags("revision", "1000000", dur),
            Ok(AutoCompaction::Revisions(1_000_000))
        );
        assert_eq!(
            AutoCompaction::from_flags("revision", "0", dur),
            Ok(AutoCompaction::Off)
        );
        assert_eq!(
            AutoCompaction::from_flags("periodic", "10m", dur),
            Ok(AutoCompaction::Period(Duration::from_secs(600)))
        );
        assert_eq!(
            AutoCompaction::from_flags("periodic", "2", dur),
            Ok(AutoCompaction::Period(Duration::from_secs(7200)))
        );
        assert!(AutoCompaction::from_flags("revision", "-1", dur).is_err());
        assert!(AutoCompaction::from_flags("weekly", "1", dur).is_err());
    }

    #[test]
    fn the_revision_compactor_keeps_the_last_retention_revisions() {
        assert_eq!(revision_target(1500, 1000), Some(500));
        assert_eq!(revision_target(900, 1000), None);
    }

    #[test]
    fn the_periodic_compactor_compacts_to_the_newest_sample_older_than_the_retention() {
        let start = Instant::now();
        let retention = Duration::from_secs(60);
        let mut samples = Samples::default();
        assert_eq!(samples.record(start, 10, retention), None);
        assert_eq!(
            samples.record(start + Duration::from_secs(30), 20, retention),
            None
        );
        assert_eq!(
            samples.record(start + Duration::from_secs(60), 30, retention),
            Some(10)
        );
        assert_eq!(
            samples.record(start + Duration::from_secs(95), 40, retention),
            Some(20)
        );
        assert_eq!(
            samples.record(start + Duration::from_secs(100), 50, retention),
            None
        );
    }
}
