//! The security provider every control-plane service runs (dapr/dapr `pkg/security` + kit
//! `crypto/spiffe`): it loads the trust anchors, fetches the first SVID from sentry and renews it
//! half-way through its validity, and hands out [`Security`] handles whose rustls configs always
//! use the current SVID and anchors.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::anchors::{self, AnchorsError, AnchorsSource, TrustAnchors};
use crate::csr::KeyKind;
use crate::identity_dir::IdentityDir;
use crate::request::{ProcessEnv, RequestTemplate};
use crate::sentry_client::{FetchError, SentryClient};
use crate::spiffe::{SpiffeError, SpiffeId, TrustDomain};
use crate::svid::{Svid, humantime_utc};
use crate::tls;
use crate::uid::{RootUserError, check_container_uid};

/// The renewal timer wakes at least this often (kit), so a late wake-up is caught early.
const MAX_TIMER_WAIT: Duration = Duration::from_secs(60);
/// Wait after a failed renewal.
const RENEW_RETRY: Duration = Duration::from_secs(10);

/// What a service tells the provider (§14.1).
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The SPIFFE path id to request, e.g. `dapr-placement`.
    pub app_id: String,
    /// `host:port` of sentry.
    pub sentry_address: String,
    /// Required when an identity is needed (mTLS on, or Kubernetes mode).
    pub anchors: Option<AnchorsSource>,
    pub control_plane_trust_domain: String,
    pub control_plane_namespace: String,
    pub mtls_enabled: bool,
    pub kubernetes_mode: bool,
    pub key: KeyKind,
    /// Scheduler's `--identity-directory-write`.
    pub write_identity_dir: Option<PathBuf>,
}

