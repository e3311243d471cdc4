//! The embedded etcd member's configuration, derived from the flags the way upstream's
//! `pkg/scheduler/server/internal/etcd/config.go` derives it (the parts the listeners need).
//!
//! Pure: no sockets. Errors carry upstream's messages; the caller prefixes them with
//! `failed to create etcd config: ` as upstream does.

use std::time::Duration;

use dapr_flags::GoDuration;

use crate::{Mode, go_url};

/// The flags the embedded member's configuration is built from.
#[derive(Clone, Copy, Debug)]
pub struct EmbedFlags<'a> {
    /// `--id`: the member name.
    pub id: &'a str,
    /// `--etcd-initial-cluster` entries (`id=URL`).
    pub initial_cluster: &'a [String],
    pub mode: Mode,
    /// `--etcd-client-listen-address`.
    pub client_listen_address: &'a str,
    /// `--etcd-client-port`.
    pub client_port: u64,
    /// `--etcd-backend-batch-interval`.
    pub backend_batch_interval: &'a str,
}

/// A `host:port` an etcd listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddress {
    pub host: String,
    pub port: u16,
}

/// The embedded member's listeners and timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedConfig {
    /// The peer (raft) listener: this member's URL from the initial cluster, re-hosted to
    /// 0.0.0.0 where upstream does so.
    pub peer: ListenAddress,
    /// The client (etcd v3 API) listener: `http://<client-listen-address>:<client-port>`.
    pub client: ListenAddress,
    pub backend_batch_interval: Duration,
    /// Every member as `(id, peer URL)`, as given in the initial cluster.
    pub members: Vec<(String, String)>,
}

/// Why the embedded member cannot be configured (fatal, exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EtcdConfigError {
    #[error(
        "invalid format for initial cluster. Make sure to include 'http://' or 'https://' in Scheduler URL: \
         incorrect format for initialPeerList: {0}. Should contain <id>=http://<ip>:<peer-port>"
    )]
    InitialClusterEntry(String),
    #[error(
        "invalid format for initial cluster. Make sure to include 'http://' or 'https://' in Scheduler URL: \
         unable to parse url from initialPeerList: {0}. Should contain <id>=http://<ip>:<peer-port>"
    )]
    InitialClusterUrl(String),
    #[error("scheduler ID: {0} is not found in initial cluster")]
    IdNotFound(String),
    #[error(
        "failed to parse backend batch interval. Please use a string representing time.Duration"
    )]
    BackendBatchInterval,
    #[error("invalid port {port:?} in listen-peer URL of {id}")]
    PeerPort { id: String, port: String },
    #[error("invalid etcd client port {0}")]
    ClientPort(u64),
}

/// Builds the embedded member's listener configuration, checking in upstream's order.
pub fn embed_config(flags: &EmbedFlags<'_>) -> Result<EmbedConfig, EtcdConfigError> {
    let urls = peer_urls(flags.initial_cluster)?;
    let members = urls
        .iter()
        .map(|(id, address, _)| (id.clone(), address.clone()))
        .collect();
    let own = urls
        .into_iter()
        .rev() // a later duplicate id wins, as in upstream's map
        .find(|(id, _, _)| id == flags.id)
        .map(|(_, _, url)| url)
        .ok_or_else(|| EtcdConfigError::IdNotFound(flags.id.to_owned()))?;
    let peer_host = match flags.mode {
        Mode::Kubernetes => "0.0.0.0".to_owned(),
        Mode::Standalone if is_ip_literal(&own.hostname) || own.hostname == "localhost" => {
            own.hostname.clone()
        }
        Mode::Standalone => "0.0.0.0".to_owned(),
    };
    let backend_batch_interval = flags
        .backend_batch_interval
        .parse::<GoDuration>()
        .map_err(|_| EtcdConfigError::BackendBatchInterval)?
        .get();
    let peer_port = own.port.parse().map_err(|_| EtcdConfigError::PeerPort {
        id: flags.id.to_owned(),
        port: own.port.clone(),
    })?;
    let client_port = u16::try_from(flags.client_port)
        .map_err(|_| EtcdConfigError::ClientPort(flags.client_port))?;
    Ok(EmbedConfig {
        peer: ListenAddress {
            host: peer_host,
            port: peer_port,
        },
        client: ListenAddress {
            host: flags.client_listen_address.to_owned(),
            port: client_port,
        },
        backend_batch_interval,
        members,
    })
}

/// Upstream's `peerURLs`: `id=URL` entries, split on the first `=`, as
/// `(id, address as given, parsed URL)`.
fn peer_urls(
    initial_cluster: &[String],
) -> Result<Vec<(String, String, go_url::Url)>, EtcdConfigError> {
    initial_cluster
        .iter()
        .map(|entry| {
            let (id, address) = entry
                .split_once('=')
                .ok_or_else(|| EtcdConfigError::InitialClusterEntry(go_list(initial_cluster)))?;
            let url = go_url::parse(address)
                .map_err(|_| EtcdConfigError::InitialClusterUrl(go_list(initial_cluster)))?;
            Ok((id.to_owned(), address.to_owned(), url))
        })
        .collect()
}

