//! The pipelined probe rounds of [`RedisStore`]: what a batch of keys looks like on one side.
//!
//! Full depth, standalone: round 1 is one `MGET` of the whole batch plus `PTTL` per key, so a
//! string costs about one command (MGET answers nil for other types); cluster: `PTTL` + `GET` per
//! key (GET answers WRONGTYPE). Keys that are not strings then get `TYPE`, then their length and
//! a first read bounded by the big-key threshold. Keys/meta depth: `TYPE` [+ `PTTL`], then the
//! length.

use super::parse;
use super::store_impl::num;
use super::{len_cmd, RedisStore};
use crate::resp::Frame;
use crate::verify::model::{Content, Depth, KeyState, KeyType, ValueState};
use crate::verify::store::StoreError;
use bytes::Bytes;

impl RedisStore {
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

    /// Runs commands pushed by `push` (producing `replies` replies) on a standalone side.
    async fn on_single<F>(&self, db: u32, replies: usize, push: F) -> Result<Vec<Frame>, StoreError>
    where
        F: FnOnce(&mut crate::resp::Pipeline),
    {
        let addr = self.masters()[0].clone();
        let pool = self.pool(&addr, db);
        let mut p = pool.get().await.map_err(|e| self.io(e))?;
        push(&mut p);
        let mut out = Vec::with_capacity(replies);
        for _ in 0..replies {
            out.push(p.next_reply().await.map_err(|e| self.io(e))?);
        }
        pool.put(p);
        Ok(out)
    }

