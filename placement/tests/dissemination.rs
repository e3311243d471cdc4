//! The placement binary's ReportDaprStatus stream, driven by a plain tonic client.

use std::time::{Duration, Instant};

use dapr_proto::placement::v1::{
    Host, HostOperation, PlacementOrder, placement_client::PlacementClient,
};
use dapr_testing::{Child, free_port, http_get, wait_for_tcp};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, Streaming, transport::Channel};

const PLACEMENT: &str = env!("CARGO_BIN_EXE_placement");
const START: Duration = Duration::from_secs(10);
const STEP: Duration = Duration::from_secs(5);

struct Placement {
    child: Child,
    grpc: u16,
    healthz: u16,
}

impl Placement {
    fn start(extra: &[&str]) -> Self {
        let (grpc, healthz, metrics, raft) = (free_port(), free_port(), free_port(), free_port());
        let mut args = vec![
            "--log-level=debug".to_owned(),
            "--id=p1".to_owned(),
            format!("--port={grpc}"),
            "--listen-address=127.0.0.1".to_owned(),
            format!("--healthz-port={healthz}"),
            format!("--metrics-port={metrics}"),
            format!("--initial-cluster=p1=127.0.0.1:{raft}"),
            "--metadata-enabled=true".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = Child::spawn(PLACEMENT, &args).unwrap();
        wait_for_tcp(grpc, START).unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
        // Leadership is the readiness signal for streams.
        let deadline = Instant::now() + START;
        loop {
            if let Ok((200, body)) = http_get(metrics, "/metrics")
                && body.lines().any(|l| l == "dapr_placement_leader_status 1")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no leadership:\n{}",
                child.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            grpc,
            healthz,
        }
    }

    async fn connect(&self) -> PlacementClient<Channel> {
        PlacementClient::connect(format!("http://127.0.0.1:{}", self.grpc))
            .await
            .unwrap()
    }

    fn state(&self) -> String {
        let (code, body) = http_get(self.healthz, "/placement/state").unwrap();
        assert_eq!(code, 200);
        body
    }
}

/// One simulated daprd stream.
struct Stream {
    tx: mpsc::UnboundedSender<Host>,
    rx: Streaming<PlacementOrder>,
    host: Host,
}

impl Stream {
    async fn open(client: &mut PlacementClient<Channel>, host: Host) -> Self {
        Self::try_open(client, host).await.unwrap()
    }

    /// The first message is checked before the response starts, so a refusal ends the call.
    async fn try_open(
        client: &mut PlacementClient<Channel>,
        host: Host,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(host.clone()).unwrap();
        let rx = client
            .report_dapr_status(UnboundedReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self { tx, rx, host })
    }

    async fn next(&mut self) -> Result<PlacementOrder, tonic::Status> {
        match tokio::time::timeout(STEP, self.rx.message()).await {
            Ok(Ok(Some(order))) => Ok(order),
            Ok(Ok(None)) => panic!("stream ended without a status"),
            Ok(Err(status)) => Err(status),
            Err(_) => panic!("no order within {STEP:?}"),
        }
    }

    fn ack(&self, op: HostOperation, version: u64) {
        self.tx
            .send(Host {
                id: self.host.id.clone(),
                namespace: self.host.namespace.clone(),
                operation: op as i32,
                version: Some(version),
                ..Host::default()
            })
            .unwrap();
    }
}

#[allow(deprecated)]
fn daprd_host(name: &str, id: &str, entities: &[&str]) -> Host {
    Host {
        name: name.into(),
        id: id.into(),
        namespace: "default".into(),
        entities: entities.iter().map(|s| (*s).to_owned()).collect(),
        api_level: 20,
        operation: HostOperation::Report as i32,
        ..Host::default()
    }
}

#[tokio::test]
async fn an_actor_host_is_walked_through_a_round_and_shows_up_in_the_state() {
    let placement = Placement::start(&[]);
    let mut client = placement.connect().await;
    let mut a = Stream::open(
        &mut client,
        daprd_host("127.0.0.1:5001", "app", &["t2", "t1"]),
    )
    .await;

    let lock = a.next().await.unwrap();
    assert_eq!((lock.operation.as_str(), lock.version), ("lock", 1));
    a.ack(HostOperation::Lock, 1);
    let update = a.next().await.unwrap();
    assert_eq!((update.operation.as_str(), update.version), ("update", 1));
    let tables = update.tables.unwrap();
    assert_eq!(tables.replication_factor, 100);
    assert_eq!(
        tables.entries["t1"].load_map["127.0.0.1:5001"].entities,
        ["t1", "t2"]
    );
    a.ack(HostOperation::Update, 1);
    assert_eq!(a.next().await.unwrap().operation, "unlock");
    a.ack(HostOperation::Unlock, 1);

    assert_eq!(
        placement.state(),
        r#"{"tables":{"default":{"hosts":[{"name":"127.0.0.1:5001","entities":["t1","t2"],"id":"app","api_level":20,"namespace":"default","operation":1}],"version":1}}}"#
    );

    // A no-actor host gets a one-off push at the current version; no round runs.
    let mut n = Stream::open(&mut client, daprd_host("127.0.0.1:5002", "noactors", &[])).await;
    let ops: Vec<(String, u64)> = [n.next().await, n.next().await, n.next().await]
        .into_iter()
        .map(|o| {
            let o = o.unwrap();
            (o.operation, o.version)
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("lock".into(), 1),
            ("update".into(), 1),
            ("unlock".into(), 1)
        ]
    );
    drop(a);
    drop(n);
}

#[tokio::test]
async fn a_host_that_never_acks_is_kicked_with_upstreams_deadline_message() {
    let placement = Placement::start(&["--disseminate-timeout=1s"]);
    let mut client = placement.connect().await;
    let mut a = Stream::open(&mut client, daprd_host("a:1", "a", &["t"])).await;
    assert_eq!(a.next().await.unwrap().operation, "lock");
    let status = a.next().await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(
        status.message(),
        "dissemination timeout after 1s for version 1"
    );
    // The kicked host is gone from the table (and, its stream being the last, so is the
    // namespace once the router has counted the close).
    let state = placement.state();
    assert!(
        state == r#"{"tables":{"default":{"version":2}}}"# || state == "{}",
        "{state}"
    );
}

#[tokio::test]
async fn a_reserved_actor_type_of_another_app_is_refused() {
    let placement = Placement::start(&[]);
    let mut client = placement.connect().await;
    let Err(status) = Stream::try_open(
        &mut client,
        daprd_host("a:1", "app-1", &["dapr.internal.default.app-2.workflow"]),
    )
    .await
    else {
        panic!("the stream was accepted");
    };
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "entity dapr.internal.default.app-2.workflow is not allowed for app ID app-1 in namespace default"
    );
}

#[tokio::test]
async fn sigint_ends_open_streams_and_exits_zero() {
    let mut placement = Placement::start(&[]);
    let mut client = placement.connect().await;
    let mut a = Stream::open(&mut client, daprd_host("a:1", "a", &["t"])).await;
    assert_eq!(a.next().await.unwrap().operation, "lock");
    placement.child.signal("INT").unwrap();
    let status = a.next().await.unwrap_err();
    assert_eq!(
        status.message(),
        "cancelling context, received signal interrupt"
    );
    let exit = placement.child.wait_exit(START);
    assert_eq!(exit.code(), Some(0), "{}", placement.child.output());
}
