//! Leases (etcd `lease/lessor.go`).
//!
//! Replicated state: id, granted TTL, checkpointed remaining TTL, and (derived from the keyspace)
//! the attached keys. Expiry is leader-local, as in etcd: only the primary lessor (the Raft
//! leader, after [`Lessor::promote`]) tracks deadlines, renews leases on keep-alive, and reports
//! expired ones, which the leader then revokes through a replicated `LeaseRevoke`. Followers keep
//! every lease "forever"; a new leader gives every lease its full (or checkpointed) TTL again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::types::{LeaseId, Revision};

/// etcd's `MaxLeaseTTL` (seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// etcd's minimum TTL with the default timing: `ceil((3 * electionTicks / 2) * heartbeat)` =
/// ceil(15 × 100 ms) = 2 s (`etcdserver/server.go`, `minTTL`).
pub const DEFAULT_MIN_LEASE_TTL: i64 = 2;
/// How long an expired lease that was reported stays quiet before it is reported again
/// (etcd `defaultExpiredleaseRetryInterval`).
pub const EXPIRED_RETRY_MS: u64 = 3_000;

/// LeaseGrant. `id` 0 lets the engine choose (deterministically); `now_ms` starts the expiry
/// timer: the replicated machine overwrites it with the applying member's own clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantRequest {
    pub id: LeaseId,
    pub ttl: i64,
    pub now_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    pub revision: Revision,
    pub id: LeaseId,
    /// The granted TTL (raised to the minimum TTL if needed).
    pub ttl: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeRequest {
    pub id: LeaseId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeResponse {
    pub revision: Revision,
}

/// One entry of LeaseCheckpoint: persist how much TTL a lease had left.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseCheckpoint {
    pub id: LeaseId,
    pub remaining_ttl: i64,
}

/// LeaseTimeToLive answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLive {
    pub id: LeaseId,
    /// Remaining seconds, truncated (Go `int64(d.Seconds())`).
    pub ttl: i64,
    pub granted_ttl: i64,
    /// Attached keys, sorted (only when asked for).
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub ttl: i64,
    /// Checkpointed remaining TTL; 0 = unset, use `ttl`.
    pub remaining_ttl: i64,
    /// Derived from the keyspace; rebuilt on restore.
    #[serde(skip)]
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    fn remaining_or_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lessor {
    pub leases: BTreeMap<LeaseId, Lease>,
    /// Source of engine-chosen ids: the last one handed out.
    pub last_auto_id: LeaseId,
}

/// Leader-local expiry bookkeeping (never replicated, never snapshotted).
#[derive(Clone, Debug, Default)]
pub(crate) struct LeaseClock {
    pub primary: bool,
    /// Expiry deadline (ms) and the earliest time to report it again, per lease.
    pub deadlines: BTreeMap<LeaseId, (u64, u64)>,
}

fn secs_to_ms(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
}

impl Lessor {
    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    /// Picks the id for a grant with id 0: the next positive id after the last one chosen that is
    /// not in use (etcd draws from its request-id generator; any unused positive id will do).
    fn choose_id(&mut self) -> LeaseId {
        let mut id = self.last_auto_id;
        loop {
            id = match id.checked_add(1) {
                Some(n) if n > 0 => n,
                _ => 1,
            };
            if !self.leases.contains_key(&id) {
                self.last_auto_id = id;
                return id;
            }
        }
    }

    /// `lessor.Grant`; returns (id, granted ttl).
    pub fn grant(
        &mut self,
        req: &LeaseGrantRequest,
        min_ttl: i64,
        clock: &mut LeaseClock,
    ) -> Result<(LeaseId, i64), Error> {
        if req.ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if req.id == 0 {
            self.choose_id()
        } else {
            req.id
        };
        if self.leases.contains_key(&id) {
            return Err(Error::LeaseExists);
        }
        let ttl = req.ttl.max(min_ttl);
        self.leases.insert(
            id,
            Lease {
                ttl,
                remaining_ttl: 0,
                keys: BTreeSet::new(),
            },
        );
        if clock.primary {
            let deadline = req.now_ms.saturating_add(secs_to_ms(ttl));
            clock.deadlines.insert(id, (deadline, 0));
        }
        Ok((id, ttl))
    }

