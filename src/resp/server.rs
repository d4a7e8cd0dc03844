//! Server side of RESP2 (for the mock master and test servers): decode client commands — arrays
//! of bulk strings and inline commands — and encode replies.

use bytes::{BufMut, Bytes, BytesMut};

use super::cmd::put_decimal;
use super::decode::{find_crlf, parse_int, DecodeLimits, Decoder};
use super::error::ProtocolError;
use super::frame::Frame;

/// Stateful command reader: resumes scanning where it stopped, so a large command arriving in many
/// reads is walked once.
#[derive(Clone, Debug, Default)]
pub struct CommandReader {
    decoder: Decoder,
}

impl CommandReader {
    /// A reader with the given limits (`max_line` bounds inline commands).
    pub fn new(limits: DecodeLimits) -> Self {
        CommandReader { decoder: Decoder::new(limits) }
    }

    /// Decode and consume the next command from the front of `buf`; `Ok(None)` when incomplete.
    /// Empty commands (blank inline lines, `*0`, `*-1`) are skipped, as Redis does.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let Some(&first) = buf.first() else { return Ok(None) };
            if first != b'*' {
                let Some(args) = read_inline(buf, self.decoder.limits().max_line)? else {
                    return Ok(None);
                };
                if args.is_empty() {
                    continue;
                }
                return Ok(Some(args));
            }
            let Some(amt) = self.decoder.frame_len(buf)? else {
                return Ok(None);
            };
            let frame = buf.split_to(amt).freeze();
            let args = split_command(&frame)?;
            if args.is_empty() {
                continue;
            }
            return Ok(Some(args));
        }
    }
}

/// Arguments of one complete, scanner-validated array frame; every element must be a bulk string.
fn split_command(frame: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let line = |at: usize| -> Result<(i64, usize), ProtocolError> {
        let end = find_crlf(frame, at + 1, usize::MAX)?.ok_or_else(|| ProtocolError::new("truncated frame"))?;
        Ok((parse_int(frame.get(at + 1..end).unwrap_or_default())?, end + 2))
    };
    let (n, mut at) = line(0)?;
    if n <= 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::with_capacity((n as usize).min(1024));
    for _ in 0..n {
        if frame.get(at) != Some(&b'$') {
            return Err(ProtocolError::new("command arguments must be bulk strings"));
        }
        let (len, start) = line(at)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::new("command arguments must not be null"))?;
        let end = start + len;
        if end + 2 > frame.len() {
            return Err(ProtocolError::new("truncated frame"));
        }
        args.push(frame.slice(start..end));
        at = end + 2;
    }
    Ok(args)
}

/// Decode and consume one command from the front of `buf` (stateless: an incomplete command is
/// re-scanned from its start on the next call; use [`CommandReader`] for large commands).
pub fn read_command(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    CommandReader::default().read(buf)
}

