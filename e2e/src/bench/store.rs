//! Load generator for the etcd v3 KV API: one client, run unchanged against our store
//! (`dapr-etcd`) and a real etcd, single node or a cluster.
//!
//! Connection model: `--conns-per-endpoint` HTTP/2 connections to every endpoint, all opened
//! before any clock starts; every request takes the next connection round-robin, the way etcd's
//! clientv3 balances RPCs over its endpoints. KV calls go straight over `h2` ([`H2Channel`]) on
//! the binary's current-thread runtime, so the generator's own CPU cost (which shares the
//! machine with the server under test) stays small and the same for every server. A worker has
//! one request in flight at a time, so concurrency = workers. Writes to a follower are forwarded
//! to the leader by the server (both etcd and ours), so a cluster run measures what a clientv3
//! user with all endpoints would see.
//!
//! Phases, each `--warmup` unmeasured then `--duration` measured:
//! - `put-seq`: one worker, puts of distinct keys;
//! - `put-concurrent`: `--concurrency` workers, puts of distinct keys;
//! - `txn`: `--concurrency` workers, each owning one key and looping
//!   `If mod_revision(k) == N Then put(k) Else range(k)` with N the revision of its last write;
//! - `get`: one worker, linearizable single-key ranges over the pre-populated keys;
//! - `range`: one worker, a linearizable prefix range returning all `--range-keys` keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use dapr_proto::etcd::etcdserverpb::{
    Compare, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, StatusRequest,
    TxnRequest, TxnResponse, compare, maintenance_client::MaintenanceClient, request_op,
    response_op,
};
use serde::Serialize;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::{h2grpc::H2Channel, stats::LevelSummary};

/// Upper bounds so a typo cannot turn a benchmark into a soak test.
const MAX_CONCURRENCY: usize = 512;
const MAX_DURATION: Duration = Duration::from_secs(120);
const MAX_REQUESTS: u64 = 5_000_000;
const MAX_VALUE_SIZE: usize = 1 << 20;
/// A request slower than this counts as an error instead of stalling its worker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The KV methods called.
const PUT: &str = "/etcdserverpb.KV/Put";
const RANGE: &str = "/etcdserverpb.KV/Range";
const TXN: &str = "/etcdserverpb.KV/Txn";
/// Prefix of every key written; `range` reads `<PREFIX>range/`.
const PREFIX: &str = "bench/";

/// Drives etcd KV load phases against an endpoint list and prints JSON results on stdout.
#[derive(Debug, Parser)]
#[command(name = "bench_store", about)]
pub struct Args {
    /// Client URLs of every member (`http://127.0.0.1:2379,...`); loopback only.
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// HTTP/2 connections opened to each endpoint.
    #[arg(long, default_value_t = 2)]
    pub conns_per_endpoint: usize,
    /// Workers of the concurrent phases (`put-concurrent`, `txn`).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Phases to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "put-seq,put-concurrent,txn,get,range"
    )]
    pub phases: Vec<PhaseKind>,
    /// Bytes per written value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Keys under the `range` prefix (also the keys `get` cycles over).
    #[arg(long, default_value_t = 100)]
    pub range_keys: usize,
    /// Measured time per phase.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Unmeasured time per phase before the clock starts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Cap on measured requests per phase; the phase ends at whichever bound comes first.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// How long to retry the first put while the cluster elects a leader.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub ready_timeout: Duration,
    /// Label copied into the JSON (e.g. `ours-1`, `etcd-3`).
    #[arg(long, default_value = "store")]
    pub label: String,
}

/// One measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseKind {
    PutSeq,
    PutConcurrent,
    Txn,
    Get,
    Range,
}

impl PhaseKind {
    fn name(self) -> &'static str {
        match self {
            Self::PutSeq => "put-seq",
            Self::PutConcurrent => "put-concurrent",
            Self::Txn => "txn",
            Self::Get => "get",
            Self::Range => "range",
        }
    }

    fn workers(self, concurrency: usize) -> usize {
        match self {
            Self::PutConcurrent | Self::Txn => concurrency,
            Self::PutSeq | Self::Get | Self::Range => 1,
        }
    }
}

/// The JSON document printed on stdout.
#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub endpoints: Vec<String>,
    pub connections: usize,
    pub connection_model: &'static str,
    pub value_size: usize,
    pub range_keys: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub phases: Vec<PhaseResult>,
    /// Each member's view after the run (leader, raft index, database size).
    pub members: Vec<MemberStatus>,
}

