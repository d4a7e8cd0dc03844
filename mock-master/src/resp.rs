//! RESP2 framing for the mock: server-side command reader (arrays or inline), replies, and a
//! reply parser (used by replay transcripts and by tests acting as clients).

use bytes::{Buf, Bytes, BytesMut};

/// A protocol error on a client connection (the connection is closed after replying it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

const MAX_ARGS: usize = 1 << 20;
const MAX_BULK: usize = 512 << 20;
const MAX_INLINE: usize = 64 << 10;

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| p + from)
}

fn parse_num(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Reads one command from the front of `buf`: `Ok(None)` if incomplete (nothing consumed).
/// Empty inline lines are skipped and yield `Ok(Some(vec![]))`.
pub fn read_command(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first != b'*' {
        let Some(end) = find_crlf(buf, 0).or_else(|| buf.iter().position(|&b| b == b'\n').map(|p| p.max(1) - 1)) else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError("too big inline request".into()));
            }
            return Ok(None);
        };
        let line_end = if buf.get(end) == Some(&b'\r') { end + 2 } else { end + 1 };
        let line = buf.split_to(line_end.min(buf.len())).freeze();
        let text = line.slice(..end.min(line.len()));
        let args = text
            .split(|b| *b == b' ' || *b == b'\t' || *b == b'\n' || *b == b'\r')
            .filter(|p| !p.is_empty())
            .map(|p| text.slice_ref(p))
            .collect();
        return Ok(Some(args));
    }
    let Some(hdr_end) = find_crlf(buf, 0) else {
        return Ok(None);
    };
    let n = parse_num(&buf[1..hdr_end]).ok_or_else(|| ProtocolError("invalid multibulk length".into()))?;
    if n <= 0 {
        buf.advance(hdr_end + 2);
        return Ok(Some(Vec::new()));
    }
    let n = n as usize;
    if n > MAX_ARGS {
        return Err(ProtocolError("invalid multibulk length".into()));
    }
    let mut pos = hdr_end + 2;
    let mut spans = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!("expected '$', got '{}'", buf[pos] as char)));
        }
        let Some(le) = find_crlf(buf, pos) else { return Ok(None) };
        let len = parse_num(&buf[pos + 1..le]).ok_or_else(|| ProtocolError("invalid bulk length".into()))?;
        if len < 0 || len as usize > MAX_BULK {
            return Err(ProtocolError("invalid bulk length".into()));
        }
        let start = le + 2;
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        spans.push((start, end));
        pos = end + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Some(spans.into_iter().map(|(s, e)| frame.slice(s..e)).collect()))
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-text` (the whole text, e.g. `ERR syntax error`).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$len bytes` or `$-1`.
    Bulk(Option<Bytes>),
    /// `*n …` or `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// `+OK`
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// `-ERR <msg>`
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {msg}"))
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(Some(b.into()))
    }

    /// `$-1`
    pub fn nil() -> Reply {
        Reply::Bulk(None)
    }

    /// An array of bulk strings.
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(Some(items.into_iter().map(|b| Reply::Bulk(Some(b))).collect()))
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
            }
            Reply::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(s.as_bytes());
            }
            Reply::Int(n) => out.extend_from_slice(format!(":{n}").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for i in items {
                    i.encode(out);
                }
                return;
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Parses one reply at the front of `buf`; `Ok(None)` if incomplete (nothing consumed).
    pub fn parse(buf: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        match parse_at(buf, 0)? {
            Some((r, used)) => {
                buf.advance(used);
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// The text of a simple string or bulk, if it is one.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

fn parse_at(buf: &[u8], pos: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(&t) = buf.get(pos) else { return Ok(None) };
    let Some(le) = find_crlf(buf, pos) else { return Ok(None) };
    let line = &buf[pos + 1..le];
    let text = || String::from_utf8_lossy(line).into_owned();
    let bad = || ProtocolError(format!("bad reply line {:?}", String::from_utf8_lossy(line)));
    let next = le + 2;
    Ok(Some(match t {
        b'+' => (Reply::Simple(text()), next - pos),
        b'-' => (Reply::Error(text()), next - pos),
        b':' => (Reply::Int(parse_num(line).ok_or_else(bad)?), next - pos),
        b'$' => {
            let n = parse_num(line).ok_or_else(bad)?;
            if n < 0 {
                (Reply::Bulk(None), next - pos)
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                (Reply::Bulk(Some(Bytes::copy_from_slice(&buf[next..end]))), end + 2 - pos)
            }
        }
        b'*' => {
            let n = parse_num(line).ok_or_else(bad)?;
            if n < 0 {
                (Reply::Array(None), next - pos)
            } else {
                let mut items = Vec::with_capacity((n as usize).min(1024));
                let mut p = next;
                for _ in 0..n {
                    match parse_at(buf, p)? {
                        Some((r, used)) => {
                            items.push(r);
                            p += used;
                        }
                        None => return Ok(None),
                    }
                }
                (Reply::Array(Some(items)), p - pos)
            }
        }
        _ => return Err(bad()),
    }))
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arrays_inline_and_partial() {
        let wire = encode_command(&["SET", "a", "1"]);
        for cut in 0..wire.len() {
            let mut b = BytesMut::from(&wire[..cut]);
            assert_eq!(read_command(&mut b).unwrap(), None);
            assert_eq!(b.len(), cut);
        }
        let mut b = BytesMut::from(&wire[..]);
        let args = read_command(&mut b).unwrap().unwrap();
        assert_eq!(args, vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("1")]);
        let mut b = BytesMut::from(&b"PING  x\r\nDFLY"[..]);
        assert_eq!(read_command(&mut b).unwrap().unwrap(), vec![Bytes::from("PING"), Bytes::from("x")]);
        assert_eq!(&b[..], b"DFLY");
    }

    #[test]
    fn replies_round_trip() {
        let r = Reply::Array(Some(vec![
            Reply::Simple("x".into()),
            Reply::Int(5),
            Reply::nil(),
            Reply::bulk("ab\r\n"),
            Reply::Error("ERR no".into()),
        ]));
        let w = r.to_bytes();
        for cut in 0..w.len() {
            assert_eq!(Reply::parse(&mut BytesMut::from(&w[..cut])).unwrap(), None);
        }
        assert_eq!(Reply::parse(&mut BytesMut::from(&w[..])).unwrap(), Some(r));
    }
}
