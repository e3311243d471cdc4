//! Trigger bookkeeping writes (counter puts, finished-job deletes), made off the engine's
//! path. Writes are spread over lanes by job name, so one job's writes stay in order; a lane
//! takes what is queued, keeps only the last write per job, and issues those with a few in
//! flight at once, which the store then group-commits.

use std::{
    collections::HashMap,
    hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher},
    sync::Arc,
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    queue::StoreOp,
    store::{self, Etcd, compare_mod_revision, delete_op, put_op},
};
use crate::job::{counter_key, job_key};

/// Independent write lanes.
const LANES: usize = 16;
/// Distinct jobs a lane takes from its queue per pass (each job's latest write).
const LANE_BATCH: usize = 1024;
/// Writes one lane has in flight at most (128 over all lanes). Trigger delivery comes first:
/// issuing a pass's writes all at once (up to 4096 txns) took the CPU from the triggers due at
/// the same moment and held a task and a request per write. For 20 000 one-shot jobs due at
/// once this cap raised triggers/s from ~80-100k to ~130-170k and cut peak RSS from ~100 to
/// ~68 MB; the deletes then finish ~0.45 s after the due time instead of ~0.3 s.
const LANE_IN_FLIGHT: usize = 8;
/// A bookkeeping write still failing after this long means the store is unusable (disk or
/// quota full): the replica reports itself unhealthy, as upstream's does.
const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// Called when bookkeeping writes cannot be made (the store is full or broken).
pub type OnStuck = Arc<dyn Fn(&str) + Send + Sync>;

/// Queues store writes.
#[derive(Clone)]
pub struct Writer {
    lanes: Arc<Vec<mpsc::UnboundedSender<Lane>>>,
}

/// What a lane is told: a write, or "tell me when everything before this is done".
enum Lane {
    Op(StoreOp),
    Flush(oneshot::Sender<()>),
}

impl Writer {
    /// Starts the lanes. They run until every `Writer` is dropped and finish what is queued
    /// first; after `shutdown` a failing write is not retried.
    pub fn spawn(etcd: Etcd, on_stuck: OnStuck, shutdown: CancellationToken) -> Writer {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane(
                    etcd.clone(),
                    rx,
                    Arc::clone(&on_stuck),
                    shutdown.clone(),
                ));
                tx
            })
            .collect();
        Writer {
            lanes: Arc::new(lanes),
        }
    }

    pub fn submit(&self, op: StoreOp) {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(op.name().as_ref());
        let lane = (hash % self.lanes.len() as u64) as usize;
        let _ = self.lanes[lane].send(Lane::Op(op));
    }

    /// Waits until every write submitted before this call is done (or has failed).
    pub async fn flush(&self) {
        let mut waits = Vec::with_capacity(self.lanes.len());
        for lane in self.lanes.iter() {
            let (tx, rx) = oneshot::channel();
            if lane.send(Lane::Flush(tx)).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
    }
}

async fn lane(
    etcd: Etcd,
    mut rx: mpsc::UnboundedReceiver<Lane>,
    on_stuck: OnStuck,
    shutdown: CancellationToken,
) {
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut latest: HashMap<Arc<str>, StoreOp> = HashMap::new();
        let mut order = Vec::new();
        let mut flushed = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Lane::Op(op) => {
                    let name = Arc::clone(op.name());
                    if latest.insert(Arc::clone(&name), op).is_none() {
                        order.push(name);
                    }
                }
                // Answered once the writes taken so far are done.
                Lane::Flush(done) => flushed.push(done),
            }
            if order.len() < LANE_BATCH && flushed.is_empty() {
                next = rx.try_recv().ok();
            }
        }
        let ops: Vec<StoreOp> = order
            .into_iter()
            .filter_map(|name| latest.remove(&name))
            .collect();
        let mut writes = tokio::task::JoinSet::new();
        for op in ops {
            if writes.len() >= LANE_IN_FLIGHT {
                writes.join_next().await;
            }
            let (etcd, shutdown, on_stuck) =
                (etcd.clone(), shutdown.clone(), Arc::clone(&on_stuck));
            writes.spawn(async move { apply(&etcd, op, &on_stuck, &shutdown).await });
        }
        while writes.join_next().await.is_some() {}
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// One write, retried while the error is transient.
async fn apply(etcd: &Etcd, op: StoreOp, on_stuck: &OnStuck, shutdown: &CancellationToken) {
    let started = std::time::Instant::now();
    let mut reported = false;
    let (compare, success, failure) = match &op {
        StoreOp::PutCounter {
            name,
            mod_revision,
            counter,
        } => (
            vec![compare_mod_revision(&job_key(name), *mod_revision)],
            vec![put_op(&counter_key(name), counter.encode())],
            Vec::new(),
        ),
        StoreOp::Finish { name, mod_revision } => (
            vec![compare_mod_revision(&job_key(name), *mod_revision)],
            vec![
                delete_op(&counter_key(name), false),
                delete_op(&job_key(name), false),
            ],
            vec![delete_op(&counter_key(name), false)],
        ),
    };
    let mut attempt = 0;
    loop {
        let status = match etcd
            .txn(compare.clone(), success.clone(), failure.clone())
            .await
        {
            Ok(_) => return,
            Err(status) => status,
        };
        if shutdown.is_cancelled() {
            return;
        }
        let message = status.message().to_owned();
        if !reported
            && (message.contains("database space exceeded") || started.elapsed() >= STUCK_AFTER)
        {
            reported = true;
            on_stuck(&message);
        }
        if store::is_transient(&status) {
            tracing::debug!(job = %op.name(), error = %message, "retrying a store write");
        } else {
            tracing::error!(job = %op.name(), error = %message, "failed to write job bookkeeping; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(store::backoff(attempt).min(std::time::Duration::from_secs(5))) => {}
            () = shutdown.cancelled() => return,
        }
        attempt += 1;
    }
}
