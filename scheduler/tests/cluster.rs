//! A 3-replica scheduler cluster as processes: every job keeps firing when a replica is killed
//! with SIGKILL (the survivors take its partitions once its 20 s leadership lease expires), when
//! it comes back (the cluster re-partitions over three), and when the whole cluster is killed and
//! restarted from its data dirs. A fake sidecar holds one WatchJobs stream to every replica, as
//! daprd does through WatchHosts (spec §8-10).

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    process::ExitStatus,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use dapr_proto::scheduler::v1::{
    Job, ListJobsRequest, ScheduleJobRequest, WatchHostsRequest, WatchJobsRequest,
    WatchJobsRequestInitial, WatchJobsRequestResult, WatchJobsRequestResultStatus,
    scheduler_client::SchedulerClient, watch_jobs_request,
};
use dapr_testing::{Child, free_port, wait_for_status};
use tokio::{sync::mpsc, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

mod support;

use support::metadata;

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const IDS: [&str; 3] = ["s0", "s1", "s2"];
const JOBS: usize = 30;
/// Start-up of one process up to /healthz 200 (generous: CI may be busy).
const START: Duration = Duration::from_secs(30);
/// How long the replicas take to agree on three hosts after a (re)start.
const QUORUM: Duration = Duration::from_secs(40);
/// Upstream's e2e bar: the dead replica's 20 s lease expires, then the survivors re-partition.
const RESUME_AFTER_KILL: Duration = Duration::from_secs(30);
const HOSTS_AFTER_RESTART: Duration = Duration::from_secs(40);
/// The killed incarnations' leases are still live after a full restart; they expire first.
const RESUME_AFTER_FULL_RESTART: Duration = Duration::from_secs(45);
/// The window in which a settled cluster shows every job firing from a single owner.
const SETTLED: Duration = Duration::from_secs(3);
/// How long the cluster may take to settle after the membership it waited for.
const SETTLE: Duration = Duration::from_secs(20);
/// How often the waits below poll.
const POLL: Duration = Duration::from_millis(100);
/// Each disruption (kill, rejoin, full restart) may stop an engine with a trigger in flight or
/// an acknowledged tick not yet written; at-least-once delivery then repeats that tick. Allow
/// two repeats per disruption plus one for the first tick's rounding.
const REDELIVERIES: usize = 1 + 2 * 3;

struct Ports {
    grpc: u16,
    healthz: u16,
    metrics: u16,
    etcd_client: u16,
    etcd_peer: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            grpc: free_port(),
            healthz: free_port(),
            metrics: free_port(),
            etcd_client: free_port(),
            etcd_peer: free_port(),
        }
    }
}

struct Replica {
    id: &'static str,
    ports: Ports,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// Three replicas sharing one initial cluster; kills its processes and removes its data dirs on
/// drop, also when a test panics.
struct Cluster {
    root: PathBuf,
    initial_cluster: String,
    replicas: Vec<Replica>,
}

impl Cluster {
    fn new() -> Self {
        // One directory per cluster: the tests of this file run in parallel in one process.
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("scheduler-cluster-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let replicas: Vec<Replica> = IDS
            .iter()
            .map(|&id| Replica {
                id,
                ports: Ports::new(),
                data_dir: root.join(id),
                child: None,
            })
            .collect();
        let initial_cluster = replicas
            .iter()
            .map(|r| format!("{}=http://127.0.0.1:{}", r.id, r.ports.etcd_peer))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            root,
            initial_cluster,
            replicas,
        }
    }

    fn grpc_ports(&self) -> Vec<u16> {
        self.replicas.iter().map(|r| r.ports.grpc).collect()
    }

