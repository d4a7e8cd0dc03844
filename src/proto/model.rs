//! The logical value model: what a key holds, independent of its wire encoding.
//!
//! Decoders produce it (via [`super::assemble`]) and encoders consume it, so
//! `encode(model) → decode == model` is the round-trip property the tests check.

use bytes::Bytes;

/// A stream entry id `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One live stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Entry id.
    pub id: StreamId,
    /// Field/value pairs in entry order.
    pub fields: Vec<(Bytes, Bytes)>,
}

/// Stream metadata that follows the entries on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamMeta {
    /// Number of live entries (XLEN).
    pub length: u64,
    /// Last generated id.
    pub last_id: StreamId,
    /// v2+ metadata (types 19, 21): first id, max deleted id, entries added.
    pub v2: Option<StreamMetaV2>,
}

/// The metadata RDB stream v2 added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamMetaV2 {
    /// First live id.
    pub first_id: StreamId,
    /// Largest id ever deleted.
    pub max_deleted_id: StreamId,
    /// Count of entries ever added.
    pub entries_added: u64,
}

/// A pending (delivered, unacknowledged) entry of a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry id.
    pub id: StreamId,
    /// Last delivery time, Unix ms.
    pub delivery_time_ms: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Consumer name.
    pub name: Bytes,
    /// Seen time, Unix ms.
    pub seen_time_ms: u64,
    /// Active time, Unix ms (type 21 only).
    pub active_time_ms: Option<u64>,
    /// Ids this consumer holds pending (each also in the group PEL).
    pub pending: Vec<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGroup {
    /// Group name.
    pub name: Bytes,
    /// Last delivered id.
    pub last_delivered: StreamId,
    /// Entries read counter (v2+).
    pub entries_read: Option<u64>,
    /// The group's pending entries list.
    pub pel: Vec<PendingEntry>,
    /// The consumers.
    pub consumers: Vec<Consumer>,
}

/// A whole stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    /// Live entries in id order.
    pub entries: Vec<StreamEntry>,
    /// Length, last id and v2 metadata.
    pub meta: StreamMeta,
    /// Consumer groups.
    pub groups: Vec<StreamGroup>,
}

/// One filter of a scalable bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbfFilter {
    /// Number of hash functions.
    pub hash_count: u64,
    /// The bit array.
    pub bits: Bytes,
}

/// Dragonfly scalable bloom filter (types 33 and 34).
#[derive(Debug, Clone, PartialEq)]
pub struct Sbf {
    /// Growth factor.
    pub grow_factor: f64,
    /// False-positive probability.
    pub fp_prob: f64,
    /// Previous filter size.
    pub prev_size: u64,
    /// Current size.
    pub current_size: u64,
    /// Capacity.
    pub max_capacity: u64,
    /// The filters.
    pub filters: Vec<SbfFilter>,
}

/// Dragonfly count-min sketch (type 35).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cms {
    /// Width.
    pub width: u64,
    /// Depth.
    pub depth: u64,
    /// Total count.
    pub total_count: u64,
    /// width × depth counters.
    pub counters: Vec<i64>,
}

/// Dragonfly top-k (type 36).
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    /// k.
    pub k: u64,
    /// Width.
    pub width: u64,
    /// Depth.
    pub depth: u64,
    /// Decay.
    pub decay: f64,
    /// Heap items with their counts.
    pub heap: Vec<(Bytes, u64)>,
    /// The raw width × depth u32 LE counter array.
    pub counters: Bytes,
}

/// Dragonfly cuckoo filter (type 37).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cuckoo {
    /// Slots per bucket.
    pub slots_per_bucket: u64,
    /// Max kick-out iterations.
    pub max_iterations: u64,
    /// Expansion factor.
    pub expansion: u64,
    /// Buckets.
    pub num_buckets: u64,
    /// Items.
    pub num_items: u64,
    /// Deletes.
    pub num_deletes: u64,
    /// Each filter's raw table.
    pub filters: Vec<Bytes>,
}

/// One typed item of a Redis module value (RDB type 7).
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleItem {
    /// Signed integer.
    Sint(i64),
    /// Unsigned integer.
    Uint(u64),
    /// 32-bit float.
    Float(f32),
    /// 64-bit float.
    Double(f64),
    /// String.
    Str(Bytes),
}

/// A Redis module value (type 7) parsed generically.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleValue {
    /// The 64-bit module type id.
    pub module_id: u64,
    /// The 9-character module type name decoded from the id (e.g. `ReJSON-RL`).
    pub name: String,
    /// Encoding version (low 10 bits of the id).
    pub encver: u64,
    /// The opcode-tagged items.
    pub items: Vec<ModuleItem>,
}

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (also HyperLogLogs and integers).
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A set.
    Set(Vec<Bytes>),
    /// A set whose members may carry TTLs: absolute Unix seconds, `None` = no TTL (type 32).
    SetWithTtl(Vec<(Bytes, Option<i64>)>),
    /// A hash.
    Hash(Vec<(Bytes, Bytes)>),
    /// A hash whose fields may carry TTLs: absolute Unix seconds, `None` = no TTL (type 31).
    HashWithTtl(Vec<(Bytes, Bytes, Option<i64>)>),
    /// A sorted set: member, score (scores bit-exact).
    Zset(Vec<(Bytes, f64)>),
    /// A stream.
    Stream(Box<Stream>),
    /// A JSON document as text.
    Json(Bytes),
    /// A scalable bloom filter.
    Sbf(Box<Sbf>),
    /// A count-min sketch.
    Cms(Box<Cms>),
    /// A top-k.
    TopK(Box<TopK>),
    /// A cuckoo filter.
    Cuckoo(Box<Cuckoo>),
    /// A Redis module value other than JSON.
    Module(Box<ModuleValue>),
}

impl Value {
    /// Short name of the kind, as Redis' TYPE would say where one exists.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) | Value::SetWithTtl(_) => "set",
            Value::Hash(_) | Value::HashWithTtl(_) => "hash",
            Value::Zset(_) => "zset",
            Value::Stream(_) => "stream",
            Value::Json(_) => "ReJSON-RL",
            Value::Sbf(_) => "MBbloom--",
            Value::Cms(_) => "CMSk-TYPE",
            Value::TopK(_) => "TopK-TYPE",
            Value::Cuckoo(_) => "MBbloomCF",
            Value::Module(_) => "module",
        }
    }
}
