//! Space quota and alarms (etcd `etcdserver/quota.go`, `api/v3alarm`, `applierV3Capped`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::history::len_u64;
use super::types::{PutRequest, RequestOp, Revision, TxnRequest};

/// etcd's `DefaultQuotaBytes` (2 GiB), used when the configured quota is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// etcd's estimate of what one key costs beyond its bytes (`kvOverhead`).
const KV_OVERHEAD: u64 = 256;
/// etcd's estimate of what one lease costs (`leaseOverhead`).
pub(crate) const LEASE_OVERHEAD: u64 = 64;

/// AlarmType.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum AlarmType {
    /// In a GET: every alarm.
    #[default]
    None,
    Nospace,
    Corrupt,
}

/// AlarmRequest.AlarmAction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmAction {
    #[default]
    Get,
    Activate,
    Deactivate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmRequest {
    pub action: AlarmAction,
    pub member_id: u64,
    pub alarm: AlarmType,
}

/// One raised alarm (AlarmMember).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlarmMember {
    pub alarm: AlarmType,
    pub member_id: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmResponse {
    pub revision: Revision,
    pub alarms: Vec<AlarmMember>,
}

/// `costPut`.
pub(crate) fn put_cost(p: &PutRequest) -> u64 {
    KV_OVERHEAD
        .saturating_add(len_u64(p.key.len()))
        .saturating_add(len_u64(p.value.len()))
}

/// `costTxn`: the larger branch's puts. Like etcd it only counts top-level puts, so a put inside
/// a nested txn is free (and passes the NOSPACE alarm).
pub(crate) fn txn_cost(t: &TxnRequest) -> u64 {
    let branch = |ops: &[RequestOp]| {
        ops.iter()
            .map(|op| {
                if let RequestOp::Put(p) = op {
                    put_cost(p)
                } else {
                    0
                }
            })
            .fold(0u64, u64::saturating_add)
    };
    branch(&t.success).max(branch(&t.failure))
}

/// The raised alarms (etcd's alarm store).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Alarms {
    pub raised: BTreeSet<AlarmMember>,
}

impl Alarms {
    pub fn any(&self, alarm: AlarmType) -> bool {
        self.raised.iter().any(|a| a.alarm == alarm)
    }

    /// `AlarmStore.Get`: `None` lists every alarm.
    pub fn get(&self, alarm: AlarmType) -> Vec<AlarmMember> {
        self.raised
            .iter()
            .filter(|a| alarm == AlarmType::None || a.alarm == alarm)
            .copied()
            .collect()
    }

    /// applierV3backend.Alarm: GET lists, ACTIVATE answers the (new or existing) alarm,
    /// DEACTIVATE the removed one; activating `None` does nothing.
    pub fn apply(&mut self, req: &AlarmRequest) -> Vec<AlarmMember> {
        let m = AlarmMember {
            alarm: req.alarm,
            member_id: req.member_id,
        };
        match req.action {
            AlarmAction::Get => self.get(req.alarm),
            AlarmAction::Activate if req.alarm == AlarmType::None => Vec::new(),
            AlarmAction::Activate => {
                self.raised.insert(m);
                vec![m]
            }
            AlarmAction::Deactivate => {
                if self.raised.remove(&m) {
                    vec![m]
                } else {
                    Vec::new()
                }
            }
        }
    }
}
