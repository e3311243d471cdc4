//! Replica leadership and partitioning (spec §8): each replica holds `dapr/leadership/<id>` on a
//! 20 s lease; the replicas agree on the total once every key carries the same count, and each
//! then owns the jobs whose `partition_id % total` equals its position among the sorted ids.
//!
//! [`decide`] is the pure quorum rule; [`Leadership::run`] is the etcd glue around it.

use std::{collections::BTreeMap, time::Duration};

use dapr_etcd_store::prefix_end;
use dapr_proto::{
    etcd::etcdserverpb::{
        Compare, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest,
        RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
        compare::{CompareResult, CompareTarget, TargetUnion},
        kv_client::KvClient,
        lease_client::LeaseClient,
        request_op, watch_request,
    },
    etcdcron::cron::stored::Leadership as Record,
    scheduler::v1::Host,
};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::store::{Etcd, Svc};

/// The leadership key prefix (no trailing slash, as upstream ranges it).
pub const PREFIX: &str = "dapr/leadership";
/// The leadership lease's TTL.
pub const LEASE_TTL_SECS: i64 = 20;
const HOST_TYPE_URL: &str = "type.googleapis.com/dapr.proto.scheduler.v1.Host";

/// This replica's view once the replicas agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Position of this replica among the sorted ids.
    pub index: u64,
    pub total: u64,
    /// Every replica's broadcast address, in id order (for WatchHosts).
    pub hosts: Vec<String>,
}

/// What the replicas' records say, from one replica's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Our key is missing: (re)create it.
    Missing,
    /// Our key has a stale total: rewrite it with `total` (compare-and-swap on `old`).
    Rewrite { old: Vec<u8>, total: u64 },
    /// Someone else holds our key (a duplicate id, or a dead incarnation's lease not expired).
    Foreign,
    /// Some replica still has another total: wait for the next change.
    Waiting,
    /// Everyone agrees.
    Quorum(Partition),
}

/// The quorum rule over every key under [`PREFIX`] (`key → raw value`).
pub fn decide(
    own_key: &str,
    uid: u64,
    address: &str,
    records: &BTreeMap<String, Vec<u8>>,
) -> Decision {
    let count = records.len() as u64;
    let Some(own_raw) = records.get(own_key) else {
        return Decision::Missing;
    };
    let Ok(own) = Record::decode(own_raw.as_slice()) else {
        return Decision::Foreign;
    };
    if own.uid != uid || host_of(&own).as_deref() != Some(address) {
        return Decision::Foreign;
    }
    if own.total != count {
        return Decision::Rewrite {
            old: own_raw.clone(),
            total: count,
        };
    }
    let mut hosts = Vec::with_capacity(records.len());
    let mut index = 0;
    for (i, (key, raw)) in records.iter().enumerate() {
        let Ok(record) = Record::decode(raw.as_slice()) else {
            return Decision::Waiting;
        };
        if record.total != count {
            return Decision::Waiting;
        }
        if key == own_key {
            index = i as u64;
        }
        hosts.push(host_of(&record).unwrap_or_default());
    }
    Decision::Quorum(Partition {
        index,
        total: count,
        hosts,
    })
}

fn host_of(record: &Record) -> Option<String> {
    let any = record.replica_data.as_ref()?;
    Host::decode(any.value.as_slice()).ok().map(|h| h.address)
}

fn encode(total: u64, uid: u64, address: &str) -> Vec<u8> {
    Record {
        total,
        uid,
        replica_data: Some(prost_types::Any {
            type_url: HOST_TYPE_URL.to_owned(),
            value: Host {
                address: address.to_owned(),
            }
            .encode_to_vec(),
        }),
    }
    .encode_to_vec()
}

