//! The real [`Generation`]: the CA source, the published CA generation, sentry's serving
//! certificate and the OIDC server's JWKS.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use tokio::sync::watch;

use super::{Generation, Reloaded};
use crate::identity::ServingCert;
use crate::material::CaSource;
use crate::metrics::Metrics;
use crate::oidc::{OidcTls, Published};
use crate::server::CurrentCa;

/// Everything a reload touches.
pub struct LiveCa {
    pub source: CaSource,
    pub current: CurrentCa,
    pub serving: Arc<ServingCert>,
    pub provider: Arc<CryptoProvider>,
    pub metrics: Metrics,
    /// The JWKS the OIDC server serves, when it runs.
    pub oidc_jwks: Option<watch::Sender<Published>>,
    /// The OIDC server's TLS certificate, when it serves TLS: read again on every reload, as
    /// upstream's restarted OIDC server would.
    pub oidc_tls: Option<Arc<OidcTls>>,
}

impl Generation for LiveCa {
    async fn renew(&mut self) -> anyhow::Result<SystemTime> {
        self.serving
            .renew(
                &self.current.get(),
                &self.source.trust_domain,
                &self.provider,
            )
            .context("failed to renew sentry's certificate")
    }

    async fn reload(&mut self) -> anyhow::Result<Reloaded> {
        let material = self.source.load().await?;
        if let Some(tls) = &self.oidc_tls {
            tls.reload()?;
        }
        material.record(&self.metrics);
        let state = Arc::new(
            self.current
                .get()
                .with_material(Arc::clone(&material.bundle), material.jwt.clone()),
        );
        // The serving certificate first: once a client gets a certificate from the new CA,
        // sentry's own TLS certificate already chains to it as well.
        let renew_at = self
            .serving
            .renew(&state, &self.source.trust_domain, &self.provider)
            .context("error creating security")?;
        // The JWKS before the issuer, so relying parties can verify the first new token.
        if let (Some(tx), Some(jwt)) = (&self.oidc_jwks, &material.jwt) {
            tx.send_replace(Published::of(jwt));
        }
        self.current.replace(state);
        Ok(Reloaded {
            generated: material.generated,
            renew_at,
        })
    }
}
