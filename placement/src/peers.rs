//! The Raft peer list (`--initial-cluster`) and this node's place in it.
//!
//! Pure: parsing and checking only. Upstream (`cmd/placement/options` and `pkg/placement/peers`)
//! skips entries that are not `id=address` without a word, then fails when the node's own id has
//! no entry, and hashicorp/raft rejects empty or duplicate ids and addresses when the cluster is
//! bootstrapped. The same checks happen here, in the same order, with the same messages.

use std::{collections::HashSet, fmt};

/// One `id=host:port` entry of `--initial-cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    pub address: String,
}

impl fmt::Display for Peer {
    /// Go's `%s` of upstream's `PeerInfo` struct: `{id address}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{} {}}}", self.id, self.address)
    }
}

/// The parsed `--initial-cluster`: the peers, and the entries skipped for not being `id=address`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialCluster {
    pub peers: Vec<Peer>,
    pub skipped: Vec<String>,
}

/// Where this node's Raft listener binds: the `host:port` of its own entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftAddress {
    /// Host as written (brackets of an IPv6 literal removed); empty means every interface.
    pub host: String,
    pub port: u16,
}

/// Why the peer list cannot start a Raft node (each is fatal, exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeersError {
    #[error("address for node {id} not found in raft peers {peers}")]
    NodeNotFound { id: String, peers: String },
    #[error("invalid raft address {address:?} for node {id}: {reason}")]
    InvalidAddress {
        id: String,
        address: String,
        reason: &'static str,
    },
    #[error("empty ID in configuration: {0}")]
    EmptyId(String),
    #[error("empty address in configuration: {0}")]
    EmptyAddress(String),
    #[error("found duplicate ID in configuration: {0}")]
    DuplicateId(String),
    #[error("found duplicate address in configuration: {0}")]
    DuplicateAddress(String),
}

/// Parses the `--initial-cluster` entries as upstream does: each entry is split on `=` into at most
/// three parts; anything but exactly two parts is skipped; id and address are trimmed.
pub fn parse_initial_cluster<S: AsRef<str>>(entries: &[S]) -> InitialCluster {
    let mut cluster = InitialCluster::default();
    for entry in entries {
        let entry = entry.as_ref();
        let parts: Vec<&str> = entry.splitn(3, '=').collect();
        match parts.as_slice() {
            [id, address] => cluster.peers.push(Peer {
                id: id.trim().to_owned(),
                address: address.trim().to_owned(),
            }),
            _ => cluster.skipped.push(entry.to_owned()),
        }
    }
    cluster
}

/// Picks this node's Raft bind address and checks the whole peer list, in upstream's order:
/// own entry present, own address a `host:port`, then raft's bootstrap configuration checks.
pub fn raft_address(id: &str, peers: &[Peer]) -> Result<RaftAddress, PeersError> {
    let own = peers
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| PeersError::NodeNotFound {
            id: id.to_owned(),
            peers: go_list(peers),
        })?;
    let address = split_host_port(&own.address).map_err(|reason| PeersError::InvalidAddress {
        id: own.id.clone(),
        address: own.address.clone(),
        reason,
    })?;
    check_configuration(peers)?;
    Ok(address)
}

/// hashicorp/raft `checkConfiguration` over an all-voter configuration.
fn check_configuration(peers: &[Peer]) -> Result<(), PeersError> {
    let mut ids = HashSet::new();
    let mut addresses = HashSet::new();
    for peer in peers {
        if peer.id.is_empty() {
            return Err(PeersError::EmptyId(go_configuration(peers)));
        }
        if peer.address.is_empty() {
            return Err(PeersError::EmptyAddress(go_server(peer)));
        }
        if !ids.insert(peer.id.as_str()) {
            return Err(PeersError::DuplicateId(peer.id.clone()));
        }
        if !addresses.insert(peer.address.as_str()) {
            return Err(PeersError::DuplicateAddress(peer.address.clone()));
        }
    }
    Ok(())
}

/// Go's `net.SplitHostPort` followed by a numeric port (service names are not looked up).
fn split_host_port(address: &str) -> Result<RaftAddress, &'static str> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("missing ']' in address")?;
        let port = after.strip_prefix(':').ok_or("missing port in address")?;
        (host, port)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or("missing port in address")?;
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, port)
    };
    let port = port.parse().map_err(|_| "invalid port")?;
    Ok(RaftAddress {
        host: host.to_owned(),
        port,
    })
}

