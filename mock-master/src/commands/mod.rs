//! Ordinary client commands: dispatch, argument helpers, and the journaling context that applies
//! Dragonfly's rewrite and txid rules (spec 6.3, 6.4).

mod collections;
mod keys;
mod paging;
mod stream;

use bytes::Bytes;
use df2redis::proto::event::CommandKind;
use df2redis::proto::Value;

use crate::dataset::Entry;
use crate::master::State;
use crate::resp::Reply;

/// Result of a command: the reply, or an error reply.
pub type CmdResult = Result<Reply, Reply>;

/// `-WRONGTYPE …`
pub fn wrongtype() -> Reply {
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

/// `-ERR syntax error`
pub fn syntax() -> Reply {
    Reply::err("syntax error")
}

/// `-ERR value is not an integer or out of range`
pub fn not_int() -> Reply {
    Reply::err("value is not an integer or out of range")
}

/// `-ERR wrong number of arguments for '<cmd>' command`
pub fn arity(cmd: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{}' command", cmd.to_ascii_lowercase()))
}

/// Parses an integer argument.
pub fn int_arg(b: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(not_int)
}

/// Parses a float argument (`inf`, `-inf` allowed).
pub fn float_arg(b: &[u8]) -> Result<f64, Reply> {
    let s = std::str::from_utf8(b).map_err(|_| Reply::err("value is not a valid float"))?;
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse::<f64>().map_err(|_| Reply::err("value is not a valid float"))?,
    };
    if v.is_nan() {
        return Err(Reply::err("value is not a valid float"));
    }
    Ok(v)
}

/// Formats a double the way Redis replies it (shortest round trip).
pub fn fmt_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.fract() == 0.0 && v.abs() < 1e17 {
        return format!("{}", v as i64);
    }
    format!("{v:?}")
}

/// The command context: current db, clock, and the journal records the command produces.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Master state.
    pub st: &'a mut State,
    /// Selected database.
    pub db: u32,
    /// Now, Unix ms.
    pub now: u64,
    writes: Vec<(u32, Vec<Bytes>)>,
    force_txid: bool,
}

impl<'a> Ctx<'a> {
    /// A context for one command.
    pub fn new(st: &'a mut State, db: u32) -> Self {
        let now = st.cfg.clock.now_ms();
        Ctx { st, db, now, writes: Vec::new(), force_txid: false }
    }

    /// The live entry of `key` (lazily expiring it, which journals a `DEL` with txid 0).
    pub fn live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let expired = self.st.data.get(self.db, key).is_some_and(|e| e.expired(self.now));
        if expired {
            self.st.touch(self.db, key);
            if let Some(m) = self.st.data.db_mut(self.db) {
                m.remove(key);
            }
            self.st.publish_expired(self.db, Bytes::copy_from_slice(key));
            return None;
        }
        self.st.data.db_mut(self.db)?.get_mut(key)
    }

    /// Whether `key` exists (live).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.live(key).is_some()
    }

    /// The live entry of `key` for a write: flows still holding it unserialized write it first.
    pub fn live_for_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if self.exists(key) {
            self.st.touch(self.db, key);
        }
        self.live(key)
    }

    /// Stores a value (replacing), after letting snapshotting flows serialize the old one.
    pub fn store(&mut self, key: &Bytes, entry: Entry) {
        self.st.touch(self.db, key);
        let db = self.db;
        self.st.data.insert(db, key.clone(), entry);
    }

    /// Removes a key; returns whether it existed (live).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        if !self.exists(key) {
            return false;
        }
        self.st.touch(self.db, key);
        self.st.data.db_mut(self.db).and_then(|m| m.remove(key)).is_some()
    }

    /// Journals `args` on the shard of `key`.
    pub fn journal(&mut self, key: &[u8], args: Vec<Bytes>) {
        let shard = self.st.shard(key);
        self.writes.push((shard, args));
    }

    /// Journals a multi-key command split per shard: one record per shard holding
    /// `name` followed by the arguments of the items on that shard, in order.
    pub fn journal_split(&mut self, name: &'static str, items: Vec<(Bytes, Vec<Bytes>)>) {
        let mut per: std::collections::BTreeMap<u32, Vec<Bytes>> = Default::default();
        for (key, args) in items {
            let shard = self.st.shard(&key);
            per.entry(shard).or_insert_with(|| vec![Bytes::from_static(name.as_bytes())]).extend(args);
        }
        for (shard, args) in per {
            self.writes.push((shard, args));
        }
    }

    /// Marks the command as transactional (non-zero txid even on one shard: SMOVE, *STORE, COPY).
    pub fn transactional(&mut self) {
        self.force_txid = true;
    }

    /// Publishes the journal records with Dragonfly's txid / shard_cnt rules.
    pub fn finish(self) {
        if self.writes.is_empty() {
            return;
        }
        let mut shards: Vec<u32> = self.writes.iter().map(|(s, _)| *s).collect();
        shards.sort_unstable();
        shards.dedup();
        let txid = if shards.len() > 1 || self.force_txid { self.st.alloc_txid() } else { 0 };
        let shard_cnt = if self.st.cfg.release.shard_cnt_always_one() { 1 } else { shards.len() as u64 };
        for (shard, args) in self.writes {
            self.st.publish_command(shard, self.db, CommandKind::Command, txid, shard_cnt, args);
        }
    }
}

