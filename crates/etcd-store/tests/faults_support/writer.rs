//! A background writer: sequential puts `<prefix><i>` = `<i>` against one member, recording which
//! were acknowledged (and at what revision) and which failed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use dapr_proto::etcd::etcdserverpb::kv_client::KvClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::{POLL, put};

/// What the writer saw: a put either returned OK (the store acknowledged it) or an error (it may
/// or may not have been applied, as with etcd).
#[derive(Debug, Default)]
pub struct Outcome {
    /// `(i, revision)` of every acknowledged put, in order.
    pub acked: Vec<(u64, i64)>,
    /// `(i, error)` of every put that failed.
    pub failed: Vec<(u64, String)>,
}

pub struct Writer {
    acks: Arc<AtomicUsize>,
    stop: CancellationToken,
    task: JoinHandle<Outcome>,
}

impl Writer {
    pub fn spawn(mut kv: KvClient<Channel>, prefix: &'static str) -> Self {
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (acks, stop) = (acks.clone(), stop.clone());
            async move {
                let mut outcome = Outcome::default();
                for i in 0.. {
                    if stop.is_cancelled() {
                        break;
                    }
                    let value = i.to_string();
                    match kv.put(put(&format!("{prefix}{i}"), &value)).await {
                        Ok(reply) => {
                            let revision = reply.into_inner().header.map_or(0, |h| h.revision);
                            outcome.acked.push((i, revision));
                            acks.store(outcome.acked.len(), Ordering::Release);
                        }
                        Err(status) => {
                            outcome.failed.push((i, status.to_string()));
                            // Do not spin on a member that refuses everything.
                            tokio::time::sleep(POLL).await;
                        }
                    }
                }
                outcome
            }
        });
        Self { acks, stop, task }
    }

    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::Acquire)
    }

    /// Waits until at least `n` puts were acknowledged.
    pub async fn wait_acks(&self, n: usize, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while self.acks() < n {
            if Instant::now() >= deadline || self.task.is_finished() {
                return Err(format!(
                    "the writer had {} of {n} acknowledged puts after {within:?}",
                    self.acks()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops after the put in flight and returns what happened.
    pub async fn stop(self) -> Outcome {
        self.stop.cancel();
        self.task.await.expect("the writer task")
    }
}
