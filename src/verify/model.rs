//! What verify knows about one key on one side: type, TTL, length and (in full mode) its value,
//! either whole (small keys) or marked big (compared later in chunks).

use bytes::Bytes;
use serde::Serialize;
use std::fmt;

/// The Redis data types verify compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// string
    String,
    /// list
    List,
    /// set
    Set,
    /// zset
    Zset,
    /// hash
    Hash,
    /// stream
    Stream,
    /// Anything else TYPE reports (ReJSON-RL, MBbloom--, ...): compared by presence and type.
    Other,
}

impl KeyType {
    /// Names accepted by the type filter.
    pub const NAMES: [&'static str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

    /// From a TYPE reply (`none` = the key does not exist).
    pub fn from_type_reply(s: &[u8]) -> Option<KeyType> {
        Some(match s {
            b"none" => return None,
            b"string" => KeyType::String,
            b"list" => KeyType::List,
            b"set" => KeyType::Set,
            b"zset" => KeyType::Zset,
            b"hash" => KeyType::Hash,
            b"stream" => KeyType::Stream,
            _ => KeyType::Other,
        })
    }

    /// From a filter name.
    pub fn from_name(s: &str) -> Option<KeyType> {
        Self::from_type_reply(s.as_bytes()).filter(|t| *t != KeyType::Other)
    }

    /// The TYPE name.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::Zset => "zset",
            KeyType::Hash => "hash",
            KeyType::Stream => "stream",
            KeyType::Other => "other",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How deep to look at each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// TYPE only.
    Keys,
    /// TYPE, PTTL, length.
    Meta,
    /// TYPE, PTTL, and the value (whole when small, else marked big).
    Full,
}

/// A stream entry: id and its field/value list in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Milliseconds part of the id.
    pub ms: u64,
    /// Sequence part of the id.
    pub seq: u64,
    /// field, value, field, value...
    pub fields: Vec<Bytes>,
}

impl StreamEntry {
    /// `ms-seq`.
    pub fn id_text(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// A value, or a piece of one. Sets and hashes are kept sorted (and deduplicated) so that two
/// equal values compare equal whatever order SSCAN/HSCAN produced; lists, sorted sets and streams
/// keep the server's order (which is part of their value).
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A string's bytes.
    Str(Bytes),
    /// List elements in order.
    List(Vec<Bytes>),
    /// Set members, sorted and unique.
    Set(Vec<Bytes>),
    /// Hash (field, value) pairs sorted by field, unique fields.
    Hash(Vec<(Bytes, Bytes)>),
    /// (member, score) in ZRANGE order.
    Zset(Vec<(Bytes, f64)>),
    /// Entries in id order.
    Stream(Vec<StreamEntry>),
}

impl Content {
    /// Element count (string: byte length).
    pub fn len(&self) -> u64 {
        (match self {
            Content::Str(b) => b.len(),
            Content::List(v) | Content::Set(v) => v.len(),
            Content::Hash(v) => v.len(),
            Content::Zset(v) => v.len(),
            Content::Stream(v) => v.len(),
        }) as u64
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorts and deduplicates unordered collections (SSCAN/HSCAN may repeat elements).
    pub fn normalize(&mut self) {
        match self {
            Content::Set(v) => {
                v.sort_unstable();
                v.dedup();
            }
            Content::Hash(v) => {
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v.dedup_by(|a, b| a.0 == b.0);
            }
            _ => {}
        }
    }
}

/// The value part of a [`KeyState`].
#[derive(Debug, Clone, PartialEq)]
pub enum ValueState {
    /// Not read (keys/meta depth, missing key, or a type verify does not read).
    NotRead,
    /// Read whole.
    Whole(Content),
    /// Larger than the big-key threshold: compare in chunks.
    Big,
}

/// One key as seen on one side.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// `None` = the key does not exist.
    pub ty: Option<KeyType>,
    /// PTTL: `None` = not read; `Some(-1)` = no TTL; `Some(ms)` otherwise.
    pub pttl: Option<i64>,
    /// Length / cardinality (strings: bytes), when read.
    pub len: Option<u64>,
    /// The value, in full depth.
    pub value: ValueState,
}

impl KeyState {
    /// A key that does not exist.
    pub const MISSING: KeyState = KeyState { ty: None, pttl: None, len: None, value: ValueState::NotRead };

    /// True when the key exists.
    pub fn exists(&self) -> bool {
        self.ty.is_some()
    }
}
