//! Load generator for the `dapr.proto.scheduler.v1.Scheduler` API: one client, run unchanged
//! against our scheduler and upstream's (plaintext gRPC, single replica, loopback).
//!
//! Phases (the bench script gives each its own fresh server, so none sees another's jobs):
//! - `schedule`: for each `--concurrency` level, workers loop ScheduleJob of distinct one-shot
//!   app jobs due in an hour (`--warmup` unmeasured, then `--duration` measured), so nothing
//!   triggers and the phase measures the write path only;
//! - `trigger-oneshot`: `--streams` WatchJobs streams for app `bench` are opened first, then
//!   `--schedulers` workers schedule `--jobs` one-shot app jobs all due at the same RFC 3339
//!   instant; measured: due instant → last trigger, triggers/s between the first and last
//!   trigger, and each trigger's lateness (receive time − due time);
//! - `trigger-repeat`: the same with `--reminders` actor reminders (`@every <interval>`,
//!   `--repeats` times, first due at one common instant), streams hosting actor type
//!   `benchtype`; lateness of the k-th trigger of a reminder is measured against
//!   due + k × interval.
//!
//! Every stream acknowledges every trigger with SUCCESS, the way daprd does after delivering it.
//! Receive times are taken in the stream task before anything else is done with a message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use dapr_proto::scheduler::v1::{
    Job, JobMetadata, JobTargetMetadata, JobTargetType, ListJobsRequest, ScheduleJobRequest,
    TargetActorReminder, TargetJob, WatchJobsRequest, WatchJobsRequestInitial,
    WatchJobsRequestResult, WatchJobsRequestResultStatus, job_target_metadata,
    scheduler_client::SchedulerClient, watch_jobs_request,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use super::stats::{LevelSummary, percentile};

/// Upper bounds so a typo cannot turn a benchmark into a soak test.
const MAX_CONCURRENCY: usize = 512;
const MAX_DURATION: Duration = Duration::from_secs(120);
const MAX_JOBS: usize = 1_000_000;
const MAX_STREAMS: usize = 64;
/// A ScheduleJob slower than this counts as an error instead of stalling its worker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Opening a WatchJobs stream sends no response until the first trigger (Go servers send
/// headers lazily), so there is nothing to await: give the server this long to register the
/// streams before any job is scheduled. Jobs are due seconds later anyway.
const STREAM_SETTLE: Duration = Duration::from_millis(500);
/// After the last expected trigger, keep listening this long to catch duplicates.
const GRACE: Duration = Duration::from_millis(1500);
const APP_ID: &str = "bench";
const NAMESPACE: &str = "default";
const ACTOR_TYPE: &str = "benchtype";

/// Drives scheduler load phases against one server and prints JSON results on stdout.
#[derive(Debug, Parser)]
#[command(name = "bench_scheduler", about)]
pub struct Args {
    /// The scheduler's gRPC address (plaintext, loopback).
    #[arg(long, default_value = "127.0.0.1:50006")]
    pub addr: SocketAddr,
    /// Phases to run, in order (state carries over between phases of one run).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "schedule,trigger-oneshot,trigger-repeat"
    )]
    pub phases: Vec<PhaseKind>,
    /// Worker counts of the `schedule` phase, one measured level each.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub concurrency: Vec<usize>,
    /// Measured time per `schedule` level.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Unmeasured time per `schedule` level before the clock starts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Cap on measured requests per `schedule` level.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// HTTP/2 connections ScheduleJob calls are spread over (round-robin per request).
    #[arg(long, default_value_t = 4)]
    pub conns: usize,
    /// One-shot jobs of `trigger-oneshot`.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Actor reminders of `trigger-repeat`.
    #[arg(long, default_value_t = 2_000)]
    pub reminders: usize,
    /// Triggers per reminder.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Reminder period (`@every <interval>`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub interval: Duration,
    /// Concurrent ScheduleJob callers of the trigger phases.
    #[arg(long, default_value_t = 64)]
    pub schedulers: usize,
    /// WatchJobs streams of the trigger phases (one per simulated daprd replica of the app).
    #[arg(long, default_value_t = 4)]
    pub streams: usize,
    /// Minimum time from the start of scheduling to the common due instant.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub trigger_lead: Duration,
    /// The server's ScheduleJob rate (req/s), if known: the lead then grows to 1 s plus 1.5×
    /// the expected scheduling time, so every job is stored before it is due.
    #[arg(long)]
    pub schedule_rps_hint: Option<f64>,
    /// Give up on a trigger phase this long after its last expected trigger.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub trigger_timeout: Duration,
    /// How long to retry ListJobs while the server answers Unavailable.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub ready_timeout: Duration,
    /// Label copied into the JSON (e.g. `ours`, `upstream`).
    #[arg(long, default_value = "scheduler")]
    pub label: String,
}

