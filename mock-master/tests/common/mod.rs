//! Test helpers: a tiny RESP client over TCP with deadlines (no sleeps anywhere).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

pub mod replica;

use bytes::BytesMut;
use mock_master::resp::{encode_command, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deadline of every single wait in the tests.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A raw connection: send commands, read replies or raw bytes.
pub struct Client {
    pub s: TcpStream,
    pub buf: BytesMut,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s =
            tokio::time::timeout(DEADLINE, TcpStream::connect(addr)).await.expect("connect deadline").expect("connect");
        s.set_nodelay(true).unwrap();
        Client { s, buf: BytesMut::new() }
    }

    pub async fn send(&mut self, args: &[&str]) {
        self.s.write_all(&encode_command(args)).await.expect("write");
    }

    pub async fn reply(&mut self) -> Reply {
        loop {
            if let Some(r) = Reply::parse(&mut self.buf).expect("reply parse") {
                return r;
            }
            self.fill().await;
        }
    }

    pub async fn cmd(&mut self, args: &[&str]) -> Reply {
        self.send(args).await;
        self.reply().await
    }

    /// Reads more bytes into the buffer (panics on EOF or deadline).
    pub async fn fill(&mut self) {
        let n =
            tokio::time::timeout(DEADLINE, self.s.read_buf(&mut self.buf)).await.expect("read deadline").expect("read");
        assert!(n > 0, "unexpected EOF");
    }

    /// Reads until EOF; returns whether EOF (true) or an error happened.
    pub async fn read_to_eof(&mut self) -> bool {
        loop {
            match tokio::time::timeout(DEADLINE, self.s.read_buf(&mut self.buf)).await.expect("read deadline") {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    }
}

/// Renders a reply compactly for transcripts.
pub fn show(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => format!("+{s}"),
        Reply::Error(s) => format!("-{s}"),
        Reply::Int(n) => format!(":{n}"),
        Reply::Bulk(None) => "(nil)".into(),
        Reply::Bulk(Some(b)) => format!("${:?}", String::from_utf8_lossy(b)),
        Reply::Array(None) => "*nil".into(),
        Reply::Array(Some(items)) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
    }
}