/// Runs one client command (not a replication command) and returns its reply.
pub fn execute(st: &mut State, db: &mut u32, args: &[Bytes]) -> Reply {
    let Some(name) = args.first() else {
        return Reply::err("empty command");
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let rest = &args[1..];
    if name == "SELECT" {
        return match rest {
            [d] => match int_arg(d) {
                Ok(n) if n >= 0 && (n as u64) < u64::from(st.data.db_count()) => {
                    *db = n as u32;
                    Reply::ok()
                }
                Ok(_) => Reply::err("DB index is out of range"),
                Err(e) => e,
            },
            _ => arity(&name),
        };
    }
    if name == "FLUSHALL" || name == "FLUSHDB" {
        return flush(st, *db, &name, args);
    }
    let mut ctx = Ctx::new(st, *db);
    let r = keys::run(&mut ctx, &name, rest)
        .or_else(|| collections::run(&mut ctx, &name, rest))
        .or_else(|| stream::run(&mut ctx, &name, rest))
        .or_else(|| paging::run(&mut ctx, &name, rest))
        .unwrap_or_else(|| Err(Reply::err(format!("unknown command '{}'", String::from_utf8_lossy(&args[0])))));
    match r {
        Ok(reply) => {
            ctx.finish();
            reply
        }
        Err(e) => {
            ctx.finish();
            e
        }
    }
}

fn flush(st: &mut State, db: u32, name: &str, args: &[Bytes]) -> Reply {
    for a in &args[1..] {
        if !a.eq_ignore_ascii_case(b"ASYNC") && !a.eq_ignore_ascii_case(b"SYNC") {
            return syntax();
        }
    }
    if name == "FLUSHALL" {
        for d in 0..st.data.db_count() {
            if let Some(m) = st.data.db_mut(d) {
                m.clear();
            }
        }
    } else if let Some(m) = st.data.db_mut(db) {
        m.clear();
    }
    if st.journals.iter().any(|j| j.active) {
        let txid = st.alloc_txid();
        let shards = st.shards();
        let cnt = if st.cfg.release.shard_cnt_always_one() { 1 } else { u64::from(shards) };
        let mut out_args = vec![Bytes::from(name.to_string())];
        out_args.extend(args[1..].iter().cloned());
        for shard in 0..shards {
            st.publish_command(shard, db, CommandKind::Command, txid, cnt, out_args.clone());
        }
    }
    Reply::ok()
}

/// The value kind check used by typed commands.
pub fn kind_of(v: &Value) -> &'static str {
    v.kind_name()
}
