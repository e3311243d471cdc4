//! The per-namespace dissemination state machine (spec §8.3–§8.6), free of I/O and clocks.
//!
//! Events go in through the `&mut self` methods; what the shell must do comes out as [`Effect`]s
//! (start a stream, send an order, close a stream, arm a timer). Timers are the shell's: it
//! feeds [`Disseminator::timeout_fired`] / [`Disseminator::coalesce_fired`] back when they
//! expire, and the core ignores stale ones, so cancelling a timer is never required.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{Arc, OnceLock},
};

use dapr_proto::placement::v1::{
    Host, HostOperation, PlacementOrder, PlacementTable, PlacementTables, StatePlacementTable,
};

/// A stream's number inside its namespace (a counter from 0).
pub type StreamIdx = u64;

/// The phase of a round, and the phase a stream last acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Idle (between rounds), or "nothing acknowledged yet in this round".
    Report,
    Lock,
    Update,
    Unlock,
}

impl Phase {
    fn from_operation(operation: i32) -> Option<Self> {
        match HostOperation::try_from(operation).ok()? {
            HostOperation::Unknown => None,
            HostOperation::Report => Some(Self::Report),
            HostOperation::Lock => Some(Self::Lock),
            HostOperation::Update => Some(Self::Update),
            HostOperation::Unlock => Some(Self::Unlock),
        }
    }

    /// The wire name in `PlacementOrder.operation`.
    fn order_name(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Lock => "lock",
            Self::Update => "update",
            Self::Unlock => "unlock",
        }
    }
}

impl fmt::Display for Phase {
    /// The Go enum names, as upstream's log lines print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Report => "REPORT",
            Self::Lock => "LOCK",
            Self::Update => "UPDATE",
            Self::Unlock => "UNLOCK",
        })
    }
}

/// One order for one or many streams. A broadcast shares a single `Outgoing`, so the shell can
/// encode it once (`encoded`) however many streams receive it.
#[derive(Debug)]
pub struct Outgoing {
    pub order: PlacementOrder,
    pub encoded: OnceLock<bytes::Bytes>,
}

impl Outgoing {
    fn new(phase: Phase, version: u64, tables: Option<PlacementTables>) -> Arc<Self> {
        Arc::new(Self {
            order: PlacementOrder {
                tables,
                operation: phase.order_name().to_owned(),
                version,
            },
            encoded: OnceLock::new(),
        })
    }
}

/// Why the core closes a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The stream did not acknowledge the current phase in time (gRPC `DeadlineExceeded`).
    Timeout { message: String },
    /// The namespace or the process is shutting down; the shell knows the status to use.
    Shutdown,
}

/// What the shell must do, in order.
#[derive(Debug)]
pub enum Effect<C> {
    /// Start reading and writing `conn` as stream `idx`.
    Activate { idx: StreamIdx, conn: C },
    /// Queue `order` on stream `idx` (never blocks the core).
    Send {
        idx: StreamIdx,
        order: Arc<Outgoing>,
    },
    /// End stream `idx`'s RPC. The shell's reader still reports the close afterwards; the core
    /// ignores it.
    Close { idx: StreamIdx, reason: CloseReason },
    /// End a connection that was queued and never started.
    Reject { conn: C },
    /// Call [`Disseminator::timeout_fired`] with `version` after the dissemination timeout.
    ArmTimeout { version: u64 },
    /// Call [`Disseminator::coalesce_fired`] after the coalesce window.
    ArmCoalesce,
    /// The namespace's gauges changed.
    Gauges { runtimes: u64, actor_runtimes: u64 },
}

#[derive(Debug)]
struct StreamState {
    /// Last phase this stream acknowledged in the current round.
    acked: Phase,
    /// Whether the stream's first host reported actor types (for the actor gauge).
    has_actors: bool,
    /// Version of a one-off table push in flight, whose acks must not count for a round.
    receiving_table: Option<u64>,
    /// Send filter (§8.6): the last round version locked on this stream.
    last_lock: Option<u64>,
}

/// Static settings of every namespace.
#[derive(Clone, Debug)]
pub struct Settings {
    pub replication_factor: i64,
    /// `--disseminate-timeout` as Go prints it (`1s`, `8s`, `1m0s`), for the kick message.
    pub timeout_text: String,
    /// `--disseminate-coalesce-window` > 0.
    pub coalesce: bool,
}