/// One kind of measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseKind {
    Schedule,
    TriggerOneshot,
    TriggerRepeat,
}

/// The JSON document printed on stdout.
#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub addr: String,
    pub connections: usize,
    pub phases: Vec<PhaseResult>,
}

#[derive(Debug, Serialize)]
pub struct PhaseResult {
    /// `schedule-c<N>`, `trigger-oneshot` or `trigger-repeat`.
    pub phase: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Schedule(ScheduleSummary),
    Trigger(TriggerSummary),
}

/// What a schedule level saw.
#[derive(Debug, Serialize)]
pub struct ScheduleSummary {
    #[serde(flatten)]
    pub level: LevelSummary,
    /// Jobs the server acknowledged during the level, warm-up included: what it holds at the
    /// end (a faster server holds more, so its peak RSS is compared per stored job too).
    pub stored_jobs: u64,
}

/// What a trigger phase saw.
#[derive(Debug, Serialize)]
pub struct TriggerSummary {
    pub streams: usize,
    pub schedulers: usize,
    /// Jobs (or reminders) successfully scheduled.
    pub jobs: usize,
    pub schedule_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Time to schedule every job, and the rate that gives.
    pub schedule_s: f64,
    pub schedule_rps: f64,
    /// Start of scheduling → the common first due instant.
    pub lead_s: f64,
    /// Last ScheduleJob completion → first due instant; negative: some jobs were stored late.
    pub scheduled_before_due_ms: f64,
    #[serde(flatten)]
    pub triggers: TriggerCounts,
}

/// The trigger half of a [`TriggerSummary`].
#[derive(Debug, Serialize)]
pub struct TriggerCounts {
    pub expected_triggers: u64,
    pub received_triggers: u64,
    /// Triggers beyond the expected count per job (duplicates or extra repeats).
    pub extra_triggers: u64,
    /// First due instant → first trigger received.
    pub first_trigger_ms: f64,
    /// Last due instant (the common one, or the last repeat's) → last trigger received.
    pub last_trigger_ms: f64,
    /// Received triggers over the first → last trigger window.
    pub triggers_per_s: f64,
    /// Receive time − due time of each trigger.
    pub lateness_ms: Lateness,
}

#[derive(Debug, Serialize)]
pub struct Lateness {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Lateness {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            p50: ms(percentile(&samples, 50.0)),
            p90: ms(percentile(&samples, 90.0)),
            p99: ms(percentile(&samples, 99.0)),
            max: ms(samples.last().copied().unwrap_or_default()),
        }
    }
}