/// One inline command line (`PING\r\n`, `SET k v\n`): whitespace-separated arguments, with
/// double-quoted (`\n`, `\r`, `\t`, `\"`, `\\`, `\xHH` escapes) and single-quoted arguments as
/// `redis-cli` and Redis accept them.
fn read_inline(buf: &mut BytesMut, max_line: usize) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let limit = buf.len().min(max_line.saturating_add(1));
    let Some(nl) = buf[..limit].iter().position(|&c| c == b'\n') else {
        if buf.len() > max_line {
            return Err(ProtocolError::new("inline command over limit"));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_args(line).map(Some)
}

fn split_args(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let Some(&c) = line.get(i) else {
                if in_dq || in_sq {
                    return Err(ProtocolError::new("unbalanced quotes in inline command"));
                }
                break;
            };
            if in_dq {
                if c == b'\\' && i + 1 < n {
                    let esc = line[i + 1];
                    let hex = |c: u8| (c as char).to_digit(16);
                    match esc {
                        b'x' if i + 3 < n && hex(line[i + 2]).is_some() && hex(line[i + 3]).is_some() => {
                            let hi = hex(line[i + 2]).unwrap_or(0);
                            let lo = hex(line[i + 3]).unwrap_or(0);
                            cur.push((hi * 16 + lo) as u8);
                            i += 4;
                            continue;
                        }
                        b'n' => cur.push(b'\n'),
                        b'r' => cur.push(b'\r'),
                        b't' => cur.push(b'\t'),
                        b'b' => cur.push(8),
                        b'a' => cur.push(7),
                        other => cur.push(other),
                    }
                    i += 2;
                    continue;
                } else if c == b'"' {
                    if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                        return Err(ProtocolError::new("closing quote must be followed by a space"));
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
            } else if in_sq {
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if c == b'\'' {
                    if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                        return Err(ProtocolError::new("closing quote must be followed by a space"));
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
            } else if c.is_ascii_whitespace() {
                break;
            } else if c == b'"' && cur.is_empty() {
                in_dq = true;
            } else if c == b'\'' && cur.is_empty() {
                in_sq = true;
            } else {
                cur.push(c);
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

/// Append the encoding of `reply`.
pub fn write_reply(out: &mut BytesMut, reply: &Frame) {
    reply.encode(out)
}

/// `+msg\r\n`
pub fn write_simple(out: &mut BytesMut, msg: &str) {
    Frame::Simple(Bytes::copy_from_slice(msg.as_bytes())).encode(out)
}

/// `-msg\r\n` (e.g. `ERR unknown command`).
pub fn write_error(out: &mut BytesMut, msg: &str) {
    Frame::Error(Bytes::copy_from_slice(msg.as_bytes())).encode(out)
}

/// `:n\r\n`
pub fn write_int(out: &mut BytesMut, n: i64) {
    out.put_u8(b':');
    put_decimal(out, n);
    out.put_slice(b"\r\n");
}

/// `$len\r\n<bytes>\r\n`
pub fn write_bulk(out: &mut BytesMut, b: &[u8]) {
    super::cmd::put_bulk(out, b)
}

/// `$-1\r\n`
pub fn write_null(out: &mut BytesMut) {
    out.put_slice(b"$-1\r\n")
}

/// `*n\r\n` — to be followed by `n` replies.
pub fn write_array_header(out: &mut BytesMut, n: usize) {
    out.put_u8(b'*');
    put_decimal(out, n as i64);
    out.put_slice(b"\r\n");
}

/// Length of the first line (`\r\n` excluded) if `buf` holds a whole one; used by callers that
/// parse line-oriented handshakes.
pub fn line_len(buf: &[u8], max_line: usize) -> Result<Option<usize>, ProtocolError> {
    find_crlf(buf, 0, max_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(v: &[&[u8]]) -> Vec<Bytes> {
        v.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn inline_and_array_commands() {
        let mut buf = BytesMut::from(
            &b"PING\r\n\r\n  SET k \"a b\\x41\\n\" 'it\\'s'\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*0\r\nGET"[..],
        );
        assert_eq!(read_command(&mut buf).unwrap(), Some(args(&[b"PING"])));
        assert_eq!(read_command(&mut buf).unwrap(), Some(args(&[b"SET", b"k", b"a bA\n", b"it's"])));
        assert_eq!(read_command(&mut buf).unwrap(), Some(args(&[b"ECHO", b"hi"])));
        assert_eq!(read_command(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], b"GET");
        buf.extend_from_slice(b" x\r\n");
        assert_eq!(read_command(&mut buf).unwrap(), Some(args(&[b"GET", b"x"])));
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_commands() {
        assert!(read_command(&mut BytesMut::from(&b"*1\r\n:1\r\n"[..])).is_err());
        assert!(read_command(&mut BytesMut::from(&b"SET \"k\n"[..])).is_err());
        assert!(read_command(&mut BytesMut::from(&b"SET \"k\"x\n"[..])).is_err());
        let mut r = CommandReader::new(DecodeLimits { max_line: 8, ..DecodeLimits::default() });
        assert!(r.read(&mut BytesMut::from(&b"PINGPINGPING"[..])).is_err());
    }

    #[test]
    fn replies() {
        let mut out = BytesMut::new();
        write_simple(&mut out, "OK");
        write_error(&mut out, "ERR no");
        write_int(&mut out, 7);
        write_bulk(&mut out, b"x");
        write_null(&mut out);
        write_array_header(&mut out, 1);
        write_reply(&mut out, &Frame::Integer(1));
        assert_eq!(&out[..], b"+OK\r\n-ERR no\r\n:7\r\n$1\r\nx\r\n$-1\r\n*1\r\n:1\r\n");
        assert_eq!(line_len(b"+OK\r\n", 10).unwrap(), Some(3));
    }

    proptest! {
        #[test]
        fn array_commands_round_trip_in_pieces(
            cmds in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5), 1..5),
            split in any::<usize>(),
        ) {
            let mut wire = BytesMut::new();
            for c in &cmds {
                crate::resp::cmd::encode_command(&mut wire, c);
            }
            let split = split % (wire.len() + 1);
            let mut r = CommandReader::default();
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(c) = r.read(&mut buf).unwrap() {
                got.push(c);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Some(c) = r.read(&mut buf).unwrap() {
                got.push(c);
            }
            let want: Vec<Vec<Bytes>> = cmds.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a)).collect()).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::from(&input[..]);
            let mut r = CommandReader::default();
            for _ in 0..8 {
                if !matches!(r.read(&mut buf), Ok(Some(_))) {
                    break;
                }
            }
        }
    }
}