/// Why an incarnation ended.
#[derive(Debug, thiserror::Error)]
pub enum LeadershipError {
    #[error("etcd: {0}")]
    Etcd(#[from] tonic::Status),
    #[error("the leadership lease was lost")]
    LeaseLost,
    #[error("the leadership watch ended")]
    WatchEnded,
}

/// One replica's leadership.
pub struct Leadership {
    pub id: String,
    pub address: String,
    pub etcd: Etcd,
    /// Published on every quorum change; `None` while there is none.
    pub partition: watch::Sender<Option<Partition>>,
    /// The engine, quiesced before this replica agrees to a new total (so its acknowledged
    /// triggers are in the store before another replica takes its jobs over).
    pub engine: Option<crate::engine::core::Handle>,
}

impl Leadership {
    /// Holds leadership until `shutdown`; every lost lease or broken watch starts a new
    /// incarnation (new lease, new uid) after a short pause.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let uid = rand_u64();
            match self.incarnation(uid, &shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    self.partition.send_replace(None);
                    tracing::warn!(%error, "leadership lost; re-electing");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn incarnation(
        &self,
        uid: u64,
        shutdown: &CancellationToken,
    ) -> Result<(), LeadershipError> {
        let mut kv = self.etcd.kv();
        let mut lease = LeaseClient::with_interceptor(self.etcd.transport(), self.etcd.token());
        let own_key = format!("{PREFIX}/{}", self.id);

        // Watch the prefix from the revision of a first read, so no change is missed.
        let first = kv.range(prefix_range(true)).await?.into_inner();
        let revision = first.header.map_or(0, |h| h.revision);
        let (watch_tx, watch_rx) = mpsc::channel(16);
        let _ = watch_tx
            .send(WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    WatchCreateRequest {
                        key: PREFIX.as_bytes().to_vec(),
                        range_end: prefix_end(PREFIX.as_bytes()),
                        start_revision: revision + 1,
                        progress_notify: true,
                        ..Default::default()
                    },
                )),
            })
            .await;
        let mut events = self
            .etcd
            .watch_client()
            .watch(tokio_stream::wrappers::ReceiverStream::new(watch_rx))
            .await?
            .into_inner();

        let lease_id = lease
            .lease_grant(LeaseGrantRequest {
                ttl: LEASE_TTL_SECS,
                id: 0,
            })
            .await?
            .into_inner()
            .id;
        let keepalive = spawn_keepalive(&self.etcd, lease_id);

        // Shutdown also ends a store call in flight: without a quorum (the other replicas
        // stopped first) a write can wait for the store's request timeout.
        let decisions = async {
            loop {
                let records = self.records(&mut kv).await?;
                match decide(&own_key, uid, &self.address, &records) {
                    Decision::Missing => {
                        let created = kv
                            .txn(TxnRequest {
                                compare: vec![Compare {
                                    result: CompareResult::Equal as i32,
                                    target: CompareTarget::Create as i32,
                                    key: own_key.as_bytes().to_vec(),
                                    range_end: Vec::new(),
                                    target_union: Some(TargetUnion::CreateRevision(0)),
                                }],
                                success: vec![put_op(
                                    &own_key,
                                    encode(records.len() as u64 + 1, uid, &self.address),
                                    lease_id,
                                )],
                                failure: Vec::new(),
                            })
                            .await?
                            .into_inner();
                        if created.succeeded {
                            tracing::info!(key = %own_key, "leadership key created");
                            continue;
                        }
                    }
                    Decision::Rewrite { old, total } => {
                        self.partition.send_replace(None);
                        if let Some(engine) = &self.engine {
                            engine.quiesce().await;
                        }
                        kv.txn(TxnRequest {
                            compare: vec![Compare {
                                result: CompareResult::Equal as i32,
                                target: CompareTarget::Value as i32,
                                key: own_key.as_bytes().to_vec(),
                                range_end: Vec::new(),
                                target_union: Some(TargetUnion::Value(old)),
                            }],
                            success: vec![put_op(
                                &own_key,
                                encode(total, uid, &self.address),
                                lease_id,
                            )],
                            failure: Vec::new(),
                        })
                        .await?;
                        continue;
                    }
                    Decision::Foreign => {
                        tracing::warn!(key = %own_key, "leadership key is held by another replica incarnation; waiting for it to go");
                        self.partition.send_replace(None);
                    }
                    Decision::Waiting => {
                        self.partition.send_replace(None);
                    }
                    Decision::Quorum(partition) => {
                        if self.partition.borrow().as_ref() != Some(&partition) {
                            tracing::info!(
                                index = partition.index,
                                total = partition.total,
                                "leadership quorum reached"
                            );
                        }
                        self.partition.send_replace(Some(partition));
                    }
                }
                // Wait for the next change (or the lease to go, or shutdown); progress
                // notifications carry none.
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = keepalive.lost.cancelled() => return Err(LeadershipError::LeaseLost),
                        message = events.message() => match message? {
                            Some(response) if response.canceled => return Err(LeadershipError::WatchEnded),
                            Some(response) if response.events.is_empty() => {}
                            Some(_) => break,
                            None => return Err(LeadershipError::WatchEnded),
                        },
                    }
                }
            }
        };
        let result = tokio::select! {
            result = decisions => result,
            () = shutdown.cancelled() => Ok(()),
        };
        keepalive.stop.cancel();
        // Give up the key at once so the others rebalance (upstream revokes with a 5 s bound).
        let revoke = lease.lease_revoke(LeaseRevokeRequest { id: lease_id });
        let _ = tokio::time::timeout(Duration::from_secs(5), revoke).await;
        result
    }

    async fn records(
        &self,
        kv: &mut KvClient<Svc>,
    ) -> Result<BTreeMap<String, Vec<u8>>, LeadershipError> {
        let response = kv.range(prefix_range(false)).await?.into_inner();
        Ok(response
            .kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .collect())
    }
}

