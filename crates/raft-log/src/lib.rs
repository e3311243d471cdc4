//! openraft helpers shared by placement and the scheduler's store: a durable log store (an
//! append-only write-ahead log in segment files with group commit), and [`split_vote`], which
//! breaks the tied elections openraft 0.9 can repeat.
//!
//! - Every record is `[len u32][crc32 u32][kind u8][postcard payload]`; a torn or corrupt record
//!   at the end of the last segment (a crash mid-write) is cut off on open, anywhere else it is
//!   an error.
//! - Writes run in a task on the caller's runtime (openraft's), not on a thread of their own: a
//!   writer thread cost two cross-thread wake-ups per write, about a fifth of the throughput of
//!   64 concurrent etcd puts on 2 cores. The caller returns at once, so a leader replicates while
//!   its own copy is synced. Whoever holds the writer drains every request queued meanwhile,
//!   writes them all, then calls `fdatasync` once and only then acknowledges the appends and
//!   votes that wanted durability — concurrent writers share one fsync (group commit).
//! - Segments are zero-filled ahead of the write position (a chunk at a time, synced with the
//!   records before them), so records overwrite blocks the file already has and `fdatasync`
//!   flushes only data, not a new file size with every write (the trick PostgreSQL's WAL uses;
//!   about half the sync time on ext4). Replay ends a segment at its first all-zero header.
//! - The log is also kept in memory for reads; openraft purges it after snapshots, and segments
//!   whose entries are all purged are deleted. Each new segment starts with a header carrying the
//!   current vote, committed id and purge point, so older segments are never needed for them.

