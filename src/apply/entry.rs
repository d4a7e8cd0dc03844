//! Full-sync key entries → target commands.
//!
//! A value is buffered until it ends or its buffered size passes `restore_max_bytes`.
//! Small values are written in one atomic step: strings as `SET key value [PXAT t] [NX]` (the
//! same bytes as a RESTORE, for about a fifth less of the target's CPU; PXAT needs Redis 6.2,
//! older targets with a TTL take the RESTORE path), other types as `RESTORE … ABSTTL [REPLACE]`
//! with a DUMP payload encoded for the target's RDB version when an encoder is available,
//! else `MULTI / DEL / native commands / PEXPIREAT / EXEC`. Big values are built in a
//! temporary key of the same slot, one bounded chunk per command, then `PEXPIREAT` +
//! `RENAME` (or `RENAMENX` under the skip/panic conflict policies) over the real key, so a
//! reader never sees half a value. Keys already expired are skipped; Dragonfly-only types
//! follow their [`TypePolicy`].

use std::collections::HashMap;

use bytes::Bytes;

use super::caps::TargetCaps;
use super::native::{chunk_commands, empty_stream, temp_key};
use super::policy::{ConflictPolicy, DbMap, DfKind, TypePolicies, TypePolicy};
use super::{Args, Check, DbCmd};
use crate::proto::model::{Stream, Value};
use crate::proto::{Chunk, EntryHeader, EntryId, ValueType};

/// Encodes a whole value as a DUMP payload for a target RDB version, if it can.
pub type DumpEncoder = fn(&Value, u16) -> Option<Bytes>;

/// Knobs of the entry writer.
#[derive(Debug, Clone)]
pub struct EntryOptions {
    /// Flow index (names temporary keys).
    pub flow: usize,
    /// Values whose buffered size passes this are built through a temporary key.
    pub restore_max_bytes: usize,
    /// Keys already on the target.
    pub conflict: ConflictPolicy,
    /// Target capabilities.
    pub caps: TargetCaps,
    /// Dragonfly-only data.
    pub policies: TypePolicies,
    /// Db mapping.
    pub dbs: DbMap,
    /// DUMP encoder for small values (`None`: native commands only).
    pub dump: Option<DumpEncoder>,
}

/// Why an entry was not written as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryNote {
    /// Written exactly.
    Written,
    /// Expired before it arrived; skipped.
    Expired,
    /// Per policy of a Dragonfly-only kind.
    Policy(DfKind, TypePolicy),
}

/// A policy said `fail` for a snapshot entry (nothing of the key was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} in db {db} is {kind:?} data the target cannot hold and its policy is `fail` (set `--type-policy {name}=skip-and-report|degrade` to continue)", name = kind.name())]
pub struct EntryPolicyError {
    /// Source db.
    pub db: u32,
    /// The key (lossy).
    pub key: String,
    /// The kind.
    pub kind: DfKind,
}

#[derive(Debug)]
enum Mode {
    /// Collecting chunks (for one-step writes).
    Buffer { chunks: Vec<Chunk>, bytes: usize },
    /// Building in `dst` (a temporary key, or the key itself when no temp name exists).
    Build { dst: Bytes, in_place: bool, written: bool, stream_entries: bool },
    /// Dropping the value.
    Skip,
}

#[derive(Debug)]
struct Open {
    header: EntryHeader,
    db: u32,
    note: EntryNote,
    /// Degrade JSON to a string / hash and set TTLs dropped.
    degrade: bool,
    mode: Mode,
}

/// Hashing of entry ids (numbers the decoder assigns, not input-chosen keys): one multiply
/// instead of SipHash on the per-key path.
#[derive(Debug, Default, Clone, Copy)]
struct IdHash;

