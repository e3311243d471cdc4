//! Trust anchors: the CA bundle every SVID chain must lead to (one set for all trust domains),
//! given inline or as a file that is waited for, then watched and reloaded (kit
//! `crypto/spiffe/trustanchors/{static,file}`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, TrustAnchor};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pem::{self, Certificate, PemError};

/// How often a missing anchors file is looked for again (kit's `initFileWatchInterval`).
const WAIT_FOR_FILE: Duration = Duration::from_secs(1);

/// How often an existing anchors file is compared with what was loaded. Kit uses an fs watcher;
/// polling the contents catches the same changes (including ConfigMap symlink swaps) without an
/// inotify dependency.
const POLL_FILE: Duration = Duration::from_millis(500);

/// Where the trust anchors come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorsSource {
    /// A PEM file, waited for, then watched (`-trust-anchors-file`).
    File(PathBuf),
    /// Inline PEM.
    Pem(Vec<u8>),
}

/// Why trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AnchorsError {
    #[error("failed to read trust anchors file '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to decode trust anchors: {0}")]
    Decode(#[source] PemError),
    #[error("failed to decode trust anchors: {0}")]
    Anchor(String),
    /// A reload after a change failed; this ends the provider.
    #[error("failed to read trust anchors file: '{path}': {source}")]
    Reload {
        path: String,
        #[source]
        source: Box<AnchorsError>,
    },
}

/// A loaded bundle: the PEM as read (what the injector writes into `caBundle`) and the
/// certificates in it.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    pem: Vec<u8>,
    certificates: Vec<Certificate>,
    webpki: Vec<TrustAnchor<'static>>,
}

impl TrustAnchors {
    /// No anchors: nothing verifies (what the provider holds before the file shows up).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every leading `CERTIFICATE` block of `pem` is an anchor (kit `DecodePEMCertificates`).
    pub fn from_pem(input: &[u8]) -> Result<Self, AnchorsError> {
        let certificates = pem::decode_certificates(input).map_err(AnchorsError::Decode)?;
        let webpki = certificates
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(c.der()))
                    .map(|a| a.to_owned())
                    .map_err(|e| AnchorsError::Anchor(format!("{e:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pem: input.to_vec(),
            certificates,
            webpki,
        })
    }

    /// The PEM bundle as given.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// The anchor certificates.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// Whether there is no anchor at all.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    pub(crate) fn webpki_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.webpki
    }
}

fn read_file(path: &Path) -> Result<(Vec<u8>, TrustAnchors), AnchorsError> {
    let bytes = std::fs::read(path).map_err(|source| AnchorsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let anchors = TrustAnchors::from_pem(&bytes)?;
    Ok((bytes, anchors))
}

/// Keeps `tx` up to date from `source` until `cancel` fires. Inline PEM is published once; a
/// file is waited for (warning every second), loaded, then polled for changes. A failed reload
/// ends the watch with [`AnchorsError::Reload`].
pub(crate) async fn run(
    source: AnchorsSource,
    tx: watch::Sender<Arc<TrustAnchors>>,
    cancel: CancellationToken,
) -> Result<(), AnchorsError> {
    let path = match source {
        AnchorsSource::Pem(pem) => {
            tx.send_replace(Arc::new(TrustAnchors::from_pem(&pem)?));
            cancel.cancelled().await;
            return Ok(());
        }
        AnchorsSource::File(path) => path,
    };

    while !path.exists() {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(WAIT_FOR_FILE) => {}
        }
        if !path.exists() {
            tracing::warn!(
                "Trust anchors file '{}' not found, waiting...",
                path.display()
            );
        }
    }
    tracing::info!("Trust anchors file '{}' found", path.display());
    let (mut loaded, anchors) = read_file(&path)?;
    tx.send_replace(Arc::new(anchors));
    tracing::info!(
        "Watching trust anchors file '{}' for changes",
        path.display()
    );

    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(POLL_FILE) => {}
        }
        // An unreadable file counts as a change: the reload below reports why.
        if std::fs::read(&path).ok().as_deref() == Some(loaded.as_slice()) {
            continue;
        }
        tracing::info!("Trust anchors file changed, reloading trust anchors");
        let (bytes, anchors) = read_file(&path).map_err(|source| AnchorsError::Reload {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
        loaded = bytes;
        tx.send_replace(Arc::new(anchors));
    }
}

#[cfg(test)]
mod tests;
