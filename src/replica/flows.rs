//! Flow connections: a raw socket (plain or TLS) per shard, AUTH, `DFLY FLOW master sync i [lsn]`, and the
//! `*2 +FULL|+PARTIAL +token` reply parsed by hand, keeping any bytes after it for the decoder.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{SessionError, SourceOpts};
use crate::resp::tls::{ReadHalf, WriteHalf};
use crate::resp::{encode_command as encode, Decoder, Frame};

/// An opened flow.
#[derive(Debug)]
pub struct FlowConn {
    /// Flow index.
    pub index: usize,
    /// Read side (the reader task owns it).
    pub read: ReadHalf,
    /// Write side (only `REPLCONF ACK` ever goes here).
    pub write: WriteHalf,
    /// Bytes read after the FLOW reply.
    pub leftover: BytesMut,
    /// `FULL` (true) or `PARTIAL` (false).
    pub full: bool,
    /// The eof token.
    pub token: [u8; 40],
}

async fn read_frame(r: &mut ReadHalf, buf: &mut BytesMut, addr: &str, what: &str) -> Result<Frame, SessionError> {
    let mut dec = Decoder::default();
    loop {
        match dec.decode(buf) {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(SessionError::Protocol(format!("{what}: bad reply: {e}"))),
        }
        let n =
            r.read_buf(buf).await.map_err(|e| SessionError::Io { addr: addr.to_string(), detail: e.to_string() })?;
        if n == 0 {
            return Err(SessionError::Io { addr: addr.to_string(), detail: format!("closed during {what}") });
        }
    }
}

/// Connects flow `index` and asks for it (partially when `lsn` is given).
pub async fn open_flow(
    o: &SourceOpts,
    master_id: &str,
    sync_id: &str,
    index: usize,
    lsn: Option<u64>,
) -> Result<FlowConn, SessionError> {
    let ioe = |e: std::io::Error| SessionError::Io { addr: o.addr.clone(), detail: e.to_string() };
    let s = crate::resp::tls::connect(&o.addr, o.tls.as_ref(), crate::apply::conn::CONNECT_TIMEOUT)
        .await
        .map_err(|e| SessionError::Io { addr: o.addr.clone(), detail: format!("flow {index}: {e}") })?;
    let (mut r, mut w) = s.into_split();
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut out = BytesMut::new();
    if let Some(pw) = &o.password {
        let mut a = vec![Bytes::from_static(b"AUTH")];
        if let Some(u) = &o.username {
            a.push(Bytes::from(u.clone()));
        }
        a.push(Bytes::from(pw.clone()));
        encode(&mut out, &a);
        w.write_all(&out).await.map_err(ioe)?;
        w.flush().await.map_err(ioe)?;
        out.clear();
        if let Frame::Error(e) = read_frame(&mut r, &mut buf, &o.addr, "AUTH").await? {
            return Err(SessionError::Protocol(format!("flow {index} AUTH: {}", String::from_utf8_lossy(&e))));
        }
    }
    let mut a: Vec<Bytes> = ["DFLY", "FLOW", master_id, sync_id].iter().map(|s| Bytes::from(s.to_string())).collect();
    a.push(Bytes::from(index.to_string()));
    if let Some(l) = lsn {
        a.push(Bytes::from(l.to_string()));
    }
    encode(&mut out, &a);
    w.write_all(&out).await.map_err(ioe)?;
    w.flush().await.map_err(ioe)?;
    let reply = read_frame(&mut r, &mut buf, &o.addr, "DFLY FLOW").await?;
    let (full, token) = parse_flow_reply(&reply).map_err(|e| SessionError::Protocol(format!("flow {index}: {e}")))?;
    Ok(FlowConn { index, read: r, write: w, leftover: buf, full, token })
}

/// `["FULL"|"PARTIAL", token]` → (full, token).
pub fn parse_flow_reply(f: &Frame) -> Result<(bool, [u8; 40]), String> {
    let items = match f {
        Frame::Array(a) if a.len() == 2 => a,
        Frame::Error(e) => return Err(format!("DFLY FLOW: {}", String::from_utf8_lossy(e))),
        other => return Err(format!("DFLY FLOW: unexpected reply {other:?}")),
    };
    let word = match &items[0] {
        Frame::Simple(s) | Frame::Bulk(s) => s.clone(),
        _ => return Err("DFLY FLOW: first element not a string".into()),
    };
    let full = match &word[..] {
        b"FULL" => true,
        b"PARTIAL" => false,
        w => return Err(format!("DFLY FLOW: unknown sync type {:?}", String::from_utf8_lossy(w))),
    };
    let tok = match &items[1] {
        Frame::Simple(s) | Frame::Bulk(s) if s.len() == 40 => s,
        _ => return Err("DFLY FLOW: eof token is not 40 bytes".into()),
    };
    let mut t = [0u8; 40];
    t.copy_from_slice(tok);
    Ok((full, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_reply_and_leftover() {
        let mut buf = BytesMut::from(&b"*2\r\n+FULL\r\n+7e27e9845d3c424714e34c122e605dba4933eff0\r\nREDIS0009"[..]);
        let f = Decoder::default().decode(&mut buf).unwrap().unwrap();
        let (full, tok) = parse_flow_reply(&f).unwrap();
        assert!(full);
        assert_eq!(&tok[..], b"7e27e9845d3c424714e34c122e605dba4933eff0");
        assert_eq!(&buf[..], b"REDIS0009");
        let e = Frame::Error(Bytes::from_static(b"ERR bad master id"));
        assert!(parse_flow_reply(&e).unwrap_err().contains("bad master id"));
    }
}
