//! Scenario files (TOML): release, shards, compression, auth, the initial dataset (explicit keys
//! and generated ones), live writes during full and stable sync, and faults.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use df2redis::proto::model::{Stream, StreamEntry, StreamId, StreamMeta, StreamMetaV2};
use df2redis::proto::Value;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::{Compression, Config, LiveWrite};
use crate::dataset::{Dataset, Entry};
use crate::faults::Fault;
use crate::master::Rng;
use crate::release::Release;
use crate::MockMaster;

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Emulated release, e.g. `v1.40.1`.
    #[serde(default = "default_release")]
    pub release: String,
    /// Shards (flows).
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// Databases.
    #[serde(default = "default_dbs")]
    pub dbs: u32,
    /// Compression mode: none, lzf, zstd, lz4.
    #[serde(default)]
    pub compression: Compression,
    /// `requirepass`.
    #[serde(default)]
    pub requirepass: Option<String>,
    /// ACL users.
    #[serde(default)]
    pub users: Vec<User>,
    /// `--serialization_max_chunk_size`.
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// Fixed master id.
    #[serde(default)]
    pub master_id: Option<String>,
    /// Seed for ids, tokens and generated data.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Backlog length override.
    #[serde(default)]
    pub backlog_len: Option<usize>,
    /// Explicit keys.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Generated keys.
    #[serde(default)]
    pub generate: Vec<GenSpec>,
    /// Live writes.
    #[serde(default)]
    pub writes: Vec<LiveWrite>,
    /// Faults.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// `[promoted_from]`: the master was promoted from `master_id` at `lsns` (one per shard).
    #[serde(default)]
    pub promoted_from: Option<crate::config::Promotion>,
    /// `--journal_omit_redundant_writes` (honoured from v1.39).
    #[serde(default)]
    pub journal_omit: bool,
}

fn default_release() -> String {
    "v1.40.1".into()
}
fn default_shards() -> u32 {
    2
}
fn default_dbs() -> u32 {
    16
}
fn default_chunk() -> usize {
    64 << 10
}
fn default_seed() -> u64 {
    7
}

/// An ACL user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// One explicit key. Exactly the field matching `type` is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Database.
    #[serde(default)]
    pub db: u32,
    /// Key.
    pub key: String,
    /// string, list, set, hash, zset, stream.
    #[serde(rename = "type", default = "default_type")]
    pub ty: String,
    /// String value.
    #[serde(default)]
    pub value: Option<String>,
    /// List / set items.
    #[serde(default)]
    pub items: Vec<String>,
    /// Hash fields (stream: fields of each entry).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Sorted-set members and scores.
    #[serde(default)]
    pub members: BTreeMap<String, f64>,
    /// Stream: number of entries (each with `fields`).
    #[serde(default)]
    pub entries: Option<u64>,
    /// TTL relative to the master's start, ms.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

fn default_type() -> String {
    "string".into()
}

/// Generated keys: `count` keys named `<prefix>:<type>:<i>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenSpec {
    /// Database.
    #[serde(default)]
    pub db: u32,
    /// Key prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Number of keys.
    pub count: u64,
    /// Types cycled through.
    #[serde(default = "default_types")]
    pub types: Vec<String>,
    /// Bytes per string value / element.
    #[serde(default = "default_size")]
    pub size: usize,
    /// Elements per container.
    #[serde(default = "default_elements")]
    pub elements: usize,
    /// Fraction of keys with a TTL (0..1).
    #[serde(default)]
    pub ttl_fraction: f64,
    /// TTL of those keys, ms from start.
    #[serde(default = "default_ttl")]
    pub ttl_ms: u64,
    /// Additional big keys (one per type cycled), with `big_elements` elements each.
    #[serde(default)]
    pub big_keys: u64,
    /// Elements of a big key (big strings get `big_elements * size` bytes).
    #[serde(default = "default_big")]
    pub big_elements: usize,
}

fn default_prefix() -> String {
    "key".into()
}
fn default_types() -> Vec<String> {
    ["string", "list", "set", "hash", "zset"].iter().map(|s| s.to_string()).collect()
}
fn default_size() -> usize {
    16
}
fn default_elements() -> usize {
    8
}
fn default_ttl() -> u64 {
    3_600_000
}
fn default_big() -> usize {
    10_000
}

