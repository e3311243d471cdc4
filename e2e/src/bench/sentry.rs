//! Load generator for `dapr.proto.sentry.v1.CA/SignCertificate`.
//!
//! Connection model: one HTTP/2 connection per worker, opened (TLS handshake included) before
//! the level's clock starts, so a level measures signing throughput, not handshakes. Each worker
//! sends one request at a time; concurrency = workers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use dapr_proto::sentry::v1::ca_client::CaClient;
use dapr_proto::sentry::v1::sign_certificate_request::TokenValidator;
use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use dapr_security::{SpiffeId, TrustAnchors, pem};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::stats::LevelSummary;
use super::tls;

/// Upper bounds so a typo cannot turn a benchmark into a soak test.
const MAX_CONCURRENCY: usize = 256;
const MAX_DURATION: Duration = Duration::from_secs(120);
const MAX_REQUESTS: u64 = 2_000_000;
/// A request slower than this counts as an error instead of stalling its worker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The TLS name sent in SNI; sentry ignores it and we check the SPIFFE ID instead.
const SNI: &str = "sentry.invalid";

/// Drives `SignCertificate` at fixed concurrency levels and prints JSON results on stdout.
#[derive(Debug, Parser)]
#[command(name = "bench_sentry", about)]
pub struct Args {
    /// Sentry's gRPC address; loopback only.
    #[arg(long, default_value = "127.0.0.1:50001")]
    pub addr: SocketAddr,
    /// Trust anchors (sentry's `<issuer-credentials>/ca.crt`).
    #[arg(long)]
    pub ca: PathBuf,
    /// Sentry's own trust domain; its SVID is `spiffe://<this>/ns/<server-namespace>/dapr-sentry`.
    #[arg(long, default_value = "localhost")]
    pub server_trust_domain: String,
    #[arg(long, default_value = "default")]
    pub server_namespace: String,
    /// Workload identity requested in every CSR.
    #[arg(long, default_value = "bench-app")]
    pub app_id: String,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    #[arg(long, default_value = "public")]
    pub trust_domain: String,
    /// Concurrency levels, run in order.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Measured time per level.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Unmeasured time per level before the clock starts (fresh connections, warm caches).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    pub warmup: Duration,
    /// Cap on measured requests per level; the level ends at whichever bound comes first.
    #[arg(long, default_value_t = 500_000)]
    pub max_requests: u64,
    /// Label copied into the JSON (e.g. `ours`, `upstream`).
    #[arg(long, default_value = "sentry")]
    pub label: String,
}

/// The JSON document printed on stdout.
#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub addr: String,
    pub connection_model: &'static str,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub levels: Vec<LevelSummary>,
}

