use std::{
    io::Cursor,
    sync::atomic::{AtomicU64, Ordering},
};

use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
    storage::RaftStateMachine,
    testing::{StoreBuilder, Suite, log_id},
};

use super::*;

openraft::declare_raft_types!(
    pub Tc:
        D = String,
        R = String,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dapr-raft-log-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The smallest state machine the suite accepts: it records what was applied.
#[derive(Clone, Default)]
struct Machine {
    inner: Arc<Mutex<MachineState>>,
}

#[derive(Default)]
struct MachineState {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
    seq: u64,
}

impl Machine {
    fn lock(&self) -> MutexGuard<'_, MachineState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RaftSnapshotBuilder<Tc> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Tc>, StorageError<u64>> {
        let mut sm = self.lock();
        sm.seq += 1;
        let meta = SnapshotMeta {
            last_log_id: sm.last_applied,
            last_membership: sm.membership.clone(),
            snapshot_id: format!("s-{}", sm.seq),
        };
        sm.snapshot = Some((meta.clone(), Vec::new()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

impl RaftStateMachine<Tc> for Machine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let sm = self.lock();
        Ok((sm.last_applied, sm.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
        I::IntoIter: Send,
    {
        let mut sm = self.lock();
        let mut out = Vec::new();
        for entry in entries {
            if let EntryPayload::Membership(m) = &entry.payload {
                sm.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            }
            sm.last_applied = Some(entry.log_id);
            out.push(String::new());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let mut sm = self.lock();
        sm.last_applied = meta.last_log_id;
        sm.membership = meta.last_membership.clone();
        sm.snapshot = Some((meta.clone(), snapshot.into_inner()));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, StorageError<u64>> {
        Ok(self.lock().snapshot.clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

struct Builder;

impl StoreBuilder<Tc, Wal<Tc>, Machine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Wal<Tc>, Machine), StorageError<u64>> {
        let dir = TempDir::new();
        let wal = Wal::open(&dir.0)
            .map_err(|e| StorageIOError::read_logs(openraft::AnyError::new(&e)))?;
        Ok((dir, wal, Machine::default()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

fn entry(term: u64, index: u64, data: &str) -> Entry<Tc> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(data.to_owned()),
    }
}

/// Appends and waits until the log reports the entries durable.
async fn append(wal: &mut Wal<Tc>, entries: Vec<Entry<Tc>>) {
    wal.append_and_sync(entries).await.unwrap();
}

fn data(entries: &[Entry<Tc>]) -> Vec<(u64, String)> {
    entries
        .iter()
        .map(|e| match &e.payload {
            EntryPayload::Normal(s) => (e.log_id.index, s.clone()),
            _ => (e.log_id.index, String::new()),
        })
        .collect()
}

#[tokio::test]
async fn everything_acknowledged_survives_a_reopen() {
    let dir = TempDir::new();
    {
        let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
        wal.save_vote(&Vote::new(3, 1)).await.unwrap();
        append(
            &mut wal,
            (1..=5).map(|i| entry(1, i, &format!("v{i}"))).collect(),
        )
        .await;
        wal.truncate(log_id(1, 1, 4)).await.unwrap();
        append(&mut wal, vec![entry(2, 4, "w4")]).await;
        wal.purge(log_id(1, 1, 1)).await.unwrap();
        wal.save_committed(Some(log_id(2, 1, 4))).await.unwrap();
        // The vote goes through the same ordered queue: once it is synced, so is all above.
        wal.save_vote(&Vote::new(4, 1)).await.unwrap();
        wal.close();
    }
    let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
    assert_eq!(wal.read_vote().await.unwrap(), Some(Vote::new(4, 1)));
    assert_eq!(wal.read_committed().await.unwrap(), Some(log_id(2, 1, 4)));
    let state = wal.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 4)));
    let entries = wal.try_get_log_entries(0..).await.unwrap();
    assert_eq!(
        data(&entries),
        [(2, "v2".into()), (3, "v3".into()), (4, "w4".into())]
    );
}

#[tokio::test]
async fn a_torn_record_at_the_end_is_cut_off_and_writing_continues() {
    let dir = TempDir::new();
    {
        let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
        append(&mut wal, vec![entry(1, 1, "a"), entry(1, 2, "b")]).await;
        wal.close();
    }
    let segment = list_segments(&dir.0).unwrap().pop().unwrap().path;
    let bytes = fs::read(&segment).unwrap();
    let end = records_end(&bytes);
    assert!(
        bytes.len() > end && bytes[end..].iter().all(|b| *b == 0),
        "the segment is zero-filled past its records"
    );
    // Half a record where the next one goes: a length that promises more bytes than follow.
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&[200, 0, 0, 0, 1, 2, 3], end as u64)
        .unwrap();
    drop(file);

    let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
    assert_eq!(
        fs::metadata(&segment).unwrap().len(),
        end as u64,
        "torn tail cut off"
    );
    append(&mut wal, vec![entry(1, 3, "c")]).await;
    wal.close();
    let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
    let entries = wal.try_get_log_entries(0..).await.unwrap();
    assert_eq!(
        data(&entries),
        [(1, "a".into()), (2, "b".into()), (3, "c".into())]
    );
}

/// Where the records of a segment's bytes end (the first byte that does not start one).
fn records_end(bytes: &[u8]) -> usize {
    let mut offset = 0;
    while let Some(body) = next_record(&bytes[offset..]) {
        offset += body.len() + 8;
    }
    offset
}

#[tokio::test]
async fn a_zero_filled_tail_replays_as_the_end_and_is_overwritten_in_place() {
    let dir = TempDir::new();
    {
        let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
        append(&mut wal, vec![entry(1, 1, "a")]).await;
        wal.close();
    }
    let segment = list_segments(&dir.0).unwrap().pop().unwrap().path;
    let len = fs::metadata(&segment).unwrap().len();
    for round in 2..=4 {
        let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
        append(&mut wal, vec![entry(1, round, "b")]).await;
        wal.close();
    }
    assert_eq!(
        fs::metadata(&segment).unwrap().len(),
        len,
        "later records went into the zero-filled blocks"
    );
    let mut wal = Wal::<Tc>::open(&dir.0).unwrap();
    let entries = wal.try_get_log_entries(0..).await.unwrap();
    assert_eq!(
        data(&entries),
        [
            (1, "a".into()),
            (2, "b".into()),
            (3, "b".into()),
            (4, "b".into())
        ]
    );
}

/// A log of 6 entries in 64-byte segments (so several segments), closed; its segments.
async fn six_entries_in_small_segments(dir: &TempDir) -> Vec<Segment> {
    let mut wal = Wal::<Tc>::open_with(&dir.0, 64).unwrap();
    for i in 1..=6 {
        append(&mut wal, vec![entry(1, i, "0123456789abcdef0123456789")]).await;
    }
    wal.close();
    list_segments(&dir.0).unwrap()
}

#[tokio::test]
async fn garbage_after_the_zeros_of_an_older_segment_is_corruption() {
    let dir = TempDir::new();
    let segments = six_entries_in_small_segments(&dir).await;
    let mut bytes = fs::read(&segments[0].path).unwrap();
    let end = records_end(&bytes);
    bytes.resize(end + 16, 0);
    bytes.push(7);
    fs::write(&segments[0].path, bytes).unwrap();
    assert!(matches!(
        Wal::<Tc>::open_with(&dir.0, 64),
        Err(OpenError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn corruption_before_the_last_segment_is_an_error_not_data_loss() {
    let dir = TempDir::new();
    let segments = six_entries_in_small_segments(&dir).await;
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let mut bytes = fs::read(&segments[0].path).unwrap();
    let last = records_end(&bytes) - 1;
    bytes[last] ^= 0xff;
    fs::write(&segments[0].path, bytes).unwrap();
    assert!(matches!(
        Wal::<Tc>::open_with(&dir.0, 64),
        Err(OpenError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn purged_segments_are_deleted_and_the_rest_still_replays() {
    let dir = TempDir::new();
    {
        let mut wal = Wal::<Tc>::open_with(&dir.0, 256).unwrap();
        wal.save_vote(&Vote::new(7, 1)).await.unwrap();
        for i in 1..=40 {
            append(&mut wal, vec![entry(1, i, "0123456789abcdef")]).await;
        }
        let before = list_segments(&dir.0).unwrap().len();
        assert!(before > 4, "{before} segments");
        wal.purge(log_id(1, 1, 30)).await.unwrap();
        // Purged segments are deleted with the next batch written.
        append(&mut wal, vec![entry(1, 41, "x")]).await;
        let after = list_segments(&dir.0).unwrap().len();
        assert!(after < before, "{after} segments remain of {before}");
        wal.close();
    }
    let mut wal = Wal::<Tc>::open_with(&dir.0, 256).unwrap();
    assert_eq!(wal.read_vote().await.unwrap(), Some(Vote::new(7, 1)));
    let entries = wal.try_get_log_entries(0..).await.unwrap();
    assert_eq!(entries.first().map(|e| e.log_id.index), Some(31));
    assert_eq!(entries.last().map(|e| e.log_id.index), Some(41));
    assert_eq!(entries.len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = TempDir::new();
    let wal = Wal::<Tc>::open(&dir.0).unwrap();
    let writers: Vec<_> = (0..64u64)
        .map(|i| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append_and_sync(vec![entry(1, i + 1, "x")]).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let syncs = wal.syncs();
    assert!(
        (1..64).contains(&syncs),
        "{syncs} fsyncs for 64 concurrent appends"
    );
}
