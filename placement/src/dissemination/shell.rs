//! The I/O around [`Disseminator`]: one task per namespace owns its core and timers, one reader
//! task per started stream feeds it, and a router counts connections per namespace (spec §8.2).

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use dapr_proto::placement::v1::{Host, StatePlacementTable};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::Instrument as _;

use super::core::{CloseReason, Disseminator, Effect, Outgoing, Settings, StreamIdx};
use crate::{
    authz::{self, Peer},
    metrics::Metrics,
};

/// What a stream's RPC yields: orders, then possibly a final status.
pub type OrderTx = mpsc::UnboundedSender<Result<Arc<Outgoing>, Status>>;

/// A connection whose first message was authorized, waiting to be started by its namespace.
pub struct Conn {
    pub inbound: Streaming<Host>,
    pub tx: OrderTx,
    pub peer: Peer,
    pub remote: Option<SocketAddr>,
}

/// Timing and table settings for every namespace.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: Settings,
    pub timeout: Duration,
    pub coalesce_window: Duration,
}

enum Event {
    Add(Box<(Conn, Host)>),
    Message(StreamIdx, Host),
    Closed(StreamIdx),
    Shutdown(Status),
    State(oneshot::Sender<StatePlacementTable>),
}

struct Namespace {
    tx: mpsc::UnboundedSender<Event>,
    /// Added plus queued connections (a queued one counts though nobody reads it yet).
    conns: usize,
    generation: u64,
}

struct Inner {
    config: Config,
    metrics: Metrics,
    namespaces: Mutex<HashMap<String, Namespace>>,
    generations: AtomicU64,
    closing: AtomicBool,
}

