//! Sans-IO codec for Dragonfly's replication stream: RDB dialect, journal, and their encoders.
//!
//! Invariants (tested, fuzzed): no I/O, no clock, no logging, no panics on any input; every
//! length is checked against [`Limits`] before allocating; big values come out as
//! begin / bounded chunks / end, and chunk boundaries depend only on the bytes, never on how
//! they were split into `feed` calls.

pub mod assemble;
pub mod compress;
pub mod crc64;
pub mod dump;
pub mod error;
pub mod event;
pub mod flow;
pub mod intset;
pub mod journal;
pub mod listpack;
pub mod lzf;
pub mod model;
pub mod packed;
pub mod rdb;
pub mod string;
pub mod value;
pub mod writer;
pub mod ziplist;

pub use error::{DecodeError, EncodeError, ErrorKind};
pub use event::{Chunk, EntryHeader, EntryId, Event, JournalOp, JournalRecord, KeyFlags, ValueType};
pub use model::Value;

/// Outcome of an internal reader: either a value, or "at least `n` bytes from the front of the
/// current input are needed before this can make progress".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// The item was read (and consumed, for readers that consume).
    Done(T),
    /// Not enough input: at least this many bytes, counted from the front of the input, are needed.
    Need(usize),
}

/// Unwraps a [`Read::Done`] or returns the `Need` from the enclosing function.
#[macro_export]
#[doc(hidden)]
macro_rules! ready {
    ($e:expr) => {
        match $e {
            $crate::proto::Read::Done(v) => v,
            $crate::proto::Read::Need(n) => return Ok($crate::proto::Read::Need(n)),
        }
    };
}

/// Bounds applied by every decoder before it allocates or buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single string (key, element, field, value piece held whole), in bytes.
    pub max_string: u64,
    /// Largest element count of one container value.
    pub max_elements: u64,
    /// Largest journal record (all argument bytes together).
    pub max_record: u64,
    /// Largest decompressed block (LZ4 / zstd / LZF) accepted.
    pub max_decompressed: u64,
    /// A value chunk is emitted once it holds this many elements...
    pub batch_elements: usize,
    /// ...or this many payload bytes, whichever comes first (and at the end of the value).
    pub batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_string: 512 << 20,
            max_elements: 1 << 32,
            max_record: 1 << 30,
            max_decompressed: 256 << 20,
            batch_elements: 512,
            batch_bytes: 64 << 10,
        }
    }
}