#[derive(Debug, Serialize)]
pub struct PhaseResult {
    pub phase: &'static str,
    #[serde(flatten)]
    pub summary: LevelSummary,
}

#[derive(Debug, Serialize)]
pub struct MemberStatus {
    pub endpoint: String,
    /// Member ids as hex strings: JSON numbers would lose their low bits in jq.
    pub member_id: String,
    pub leader: String,
    pub is_leader: bool,
    pub raft_index: u64,
    pub db_size: i64,
    pub db_size_in_use: i64,
    pub version: String,
}

impl Args {
    pub async fn run(self) -> anyhow::Result<()> {
        self.check_bounds()?;
        let target = Arc::new(Target::connect(&self).await?);
        target.ready(self.ready_timeout).await?;
        target.populate(self.range_keys).await?;
        eprintln!(
            "{}: ready, {} endpoint(s), {} connections",
            self.label,
            self.endpoints.len(),
            target.pool.len()
        );

        let mut phases = Vec::with_capacity(self.phases.len());
        for &kind in &self.phases {
            let summary = target
                .phase(
                    kind,
                    kind.workers(self.concurrency),
                    self.warmup,
                    self.duration,
                    self.max_requests,
                )
                .await?;
            eprintln!(
                "{}: {:<15} c={:<3} {:>9.1} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
                self.label,
                kind.name(),
                summary.concurrency,
                summary.rps,
                summary.p50_ms,
                summary.p99_ms,
                summary.errors
            );
            phases.push(PhaseResult {
                phase: kind.name(),
                summary,
            });
        }
        let members = member_statuses(&self.endpoints).await?;
        let report = Report {
            label: self.label,
            endpoints: self.endpoints,
            connections: target.pool.len(),
            connection_model: "HTTP/2 connections to every endpoint, round-robin per request, one request in flight per worker",
            value_size: self.value_size,
            range_keys: self.range_keys,
            duration_s: self.duration.as_secs_f64(),
            warmup_s: self.warmup.as_secs_f64(),
            phases,
            members,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }

    fn check_bounds(&self) -> anyhow::Result<()> {
        ensure!(!self.endpoints.is_empty(), "--endpoints is empty");
        for url in &self.endpoints {
            check_loopback(url)?;
        }
        ensure!(
            (1..=16).contains(&self.conns_per_endpoint),
            "--conns-per-endpoint must be within 1..=16"
        );
        ensure!(
            (1..=MAX_CONCURRENCY).contains(&self.concurrency),
            "--concurrency must be within 1..={MAX_CONCURRENCY}"
        );
        ensure!(!self.phases.is_empty(), "--phases is empty");
        ensure!(
            (1..=MAX_VALUE_SIZE).contains(&self.value_size),
            "--value-size must be within 1..={MAX_VALUE_SIZE}"
        );
        ensure!(
            (1..=10_000).contains(&self.range_keys),
            "--range-keys must be within 1..=10000"
        );
        ensure!(
            self.duration > Duration::ZERO && self.duration <= MAX_DURATION,
            "--duration must be within (0, {MAX_DURATION:?}]"
        );
        ensure!(
            self.warmup <= MAX_DURATION,
            "--warmup exceeds {MAX_DURATION:?}"
        );
        ensure!(
            (1..=MAX_REQUESTS).contains(&self.max_requests),
            "--max-requests must be within 1..={MAX_REQUESTS}"
        );
        Ok(())
    }
}

/// `http://host:port` with a loopback IP host (or `localhost`).
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("endpoint {url:?} must be http://host:port"))?
        .trim_end_matches('/');
    let (host, _port) = authority
        .rsplit_once(':')
        .with_context(|| format!("endpoint {url:?} has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    ensure!(loopback, "endpoint {url:?} is not a loopback address");
    Ok(())
}

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("endpoint {url:?}"))?
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// What workers share: the connection pool, its cursor and the value written.
struct Target {
    pool: Vec<H2Channel>,
    next: AtomicUsize,
    value: Vec<u8>,
    range_keys: usize,
}

impl Target {
    async fn connect(args: &Args) -> anyhow::Result<Self> {
        let mut pool = Vec::with_capacity(args.endpoints.len() * args.conns_per_endpoint);
        // Interleaved (e1, e2, e3, e1, ...), so consecutive requests go to different members.
        for _ in 0..args.conns_per_endpoint {
            for url in &args.endpoints {
                pool.push(H2Channel::connect(url, REQUEST_TIMEOUT).await?);
            }
        }
        Ok(Self {
            pool,
            next: AtomicUsize::new(0),
            value: vec![b'v'; args.value_size],
            range_keys: args.range_keys,
        })
    }