use std::{
    collections::BTreeMap,
    fmt::Debug,
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Read, Seek, SeekFrom, Write},
    marker::PhantomData,
    ops::RangeBounds,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, TryLockError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use openraft::{
    Entry, LogId, LogState, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError, Vote,
    storage::{LogFlushed, RaftLogStorage},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A new segment is started once the current one is this large.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Zeros written ahead of the write position at most at once (less for tiny test segments).
const ZERO_FILL_CHUNK: u64 = 4 << 20;

/// Largest record accepted when reading (a corrupt length must not allocate gigabytes).
const MAX_RECORD: u32 = 256 << 20;

const KIND_ENTRY: u8 = 1;
const KIND_VOTE: u8 = 2;
const KIND_COMMITTED: u8 = 3;
const KIND_TRUNCATE: u8 = 4;
const KIND_PURGE: u8 = 5;
const KIND_HEADER: u8 = 6;

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("raft log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("raft log {path}: corrupt record at byte {offset} (not the end of the last segment)")]
    Corrupt { path: PathBuf, offset: u64 },
    #[error("raft log {path}: undecodable record at byte {offset}: {source}")]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: postcard::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Header<C: RaftTypeConfig> {
    vote: Option<Vote<NodeIdOf<C>>>,
    committed: Option<LogId<NodeIdOf<C>>>,
    last_purged: Option<LogId<NodeIdOf<C>>>,
}

/// What the in-memory side knows.
struct Mem<C: RaftTypeConfig> {
    vote: Option<Vote<NodeIdOf<C>>>,
    committed: Option<LogId<NodeIdOf<C>>>,
    last_purged: Option<LogId<NodeIdOf<C>>>,
    entries: BTreeMap<u64, Entry<C>>,
}

impl<C: RaftTypeConfig> Default for Mem<C> {
    fn default() -> Self {
        Self {
            vote: None,
            committed: None,
            last_purged: None,
            entries: BTreeMap::new(),
        }
    }
}

/// What the caller waits for after the records hit the disk.
enum Done<C: RaftTypeConfig> {
    Flushed(LogFlushed<C>),
    Synced(tokio::sync::oneshot::Sender<io::Result<()>>),
}

struct Job<C: RaftTypeConfig> {
    /// Encoded records, written in order.
    records: Vec<Vec<u8>>,
    /// Highest entry index among the records (for segment bookkeeping).
    max_index: Option<u64>,
    /// A purge point carried by the records (segments below it can go).
    purged: Option<u64>,
    header: Header<C>,
    done: Option<Done<C>>,
}

struct Shared<C: RaftTypeConfig> {
    mem: Mutex<Mem<C>>,
    /// Requests not written yet, in order; whoever holds `writer` takes them.
    queue: Mutex<Vec<Job<C>>>,
    /// The files; `None` once closed or after a failed write.
    writer: Mutex<Option<Writer<C>>>,
    /// Set once `writer` is gone for good.
    stopped: AtomicBool,
    /// fsyncs done so far (group commit makes this far smaller than the number of writes).
    syncs: Arc<AtomicU64>,
}

/// The log store. Clones share the same log (openraft reads through one).
pub struct Wal<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig> Clone for Wal<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C> Wal<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Clone,
    Entry<C>: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the log in `dir`, replaying every segment.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// As [`Wal::open`], with a segment size (small in tests to exercise rotation).
    pub fn open_with(dir: impl AsRef<Path>, segment_bytes: u64) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let mut segments = list_segments(&dir)?;
        let mut mem = Mem::<C>::default();
        let last = segments.len().checked_sub(1);
        let mut end = 0;
        for (i, segment) in segments.iter_mut().enumerate() {
            (segment.max_index, end) = replay(&segment.path, &mut mem, Some(i) == last)?;
        }
        let syncs = Arc::new(AtomicU64::new(0));
        let writer =
            Writer::<C>::start(dir, segments, end, segment_bytes, &mem, Arc::clone(&syncs))?;
        Ok(Self {
            shared: Arc::new(Shared {
                mem: Mutex::new(mem),
                queue: Mutex::new(Vec::new()),
                writer: Mutex::new(Some(writer)),
                stopped: AtomicBool::new(false),
                syncs,
            }),
        })
    }

    fn mem(&self) -> MutexGuard<'_, Mem<C>> {
        self.shared
            .mem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn header(mem: &Mem<C>) -> Header<C> {
        Header {
            vote: mem.vote.clone(),
            committed: mem.committed.clone(),
            last_purged: mem.last_purged.clone(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Job<C>>> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a request and has it written: by a task spawned on the caller's runtime, so that
    /// the caller (openraft's core) goes on at once — a leader sends the entries to its
    /// followers while they are synced here — and the write then runs on the same worker without
    /// a cross-thread wake-up; outside a runtime, right here. Failures reach the request's
    /// waiter and the log; a log that failed or was closed refuses new requests.
    fn send(&self, job: Job<C>) -> io::Result<()> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.queue().push(job);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let wal = self.clone();
                runtime.spawn(async move {
                    let _ = wal.write_queued();
                });
                Ok(())
            }
            Err(_) => self.write_queued(),
        }
    }

    /// Unless another caller is writing right now (it takes what is queued with its next
    /// round), writes everything queued. Blocks for the write and its sync.
    fn write_queued(&self) -> io::Result<()> {
        let mut result = Ok(());
        loop {
            {
                let mut writer = match self.shared.writer.try_lock() {
                    Ok(writer) => writer,
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    // The holder looks at the queue again after it lets go.
                    Err(TryLockError::WouldBlock) => return result,
                };
                let batch = std::mem::take(&mut *self.queue());
                match writer.as_mut() {
                    _ if batch.is_empty() => {}
                    Some(w) => {
                        if let Err(error) = w.process(batch) {
                            tracing::error!(%error, "raft log write failed; the log stops accepting writes");
                            *writer = None;
                            self.shared.stopped.store(true, Ordering::Release);
                            result = Err(error);
                        }
                    }
                    None => {
                        fail(batch, &closed());
                        result = result.and(Err(closed()));
                    }
                }
            }
            // A request queued while this caller held the writer is this caller's to write: its
            // sender saw the writer taken and left it here.
            if self.queue().is_empty() {
                return result;
            }
        }
    }

    /// How many times the log has been synced to disk.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Appends entries and waits until they are durable (what openraft's `append` does with a
    /// callback instead; also usable directly, e.g. in tests and tools).
    pub async fn append_and_sync(&self, entries: Vec<Entry<C>>) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.enqueue_append(entries, Done::Synced(tx))?;
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    fn enqueue_append(
        &self,
        entries: impl IntoIterator<Item = Entry<C>>,
        done: Done<C>,
    ) -> io::Result<()> {
        let mut records = Vec::new();
        let mut max_index = None;
        let header = {
            let mut mem = self.mem();
            for entry in entries {
                records.push(encode(KIND_ENTRY, &entry)?);
                max_index = Some(entry.log_id.index);
                mem.entries.insert(entry.log_id.index, entry);
            }
            Self::header(&mem)
        };
        self.send(Job {
            records,
            max_index,
            purged: None,
            header,
            done: Some(done),
        })
    }

    /// Writes and syncs everything queued so far; later writes fail.
    pub fn close(&self) {
        {
            let mut writer = self
                .shared
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let batch = std::mem::take(&mut *self.queue());
            self.shared.stopped.store(true, Ordering::Release);
            if let Some(mut w) = writer.take() {
                if let Err(error) = w.process(batch) {
                    tracing::error!(%error, "raft log write failed while closing");
                }
                let _ = w.file.flush();
                let _ = w.file.get_ref().sync_data();
            } else {
                fail(batch, &closed());
            }
        }
        // Requests queued while the writer was being closed.
        while !self.queue().is_empty() {
            let _writer = self
                .shared
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            fail(std::mem::take(&mut *self.queue()), &closed());
        }
    }
}

