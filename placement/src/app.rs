//! Wiring: logging, the common servers, the gRPC listener and the Raft listener, under one runtime.

use std::process::ExitCode;

use dapr_kit::{Outcome, Runtime, servers};
use prometheus_client::registry::Registry;

use crate::{Options, peers};

/// Scope of placement's own log lines.
const SCOPE: &str = "dapr.placement";

impl Options {
    /// Runs placement until a signal or a fatal error.
    pub async fn run(self) -> ExitCode {
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
            ref metrics,
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
        let raft_address = peers::raft_address(&id, &cluster.peers)?;

        tracing::warn!(
            ?mode,
            tls_enabled,
            metadata_enabled,
            replication_factor,
            %keepalive_time,
            %keepalive_timeout,
            %disseminate_timeout,
            %disseminate_coalesce_window,
            trust_domain = %trust.trust_domain,
            "placement is a scaffold: raft leader election, actor table dissemination, mTLS (sentry identity), \
             gRPC keepalive settings, /placement/state and the placement metrics are not implemented; \
             ReportDaprStatus answers Unimplemented and the raft port accepts and drops connections"
        );
        tracing::info!("Placement service is starting...");

        let mut rt = Runtime::new();
        let registry = Registry::with_prefix("dapr_placement");
        // Quirk kept from upstream: metrics bind --listen-address, not --metrics-listen-address.
        servers::start_common(&mut rt, healthz, metrics, &listen_address, registry).await?;

        let raft = servers::bind("raft", &raft_address.host, raft_address.port).await?;
        let raft_gate = rt.readiness().gate("placement-raft-leadership");
        let token = rt.shutdown_token();
        let node_id = id.clone();
        // Placeholder for the Raft node: accepts and drops connections on this node's Raft port.
        rt.spawn_critical("placement.raft-placeholder", async move {
            tracing::info!("Raft placeholder listening on {}", raft.local_addr()?);
            raft_gate.set_ready();
            tracing::info!("Node id={node_id} is waiting for leadership");
            dapr_kit::net::accept_and_drop("raft", raft, token).await?;
            Ok(())
        });

        let grpc = servers::bind("gRPC", &listen_address, port).await?;
        let grpc_gate = rt.readiness().gate("placement-grpc-server");
        let token = rt.shutdown_token();
        rt.spawn_critical("placement.grpc", async move {
            let addr = grpc.local_addr()?;
            tracing::info!("Placement service started on port {}", addr.port());
            tracing::info!("Running Placement gRPC server on {addr}");
            grpc_gate.set_ready();
            dapr_kit::grpc::serve_plaintext(grpc, tonic::service::Routes::default(), token).await?;
            tracing::info!("Placement GRPC server stopped");
            Ok(())
        });
        Ok(rt)
    }
}