    /// Which keys exist: one multi-key `EXISTS` on a standalone side (per-key `EXISTS` when
    /// some are missing, or on a cluster).
    pub(super) async fn exists_many(&self, db: u32, keys: &[Bytes]) -> Result<Vec<bool>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if !self.is_cluster() {
            let f = self
                .on_single(db, 1, |p| {
                    let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
                    args.push(b"EXISTS");
                    args.extend(keys.iter().map(|k| &k[..]));
                    p.push_args(&args);
                })
                .await?;
            let n = parse::int(&f[0]).map_err(|e| self.reply("EXISTS", e))?;
            if n == keys.len() as i64 {
                return Ok(vec![true; keys.len()]);
            }
        }
        let f = self.run_keys(db, keys, 1, |p, _, k| p.push_args(&[&b"EXISTS"[..], k])).await?;
        f.iter().map(|x| parse::int(x).map(|n| n > 0).map_err(|e| self.reply("EXISTS", e))).collect()
    }

    /// Keys / meta depth.
    pub(super) async fn probe_meta(&self, db: u32, keys: &[Bytes], depth: Depth) -> Result<Vec<KeyState>, StoreError> {
        let per = if depth == Depth::Keys { 1 } else { 2 };
        let r1 = self
            .run_keys(db, keys, per, |p, _, k| {
                p.push_args(&[&b"TYPE"[..], k]);
                if per == 2 {
                    p.push_args(&[&b"PTTL"[..], k]);
                }
            })
            .await?;
        let mut states = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            let ty = self.type_of(&r1[i * per])?;
            if ty.is_none() {
                states.push(KeyState::MISSING);
                continue;
            }
            let mut s = KeyState { ty, pttl: None, len: None, value: ValueState::NotRead };
            if per == 2 {
                let pttl = parse::int(&r1[i * per + 1]).map_err(|e| self.reply("PTTL", e))?;
                if pttl == -2 {
                    states.push(KeyState::MISSING); // deleted between TYPE and PTTL
                    continue;
                }
                s.pttl = Some(pttl.max(-1));
            }
            states.push(s);
        }
        if depth == Depth::Meta {
            let todo: Vec<usize> =
                (0..keys.len()).filter(|&i| states[i].ty.is_some_and(|t| t != KeyType::Other)).collect();
            self.read_containers(db, keys, &mut states, &todo, false, 0).await?;
        }
        Ok(states)
    }

    fn type_of(&self, f: &Frame) -> Result<Option<KeyType>, StoreError> {
        match f {
            Frame::Simple(t) | Frame::Bulk(t) => Ok(KeyType::from_type_reply(t)),
            other => Err(self.err_reply("TYPE", other)),
        }
    }

    /// Full depth.
    pub(super) async fn probe_full(&self, db: u32, keys: &[Bytes], big: u64) -> Result<Vec<KeyState>, StoreError> {
        let n = keys.len();
        // Round 1: values of strings + PTTL of everything.
        let (vals, pttls): (Vec<Frame>, Vec<Frame>) = if self.is_cluster() {
            let f = self
                .run_keys(db, keys, 2, |p, _, k| {
                    p.push_args(&[&b"PTTL"[..], k]);
                    p.push_args(&[&b"GET"[..], k]);
                })
                .await?;
            let mut it = f.into_iter();
            let mut v = Vec::with_capacity(n);
            let mut t = Vec::with_capacity(n);
            while let (Some(a), Some(b)) = (it.next(), it.next()) {
                t.push(a);
                v.push(b);
            }
            (v, t)
        } else {
            let mut f = self
                .on_single(db, n + 1, |p| {
                    let mut args: Vec<&[u8]> = Vec::with_capacity(n + 1);
                    args.push(b"MGET");
                    args.extend(keys.iter().map(|k| &k[..]));
                    p.push_args(&args);
                    for k in keys {
                        p.push_args(&[&b"PTTL"[..], k]);
                    }
                })
                .await?;
            let pttls = f.split_off(1);
            let vals = match f.pop() {
                Some(Frame::Array(v)) if v.len() == n => v,
                Some(other) => return Err(self.err_reply("MGET", &other)),
                None => return Err(self.reply("MGET", parse::Unexpected("no reply".into()))),
            };
            (vals, pttls)
        };
        let mut states = Vec::with_capacity(n);
        let mut unknown = Vec::new();
        for i in 0..n {
            let pttl = parse::int(&pttls[i]).map_err(|e| self.reply("PTTL", e))?;
            if pttl == -2 {
                states.push(KeyState::MISSING);
                continue;
            }
            match &vals[i] {
                Frame::Bulk(b) => states.push(KeyState {
                    ty: Some(KeyType::String),
                    pttl: Some(pttl.max(-1)),
                    len: Some(b.len() as u64),
                    value: ValueState::Whole(Content::Str(b.clone())),
                }),
                _ => {
                    unknown.push(i);
                    states.push(KeyState { ty: None, pttl: Some(pttl.max(-1)), len: None, value: ValueState::NotRead });
                }
            }
        }
        if unknown.is_empty() {
            return Ok(states);
        }
        // Round 2: the type of everything that is not a string.
        let sub: Vec<Bytes> = unknown.iter().map(|&i| keys[i].clone()).collect();
        let types = self.run_keys(db, &sub, 1, |p, _, k| p.push_args(&[&b"TYPE"[..], k])).await?;
        let mut todo = Vec::with_capacity(unknown.len());
        for (j, &i) in unknown.iter().enumerate() {
            match self.type_of(&types[j])? {
                None => states[i] = KeyState::MISSING,
                Some(t) => {
                    states[i].ty = Some(t);
                    if t != KeyType::Other {
                        todo.push(i);
                    }
                }
            }
        }
        // Round 3: length + first bounded read.
        self.read_containers(db, keys, &mut states, &todo, true, big).await?;
        Ok(states)
    }

    /// Reads the length (and with `values`, a first piece of at most `big` elements) of the keys
    /// at `todo`, whose types are known.
    async fn read_containers(
        &self,
        db: u32,
        keys: &[Bytes],
        states: &mut [KeyState],
        todo: &[usize],
        values: bool,
        big: u64,
    ) -> Result<(), StoreError> {
        if todo.is_empty() {
            return Ok(());
        }
        let sub: Vec<Bytes> = todo.iter().map(|&i| keys[i].clone()).collect();
        let types: Vec<KeyType> = todo.iter().map(|&i| states[i].ty.unwrap_or(KeyType::Other)).collect();
        let per = if values { 2 } else { 1 };
        let (bn, bm) = (num(big), num(big.saturating_sub(1)));
        let r = self
            .run_keys(db, &sub, per, |p, j, k| {
                let ty = types[j];
                p.push_args(&[len_cmd(ty), k]);
                if per == 2 {
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
            let lf = &r[j * per];
            let len = match parse::int(lf) {
                Ok(n) => n.max(0) as u64,
                // WRONGTYPE: the key changed type since it was typed; leave it unread.
                Err(_) if lf.is_error() => continue,
                Err(e) => return Err(self.reply(std::str::from_utf8(len_cmd(ty)).unwrap_or("len"), e)),
            };
            states[i].len = Some(len);
            if per == 1 {
                continue;
            }
            let vf = &r[j * per + 1];
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
        Ok(())
    }
}
