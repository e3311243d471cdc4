//! A placement cluster as child processes, and simulated daprds that fail over between its
//! addresses as daprd v1.18 does (spec §8.11, §9).
//!
//! The cluster's calls block (plain HTTP to `/metrics`); the test body runs on the runtime's
//! `block_on` thread, so they never stall the simulated daprds on the worker threads.

use std::{
    collections::BTreeSet,
    process::ExitStatus,
    time::{Duration, Instant},
};

use dapr_proto::placement::v1::{
    Host, HostOperation, PlacementOrder, placement_client::PlacementClient,
};
use dapr_testing::{Child, free_port, http_get, wait_for_status};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, transport::Endpoint};

const PLACEMENT: &str = env!("CARGO_BIN_EXE_placement");
/// Generous bound for a process to bind its ports or exit on a loaded CI machine.
pub const PROCESS: Duration = Duration::from_secs(10);
/// How often the pollers here retry.
const POLL: Duration = Duration::from_millis(20);
/// The line `/metrics` shows on the leader (and only there).
const LEADER_LINE: &str = "dapr_placement_leader_status 1";

/// One placement replica; its ports survive a restart.
pub struct Node {
    pub id: String,
    pub grpc: u16,
    pub healthz: u16,
    pub metrics: u16,
    args: Vec<String>,
    child: Child,
    /// Earlier incarnations, kept so their output stays readable.
    previous: Vec<Child>,
}

impl Node {
    fn spawn(args: &[String]) -> Child {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Child::spawn(PLACEMENT, &args).expect("spawning placement")
    }

    /// Whether `/metrics` says this node leads; `None` when it does not answer.
    pub fn leads(&self) -> Option<bool> {
        match http_get(self.metrics, "/metrics") {
            Ok((200, body)) => Some(body.lines().any(|l| l == LEADER_LINE)),
            _ => None,
        }
    }

    /// SIGKILL, then reap; returns when the signal was sent.
    pub fn kill(&mut self) -> Instant {
        self.child
            .signal("KILL")
            .unwrap_or_else(|e| panic!("killing {}: {e}", self.id));
        let killed = Instant::now();
        self.child.wait_exit(PROCESS);
        killed
    }

    /// Starts the node again with the same id and ports.
    pub fn restart(&mut self) {
        let old = std::mem::replace(&mut self.child, Self::spawn(&self.args));
        self.previous.push(old);
        wait_for_status(self.healthz, "/healthz", 200, PROCESS)
            .unwrap_or_else(|e| panic!("{} did not come back: {e}\n{}", self.id, self.output()));
    }

    /// The exit status, if the current incarnation has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.wait_timeout(Duration::ZERO).ok().flatten()
    }

    /// `GET /placement/state` as JSON.
    pub fn state(&self) -> serde_json::Value {
        let (code, body) = http_get(self.healthz, "/placement/state")
            .unwrap_or_else(|e| panic!("GET /placement/state on {}: {e}", self.id));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Everything every incarnation printed.
    pub fn output(&self) -> String {
        let mut out = String::new();
        for (i, child) in self.previous.iter().chain([&self.child]).enumerate() {
            out.push_str(&format!("----- {} (run {}) -----\n", self.id, i + 1));
            out.push_str(&child.output());
        }
        out
    }
}

