//! The standalone file store (spec §5.1): `ca.crt`, `issuer.crt`, `issuer.key`.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where the three CA files live.
#[derive(Debug, Clone)]
pub struct FileStore {
    pub root: PathBuf,
    pub issuer_cert: PathBuf,
    pub issuer_key: PathBuf,
}

/// The raw contents of a complete X.509 bundle on disk.
pub struct StoredPem {
    pub trust_anchors: Vec<u8>,
    pub issuer_chain: Vec<u8>,
    pub issuer_key: Vec<u8>,
}

/// File store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to read file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to write file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl FileStore {
    /// Resolves the file-name flags: relative names are joined to `dir`, absolute ones kept.
    pub fn new(dir: &str, root: &str, issuer_cert: &str, issuer_key: &str) -> Self {
        let resolve = |name: &str| Path::new(dir).join(name);
        Self {
            root: resolve(root),
            issuer_cert: resolve(issuer_cert),
            issuer_key: resolve(issuer_key),
        }
    }

    /// Reads all three files; `None` if any of them does not exist.
    pub fn load(&self) -> Result<Option<StoredPem>, StoreError> {
        let (Some(trust_anchors), Some(issuer_chain), Some(issuer_key)) = (
            read_optional(&self.root)?,
            read_optional(&self.issuer_cert)?,
            read_optional(&self.issuer_key)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(StoredPem {
            trust_anchors,
            issuer_chain,
            issuer_key,
        }))
    }

    /// Writes the three files, mode 0600, overwriting in place.
    pub fn store(&self, anchors: &str, chain: &str, key: &str) -> Result<(), StoreError> {
        write_0600(&self.root, anchors.as_bytes())?;
        write_0600(&self.issuer_cert, chain.as_bytes())?;
        write_0600(&self.issuer_key, key.as_bytes())
    }
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

pub(crate) fn write_0600(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let write = || -> io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|source| StoreError::Write {
        path: path.display().to_string(),
        source,
    })
}
