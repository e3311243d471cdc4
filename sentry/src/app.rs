//! Wiring: logging, config, CA, the common servers, the CA's TLS gRPC listener and the task
//! that renews sentry's certificate and reloads the CA material, under one runtime.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use dapr_kit::{Runtime, servers};
use dapr_proto::sentry::v1::ca_server::CaServer;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::ca::kube_store::{Keys, KubeStore};
use crate::ca::{FileStore, JwtStore};
use crate::cluster_domain;
use crate::config::{self, SentryConfig, ValidatorKind};
use crate::identity::{self, SENTRY_ID, ServingCert};
use crate::jwt::JwtFiles;
use crate::kube::{self, KubeClient, cache};
use crate::material::{CaSource, JwtSettings, Store};
use crate::metrics::Metrics;
use crate::oidc::{self, Discovery, OidcServer, OidcTls, Published, TlsFiles};
use crate::reload::{self, DirWatcher, LiveCa};
use crate::server::{CaService, CaState, CurrentCa, serve_tls};
use crate::validator::Validators;
use crate::validator::jwks::{JwksOptions, JwksValidator};
use crate::validator::kubernetes::KubeValidator;
use crate::{Mode, Options};
use dapr_security::TrustDomain;

/// Scope of sentry's own log lines.
const SCOPE: &str = "dapr.sentry";

/// The kubeconfig cannot be used. Upstream panics here (`utils.GetConfig`), so the process
/// exits 2 rather than 1. (The cause is in the message, not a `#[source]`, so `{:#}` does not
/// print it twice.)
#[derive(Debug, thiserror::Error)]
#[error("failed to create the Kubernetes client: {0}")]
struct UnusableKubeconfig(kube::KubeError);

/// Exit code of a Go panic, which upstream exits with on an unusable kubeconfig.
const PANIC_EXIT: u8 = 2;

