//! Key ranges with etcd's `range_end` conventions.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

/// The smallest key greater than every key starting with `prefix` (clientv3 `GetPrefixRangeEnd`):
/// the last byte below 0xff is incremented and the rest dropped; a prefix of only 0xff bytes (or an
/// empty one) has no such key and yields `[0]`, etcd's "to the end of the keyspace".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A pair of BTreeMap range bounds over byte-string keys.
pub(crate) type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The keys a request addresses: `range_end` empty = `key` alone; `[0]` = every key ≥ `key`
/// (etcd's `mkGteRange`); otherwise the half-open interval `[key, range_end)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyRange {
    Single(Vec<u8>),
    From(Vec<u8>),
    Between(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => Self::Single(key.to_vec()),
            [0] => Self::From(key.to_vec()),
            end => Self::Between(key.to_vec(), end.to_vec()),
        }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        if prefix.is_empty() {
            return Self::From(vec![0]);
        }
        Self::new(prefix, &prefix_end(prefix))
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            Self::Single(key) => k == key.as_slice(),
            Self::From(start) => k >= start.as_slice(),
            Self::Between(start, end) => k >= start.as_slice() && k < end.as_slice(),
        }
    }

    /// BTreeMap bounds for this range, or `None` when it is empty (`range_end` ≤ `key`), which
    /// also keeps `BTreeMap::range` from panicking on inverted bounds.
    pub(crate) fn bounds(&self) -> Option<Bounds<'_>> {
        match self {
            Self::Single(key) => Some((
                Bound::Included(key.as_slice()),
                Bound::Included(key.as_slice()),
            )),
            Self::From(start) => Some((Bound::Included(start.as_slice()), Bound::Unbounded)),
            Self::Between(start, end) if start < end => Some((
                Bound::Included(start.as_slice()),
                Bound::Excluded(end.as_slice()),
            )),
            Self::Between(..) => None,
        }
    }
}