impl Args {
    pub async fn run(self) -> anyhow::Result<()> {
        self.check_bounds()?;
        let target = Arc::new(Target::new(&self)?);
        let probe = target.connect().await?;
        target
            .probe(probe)
            .await
            .context("the first SignCertificate did not return a valid workload certificate")?;
        eprintln!("{}: probe ok, {}", self.label, self.addr);

        let mut levels = Vec::with_capacity(self.concurrency.len());
        for &workers in &self.concurrency {
            let summary = target
                .level(workers, self.warmup, self.duration, self.max_requests)
                .await?;
            eprintln!(
                "{}: c={:<3} {:>9.1} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
                self.label, workers, summary.rps, summary.p50_ms, summary.p99_ms, summary.errors
            );
            levels.push(summary);
        }
        let report = Report {
            label: self.label,
            addr: self.addr.to_string(),
            connection_model: "one HTTP/2 connection per worker, one request in flight each",
            duration_s: self.duration.as_secs_f64(),
            warmup_s: self.warmup.as_secs_f64(),
            levels,
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
        ensure!(!self.concurrency.is_empty(), "--concurrency is empty");
        if let Some(&c) = self
            .concurrency
            .iter()
            .find(|&&c| c == 0 || c > MAX_CONCURRENCY)
        {
            bail!("concurrency {c} is outside 1..={MAX_CONCURRENCY}");
        }
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

/// Everything a worker needs: where to connect, how to trust it, what to send.
struct Target {
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    anchors: TrustAnchors,
    request: SignCertificateRequest,
    expected_workload_id: String,
}

impl Target {
    fn new(args: &Args) -> anyhow::Result<Self> {
        let pem_bytes =
            std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
        let anchors = TrustAnchors::from_pem(&pem_bytes)
            .with_context(|| format!("decoding {}", args.ca.display()))?;
        ensure!(
            !anchors.is_empty(),
            "{} holds no certificates",
            args.ca.display()
        );
        let server_id = SpiffeId::parse(&format!(
            "spiffe://{}/ns/{}/dapr-sentry",
            args.server_trust_domain, args.server_namespace
        ))?;
        let config = tls::client_config(anchors.clone(), server_id);
        Ok(Self {
            addr: args.addr,
            connector: tokio_rustls::TlsConnector::from(config),
            anchors,
            request: SignCertificateRequest {
                id: args.app_id.clone(),
                token: String::new(),
                trust_domain: args.trust_domain.clone(),
                namespace: args.namespace.clone(),
                certificate_signing_request: ed25519_csr()?,
                token_validator: TokenValidator::Insecure as i32,
                jwt_audiences: Vec::new(),
            },
            expected_workload_id: format!(
                "spiffe://{}/ns/{}/{}",
                args.trust_domain, args.namespace, args.app_id
            ),
        })
    }

    /// Opens one HTTP/2 connection (TCP + TLS + h2 preface) to the target.
    async fn connect(&self) -> anyhow::Result<CaClient<Channel>> {
        let addr = self.addr;
        let connector = self.connector.clone();
        let channel = Endpoint::from_static("http://sentry.invalid")
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .connect_with_connector(tower::service_fn(move |_| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let name = ServerName::try_from(SNI).map_err(std::io::Error::other)?;
                    let stream = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        Ok(CaClient::new(channel))
    }

    async fn sign(
        &self,
        client: &mut CaClient<Channel>,
    ) -> Result<SignCertificateResponse, tonic::Status> {
        client
            .sign_certificate(self.request.clone())
            .await
            .map(tonic::Response::into_inner)
    }

    /// One request whose answer is checked: the chain leads to the anchors and names our app.
    async fn probe(&self, mut client: CaClient<Channel>) -> anyhow::Result<()> {
        let response = self.sign(&mut client).await?;
        let chain = pem::decode_certificate_chain(&response.workload_certificate)?;
        let expected = SpiffeId::parse(&self.expected_workload_id)?;
        tls::check_workload_chain(&chain, &self.anchors, &expected)
            .context("workload certificate is not a valid SVID for our app")?;
        Ok(())
    }

    /// Runs one level: `workers` connections, each looping until the deadline or the budget.
    async fn level(
        self: &Arc<Self>,
        workers: usize,
        warmup: Duration,
        duration: Duration,
        max_requests: u64,
    ) -> anyhow::Result<LevelSummary> {
        let mut clients = Vec::with_capacity(workers);
        for _ in 0..workers {
            clients.push(self.connect().await?);
        }
        let measure_from = Instant::now() + warmup;
        let deadline = measure_from + duration;
        let budget = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for client in clients {
            let target = Arc::clone(self);
            let budget = Arc::clone(&budget);
            tasks.spawn(async move {
                target
                    .worker(client, measure_from, deadline, &budget, max_requests)
                    .await
            });
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
        mut client: CaClient<Channel>,
        measure_from: Instant,
        deadline: Instant,
        budget: &AtomicU64,
        max_requests: u64,
    ) -> WorkerOutcome {
        let mut out = WorkerOutcome {
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
            last_done: measure_from,
        };
        loop {
            let start = Instant::now();
            if start >= deadline {
                return out;
            }
            let measured = start >= measure_from;
            if measured && budget.fetch_add(1, Ordering::Relaxed) >= max_requests {
                return out;
            }
            let result = self.sign(&mut client).await;
            if !measured {
                continue;
            }
            let done = Instant::now();
            out.last_done = out.last_done.max(done);
            match result {
                Ok(_) => out.latencies.push(done - start),
                Err(status) => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| {
                        format!("{:?}: {}", status.code(), status.message())
                    });
                }
            }
        }
    }
}

struct WorkerOutcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
}

/// A PEM PKCS#10 CSR for a fresh Ed25519 key, made once and sent with every request (sentry
/// takes the identity from the request, not the CSR subject).
fn ed25519_csr() -> anyhow::Result<Vec<u8>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    Ok(params.serialize_request(&key)?.pem()?.into_bytes())
}
