//! Concurrency gates (spec §9.1, workflow global max concurrency): per-namespace caps on how many
//! actor triggers of a type, or of a type and a concurrency key, are in flight on this replica.
//!
//! Pure: no I/O, clocks or locks. The replica engine reports stream connects and closes, membership
//! changes, each actor trigger it is about to send and each result; it sends what comes back,
//! reports UNDELIVERABLE / FAILED as told, and records [`Gates::take_metrics`] afterwards.
//!
//! Carried over from upstream `pool/loops/connections` (v1.18.3 with the HEAD `seniority` drain):
//! - gates are keyed `<actor_type>` or `<actor_type>:<name>`, the last stream to declare a key sets
//!   its limit, and a gate lives while a stream of the namespace declares it;
//! - a trigger needs every gate that exists among `<type>` and `<type>:<concurrency_key>`, taken
//!   all or nothing; otherwise it waits on its first gate's FIFO;
//! - a release frees its gates one by one, draining each right after freeing it: a waiter that
//!   also needs a gate freed later in the same release stays queued until its queue's gate is
//!   released again (upstream's `seniority` test sees exactly this order).
//!
//! Deliberate differences: a drain keeps dispatching while the drained gate has room (upstream
//! stops after one), and adding or removing a stream drains the namespace's queues (a raised limit
//! or a removed second gate may free waiters). Both only use capacity that is idle anyway. A
//! ticket remembers the identity of the gates it holds, so a gate removed and declared again
//! starts empty and a late release of an old ticket cannot lower its count.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Waiting triggers one gate holds before refusing more (upstream `maxPendingPerGate`): bounds the
/// memory a stalled actor type can pin; the overflow is reported FAILED and retried by the cron.
pub const MAX_PENDING: usize = 100_000;

/// One entry of a stream's `concurrency_limits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The type of an actor target; `None` (no actor target) makes the limit ignored.
    pub actor_type: Option<String>,
    /// Gate `<actor_type>:<name>` when set, else the type gate `<actor_type>`.
    pub name: Option<String>,
    /// The cluster-wide limit; ≤ 0 makes the limit ignored.
    pub max_concurrent: i32,
}

/// Names one dispatched gated trigger; hand it back to [`Gates::release`] on its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What [`Gates::acquire`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire<T> {
    /// No gate applies: send it now; there is nothing to release.
    Ungated(T),
    /// Every gate admitted it: send it now and release `ticket` on its result.
    Dispatch { ticket: Ticket, trigger: T },
    /// It waits in a gate's queue; a later call hands it back.
    Queued,
    /// The queue is full: report the trigger FAILED.
    Overflow(T),
}

/// Triggers freed or dropped by a stream or membership change.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome<T> {
    /// Now admitted: send each and release its ticket on its result.
    pub dispatch: Vec<(Ticket, T)>,
    /// Were waiting on a gate that no stream declares any more: report each UNDELIVERABLE.
    pub undeliverable: Vec<T>,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Self {
            dispatch: Vec::new(),
            undeliverable: Vec::new(),
        }
    }
}

/// A metric to record; `key` is the `concurrency_key` label (the gate key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricUpdate {
    /// `dapr_scheduler_concurrency_throttled_total` +1.
    Throttled { key: String },
    /// `dapr_scheduler_concurrency_pending` = `value`.
    Pending { key: String, value: usize },
    /// `dapr_scheduler_concurrency_inflight` = `value`.
    Inflight { key: String, value: u32 },
}

/// A gate as seen from outside, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateState {
    pub global_limit: u32,
    pub local_limit: u32,
    pub in_flight: u32,
    pub pending: usize,
}

/// This replica's share of a global limit: `global` when alone; otherwise `global / replicas`,
/// never below 1 (a tiny limit would starve some replica), plus one for the lowest
/// `global % replicas` indices so the shares add up to `global`.
pub fn local_limit(global: u32, index: usize, replicas: usize) -> u32 {
    if replicas <= 1 {
        return global;
    }
    let (global, index, replicas) = (u64::from(global), index as u64, replicas as u64);
    let base = global / replicas;
    if base < 1 {
        return 1;
    }
    let local = if index < global % replicas {
        base + 1
    } else {
        base
    };
    // Never above `global`, so it fits.
    u32::try_from(local).unwrap_or(u32::MAX)
}

/// All gates of one replica engine, every namespace.
pub struct Gates<T> {
    share: Share,
    namespaces: BTreeMap<String, Namespace<T>>,
    streams: HashMap<u64, Stream>,
    book: Book,
}

impl<T> Default for Gates<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Gates<T> {
    /// No gates; alone in the cluster until [`Gates::set_share`] says otherwise.
    pub fn new() -> Self {
        Self {
            share: Share {
                index: 0,
                replicas: 1,
            },
            namespaces: BTreeMap::new(),
            streams: HashMap::new(),
            book: Book::default(),
        }
    }

