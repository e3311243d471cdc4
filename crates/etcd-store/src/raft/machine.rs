//! The Raft state machine: the MVCC store in memory, durable snapshots on disk, and the event
//! feed watchers follow.
//!
//! Applying takes the store's write lock once per batch and publishes each write's events while
//! still holding it, so a watcher that subscribes under the read lock and then reads history up
//! to the current revision sees every later event exactly once.

use std::{
    fs::{self, File},
    io::{self, Cursor, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, storage::RaftStateMachine,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::{NodeId, Outcome, Proposal, Reply, TypeConfig};
use crate::mvcc::{Event, Revision, Store, StoreConfig, StoreState};

const SNAPSHOT_FILE: &str = "snapshot.bin";

/// How many published batches a slow watcher may fall behind before it re-reads history.
const FEED_CAPACITY: usize = 4096;

/// What watchers receive.
#[derive(Clone, Debug)]
pub enum Feed {
    /// The events of one write, all at `revision`.
    Events {
        revision: Revision,
        events: Arc<Vec<Event>>,
    },
    /// The store was replaced by a snapshot: every watch must restart from history.
    Reset,
}

type Membership = StoredMembership<NodeId, BasicNode>;

#[derive(Default)]
struct Meta {
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
    snapshot: Option<SnapshotMeta<NodeId, BasicNode>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    /// postcard of [`StoreState`].
    state: Vec<u8>,
}

struct Shared {
    config: StoreConfig,
    dir: PathBuf,
    store: RwLock<Store>,
    meta: Mutex<Meta>,
    feed: broadcast::Sender<Feed>,
    /// The last applied log index, for reads that wait for an index (linearizable reads).
    applied: watch::Sender<u64>,
}

/// The state machine; clones share it.
#[derive(Clone)]
pub struct Machine {
    shared: Arc<Shared>,
}

impl Machine {
    /// Opens the machine in `dir`, restoring the last durable snapshot if there is one.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> io::Result<Self> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(&dir)?;
        let (store, meta) = match fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => {
                let file: SnapshotFile = postcard::from_bytes(&bytes).map_err(io::Error::other)?;
                let state: StoreState =
                    postcard::from_bytes(&file.state).map_err(io::Error::other)?;
                let meta = Meta {
                    last_applied: file.meta.last_log_id,
                    membership: file.meta.last_membership.clone(),
                    snapshot: Some(file.meta),
                };
                (Store::restore(config.clone(), state), meta)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (Store::new(config.clone()), Meta::default())
            }
            Err(e) => return Err(e),
        };
        let applied = meta.last_applied.map_or(0, |l| l.index);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                dir,
                store: RwLock::new(store),
                meta: Mutex::new(meta),
                feed,
                applied: watch::channel(applied).0,
            }),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.shared
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to the event feed. Call it while holding [`Machine::read`] so that nothing is
    /// applied between the history read and the subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Feed> {
        self.shared.feed.subscribe()
    }

    /// The last applied log index.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// Applies one command and publishes its events (the caller holds the write lock).
    fn apply_one(&self, store: &mut Store, mut cmd: crate::mvcc::Command) -> Outcome {
        // Lease deadlines run on each member's own per-process clock (the primary acts on
        // them); the proposer's stamp comes from another process's epoch, so a grant's timer
        // starts at apply time here, as etcd's lessor does.
        if let crate::mvcc::Command::LeaseGrant(grant) = &mut cmd {
            grant.now_ms = crate::clock::now_ms();
        }
        let applied = store.apply(cmd);
        if !applied.events.is_empty() {
            let _ = self.shared.feed.send(Feed::Events {
                revision: applied.revision,
                events: Arc::new(applied.events),
            });
        }
        Outcome {
            result: applied.result,
            revision: applied.revision,
        }
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.shared
            .meta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn current_snapshot_bytes(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.shared.dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => {
                let file: SnapshotFile = postcard::from_bytes(&bytes).map_err(io::Error::other)?;
                Ok(Some(file.state))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the snapshot file durably (temp file, fsync, rename, fsync dir).
    fn persist(&self, meta: &SnapshotMeta<NodeId, BasicNode>, state: Vec<u8>) -> io::Result<()> {
        let file = SnapshotFile {
            meta: meta.clone(),
            state,
        };
        let bytes = postcard::to_allocvec(&file).map_err(io::Error::other)?;
        let tmp = self.shared.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.shared.dir.join(SNAPSHOT_FILE))?;
        File::open(&self.shared.dir)?.sync_all()
    }
}

fn snapshot_err(e: &io::Error) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, openraft::AnyError::new(e)).into()
}