impl Args {
    pub async fn run(self) -> anyhow::Result<()> {
        self.check_bounds()?;
        let target = Arc::new(Target::connect(self.addr, self.conns).await?);
        target.ready(self.ready_timeout).await?;
        eprintln!("{}: ready at {}", self.label, self.addr);

        let mut phases = Vec::new();
        for &kind in &self.phases {
            match kind {
                PhaseKind::Schedule => {
                    for &workers in &self.concurrency {
                        let summary = target.schedule_phase(workers, &self).await?;
                        eprintln!(
                            "{}: schedule c={:<3} {:>9.1} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
                            self.label,
                            workers,
                            summary.level.rps,
                            summary.level.p50_ms,
                            summary.level.p99_ms,
                            summary.level.errors
                        );
                        phases.push(PhaseResult {
                            phase: format!("schedule-c{workers}"),
                            outcome: Outcome::Schedule(summary),
                        });
                    }
                }
                PhaseKind::TriggerOneshot | PhaseKind::TriggerRepeat => {
                    let plan = TriggerPlan::new(kind, &self);
                    let summary = target.trigger_phase(&plan, &self).await?;
                    eprintln!(
                        "{}: {:<15} {} triggers ({} extra) {:>9.1}/s  due→last {:>8.1} ms  lateness p50 {:>8.1} ms  p99 {:>8.1} ms",
                        self.label,
                        plan.name,
                        summary.triggers.received_triggers,
                        summary.triggers.extra_triggers,
                        summary.triggers.triggers_per_s,
                        summary.triggers.last_trigger_ms,
                        summary.triggers.lateness_ms.p50,
                        summary.triggers.lateness_ms.p99
                    );
                    phases.push(PhaseResult {
                        phase: plan.name.to_owned(),
                        outcome: Outcome::Trigger(summary),
                    });
                }
            }
        }
        let report = Report {
            label: self.label,
            addr: self.addr.to_string(),
            connections: target.pool.len(),
            phases,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }

    fn check_bounds(&self) -> anyhow::Result<()> {
        ensure!(
            self.addr.ip().is_loopback(),
            "--addr {} is not a loopback address",
            self.addr
        );
        ensure!(!self.phases.is_empty(), "--phases is empty");
        ensure!(!self.concurrency.is_empty(), "--concurrency is empty");
        for &c in self.concurrency.iter().chain([&self.schedulers]) {
            ensure!(
                (1..=MAX_CONCURRENCY).contains(&c),
                "concurrency {c} is not within 1..={MAX_CONCURRENCY}"
            );
        }
        ensure!(
            (1..=16).contains(&self.conns),
            "--conns must be within 1..=16"
        );
        ensure!(
            (1..=MAX_STREAMS).contains(&self.streams),
            "--streams must be within 1..={MAX_STREAMS}"
        );
        ensure!(
            (1..=MAX_JOBS).contains(&self.jobs) && (1..=MAX_JOBS).contains(&self.reminders),
            "--jobs and --reminders must be within 1..={MAX_JOBS}"
        );
        ensure!(
            (1..=100).contains(&self.repeats),
            "--repeats must be within 1..=100"
        );
        ensure!(
            self.interval >= Duration::from_secs(1) && self.interval.subsec_nanos() == 0,
            "--interval must be whole seconds, at least 1s"
        );
        for (name, d) in [
            ("--duration", self.duration),
            ("--warmup", self.warmup),
            ("--trigger-lead", self.trigger_lead),
        ] {
            ensure!(d <= MAX_DURATION, "{name} exceeds {MAX_DURATION:?}");
        }
        ensure!(
            self.duration > Duration::ZERO,
            "--duration must be positive"
        );
        ensure!(
            self.trigger_timeout <= Duration::from_secs(600),
            "--trigger-timeout exceeds 600s"
        );
        ensure!(self.max_requests >= 1, "--max-requests must be at least 1");
        if let Some(rps) = self.schedule_rps_hint {
            ensure!(rps > 0.0, "--schedule-rps-hint must be positive");
        }
        Ok(())
    }
}

/// What one trigger phase schedules and expects.
#[derive(Debug)]
struct TriggerPlan {
    name: &'static str,
    /// Actor reminders (`trigger-repeat`) rather than one-shot app jobs.
    reminders: bool,
    jobs: usize,
    /// Triggers per job (1 for one-shot jobs).
    repeats: u32,
    interval: Duration,
    lead: Duration,
}

impl TriggerPlan {
    fn new(kind: PhaseKind, args: &Args) -> Self {
        let reminders = kind == PhaseKind::TriggerRepeat;
        let (name, jobs, repeats) = if reminders {
            ("trigger-repeat", args.reminders, args.repeats)
        } else {
            ("trigger-oneshot", args.jobs, 1)
        };
        Self {
            name,
            reminders,
            jobs,
            repeats,
            interval: args.interval,
            lead: lead(args.trigger_lead, jobs, args.schedule_rps_hint),
        }
    }

