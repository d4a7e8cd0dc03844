//! In-memory [`Store`] for unit tests of the engine, big-key and round logic.

use super::model::{Content, Depth, KeyState, KeyType, ValueState};
use super::store::{Piece, Pos, ScanUnit, Store, StoreError};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// db → key → (value, pttl).
pub type Dbs = BTreeMap<u32, BTreeMap<Bytes, (Content, i64)>>;

/// An in-memory side.
#[derive(Debug, Default)]
pub struct MemStore {
    pub data: Mutex<Dbs>,
}

pub fn ty_of(c: &Content) -> KeyType {
    match c {
        Content::Str(_) => KeyType::String,
        Content::List(_) => KeyType::List,
        Content::Set(_) => KeyType::Set,
        Content::Hash(_) => KeyType::Hash,
        Content::Zset(_) => KeyType::Zset,
        Content::Stream(_) => KeyType::Stream,
    }
}

impl MemStore {
    pub fn put(&self, db: u32, key: &str, mut c: Content, pttl: i64) {
        c.normalize();
        self.data.lock().unwrap().entry(db).or_default().insert(Bytes::copy_from_slice(key.as_bytes()), (c, pttl));
    }

    pub fn del(&self, db: u32, key: &str) {
        self.data.lock().unwrap().entry(db).or_default().remove(key.as_bytes());
    }

    fn get(&self, db: u32, key: &[u8]) -> Option<(Content, i64)> {
        self.data.lock().unwrap().get(&db).and_then(|m| m.get(key).cloned())
    }
}

fn slice(c: &Content, from: usize, n: usize) -> Content {
    fn s<T: Clone>(v: &[T], from: usize, n: usize) -> Vec<T> {
        v.iter().skip(from).take(n).cloned().collect()
    }
    match c {
        Content::Str(b) => Content::Str(b.slice(from.min(b.len())..(from + n).min(b.len()))),
        Content::List(v) => Content::List(s(v, from, n)),
        Content::Set(v) => Content::Set(s(v, from, n)),
        Content::Hash(v) => Content::Hash(s(v, from, n)),
        Content::Zset(v) => Content::Zset(s(v, from, n)),
        Content::Stream(v) => Content::Stream(s(v, from, n)),
    }
}

impl Store for MemStore {
    async fn units(&self, dbs: &[u32]) -> Result<Vec<ScanUnit>, StoreError> {
        let data = self.data.lock().unwrap();
        Ok(data
            .iter()
            .filter(|(db, m)| !m.is_empty() && (dbs.is_empty() || dbs.contains(db)))
            .map(|(db, m)| ScanUnit { node: 0, db: *db, keys: m.len() as u64, label: format!("mem/{db}") })
            .collect())
    }

    async fn scan(
        &self,
        unit: &ScanUnit,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
    ) -> Result<(u64, Vec<Bytes>), StoreError> {
        let data = self.data.lock().unwrap();
        let Some(m) = data.get(&unit.db) else {
            return Ok((0, vec![]));
        };
        let keys: Vec<Bytes> = m.keys().skip(cursor as usize).take(count).cloned().collect();
        let next = cursor + keys.len() as u64;
        let keys = keys.into_iter().filter(|k| pattern.is_none_or(|p| super::glob::matches(p, k))).collect();
        Ok((if next as usize >= m.len() { 0 } else { next }, keys))
    }

    async fn probe(&self, db: u32, keys: &[Bytes], depth: Depth, big: u64) -> Result<Vec<KeyState>, StoreError> {
        Ok(keys
            .iter()
            .map(|k| match self.get(db, k) {
                None => KeyState::MISSING,
                Some((c, pttl)) => {
                    let mut s = KeyState { ty: Some(ty_of(&c)), pttl: None, len: None, value: ValueState::NotRead };
                    if depth >= Depth::Meta {
                        s.pttl = Some(pttl);
                        s.len = Some(c.len());
                    }
                    if depth == Depth::Full {
                        s.value = if c.len() > big { ValueState::Big } else { ValueState::Whole(c) };
                    }
                    s
                }
            })
            .collect())
    }

    async fn exists(&self, db: u32, keys: &[Bytes]) -> Result<Vec<bool>, StoreError> {
        Ok(keys.iter().map(|k| self.get(db, k).is_some()).collect())
    }

    async fn piece(&self, db: u32, key: &Bytes, _ty: KeyType, pos: Pos, count: u64) -> Result<Piece, StoreError> {
        let Some((c, _)) = self.get(db, key) else {
            return Ok(Piece { content: slice(&Content::List(vec![]), 0, 0), next: None });
        };
        let from = match pos {
            Pos::Index(i) | Pos::Cursor(i) => i as usize,
            Pos::StreamId(ms, seq) => match &c {
                Content::Stream(v) => v.iter().take_while(|e| (e.ms, e.seq) < (ms, seq)).count(),
                _ => 0,
            },
        };
        let content = slice(&c, from, count as usize);
        let end = from + content.len() as usize;
        let next = if end as u64 >= c.len() {
            None
        } else {
            Some(match (&c, pos) {
                (Content::Stream(v), _) => {
                    let e = &v[end];
                    Pos::StreamId(e.ms, e.seq)
                }
                (_, Pos::Cursor(_)) => Pos::Cursor(end as u64),
                _ => Pos::Index(end as u64),
            })
        };
        Ok(Piece { content, next })
    }

    async fn lookup(
        &self,
        db: u32,
        key: &Bytes,
        _ty: KeyType,
        members: &[Bytes],
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        let c = self.get(db, key).map(|x| x.0);
        Ok(members
            .iter()
            .map(|m| match &c {
                Some(Content::Hash(v)) => v.iter().find(|(f, _)| f == m).map(|(_, x)| x.clone()),
                Some(Content::Set(v)) => v.contains(m).then(Bytes::new),
                _ => None,
            })
            .collect())
    }
}