/// Go's `%s` of a `[]PeerInfo`: `[{p1 127.0.0.1:8201} {p2 127.0.0.1:8202}]`.
fn go_list(peers: &[Peer]) -> String {
    let items: Vec<String> = peers.iter().map(Peer::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `raft.Server` voter.
fn go_server(peer: &Peer) -> String {
    format!("{{Voter {} {}}}", peer.id, peer.address)
}

/// Go's `%v` of a `raft.Configuration`.
fn go_configuration(peers: &[Peer]) -> String {
    let items: Vec<String> = peers.iter().map(go_server).collect();
    format!("{{[{}]}}", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, address: &str) -> Peer {
        Peer {
            id: id.into(),
            address: address.into(),
        }
    }

    #[test]
    fn entries_are_split_on_the_first_equals_sign_and_trimmed() {
        let cluster = parse_initial_cluster(&["p1=127.0.0.1:8201", " p2 = localhost:8202 "]);
        assert_eq!(
            cluster.peers,
            [peer("p1", "127.0.0.1:8201"), peer("p2", "localhost:8202")]
        );
        assert!(cluster.skipped.is_empty());
    }

    #[test]
    fn entries_that_are_not_id_equals_address_are_skipped_not_fatal() {
        let cluster = parse_initial_cluster(&["garbage", "a=b=c", "p1=127.0.0.1:8201", ""]);
        assert_eq!(cluster.peers, [peer("p1", "127.0.0.1:8201")]);
        assert_eq!(cluster.skipped, ["garbage", "a=b=c", ""]);
    }

    #[test]
    fn the_default_cluster_gives_the_default_node_its_raft_port() {
        let cluster = parse_initial_cluster(&["dapr-placement-0=127.0.0.1:8201"]);
        assert_eq!(
            raft_address("dapr-placement-0", &cluster.peers),
            Ok(RaftAddress {
                host: "127.0.0.1".into(),
                port: 8201
            })
        );
    }

    #[test]
    fn each_node_of_a_cluster_binds_its_own_entry() {
        let peers =
            parse_initial_cluster(&["p1=localhost:1", "p2=localhost:2", "p3=[::1]:3"]).peers;
        assert_eq!(raft_address("p2", &peers).unwrap().port, 2);
        assert_eq!(
            raft_address("p3", &peers),
            Ok(RaftAddress {
                host: "::1".into(),
                port: 3
            })
        );
    }

    #[test]
    fn a_node_missing_from_the_cluster_gets_upstreams_message() {
        let peers = parse_initial_cluster(&["p1=127.0.0.1:8201", "p2=127.0.0.1:8202"]).peers;
        assert_eq!(
            raft_address("p9", &peers).unwrap_err().to_string(),
            "address for node p9 not found in raft peers [{p1 127.0.0.1:8201} {p2 127.0.0.1:8202}]"
        );
        assert_eq!(
            raft_address("x", &[]).unwrap_err().to_string(),
            "address for node x not found in raft peers []"
        );
    }

    #[test]
    fn an_own_address_that_is_not_host_port_is_a_typed_error() {
        for (address, reason) in [
            ("127.0.0.1", "missing port in address"),
            ("::1:80", "too many colons in address"),
            ("[::1", "missing ']' in address"),
            ("host:http", "invalid port"),
            ("host:70000", "invalid port"),
        ] {
            let err = raft_address("a", &[peer("a", address)]).unwrap_err();
            assert_eq!(
                err,
                PeersError::InvalidAddress {
                    id: "a".into(),
                    address: address.into(),
                    reason
                }
            );
        }
    }

    #[test]
    fn an_empty_host_means_every_interface() {
        assert_eq!(raft_address("a", &[peer("a", ":8201")]).unwrap().host, "");
    }

    #[test]
    fn duplicate_or_empty_peers_fail_like_raft_bootstrap() {
        let dup_id = [peer("a", "h:1"), peer("a", "h:2")];
        assert_eq!(
            raft_address("a", &dup_id).unwrap_err().to_string(),
            "found duplicate ID in configuration: a"
        );
        let dup_address = [peer("a", "h:1"), peer("b", "h:1")];
        assert_eq!(
            raft_address("a", &dup_address).unwrap_err().to_string(),
            "found duplicate address in configuration: h:1"
        );
        let empty_id = [peer("a", "h:1"), peer("", "h:2")];
        assert_eq!(
            raft_address("a", &empty_id).unwrap_err().to_string(),
            "empty ID in configuration: {[{Voter a h:1} {Voter  h:2}]}"
        );
        let empty_address = [peer("a", "h:1"), peer("b", "")];
        assert_eq!(
            raft_address("a", &empty_address).unwrap_err().to_string(),
            "empty address in configuration: {Voter b }"
        );
    }
}
