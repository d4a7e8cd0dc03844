//! Typed decode/encode errors that say where (byte offset) and what was expected.

use std::fmt;

/// What went wrong, without the position (see [`DecodeError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// A byte that is not a valid opcode at this point of the stream.
    #[error("unknown opcode 0x{0:02x} ({0})")]
    UnknownOpcode(u8),
    /// A key entry with a type byte this decoder does not know.
    #[error("unknown value type {0}")]
    UnknownType(u8),
    /// A packed length whose first byte is not one of the defined forms.
    #[error("invalid packed-integer first byte 0x{0:02x}")]
    BadPackedInt(u8),
    /// Generic "expected X, found Y".
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar required here.
        expected: &'static str,
        /// What the bytes said instead.
        found: String,
    },
    /// A length or count over the configured [`super::Limits`].
    #[error("{what} of {value} exceeds the limit of {limit}")]
    Limit {
        /// Which quantity.
        what: &'static str,
        /// The value read from the stream.
        value: u64,
        /// The configured bound.
        limit: u64,
    },
    /// A structure whose internal lengths or counts disagree.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which structure (listpack, ziplist, LZF, ...).
        what: &'static str,
        /// What is inconsistent.
        detail: String,
    },
    /// The RDB checksum after EOF does not match the bytes.
    #[error("checksum mismatch: stream says {expected:016x}, computed {computed:016x}")]
    Checksum {
        /// Checksum carried by the stream.
        expected: u64,
        /// Checksum computed over the bytes.
        computed: u64,
    },
    /// The 40-byte eof token after the RDB part is not the one the FLOW reply announced.
    #[error("eof token mismatch: expected {expected}, found {found}")]
    Token {
        /// Token from the `DFLY FLOW` reply.
        expected: String,
        /// Bytes found in the stream (lossy).
        found: String,
    },
    /// An LSN marker disagrees with the decoder's own count.
    #[error("LSN marker says {found}, but the last record counted was LSN {expected}")]
    Lsn {
        /// LSN of the last counted record.
        expected: u64,
        /// LSN carried by the marker.
        found: u64,
    },
    /// Input ended (final flush) in the middle of a record.
    #[error("stream ends inside {0}")]
    Truncated(&'static str),
    /// Bytes were fed after the stream's logical end.
    #[error("{0} trailing bytes after the end of the stream")]
    Trailing(u64),
}

/// A decode error with its position in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the fed stream (or of the enclosing block, see `context`).
    pub offset: u64,
    /// Where inside a block the error was found (e.g. "LZ4 block at 1234, +56"), if anywhere.
    pub context: Option<String>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// An error at a plain stream offset.
    pub fn at(offset: u64, kind: ErrorKind) -> Self {
        DecodeError { offset, context: None, kind }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}", self.offset)?;
        if let Some(c) = &self.context {
            write!(f, " ({c})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// Errors of the encoders (the model does not fit the requested encoding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The value cannot be written with this type byte.
    #[error("a {value} value cannot be encoded as type {ty}")]
    TypeMismatch {
        /// Kind of the model value.
        value: &'static str,
        /// Requested type code.
        ty: u8,
    },
    /// Something does not fit the format (too long, empty where not allowed, ...).
    #[error("cannot encode: {0}")]
    Invalid(String),
}

/// Shorthand for "expected X, found Y".
pub(crate) fn unexpected(expected: &'static str, found: impl fmt::Display) -> ErrorKind {
    ErrorKind::Unexpected { expected, found: found.to_string() }
}

/// Shorthand for a corrupt-structure error.
pub(crate) fn corrupt(what: &'static str, detail: impl fmt::Display) -> ErrorKind {
    ErrorKind::Corrupt { what, detail: detail.to_string() }
}

/// Checks `value <= limit`.
pub(crate) fn check_limit(what: &'static str, value: u64, limit: u64) -> Result<(), ErrorKind> {
    if value > limit {
        Err(ErrorKind::Limit { what, value, limit })
    } else {
        Ok(())
    }
}
