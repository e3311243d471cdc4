//! The client half of the Raft transport: one connection per openraft client, opened lazily,
//! dropped on any error and reopened by the next RPC.

use std::{io, time::Duration};

use openraft::{
    BasicNode, RaftNetwork, RaftNetworkFactory,
    error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    },
};
use rustls::pki_types::ServerName;
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_rustls::TlsConnector;

use super::{
    RaftTls,
    frame::{FrameError, Request, Response, read_frame, write_frame},
    transport::BoxedIo,
    types::{NodeId, TypeConfig},
};

/// Bounds TCP connect plus TLS handshake. The connect runs in its own task, so an RPC timing out
/// meanwhile (openraft's AppendEntries timeout is one heartbeat interval) does not waste it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds one [`Connection`] per target for openraft.
#[derive(Clone)]
pub struct Network {
    tls: Option<RaftTls>,
}

impl Network {
    pub fn new(tls: Option<RaftTls>) -> Self {
        Self { tls }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            target,
            address: node.addr.clone(),
            tls: self.tls.clone(),
            stream: None,
            connecting: None,
        }
    }
}

/// A lazily connected client to one peer.
pub struct Connection {
    target: NodeId,
    address: String,
    tls: Option<RaftTls>,
    /// An idle connection: taken out for an exchange and put back only after a full response,
    /// so an exchange cancelled midway never leaves a stale response on the stream.
    stream: Option<BoxedIo>,
    connecting: Option<JoinHandle<io::Result<BoxedIo>>>,
}

/// Why an exchange failed, before it is typed for the RPC at hand.
enum Failure {
    Connect(io::Error),
    Exchange(FrameError),
}

impl Failure {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, BasicNode, E> {
        match self {
            Failure::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Exchange(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl Connection {
    async fn connected(&mut self) -> Result<BoxedIo, Failure> {
        if let Some(stream) = self.stream.take() {
            return Ok(stream);
        }
        let handle = self
            .connecting
            .get_or_insert_with(|| tokio::spawn(connect(self.address.clone(), self.tls.clone())));
        let joined = handle.await;
        self.connecting = None;
        match joined {
            Ok(result) => result.map_err(Failure::Connect),
            Err(join) => Err(Failure::Connect(io::Error::other(join))),
        }
    }

    async fn exchange(&mut self, request: Request, ttl: Duration) -> Result<Response, Failure> {
        let deadline = tokio::time::Instant::now() + ttl;
        let timed_out = || {
            Failure::Exchange(FrameError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "raft rpc timed out",
            )))
        };
        let mut stream = tokio::time::timeout_at(deadline, self.connected())
            .await
            .map_err(|_| timed_out())??;
        let response = tokio::time::timeout_at(deadline, async {
            write_frame(&mut stream, &request).await?;
            read_frame::<_, Response>(&mut stream)
                .await?
                .ok_or(FrameError::Truncated)
        })
        .await
        .map_err(|_| timed_out())?
        .map_err(Failure::Exchange)?;
        self.stream = Some(stream);
        Ok(response)
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

fn unexpected<E: std::error::Error>(got: &Response) -> RPCError<NodeId, BasicNode, E> {
    let e = io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected raft response {got:?}"),
    );
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .exchange(Request::AppendEntries(rpc), option.hard_ttl())
            .await
            .map_err(Failure::into_rpc)?
        {
            Response::AppendEntries(result) => result.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .exchange(Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(Failure::into_rpc)?
        {
            Response::InstallSnapshot(result) => result.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .exchange(Request::Vote(rpc), option.hard_ttl())
            .await
            .map_err(Failure::into_rpc)?
        {
            Response::Vote(result) => result.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }
}

/// Opens a connection to `address` (`host:port` as in the peer list), wrapped in TLS when set.
async fn connect(address: String, tls: Option<RaftTls>) -> io::Result<BoxedIo> {
    let open = async {
        let tcp = TcpStream::connect(&address).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok(Box::new(tcp) as BoxedIo);
        };
        // The client config checks the server's SPIFFE id; the name only has to be well formed.
        let host = host_of(&address);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = TlsConnector::from((tls.client)())
            .connect(name, tcp)
            .await?;
        Ok(Box::new(stream) as BoxedIo)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "raft connect timed out"))?
}

/// The host of a `host:port` or `[v6]:port` address.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_server_name_is_the_peer_host() {
        assert_eq!(
            host_of("placement-1.placement:8201"),
            "placement-1.placement"
        );
        assert_eq!(host_of("127.0.0.1:8201"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8201"), "::1");
    }
}
