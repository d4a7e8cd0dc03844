//! The mock's in-memory dataset: databases of keys holding a [`Value`] and an optional expiry.

use std::collections::BTreeMap;

use bytes::Bytes;
use df2redis::proto::Value;

use crate::shard::shard_of;

/// One key's value and absolute expiry (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix ms.
    pub expire_ms: Option<u64>,
}

impl Entry {
    /// An entry without expiry.
    pub fn new(value: Value) -> Self {
        Entry { value, expire_ms: None }
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expire_ms.is_some_and(|t| t <= now_ms)
    }
}

/// Every database of the master.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    dbs: Vec<BTreeMap<Bytes, Entry>>,
}

impl Dataset {
    /// An empty dataset with `dbs` databases.
    pub fn new(dbs: u32) -> Self {
        Dataset { dbs: (0..dbs.max(1)).map(|_| BTreeMap::new()).collect() }
    }

    /// Number of databases.
    pub fn db_count(&self) -> u32 {
        self.dbs.len() as u32
    }

    /// A database (panics never: out-of-range dbs read as empty).
    pub fn db(&self, db: u32) -> Option<&BTreeMap<Bytes, Entry>> {
        self.dbs.get(db as usize)
    }

    /// A database for writing.
    pub fn db_mut(&mut self, db: u32) -> Option<&mut BTreeMap<Bytes, Entry>> {
        self.dbs.get_mut(db as usize)
    }

    /// Inserts or replaces a key.
    pub fn insert(&mut self, db: u32, key: impl Into<Bytes>, entry: Entry) {
        if let Some(d) = self.dbs.get_mut(db as usize) {
            d.insert(key.into(), entry);
        }
    }

    /// Looks a key up (expired keys included).
    pub fn get(&self, db: u32, key: &[u8]) -> Option<&Entry> {
        self.dbs.get(db as usize)?.get(key)
    }

    /// Total keys over all databases.
    pub fn len(&self) -> usize {
        self.dbs.iter().map(BTreeMap::len).sum()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys of shard `shard` of `shards`, per database: `(db, key, entry)` in key order.
    pub fn shard_entries(&self, shard: u32, shards: u32) -> BTreeMap<(u32, Bytes), Entry> {
        self.shard_cuts(shards).into_iter().nth(shard as usize).unwrap_or_default()
    }

    /// Every shard's keys at once (one pass over the dataset; each map bulk-built from keys
    /// already in order), as `shard_entries` would give them one by one.
    pub fn shard_cuts(&self, shards: u32) -> Vec<BTreeMap<(u32, Bytes), Entry>> {
        let shards = shards.max(1);
        let mut parts: Vec<Vec<((u32, Bytes), Entry)>> = (0..shards).map(|_| Vec::new()).collect();
        for (db, m) in self.dbs.iter().enumerate() {
            for (k, e) in m {
                parts[shard_of(k, shards) as usize].push(((db as u32, k.clone()), e.clone()));
            }
        }
        parts.into_iter().map(BTreeMap::from_iter).collect()
    }

    /// Drops keys that expired at `now_ms`; returns them as `(db, key)`.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<(u32, Bytes)> {
        let mut out = Vec::new();
        for (db, m) in self.dbs.iter_mut().enumerate() {
            let dead: Vec<Bytes> = m.iter().filter(|(_, e)| e.expired(now_ms)).map(|(k, _)| k.clone()).collect();
            for k in dead {
                m.remove(&k);
                out.push((db as u32, k));
            }
        }
        out
    }

    /// Iterates `(db, key, entry)` over everything.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Bytes, &Entry)> {
        self.dbs.iter().enumerate().flat_map(|(db, m)| m.iter().map(move |(k, e)| (db as u32, k, e)))
    }
}