/// One namespace's placement state.
pub struct Disseminator<C> {
    namespace: String,
    settings: Settings,
    operation: Phase,
    version: u64,
    streams: BTreeMap<StreamIdx, StreamState>,
    acked: usize,
    store: BTreeMap<StreamIdx, Host>,
    waiting_add: VecDeque<(C, Host)>,
    waiting_delete: Vec<StreamIdx>,
    timeout_for: Option<u64>,
    coalescing: bool,
    next_idx: StreamIdx,
    runtimes: u64,
    actor_runtimes: u64,
    effects: Vec<Effect<C>>,
}

impl<C> Disseminator<C> {
    pub fn new(namespace: impl Into<String>, settings: Settings) -> Self {
        Self {
            namespace: namespace.into(),
            settings,
            operation: Phase::Report,
            version: 0,
            streams: BTreeMap::new(),
            acked: 0,
            store: BTreeMap::new(),
            waiting_add: VecDeque::new(),
            waiting_delete: Vec::new(),
            timeout_for: None,
            coalescing: false,
            next_idx: 0,
            runtimes: 0,
            actor_runtimes: 0,
            effects: Vec::new(),
        }
    }

    /// The effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect<C>> {
        std::mem::take(&mut self.effects)
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn operation(&self) -> Phase {
        self.operation
    }

    /// Number of started streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The `/placement/state` view: stored hosts sorted by name, and the round version.
    pub fn state(&self) -> StatePlacementTable {
        let mut hosts: Vec<Host> = self.store.values().cloned().collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        StatePlacementTable {
            hosts,
            version: self.version,
        }
    }

    /// A new connection whose first (authorized) message is `host`.
    pub fn conn_add(&mut self, conn: C, host: Host) {
        if self.operation != Phase::Report || self.coalescing {
            self.waiting_add.push_back((conn, host));
            return;
        }
        self.apply_deletes();
        self.remove_orphans();
        let idx = self.add_stream(conn, &host);
        self.host_received(idx, host);
    }

    /// A later (authorized) message on stream `idx`; also the first one, via `conn_add`.
    pub fn host_received(&mut self, idx: StreamIdx, host: Host) {
        // A legacy client (no operation) acknowledges whatever phase is current.
        let op = Phase::from_operation(host.operation).unwrap_or(self.operation);
        if host.version.is_some_and(|v| v < self.version) {
            return;
        }
        if let Some(stream) = self.streams.get_mut(&idx)
            && let Some(pushed) = stream.receiving_table
            && op != Phase::Report
            && host.version == Some(pushed)
        {
            if op == Phase::Unlock {
                stream.receiving_table = None;
            }
            return;
        }
        match op {
            Phase::Report => self.report(idx, host),
            ack => self.ack(idx, ack),
        }
    }

    /// Stream `idx` ended (client EOF or error, authorization failure, send failure). Unknown
    /// streams (already kicked) are ignored.
    pub fn stream_closed(&mut self, idx: StreamIdx) {
        let Some(stream) = self.streams.remove(&idx) else {
            return;
        };
        self.uncount(&stream);
        if self.operation != Phase::Report && stream.acked == self.operation {
            self.acked -= 1;
        }
        if self.streams.is_empty() || !self.store.contains_key(&idx) {
            // The last stream's entry stays as an orphan until the next add or round.
            return;
        }
        self.waiting_delete.push(idx);
        if self.operation != Phase::Report {
            if self.acked >= self.streams.len() {
                self.advance(self.operation, false);
            }
            return;
        }
        if !self.coalescing {
            self.process_waiting_deletes();
        }
    }

    /// The round timer for `version` expired.
    pub fn timeout_fired(&mut self, version: u64) {
        if version != self.version
            || self.operation == Phase::Report
            || self.timeout_for != Some(version)
        {
            return;
        }
        self.timeout_for = None;
        tracing::warn!("Dissemination timeout for version {version}");
        let expected = self.operation;
        let laggards: Vec<StreamIdx> = self
            .streams
            .iter()
            .filter(|(_, s)| s.acked != expected)
            .map(|(idx, _)| *idx)
            .collect();
        for idx in laggards {
            let Some(stream) = self.streams.remove(&idx) else {
                continue;
            };
            tracing::warn!(
                "Closing non-responding stream {}:{idx} (state={}, expected={expected})",
                self.namespace,
                stream.acked
            );
            self.store.remove(&idx);
            self.uncount(&stream);
            self.effects.push(Effect::Close {
                idx,
                reason: CloseReason::Timeout {
                    message: format!(
                        "dissemination timeout after {} for version {version}",
                        self.settings.timeout_text
                    ),
                },
            });
        }
        self.apply_deletes();
        self.version += 1;
        self.operation = Phase::Report;
        self.acked = 0;
        while let Some((conn, host)) = self.waiting_add.pop_front() {
            let idx = self.add_stream(conn, &host);
            self.store_set(idx, host);
        }
        if !self.streams.is_empty() {
            self.begin_round();
        }
    }

