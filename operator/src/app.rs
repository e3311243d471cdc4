//! Wiring: logging, the common servers, the Operator gRPC listener and the conversion webhook
//! listener, under one runtime.

use std::process::ExitCode;

use anyhow::Context as _;
use dapr_kit::{Outcome, Runtime, servers};
use prometheus_client::registry::Registry;

use crate::{OperatorEnv, Options, Watchdog, webhook};

/// Scope of the operator's own log lines.
const SCOPE: &str = "dapr.operator";

/// Scope upstream logs its option checks under.
const OPTIONS_SCOPE: &str = "dapr.operator.options";

/// The prefix of every error that stops a running operator, as upstream logs it.
const RUN_ERROR: &str = "error running operator";

/// Upstream's metrics server ignores `--metrics-listen-address` and listens on every interface.
const METRICS_HOST: &str = "";

impl Options {
    /// Runs the operator until a signal or a fatal error.
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
        let watchdog = match self.validate() {
            Ok(watchdog) => watchdog,
            Err(error) => {
                tracing::error!(fatal = true, scope = OPTIONS_SCOPE, "{error}");
                return ExitCode::FAILURE;
            }
        };
        match self.start(watchdog, OperatorEnv::from_process()).await {
            Ok(rt) => {
                let outcome = rt.run().await;
                if matches!(outcome, Outcome::Graceful) {
                    tracing::info!("operator shut down gracefully");
                }
                outcome.exit_code()
            }
            Err(error) => {
                tracing::error!(fatal = true, "{error:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn start(self, watchdog: Watchdog, env: OperatorEnv) -> anyhow::Result<Runtime> {
        tracing::info!(
            "Starting Dapr Operator -- version {} -- commit {}",
            dapr_kit::VERSION,
            option_env!("DAPR_RS_COMMIT").unwrap_or("unknown")
        );
        tracing::info!("Log level set to: {}", self.log.log_level);
        let namespace = self.control_plane_namespace(&env)?.to_owned();
        let Self {
            config,
            watch_interval,
            max_pod_restarts_per_minute,
            disable_leader_election,
            disable_service_reconciler,
            watch_namespace,
            enable_argo_rollout_service_reconciler,
            watchdog_can_patch_pod_labels,
            trust_anchors_file,
            port,
            listen_address,
            webhook_server_port,
            webhook_server_listen_address,
            cache_sync_period,
            ref healthz,
            ref metrics,
            log: _,
            kube,
            ref ignored_args,
        } = self;
        let OperatorEnv {
            namespace: _,
            enable_webhooks,
            skip_uid_gid_check,
            sentry_token_file,
            sentry_identity,
        } = env;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        if watchdog == Watchdog::Disabled {
            tracing::info!("Dapr Watchdog is not enabled");
        }
        let ignored_flags = [
            format!("--config={config}"),
            format!("--watch-interval={watch_interval}"),
            format!("--max-pod-restarts-per-minute={max_pod_restarts_per_minute}"),
            format!("--disable-leader-election={disable_leader_election}"),
            format!("--disable-service-reconciler={disable_service_reconciler}"),
            format!("--watch-namespace={watch_namespace}"),
            format!(
                "--enable-argo-rollout-service-reconciler={enable_argo_rollout_service_reconciler}"
            ),
            format!("--watchdog-can-patch-pod-labels={watchdog_can_patch_pod_labels}"),
            format!("--trust-anchors-file={trust_anchors_file}"),
            format!("--cache-sync-period={cache_sync_period}"),
            format!("--kubeconfig={}", kube.kubeconfig.unwrap_or_default()),
        ];
        let ignored_env = [
            format!("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK={skip_uid_gid_check}"),
            format!(
                "DAPR_SENTRY_TOKEN_FILE={}",
                sentry_token_file.unwrap_or_default()
            ),
            format!("SENTRY_LOCAL_IDENTITY={sentry_identity}"),
        ];
        tracing::warn!(
            %namespace,
            ?watchdog,
            ignored_flags = %ignored_flags.join(" "),
            ignored_env = %ignored_env.join(" "),
            "the operator is a scaffold: no kube client, Configuration loading, sentry identity, mTLS, \
             leader election, informer caches, Service reconciler, watchdog, CRD patching or conversion; \
             every Operator RPC answers Unimplemented and /convert answers 501; \
             /healthz does not wait for sentry or the kube API server"
        );
        tracing::info!(
            "--metrics-listen-address={} is ignored, as upstream: the metrics server listens on every interface",
            metrics.metrics_listen_address
        );

        let mut rt = Runtime::new();
        let registry = Registry::with_prefix("dapr_operator");
        servers::start_common(&mut rt, healthz, metrics, METRICS_HOST, registry)
            .await
            .context(RUN_ERROR)?;

        if enable_webhooks {
            let listener = servers::bind(
                "webhook",
                &webhook_server_listen_address,
                webhook_server_port,
            )
            .await
            .context(RUN_ERROR)?;
            let gate = rt.readiness().gate("operator-webhook");
            let token = rt.shutdown_token();
            rt.spawn_critical("operator-webhook", async move {
                tracing::info!(
                    "Conversion webhook server is listening on {}",
                    listener.local_addr()?
                );
                gate.set_ready();
                webhook::serve(listener, token).await?;
                Ok(())
            });
        } else {
            tracing::info!(
                "ENABLE_WEBHOOKS is false: the conversion webhook server is not started"
            );
            rt.readiness().gate("operator-webhook").set_ready();
        }

        let grpc = servers::bind("gRPC", &listen_address, port)
            .await
            .context(RUN_ERROR)?;
        let gate = rt.readiness().gate("operator-api-server");
        let token = rt.shutdown_token();
        rt.spawn_critical("operator-api-server", async move {
            tracing::info!("Starting API server");
            tracing::info!(
                "Starting gRPC server on {listen_address}:{}",
                grpc.local_addr()?.port()
            );
            gate.set_ready();
            tracing::info!("Dapr Operator started");
            dapr_kit::grpc::serve_plaintext(grpc, tonic::service::Routes::default(), token).await?;
            Ok(())
        });
        Ok(rt)
    }
}
