//! The [`Store`] operations of [`RedisStore`]: SCAN, the pipelined probe rounds, chunk reads and
//! point lookups.

use super::parse::{self, Unexpected};
use super::{is_container, len_cmd, RedisStore};
use crate::resp::Frame;
use crate::verify::model::{Content, Depth, KeyState, KeyType, ValueState};
use crate::verify::store::{Piece, Pos, ScanUnit, Store, StoreError};
use bytes::Bytes;

fn num(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

impl RedisStore {
    fn err_reply(&self, cmd: &str, f: &Frame) -> StoreError {
        self.reply(cmd, Unexpected(f.to_string_lossy()))
    }

    /// Parses the fetch reply of a container read in round 2; `None` = incomplete (big).
    fn parse_fetch(&self, ty: KeyType, f: &Frame) -> Result<Option<Content>, StoreError> {
        let r = match ty {
            KeyType::List => parse::list(f).map(Some),
            KeyType::Zset => parse::zset(f).map(Some),
            KeyType::Stream => parse::stream(f).map(|v| Some(Content::Stream(v))),
            KeyType::Set => parse::scan_reply(f).and_then(|(c, items)| {
                if c != 0 {
                    return Ok(None);
                }
                parse::set_members(items).map(|v| Some(Content::Set(v)))
            }),
            KeyType::Hash => parse::scan_reply(f).and_then(|(c, items)| {
                if c != 0 {
                    return Ok(None);
                }
                parse::pairs(items).map(|v| Some(Content::Hash(v)))
            }),
            _ => Ok(None),
        };
        r.map_err(|e| self.reply(ty.name(), e)).map(|c| {
            c.map(|mut c| {
                c.normalize();
                c
            })
        })
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
                out.push(ScanUnit {
                    node,
                    db: 0,
                    keys,
                    label: format!("{addr}/0"),
                });
            }
        } else {
            let info = self.admin(&masters[0], &[b"INFO", b"keyspace"]).await?;
            let text = info.as_bytes().ok_or_else(|| self.err_reply("INFO keyspace", &info))?;
            for (db, keys) in parse::keyspace(text) {
                if dbs.is_empty() || dbs.contains(&db) {
                    out.push(ScanUnit {
                        node: 0,
                        db,
                        keys,
                        label: format!("{}/{db}", masters[0]),
                    });
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
        // Round 1: TYPE [+ PTTL] [+ GET, which answers WRONGTYPE for non-strings].
        let per = match depth {
            Depth::Keys => 1,
            Depth::Meta => 2,
            Depth::Full => 3,
        };
        let r1 = self
            .run_keys(db, keys, per, |p, _, k| {
                p.push_args(&[&b"TYPE"[..], k]);
                if depth >= Depth::Meta {
                    p.push_args(&[&b"PTTL"[..], k]);
                }
                if depth == Depth::Full {
                    p.push_args(&[&b"GET"[..], k]);
                }
            })
            .await?;
        let mut states = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            let f = &r1[i * per..(i + 1) * per];
            let ty = match &f[0] {
                Frame::Simple(t) | Frame::Bulk(t) => KeyType::from_type_reply(t),
                other => return Err(self.err_reply("TYPE", other)),
            };
            let mut s = KeyState {
                ty,
                pttl: None,
                len: None,
                value: ValueState::NotRead,
            };
            if ty.is_none() {
                states.push(KeyState::MISSING);
                continue;
            }
            if depth >= Depth::Meta {
                let pttl = parse::int(&f[1]).map_err(|e| self.reply("PTTL", e))?;
                if pttl == -2 {
                    states.push(KeyState::MISSING); // deleted between TYPE and PTTL
                    continue;
                }
                s.pttl = Some(pttl.max(-1));
            }
            if depth == Depth::Full && ty == Some(KeyType::String) {
                match &f[2] {
                    Frame::Bulk(b) => {
                        s.len = Some(b.len() as u64);
                        s.value = ValueState::Whole(Content::Str(b.clone()));
                    }
                    Frame::Null => {
                        states.push(KeyState::MISSING);
                        continue;
                    }
                    // The key changed type between TYPE and GET: read it again in round 2.
                    _ => {}
                }
            }
            states.push(s);
        }
        if depth == Depth::Keys {
            return Ok(states);
        }
        // Round 2: lengths (meta) or length + first piece (full) of containers.
        let todo: Vec<usize> = (0..keys.len())
            .filter(|&i| match depth {
                Depth::Full => {
                    is_container(states[i].ty) || (states[i].ty == Some(KeyType::String) && states[i].len.is_none())
                }
                _ => states[i].ty.is_some() && states[i].ty != Some(KeyType::Other),
            })
            .collect();
        if todo.is_empty() {
            return Ok(states);
        }
        let sub: Vec<Bytes> = todo.iter().map(|&i| keys[i].clone()).collect();
        let types: Vec<KeyType> = todo.iter().map(|&i| states[i].ty.unwrap_or(KeyType::Other)).collect();
        let per2 = if depth == Depth::Full { 2 } else { 1 };
        let (bn, bm) = (num(big), num(big.saturating_sub(1)));
        let r2 = self
            .run_keys(db, &sub, per2, |p, j, k| {
                let ty = types[j];
                p.push_args(&[len_cmd(ty), k]);
                if per2 == 2 {
                    match ty {
                        KeyType::List => p.push_args(&[&b"LRANGE"[..], k, b"0", &bm]),
                        KeyType::Zset => p.push_args(&[&b"ZRANGE"[..], k, b"0", &bm, b"WITHSCORES"]),
                        KeyType::Stream => p.push_args(&[&b"XRANGE"[..], k, b"-", b"+", b"COUNT", &bn]),
                        KeyType::Set => p.push_args(&[&b"SSCAN"[..], k, b"0", b"COUNT", &bn]),
                        KeyType::Hash => p.push_args(&[&b"HSCAN"[..], k, b"0", b"COUNT", &bn]),
                        _ => p.push_args(&[&b"GET"[..], k]),
                    }
                }
            })
            .await?;
        for (j, &i) in todo.iter().enumerate() {
            let ty = types[j];
            let lf = &r2[j * per2];
            let len = match parse::int(lf) {
                Ok(n) => n.max(0) as u64,
                // WRONGTYPE: the key changed type since round 1; report what round 1 saw, unread.
                Err(_) if lf.is_error() => continue,
                Err(e) => return Err(self.reply(std::str::from_utf8(len_cmd(ty)).unwrap_or("len"), e)),
            };
            states[i].len = Some(len);
            if per2 == 1 {
                continue;
            }
            let vf = &r2[j * per2 + 1];
            if vf.is_error() {
                continue;
            }
            if ty == KeyType::String {
                if let Frame::Bulk(b) = vf {
                    states[i].len = Some(b.len() as u64);
                    states[i].value = ValueState::Whole(Content::Str(b.clone()));
                }
                continue;
            }
            if len > big {
                states[i].value = ValueState::Big;
                continue;
            }
            states[i].value = match self.parse_fetch(ty, vf)? {
                Some(c) if c.len() == len => ValueState::Whole(c),
                // Incomplete first piece (sparse hashtable) or changed meanwhile: compare in chunks.
                _ => ValueState::Big,
            };
        }
        Ok(states)
    }

    async fn piece(&self, db: u32, key: &Bytes, ty: KeyType, pos: Pos, count: u64) -> Result<Piece, StoreError> {
        let count = count.max(1);
        match (ty, pos) {
            (KeyType::String, Pos::Index(i)) => {
                let (a, b) = (num(i), num(i + count - 1));
                let f = self.one(db, key, &[b"GETRANGE", key, &a, &b]).await?;
                let v = parse::bytes(&f).map_err(|e| self.reply("GETRANGE", e))?;
                let next = (v.len() as u64 == count).then_some(Pos::Index(i + count));
                Ok(Piece {
                    content: Content::Str(v),
                    next,
                })
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
                let f = self
                    .one(db, key, &[b"XRANGE", key, &start, b"+", b"COUNT", &num(count)])
                    .await?;
                let v = parse::stream(&f).map_err(|e| self.reply("XRANGE", e))?;
                let next = match v.last() {
                    Some(e) if v.len() as u64 == count => Some(match e.seq.checked_add(1) {
                        Some(s) => Pos::StreamId(e.ms, s),
                        None => Pos::StreamId(e.ms.saturating_add(1), 0),
                    }),
                    _ => None,
                };
                Ok(Piece {
                    content: Content::Stream(v),
                    next,
                })
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
                Ok(Piece {
                    content,
                    next: (next != 0).then_some(Pos::Cursor(next)),
                })
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
        let r = if ty == KeyType::Hash {
            parse::optional_strings(&f)
        } else {
            parse::membership(&f)
        };
        r.map_err(|e| self.reply(if ty == KeyType::Hash { "HMGET" } else { "SMISMEMBER" }, e))
    }
}
