//! Incremental RESP2 reply decoding: a resumable, allocation-free frame-boundary scanner with limits,
//! then `redis_protocol::resp2::decode::decode_range` over exactly one complete frame.
//!
//! Scanning first means a large reply arriving in many reads is walked once (not re-parsed from
//! the start on every read), and length/count/depth limits are enforced before anything is
//! buffered or allocated.

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_range;

use super::error::ProtocolError;
use super::frame::Frame;

/// Bounds on what a peer may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest bulk string (Redis' own `proto-max-bulk-len` default is 512 MiB).
    pub max_bulk: usize,
    /// Largest element count of one array.
    pub max_elements: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
    /// Longest header / simple-string / error / inline line.
    pub max_line: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_bulk: 512 << 20, max_elements: 1 << 24, max_depth: 64, max_line: 64 << 10 }
    }
}

/// Resumable decoder state. Feed it the same buffer (only ever appended to, except for the frames
/// it consumes itself) on every call.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    limits: DecodeLimits,
    /// Bytes of the current (incomplete) frame already walked.
    pos: usize,
    /// Elements still expected by each open array, innermost last.
    stack: Vec<u64>,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: DecodeLimits) -> Self {
        Decoder { limits, pos: 0, stack: Vec::new() }
    }

    /// Forget any partially scanned frame (the next call re-scans from the front of the buffer).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
    }

    /// The limits in force.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Decode and consume one complete frame from the front of `buf`, or `Ok(None)` if more bytes
    /// are needed (nothing consumed then).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if self.pos == 0 && buf.starts_with(b"+OK\r\n") {
            buf.advance(5);
            return Ok(Some(Frame::Simple(Bytes::from_static(b"OK"))));
        }
        let Some(amt) = self.frame_len(buf)? else {
            return Ok(None);
        };
        let frame = buf.split_to(amt).freeze();
        match scalar(&frame)? {
            Some(f) => Ok(Some(f)),
            None => parse_exact(&frame).map(Some),
        }
    }

    /// Length of the complete frame at the front of `buf`, or `Ok(None)` if incomplete. Walks only
    /// the bytes not walked by earlier calls.
    pub fn frame_len(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        loop {
            let Some(rest) = buf.get(self.pos..) else {
                return Err(ProtocolError::new("decoder buffer shrank under it"));
            };
            let Some(&kind) = rest.first() else { return Ok(None) };
            let Some(line_len) = find_crlf(rest, 1, self.limits.max_line)? else {
                return Ok(None);
            };
            let line = rest.get(1..line_len).unwrap_or_default();
            let header = line_len + 2;
            let elem_len = match kind {
                b'+' | b'-' => header,
                b':' => {
                    parse_int(line)?;
                    header
                }
                b'$' => {
                    let n = parse_int(line)?;
                    if n == -1 {
                        header
                    } else {
                        let n = usize::try_from(n).map_err(|_| ProtocolError::new("negative bulk length"))?;
                        if n > self.limits.max_bulk {
                            return Err(ProtocolError::new(format!("bulk length {n} over limit")));
                        }
                        let total = header + n + 2;
                        if rest.len() < total {
                            return Ok(None);
                        }
                        if rest.get(total - 2..total) != Some(b"\r\n") {
                            return Err(ProtocolError::new("bulk string not terminated by CRLF"));
                        }
                        total
                    }
                }
                b'*' => {
                    let n = parse_int(line)?;
                    if n == -1 || n == 0 {
                        header
                    } else {
                        let n = usize::try_from(n).map_err(|_| ProtocolError::new("negative array length"))?;
                        if n > self.limits.max_elements {
                            return Err(ProtocolError::new(format!("array of {n} elements over limit")));
                        }
                        if self.stack.len() >= self.limits.max_depth {
                            return Err(ProtocolError::new("arrays nested too deeply"));
                        }
                        self.stack.push(n as u64);
                        self.pos += header;
                        continue;
                    }
                }
                other => return Err(ProtocolError::new(format!("invalid RESP type byte 0x{other:02x}"))),
            };
            self.pos += elem_len;
            loop {
                match self.stack.last_mut() {
                    None => {
                        let amt = self.pos;
                        self.pos = 0;
                        return Ok(Some(amt));
                    }
                    Some(top) => {
                        *top -= 1;
                        if *top == 0 {
                            self.stack.pop();
                        } else {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Fast path for a complete, scanner-validated non-array frame; `None` for arrays.
fn scalar(frame: &Bytes) -> Result<Option<Frame>, ProtocolError> {
    let line_end = frame.len().saturating_sub(2);
    let f = match frame.first() {
        Some(b'+') => Frame::Simple(frame.slice(1..line_end)),
        Some(b'-') => Frame::Error(frame.slice(1..line_end)),
        Some(b':') => Frame::Integer(parse_int(frame.get(1..line_end).unwrap_or_default())?),
        Some(b'$') => {
            let Some(header_end) = find_crlf(frame, 1, usize::MAX)? else {
                return Err(ProtocolError::new("truncated bulk string"));
            };
            if frame.get(1..header_end) == Some(b"-1") {
                Frame::Null
            } else {
                Frame::Bulk(frame.slice((header_end + 2).min(line_end)..line_end))
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(f))
}

/// Parse one frame that is known to span exactly `frame`.
pub(crate) fn parse_exact(frame: &Bytes) -> Result<Frame, ProtocolError> {
    match decode_range(frame) {
        Ok(Some((range, used))) if used == frame.len() => Frame::from_range(frame, &range),
        Ok(_) => Err(ProtocolError::new("frame boundary disagreement")),
        Err(e) => Err(ProtocolError::new(format!("{e:?}"))),
    }
}

/// Index of the `\r` of the first CRLF at or after `from`, bounded by `max_line`.
pub(crate) fn find_crlf(buf: &[u8], from: usize, max_line: usize) -> Result<Option<usize>, ProtocolError> {
    let window = buf.get(from..).unwrap_or_default();
    let limit = window.len().min(max_line.saturating_add(2));
    match window[..limit].iter().position(|&c| c == b'\n') {
        Some(i) => {
            if i == 0 || window[i - 1] != b'\r' {
                return Err(ProtocolError::new("line not terminated by CRLF"));
            }
            Ok(Some(from + i - 1))
        }
        None if window.len() > max_line.saturating_add(1) => Err(ProtocolError::new("line over limit")),
        None => Ok(None),
    }
}

pub(crate) fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError::new(format!("bad integer {:?}", String::from_utf8_lossy(line))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(input: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn decodes_every_kind() {
        let f =
            all(b"+OK\r\n-ERR x\r\n:-5\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n").unwrap();
        assert_eq!(
            f,
            vec![
                Frame::Simple(Bytes::from_static(b"OK")),
                Frame::Error(Bytes::from_static(b"ERR x")),
                Frame::Integer(-5),
                Frame::Bulk(Bytes::from_static(b"a\r\n")),
                Frame::Null,
                Frame::Null,
                Frame::Array(vec![]),
                Frame::Array(vec![Frame::Array(vec![Frame::Integer(1)]), Frame::Bulk(Bytes::new())]),
            ]
        );
    }

    #[test]
    fn rejects_garbage_and_limits() {
        assert!(all(b"?x\r\n").is_err());
        assert!(all(b"$abc\r\n").is_err());
        assert!(all(b"$-2\r\n").is_err());
        assert!(all(b"$1\r\nab\r\n").is_err());
        assert!(all(b":1\n").is_err());
        let mut d = Decoder::new(DecodeLimits { max_bulk: 4, max_elements: 2, max_depth: 2, max_line: 8 });
        assert!(d.frame_len(b"$5\r\n").is_err());
        let mut d = Decoder::new(DecodeLimits { max_bulk: 4, max_elements: 2, max_depth: 2, max_line: 8 });
        assert!(d.frame_len(b"*3\r\n").is_err());
        let mut d = Decoder::new(DecodeLimits { max_bulk: 4, max_elements: 2, max_depth: 2, max_line: 8 });
        assert!(d.frame_len(b"*1\r\n*1\r\n*1\r\n").is_err());
        let mut d = Decoder::new(DecodeLimits { max_bulk: 4, max_elements: 2, max_depth: 2, max_line: 8 });
        assert!(d.frame_len(b"+0123456789abcdef").is_err());
    }

    #[test]
    fn resumes_and_resets() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(d.pos, 8);
        d.reset();
        let _ = buf.split_to(4);
        buf.extend_from_slice(b"$1\r\nx\r\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::Integer(1)));
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::Bulk(Bytes::from_static(b"x"))));
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,12}".prop_map(|s| Frame::Simple(Bytes::from(s))),
            "[a-zA-Z0-9 ]{0,12}".prop_map(|s| Frame::Error(Bytes::from(s))),
            any::<i64>().prop_map(Frame::Integer),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Frame::Bulk(Bytes::from(v))),
            Just(Frame::Null),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| proptest::collection::vec(inner, 0..8).prop_map(Frame::Array))
    }

    proptest! {
        #[test]
        fn round_trip_in_pieces(frames in proptest::collection::vec(frame_strategy(), 1..6), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut wire = BytesMut::new();
            for f in &frames {
                f.encode(&mut wire);
            }
            let wire = wire.freeze();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut d = Decoder::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut at = 0;
            for c in cuts {
                buf.extend_from_slice(&wire[at..c]);
                at = c;
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = all(&input);
        }
    }
}
