//! `Connection`: one RESP2 connection (TCP or any `AsyncRead + AsyncWrite`), its options, handshake
//! (AUTH / SELECT / CLIENT SETNAME) and full-duplex buffered I/O.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::cmd::{encode_command, Cmd};
use super::decode::{DecodeLimits, Decoder};
use super::error::{Redacted, RespError, Result};
use super::frame::Frame;
use super::tls::{self, ConnectError, Stream, TlsClient};

/// Credentials sent with `AUTH` right after connecting.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `AUTH password` (the `default` user).
    Password(String),
    /// `AUTH user password` (ACL users).
    User {
        /// ACL user name.
        user: String,
        /// Its password.
        password: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password(_) => f.debug_tuple("Password").field(&Redacted).finish(),
            Auth::User { user, .. } => f.debug_struct("User").field("user", user).field("password", &Redacted).finish(),
        }
    }
}

/// How to open and run a connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Deadline for TCP connect, then for the TLS handshake, then for `AUTH`/`SELECT`/`SETNAME`.
    pub connect_timeout: Duration,
    /// Deadline for any single wait on the socket while replies are outstanding (`None`: wait forever).
    pub response_timeout: Option<Duration>,
    /// TCP keepalive idle time (`None`: off).
    pub keepalive: Option<Duration>,
    /// Disable Nagle (default on: commands are already batched by us).
    pub nodelay: bool,
    /// Credentials, if the server requires them.
    pub auth: Option<Auth>,
    /// TLS (`None`: plain TCP).
    pub tls: Option<TlsClient>,
    /// `SELECT db` after connecting (standalone servers only).
    pub db: Option<u32>,
    /// `CLIENT SETNAME` after connecting.
    pub client_name: Option<String>,
    /// Bounds on replies.
    pub limits: DecodeLimits,
    /// [`super::Client`]: most commands written but not yet answered.
    pub window: usize,
    /// Read granularity (bytes reserved before each socket read).
    pub read_chunk: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(30)),
            keepalive: Some(Duration::from_secs(30)),
            nodelay: true,
            auth: None,
            tls: None,
            db: None,
            client_name: None,
            limits: DecodeLimits::default(),
            window: 1024,
            read_chunk: 64 << 10,
        }
    }
}

/// One RESP2 connection with its read and write buffers.
///
/// Commands are *queued* into the write buffer ([`Connection::queue`]) and go out on the next
/// [`Connection::flush`] or [`Connection::read_frame`]; while writing, the connection also reads,
/// so a large batch can never deadlock against a server that is blocked writing replies.
pub struct Connection<S = Stream> {
    stream: S,
    addr: Arc<str>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
    response_timeout: Option<Duration>,
    read_chunk: usize,
    needs_flush: bool,
    broken: Option<RespError>,
}

impl<S> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("read_buffered", &self.rbuf.len())
            .field("write_buffered", &self.wbuf.len())
            .field("broken", &self.broken.is_some())
            .finish()
    }
}