    /// Membership changed: this replica is `index` among `replicas` (0 counts as 1). Every queue
    /// is drained against the new shares.
    pub fn set_share(&mut self, index: usize, replicas: usize) -> Vec<(Ticket, T)> {
        self.share = Share {
            index,
            replicas: replicas.max(1),
        };
        let mut out = Vec::new();
        for (name, ns) in &mut self.namespaces {
            ns.drain_all(name, self.share, &mut self.book, &mut out);
        }
        out
    }

    /// Stream `stream` of `namespace` connected with `limits` (a known id replaces its earlier
    /// declaration). Valid limits create their gates or set their limit.
    pub fn add_stream(&mut self, stream: u64, namespace: &str, limits: &[Limit]) -> Outcome<T> {
        let mut out = Outcome::default();
        let old = self.streams.remove(&stream);

        let ns = self.namespaces.entry(namespace.to_owned()).or_default();
        let mut keys: Vec<String> = Vec::new();
        for limit in limits {
            let Some(actor_type) = &limit.actor_type else {
                continue;
            };
            let Ok(global) = u32::try_from(limit.max_concurrent) else {
                continue;
            };
            if global == 0 {
                continue;
            }
            let key = match &limit.name {
                Some(name) => format!("{actor_type}:{name}"),
                None => actor_type.clone(),
            };
            let gate = ns
                .gates
                .entry(key.clone())
                .or_insert_with(|| Gate::new(&mut self.book));
            gate.global = global;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in &keys {
            if let Some(gate) = ns.gates.get_mut(key) {
                gate.refs += 1;
            }
        }
        self.streams.insert(
            stream,
            Stream {
                namespace: namespace.to_owned(),
                keys,
            },
        );

        if let Some(old) = old {
            self.unref(&old, &mut out);
        }
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            if ns.gates.is_empty() {
                self.namespaces.remove(namespace);
            } else {
                ns.drain_all(namespace, self.share, &mut self.book, &mut out.dispatch);
            }
        }
        out
    }

    /// Stream `stream` closed: gates no live stream of its namespace declares disappear, and
    /// their waiting triggers are handed back as undeliverable. Unknown ids are ignored.
    pub fn remove_stream(&mut self, stream: u64) -> Outcome<T> {
        let mut out = Outcome::default();
        if let Some(old) = self.streams.remove(&stream) {
            self.unref(&old, &mut out);
        }
        out
    }