/// `n` replicas `p1..pn` forming one Raft group on loopback.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        let ids: Vec<String> = (1..=n).map(|i| format!("p{i}")).collect();
        let initial_cluster = ids
            .iter()
            .map(|id| format!("{id}=127.0.0.1:{}", free_port()))
            .collect::<Vec<_>>()
            .join(",");
        let nodes: Vec<Node> = ids
            .into_iter()
            .map(|id| {
                let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
                let args = vec![
                    format!("--id={id}"),
                    format!("--initial-cluster={initial_cluster}"),
                    format!("--port={grpc}"),
                    "--listen-address=127.0.0.1".to_owned(),
                    format!("--healthz-port={healthz}"),
                    format!("--metrics-port={metrics}"),
                    "--tls-enabled=false".to_owned(),
                    "--metadata-enabled=true".to_owned(),
                    "--log-level=info".to_owned(),
                ];
                Node {
                    child: Node::spawn(&args),
                    id,
                    grpc,
                    healthz,
                    metrics,
                    args,
                    previous: Vec::new(),
                }
            })
            .collect();
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            wait_for_status(node.healthz, "/healthz", 200, PROCESS)
                .unwrap_or_else(|e| panic!("{} not healthy: {e}\n{}", node.id, cluster.dump()));
        }
        cluster
    }

    /// The gRPC addresses in `--initial-cluster` order, as daprd is given them.
    pub fn grpc_addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.grpc))
            .collect()
    }

    /// The nodes among `among` whose `/metrics` say they lead.
    pub fn leaders(&self, among: &[usize]) -> Vec<usize> {
        among
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].leads() == Some(true))
            .collect()
    }

    /// Polls until exactly one of `among` leads and returns it with the time it was first seen.
    pub fn wait_for_one_leader(&self, among: &[usize], timeout: Duration) -> (usize, Instant) {
        let deadline = Instant::now() + timeout;
        loop {
            if let [leader] = self.leaders(among)[..] {
                return (leader, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "no single leader among {:?} within {timeout:?}\n{}",
                among.iter().map(|&i| &self.nodes[i].id).collect::<Vec<_>>(),
                self.dump()
            );
            std::thread::sleep(POLL);
        }
    }

    /// SIGINT to all of `which` at once, then each must exit 0. All at once because a leader whose
    /// followers stop first loses its quorum and exits 1, as upstream does.
    pub fn interrupt(&mut self, which: &[usize]) {
        for &i in which {
            let node = &self.nodes[i];
            node.child
                .signal("INT")
                .unwrap_or_else(|e| panic!("SIGINT {}: {e}\n{}", node.id, self.dump()));
        }
        for &i in which {
            let status = self.nodes[i].child.wait_exit(PROCESS);
            assert_eq!(
                status.code(),
                Some(0),
                "{} after SIGINT: {status}\n{}",
                self.nodes[i].id,
                self.dump()
            );
        }
    }

    /// All output of all nodes, for panic messages.
    pub fn dump(&self) -> String {
        self.nodes.iter().map(Node::output).collect()
    }
}

/// What a simulated daprd saw, stamped when it happened.
#[derive(Debug)]
pub enum Event {
    /// The stream to `server` (an index into the address list) was opened and the REPORT sent.
    Connected { daprd: usize, server: usize },
    /// Dialling `server` failed; the daprd waits ~0.5s before the next address.
    DialFailed { daprd: usize, server: usize },
    /// The stream to `server` was refused or ended.
    Ended {
        daprd: usize,
        server: usize,
        code: Code,
        message: String,
    },
    /// A complete lock/update/unlock: the UPDATE's `type-a` hosts are now the daprd's table.
    Applied {
        daprd: usize,
        server: usize,
        version: u64,
        hosts: BTreeSet<String>,
    },
}

/// The actor type every simulated daprd hosts.
pub const ACTOR_TYPE: &str = "type-a";

/// The host name the `i`-th daprd reports.
pub fn host_name(i: usize) -> String {
    format!("10.0.0.{i}:50002")
}

/// Starts `n` simulated daprds (numbered from 1), all given `addresses`.
pub fn start_daprds(
    n: usize,
    addresses: &[String],
) -> (JoinSet<()>, mpsc::UnboundedReceiver<(Instant, Event)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for i in 1..=n {
        tasks.spawn(daprd(i, addresses.to_vec(), tx.clone()));
    }
    (tasks, rx)
}

#[allow(deprecated)] // api_level is what daprd still sends
fn report(i: usize) -> Host {
    Host {
        name: host_name(i),
        id: format!("app-{i}"),
        namespace: "default".into(),
        entities: vec![ACTOR_TYPE.into()],
        api_level: 20,
        operation: HostOperation::Report as i32,
        ..Host::default()
    }
}

fn ack(i: usize, operation: HostOperation, version: u64) -> Host {
    Host {
        id: format!("app-{i}"),
        namespace: "default".into(),
        operation: operation as i32,
        version: Some(version),
        ..Host::default()
    }
}

/// daprd's wait after a failed dial: 0.5s ± 0.25s, spread deterministically over daprds and tries.
fn dial_backoff(i: usize, attempt: usize) -> Duration {
    let spread = (i * 7919 + attempt * 104_729) % 500;
    Duration::from_millis(250 + spread as u64)
}

