//! `dapr.proto.scheduler.v1.Scheduler` (spec §6, §9, §10): job CRUD against the store, trigger
//! streams to sidecars, and the replica host list.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use chrono::Utc;
use dapr_proto::scheduler::v1::{
    DeleteByMetadataRequest, DeleteByMetadataResponse, DeleteByNamePrefixRequest,
    DeleteByNamePrefixResponse, DeleteJobRequest, DeleteJobResponse, GetJobRequest, GetJobResponse,
    Host, JobMetadata, JobTargetType, ListJobsRequest, ListJobsResponse, NamedJob,
    ScheduleJobRequest, ScheduleJobResponse, WatchHostsRequest, WatchHostsResponse,
    WatchJobsRequest, WatchJobsRequestInitial, WatchJobsResponse, concurrency_limit,
    job_target_metadata, scheduler_server::Scheduler, watch_jobs_request,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    engine::{
        core::{Dispatch, Handle, Message},
        queue::Delivery,
        router::StreamInfo,
        store::Etcd,
    },
    gates::Limit,
    job::{
        self, StoredJob, Target, TriggerResult, job_from_wire, job_key, parse_job,
        validate_job_name, validate_prefix,
    },
    leadership::Partition,
    metrics::{Metrics, SidecarError},
};

/// Triggers buffered towards one stream's HTTP/2 send window.
const STREAM_BUFFER: usize = 64;

/// The Scheduler service.
#[derive(Clone)]
pub struct SchedulerService {
    inner: Arc<Inner>,
}

struct Inner {
    etcd: Etcd,
    engine: Handle,
    metrics: Metrics,
    partition: watch::Receiver<Option<Partition>>,
    mtls: bool,
    shutdown: CancellationToken,
    next_stream: AtomicU64,
}

impl SchedulerService {
    pub fn new(
        etcd: Etcd,
        engine: Handle,
        metrics: Metrics,
        partition: watch::Receiver<Option<Partition>>,
        mtls: bool,
        shutdown: CancellationToken,
    ) -> Self {
        SchedulerService {
            inner: Arc::new(Inner {
                etcd,
                engine,
                metrics,
                partition,
                mtls,
                shutdown,
                next_stream: AtomicU64::new(1),
            }),
        }
    }
}

/// The caller's identity under mTLS: `spiffe://<td>/ns/<namespace>/<app-id>`.
fn caller<T>(request: &Request<T>) -> Option<(String, String)> {
    let id = dapr_security::net::peer_info(request)?.peer_id.as_ref()?;
    let (namespace, app_id) = id.namespace_and_app()?;
    Some((namespace.to_owned(), app_id.to_owned()))
}

impl Inner {
    /// Spec §6.2, for a caller whose SPIFFE identity is `identity` (read only under mTLS).
    fn authorize(
        &self,
        identity: impl FnOnce() -> Option<(String, String)>,
        namespace: &str,
        app_id: &str,
    ) -> Result<(), Status> {
        let denied = |status: Status| {
            self.metrics.sidecar_error(SidecarError::AuthFailed);
            Err(status)
        };
        if namespace.is_empty() || app_id.is_empty() {
            return denied(Status::invalid_argument(
                "missing namespace or appID in request",
            ));
        }
        if !self.mtls {
            return Ok(());
        }
        match identity() {
            None => denied(Status::unauthenticated(
                "failed to get identity from context",
            )),
            Some((ns, app)) if ns != namespace || app != app_id => {
                denied(Status::permission_denied("identity does not match request"))
            }
            Some(_) => Ok(()),
        }
    }

    fn authorize_metadata<T>(
        &self,
        request: &Request<T>,
        metadata: Option<&JobMetadata>,
    ) -> Result<(), Status> {
        let (ns, app) = metadata.map_or(("", ""), |m| (m.namespace.as_str(), m.app_id.as_str()));
        self.authorize(|| caller(request), ns, app)
    }
}

/// The job's target from its metadata (upstream errors `unknown job type`).
fn target(metadata: &JobMetadata) -> Result<Target<'_>, Status> {
    match metadata.target.as_ref().and_then(|t| t.r#type.as_ref()) {
        Some(job_target_metadata::Type::Job(_)) => Ok(Target::App {
            namespace: &metadata.namespace,
            app_id: &metadata.app_id,
        }),
        Some(job_target_metadata::Type::Actor(actor)) => Ok(Target::Actor {
            namespace: &metadata.namespace,
            actor_type: &actor.r#type,
            actor_id: &actor.id,
        }),
        None => Err(Status::unknown(format!(
            "unknown job type: {}",
            if metadata.target.is_some() {
                "&{}"
            } else {
                "<nil>"
            }
        ))),
    }
}

