//! Wiring: logging, the common servers, the gRPC listener and the Raft listener, under one runtime.

use std::{process::ExitCode, sync::Arc};

use dapr_kit::{Outcome, Runtime, grpc::Keepalive, servers};
use dapr_security::{AnchorsSource, KeyKind, Provider, ProviderOptions, Security, net};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::{
    Mode, Options,
    dissemination::{
        core::Settings,
        shell::{self, Router},
    },
    grpc::PlacementService,
    metrics::Metrics,
    peers,
    raft::{Election, RaftOptions, RaftTls},
    state_json,
};

/// Scope of placement's own log lines.
const SCOPE: &str = "dapr.placement";

impl Options {
    /// Runs placement until a signal or a fatal error.
    pub async fn run(self) -> ExitCode {
        // Before anything slow: a signal during start-up must end in a graceful exit.
        if let Err(error) = dapr_kit::install_signal_handlers() {
            eprintln!("failed to install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
        // pflag prints these while parsing, before the logger exists.
        for notice in self.deprecation_notices() {
            eprintln!("{notice}");
        }
        if let Err(error) = dapr_kit::logging::init(&self.log, SCOPE) {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
        match self.start().await {
            Ok(rt) => {
                let outcome = rt.run().await;
                if matches!(outcome, Outcome::Graceful) {
                    tracing::info!("Placement service shut down gracefully");
                }
                outcome.exit_code()
            }
            Err(error) => {
                tracing::error!(fatal = true, "{error:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn start(self) -> anyhow::Result<Runtime> {
        // Upstream validates while parsing flags, before its start-up lines.
        self.validate()?;
        tracing::info!(
            "Starting Dapr Placement Service -- version {} -- commit {}",
            dapr_kit::VERSION,
            option_env!("DAPR_RS_COMMIT").unwrap_or("unknown")
        );
        tracing::info!("Log level set to: {}", self.log.log_level);
        let metadata_enabled = self.metadata_enabled_or_env();
        let mode = self.run_mode();
        let legacy = self.legacy_flags_given();
        let Self {
            id,
            initial_cluster,
            inmem_store_enabled: _,
            raft_logstore_path: _,
            port,
            listen_address,
            ref healthz,
            tls_enabled,
            metadata_enabled: _,
            replication_factor,
            keepalive_time,
            keepalive_timeout,
            disseminate_timeout,
            disseminate_coalesce_window,
            ref trust,
            mode: _,
            max_api_level: _,
            min_api_level: _,
            log: _,
            metrics: ref metrics_args,
            ref ignored_args,
        } = self;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        if !legacy.is_empty() {
            tracing::info!(flags = ?legacy, "ignoring flags that upstream accepts but does not use");
        }

        let cluster = peers::parse_initial_cluster(&initial_cluster);
        if !cluster.skipped.is_empty() {
            tracing::warn!(entries = ?cluster.skipped, "skipping --initial-cluster entries that are not id=host:port");
        }
        let namespace = std::env::var("NAMESPACE").unwrap_or_else(|_| "default".to_owned());
        let (provider, security) = Provider::new(ProviderOptions {
            app_id: PLACEMENT_ID.to_owned(),
            sentry_address: trust.sentry_address_or_default(&namespace),
            anchors: Some(AnchorsSource::File(
                trust.trust_anchors_file_or_default().into(),
            )),
            control_plane_trust_domain: trust.trust_domain.clone(),
            control_plane_namespace: namespace,
            mtls_enabled: tls_enabled,
            kubernetes_mode: mode == Mode::Kubernetes,
            key: KeyKind::Ed25519,
            write_identity_dir: None,
        })?;
        tracing::info!("Placement service is starting...");

        let mut rt = Runtime::new();
        let mut registry = Registry::with_prefix("dapr_placement");
        let metrics = Metrics::register(&mut registry);
        let router = Router::new(
            shell::Config {
                settings: Settings {
                    replication_factor,
                    timeout_text: disseminate_timeout.to_string(),
                    coalesce: !disseminate_coalesce_window.get().is_zero(),
                },
                timeout: disseminate_timeout.get(),
                coalesce_window: disseminate_coalesce_window.get(),
            },
            metrics.clone(),
        );
        let (leader_tx, leader) = watch::channel(false);

        let state_routes = if metadata_enabled {
            state_routes(router.clone(), leader.clone())
        } else {
            axum::Router::new()
        };
        // Quirk kept from upstream: metrics bind --listen-address, not --metrics-listen-address.
        servers::start_common_with(
            &mut rt,
            healthz,
            metrics_args,
            &listen_address,
            registry,
            state_routes,
        )
        .await?;

        let security_gate = rt.readiness().gate("security-provider");
        let token = rt.shutdown_token();
        rt.spawn_critical("placement.security", async move {
            provider
                .run_reporting_ready(token, move || security_gate.set_ready())
                .await?;
            Ok(())
        });

        // Raft and gRPC start once the SVID is there (immediately without mTLS).
        let raft_gate = rt.readiness().gate("placement-raft-leadership");
        let token = rt.shutdown_token();
        let raft_tls = tls_enabled.then(|| raft_tls(&security)).transpose()?;
        {
            let security = security.clone();
            let node_id = id.clone();
            let peers = cluster.peers.clone();
            rt.spawn_critical("placement.raft", async move {
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    () = security.ready() => {}
                }
                let election = Election::bind(RaftOptions {
                    id: node_id,
                    peers,
                    tls: raft_tls,
                })
                .await?;
                raft_gate.set_ready();
                let mut leadership = election.leadership();
                let forward = async {
                    loop {
                        let is_leader = *leadership.borrow_and_update();
                        metrics.set_leader(is_leader);
                        leader_tx.send_replace(is_leader);
                        if leadership.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                tokio::select! {
                    result = election.run(token) => result?,
                    () = forward => {}
                }
                Ok(())
            });
        }

        let grpc_gate = rt.readiness().gate("placement-grpc-server");
        let token = rt.shutdown_token();
        let cause = rt.shutdown_cause();
        let keepalive = Keepalive {
            interval: keepalive_time.get(),
            timeout: keepalive_timeout.get(),
        };
        let service = PlacementService::new(&id, leader, router.clone(), tls_enabled);
        rt.spawn_critical("placement.grpc", async move {
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = security.ready() => {}
            }
            let grpc = servers::bind("gRPC", &listen_address, port).await?;
            let addr = grpc.local_addr()?;
            tracing::info!("Placement service started on port {}", addr.port());
            tracing::info!("Running Placement gRPC server on {addr}");
            grpc_gate.set_ready();
            // Streams end with the shutdown cause before the server drains.
            let stopper = {
                let router = router.clone();
                let token = token.clone();
                async move {
                    token.cancelled().await;
                    router.shutdown(&tonic::Status::unknown(cause.text()));
                }
            };
            let routes = tonic::service::Routes::new(service);
            let serve = async {
                if tls_enabled {
                    let acceptor = TlsAcceptor::from(security.server_config_mtls());
                    let accepted = net::accept_loop(grpc, acceptor, token.clone());
                    dapr_kit::grpc::server_builder(Some(keepalive))
                        .add_routes(routes)
                        .serve_with_incoming_shutdown(net::incoming(accepted), token.cancelled())
                        .await
                } else {
                    dapr_kit::grpc::serve_plaintext_with(
                        grpc,
                        routes,
                        Some(keepalive),
                        token.clone(),
                    )
                    .await
                }
            };
            let (served, ()) = tokio::join!(serve, stopper);
            served?;
            tracing::info!("Placement GRPC server stopped");
            Ok(())
        });
        Ok(rt)
    }
}

/// The SPIFFE path id every placement replica has.
const PLACEMENT_ID: &str = "dapr-placement";

/// mTLS between Raft peers: both ends must be `spiffe://<td>/ns/<ns>/dapr-placement`.
fn raft_tls(security: &Security) -> anyhow::Result<RaftTls> {
    let peer_id = security.control_plane_id(PLACEMENT_ID)?;
    let server = security.clone();
    let client = security.clone();
    let expected = peer_id.clone();
    Ok(RaftTls {
        server: Arc::new(move || server.server_config_mtls()),
        client: Arc::new(move || client.client_config(expected.clone())),
        authorize_client: Arc::new(move |certs| {
            dapr_security::peer_spiffe_id(certs).is_ok_and(|id| id == peer_id)
        }),
    })
}

/// `GET /placement/state` (spec §11.2).
fn state_routes(router: Router, leadership: watch::Receiver<bool>) -> axum::Router {
    axum::Router::new().route(
        "/placement/state",
        axum::routing::any(move || {
            let router = router.clone();
            let leader = *leadership.borrow();
            async move {
                // Upstream's handler drops the not-leader error and encodes a nil table.
                let body = if leader {
                    state_json::render(&router.state().await)
                } else {
                    "null".to_owned()
                };
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    )
}
