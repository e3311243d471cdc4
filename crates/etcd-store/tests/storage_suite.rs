//! openraft's storage conformance suite against the store's real log (the WAL) and state
//! machine (the MVCC machine with durable snapshots).

use std::sync::atomic::{AtomicU64, Ordering};

use dapr_etcd_store::{
    mvcc::StoreConfig,
    raft::{NodeId, TypeConfig, machine::Machine},
};
use dapr_raft_log::Wal;
use openraft::{
    StorageError, StorageIOError,
    testing::{StoreBuilder, Suite},
};

/// Removes the store's directory when the suite is done with it.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, Wal<TypeConfig>, Machine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Wal<TypeConfig>, Machine), StorageError<NodeId>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dapr-etcd-suite-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let io = |e: &dyn std::error::Error| -> StorageError<NodeId> {
            StorageIOError::read_logs(openraft::AnyError::error(e.to_string())).into()
        };
        let wal = Wal::open(dir.join("wal")).map_err(|e| io(&e))?;
        let machine =
            Machine::open(dir.join("snap"), StoreConfig::default()).map_err(|e| io(&e))?;
        Ok((TempDir(dir), wal, machine))
    }
}

#[test]
fn openraft_storage_suite_passes_on_the_wal_and_the_mvcc_machine() {
    Suite::test_all(Builder).unwrap();
}