impl Connection<Stream> {
    /// Connect to `addr` (`host:port`) over TCP, or TLS when the options carry a [`TlsClient`]
    /// (see [`tls::connect`]), and run the handshake the options ask for.
    pub async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Self> {
        let peer: Arc<str> = Arc::from(addr);
        let stream = tls::connect(addr, opts.tls.as_ref(), opts.connect_timeout).await.map_err(|e| match e {
            ConnectError::Tcp(e) => RespError::io(&peer, e),
            ConnectError::Timeout { what, .. } => RespError::Timeout { addr: peer.clone(), what },
            ConnectError::Handshake(detail) => RespError::Tls { addr: peer.clone(), detail },
        })?;
        if !opts.nodelay {
            stream.tcp().set_nodelay(false).map_err(|e| RespError::io(&peer, e))?;
        }
        if let Some(idle) = opts.keepalive {
            let ka = socket2::TcpKeepalive::new().with_time(idle);
            socket2::SockRef::from(stream.tcp()).set_tcp_keepalive(&ka).map_err(|e| RespError::io(&peer, e))?;
        }
        Connection::from_stream(stream, addr, opts).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wrap an established stream (no handshake; see [`Connection::handshake`]).
    pub fn new(stream: S, addr: &str, opts: &ConnectOptions) -> Self {
        Connection {
            stream,
            addr: Arc::from(addr),
            rbuf: BytesMut::with_capacity(opts.read_chunk),
            wbuf: BytesMut::with_capacity(64 << 10),
            decoder: Decoder::new(opts.limits),
            response_timeout: opts.response_timeout,
            read_chunk: opts.read_chunk.max(512),
            needs_flush: false,
            broken: None,
        }
    }

    /// Wrap an established stream (e.g. TLS) and run the handshake, under the connect timeout.
    pub async fn from_stream(stream: S, addr: &str, opts: &ConnectOptions) -> Result<Self> {
        let mut conn = Connection::new(stream, addr, opts);
        match tokio::time::timeout(opts.connect_timeout, conn.handshake(opts)).await {
            Ok(r) => r.map(|()| conn),
            Err(_) => Err(RespError::Timeout { addr: conn.addr.clone(), what: "handshaking" }),
        }
    }

    /// `AUTH`, `SELECT`, `CLIENT SETNAME` as configured.
    pub async fn handshake(&mut self, opts: &ConnectOptions) -> Result<()> {
        match &opts.auth {
            Some(Auth::Password(p)) => {
                self.request(&Cmd::new("AUTH").arg(p.as_str())).await?;
            }
            Some(Auth::User { user, password }) => {
                self.request(&Cmd::new("AUTH").arg(user.as_str()).arg(password.as_str())).await?;
            }
            None => {}
        }
        if let Some(db) = opts.db {
            self.request(&Cmd::new("SELECT").arg(db)).await?;
        }
        if let Some(name) = &opts.client_name {
            self.request(&Cmd::new("CLIENT").arg("SETNAME").arg(name.as_str())).await?;
        }
        Ok(())
    }

    /// Peer address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn addr_arc(&self) -> &Arc<str> {
        &self.addr
    }

    /// Queue a command (written on the next flush / read).
    pub fn queue(&mut self, cmd: &Cmd) {
        cmd.encode(&mut self.wbuf);
    }