impl RaftSnapshotBuilder<TypeConfig> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // Serialize under the read lock together with the applied position it corresponds to.
        let (state, meta) = {
            let store = self.read();
            let m = self.meta();
            let state = postcard::to_allocvec(store.state())
                .map_err(|e| snapshot_err(&io::Error::other(e)))?;
            let last = m.last_applied;
            let meta = SnapshotMeta {
                last_log_id: last,
                last_membership: m.membership.clone(),
                snapshot_id: format!(
                    "{}-{}",
                    last.map_or(0, |l| l.leader_id.term),
                    last.map_or(0, |l| l.index)
                ),
            };
            (state, meta)
        };
        self.persist(&meta, state.clone())
            .map_err(|e| snapshot_err(&e))?;
        self.meta().snapshot = Some(meta.clone());
        tracing::info!(snapshot = %meta.snapshot_id, bytes = state.len(), "saved a store snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(state)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for Machine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let m = self.meta();
        Ok((m.last_applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        let mut last = None;
        {
            let mut store = self.write();
            let mut meta = self.meta();
            for entry in entries {
                last = Some(entry.log_id.index);
                meta.last_applied = Some(entry.log_id);
                let mut batch = Vec::new();
                let result = match entry.payload {
                    EntryPayload::Normal(Proposal::One(cmd)) => {
                        Some(self.apply_one(&mut store, cmd).result)
                    }
                    EntryPayload::Normal(Proposal::Batch(cmds)) => {
                        batch = cmds
                            .into_iter()
                            .map(|cmd| self.apply_one(&mut store, cmd))
                            .collect();
                        None
                    }
                    EntryPayload::Membership(m) => {
                        meta.membership = StoredMembership::new(Some(entry.log_id), m);
                        None
                    }
                    EntryPayload::Blank => None,
                };
                replies.push(Reply {
                    result,
                    revision: store.revision(),
                    batch,
                });
            }
        }
        if let Some(index) = last {
            self.shared.applied.send_replace(index);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let state: StoreState = postcard::from_bytes(&bytes).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                openraft::AnyError::new(&io::Error::other(e)),
            ))
        })?;
        self.persist(meta, bytes).map_err(|e| snapshot_err(&e))?;
        {
            let mut store = self.write();
            let primary = store.is_primary();
            *store = Store::restore(self.shared.config.clone(), state);
            if primary {
                // A leader never installs a snapshot, but stay consistent if it did.
                store.promote(crate::clock::now_ms(), 0);
            }
            let mut m = self.meta();
            m.last_applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
            m.snapshot = Some(meta.clone());
            let _ = self.shared.feed.send(Feed::Reset);
        }
        self.shared
            .applied
            .send_replace(meta.last_log_id.map_or(0, |l| l.index));
        tracing::info!(snapshot = %meta.snapshot_id, "installed a store snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some(meta) = self.meta().snapshot.clone() else {
            return Ok(None);
        };
        let state = self
            .current_snapshot_bytes()
            .map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(
                    Some(meta.signature()),
                    openraft::AnyError::new(&e),
                ))
            })?
            .unwrap_or_default();
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(state)),
        }))
    }
}
