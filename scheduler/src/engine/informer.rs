//! Feeds the engine the jobs this replica owns (spec §8 "Informer"): every job and counter at
//! one revision, then the job prefix's changes from the next revision on, with previous values
//! so deletes and ownership changes can be matched.

use std::collections::HashMap;

use dapr_etcd_store::prefix_end;
use dapr_proto::etcd::{
    etcdserverpb::{WatchCreateRequest, WatchRequest, watch_request},
    mvccpb::event::EventType,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::store::Etcd;
use crate::job::{COUNTERS_PREFIX, Counter, JOBS_PREFIX, StoredJob};
use crate::leadership::Partition;

/// The job prefix as upstream ranges it (no trailing slash).
const JOBS_RANGE: &str = "dapr/jobs";
const COUNTERS_RANGE: &str = "dapr/counters";

/// A change to the owned job set.
#[derive(Debug)]
pub enum Event {
    /// An owned job (new, changed or loaded), with its counter on the initial load.
    Put {
        name: String,
        mod_revision: i64,
        job: Box<StoredJob>,
        counter: Option<Counter>,
    },
    /// A job deleted, or no longer owned; `mod_revision` of the version that went.
    Remove {
        name: String,
        mod_revision: Option<i64>,
    },
    /// The initial load is queued.
    Synced { jobs: usize },
}

/// Why the informer stopped (the engine restarts).
#[derive(Debug, thiserror::Error)]
pub enum InformerError {
    #[error("etcd: {0}")]
    Etcd(#[from] tonic::Status),
    #[error("the jobs watch ended")]
    WatchEnded,
    #[error("the jobs watch was cancelled: {0}")]
    WatchCancelled(String),
    #[error("a watch event lacks the previous value")]
    MissingPrevKv,
    #[error("the engine stopped")]
    EngineGone,
}

fn owned(job: &StoredJob, partition: &Partition) -> bool {
    partition.total == 0 || job.partition_id % partition.total == partition.index
}

/// Loads, then follows, until `stop` or an error.
pub async fn run(
    etcd: Etcd,
    partition: Partition,
    tx: mpsc::UnboundedSender<Event>,
    stop: CancellationToken,
) -> Result<(), InformerError> {
    let (jobs, revision) = etcd.range_all(JOBS_RANGE, 0).await?;
    let (counters, _) = etcd.range_all(COUNTERS_RANGE, revision).await?;
    let mut counters: HashMap<Vec<u8>, Vec<u8>> = counters
        .into_iter()
        .filter_map(|kv| {
            let name = kv.key.strip_prefix(COUNTERS_PREFIX.as_bytes())?.to_vec();
            Some((name, kv.value))
        })
        .collect();
    let mut loaded = 0;
    for kv in jobs {
        let Some(name) = kv.key.strip_prefix(JOBS_PREFIX.as_bytes()) else {
            continue;
        };
        let job = match StoredJob::decode(&kv.value) {
            Ok(job) => job,
            Err(error) => {
                tracing::warn!(key = %String::from_utf8_lossy(&kv.key), %error, "skipping undecodable job");
                continue;
            }
        };
        if !owned(&job, &partition) {
            continue;
        }
        let counter = counters
            .remove(name)
            .and_then(|raw| Counter::decode(&raw).ok());
        loaded += 1;
        send(
            &tx,
            Event::Put {
                name: String::from_utf8_lossy(name).into_owned(),
                mod_revision: kv.mod_revision,
                job: Box::new(job),
                counter,
            },
        )?;
    }
    send(&tx, Event::Synced { jobs: loaded })?;

    let (requests, watch_rx) = mpsc::channel(1);
    let _ = requests
        .send(WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: JOBS_RANGE.as_bytes().to_vec(),
                    range_end: prefix_end(JOBS_RANGE.as_bytes()),
                    start_revision: revision + 1,
                    prev_kv: true,
                    progress_notify: true,
                    ..Default::default()
                },
            )),
        })
        .await;
    let mut stream = etcd
        .watch_client()
        .watch(tokio_stream::wrappers::ReceiverStream::new(watch_rx))
        .await?
        .into_inner();
    loop {
        let response = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            response = stream.message() => response?,
        };
        let Some(response) = response else {
            return Err(InformerError::WatchEnded);
        };
        if response.canceled {
            return Err(InformerError::WatchCancelled(response.cancel_reason));
        }
        for event in response.events {
            let Some(kv) = event.kv else { continue };
            let Some(name) = kv.key.strip_prefix(JOBS_PREFIX.as_bytes()) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let is_update = kv.create_revision != kv.mod_revision;
            if event.r#type == EventType::Delete as i32 {
                let Some(prev) = event.prev_kv else {
                    return Err(InformerError::MissingPrevKv);
                };
                send(
                    &tx,
                    Event::Remove {
                        name,
                        mod_revision: Some(prev.mod_revision),
                    },
                )?;
                continue;
            }
            if is_update && event.prev_kv.is_none() {
                return Err(InformerError::MissingPrevKv);
            }
            match StoredJob::decode(&kv.value) {
                Ok(job) if owned(&job, &partition) => send(
                    &tx,
                    Event::Put {
                        name,
                        mod_revision: kv.mod_revision,
                        job: Box::new(job),
                        counter: None,
                    },
                )?,
                Ok(_) => {
                    if let Some(prev) = event.prev_kv {
                        send(
                            &tx,
                            Event::Remove {
                                name,
                                mod_revision: Some(prev.mod_revision),
                            },
                        )?;
                    }
                }
                Err(error) => {
                    tracing::warn!(job = %name, %error, "ignoring an undecodable job");
                    send(
                        &tx,
                        Event::Remove {
                            name,
                            mod_revision: None,
                        },
                    )?;
                }
            }
        }
    }
}

fn send(tx: &mpsc::UnboundedSender<Event>, event: Event) -> Result<(), InformerError> {
    tx.send(event).map_err(|_| InformerError::EngineGone)
}
