//! The OIDC server's TLS certificate (spec §10): read from `-oidc-server-tls-cert-file` and
//! `-oidc-server-tls-key-file`, and read again when the CA material is reloaded (upstream
//! restarts the OIDC server on any change in the watched directories, which include these
//! files' directories).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// How often to look for TLS files that do not exist yet (upstream: 5 s).
const TLS_WAIT: Duration = Duration::from_secs(5);

/// The TLS certificate and key paths, when TLS is served.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    fn exist(&self) -> bool {
        self.cert.exists() && self.key.exists()
    }
}

/// The certificate served, swapped by [`OidcTls::reload`].
#[derive(Debug)]
pub struct OidcTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for OidcTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl OidcTls {
    /// Nothing loaded yet: the server loads the files once they exist.
    pub fn new(files: TlsFiles) -> Arc<Self> {
        Arc::new(Self {
            files,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            current: RwLock::new(None),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Checks at once, then every 5 s; false when shut down first.
    pub async fn wait_for_files(&self, shutdown: &CancellationToken) -> bool {
        loop {
            if self.files.exist() {
                return true;
            }
            tracing::warn!(
                "Waiting for TLS certificate and key files to be available: {}, {}",
                self.files.cert.display(),
                self.files.key.display()
            );
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(TLS_WAIT) => {}
            }
        }
    }

    /// Reads the files and serves them from the next handshake on. When they do not exist
    /// (yet), the current certificate stays: the server is still waiting for them, or keeps
    /// serving the last good pair. Unreadable or mismatched files are an error.
    pub fn reload(&self) -> anyhow::Result<()> {
        if !self.files.exist() {
            return Ok(());
        }
        let key =
            load(&self.files, &self.provider).context("failed to load TLS certificate and key")?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
        tracing::info!(
            "Loaded TLS certificate from {} and key from {}",
            self.files.cert.display(),
            self.files.key.display()
        );
        Ok(())
    }

    /// TLS ≥ 1.2 serving the current pair, ALPN `http/1.1`.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The PEM cert chain and key (PKCS#1, PKCS#8 or SEC1); the key must match the leaf.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "tls: failed to find any PEM data in certificate input"
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.key.display()))?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn served(tls: &OidcTls) -> Option<Vec<u8>> {
        tls.current
            .read()
            .unwrap()
            .as_ref()
            .map(|k| k.end_entity_cert().unwrap().to_vec())
    }

    #[test]
    fn a_reload_serves_the_new_pair_and_keeps_the_old_one_while_files_are_missing() {
        let dir = std::env::temp_dir().join(format!("sentry-oidc-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tls = OidcTls::new(TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        });
        tls.reload().unwrap();
        assert_eq!(served(&tls), None, "no files yet");

        let (first, _) = write_pair(&dir, "one.example");
        tls.reload().unwrap();
        assert_eq!(served(&tls).as_deref(), Some(first.der().as_ref()));

        let (second, _) = write_pair(&dir, "two.example");
        tls.reload().unwrap();
        assert_eq!(served(&tls).as_deref(), Some(second.der().as_ref()));

        std::fs::remove_file(dir.join("tls.key")).unwrap();
        tls.reload().unwrap();
        assert_eq!(served(&tls).as_deref(), Some(second.der().as_ref()));
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_an_error() {
        let dir = std::env::temp_dir().join(format!("sentry-oidc-tls-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_pair(&dir, "one.example");
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.join("tls.key"), other.serialize_pem()).unwrap();
        let tls = OidcTls::new(TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        });
        let error = format!("{:#}", tls.reload().unwrap_err());
        assert!(
            error.starts_with("failed to load TLS certificate and key: "),
            "{error}"
        );
    }
}
