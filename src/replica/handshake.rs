//! The control connection: INFO SERVER, PING, REPLCONF listening-port / capa eof psync2 /
//! capa dragonfly (3, 4 or 5-element reply), CLIENT-ID, CLIENT-VERSION 4.

use bytes::Bytes;

use super::SessionError;
use crate::apply::caps::{info_field, Version};
use crate::apply::conn::{Pipe, PipeError, PipeOptions};
use crate::apply::policy::ConflictPolicy;
use crate::resp::Frame;

/// How to reach and identify to the master.
#[derive(Debug, Clone)]
pub struct SourceOpts {
    /// `host:port`.
    pub addr: String,
    /// ACL user.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<String>,
    /// Port announced with REPLCONF listening-port.
    pub listening_port: u16,
    /// Our id (REPLCONF CLIENT-ID).
    pub client_id: String,
    /// TLS (`None`: plain TCP); the control connection and every flow use it.
    pub tls: Option<crate::resp::TlsClient>,
}

/// An established control connection.
#[derive(Debug)]
pub struct Control {
    /// The connection (keep it open for the whole session).
    pub pipe: Pipe,
    /// 40-hex master id.
    pub master_id: String,
    /// `SYNC<n>`.
    pub sync_id: String,
    /// Number of flows (shards).
    pub num_flows: usize,
    /// Protocol version integer (absent before v1.4).
    pub proto_version: Option<i64>,
    /// Release from INFO SERVER (`dragonfly_version`).
    pub release: Option<Version>,
    /// The raw `dragonfly_version` text.
    pub release_text: String,
}

fn io(addr: &str, e: PipeError) -> SessionError {
    match e {
        PipeError::Rejected { command, message } => SessionError::Protocol(format!("{command}: {message}")),
        // (the pipe's own message names a "target"; this one is the source)
        PipeError::Io { detail, .. } => SessionError::Io { addr: addr.to_string(), detail },
        e => SessionError::Io { addr: addr.to_string(), detail: e.to_string() },
    }
}

fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Simple(b) | Frame::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn expect_ok(cmd: &str, f: &Frame) -> Result<(), SessionError> {
    match f {
        Frame::Error(e) => Err(SessionError::Protocol(format!("{cmd}: {}", String::from_utf8_lossy(e)))),
        _ => Ok(()),
    }
}

/// Parses the `REPLCONF capa dragonfly` reply into (master id, sync id, flows, version).
pub fn parse_capa(f: &Frame) -> Result<(String, String, usize, Option<i64>), SessionError> {
    let bad = |why: &str| SessionError::Protocol(format!("REPLCONF capa dragonfly: {why} (reply {f:?})"));
    let items = match f {
        Frame::Array(a) => a,
        Frame::Simple(_) => return Err(bad("plain +OK: the source is not a Dragonfly master")),
        _ => return Err(bad("unexpected reply")),
    };
    if !(3..=5).contains(&items.len()) {
        return Err(bad("expected 3 to 5 elements"));
    }
    let master = text(&items[0]).ok_or_else(|| bad("master id"))?;
    if master.len() != 40 || !master.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("master id is not 40 hex characters"));
    }
    let sync = text(&items[1]).ok_or_else(|| bad("sync id"))?;
    let n = match &items[2] {
        Frame::Integer(n) if (1..=1024).contains(n) => *n as usize,
        _ => return Err(bad("flow count")),
    };
    let ver = match items.get(3) {
        Some(Frame::Integer(v)) => Some(*v),
        None => None,
        _ => return Err(bad("version")),
    };
    Ok((master, sync, n, ver))
}