    /// The first stream message: who this simulated daprd is and what it accepts.
    fn initial(&self) -> WatchJobsRequest {
        let (actor_types, accept) = if self.reminders {
            (vec![ACTOR_TYPE.to_owned()], JobTargetType::ActorReminder)
        } else {
            (Vec::new(), JobTargetType::Job)
        };
        WatchJobsRequest {
            watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Initial(
                WatchJobsRequestInitial {
                    app_id: APP_ID.to_owned(),
                    namespace: NAMESPACE.to_owned(),
                    actor_types,
                    accept_job_types: vec![accept as i32],
                    concurrency_limits: Vec::new(),
                },
            )),
        }
    }

    /// The `i`-th job, first due at `due` (RFC 3339).
    fn request(&self, i: usize, due: &str) -> ScheduleJobRequest {
        if self.reminders {
            let target = job_target_metadata::Type::Actor(TargetActorReminder {
                id: i.to_string(),
                r#type: ACTOR_TYPE.to_owned(),
            });
            let job = Job {
                schedule: Some(format!("@every {}s", self.interval.as_secs())),
                repeats: Some(self.repeats),
                due_time: Some(due.to_owned()),
                ..Job::default()
            };
            schedule_request(format!("reminder-{i}"), job, target)
        } else {
            let job = Job {
                due_time: Some(due.to_owned()),
                ..Job::default()
            };
            schedule_request(format!("oneshot-{i}"), job, app_target())
        }
    }
}

/// Scheduling time is not what a trigger phase measures: the common due instant lies far
/// enough ahead that every job is stored before it (given a rate hint), and at least `min`.
fn lead(min: Duration, jobs: usize, rps_hint: Option<f64>) -> Duration {
    let Some(rps) = rps_hint else { return min };
    let expected = Duration::from_secs_f64((jobs as f64 / rps * 1.5).min(600.0));
    min.max(Duration::from_secs(1) + expected)
}

fn app_target() -> job_target_metadata::Type {
    job_target_metadata::Type::Job(TargetJob {})
}

fn schedule_request(
    name: String,
    job: Job,
    target: job_target_metadata::Type,
) -> ScheduleJobRequest {
    ScheduleJobRequest {
        name,
        job: Some(job),
        metadata: Some(metadata(Some(target))),
        overwrite: true,
    }
}

