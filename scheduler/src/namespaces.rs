//! The namespace controller (spec §12), kubernetes mode only: when a Namespace is deleted, every
//! job and counter of it is deleted from etcd (prefixes `actorreminder||<ns>||` and
//! `app||<ns>||` under `dapr/jobs/` and `dapr/counters/`, no metric).
//!
//! Upstream runs a controller-runtime manager (leader election off, so every replica does this;
//! it is idempotent) whose reconcile reads the Namespace from the informer cache and purges only
//! when it is NotFound. We mirror that with a list+watch ([`dapr_kube_lite::ListWatch`]) feeding a
//! set of namespaces known to exist, and a reconcile queue that re-checks that set before every
//! attempt:
//! - a `DELETED` event reconciles its namespace (even one never listed: client-go hands every
//!   delete to the handler), and so does a namespace missing from a re-list (client-go's
//!   `Replace` turns those into deletes);
//! - `ADDED`/`MODIFIED` and listed namespaces would reconcile to "exists → no-op", so they are
//!   only recorded;
//! - a namespace deleted while no replica was running is never purged, as upstream.
//!
//! The pure part ([`Known`], [`change`], [`prefixes`]) decides; `run` only moves events and calls
//! etcd.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use dapr_kube_lite::{KubeClient, ListWatch, WatchEvent, object_name};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::engine::store::{self, Etcd};

/// The cluster-wide Namespace collection (the fake API server serves this fixed path only).
pub const NAMESPACES_PATH: &str = "/api/v1/namespaces";

/// The job-name prefixes of one namespace's actor reminders and app jobs. The trailing `||`
/// keeps namespace `def` from matching `default`.
pub fn prefixes(namespace: &str) -> [String; 2] {
    [
        format!("actorreminder||{namespace}||"),
        format!("app||{namespace}||"),
    ]
}

/// What one list+watch event says about namespaces, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A (re-)list: exactly these namespaces exist.
    Listed(Vec<String>),
    /// The namespace exists (`ADDED`/`MODIFIED`).
    Present(String),
    /// The namespace was deleted.
    Deleted(String),
}

/// The change an event carries; `None` for an object without a name.
pub fn change(event: &WatchEvent) -> Option<Change> {
    let name = |object| object_name(object).map(str::to_owned);
    match event {
        WatchEvent::Listed(items) => Some(Change::Listed(items.iter().filter_map(name).collect())),
        WatchEvent::Applied(object) => name(object).map(Change::Present),
        WatchEvent::Deleted(object) => name(object).map(Change::Deleted),
    }
}

/// The namespaces known to exist: the informer cache's view that a reconcile reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Known(BTreeSet<String>);

impl Known {
    /// Records a change; the namespaces to reconcile because of it (deleted ones, and those that
    /// vanished between two lists).
    pub fn apply(&mut self, change: Change) -> Vec<String> {
        match change {
            Change::Listed(names) => {
                let listed: BTreeSet<String> = names.into_iter().collect();
                let vanished = self.0.difference(&listed).cloned().collect();
                self.0 = listed;
                vanished
            }
            Change::Present(name) => {
                self.0.insert(name);
                Vec::new()
            }
            Change::Deleted(name) => {
                self.0.remove(&name);
                vec![name]
            }
        }
    }

    /// A reconcile's decision, as upstream's: purge when the namespace is not known to exist
    /// (NotFound), do nothing when it does.
    pub fn should_purge(&self, namespace: &str) -> bool {
        !self.0.contains(namespace)
    }
}

/// Watches namespaces until `shutdown` and purges the jobs of every deleted one.
pub async fn run(client: KubeClient, etcd: Etcd, shutdown: CancellationToken) {
    run_reporting_synced(client, etcd, shutdown, || {}).await;
}

/// [`run`], calling `synced` once the first namespace list has been applied (upstream's
/// `scheduler-controller` healthz target turns ready once its informer cache has synced).
pub async fn run_reporting_synced(
    client: KubeClient,
    etcd: Etcd,
    shutdown: CancellationToken,
    synced: impl FnOnce() + Send,
) {
    let known = Arc::new(Mutex::new(Known::default()));
    let (queue, requests) = mpsc::unbounded_channel();
    let watch = watch(client, Arc::clone(&known), queue, synced);
    let reconcile = reconcile_all(etcd, known, requests, shutdown.clone());
    async {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = watch => {}
            () = reconcile => {}
        }
    }
    .instrument(tracing::info_span!("scheduler.namespaces"))
    .await;
}

/// Applies list+watch events to `known` and queues the namespaces to reconcile; never ends.
async fn watch(
    client: KubeClient,
    known: Arc<Mutex<Known>>,
    queue: mpsc::UnboundedSender<String>,
    synced: impl FnOnce() + Send,
) {
    let mut events = ListWatch::new(client, NAMESPACES_PATH);
    let mut synced = Some(synced);
    loop {
        let event = events.next().await;
        let listed = matches!(event, WatchEvent::Listed(_));
        let Some(change) = change(&event) else {
            continue;
        };
        let reconcile = lock(&known).apply(change);
        if listed && let Some(synced) = synced.take() {
            tracing::info!("Controller ready");
            synced();
        }
        for namespace in reconcile {
            // The receiver lives as long as this loop (both end with `run`).
            let _ = queue.send(namespace);
        }
    }
}

/// Reconciles queued namespaces one at a time until the queue closes or `shutdown`.
async fn reconcile_all(
    etcd: Etcd,
    known: Arc<Mutex<Known>>,
    mut requests: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
) {
    while let Some(namespace) = requests.recv().await {
        reconcile(&etcd, &known, &namespace, &shutdown).await;
    }
}

