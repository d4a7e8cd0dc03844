//! Typed errors of the RESP layer: transport, protocol, server replies, timeouts; each names its peer.

use std::fmt;
use std::io;
use std::sync::Arc;

/// A malformed or over-limit RESP stream (no peer attached; see [`RespError::Protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        ProtocolError(msg.into())
    }
}

/// Errors of a RESP connection. Every variant carries the peer address (`host:port`).
///
/// The type is `Clone` (I/O errors are shared behind an `Arc`) so that one transport failure can
/// be delivered to every request that was in flight on the connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RespError {
    /// The socket failed (connect, read or write).
    #[error("{addr}: I/O error: {source}")]
    Io {
        /// Peer address.
        addr: Arc<str>,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The peer sent bytes that are not valid RESP2, or a frame over the configured limits.
    #[error("{addr}: protocol error: {source}")]
    Protocol {
        /// Peer address.
        addr: Arc<str>,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// The server answered with an error reply (`-ERR ...`, `-MOVED ...`, `-WRONGTYPE ...`).
    #[error("{addr}: server error: {msg}")]
    Server {
        /// Peer address.
        addr: Arc<str>,
        /// The error line without the leading `-`.
        msg: String,
    },
    /// The TLS handshake failed (the detail says why: unknown CA, name mismatch, plain-text
    /// server, client certificate required...).
    #[error("{addr}: {detail}")]
    Tls {
        /// Peer address.
        addr: Arc<str>,
        /// What failed and what to change.
        detail: String,
    },
    /// A connect, handshake or reply deadline passed.
    #[error("{addr}: timed out while {what}")]
    Timeout {
        /// Peer address.
        addr: Arc<str>,
        /// What was being waited for.
        what: &'static str,
    },
    /// The connection is closed (by the peer, or because an earlier error broke it).
    #[error("{addr}: connection closed")]
    Closed {
        /// Peer address.
        addr: Arc<str>,
    },
}

impl RespError {
    /// The peer address this error belongs to.
    pub fn addr(&self) -> &str {
        match self {
            RespError::Io { addr, .. }
            | RespError::Protocol { addr, .. }
            | RespError::Server { addr, .. }
            | RespError::Tls { addr, .. }
            | RespError::Timeout { addr, .. }
            | RespError::Closed { addr } => addr,
        }
    }

    /// The server's error message, if this is an error reply.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            RespError::Server { msg, .. } => Some(msg),
            _ => None,
        }
    }

    /// A `MOVED` / `ASK` redirect carried by this error, if any.
    pub fn redirect(&self) -> Option<super::Redirect> {
        self.server_message().and_then(super::Redirect::parse)
    }

    /// Whether the connection that produced this error is unusable afterwards.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, RespError::Server { .. })
    }

    pub(crate) fn io(addr: &Arc<str>, e: io::Error) -> Self {
        if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe) {
            return RespError::Closed { addr: addr.clone() };
        }
        RespError::Io { addr: addr.clone(), source: Arc::new(e) }
    }

    pub(crate) fn protocol(addr: &Arc<str>, e: ProtocolError) -> Self {
        RespError::Protocol { addr: addr.clone(), source: e }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = RespError> = std::result::Result<T, E>;

/// Redacted display helper for secrets in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}