fn metadata(target: Option<job_target_metadata::Type>) -> JobMetadata {
    JobMetadata {
        app_id: APP_ID.to_owned(),
        namespace: NAMESPACE.to_owned(),
        target: target.map(|t| JobTargetMetadata { r#type: Some(t) }),
        concurrency_key: None,
    }
}

/// The whole second at or after `at`, so the RFC 3339 form (seconds precision) is exact.
fn whole_second_at_or_after(at: SystemTime) -> SystemTime {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `b − a` in milliseconds, negative when `b` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}

/// `count` per `seconds`; zero over an empty window.
fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// What a WatchJobs stream task reports.
#[derive(Debug)]
enum Seen {
    Trigger { at: Instant, name: String },
    Ended { stream: usize, error: String },
}

/// The connection pool every phase draws from.
struct Target {
    pool: Vec<SchedulerClient<Channel>>,
    next: AtomicUsize,
}

impl Target {
    async fn connect(addr: SocketAddr, conns: usize) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(REQUEST_TIMEOUT);
        let mut pool = Vec::with_capacity(conns);
        for _ in 0..conns {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to the scheduler at {addr}"))?;
            pool.push(SchedulerClient::new(channel));
        }
        Ok(Self {
            pool,
            next: AtomicUsize::new(0),
        })
    }

    fn client(&self) -> SchedulerClient<Channel> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].clone()
    }

    /// Retries ListJobs until the server answers anything but Unavailable (it may still be
    /// electing its embedded etcd or starting its cron engine).
    async fn ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let request = ListJobsRequest {
                metadata: Some(metadata(Some(app_target()))),
            };
            let answer =
                tokio::time::timeout(REQUEST_TIMEOUT, self.client().list_jobs(request)).await;
            match answer {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(status)) if status.code() != Code::Unavailable => {
                    // Ready enough to answer; the phases will fail loudly if it cannot serve.
                    eprintln!("bench_scheduler: ListJobs answered {}", describe(&status));
                    return Ok(());
                }
                Ok(Err(status)) if Instant::now() < deadline => {
                    eprintln!("bench_scheduler: not ready yet: {}", describe(&status));
                }
                Err(_) if Instant::now() < deadline => {
                    eprintln!("bench_scheduler: not ready yet: ListJobs timed out");
                }
                Ok(Err(status)) => bail!("not ready within {timeout:?}: {}", describe(&status)),
                Err(_) => bail!("not ready within {timeout:?}: ListJobs timed out"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn schedule(&self, request: ScheduleJobRequest) -> Result<(), String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client().schedule_job(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(describe(&status)),
            Err(_) => Err(format!("ScheduleJob timed out after {REQUEST_TIMEOUT:?}")),
        }
    }

    /// One `schedule` level: `workers` tasks looping ScheduleJob of distinct far-future jobs.
    async fn schedule_phase(
        self: &Arc<Self>,
        workers: usize,
        args: &Args,
    ) -> anyhow::Result<ScheduleSummary> {
        let measure_from = Instant::now() + args.warmup;
        let deadline = measure_from + args.duration;
        let budget = Arc::new(AtomicU64::new(0));
        let max_requests = args.max_requests;
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..workers {
            let target = Arc::clone(self);
            let budget = Arc::clone(&budget);
            tasks.spawn(async move {
                let mut out = WorkerOutcome::new(measure_from);
                for seq in 0_u64.. {
                    let start = Instant::now();
                    if start >= deadline {
                        break;
                    }
                    let measured = start >= measure_from;
                    if measured && budget.fetch_add(1, Ordering::Relaxed) >= max_requests {
                        break;
                    }
                    let job = Job {
                        due_time: Some("1h".to_owned()),
                        ..Job::default()
                    };
                    let name = format!("sched-c{workers}-{worker:03}-{seq:08}");
                    let result = target
                        .schedule(schedule_request(name, job, app_target()))
                        .await;
                    out.stored += u64::from(result.is_ok());
                    if measured {
                        out.record(start, result);
                    }
                }
                out
            });
        }
        let mut total = WorkerOutcome::new(measure_from);
        while let Some(joined) = tasks.join_next().await {
            total.merge(joined.context("a schedule worker panicked")?);
        }
        if total.latencies.is_empty() {
            bail!(
                "schedule c={workers}: no ScheduleJob succeeded ({} errors, first: {})",
                total.errors,
                total.first_error.as_deref().unwrap_or("none")
            );
        }
        let stored_jobs = total.stored;
        Ok(ScheduleSummary {
            level: LevelSummary::new(
                workers,
                total.latencies,
                total.errors,
                total.last_done.saturating_duration_since(measure_from),
                total.first_error,
            ),
            stored_jobs,
        })
    }

    /// Opens the streams, schedules every job of `plan` for one common due instant, and
    /// collects triggers until all expected ones arrived (plus a grace period) or time runs out.
    async fn trigger_phase(
        self: &Arc<Self>,
        plan: &TriggerPlan,
        args: &Args,
    ) -> anyhow::Result<TriggerSummary> {
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let mut streams = tokio::task::JoinSet::new();
        for stream in 0..args.streams {
            let client = self.pool[stream % self.pool.len()].clone();
            streams.spawn(watch(client, stream, plan.initial(), seen_tx.clone()));
        }
        drop(seen_tx);
        tokio::time::sleep(STREAM_SETTLE).await;
        if let Ok(Seen::Ended { stream, error }) = seen_rx.try_recv() {
            bail!(
                "{}: WatchJobs stream {stream} ended before any job was scheduled: {error}",
                plan.name
            );
        }

        // The due instant, on the wall clock for the server and on the monotonic clock for us.
        let started = Instant::now();
        let due_wall = whole_second_at_or_after(SystemTime::now() + plan.lead);
        let due = started
            + due_wall
                .duration_since(SystemTime::now())
                .unwrap_or_default();
        let due_text = humantime::format_rfc3339_seconds(due_wall).to_string();
        // Bounded as a whole too: a server that lets every request time out would otherwise
        // hold the phase for jobs / schedulers × REQUEST_TIMEOUT.
        let budget = plan.lead + args.trigger_timeout;
        let scheduled =
            tokio::time::timeout(budget, self.schedule_all(plan, &due_text, args.schedulers))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("{}: scheduling took longer than {budget:?}", plan.name)
                })??;
        let scheduled_at = Instant::now();
        if scheduled.ok == 0 {
            bail!(
                "{}: no ScheduleJob succeeded ({} errors, first: {})",
                plan.name,
                scheduled.errors,
                scheduled.first_error.as_deref().unwrap_or("none")
            );
        }

        let mut tally = Tally::new(due, plan.interval, plan.repeats, scheduled.ok);
        let expected = tally.expected;
        let deadline = tally.last_due() + args.trigger_timeout;
        let mut grace_until = None;
        loop {
            let until = grace_until.unwrap_or(deadline);
            let seen = match tokio::time::timeout_at(until, seen_rx.recv()).await {
                Ok(Some(seen)) => seen,
                Ok(None) => bail!("{}: every WatchJobs stream ended", plan.name),
                Err(_) if grace_until.is_some() => break,
                Err(_) => bail!(
                    "{}: received {} of {expected} triggers within {:?} after the last due instant",
                    plan.name,
                    tally.received,
                    args.trigger_timeout
                ),
            };
            match seen {
                Seen::Trigger { at, name } => tally.record(at, name),
                Seen::Ended { stream, error } => {
                    bail!("{}: WatchJobs stream {stream} ended: {error}", plan.name)
                }
            }
            if tally.received == expected && grace_until.is_none() {
                grace_until = Some(Instant::now() + GRACE);
            }
        }
        streams.abort_all();

        let schedule_s = scheduled_at
            .saturating_duration_since(started)
            .as_secs_f64();
        Ok(TriggerSummary {
            streams: args.streams,
            schedulers: args.schedulers,
            jobs: scheduled.ok,
            schedule_errors: scheduled.errors,
            first_error: scheduled.first_error,
            schedule_s,
            schedule_rps: per_second(scheduled.ok as f64, schedule_s),
            lead_s: due.saturating_duration_since(started).as_secs_f64(),
            scheduled_before_due_ms: signed_ms(scheduled_at, due),
            triggers: tally.summary(),
        })
    }

    /// Schedules every job of `plan` with `workers` concurrent callers pulling from one counter.
    async fn schedule_all(
        self: &Arc<Self>,
        plan: &TriggerPlan,
        due: &str,
        workers: usize,
    ) -> anyhow::Result<Scheduled> {
        let next = Arc::new(AtomicUsize::new(0));
        let requests: Arc<Vec<ScheduleJobRequest>> =
            Arc::new((0..plan.jobs).map(|i| plan.request(i, due)).collect());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (target, next, requests) =
                (Arc::clone(self), Arc::clone(&next), Arc::clone(&requests));
            tasks.spawn(async move {
                let mut out = Scheduled::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        break;
                    };
                    match target.schedule(request.clone()).await {
                        Ok(()) => out.ok += 1,
                        Err(error) => {
                            out.errors += 1;
                            out.first_error.get_or_insert(error);
                        }
                    }
                }
                out
            });
        }
        let mut total = Scheduled::default();
        while let Some(joined) = tasks.join_next().await {
            let out = joined.context("a schedule worker panicked")?;
            total.ok += out.ok;
            total.errors += out.errors;
            total.first_error = total.first_error.or(out.first_error);
        }
        Ok(total)
    }
}

