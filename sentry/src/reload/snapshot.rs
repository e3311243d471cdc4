//! Change detection on the watched directories by polling: a snapshot of each directory's
//! entries (type, size, mtime, symlink target, content hash of small files) compared with the
//! last one. Polling instead of inotify keeps sentry free of a watcher dependency; a few small
//! files every 500 ms cost nothing.
//!
//! Like fsnotify (upstream watches each directory, not recursively) only the direct entries
//! count. Divergence: a watched directory that does not exist is watched as empty (and its
//! later creation with files is a change), where upstream's fsnotify refuses it at start
//! (`failed to add target <dir>`, fatal); in standalone mode a missing credentials directory
//! still fails at start when sentry tries to write the generated CA into it. Kubernetes Secret volumes swap a `..data` symlink to a new timestamped directory:
//! that shows up here as a changed link target and new entries, and the files (symlinks into
//! `..data`) are read through the link, so their content hash changes too.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Files up to this size are hashed; larger ones are compared by size and mtime only (the CA
/// files are a few KiB; this bounds the work for an unexpected large file in the directory).
const MAX_HASHED_BYTES: u64 = 1 << 20;

/// What is known about one directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The entry's own metadata (not followed): catches replaced files and symlink swaps.
    len: u64,
    modified: Option<SystemTime>,
    link_target: Option<PathBuf>,
    /// Hash of the content reached through symlinks, for regular files up to the size limit.
    content: Option<u64>,
}

/// The state of all watched directories; a missing or unreadable directory has no entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, Entry>);

impl Snapshot {
    /// Reads the direct entries of every directory in `dirs`.
    pub fn take(dirs: &[PathBuf]) -> Self {
        let mut entries = BTreeMap::new();
        for dir in dirs {
            let Ok(read) = std::fs::read_dir(dir) else {
                continue;
            };
            for item in read.flatten() {
                let path = item.path();
                if let Some(entry) = entry(&path) {
                    entries.insert(path, entry);
                }
            }
        }
        Self(entries)
    }
}

/// An entry that vanished between listing and reading is skipped (the next poll sees the
/// directory without it).
fn entry(path: &Path) -> Option<Entry> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let link_target = meta
        .file_type()
        .is_symlink()
        .then(|| std::fs::read_link(path).ok())
        .flatten();
    Some(Entry {
        len: meta.len(),
        modified: meta.modified().ok(),
        link_target,
        content: content_hash(path),
    })
}

fn content_hash(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_HASHED_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_HASHED_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// Something that can tell whether the watched state changed since the baseline.
pub trait Watch: Send {
    /// Takes a fresh look; `true` (and the new look becomes the baseline) when it differs.
    fn changed(&mut self) -> bool;
    /// Makes the current state the baseline without reporting it.
    fn rebase(&mut self);
}

/// Polls the watched directories.
pub struct DirWatcher {
    dirs: Vec<PathBuf>,
    baseline: Snapshot,
}

impl DirWatcher {
    /// Watches `dirs` from their current state on: take it only after sentry wrote anything it
    /// generated at start, so sentry never reacts to its own writes (upstream does, and
    /// restarts a few times in its first seconds).
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        let baseline = Snapshot::take(&dirs);
        Self { dirs, baseline }
    }

    /// The watched directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

impl Watch for DirWatcher {
    fn changed(&mut self) -> bool {
        let now = Snapshot::take(&self.dirs);
        if now == self.baseline {
            return false;
        }
        self.baseline = now;
        true
    }

    fn rebase(&mut self) {
        self.baseline = Snapshot::take(&self.dirs);
    }
}

/// The watched directories (spec §3 step 2): the parents of the issuer cert, issuer key, root
/// cert, JWT key and JWKS paths (always, even with JWT off) and of the OIDC TLS files when
/// given; each once, in first-seen order.
pub fn watched_dirs<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for path in paths {
        // Go's `filepath.Dir`: a bare file name lives in `.`.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}
