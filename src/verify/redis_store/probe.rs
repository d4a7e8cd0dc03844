//! The pipelined probe rounds of [`RedisStore`]: what a batch of keys looks like on one side.
//!
//! Full depth, round 1: standalone, one `MGET` of the whole batch plus `PTTL` per key; cluster,
//! `PTTL` + `GET` per key (GET answers WRONGTYPE). A string thus costs about one command. When the
//! other side's states are given as hints (`probe_full` with `like`), a key the other side saw as
//! a container also gets its bounded first read in round 1, so `TYPE` is skipped for it when the
//! guess is right. Round 2: `TYPE` of the keys still unknown. Round 3: the bounded first read
//! (`LRANGE 0 T-1`, `ZRANGE 0 T-1 WITHSCORES`, `XRANGE - + COUNT T`, `SSCAN`/`HSCAN 0 COUNT T`).
//! A first read that is provably complete (a range of fewer than T elements; a scan back at
//! cursor 0 with at most T elements) gives the length too; only the others get a length command
//! in round 4. Keys/meta depth: `TYPE` [+ `PTTL`], then the length.

use super::parse;
use super::store_impl::num;
use super::{len_cmd, RedisStore};
use crate::resp::{Frame, Pipeline};
use crate::verify::model::{Content, Depth, KeyState, KeyType, ValueState};
use crate::verify::store::StoreError;
use bytes::Bytes;

