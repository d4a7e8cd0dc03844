//! Ordinary client commands: dispatch, argument helpers, and the journaling context that applies
//! Dragonfly's rewrite and txid rules (spec 6.3, 6.4).

mod collections;
mod fieldttl;
mod generic;
mod groups;
mod hll;
mod keys;
mod lists;
mod paging;
mod script;
mod stores;
mod stream;
mod strings;

pub use stores::six_digits;

use bytes::Bytes;
use df2redis::proto::event::CommandKind;
use df2redis::proto::{JournalOp, JournalRecord, Value};

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

/// How the records of one context are grouped (spec 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One ordinary command: txid 0 unless the transaction spans shards.
    Single,
    /// A MULTI/EXEC body: one shared non-zero txid; MULTI_COMMAND + EXEC records up to v1.20.
    Multi,
    /// An EVAL script: a shared txid when its writes span shards; MULTI_COMMAND + EXEC up to v1.20.
    Script,
}

/// One journal record a command produced, not published yet.
#[derive(Debug, Clone)]
struct Pending {
    shard: u32,
    db: u32,
    args: Vec<Bytes>,
    shard_cnt: u64,
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
    writes: Vec<Pending>,
    tx_shards: std::collections::BTreeSet<u32>,
    mode: Mode,
    force_txid: bool,
    /// Set by a script's `redis.call`: INCR/DECR are journaled verbatim (Appendix F).
    pub in_script: bool,
}

impl<'a> Ctx<'a> {
    /// A context for one command.
    pub fn new(st: &'a mut State, db: u32) -> Self {
        Ctx::with_mode(st, db, Mode::Single)
    }

    /// A context for a transaction body or a script.
    pub fn with_mode(st: &'a mut State, db: u32, mode: Mode) -> Self {
        let now = st.cfg.clock.now_ms();
        Ctx {
            st,
            db,
            now,
            writes: Vec::new(),
            tx_shards: Default::default(),
            mode,
            force_txid: false,
            in_script: false,
        }
    }

    /// Marks the context as running a script (EVAL): txid rules of scripts, verbatim INCR.
    pub fn enter_script(&mut self) {
        self.in_script = true;
        if self.mode == Mode::Single {
            self.mode = Mode::Script;
        }
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
        self.take(key).is_some()
    }

    /// Removes a key and returns its live entry.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        if !self.exists(key) {
            return None;
        }
        self.st.touch(self.db, key);
        self.st.data.db_mut(self.db).and_then(|m| m.remove(key))
    }

    /// Declares the keys a multi-key command locks: a transaction over several shards gets a
    /// non-zero txid even when it journals on one flow only.
    pub fn declare<'k>(&mut self, keys: impl IntoIterator<Item = &'k Bytes>) {
        for k in keys {
            let s = self.st.shard(k);
            self.tx_shards.insert(s);
        }
    }

    /// Marks a multi-hop transaction (SMOVE, S*STORE, Z*STORE, COPY): Dragonfly gives it a
    /// non-zero txid even when every key is on one shard (Appendix F).
    pub fn multi_hop(&mut self) {
        self.force_txid = true;
    }

    /// Journals `args` on the shard of `key` (an explicit `RecordJournal`: shard_cnt 1).
    pub fn journal(&mut self, key: &[u8], args: Vec<Bytes>) {
        self.journal_cnt(key, args, 1);
    }

    /// Journals `args` on the shard of `key` with an explicit shard_cnt (before v1.38).
    pub fn journal_cnt(&mut self, key: &[u8], args: Vec<Bytes>, shard_cnt: u64) {
        let shard = self.st.shard(key);
        self.writes.push(Pending { shard, db: self.db, args, shard_cnt });
    }

    /// Journals `args` on one given shard (SCRIPT LOAD: flow 0).
    pub fn journal_on(&mut self, shard: u32, args: Vec<Bytes>) {
        self.writes.push(Pending { shard, db: self.db, args, shard_cnt: 1 });
    }

    /// Journals a multi-key command split per shard (Dragonfly's auto-journal): one record per
    /// shard holding `name` followed by the arguments of the items on that shard, in order;
    /// shard_cnt = number of shards involved. On one shard, `whole` (the full command) is
    /// journaled instead when given.
    pub fn journal_split(&mut self, name: &str, items: Vec<(Bytes, Vec<Bytes>)>) {
        let mut per: std::collections::BTreeMap<u32, Vec<Bytes>> = Default::default();
        for (key, args) in items {
            let shard = self.st.shard(&key);
            per.entry(shard).or_insert_with(|| vec![Bytes::from(name.to_string())]).extend(args);
        }
        let cnt = per.len() as u64;
        for (shard, args) in per {
            self.writes.push(Pending { shard, db: self.db, args, shard_cnt: cnt });
        }
    }

    /// Publishes the journal records with Dragonfly's txid / shard_cnt / opcode rules.
    pub fn finish(self) {
        if self.writes.is_empty() {
            return;
        }
        let rel = self.st.cfg.release;
        let mut shards: std::collections::BTreeSet<u32> = self.tx_shards;
        shards.extend(self.writes.iter().map(|w| w.shard));
        let grouped = self.mode != Mode::Single && rel.multi_exec_opcodes();
        let txid = match self.mode {
            Mode::Multi => self.st.alloc_txid(),
            _ if grouped || shards.len() > 1 || self.force_txid => self.st.alloc_txid(),
            _ => 0,
        };
        let one = rel.shard_cnt_always_one();
        let kind = if grouped { CommandKind::MultiCommand } else { CommandKind::Command };
        let mut written: Vec<(u32, u32)> = Vec::new();
        for w in self.writes {
            let cnt = if one { 1 } else { w.shard_cnt };
            if !written.iter().any(|(s, _)| *s == w.shard) {
                written.push((w.shard, w.db));
            }
            self.st.publish_command(w.shard, w.db, kind, txid, cnt, w.args);
        }
        if grouped {
            let cnt = written.len() as u64;
            for (shard, db) in written {
                self.st.publish(shard, JournalRecord { db, op: JournalOp::Exec { txid, shard_cnt: cnt } });
            }
        }
    }
}