/// One simulated daprd stream: sends `initial`, then acknowledges every trigger with SUCCESS
/// and reports it (receive time first) to the collector. Reports how the stream ended.
async fn watch(
    mut client: SchedulerClient<Channel>,
    stream: usize,
    initial: WatchJobsRequest,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let (acks, outbound) = mpsc::unbounded_channel();
    let ended = |error: String| Seen::Ended { stream, error };
    if acks.send(initial).is_err() {
        return;
    }
    let mut inbound = match client
        .watch_jobs(UnboundedReceiverStream::new(outbound))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = seen.send(ended(describe(&status)));
            return;
        }
    };
    loop {
        match inbound.message().await {
            Ok(Some(trigger)) => {
                let at = Instant::now();
                let ack = WatchJobsRequest {
                    watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Result(
                        WatchJobsRequestResult {
                            id: trigger.id,
                            status: WatchJobsRequestResultStatus::Success as i32,
                        },
                    )),
                };
                let _ = acks.send(ack);
                if seen
                    .send(Seen::Trigger {
                        at,
                        name: trigger.name,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                let _ = seen.send(ended("closed by the server".to_owned()));
                return;
            }
            Err(status) => {
                let _ = seen.send(ended(describe(&status)));
                return;
            }
        }
    }
}

/// Trigger accounting of one phase: a pure function of receive times and job names, so the
/// arithmetic is tested without a server.
#[derive(Debug)]
struct Tally {
    due: Instant,
    interval: Duration,
    repeats: u32,
    expected: u64,
    /// Triggers counted so far per job name; the k-th one is due at `due + k × interval`.
    per_job: HashMap<String, u32>,
    lateness: Vec<Duration>,
    received: u64,
    extra: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    fn new(due: Instant, interval: Duration, repeats: u32, jobs: usize) -> Self {
        let expected = jobs as u64 * u64::from(repeats);
        Self {
            due,
            interval,
            repeats,
            expected,
            per_job: HashMap::with_capacity(jobs),
            lateness: Vec::with_capacity(usize::try_from(expected).unwrap_or_default()),
            received: 0,
            extra: 0,
            first: None,
            last: None,
        }
    }

