//! One write transaction over the keyspace (etcd `storeTxnWrite`): every change gets main
//! revision `begin + 1` and a growing sub revision; the store revision moves only if something
//! changed. Writes land in the histories immediately (so later ops of the txn see them) and are
//! undone by [`WriteTxn::rollback`] if the txn fails halfway.

use std::collections::BTreeSet;

use super::error::Error;
use super::history::{KeyHistory, PutData, RevEntry};
use super::keys::KeyRange;
use super::kv::KvState;
use super::types::{
    DeleteRangeRequest, DeleteRangeResponse, Event, EventKind, KeyValue, LeaseId, PutRequest,
    PutResponse, RangeRequest, RangeResponse, Revision,
};

/// What a committed write txn changed.
pub(crate) struct Committed {
    /// The store revision after the txn.
    pub revision: Revision,
    pub events: Vec<Event>,
    /// Keys whose lease attachment may have changed: (key, lease before, lease after).
    pub lease_moves: Vec<(Vec<u8>, LeaseId, LeaseId)>,
}

pub(crate) struct WriteTxn<'a> {
    kv: &'a mut KvState,
    begin: Revision,
    rev: Revision,
    /// Keys changed, in change order (one entry per change, so the index is the sub revision).
    changes: Vec<Vec<u8>>,
}

impl<'a> WriteTxn<'a> {
    pub fn begin(kv: &'a mut KvState) -> Result<Self, Error> {
        let begin = kv.current_rev;
        let rev = begin.checked_add(1).ok_or(Error::RevisionOverflow)?;
        Ok(Self {
            kv,
            begin,
            rev,
            changes: Vec::new(),
        })
    }

    /// The revision reads inside the txn see (etcd: `beginRev`, +1 once there are changes).
    pub fn read_rev(&self) -> Revision {
        if self.changes.is_empty() {
            self.begin
        } else {
            self.rev
        }
    }

    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        self.kv.range(req, self.read_rev())
    }

    fn sub(&self) -> u32 {
        u32::try_from(self.changes.len()).unwrap_or(u32::MAX)
    }

    fn push(&mut self, key: &[u8], put: Option<PutData>) {
        let entry = RevEntry {
            main: self.rev,
            sub: self.sub(),
            put,
        };
        self.kv.in_use = self.kv.in_use.saturating_add(entry.size(key.len()));
        match self.kv.keys.get_mut(key) {
            Some(history) => history.revs.push(entry),
            // Most keys never get a second revision: room for exactly one.
            None => {
                self.kv
                    .keys
                    .insert(key.to_vec(), KeyHistory { revs: vec![entry] });
            }
        }
        self.changes.push(key.to_vec());
    }

    /// applierV3backend.Put inside a txn. `lease_exists` answers whether a lease id is granted.
    pub fn put(
        &mut self,
        req: &PutRequest,
        lease_exists: impl Fn(LeaseId) -> bool,
    ) -> Result<PutResponse, Error> {
        let current = self
            .kv
            .keys
            .get(&req.key)
            .and_then(|h| h.latest_live())
            .cloned();
        if (req.ignore_value || req.ignore_lease) && current.is_none() {
            return Err(Error::KeyNotFound);
        }
        let prev = current.as_ref().and_then(|e| e.put.as_ref());
        let value = match (req.ignore_value, prev) {
            (true, Some(p)) => p.value.clone(),
            _ => req.value.clone(),
        };
        let lease = match (req.ignore_lease, prev) {
            (true, Some(p)) => p.lease,
            _ => req.lease,
        };
        if lease != 0 && !lease_exists(lease) {
            return Err(Error::LeaseNotFound);
        }
        let (create, version) = match prev {
            Some(p) => (p.create, p.version.saturating_add(1)),
            None => (self.rev, 1),
        };
        let prev_kv = if req.prev_kv {
            current.as_ref().map(|e| e.to_kv(&req.key))
        } else {
            None
        };
        self.push(
            &req.key,
            Some(PutData {
                value,
                create,
                version,
                lease,
            }),
        );
        Ok(PutResponse {
            revision: self.rev,
            prev_kv,
        })
    }

    /// applierV3backend.DeleteRange inside a txn.
    pub fn delete_range(&mut self, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let range = KeyRange::new(&req.key, &req.range_end);
        let at = self.read_rev();
        let victims: Vec<KeyValue> = self
            .kv
            .live_in(&range, at)
            .map(|(k, e)| e.to_kv(k))
            .collect();
        for kv in &victims {
            self.push(&kv.key, None);
        }
        let deleted = i64::try_from(victims.len()).unwrap_or(i64::MAX);
        let revision = if self.changes.is_empty() {
            self.begin
        } else {
            self.rev
        };
        let prev_kvs = if req.prev_kv { victims } else { Vec::new() };
        DeleteRangeResponse {
            revision,
            deleted,
            prev_kvs,
        }
    }

    /// Undoes every change of this txn.
    pub fn rollback(self) {
        let keys: BTreeSet<Vec<u8>> = self.changes.into_iter().collect();
        for key in keys {
            if let Some(h) = self.kv.keys.get_mut(&key) {
                let freed = h.pop_main(self.rev, key.len());
                self.kv.in_use = self.kv.in_use.saturating_sub(freed);
                if h.is_empty() {
                    self.kv.keys.remove(&key);
                }
            }
        }
    }

    /// Publishes the txn: bumps the store revision if anything changed and describes the changes.
    pub fn commit(self) -> Committed {
        if self.changes.is_empty() {
            return Committed {
                revision: self.begin,
                events: Vec::new(),
                lease_moves: Vec::new(),
            };
        }
        self.kv.current_rev = self.rev;
        let mut events = Vec::with_capacity(self.changes.len());
        let mut seen = BTreeSet::new();
        let mut lease_moves = Vec::new();
        for (sub, key) in self.changes.iter().enumerate() {
            let Some(h) = self.kv.keys.get(key) else {
                continue;
            };
            let sub = u32::try_from(sub).unwrap_or(u32::MAX);
            let Some(entry) = h
                .revs
                .iter()
                .rev()
                .find(|e| e.main == self.rev && e.sub == sub)
            else {
                continue;
            };
            let before = h.live_at(self.begin);
            events.push(event_of(key, entry, before));
            if seen.insert(key.clone()) {
                let old = before.and_then(|e| e.put.as_ref()).map_or(0, |p| p.lease);
                let new = h
                    .latest_live()
                    .and_then(|e| e.put.as_ref())
                    .map_or(0, |p| p.lease);
                if old != new {
                    lease_moves.push((key.clone(), old, new));
                }
            }
        }
        Committed {
            revision: self.rev,
            events,
            lease_moves,
        }
    }
}

/// The watch event for `entry`, given the entry visible before its revision.
pub(crate) fn event_of(key: &[u8], entry: &RevEntry, before: Option<&RevEntry>) -> Event {
    let kind = if entry.put.is_some() {
        EventKind::Put
    } else {
        EventKind::Delete
    };
    let kv = entry.to_kv(key);
    // etcd's watch server skips prev_kv for creations (version 1).
    let prev_kv = if kind == EventKind::Put && kv.version == 1 {
        None
    } else {
        before.filter(|e| e.put.is_some()).map(|e| e.to_kv(key))
    };
    Event { kind, kv, prev_kv }
}