/// A scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Reading the file failed.
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    /// The TOML is invalid.
    #[error("parsing scenario: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is invalid.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads a file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io(path.display().to_string(), e))?;
        Self::parse(&text)
    }

    /// Builds the mock master (`clock` also anchors relative TTLs).
    pub fn build(&self, clock: Clock) -> Result<MockMaster, ScenarioError> {
        let release: Release =
            self.release.parse().map_err(|e: crate::release::BadRelease| ScenarioError::Invalid(e.to_string()))?;
        if self.shards == 0 || self.shards > 1024 {
            return Err(ScenarioError::Invalid("shards must be 1..=1024".into()));
        }
        let now = clock.now_ms();
        let cfg = Config {
            release,
            shards: self.shards,
            dbs: self.dbs.max(1),
            compression: self.compression,
            requirepass: self.requirepass.clone(),
            users: self.users.iter().map(|u| (u.name.clone(), u.password.clone())).collect(),
            chunk_size: self.chunk_size.max(1),
            master_id: self.master_id.clone(),
            seed: self.seed,
            backlog_len: self.backlog_len,
            clock,
            faults: self.faults.clone(),
            writes: self.writes.clone(),
            promoted_from: self.promoted_from.clone(),
            journal_omit: self.journal_omit,
        };
        if let Some(p) = &cfg.promoted_from {
            if p.lsns.len() != cfg.shards as usize || p.lsns.contains(&0) {
                return Err(ScenarioError::Invalid("promoted_from.lsns needs one LSN >= 1 per shard".into()));
            }
        }
        let mut data = Dataset::new(cfg.dbs);
        for k in &self.keys {
            let v = explicit_value(k)?;
            if k.db >= cfg.dbs {
                return Err(ScenarioError::Invalid(format!("key {} in db {} >= dbs", k.key, k.db)));
            }
            data.insert(k.db, Bytes::from(k.key.clone()), Entry { value: v, expire_ms: k.ttl_ms.map(|t| now + t) });
        }
        let mut rng = Rng::new(self.seed);
        for g in &self.generate {
            generate(&mut data, g, now, &mut rng)?;
        }
        Ok(MockMaster::from_parts(cfg, data))
    }
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn explicit_value(k: &KeySpec) -> Result<Value, ScenarioError> {
    Ok(match k.ty.as_str() {
        "string" => Value::String(b(k.value.as_deref().unwrap_or(""))),
        "list" => Value::List(k.items.iter().map(|s| b(s)).collect()),
        "set" => Value::Set(k.items.iter().map(|s| b(s)).collect()),
        "hash" => Value::Hash(k.fields.iter().map(|(f, v)| (b(f), b(v))).collect()),
        "zset" => Value::Zset(k.members.iter().map(|(m, s)| (b(m), *s)).collect()),
        "stream" => {
            let fields: Vec<(Bytes, Bytes)> = k.fields.iter().map(|(f, v)| (b(f), b(v))).collect();
            stream_of(
                (1..=k.entries.unwrap_or(1))
                    .map(|i| StreamEntry { id: StreamId { ms: i, seq: 0 }, fields: fields.clone() })
                    .collect(),
            )
        }
        other => return Err(ScenarioError::Invalid(format!("key {}: unknown type {other}", k.key))),
    })
}

/// A stream value with consistent metadata.
pub fn stream_of(entries: Vec<StreamEntry>) -> Value {
    let last = entries.last().map(|e| e.id).unwrap_or_default();
    let first = entries.first().map(|e| e.id).unwrap_or_default();
    let n = entries.len() as u64;
    Value::Stream(Box::new(Stream {
        entries,
        meta: StreamMeta {
            length: n,
            last_id: last,
            v2: Some(StreamMetaV2 { first_id: first, max_deleted_id: StreamId::default(), entries_added: n }),
        },
        groups: Vec::new(),
    }))
}

fn payload(rng: &mut Rng, size: usize) -> Bytes {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Bytes::from((0..size).map(|_| ALPHA[(rng.next_u64() % ALPHA.len() as u64) as usize]).collect::<Vec<u8>>())
}

