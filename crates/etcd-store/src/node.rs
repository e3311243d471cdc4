//! One member of the replicated store: the Raft node, its durable log and state machine, the
//! peer listener, and the leader's lease clock. The etcd gRPC front door (`crate::server`) and
//! the scheduler talk to a [`Node`].

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use dapr_raft_log::Wal;
use openraft::{
    BasicNode, Raft, ServerState, SnapshotPolicy,
    error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxFuture;

use crate::{
    clock::now_ms,
    compactor::{AutoCompaction, Samples, revision_target},
    mvcc::{
        AlarmAction, AlarmRequest, AlarmType, Command, CompactRequest, Error as StoreError,
        LeaseRevokeRequest, LeaseTimeToLive, Store, StoreConfig,
    },
    raft::{
        NodeId, Outcome, Proposal, Reply, TypeConfig,
        machine::Machine,
        network::{
            FORWARD_TIMEOUT, ForwardError, Network, PeerHandler, PeerRequest, PeerResponse,
            PeerService, Peers, split_url,
        },
    },
};

/// How often the leader looks for expired leases (etcd checks every 500 ms).
const LEASE_TICK: Duration = Duration::from_millis(500);
/// Expired leases revoked per tick at most.
const REVOKE_BATCH: usize = 500;
/// How long a write waits for a leader to appear before failing with `no leader`.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a proposal may take once handed to Raft before it fails with `request timed out`
/// (etcd's `ReqTimeout`: 5 s plus two election timeouts). A leader that lost its followers
/// does not step down by itself, and without this its writes would wait forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(7);
/// Client writes merged into one Raft entry at most.
const MAX_BATCH: usize = 512;
/// Raft entries of merged writes in flight at once (more writes queue meanwhile and form the
/// next entry — that is where the batching comes from under load). One is best: every entry
/// costs a trip through openraft's core, log flush and apply, so fewer, larger entries win
/// (64 concurrent puts, 2 cores: 1 in flight 15.7k puts/s, 2: 13.1k, 4: 11.3k, 8: 8.3k on one
/// member; 5.4k / 5.3k / 4.9k on three).
const MAX_IN_FLIGHT: usize = 1;

/// A client write waiting to be proposed.
struct Queued {
    cmd: Command,
    reply: tokio::sync::oneshot::Sender<Result<Outcome, NodeError>>,
}

/// A member of the initial cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub peer_url: String,
}

/// Peer TLS (the scheduler's SVID), used when the peer URLs are `https`.
#[derive(Clone)]
pub struct PeerTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    /// The SPIFFE id every member presents; peer calls from any other id are refused.
    pub peer_id: Option<dapr_security::SpiffeId>,
}

/// How to start a member.
#[derive(Clone)]
pub struct NodeConfig {
    /// This member's name; must appear in `initial_cluster`.
    pub name: String,
    /// `(name, peer URL)` of every member, this one included (the same list on every member).
    pub initial_cluster: Vec<(String, String)>,
    /// Where the peer listener binds (`host:port`).
    pub peer_listen: String,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    /// Entries applied between snapshots (etcd `--snapshot-count`).
    pub snapshot_count: u64,
    /// etcd's auto-compaction, run by the leader.
    pub auto_compaction: AutoCompaction,
    pub peer_tls: Option<PeerTls>,
}

/// Why a request failed, as etcd words it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: {0}")]
    Internal(String),
}

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("member {name} is not in the initial cluster {cluster:?}")]
    NotAMember { name: String, cluster: Vec<String> },
    #[error("failed to open the raft log: {0}")]
    Log(#[from] dapr_raft_log::OpenError),
    #[error("failed to open the store in {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid raft settings: {0}")]
    Config(String),
    #[error("failed to start raft: {0}")]
    Raft(String),
    #[error("failed to listen for peers on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

struct Inner {
    id: NodeId,
    name: String,
    members: Vec<Member>,
    cluster_id: u64,
    raft: Raft<TypeConfig>,
    machine: Machine,
    peers: Peers,
    wal: Wal<TypeConfig>,
    queue: tokio::sync::mpsc::UnboundedSender<Queued>,
    data_dir: PathBuf,
    /// Whether the data directory's disk is (nearly) full; see [`crate::disk`].
    disk_full: tokio::sync::watch::Sender<bool>,
}

/// A running member; cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

/// The member ids: 1-based positions among the sorted names.
pub fn members(initial_cluster: &[(String, String)]) -> Vec<Member> {
    let mut sorted: Vec<&(String, String)> = initial_cluster.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, (name, url))| Member {
            id: i as u64 + 1,
            name: name.clone(),
            peer_url: url.clone(),
        })
        .collect()
}

