//! `Pipeline`: bulk ingest over one connection — push many commands, flush once, take replies in
//! order — with no per-command task, channel or allocation.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::cmd::Cmd;
use super::conn::{ConnectOptions, Connection};
use super::error::{ProtocolError, RespError, Result};
use super::frame::Frame;
use super::tls::Stream;

/// A connection used as an explicit pipeline: replies come back in the order commands were pushed.
///
/// Typical steady-state use keeps a window of commands in flight:
///
/// ```no_run
/// # async fn demo() -> Result<(), df2redis::resp::RespError> {
/// use df2redis::resp::{Cmd, ConnectOptions, Pipeline};
/// let mut p = Pipeline::connect("127.0.0.1:6379", &ConnectOptions::default()).await?;
/// for i in 0..100_000u32 {
///     if p.in_flight() >= 256 {
///         let reply = p.next_reply().await?;
///         assert!(!reply.is_error());
///     }
///     p.push_args(&[&b"SET"[..], format!("k{i}").as_bytes(), b"v"]);
/// }
/// p.drain_with(|_| {}).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pipeline<S = Stream> {
    conn: Connection<S>,
    in_flight: usize,
}

impl Pipeline<Stream> {
    /// Connect (see [`Connection::connect`]) and wrap.
    pub async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Self> {
        Ok(Pipeline::new(Connection::connect(addr, opts).await?))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pipeline<S> {
    /// Use `conn` as a pipeline. It must have no replies outstanding.
    pub fn new(conn: Connection<S>) -> Self {
        Pipeline { conn, in_flight: 0 }
    }

    /// Queue one command.
    pub fn push(&mut self, cmd: &Cmd) {
        self.conn.queue(cmd);
        self.in_flight += 1;
    }

    /// Queue one command given as argument slices (encoded straight into the write buffer).
    pub fn push_args<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.conn.queue_args(args);
        self.in_flight += 1;
    }

    /// Queue `commands` commands that the caller has already encoded with `encode` (called with
    /// the write buffer). Each encoded command must produce exactly one reply.
    pub fn push_encoded(&mut self, commands: usize, encode: impl FnOnce(&mut BytesMut)) {
        encode(self.conn.write_buf());
        self.in_flight += commands;
    }

    /// Commands pushed whose replies have not been taken yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Bytes queued and not yet written.
    pub fn pending_write(&self) -> usize {
        self.conn.pending_write()
    }

    /// Write everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        self.conn.flush().await
    }

    /// The reply to the oldest command in flight (writing queued commands while waiting). Error
    /// replies are returned as [`Frame::Error`] so the caller can map them to its command.
    pub async fn next_reply(&mut self) -> Result<Frame> {
        if self.in_flight == 0 {
            return Err(self.nothing_in_flight());
        }
        let f = self.conn.read_frame().await?;
        self.in_flight -= 1;
        Ok(f)
    }

    /// A reply already buffered, without I/O.
    pub fn try_next_reply(&mut self) -> Result<Option<Frame>> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let f = self.conn.try_read_frame()?;
        if f.is_some() {
            self.in_flight -= 1;
        }
        Ok(f)
    }

    /// Flush and collect every outstanding reply, in order.
    pub async fn drain(&mut self) -> Result<Vec<Frame>> {
        let mut out = Vec::with_capacity(self.in_flight.min(1 << 16));
        self.drain_with(|f| out.push(f)).await?;
        Ok(out)
    }

    /// Flush and hand every outstanding reply to `f`, in order.
    pub async fn drain_with(&mut self, mut f: impl FnMut(Frame)) -> Result<()> {
        while self.in_flight > 0 {
            f(self.next_reply().await?);
        }
        self.conn.flush().await
    }

    /// Send every command of `cmds`, keeping at most `window` in flight, handing each reply with
    /// its command's index to `on_reply` in order. Returns the number of commands sent. Must be
    /// called with nothing in flight.
    pub async fn run<I>(&mut self, cmds: I, window: usize, mut on_reply: impl FnMut(usize, Frame)) -> Result<usize>
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<Cmd>,
    {
        if self.in_flight != 0 {
            return Err(RespError::Protocol {
                addr: self.conn.addr_arc().clone(),
                source: ProtocolError::new("run called with commands already in flight"),
            });
        }
        let window = window.max(1);
        let mut sent = 0usize;
        let mut answered = 0usize;
        for cmd in cmds {
            while self.in_flight >= window {
                on_reply(answered, self.next_reply().await?);
                answered += 1;
            }
            self.push(std::borrow::Borrow::borrow(&cmd));
            sent += 1;
        }
        while self.in_flight > 0 {
            on_reply(answered, self.next_reply().await?);
            answered += 1;
        }
        Ok(sent)
    }

    /// The underlying connection.
    pub fn connection(&mut self) -> &mut Connection<S> {
        &mut self.conn
    }

    /// Give the connection back (replies still in flight stay unread).
    pub fn into_connection(self) -> Connection<S> {
        self.conn
    }

    fn nothing_in_flight(&self) -> RespError {
        RespError::Protocol {
            addr: self.conn.addr_arc().clone(),
            source: ProtocolError::new("next_reply called with no command in flight"),
        }
    }
}