    /// `lessor.Checkpoint`: unknown ids are ignored, as in etcd.
    pub fn checkpoint(&mut self, cps: &[LeaseCheckpoint]) {
        for cp in cps {
            if let Some(l) = self.leases.get_mut(&cp.id) {
                l.remaining_ttl = cp.remaining_ttl;
            }
        }
    }

    pub fn attach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.remove(key);
        }
    }
}

impl LeaseClock {
    /// `lessor.Promote`: become the primary lessor; every lease expires `extend_ms` plus its
    /// remaining (checkpointed) or full TTL from `now_ms`.
    pub fn promote(&mut self, lessor: &Lessor, now_ms: u64, extend_ms: u64) {
        self.primary = true;
        self.deadlines = lessor
            .leases
            .iter()
            .map(|(id, l)| {
                let deadline = now_ms
                    .saturating_add(extend_ms)
                    .saturating_add(secs_to_ms(l.remaining_or_ttl()));
                (*id, (deadline, 0))
            })
            .collect();
    }

    /// `lessor.Demote`: stop tracking expiry (leases live "forever" until promoted again).
    pub fn demote(&mut self) {
        self.primary = false;
        self.deadlines.clear();
    }

    /// `lessor.Renew` (keep-alive): restarts the full TTL; returns it.
    pub fn renew(&mut self, lessor: &Lessor, id: LeaseId, now_ms: u64) -> Result<i64, Error> {
        if !self.primary {
            return Err(Error::NotPrimary);
        }
        let lease = lessor.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        // An expired lease is being revoked; etcd waits for that and then answers not-found.
        if self.deadlines.get(&id).is_some_and(|(d, _)| *d <= now_ms) {
            return Err(Error::LeaseNotFound);
        }
        self.deadlines
            .insert(id, (now_ms.saturating_add(secs_to_ms(lease.ttl)), 0));
        Ok(lease.ttl)
    }

    /// Leases past their deadline that were not reported within the retry interval, oldest first,
    /// at most `limit`. Reporting one arms its retry timer, so the caller proposes each revoke once
    /// per `EXPIRED_RETRY_MS`.
    pub fn expired(&mut self, lessor: &Lessor, now_ms: u64, limit: usize) -> Vec<LeaseId> {
        if !self.primary {
            return Vec::new();
        }
        self.deadlines
            .retain(|id, _| lessor.leases.contains_key(id));
        let mut due: Vec<(u64, LeaseId)> = self
            .deadlines
            .iter()
            .filter(|(_, (deadline, retry))| *deadline <= now_ms && *retry <= now_ms)
            .map(|(id, (deadline, _))| (*deadline, *id))
            .collect();
        due.sort_unstable();
        due.truncate(limit);
        for (_, id) in &due {
            if let Some(entry) = self.deadlines.get_mut(id) {
                entry.1 = now_ms.saturating_add(EXPIRED_RETRY_MS);
            }
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// LeaseTimeToLive on the primary lessor.
    pub fn time_to_live(
        &self,
        lessor: &Lessor,
        id: LeaseId,
        keys: bool,
        now_ms: u64,
    ) -> Result<LeaseTimeToLive, Error> {
        let lease = lessor.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        if !self.primary {
            return Err(Error::NotPrimary);
        }
        let ttl = match self.deadlines.get(&id) {
            Some((deadline, _)) => {
                let remaining = i128::from(*deadline) - i128::from(now_ms);
                i64::try_from(remaining / 1000).unwrap_or(i64::MAX)
            }
            None => lease.remaining_or_ttl(),
        };
        let keys = if keys {
            lease.keys.iter().cloned().collect()
        } else {
            Vec::new()
        };
        Ok(LeaseTimeToLive {
            id,
            ttl,
            granted_ttl: lease.ttl,
            keys,
        })
    }
}