/// A stable cluster id from the member list (etcd hashes its member ids the same way in spirit).
fn cluster_id(members: &[Member]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for m in members {
        for b in m.name.bytes().chain(m.peer_url.bytes()).chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

impl Node {
    /// Opens the data dir, starts Raft and the peer listener. The listener and background loops
    /// stop when `shutdown` fires; then call [`Node::stop`].
    pub async fn start(
        config: NodeConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let members = members(&config.initial_cluster);
        let Some(me) = members.iter().find(|m| m.name == config.name).cloned() else {
            return Err(StartError::NotAMember {
                name: config.name.clone(),
                cluster: members.iter().map(|m| m.name.clone()).collect(),
            });
        };
        let wal = Wal::<TypeConfig>::open(config.data_dir.join("wal"))?;
        let snap_dir = config.data_dir.join("snap");
        let machine =
            Machine::open(&snap_dir, config.store.clone()).map_err(|source| StartError::Store {
                path: snap_dir.clone(),
                source,
            })?;
        let single = members.len() == 1;
        let raft_config = openraft::Config {
            cluster_name: "dapr-scheduler-store".into(),
            heartbeat_interval: if single { 50 } else { 100 },
            election_timeout_min: if single { 150 } else { 1000 },
            election_timeout_max: if single { 300 } else { 2000 },
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_count.max(100)),
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let addresses: HashMap<NodeId, String> =
            members.iter().map(|m| (m.id, m.peer_url.clone())).collect();
        let peers = Peers::new(
            addresses,
            config.peer_tls.as_ref().map(|t| Arc::clone(&t.client)),
        );
        let raft = Raft::new(
            me.id,
            Arc::new(raft_config),
            Network {
                peers: peers.clone(),
            },
            wal.clone(),
            machine.clone(),
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        let (queue, queued) = tokio::sync::mpsc::unbounded_channel();
        let node = Self {
            inner: Arc::new(Inner {
                id: me.id,
                name: me.name.clone(),
                cluster_id: cluster_id(&members),
                members: members.clone(),
                raft,
                machine,
                peers,
                wal,
                queue,
                data_dir: config.data_dir.clone(),
                disk_full: tokio::sync::watch::Sender::new(false),
            }),
        };
        tokio::spawn(crate::disk::watch_loop(
            config.data_dir.clone(),
            node.inner.disk_full.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(node.clone().batch_loop(queued));
        node.serve_peers(&config, shutdown.clone()).await?;

        // Every member proposes the same initial membership; all but the first are refused
        // harmlessly, and a restarted member is already initialized.
        let voters: BTreeMap<NodeId, BasicNode> = members
            .iter()
            .map(|m| (m.id, BasicNode::new(m.peer_url.clone())))
            .collect();
        if let Err(error) = node.inner.raft.initialize(voters).await {
            tracing::debug!(%error, "raft already initialized");
        }
        tokio::spawn(node.clone().leadership_loop(shutdown.clone()));
        if !single {
            let raft = node.inner.raft.clone();
            tokio::spawn(dapr_raft_log::split_vote::restand_after_split_votes(
                raft,
                shutdown.clone(),
            ));
        }
        tokio::spawn(node.clone().lease_loop(shutdown.clone()));
        tokio::spawn(
            node.clone()
                .compaction_loop(config.auto_compaction, shutdown),
        );
        tracing::info!(member = %me.name, id = me.id, members = members.len(), "store member started");
        Ok(node)
    }

    async fn serve_peers(
        &self,
        config: &NodeConfig,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let listener = TcpListener::bind(&config.peer_listen)
            .await
            .map_err(|source| StartError::Listen {
                address: config.peer_listen.clone(),
                source,
            })?;
        let own_url = self
            .inner
            .members
            .iter()
            .find(|m| m.id == self.inner.id)
            .map(|m| m.peer_url.clone())
            .unwrap_or_default();
        let secure = split_url(&own_url).0;
        let tls = config.peer_tls.clone().filter(|_| secure);
        let service = PeerService::new(Arc::new(self.clone()))
            .allow_only(tls.as_ref().and_then(|t| t.peer_id.clone()));
        let routes = tonic::service::Routes::new(service);
        tokio::spawn(async move {
            let served = match tls {
                Some(tls) => {
                    dapr_security::net::serve_routes(routes, listener, tls.server, shutdown).await
                }
                None => dapr_kit::grpc::serve_plaintext(listener, routes, shutdown).await,
            };
            if let Err(error) = served {
                tracing::error!(%error, "store peer listener failed");
            }
        });
        Ok(())
    }

    /// Shuts Raft down and flushes the log.
    pub async fn stop(&self) {
        let _ = self.inner.raft.shutdown().await;
        self.inner.wal.close();
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    pub fn members(&self) -> &[Member] {
        &self.inner.members
    }

    pub fn machine(&self) -> &Machine {
        &self.inner.machine
    }

    /// `(leader id, raft term, last log index, last applied index)`.
    pub fn raft_status(&self) -> (Option<NodeId>, u64, u64, u64) {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        (
            m.current_leader,
            m.current_term,
            m.last_log_index.unwrap_or(0),
            m.last_applied.map_or(0, |l| l.index),
        )
    }

    /// This member's share of Defragment: like etcd rewriting its bbolt file, the whole state
    /// is written out to a scratch file and synced (then removed), so a full disk fails the
    /// call instead of passing it silently.
    pub async fn defragment_on_disk(&self) -> std::io::Result<()> {
        let state = postcard::to_allocvec(self.inner.machine.read().state())
            .map_err(std::io::Error::other)?;
        let path = self.inner.data_dir.join("defrag.tmp");
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let written = std::fs::File::create(&path).and_then(|mut file| {
                file.write_all(&state)?;
                file.sync_all()
            });
            let _ = std::fs::remove_file(&path);
            written
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The current Raft term (cheaper than [`Node::raft_status`]; every response header has it).
    pub fn raft_term(&self) -> u64 {
        self.inner
            .raft
            .server_metrics()
            .borrow()
            .vote
            .leader_id()
            .get_term()
    }

    /// Replicates a write and returns what applying it gave. Puts over the space quota raise the
    /// NOSPACE alarm and fail, as etcd's quota front door does; while this member's disk is full,
    /// writes that add data fail with the same error, without the alarm (see [`crate::disk`]).
    pub async fn write(&self, cmd: Command) -> Result<Reply, NodeError> {
        let cost = write_cost(&cmd);
        if cost > 0 && self.disk_is_full() {
            return Err(StoreError::NoSpace.into());
        }
        if cost > 0 && !self.inner.machine.read().quota_available(cost) {
            let alarm = Command::Alarm(AlarmRequest {
                action: AlarmAction::Activate,
                member_id: self.inner.id,
                alarm: AlarmType::Nospace,
            });
            let _ = self.propose(Proposal::One(alarm)).await;
            return Err(StoreError::NoSpace.into());
        }
        let outcome = self.enqueue(cmd)?.await.map_err(|_| NodeError::Stopped)??;
        Ok(Reply {
            result: Some(outcome.result),
            revision: outcome.revision,
            batch: Vec::new(),
        })
    }

    /// Follows whether the data directory's disk is full (true) or has space (false).
    pub fn disk_full(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.disk_full.subscribe()
    }

    fn disk_is_full(&self) -> bool {
        *self.inner.disk_full.borrow()
    }

    /// Queues a write for the next group commit.
    fn enqueue(
        &self,
        cmd: Command,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Outcome, NodeError>>, NodeError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.inner
            .queue
            .send(Queued { cmd, reply })
            .map_err(|_| NodeError::Stopped)?;
        Ok(rx)
    }

    /// A follower's writes, on the leader: they join the leader's own queue, so the writes of
    /// every member go into one Raft entry per round instead of one entry per member (each
    /// entry costs a log sync and an apply on every member, and a replication round).
    async fn accept_forwarded(&self, proposal: Proposal) -> Result<Reply, ForwardError> {
        if self.known_leader() != Some(self.inner.id) {
            return Err(ForwardError::NotLeader);
        }
        let (cmds, single) = match proposal {
            Proposal::One(cmd) => (vec![cmd], true),
            Proposal::Batch(cmds) => (cmds, false),
        };
        // A forwarded write passed the follower's own disk check; the leader's log takes every
        // entry first, so its disk is checked too.
        let disk_full = self.disk_is_full();
        let waiting = cmds
            .into_iter()
            .map(|cmd| {
                if disk_full && write_cost(&cmd) > 0 {
                    Ok(None)
                } else {
                    self.enqueue(cmd).map(Some)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(forwarded_error)?;
        let mut batch = Vec::with_capacity(waiting.len());
        for rx in waiting {
            batch.push(match rx {
                Some(rx) => rx
                    .await
                    .map_err(|_| ForwardError::NotLeader)?
                    .map_err(forwarded_error)?,
                None => Outcome {
                    result: Err(StoreError::NoSpace),
                    revision: self.inner.machine.read().revision(),
                },
            });
        }
        let revision = batch.last().map_or(0, |o| o.revision);
        Ok(if single {
            Reply {
                result: batch.pop().map(|o| o.result),
                revision,
                batch: Vec::new(),
            }
        } else {
            Reply {
                result: None,
                revision,
                batch,
            }
        })
    }

    /// Merges queued writes into as few Raft entries as possible (group commit).
    async fn batch_loop(self, mut queued: tokio::sync::mpsc::UnboundedReceiver<Queued>) {
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let Some(first) = queued.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queued.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let node = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if batch.len() == 1 {
                    let Some(Queued { cmd, reply }) = batch.pop() else {
                        return;
                    };
                    let result = node.propose(Proposal::One(cmd)).await.and_then(|r| {
                        r.result
                            .map(|result| Outcome {
                                result,
                                revision: r.revision,
                            })
                            .ok_or_else(|| NodeError::Internal("empty reply".into()))
                    });
                    let _ = reply.send(result);
                    return;
                }
                let (cmds, replies): (Vec<Command>, Vec<_>) =
                    batch.into_iter().map(|q| (q.cmd, q.reply)).unzip();
                match node.propose(Proposal::Batch(cmds)).await {
                    Ok(reply) if reply.batch.len() == replies.len() => {
                        for (outcome, tx) in reply.batch.into_iter().zip(replies) {
                            let _ = tx.send(Ok(outcome));
                        }
                    }
                    Ok(_) => {
                        for tx in replies {
                            let _ =
                                tx.send(Err(NodeError::Internal("batch reply mismatch".into())));
                        }
                    }
                    Err(error) => {
                        for tx in replies {
                            let _ = tx.send(Err(error.clone()));
                        }
                    }
                }
            });
        }
    }

    async fn propose(&self, cmd: Proposal) -> Result<Reply, NodeError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            // A follower that knows the leader forwards straight away instead of first having
            // its own Raft core refuse the write.
            let leader = match self.known_leader() {
                Some(leader) if leader != self.inner.id => Some(leader),
                _ => match tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    self.inner.raft.client_write(cmd.clone()),
                )
                .await
                .map_err(|_| NodeError::Timeout)?
                {
                    Ok(response) => return Ok(response.data),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(
                        ForwardToLeader { leader_id, .. },
                    ))) => leader_id,
                    Err(RaftError::APIError(e)) => {
                        return Err(NodeError::Internal(e.to_string()));
                    }
                    Err(RaftError::Fatal(_)) => return Err(NodeError::Stopped),
                },
            };
            if let Some(leader) = leader {
                match self
                    .inner
                    .peers
                    .call(leader, &PeerRequest::Forward(cmd.clone()), FORWARD_TIMEOUT)
                    .await
                {
                    Ok(PeerResponse::Forward(Ok(reply))) => return Ok(reply),
                    Ok(PeerResponse::Forward(Err(ForwardError::Store(e)))) => return Err(e.into()),
                    Ok(PeerResponse::Forward(Err(ForwardError::Other(e)))) => {
                        return Err(NodeError::Internal(e));
                    }
                    // Leadership moved on, the leader is unreachable, or the call timed out:
                    // wait for the cluster to settle and retry (a timed-out write may have
                    // applied; etcd gives the same ambiguity).
                    _ => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if leader.is_some() {
                    NodeError::Timeout
                } else {
                    NodeError::NoLeader
                });
            }
            self.wait_for_leader(deadline).await;
        }
    }

    /// The leader this member knows of right now.
    fn known_leader(&self) -> Option<NodeId> {
        self.inner.raft.server_metrics().borrow().current_leader
    }

    async fn wait_for_leader(&self, deadline: tokio::time::Instant) {
        let mut metrics = self.inner.raft.server_metrics();
        let _ = tokio::time::timeout_at(deadline, async {
            loop {
                if metrics.borrow_and_update().current_leader.is_some() {
                    // Give a just-elected leader a moment to commit its first entry.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Waits until a read here would see every write acknowledged before the call (etcd's
    /// linearizable reads): the leader confirms its leadership and this member applies up to the
    /// leader's commit point.
    pub async fn linearize(&self) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = match self.inner.raft.ensure_linearizable().await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => f.leader_id,
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => None,
                Err(RaftError::Fatal(_)) => return Err(NodeError::Stopped),
            };
            if let Some(leader) = leader
                && let Ok(PeerResponse::ReadIndex(Ok(index))) = self
                    .inner
                    .peers
                    .call(leader, &PeerRequest::ReadIndex, FORWARD_TIMEOUT)
                    .await
            {
                let mut applied = self.inner.machine.applied_index();
                return tokio::time::timeout_at(deadline, applied.wait_for(|a| *a >= index))
                    .await
                    .map_err(|_| NodeError::Timeout)?
                    .map(|_| ())
                    .map_err(|_| NodeError::Stopped);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if leader.is_some() {
                    NodeError::Timeout
                } else {
                    NodeError::NoLeader
                });
            }
            self.wait_for_leader(deadline).await;
        }
    }

    /// A lease keep-alive, answered by the leader (the primary lessor).
    pub async fn keep_alive(&self, id: i64) -> Result<i64, NodeError> {
        match self.inner.machine.write().renew(id, now_ms()) {
            Err(StoreError::NotPrimary) => {}
            other => return other.map_err(Into::into),
        }
        match self.call_leader(PeerRequest::KeepAlive(id)).await? {
            PeerResponse::KeepAlive(result) => result.map_err(forward_error),
            _ => Err(NodeError::Internal("unexpected peer response".into())),
        }
    }

    /// LeaseTimeToLive, answered by the leader.
    pub async fn time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLive, NodeError> {
        match self.inner.machine.read().time_to_live(id, keys, now_ms()) {
            Err(StoreError::NotPrimary) => {}
            other => return other.map_err(Into::into),
        }
        match self
            .call_leader(PeerRequest::TimeToLive { id, keys })
            .await?
        {
            PeerResponse::TimeToLive(result) => result.map_err(forward_error),
            _ => Err(NodeError::Internal("unexpected peer response".into())),
        }
    }

    async fn call_leader(&self, request: PeerRequest) -> Result<PeerResponse, NodeError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.known_leader() {
                Some(leader) if leader != self.inner.id => {
                    return self
                        .inner
                        .peers
                        .call(leader, &request, FORWARD_TIMEOUT)
                        .await
                        .map_err(|_| NodeError::Timeout);
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::NoLeader);
            }
            self.wait_for_leader(deadline).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Promotes/demotes the lease clock as leadership comes and goes. It follows the server
    /// metrics, which change with the state and the leader only (the full metrics change several
    /// times per write).
    async fn leadership_loop(self, shutdown: CancellationToken) {
        let mut metrics = self.inner.raft.server_metrics();
        loop {
            let leading = {
                let m = metrics.borrow_and_update();
                m.state == ServerState::Leader && m.current_leader == Some(self.inner.id)
            };
            {
                let mut store = self.inner.machine.write();
                if leading && !store.is_primary() {
                    // Like etcd's Promote: every lease gets its full TTL again plus an election
                    // timeout, so no lease expires because leadership moved.
                    store.promote(now_ms(), 2000);
                    tracing::info!("store member became leader; leases promoted");
                } else if !leading && store.is_primary() {
                    store.demote();
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    }

    /// On the leader, compacts history as configured (etcd's auto-compaction).
    async fn compaction_loop(self, mode: AutoCompaction, shutdown: CancellationToken) {
        let Some(interval) = mode.interval() else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut samples = Samples::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (leading, revision, compacted) = {
                let store = self.inner.machine.read();
                (
                    store.is_primary(),
                    store.revision(),
                    store.compact_revision(),
                )
            };
            let target = match mode {
                AutoCompaction::Off => None,
                AutoCompaction::Revisions(keep) => revision_target(revision, keep),
                AutoCompaction::Period(retention) => {
                    samples.record(tokio::time::Instant::now(), revision, retention)
                }
            };
            let Some(target) = target.filter(|t| leading && *t > compacted) else {
                continue;
            };
            let cmd = Command::Compact(CompactRequest {
                revision: target,
                physical: true,
            });
            match self.propose(Proposal::One(cmd)).await {
                Ok(_) => tracing::info!(revision = target, "auto-compacted the store"),
                Err(error) => tracing::warn!(revision = target, %error, "auto-compaction failed"),
            }
        }
    }

    /// On the leader, revokes expired leases (each revoke deletes the lease's keys).
    async fn lease_loop(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(LEASE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let expired = {
                let mut store = self.inner.machine.write();
                if !store.is_primary() {
                    continue;
                }
                store.expired(now_ms(), REVOKE_BATCH)
            };
            for id in expired {
                let node = self.clone();
                tokio::spawn(async move {
                    match node
                        .propose(Proposal::One(Command::LeaseRevoke(LeaseRevokeRequest {
                            id,
                        })))
                        .await
                    {
                        Ok(_) => tracing::debug!(lease = id, "revoked an expired lease"),
                        Err(error) => {
                            tracing::warn!(lease = id, %error, "failed to revoke an expired lease")
                        }
                    }
                });
            }
        }
    }
}

/// The quota cost of a write (etcd's: the bytes a put or a txn's puts add, one per lease grant);
/// writes that cost nothing (deletes, revokes, compactions) pass a full quota or disk.
fn write_cost(cmd: &Command) -> u64 {
    match cmd {
        Command::Put(req) => Store::put_cost(req),
        Command::Txn(req) => Store::txn_cost(req),
        Command::LeaseGrant(_) => 1,
        _ => 0,
    }
}

/// How a forwarded write's failure on the leader travels back: leadership trouble makes the
/// follower look for the leader again and retry.
fn forwarded_error(e: NodeError) -> ForwardError {
    match e {
        NodeError::Store(e) => ForwardError::Store(e),
        NodeError::NoLeader | NodeError::Stopped => ForwardError::NotLeader,
        NodeError::Timeout => ForwardError::Other("request timed out".into()),
        NodeError::Internal(e) => ForwardError::Other(e),
    }
}

fn forward_error(e: ForwardError) -> NodeError {
    match e {
        ForwardError::NotLeader => NodeError::NoLeader,
        ForwardError::Store(e) => NodeError::Store(e),
        ForwardError::Other(e) => NodeError::Internal(e),
    }
}

impl PeerHandler for Node {
    fn handle(&self, request: PeerRequest) -> BoxFuture<PeerResponse, Infallible> {
        let node = self.clone();
        Box::pin(async move {
            let raft = &node.inner.raft;
            Ok(match request {
                PeerRequest::Append(rpc) => PeerResponse::Append(raft.append_entries(rpc).await),
                PeerRequest::Vote(rpc) => PeerResponse::Vote(raft.vote(rpc).await),
                PeerRequest::Snapshot(rpc) => {
                    PeerResponse::Snapshot(raft.install_snapshot(rpc).await)
                }
                PeerRequest::Forward(proposal) => {
                    PeerResponse::Forward(node.accept_forwarded(proposal).await)
                }
                PeerRequest::ReadIndex => {
                    PeerResponse::ReadIndex(match raft.ensure_linearizable().await {
                        Ok(log_id) => Ok(log_id.map_or(0, |l| l.index)),
                        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                            Err(ForwardError::NotLeader)
                        }
                        Err(e) => Err(ForwardError::Other(e.to_string())),
                    })
                }
                PeerRequest::KeepAlive(id) => {
                    PeerResponse::KeepAlive(match node.inner.machine.write().renew(id, now_ms()) {
                        Err(StoreError::NotPrimary) => Err(ForwardError::NotLeader),
                        other => other.map_err(ForwardError::Store),
                    })
                }
                PeerRequest::TimeToLive { id, keys } => PeerResponse::TimeToLive(
                    match node.inner.machine.read().time_to_live(id, keys, now_ms()) {
                        Err(StoreError::NotPrimary) => Err(ForwardError::NotLeader),
                        other => other.map_err(ForwardError::Store),
                    },
                ),
            })
        })
    }
}