#[derive(Debug, Default)]
struct IdHasher(u64);

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Per-flow entry writer; tagged chunks may interleave several open entries.
#[derive(Debug)]
pub struct EntryWriter {
    opts: EntryOptions,
    open: HashMap<EntryId, Open, IdHash>,
    /// Replace existing keys regardless of the policy (resync after an earlier session, or
    /// values written during stable sync).
    pub force_overwrite: bool,
    /// Wrap one-step native writes in MULTI/EXEC (off when the caller already wraps).
    pub wrap_native: bool,
    next_synthetic: u64,
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn chunk_bytes(c: &Chunk) -> usize {
    let s = |v: &Bytes| v.len() + 8;
    match c {
        Chunk::Str(x) | Chunk::Json(x) => x.len(),
        Chunk::List(v) | Chunk::Set(v) => v.iter().map(s).sum(),
        Chunk::SetWithTtl(v) => v.iter().map(|(m, _)| s(m) + 8).sum(),
        Chunk::Hash(v) => v.iter().map(|(f, x)| s(f) + s(x)).sum(),
        Chunk::HashWithTtl(v) => v.iter().map(|(f, x, _)| s(f) + s(x) + 8).sum(),
        Chunk::Zset(v) => v.iter().map(|(m, _)| s(m) + 8).sum(),
        Chunk::StreamEntries(v) => {
            v.iter().map(|e| 16 + e.fields.iter().map(|(f, x)| s(f) + s(x)).sum::<usize>()).sum()
        }
        Chunk::StreamMeta(_) => 64,
        Chunk::StreamGroup(g) => 64 + g.pel.len() * 32 + g.consumers.len() * 64,
        Chunk::Sbf(_) | Chunk::Cms(_) | Chunk::TopK(_) | Chunk::Cuckoo(_) | Chunk::Module(_) => 1 << 20,
    }
}

/// Rebuilds the whole value from its chunks (for one-step writes).
pub fn chunks_to_value(ty: ValueType, mut chunks: Vec<Chunk>) -> Option<Value> {
    use ValueType as T;
    // The common case, a string in one piece: its bytes as they are (no copy).
    if ty == T::String && chunks.len() == 1 {
        if let Some(Chunk::Str(x)) = chunks.pop() {
            return Some(Value::String(x));
        }
        return None;
    }
    let mut v = match ty {
        T::String => Value::String(Bytes::new()),
        T::List | T::ListZiplist | T::ListQuicklist | T::ListQuicklist2 => Value::List(Vec::new()),
        T::Set | T::SetIntset | T::SetListpack => Value::Set(Vec::new()),
        T::SetWithExpiry => Value::SetWithTtl(Vec::new()),
        T::Hash | T::HashZipmap | T::HashZiplist | T::HashListpack => Value::Hash(Vec::new()),
        T::HashWithExpiry => Value::HashWithTtl(Vec::new()),
        T::ZsetV1 | T::Zset2 | T::ZsetZiplist | T::ZsetListpack => Value::Zset(Vec::new()),
        T::StreamListpacks | T::StreamListpacks2 | T::StreamListpacks3 => Value::Stream(Box::default()),
        T::Json | T::JsonOld => Value::Json(Bytes::new()),
        _ => return chunks.into_iter().next().map(whole_chunk),
    };
    let mut sbuf: Vec<u8> = Vec::new();
    for c in chunks {
        match (&mut v, c) {
            (Value::String(_), Chunk::Str(x)) | (Value::Json(_), Chunk::Json(x)) => sbuf.extend_from_slice(&x),
            (Value::List(l), Chunk::List(x)) | (Value::Set(l), Chunk::Set(x)) => l.extend(x),
            (Value::SetWithTtl(l), Chunk::SetWithTtl(x)) => l.extend(x),
            (Value::Hash(l), Chunk::Hash(x)) => l.extend(x),
            (Value::HashWithTtl(l), Chunk::HashWithTtl(x)) => l.extend(x),
            (Value::Zset(l), Chunk::Zset(x)) => l.extend(x),
            (Value::Stream(s), Chunk::StreamEntries(x)) => s.entries.extend(x),
            (Value::Stream(s), Chunk::StreamMeta(m)) => s.meta = m,
            (Value::Stream(s), Chunk::StreamGroup(g)) => s.groups.push(g),
            _ => return None,
        }
    }
    match &mut v {
        Value::String(s) | Value::Json(s) => *s = Bytes::from(sbuf),
        _ => {}
    }
    Some(v)
}

fn whole_chunk(c: Chunk) -> Value {
    match c {
        Chunk::Sbf(x) => Value::Sbf(x),
        Chunk::Cms(x) => Value::Cms(x),
        Chunk::TopK(x) => Value::TopK(x),
        Chunk::Cuckoo(x) => Value::Cuckoo(x),
        Chunk::Module(x) => Value::Module(x),
        Chunk::Json(x) => Value::Json(x),
        Chunk::Str(x) => Value::String(x),
        Chunk::List(x) => Value::List(x),
        Chunk::Set(x) => Value::Set(x),
        Chunk::SetWithTtl(x) => Value::SetWithTtl(x),
        Chunk::Hash(x) => Value::Hash(x),
        Chunk::HashWithTtl(x) => Value::HashWithTtl(x),
        Chunk::Zset(x) => Value::Zset(x),
        Chunk::StreamEntries(e) => Value::Stream(Box::new(Stream { entries: e, ..Stream::default() })),
        Chunk::StreamMeta(m) => Value::Stream(Box::new(Stream { meta: m, ..Stream::default() })),
        Chunk::StreamGroup(g) => Value::Stream(Box::new(Stream { groups: vec![g], ..Stream::default() })),
    }
}

/// The value as chunks again (for the native path of a whole value).
fn value_chunks(v: Value) -> Vec<Chunk> {
    match v {
        Value::String(x) => vec![Chunk::Str(x)],
        Value::List(x) => vec![Chunk::List(x)],
        Value::Set(x) => vec![Chunk::Set(x)],
        Value::SetWithTtl(x) => vec![Chunk::SetWithTtl(x)],
        Value::Hash(x) => vec![Chunk::Hash(x)],
        Value::HashWithTtl(x) => vec![Chunk::HashWithTtl(x)],
        Value::Zset(x) => vec![Chunk::Zset(x)],
        Value::Stream(s) => {
            let s = *s;
            let mut out = vec![Chunk::StreamEntries(s.entries), Chunk::StreamMeta(s.meta)];
            out.extend(s.groups.into_iter().map(Chunk::StreamGroup));
            out
        }
        Value::Json(x) => vec![Chunk::Json(x)],
        Value::Sbf(x) => vec![Chunk::Sbf(x)],
        Value::Cms(x) => vec![Chunk::Cms(x)],
        Value::TopK(x) => vec![Chunk::TopK(x)],
        Value::Cuckoo(x) => vec![Chunk::Cuckoo(x)],
        Value::Module(x) => vec![Chunk::Module(x)],
    }
}

fn kind_of(ty: ValueType) -> Option<DfKind> {
    use ValueType as T;
    Some(match ty {
        T::Json | T::JsonOld => DfKind::Json,
        T::Sbf | T::Sbf2 => DfKind::Bloom,
        T::Cms => DfKind::Cms,
        T::TopK => DfKind::TopK,
        T::Cuckoo => DfKind::Cuckoo,
        T::HashWithExpiry => DfKind::HashFieldTtl,
        T::SetWithExpiry => DfKind::SetMemberTtl,
        T::ModuleV1 | T::Module2 => DfKind::Command,
        _ => return None,
    })
}

/// Outputs of the writer for one event.
pub type Out = Vec<DbCmd>;

impl EntryWriter {
    /// A writer.
    pub fn new(opts: EntryOptions) -> Self {
        EntryWriter { opts, open: HashMap::default(), force_overwrite: false, wrap_native: true, next_synthetic: 0 }
    }

