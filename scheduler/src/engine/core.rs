//! The engine task: owns the queue and the stream router, fires due jobs, applies results.
//! One task for the whole replica; everything reaches it as a [`Message`]. A new partition
//! (another replica joined or left) drops the queue and reloads it (spec §8), while the
//! connected streams stay registered across such restarts.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use dapr_proto::scheduler::v1::WatchJobsResponse;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{
    informer::{self, Event},
    queue::{Fire, Queue, Route, Upserted},
    router::{Router, StreamInfo},
    store::Etcd,
    writer::Writer,
};
use crate::{
    gates::{Acquire, Gates, Limit, MetricUpdate, Ticket},
    job::TriggerResult,
    leadership::Partition,
    metrics::Metrics,
};

/// Jobs fired per turn of the loop before messages are looked at again.
const FIRE_BATCH: usize = 1024;

/// A trigger: the job's name and the generation of its firing.
type TriggerId = (Arc<str>, u64);

/// A trigger handed to a stream.
#[derive(Debug)]
pub struct Dispatch {
    pub name: Arc<str>,
    pub generation: u64,
    pub kind: &'static str,
    /// The response to send, `id` still 0 (the stream numbers its sends).
    pub response: WatchJobsResponse,
}

/// What the engine task is told.
#[derive(Debug)]
pub enum Message {
    /// A stream passed its initial message.
    Open {
        id: u64,
        info: StreamInfo,
        limits: Vec<Limit>,
        tx: mpsc::UnboundedSender<Dispatch>,
    },
    /// A stream ended (EOF, error, cancel).
    Closed { id: u64 },
    /// Stop firing, drop the queue and answer once every bookkeeping write made so far is in
    /// the store: the replicas are about to re-partition, and the next owner of our jobs must
    /// load counters that include every acknowledged trigger.
    Quiesce(tokio::sync::oneshot::Sender<()>),
    /// A sidecar answered a trigger.
    Result {
        stream: u64,
        name: Arc<str>,
        generation: u64,
        result: TriggerResult,
    },
}

/// The engine's handle for the API.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Message>,
    ready: watch::Receiver<bool>,
    stopped: watch::Receiver<bool>,
}

impl Handle {
    pub fn send(&self, message: Message) {
        let _ = self.tx.send(message);
    }

    /// Waits until the engine has loaded its jobs (cron readiness).
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Waits until the engine has stopped after shutdown and its last writes are made.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// See [`Message::Quiesce`]. Returns at once if the engine is gone.
    pub async fn quiesce(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Quiesce(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the engine task; it runs until `shutdown`.
pub fn spawn(
    etcd: Etcd,
    partition: watch::Receiver<Option<Partition>>,
    metrics: Metrics,
    on_stuck: super::writer::OnStuck,
    shutdown: CancellationToken,
) -> Handle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready) = watch::channel(false);
    let (stopped_tx, stopped) = watch::channel(false);
    let writer = Writer::spawn(etcd.clone(), on_stuck, shutdown.clone());
    let engine = Engine {
        etcd,
        writer,
        metrics,
        queue: Queue::new(),
        router: Router::new(),
        gates: Gates::new(),
        in_flight: HashMap::new(),
        ready: ready_tx,
        informer_stop: None,
    };
    tokio::spawn(async move {
        engine.run(rx, partition, shutdown).await;
        stopped_tx.send_replace(true);
    });
    Handle { tx, ready, stopped }
}

struct Engine {
    etcd: Etcd,
    writer: Writer,
    metrics: Metrics,
    queue: Queue,
    router: Router<mpsc::UnboundedSender<Dispatch>>,
    /// Workflow concurrency limits over actor triggers.
    gates: Gates<Fire>,
    /// Triggers out on each stream: `(name, generation)` → kind and gate ticket.
    in_flight: HashMap<u64, HashMap<TriggerId, (&'static str, Option<Ticket>)>>,
    ready: watch::Sender<bool>,
    informer_stop: Option<CancellationToken>,
}

impl Engine {
    async fn run(
        mut self,
        mut messages: mpsc::UnboundedReceiver<Message>,
        mut partition: watch::Receiver<Option<Partition>>,
        shutdown: CancellationToken,
    ) {
        let (events_tx, mut events) = mpsc::unbounded_channel::<(u64, Event)>();
        let mut incarnation = 0u64;
        let mut current: Option<(u64, u64)> = None;
        // The informer of the current incarnation reports here; a failed one restarts.
        let (failed_tx, mut failed) = mpsc::unbounded_channel::<u64>();
        partition.mark_changed();
        loop {
            let sleep = self.queue.next_due().map(|at| {
                let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::time::Instant::now() + wait
            });
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = partition.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = partition.borrow_and_update().clone();
                    let key = next.as_ref().map(|p| (p.index, p.total));
                    if key == current && next.is_some() {
                        continue;
                    }
                    current = key;
                    incarnation += 1;
                    self.restart(next, incarnation, &events_tx, &failed_tx);
                }
                Some(failed_incarnation) = failed.recv() => {
                    if failed_incarnation == incarnation {
                        let next = partition.borrow().clone();
                        incarnation += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        self.restart(next, incarnation, &events_tx, &failed_tx);
                    }
                }
                Some(message) = messages.recv() => match message {
                    Message::Quiesce(done) => {
                        current = None;
                        incarnation += 1;
                        self.restart(None, incarnation, &events_tx, &failed_tx);
                        let writer = self.writer.clone();
                        tokio::spawn(async move {
                            writer.flush().await;
                            let _ = done.send(());
                        });
                    }
                    message => self.handle(message),
                },
                Some((from, event)) = events.recv() => {
                    if from == incarnation {
                        self.informer_event(event);
                    }
                }
                () = async {
                    match sleep {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => self.fire_due(),
            }
        }
        if let Some(stop) = self.informer_stop.take() {
            stop.cancel();
        }
        self.ready.send_replace(false);
        // Acknowledged triggers must reach the store before it stops, or they fire again
        // after the restart (one-shot reminders of activities that are already running).
        if tokio::time::timeout(Duration::from_secs(5), self.writer.flush())
            .await
            .is_err()
        {
            tracing::warn!("gave up waiting for trigger bookkeeping writes at shutdown");
        }
    }

