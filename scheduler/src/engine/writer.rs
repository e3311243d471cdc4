//! Trigger bookkeeping writes (counter puts, finished-job deletes), made off the engine's
//! path. Writes are spread over lanes by job name, so one job's writes stay in order; a lane
//! takes everything queued at once, keeps only the last write per job, and issues the rest
//! concurrently, which the store then group-commits.

use std::{
    collections::HashMap,
    hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher},
    sync::Arc,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    queue::StoreOp,
    store::{self, Etcd, compare_mod_revision, delete_op, put_op},
};
use crate::job::{counter_key, job_key};

/// Independent write lanes.
const LANES: usize = 16;
/// Writes issued at once by one lane at most.
const LANE_BATCH: usize = 256;

/// Queues store writes.
#[derive(Clone)]
pub struct Writer {
    lanes: Arc<Vec<mpsc::UnboundedSender<StoreOp>>>,
}

impl Writer {
    /// Starts the lanes; they run until `shutdown`, then finish what is queued (bounded by
    /// the store answering).
    pub fn spawn(etcd: Etcd, shutdown: CancellationToken) -> Writer {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane(etcd.clone(), rx, shutdown.clone()));
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
        let _ = self.lanes[lane].send(op);
    }
}

async fn lane(etcd: Etcd, mut rx: mpsc::UnboundedReceiver<StoreOp>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            op = rx.recv() => match op { Some(op) => op, None => return },
            () = shutdown.cancelled() => return,
        };
        let mut latest: HashMap<Arc<str>, StoreOp> = HashMap::new();
        let mut order = Vec::new();
        let mut next = Some(first);
        while let Some(op) = next.take() {
            let name = Arc::clone(op.name());
            if latest.insert(Arc::clone(&name), op).is_none() {
                order.push(name);
            }
            if order.len() < LANE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let ops: Vec<StoreOp> = order
            .into_iter()
            .filter_map(|name| latest.remove(&name))
            .collect();
        let mut writes = tokio::task::JoinSet::new();
        for op in ops {
            let (etcd, shutdown) = (etcd.clone(), shutdown.clone());
            writes.spawn(async move { apply(&etcd, op, &shutdown).await });
        }
        while writes.join_next().await.is_some() {}
    }
}

/// One write, retried while the error is transient.
async fn apply(etcd: &Etcd, op: StoreOp, shutdown: &CancellationToken) {
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
        match etcd
            .txn(compare.clone(), success.clone(), failure.clone())
            .await
        {
            Ok(_) => return,
            Err(status) if store::is_transient(&status) && !shutdown.is_cancelled() => {
                tracing::debug!(job = %op.name(), error = %status.message(), "retrying a store write");
                tokio::select! {
                    () = tokio::time::sleep(store::backoff(attempt)) => {}
                    () = shutdown.cancelled() => return,
                }
                attempt += 1;
            }
            Err(status) => {
                tracing::error!(job = %op.name(), error = %status.message(), "failed to write job bookkeeping");
                return;
            }
        }
    }
}
