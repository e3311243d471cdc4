//! `dapr-etcd` processes on loopback for the fault tests: a cluster that starts members on free
//! ports, SIGKILLs them, restarts them from their data directories with the same flags, and waits
//! on what Maintenance.Status reports. Every wait has a deadline; a failure carries the members'
//! logs (and keeps the data directories for a look).

pub mod writer;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use dapr_etcd_store::node::members;
use dapr_proto::etcd::etcdserverpb::{
    PutRequest, RangeRequest, StatusRequest, StatusResponse, kv_client::KvClient,
    lease_client::LeaseClient, maintenance_client::MaintenanceClient,
};
use dapr_testing::{Child, free_port};
use tonic::transport::{Channel, Endpoint};

/// Longest one RPC may take: a write waits up to the store's leader wait (5 s) and a forward.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Status polls must answer quickly; a member that does not is treated as not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a member gets to start, a cluster to elect, a restarted member to catch up.
pub const SETTLE: Duration = Duration::from_secs(30);
/// Between polls of a readiness signal.
pub const POLL: Duration = Duration::from_millis(50);
/// Log lines per process quoted in a failure message.
const LOG_TAIL: usize = 60;

struct Member {
    name: String,
    id: u64,
    client_url: String,
    args: Vec<String>,
    child: Option<Child>,
    /// Output of this member's earlier, killed processes.
    earlier: String,
    incarnation: u32,
}

/// A `dapr-etcd` cluster; members are addressed by their index in `--initial-cluster`.
pub struct Cluster {
    members: Vec<Member>,
    root: PathBuf,
}