    /// Entries currently open (interleaved tagged chunks).
    pub fn open_entries(&self) -> usize {
        self.open.len()
    }

    fn conflict(&self) -> ConflictPolicy {
        if self.force_overwrite {
            ConflictPolicy::Overwrite
        } else {
            self.opts.conflict
        }
    }

    /// An entry begins. Errors when its kind's policy is `fail` (before anything is written).
    pub fn begin(&mut self, id: EntryId, header: EntryHeader, now_ms: u64) -> Result<Out, EntryPolicyError> {
        let db = self.opts.dbs.map(header.db);
        let mut out = Vec::new();
        let (note, degrade) = match kind_of(header.value_type) {
            None => (EntryNote::Written, false),
            Some(kind) => {
                let supported = match kind {
                    DfKind::Json => self.opts.caps.json,
                    DfKind::HashFieldTtl => self.opts.caps.hash_field_ttl(),
                    _ => false,
                };
                if supported {
                    (EntryNote::Written, false)
                } else {
                    let p = self.opts.policies.get(kind);
                    if p == TypePolicy::Fail {
                        return Err(EntryPolicyError {
                            db: header.db,
                            key: String::from_utf8_lossy(&header.key).into_owned(),
                            kind,
                        });
                    }
                    let writable = p == TypePolicy::Degrade
                        && matches!(kind, DfKind::Json | DfKind::HashFieldTtl | DfKind::SetMemberTtl);
                    (EntryNote::Policy(kind, if writable { p } else { TypePolicy::SkipAndReport }), writable)
                }
            }
        };
        let expired = header.expire_ms.is_some_and(|t| t <= now_ms);
        let skip = expired || matches!(note, EntryNote::Policy(_, TypePolicy::SkipAndReport));
        let note = if expired { EntryNote::Expired } else { note };
        if expired && self.conflict() == ConflictPolicy::Overwrite {
            out.push(DbCmd::new(db, vec![b("DEL"), header.key.clone()]));
        }
        let mode = if skip { Mode::Skip } else { Mode::Buffer { chunks: Vec::new(), bytes: 0 } };
        self.open.insert(id, Open { header, db, note, degrade, mode });
        Ok(out)
    }