/// Per-connection client state: selected db and a MULTI queue.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Selected database.
    pub db: u32,
    /// Commands queued since MULTI (`None`: not in a transaction).
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC aborts.
    pub multi_failed: bool,
}

impl Client {
    /// A client on `db`.
    pub fn on(db: u32) -> Self {
        Client { db, ..Client::default() }
    }
}

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

/// Runs one client command (not a replication command) and returns its reply.
pub fn execute(st: &mut State, client: &mut Client, args: &[Bytes]) -> Reply {
    let Some(name) = args.first() else {
        return Reply::err("empty command");
    };
    let name = upper(name);
    match name.as_str() {
        "MULTI" => {
            if client.multi.is_some() {
                return Reply::err("MULTI calls can not be nested");
            }
            client.multi = Some(Vec::new());
            client.multi_failed = false;
            return Reply::ok();
        }
        "DISCARD" => {
            return match client.multi.take() {
                Some(_) => Reply::ok(),
                None => Reply::err("DISCARD without MULTI"),
            };
        }
        "EXEC" => {
            let Some(queue) = client.multi.take() else {
                return Reply::err("EXEC without MULTI");
            };
            if client.multi_failed {
                return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
            }
            return exec_multi(st, &mut client.db, &queue);
        }
        _ => {}
    }
    if let Some(q) = client.multi.as_mut() {
        if !known(&name) {
            client.multi_failed = true;
            return Reply::err(format!("unknown command '{}'", String::from_utf8_lossy(&args[0])));
        }
        q.push(args.to_vec());
        return Reply::Simple("QUEUED".into());
    }
    if name == "FLUSHALL" || name == "FLUSHDB" {
        return flush(st, client.db, &name, args);
    }
    let mut ctx = Ctx::new(st, client.db);
    let r = run_one(&mut ctx, &mut client.db, &name, args);
    ctx.finish();
    r
}

/// Runs a MULTI/EXEC body: every write journaled with one shared txid (spec 6.3, 6.4).
pub fn exec_multi(st: &mut State, db: &mut u32, queue: &[Vec<Bytes>]) -> Reply {
    let mut ctx = Ctx::with_mode(st, *db, Mode::Multi);
    let mut replies = Vec::with_capacity(queue.len());
    for args in queue {
        let name = upper(&args[0]);
        if name == "FLUSHALL" || name == "FLUSHDB" {
            replies.push(flush(ctx.st, ctx.db, &name, args));
            continue;
        }
        replies.push(run_one(&mut ctx, db, &name, args));
    }
    ctx.finish();
    Reply::Array(Some(replies))
}