/// Why the provider could not be set up or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Kubernetes mode as root without the override (§3.2); callers wrap it as
    /// `error creating security: …`.
    #[error(transparent)]
    RootUser(#[from] RootUserError),
    #[error("control plane trust domain is required")]
    TrustDomainRequired,
    #[error("invalid control plane trust domain: {0}")]
    InvalidTrustDomain(#[source] SpiffeError),
    #[error("trust anchors are required")]
    AnchorsRequired,
    #[error("failed to parse sentry SPIFFE ID: {0}")]
    SentryId(#[source] SpiffeError),
    #[error(transparent)]
    Anchors(#[from] AnchorsError),
    #[error("failed to retrieve the initial identity: {0}")]
    InitialIdentity(#[source] FetchError),
}

impl ProviderOptions {
    /// Whether an SVID is fetched at all: with mTLS on, or always in Kubernetes mode.
    pub fn needs_identity(&self) -> bool {
        self.mtls_enabled || self.kubernetes_mode
    }

    /// The set-up checks of `security.New`.
    pub fn validate(&self) -> Result<(), ProviderError> {
        self.control_plane_trust_domain().map(|_| ())?;
        if self.needs_identity() && self.anchors_source().is_none() {
            return Err(ProviderError::AnchorsRequired);
        }
        Ok(())
    }

    fn control_plane_trust_domain(&self) -> Result<TrustDomain, ProviderError> {
        if self.control_plane_trust_domain.is_empty() {
            return Err(ProviderError::TrustDomainRequired);
        }
        TrustDomain::parse(&self.control_plane_trust_domain)
            .map_err(ProviderError::InvalidTrustDomain)
    }

    fn anchors_source(&self) -> Option<&AnchorsSource> {
        self.anchors.as_ref().filter(|source| match source {
            AnchorsSource::File(path) => !path.as_os_str().is_empty(),
            AnchorsSource::Pem(pem) => !pem.is_empty(),
        })
    }
}

struct Shared {
    anchors: watch::Sender<Arc<TrustAnchors>>,
    svid: watch::Sender<Option<Arc<Svid>>>,
    ready: watch::Sender<bool>,
    mtls: bool,
    control_plane_trust_domain: TrustDomain,
    control_plane_namespace: String,
}

/// What `run` does once started.
struct Plan {
    anchors: AnchorsSource,
    client: SentryClient,
    identity_dir: Option<IdentityDir>,
}

/// The long-running half: run it as a critical task.
pub struct Provider {
    shared: Arc<Shared>,
    plan: Option<Plan>,
}

/// A cheap, cloneable handle on the current identity and anchors.
#[derive(Clone)]
pub struct Security {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("mtls", &self.shared.mtls)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Runs the container UID check in Kubernetes mode, validates `options` and builds the
    /// provider and its handle; nothing runs yet.
    pub fn new(options: ProviderOptions) -> Result<(Self, Security), ProviderError> {
        if options.kubernetes_mode {
            check_container_uid()?;
        }
        options.validate()?;
        let td = options.control_plane_trust_domain()?;
        // Inline anchors are checked at set-up, as kit's static source does.
        if let Some(AnchorsSource::Pem(pem)) = options.anchors_source()
            && options.needs_identity()
        {
            TrustAnchors::from_pem(pem)?;
        }
        let sentry_id = SpiffeId::workload(&td, &options.control_plane_namespace, "dapr-sentry")
            .map_err(ProviderError::SentryId)?;
        let (anchors, _) = watch::channel(Arc::new(TrustAnchors::empty()));
        let shared = Arc::new(Shared {
            anchors,
            svid: watch::channel(None).0,
            ready: watch::channel(false).0,
            mtls: options.mtls_enabled,
            control_plane_trust_domain: td,
            control_plane_namespace: options.control_plane_namespace.clone(),
        });
        let plan = match options.anchors_source() {
            Some(source) if options.needs_identity() => {
                let env = Arc::new(ProcessEnv);
                let template = RequestTemplate::new(
                    env.as_ref(),
                    &options.app_id,
                    &options.control_plane_trust_domain,
                    &options.control_plane_namespace,
                    options.kubernetes_mode,
                );
                Some(Plan {
                    anchors: source.clone(),
                    client: SentryClient {
                        address: options.sentry_address.clone(),
                        sentry_id,
                        anchors: shared.anchors.subscribe(),
                        template,
                        key: options.key,
                        env,
                    },
                    identity_dir: options.write_identity_dir.clone().map(IdentityDir::new),
                })
            }
            _ => None,
        };
        let security = Security {
            shared: Arc::clone(&shared),
        };
        Ok((Self { shared, plan }, security))
    }

    /// [`Provider::run`], calling `on_ready` once the first SVID is in place (at once when no
    /// identity is needed) — how services flip their `security-provider` health target.
    pub async fn run_reporting_ready(
        self,
        cancel: CancellationToken,
        on_ready: impl FnOnce() + Send,
    ) -> Result<(), ProviderError> {
        let mut ready = self.shared.ready.subscribe();
        let report = async move {
            if ready.wait_for(|r| *r).await.is_ok() {
                on_ready();
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = self.run(cancel) => result,
            () = report => Ok(()),
        }
    }

    /// Loads and watches the anchors, fetches the first SVID and keeps renewing it until
    /// `cancel` fires. Errors: the initial fetch failed, or the anchors could not be (re)loaded.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ProviderError> {
        let Self { shared, plan } = self;
        let Some(Plan {
            anchors,
            client,
            identity_dir,
        }) = plan
        else {
            tracing::warn!("mTLS is disabled. Skipping certificate request and tls validation");
            shared.ready.send_replace(true);
            cancel.cancelled().await;
            return Ok(());
        };
        let result = tokio::select! {
            () = cancel.cancelled() => Ok(()),
            result = anchors::run(anchors, shared.anchors.clone(), cancel.clone()) => {
                result.map_err(ProviderError::from)
            }
            result = run_identity(&shared, || client.fetch(), identity_dir) => result,
        };
        // Draining: the health target turns not-ready as the provider stops.
        shared.ready.send_replace(false);
        result
    }
}

/// Fetches the first identity, then renews it at its renewal time until dropped.
async fn run_identity<F, Fut>(
    shared: &Shared,
    mut fetch: F,
    mut identity_dir: Option<IdentityDir>,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Svid, FetchError>>,
{
    tracing::info!("Fetching initial identity");
    let mut current = fetch_and_store(shared, &mut fetch, identity_dir.as_mut())
        .await
        .map_err(ProviderError::InitialIdentity)?;
    shared.ready.send_replace(true);
    tracing::info!("Security is initialized successfully");

    let (mut renew_at, text) = renewal_deadline(&current);
    tracing::info!(
        "Starting workload identity expiry watcher; {}, renewal at: {text}",
        current.expiry_text()
    );
    loop {
        let now = Instant::now();
        if now < renew_at {
            tokio::time::sleep(MAX_TIMER_WAIT.min(renew_at - now)).await;
            continue;
        }
        tracing::info!("Renewing workload identity; {}", current.expiry_text());
        match fetch_and_store(shared, &mut fetch, identity_dir.as_mut()).await {
            Ok(svid) => {
                current = svid;
                let (at, text) = renewal_deadline(&current);
                renew_at = at;
                tracing::info!(
                    "Successfully renewed workload identity; {}, renewal at: {text}",
                    current.expiry_text()
                );
            }
            Err(error) => {
                tracing::error!("Error renewing identity, trying again in 10 seconds: {error}");
                tokio::time::sleep(RENEW_RETRY).await;
            }
        }
    }
}

async fn fetch_and_store<F, Fut>(
    shared: &Shared,
    fetch: &mut F,
    identity_dir: Option<&mut IdentityDir>,
) -> Result<Arc<Svid>, FetchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Svid, FetchError>>,
{
    let svid = Arc::new(fetch().await?);
    if let Some(dir) = identity_dir {
        let anchors = Arc::clone(&shared.anchors.borrow());
        dir.write(&svid, anchors.pem())
            .map_err(FetchError::IdentityDir)?;
    }
    shared.svid.send_replace(Some(Arc::clone(&svid)));
    Ok(svid)
}

/// The renewal time as a timer deadline (wall-clock time converted once, at issuance) and as
/// text for the logs.
fn renewal_deadline(svid: &Svid) -> (Instant, String) {
    let now = SystemTime::now();
    let at = svid.renewal_time(now);
    let left = at.duration_since(now).unwrap_or(Duration::ZERO);
    (Instant::now() + left, humantime_utc(at))
}

impl Security {
    /// Resolves once the first SVID is in place (at once when no identity is needed).
    pub async fn ready(&self) {
        let mut rx = self.shared.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// The `security-provider` health target.
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// Whether the service should serve mTLS (`-tls-enabled`).
    pub fn mtls_enabled(&self) -> bool {
        self.shared.mtls
    }

    /// The current SVID's ID.
    pub fn id(&self) -> Option<SpiffeId> {
        self.shared.svid.borrow().as_ref().map(|s| s.id().clone())
    }

    /// The current SVID.
    pub fn svid(&self) -> Option<Arc<Svid>> {
        self.shared.svid.borrow().clone()
    }

    /// Changes on every fetched SVID (initial and renewals).
    pub fn svid_updates(&self) -> watch::Receiver<Option<Arc<Svid>>> {
        self.shared.svid.subscribe()
    }

    pub fn control_plane_trust_domain(&self) -> &TrustDomain {
        &self.shared.control_plane_trust_domain
    }

    pub fn control_plane_namespace(&self) -> &str {
        &self.shared.control_plane_namespace
    }

    /// `spiffe://<cp td>/ns/<cp ns>/<app>`, e.g. for `dapr-placement`.
    pub fn control_plane_id(&self, app: &str) -> Result<SpiffeId, SpiffeError> {
        SpiffeId::workload(
            &self.shared.control_plane_trust_domain,
            &self.shared.control_plane_namespace,
            app,
        )
    }

    /// Requires and verifies a client SVID of any trust domain; serves the current SVID; ALPN h2.
    pub fn server_config_mtls(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config_mtls(
            self.shared.anchors.subscribe(),
            self.shared.svid.subscribe(),
        )
    }

    /// Serves the current SVID without asking for a client certificate; no ALPN.
    pub fn server_config_no_client_auth(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config_no_client_auth(self.shared.svid.subscribe())
    }

    /// Presents the current SVID and requires the server to be exactly `expected`; ALPN h2.
    pub fn client_config(&self, expected: SpiffeId) -> Arc<rustls::ClientConfig> {
        tls::client_config_mtls(
            self.shared.anchors.subscribe(),
            self.shared.svid.subscribe(),
            expected,
        )
    }

    /// The current anchors; changes on every reload (the injector re-patches `caBundle`).
    pub fn trust_anchors(&self) -> watch::Receiver<Arc<TrustAnchors>> {
        self.shared.anchors.subscribe()
    }
}

#[cfg(test)]
mod tests;
