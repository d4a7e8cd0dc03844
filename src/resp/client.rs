//! `Client`: a cheap, cloneable handle to one pipelined connection driven by a background task;
//! requests are coalesced into batched writes and replies matched FIFO, within a bounded window.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use super::cmd::Cmd;
use super::conn::{into_result, ConnectOptions, Connection};
use super::error::{ProtocolError, RespError, Result};
use super::frame::Frame;

struct Request {
    cmd: Cmd,
    reply: oneshot::Sender<Result<Frame>>,
}

/// Handle to a pipelined connection. Clone it freely; all clones share the connection.
///
/// At most `window` commands are written and unanswered at a time, and at most `window` more wait
/// in the queue; beyond that [`Client::send`] waits, so memory stays bounded and backpressure
/// reaches callers. When every clone is dropped the connection closes after answering what was sent.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Request>,
    addr: Arc<str>,
}

impl Client {
    /// Connect over TCP (see [`Connection::connect`]) and start the driver task.
    pub async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Client> {
        let conn = Connection::connect(addr, opts).await?;
        Ok(Client::spawn(conn, opts.window, opts.response_timeout))
    }

    /// Drive an established connection (any stream) from a new task on the current runtime.
    pub fn spawn<S>(conn: Connection<S>, window: usize, response_timeout: Option<Duration>) -> Client
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let window = window.max(1);
        let (tx, rx) = mpsc::channel(window);
        let addr = conn.addr_arc().clone();
        tokio::spawn(drive(conn, rx, window, response_timeout));
        Client { tx, addr }
    }

    /// Peer address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection is known to be gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queue `cmd` and resolve with its reply; an error reply becomes [`RespError::Server`].
    ///
    /// The command is queued immediately when the queue has room (so calling `send` several times
    /// before awaiting pipelines the commands in call order), otherwise on first poll.
    pub fn send(&self, cmd: Cmd) -> impl Future<Output = Result<Frame>> + Send + 'static {
        let fut = self.send_raw(cmd);
        let addr = self.addr.clone();
        async move { into_result(&addr, fut.await?) }
    }

    /// Like [`Client::send`], but an error reply is returned as `Ok(Frame::Error)`.
    pub fn send_raw(&self, cmd: Cmd) -> impl Future<Output = Result<Frame>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let addr = self.addr.clone();
        let deferred = match self.tx.try_send(Request { cmd, reply }) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(req)) => Some(Ok((self.tx.clone(), req))),
            Err(mpsc::error::TrySendError::Closed(_)) => Some(Err(())),
        };
        async move {
            match deferred {
                None => {}
                Some(Ok((tx, req))) => tx.send(req).await.map_err(|_| RespError::Closed { addr: addr.clone() })?,
                Some(Err(())) => return Err(RespError::Closed { addr }),
            }
            rx.await.unwrap_or(Err(RespError::Closed { addr }))
        }
    }
}

async fn drive<S>(
    mut conn: Connection<S>,
    mut rx: mpsc::Receiver<Request>,
    window: usize,
    response_timeout: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending: VecDeque<oneshot::Sender<Result<Frame>>> = VecDeque::with_capacity(window.min(1 << 16));
    let mut rx_open = true;
    let far = Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep(response_timeout.unwrap_or(far));
    tokio::pin!(sleep);
    let mut armed = false;
    let result: Result<()> = poll_fn(|cx| {
        let mut rounds = 0u32;
        loop {
            let mut progress = false;
            while rx_open && pending.len() < window {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(req)) => {
                        conn.queue(&req.cmd);
                        pending.push_back(req.reply);
                        progress = true;
                    }
                    Poll::Ready(None) => rx_open = false,
                    Poll::Pending => break,
                }
            }
            let mut answered = false;
            loop {
                match conn.try_read_frame() {
                    Ok(Some(f)) => match pending.pop_front() {
                        Some(tx) => {
                            let _ = tx.send(Ok(f));
                            answered = true;
                        }
                        None => {
                            let e = ProtocolError::new(format!("unsolicited reply {}", f.to_string_lossy()));
                            return Poll::Ready(Err(RespError::Protocol { addr: conn.addr_arc().clone(), source: e }));
                        }
                    },
                    Ok(None) => break,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            progress |= answered;
            if !rx_open && pending.is_empty() && !conn.has_output() {
                return Poll::Ready(Ok(()));
            }
            let want_read = !pending.is_empty();
            if want_read || conn.has_output() {
                match conn.poll_io(cx, want_read) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if let Some(t) = response_timeout {
                if pending.is_empty() {
                    armed = false;
                } else if answered || !armed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + t);
                    armed = true;
                }
                if armed && sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(RespError::Timeout {
                        addr: conn.addr_arc().clone(),
                        what: "waiting for the server",
                    }));
                }
            }
            if !progress {
                return Poll::Pending;
            }
            rounds += 1;
            if rounds >= 64 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    })
    .await;
    if let Err(e) = result {
        for tx in pending.drain(..) {
            let _ = tx.send(Err(e.clone()));
        }
        rx.close();
        while let Ok(req) = rx.try_recv() {
            let _ = req.reply.send(Err(e.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn fifo_over_duplex_and_failure_fans_out() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let conn = Connection::new(client, "mem:2", &ConnectOptions::default());
        let c = Client::spawn(conn, 4, None);
        let a = c.send(Cmd::new("ECHO").arg("a"));
        let b = c.send(Cmd::new("ECHO").arg("b"));
        let mut got = vec![0u8; 0];
        let mut buf = [0u8; 256];
        while got.len() < 42 {
            let n = server.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&got[..], &b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*2\r\n$4\r\nECHO\r\n$1\r\nb\r\n"[..]);
        server.write_all(b"$1\r\na\r\n-ERR b\r\n").await.unwrap();
        assert_eq!(a.await.unwrap().as_bytes(), Some(&b"a"[..]));
        assert_eq!(b.await.unwrap_err().server_message(), Some("ERR b"));
        let pending = c.send(Cmd::new("PING"));
        drop(server);
        assert!(matches!(pending.await, Err(RespError::Closed { .. })));
        assert!(c.send(Cmd::new("PING")).await.is_err());
    }

    #[tokio::test]
    async fn response_timeout_fails_pending() {
        let (client, _server) = tokio::io::duplex(1 << 16);
        let conn = Connection::new(client, "mem:3", &ConnectOptions::default());
        let c = Client::spawn(conn, 4, Some(Duration::from_millis(100)));
        let r = c.send(Cmd::new("PING")).await;
        assert!(matches!(r, Err(RespError::Timeout { .. })), "{r:?}");
    }
}
