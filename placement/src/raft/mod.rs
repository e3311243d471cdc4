//! Leader election among the `--initial-cluster` peers, as upstream v1.17+: a Raft group that
//! replicates nothing (no-op state machine, in-memory log and vote), used only to agree on one
//! leader. Built on openraft; the transport is our own (length-prefixed JSON over TCP, mTLS when
//! enabled), so all replicas must run this binary.
//!
//! - [`Election::bind`] resolves and binds the node's own Raft address.
//! - [`Election::run`] bootstraps the group with every peer as a voter, serves peers, and reports
//!   leadership on [`Election::leadership`]. It fails with [`RaftError::LostLeadership`] when a
//!   leader stops being one: upstream exits then, and so do we.

mod frame;
mod leadership;
mod network;
mod resolve;
mod store;
mod transport;
mod types;

use std::{collections::BTreeMap, fmt, io, net::SocketAddr, sync::Arc, time::Duration};

use openraft::{BasicNode, Raft, ServerState, error::InitializeError};
use rustls::pki_types::CertificateDer;
use tokio::{net::TcpListener, sync::watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::peers::{Peer, PeersError, raft_address};
use leadership::{Loss, Observation, Tracker, Verdict};
pub use types::{ELECTION_TIMEOUT_MAX, ELECTION_TIMEOUT_MIN, HEARTBEAT_INTERVAL, LEADER_LEASE};

/// openraft's cluster name (only shows in its own traces).
const CLUSTER_NAME: &str = "dapr-placement";

/// How often leadership is re-judged when openraft reports nothing new (a leader's silence from a
/// quorum grows with the clock, not with reports).
const LEADERSHIP_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// What [`Election::bind`] needs.
#[derive(Clone)]
pub struct RaftOptions {
    /// This node's id: its entry in `peers`.
    pub id: String,
    /// The whole `--initial-cluster`, this node included; the same list on every replica.
    pub peers: Vec<Peer>,
    /// mTLS for the transport (`--tls-enabled`); plain TCP when `None`.
    pub tls: Option<RaftTls>,
}

/// Gives the current server config (called per accepted connection).
pub type ServerConfigFn = Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>;
/// Gives the current client config (called per dial).
pub type ClientConfigFn = Arc<dyn Fn() -> Arc<rustls::ClientConfig> + Send + Sync>;
/// Judges a connected client's certificate chain (leaf first).
pub type AuthorizeFn = Arc<dyn Fn(&[CertificateDer<'static>]) -> bool + Send + Sync>;

/// mTLS for the Raft transport, built by the app from dapr-security. The config builders are
/// called per connection so a rotated certificate is picked up without a restart.
#[derive(Clone)]
pub struct RaftTls {
    /// Server config for each accepted peer; requires and verifies client certificates.
    pub server: ServerConfigFn,
    /// Client config for each dial; verifies the server is `spiffe://<td>/ns/<ns>/dapr-placement`.
    pub client: ClientConfigFn,
    /// Checks the client's certificate chain after the handshake (peer id); `false` closes it.
    pub authorize_client: AuthorizeFn,
}

impl fmt::Debug for RaftTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftTls").finish_non_exhaustive()
    }
}

/// Why the Raft node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error(transparent)]
    Peers(#[from] PeersError),
    #[error("failed to resolve raft address {address}: {source}")]
    Resolve {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to listen on raft address {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("invalid raft configuration: {0}")]
    Config(#[source] Box<openraft::ConfigError>),
    #[error("raft node failed: {0}")]
    Fatal(#[source] Box<openraft::error::Fatal<types::NodeId>>),
    /// This node was leader and is not any more (upstream exits 1 then).
    #[error("lost leadership")]
    LostLeadership,
}

/// A bound, not yet running Raft node.
pub struct Election {
    id: String,
    node_id: types::NodeId,
    members: BTreeMap<types::NodeId, BasicNode>,
    tls: Option<RaftTls>,
    config: Arc<openraft::Config>,
    listener: TcpListener,
    local_addr: SocketAddr,
    leader: watch::Sender<bool>,
}

impl fmt::Debug for Election {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Election")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Election {
    /// Checks the peer list, resolves the own address (Go `ResolveTCPAddr` semantics: IPv4
    /// preferred, `localhost` is 127.0.0.1, DNS retried for about two minutes) and binds it.
    pub async fn bind(opts: RaftOptions) -> Result<Election, RaftError> {
        let RaftOptions { id, peers, tls } = opts;
        let own = raft_address(&id, &peers)?;
        let config = types::config(CLUSTER_NAME).map_err(RaftError::Config)?;
        let address = resolve::resolve(&own.host, own.port)
            .await
            .map_err(|source| RaftError::Resolve {
                address: format!("{}:{}", own.host, own.port),
                source,
            })?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| RaftError::Bind { address, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| RaftError::Bind { address, source })?;
        let ids = types::node_ids(peers.iter().map(|p| p.id.as_str()));
        let members = peers
            .iter()
            .filter_map(|p| Some((*ids.get(p.id.as_str())?, BasicNode::new(&p.address))))
            .collect();
        // raft_address found our own entry, so it is numbered.
        let node_id = ids.get(id.as_str()).copied().unwrap_or_default();
        let (leader, _) = watch::channel(false);
        Ok(Election {
            node_id,
            members,
            id,
            tls,
            config: Arc::new(config),
            listener,
            local_addr,
            leader,
        })
    }

    /// The bound Raft address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `true` while this node is the leader.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Runs the node until `shutdown` (then `Ok`, even if it was leader) or until it loses
    /// leadership it had ([`RaftError::LostLeadership`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RaftError> {
        let Self {
            id,
            node_id,
            members,
            tls,
            config,
            listener,
            local_addr: _,
            leader,
        } = self;
        tracing::info!("Node id={id} is waiting for leadership");
        let raft = Raft::new(
            node_id,
            config,
            network::Network::new(tls.clone()),
            store::LogStore::default(),
            store::StateMachine::default(),
        )
        .await
        .map_err(|e| RaftError::Fatal(Box::new(e)))?;

        // If this future is dropped rather than cancelled, the guards still stop the transport
        // and the Raft core.
        let serving = shutdown.child_token();
        let _stop_serving = serving.clone().drop_guard();
        let mut stop_core = StopOnDrop(Some(raft.clone()));
        let server = tokio::spawn(
            transport::serve(listener, raft.clone(), tls, serving.clone())
                .instrument(tracing::info_span!("placement.raft.transport")),
        );
        if members.len() > 1 {
            // openraft 0.9 can repeat a tied election round after round; stand again after a
            // random delay instead (stops with the transport).
            tokio::spawn(dapr_raft_log::split_vote::restand_after_split_votes(
                raft.clone(),
                serving.clone(),
            ));
        }

        // Biased: when peers stop together with us, our own shutdown wins over the lost quorum.
        let result = tokio::select! {
            biased;
            () = shutdown.cancelled() => Ok(()),
            result = async {
                bootstrap(&raft, members).await?;
                follow(&raft, node_id, &id, &leader).await
            } => result,
        };

        leader.send_replace(false);
        serving.cancel();
        if let Err(error) = server.await {
            tracing::warn!(%error, "raft transport task failed");
        }
        stop_core.0 = None;
        if let Err(error) = raft.shutdown().await {
            tracing::warn!(%error, "raft node did not shut down cleanly");
        }
        result
    }
}

/// Shuts the Raft core down (in the background) if `run` is dropped midway.
struct StopOnDrop(Option<Raft<types::TypeConfig>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let (Some(raft), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

/// Bootstraps the group with every peer as a voter, as upstream does on every start. Every node
/// writes the same first log entry, so it is harmless when a peer's leader got here first.
async fn bootstrap(
    raft: &Raft<types::TypeConfig>,
    members: BTreeMap<types::NodeId, BasicNode>,
) -> Result<(), RaftError> {
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::debug!(%e, "raft group already initialized");
            Ok(())
        }
        // Our own id is in the members: raft_address checked it.
        Err(openraft::error::RaftError::APIError(InitializeError::NotInMembers(e))) => {
            tracing::warn!(%e, "raft bootstrap skipped");
            Ok(())
        }
        Err(openraft::error::RaftError::Fatal(e)) => Err(RaftError::Fatal(Box::new(e))),
    }
}

/// Publishes leadership until it is lost.
async fn follow(
    raft: &Raft<types::TypeConfig>,
    node_id: types::NodeId,
    id: &str,
    leader: &watch::Sender<bool>,
) -> Result<(), RaftError> {
    let mut metrics = raft.metrics();
    let mut tracker = Tracker::new(LEADER_LEASE);
    let mut check = tokio::time::interval(LEADERSHIP_CHECK_INTERVAL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = observe(&metrics.borrow_and_update(), node_id)?;
    loop {
        match tracker.observe(&last, tokio::time::Instant::now()) {
            Verdict::Waiting | Verdict::Leading => {}
            Verdict::Acquired => {
                tracing::info!("Node id={id} has acquired leadership");
                leader.send_replace(true);
            }
            Verdict::Lost(loss) => {
                match loss {
                    Loss::SteppedDown => tracing::error!("raft leader stepped down"),
                    Loss::NoQuorum { since } => tracing::error!(
                        ?since,
                        "raft leader has not heard from a quorum within the leader lease"
                    ),
                }
                leader.send_replace(false);
                return Err(RaftError::LostLeadership);
            }
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    // The core stopped without our shutdown: report why if it says.
                    let m = metrics.borrow();
                    return match &m.running_state {
                        Err(fatal) => Err(RaftError::Fatal(Box::new(fatal.clone()))),
                        Ok(()) => Err(RaftError::Fatal(Box::new(openraft::error::Fatal::Stopped))),
                    };
                }
                last = observe(&metrics.borrow_and_update(), node_id)?;
            }
            _ = check.tick() => {}
        }
    }
}

fn observe(
    m: &openraft::RaftMetrics<types::NodeId, BasicNode>,
    node_id: types::NodeId,
) -> Result<Observation, RaftError> {
    if let Err(fatal) = &m.running_state {
        return Err(RaftError::Fatal(Box::new(fatal.clone())));
    }
    Ok(Observation {
        leading: m.state == ServerState::Leader && m.current_leader == Some(node_id),
        since_quorum_ack: m.millis_since_quorum_ack.map(Duration::from_millis),
        reported_at: tokio::time::Instant::now(),
    })
}
