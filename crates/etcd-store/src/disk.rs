//! Free space on the data directory's filesystem.
//!
//! The Raft log writes into blocks it zero-filled ahead of time, so a full disk does not fail a
//! write until that runway runs out — possibly long after the disk filled, and then on a write
//! that was about to be acknowledged. etcd dies at once in that state (its backend commit
//! fails); we instead watch the free space and, while it is nearly gone, refuse writes that add
//! data with etcd's space error, keeping the deletes that give space back. The member resumes on
//! its own once space returns.

use std::{path::PathBuf, time::Duration};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the free space is read.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The low-water mark never exceeds one Raft log segment...
const MAX_LOW_WATER: u64 = 64 << 20;
/// ...nor drops below what the writes still let through need: a delete can make the Raft log
/// extend its zero-filled runway (4 MiB at a time, up to 6 MiB at a segment rotation) and flush
/// its 1 MiB write buffer, and a failed refill fails the batch.
const MIN_LOW_WATER: u64 = 10 << 20;

/// One reading of a filesystem's size and the space an unprivileged writer may still use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub available: u64,
    pub total: u64,
}

/// Below this many free bytes the disk counts as full: 1 % of the filesystem, within
/// [10 MiB, 64 MiB] (10 MiB up to a 1 GiB volume, 64 MiB from 6.4 GiB up). A volume under twice
/// the mark never leaves the full state.
pub fn low_water(total: u64) -> u64 {
    (total / 100).clamp(MIN_LOW_WATER, MAX_LOW_WATER)
}

/// Whether the disk is full after a reading, given whether it was before. Twice the low-water
/// mark must be free again to leave the full state, so a disk hovering at the mark does not
/// flap.
pub fn is_full(was_full: bool, space: Space) -> bool {
    let low = low_water(space.total);
    if was_full {
        space.available < low.saturating_mul(2)
    } else {
        space.available < low
    }
}

/// Reads the free space of the filesystem holding `path`.
pub fn read(path: &std::path::Path) -> std::io::Result<Space> {
    let stat = rustix::fs::statvfs(path)?;
    let block = stat.f_frsize.max(1);
    Ok(Space {
        available: stat.f_bavail.saturating_mul(block),
        total: stat.f_blocks.saturating_mul(block),
    })
}

/// Re-reads the free space of `dir` every [`CHECK_INTERVAL`] and publishes whether the disk
/// is full, logging each change.
pub async fn watch_loop(dir: PathBuf, full: watch::Sender<bool>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // statvfs may block (a stalled network mount): off the async workers.
        let at = dir.clone();
        let read = tokio::task::spawn_blocking(move || read(&at))
            .await
            .unwrap_or_else(|joined| Err(std::io::Error::other(joined)));
        let space = match read {
            Ok(space) => space,
            Err(error) => {
                tracing::debug!(%error, dir = %dir.display(), "cannot read free disk space");
                continue;
            }
        };
        let was_full = *full.borrow();
        let now_full = is_full(was_full, space);
        if now_full == was_full {
            continue;
        }
        if now_full {
            tracing::error!(
                dir = %dir.display(),
                available = space.available,
                low_water = low_water(space.total),
                "store disk is full: writes that add data are refused until space is freed"
            );
        } else {
            tracing::info!(
                dir = %dir.display(),
                available = space.available,
                "store disk has free space again: writes resume"
            );
        }
        full.send_replace(now_full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_low_water_mark_is_one_percent_within_bounds() {
        assert_eq!(
            low_water(128 * MIB),
            10 * MIB,
            "small volumes keep a 10 MiB floor"
        );
        assert_eq!(low_water(2048 * MIB), 2048 * MIB / 100);
        assert_eq!(
            low_water(1 << 40),
            64 * MIB,
            "large volumes cap at one segment"
        );
        assert_eq!(low_water(0), 10 * MIB);
    }

    #[test]
    fn a_disk_turns_full_below_the_mark_and_clears_at_twice_it() {
        let total = 1000 * MIB; // mark: 10 MiB (the floor)
        let at = |available| Space { available, total };
        assert!(!is_full(false, at(10 * MIB)));
        assert!(is_full(false, at(10 * MIB - 1)));
        assert!(is_full(false, at(0)));
        assert!(
            is_full(true, at(15 * MIB)),
            "between the marks it stays full"
        );
        assert!(!is_full(true, at(20 * MIB)));
        assert!(
            !is_full(false, at(15 * MIB)),
            "between the marks it stays clear"
        );
    }

    #[test]
    fn a_real_directory_reads_a_plausible_space() {
        let dir = std::env::temp_dir();
        let space = read(&dir).expect("statvfs of the temp dir");
        assert!(space.total > 0);
        assert!(space.available <= space.total);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        assert!(read(std::path::Path::new("/nonexistent/dapr-etcd-disk-test")).is_err());
    }
}
