//! Wiring: logging, the common servers, the gRPC listener and the embedded etcd member's
//! listeners, under one runtime.

use std::process::ExitCode;

use anyhow::Context as _;
use dapr_kit::{CancellationToken, Outcome, Runtime, servers};
use prometheus_client::registry::Registry;

use dapr_etcd_store::node::PeerTls;
use dapr_security::{AnchorsSource, KeyKind, Provider, ProviderOptions};

use dapr_proto::scheduler::v1::scheduler_server::SchedulerServer;

use crate::{
    Mode, Options, Validated,
    api::SchedulerService,
    engine::store::{Etcd, Transport},
    etcd::{self},
    leadership::Leadership,
    metrics::Metrics,
};

/// Scope of the scheduler's own log lines.
const SCOPE: &str = "dapr.scheduler";

impl Options {
    /// Runs the scheduler until a signal or a fatal error.
    pub async fn run(self) -> ExitCode {
        // Before anything slow: a signal during start-up must end in a graceful exit.
        if let Err(error) = dapr_kit::install_signal_handlers() {
            eprintln!("failed to install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
        if let Err(error) = dapr_kit::logging::init(&self.log, SCOPE) {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
        match self.start().await {
            Ok(rt) => {
                let outcome = rt.run().await;
                if matches!(outcome, Outcome::Graceful) {
                    tracing::info!("Scheduler service shut down gracefully");
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
        let validated = self.validate()?;
        tracing::info!(
            "Starting Dapr Scheduler Service -- version {} -- commit {}",
            dapr_kit::VERSION,
            option_env!("DAPR_RS_COMMIT").unwrap_or("unknown")
        );
        tracing::info!("Log level set to: {}", self.log.log_level);
        // Upstream wraps every failure of its runners in this prefix.
        self.serve(validated)
            .await
            .context("Fatal error running scheduler")
    }

    async fn serve(self, validated: Validated) -> anyhow::Result<Runtime> {
        let Validated {
            mode,
            etcd_space_quota,
        } = validated;
        let unused = self.unused_flags_given();
        let embed_flags = etcd::EmbedFlags {
            id: &self.id,
            initial_cluster: self.etcd_initial_cluster(),
            mode,
            client_listen_address: &self.etcd_client_listen_address,
            client_port: self.etcd_client_port,
            backend_batch_interval: &self.etcd_backend_batch_interval,
        };
        // Upstream builds the embedded member's config (and fails on it) only in embed mode.
        let embed = if self.etcd_embed {
            Some(etcd::embed_config(&embed_flags).context("failed to create etcd config")?)
        } else {
            None
        };
        let workers = self.cron_workers()?;
        let identity_dir = self.identity_directory_write_or_default();
        let Self {
            port,
            ref healthz,
            listen_address,
            override_broadcast_host_port,
            tls_enabled,
            ref trust,
            mode: _,
            ref kubeconfig,
            id,
            etcd_embed: _,
            etcd_initial_cluster: _,
            etcd_data_dir,
            etcd_client_port: _,
            etcd_client_listen_address: _,
            etcd_space_quota: _,
            etcd_compaction_mode,
            etcd_compaction_retention,
            etcd_snapshot_count,
            etcd_max_snapshots,
            etcd_max_wals,
            etcd_backend_batch_limit,
            etcd_backend_batch_interval: _,
            etcd_max_txn_ops,
            etcd_experimental_bootstrap_defrag_threshold_megabytes,
            etcd_initial_election_tick_advance,
            etcd_metrics,
            etcd_client_endpoints,
            etcd_client_username,
            etcd_client_password,
            identity_directory_write: _,
            workers: _,
            log: _,
            ref metrics,
            ref ignored_args,
        } = self;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        if !unused.is_empty() {
            tracing::info!(flags = ?unused, "ignoring flags that upstream accepts but does not use");
        }
        tracing::info!(
            ?mode,
            %id,
            workers = workers.get(),
            etcd_space_quota,
            %etcd_compaction_mode,
            %etcd_compaction_retention,
            etcd_max_snapshots,
            etcd_max_wals,
            etcd_backend_batch_limit,
            etcd_defrag_threshold_mb = etcd_experimental_bootstrap_defrag_threshold_megabytes,
            etcd_initial_election_tick_advance,
            %etcd_metrics,
            "etcd tuning flags accepted (the embedded store uses the quota, snapshot count and max txn ops)"
        );

        let namespace = std::env::var("NAMESPACE").unwrap_or_else(|_| "default".to_owned());
        let mtls = tls_enabled || mode == Mode::Kubernetes;
        let (provider, security) = Provider::new(ProviderOptions {
            app_id: SCHEDULER_ID.to_owned(),
            sentry_address: trust.sentry_address_or_default(&namespace),
            // Upstream uses the anchors file only when it was given explicitly.
            anchors: trust
                .trust_anchors_file
                .as_ref()
                .map(|f| AnchorsSource::File(f.into())),
            control_plane_trust_domain: trust.trust_domain.clone(),
            control_plane_namespace: namespace.clone(),
            mtls_enabled: tls_enabled,
            kubernetes_mode: mode == Mode::Kubernetes,
            key: KeyKind::Ed25519,
            write_identity_dir: mtls.then_some(identity_dir),
        })?;

        let mut rt = Runtime::new();
        // Kubernetes mode purges a deleted namespace's jobs (spec §12). A kubeconfig given by
        // flag wins over the in-cluster config, as upstream.
        let mut namespace_controller = match mode {
            Mode::Kubernetes => {
                let client = match kubeconfig.kubeconfig.as_deref() {
                    Some(path) => {
                        dapr_kube_lite::KubeClient::from_kubeconfig(std::path::Path::new(path))
                    }
                    None => dapr_kube_lite::KubeClient::from_env(None),
                }
                .context("unable to create the namespace controller")?;
                Some((client, rt.readiness().gate("scheduler-controller")))
            }
            Mode::Standalone => None,
        };
        let mut registry = Registry::default();
        let metrics_handles =
            Metrics::register(registry.sub_registry_with_prefix("dapr_scheduler"));
        // The embedded store's health, under etcd's own metric names (upstream re-exports them).
        let etcd_has_leader = prometheus_client::metrics::gauge::Gauge::<i64>::default();
        let etcd_db_size = prometheus_client::metrics::gauge::Gauge::<i64>::default();
        if self.etcd_embed {
            registry.register(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
                etcd_has_leader.clone(),
            );
            registry.register(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
                etcd_db_size.clone(),
            );
        }
        // Quirk kept from upstream: metrics bind --listen-address, not --metrics-listen-address.
        servers::start_common(&mut rt, healthz, metrics, &listen_address, registry).await?;
        let security_gate = rt.readiness().gate("security-provider");
        let token = rt.shutdown_token();
        rt.spawn_critical("scheduler.security", async move {
            provider
                .run_reporting_ready(token, move || security_gate.set_ready())
                .await?;
            Ok(())
        });
        let auto_compaction = dapr_etcd_store::compactor::AutoCompaction::from_flags(
            &etcd_compaction_mode,
            &etcd_compaction_retention,
            |s| s.parse::<dapr_flags::GoDuration>().ok().map(|d| d.get()),
        )
        .map_err(|e| anyhow::anyhow!("failed to create etcd config: {e}"))?;
        let embed_gate = embed
            .is_some()
            .then(|| rt.readiness().gate("scheduler-etcd-embed"));
        if embed.is_none() {
            // As upstream: the external target is ready at once.
            rt.readiness().gate("scheduler-etcd-external").set_ready();
        }
        let server_gate = rt.readiness().gate("scheduler-server");
        let token = rt.shutdown_token();
        // Everything below needs the SVID (or no mTLS) first, as upstream's server incarnation.
        rt.spawn_critical("scheduler.server", async move {
            // The embedded store outlives the engine at shutdown: the lease revocation and the
            // last trigger bookkeeping writes go to it after the shutdown signal.
            let store_token = CancellationToken::new();
            let _stop_store = store_token.clone().drop_guard();
            tokio::select! {
                () = security.ready() => {}
                () = token.cancelled() => return Ok(()),
            }
            tracing::info!("Dapr Scheduler is starting...");
            tracing::info!("Starting Etcd provider");
            let transport = match (embed, embed_gate) {
                (Some(config), Some(gate)) => {
                    tracing::info!("Starting embedded Etcd");
                    let peer_tls = if mtls {
                        let peer = security.control_plane_id(SCHEDULER_ID)?;
                        Some(PeerTls {
                            server: security.server_config_mtls(),
                            client: security.client_config(peer.clone()),
                            peer_id: Some(peer),
                        })
                    } else {
                        None
                    };
                    let (node, routes) = crate::embed::start(
                        &config,
                        crate::embed::EmbedSettings {
                            id: id.clone(),
                            initial_cluster: config.members.clone(),
                            mode,
                            namespace: namespace.clone(),
                            data_dir: etcd_data_dir.clone().into(),
                            space_quota: etcd_space_quota,
                            max_txn_ops: etcd_max_txn_ops,
                            snapshot_count: etcd_snapshot_count,
                            auto_compaction,
                            peer_tls,
                        },
                        store_token.clone(),
                    )
                    .await?;
                    {
                        let (node, token) = (node.clone(), token.clone());
                        tokio::spawn(async move {
                            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                            loop {
                                tokio::select! {
                                    () = token.cancelled() => return,
                                    _ = tick.tick() => {}
                                }
                                etcd_has_leader.set(i64::from(node.raft_status().0.is_some()));
                                let size = node.machine().read().status().db_size;
                                etcd_db_size.set(i64::try_from(size).unwrap_or(i64::MAX));
                            }
                        });
                    }
                    // Upstream marks this target ready once the member started, before raft has
                    // a leader. A full disk makes it unready until space returns: the store
                    // refuses new data then, where upstream's etcd exits.
                    let mut disk_full = node.disk_full();
                    let token = token.clone();
                    tokio::spawn(async move {
                        loop {
                            if *disk_full.borrow_and_update() {
                                gate.set_not_ready();
                            } else {
                                gate.set_ready();
                            }
                            tokio::select! {
                                () = token.cancelled() => return,
                                changed = disk_full.changed() => if changed.is_err() { return },
                            }
                        }
                    });
                    Transport::Local(routes)
                }
                _ => {
                    tracing::info!(
                        endpoints = ?etcd_client_endpoints,
                        "Using external Etcd database, will not start embedded Etcd"
                    );
                    let etcd_address = etcd_client_endpoints
                        .first()
                        .map(|e| e.trim_start_matches("http://").to_owned())
                        .unwrap_or_else(|| "127.0.0.1:2379".to_owned());
                    Transport::remote(
                        tonic::transport::Endpoint::from_shared(format!("http://{etcd_address}"))?
                            .tcp_nodelay(true)
                            .connect_lazy(),
                    )
                }
            };
            let credentials = (!etcd_client_username.is_empty())
                .then_some((etcd_client_username.as_str(), etcd_client_password.as_str()));
            // An external etcd may come up after us: keep trying to authenticate.
            let mut attempt = 0;
            let etcd = loop {
                match Etcd::connect(transport.clone(), credentials).await {
                    Ok(etcd) => break etcd,
                    Err(status) => {
                        tracing::warn!(error = %status.message(), "failed to authenticate with etcd; retrying");
                        tokio::select! {
                            () = token.cancelled() => return Ok(()),
                            () = tokio::time::sleep(crate::engine::store::backoff(attempt).min(std::time::Duration::from_secs(5))) => {}
                        }
                        attempt += 1;
                    }
                }
            };
            if matches!(etcd.transport(), Transport::Local(_)) {
                tokio::spawn(crate::defrag::run(
                    etcd.clone(),
                    crate::defrag::INTERVAL,
                    token.clone(),
                ));
            }
            if let Some((client, gate)) = namespace_controller.take() {
                tokio::spawn(crate::namespaces::run_reporting_synced(
                    client,
                    etcd.clone(),
                    token.clone(),
                    move || gate.set_ready(),
                ));
            }
            let (partition, partition_rx) = tokio::sync::watch::channel(None);
            tracing::info!(
                "Starting queue with workers id={id} count={}",
                workers.get()
            );
            eprintln!(
                "{{\"level\":\"info\",\"ts\":{:.3},\"logger\":\"diagrid-cron.engine\",\"msg\":\"Starting queue with workers\",\"id\":{},\"count\":{}}}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
                serde_json_string(&id),
                workers.get()
            );
            // A store that cannot take trigger bookkeeping (quota or disk full) makes the
            // replica unhealthy; upstream's scheduler fails and recreates itself there.
            let stuck_gate = server_gate.clone();
            let on_stuck: crate::engine::writer::OnStuck = std::sync::Arc::new(move |error: &str| {
                tracing::error!(%error, "Scheduler server failed: the store rejects trigger bookkeeping");
                stuck_gate.set_not_ready();
            });
            let engine = crate::engine::core::spawn(
                etcd.clone(),
                partition_rx.clone(),
                metrics_handles.clone(),
                on_stuck,
                token.clone(),
            );
            let leadership = Leadership {
                id: id.clone(),
                address: broadcast_address(
                    override_broadcast_host_port.as_deref(),
                    &listen_address,
                    port,
                ),
                etcd: etcd.clone(),
                partition,
                engine: Some(engine.clone()),
            };
            let engine_stopped = engine.clone();
            let service = SchedulerService::new(
                etcd,
                engine,
                metrics_handles,
                partition_rx,
                mtls,
                token.clone(),
            );
            let routes = tonic::service::Routes::new(
                SchedulerServer::new(service)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX),
            );

            let grpc = servers::bind("gRPC", &listen_address, port).await?;
            tracing::info!("Dapr Scheduler listening on: {listen_address}:{port}");
            tracing::info!("Running gRPC server on port {}", grpc.local_addr()?.port());
            server_gate.set_ready();
            let serve = async {
                if mtls {
                    dapr_security::net::serve_routes(
                        routes,
                        grpc,
                        security.server_config_mtls(),
                        token.clone(),
                    )
                    .await
                } else {
                    dapr_kit::grpc::serve_plaintext(grpc, routes, token.clone()).await
                }
            };
            let (served, ()) = tokio::join!(serve, leadership.run(token.clone()));
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(6),
                engine_stopped.stopped(),
            )
            .await;
            served?;
            tracing::info!("Scheduler GRPC server stopped");
            Ok(())
        });
        Ok(rt)
    }
}

/// The SPIFFE path id of every scheduler replica.
const SCHEDULER_ID: &str = "dapr-scheduler";

/// What WatchHosts returns for this replica (spec §3): the override, else the listen address
/// when it is a loopback one, else this host's IP.
fn broadcast_address(override_: Option<&str>, listen_address: &str, port: u16) -> String {
    if let Some(address) = override_.filter(|a| !a.is_empty()) {
        return address.to_owned();
    }
    if matches!(listen_address, "localhost" | "127.0.0.1" | "::1" | "[::1]") {
        return if listen_address.contains(':') {
            format!("[{listen_address}]:{port}")
        } else {
            format!("{listen_address}:{port}")
        };
    }
    let ip = std::env::var("DAPR_HOST_IP")
        .ok()
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect("192.0.2.1:80").ok()?;
            Some(socket.local_addr().ok()?.ip().to_string())
        })
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A string as a JSON string literal (for the zap-style engine line).
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