/// Go's `net.ParseIP(host) != nil`.
fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// Go's `%s` of a `[]string`: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags<'a>(id: &'a str, cluster: &'a [String]) -> EmbedFlags<'a> {
        EmbedFlags {
            id,
            initial_cluster: cluster,
            mode: Mode::Standalone,
            client_listen_address: "localhost",
            client_port: 2379,
            backend_batch_interval: "100ms",
        }
    }

    fn cluster(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn the_default_member_listens_on_localhost_2379_and_2380() {
        let c = cluster(&["dapr-scheduler-server-0=http://localhost:2380"]);
        let config = embed_config(&flags("dapr-scheduler-server-0", &c)).unwrap();
        assert_eq!(
            config,
            EmbedConfig {
                peer: ListenAddress {
                    host: "localhost".into(),
                    port: 2380
                },
                client: ListenAddress {
                    host: "localhost".into(),
                    port: 2379
                },
                backend_batch_interval: Duration::from_millis(100),
                members: vec![(
                    "dapr-scheduler-server-0".into(),
                    "http://localhost:2380".into()
                )],
            }
        );
    }

    #[test]
    fn each_member_of_a_cluster_binds_its_own_peer_url() {
        let c = cluster(&[
            "s0=http://127.0.0.1:40001",
            "s1=http://127.0.0.1:40002",
            "s2=https://127.0.0.1:40003",
        ]);
        assert_eq!(embed_config(&flags("s2", &c)).unwrap().peer.port, 40003);
    }

    #[test]
    fn dns_names_and_kubernetes_mode_listen_on_every_interface() {
        let c = cluster(&["s0=https://s0.dapr-scheduler-server.ns.svc.cluster.local:2380"]);
        assert_eq!(embed_config(&flags("s0", &c)).unwrap().peer.host, "0.0.0.0");
        let c = cluster(&["s0=http://127.0.0.1:2380"]);
        let k8s = EmbedFlags {
            mode: Mode::Kubernetes,
            ..flags("s0", &c)
        };
        assert_eq!(embed_config(&k8s).unwrap().peer.host, "0.0.0.0");
    }

    #[test]
    fn an_id_missing_from_the_cluster_gets_upstreams_message() {
        let c = cluster(&["s0=http://localhost:2380"]);
        assert_eq!(
            embed_config(&flags("s9", &c)).unwrap_err().to_string(),
            "scheduler ID: s9 is not found in initial cluster"
        );
    }

    #[test]
    fn entries_without_equals_or_with_bad_urls_get_upstreams_messages() {
        let c = cluster(&["s0=http://localhost:2380", "s1"]);
        assert_eq!(
            embed_config(&flags("s0", &c)).unwrap_err().to_string(),
            "invalid format for initial cluster. Make sure to include 'http://' or 'https://' in Scheduler URL: \
             incorrect format for initialPeerList: [s0=http://localhost:2380 s1]. Should contain <id>=http://<ip>:<peer-port>"
        );
        let c = cluster(&["s0=127.0.0.1:2380"]);
        assert_eq!(
            embed_config(&flags("s0", &c)).unwrap_err(),
            EtcdConfigError::InitialClusterUrl("[s0=127.0.0.1:2380]".into())
        );
    }

    #[test]
    fn a_bad_backend_batch_interval_is_reported_after_the_cluster_checks() {
        let c = cluster(&["s0=http://localhost:2380"]);
        let bad = EmbedFlags {
            backend_batch_interval: "100",
            ..flags("s0", &c)
        };
        assert_eq!(
            embed_config(&bad).unwrap_err().to_string(),
            "failed to parse backend batch interval. Please use a string representing time.Duration"
        );
        let both = EmbedFlags {
            backend_batch_interval: "x",
            ..flags("s9", &c)
        };
        assert_eq!(
            embed_config(&both).unwrap_err(),
            EtcdConfigError::IdNotFound("s9".into())
        );
    }

    #[test]
    fn ports_that_cannot_be_bound_are_typed_errors() {
        let c = cluster(&["s0=localhost:2380"]);
        assert!(matches!(
            embed_config(&flags("s0", &c)),
            Err(EtcdConfigError::PeerPort { .. })
        ));
        let c = cluster(&["s0=http://localhost:2380"]);
        let big = EmbedFlags {
            client_port: 70_000,
            ..flags("s0", &c)
        };
        assert_eq!(embed_config(&big), Err(EtcdConfigError::ClientPort(70_000)));
    }
}
