//! RESP2 client and server plumbing: a pipelined connection of our own on the `redis-protocol`
//! decoder, used to write into Redis / Redis Cluster at the ingest ceiling, read both sides when
//! verifying, and serve replicas from the mock master.
//!
//! Layers, lowest first:
//! - [`Cmd`] builds commands straight into RESP bytes; [`Frame`] is a decoded reply.
//! - [`Decoder`] finds frame boundaries incrementally (with [`DecodeLimits`]) and decodes them.
//! - [`tls`]: the one way to open a socket ([`tls::connect`]): plain TCP or TLS ([`Stream`]),
//!   with the endpoint's [`TlsClient`] (CA, client certificate, SNI).
//! - [`Connection`] owns a stream ([`Stream`] or anything `AsyncRead + AsyncWrite`) and its
//!   buffers; connects with timeouts, keepalive, TLS, `AUTH`, `SELECT`.
//! - [`Pipeline`] pushes many commands and takes replies in order, with no per-command overhead.
//! - [`Client`] is a cloneable handle to a connection driven by a task, for concurrent callers.
//! - [`server`] decodes client commands (arrays and inline) and encodes replies.
//! - [`Redirect`] parses `MOVED` / `ASK`.

mod client;
mod cmd;
mod conn;
mod decode;
mod error;
mod frame;
mod pipeline;
mod redirect;
pub mod server;
pub mod tls;

pub use client::Client;
pub use cmd::{encode_command, put_bulk, put_decimal, Arg, Cmd};
pub use conn::{Auth, ConnectOptions, Connection};
pub use decode::{DecodeLimits, Decoder};
pub use error::{ProtocolError, RespError, Result};
pub use frame::Frame;
pub use pipeline::Pipeline;
pub use redirect::Redirect;
pub use tls::{Stream, TlsClient};
