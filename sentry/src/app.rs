//! Wiring: logging, the common servers and the CA's gRPC listener, under one runtime.

use std::process::ExitCode;

use dapr_kit::{Runtime, servers};
use prometheus_client::registry::Registry;

use crate::Options;

/// Scope of sentry's own log lines.
const SCOPE: &str = "dapr.sentry";

impl Options {
    /// Runs sentry until a signal or a fatal error.
    pub async fn run(self) -> ExitCode {
        if let Err(error) = dapr_kit::logging::init(&self.log, SCOPE) {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
        match self.start().await {
            Ok(rt) => rt.run().await.exit_code(),
            Err(error) => {
                tracing::error!(fatal = true, "{error:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn start(self) -> anyhow::Result<Runtime> {
        tracing::info!(
            "Starting Dapr Sentry certificate authority -- version {} -- commit {}",
            dapr_kit::VERSION,
            option_env!("DAPR_RS_COMMIT").unwrap_or("unknown")
        );
        tracing::info!("Log level set to: {}", self.log.log_level);
        let mode = self.validate()?;
        let Self {
            config: _,
            issuer_credentials: _,
            issuer_ca_filename: _,
            issuer_certificate_filename: _,
            issuer_key_filename: _,
            trust_domain,
            port,
            listen_address,
            mode: _,
            kubeconfig: _,
            jwt_enabled: _,
            jwt_key_filename: _,
            jwks_filename: _,
            jwt_issuer: _,
            jwt_signing_algorithm: _,
            jwt_key_id: _,
            jwt_ttl: _,
            oidc_enabled: _,
            oidc_server_listen_port: _,
            oidc_server_listen_address: _,
            oidc_server_tls_enabled: _,
            oidc_server_tls_cert_file: _,
            oidc_server_tls_key_file: _,
            oidc_jwks_uri: _,
            oidc_path_prefix: _,
            oidc_allowed_hosts: _,
            ref healthz,
            ref metrics,
            log: _,
            ref ignored_args,
        } = self;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        tracing::warn!(
            ?mode,
            %trust_domain,
            "sentry is a scaffold: certificate signing, validators, JWT and OIDC are not implemented; every CA RPC answers Unimplemented"
        );

        let mut rt = Runtime::new();
        let registry = Registry::with_prefix("dapr_sentry");
        servers::start_common(
            &mut rt,
            healthz,
            metrics,
            &metrics.metrics_listen_address,
            registry,
        )
        .await?;

        let grpc = servers::bind("gRPC", &listen_address, port).await?;
        let gate = rt.readiness().gate("sentry-server");
        let token = rt.shutdown_token();
        rt.spawn_critical("sentry-server", async move {
            tracing::info!("Running gRPC server on {}", grpc.local_addr()?);
            gate.set_ready();
            dapr_kit::grpc::serve_plaintext(grpc, tonic::service::Routes::default(), token).await?;
            tracing::info!("Sentry shut down gracefully");
            Ok(())
        });
        Ok(rt)
    }
}