fn kind_of(metadata: &JobMetadata) -> &'static str {
    match metadata.target.as_ref().and_then(|t| t.r#type.as_ref()) {
        Some(job_target_metadata::Type::Job(_)) => "job",
        Some(job_target_metadata::Type::Actor(_)) => "actor",
        None => "unknown",
    }
}

/// An etcd error as the API returns it (gRPC Unknown with etcd's text).
fn etcd_error(status: Status) -> Status {
    Status::unknown(status.message().to_owned())
}

#[tonic::async_trait]
impl Scheduler for SchedulerService {
    async fn schedule_job(
        &self,
        request: Request<ScheduleJobRequest>,
    ) -> Result<Response<ScheduleJobResponse>, Status> {
        let inner = &self.inner;
        inner.engine.ready().await;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        let ScheduleJobRequest {
            name,
            job,
            metadata,
            overwrite,
        } = request.into_inner();
        let metadata = metadata.unwrap_or_default();
        let kind = kind_of(&metadata);
        let composed = target(&metadata)?.compose(&name);
        let stored = (|| {
            validate_job_name(&composed).map_err(|e| Status::unknown(e.to_string()))?;
            let job = job_from_wire(job.unwrap_or_default(), &metadata);
            parse_job(job, Utc::now(), crate::leadership::rand_u64())
                .map_err(|e| Status::unknown(e.validation_message()))
        })();
        let stored = match stored {
            Ok(stored) => stored,
            Err(status) => {
                inner.metrics.created_failed(kind);
                return Err(status);
            }
        };
        let key = job_key(&composed);
        let written = if overwrite {
            inner.etcd.put(&key, stored.encode()).await.map(|()| true)
        } else {
            inner.etcd.create(&key, stored.encode()).await
        };
        match written {
            Ok(true) => {
                inner.metrics.created(kind);
                Ok(Response::new(ScheduleJobResponse {}))
            }
            Ok(false) => {
                inner.metrics.created_failed(kind);
                Err(Status::already_exists(format!(
                    "job already exists: '{composed}'"
                )))
            }
            Err(status) => {
                inner.metrics.created_failed(kind);
                Err(etcd_error(status))
            }
        }
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let inner = &self.inner;
        inner.engine.ready().await;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        let GetJobRequest { name, metadata } = request.into_inner();
        let metadata = metadata.unwrap_or_default();
        let composed = target(&metadata)?.compose(&name);
        validate_job_name(&composed).map_err(|e| Status::unknown(e.to_string()))?;
        let Some(kv) = inner
            .etcd
            .get(&job_key(&composed))
            .await
            .map_err(etcd_error)?
        else {
            return Err(Status::not_found(format!("job not found: {name}")));
        };
        let job = StoredJob::decode(&kv.value).map_err(|e| Status::unknown(e.to_string()))?;
        Ok(Response::new(GetJobResponse {
            job: Some(job.to_wire()),
        }))
    }

    async fn delete_job(
        &self,
        request: Request<DeleteJobRequest>,
    ) -> Result<Response<DeleteJobResponse>, Status> {
        let inner = &self.inner;
        inner.engine.ready().await;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        let DeleteJobRequest { name, metadata } = request.into_inner();
        let metadata = metadata.unwrap_or_default();
        let composed = target(&metadata)?.compose(&name);
        validate_job_name(&composed).map_err(|e| Status::unknown(e.to_string()))?;
        inner.etcd.delete_job(&composed).await.map_err(etcd_error)?;
        inner.metrics.deleted(kind_of(&metadata));
        Ok(Response::new(DeleteJobResponse {}))
    }

    type WatchJobsStream = ReceiverStream<Result<WatchJobsResponse, Status>>;