    /// Queue a command given as argument slices, encoded straight into the write buffer.
    pub fn queue_args<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode_command(&mut self.wbuf, args);
    }

    /// The write buffer, for callers that encode RESP themselves (e.g. a server writing replies).
    pub fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// The read buffer (bytes received but not yet decoded), e.g. to take over a raw byte stream.
    /// The decoder forgets any partial scan, so consuming bytes here is always safe.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        self.decoder.reset();
        &mut self.rbuf
    }

    /// Bytes queued but not yet written.
    pub fn pending_write(&self) -> usize {
        self.wbuf.len()
    }

    /// Whether queued bytes still have to be written or flushed.
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty() || self.needs_flush
    }

    /// The error that broke this connection, if any.
    pub fn broken(&self) -> Option<&RespError> {
        self.broken.as_ref()
    }

    /// The underlying stream.
    pub fn into_inner(self) -> (S, BytesMut) {
        (self.stream, self.rbuf)
    }

    /// Write everything queued (reading concurrently into the read buffer).
    pub async fn flush(&mut self) -> Result<()> {
        while !self.wbuf.is_empty() || self.needs_flush {
            self.io(false).await?;
        }
        Ok(())
    }

    /// A decoded frame already in the read buffer, without I/O.
    pub fn try_read_frame(&mut self) -> Result<Option<Frame>> {
        self.check()?;
        match self.decoder.decode(&mut self.rbuf) {
            Ok(f) => Ok(f),
            Err(e) => Err(self.fail(RespError::protocol(&self.addr, e))),
        }
    }

    /// The next frame from the peer, writing queued commands meanwhile. Error replies are returned
    /// as [`Frame::Error`], not as `Err`.
    pub async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = self.try_read_frame()? {
                return Ok(f);
            }
            self.io(true).await?;
        }
    }

    /// Send one command and wait for its reply; an error reply becomes [`RespError::Server`].
    pub async fn request(&mut self, cmd: &Cmd) -> Result<Frame> {
        self.queue(cmd);
        let f = self.read_frame().await?;
        into_result(&self.addr, f)
    }

    fn check(&self) -> Result<()> {
        match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: RespError) -> RespError {
        self.broken = Some(e.clone());
        e
    }

    /// One round of I/O: write what can be written; if `want_read`, return once new bytes were
    /// read, otherwise once the write buffer is drained. Bounded by the response timeout.
    async fn io(&mut self, want_read: bool) -> Result<()> {
        self.check()?;
        let r = match self.response_timeout {
            Some(t) => match tokio::time::timeout(t, poll_fn(|cx| self.poll_io(cx, want_read))).await {
                Ok(r) => r,
                Err(_) => Err(RespError::Timeout { addr: self.addr.clone(), what: "waiting for the server" }),
            },
            None => poll_fn(|cx| self.poll_io(cx, want_read)).await,
        };
        r.map_err(|e| self.fail(e))
    }

    pub(crate) fn poll_io(&mut self, cx: &mut Context<'_>, want_read: bool) -> Poll<Result<()>> {
        loop {
            while !self.wbuf.is_empty() {
                match Pin::new(&mut self.stream).poll_write(cx, &self.wbuf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(RespError::Closed { addr: self.addr.clone() })),
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        self.needs_flush = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(RespError::io(&self.addr, e))),
                    Poll::Pending => break,
                }
            }
            if self.wbuf.is_empty() && self.needs_flush {
                match Pin::new(&mut self.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.needs_flush = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(RespError::io(&self.addr, e))),
                    Poll::Pending => {}
                }
            }
            if !want_read && self.wbuf.is_empty() && !self.needs_flush {
                return Poll::Ready(Ok(()));
            }
            // Read when asked to, and also while a write is blocked so the server can drain.
            self.rbuf.reserve(self.read_chunk);
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(RespError::Closed { addr: self.addr.clone() })),
                Poll::Ready(Ok(_)) if want_read => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(RespError::io(&self.addr, e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Turn an error reply into [`RespError::Server`].
pub(crate) fn into_result(addr: &Arc<str>, f: Frame) -> Result<Frame> {
    match f {
        Frame::Error(msg) => {
            Err(RespError::Server { addr: addr.clone(), msg: String::from_utf8_lossy(&msg).into_owned() })
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_passwords() {
        let opts = ConnectOptions {
            auth: Some(Auth::User { user: "alice".into(), password: "hunter2".into() }),
            ..ConnectOptions::default()
        };
        let s = format!("{opts:?}");
        assert!(s.contains("alice"));
        assert!(!s.contains("hunter2"));
        assert!(!format!("{:?}", Auth::Password("pw-secret".into())).contains("pw-secret"));
    }

    #[tokio::test]
    async fn duplex_request_and_closed_peer() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut conn = Connection::new(client, "mem:1", &ConnectOptions::default());
        let srv = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 14];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"*1\r\n$4\r\nPING\r\n");
            server.write_all(b"+PONG\r\n-ERR nope\r\n").await.unwrap();
        });
        let f = conn.request(&Cmd::new("PING")).await.unwrap();
        assert_eq!(f.as_bytes(), Some(&b"PONG"[..]));
        let e = conn.read_frame().await.unwrap();
        assert!(e.is_error());
        srv.await.unwrap();
        let err = conn.read_frame().await.unwrap_err();
        assert!(matches!(err, RespError::Closed { .. }), "{err:?}");
        assert!(matches!(conn.read_frame().await, Err(RespError::Closed { .. })));
    }
}
