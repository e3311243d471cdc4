//! The scheduler on an external, real etcd with auth on (`--etcd-embed=false` with a user): once
//! etcd stops accepting its token (simple tokens expire after 5 idle minutes, and turning auth
//! off and on drops them all), the scheduler must authenticate again by itself instead of
//! failing every call until it is restarted.
//!
//! Needs the real etcd and etcdctl binaries: `DAPR_TEST_ETCD_BIN_DIR` names their directory
//! (`make test-store` sets it to hack/etcd/build.sh's cache). Without it the test says it is
//! skipped and passes.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use dapr_proto::scheduler::v1::{
    GetJobRequest, Job, ScheduleJobRequest, scheduler_client::SchedulerClient,
};
use dapr_testing::{Child, free_port, wait_for_status, wait_for_tcp};
use tonic::transport::Channel;

mod support;

use support::{metadata, temp_dir};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const START: Duration = Duration::from_secs(30);
/// A refused call is retried after 1-2 s of backoff; renewal itself is one round trip.
const RECOVER: Duration = Duration::from_secs(30);
/// One ScheduleJob call.
const CALL: Duration = Duration::from_secs(10);
const USER: &str = "root";
const PASSWORD: &str = "s3cret";

struct Etcd {
    bin: PathBuf,
    dir: PathBuf,
    client: u16,
    peer: u16,
}

impl Etcd {
    fn start(&self) -> Child {
        let client = format!("http://127.0.0.1:{}", self.client);
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let args = [
            "--name=default".to_owned(),
            format!("--data-dir={}", self.dir.display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=default={peer}"),
            "--log-level=info".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = Child::spawn(self.bin.join("etcd"), &args).expect("start etcd");
        wait_for_tcp(self.client, START).unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
        child
    }

    fn ctl(&self, args: &[&str]) {
        let out = Command::new(self.bin.join("etcdctl"))
            .arg(format!("--endpoints=http://127.0.0.1:{}", self.client))
            .args(args)
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn schedule_request(name: &str) -> ScheduleJobRequest {
    ScheduleJobRequest {
        name: name.into(),
        job: Some(Job {
            due_time: Some("1h".into()),
            data: Some(prost_types::Any {
                type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
                value: name.as_bytes().to_vec(),
            }),
            ..Job::default()
        }),
        metadata: Some(metadata()),
        overwrite: false,
    }
}

/// Schedules `name`, retrying refused calls until `within` has passed.
async fn schedule_eventually(client: &mut SchedulerClient<Channel>, name: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        // The scheduler retries transient store errors itself; a call that does not come back
        // is a failure too.
        let call = tokio::time::timeout(CALL, client.schedule_job(schedule_request(name))).await;
        let error = match call {
            Ok(Ok(_)) => return,
            Ok(Err(status)) => status.message().to_owned(),
            Err(_) => format!("no answer within {CALL:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "schedule {name} still fails after {within:?}: {error}"
        );
        println!("schedule {name}: {error}; retrying");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn bin_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("DAPR_TEST_ETCD_BIN_DIR")?);
    assert!(
        Path::new(&dir).join("etcd").exists(),
        "DAPR_TEST_ETCD_BIN_DIR={} has no etcd binary",
        dir.display()
    );
    Some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_etcd_stops_accepting_is_renewed_by_authenticating_again() {
    let Some(bin) = bin_dir() else {
        println!("skipped: DAPR_TEST_ETCD_BIN_DIR is not set (make test-store sets it)");
        return;
    };
    let etcd = Etcd {
        bin,
        dir: temp_dir("auth-etcd"),
        client: free_port(),
        peer: free_port(),
    };
    let server = etcd.start();
    etcd.ctl(&[
        "user",
        "add",
        USER,
        &format!("--new-user-password={PASSWORD}"),
    ]);
    etcd.ctl(&["auth", "enable"]);

    let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
    let args = [
        "--log-level=info".to_owned(),
        "--id=s0".to_owned(),
        format!("--port={grpc}"),
        format!("--healthz-port={healthz}"),
        format!("--metrics-port={metrics}"),
        "--listen-address=127.0.0.1".to_owned(),
        "--etcd-embed=false".to_owned(),
        format!("--etcd-client-endpoints=127.0.0.1:{}", etcd.client),
        format!("--etcd-client-username={USER}"),
        format!("--etcd-client-password={PASSWORD}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let scheduler = Child::spawn(SCHEDULER, &args).expect("start scheduler");
    wait_for_status(healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", scheduler.output()));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = SchedulerClient::new(channel);
    schedule_eventually(&mut client, "before", START).await;

    // Turning auth off drops every token etcd issued; once it is on again the scheduler's token
    // is "invalid".
    let root = format!("--user={USER}:{PASSWORD}");
    etcd.ctl(&[&root, "auth", "disable"]);
    etcd.ctl(&["auth", "enable"]);
    schedule_eventually(&mut client, "after", RECOVER).await;
    for name in ["before", "after"] {
        let job = client
            .get_job(GetJobRequest {
                name: name.into(),
                metadata: Some(metadata()),
            })
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}\n{}", scheduler.output()));
        let data = job.into_inner().job.and_then(|j| j.data).map(|d| d.value);
        assert_eq!(data, Some(name.as_bytes().to_vec()), "job {name} lost");
    }
    assert!(
        scheduler.output().contains("re-authenticated with etcd"),
        "{}\n--- etcd:\n{}",
        scheduler.output(),
        server.output()
    );
    let _ = std::fs::remove_dir_all(&etcd.dir);
}