impl Cluster {
    /// Starts `size` members `n1..` with `extra` flags on every one.
    pub fn start(tag: &str, size: usize, extra: &[&str]) -> Self {
        let root =
            std::env::temp_dir().join(format!("dapr-etcd-faults-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let initial: Vec<(String, String)> = (1..=size)
            .map(|i| (format!("n{i}"), format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let flag = initial
            .iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        // The ids the store gives its members, so Status's `leader` maps back to an index.
        let ids = members(&initial);
        let members = initial
            .iter()
            .map(|(name, _)| {
                let client_url = format!("http://127.0.0.1:{}", free_port());
                let dir = root.join(name).to_string_lossy().into_owned();
                let mut args: Vec<String> = [
                    "--name",
                    name,
                    "--data-dir",
                    &dir,
                    "--listen-client-urls",
                    &client_url,
                    "--initial-cluster",
                    &flag,
                ]
                .map(str::to_owned)
                .into();
                args.extend(extra.iter().map(|s| (*s).to_owned()));
                let id = ids
                    .iter()
                    .find(|m| m.name == *name)
                    .map(|m| m.id)
                    .expect("member id");
                Member {
                    name: name.clone(),
                    id,
                    client_url,
                    args,
                    child: None,
                    earlier: String::new(),
                    incarnation: 0,
                }
            })
            .collect();
        let mut cluster = Self { members, root };
        for i in 0..size {
            cluster.restart(i);
        }
        cluster
    }

    pub fn indices(&self) -> Vec<usize> {
        (0..self.members.len()).collect()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    /// Starts member `i` (again) with the same flags and data directory.
    pub fn restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "{} is already running", m.name);
        let args: Vec<&str> = m.args.iter().map(String::as_str).collect();
        let child = Child::spawn(env!("CARGO_BIN_EXE_dapr-etcd"), &args).expect("spawn dapr-etcd");
        m.child = Some(child);
        m.incarnation += 1;
    }

    /// SIGKILLs member `i` and waits until it is gone; its output is kept for failure messages.
    pub fn kill(&mut self, i: usize) {
        let m = &mut self.members[i];
        let mut child = m.child.take().expect("the member is running");
        child.signal("KILL").expect("SIGKILL");
        let status = child.wait_exit(Duration::from_secs(10));
        m.earlier.push_str(&format!(
            "--- {} process #{} ({status}) ---\n{}",
            m.name,
            m.incarnation,
            tail(&child.output())
        ));
    }

    fn channel(&self, i: usize) -> Channel {
        Endpoint::from_shared(self.members[i].client_url.clone())
            .expect("client url")
            .connect_timeout(Duration::from_secs(1))
            .timeout(RPC_TIMEOUT)
            .connect_lazy()
    }

    pub fn kv(&self, i: usize) -> KvClient<Channel> {
        KvClient::new(self.channel(i))
    }

    pub fn lease(&self, i: usize) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel(i))
    }

    pub async fn status(&self, i: usize) -> Result<StatusResponse, String> {
        let mut client = MaintenanceClient::new(self.channel(i));
        let status = tokio::time::timeout(PROBE_TIMEOUT, client.status(StatusRequest {}))
            .await
            .map_err(|_| format!("{}: Status timed out", self.name(i)))?
            .map_err(|e| format!("{}: {e}", self.name(i)))?
            .into_inner();
        let member = status.header.as_ref().map_or(0, |h| h.member_id);
        assert_eq!(
            member,
            self.members[i].id,
            "{} answers as another member",
            self.name(i)
        );
        Ok(status)
    }

    /// The leader every member of `which` reports, as an index; an error says who disagrees.
    async fn agreed_leader(&self, which: &[usize]) -> Result<usize, String> {
        let mut agreed = None;
        for &i in which {
            let status = self.status(i).await?;
            if status.leader == 0 || !status.errors.is_empty() {
                return Err(format!("{}: no leader {:?}", self.name(i), status.errors));
            }
            match agreed {
                Some(leader) if leader != status.leader => {
                    return Err(format!(
                        "{}: leader {} not {leader}",
                        self.name(i),
                        status.leader
                    ));
                }
                _ => agreed = Some(status.leader),
            }
        }
        let leader = agreed.expect("at least one member");
        self.members
            .iter()
            .position(|m| m.id == leader)
            .ok_or_else(|| format!("leader {leader} is not a member"))
    }

    /// Waits until every member of `which` reports the same leader, other than `not`.
    pub async fn wait_for_leader(&self, which: &[usize], not: Option<usize>) -> usize {
        let deadline = Instant::now() + SETTLE;
        loop {
            let why = match self.agreed_leader(which).await {
                Ok(leader) if Some(leader) != not => return leader,
                Ok(leader) => format!("still {}", self.name(leader)),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "no agreed leader among {which:?} within {SETTLE:?}: {why}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every member of `which` has applied the same Raft index and revision (one
    /// revision cluster-wide once writes stop); returns that revision.
    pub async fn wait_converged(&self, which: &[usize]) -> i64 {
        let deadline = Instant::now() + SETTLE;
        loop {
            let mut seen = Vec::new();
            for &i in which {
                match self.status(i).await {
                    Ok(s) => seen.push(Ok((
                        s.header.map_or(0, |h| h.revision),
                        s.raft_applied_index,
                    ))),
                    Err(e) => seen.push(Err(e)),
                }
            }
            if let Some(Ok(first)) = seen.first()
                && seen.iter().all(|s| s.as_ref() == Ok(first))
            {
                return first.0;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "members {which:?} did not converge within {SETTLE:?}; (revision, applied): {seen:?}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The value of `result`, or a failure naming `what` with the members' logs.
    pub fn check<T, E: std::fmt::Display>(&self, what: &str, result: Result<T, E>) -> T {
        result.unwrap_or_else(|e| self.fail(&format!("{what}: {e}")))
    }

    /// Panics with `message` and the tail of every member's log.
    pub fn fail(&self, message: &str) -> ! {
        let mut logs = String::new();
        for m in &self.members {
            logs.push_str(&m.earlier);
            if let Some(child) = &m.child {
                logs.push_str(&format!(
                    "--- {} process #{} (running) ---\n{}",
                    m.name,
                    m.incarnation,
                    tail(&child.output())
                ));
            }
        }
        panic!("{message}\n{logs}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            drop(m.child.take());
        }
        if std::thread::panicking() {
            eprintln!("kept the members' data in {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL);
    lines[from..].iter().map(|l| format!("{l}\n")).collect()
}

pub fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// Every key under `prefix` (all keys for `""`) with its value, and the revision read at;
/// `serializable` reads the member's local state without asking the leader.
pub async fn range_prefix(
    kv: &mut KvClient<Channel>,
    prefix: &str,
    serializable: bool,
) -> Result<(i64, BTreeMap<String, String>), tonic::Status> {
    // etcd's "every key" is `\0` to `\0`; a prefix ends where its last byte counts up.
    let (key, end) = match prefix.as_bytes() {
        [] => (vec![0], vec![0]),
        [head @ .., last] => (prefix.into(), [head, &[last + 1]].concat()),
    };
    let reply = kv
        .range(RangeRequest {
            key,
            range_end: end,
            serializable,
            ..Default::default()
        })
        .await?
        .into_inner();
    let revision = reply.header.map_or(0, |h| h.revision);
    let kvs = reply
        .kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect();
    Ok((revision, kvs))
}
