//! The store: replicated state, its reads, snapshots, and the leader-local lease clock.

use serde::{Deserialize, Serialize};

use super::error::{Error, WatchCompacted};
use super::keys::KeyRange;
use super::kv::{BASE_DB_SIZE, KvState};
use super::lease::{DEFAULT_MIN_LEASE_TTL, LeaseClock, LeaseTimeToLive, Lessor};
use super::quota::{AlarmMember, AlarmType, Alarms, DEFAULT_QUOTA_BYTES, LEASE_OVERHEAD};
use super::txn::{self, DEFAULT_MAX_TXN_OPS};
use super::types::{
    Event, LeaseId, RangeRequest, RangeResponse, Revision, TxnRequest, TxnResponse,
};
use super::write::event_of;

/// Local settings (flags); not part of the replicated state. Every member of a cluster must use
/// the same values, since quota and op limits decide whether a command applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// etcd `--quota-backend-bytes`: < 0 disables the quota, 0 means 2 GiB.
    pub quota_backend_bytes: i64,
    /// etcd `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// Leases are granted at least this TTL (seconds).
    pub min_lease_ttl: i64,
    /// The member a NOSPACE alarm raised while applying is attributed to. The alarm is replicated
    /// state, so use one value cluster-wide (e.g. the lowest member id) to keep replicas
    /// identical; the gRPC front door raises it with its own id via `Command::Alarm` first.
    pub alarm_member_id: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            quota_backend_bytes: 0,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            min_lease_ttl: DEFAULT_MIN_LEASE_TTL,
            alarm_member_id: 0,
        }
    }
}

impl StoreConfig {
    /// The effective quota in bytes, `None` when disabled.
    pub fn quota_bytes(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            q => Some(u64::try_from(q).unwrap_or(u64::MAX)),
        }
    }
}

/// Everything replicated: what a snapshot holds. Serialize it with any serde format (it has no
/// `skip_serializing_if`, so non-self-describing formats such as postcard work) and hand it back
/// to [`Store::restore`], which rebuilds the derived indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    pub(crate) kv: KvState,
    pub(crate) lessor: Lessor,
    pub(crate) alarms: Alarms,
    /// High-water mark of the accounted size (a bbolt file only shrinks on defragment).
    pub(crate) db_size: u64,
}

/// Maintenance.Status figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    pub revision: Revision,
    /// The last compaction revision (-1 when never compacted).
    pub compact_revision: Revision,
    /// Estimated backend file size: grows with writes, shrinks only on defragment.
    pub db_size: u64,
    /// Estimated bytes in use; compaction lowers it.
    pub db_size_in_use: u64,
    pub alarms: Vec<AlarmMember>,
}

/// A page of replayed history for a watcher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventBatch {
    /// Events in revision order; whole revisions only.
    pub events: Vec<Event>,
    /// Where the next page starts (the store revision + 1 when caught up).
    pub next_revision: Revision,
}

