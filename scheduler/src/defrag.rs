//! The embedded store's defragmentation loop (spec §5, embed mode only): every 10 minutes the
//! scheduler reads the member's Status and, when the database is at least twice the size of what
//! is in use, asks it to Defragment. Failures are logged and retried at the next tick.

use std::time::Duration;

use dapr_proto::etcd::etcdserverpb::{
    DefragmentRequest, StatusRequest, maintenance_client::MaintenanceClient,
};
use tokio_util::sync::CancellationToken;

use crate::engine::store::Etcd;

/// Time between two checks.
pub const INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Upstream's rule: defragment once half the database or more is free space.
pub fn needs_defrag(db_size: i64, db_size_in_use: i64) -> bool {
    db_size >= db_size_in_use.saturating_mul(2)
}

/// Checks every `interval` (the first check one interval after start) until `shutdown`.
pub async fn run(etcd: Etcd, interval: Duration, shutdown: CancellationToken) {
    let mut client = MaintenanceClient::with_interceptor(etcd.transport(), etcd.token());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let status = match client.status(StatusRequest {}).await {
            Ok(status) => status.into_inner(),
            Err(error) => {
                tracing::warn!(error = %error.message(), "failed to read the etcd status for defragmentation");
                continue;
            }
        };
        if !needs_defrag(status.db_size, status.db_size_in_use) {
            continue;
        }
        tracing::info!(
            db_size = status.db_size,
            db_size_in_use = status.db_size_in_use,
            "defragmenting etcd"
        );
        if let Err(error) = client.defragment(DefragmentRequest {}).await {
            tracing::warn!(error = %error.message(), "failed to defragment etcd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::needs_defrag;

    #[test]
    fn defragments_when_half_the_database_or_more_is_free() {
        assert!(needs_defrag(200, 100));
        assert!(needs_defrag(300, 100));
        assert!(!needs_defrag(199, 100));
        assert!(!needs_defrag(100, 100));
        // An empty database, as upstream's integer comparison has it.
        assert!(needs_defrag(0, 0));
        assert!(!needs_defrag(i64::MAX - 1, i64::MAX / 2 + 1));
    }
}