/// One daprd's placement client loop: round-robin over `addresses`, next address immediately after
/// any stream error, ~0.5s after a failed dial; acks each phase as daprd v1.18 does.
async fn daprd(i: usize, addresses: Vec<String>, events: mpsc::UnboundedSender<(Instant, Event)>) {
    let emit = |event| {
        let _ = events.send((Instant::now(), event));
    };
    // Survives reconnects, as daprd's does; a LOCK sets it unconditionally.
    let mut current = 0u64;
    for attempt in 0.. {
        let server = attempt % addresses.len();
        let endpoint = Endpoint::from_shared(format!("http://{}", addresses[server]))
            .expect("a valid address")
            .connect_timeout(Duration::from_secs(1));
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(_) => {
                emit(Event::DialFailed { daprd: i, server });
                tokio::time::sleep(dial_backoff(i, attempt)).await;
                continue;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(report(i)).expect("the receiver is alive");
        let mut tx = Some(tx);
        let mut orders = match PlacementClient::new(channel)
            .report_dapr_status(UnboundedReceiverStream::new(rx))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => {
                emit(Event::Ended {
                    daprd: i,
                    server,
                    code: status.code(),
                    message: status.message().to_owned(),
                });
                continue;
            }
        };
        emit(Event::Connected { daprd: i, server });
        let mut previous = String::new();
        let mut staged = BTreeSet::new();
        let (code, message) = loop {
            let order: PlacementOrder = match orders.message().await {
                Ok(Some(order)) => order,
                Ok(None) => break (Code::Ok, "EOF".to_owned()),
                Err(status) => break (status.code(), status.message().to_owned()),
            };
            let version = order_version(&order);
            match order.operation.as_str() {
                "lock" => {
                    current = version;
                    send(&tx, ack(i, HostOperation::Lock, version));
                }
                "update" if version < current => {
                    // daprd closes its side (CloseSend) and waits for the server to end the RPC.
                    tx = None;
                }
                "update" => {
                    current = version;
                    staged = order
                        .tables
                        .as_ref()
                        .and_then(|t| t.entries.get(ACTOR_TYPE))
                        .map(|t| t.load_map.keys().cloned().collect())
                        .unwrap_or_default();
                    send(&tx, ack(i, HostOperation::Update, version));
                }
                "unlock" if previous == "update" && version >= current => {
                    send(&tx, ack(i, HostOperation::Unlock, version));
                    emit(Event::Applied {
                        daprd: i,
                        server,
                        version,
                        hosts: staged.clone(),
                    });
                }
                "unlock" => {} // ignored without an ack
                _ => tx = None,
            }
            previous = order.operation;
        };
        emit(Event::Ended {
            daprd: i,
            server,
            code,
            message,
        });
    }
}

/// Sends on the request stream unless the daprd has closed its side.
fn send(tx: &Option<mpsc::UnboundedSender<Host>>, host: Host) {
    if let Some(tx) = tx {
        let _ = tx.send(host);
    }
}

/// `PlacementOrder.version` if set, else the deprecated `tables.version` (spec §9).
#[allow(deprecated)]
fn order_version(order: &PlacementOrder) -> u64 {
    if order.version > 0 {
        return order.version;
    }
    order
        .tables
        .as_ref()
        .and_then(|t| t.version.parse().ok())
        .unwrap_or(0)
}

/// Drains `events` until each of daprds `1..=n` has applied exactly `want` from a server other
/// than `not_from`, received at or after `after`; returns the first such time per daprd (index
/// `i - 1`) and every event seen. `Err` carries a description of who is missing.
pub async fn wait_for_tables(
    events: &mut mpsc::UnboundedReceiver<(Instant, Event)>,
    n: usize,
    want: &BTreeSet<String>,
    after: Instant,
    not_from: Option<usize>,
    timeout: Duration,
) -> Result<(Vec<Instant>, Vec<(Instant, Event)>), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first: Vec<Option<Instant>> = vec![None; n];
    let mut seen = Vec::new();
    while first.iter().any(Option::is_none) {
        let Ok(Some((stamp, event))) = tokio::time::timeout_at(deadline, events.recv()).await
        else {
            let missing: Vec<usize> = (1..=n).filter(|&i| first[i - 1].is_none()).collect();
            let last: Vec<String> = missing
                .iter()
                .filter_map(|&i| {
                    seen.iter()
                        .rev()
                        .find(|(_, e)| daprd_of(e) == i)
                        .map(|(_, e)| format!("daprd {i}: {e:?}"))
                })
                .collect();
            return Err(format!(
                "daprds {missing:?} had no full table within {timeout:?}; their last events:\n{}",
                last.join("\n")
            ));
        };
        if let Event::Applied {
            daprd,
            server,
            hosts,
            ..
        } = &event
            && stamp >= after
            && Some(*server) != not_from
            && hosts == want
            && first[daprd - 1].is_none()
        {
            first[daprd - 1] = Some(stamp);
        }
        seen.push((stamp, event));
    }
    Ok((first.into_iter().flatten().collect(), seen))
}

fn daprd_of(event: &Event) -> usize {
    match event {
        Event::Connected { daprd, .. }
        | Event::DialFailed { daprd, .. }
        | Event::Ended { daprd, .. }
        | Event::Applied { daprd, .. } => *daprd,
    }
}

/// min / median / max of `durations`, in seconds with one decimal.
pub fn spread(durations: &mut [Duration]) -> String {
    durations.sort();
    let s = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    format!(
        "min {}, p50 {}, max {}",
        s(durations[0]),
        s(durations[durations.len() / 2]),
        s(durations[durations.len() - 1])
    )
}
