//! What the decoders emit: stream events, key-entry headers, value chunks and journal records.

use bytes::Bytes;

use super::model::{Cms, Cuckoo, ModuleValue, Sbf, StreamEntry, StreamGroup, StreamMeta, TopK};

/// The type byte of a key entry, resolved to its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// 0: string.
    String,
    /// 1: linked list (Redis < 3.2).
    List,
    /// 2: hash-table set.
    Set,
    /// 3: sorted set with string scores (Redis < 4).
    ZsetV1,
    /// 4: hash-table hash.
    Hash,
    /// 5: skiplist sorted set with binary scores.
    Zset2,
    /// 6: module value, pre-Redis-5 format (cannot be skipped generically).
    ModuleV1,
    /// 7: module value with typed opcodes.
    Module2,
    /// 9: zipmap hash (Redis < 2.6).
    HashZipmap,
    /// 10: ziplist list.
    ListZiplist,
    /// 11: intset.
    SetIntset,
    /// 12: ziplist sorted set.
    ZsetZiplist,
    /// 13: ziplist hash.
    HashZiplist,
    /// 14: quicklist of ziplists.
    ListQuicklist,
    /// 15: stream, v1 metadata.
    StreamListpacks,
    /// 16: listpack hash.
    HashListpack,
    /// 17: listpack sorted set.
    ZsetListpack,
    /// 18: quicklist of listpacks / plain nodes.
    ListQuicklist2,
    /// 19: stream, v2 metadata.
    StreamListpacks2,
    /// 20 in RDB ≥ 10 files: listpack set.
    SetListpack,
    /// 20 in Dragonfly streams (header version 9): JSON before v1.15.
    JsonOld,
    /// 21: stream, v3 metadata.
    StreamListpacks3,
    /// 30: JSON text.
    Json,
    /// 31: hash with per-field TTLs.
    HashWithExpiry,
    /// 32: set with per-member TTLs.
    SetWithExpiry,
    /// 33: scalable bloom filter.
    Sbf,
    /// 34: scalable bloom filter, chunked.
    Sbf2,
    /// 35: count-min sketch.
    Cms,
    /// 36: top-k.
    TopK,
    /// 37: cuckoo filter.
    Cuckoo,
}

impl ValueType {
    /// Resolves a type byte. `rdb_version` is the header's version: type 20 means JSON when it
    /// is below 10 (every Dragonfly stream says 9), SET_LISTPACK otherwise.
    pub fn from_code(code: u8, rdb_version: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match code {
            0 => String,
            1 => List,
            2 => Set,
            3 => ZsetV1,
            4 => Hash,
            5 => Zset2,
            6 => ModuleV1,
            7 => Module2,
            9 => HashZipmap,
            10 => ListZiplist,
            11 => SetIntset,
            12 => ZsetZiplist,
            13 => HashZiplist,
            14 => ListQuicklist,
            15 => StreamListpacks,
            16 => HashListpack,
            17 => ZsetListpack,
            18 => ListQuicklist2,
            19 => StreamListpacks2,
            20 if rdb_version < 10 => JsonOld,
            20 => SetListpack,
            21 => StreamListpacks3,
            30 => Json,
            31 => HashWithExpiry,
            32 => SetWithExpiry,
            33 => Sbf,
            34 => Sbf2,
            35 => Cms,
            36 => TopK,
            37 => Cuckoo,
            _ => return None,
        })
    }

    /// The wire code.
    pub fn code(self) -> u8 {
        use ValueType::*;
        match self {
            String => 0,
            List => 1,
            Set => 2,
            ZsetV1 => 3,
            Hash => 4,
            Zset2 => 5,
            ModuleV1 => 6,
            Module2 => 7,
            HashZipmap => 9,
            ListZiplist => 10,
            SetIntset => 11,
            ZsetZiplist => 12,
            HashZiplist => 13,
            ListQuicklist => 14,
            StreamListpacks => 15,
            HashListpack => 16,
            ZsetListpack => 17,
            ListQuicklist2 => 18,
            StreamListpacks2 => 19,
            SetListpack | JsonOld => 20,
            StreamListpacks3 => 21,
            Json => 30,
            HashWithExpiry => 31,
            SetWithExpiry => 32,
            Sbf => 33,
            Sbf2 => 34,
            Cms => 35,
            TopK => 36,
            Cuckoo => 37,
        }
    }
}

/// Dragonfly's per-key flags (opcode 220, DF_MASK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyFlags {
    /// Never evicted on the master (no Redis equivalent).
    pub sticky: bool,
    /// Memcached client flags (no Redis equivalent).
    pub mc_flags: Option<u32>,
}

/// Everything known about a key entry before its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Database selected when the entry began.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// The wire type.
    pub value_type: ValueType,
    /// Absolute expiry, Unix ms (opcode FC; FD seconds are converted).
    pub expire_ms: Option<u64>,
    /// DF_MASK flags.
    pub flags: KeyFlags,
}

/// Identifies one key entry across its begin / chunk / end events (unique per decoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub u64);