    /// A piece of an open entry's value.
    pub fn chunk(&mut self, id: EntryId, chunk: Chunk, now_ms: u64) -> Out {
        let max = self.opts.restore_max_bytes;
        let flow = self.opts.flow;
        let field_ttl = self.opts.caps.hash_field_ttl();
        let Some(o) = self.open.get_mut(&id) else { return Vec::new() };
        match &mut o.mode {
            Mode::Skip => Vec::new(),
            Mode::Buffer { chunks, bytes } => {
                *bytes += chunk_bytes(&chunk);
                chunks.push(chunk);
                if *bytes <= max || is_whole_only(o.header.value_type) {
                    return Vec::new();
                }
                let chunks = std::mem::take(chunks);
                let (dst, in_place) = match temp_key(&o.header.key, flow, id.0) {
                    Some(t) => (t, false),
                    None => (o.header.key.clone(), true),
                };
                let mut out = vec![DbCmd::new(o.db, vec![b("DEL"), dst.clone()])];
                o.mode = Mode::Build { dst, in_place, written: false, stream_entries: false };
                for c in chunks {
                    out.extend(build_cmds(o, &c, now_ms, field_ttl));
                }
                out
            }
            Mode::Build { .. } => build_cmds(o, &chunk, now_ms, field_ttl),
        }
    }

    /// The entry's value is complete.
    pub fn end(&mut self, id: EntryId, now_ms: u64) -> (Out, EntryNote) {
        let Some(mut o) = self.open.remove(&id) else { return (Vec::new(), EntryNote::Written) };
        let conflict = self.conflict();
        let key = o.header.key.clone();
        let db = o.db;
        let expire = o.header.expire_ms;
        let mut out = Vec::new();
        match std::mem::replace(&mut o.mode, Mode::Skip) {
            Mode::Skip => {}
            Mode::Buffer { chunks, .. } => {
                if let Some(v) = chunks_to_value(o.header.value_type, chunks) {
                    out = self.whole(&mut o, v, now_ms);
                }
            }
            Mode::Build { dst, in_place, written, .. } => {
                if !written {
                    if conflict == ConflictPolicy::Overwrite && !in_place {
                        out.push(DbCmd::new(db, vec![b("DEL"), key.clone()]));
                    }
                } else if expire.is_some_and(|t| t <= now_ms) {
                    out.push(DbCmd::new(db, vec![b("DEL"), dst.clone()]));
                    o.note = EntryNote::Expired;
                } else {
                    if let Some(t) = expire {
                        out.push(DbCmd::new(db, vec![b("PEXPIREAT"), dst.clone(), Bytes::from(t.to_string())]));
                    }
                    if !in_place {
                        out.push(rename(db, dst, key, conflict));
                    }
                }
            }
        }
        (out, o.note)
    }

