//! Wiring: logging, the common servers, the gRPC listener and the embedded etcd member's
//! listeners, under one runtime.

use std::process::ExitCode;

use anyhow::Context as _;
use dapr_kit::{Outcome, Runtime, servers};
use prometheus_client::registry::Registry;

use crate::{
    Options, Validated,
    etcd::{self, EmbedConfig},
};

/// Scope of the scheduler's own log lines.
const SCOPE: &str = "dapr.scheduler";

impl Options {
    /// Runs the scheduler until a signal or a fatal error.
    pub async fn run(self) -> ExitCode {
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
        let Self {
            port,
            ref healthz,
            listen_address,
            override_broadcast_host_port,
            tls_enabled,
            ref trust,
            mode: _,
            kubeconfig: _,
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
            ref etcd_client_endpoints,
            etcd_client_username: _,
            etcd_client_password: _,
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
        tracing::warn!(
            ?mode,
            %id,
            tls_enabled,
            trust_domain = %trust.trust_domain,
            override_broadcast_host_port = override_broadcast_host_port.as_deref().unwrap_or(""),
            workers = workers.get(),
            %etcd_data_dir,
            etcd_space_quota,
            %etcd_compaction_mode,
            %etcd_compaction_retention,
            etcd_snapshot_count,
            etcd_max_snapshots,
            etcd_max_wals,
            etcd_backend_batch_limit,
            etcd_max_txn_ops,
            etcd_defrag_threshold_mb = etcd_experimental_bootstrap_defrag_threshold_megabytes,
            etcd_initial_election_tick_advance,
            %etcd_metrics,
            "scheduler is a scaffold: the embedded etcd member, the external etcd client, the cron engine, \
             mTLS (sentry identity), the kubernetes namespace controller and the scheduler metrics are not \
             implemented; every Scheduler RPC answers Unimplemented and the etcd ports accept and drop connections"
        );

        let mut rt = Runtime::new();
        let registry = Registry::with_prefix("dapr_scheduler");
        // Quirk kept from upstream: metrics bind --listen-address, not --metrics-listen-address.
        servers::start_common(&mut rt, healthz, metrics, &listen_address, registry).await?;

        tracing::info!("Dapr Scheduler is starting...");
        tracing::info!("Starting Etcd provider");
        match embed {
            Some(config) => start_etcd_placeholder(&mut rt, config).await?,
            None => {
                tracing::info!(
                    endpoints = ?etcd_client_endpoints,
                    "Using external Etcd database, will not start embedded Etcd"
                );
                // As upstream: the external target is ready at once.
                rt.readiness().gate("scheduler-etcd-external").set_ready();
            }
        }

        let grpc = servers::bind("gRPC", &listen_address, port).await?;
        tracing::info!("Dapr Scheduler listening on: {listen_address}:{port}");
        let gate = rt.readiness().gate("scheduler-server");
        let token = rt.shutdown_token();
        rt.spawn_critical("scheduler.grpc", async move {
            tracing::info!("Running gRPC server on port {}", grpc.local_addr()?.port());
            gate.set_ready();
            dapr_kit::grpc::serve_plaintext(grpc, tonic::service::Routes::default(), token).await?;
            tracing::info!("Scheduler GRPC server stopped");
            Ok(())
        });
        Ok(rt)
    }
}

/// Binds the embedded member's client and peer ports and serves them with placeholders that
/// accept and drop connections, until etcd is implemented.
async fn start_etcd_placeholder(rt: &mut Runtime, config: EmbedConfig) -> anyhow::Result<()> {
    tracing::info!("Starting embedded Etcd");
    let gate = rt.readiness().gate("scheduler-etcd-embed");
    let EmbedConfig {
        peer,
        client,
        backend_batch_interval,
    } = config;
    tracing::debug!(?backend_batch_interval, "etcd backend batch interval");
    let client_listener = servers::bind("etcd client", &client.host, client.port).await?;
    let peer_listener = servers::bind("etcd peer", &peer.host, peer.port).await?;
    tracing::info!(
        client = %client_listener.local_addr()?,
        peer = %peer_listener.local_addr()?,
        "etcd placeholder listening; connections are accepted and dropped"
    );
    let token = rt.shutdown_token();
    rt.spawn_critical("scheduler.etcd-client-placeholder", async move {
        dapr_kit::net::accept_and_drop("etcd client", client_listener, token).await?;
        Ok(())
    });
    let token = rt.shutdown_token();
    rt.spawn_critical("scheduler.etcd-peer-placeholder", async move {
        dapr_kit::net::accept_and_drop("etcd peer", peer_listener, token).await?;
        Ok(())
    });
    // Upstream marks this target ready once the member started, before raft has a leader.
    gate.set_ready();
    Ok(())
}