    /// When the last trigger of every job is due.
    fn last_due(&self) -> Instant {
        self.due + self.interval * self.repeats.saturating_sub(1)
    }

    fn record(&mut self, at: Instant, name: String) {
        let k = self.per_job.entry(name).or_default();
        if *k >= self.repeats {
            self.extra += 1;
            return;
        }
        let due = self.due + self.interval * *k;
        *k += 1;
        self.received += 1;
        self.lateness.push(at.saturating_duration_since(due));
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    fn summary(self) -> TriggerCounts {
        let (first, last) = (
            self.first.unwrap_or(self.due),
            self.last.unwrap_or(self.due),
        );
        let window = last.saturating_duration_since(first).as_secs_f64();
        TriggerCounts {
            expected_triggers: self.expected,
            received_triggers: self.received,
            extra_triggers: self.extra,
            first_trigger_ms: signed_ms(self.due, first),
            last_trigger_ms: signed_ms(self.last_due(), last),
            triggers_per_s: per_second(self.received as f64, window),
            lateness_ms: Lateness::new(self.lateness),
        }
    }
}

#[derive(Debug, Default)]
struct Scheduled {
    ok: usize,
    errors: u64,
    first_error: Option<String>,
}

struct WorkerOutcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
    /// Successful requests, warm-up included.
    stored: u64,
}

impl WorkerOutcome {
    fn new(start: Instant) -> Self {
        Self {
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
            last_done: start,
            stored: 0,
        }
    }

