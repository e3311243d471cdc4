//! Jobs through the real binary: scheduled over gRPC, triggered on a WatchJobs stream, and
//! still there (not early, not lost) after the process is killed with SIGKILL and restarted
//! from its data directory.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use dapr_proto::scheduler::v1::{
    Job, ListJobsRequest, ScheduleJobRequest, WatchJobsRequest, WatchJobsRequestInitial,
    WatchJobsRequestResult, WatchJobsResponse, scheduler_client::SchedulerClient,
    watch_jobs_request,
};
use dapr_testing::{Child, free_port, wait_for_status};
use tokio::sync::mpsc;
use tonic::transport::Channel;

mod support;

use support::{metadata, temp_dir};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const START: Duration = Duration::from_secs(20);

struct Ports {
    grpc: u16,
    healthz: u16,
    metrics: u16,
    etcd_client: u16,
    etcd_peer: u16,
}

fn start(ports: &Ports, data_dir: &Path) -> Child {
    let args = [
        "--log-level=info".to_owned(),
        "--id=s0".to_owned(),
        format!("--port={}", ports.grpc),
        format!("--healthz-port={}", ports.healthz),
        format!("--metrics-port={}", ports.metrics),
        format!("--etcd-data-dir={}", data_dir.display()),
        format!("--etcd-client-port={}", ports.etcd_client),
        "--listen-address=127.0.0.1".to_owned(),
        "--workers=128".to_owned(),
        format!(
            "--etcd-initial-cluster=s0=http://127.0.0.1:{}",
            ports.etcd_peer
        ),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = Child::spawn(SCHEDULER, &args).unwrap();
    wait_for_status(ports.healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
    child
}

async fn client(port: u16) -> SchedulerClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    SchedulerClient::new(channel)
}

/// A WatchJobs stream that acks every trigger with SUCCESS and reports (name, arrival).
async fn watch(
    client: &mut SchedulerClient<Channel>,
) -> mpsc::UnboundedReceiver<(String, Instant)> {
    let (requests, rx) = mpsc::unbounded_channel();
    requests
        .send(WatchJobsRequest {
            watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Initial(
                WatchJobsRequestInitial {
                    app_id: "app1".into(),
                    namespace: "default".into(),
                    ..Default::default()
                },
            )),
        })
        .unwrap();
    let mut stream = client
        .watch_jobs(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let (tx, triggers) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(WatchJobsResponse { name, id, .. })) = stream.message().await {
            let _ = tx.send((name, Instant::now()));
            let ack = WatchJobsRequest {
                watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Result(
                    WatchJobsRequestResult { id, status: 0 },
                )),
            };
            if requests.send(ack).is_err() {
                return;
            }
        }
    });
    triggers
}

async fn schedule(client: &mut SchedulerClient<Channel>, name: &str, job: Job) {
    client
        .schedule_job(ScheduleJobRequest {
            name: name.into(),
            job: Some(job),
            metadata: Some(metadata()),
            overwrite: false,
        })
        .await
        .unwrap();
}

async fn next(
    triggers: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    within: Duration,
) -> Option<(String, Instant)> {
    tokio::time::timeout(within, triggers.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fire_on_time_and_survive_a_sigkill() {
    let ports = Ports {
        grpc: free_port(),
        healthz: free_port(),
        metrics: free_port(),
        etcd_client: free_port(),
        etcd_peer: free_port(),
    };
    let data_dir = temp_dir("triggers");
    let mut child = start(&ports, &data_dir);
    let mut c = client(ports.grpc).await;
    let mut triggers = watch(&mut c).await;

    // A one-shot due now fires once, and a finished one-shot leaves the store.
    schedule(
        &mut c,
        "once",
        Job {
            due_time: Some("0s".into()),
            ..Default::default()
        },
    )
    .await;
    let (name, _) = next(&mut triggers, Duration::from_secs(10))
        .await
        .expect("no trigger");
    assert_eq!(name, "once");

    // A recurring job (4 ticks, 1 s apart) and a one-shot due after the restart.
    schedule(
        &mut c,
        "rep",
        Job {
            schedule: Some("@every 1s".into()),
            due_time: Some("0s".into()),
            repeats: Some(4),
            ..Default::default()
        },
    )
    .await;
    let later_due = Instant::now() + Duration::from_secs(6);
    schedule(
        &mut c,
        "later",
        Job {
            due_time: Some("6s".into()),
            ..Default::default()
        },
    )
    .await;
    for _ in 0..2 {
        let (name, _) = next(&mut triggers, Duration::from_secs(5))
            .await
            .expect("rep tick");
        assert_eq!(name, "rep");
    }
    // Give the ack of the second tick a moment to reach the store, then kill -9.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.signal("KILL").unwrap();
    child.wait_exit(Duration::from_secs(10));
    drop(triggers);

    let mut child = start(&ports, &data_dir);
    let mut c = client(ports.grpc).await;
    let mut triggers = watch(&mut c).await;
    let mut rep = 0;
    let mut later = None;
    // The killed incarnation's leadership key lives until its 20 s lease expires (as
    // upstream); only then does the restarted replica own the jobs again.
    let mut wait = Duration::from_secs(40);
    while let Some((name, at)) = next(&mut triggers, wait).await {
        wait = Duration::from_secs(4);
        match name.as_str() {
            "rep" => rep += 1,
            "later" => {
                assert!(later.is_none(), "a one-shot fired twice");
                later = Some(at);
            }
            other => panic!("unexpected trigger {other}"),
        }
    }
    // The two remaining ticks, plus at most one redelivery of an unacknowledged write.
    assert!(
        (2..=3).contains(&rep),
        "rep fired {rep} times after the restart"
    );
    let later = later.expect("the one-shot scheduled before the kill never fired");
    assert!(
        later + Duration::from_millis(50) >= later_due,
        "fired early"
    );

    let listed = c
        .list_jobs(ListJobsRequest {
            metadata: Some(metadata()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.jobs.is_empty(),
        "finished jobs remain: {:?}",
        listed.jobs
    );
    child.signal("INT").unwrap();
    child.wait_exit(Duration::from_secs(15));
    let _ = std::fs::remove_dir_all(&data_dir);
}
