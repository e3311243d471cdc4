use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::snapshot::Snapshot;
use super::*;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sentry-reload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_snapshot_sees_new_removed_and_rewritten_files_even_with_the_same_size_and_mtime() {
    let d = dir("snapshot");
    std::fs::write(d.join("ca.crt"), "aaaa").unwrap();
    let dirs = vec![d.clone()];
    let first = Snapshot::take(&dirs);
    assert_eq!(first, Snapshot::take(&dirs), "nothing changed");

    // Same length; restore the mtime so only the content differs.
    let mtime = std::fs::metadata(d.join("ca.crt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::write(d.join("ca.crt"), "bbbb").unwrap();
    std::fs::File::options()
        .write(true)
        .open(d.join("ca.crt"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let rewritten = Snapshot::take(&dirs);
    assert_ne!(first, rewritten);

    std::fs::write(d.join("issuer.crt"), "x").unwrap();
    let added = Snapshot::take(&dirs);
    assert_ne!(rewritten, added);
    std::fs::remove_file(d.join("issuer.crt")).unwrap();
    assert_eq!(rewritten, Snapshot::take(&dirs));
}

#[test]
fn a_swapped_symlink_counts_as_a_change_as_in_a_secret_volume() {
    let d = dir("symlink");
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(d.join("..v1/ca.crt"), "one").unwrap();
    std::fs::write(d.join("..v2/ca.crt"), "two").unwrap();
    std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/ca.crt", d.join("ca.crt")).unwrap();
    let dirs = vec![d.clone()];
    let before = Snapshot::take(&dirs);
    std::fs::remove_file(d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..v2", d.join("..data")).unwrap();
    assert_ne!(before, Snapshot::take(&dirs));
}

#[test]
fn a_missing_directory_is_empty_and_its_creation_with_files_is_a_change() {
    let d = dir("missing").join("not-yet");
    let mut watcher = DirWatcher::new(vec![d.clone()]);
    assert!(!watcher.changed());
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ca.crt"), "x").unwrap();
    assert!(watcher.changed());
    assert!(!watcher.changed(), "the new state is the baseline");
}

#[test]
fn watched_dirs_are_the_distinct_parents_in_first_seen_order() {
    let paths = [
        "/creds/issuer.crt",
        "/creds/issuer.key",
        "/roots/ca.crt",
        "/creds/jwt.key",
        "jwks.json",
    ];
    assert_eq!(
        watched_dirs(paths.iter().map(Path::new)),
        vec![
            PathBuf::from("/creds"),
            PathBuf::from("/roots"),
            PathBuf::from(".")
        ]
    );
}

/// A watched state that tests bump by hand.
struct FakeWatch {
    version: Arc<AtomicU32>,
    seen: u32,
}

impl Watch for FakeWatch {
    fn changed(&mut self) -> bool {
        let now = self.version.load(Ordering::SeqCst);
        let changed = now != self.seen;
        self.seen = now;
        changed
    }

    fn rebase(&mut self) {
        self.seen = self.version.load(Ordering::SeqCst);
    }
}

/// Counts reloads; optionally "writes" (bumps the watched state) or fails while reloading.
struct FakeGeneration {
    reloads: Arc<AtomicU32>,
    version: Arc<AtomicU32>,
    writes_on_reload: bool,
    fail: bool,
}

impl Generation for FakeGeneration {
    async fn renew(&mut self) -> anyhow::Result<SystemTime> {
        Ok(SystemTime::now() + Duration::from_secs(86_400))
    }

    async fn reload(&mut self) -> anyhow::Result<Reloaded> {
        anyhow::ensure!(!self.fail, "error creating CA: bad material");
        self.reloads.fetch_add(1, Ordering::SeqCst);
        if self.writes_on_reload {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Reloaded {
            generated: self.writes_on_reload,
            renew_at: SystemTime::now() + Duration::from_secs(86_400),
        })
    }
}

struct Harness {
    version: Arc<AtomicU32>,
    reloads: Arc<AtomicU32>,
    registry: Registry,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    fn start(writes_on_reload: bool, fail: bool) -> Self {
        let version = Arc::new(AtomicU32::new(0));
        let reloads = Arc::new(AtomicU32::new(0));
        let mut registry = Registry::with_prefix("dapr_sentry");
        let metrics = Metrics::register(&mut registry);
        let shutdown = CancellationToken::new();
        let watcher = FakeWatch {
            version: Arc::clone(&version),
            seen: 0,
        };
        let generation = FakeGeneration {
            reloads: Arc::clone(&reloads),
            version: Arc::clone(&version),
            writes_on_reload,
            fail,
        };
        let task = tokio::spawn(run(
            watcher,
            generation,
            SystemTime::now() + Duration::from_secs(86_400),
            metrics,
            shutdown.clone(),
        ));
        Self {
            version,
            reloads,
            registry,
            shutdown,
            task,
        }
    }

    fn touch(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    fn reloads(&self) -> u32 {
        self.reloads.load(Ordering::SeqCst)
    }

    fn changed_total(&self) -> Option<String> {
        dapr_kit::metrics::encode_text(&self.registry)
            .lines()
            .find(|l| l.starts_with("dapr_sentry_issuercert_changed_total "))
            .map(str::to_owned)
    }
}

async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn a_change_is_counted_at_once_and_reloaded_two_seconds_later() {
    let h = Harness::start(false, false);
    advance(Duration::from_secs(3)).await;
    assert_eq!(h.reloads(), 0, "no change, no reload");
    assert_eq!(h.changed_total(), None);

    h.touch();
    advance(Duration::from_millis(600)).await;
    assert_eq!(
        h.changed_total().as_deref(),
        Some("dapr_sentry_issuercert_changed_total 1")
    );
    assert_eq!(h.reloads(), 0, "still settling");
    advance(Duration::from_secs(2)).await;
    assert_eq!(h.reloads(), 1);

    h.shutdown.cancel();
    assert!(h.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn changes_during_the_settle_time_cause_one_reload() {
    let h = Harness::start(false, false);
    h.touch();
    advance(Duration::from_millis(600)).await;
    h.touch();
    advance(Duration::from_millis(500)).await;
    h.touch();
    advance(Duration::from_secs(5)).await;
    assert_eq!(h.reloads(), 1);
    assert_eq!(
        h.changed_total().as_deref(),
        Some("dapr_sentry_issuercert_changed_total 1")
    );

    // A later change is a new reload.
    h.touch();
    advance(Duration::from_secs(3)).await;
    assert_eq!(h.reloads(), 2);
    h.shutdown.cancel();
    assert!(h.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn sentrys_own_writes_while_reloading_do_not_trigger_another_reload() {
    let h = Harness::start(true, false);
    h.touch();
    advance(Duration::from_secs(10)).await;
    assert_eq!(h.reloads(), 1);
    h.shutdown.cancel();
    assert!(h.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_failed_reload_ends_the_task_with_its_error() {
    let h = Harness::start(false, true);
    h.touch();
    advance(Duration::from_secs(3)).await;
    let error = h.task.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "error creating CA: bad material");
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_the_settle_time_stops_without_reloading() {
    let h = Harness::start(false, false);
    h.touch();
    advance(Duration::from_millis(600)).await;
    h.shutdown.cancel();
    let reloads = Arc::clone(&h.reloads);
    assert!(h.task.await.unwrap().is_ok());
    assert_eq!(reloads.load(Ordering::SeqCst), 0);
}