    fn client(&self) -> &H2Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        &self.pool[i]
    }

    /// Retries one put on every connection until all succeed (a cluster may still be electing).
    async fn ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for _ in 0..self.pool.len() {
            loop {
                match self.put(format!("{PREFIX}probe").into_bytes()).await {
                    Ok(_) => break,
                    Err(status) if Instant::now() < deadline => {
                        eprintln!("bench_store: not ready yet: {}", status.message());
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(status) => bail!("no successful put within {timeout:?}: {status}"),
                }
            }
        }
        Ok(())
    }

    /// Writes the keys `get` and `range` read, then checks the prefix range sees all of them.
    async fn populate(&self, keys: usize) -> anyhow::Result<()> {
        for i in 0..keys {
            self.put(range_key(i)).await?;
        }
        let count = self.prefix_range().await?;
        ensure!(
            count == keys,
            "prefix range returned {count} keys, expected {keys}"
        );
        Ok(())
    }

    /// One put; returns the store revision it was written at.
    async fn put(&self, key: Vec<u8>) -> Result<i64, tonic::Status> {
        let request = PutRequest {
            key,
            value: self.value.clone(),
            ..PutRequest::default()
        };
        let response: PutResponse = self.client().unary(PUT, &request).await?;
        Ok(response.header.map_or(0, |h| h.revision))
    }

    async fn get(&self, key: Vec<u8>) -> Result<usize, tonic::Status> {
        let request = RangeRequest {
            key,
            ..RangeRequest::default()
        };
        let response: RangeResponse = self.client().unary(RANGE, &request).await?;
        Ok(response.kvs.len())
    }

    async fn prefix_range(&self) -> Result<usize, tonic::Status> {
        let key = format!("{PREFIX}range/").into_bytes();
        let range_end = prefix_end(&key);
        let request = RangeRequest {
            key,
            range_end,
            ..RangeRequest::default()
        };
        let response: RangeResponse = self.client().unary(RANGE, &request).await?;
        Ok(response.kvs.len())
    }

    /// `If mod_revision(key) == revision Then put(key) Else range(key)`; returns whether the
    /// compare held and the key's mod revision afterwards.
    async fn txn(&self, key: Vec<u8>, revision: i64) -> Result<(bool, i64), tonic::Status> {
        let request = TxnRequest {
            compare: vec![Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Mod as i32,
                key: key.clone(),
                range_end: Vec::new(),
                target_union: Some(compare::TargetUnion::ModRevision(revision)),
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.clone(),
                    value: self.value.clone(),
                    ..PutRequest::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })),
            }],
        };
        let response: TxnResponse = self.client().unary(TXN, &request).await?;
        if response.succeeded {
            // The put's mod revision is the revision the txn was applied at.
            return Ok((true, response.header.map_or(0, |h| h.revision)));
        }
        let current = response
            .responses
            .into_iter()
            .find_map(|r| match r.response {
                Some(response_op::Response::ResponseRange(range)) => {
                    range.kvs.first().map(|kv| kv.mod_revision)
                }
                _ => None,
            })
            .unwrap_or(0);
        Ok((false, current))
    }

    /// One request of `kind` for worker `worker`'s `seq`-th iteration; `state` is the txn
    /// worker's expected mod revision.
    async fn request(
        &self,
        kind: PhaseKind,
        worker: usize,
        seq: u64,
        state: &mut i64,
    ) -> Result<(), String> {
        let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
        match kind {
            PhaseKind::PutSeq | PhaseKind::PutConcurrent => {
                let key = format!("{PREFIX}{}/{worker:03}/{seq:010}", kind.name());
                self.put(key.into_bytes()).await.map_err(status)?;
            }
            PhaseKind::Txn => {
                let (succeeded, revision) =
                    self.txn(txn_key(worker), *state).await.map_err(status)?;
                *state = revision;
                if !succeeded {
                    return Err("txn compare failed on a key only this worker writes".to_owned());
                }
            }
            PhaseKind::Get => {
                let i = usize::try_from(seq).unwrap_or_default() % self.range_keys;
                let found = self.get(range_key(i)).await.map_err(status)?;
                if found != 1 {
                    return Err(format!("get returned {found} keys, expected 1"));
                }
            }
            PhaseKind::Range => {
                let found = self.prefix_range().await.map_err(status)?;
                if found != self.range_keys {
                    return Err(format!(
                        "prefix range returned {found} keys, expected {}",
                        self.range_keys
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs one phase: `workers` tasks, each looping until the deadline or the budget.
    async fn phase(
        self: &Arc<Self>,
        kind: PhaseKind,
        workers: usize,
        warmup: Duration,
        duration: Duration,
        max_requests: u64,
    ) -> anyhow::Result<LevelSummary> {
        // Txn workers start from their key's current mod revision, read before the clock.
        let mut initial = vec![0_i64; workers];
        if kind == PhaseKind::Txn {
            for (worker, revision) in initial.iter_mut().enumerate() {
                *revision = self
                    .put(txn_key(worker))
                    .await
                    .context("creating the txn keys")?;
            }
        }
        let measure_from = Instant::now() + warmup;
        let deadline = measure_from + duration;
        let budget = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for (worker, state) in initial.into_iter().enumerate() {
            let target = Arc::clone(self);
            let budget = Arc::clone(&budget);
            let window = Window {
                measure_from,
                deadline,
                max_requests,
            };
            tasks.spawn(async move { target.worker(kind, worker, state, window, &budget).await });
        }
        let mut latencies = Vec::new();
        let (mut errors, mut first_error, mut last_done) = (0, None, measure_from);
        while let Some(joined) = tasks.join_next().await {
            let outcome = joined.context("a worker panicked")?;
            latencies.extend(outcome.latencies);
            errors += outcome.errors;
            first_error = first_error.or(outcome.first_error);
            last_done = last_done.max(outcome.last_done);
        }
        Ok(LevelSummary::new(
            workers,
            latencies,
            errors,
            last_done.saturating_duration_since(measure_from),
            first_error,
        ))
    }

    async fn worker(
        &self,
        kind: PhaseKind,
        worker: usize,
        mut state: i64,
        window: Window,
        budget: &AtomicU64,
    ) -> WorkerOutcome {
        let mut out = WorkerOutcome {
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
            last_done: window.measure_from,
        };
        for seq in 0.. {
            let start = Instant::now();
            if start >= window.deadline {
                break;
            }
            let measured = start >= window.measure_from;
            if measured && budget.fetch_add(1, Ordering::Relaxed) >= window.max_requests {
                break;
            }
            let result = self.request(kind, worker, seq, &mut state).await;
            if !measured {
                continue;
            }
            let done = Instant::now();
            out.last_done = out.last_done.max(done);
            match result {
                Ok(()) => out.latencies.push(done - start),
                Err(error) => {
                    out.errors += 1;
                    out.first_error.get_or_insert(error);
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    deadline: Instant,
    max_requests: u64,
}

struct WorkerOutcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
}

fn range_key(i: usize) -> Vec<u8> {
    format!("{PREFIX}range/{i:05}").into_bytes()
}

fn txn_key(worker: usize) -> Vec<u8> {
    format!("{PREFIX}txn/{worker:03}").into_bytes()
}

/// The smallest key greater than every key starting with `prefix` (etcd's `GetPrefixRangeEnd`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from `prefix` on.
    vec![0]
}

/// Asks every member for its status: who leads, how far its log is, how big its database is.
async fn member_statuses(endpoints: &[String]) -> anyhow::Result<Vec<MemberStatus>> {
    let mut out = Vec::with_capacity(endpoints.len());
    for url in endpoints {
        let status = MaintenanceClient::new(channel(url).await?)
            .status(StatusRequest {})
            .await
            .with_context(|| format!("status of {url}"))?
            .into_inner();
        let member_id = status.header.map_or(0, |h| h.member_id);
        out.push(MemberStatus {
            endpoint: url.clone(),
            member_id: format!("{member_id:x}"),
            leader: format!("{:x}", status.leader),
            is_leader: member_id == status.leader,
            raft_index: status.raft_index,
            db_size: status.db_size,
            db_size_in_use: status.db_size_in_use,
            version: status.version,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"bench/range/"), b"bench/range0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        assert!(check_loopback("http://127.0.0.1:2379").is_ok());
        assert!(check_loopback("http://localhost:2379/").is_ok());
        assert!(check_loopback("http://[::1]:2379").is_ok());
        assert!(check_loopback("http://10.0.0.1:2379").is_err());
        assert!(check_loopback("127.0.0.1:2379").is_err());
    }

    #[test]
    fn only_the_concurrent_phases_use_many_workers() {
        assert_eq!(PhaseKind::PutSeq.workers(64), 1);
        assert_eq!(PhaseKind::PutConcurrent.workers(64), 64);
        assert_eq!(PhaseKind::Txn.workers(64), 64);
        assert_eq!(PhaseKind::Range.workers(64), 1);
    }
}
