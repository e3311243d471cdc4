//! Replicated commands and their application (etcd `applierV3backend` wrapped by the quota and
//! capped appliers). Deterministic: the outcome depends only on the state and the command.

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::lease::{
    LeaseCheckpoint, LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
};
use super::quota::{self, AlarmAction, AlarmRequest, AlarmResponse, AlarmType};
use super::store::Store;
use super::txn::{self, Path};
use super::types::{
    CompactRequest, CompactResponse, DeleteRangeRequest, DeleteRangeResponse, Event, PutRequest,
    PutResponse, Revision, TxnRequest, TxnResponse,
};
use super::write::{Committed, WriteTxn};

/// One replicated command (a Raft log entry's payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactRequest),
    LeaseGrant(LeaseGrantRequest),
    LeaseRevoke(LeaseRevokeRequest),
    LeaseCheckpoint(Vec<LeaseCheckpoint>),
    Alarm(AlarmRequest),
    /// Shrinks `db_size` to what is in use. Replicated (unlike etcd's per-member defragment) so
    /// that every replica takes the same quota decisions.
    Defragment,
}

/// The answer to one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact(CompactResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseCheckpoint { revision: Revision },
    Alarm(AlarmResponse),
    Defragment { revision: Revision },
}

/// What applying a command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The response, or why nothing was applied.
    pub result: Result<Response, Error>,
    /// The changes, all at revision `revision` (empty when nothing changed).
    pub events: Vec<Event>,
    /// The store revision after the command.
    pub revision: Revision,
}

impl Store {
    /// Applies one replicated command.
    pub fn apply(&mut self, cmd: Command) -> Applied {
        let mut events = Vec::new();
        let result = match cmd {
            Command::Put(r) => self.apply_put(&r, &mut events).map(Response::Put),
            Command::DeleteRange(r) => self
                .apply_delete(&r, &mut events)
                .map(Response::DeleteRange),
            Command::Txn(r) => self.apply_txn(&r, &mut events).map(Response::Txn),
            Command::Compact(r) => self.apply_compact(&r).map(Response::Compact),
            Command::LeaseGrant(r) => self.apply_grant(&r).map(Response::LeaseGrant),
            Command::LeaseRevoke(r) => self
                .apply_revoke(&r, &mut events)
                .map(Response::LeaseRevoke),
            Command::LeaseCheckpoint(cps) => {
                self.state.lessor.checkpoint(&cps);
                Ok(Response::LeaseCheckpoint {
                    revision: self.revision(),
                })
            }
            Command::Alarm(r) => {
                let alarms = self.state.alarms.apply(&r);
                Ok(Response::Alarm(AlarmResponse {
                    revision: self.revision(),
                    alarms,
                }))
            }
            Command::Defragment => {
                self.state.db_size = self.in_use();
                Ok(Response::Defragment {
                    revision: self.revision(),
                })
            }
        };
        self.refresh_size();
        Applied {
            result,
            events,
            revision: self.revision(),
        }
    }

    /// The NOSPACE gate in front of writes that add data: rejected while the alarm is raised
    /// (`applierV3Capped`), and rejected with the alarm raised when `cost` does not fit.
    fn check_space(&mut self, cost: u64) -> Result<(), Error> {
        if cost == 0 {
            return Ok(());
        }
        if self.state.alarms.any(AlarmType::Nospace) {
            return Err(Error::NoSpace);
        }
        if !self.quota_available(cost) {
            self.state.alarms.apply(&AlarmRequest {
                action: AlarmAction::Activate,
                member_id: self.config.alarm_member_id,
                alarm: AlarmType::Nospace,
            });
            return Err(Error::NoSpace);
        }
        Ok(())
    }

    fn finish(&mut self, committed: Committed, events: &mut Vec<Event>) {
        for (key, old, new) in committed.lease_moves {
            if old != 0 {
                self.state.lessor.detach(old, &key);
            }
            if new != 0 {
                self.state.lessor.attach(new, &key);
            }
        }
        *events = committed.events;
    }