    /// Drops the queue and, with a partition, starts loading the owned jobs afresh.
    fn restart(
        &mut self,
        partition: Option<Partition>,
        incarnation: u64,
        events: &mpsc::UnboundedSender<(u64, Event)>,
        failed: &mpsc::UnboundedSender<u64>,
    ) {
        if let Some(stop) = self.informer_stop.take() {
            stop.cancel();
        }
        self.ready.send_replace(false);
        self.queue.clear();
        for set in self.in_flight.values_mut() {
            set.clear();
        }
        // Waiting triggers belong to the dropped queue; in-flight tickets are forgotten.
        self.gates.shutdown();
        let Some(partition) = partition else {
            return;
        };
        let released = self
            .gates
            .set_share(partition.index as usize, partition.total as usize);
        self.send_all(released.into_iter().map(|(t, f)| (f, Some(t))).collect());
        tracing::info!(
            index = partition.index,
            total = partition.total,
            "starting the cron engine for this partition"
        );
        let stop = CancellationToken::new();
        self.informer_stop = Some(stop.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let etcd = self.etcd.clone();
        let forward = events.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if forward.send((incarnation, event)).is_err() {
                    return;
                }
            }
        });
        let failed = failed.clone();
        tokio::spawn(async move {
            if let Err(error) = informer::run(etcd, partition, tx, stop.clone()).await
                && !stop.is_cancelled()
            {
                tracing::warn!(%error, "the job informer stopped; restarting the engine");
                let _ = failed.send(incarnation);
            }
        });
    }

