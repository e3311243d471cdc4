//! The member-local lease clock: milliseconds on a monotonic clock since the process started.
//! Values are never carried from one member to another: a grant's timer starts at apply time
//! on each member, and a new leader promotes every lease to a full TTL. So a per-process epoch
//! is enough and immune to wall-clock jumps.

use std::{sync::OnceLock, time::Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call in this process.
pub fn now_ms() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}
