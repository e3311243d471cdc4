//! Wiring: logging, the environment checks, the common servers and the webhook listener, under
//! one runtime.

use std::{collections::HashMap, process::ExitCode};

use anyhow::Context as _;
use dapr_kit::{Outcome, Runtime, servers};
use prometheus_client::registry::Registry;

use crate::{
    Options, StartupError,
    config::{ConfigWarning, InjectorConfig, cluster_domain},
    webhook,
};

/// Scope of the injector's own log lines.
const SCOPE: &str = "dapr.injector";

/// Scope upstream logs its configuration warnings under.
const SERVICE_SCOPE: &str = "dapr.injector.service";

/// Upstream's webhook server ignores `--listen-address` and listens on every interface.
const WEBHOOK_HOST: &str = "";

/// Upstream's metrics server ignores `--metrics-listen-address` and listens on every interface.
const METRICS_HOST: &str = "";

/// The prefix of every error that stops a running injector, as upstream logs it.
const RUN_ERROR: &str = "Error running injector";

impl Options {
    /// Runs the injector until a signal or a fatal error.
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
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        match self.start(&vars).await {
            Ok(rt) => {
                let outcome = rt.run().await;
                if matches!(outcome, Outcome::Graceful) {
                    tracing::info!("Dapr sidecar injector shut down gracefully");
                }
                outcome.exit_code()
            }
            Err(error) => {
                tracing::error!(fatal = true, "{error:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn start(self, vars: &HashMap<String, String>) -> anyhow::Result<Runtime> {
        tracing::info!(
            "Starting Dapr Sidecar Injector -- version {} -- commit {}",
            dapr_kit::VERSION,
            option_env!("DAPR_RS_COMMIT").unwrap_or("unknown")
        );
        tracing::info!("Log level set to: {}", self.log.log_level);

        let config = InjectorConfig::from_env(vars, || {
            std::fs::read(cluster_domain::RESOLV_CONF_PATH)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .map_err(StartupError::Config)?;
        for warning in &config.warnings {
            match warning {
                ConfigWarning::ClusterDomain { .. } => {
                    tracing::error!(scope = SERVICE_SCOPE, "{warning}")
                }
                ConfigWarning::Tolerations { .. } => {
                    tracing::warn!(scope = SERVICE_SCOPE, "{warning}")
                }
            }
        }
        config.check_identity()?;
        if let Some(deprecation) = config.prefix_names_deprecation() {
            tracing::warn!(scope = SERVICE_SCOPE, "{deprecation}");
        }
        tracing::debug!(?config, "configuration read from the environment");

        let kubeconfig = self.kubeconfig_path(std::env::var("HOME").ok().as_deref());
        let Self {
            port,
            listen_address,
            scheduler_enabled,
            kube: _,
            ref healthz,
            ref metrics,
            log: _,
            ref ignored_args,
        } = self;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        let ignored_flags = [
            format!("--kubeconfig={kubeconfig}"),
            format!("--scheduler-enabled={scheduler_enabled}"),
        ];
        tracing::warn!(
            namespace = %config.namespace,
            trust_domain = %config.control_plane_trust_domain,
            sentry_address = %config.sentry_address,
            ignored_flags = %ignored_flags.join(" "),
            "the sidecar injector is a scaffold: no kube client, service-account lookup or matcher, sentry identity, \
             TLS, caBundle patching or sidecar injection; /mutate answers 501 over plain HTTP; the environment is \
             read and checked but otherwise unused; /healthz does not wait for sentry or the kube API server"
        );
        tracing::info!(
            "--listen-address={listen_address} and --metrics-listen-address={} are ignored, as upstream: \
             the webhook and metrics servers listen on every interface",
            metrics.metrics_listen_address
        );

        let mut rt = Runtime::new();
        let registry = Registry::with_prefix("dapr_injector");
        servers::start_common(&mut rt, healthz, metrics, METRICS_HOST, registry)
            .await
            .context(RUN_ERROR)?;

        let listener = servers::bind("webhook", WEBHOOK_HOST, port)
            .await
            .context(RUN_ERROR)?;
        let gate = rt.readiness().gate("injector-service");
        let token = rt.shutdown_token();
        rt.spawn_critical("injector-service", async move {
            tracing::info!(
                "Sidecar injector is listening on {}, patching Dapr-enabled pods",
                listener.local_addr()?
            );
            gate.set_ready();
            webhook::serve(listener, token).await?;
            tracing::info!("Sidecar injector is shutting down");
            Ok(())
        });
        Ok(rt)
    }
}