/// One record, serialized in place behind room for its length and checksum.
fn encode<T: Serialize>(kind: u8, value: &T) -> io::Result<Vec<u8>> {
    let mut record = Vec::with_capacity(256);
    record.extend_from_slice(&[0; 8]);
    record.push(kind);
    let mut record = postcard::to_extend(value, record).map_err(io::Error::other)?;
    let len = u32::try_from(record.len() - 8)
        .map_err(|_| io::Error::other("raft log record too large"))?;
    let crc = crc32fast::hash(&record[8..]);
    record[..4].copy_from_slice(&len.to_le_bytes());
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

fn closed() -> io::Error {
    io::Error::other("the raft log is closed")
}

/// Completes requests that were not written.
fn fail<C: RaftTypeConfig>(batch: Vec<Job<C>>, error: &io::Error) {
    for job in batch {
        job.complete(Err(io::Error::new(error.kind(), error.to_string())));
    }
}

impl<C: RaftTypeConfig> Job<C> {
    fn complete(self, outcome: io::Result<()>) {
        match self.done {
            Some(Done::Flushed(callback)) => callback.log_io_completed(outcome),
            Some(Done::Synced(tx)) => {
                let _ = tx.send(outcome);
            }
            None => {}
        }
    }
}

fn write_err<C: RaftTypeConfig>(e: &io::Error) -> StorageError<NodeIdOf<C>> {
    StorageIOError::write_logs(openraft::AnyError::new(e)).into()
}

impl<C> RaftLogReader<C> for Wal<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Clone,
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<NodeIdOf<C>>> {
        Ok(self
            .mem()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl<C> RaftLogStorage<C> for Wal<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Clone,
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeIdOf<C>>> {
        let mem = self.mem();
        let last = mem.entries.values().next_back().map(|e| e.log_id.clone());
        Ok(LogState {
            last_purged_log_id: mem.last_purged.clone(),
            last_log_id: last.or_else(|| mem.last_purged.clone()),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let err = |e: &io::Error| -> StorageError<NodeIdOf<C>> {
            StorageIOError::write_vote(openraft::AnyError::new(e)).into()
        };
        let record = encode(KIND_VOTE, vote).map_err(|e| err(&e))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let header = {
            let mut mem = self.mem();
            mem.vote = Some(vote.clone());
            Self::header(&mem)
        };
        self.send(Job {
            records: vec![record],
            max_index: None,
            purged: None,
            header,
            done: Some(Done::Synced(tx)),
        })
        .map_err(|e| err(&e))?;
        // A vote must be durable before it is answered.
        rx.await
            .unwrap_or_else(|_| Err(closed()))
            .map_err(|e| err(&e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        Ok(self.mem().vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeIdOf<C>>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let record = encode(KIND_COMMITTED, &committed).map_err(|e| write_err::<C>(&e))?;
        let header = {
            let mut mem = self.mem();
            mem.committed = committed.clone();
            Self::header(&mem)
        };
        // Optional for correctness: written with the next sync, nobody waits for it.
        self.send(Job {
            records: vec![record],
            max_index: None,
            purged: None,
            header,
            done: None,
        })
        .map_err(|e| write_err::<C>(&e))
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        Ok(self.mem().committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<NodeIdOf<C>>>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        self.enqueue_append(entries, Done::Flushed(callback))
            .map_err(|e| write_err::<C>(&e))
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let record = encode(KIND_TRUNCATE, &log_id.index).map_err(|e| write_err::<C>(&e))?;
        let header = {
            let mut mem = self.mem();
            mem.entries.split_off(&log_id.index);
            Self::header(&mem)
        };
        self.send(Job {
            records: vec![record],
            max_index: None,
            purged: None,
            header,
            done: None,
        })
        .map_err(|e| write_err::<C>(&e))
    }

    async fn purge(&mut self, log_id: LogId<NodeIdOf<C>>) -> Result<(), StorageError<NodeIdOf<C>>> {
        let record = encode(KIND_PURGE, &log_id).map_err(|e| write_err::<C>(&e))?;
        let header = {
            let mut mem = self.mem();
            let keep = mem.entries.split_off(&(log_id.index + 1));
            mem.entries = keep;
            mem.last_purged = Some(log_id.clone());
            Self::header(&mem)
        };
        self.send(Job {
            records: vec![record],
            max_index: None,
            purged: Some(log_id.index),
            header,
            done: None,
        })
        .map_err(|e| write_err::<C>(&e))
    }
}

struct Segment {
    seq: u64,
    path: PathBuf,
    max_index: Option<u64>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<Segment>, OpenError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            segments.push(Segment {
                seq,
                path,
                max_index: None,
            });
        }
    }
    segments.sort_by_key(|s| s.seq);
    Ok(segments)
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Applies one segment's records to `mem`; returns the highest entry index it holds and where
/// its records end. The zero-filled rest of a segment is its clean end; anything else that is
/// not a whole record is a torn tail when it ends the last segment (cut off), corruption when
/// it does not.
fn replay<C>(path: &Path, mem: &mut Mem<C>, last: bool) -> Result<(Option<u64>, u64), OpenError>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: DeserializeOwned,
{
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_at(path))?;
    let mut offset = 0usize;
    let mut max_index = None;
    while offset < bytes.len() {
        let Some(body) = next_record(&bytes[offset..]) else {
            if bytes[offset..].iter().all(|b| *b == 0) {
                break;
            }
            if last {
                // A crash mid-write: drop the torn tail so new records follow good ones.
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_at(path))?;
                file.set_len(offset as u64).map_err(io_at(path))?;
                file.sync_all().map_err(io_at(path))?;
                break;
            }
            return Err(OpenError::Corrupt {
                path: path.to_owned(),
                offset: offset as u64,
            });
        };
        let decode_err = |source| OpenError::Decode {
            path: path.to_owned(),
            offset: offset as u64,
            source,
        };
        let (kind, payload) = (body[0], &body[1..]);
        match kind {
            KIND_ENTRY => {
                let entry: Entry<C> = postcard::from_bytes(payload).map_err(decode_err)?;
                let index = entry.log_id.index;
                max_index = Some(max_index.map_or(index, |m: u64| m.max(index)));
                mem.entries.insert(index, entry);
            }
            KIND_VOTE => mem.vote = Some(postcard::from_bytes(payload).map_err(decode_err)?),
            KIND_COMMITTED => mem.committed = postcard::from_bytes(payload).map_err(decode_err)?,
            KIND_TRUNCATE => {
                let index: u64 = postcard::from_bytes(payload).map_err(decode_err)?;
                mem.entries.split_off(&index);
            }
            KIND_PURGE => {
                let log_id: LogId<NodeIdOf<C>> =
                    postcard::from_bytes(payload).map_err(decode_err)?;
                let keep = mem.entries.split_off(&(log_id.index + 1));
                mem.entries = keep;
                mem.last_purged = Some(log_id);
            }
            KIND_HEADER => {
                let header: Header<C> = postcard::from_bytes(payload).map_err(decode_err)?;
                if header.vote.is_some() {
                    mem.vote = header.vote;
                }
                if header.committed.is_some() {
                    mem.committed = header.committed;
                }
                if let Some(purged) = header.last_purged {
                    let keep = mem.entries.split_off(&(purged.index + 1));
                    mem.entries = keep;
                    mem.last_purged = Some(purged);
                }
            }
            _ => {
                return Err(OpenError::Corrupt {
                    path: path.to_owned(),
                    offset: offset as u64,
                });
            }
        }
        offset += body.len() + 8;
    }
    Ok((max_index, offset as u64))
}

/// The body (`kind` + payload) of the record at the start of `bytes`, if it is whole and intact.
fn next_record(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let body = bytes.get(8..8 + len as usize)?;
    (crc32fast::hash(body) == crc).then_some(body)
}

/// The files and where the next record goes.
struct Writer<C: RaftTypeConfig> {
    dir: PathBuf,
    segments: Vec<Segment>,
    file: BufWriter<File>,
    /// Where the current segment's records end (the next write goes there).
    size: u64,
    /// How far the current segment file is written (records, then zeros).
    filled: u64,
    segment_bytes: u64,
    purged: Option<u64>,
    syncs: Arc<AtomicU64>,
    _types: PhantomData<C>,
}

impl<C: RaftTypeConfig> Writer<C> {
    fn start(
        dir: PathBuf,
        mut segments: Vec<Segment>,
        end: u64,
        segment_bytes: u64,
        mem: &Mem<C>,
        syncs: Arc<AtomicU64>,
    ) -> Result<Self, OpenError> {
        let purged = mem.last_purged.as_ref().map(|l| l.index);
        if segments.is_empty() {
            let path = segment_path(&dir, 1);
            segments.push(Segment {
                seq: 1,
                path,
                max_index: None,
            });
        }
        let current = segments.last().map(|s| s.path.clone()).unwrap_or_default();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&current)
            .map_err(io_at(&current))?;
        let filled = file.metadata().map_err(io_at(&current))?.len();
        file.seek(SeekFrom::Start(end)).map_err(io_at(&current))?;
        sync_dir(&dir).map_err(io_at(&dir))?;
        Ok(Self {
            dir,
            segments,
            file: BufWriter::with_capacity(1 << 20, file),
            size: end,
            filled: filled.max(end),
            segment_bytes,
            purged,
            syncs,
            _types: PhantomData,
        })
    }

    /// Writes a batch, syncs it if anyone waits, and completes its requests.
    fn process(&mut self, batch: Vec<Job<C>>) -> io::Result<()> {
        let result = self.write_batch(&batch);
        for job in batch {
            job.complete(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
        }
        result
    }

    fn write_batch(&mut self, batch: &[Job<C>]) -> io::Result<()> {
        for job in batch {
            for record in &job.records {
                self.file.write_all(record)?;
                self.size += record.len() as u64;
            }
            if let Some(index) = job.max_index
                && let Some(segment) = self.segments.last_mut()
            {
                segment.max_index = Some(segment.max_index.map_or(index, |m| m.max(index)));
            }
            if let Some(purged) = job.purged {
                self.purged = Some(purged);
            }
        }
        self.filled = self.filled.max(self.size);
        self.file.flush()?;
        self.zero_fill_ahead()?;
        // Records nobody waits for (committed index, truncations, purges) ride along with the
        // next sync instead of paying for their own.
        if batch.iter().any(|job| job.done.is_some()) {
            self.file.get_ref().sync_data()?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if self.size >= self.segment_bytes
            && let Some(last) = batch.last()
        {
            self.rotate(&last.header)?;
        }
        self.delete_purged_segments()
    }

    /// Keeps at least half a chunk of zeros ahead of the write position (synced with the records
    /// of this batch), so that most writes overwrite blocks the file already has.
    fn zero_fill_ahead(&mut self) -> io::Result<()> {
        let chunk = ZERO_FILL_CHUNK.min(self.segment_bytes).max(1);
        if self.filled >= self.size + chunk / 2 || self.size >= self.segment_bytes {
            return Ok(());
        }
        let target = self.size + chunk;
        // From one static block of zeros, not a chunk-sized buffer: allocating 4 MiB per chunk
        // had the allocator take fresh pages (zeroed by the kernel) on every refill.
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut at = self.filled;
        while at < target {
            let n = usize::try_from(target - at).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
            self.file.get_ref().write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.filled = target;
        Ok(())
    }

    /// Starts a new segment whose header carries the current vote, committed id and purge point.
    fn rotate(&mut self, header: &Header<C>) -> io::Result<()> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let path = segment_path(&self.dir, seq);
        let record = encode(KIND_HEADER, header)?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        file.write_all(&record)?;
        self.file = BufWriter::with_capacity(1 << 20, file);
        self.size = record.len() as u64;
        self.filled = self.size;
        self.zero_fill_ahead()?;
        self.file.get_ref().sync_data()?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            seq,
            path,
            max_index: None,
        });
        Ok(())
    }

    /// Deletes leading segments (never the current one) whose entries are all purged.
    fn delete_purged_segments(&mut self) -> io::Result<()> {
        let mut deleted = false;
        while self.segments.len() > 1 {
            let first = &self.segments[0];
            let removable = match (first.max_index, self.purged) {
                (None, _) => true,
                (Some(max), Some(purged)) => max <= purged,
                (Some(_), None) => false,
            };
            if !removable {
                break;
            }
            fs::remove_file(&first.path)?;
            self.segments.remove(0);
            deleted = true;
        }
        if deleted {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub mod split_vote;

#[cfg(test)]
mod tests;