struct KeepAlive {
    stop: CancellationToken,
    lost: CancellationToken,
}

/// Keeps the lease alive (every TTL/3, as etcd's client); `lost` fires when it is gone.
fn spawn_keepalive(etcd: &Etcd, id: i64) -> KeepAlive {
    let mut client = LeaseClient::with_interceptor(etcd.transport(), etcd.token());
    let stop = CancellationToken::new();
    let lost = CancellationToken::new();
    let (stop2, lost2) = (stop.clone(), lost.clone());
    tokio::spawn(async move {
        let (tx, rx) = mpsc::channel(4);
        let stream = client
            .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        let Ok(stream) = stream else {
            lost2.cancel();
            return;
        };
        let mut responses = stream.into_inner();
        let mut tick = tokio::time::interval(Duration::from_secs((LEASE_TTL_SECS / 3) as u64));
        loop {
            tokio::select! {
                () = stop2.cancelled() => return,
                _ = tick.tick() => {
                    if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                        lost2.cancel();
                        return;
                    }
                }
                response = responses.message() => match response {
                    Ok(Some(r)) if r.ttl > 0 => {}
                    _ => {
                        lost2.cancel();
                        return;
                    }
                },
            }
        }
    });
    KeepAlive { stop, lost }
}

fn put_op(key: &str, value: Vec<u8>, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value,
            lease,
            ..Default::default()
        })),
    }
}

fn prefix_range(keys_only: bool) -> RangeRequest {
    RangeRequest {
        key: PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(PREFIX.as_bytes()),
        keys_only,
        ..Default::default()
    }
}

/// A random u64 (leadership uids, job partition ids); no RNG crate: a randomly keyed hash of
/// a process-wide counter and the time.
pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(entries: &[(&str, u64, u64, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(id, total, uid, addr)| (format!("{PREFIX}/{id}"), encode(*total, *uid, addr)))
            .collect()
    }

    #[test]
    fn a_missing_own_key_is_created() {
        let r = records(&[("b", 1, 9, "b:1")]);
        assert_eq!(decide("dapr/leadership/a", 1, "a:1", &r), Decision::Missing);
    }

    #[test]
    fn a_stale_total_is_rewritten_to_the_current_count() {
        let r = records(&[("a", 1, 1, "a:1"), ("b", 2, 9, "b:1")]);
        let Decision::Rewrite { total, .. } = decide("dapr/leadership/a", 1, "a:1", &r) else {
            panic!()
        };
        assert_eq!(total, 2);
    }

    #[test]
    fn a_key_with_another_uid_is_foreign() {
        let r = records(&[("a", 1, 7, "a:1")]);
        assert_eq!(decide("dapr/leadership/a", 1, "a:1", &r), Decision::Foreign);
    }

    #[test]
    fn quorum_needs_every_total_to_match_and_gives_the_sorted_position() {
        let waiting = records(&[("a", 2, 1, "a:1"), ("b", 1, 9, "b:1")]);
        assert_eq!(
            decide("dapr/leadership/a", 1, "a:1", &waiting),
            Decision::Waiting
        );
        let agreed = records(&[("a", 3, 5, "a:1"), ("b", 3, 1, "b:1"), ("c", 3, 6, "c:1")]);
        assert_eq!(
            decide("dapr/leadership/b", 1, "b:1", &agreed),
            Decision::Quorum(Partition {
                index: 1,
                total: 3,
                hosts: vec!["a:1".into(), "b:1".into(), "c:1".into()],
            })
        );
    }
}