impl RedisStore {
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
            self.read_lengths(db, keys, &mut states, &todo).await?;
        }
        Ok(states)
    }

    fn type_of(&self, f: &Frame) -> Result<Option<KeyType>, StoreError> {
        match f {
            Frame::Simple(t) | Frame::Bulk(t) => Ok(KeyType::from_type_reply(t)),
            other => Err(self.err_reply("TYPE", other)),
        }
    }

    /// Full depth. `like`: the other side's states of the same keys (type hints), if known.
    pub(super) async fn probe_full(
        &self,
        db: u32,
        keys: &[Bytes],
        big: u64,
        like: Option<&[KeyState]>,
    ) -> Result<Vec<KeyState>, StoreError> {
        let n = keys.len();
        let guess = |i: usize| like.and_then(|l| l[i].ty).filter(|t| is_container(*t));
        let bounds = Bounds::new(big);
        // Round 1: PTTL of everything, values of strings, first reads of guessed containers.
        // Per key: (pttl, value-or-error, guessed first read).
        let mut r1: Vec<(Frame, Frame, Option<Frame>)> = Vec::with_capacity(n);
        if self.is_cluster() {
            let (f, starts) = self
                .run_keys_var(db, keys, |p, i, k| {
                    p.push_args(&[&b"PTTL"[..], k]);
                    p.push_args(&[&b"GET"[..], k]);
                    match guess(i) {
                        Some(t) => {
                            bounds.push_first(p, t, k);
                            3
                        }
                        None => 2,
                    }
                })
                .await?;
            let mut it = f.into_iter();
            for w in starts.windows(2) {
                let (a, b) = (it.next().unwrap_or(Frame::Null), it.next().unwrap_or(Frame::Null));
                let c = if w[1] - w[0] == 3 { it.next() } else { None };
                r1.push((a, b, c));
            }
        } else {
            let guessed: Vec<bool> = (0..n).map(|i| guess(i).is_some()).collect();
            let replies = 1 + n + guessed.iter().filter(|g| **g).count();
            let f = self
                .on_single(db, replies, |p| {
                    let mut args: Vec<&[u8]> = Vec::with_capacity(n + 1);
                    args.push(b"MGET");
                    args.extend(keys.iter().map(|k| &k[..]));
                    p.push_args(&args);
                    for (i, k) in keys.iter().enumerate() {
                        p.push_args(&[&b"PTTL"[..], k]);
                        if let Some(t) = guess(i) {
                            bounds.push_first(p, t, k);
                        }
                    }
                })
                .await?;
            let mut it = f.into_iter();
            let vals = match it.next() {
                Some(Frame::Array(v)) if v.len() == n => v,
                Some(other) => return Err(self.err_reply("MGET", &other)),
                None => return Err(self.reply("MGET", parse::Unexpected("no reply".into()))),
            };
            for (v, g) in vals.into_iter().zip(guessed) {
                let pttl = it.next().unwrap_or(Frame::Null);
                let c = if g { it.next() } else { None };
                r1.push((pttl, v, c));
            }
        }
        let mut states = Vec::with_capacity(n);
        let mut unknown = Vec::new();
        let mut lengths = Vec::new();
        for (i, (pttl, val, first)) in r1.into_iter().enumerate() {
            let pttl = parse::int(&pttl).map_err(|e| self.reply("PTTL", e))?;
            if pttl == -2 {
                states.push(KeyState::MISSING);
                continue;
            }
            let mut st = KeyState { ty: None, pttl: Some(pttl.max(-1)), len: None, value: ValueState::NotRead };
            if let Frame::Bulk(b) = val {
                st.ty = Some(KeyType::String);
                st.len = Some(b.len() as u64);
                st.value = ValueState::Whole(Content::Str(b));
                states.push(st);
                continue;
            }
            // A guessed first read settles the type only when it returned elements (an error is
            // another type; an empty reply may be a key of another type that appeared since).
            match (guess(i), first) {
                (Some(t), Some(f)) => match self.classify(t, &f, big)? {
                    Some(First::Done(c)) => {
                        st.ty = Some(t);
                        st.len = Some(c.len());
                        st.value = ValueState::Whole(c);
                    }
                    Some(First::More(c)) => {
                        st.ty = Some(t);
                        st.value = c.map_or(ValueState::Big, ValueState::Whole);
                        lengths.push(i);
                    }
                    Some(First::Empty) | None => unknown.push(i),
                },
                _ => unknown.push(i),
            }
            states.push(st);
        }
        if !unknown.is_empty() {
            // Round 2: the type of everything still unknown.
            let sub: Vec<Bytes> = unknown.iter().map(|&i| keys[i].clone()).collect();
            let types = self.run_keys(db, &sub, 1, |p, _, k| p.push_args(&[&b"TYPE"[..], k])).await?;
            let mut todo = Vec::with_capacity(unknown.len());
            for (j, &i) in unknown.iter().enumerate() {
                match self.type_of(&types[j])? {
                    None => states[i] = KeyState::MISSING,
                    Some(t) => {
                        states[i].ty = Some(t);
                        if is_container(t) {
                            todo.push(i);
                        }
                    }
                }
            }
            // Round 3: the first bounded read.
            self.read_first(db, keys, &mut states, &todo, big, &mut lengths).await?;
        }
        // Round 4: the length of values whose first read was not provably complete.
        self.read_lengths(db, keys, &mut states, &lengths).await?;
        for &i in &lengths {
            let st = &mut states[i];
            st.value = match (std::mem::replace(&mut st.value, ValueState::NotRead), st.len) {
                (ValueState::Whole(c), Some(len)) if len <= big && c.len() == len => ValueState::Whole(c),
                // Unknown length (the key changed type meanwhile): left unread, the next round
                // re-reads it.
                (_, None) => ValueState::NotRead,
                // Longer than the threshold, or a sparse first scan: compare in chunks.
                _ => ValueState::Big,
            };
        }
        Ok(states)
    }

    /// Sorts a first read of a value of type `ty`: `None` = an error reply (another type).
    fn classify(&self, ty: KeyType, f: &Frame, big: u64) -> Result<Option<First>, StoreError> {
        if f.is_error() {
            return Ok(None);
        }
        let done = |c: Content, complete: bool| {
            Some(if c.is_empty() {
                First::Empty
            } else if complete {
                First::Done(c)
            } else {
                First::More(Some(c))
            })
        };
        let r = match ty {
            KeyType::List => parse::list(f).map(|c| {
                let full = c.len() < big;
                done(c, full)
            }),
            KeyType::Zset => parse::zset(f).map(|c| {
                let full = c.len() < big;
                done(c, full)
            }),
            KeyType::Stream => parse::stream(f).map(|v| {
                let c = Content::Stream(v);
                let full = c.len() < big;
                done(c, full)
            }),
            KeyType::Set | KeyType::Hash => parse::scan_reply(f).and_then(|(cursor, items)| {
                let mut c = if ty == KeyType::Set {
                    Content::Set(parse::set_members(items)?)
                } else {
                    Content::Hash(parse::pairs(items)?)
                };
                c.normalize();
                // Back at cursor 0: one call walked the whole value.
                Ok(if cursor == 0 && c.len() <= big { done(c, true) } else { Some(First::More(None)) })
            }),
            _ => Ok(None),
        };
        r.map_err(|e| self.reply(ty.name(), e))
    }

    /// Round 3: the first bounded read of the keys at `todo` (types known). Keys whose read was
    /// not provably complete are added to `lengths`.
    async fn read_first(
        &self,
        db: u32,
        keys: &[Bytes],
        states: &mut [KeyState],
        todo: &[usize],
        big: u64,
        lengths: &mut Vec<usize>,
    ) -> Result<(), StoreError> {
        if todo.is_empty() {
            return Ok(());
        }
        let sub: Vec<Bytes> = todo.iter().map(|&i| keys[i].clone()).collect();
        let types: Vec<KeyType> = todo.iter().map(|&i| states[i].ty.unwrap_or(KeyType::Other)).collect();
        let bounds = Bounds::new(big);
        let r = self.run_keys(db, &sub, 1, |p, j, k| bounds.push_first(p, types[j], k)).await?;
        for (j, &i) in todo.iter().enumerate() {
            let ty = types[j];
            match self.classify(ty, &r[j], big)? {
                Some(First::Done(c)) => {
                    states[i].len = Some(c.len());
                    states[i].value = ValueState::Whole(c);
                }
                // Gone since TYPE, or an empty stream: the value is empty.
                Some(First::Empty) => {
                    let c = empty(ty);
                    states[i].len = Some(0);
                    states[i].value = ValueState::Whole(c);
                }
                Some(First::More(c)) => {
                    states[i].value = c.map_or(ValueState::Big, ValueState::Whole);
                    lengths.push(i);
                }
                // WRONGTYPE: the key changed type since it was typed; leave it unread.
                None => {}
            }
        }
        Ok(())
    }

    /// Reads the length of the keys at `todo`, whose types are known (a key whose length command
    /// fails, having changed type meanwhile, keeps `len: None`).
    async fn read_lengths(
        &self,
        db: u32,
        keys: &[Bytes],
        states: &mut [KeyState],
        todo: &[usize],
    ) -> Result<(), StoreError> {
        if todo.is_empty() {
            return Ok(());
        }
        let sub: Vec<Bytes> = todo.iter().map(|&i| keys[i].clone()).collect();
        let types: Vec<KeyType> = todo.iter().map(|&i| states[i].ty.unwrap_or(KeyType::Other)).collect();
        let r = self.run_keys(db, &sub, 1, |p, j, k| p.push_args(&[len_cmd(types[j]), k])).await?;
        for (j, &i) in todo.iter().enumerate() {
            match parse::int(&r[j]) {
                Ok(n) => states[i].len = Some(n.max(0) as u64),
                Err(_) if r[j].is_error() => {}
                Err(e) => return Err(self.reply(std::str::from_utf8(len_cmd(types[j])).unwrap_or("len"), e)),
            }
        }
        Ok(())
    }
}

