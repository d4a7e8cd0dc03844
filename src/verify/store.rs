//! The read operations verify needs from one side (source or target). The Redis implementation
//! is [`super::redis_store::RedisStore`]; unit tests use an in-memory fake.

use super::model::{Content, Depth, KeyState, KeyType};
use bytes::Bytes;
use std::future::Future;

/// One SCAN-able keyspace: a node and a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanUnit {
    /// Index of the node within the side (0 for standalone).
    pub node: usize,
    /// Database.
    pub db: u32,
    /// Keys in that db on that node when listed (DBSIZE / INFO keyspace), for progress.
    pub keys: u64,
    /// `host:port/db`, for messages.
    pub label: String,
}

/// Where a chunked read of a big value continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    /// Element (string: byte) index, for strings, lists and sorted sets.
    Index(u64),
    /// SCAN-family cursor, for sets and hashes (0 = start).
    Cursor(u64),
    /// Next stream id to read (inclusive), for streams.
    StreamId(u64, u64),
}

impl Pos {
    /// Where reading a value of this type starts.
    pub fn start(ty: KeyType) -> Pos {
        match ty {
            KeyType::Set | KeyType::Hash => Pos::Cursor(0),
            KeyType::Stream => Pos::StreamId(0, 0),
            _ => Pos::Index(0),
        }
    }
}

/// A piece of a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The elements read.
    pub content: Content,
    /// Where to continue; `None` = the value is exhausted.
    pub next: Option<Pos>,
}

/// Errors of a side.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection / protocol failure.
    #[error("{side} {addr}: {reason}")]
    Io {
        /// "source" or "target".
        side: &'static str,
        /// Node address.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The server answered something verify cannot interpret.
    #[error("{side}: unexpected reply to {command}: {reply}")]
    Reply {
        /// "source" or "target".
        side: &'static str,
        /// The command.
        command: String,
        /// The reply, abbreviated.
        reply: String,
    },
}

/// Read access to one side. Implementations batch and pipeline; every method may be called
/// concurrently from several tasks.
pub trait Store: Send + Sync + 'static {
    /// The keyspaces to scan (every master × every non-empty db, filtered by `dbs` if not empty).
    fn units(&self, dbs: &[u32]) -> impl Future<Output = Result<Vec<ScanUnit>, StoreError>> + Send;

    /// One SCAN step on a unit; returns the next cursor (0 = done) and keys.
    fn scan(
        &self,
        unit: &ScanUnit,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
    ) -> impl Future<Output = Result<(u64, Vec<Bytes>), StoreError>> + Send;

    /// Reads these keys at `depth`. At [`Depth::Full`], values with more than `big` elements
    /// (strings: bytes) come back as [`super::model::ValueState::Big`] with `len` set.
    fn probe(
        &self,
        db: u32,
        keys: &[Bytes],
        depth: Depth,
        big: u64,
    ) -> impl Future<Output = Result<Vec<KeyState>, StoreError>> + Send;

    /// [`Store::probe`] of keys the other side has already read: `like[i]` is that side's state
    /// of `keys[i]`, used only as a guess of the type to expect so that reads can be issued
    /// without asking `TYPE` first. The result must be the same as `probe`'s whatever the guess.
    fn probe_like(
        &self,
        db: u32,
        keys: &[Bytes],
        depth: Depth,
        big: u64,
        like: &[KeyState],
    ) -> impl Future<Output = Result<Vec<KeyState>, StoreError>> + Send {
        let _ = like;
        self.probe(db, keys, depth, big)
    }

    /// Which of these keys exist (cheap: the target→source direction only needs this).
    fn exists(&self, db: u32, keys: &[Bytes]) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Reads up to about `count` elements of a value from `pos`.
    fn piece(
        &self,
        db: u32,
        key: &Bytes,
        ty: KeyType,
        pos: Pos,
        count: u64,
    ) -> impl Future<Output = Result<Piece, StoreError>> + Send;

    /// Point lookups in a hash (field → value) or set (member → `Some(empty)` if present).
    fn lookup(
        &self,
        db: u32,
        key: &Bytes,
        ty: KeyType,
        members: &[Bytes],
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>, StoreError>> + Send;
}