/// Runs the handshake in the order the master requires.
pub async fn handshake(o: &SourceOpts) -> Result<Control, SessionError> {
    let popts = PipeOptions {
        addr: o.addr.clone(),
        username: o.username.clone(),
        password: o.password.clone(),
        max_batches_in_flight: 4,
        conflict: ConflictPolicy::Overwrite,
        tls: o.tls.clone(),
    };
    let mut p = Pipe::connect(&popts).await.map_err(|e| io(&o.addr, e))?;
    let a = |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect() };
    let info = p.request(None, a(&["INFO", "SERVER"])).await.map_err(|e| io(&o.addr, e))?;
    let info_text = text(&info).unwrap_or_default();
    let release_text = info_field(&info_text, "dragonfly_version").unwrap_or("").to_string();
    let release = Version::parse(&release_text);
    let r = p.request(None, a(&["PING"])).await.map_err(|e| io(&o.addr, e))?;
    expect_ok("PING", &r)?;
    let port = o.listening_port.to_string();
    let r = p.request(None, a(&["REPLCONF", "listening-port", &port])).await.map_err(|e| io(&o.addr, e))?;
    expect_ok("REPLCONF listening-port", &r)?;
    let r = p.request(None, a(&["REPLCONF", "capa", "eof", "capa", "psync2"])).await.map_err(|e| io(&o.addr, e))?;
    expect_ok("REPLCONF capa eof", &r)?;
    let r = p.request(None, a(&["REPLCONF", "capa", "dragonfly"])).await.map_err(|e| io(&o.addr, e))?;
    expect_ok("REPLCONF capa dragonfly", &r)?;
    let (master_id, sync_id, num_flows, proto_version) = parse_capa(&r)?;
    let r = p.request(None, a(&["REPLCONF", "CLIENT-ID", &o.client_id])).await.map_err(|e| io(&o.addr, e))?;
    expect_ok("REPLCONF CLIENT-ID", &r)?;
    if proto_version.is_some() {
        let r = p.request(None, a(&["REPLCONF", "CLIENT-VERSION", "4"])).await.map_err(|e| io(&o.addr, e))?;
        expect_ok("REPLCONF CLIENT-VERSION", &r)?;
    }
    Ok(Control { pipe: p, master_id, sync_id, num_flows, proto_version, release, release_text })
}

impl Control {
    /// Sends a `DFLY <sub> <sync id>` and checks for `+OK`.
    pub async fn dfly(&mut self, sub: &str) -> Result<(), SessionError> {
        let args = vec![Bytes::from_static(b"DFLY"), Bytes::from(sub.to_string()), Bytes::from(self.sync_id.clone())];
        let addr = self.pipe.addr().to_string();
        let r = self.pipe.request(None, args).await.map_err(|e| io(&addr, e))?;
        expect_ok(&format!("DFLY {sub}"), &r)
    }

    /// Whether partial sync goes straight to STARTSTABLE (v1.35+) or through DFLY SYNC.
    pub fn direct_partial(&self) -> bool {
        self.release.is_none_or(|v| v >= Version::new(1, 35, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Frame {
        Frame::Simple(Bytes::copy_from_slice(x.as_bytes()))
    }

    #[test]
    fn capa_replies_of_every_era() {
        let id = "937f3049a04e08e85a86a14c01c73bac94b9e427";
        let r5 = Frame::Array(vec![s(id), s("SYNC1"), Frame::Integer(2), Frame::Integer(5), s(id)]);
        assert_eq!(parse_capa(&r5).unwrap(), (id.to_string(), "SYNC1".to_string(), 2, Some(5)));
        let r3 = Frame::Array(vec![s(id), s("SYNC7"), Frame::Integer(4)]);
        assert_eq!(parse_capa(&r3).unwrap().3, None);
        assert!(parse_capa(&s("OK")).is_err());
        let bad = Frame::Array(vec![s("abc"), s("SYNC1"), Frame::Integer(2)]);
        assert!(parse_capa(&bad).is_err());
        let zero = Frame::Array(vec![s(id), s("SYNC1"), Frame::Integer(0)]);
        assert!(parse_capa(&zero).is_err());
    }
}