/// Routes connections to their namespace's disseminator.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl Router {
    pub fn new(config: Config, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                namespaces: Mutex::new(HashMap::new()),
                generations: AtomicU64::new(0),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether [`Router::shutdown`] has started.
    pub fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// Hands a connection to the disseminator of `first.namespace`, creating it if needed.
    pub fn add(&self, conn: Conn, first: Host) {
        let namespace = first.namespace.clone();
        let mut namespaces = self.lock();
        let entry = namespaces.entry(namespace.clone()).or_insert_with(|| {
            let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            let task = NamespaceTask {
                router: self.clone(),
                namespace: namespace.clone(),
                generation,
                events: tx.clone(),
                core: Disseminator::new(namespace.clone(), self.inner.config.settings.clone()),
                streams: HashMap::new(),
                timeout: None,
                coalesce: None,
                shutdown_status: Status::unavailable("placement server is shutting down"),
            };
            tokio::spawn(task.run(rx).instrument(
                tracing::info_span!("placement.dissemination", namespace = %namespace),
            ));
            Namespace {
                tx,
                conns: 0,
                generation,
            }
        });
        entry.conns += 1;
        if let Err(mpsc::error::SendError(Event::Add(added))) =
            entry.tx.send(Event::Add(Box::new((conn, first))))
        {
            let _ = added.0.tx.send(Err(Status::unavailable(
                "placement server is shutting down",
            )));
        }
    }

    /// A started stream of `namespace` (generation `generation`) ended.
    fn closed(&self, namespace: &str, generation: u64, idx: StreamIdx, status: &Status) {
        let mut namespaces = self.lock();
        let Some(entry) = namespaces.get_mut(namespace) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let _ = entry.tx.send(Event::Closed(idx));
        entry.conns = entry.conns.saturating_sub(1);
        if entry.conns == 0 {
            let _ = entry.tx.send(Event::Shutdown(status.clone()));
            namespaces.remove(namespace);
        }
    }

    /// Process shutdown: every namespace closes its streams with `status`.
    pub fn shutdown(&self, status: &Status) {
        self.inner.closing.store(true, Ordering::SeqCst);
        for (_, namespace) in self.lock().drain() {
            let _ = namespace.tx.send(Event::Shutdown(status.clone()));
        }
    }

    /// The state of every live namespace (never waits for a round).
    pub async fn state(&self) -> BTreeMap<String, StatePlacementTable> {
        let pending: Vec<(String, oneshot::Receiver<StatePlacementTable>)> = self
            .lock()
            .iter()
            .filter_map(|(name, namespace)| {
                let (tx, rx) = oneshot::channel();
                namespace.tx.send(Event::State(tx)).ok()?;
                Some((name.clone(), rx))
            })
            .collect();
        let mut tables = BTreeMap::new();
        for (name, rx) in pending {
            if let Ok(table) = rx.await {
                tables.insert(name, table);
            }
        }
        tables
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        self.inner
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

struct Active {
    tx: OrderTx,
    cancel: CancellationToken,
}

struct NamespaceTask {
    router: Router,
    namespace: String,
    generation: u64,
    events: mpsc::UnboundedSender<Event>,
    core: Disseminator<Conn>,
    streams: HashMap<StreamIdx, Active>,
    timeout: Option<(u64, Instant)>,
    coalesce: Option<Instant>,
    shutdown_status: Status,
}

impl NamespaceTask {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        loop {
            let timeout = self.timeout;
            let coalesce = self.coalesce;
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    if self.handle(event) {
                        break;
                    }
                }
                () = sleep_until(timeout.map(|(_, at)| at)) => {
                    self.timeout = None;
                    if let Some((version, _)) = timeout {
                        self.core.timeout_fired(version);
                    }
                }
                () = sleep_until(coalesce) => {
                    self.coalesce = None;
                    self.core.coalesce_fired();
                }
            }
            self.apply();
        }
        self.apply();
    }

    /// Feeds one event to the core; true when the namespace is done.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Add(added) => {
                let (conn, host) = *added;
                self.core.conn_add(conn, host);
            }
            Event::Message(idx, host) => self.core.host_received(idx, host),
            Event::Closed(idx) => {
                self.streams.remove(&idx);
                self.core.stream_closed(idx);
            }
            Event::State(reply) => {
                let _ = reply.send(self.core.state());
            }
            Event::Shutdown(status) => {
                self.shutdown_status = status;
                self.core.shutdown();
                return true;
            }
        }
        false
    }

    fn apply(&mut self) {
        for effect in self.core.take_effects() {
            match effect {
                Effect::Activate { idx, conn } => self.activate(idx, conn),
                Effect::Send { idx, order } => {
                    if let Some(active) = self.streams.get(&idx)
                        && active.tx.send(Ok(order)).is_err()
                    {
                        // The RPC is gone: its reader reports the close, once.
                        active.cancel.cancel();
                    }
                }
                Effect::Close { idx, reason } => {
                    if let Some(active) = self.streams.remove(&idx) {
                        let status = match reason {
                            CloseReason::Timeout { message } => Status::deadline_exceeded(message),
                            CloseReason::Shutdown => self.shutdown_status.clone(),
                        };
                        let _ = active.tx.send(Err(status));
                        active.cancel.cancel();
                    }
                }
                Effect::Reject { conn } => {
                    let _ = conn.tx.send(Err(self.shutdown_status.clone()));
                }
                Effect::ArmTimeout { version } => {
                    self.timeout =
                        Some((version, Instant::now() + self.router.inner.config.timeout));
                }
                Effect::ArmCoalesce => {
                    self.coalesce = Some(Instant::now() + self.router.inner.config.coalesce_window);
                }
                Effect::Gauges {
                    runtimes,
                    actor_runtimes,
                } => self.router.inner.metrics.set_runtimes(
                    &self.namespace,
                    runtimes,
                    actor_runtimes,
                ),
            }
        }
    }

    fn activate(&mut self, idx: StreamIdx, conn: Conn) {
        let cancel = CancellationToken::new();
        let reader = Reader {
            router: self.router.clone(),
            namespace: self.namespace.clone(),
            generation: self.generation,
            idx,
            events: self.events.clone(),
            tx: conn.tx.clone(),
            peer: conn.peer,
            remote: conn.remote,
            cancel: cancel.clone(),
        };
        tokio::spawn(
            reader
                .run(conn.inbound)
                .instrument(tracing::debug_span!("placement.stream", idx)),
        );
        self.streams.insert(
            idx,
            Active {
                tx: conn.tx,
                cancel,
            },
        );
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads one started stream: authorizes each message and forwards it; reports the end once.
struct Reader {
    router: Router,
    namespace: String,
    generation: u64,
    idx: StreamIdx,
    events: mpsc::UnboundedSender<Event>,
    tx: OrderTx,
    peer: Peer,
    remote: Option<SocketAddr>,
    cancel: CancellationToken,
}

impl Reader {
    async fn run(self, mut inbound: Streaming<Host>) {
        let remote = self
            .remote
            .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
        let status = loop {
            let next = tokio::select! {
                () = self.cancel.cancelled() => break None,
                next = inbound.message() => next,
            };
            match next {
                Ok(Some(host)) => {
                    if let Err(status) = authz::authorize(&self.peer, &host) {
                        tracing::warn!(
                            "Authorization failed for stream {remote}: {}",
                            status.message()
                        );
                        break Some(status);
                    }
                    if self.events.send(Event::Message(self.idx, host)).is_err() {
                        break None;
                    }
                }
                Ok(None) => {
                    tracing::info!("Closing connection to {remote}: EOF");
                    break Some(Status::unknown("EOF"));
                }
                Err(status) => {
                    tracing::warn!("Error receiving from stream {remote}: {}", status.message());
                    break Some(status);
                }
            }
        };
        let status = match status {
            Some(status) => {
                let _ = self.tx.send(Err(status.clone()));
                status
            }
            None => Status::cancelled("stream closed by the placement server"),
        };
        self.router
            .closed(&self.namespace, self.generation, self.idx, &status);
    }
}