    /// Admits an actor trigger (type `actor_type`, metadata `concurrency_key`), queues it, or
    /// refuses it. Call only for actor targets: other targets are never gated.
    pub fn acquire(
        &mut self,
        namespace: &str,
        actor_type: &str,
        concurrency_key: Option<&str>,
        trigger: T,
    ) -> Acquire<T> {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return Acquire::Ungated(trigger);
        };
        let keys = ns.keys(actor_type, concurrency_key);
        if keys.is_empty() {
            return Acquire::Ungated(trigger);
        }
        match ns.try_acquire(&keys, self.share) {
            Ok(held) => {
                let ticket = ns.dispatch(namespace, held, &mut self.book);
                Acquire::Dispatch { ticket, trigger }
            }
            Err(failed) => {
                self.book.metrics.push(MetricUpdate::Throttled {
                    key: keys[failed].clone(),
                });
                let Some(first) = ns.gates.get_mut(&keys[0]) else {
                    // Unreachable: `keys` only names existing gates. FAILED makes the cron retry.
                    return Acquire::Overflow(trigger);
                };
                if first.pending.len() >= MAX_PENDING {
                    return Acquire::Overflow(trigger);
                }
                first.pending.push_back(Waiting {
                    actor_type: actor_type.to_owned(),
                    concurrency_key: concurrency_key.map(str::to_owned),
                    trigger,
                });
                let value = first.pending.len();
                self.book.metrics.push(MetricUpdate::Pending {
                    key: keys[0].clone(),
                    value,
                });
                Acquire::Queued
            }
        }
    }

    /// A dispatched trigger has its result (SUCCESS, FAILED, UNDELIVERABLE or stream close): frees
    /// its gates and hands back the waiters now admitted. Unknown or repeated tickets, and gates
    /// removed meanwhile, are ignored.
    pub fn release(&mut self, ticket: Ticket) -> Vec<(Ticket, T)> {
        let mut out = Vec::new();
        let Some(held) = self.book.held.remove(&ticket) else {
            return out;
        };
        let Some(ns) = self.namespaces.get_mut(&held.namespace) else {
            return out;
        };
        for (key, id) in &held.gates {
            let Some(gate) = ns.gates.get_mut(key) else {
                continue;
            };
            if gate.id != *id {
                continue;
            }
            gate.in_flight = gate.in_flight.saturating_sub(1);
            let value = gate.in_flight;
            self.book.metrics.push(MetricUpdate::Inflight {
                key: key.clone(),
                value,
            });
            ns.drain(key, &held.namespace, self.share, &mut self.book, &mut out);
        }
        out
    }

    /// Shutdown: forgets every gate, stream and ticket and hands back all waiting triggers (to be
    /// reported UNDELIVERABLE). Later releases are ignored.
    pub fn shutdown(&mut self) -> Vec<T> {
        let namespaces = std::mem::take(&mut self.namespaces);
        self.streams.clear();
        self.book.held.clear();
        namespaces
            .into_values()
            .flat_map(|ns| ns.gates.into_values())
            .flat_map(|gate| gate.pending.into_iter().map(|w| w.trigger))
            .collect()
    }

    /// The metric updates since the last call, in order. Call after every operation.
    pub fn take_metrics(&mut self) -> Vec<MetricUpdate> {
        std::mem::take(&mut self.book.metrics)
    }

    /// The gate `key` of `namespace`, if a stream declares it.
    pub fn gate(&self, namespace: &str, key: &str) -> Option<GateState> {
        let gate = self.namespaces.get(namespace)?.gates.get(key)?;
        Some(GateState {
            global_limit: gate.global,
            local_limit: gate.local_limit(self.share),
            in_flight: gate.in_flight,
            pending: gate.pending.len(),
        })
    }

    /// Drops `stream`'s references; removed gates give up their waiters as undeliverable, and the
    /// remaining queues are retried (a waiter may have been blocked only by a removed gate).
    fn unref(&mut self, stream: &Stream, out: &mut Outcome<T>) {
        let Some(ns) = self.namespaces.get_mut(&stream.namespace) else {
            return;
        };
        let mut removed = false;
        for key in &stream.keys {
            let Some(gate) = ns.gates.get_mut(key) else {
                continue;
            };
            gate.refs = gate.refs.saturating_sub(1);
            if gate.refs == 0
                && let Some(gate) = ns.gates.remove(key)
            {
                out.undeliverable
                    .extend(gate.pending.into_iter().map(|w| w.trigger));
                removed = true;
            }
        }
        if ns.gates.is_empty() {
            self.namespaces.remove(&stream.namespace);
        } else if removed {
            ns.drain_all(
                &stream.namespace,
                self.share,
                &mut self.book,
                &mut out.dispatch,
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Share {
    index: usize,
    replicas: usize,
}

/// Which gate keys a live stream declares, to know when a gate is orphaned.
struct Stream {
    namespace: String,
    keys: Vec<String>,
}

/// Tickets, id counters and metric updates: the state every namespace writes to.
#[derive(Default)]
struct Book {
    held: HashMap<Ticket, Held>,
    next_ticket: u64,
    next_gate: u64,
    metrics: Vec<MetricUpdate>,
}

/// The gates (key and identity) one dispatched trigger holds.
struct Held {
    namespace: String,
    gates: Vec<(String, u64)>,
}

struct Waiting<T> {
    actor_type: String,
    concurrency_key: Option<String>,
    trigger: T,
}

struct Gate<T> {
    /// Distinguishes this gate from an earlier one under the same key.
    id: u64,
    global: u32,
    in_flight: u32,
    /// Live streams declaring this key.
    refs: usize,
    pending: VecDeque<Waiting<T>>,
}

impl<T> Gate<T> {
    fn new(book: &mut Book) -> Self {
        book.next_gate += 1;
        Self {
            id: book.next_gate,
            global: 0,
            in_flight: 0,
            refs: 0,
            pending: VecDeque::new(),
        }
    }

    fn local_limit(&self, share: Share) -> u32 {
        local_limit(self.global, share.index, share.replicas)
    }

    fn has_room(&self, share: Share) -> bool {
        self.in_flight < self.local_limit(share)
    }
}

struct Namespace<T> {
    gates: BTreeMap<String, Gate<T>>,
}

impl<T> Default for Namespace<T> {
    fn default() -> Self {
        Self {
            gates: BTreeMap::new(),
        }
    }
}

impl<T> Namespace<T> {
    /// The trigger's gates: the type gate, then the `type:concurrency_key` gate, where they exist.
    fn keys(&self, actor_type: &str, concurrency_key: Option<&str>) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if self.gates.contains_key(actor_type) {
            keys.push(actor_type.to_owned());
        }
        if let Some(name) = concurrency_key {
            let named = format!("{actor_type}:{name}");
            if self.gates.contains_key(&named) {
                keys.push(named);
            }
        }
        keys
    }

    /// Takes a slot in every gate of `keys`, or in none: `Err` holds the index of the first full
    /// gate.
    fn try_acquire(&mut self, keys: &[String], share: Share) -> Result<Vec<(String, u64)>, usize> {
        let mut held: Vec<(String, u64)> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            match self.gates.get_mut(key) {
                Some(gate) if gate.has_room(share) => {
                    gate.in_flight += 1;
                    held.push((key.clone(), gate.id));
                }
                _ => {
                    for (key, _) in &held {
                        if let Some(gate) = self.gates.get_mut(key) {
                            gate.in_flight = gate.in_flight.saturating_sub(1);
                        }
                    }
                    return Err(i);
                }
            }
        }
        Ok(held)
    }

    /// Records the slots `held` under a new ticket.
    fn dispatch(&self, namespace: &str, held: Vec<(String, u64)>, book: &mut Book) -> Ticket {
        for (key, _) in &held {
            if let Some(gate) = self.gates.get(key) {
                book.metrics.push(MetricUpdate::Inflight {
                    key: key.clone(),
                    value: gate.in_flight,
                });
            }
        }
        book.next_ticket += 1;
        let ticket = Ticket(book.next_ticket);
        book.held.insert(
            ticket,
            Held {
                namespace: namespace.to_owned(),
                gates: held,
            },
        );
        ticket
    }

    /// Admits waiters of gate `key`, oldest first, while it has room. A waiter blocked by its other
    /// gate is skipped but keeps its place ahead of younger ones (HEAD `seniority`).
    fn drain(
        &mut self,
        key: &str,
        namespace: &str,
        share: Share,
        book: &mut Book,
        out: &mut Vec<(Ticket, T)>,
    ) {
        let mut skipped = Vec::new();
        while let Some(waiting) = self
            .gates
            .get_mut(key)
            .filter(|gate| gate.has_room(share))
            .and_then(|gate| gate.pending.pop_front())
        {
            let keys = self.keys(&waiting.actor_type, waiting.concurrency_key.as_deref());
            match self.try_acquire(&keys, share) {
                Ok(held) => out.push((self.dispatch(namespace, held, book), waiting.trigger)),
                Err(_) => skipped.push(waiting),
            }
        }
        if let Some(gate) = self.gates.get_mut(key) {
            for waiting in skipped.into_iter().rev() {
                gate.pending.push_front(waiting);
            }
            let value = gate.pending.len();
            book.metrics.push(MetricUpdate::Pending {
                key: key.to_owned(),
                value,
            });
        }
    }

    /// Drains every gate that has waiters, in key order.
    fn drain_all(
        &mut self,
        namespace: &str,
        share: Share,
        book: &mut Book,
        out: &mut Vec<(Ticket, T)>,
    ) {
        let waiting: Vec<String> = self
            .gates
            .iter()
            .filter(|(_, gate)| !gate.pending.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        for key in waiting {
            self.drain(&key, namespace, share, book, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const NS: &str = "default";

    fn type_limit(actor_type: &str, max: i32) -> Limit {
        Limit {
            actor_type: Some(actor_type.into()),
            name: None,
            max_concurrent: max,
        }
    }

    fn named_limit(actor_type: &str, name: &str, max: i32) -> Limit {
        Limit {
            actor_type: Some(actor_type.into()),
            name: Some(name.into()),
            max_concurrent: max,
        }
    }

    fn with_limits(limits: &[Limit]) -> Gates<&'static str> {
        let mut gates = Gates::new();
        let out = gates.add_stream(1, NS, limits);
        assert_eq!(out, Outcome::default());
        gates
    }

    /// The ticket of a dispatched trigger; panics on any other outcome.
    fn dispatched(acquire: Acquire<&'static str>, expected: &str) -> Ticket {
        match acquire {
            Acquire::Dispatch { ticket, trigger } if trigger == expected => ticket,
            other => panic!("expected {expected} dispatched, got {other:?}"),
        }
    }

    fn names(dispatch: &[(Ticket, &'static str)]) -> Vec<&'static str> {
        dispatch.iter().map(|(_, t)| *t).collect()
    }

    fn pending_values(metrics: &[MetricUpdate], key: &str) -> Vec<usize> {
        metrics
            .iter()
            .filter_map(|m| match m {
                MetricUpdate::Pending { key: k, value } if k == key => Some(*value),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_local_limit_splits_the_global_limit_by_replica_index() {
        assert_eq!(local_limit(6, 0, 1), 6);
        assert_eq!(local_limit(6, 0, 0), 6);
        assert_eq!(
            (0..3).map(|i| local_limit(6, i, 3)).collect::<Vec<_>>(),
            [2, 2, 2]
        );
        assert_eq!(
            (0..3).map(|i| local_limit(7, i, 3)).collect::<Vec<_>>(),
            [3, 2, 2]
        );
        assert_eq!(
            (0..3).map(|i| local_limit(8, i, 3)).collect::<Vec<_>>(),
            [3, 3, 2]
        );
        // Below one slot per replica every replica still gets one.
        assert_eq!(
            (0..3).map(|i| local_limit(2, i, 3)).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert_eq!(local_limit(u32::MAX, 0, 2), u32::MAX / 2 + 1);
    }

    #[test]
    fn cluster_replicas_admit_their_share_of_the_global_limit() {
        for (global, shares) in [(6, [2, 2, 2]), (7, [3, 2, 2])] {
            let mut total = 0;
            for (index, share) in shares.into_iter().enumerate() {
                let mut gates = with_limits(&[type_limit("t", global)]);
                assert!(gates.set_share(index, 3).is_empty());
                let admitted = (0..5)
                    .filter(|_| {
                        matches!(gates.acquire(NS, "t", None, "x"), Acquire::Dispatch { .. })
                    })
                    .count();
                assert_eq!(admitted, share, "global {global}, replica {index}");
                total += admitted;
            }
            assert_eq!(total, global as usize);
        }
    }

    #[test]
    fn a_membership_change_drains_the_queues_against_the_new_share() {
        let mut gates = with_limits(&[type_limit("t", 3)]);
        gates.set_share(2, 3);
        let a = dispatched(gates.acquire(NS, "t", None, "a"), "a");
        assert_eq!(gates.acquire(NS, "t", None, "b"), Acquire::Queued);
        assert_eq!(gates.acquire(NS, "t", None, "c"), Acquire::Queued);
        assert_eq!(names(&gates.set_share(0, 1)), ["b", "c"]);
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(3));
        assert!(gates.release(a).is_empty());
    }

    #[test]
    fn disconnect_drops_the_gate_and_a_new_watcher_gets_a_fresh_one() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        let held = dispatched(gates.acquire(NS, "t", None, "first"), "first");
        assert_eq!(gates.acquire(NS, "t", None, "second"), Acquire::Queued);

        let out = gates.remove_stream(1);
        assert_eq!(out.undeliverable, ["second"]);
        assert!(out.dispatch.is_empty());
        assert_eq!(gates.gate(NS, "t"), None);

        gates.add_stream(2, NS, &[type_limit("t", 1)]);
        // The closed stream's trigger is released late: it must not free the new gate's slot.
        let again = dispatched(gates.acquire(NS, "t", None, "first"), "first");
        assert!(gates.release(held).is_empty());
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(1));
        assert_eq!(gates.acquire(NS, "t", None, "second"), Acquire::Queued);
        assert_eq!(names(&gates.release(again)), ["second"]);
    }

    #[test]
    fn failed_results_release_the_slot_like_successes() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        let first = dispatched(gates.acquire(NS, "t", None, "first"), "first");
        assert_eq!(gates.acquire(NS, "t", None, "second"), Acquire::Queued);
        // The engine releases on any result; FAILED is no different here.
        let next = gates.release(first);
        assert_eq!(names(&next), ["second"]);
        assert!(gates.release(next[0].0).is_empty());
        assert_eq!(
            gates.gate(NS, "t").map(|g| (g.in_flight, g.pending)),
            Some((0, 0))
        );
    }

    #[test]
    fn group_admits_the_type_limit_and_the_third_after_an_ack() {
        let mut gates = with_limits(&[type_limit("t", 2)]);
        let a = dispatched(gates.acquire(NS, "t", None, "a"), "a");
        dispatched(gates.acquire(NS, "t", None, "b"), "b");
        assert_eq!(gates.acquire(NS, "t", None, "c"), Acquire::Queued);
        assert_eq!(names(&gates.release(a)), ["c"]);
    }

    #[test]
    fn independent_named_gates_do_not_block_each_other() {
        let mut gates = with_limits(&[named_limit("t", "alpha", 1), named_limit("t", "beta", 1)]);
        let a = dispatched(gates.acquire(NS, "t", Some("alpha"), "a1"), "a1");
        dispatched(gates.acquire(NS, "t", Some("beta"), "b1"), "b1");
        assert_eq!(gates.acquire(NS, "t", Some("alpha"), "a2"), Acquire::Queued);
        assert_eq!(gates.acquire(NS, "t", Some("beta"), "b2"), Acquire::Queued);
        // No type gate: a trigger without (or with another) key is not gated at all.
        assert_eq!(
            gates.acquire(NS, "t", None, "free"),
            Acquire::Ungated("free")
        );
        assert_eq!(
            gates.acquire(NS, "t", Some("gamma"), "free"),
            Acquire::Ungated("free")
        );
        assert_eq!(names(&gates.release(a)), ["a2"]);
        assert_eq!(gates.gate(NS, "t:beta").map(|g| g.pending), Some(1));
    }

    #[test]
    fn multiapp_a_stream_without_limits_keeps_the_other_streams_gate() {
        let mut gates = with_limits(&[type_limit("typeA", 1)]);
        let out = gates.add_stream(2, NS, &[]);
        assert_eq!(out, Outcome::default());
        for name in ["b1", "b2", "b3"] {
            assert_eq!(
                gates.acquire(NS, "typeB", None, name),
                Acquire::Ungated(name)
            );
        }
        dispatched(gates.acquire(NS, "typeA", None, "a1"), "a1");
        assert_eq!(gates.acquire(NS, "typeA", None, "a2"), Acquire::Queued);
        assert_eq!(gates.acquire(NS, "typeA", None, "a3"), Acquire::Queued);
        // B leaving does not touch A's gate either.
        assert_eq!(gates.remove_stream(2), Outcome::default());
        assert_eq!(gates.gate(NS, "typeA").map(|g| g.pending), Some(2));
    }

    #[test]
    fn named_routes_by_concurrency_key_and_leaves_other_keys_unlimited() {
        let mut gates = with_limits(&[named_limit("t", "slow", 1)]);
        dispatched(gates.acquire(NS, "t", Some("slow"), "s1"), "s1");
        assert_eq!(gates.acquire(NS, "t", Some("slow"), "s2"), Acquire::Queued);
        for name in ["f1", "f2", "f3"] {
            assert_eq!(
                gates.acquire(NS, "t", Some("fast"), name),
                Acquire::Ungated(name)
            );
        }
    }

    #[test]
    fn nolimit_never_gates() {
        let mut gates = Gates::new();
        gates.add_stream(1, NS, &[]);
        for _ in 0..10 {
            assert_eq!(
                gates.acquire(NS, "t", Some("k"), "x"),
                Acquire::Ungated("x")
            );
        }
        assert_eq!(
            gates.acquire("other", "t", None, "x"),
            Acquire::Ungated("x")
        );
        assert!(gates.take_metrics().is_empty());
    }

    #[test]
    fn serial_admits_one_at_a_time_in_arrival_order() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        let mut ticket = dispatched(gates.acquire(NS, "t", None, "j0"), "j0");
        let later = ["j1", "j2", "j3", "j4"];
        for name in later {
            assert_eq!(gates.acquire(NS, "t", None, name), Acquire::Queued);
        }
        for name in later {
            let next = gates.release(ticket);
            assert_eq!(names(&next), [name]);
            assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(1));
            ticket = next[0].0;
        }
        assert!(gates.release(ticket).is_empty());
    }

    /// Upstream HEAD `concurrency/seniority`, step by step.
    #[test]
    fn seniority_skipped_elders_keep_their_place() {
        let mut gates = with_limits(&[type_limit("mytype", 2), named_limit("mytype", "hot", 1)]);
        let hold_hot = dispatched(
            gates.acquire(NS, "mytype", Some("hot"), "hold-hot"),
            "hold-hot",
        );
        let hold_type = dispatched(gates.acquire(NS, "mytype", None, "hold-type"), "hold-type");
        gates.take_metrics();

        assert_eq!(
            gates.acquire(NS, "mytype", Some("hot"), "w1"),
            Acquire::Queued
        );
        assert_eq!(gates.acquire(NS, "mytype", None, "f1"), Acquire::Queued);
        assert_eq!(
            gates.acquire(NS, "mytype", Some("hot"), "w2"),
            Acquire::Queued
        );
        let metrics = gates.take_metrics();
        assert_eq!(pending_values(&metrics, "mytype"), [1, 2, 3]);
        assert!(pending_values(&metrics, "mytype:hot").is_empty());
        let throttled = MetricUpdate::Throttled {
            key: "mytype".into(),
        };
        assert_eq!(metrics.iter().filter(|m| **m == throttled).count(), 3);

        // w1 is blocked by `hot`, so f1 overtakes it without taking its place.
        let f1 = gates.release(hold_type);
        assert_eq!(names(&f1), ["f1"]);
        assert_eq!(pending_values(&gates.take_metrics(), "mytype"), [2]);

        // `mytype` is freed first and w1 still finds `hot` held; the next `mytype` release admits
        // w1, not the younger w2.
        assert!(gates.release(hold_hot).is_empty());
        assert_eq!(pending_values(&gates.take_metrics(), "mytype"), [2]);
        let w1 = gates.release(f1[0].0);
        assert_eq!(names(&w1), ["w1"]);
        assert_eq!(pending_values(&gates.take_metrics(), "mytype"), [1]);

        // Freeing `mytype` before `hot` retries w2 while `hot` is still held: w2 waits for the
        // next `mytype` release, so a fresh f2 goes first (as upstream).
        assert!(gates.release(w1[0].0).is_empty());
        let f2 = dispatched(gates.acquire(NS, "mytype", None, "f2"), "f2");
        assert_eq!(names(&gates.release(f2)), ["w2"]);
    }

    #[test]
    fn the_throttled_key_is_the_first_full_gate() {
        let mut gates = with_limits(&[type_limit("t", 5), named_limit("t", "k", 1)]);
        dispatched(gates.acquire(NS, "t", Some("k"), "a"), "a");
        gates.take_metrics();
        assert_eq!(gates.acquire(NS, "t", Some("k"), "b"), Acquire::Queued);
        assert_eq!(
            gates.take_metrics(),
            [
                MetricUpdate::Throttled { key: "t:k".into() },
                MetricUpdate::Pending {
                    key: "t".into(),
                    value: 1
                },
            ]
        );
        // The partial acquisition of `t` was rolled back.
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(1));
    }

    #[test]
    fn inflight_is_recorded_on_dispatch_and_release() {
        let mut gates = with_limits(&[type_limit("t", 2), named_limit("t", "k", 2)]);
        let a = dispatched(gates.acquire(NS, "t", Some("k"), "a"), "a");
        assert_eq!(
            gates.take_metrics(),
            [
                MetricUpdate::Inflight {
                    key: "t".into(),
                    value: 1
                },
                MetricUpdate::Inflight {
                    key: "t:k".into(),
                    value: 1
                },
            ]
        );
        assert!(gates.release(a).is_empty());
        assert_eq!(
            gates.take_metrics(),
            [
                MetricUpdate::Inflight {
                    key: "t".into(),
                    value: 0
                },
                MetricUpdate::Pending {
                    key: "t".into(),
                    value: 0
                },
                MetricUpdate::Inflight {
                    key: "t:k".into(),
                    value: 0
                },
                MetricUpdate::Pending {
                    key: "t:k".into(),
                    value: 0
                },
            ]
        );
    }

    #[test]
    fn a_full_queue_overflows() {
        let mut gates: Gates<usize> = Gates::new();
        gates.add_stream(1, NS, &[type_limit("t", 1)]);
        assert!(matches!(
            gates.acquire(NS, "t", None, 0),
            Acquire::Dispatch { .. }
        ));
        for i in 1..=MAX_PENDING {
            assert_eq!(gates.acquire(NS, "t", None, i), Acquire::Queued);
        }
        gates.take_metrics();
        assert_eq!(gates.acquire(NS, "t", None, 7), Acquire::Overflow(7));
        assert_eq!(
            gates.take_metrics(),
            [MetricUpdate::Throttled { key: "t".into() }]
        );
        let dropped = gates.remove_stream(1).undeliverable;
        assert_eq!(dropped.len(), MAX_PENDING);
        assert!(dropped.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn limits_without_an_actor_target_or_a_positive_maximum_are_ignored() {
        let gates = with_limits(&[
            Limit {
                actor_type: None,
                name: None,
                max_concurrent: 3,
            },
            type_limit("zero", 0),
            type_limit("negative", -1),
        ]);
        assert!(gates.namespaces.is_empty());
        assert_eq!(gates.gate(NS, "zero"), None);
    }

    #[test]
    fn the_last_writer_sets_the_limit_and_a_raise_admits_waiters() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        dispatched(gates.acquire(NS, "t", None, "a"), "a");
        assert_eq!(gates.acquire(NS, "t", None, "b"), Acquire::Queued);
        assert_eq!(gates.acquire(NS, "t", None, "c"), Acquire::Queued);
        let out = gates.add_stream(2, NS, &[type_limit("t", 3)]);
        assert_eq!(names(&out.dispatch), ["b", "c"]);
        assert_eq!(gates.gate(NS, "t").map(|g| g.global_limit), Some(3));
        // Still referenced by stream 2 after stream 1 goes.
        assert_eq!(gates.remove_stream(1), Outcome::default());
        assert_eq!(
            gates.gate(NS, "t").map(|g| (g.global_limit, g.in_flight)),
            Some((3, 3))
        );
    }

    #[test]
    fn removing_a_named_gate_frees_waiters_it_blocked() {
        let mut gates = with_limits(&[type_limit("t", 5)]);
        gates.add_stream(2, NS, &[named_limit("t", "k", 1)]);
        let a = dispatched(gates.acquire(NS, "t", Some("k"), "a"), "a");
        assert_eq!(gates.acquire(NS, "t", Some("k"), "b"), Acquire::Queued);
        let out = gates.remove_stream(2);
        assert_eq!(names(&out.dispatch), ["b"]);
        assert!(out.undeliverable.is_empty());
        assert!(gates.release(a).is_empty());
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(1));
    }

    #[test]
    fn gates_are_per_namespace() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        dispatched(gates.acquire(NS, "t", None, "a"), "a");
        assert_eq!(
            gates.acquire("other", "t", None, "b"),
            Acquire::Ungated("b")
        );
        gates.add_stream(2, "other", &[type_limit("t", 1)]);
        dispatched(gates.acquire("other", "t", None, "c"), "c");
        assert_eq!(gates.remove_stream(2), Outcome::default());
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(1));
    }

    #[test]
    fn a_stream_redeclaring_its_limits_replaces_them() {
        let mut gates = with_limits(&[type_limit("t", 1), named_limit("t", "k", 1)]);
        assert_eq!(
            gates.acquire(NS, "t", Some("k"), "a"),
            Acquire::Dispatch {
                ticket: Ticket(1),
                trigger: "a"
            }
        );
        assert_eq!(gates.acquire(NS, "t", Some("k"), "b"), Acquire::Queued);
        let out = gates.add_stream(1, NS, &[named_limit("t", "k", 1)]);
        assert_eq!(out.undeliverable, ["b"]);
        assert_eq!(gates.gate(NS, "t"), None);
        assert_eq!(gates.gate(NS, "t:k").map(|g| g.in_flight), Some(1));
    }

    #[test]
    fn unknown_and_repeated_releases_are_harmless() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        let a = dispatched(gates.acquire(NS, "t", None, "a"), "a");
        assert!(gates.release(Ticket(999)).is_empty());
        assert!(gates.release(a).is_empty());
        assert!(gates.release(a).is_empty());
        assert_eq!(gates.gate(NS, "t").map(|g| g.in_flight), Some(0));
        assert_eq!(gates.remove_stream(42), Outcome::default());
    }

    #[test]
    fn shutdown_hands_back_every_waiter() {
        let mut gates = with_limits(&[type_limit("t", 1)]);
        let a = dispatched(gates.acquire(NS, "t", None, "a"), "a");
        assert_eq!(gates.acquire(NS, "t", None, "b"), Acquire::Queued);
        assert_eq!(gates.shutdown(), ["b"]);
        assert!(gates.release(a).is_empty());
        assert_eq!(gates.gate(NS, "t"), None);
    }

    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            (x % n as u64) as usize
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// Per gate identity: its in-flight count; checks it matches the outstanding tickets.
    fn check_invariants(gates: &Gates<u64>, before: &HashMap<u64, u32>) -> HashMap<u64, u32> {
        let mut held: HashMap<(String, String, u64), u32> = HashMap::new();
        for h in gates.book.held.values() {
            for (key, id) in &h.gates {
                *held
                    .entry((h.namespace.clone(), key.clone(), *id))
                    .or_default() += 1;
            }
        }
        let mut now = HashMap::new();
        for (ns_name, ns) in &gates.namespaces {
            assert!(!ns.gates.is_empty(), "empty namespace {ns_name} kept");
            for (key, gate) in &ns.gates {
                let tickets = held.get(&(ns_name.clone(), key.clone(), gate.id)).copied();
                assert_eq!(gate.in_flight, tickets.unwrap_or(0), "{ns_name}/{key}");
                assert!(gate.refs > 0, "{ns_name}/{key} orphaned");
                assert!(gate.pending.len() <= MAX_PENDING);
                let grew = gate.in_flight > before.get(&gate.id).copied().unwrap_or(0);
                if grew {
                    assert!(
                        gate.in_flight <= gate.local_limit(gates.share),
                        "{ns_name}/{key}"
                    );
                }
                now.insert(gate.id, gate.in_flight);
            }
        }
        now
    }

    /// Where the randomized test's triggers went.
    #[derive(Default)]
    struct Tally {
        returned: HashSet<u64>,
        outstanding: Vec<Ticket>,
        queued: usize,
        freed: usize,
    }

    impl Tally {
        fn returned(&mut self, trigger: u64) {
            assert!(
                self.returned.insert(trigger),
                "trigger {trigger} returned twice"
            );
        }

        fn dispatched(&mut self, out: Vec<(Ticket, u64)>) {
            self.freed += out.len();
            for (ticket, trigger) in out {
                self.outstanding.push(ticket);
                self.returned(trigger);
            }
        }

        fn outcome(&mut self, out: Outcome<u64>) {
            self.dispatched(out.dispatch);
            for trigger in out.undeliverable {
                self.returned(trigger);
            }
        }
    }

    #[test]
    fn random_operation_sequences_keep_the_invariants() {
        let (mut queued, mut freed) = (0, 0);
        for seed in 1..=300u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut gates: Gates<u64> = Gates::new();
            let mut tally = Tally::default();
            let mut next_trigger = 0u64;
            let mut released: Vec<Ticket> = Vec::new();
            let mut counts = HashMap::new();

            for _ in 0..200 {
                let ns = rng.pick(&["a", "a", "b"]);
                match rng.below(12) {
                    0 | 1 => {
                        let limits: Vec<Limit> = (0..=rng.below(3))
                            .map(|_| Limit {
                                actor_type: (rng.below(8) != 0)
                                    .then(|| rng.pick(&["t1", "t2"]).to_owned()),
                                name: [None, Some("x"), Some("y")][rng.below(3)].map(Into::into),
                                max_concurrent: rng.below(4) as i32 - 1,
                            })
                            .collect();
                        tally.outcome(gates.add_stream(rng.below(4) as u64, ns, &limits));
                    }
                    2 => tally.outcome(gates.remove_stream(rng.below(5) as u64)),
                    3 => tally.dispatched(gates.set_share(rng.below(4), rng.below(4))),
                    4..=8 => {
                        next_trigger += 1;
                        let ck = [None, Some("x"), Some("y"), Some("z")][rng.below(4)];
                        match gates.acquire(ns, rng.pick(&["t1", "t2"]), ck, next_trigger) {
                            Acquire::Ungated(t) | Acquire::Overflow(t) => tally.returned(t),
                            Acquire::Dispatch { ticket, trigger } => {
                                tally.outstanding.push(ticket);
                                tally.returned(trigger);
                            }
                            Acquire::Queued => tally.queued += 1,
                        }
                    }
                    9 | 10 if !tally.outstanding.is_empty() => {
                        let at = rng.below(tally.outstanding.len());
                        let ticket = tally.outstanding.swap_remove(at);
                        released.push(ticket);
                        tally.dispatched(gates.release(ticket));
                    }
                    _ => {
                        // A repeated or unknown ticket changes nothing.
                        let ticket = match released.len() {
                            0 => Ticket(u64::MAX),
                            n => released[rng.below(n)],
                        };
                        assert!(gates.release(ticket).is_empty(), "seed {seed}");
                    }
                }
                counts = check_invariants(&gates, &counts);
                gates.take_metrics();
            }

            // Close every stream: what still waits comes back undeliverable.
            for stream in 0..4 {
                tally.outcome(gates.remove_stream(stream));
            }
            assert!(gates.namespaces.is_empty(), "seed {seed}");
            for ticket in std::mem::take(&mut tally.outstanding) {
                assert!(gates.release(ticket).is_empty(), "seed {seed}");
            }
            assert!(gates.book.held.is_empty(), "seed {seed}");
            assert_eq!(
                tally.returned.len() as u64,
                next_trigger,
                "seed {seed}: triggers lost"
            );
            queued += tally.queued;
            freed += tally.freed;
        }
        // The sequences do exercise the queues.
        assert!(
            queued > 1000 && freed > 500,
            "queued {queued}, freed {freed}"
        );
    }
}