/// A bounded piece of a value. The pieces of one entry, in order, make up the whole value;
/// how a value is cut into chunks depends only on its bytes and the [`super::Limits`].
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Consecutive bytes of a string value.
    Str(Bytes),
    /// List elements, in order.
    List(Vec<Bytes>),
    /// Set members.
    Set(Vec<Bytes>),
    /// Set members with absolute TTL in Unix seconds (`None` = none).
    SetWithTtl(Vec<(Bytes, Option<i64>)>),
    /// Hash field/value pairs.
    Hash(Vec<(Bytes, Bytes)>),
    /// Hash field/value pairs with absolute TTL in Unix seconds (`None` = none).
    HashWithTtl(Vec<(Bytes, Bytes, Option<i64>)>),
    /// Sorted-set member/score pairs.
    Zset(Vec<(Bytes, f64)>),
    /// Stream entries in id order.
    StreamEntries(Vec<StreamEntry>),
    /// The stream's metadata (after all entries).
    StreamMeta(StreamMeta),
    /// One consumer group (after the metadata).
    StreamGroup(StreamGroup),
    /// A JSON document.
    Json(Bytes),
    /// A scalable bloom filter, whole.
    Sbf(Box<Sbf>),
    /// A count-min sketch, whole.
    Cms(Box<Cms>),
    /// A top-k, whole.
    TopK(Box<TopK>),
    /// A cuckoo filter, whole.
    Cuckoo(Box<Cuckoo>),
    /// A module value, whole.
    Module(Box<ModuleValue>),
}

/// The opcode a journal command record arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// 10: COMMAND.
    Command,
    /// 9: EXPIRED (masters v0.15–v1.37).
    Expired,
    /// 11: MULTI_COMMAND (masters ≤ v1.20).
    MultiCommand,
}

/// The body of a journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalOp {
    /// A command to apply.
    Command {
        /// Which opcode carried it.
        kind: CommandKind,
        /// Master transaction id (0 = not part of a multi-shard transaction).
        txid: u64,
        /// Shards the transaction touched (meaningful before v1.38).
        shard_cnt: u64,
        /// Command name and arguments.
        args: Vec<Bytes>,
    },
    /// 12: EXEC closing a MULTI_COMMAND group (masters ≤ v1.20).
    Exec {
        /// Transaction id.
        txid: u64,
        /// Shards involved.
        shard_cnt: u64,
    },
    /// 13: PING (consumes an LSN; answer with an immediate ACK).
    Ping,
    /// 14: FIN (slot migration only).
    Fin,
}

/// A journal record with the database its SELECT prefix (or the reader state) named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    /// Database.
    pub db: u32,
    /// The record.
    pub op: JournalOp,
}

/// One decoded event of a flow.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `REDISxxxx` magic; `version` is the number it states.
    Header {
        /// RDB version from the magic.
        version: u32,
    },
    /// AUX field.
    Aux {
        /// Field name.
        key: Bytes,
        /// Field value (integer forms as decimal text).
        value: Bytes,
    },
    /// SELECTDB.
    SelectDb {
        /// The database index.
        db: u32,
    },
    /// RESIZEDB hint.
    ResizeDb {
        /// Keys in the db.
        db_size: u64,
        /// Keys with expiry.
        expires_size: u64,
    },
    /// A record that was parsed and deliberately skipped (MODULE_AUX, FUNCTION, SLOT_INFO,
    /// IDLE, FREQ, VECTOR_INDEX, SHARD_DOC_INDEX), with its opcode.
    Skipped {
        /// The opcode.
        opcode: u8,
    },
    /// A key entry starts.
    EntryBegin {
        /// Entry identity for the following chunk/end events.
        id: EntryId,
        /// Key, db, type, expiry, flags.
        header: EntryHeader,
    },
    /// A piece of an entry's value.
    EntryChunk {
        /// The entry.
        id: EntryId,
        /// The piece.
        chunk: Chunk,
    },
    /// The entry's value is complete.
    EntryEnd {
        /// The entry.
        id: EntryId,
    },
    /// A journal record carried inside the full sync (opcode 210); not LSN-counted.
    JournalBlob {
        /// The record.
        record: JournalRecord,
    },
    /// FULLSYNC_END (opcode 200).
    FullSyncEnd,
    /// JOURNAL_OFFSET (opcode 211): the LSN the journal stream continues from.
    JournalOffset {
        /// Next LSN of the shard.
        lsn: u64,
    },
    /// RDB EOF with its checksum; `verified` is `Some(true)` when a non-zero checksum was
    /// checked, `None` when it was zero (Dragonfly does not compute it).
    RdbEnd {
        /// The 8 checksum bytes as a little-endian u64.
        checksum: u64,
        /// Whether it was verified.
        verified: Option<bool>,
    },
    /// The 40-byte eof token matched.
    EofToken,
    /// A stable-sync journal record and the LSN it consumed.
    Journal {
        /// LSN of this record.
        lsn: u64,
        /// The record.
        record: JournalRecord,
    },
    /// LSN marker (opcode 15): the LSN of the record sent just before; checked by the decoder.
    LsnMarker {
        /// The LSN.
        lsn: u64,
    },
}