/// The engine. See the crate docs for the split between replicated and leader-local state.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) state: StoreState,
    pub(crate) clock: LeaseClock,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        let mut store = Self {
            config,
            state: StoreState::default(),
            clock: LeaseClock::default(),
        };
        store.refresh_size();
        store
    }

    /// Rebuilds a store from a snapshot. Leases keep no deadline until [`Store::promote`].
    pub fn restore(config: StoreConfig, state: StoreState) -> Self {
        let mut store = Self {
            config,
            state,
            clock: LeaseClock::default(),
        };
        store.state.kv.rebuild_size();
        for lease in store.state.lessor.leases.values_mut() {
            lease.keys.clear();
        }
        let attached: Vec<(LeaseId, Vec<u8>)> = store
            .state
            .kv
            .keys
            .iter()
            .filter_map(|(k, h)| {
                let lease = h.latest_live()?.put.as_ref()?.lease;
                (lease != 0).then(|| (lease, k.clone()))
            })
            .collect();
        for (lease, key) in attached {
            store.state.lessor.attach(lease, &key);
        }
        store.refresh_size();
        store
    }

    /// The replicated state, for snapshotting.
    pub fn state(&self) -> &StoreState {
        &self.state
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The current store revision (ResponseHeader.revision).
    pub fn revision(&self) -> Revision {
        self.state.kv.current_rev
    }

    /// The last compaction revision (-1 when never compacted).
    pub fn compact_revision(&self) -> Revision {
        self.state.kv.compact_rev
    }

    /// Accounted bytes in use right now.
    pub(crate) fn in_use(&self) -> u64 {
        let leases = super::history::len_u64(self.state.lessor.leases.len());
        BASE_DB_SIZE
            .saturating_add(self.state.kv.in_use)
            .saturating_add(leases.saturating_mul(LEASE_OVERHEAD))
    }

    /// Raises the high-water mark to what is in use.
    pub(crate) fn refresh_size(&mut self) {
        self.state.db_size = self.state.db_size.max(self.in_use());
    }

    pub fn status(&self) -> StoreStatus {
        StoreStatus {
            revision: self.revision(),
            compact_revision: self.compact_revision(),
            db_size: self.state.db_size,
            db_size_in_use: self.in_use(),
            alarms: self.state.alarms.get(AlarmType::None),
        }
    }

    /// Raised alarms of one type (`None` = all).
    pub fn alarms(&self, alarm: AlarmType) -> Vec<AlarmMember> {
        self.state.alarms.get(alarm)
    }

    /// Whether a write of `cost` accounted bytes fits under the quota (etcd
    /// `backendQuota.Available`: `size + cost < quota`). The front door calls this with
    /// [`Store::put_cost`] / [`Store::txn_cost`] before proposing, like etcd's quotaKVServer.
    pub fn quota_available(&self, cost: u64) -> bool {
        match self.config.quota_bytes() {
            _ if cost == 0 => true,
            None => true,
            Some(q) => self.state.db_size.saturating_add(cost) < q,
        }
    }

    pub fn put_cost(req: &super::types::PutRequest) -> u64 {
        super::quota::put_cost(req)
    }

    pub fn txn_cost(req: &TxnRequest) -> u64 {
        super::quota::txn_cost(req)
    }

    /// A serializable (local) KV.Range at the current revision.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        txn::check_range_request(req)?;
        self.check_corrupt()?;
        self.state.kv.range(req, self.revision())
    }

    /// A read-only KV.Txn served locally; a txn that writes must go through [`Store::apply`].
    pub fn read_txn(&self, req: &TxnRequest) -> Result<TxnResponse, Error> {
        txn::validate_txn(req, self.config.max_txn_ops)?;
        self.check_corrupt()?;
        if !req.is_read_only() {
            return Err(Error::NotReadOnly);
        }
        txn::read_only(&self.state.kv, req)
    }

    pub(crate) fn check_corrupt(&self) -> Result<(), Error> {
        if self.state.alarms.any(AlarmType::Corrupt) {
            Err(Error::Corrupt)
        } else {
            Ok(())
        }
    }

    /// Replays history for a watcher on `range` from `start` (inclusive), at most about
    /// `max_events` (whole revisions; at least one revision when any is pending). Fails like a
    /// watch on compacted history when `start` is below the compaction revision; `start` ≤ 0
    /// means "from now" (an empty batch).
    pub fn events_since(
        &self,
        range: &KeyRange,
        start: Revision,
        max_events: usize,
    ) -> Result<EventBatch, WatchCompacted> {
        let kv = &self.state.kv;
        let next_now = kv.current_rev.saturating_add(1);
        if start <= 0 {
            return Ok(EventBatch {
                events: Vec::new(),
                next_revision: next_now,
            });
        }
        if start < kv.compact_rev {
            return Err(WatchCompacted {
                compact_revision: kv.compact_rev,
            });
        }
        let mut found: Vec<(Revision, u32, Event)> = Vec::new();
        if let Some(bounds) = range.bounds() {
            for (key, h) in kv.keys.range::<[u8], _>(bounds) {
                for (before, e) in h.since(start) {
                    found.push((e.main, e.sub, event_of(key, e, before)));
                }
            }
        }
        found.sort_by_key(|(main, sub, _)| (*main, *sub));
        let mut events = Vec::new();
        let mut next_revision = next_now;
        let mut last_main = None;
        for (main, _, ev) in found {
            if events.len() >= max_events.max(1) && last_main != Some(main) {
                next_revision = main;
                break;
            }
            last_main = Some(main);
            events.push(ev);
        }
        Ok(EventBatch {
            events,
            next_revision,
        })
    }

    /// Every lease id, ascending (LeaseLeases).
    pub fn leases(&self) -> Vec<LeaseId> {
        self.state.lessor.leases.keys().copied().collect()
    }

    /// Whether a lease exists (replicated view; for a Put's lease check at the front door).
    pub fn lease_exists(&self, id: LeaseId) -> bool {
        self.state.lessor.contains(id)
    }

    /// Become the primary lessor (this replica is now the Raft leader): every lease gets its
    /// full (or checkpointed) TTL plus `extend_ms` from `now_ms`, as etcd's `Promote`.
    pub fn promote(&mut self, now_ms: u64, extend_ms: u64) {
        self.clock.promote(&self.state.lessor, now_ms, extend_ms);
    }

    /// Stop being the primary lessor (leadership lost).
    pub fn demote(&mut self) {
        self.clock.demote();
    }

    pub fn is_primary(&self) -> bool {
        self.clock.primary
    }

    /// A keep-alive: restarts the lease's TTL and returns it. Leader-local, not replicated.
    pub fn renew(&mut self, id: LeaseId, now_ms: u64) -> Result<i64, Error> {
        self.clock.renew(&self.state.lessor, id, now_ms)
    }

    /// LeaseTimeToLive, answered by the primary lessor.
    pub fn time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
        now_ms: u64,
    ) -> Result<LeaseTimeToLive, Error> {
        self.clock
            .time_to_live(&self.state.lessor, id, keys, now_ms)
    }

    /// Expired leases the leader should revoke now (at most `limit`; see `EXPIRED_RETRY_MS`).
    pub fn expired(&mut self, now_ms: u64, limit: usize) -> Vec<LeaseId> {
        self.clock.expired(&self.state.lessor, now_ms, limit)
    }
}
