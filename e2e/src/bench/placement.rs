//! `bench_placement`: N simulated daprd streams against a placement leader; measures how long
//! one full dissemination round takes after a host joins and after one leaves.
//!
//! Every simulated daprd acknowledges each phase the way daprd v1.18 does (explicit operation
//! and version). A round counts as done when every live stream has received UNLOCK for it.
//! Orders are decoded only down to their operation and version (the tables are skipped), so
//! the client's cost does not grow with the table size and the server stays the bottleneck.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;
use dapr_proto::placement::v1::{Host, HostOperation};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

use super::stats::percentile;

const REPORT_PATH: &str = "/dapr.proto.placement.v1.Placement/ReportDaprStatus";
/// Streams per HTTP/2 connection (daprd uses one connection each; this keeps fds bounded).
const STREAMS_PER_CONNECTION: usize = 50;
const ACTOR_TYPE: &str = "bench-actor";

#[derive(Debug, Parser)]
#[command(name = "bench_placement", about)]
pub struct Args {
    /// The placement leader's gRPC address (plaintext, loopback).
    #[arg(long, default_value = "127.0.0.1:50005")]
    pub addr: SocketAddr,
    /// Streams connected before measuring.
    #[arg(long, default_value_t = 100)]
    pub streams: usize,
    /// Joins and leaves measured (alternating).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Give up on a round after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub round_timeout: Duration,
    /// Label copied into the JSON (e.g. `ours`, `upstream`).
    #[arg(long, default_value = "placement")]
    pub label: String,
}

/// The JSON document printed on stdout.
#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub streams: usize,
    /// Time to connect every stream and see them all in one completed round.
    pub setup_ms: f64,
    pub join_ms: RoundSummary,
    pub leave_ms: RoundSummary,
}

#[derive(Debug, Serialize)]
pub struct RoundSummary {
    pub samples: usize,
    pub min: f64,
    pub p50: f64,
    pub max: f64,
}

impl RoundSummary {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self {
            samples: samples.len(),
            min: ms(samples.first().copied().unwrap_or_default()),
            p50: ms(percentile(&samples, 50.0)),
            max: ms(samples.last().copied().unwrap_or_default()),
        }
    }
}

/// What a simulated daprd saw, sent to the coordinator.
#[derive(Debug)]
enum Seen {
    Unlock { version: u64 },
    Ended { stream: usize, status: Status },
}

impl Args {
    pub async fn run(self) -> anyhow::Result<()> {
        let report = self.measure().await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }

    async fn measure(&self) -> anyhow::Result<Report> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        let connections = self.streams.div_ceil(STREAMS_PER_CONNECTION) + 1;
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .context("connecting to placement")?,
            );
        }
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let mut tracker = Tracker::default();

        let started = Instant::now();
        let mut senders = HashMap::new();
        for i in 0..self.streams {
            let channel = channels[i % channels.len()].clone();
            senders.insert(i, open(channel, i, seen_tx.clone()).await?);
        }
        let mut live = self.streams;
        tracker
            .wait_round(&mut seen_rx, live, self.round_timeout)
            .await?;
        let setup = started.elapsed();

        let mut joins = Vec::new();
        let mut leaves = Vec::new();
        for next in self.streams..self.streams + self.repeats {
            let channel = channels[next % channels.len()].clone();
            let t0 = Instant::now();
            senders.insert(next, open(channel, next, seen_tx.clone()).await?);
            live += 1;
            tracker
                .wait_round(&mut seen_rx, live, self.round_timeout)
                .await?;
            joins.push(t0.elapsed());

            let t0 = Instant::now();
            // CloseSend, as daprd does when it leaves.
            senders.remove(&next);
            live -= 1;
            tracker
                .wait_round(&mut seen_rx, live, self.round_timeout)
                .await?;
            leaves.push(t0.elapsed());
        }
        Ok(Report {
            label: self.label.clone(),
            streams: self.streams,
            setup_ms: setup.as_secs_f64() * 1000.0,
            join_ms: RoundSummary::new(joins),
            leave_ms: RoundSummary::new(leaves),
        })
    }
}

