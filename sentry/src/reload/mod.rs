//! Reloading the CA material without a restart (spec §6), and renewing sentry's own serving
//! certificate (spec §11), in one task so the two can never overwrite each other's certificate.
//!
//! Upstream stops its whole CA loop on any change in the watched directories (gRPC, healthz,
//! metrics and OIDC servers, validators, CA, own SVID) and builds it again, so nothing listens
//! for a moment. We swap in place instead: the material is re-read through the same code path
//! as at start ([`CaSource::load`](crate::material::CaSource::load)), sentry's serving
//! certificate is re-issued from it, and only then is the new CA generation published to the
//! gRPC service and the new JWKS to the OIDC server. Listeners, validators, their caches and
//! the config stay as they are (upstream does not re-read the config either). A reload that
//! fails is fatal, as upstream's failing loop is: the task returns the `error creating CA: …`
//! error and the process exits 1.
//!
//! Upstream queues one restart per file event; we coalesce all changes seen during the 2 s
//! settle time into one reload (the spec allows this), and we take the baseline after our own
//! writes so generating the CA at start (or during a reload) does not trigger a reload.

mod live;
pub mod snapshot;

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

pub use live::LiveCa;
pub use snapshot::{DirWatcher, Watch, watched_dirs};

use crate::identity;
use crate::metrics::Metrics;

/// How often the watched directories are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Upstream waits this long after a change before reloading, so that a user writing several
/// files is seen as one change.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The result of a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// The store had to be completed, i.e. sentry wrote to the watched files itself.
    pub generated: bool,
    /// When the new serving certificate should be renewed.
    pub renew_at: SystemTime,
}

/// The live CA as the loop sees it.
pub trait Generation: Send {
    /// Issues a fresh serving certificate from the current CA; returns the next renewal time.
    fn renew(&mut self) -> impl Future<Output = anyhow::Result<SystemTime>> + Send;
    /// Re-reads the CA material and swaps it in.
    fn reload(&mut self) -> impl Future<Output = anyhow::Result<Reloaded>> + Send;
}

/// Runs until `shutdown`: renews the serving certificate when due and reloads the material
/// when the watched state changes. Returns the first error (fatal for the process).
pub async fn run(
    mut watcher: impl Watch,
    mut generation: impl Generation,
    mut renew_at: SystemTime,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(identity::until(renew_at)) => {
                renew_at = generation.renew().await?;
                tracing::info!("Renewed sentry's own certificate");
            }
            _ = poll.tick() => {
                if !watcher.changed() {
                    continue;
                }
                metrics.issuer_changed();
                tracing::debug!("Received issuer credentials changed signal");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(SETTLE) => {}
                }
                tracing::warn!("Issuer credentials changed; reloading");
                // Changes from here on are seen by the next poll and cause another reload.
                watcher.rebase();
                let reloaded = generation.reload().await?;
                if reloaded.generated {
                    // Our own writes are not a change.
                    watcher.rebase();
                }
                renew_at = reloaded.renew_at;
                tracing::info!("Issuer credentials reloaded");
            }
        }
    }
}

#[cfg(test)]
mod tests;