    fn apply_put(&mut self, r: &PutRequest, events: &mut Vec<Event>) -> Result<PutResponse, Error> {
        self.check_corrupt()?;
        self.check_space(quota::put_cost(r))?;
        txn::check_put_request(r)?;
        if r.lease != 0 && !self.state.lessor.contains(r.lease) {
            return Err(Error::LeaseNotFound);
        }
        let lessor = &self.state.lessor;
        let mut w = WriteTxn::begin(&mut self.state.kv)?;
        match w.put(r, |id| lessor.contains(id)) {
            Ok(resp) => {
                let committed = w.commit();
                self.finish(committed, events);
                Ok(resp)
            }
            Err(e) => {
                w.rollback();
                Err(e)
            }
        }
    }

    fn apply_delete(
        &mut self,
        r: &DeleteRangeRequest,
        events: &mut Vec<Event>,
    ) -> Result<DeleteRangeResponse, Error> {
        self.check_corrupt()?;
        txn::check_delete_request(r)?;
        let mut w = WriteTxn::begin(&mut self.state.kv)?;
        let resp = w.delete_range(r);
        let committed = w.commit();
        self.finish(committed, events);
        Ok(resp)
    }

    fn apply_txn(&mut self, r: &TxnRequest, events: &mut Vec<Event>) -> Result<TxnResponse, Error> {
        self.check_corrupt()?;
        self.check_space(quota::txn_cost(r))?;
        txn::validate_txn(r, self.config.max_txn_ops)?;
        if r.is_read_only() {
            return txn::read_only(&self.state.kv, r);
        }
        let kv = &self.state.kv;
        let lessor = &self.state.lessor;
        let lease_exists = |id| lessor.contains(id);
        let path = Path::decide(kv, kv.current_rev, r);
        path.check(r, &mut |op| txn::check_txn_put(kv, op, &lease_exists))?;
        path.check(r, &mut |op| txn::check_txn_range(kv, op))?;
        let mut w = WriteTxn::begin(&mut self.state.kv)?;
        match txn::execute(&mut w, r, &path, &lease_exists) {
            Ok(mut resp) => {
                let committed = w.commit();
                resp.revision = committed.revision;
                self.finish(committed, events);
                Ok(resp)
            }
            Err(e) => {
                w.rollback();
                Err(e)
            }
        }
    }

    /// KV.Compact (etcd `store.updateCompactRev`): compacting at or below the last compaction
    /// is ErrCompacted, beyond the current revision ErrFutureRev.
    fn apply_compact(&mut self, r: &CompactRequest) -> Result<CompactResponse, Error> {
        self.check_corrupt()?;
        let kv = &mut self.state.kv;
        if r.revision <= kv.compact_rev {
            return Err(Error::Compacted);
        }
        if r.revision > kv.current_rev {
            return Err(Error::FutureRev);
        }
        kv.compact_rev = r.revision;
        kv.compact(r.revision);
        Ok(CompactResponse {
            revision: kv.current_rev,
        })
    }

    fn apply_grant(&mut self, r: &LeaseGrantRequest) -> Result<LeaseGrantResponse, Error> {
        self.check_corrupt()?;
        self.check_space(quota::LEASE_OVERHEAD)?;
        let (id, ttl) = self
            .state
            .lessor
            .grant(r, self.config.min_lease_ttl, &mut self.clock)?;
        Ok(LeaseGrantResponse {
            revision: self.revision(),
            id,
            ttl,
        })
    }

    /// `lessor.Revoke`: deletes every attached key in one revision, then the lease.
    fn apply_revoke(
        &mut self,
        r: &LeaseRevokeRequest,
        events: &mut Vec<Event>,
    ) -> Result<LeaseRevokeResponse, Error> {
        self.check_corrupt()?;
        let lease = self
            .state
            .lessor
            .leases
            .get(&r.id)
            .ok_or(Error::LeaseNotFound)?;
        let keys: Vec<Vec<u8>> = lease.keys.iter().cloned().collect();
        let mut w = WriteTxn::begin(&mut self.state.kv)?;
        for key in keys {
            w.delete_range(&DeleteRangeRequest {
                key,
                range_end: Vec::new(),
                prev_kv: false,
            });
        }
        let committed = w.commit();
        self.finish(committed, events);
        self.state.lessor.leases.remove(&r.id);
        self.clock.deadlines.remove(&r.id);
        Ok(LeaseRevokeResponse {
            revision: self.revision(),
        })
    }
}