    /// The post-round coalesce window elapsed.
    pub fn coalesce_fired(&mut self) {
        if !self.coalescing {
            return;
        }
        self.coalescing = false;
        if self.operation != Phase::Report {
            // A round is running (an entity change started it): its completion takes the queues.
            return;
        }
        if !self.waiting_delete.is_empty() && self.waiting_add.is_empty() {
            self.process_waiting_deletes();
        } else {
            let had_deletes = !self.waiting_delete.is_empty();
            self.apply_deletes();
            self.process_waiting_disseminate(had_deletes);
        }
    }

    /// Ends everything: every stream is closed, every queued connection rejected.
    pub fn shutdown(&mut self) {
        let streams = std::mem::take(&mut self.streams);
        for idx in streams.into_keys() {
            self.effects.push(Effect::Close {
                idx,
                reason: CloseReason::Shutdown,
            });
        }
        for (conn, _) in self.waiting_add.drain(..) {
            self.effects.push(Effect::Reject { conn });
        }
        self.waiting_delete.clear();
        self.store.clear();
        self.operation = Phase::Report;
        self.acked = 0;
        self.timeout_for = None;
        self.coalescing = false;
        self.runtimes = 0;
        self.actor_runtimes = 0;
        self.push_gauges();
    }

    fn add_stream(&mut self, conn: C, host: &Host) -> StreamIdx {
        let idx = self.next_idx;
        self.next_idx += 1;
        self.effects.push(Effect::Activate { idx, conn });
        let has_actors = !host.entities.is_empty();
        self.runtimes += 1;
        if has_actors {
            self.actor_runtimes += 1;
        }
        self.push_gauges();
        self.streams.insert(
            idx,
            StreamState {
                acked: Phase::Report,
                has_actors,
                receiving_table: None,
                last_lock: None,
            },
        );
        idx
    }

    fn uncount(&mut self, stream: &StreamState) {
        self.runtimes = self.runtimes.saturating_sub(1);
        if stream.has_actors {
            self.actor_runtimes = self.actor_runtimes.saturating_sub(1);
        }
        self.push_gauges();
    }

    fn push_gauges(&mut self) {
        self.effects.push(Effect::Gauges {
            runtimes: self.runtimes,
            actor_runtimes: self.actor_runtimes,
        });
    }

    /// `store.Set`: whether the store changed. Name and port changes alone are not changes.
    fn store_set(&mut self, idx: StreamIdx, mut host: Host) -> bool {
        host.entities.sort();
        let changed = match self.store.get(&idx) {
            None => !host.entities.is_empty(),
            Some(old) => {
                old.entities != host.entities
                    || old.id != host.id
                    || old.namespace != host.namespace
            }
        };
        if changed {
            if host.entities.is_empty() {
                self.store.remove(&idx);
            } else {
                self.store.insert(idx, host);
            }
        }
        changed
    }

    fn apply_deletes(&mut self) {
        for idx in self.waiting_delete.drain(..) {
            self.store.remove(&idx);
        }
    }

    fn remove_orphans(&mut self) {
        let streams = &self.streams;
        self.store.retain(|idx, _| streams.contains_key(idx));
    }

    fn report(&mut self, idx: StreamIdx, host: Host) {
        if self.store_set(idx, host) {
            self.start_round();
        } else if self.streams.contains_key(&idx) && !self.store.contains_key(&idx) {
            self.one_shot_push(idx);
        }
    }

    fn ack(&mut self, idx: StreamIdx, op: Phase) {
        // Acks for another phase than the current one are stale or out of order; upstream would
        // count them "from" their own phase, which only misbehaving clients can reach.
        if op != self.operation {
            return;
        }
        let Some(stream) = self.streams.get_mut(&idx) else {
            return;
        };
        if stream.acked != op {
            stream.acked = op;
            self.acked += 1;
        }
        if self.acked >= self.streams.len() {
            self.advance(op, true);
        }
    }

