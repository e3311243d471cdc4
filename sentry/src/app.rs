//! Wiring: logging, config, CA, the common servers and the CA's TLS gRPC listener, under one
//! runtime.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use dapr_kit::{Runtime, servers};
use dapr_proto::sentry::v1::ca_server::CaServer;
use prometheus_client::registry::Registry;
use tracing::Instrument as _;

use crate::ca::kube_store::{Keys, KubeStore};
use crate::ca::{self, FileStore, JwtStore};
use crate::config::{self, SentryConfig, ValidatorKind};
use crate::identity::{self, SENTRY_ID, ServingCert};
use crate::jwt::JwtFiles;
use crate::kube::{self, KubeClient, cache};
use crate::metrics::Metrics;
use crate::oidc::{self, Discovery, OidcServer, TlsFiles};
use crate::server::{CaService, CaState, serve_tls};
use crate::validator::Validators;
use crate::validator::jwks::{JwksOptions, JwksValidator};
use crate::validator::kubernetes::KubeValidator;
use crate::{Mode, Options};
use dapr_security::TrustDomain;

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
            jwt_issuer: jwt_issuer_flag,
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

        let kube = match mode {
            Mode::Kubernetes => {
                dapr_security::uid::check_container_uid().context("error creating security")?;
                Some(
                    KubeClient::from_env(kubeconfig_path.as_deref())
                        .context("failed to create the Kubernetes client")?,
                )
            }
            Mode::Standalone => None,
        };
        let sentry_config = load_config(mode, &config, &namespace, kube.as_ref()).await?;
        let sentry_id = format!("spiffe://{trust_domain}/ns/{namespace}/{SENTRY_ID}");
        let validators = validators(mode, &sentry_config, &sentry_id);

        let store = FileStore::new(
            &issuer_credentials,
            &issuer_ca_filename,
            &issuer_certificate_filename,
            &issuer_key_filename,
        );
        let jwt_store = JwtStore {
            files: JwtFiles::new(&issuer_credentials, &jwt_key_filename, &jwks_filename),
            enabled: jwt_enabled,
            key_id: jwt_key_id.clone(),
        };
        let loaded = match &kube {
            // Kubernetes mode: Secret + ConfigMap `dapr-trust-bundle`; the files are only
            // watched (spec §5.1).
            Some(client) => {
                let kube_store = KubeStore {
                    client: client.clone(),
                    namespace: namespace.clone(),
                    keys: Keys::from_paths(
                        &store.root,
                        &store.issuer_cert,
                        &store.issuer_key,
                        &jwt_store.files.key,
                        &jwt_store.files.jwks,
                    ),
                };
                kube_store
                    .load(
                        jwt_enabled,
                        jwt_key_id.as_deref(),
                        &trust_domain,
                        &sentry_id,
                        sentry_config.allowed_clock_skew,
                        SystemTime::now(),
                    )
                    .await
            }
            None => ca::load(
                &store,
                Some(&jwt_store),
                &trust_domain,
                &sentry_id,
                sentry_config.allowed_clock_skew,
                SystemTime::now(),
            ),
        }
        .context("error creating CA")?;
        let ca::Loaded {
            bundle,
            jwt,
            generated,
        } = loaded;
        let jwt_issuer = match jwt {
            Some(jwt) if jwt_enabled => {
                tracing::info!("JWT issuing enabled");
                let issuer = jwt
                    .into_issuer(
                        &jwt_signing_algorithm,
                        jwt_key_id.as_deref(),
                        jwt_issuer_flag.clone(),
                        sentry_config.allowed_clock_skew,
                        jwt_ttl.get(),
                    )
                    .context("error creating CA")?;
                Some(Arc::new(issuer))
            }
            _ => None,
        };

        let mut registry = Registry::with_prefix("dapr_sentry");
        let sentry_metrics = Metrics::register(&mut registry);
        sentry_metrics.set_issuer_expiry(bundle.issuer_not_after());
        if generated {
            sentry_metrics.issuer_changed();
        }

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

        let state = Arc::new(CaState {
            bundle: Arc::new(bundle),
            validators,
            config: sentry_config,
            namespace,
            // Standalone: the scheduler's DNS SANs use the trust domain as cluster domain.
            cluster_domain: trust_domain.clone(),
            metrics: sentry_metrics,
            jwt: jwt_issuer.clone(),
            jwks,
            kubernetes,
        });

        let provider_gate = rt.readiness().gate("security-provider");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (serving, renew_at) = ServingCert::issue(&state, &trust_domain, &provider)
            .context("error creating security")?;
        provider_gate.set_ready();
        let tls = identity::server_config(Arc::clone(&serving), Arc::clone(&provider))?;

        let token = rt.shutdown_token();
        {
            let state = Arc::clone(&state);
            let token = token.clone();
            let td = trust_domain.clone();
            rt.spawn_critical(
                "security-provider",
                async move {
                    let mut renew_at = renew_at;
                    loop {
                        tokio::select! {
                            () = token.cancelled() => return Ok(()),
                            () = tokio::time::sleep(identity::until(renew_at)) => {}
                        }
                        renew_at = serving
                            .renew(&state, &td, &provider)
                            .context("failed to renew sentry's certificate")?;
                        tracing::info!("Renewed sentry's own certificate");
                    }
                }
                .instrument(tracing::info_span!("sentry.identity")),
            );
        }

        match (&jwt_issuer, oidc_enabled) {
            (Some(issuer), true) => {
                tracing::info!("Starting OIDC HTTP server on port {oidc_server_listen_port}");
                let tls = match (oidc_server_tls_cert_file, oidc_server_tls_key_file) {
                    (Some(cert), Some(key)) => Some(TlsFiles {
                        cert: cert.into(),
                        key: key.into(),
                    }),
                    _ => None,
                };
                let (_, jwks_path) = oidc::routes(oidc_path_prefix.as_deref());
                if let Some(prefix) = oidc_path_prefix.as_deref().filter(|p| *p != "/") {
                    tracing::info!("Using path prefix {prefix:?} for OIDC HTTP endpoints");
                }
                let server = OidcServer {
                    listen_address: oidc_server_listen_address,
                    port: oidc_server_listen_port,
                    path_prefix: oidc_path_prefix,
                    discovery: Discovery {
                        issuer: jwt_issuer_flag,
                        jwks_uri: oidc_jwks_uri,
                        jwks_path,
                        signing_algorithm: issuer.algorithm().to_owned(),
                        tls: tls.is_some(),
                        allowed_hosts: oidc_allowed_hosts
                            .into_iter()
                            .filter(|h| !h.is_empty())
                            .collect(),
                    },
                    jwks_json: issuer.jwks().to_json(),
                    tls,
                };
                let gate = rt.readiness().gate("oidc-server");
                rt.spawn_critical(
                    "oidc-server",
                    server
                        .run(gate, token.clone())
                        .instrument(tracing::info_span!("sentry.oidc")),
                );
            }
            _ => tracing::info!("OIDC HTTP server is disabled"),
        }

        let grpc = servers::bind("gRPC", &listen_address, port)
            .await
            .with_context(|| format!("could not listen on port {port}"))?;
        let gate = rt.readiness().gate("sentry-server");
        let routes = tonic::service::Routes::new(CaServer::new(CaService(state)));
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
