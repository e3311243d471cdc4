//! The revision history of one key (etcd's `keyIndex` plus the stored values, flattened).
//!
//! Entries are ordered by (main, sub) revision. A put entry carries the value; a tombstone ends a
//! generation (etcd's `generation`), so the next put starts again at version 1 with a new
//! create_revision.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::types::{KeyValue, LeaseId, Revision};

/// Bytes one stored revision costs beyond its key and value: bbolt's 17-byte revision key, the
/// KeyValue protobuf framing and the B+tree element header, rounded. It only drives the
/// `db_size` estimate that the space quota and the defrag loop look at.
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PutData {
    pub value: Bytes,
    pub create: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RevEntry {
    pub main: Revision,
    pub sub: u32,
    /// `None` is a tombstone.
    pub put: Option<PutData>,
}

impl RevEntry {
    /// Accounted size of this entry for a key of `key_len` bytes.
    pub fn size(&self, key_len: usize) -> u64 {
        let value = self.put.as_ref().map_or(0, |p| p.value.len());
        ENTRY_OVERHEAD
            .saturating_add(len_u64(key_len))
            .saturating_add(len_u64(value))
    }

    /// The entry as a KeyValue; a tombstone yields etcd's delete-event shape (key + mod revision).
    pub fn to_kv(&self, key: &[u8]) -> KeyValue {
        match &self.put {
            Some(p) => KeyValue {
                key: key.to_vec(),
                create_revision: p.create,
                mod_revision: self.main,
                version: p.version,
                value: p.value.clone(),
                lease: p.lease,
            },
            None => KeyValue {
                key: key.to_vec(),
                mod_revision: self.main,
                ..KeyValue::default()
            },
        }
    }
}

pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyHistory {
    pub revs: Vec<RevEntry>,
}

impl KeyHistory {
    /// Index of the last entry with main revision ≤ `rev`.
    fn index_at(&self, rev: Revision) -> Option<usize> {
        self.revs.partition_point(|e| e.main <= rev).checked_sub(1)
    }

    /// The entry visible at `rev` if the key is alive there.
    pub fn live_at(&self, rev: Revision) -> Option<&RevEntry> {
        self.index_at(rev)
            .map(|i| &self.revs[i])
            .filter(|e| e.put.is_some())
    }

    /// The newest entry if the key is currently alive.
    pub fn latest_live(&self) -> Option<&RevEntry> {
        self.revs.last().filter(|e| e.put.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }

    /// Drops what compaction at `at` makes unreachable (etcd `keyIndex.compact`): every entry
    /// older than the newest one ≤ `at`, and that one too if it is a tombstone older than `at`
    /// (a tombstone exactly at `at` survives until the next compaction, as in etcd). Returns the
    /// accounted bytes freed.
    pub fn compact(&mut self, at: Revision, key_len: usize) -> u64 {
        let Some(mut keep_from) = self.index_at(at) else {
            return 0;
        };
        let entry = &self.revs[keep_from];
        if entry.put.is_none() && entry.main < at {
            keep_from += 1;
        }
        self.revs
            .drain(..keep_from)
            .map(|e| e.size(key_len))
            .fold(0, u64::saturating_add)
    }

    /// Removes the entries written at main revision `main` (rolling back an unfinished txn);
    /// returns the accounted bytes freed.
    pub fn pop_main(&mut self, main: Revision, key_len: usize) -> u64 {
        let mut freed = 0u64;
        while self.revs.last().is_some_and(|e| e.main == main) {
            if let Some(e) = self.revs.pop() {
                freed = freed.saturating_add(e.size(key_len));
            }
        }
        freed
    }

    /// Entries with main revision ≥ `rev`, each with the entry visible just before its main
    /// revision (for prev_kv: etcd reads the key at `mod_revision - 1`).
    pub fn since(&self, rev: Revision) -> impl Iterator<Item = (Option<&RevEntry>, &RevEntry)> {
        let start = self.revs.partition_point(|e| e.main < rev);
        self.revs[start..].iter().map(move |e| {
            (
                self.index_at(e.main.saturating_sub(1))
                    .map(|p| &self.revs[p]),
                e,
            )
        })
    }
}
