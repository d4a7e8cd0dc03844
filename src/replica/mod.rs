//! The replica session against a Dragonfly master: control-connection handshake (spec 3),
//! flow connections (`DFLY FLOW`, spec 4.1), continuous readers feeding the decoders, the
//! full/partial decision, `DFLY SYNC` / `DFLY STARTSTABLE`, and the per-flow ACK loop (4.5).

pub mod ack;
pub mod flows;
pub mod handshake;
pub mod reader;

pub use handshake::{Control, SourceOpts};

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Socket trouble with the master.
    #[error("source {addr}: {detail}")]
    Io {
        /// Address.
        addr: String,
        /// Cause.
        detail: String,
    },
    /// The master answered something the protocol does not allow here.
    #[error("source protocol: {0}")]
    Protocol(String),
    /// The flow stream could not be decoded.
    #[error("flow {flow}: {error}")]
    Decode {
        /// Flow.
        flow: usize,
        /// Decoder error.
        error: crate::proto::DecodeError,
    },
    /// Some flows answered FULL and others PARTIAL.
    #[error("flows disagree on FULL/PARTIAL; a full sync is needed")]
    Mixed,
    /// The master closed a flow.
    #[error("flow {0} closed by the master")]
    Closed(usize),
}