    async fn watch_jobs(
        &self,
        request: Request<Streaming<WatchJobsRequest>>,
    ) -> Result<Response<Self::WatchJobsStream>, Status> {
        let inner = Arc::clone(&self.inner);
        let identity = caller(&request);
        let mut inbound = request.into_inner();
        let first = tokio::select! {
            first = inbound.message() => first?,
            () = inner.shutdown.cancelled() => return Err(Status::unavailable("server is closing")),
        };
        let Some(WatchJobsRequest {
            watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Initial(initial)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "initial request is required on stream connection",
            ));
        };
        inner.authorize(|| identity, &initial.namespace, &initial.app_id)?;
        let info = stream_info(&initial)?;
        let prefixes = info.prefixes();
        if prefixes.is_empty() {
            return Err(Status::invalid_argument("no prefixes provided"));
        }
        tokio::select! {
            () = inner.engine.ready() => {}
            () = inner.shutdown.cancelled() => return Err(Status::unavailable("server is closing")),
        }
        let id = inner.next_stream.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "Sidecar connected: {}/{} (actorTypes={:?}) (prefixes={:?}).",
            info.namespace,
            info.app_id,
            info.actor_types,
            prefixes
        );
        let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::channel(STREAM_BUFFER);
        let label = format!("{}/{}", info.namespace, info.app_id);
        inner.metrics.stream_opened();
        let limits = initial
            .concurrency_limits
            .iter()
            .map(|l| Limit {
                actor_type: l
                    .target
                    .as_ref()
                    .map(|concurrency_limit::Target::Actor(a)| a.r#type.clone()),
                name: l.name.clone(),
                max_concurrent: l.max_concurrent,
            })
            .collect();
        inner.engine.send(Message::Open {
            id,
            info,
            limits,
            tx: dispatch_tx,
        });
        tokio::spawn(run_stream(inner, id, label, inbound, dispatch_rx, out_tx));
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let inner = &self.inner;
        inner.engine.ready().await;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        let metadata = request.into_inner().metadata.unwrap_or_default();
        let prefix = target(&metadata)?.range_prefix(false);
        let (kvs, _) = inner
            .etcd
            .range_all(&job_key(&prefix), 0)
            .await
            .map_err(etcd_error)?;
        let mut jobs = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let composed = String::from_utf8_lossy(&kv.key);
            let composed = job::name_from_job_key(&composed)
                .unwrap_or_default()
                .to_owned();
            let job = StoredJob::decode(&kv.value).map_err(|e| Status::unknown(e.to_string()))?;
            let delivery = Delivery::of(&composed, &job);
            let Some(name) = delivery.name.clone() else {
                return Err(Status::unknown(format!(
                    "job name {composed:?} does not match its metadata"
                )));
            };
            jobs.push(NamedJob {
                name,
                metadata: delivery.metadata.clone(),
                job: Some(job.to_wire()),
            });
        }
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    type WatchHostsStream = ReceiverStream<Result<WatchHostsResponse, Status>>;

    async fn watch_hosts(
        &self,
        _request: Request<WatchHostsRequest>,
    ) -> Result<Response<Self::WatchHostsStream>, Status> {
        let inner = Arc::clone(&self.inner);
        tokio::select! {
            () = inner.engine.ready() => {}
            () = inner.shutdown.cancelled() => return Err(Status::unknown("cron closed")),
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            // The current list, then one message per quorum reached (every re-election, even
            // with the same hosts, as upstream).
            let mut partition = inner.partition.clone();
            loop {
                let hosts = partition
                    .borrow_and_update()
                    .as_ref()
                    .map(|p| p.hosts.clone());
                if let Some(hosts) = hosts {
                    let message = WatchHostsResponse {
                        hosts: hosts
                            .iter()
                            .map(|address| Host {
                                address: address.clone(),
                            })
                            .collect(),
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    changed = partition.changed() => if changed.is_err() { break },
                    () = inner.shutdown.cancelled() => break,
                    () = tx.closed() => return,
                }
            }
            let _ = tx.send(Err(Status::unknown("cron closed"))).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn delete_by_metadata(
        &self,
        request: Request<DeleteByMetadataRequest>,
    ) -> Result<Response<DeleteByMetadataResponse>, Status> {
        let inner = &self.inner;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        inner.engine.ready().await;
        let DeleteByMetadataRequest {
            metadata,
            id_prefix_match,
        } = request.into_inner();
        let prefix = delete_range(metadata, id_prefix_match.unwrap_or(false))?;
        delete_prefix(inner, &prefix).await?;
        Ok(Response::new(DeleteByMetadataResponse {}))
    }

    async fn delete_by_name_prefix(
        &self,
        request: Request<DeleteByNamePrefixRequest>,
    ) -> Result<Response<DeleteByNamePrefixResponse>, Status> {
        let inner = &self.inner;
        inner.authorize_metadata(&request, request.get_ref().metadata.as_ref())?;
        inner.engine.ready().await;
        let DeleteByNamePrefixRequest {
            name_prefix,
            metadata,
        } = request.into_inner();
        let mut prefix = delete_range(metadata, false)?;
        prefix.push_str(&name_prefix);
        delete_prefix(inner, &prefix).await?;
        Ok(Response::new(DeleteByNamePrefixResponse {}))
    }
}

/// The prefix the two Delete* RPCs range over (their metadata errors are wrapped).
fn delete_range(metadata: Option<JobMetadata>, as_prefix: bool) -> Result<String, Status> {
    let metadata = metadata.unwrap_or_default();
    let target = target(&metadata)
        .map_err(|e| Status::unknown(format!("failed to parse metadata: {}", e.message())))?;
    Ok(target.range_prefix(as_prefix))
}

async fn delete_prefix(inner: &Inner, prefix: &str) -> Result<(), Status> {
    validate_prefix(prefix).map_err(|e| Status::unknown(e.to_string()))?;
    inner
        .etcd
        .delete_prefixes(&[prefix])
        .await
        .map_err(etcd_error)?;
    inner.metrics.bulk_deleted();
    Ok(())
}

fn stream_info(initial: &WatchJobsRequestInitial) -> Result<StreamInfo, Status> {
    let mut jobs = false;
    let mut reminders = false;
    for t in &initial.accept_job_types {
        let slot = match JobTargetType::try_from(*t) {
            Ok(JobTargetType::Job) => &mut jobs,
            Ok(JobTargetType::ActorReminder) => &mut reminders,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown target type specified: {t}"
                )));
            }
        };
        if *slot {
            let name = JobTargetType::try_from(*t).map_or("", |t| t.as_str_name());
            return Err(Status::invalid_argument(format!(
                "duplicate target type specified: {name}"
            )));
        }
        *slot = true;
    }
    if initial.accept_job_types.is_empty() {
        jobs = true;
        reminders = true;
    }
    Ok(StreamInfo {
        namespace: initial.namespace.clone(),
        app_id: initial.app_id.clone(),
        actor_types: initial.actor_types.clone(),
        accepts_jobs: jobs,
        accepts_reminders: reminders,
    })
}