    /// One-step write of a whole (small) value.
    fn whole(&self, o: &mut Open, v: Value, now_ms: u64) -> Out {
        let conflict = self.conflict();
        let (db, key) = (o.db, o.header.key.clone());
        let ttl = o.header.expire_ms.unwrap_or(0);
        let check = if conflict == ConflictPolicy::Overwrite { Check::Ok } else { Check::Conflict(key.clone()) };
        // JSON: module, or a plain string under `degrade`.
        if let Value::Json(text) = &v {
            let mut c = if o.degrade {
                vec![b("SET"), key.clone(), text.clone()]
            } else {
                vec![b("JSON.SET"), key.clone(), b("$"), text.clone()]
            };
            if conflict != ConflictPolicy::Overwrite {
                c.push(b("NX"));
            }
            let mut out = vec![DbCmd { db, args: c, check }];
            if ttl != 0 {
                out.push(DbCmd::new(db, vec![b("PEXPIREAT"), key, Bytes::from(ttl.to_string())]));
            }
            return out;
        }
        if let Value::String(value) = &v {
            if ttl == 0 || self.opts.caps.version >= super::caps::Version::new(6, 2, 0) {
                let mut c = vec![b("SET"), key.clone(), value.clone()];
                if ttl != 0 {
                    c.push(b("PXAT"));
                    c.push(Bytes::from(ttl.to_string()));
                }
                if conflict != ConflictPolicy::Overwrite {
                    c.push(b("NX"));
                }
                return vec![DbCmd { db, args: c, check }];
            }
        }
        let restorable = !matches!(v, Value::HashWithTtl(_) | Value::SetWithTtl(_));
        if let (Some(enc), true) = (self.opts.dump, restorable) {
            if let Some(payload) = enc(&v, self.opts.caps.rdb_version) {
                let mut c = vec![b("RESTORE"), key, Bytes::from(ttl.to_string()), payload, b("ABSTTL")];
                if conflict == ConflictPolicy::Overwrite {
                    c.push(b("REPLACE"));
                }
                return vec![DbCmd { db, args: c, check }];
            }
        }
        // Native commands, atomically.
        let field_ttl = self.opts.caps.hash_field_ttl() && !o.degrade;
        let mut body: Vec<Args> = Vec::new();
        let mut stream_entries = false;
        for c in value_chunks(v) {
            if let Chunk::StreamEntries(e) = &c {
                stream_entries |= !e.is_empty();
            }
            if let (Chunk::StreamMeta(m), false) = (&c, stream_entries) {
                body.push(empty_stream(&key, m));
            }
            body.extend(chunk_commands(&key, &c, now_ms, field_ttl).unwrap_or_default());
        }
        if body.is_empty() {
            // Nothing live (all members expired): the key does not exist on the source.
            return if conflict == ConflictPolicy::Overwrite {
                vec![DbCmd::new(db, vec![b("DEL"), key])]
            } else {
                vec![]
            };
        }
        if ttl != 0 {
            body.push(vec![b("PEXPIREAT"), key.clone(), Bytes::from(ttl.to_string())]);
        }
        if conflict == ConflictPolicy::Overwrite {
            let mut out = Vec::with_capacity(body.len() + 3);
            if self.wrap_native {
                out.push(DbCmd::new(db, vec![b("MULTI")]));
            }
            out.push(DbCmd::new(db, vec![b("DEL"), key]));
            out.extend(body.into_iter().map(|a| DbCmd::new(db, a)));
            if self.wrap_native {
                out.push(DbCmd::new(db, vec![b("EXEC")]));
            }
            out
        } else {
            // Build aside, then RENAMENX: an existing key is reported, never touched.
            // (A key with no same-slot temporary name only occurs with a stray `}`; the plain
            // name works on a standalone target.)
            let tmp = temp_key(&key, self.opts.flow, u64::MAX)
                .unwrap_or_else(|| Bytes::from(format!("df2redis:tmp:{}:whole", self.opts.flow)));
            let swap = |a: Args| -> Args { a.into_iter().map(|x| if x == key { tmp.clone() } else { x }).collect() };
            let mut out = vec![DbCmd::new(db, vec![b("DEL"), tmp.clone()])];
            out.extend(body.into_iter().map(|a| DbCmd::new(db, swap(a))));
            out.push(rename(db, tmp.clone(), key, conflict));
            out.push(DbCmd::new(db, vec![b("DEL"), tmp]));
            out
        }
    }
}

fn rename(db: u32, from: Bytes, to: Bytes, conflict: ConflictPolicy) -> DbCmd {
    if conflict == ConflictPolicy::Overwrite {
        DbCmd::new(db, vec![b("RENAME"), from, to])
    } else {
        DbCmd { db, args: vec![b("RENAMENX"), from, to.clone()], check: Check::Conflict(to) }
    }
}

impl EntryWriter {
    /// Writes a whole value that did not come from the snapshot stream (a transcoded RESTORE
    /// payload or a repair), through the same policy and encoding rules.
    pub fn write_value(
        &mut self,
        src_db: u32,
        key: Bytes,
        value: Value,
        expire_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(Out, EntryNote), EntryPolicyError> {
        self.next_synthetic += 1;
        let id = EntryId(u64::MAX - self.next_synthetic);
        let header = EntryHeader {
            db: src_db,
            key,
            value_type: value_type_of(&value),
            expire_ms,
            flags: crate::proto::KeyFlags::default(),
        };
        let mut out = self.begin(id, header, now_ms)?;
        for c in value_chunks(value) {
            out.extend(self.chunk(id, c, now_ms));
        }
        let (end, note) = self.end(id, now_ms);
        out.extend(end);
        Ok((out, note))
    }
}

/// A wire type that carries `v`.
pub fn value_type_of(v: &Value) -> ValueType {
    match v {
        Value::String(_) => ValueType::String,
        Value::List(_) => ValueType::ListQuicklist2,
        Value::Set(_) => ValueType::Set,
        Value::SetWithTtl(_) => ValueType::SetWithExpiry,
        Value::Hash(_) => ValueType::Hash,
        Value::HashWithTtl(_) => ValueType::HashWithExpiry,
        Value::Zset(_) => ValueType::Zset2,
        Value::Stream(_) => ValueType::StreamListpacks3,
        Value::Json(_) => ValueType::Json,
        Value::Sbf(_) => ValueType::Sbf2,
        Value::Cms(_) => ValueType::Cms,
        Value::TopK(_) => ValueType::TopK,
        Value::Cuckoo(_) => ValueType::Cuckoo,
        Value::Module(_) => ValueType::Module2,
    }
}

/// Types whose value arrives in one chunk and is never built piecewise.
fn is_whole_only(ty: ValueType) -> bool {
    use ValueType as T;
    matches!(ty, T::Json | T::JsonOld | T::Sbf | T::Sbf2 | T::Cms | T::TopK | T::Cuckoo | T::ModuleV1 | T::Module2)
}

fn build_cmds(o: &mut Open, c: &Chunk, now_ms: u64, field_ttl: bool) -> Out {
    let db = o.db;
    let Mode::Build { dst, written, stream_entries, .. } = &mut o.mode else { return Vec::new() };
    let mut out = Vec::new();
    if let Chunk::StreamEntries(e) = c {
        *stream_entries |= !e.is_empty();
    }
    if let (Chunk::StreamMeta(m), false) = (c, *stream_entries) {
        out.push(DbCmd::new(db, empty_stream(dst, m)));
    }
    let cmds = chunk_commands(dst, c, now_ms, field_ttl && !o.degrade).unwrap_or_default();
    out.extend(cmds.into_iter().map(|a| DbCmd::new(db, a)));
    *written |= !out.is_empty();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::caps::Version;
    use crate::proto::KeyFlags;

    fn opts(conflict: ConflictPolicy, policy: &str, max: usize) -> EntryOptions {
        let mut p = TypePolicies::default();
        p.apply_spec(policy).unwrap();
        EntryOptions {
            flow: 0,
            restore_max_bytes: max,
            conflict,
            caps: TargetCaps::plain(Version::new(7, 0, 15)),
            policies: p,
            dbs: DbMap::default(),
            dump: None,
        }
    }

    fn hdr(key: &str, ty: ValueType, exp: Option<u64>) -> EntryHeader {
        EntryHeader {
            db: 0,
            key: Bytes::copy_from_slice(key.as_bytes()),
            value_type: ty,
            expire_ms: exp,
            flags: KeyFlags::default(),
        }
    }

    fn names(out: &Out) -> Vec<String> {
        out.iter()
            .map(|c| c.args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn hash_chunk(n: usize, from: usize) -> Chunk {
        Chunk::Hash((from..from + n).map(|i| (Bytes::from(format!("f{i}")), Bytes::from(format!("v{i}")))).collect())
    }

    #[test]
    fn small_value_is_one_atomic_block() {
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 1 << 20));
        let id = EntryId(1);
        assert!(w.begin(id, hdr("h", ValueType::HashListpack, Some(u64::MAX - 1)), 0).unwrap().is_empty());
        assert!(w.chunk(id, hash_chunk(2, 0), 0).is_empty());
        let (out, note) = w.end(id, 0);
        assert_eq!(note, EntryNote::Written);
        assert_eq!(
            names(&out),
            ["MULTI", "DEL h", "HSET h f0 v0 f1 v1", &format!("PEXPIREAT h {}", u64::MAX - 1), "EXEC"]
        );
    }

    #[test]
    fn restore_used_when_encoder_present() {
        fn enc(_: &Value, v: u16) -> Option<Bytes> {
            Some(Bytes::from(format!("payload-v{v}")))
        }
        let mut o = opts(ConflictPolicy::Skip, "fail", 1 << 20);
        o.dump = Some(enc);
        let mut w = EntryWriter::new(o.clone());
        w.begin(EntryId(1), hdr("l", ValueType::ListQuicklist2, Some(5000)), 0).unwrap();
        w.chunk(EntryId(1), Chunk::List(vec![Bytes::from_static(b"x")]), 0);
        let (out, _) = w.end(EntryId(1), 0);
        assert_eq!(names(&out), ["RESTORE l 5000 payload-v10 ABSTTL"]);
        assert_eq!(out[0].check, Check::Conflict(Bytes::from_static(b"l")));
        // Strings: SET with an absolute PXAT (NX unless overwriting)...
        w.begin(EntryId(2), hdr("s", ValueType::String, Some(5000)), 0).unwrap();
        w.chunk(EntryId(2), Chunk::Str(Bytes::from_static(b"x")), 0);
        let (out, _) = w.end(EntryId(2), 0);
        assert_eq!(names(&out), ["SET s x PXAT 5000 NX"]);
        assert_eq!(out[0].check, Check::Conflict(Bytes::from_static(b"s")));
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 1 << 20));
        w.begin(EntryId(3), hdr("p", ValueType::String, None), 0).unwrap();
        w.chunk(EntryId(3), Chunk::Str(Bytes::from_static(b"y")), 0);
        assert_eq!(names(&w.end(EntryId(3), 0).0), ["SET p y"]);
        // ...except a TTL on a target without PXAT (before 6.2): RESTORE ABSTTL.
        o.caps = TargetCaps::plain(Version::new(6, 0, 9));
        let mut w = EntryWriter::new(o);
        w.begin(EntryId(4), hdr("s", ValueType::String, Some(5000)), 0).unwrap();
        w.chunk(EntryId(4), Chunk::Str(Bytes::from_static(b"x")), 0);
        assert_eq!(names(&w.end(EntryId(4), 0).0), ["RESTORE s 5000 payload-v9 ABSTTL"]);
    }

