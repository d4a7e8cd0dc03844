//! Replay mode: serve a real capture (`corpus/dragonfly-v*/<name>/`): answer the handshake as
//! capture.json recorded (same master id, sync id, capa reply, eof tokens) and play
//! `flow<i>.bin` — bytes `[0, full_sync_bytes[i])` after `DFLY SYNC`, the rest after
//! `DFLY STARTSTABLE`.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::tls::{send, Rd, TlsAcceptor, Wr};
use tokio::sync::watch;

use crate::resp::Reply;
use df2redis::resp::server::CommandReader;

/// The parts of capture.json replay needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Capture {
    /// The master id.
    pub master_id: String,
    /// The session id (`SYNC1`).
    pub sync_id: String,
    /// Number of flows.
    pub flows: u32,
    /// The `capa dragonfly` reply: `+text` strings and integers.
    pub capa_reply: Vec<serde_json::Value>,
    /// Eof token per flow.
    pub eof_tokens: Vec<String>,
    /// Bytes of each flow received before STARTSTABLE.
    pub full_sync_bytes: Vec<u64>,
    /// The recorded commands and replies.
    pub transcript: Vec<TranscriptStep>,
}

/// One recorded command.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptStep {
    /// Arguments sent.
    pub send: Vec<String>,
    /// The reply (a string `+…`/`-…`, raw text for bulk replies, an integer, or an array).
    pub reply: serde_json::Value,
}

/// A capture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// File error.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// capture.json is malformed.
    #[error("capture.json: {0}")]
    Json(#[from] serde_json::Error),
    /// Inconsistent capture.
    #[error("capture: {0}")]
    Invalid(String),
}

/// A loaded capture: metadata plus each flow's bytes.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Metadata.
    pub capture: Capture,
    /// `flow<i>.bin` contents.
    pub flows: Vec<Bytes>,
}

fn json_reply(v: &serde_json::Value) -> Reply {
    match v {
        serde_json::Value::String(s) => match s.as_bytes().first() {
            Some(b'+') => Reply::Simple(s[1..].to_string()),
            Some(b'-') => Reply::Error(s[1..].to_string()),
            _ => Reply::bulk(s.clone()),
        },
        serde_json::Value::Number(n) => Reply::Int(n.as_i64().unwrap_or(0)),
        serde_json::Value::Array(a) => Reply::Array(Some(a.iter().map(json_reply).collect())),
        serde_json::Value::Null => Reply::nil(),
        other => Reply::bulk(other.to_string()),
    }
}

impl Replay {
    /// Loads `dir/capture.json` and `dir/flow<i>.bin`.
    pub fn load(dir: &Path) -> Result<Self, ReplayError> {
        let p = dir.join("capture.json");
        let text = std::fs::read_to_string(&p).map_err(|e| ReplayError::Io(p.display().to_string(), e))?;
        let capture: Capture = serde_json::from_str(&text)?;
        let mut flows = Vec::new();
        for i in 0..capture.flows {
            let p = dir.join(format!("flow{i}.bin"));
            flows.push(Bytes::from(std::fs::read(&p).map_err(|e| ReplayError::Io(p.display().to_string(), e))?));
        }
        if capture.eof_tokens.len() != flows.len() || capture.full_sync_bytes.len() != flows.len() {
            return Err(ReplayError::Invalid("eof_tokens / full_sync_bytes do not match flows".into()));
        }
        for (i, f) in flows.iter().enumerate() {
            if capture.full_sync_bytes[i] > f.len() as u64 {
                return Err(ReplayError::Invalid(format!("full_sync_bytes[{i}] beyond flow{i}.bin")));
            }
        }
        Ok(Replay { capture, flows })
    }

    /// The recorded reply to a command with these arguments (case-insensitive), if any.
    fn recorded(&self, args: &[Bytes]) -> Option<Reply> {
        self.capture.transcript.iter().find_map(|s| {
            let same = s.send.len() == args.len()
                && s.send.iter().zip(args).all(|(x, a)| a.eq_ignore_ascii_case(x.as_bytes()));
            same.then(|| json_reply(&s.reply))
        })
    }

