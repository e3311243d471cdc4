//! Writing the current identity to disk for tools that read files (scheduler's
//! `--identity-directory-write`; kit `concurrency/dir`): every write goes to a new directory
//! `<parent>/<unixnano>-<basename>` and the symlink `<target>` is swapped to it atomically.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use std::io::Write as _;

use crate::pem::encode_certificates;
use crate::svid::Svid;

/// The target symlink and the directory it pointed to after our last write.
#[derive(Debug)]
pub struct IdentityDir {
    target: PathBuf,
    previous: Option<PathBuf>,
}

impl IdentityDir {
    pub fn new(target: PathBuf) -> Self {
        Self {
            target,
            previous: None,
        }
    }

    /// Writes `key.pem`, `cert.pem` (chain without self-signed CAs), `ca.pem` and, with a
    /// JWT-SVID, `jwt_svid.token`; then swaps the symlink and removes the previous directory.
    pub fn write(&mut self, svid: &Svid, anchors_pem: &[u8]) -> std::io::Result<()> {
        let chain = svid
            .chain()
            .iter()
            .filter(|c| !(c.is_self_signed() && is_ca(c)));
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("key.pem", svid.private_key().to_pem().into_bytes()),
            ("cert.pem", encode_certificates(chain).into_bytes()),
            ("ca.pem", anchors_pem.to_vec()),
        ];
        if let Some(jwt) = svid.jwt() {
            files.push(("jwt_svid.token", jwt.token.clone().into_bytes()));
        }
        self.write_files(&files)
    }

    fn write_files(&mut self, files: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
        let base = self
            .target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("{nanos}-{name}"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        for (file, contents) in files {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dir.join(file))?;
            f.write_all(contents)?;
            f.sync_all()?;
            tracing::info!("Written file {file}");
        }

        let mut tmp = self.target.clone().into_os_string();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&dir, &tmp)?;
        if let Err(e) = std::fs::rename(&tmp, &self.target) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        tracing::info!("Atomic write to {}", self.target.display());
        if let Some(previous) = self.previous.replace(dir) {
            std::fs::remove_dir_all(previous)?;
        }
        Ok(())
    }
}

fn is_ca(cert: &crate::pem::Certificate) -> bool {
    matches!(cert.parsed().basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

#[cfg(test)]
mod tests;