    #[test]
    fn big_value_goes_through_temp_key_and_rename() {
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 100));
        let id = EntryId(7);
        w.begin(id, hdr("big", ValueType::Hash, Some(9_000)), 0).unwrap();
        let a = w.chunk(id, hash_chunk(10, 0), 0);
        assert_eq!(names(&a)[0], "DEL {big}:df2redis:tmp:0:7");
        assert!(names(&a)[1].starts_with("HSET {big}:df2redis:tmp:0:7 f0 v0"));
        let b2 = w.chunk(id, hash_chunk(10, 10), 0);
        assert_eq!(b2.len(), 1);
        let (out, _) = w.end(id, 0);
        assert_eq!(names(&out), ["PEXPIREAT {big}:df2redis:tmp:0:7 9000", "RENAME {big}:df2redis:tmp:0:7 big"]);
        assert_eq!(w.open_entries(), 0);
    }

    #[test]
    fn skip_policy_uses_renamenx_with_conflict_check() {
        let mut w = EntryWriter::new(opts(ConflictPolicy::Panic, "fail", 100));
        let id = EntryId(2);
        w.begin(id, hdr("l", ValueType::ListQuicklist2, None), 0).unwrap();
        w.chunk(id, Chunk::List((0..50).map(|i| Bytes::from(format!("e{i}"))).collect()), 0);
        let (out, _) = w.end(id, 0);
        assert_eq!(names(&out), ["RENAMENX {l}:df2redis:tmp:0:2 l"]);
        assert_eq!(out[0].check, Check::Conflict(Bytes::from_static(b"l")));
    }

    #[test]
    fn expired_keys_are_skipped_and_deleted() {
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 100));
        let out = w.begin(EntryId(1), hdr("old", ValueType::String, Some(10)), 20).unwrap();
        assert_eq!(names(&out), ["DEL old"]);
        assert!(w.chunk(EntryId(1), Chunk::Str(Bytes::from_static(b"x")), 20).is_empty());
        let (out, note) = w.end(EntryId(1), 20);
        assert!(out.is_empty());
        assert_eq!(note, EntryNote::Expired);
    }

    #[test]
    fn dragonfly_types_follow_policy() {
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 100));
        assert!(w.begin(EntryId(1), hdr("j", ValueType::Json, None), 0).is_err());
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "degrade", 100));
        w.begin(EntryId(1), hdr("j", ValueType::Json, None), 0).unwrap();
        w.chunk(EntryId(1), Chunk::Json(Bytes::from_static(b"{\"a\":1}")), 0);
        let (out, note) = w.end(EntryId(1), 0);
        assert_eq!(names(&out), ["SET j {\"a\":1}"]);
        assert_eq!(note, EntryNote::Policy(DfKind::Json, TypePolicy::Degrade));
        w.begin(EntryId(2), hdr("bf", ValueType::Sbf2, None), 0).unwrap();
        let (out, note) = w.end(EntryId(2), 0);
        assert!(out.is_empty());
        assert_eq!(note, EntryNote::Policy(DfKind::Bloom, TypePolicy::SkipAndReport));
        // Set with member TTLs degrades to SADD of the live members.
        w.begin(EntryId(3), hdr("s", ValueType::SetWithExpiry, None), 0).unwrap();
        w.chunk(EntryId(3), Chunk::SetWithTtl(vec![(Bytes::from_static(b"a"), Some(i64::MAX / 2000))]), 0);
        let (out, _) = w.end(EntryId(3), 0);
        assert_eq!(names(&out), ["MULTI", "DEL s", "SADD s a", "EXEC"]);
    }

    #[test]
    fn empty_stream_is_created() {
        use crate::proto::model::{StreamId, StreamMeta};
        let mut w = EntryWriter::new(opts(ConflictPolicy::Overwrite, "fail", 1 << 20));
        w.begin(EntryId(1), hdr("st", ValueType::StreamListpacks3, None), 0).unwrap();
        let meta = StreamMeta { length: 0, last_id: StreamId { ms: 5, seq: 1 }, v2: None };
        w.chunk(EntryId(1), Chunk::StreamMeta(meta), 0);
        let (out, _) = w.end(EntryId(1), 0);
        assert_eq!(names(&out), ["MULTI", "DEL st", "XADD st MAXLEN 0 5-1 _ _", "XSETID st 5-1", "EXEC"]);
    }
}