    /// Serves the capture on `listener` until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.serve_tls(listener, None, shutdown).await
    }

    /// Serves the capture on `listener`, over TLS when `tls` is given, until `shutdown`.
    pub async fn serve_tls(self, listener: TcpListener, tls: Option<TlsAcceptor>, shutdown: impl Future<Output = ()>) {
        let this = Arc::new(self);
        let (phase, _) = watch::channel(0u8);
        let phase = Arc::new(phase);
        let acks = Arc::new(Mutex::new(Vec::<(u32, u64)>::new()));
        tokio::pin!(shutdown);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                acc = listener.accept() => {
                    let Ok((sock, _)) = acc else { continue };
                    let (rp, phase, acks, tls) = (this.clone(), phase.clone(), acks.clone(), tls.clone());
                    tasks.spawn(async move {
                        if let Ok((r, w)) = crate::tls::accept(sock, tls.as_ref()).await {
                            conn(rp, phase, acks, r, w).await;
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
    }
}

async fn conn(rp: Arc<Replay>, phase: Arc<watch::Sender<u8>>, acks: Arc<Mutex<Vec<(u32, u64)>>>, mut r: Rd, mut w: Wr) {
    let mut buf = BytesMut::new();
    let mut reader = CommandReader::default();
    loop {
        while let Ok(Some(args)) = reader.read(&mut buf) {
            if args.is_empty() {
                continue;
            }
            let up: Vec<String> =
                args.iter().take(2).map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).collect();
            let up: Vec<&str> = up.iter().map(String::as_str).collect();
            let reply = match up.as_slice() {
                ["PING", ..] => Reply::Simple("PONG".into()),
                ["INFO", ..] => rp
                    .recorded(&args)
                    .or_else(|| rp.recorded(&[Bytes::from("INFO"), Bytes::from("SERVER")]))
                    .unwrap_or_else(|| Reply::bulk("")),
                ["REPLCONF", "CAPA"] if args.len() == 3 && &args[2][..] == b"dragonfly" => {
                    phase.send_replace(0);
                    json_reply(&serde_json::Value::Array(rp.capture.capa_reply.clone()))
                }
                ["REPLCONF", ..] => Reply::ok(),
                ["DFLY", "FLOW"] => match flow_check(&rp, &args) {
                    Ok(i) => {
                        let rep = Reply::Array(Some(vec![
                            Reply::Simple("FULL".into()),
                            Reply::Simple(rp.capture.eof_tokens[i as usize].clone()),
                        ]));
                        if send(&mut w, &rep.to_bytes()).await.is_err() {
                            return;
                        }
                        tokio::spawn(play(rp.clone(), phase.subscribe(), i, w));
                        flow_reader(r, buf, reader, i, acks).await;
                        return;
                    }
                    Err(e) => e,
                },
                ["DFLY", "SYNC"] => {
                    phase.send_replace(1);
                    Reply::ok()
                }
                ["DFLY", "STARTSTABLE"] => {
                    phase.send_replace(2);
                    Reply::ok()
                }
                _ => rp.recorded(&args).unwrap_or_else(|| Reply::err("replay mode: command not in the capture")),
            };
            if send(&mut w, &reply.to_bytes()).await.is_err() {
                return;
            }
        }
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn flow_check(rp: &Replay, args: &[Bytes]) -> Result<u32, Reply> {
    if args.len() < 5 || args.len() > 7 {
        return Err(Reply::err("syntax error"));
    }
    if args[2] != rp.capture.master_id.as_bytes() {
        return Err(Reply::err("bad master id"));
    }
    if !args[3].starts_with(b"SYNC") {
        return Err(Reply::err("bad sync id"));
    }
    if args[3] != rp.capture.sync_id.as_bytes() {
        return Err(Reply::err("syncid not found"));
    }
    std::str::from_utf8(&args[4])
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|i| *i < rp.capture.flows)
        .ok_or_else(|| Reply::err("value is not an integer or out of range"))
}

/// Reads a replay flow connection, recording `REPLCONF ACK`s.
async fn flow_reader(
    mut r: Rd,
    mut buf: BytesMut,
    mut reader: CommandReader,
    i: u32,
    acks: Arc<Mutex<Vec<(u32, u64)>>>,
) {
    loop {
        while let Ok(Some(args)) = reader.read(&mut buf) {
            let is_ack =
                args.len() == 3 && args[0].eq_ignore_ascii_case(b"REPLCONF") && args[1].eq_ignore_ascii_case(b"ACK");
            if let Some(n) =
                is_ack.then(|| std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok())).flatten()
            {
                acks.lock().unwrap_or_else(|e| e.into_inner()).push((i, n));
            }
        }
        if !matches!(r.read_buf(&mut buf).await, Ok(n) if n > 0) {
            return;
        }
    }
}

async fn play(rp: Arc<Replay>, mut phase: watch::Receiver<u8>, i: u32, mut w: Wr) {
    let data = rp.flows[i as usize].clone();
    let split = rp.capture.full_sync_bytes[i as usize] as usize;
    if phase.wait_for(|p| *p >= 1).await.is_err() || send(&mut w, &data[..split]).await.is_err() {
        return;
    }
    if phase.wait_for(|p| *p >= 2).await.is_err() {
        return;
    }
    let _ = send(&mut w, &data[split..]).await;
    // Keep the socket open like an idle master.
    let _ = phase.wait_for(|p| *p == 0).await;
}
