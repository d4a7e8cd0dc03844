//! The [`Store`] operations of [`RedisStore`]: SCAN, the pipelined probe rounds, chunk reads and
//! point lookups.

use super::parse::{self, Unexpected};
use super::RedisStore;
use crate::resp::Frame;
use crate::verify::model::{Content, Depth, KeyState, KeyType};
use crate::verify::store::{Piece, Pos, ScanUnit, Store, StoreError};
use bytes::Bytes;

pub(super) fn num(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

impl RedisStore {
    pub(super) fn err_reply(&self, cmd: &str, f: &Frame) -> StoreError {
        self.reply(cmd, Unexpected(f.to_string_lossy()))
    }
}

impl Store for RedisStore {
    async fn units(&self, dbs: &[u32]) -> Result<Vec<ScanUnit>, StoreError> {
        let masters = self.masters();
        let mut out = Vec::new();
        if self.is_cluster() {
            if !dbs.is_empty() && !dbs.contains(&0) {
                return Ok(out);
            }
            for (node, addr) in masters.iter().enumerate() {
                let n = self.admin(addr, &[b"DBSIZE"]).await?;
                let keys = parse::int(&n).map_err(|e| self.reply("DBSIZE", e))?.max(0) as u64;
                out.push(ScanUnit { node, db: 0, keys, label: format!("{addr}/0") });
            }
        } else {
            let info = self.admin(&masters[0], &[b"INFO", b"keyspace"]).await?;
            let text = info.as_bytes().ok_or_else(|| self.err_reply("INFO keyspace", &info))?;
            for (db, keys) in parse::keyspace(text) {
                if dbs.is_empty() || dbs.contains(&db) {
                    out.push(ScanUnit { node: 0, db, keys, label: format!("{}/{db}", masters[0]) });
                }
            }
        }
        Ok(out)
    }

    async fn scan(
        &self,
        unit: &ScanUnit,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
    ) -> Result<(u64, Vec<Bytes>), StoreError> {
        let addr = self.masters().get(unit.node).cloned().ok_or_else(|| StoreError::Io {
            side: self.side,
            addr: unit.label.clone(),
            reason: "node left the topology during the scan".into(),
        })?;
        let pool = self.pool(&addr, unit.db);
        let mut p = pool.get().await.map_err(|e| self.io(e))?;
        let (c, n) = (num(cursor), num(count as u64));
        match pattern {
            Some(m) => p.push_args(&[&b"SCAN"[..], &c, b"COUNT", &n, b"MATCH", m]),
            None => p.push_args(&[&b"SCAN"[..], &c, b"COUNT", &n]),
        }
        let f = p.next_reply().await.map_err(|e| self.io(e))?;
        pool.put(p);
        let (next, items) = parse::scan_reply(&f).map_err(|e| self.reply("SCAN", e))?;
        let keys = parse::set_members(items).map_err(|e| self.reply("SCAN", e))?;
        Ok((next, keys))
    }

    async fn probe(&self, db: u32, keys: &[Bytes], depth: Depth, big: u64) -> Result<Vec<KeyState>, StoreError> {
        match depth {
            Depth::Full => self.probe_full(db, keys, big, None).await,
            _ => self.probe_meta(db, keys, depth).await,
        }
    }

    async fn probe_like(
        &self,
        db: u32,
        keys: &[Bytes],
        depth: Depth,
        big: u64,
        like: &[KeyState],
    ) -> Result<Vec<KeyState>, StoreError> {
        match depth {
            Depth::Full if like.len() == keys.len() => self.probe_full(db, keys, big, Some(like)).await,
            _ => self.probe(db, keys, depth, big).await,
        }
    }

    async fn exists(&self, db: u32, keys: &[Bytes]) -> Result<Vec<bool>, StoreError> {
        self.exists_many(db, keys).await
    }

    async fn piece(&self, db: u32, key: &Bytes, ty: KeyType, pos: Pos, count: u64) -> Result<Piece, StoreError> {
        let count = count.max(1);
        match (ty, pos) {
            (KeyType::String, Pos::Index(i)) => {
                let (a, b) = (num(i), num(i + count - 1));
                let f = self.one(db, key, &[b"GETRANGE", key, &a, &b]).await?;
                let v = parse::bytes(&f).map_err(|e| self.reply("GETRANGE", e))?;
                let next = (v.len() as u64 == count).then_some(Pos::Index(i + count));
                Ok(Piece { content: Content::Str(v), next })
            }
            (KeyType::List | KeyType::Zset, Pos::Index(i)) => {
                let (a, b) = (num(i), num(i + count - 1));
                let (content, cmd) = if ty == KeyType::List {
                    let f = self.one(db, key, &[b"LRANGE", key, &a, &b]).await?;
                    (parse::list(&f), "LRANGE")
                } else {
                    let f = self.one(db, key, &[b"ZRANGE", key, &a, &b, b"WITHSCORES"]).await?;
                    (parse::zset(&f), "ZRANGE")
                };
                let content = content.map_err(|e| self.reply(cmd, e))?;
                let next = (content.len() == count).then_some(Pos::Index(i + count));
                Ok(Piece { content, next })
            }
            (KeyType::Stream, Pos::StreamId(ms, seq)) => {
                let start = format!("{ms}-{seq}").into_bytes();
                let f = self.one(db, key, &[b"XRANGE", key, &start, b"+", b"COUNT", &num(count)]).await?;
                let v = parse::stream(&f).map_err(|e| self.reply("XRANGE", e))?;
                let next = match v.last() {
                    Some(e) if v.len() as u64 == count => Some(match e.seq.checked_add(1) {
                        Some(s) => Pos::StreamId(e.ms, s),
                        None => Pos::StreamId(e.ms.saturating_add(1), 0),
                    }),
                    _ => None,
                };
                Ok(Piece { content: Content::Stream(v), next })
            }
            (KeyType::Set | KeyType::Hash, Pos::Cursor(c)) => {
                let cmd: &[u8] = if ty == KeyType::Set { b"SSCAN" } else { b"HSCAN" };
                let f = self.one(db, key, &[cmd, key, &num(c), b"COUNT", &num(count)]).await?;
                let name = if ty == KeyType::Set { "SSCAN" } else { "HSCAN" };
                let (next, items) = parse::scan_reply(&f).map_err(|e| self.reply(name, e))?;
                let content = if ty == KeyType::Set {
                    Content::Set(parse::set_members(items).map_err(|e| self.reply(name, e))?)
                } else {
                    Content::Hash(parse::pairs(items).map_err(|e| self.reply(name, e))?)
                };
                Ok(Piece { content, next: (next != 0).then_some(Pos::Cursor(next)) })
            }
            _ => Err(StoreError::Reply {
                side: self.side,
                command: "piece".into(),
                reply: format!("no chunked read for {ty} at {pos:?}"),
            }),
        }
    }

    async fn lookup(
        &self,
        db: u32,
        key: &Bytes,
        ty: KeyType,
        members: &[Bytes],
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let cmd: &[u8] = if ty == KeyType::Hash { b"HMGET" } else { b"SMISMEMBER" };
        let mut args: Vec<&[u8]> = Vec::with_capacity(members.len() + 2);
        args.push(cmd);
        args.push(key);
        args.extend(members.iter().map(|m| &m[..]));
        let f = self.one(db, key, &args).await?;
        let r = if ty == KeyType::Hash { parse::optional_strings(&f) } else { parse::membership(&f) };
        r.map_err(|e| self.reply(if ty == KeyType::Hash { "HMGET" } else { "SMISMEMBER" }, e))
    }
}