    fn record(&mut self, start: Instant, result: Result<(), String>) {
        let done = Instant::now();
        self.last_done = self.last_done.max(done);
        match result {
            Ok(()) => self.latencies.push(done - start),
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.last_done = self.last_done.max(other.last_done);
        self.stored += other.stored;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_covers_the_expected_scheduling_time_when_a_rate_is_known() {
        let min = Duration::from_secs(2);
        assert_eq!(lead(min, 20_000, None), min);
        assert_eq!(lead(min, 100, Some(1_000.0)), min);
        assert_eq!(lead(min, 20_000, Some(2_000.0)), Duration::from_secs(16));
    }

    #[test]
    fn due_instants_are_whole_seconds_so_rfc3339_seconds_is_exact() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        let due = whole_second_at_or_after(at);
        assert_eq!(due, SystemTime::UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(whole_second_at_or_after(due), due);
        assert_eq!(
            humantime::format_rfc3339_seconds(due).to_string(),
            "1970-01-01T00:00:02Z"
        );
    }

    #[test]
    fn reminders_repeat_every_interval_and_target_the_bench_actor_type() {
        let args = Args::parse_from(["bench_scheduler", "--repeats", "3"]);
        let plan = TriggerPlan::new(PhaseKind::TriggerRepeat, &args);
        let request = plan.request(7, "1970-01-01T00:00:02Z");
        assert_eq!(request.name, "reminder-7");
        let job = request.job.expect("job");
        assert_eq!(job.schedule.as_deref(), Some("@every 1s"));
        assert_eq!(job.repeats, Some(3));
        let target = request
            .metadata
            .and_then(|m| m.target)
            .and_then(|t| t.r#type);
        assert_eq!(
            target,
            Some(job_target_metadata::Type::Actor(TargetActorReminder {
                id: "7".to_owned(),
                r#type: ACTOR_TYPE.to_owned(),
            }))
        );
        let Some(watch_jobs_request::WatchJobRequestType::Initial(initial)) =
            plan.initial().watch_job_request_type
        else {
            panic!("the first stream message must be `initial`");
        };
        assert_eq!(initial.actor_types, vec![ACTOR_TYPE.to_owned()]);
    }

    #[test]
    fn a_reminders_kth_trigger_is_late_only_relative_to_due_plus_k_intervals() {
        let due = Instant::now();
        let mut tally = Tally::new(due, Duration::from_secs(1), 3, 1);
        tally.record(due + Duration::from_millis(5), "r".to_owned());
        tally.record(due + Duration::from_millis(1_010), "r".to_owned());
        tally.record(due + Duration::from_millis(2_020), "r".to_owned());
        tally.record(due + Duration::from_millis(3_000), "r".to_owned());
        assert_eq!((tally.received, tally.extra), (3, 1));
        let summary = tally.summary();
        assert_eq!(summary.lateness_ms.max, 20.0);
        assert_eq!(summary.lateness_ms.p50, 10.0);
        assert_eq!(summary.first_trigger_ms, 5.0);
        assert_eq!(summary.last_trigger_ms, 20.0);
    }

    #[test]
    fn trigger_rate_is_received_over_the_first_to_last_window() {
        let due = Instant::now();
        let mut tally = Tally::new(due, Duration::from_secs(1), 1, 3);
        for (ms, name) in [(100, "a"), (300, "b"), (200, "c")] {
            tally.record(due + Duration::from_millis(ms), name.to_owned());
        }
        tally.record(due + Duration::from_millis(400), "a".to_owned());
        let summary = tally.summary();
        assert_eq!((summary.received_triggers, summary.extra_triggers), (3, 1));
        assert_eq!(summary.triggers_per_s, 15.0);
        assert_eq!(summary.last_trigger_ms, 300.0);
    }

    #[test]
    fn one_shot_jobs_are_app_jobs_due_once() {
        let args = Args::parse_from(["bench_scheduler"]);
        let plan = TriggerPlan::new(PhaseKind::TriggerOneshot, &args);
        assert_eq!(plan.repeats, 1);
        let request = plan.request(0, "due");
        let job = request.job.expect("job");
        assert_eq!((job.schedule, job.due_time.as_deref()), (None, Some("due")));
        assert!(request.overwrite);
    }
}