/// What a first bounded read showed.
enum First {
    /// The whole value (non-empty).
    Done(Content),
    /// Part of it, or all of it without proof (ranges: the elements read; scans: `None`).
    More(Option<Content>),
    /// Nothing: an empty value, or no such key.
    Empty,
}

/// An empty value of a container type.
fn empty(ty: KeyType) -> Content {
    match ty {
        KeyType::List => Content::List(Vec::new()),
        KeyType::Set => Content::Set(Vec::new()),
        KeyType::Zset => Content::Zset(Vec::new()),
        KeyType::Hash => Content::Hash(Vec::new()),
        _ => Content::Stream(Vec::new()),
    }
}

/// True for the types read in pieces (everything but strings and unknown types).
fn is_container(ty: KeyType) -> bool {
    !matches!(ty, KeyType::String | KeyType::Other)
}

/// The arguments of first bounded reads: at most T elements (and at least one).
struct Bounds {
    count: Vec<u8>,
    last: Vec<u8>,
}

impl Bounds {
    fn new(big: u64) -> Bounds {
        Bounds { count: num(big.max(1)), last: num(big.max(1) - 1) }
    }

    /// Pushes the first bounded read of a container of type `ty` (`EXISTS` for other types,
    /// which [`RedisStore::classify`] ignores).
    fn push_first(&self, p: &mut Pipeline, ty: KeyType, k: &[u8]) {
        let (n, last) = (&self.count[..], &self.last[..]);
        match ty {
            KeyType::List => p.push_args(&[&b"LRANGE"[..], k, b"0", last]),
            KeyType::Zset => p.push_args(&[&b"ZRANGE"[..], k, b"0", last, b"WITHSCORES"]),
            KeyType::Stream => p.push_args(&[&b"XRANGE"[..], k, b"-", b"+", b"COUNT", n]),
            KeyType::Set => p.push_args(&[&b"SSCAN"[..], k, b"0", b"COUNT", n]),
            KeyType::Hash => p.push_args(&[&b"HSCAN"[..], k, b"0", b"COUNT", n]),
            KeyType::String | KeyType::Other => p.push_args(&[&b"EXISTS"[..], k]),
        }
    }
}
