//! The multi-version keyspace and its reads (etcd `mvcc/kvstore*.go`, `applierV3backend.Range`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::history::{KeyHistory, RevEntry};
use super::keys::KeyRange;
use super::types::{KeyValue, RangeRequest, RangeResponse, Revision, SortOrder, SortTarget};

/// Accounted size of an empty store: a fresh etcd's bbolt file (meta pages and buckets).
pub(crate) const BASE_DB_SIZE: u64 = 20 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KvState {
    /// Serialized as a sequence of (key, history) pairs: byte-string keys are not map keys in
    /// every format (JSON), and a sequence costs the same in compact ones.
    #[serde(with = "pairs")]
    pub keys: BTreeMap<Vec<u8>, KeyHistory>,
    /// The store revision; a fresh etcd starts at 1, the first write makes it 2.
    pub current_rev: Revision,
    /// The last compaction revision; etcd starts at -1 ("never compacted").
    pub compact_rev: Revision,
    /// Accounted bytes of every stored revision (derived; rebuilt on restore).
    #[serde(skip)]
    pub in_use: u64,
}

impl Default for KvState {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            current_rev: 1,
            compact_rev: -1,
            in_use: 0,
        }
    }
}

impl KvState {
    /// Recomputes the derived size after a restore.
    pub fn rebuild_size(&mut self) {
        self.in_use = self
            .keys
            .iter()
            .flat_map(|(k, h)| h.revs.iter().map(move |e| e.size(k.len())))
            .fold(0, u64::saturating_add);
    }

    /// Keys alive at `rev` within `range`, in key order, with their visible entry.
    pub fn live_in<'a>(
        &'a self,
        range: &KeyRange,
        rev: Revision,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a RevEntry)> + 'a {
        let iter = range.bounds().map(|b| self.keys.range::<[u8], _>(b));
        iter.into_iter()
            .flatten()
            .filter_map(move |(k, h)| h.live_at(rev).map(|e| (k, e)))
    }

    /// The key as of `rev`, if alive.
    pub fn get(&self, key: &[u8], rev: Revision) -> Option<KeyValue> {
        self.keys
            .get(key)
            .and_then(|h| h.live_at(rev))
            .map(|e| e.to_kv(key))
    }

    /// Checks a read revision against `cur_rev` and the compaction (etcd `rangeKeys`) and
    /// resolves "0 = current".
    pub fn read_rev(&self, requested: Revision, cur_rev: Revision) -> Result<Revision, Error> {
        if requested > cur_rev {
            return Err(Error::FutureRev);
        }
        let rev = if requested <= 0 { cur_rev } else { requested };
        if rev < self.compact_rev {
            return Err(Error::Compacted);
        }
        Ok(rev)
    }

    /// KV.Range as seen by a reader whose current revision is `cur_rev` (inside a write txn,
    /// the txn's own revision once it has changes). Mirrors `applierV3backend.Range`.
    pub fn range(&self, req: &RangeRequest, cur_rev: Revision) -> Result<RangeResponse, Error> {
        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        // etcd fetches limit+1 to learn `more`, but fetches everything when it must sort or
        // filter first (the *requested* sort order decides, before the implicit ASCEND below).
        let fetch = if req.sort_order != SortOrder::None || filtered || req.limit <= 0 {
            usize::MAX
        } else {
            usize::try_from(req.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        let rev = self.read_rev(req.revision, cur_rev)?;
        let range = KeyRange::new(&req.key, &req.range_end);
        let mut count = 0i64;
        let mut kvs = Vec::new();
        for (k, e) in self.live_in(&range, rev) {
            count = count.saturating_add(1);
            if !req.count_only && kvs.len() < fetch {
                kvs.push(e.to_kv(k));
            }
        }
        if req.count_only {
            return Ok(RangeResponse {
                revision: cur_rev,
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        kvs.retain(|kv| {
            !(req.max_mod_revision != 0 && kv.mod_revision > req.max_mod_revision
                || req.min_mod_revision != 0 && kv.mod_revision < req.min_mod_revision
                || req.max_create_revision != 0 && kv.create_revision > req.max_create_revision
                || req.min_create_revision != 0 && kv.create_revision < req.min_create_revision)
        });
        sort_kvs(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if let Ok(limit) = usize::try_from(req.limit)
            && limit > 0
            && kvs.len() > limit
        {
            kvs.truncate(limit);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value = bytes::Bytes::new();
            }
        }
        Ok(RangeResponse {
            revision: cur_rev,
            kvs,
            more,
            count,
        })
    }

    /// Drops history compaction at `at` makes unreachable; returns the accounted bytes freed.
    pub fn compact(&mut self, at: Revision) -> u64 {
        let mut freed = 0u64;
        self.keys.retain(|k, h| {
            freed = freed.saturating_add(h.compact(at, k.len()));
            !h.is_empty()
        });
        self.in_use = self.in_use.saturating_sub(freed);
        freed
    }
}

/// etcd's sort rules: a non-key target without an order sorts ascending; ties keep key order
/// (Go's sort for small slices is an insertion sort, i.e. stable, and we sort stably always).
fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let cmp = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
        _ => kvs.sort_by(cmp),
    }
}

/// Serde adapter: a map as a sequence of pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