/// Generates one value of `ty` with `n` elements of `size` bytes.
pub fn gen_value(rng: &mut Rng, ty: &str, n: usize, size: usize) -> Result<Value, ScenarioError> {
    let elem = |rng: &mut Rng, i: usize| {
        let mut v = format!("{i}:").into_bytes();
        v.extend_from_slice(&payload(rng, size.saturating_sub(v.len()).max(1)));
        Bytes::from(v)
    };
    Ok(match ty {
        "string" => Value::String(payload(rng, size.max(1) * n.max(1))),
        "list" => Value::List((0..n.max(1)).map(|i| elem(rng, i)).collect()),
        "set" => Value::Set((0..n.max(1)).map(|i| elem(rng, i)).collect()),
        "hash" => Value::Hash((0..n.max(1)).map(|i| (Bytes::from(format!("f{i}")), elem(rng, i))).collect()),
        "zset" => Value::Zset((0..n.max(1)).map(|i| (elem(rng, i), (rng.next_u64() % 10_000) as f64 / 8.0)).collect()),
        "stream" => stream_of(
            (0..n.max(1) as u64)
                .map(|i| StreamEntry {
                    id: StreamId { ms: 1_700_000_000_000 + i, seq: 0 },
                    fields: vec![(b("f"), elem(rng, i as usize))],
                })
                .collect(),
        ),
        other => return Err(ScenarioError::Invalid(format!("unknown type {other}"))),
    })
}

fn generate(data: &mut Dataset, g: &GenSpec, now: u64, rng: &mut Rng) -> Result<(), ScenarioError> {
    if g.types.is_empty() {
        return Err(ScenarioError::Invalid("generate.types is empty".into()));
    }
    if g.db >= data.db_count() {
        return Err(ScenarioError::Invalid(format!("generate.db {} >= dbs", g.db)));
    }
    for i in 0..g.count {
        let ty = &g.types[(i % g.types.len() as u64) as usize];
        let n = if ty == "string" { 1 } else { g.elements };
        let value = gen_value(rng, ty, n, g.size)?;
        let ttl = (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0 < g.ttl_fraction;
        data.insert(
            g.db,
            Bytes::from(format!("{}:{ty}:{i}", g.prefix)),
            Entry { value, expire_ms: ttl.then_some(now + g.ttl_ms) },
        );
    }
    for i in 0..g.big_keys {
        let ty = &g.types[(i % g.types.len() as u64) as usize];
        let value = gen_value(rng, ty, g.big_elements, g.size)?;
        data.insert(g.db, Bytes::from(format!("{}:big:{ty}:{i}", g.prefix)), Entry::new(value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds_a_full_scenario() {
        let s = Scenario::parse(
            r#"
            release = "v1.30.3"
            shards = 3
            compression = "zstd"
            requirepass = "pw"
            [[users]]
            name = "repl"
            password = "x"
            [[keys]]
            key = "greeting"
            value = "hello"
            ttl_ms = 1000
            [[keys]]
            db = 1
            key = "z"
            type = "zset"
            members = { a = 1.5, b = 2.0 }
            [[generate]]
            count = 50
            ttl_fraction = 0.5
            big_keys = 2
            big_elements = 100
            [[writes]]
            phase = "full_sync"
            command = ["SET", "a", "1"]
            [[faults]]
            kind = "close_flow"
            flow = 1
            at_byte = 100
            [[faults]]
            kind = "refuse"
            command = "DFLY SYNC"
            error = "ERR invalid state"
            "#,
        )
        .unwrap();
        let m = s.build(Clock::manual(1_000_000)).unwrap();
        assert_eq!(m.config().shards, 3);
        assert_eq!(m.config().compression, Compression::Zstd);
        assert_eq!(m.config().faults.len(), 2);
        let h = m.build();
        let ds = h.dataset();
        assert_eq!(ds.len(), 2 + 50 + 2);
        assert_eq!(ds.get(0, b"greeting").unwrap().expire_ms, Some(1_001_000));
        let with_ttl = ds.iter().filter(|(_, _, e)| e.expire_ms.is_some()).count();
        assert!(with_ttl > 10 && with_ttl < 45, "{with_ttl}");
        match &ds.get(0, b"key:big:list:1").unwrap().value {
            Value::List(l) => assert_eq!(l.len(), 100),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Scenario::parse("shards = \"x\"").is_err());
        assert!(Scenario::parse("bogus = 1").is_err());
        let s = Scenario::parse("release = \"2.0\"").unwrap();
        assert!(s.build(Clock::System).is_err());
        let s = Scenario::parse("[[keys]]\nkey = \"k\"\ntype = \"nope\"").unwrap();
        assert!(s.build(Clock::System).is_err());
    }
}