/// Counts UNLOCKs per round version.
#[derive(Default)]
struct Tracker {
    unlocks: HashMap<u64, usize>,
    /// Highest version already counted as a completed round.
    done: u64,
}

impl Tracker {
    /// Waits until a version newer than the last completed one has reached `live` streams.
    async fn wait_round(
        &mut self,
        seen: &mut mpsc::UnboundedReceiver<Seen>,
        live: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((&version, _)) = self
                .unlocks
                .iter()
                .filter(|(v, n)| **v > self.done && **n >= live)
                .max_by_key(|(v, _)| **v)
            {
                self.done = version;
                self.unlocks.retain(|v, _| *v > version);
                return Ok(());
            }
            let event = tokio::time::timeout_at(deadline, seen.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("no round reached all {live} streams within {timeout:?}")
                })?
                .context("every stream ended")?;
            match event {
                Seen::Unlock { version } => *self.unlocks.entry(version).or_default() += 1,
                Seen::Ended { stream, status } => {
                    anyhow::bail!("stream {stream} ended: {status}")
                }
            }
        }
    }
}

/// Opens one simulated daprd stream; dropping the returned sender half-closes it.
async fn open(
    channel: Channel,
    i: usize,
    seen: mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<mpsc::UnboundedSender<Host>> {
    let host = Host {
        name: format!(
            "10.{}.{}.{}:50002",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        ),
        id: format!("app-{i}"),
        namespace: "default".into(),
        entities: vec![ACTOR_TYPE.into()],
        operation: HostOperation::Report as i32,
        ..Host::default()
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(host.clone())?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(REPORT_PATH);
    let mut orders = grpc
        .streaming(
            tonic::Request::new(UnboundedReceiverStream::new(rx)),
            path,
            BenchCodec,
        )
        .await
        .with_context(|| format!("opening stream {i}"))?
        .into_inner();
    // Weak, so that dropping the returned sender really half-closes the stream.
    let acks = tx.downgrade();
    tokio::spawn(async move {
        loop {
            match orders.message().await {
                Ok(Some(order)) => {
                    let op = match order.operation.as_str() {
                        "lock" => HostOperation::Lock,
                        "update" => HostOperation::Update,
                        "unlock" => {
                            let _ = seen.send(Seen::Unlock {
                                version: order.version,
                            });
                            HostOperation::Unlock
                        }
                        _ => continue,
                    };
                    if let Some(acks) = acks.upgrade() {
                        let _ = acks.send(Host {
                            id: host.id.clone(),
                            namespace: host.namespace.clone(),
                            operation: op as i32,
                            version: Some(order.version),
                            ..Host::default()
                        });
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    // A stream we half-closed ends with a status too; only others matter.
                    if acks.upgrade().is_some() {
                        let _ = seen.send(Seen::Ended { stream: i, status });
                    }
                    return;
                }
            }
        }
    });
    Ok(tx)
}

/// `PlacementOrder` without its tables: field 2 (operation) and 3 (version) only.
#[derive(Clone, PartialEq, prost::Message)]
struct OrderHeader {
    #[prost(string, tag = "2")]
    operation: String,
    #[prost(uint64, tag = "3")]
    version: u64,
}

#[derive(Clone, Copy, Default)]
struct BenchCodec;

impl Codec for BenchCodec {
    type Encode = Host;
    type Decode = OrderHeader;
    type Encoder = HostEncoder;
    type Decoder = HeaderDecoder;

    fn encoder(&mut self) -> HostEncoder {
        HostEncoder
    }

    fn decoder(&mut self) -> HeaderDecoder {
        HeaderDecoder
    }
}

struct HostEncoder;

impl Encoder for HostEncoder {
    type Item = Host;
    type Error = Status;

    fn encode(&mut self, item: Host, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::Message::encode(&item, dst).map_err(|e| Status::internal(e.to_string()))
    }
}

struct HeaderDecoder;

impl Decoder for HeaderDecoder {
    type Item = OrderHeader;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<OrderHeader>, Status> {
        <OrderHeader as prost::Message>::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}
