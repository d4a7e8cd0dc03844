//! The RESP2 reply value (`Frame`), its accessors, and its encoding.

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::types::RangeFrame;

use super::cmd::put_decimal;
use super::error::ProtocolError;

/// One RESP2 value. Byte payloads are zero-copy views into the connection's read buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// `+OK`
    Simple(Bytes),
    /// `-ERR message` (without the `-`).
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// `$-1` or `*-1`.
    Null,
}

impl Frame {
    /// The payload of a simple string, bulk string or error.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) => Some(b),
            _ => None,
        }
    }

    /// The payload as an owned `Bytes` (cheap clone), for simple/bulk strings and errors.
    pub fn to_bytes(&self) -> Option<Bytes> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// An integer reply, or a simple/bulk string holding a decimal integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Frame::Integer(i) => Some(*i),
            Frame::Simple(b) | Frame::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The elements of an array reply.
    pub fn as_array(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(v) => Some(v),
            _ => None,
        }
    }

    /// Consume into the elements of an array reply.
    pub fn into_array(self) -> Option<Vec<Frame>> {
        match self {
            Frame::Array(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Whether this is a null reply.
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null)
    }

    /// Whether this is the simple string `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Frame::Simple(b) if b.as_ref() == b"OK")
    }

    /// A human-readable rendering (payloads decoded lossily as UTF-8; arrays bracketed).
    pub fn to_string_lossy(&self) -> String {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Frame::Error(b) => format!("-{}", String::from_utf8_lossy(b)),
            Frame::Integer(i) => i.to_string(),
            Frame::Null => "(nil)".to_owned(),
            Frame::Array(v) => {
                let parts: Vec<String> = v.iter().map(Frame::to_string_lossy).collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }

    /// A `MOVED` / `ASK` redirect, if this is such an error reply.
    pub fn redirect(&self) -> Option<super::Redirect> {
        match self {
            Frame::Error(b) => std::str::from_utf8(b).ok().and_then(super::Redirect::parse),
            _ => None,
        }
    }

    /// Append the RESP2 encoding of this frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(b) => put_line(out, b'+', b),
            Frame::Error(b) => put_line(out, b'-', b),
            Frame::Integer(i) => {
                out.put_u8(b':');
                put_decimal(out, *i);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(b) => {
                out.put_u8(b'$');
                put_decimal(out, b.len() as i64);
                out.put_slice(b"\r\n");
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::Array(v) => {
                out.put_u8(b'*');
                put_decimal(out, v.len() as i64);
                out.put_slice(b"\r\n");
                for f in v {
                    f.encode(out);
                }
            }
        }
    }

    /// Build a frame from a `redis_protocol` range frame over `buf` (zero-copy slices of `buf`).
    pub(crate) fn from_range(buf: &Bytes, range: &RangeFrame) -> Result<Frame, ProtocolError> {
        let slice = |&(start, end): &(usize, usize)| -> Result<Bytes, ProtocolError> {
            if start <= end && end <= buf.len() {
                Ok(buf.slice(start..end))
            } else {
                Err(ProtocolError::new("frame range outside buffer"))
            }
        };
        Ok(match range {
            RangeFrame::SimpleString(r) => Frame::Simple(slice(r)?),
            RangeFrame::Error(r) => Frame::Error(slice(r)?),
            RangeFrame::Integer(i) => Frame::Integer(*i),
            RangeFrame::BulkString(r) => Frame::Bulk(slice(r)?),
            RangeFrame::Null => Frame::Null,
            RangeFrame::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(Frame::from_range(buf, item)?);
                }
                Frame::Array(out)
            }
        })
    }
}

/// `+payload\r\n` / `-payload\r\n`; CR and LF inside the payload are replaced by spaces so the
/// line stays well-formed.
fn put_line(out: &mut BytesMut, kind: u8, payload: &[u8]) {
    out.put_u8(kind);
    if payload.iter().any(|&c| c == b'\r' || c == b'\n') {
        out.extend(payload.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
    } else {
        out.put_slice(payload);
    }
    out.put_slice(b"\r\n");
}

impl From<&str> for Frame {
    fn from(s: &str) -> Self {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<i64> for Frame {
    fn from(i: i64) -> Self {
        Frame::Integer(i)
    }
}

impl From<Bytes> for Frame {
    fn from(b: Bytes) -> Self {
        Frame::Bulk(b)
    }
}

impl From<Vec<Frame>> for Frame {
    fn from(v: Vec<Frame>) -> Self {
        Frame::Array(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let f = Frame::Bulk(Bytes::from_static(b"12"));
        assert_eq!(f.as_bytes(), Some(&b"12"[..]));
        assert_eq!(f.as_int(), Some(12));
        assert!(!f.is_error());
        assert!(Frame::Error(Bytes::from_static(b"ERR x")).is_error());
        assert_eq!(Frame::Integer(-3).as_int(), Some(-3));
        assert_eq!(Frame::Null.as_bytes(), None);
        let a = Frame::Array(vec![Frame::Integer(1), Frame::Null]);
        assert_eq!(a.as_array().map(<[Frame]>::len), Some(2));
        assert_eq!(a.to_string_lossy(), "[1, (nil)]");
        assert!(Frame::Simple(Bytes::from_static(b"OK")).is_ok());
    }

    #[test]
    fn encode_all_kinds() {
        let f = Frame::Array(vec![
            Frame::Simple(Bytes::from_static(b"OK")),
            Frame::Error(Bytes::from_static(b"ERR bad\r\nline")),
            Frame::Integer(-42),
            Frame::Bulk(Bytes::from_static(b"a\r\nb")),
            Frame::Null,
            Frame::Array(vec![]),
        ]);
        let mut out = BytesMut::new();
        f.encode(&mut out);
        assert_eq!(&out[..], &b"*6\r\n+OK\r\n-ERR bad  line\r\n:-42\r\n$4\r\na\r\nb\r\n$-1\r\n*0\r\n"[..]);
    }
}