/// One WatchJobs stream: sends the triggers the engine hands it (one at a time, numbered from
/// 1) and reports the sidecar's results back.
async fn run_stream(
    inner: Arc<Inner>,
    id: u64,
    label: String,
    mut inbound: Streaming<WatchJobsRequest>,
    mut dispatches: mpsc::UnboundedReceiver<Dispatch>,
    out: mpsc::Sender<Result<WatchJobsResponse, Status>>,
) {
    let mut pending: VecDeque<Dispatch> = VecDeque::new();
    let mut sent: HashMap<u64, (Arc<str>, u64, &'static str, Instant)> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => {
                let _ = out.try_send(Err(Status::unknown("server is closing")));
                break;
            }
            Some(dispatch) = dispatches.recv() => pending.push_back(dispatch),
            permit = out.reserve(), if !pending.is_empty() => {
                let Ok(permit) = permit else {
                    inner.metrics.sidecar_error(SidecarError::SendFailed);
                    break;
                };
                let Some(dispatch) = pending.pop_front() else { continue };
                let mut response = dispatch.response;
                response.id = next_id;
                sent.insert(next_id, (dispatch.name, dispatch.generation, dispatch.kind, Instant::now()));
                next_id += 1;
                permit.send(Ok(response));
            }
            message = inbound.message() => match message {
                Ok(Some(WatchJobsRequest {
                    watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Result(r)),
                })) => {
                    let result = match r.status {
                        0 => TriggerResult::Success,
                        1 => TriggerResult::Failed,
                        other => {
                            tracing::error!(stream = %label, status = other, "Error receiving from stream: unknown trigger status");
                            inner.metrics.sidecar_error(SidecarError::RecvFailed);
                            break;
                        }
                    };
                    let Some((name, generation, kind, at)) = sent.remove(&r.id) else {
                        tracing::warn!(stream = %label, id = r.id, "ignoring a result for an unknown or already answered trigger");
                        continue;
                    };
                    let latency = at.elapsed().as_millis() as u64;
                    match result {
                        TriggerResult::Success => inner.metrics.triggered(kind, latency),
                        _ => inner.metrics.failed(kind, latency),
                    }
                    inner.engine.send(Message::Result { stream: id, name, generation, result });
                }
                Ok(Some(_)) => {
                    tracing::error!(stream = %label, "Error receiving from stream: unexpected message");
                    inner.metrics.sidecar_error(SidecarError::RecvFailed);
                    break;
                }
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(stream = %label, error = %status.message(), "stream ended");
                    break;
                }
            },
            () = out.closed() => break,
        }
    }
    tracing::info!("Closing connection to {label}");
    inner.metrics.stream_closed();
    inner.engine.send(Message::Closed { id });
}