    /// Everyone acknowledged `from`: go to the next phase, or finish the round.
    fn advance(&mut self, from: Phase, collect_orphans: bool) {
        self.acked = 0;
        match from {
            Phase::Report => {}
            Phase::Lock => {
                self.operation = Phase::Update;
                let order = Outgoing::new(Phase::Update, self.version, Some(self.tables()));
                self.broadcast(&order);
            }
            Phase::Update => {
                self.operation = Phase::Unlock;
                let order = Outgoing::new(Phase::Unlock, self.version, None);
                self.broadcast(&order);
            }
            Phase::Unlock => self.complete_round(collect_orphans),
        }
    }

    fn complete_round(&mut self, collect_orphans: bool) {
        self.operation = Phase::Report;
        self.timeout_for = None;
        if collect_orphans {
            let orphans: Vec<StreamIdx> = self
                .store
                .keys()
                .filter(|idx| !self.streams.contains_key(idx))
                .copied()
                .collect();
            self.waiting_delete.extend(orphans);
        }
        if self.settings.coalesce {
            self.coalescing = true;
            self.effects.push(Effect::ArmCoalesce);
        } else if !self.waiting_delete.is_empty() {
            self.process_waiting_deletes();
        } else {
            self.process_waiting_disseminate(false);
        }
    }

    fn process_waiting_deletes(&mut self) {
        if self.waiting_delete.is_empty() || self.streams.is_empty() {
            return;
        }
        self.apply_deletes();
        self.start_round();
    }

    fn process_waiting_disseminate(&mut self, force: bool) {
        if self.waiting_add.is_empty() {
            return;
        }
        let mut changed = false;
        let mut added = Vec::with_capacity(self.waiting_add.len());
        while let Some((conn, host)) = self.waiting_add.pop_front() {
            let idx = self.add_stream(conn, &host);
            changed |= self.store_set(idx, host);
            added.push(idx);
        }
        if changed || force {
            self.start_round();
        } else {
            for idx in added {
                if !self.store.contains_key(&idx) {
                    self.one_shot_push(idx);
                }
            }
        }
    }

    fn start_round(&mut self) {
        self.version += 1;
        self.begin_round();
    }

    /// LOCK phase of a round at the current version, for every stream.
    fn begin_round(&mut self) {
        self.timeout_for = Some(self.version);
        self.effects.push(Effect::ArmTimeout {
            version: self.version,
        });
        self.operation = Phase::Lock;
        self.acked = 0;
        for stream in self.streams.values_mut() {
            stream.acked = Phase::Report;
            stream.receiving_table = None;
        }
        let order = Outgoing::new(Phase::Lock, self.version, None);
        self.broadcast(&order);
    }

    /// Sends a phase order to every stream, through each stream's filter (§8.6).
    fn broadcast(&mut self, order: &Arc<Outgoing>) {
        let version = order.order.version;
        let is_lock = order.order.operation == Phase::Lock.order_name();
        for (idx, stream) in &mut self.streams {
            let send = if is_lock {
                if stream.last_lock.is_some_and(|last| last > version) {
                    false
                } else {
                    stream.last_lock = Some(version);
                    true
                }
            } else {
                stream.last_lock == Some(version)
            };
            if send {
                self.effects.push(Effect::Send {
                    idx: *idx,
                    order: Arc::clone(order),
                });
            }
        }
    }

    /// Lock, update and unlock back to back at the current version for one stream whose host
    /// has no actors (it would otherwise never see a table).
    fn one_shot_push(&mut self, idx: StreamIdx) {
        let tables = self.tables();
        let Some(stream) = self.streams.get_mut(&idx) else {
            return;
        };
        stream.receiving_table = Some(self.version);
        for order in [
            Outgoing::new(Phase::Lock, self.version, None),
            Outgoing::new(Phase::Update, self.version, Some(tables)),
            Outgoing::new(Phase::Unlock, self.version, None),
        ] {
            self.effects.push(Effect::Send { idx, order });
        }
    }

    /// The tables sent in UPDATE: every stored host under each of its actor types.
    #[allow(deprecated)] // `version` and `api_level` are deprecated upstream but still sent
    fn tables(&self) -> PlacementTables {
        let mut entries: HashMap<String, PlacementTable> = HashMap::new();
        for host in self.store.values() {
            for entity in &host.entities {
                entries
                    .entry(entity.clone())
                    .or_default()
                    .load_map
                    .insert(host.name.clone(), host.clone());
            }
        }
        PlacementTables {
            entries,
            version: self.version.to_string(),
            api_level: 0,
            replication_factor: self.settings.replication_factor,
        }
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests;