fn known(name: &str) -> bool {
    const OTHERS: [&str; 3] = ["SELECT", "FLUSHALL", "FLUSHDB"];
    OTHERS.contains(&name) || NAMES.contains(&name)
}

/// Every command name `run_one` serves (MULTI queues only these).
pub const NAMES: &[&str] = &[
    "PING",
    "ECHO",
    "DBSIZE",
    "GET",
    "STRLEN",
    "MGET",
    "SET",
    "SETEX",
    "PSETEX",
    "SETNX",
    "MSET",
    "MSETNX",
    "DEL",
    "UNLINK",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "PERSIST",
    "TTL",
    "PTTL",
    "TYPE",
    "KEYS",
    "SCAN",
    "INCR",
    "DECR",
    "INCRBY",
    "DECRBY",
    "APPEND",
    "DUMP",
    "GETEX",
    "GETDEL",
    "GETSET",
    "SETRANGE",
    "GETRANGE",
    "INCRBYFLOAT",
    "RENAME",
    "RENAMENX",
    "COPY",
    "MOVE",
    "RESTORE",
    "HSET",
    "HMSET",
    "HDEL",
    "HINCRBY",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HSETNX",
    "HINCRBYFLOAT",
    "HSETEX",
    "HEXPIRE",
    "HTTL",
    "FIELDTTL",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "LTRIM",
    "LSET",
    "LREM",
    "LMOVE",
    "RPOPLPUSH",
    "BLMOVE",
    "BRPOPLPUSH",
    "BLPOP",
    "BRPOP",
    "SADD",
    "SREM",
    "SPOP",
    "SMEMBERS",
    "SCARD",
    "SISMEMBER",
    "SMOVE",
    "SINTER",
    "SUNION",
    "SDIFF",
    "SINTERSTORE",
    "SUNIONSTORE",
    "SDIFFSTORE",
    "SADDEX",
    "ZADD",
    "ZINCRBY",
    "ZREM",
    "ZSCORE",
    "ZCARD",
    "ZRANGE",
    "ZPOPMIN",
    "ZPOPMAX",
    "BZPOPMIN",
    "BZPOPMAX",
    "ZUNIONSTORE",
    "ZINTERSTORE",
    "ZDIFFSTORE",
    "ZRANGESTORE",
    "XADD",
    "XDEL",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "XTRIM",
    "XGROUP",
    "XREADGROUP",
    "XACK",
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "EVAL",
    "EVALSHA",
    "SCRIPT",
];

/// Runs one command inside `ctx` (no MULTI handling, no publishing).
pub fn run_one(ctx: &mut Ctx<'_>, db: &mut u32, name: &str, args: &[Bytes]) -> Reply {
    let rest = &args[1..];
    if name == "SELECT" {
        return match rest {
            [d] => match int_arg(d) {
                Ok(n) if n >= 0 && (n as u64) < u64::from(ctx.st.data.db_count()) => {
                    *db = n as u32;
                    ctx.db = n as u32;
                    Reply::ok()
                }
                Ok(_) => Reply::err("DB index is out of range"),
                Err(e) => e,
            },
            _ => arity(name),
        };
    }
    let r = keys::run(ctx, name, rest)
        .or_else(|| strings::run(ctx, name, rest))
        .or_else(|| generic::run(ctx, name, rest))
        .or_else(|| fieldttl::run(ctx, name, rest))
        .or_else(|| collections::run(ctx, name, rest))
        .or_else(|| lists::run(ctx, name, rest))
        .or_else(|| stores::run(ctx, name, rest))
        .or_else(|| stream::run(ctx, name, rest))
        .or_else(|| groups::run(ctx, name, rest))
        .or_else(|| hll::run(ctx, name, rest))
        .or_else(|| script::run(ctx, name, rest))
        .or_else(|| paging::run(ctx, name, rest))
        .unwrap_or_else(|| Err(Reply::err(format!("unknown command '{}'", String::from_utf8_lossy(&args[0])))));
    r.unwrap_or_else(|e| e)
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