impl Options {
    /// Runs sentry until a signal or a fatal error.
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
            Ok(rt) => rt.run().await.exit_code(),
            Err(error) => {
                tracing::error!(fatal = true, "{error:#}");
                if error.downcast_ref::<UnusableKubeconfig>().is_some() {
                    ExitCode::from(PANIC_EXIT)
                } else {
                    ExitCode::FAILURE
                }
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
        let kubeconfig_path = self.kubeconfig_path();
        let Self {
            config,
            issuer_credentials,
            issuer_ca_filename,
            issuer_certificate_filename,
            issuer_key_filename,
            trust_domain,
            port,
            listen_address,
            mode: _,
            kubeconfig: _,
            jwt_enabled,
            jwt_key_filename,
            jwks_filename,
            jwt_issuer,
            jwt_signing_algorithm,
            jwt_key_id,
            jwt_ttl,
            oidc_enabled,
            oidc_server_listen_port,
            oidc_server_listen_address,
            oidc_server_tls_enabled: _,
            oidc_server_tls_cert_file,
            oidc_server_tls_key_file,
            oidc_jwks_uri,
            oidc_path_prefix,
            oidc_allowed_hosts,
            ref healthz,
            ref metrics,
            log: _,
            ref ignored_args,
        } = self;
        if !ignored_args.is_empty() {
            tracing::warn!(args = ?ignored_args, "ignoring positional arguments");
        }
        // Unset → `default`; set but empty stays empty (and then fails to build SPIFFE ids).
        let namespace = std::env::var("NAMESPACE").unwrap_or_else(|_| "default".to_owned());

        // Upstream builds its client while loading the config, before anything else.
        let kube = match mode {
            Mode::Kubernetes => {
                Some(KubeClient::from_env(kubeconfig_path.as_deref()).map_err(UnusableKubeconfig)?)
            }
            Mode::Standalone => None,
        };
        let sentry_config = load_config(mode, &config, &namespace, kube.as_ref()).await?;
        let sentry_id = format!("spiffe://{trust_domain}/ns/{namespace}/{SENTRY_ID}");
        let validators = validators(mode, &sentry_config, &sentry_id);

        let files = FileStore::new(
            &issuer_credentials,
            &issuer_ca_filename,
            &issuer_certificate_filename,
            &issuer_key_filename,
        );
        let jwt_store = JwtStore {
            files: JwtFiles::new(&issuer_credentials, &jwt_key_filename, &jwks_filename),
            enabled: jwt_enabled,
            key_id: jwt_key_id,
        };
        let oidc_tls_files = match (oidc_server_tls_cert_file, oidc_server_tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            _ => None,
        };
        let watch_dirs = reload::watched_dirs(
            [
                files.issuer_cert.as_path(),
                files.issuer_key.as_path(),
                files.root.as_path(),
                jwt_store.files.key.as_path(),
                jwt_store.files.jwks.as_path(),
            ]
            .into_iter()
            .chain(
                oidc_tls_files
                    .iter()
                    .flat_map(|t| [t.cert.as_path(), t.key.as_path()]),
            ),
        );
        let store = match &kube {
            // Kubernetes mode: Secret + ConfigMap `dapr-trust-bundle`; the files are only
            // watched (spec §5.1).
            Some(client) => Store::Kube(KubeStore {
                client: client.clone(),
                namespace: namespace.clone(),
                keys: Keys::from_paths(
                    &files.root,
                    &files.issuer_cert,
                    &files.issuer_key,
                    &jwt_store.files.key,
                    &jwt_store.files.jwks,
                ),
            }),
            None => Store::Files(files),
        };
        let source = CaSource {
            store,
            jwt_store,
            jwt: JwtSettings {
                signing_algorithm: jwt_signing_algorithm,
                issuer: jwt_issuer.clone(),
                ttl: jwt_ttl.get(),
            },
            trust_domain: trust_domain.clone(),
            sentry_id: sentry_id.clone(),
            allowed_clock_skew: sentry_config.allowed_clock_skew,
        };
        let material = source.load().await?;
        // After anything generated was written: sentry does not react to its own writes.
        let watcher = DirWatcher::new(watch_dirs);

        let mut registry = Registry::with_prefix("dapr_sentry");
        let sentry_metrics = Metrics::register(&mut registry);
        material.record(&sentry_metrics);

        let mut rt = Runtime::new();
        let jwks = start_jwks(&mut rt, &sentry_config, &sentry_id).await?;
        let kubernetes = match kube {
            Some(client) => Some(start_kubernetes(
                &rt,
                client,
                &sentry_id,
                &namespace,
                &trust_domain,
            )?),
            None => None,
        };
        servers::start_common(
            &mut rt,
            healthz,
            metrics,
            &metrics.metrics_listen_address,
            registry,
        )
        .await?;

        let cluster_domain = match mode {
            Mode::Kubernetes => cluster_domain::detect(&trust_domain).await,
            // Standalone: the scheduler's DNS SANs use the trust domain as cluster domain.
            Mode::Standalone => trust_domain.clone(),
        };
        let state = Arc::new(CaState {
            bundle: Arc::clone(&material.bundle),
            validators,
            config: sentry_config,
            namespace,
            cluster_domain,
            metrics: sentry_metrics.clone(),
            jwt: material.jwt.clone(),
            jwks,
            kubernetes,
        });
        let current = CurrentCa::new(Arc::clone(&state));

        if mode == Mode::Kubernetes {
            dapr_security::uid::check_container_uid().context("error creating security")?;
        }
        let provider_gate = rt.readiness().gate("security-provider");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (serving, renew_at) = ServingCert::issue(&state, &trust_domain, &provider)
            .context("error creating security")?;
        provider_gate.set_ready();
        let tls = identity::server_config(Arc::clone(&serving), Arc::clone(&provider))?;

        let token = rt.shutdown_token();
        let (oidc_jwks, oidc_tls) = match (&material.jwt, oidc_enabled) {
            (Some(issuer), true) => {
                let (tx, rx) = watch::channel(Published::of(issuer));
                let server = OidcServer {
                    listen_address: oidc_server_listen_address,
                    port: oidc_server_listen_port,
                    path_prefix: oidc_path_prefix,
                    discovery: Discovery {
                        issuer: jwt_issuer,
                        jwks_uri: oidc_jwks_uri,
                        jwks_path: String::new(),
                        signing_algorithm: issuer.algorithm().to_owned(),
                        tls: oidc_tls_files.is_some(),
                        allowed_hosts: oidc_allowed_hosts
                            .into_iter()
                            .filter(|h| !h.is_empty())
                            .collect(),
                    },
                    published: rx,
                    tls: oidc_tls_files.map(OidcTls::new),
                };
                let tls = server.tls.clone();
                start_oidc(&mut rt, server);
                (Some(tx), tls)
            }
            _ => {
                tracing::info!("OIDC HTTP server is disabled");
                (None, None)
            }
        };

        tracing::info!(
            "Starting watch on filesystem directories: [{}]",
            watcher
                .dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let live = LiveCa {
            source,
            current: current.clone(),
            serving,
            provider,
            metrics: sentry_metrics.clone(),
            oidc_jwks,
            oidc_tls,
        };
        rt.spawn_critical(
            "sentry-ca",
            reload::run(watcher, live, renew_at, sentry_metrics, token.clone())
                .instrument(tracing::info_span!("sentry.ca")),
        );

        let grpc = servers::bind("gRPC", &listen_address, port)
            .await
            .with_context(|| format!("could not listen on port {port}"))?;
        let gate = rt.readiness().gate("sentry-server");
        let routes = tonic::service::Routes::new(CaServer::new(CaService(current)));
        rt.spawn_critical(
            "sentry-server",
            async move {
                tracing::info!("Running gRPC server on port {}", grpc.local_addr()?.port());
                gate.set_ready();
                serve_tls(grpc, Arc::new(tls), routes, token).await?;
                tracing::info!("Sentry shut down gracefully");
                Ok(())
            }
            .instrument(tracing::info_span!("sentry.server")),
        );
        Ok(rt)
    }
}

/// Starts the OIDC discovery server (spec §10).
fn start_oidc(rt: &mut Runtime, mut server: OidcServer) {
    tracing::info!("Starting OIDC HTTP server on port {}", server.port);
    let (_, jwks_path) = oidc::routes(server.path_prefix.as_deref());
    server.discovery.jwks_path = jwks_path;
    if let Some(prefix) = server.path_prefix.as_deref().filter(|p| *p != "/") {
        tracing::info!("Using path prefix {prefix:?} for OIDC HTTP endpoints");
    }
    let gate = rt.readiness().gate("oidc-server");
    let token = rt.shutdown_token();
    rt.spawn_critical(
        "oidc-server",
        server
            .run(gate, token)
            .instrument(tracing::info_span!("sentry.oidc")),
    );
}

async fn load_config(
    mode: Mode,
    name: &str,
    namespace: &str,
    kube: Option<&KubeClient>,
) -> anyhow::Result<SentryConfig> {
    let fail = |error: &dyn std::fmt::Display| {
        anyhow::anyhow!("loading default config. couldn't find config name {name:?}: {error}")
    };
    match (mode, kube) {
        (Mode::Kubernetes, Some(client)) => {
            let object = if name.is_empty() { "daprsystem" } else { name };
            match client
                .get(&kube::configuration_path(namespace, object))
                .await
            {
                // JSON is YAML: the file parser reads the API object as is.
                Ok(value) => config::parse(&value.to_string()).map_err(|e| fail(&e)),
                Err(error) if error.is_not_found() => Err(fail(&"config CRD not found")),
                Err(error) => Err(fail(&error)),
            }
        }
        _ => config::load_file(name).map_err(|e| fail(&e)),
    }
}

/// Starts the pod and configuration caches and the kubernetes validator; its readiness gate
/// `sentry-kubernetes-validator` opens once both caches have synced.
fn start_kubernetes(
    rt: &Runtime,
    client: KubeClient,
    sentry_id: &str,
    namespace: &str,
    trust_domain: &str,
) -> anyhow::Result<Arc<KubeValidator>> {
    let token = rt.shutdown_token();
    let gate = rt.readiness().gate("sentry-kubernetes-validator");
    let validator = Arc::new(KubeValidator {
        pods: cache::start(client.clone(), "/api/v1/pods", token.clone()),
        configurations: cache::start(
            client.clone(),
            "/apis/dapr.io/v1alpha1/configurations",
            token,
        ),
        client,
        sentry_id: sentry_id.to_owned(),
        sentry_namespace: namespace.to_owned(),
        sentry_trust_domain: TrustDomain::parse(trust_domain).context("invalid trust domain")?,
    });
    let waiting = Arc::clone(&validator);
    tokio::spawn(
        async move {
            if waiting.wait_synced().await {
                tracing::info!("Kubernetes validator caches synced");
                gate.set_ready();
            }
        }
        .instrument(tracing::info_span!("sentry.kubernetes")),
    );
    Ok(validator)
}

fn validators(mode: Mode, config: &SentryConfig, sentry_id: &str) -> Validators {
    let configured: Vec<ValidatorKind> = config.token_validators.iter().map(|(k, _)| *k).collect();
    let validators = match mode {
        Mode::Standalone => Validators::standalone(&configured),
        Mode::Kubernetes => Validators::kubernetes(&configured),
    };
    for kind in &validators.enabled {
        match kind {
            ValidatorKind::Insecure => tracing::info!("Adding validator 'insecure'"),
            other => tracing::info!(
                "Adding validator '{}' with Sentry ID: {sentry_id}",
                other.name()
            ),
        }
    }
    if let Some(kind) = validators.default {
        tracing::info!("Using validator '{}'", kind.name());
    }
    validators
}

/// Starts the jwks validator when configured: the first load happens now (fatal on error),
/// then the readiness gate `sentry-jwks-validator` opens.
async fn start_jwks(
    rt: &mut Runtime,
    config: &SentryConfig,
    sentry_id: &str,
) -> anyhow::Result<Option<Arc<JwksValidator>>> {
    let Some((_, options)) = config
        .token_validators
        .iter()
        .find(|(k, _)| *k == ValidatorKind::Jwks)
    else {
        return Ok(None);
    };
    let gate = rt.readiness().gate("sentry-jwks-validator");
    let options = JwksOptions::parse(options).context("error creating validator jwks")?;
    let validator = JwksValidator::start(options, sentry_id.to_owned(), rt.shutdown_token())
        .await
        .context("failed to init cache")?;
    gate.set_ready();
    Ok(Some(Arc::new(validator)))
}