/// Purges `namespace` if it is (still) gone, retrying every failure with backoff as upstream's
/// rate-limited requeue does; re-checks the namespace before each attempt.
async fn reconcile(
    etcd: &Etcd,
    known: &Mutex<Known>,
    namespace: &str,
    shutdown: &CancellationToken,
) {
    let mut attempt = 0;
    loop {
        tracing::debug!(namespace, "Reconciling namespace {namespace}");
        if !lock(known).should_purge(namespace) {
            return;
        }
        tracing::info!(
            namespace,
            "Deleting jobs from deleted namespace {namespace}"
        );
        let [reminders, jobs] = prefixes(namespace);
        let error = match etcd.delete_prefixes(&[&reminders, &jobs]).await {
            Ok(()) => return,
            Err(error) => error,
        };
        let delay = store::backoff(attempt);
        attempt = attempt.saturating_add(1);
        tracing::warn!(
            namespace,
            %error,
            transient = store::is_transient(&error),
            ?delay,
            "Failed to delete cron jobs for namespace {namespace}; retrying"
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

fn lock(known: &Mutex<Known>) -> MutexGuard<'_, Known> {
    // A poisoned set is still a valid set of names.
    known.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str) -> String {
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#)
    }

    fn event(kind: &str, name: &str) -> WatchEvent {
        let object = namespace(name).parse().unwrap();
        match kind {
            "ADDED" | "MODIFIED" => WatchEvent::Applied(object),
            _ => WatchEvent::Deleted(object),
        }
    }

    fn listed(names: &[&str]) -> Change {
        Change::Listed(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn the_controller_future_can_be_spawned() {
        fn spawnable<F>(_: fn(KubeClient, Etcd, CancellationToken) -> F)
        where
            F: std::future::Future<Output = ()> + Send + 'static,
        {
        }
        spawnable(run);
    }

    #[test]
    fn prefixes_end_with_the_separator_so_def_never_matches_default() {
        assert_eq!(
            prefixes("def"),
            ["actorreminder||def||".to_owned(), "app||def||".to_owned()]
        );
        let [reminders, jobs] = prefixes("def");
        assert!(!"app||default||myapp||testJob".starts_with(&jobs));
        assert!(!"actorreminder||default||test||test||testJob".starts_with(&reminders));
        assert!("app||def||myapp||testJob".starts_with(&jobs));
    }

    #[test]
    fn events_are_read_as_changes_by_namespace_name() {
        assert_eq!(
            change(&event("ADDED", "default")),
            Some(Change::Present("default".into()))
        );
        assert_eq!(
            change(&event("DELETED", "default")),
            Some(Change::Deleted("default".into()))
        );
        let list = WatchEvent::Listed(vec![
            namespace("a").parse().unwrap(),
            r#"{"metadata":{}}"#.parse().unwrap(),
            namespace("b").parse().unwrap(),
        ]);
        assert_eq!(change(&list), Some(listed(&["a", "b"])));
        let nameless = WatchEvent::Deleted(r#"{"kind":"Namespace"}"#.parse().unwrap());
        assert_eq!(change(&nameless), None);
    }

    #[test]
    fn the_first_list_reconciles_nothing_and_listed_namespaces_are_not_purged() {
        let mut known = Known::default();
        assert!(known.apply(listed(&["default", "kube-system"])).is_empty());
        assert!(!known.should_purge("default"));
        assert!(known.should_purge("other"));
    }

    #[test]
    fn a_deleted_event_reconciles_its_namespace_into_a_purge() {
        let mut known = Known::default();
        known.apply(listed(&["default"]));
        assert_eq!(
            known.apply(Change::Deleted("default".into())),
            vec!["default".to_owned()]
        );
        assert!(known.should_purge("default"));
    }

    #[test]
    fn a_delete_of_a_namespace_never_listed_still_purges() {
        // client-go hands every DELETED event to the handler; the reconcile finds NotFound.
        let mut known = Known::default();
        assert_eq!(
            known.apply(Change::Deleted("ghost".into())),
            vec!["ghost".to_owned()]
        );
        assert!(known.should_purge("ghost"));
    }

    #[test]
    fn a_namespace_missing_from_a_relist_is_reconciled() {
        let mut known = Known::default();
        known.apply(listed(&["a", "b", "c"]));
        assert_eq!(known.apply(listed(&["a", "c", "d"])), vec!["b".to_owned()]);
        assert!(known.should_purge("b"));
        assert!(!known.should_purge("d"));
    }

    #[test]
    fn added_and_modified_namespaces_only_record_existence() {
        let mut known = Known::default();
        assert!(known.apply(Change::Present("a".into())).is_empty());
        assert!(!known.should_purge("a"));
    }

    #[test]
    fn a_namespace_recreated_before_its_reconcile_is_left_alone() {
        // Upstream reads the cache when it reconciles, so a delete followed by a re-create
        // finds the namespace and does nothing.
        let mut known = Known::default();
        known.apply(listed(&["default"]));
        let queued = known.apply(Change::Deleted("default".into()));
        known.apply(Change::Present("default".into()));
        assert_eq!(queued, vec!["default".to_owned()]);
        assert!(!known.should_purge("default"));
    }

    #[test]
    fn the_fake_api_servers_fixed_list_after_a_delete_brings_the_namespace_back() {
        // The suite's fake server lists `default` again after sending DELETED for it: the purge
        // already happened, and the re-list only records that it exists.
        let mut known = Known::default();
        known.apply(listed(&["default"]));
        assert_eq!(
            known.apply(Change::Deleted("default".into())),
            vec!["default".to_owned()]
        );
        assert!(known.apply(listed(&["default"])).is_empty());
        assert!(!known.should_purge("default"));
    }
}