    fn spawn(&mut self, index: usize) {
        let initial_cluster = self.initial_cluster.clone();
        let replica = &mut self.replicas[index];
        let ports = &replica.ports;
        let args = [
            "--log-level=info".to_owned(),
            format!("--id={}", replica.id),
            format!("--port={}", ports.grpc),
            format!("--healthz-port={}", ports.healthz),
            format!("--metrics-port={}", ports.metrics),
            format!("--etcd-data-dir={}", replica.data_dir.display()),
            format!("--etcd-client-port={}", ports.etcd_client),
            "--listen-address=127.0.0.1".to_owned(),
            "--workers=128".to_owned(),
            format!("--etcd-initial-cluster={initial_cluster}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(replica.child.is_none(), "{} is already running", replica.id);
        replica.child = Some(Child::spawn(SCHEDULER, &args).unwrap());
    }

    /// Starts the given replicas together (an etcd member only gets healthy with a quorum of
    /// peers) and waits for /healthz 200 on each.
    async fn start(&mut self, indexes: &[usize]) {
        for &i in indexes {
            self.spawn(i);
        }
        for &i in indexes {
            let port = self.replicas[i].ports.healthz;
            let ready =
                tokio::task::spawn_blocking(move || wait_for_status(port, "/healthz", 200, START))
                    .await
                    .unwrap();
            if let Err(e) = ready {
                self.fail(&format!("{} not healthy: {e}", self.replicas[i].id));
            }
        }
    }

    async fn kill(&mut self, index: usize) {
        let mut child = self.replicas[index].child.take().expect("not running");
        child.signal("KILL").unwrap();
        tokio::task::spawn_blocking(move || {
            child.wait_exit(Duration::from_secs(10));
        })
        .await
        .unwrap();
    }

    /// Panics with the tail of every replica's log.
    fn fail(&self, message: &str) -> ! {
        let mut logs = String::new();
        for replica in &self.replicas {
            if let Some(child) = &replica.child {
                let output = child.output();
                let lines: Vec<&str> = output.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                logs.push_str(&format!("\n--- {} ---\n{tail}", replica.id));
            }
        }
        panic!("{message}{logs}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            drop(replica.child.take());
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One trigger as the fake sidecar saw it.
struct Fire {
    job: String,
    at: Instant,
    /// The index of the replica whose stream delivered it.
    replica: usize,
}

/// Everything the fake sidecar saw: triggers and the sizes of replica 0's host lists.
#[derive(Default)]
struct Seen {
    fires: Vec<Fire>,
    hosts: Vec<(Instant, usize)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn connect(port: u16) -> Option<SchedulerClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()?;
    Some(SchedulerClient::new(channel))
}

/// One WatchJobs stream to `port`, reopened whenever it ends (the replica died or restarted);
/// every trigger is recorded and acknowledged with SUCCESS.
async fn watch_jobs(replica: usize, port: u16, seen: Shared) {
    loop {
        if let Some(mut client) = connect(port).await {
            let (requests, rx) = mpsc::unbounded_channel();
            let initial = WatchJobsRequest {
                watch_job_request_type: Some(watch_jobs_request::WatchJobRequestType::Initial(
                    WatchJobsRequestInitial {
                        app_id: "app1".into(),
                        namespace: "default".into(),
                        ..Default::default()
                    },
                )),
            };
            requests.send(initial).unwrap();
            let stream = client
                .watch_jobs(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
                .await;
            if let Ok(stream) = stream {
                let mut stream = stream.into_inner();
                while let Ok(Some(trigger)) = stream.message().await {
                    seen.lock().unwrap().fires.push(Fire {
                        job: trigger.name,
                        at: Instant::now(),
                        replica,
                    });
                    let ack = WatchJobsRequest {
                        watch_job_request_type: Some(
                            watch_jobs_request::WatchJobRequestType::Result(
                                WatchJobsRequestResult {
                                    id: trigger.id,
                                    status: WatchJobsRequestResultStatus::Success as i32,
                                },
                            ),
                        ),
                    };
                    if requests.send(ack).is_err() {
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// WatchHosts on `port`, reopened whenever it ends; records the size of every host list.
async fn watch_hosts(port: u16, seen: Shared) {
    loop {
        if let Some(mut client) = connect(port).await
            && let Ok(stream) = client.watch_hosts(WatchHostsRequest {}).await
        {
            let mut stream = stream.into_inner();
            while let Ok(Some(update)) = stream.message().await {
                seen.lock()
                    .unwrap()
                    .hosts
                    .push((Instant::now(), update.hosts.len()));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn job_names() -> Vec<String> {
    (0..JOBS).map(|i| format!("j{i}")).collect()
}

/// How often each job fired after `since`.
fn fires_after(seen: &Shared, since: Instant) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for fire in &seen.lock().unwrap().fires {
        if fire.at > since {
            *counts.entry(fire.job.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// For each job, the replicas that delivered it within `[from, to]`.
fn owners(seen: &Shared, from: Instant, to: Instant) -> HashMap<String, BTreeSet<usize>> {
    let mut owners: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for fire in &seen.lock().unwrap().fires {
        if fire.at >= from && fire.at <= to {
            owners
                .entry(fire.job.clone())
                .or_default()
                .insert(fire.replica);
        }
    }
    owners
}

/// The most triggers one job got in any 3 s window after `since` (informational: the catch-up
/// of ticks missed while down).
fn max_burst(seen: &Shared, since: Instant) -> usize {
    let mut by_job: HashMap<&str, Vec<Instant>> = HashMap::new();
    let seen = seen.lock().unwrap();
    for fire in seen.fires.iter().filter(|f| f.at > since) {
        by_job.entry(&fire.job).or_default().push(fire.at);
    }
    let mut worst = 0;
    for arrivals in by_job.values_mut() {
        arrivals.sort();
        for (i, start) in arrivals.iter().enumerate() {
            let inside = arrivals[i..]
                .iter()
                .take_while(|at| at.duration_since(*start) < Duration::from_secs(3))
                .count();
            worst = worst.max(inside);
        }
    }
    worst
}

/// Polls until every job fired at least `times` times after `since`; returns when the last one
/// got there, or fails naming the laggards.
async fn wait_all_fire(
    cluster: &Cluster,
    seen: &Shared,
    since: Instant,
    times: usize,
    within: Duration,
    what: &str,
) -> Instant {
    let deadline = since + within;
    loop {
        let counts = fires_after(seen, since);
        let missing: Vec<String> = job_names()
            .into_iter()
            .filter(|n| counts.get(n).copied().unwrap_or(0) < times)
            .collect();
        if missing.is_empty() {
            return Instant::now();
        }
        if Instant::now() >= deadline {
            cluster.fail(&format!(
                "{what}: {} jobs did not fire {times}x within {within:?}: {missing:?}",
                missing.len()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until the cluster is settled on `serving`: over the last [`SETTLED`], every job fired
/// at least twice, each from exactly one replica (its partition's owner), the owners are exactly
/// `serving`, and replica 0's latest host list has that many hosts.
async fn wait_settled(
    cluster: &Cluster,
    seen: &Shared,
    since: Instant,
    serving: &[usize],
    within: Duration,
) -> Instant {
    let deadline = since + within;
    let expected: BTreeSet<usize> = serving.iter().copied().collect();
    let mut last = String::from("no window yet");
    loop {
        let now = Instant::now();
        if let Some(from) = now.checked_sub(SETTLED).filter(|from| *from >= since) {
            let owners = owners(seen, from, now);
            let counts = fires_after(seen, from);
            let hosts = seen.lock().unwrap().hosts.last().map(|(_, n)| *n);
            let union: BTreeSet<usize> = owners.values().flatten().copied().collect();
            let shared: Vec<_> = owners.iter().filter(|(_, o)| o.len() > 1).collect();
            let slow: Vec<String> = job_names()
                .into_iter()
                .filter(|n| counts.get(n).copied().unwrap_or(0) < 2)
                .collect();
            if slow.is_empty()
                && shared.is_empty()
                && union == expected
                && hosts == Some(serving.len())
            {
                return now;
            }
            last = format!(
                "owners {union:?}, hosts {hosts:?}, jobs firing from two replicas {shared:?}, \
                 jobs firing < 2x {slow:?}"
            );
        }
        if now >= deadline {
            cluster.fail(&format!(
                "not settled on replicas {serving:?} within {within:?}: {last}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until replica 0's WatchHosts reported `count` hosts after `since`.
async fn wait_hosts(
    cluster: &Cluster,
    seen: &Shared,
    since: Instant,
    count: usize,
    within: Duration,
) -> Instant {
    let deadline = since + within;
    loop {
        let reported = seen
            .lock()
            .unwrap()
            .hosts
            .iter()
            .find(|(at, n)| *at > since && *n == count)
            .map(|(at, _)| *at);
        if let Some(at) = reported {
            return at;
        }
        if Instant::now() >= deadline {
            let hosts = &seen.lock().unwrap().hosts;
            let last = hosts.last().map(|(_, n)| *n);
            cluster.fail(&format!(
                "WatchHosts did not list {count} hosts within {within:?} (last: {last:?})"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until ListJobs on `port` returns `count` jobs.
async fn wait_listed(cluster: &Cluster, port: u16, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Some(mut client) = connect(port).await {
            let request = ListJobsRequest {
                metadata: Some(metadata()),
            };
            match tokio::time::timeout(Duration::from_secs(5), client.list_jobs(request)).await {
                Ok(Ok(listed)) if listed.get_ref().jobs.len() == count => return,
                Ok(Ok(listed)) => last = format!("{} jobs", listed.get_ref().jobs.len()),
                Ok(Err(status)) => last = status.to_string(),
                Err(_) => last = "timed out".into(),
            }
        }
        tokio::time::sleep(POLL).await;
    }
    cluster.fail(&format!(
        "ListJobs on :{port} never returned {count} jobs within {within:?}; last: {last}"
    ));
}

/// The checkable form of "never early": the k-th tick of an `@every 1s` job created at C is
/// scheduled at C + k s (each tick is computed from the previous *scheduled* tick, so ticks
/// missed during downtime legitimately fire back to back, and a per-window rate bound would
/// reject that catch-up). So by any moment t a job may have fired at most (t - C)/1s times,
/// plus the at-least-once redeliveries the disruptions allow. A replica firing a job it does
/// not own, or a tick computed from the wrong base, overtakes that bound within seconds.
fn assert_never_ahead_of_schedule(seen: &Shared, created: Instant) -> usize {
    let seen = seen.lock().unwrap();
    let mut by_job: HashMap<&str, Vec<Instant>> = HashMap::new();
    for fire in &seen.fires {
        by_job.entry(&fire.job).or_default().push(fire.at);
    }
    let mut worst_lead = 0;
    for (name, mut arrivals) in by_job {
        arrivals.sort();
        for (k, at) in arrivals.iter().enumerate() {
            let fired = k + 1;
            // The client-side creation instant precedes the server's, so this bound is loose
            // in the right direction.
            let allowed = usize::try_from(at.duration_since(created).as_secs()).unwrap();
            let lead = fired.saturating_sub(allowed);
            worst_lead = worst_lead.max(lead);
            assert!(
                lead <= REDELIVERIES,
                "{name} fired {fired} times within {:?} of its creation (ticks 1 s apart, \
                 {REDELIVERIES} redeliveries allowed)",
                at.duration_since(created)
            );
        }
    }
    worst_lead
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_loses_no_jobs_and_the_cluster_survives_restarts() {
    let test_start = Instant::now();
    let mut cluster = Cluster::new();
    cluster.start(&[0, 1, 2]).await;

    // 1. A sidecar with a stream to every replica, and replica 0's host list.
    let seen = Shared::default();
    let mut watchers: Vec<JoinHandle<()>> = cluster
        .grpc_ports()
        .into_iter()
        .enumerate()
        .map(|(i, port)| tokio::spawn(watch_jobs(i, port, seen.clone())))
        .collect();
    let port0 = cluster.replicas[0].ports.grpc;
    watchers.push(tokio::spawn(watch_hosts(port0, seen.clone())));
    wait_hosts(&cluster, &seen, test_start, 3, QUORUM).await;
    println!(
        "cluster up (3 hosts) after {:.1}s",
        test_start.elapsed().as_secs_f64()
    );

    // 2. Thirty jobs through replica 0; all three partitions are served.
    let created = Instant::now();
    let mut client = connect(port0).await.expect("replica 0 unreachable");
    for name in job_names() {
        let request = ScheduleJobRequest {
            name,
            job: Some(Job {
                schedule: Some("@every 1s".into()),
                ..Default::default()
            }),
            metadata: Some(metadata()),
            overwrite: false,
        };
        if let Err(status) = client.schedule_job(request).await {
            cluster.fail(&format!("ScheduleJob failed: {status}"));
        }
    }
    wait_all_fire(&cluster, &seen, created, 2, SETTLE, "start").await;
    wait_settled(&cluster, &seen, created, &[0, 1, 2], SETTLE).await;

    // 3. SIGKILL replica 2: the survivors take its partitions once its lease expires.
    cluster.kill(2).await;
    let killed = Instant::now();
    let resumed = wait_all_fire(&cluster, &seen, killed, 1, RESUME_AFTER_KILL, "kill").await;
    let shrunk = wait_hosts(&cluster, &seen, killed, 2, RESUME_AFTER_KILL).await;
    println!(
        "kill s2 -> WatchHosts lists 2 hosts: {:.1}s; every job fired again: {:.1}s",
        shrunk.duration_since(killed).as_secs_f64(),
        resumed.duration_since(killed).as_secs_f64()
    );
    wait_settled(&cluster, &seen, shrunk, &[0, 1], SETTLE).await;

    // 4. Replica 2 back on the same ports and data dir: three partitions again, one of them
    //    served by the restarted replica.
    let restarted = Instant::now();
    cluster.start(&[2]).await;
    let rebalanced = wait_hosts(&cluster, &seen, restarted, 3, HOSTS_AFTER_RESTART).await;
    let fired = wait_all_fire(&cluster, &seen, rebalanced, 1, SETTLE, "rejoin").await;
    let settled = wait_settled(&cluster, &seen, rebalanced, &[0, 1, 2], SETTLE).await;
    println!(
        "restart s2 -> WatchHosts lists 3 hosts: {:.1}s; every job fired again: {:.1}s; \
         settled on 3 owners: {:.1}s",
        rebalanced.duration_since(restarted).as_secs_f64(),
        fired.duration_since(restarted).as_secs_f64(),
        settled.duration_since(restarted).as_secs_f64()
    );

    // 5. The whole cluster killed and restarted from its data dirs: nothing is lost.
    for i in 0..IDS.len() {
        cluster.kill(i).await;
    }
    let all_killed = Instant::now();
    cluster.start(&[0, 1, 2]).await;
    for port in cluster.grpc_ports() {
        wait_listed(&cluster, port, JOBS, RESUME_AFTER_FULL_RESTART).await;
    }
    let resumed = wait_all_fire(
        &cluster,
        &seen,
        all_killed,
        1,
        RESUME_AFTER_FULL_RESTART,
        "full restart",
    )
    .await;
    println!(
        "full restart -> every job fired again: {:.1}s (most ticks of one job in 3 s: {})",
        resumed.duration_since(all_killed).as_secs_f64(),
        max_burst(&seen, all_killed)
    );
    wait_settled(&cluster, &seen, resumed, &[0, 1, 2], SETTLE).await;
    let lead = assert_never_ahead_of_schedule(&seen, created);
    println!(
        "most ticks ahead of schedule: {lead} (allowed {REDELIVERIES}); total {:.1}s",
        test_start.elapsed().as_secs_f64()
    );

    for watcher in watchers {
        watcher.abort();
    }
}

/// The last replica to stop has no quorum left: its store calls must not hold up its shutdown
/// (upstream's harness interrupts every replica at cleanup and requires exit status 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_interrupted_all_at_once_exits_cleanly() {
    let mut cluster = Cluster::new();
    cluster.start(&[0, 1, 2]).await;
    let ports = cluster.grpc_ports();
    wait_listed(&cluster, ports[0], 0, SETTLE).await;
    let mut children: Vec<_> = cluster
        .replicas
        .iter_mut()
        .map(|r| r.child.take().expect("running"))
        .collect();
    for child in &children {
        child.signal("INT").unwrap();
    }
    let started = Instant::now();
    let statuses = tokio::task::spawn_blocking(move || {
        children
            .iter_mut()
            .map(|c| c.wait_exit(Duration::from_secs(20)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let took = started.elapsed();
    println!(
        "all three replicas exited {:.1}s after SIGINT: {statuses:?}",
        took.as_secs_f64()
    );
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
}
