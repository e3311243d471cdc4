//! Starting the embedded store member (spec §5): the data-dir guard, the member's settings from
//! the flags, and the etcd v3 API on `--etcd-client-port`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use dapr_etcd_store::{
    StoreConfig,
    compactor::AutoCompaction,
    node::{Node, NodeConfig, PeerTls},
    server::Services,
};
use tokio_util::sync::CancellationToken;

use crate::{Mode, etcd::EmbedConfig};

/// The marker that says the data dir belongs to a cluster this scheduler already joined.
pub const MARKER: &str = "dapr-scheduler-existing-cluster";

/// Everything the member needs beyond [`EmbedConfig`].
pub struct EmbedSettings {
    pub id: String,
    /// `--etcd-initial-cluster` as `(id, URL)` pairs.
    pub initial_cluster: Vec<(String, String)>,
    pub mode: Mode,
    pub namespace: String,
    /// `--etcd-data-dir`.
    pub data_dir: PathBuf,
    pub space_quota: i64,
    pub max_txn_ops: u64,
    pub snapshot_count: u64,
    pub auto_compaction: AutoCompaction,
    pub peer_tls: Option<PeerTls>,
}

/// Why the member could not start (fatal at start-up).
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("failed to prepare etcd data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Start(#[from] dapr_etcd_store::node::StartError),
    #[error("failed to listen on etcd client address {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: io::Error,
    },
}

/// The member's own directory: `<data-dir>/<NAMESPACE>-<id>/dapr-0.1` in standalone mode,
/// `<data-dir>/dapr-0.1` in kubernetes mode.
pub fn member_dir(data_dir: &Path, mode: Mode, namespace: &str, id: &str) -> PathBuf {
    match mode {
        Mode::Standalone => data_dir.join(format!("{namespace}-{id}")).join("dapr-0.1"),
        Mode::Kubernetes => data_dir.join("dapr-0.1"),
    }
}

/// Upstream's data-dir guard: without the marker the directory's contents are wiped (a fresh
/// cluster must not inherit a stale member's state); with it the data is kept, so a member
/// restarted with the same id and directory rejoins.
pub fn guard_data_dir(data_dir: &Path) -> io::Result<bool> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        return Ok(false);
    }
    if data_dir.exists() {
        for entry in fs::read_dir(data_dir)? {
            let path = entry?.path();
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
    }
    fs::create_dir_all(data_dir)?;
    set_mode(data_dir, 0o700)?;
    fs::write(&marker, b"")?;
    set_mode(&marker, 0o600)?;
    Ok(true)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Starts the member and serves the etcd API on the client address. Returns once the member
/// is up (not necessarily elected) and the client listener is bound, with the etcd services for
/// in-process calls (the same ones the listener serves).
pub async fn start(
    config: &EmbedConfig,
    settings: EmbedSettings,
    shutdown: CancellationToken,
) -> Result<(Node, tonic::service::Routes), EmbedError> {
    let wiped = guard_data_dir(&settings.data_dir).map_err(|source| EmbedError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    if wiped {
        tracing::info!(dir = %settings.data_dir.display(), "prepared a fresh etcd data dir");
    }
    let member_dir = member_dir(
        &settings.data_dir,
        settings.mode,
        &settings.namespace,
        &settings.id,
    );
    let client_address = format!("{}:{}", config.client.host, config.client.port);
    let client_listener = dapr_kit::net::bind_tcp(&config.client.host, config.client.port)
        .await
        .map_err(|source| EmbedError::Listen {
            address: client_address.clone(),
            source,
        })?;
    let node = Node::start(
        NodeConfig {
            name: settings.id.clone(),
            initial_cluster: settings.initial_cluster,
            peer_listen: format!("{}:{}", config.peer.host, config.peer.port),
            data_dir: member_dir,
            store: StoreConfig {
                quota_backend_bytes: settings.space_quota,
                max_txn_ops: usize::try_from(settings.max_txn_ops).unwrap_or(usize::MAX),
                ..StoreConfig::default()
            },
            snapshot_count: settings.snapshot_count,
            auto_compaction: settings.auto_compaction,
            peer_tls: settings.peer_tls,
        },
        shutdown.clone(),
    )
    .await?;
    // Upstream raises etcd's request limit to 2^31-1 (2 MB job payloads in one put).
    let routes = Services::new(node.clone())
        .with_max_request_bytes(i32::MAX as usize)
        .with_client_urls(vec![format!("http://{client_address}")])
        .with_shutdown(shutdown.clone())
        .into_routes();
    let served_routes = routes.clone();
    tokio::spawn(async move {
        let served =
            dapr_kit::grpc::serve_plaintext(client_listener, served_routes, shutdown).await;
        if let Err(error) = served {
            tracing::error!(%error, "etcd client listener failed");
        }
    });
    Ok((node, routes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_dirs_follow_upstreams_layout() {
        let root = Path::new("/data");
        assert_eq!(
            member_dir(root, Mode::Standalone, "default", "s0"),
            Path::new("/data/default-s0/dapr-0.1")
        );
        assert_eq!(
            member_dir(root, Mode::Kubernetes, "default", "s0"),
            Path::new("/data/dapr-0.1")
        );
    }

    #[test]
    fn the_guard_wipes_an_unmarked_dir_once_and_keeps_a_marked_one() {
        let dir = std::env::temp_dir().join(format!("dapr-sched-guard-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("stale/sub")).unwrap();
        fs::write(dir.join("stale.txt"), b"x").unwrap();
        assert!(guard_data_dir(&dir).unwrap(), "first start wipes");
        assert!(!dir.join("stale").exists() && !dir.join("stale.txt").exists());
        assert!(dir.join(MARKER).exists());
        fs::write(dir.join("member-data"), b"keep").unwrap();
        assert!(!guard_data_dir(&dir).unwrap(), "a marked dir is kept");
        assert!(dir.join("member-data").exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