    fn informer_event(&mut self, event: Event) {
        match event {
            Event::Put {
                name,
                mod_revision,
                job,
                counter,
            } => match self.queue.upsert(&name, mod_revision, &job, counter) {
                Upserted::Queued(reset) => {
                    if let Some(op) = reset {
                        self.writer.submit(op);
                    }
                }
                Upserted::Finished(op) => self.writer.submit(op),
                Upserted::Invalid(error) => {
                    tracing::warn!(job = %name, %error, "ignoring a stored job whose schedule does not parse");
                }
            },
            Event::Remove { name, mod_revision } => {
                self.queue.remove(&name, mod_revision);
            }
            Event::Synced { jobs } => {
                tracing::info!(jobs, "Cron is ready");
                self.ready.send_replace(true);
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Open {
                id,
                info,
                limits,
                tx,
            } => {
                let namespace = info.namespace.clone();
                let fresh = self.router.add(id, info, tx);
                self.in_flight.entry(id).or_default();
                let now = Utc::now();
                for prefix in fresh {
                    self.queue.unstage(&prefix, now);
                }
                let outcome = self.gates.add_stream(id, &namespace, &limits);
                self.gate_outcome(outcome.dispatch, outcome.undeliverable);
            }
            Message::Closed { id } => {
                self.router.remove(id);
                let out = self.in_flight.remove(&id).unwrap_or_default();
                let now = Utc::now();
                let mut released = Vec::new();
                for ((name, generation), (kind, ticket)) in out {
                    self.metrics.undelivered(kind);
                    self.undeliverable(&name, generation, now);
                    if let Some(ticket) = ticket {
                        released.extend(self.gates.release(ticket));
                    }
                }
                let outcome = self.gates.remove_stream(id);
                released.extend(outcome.dispatch);
                self.gate_outcome(released, outcome.undeliverable);
            }
            Message::Quiesce(done) => {
                let _ = done.send(());
            }
            Message::Result {
                stream,
                name,
                generation,
                result,
            } => {
                let Some((_, ticket)) = self
                    .in_flight
                    .get_mut(&stream)
                    .and_then(|set| set.remove(&(Arc::clone(&name), generation)))
                else {
                    // Already resolved (the stream closed meanwhile, or the engine restarted).
                    return;
                };
                let router = &self.router;
                if let Some(op) = self
                    .queue
                    .result(&name, generation, result, Utc::now(), |n| {
                        router.deliverable(n)
                    })
                {
                    self.writer.submit(op);
                }
                if let Some(ticket) = ticket {
                    let released = self.gates.release(ticket);
                    self.gate_outcome(released, Vec::new());
                }
            }
        }
    }

    /// Sends what the gates released and gives back what they dropped.
    fn gate_outcome(&mut self, dispatch: Vec<(Ticket, Fire)>, undeliverable: Vec<Fire>) {
        let now = Utc::now();
        for fire in undeliverable {
            self.metrics.undelivered(fire.delivery.kind());
            self.undeliverable(&fire.name, fire.generation, now);
        }
        self.send_all(dispatch.into_iter().map(|(t, f)| (f, Some(t))).collect());
        self.record_gate_metrics();
    }

    fn record_gate_metrics(&mut self) {
        for update in self.gates.take_metrics() {
            match update {
                MetricUpdate::Throttled { key } => self.metrics.concurrency_throttled(&key),
                MetricUpdate::Pending { key, value } => self
                    .metrics
                    .concurrency_pending(&key, i64::try_from(value).unwrap_or(i64::MAX)),
                MetricUpdate::Inflight { key, value } => {
                    self.metrics.concurrency_inflight(&key, i64::from(value));
                }
            }
        }
    }

    fn undeliverable(&mut self, name: &Arc<str>, generation: u64, now: DateTime<Utc>) {
        let router = &self.router;
        self.queue
            .result(name, generation, TriggerResult::Undeliverable, now, |n| {
                router.deliverable(n)
            });
    }

    fn fire_due(&mut self) {
        let now = Utc::now();
        let fires = self.queue.pop_due(now, FIRE_BATCH);
        for fire in fires {
            self.gate(fire);
        }
        self.record_gate_metrics();
    }

    /// Actor triggers pass the concurrency gates first; the rest go straight out.
    fn gate(&mut self, fire: Fire) {
        let Some(Route::Actor {
            namespace,
            actor_type,
        }) = fire.delivery.route.clone()
        else {
            self.send_all(vec![(fire, None)]);
            return;
        };
        let key = fire
            .delivery
            .metadata
            .as_ref()
            .and_then(|m| m.concurrency_key.clone());
        match self
            .gates
            .acquire(&namespace, &actor_type, key.as_deref(), fire)
        {
            Acquire::Ungated(fire) => self.send_all(vec![(fire, None)]),
            Acquire::Dispatch { ticket, trigger } => self.send_all(vec![(trigger, Some(ticket))]),
            Acquire::Queued => {}
            Acquire::Overflow(fire) => {
                let router = &self.router;
                if let Some(op) = self.queue.result(
                    &fire.name,
                    fire.generation,
                    TriggerResult::Failed,
                    Utc::now(),
                    |n| router.deliverable(n),
                ) {
                    self.writer.submit(op);
                }
            }
        }
    }

    /// Hands triggers to streams; one that cannot be delivered releases its gate slot, which
    /// may let another through.
    fn send_all(&mut self, mut work: Vec<(Fire, Option<Ticket>)>) {
        let now = Utc::now();
        while let Some((fire, ticket)) = work.pop() {
            let delivery = &fire.delivery;
            let kind = delivery.kind();
            let target = match (&delivery.name, &delivery.route) {
                (Some(name), Some(route)) => self
                    .router
                    .pick(route)
                    .map(|(id, tx)| (id, tx.clone(), name.clone())),
                _ => None,
            };
            let sent = target.and_then(|(stream, tx, bare)| {
                let response = WatchJobsResponse {
                    name: bare,
                    id: 0,
                    data: delivery.payload.clone(),
                    metadata: delivery.metadata.clone(),
                };
                tx.send(Dispatch {
                    name: Arc::clone(&fire.name),
                    generation: fire.generation,
                    kind,
                    response,
                })
                .ok()
                .map(|()| stream)
            });
            match sent {
                Some(stream) => {
                    self.in_flight
                        .entry(stream)
                        .or_default()
                        .insert((fire.name, fire.generation), (kind, ticket));
                }
                None => {
                    self.metrics.undelivered(kind);
                    self.undeliverable(&fire.name, fire.generation, now);
                    if let Some(ticket) = ticket {
                        work.extend(
                            self.gates
                                .release(ticket)
                                .into_iter()
                                .map(|(t, f)| (f, Some(t))),
                        );
                    }
                }
            }
        }
    }
}
