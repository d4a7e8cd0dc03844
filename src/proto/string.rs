//! RDB strings: length-prefixed bytes, the int8/16/32 forms, and LZF-compressed strings.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{check_limit, corrupt, unexpected, ErrorKind};
use super::packed::{self, Packed};
use super::{lzf, Limits, Read};

/// The header of an RDB string, as found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrHeader {
    /// `len` raw bytes follow.
    Raw { len: u64 },
    /// An integer form; the value is already known.
    Int(i64),
    /// An LZF string: `clen` compressed bytes follow, expanding to `ulen` bytes.
    Lzf { clen: u64, ulen: u64 },
}

/// Reads a string header at the front of `buf` (not consuming). Returns it and its size.
pub fn peek_header(buf: &[u8]) -> Result<Read<(StrHeader, usize)>, ErrorKind> {
    let (p, n) = crate::ready!(packed::peek(buf)?);
    match p {
        Packed::Len(len) => Ok(Read::Done((StrHeader::Raw { len }, n))),
        Packed::Special(0) => match buf.get(1) {
            Some(&b) => Ok(Read::Done((StrHeader::Int(i64::from(b as i8)), 2))),
            None => Ok(Read::Need(2)),
        },
        Packed::Special(1) => match buf.get(1..3) {
            Some(b) => Ok(Read::Done((StrHeader::Int(i64::from(i16::from_le_bytes([b[0], b[1]]))), 3))),
            None => Ok(Read::Need(3)),
        },
        Packed::Special(2) => match buf.get(1..5) {
            Some(b) => Ok(Read::Done((StrHeader::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))), 5))),
            None => Ok(Read::Need(5)),
        },
        Packed::Special(3) => {
            let rest = buf.get(1..).unwrap_or_default();
            let (clen, a) = crate::ready!(shift(packed::peek_len(rest)?, 1));
            let (ulen, b) = crate::ready!(shift(packed::peek_len(rest.get(a..).unwrap_or_default())?, 1 + a));
            Ok(Read::Done((StrHeader::Lzf { clen, ulen }, 1 + a + b)))
        }
        Packed::Special(s) => Err(unexpected("a string encoding (C0..C3)", format_args!("0x{:02x}", 0xc0 | s))),
    }
}

/// Adjusts a `Need` count by `by` bytes already in front.
fn shift<T>(r: Read<T>, by: usize) -> Read<T> {
    match r {
        Read::Need(n) => Read::Need(n + by),
        done => done,
    }
}

/// Reads one whole RDB string from the front of `input`, consuming it. Integer forms come back
/// as their decimal text, LZF strings decompressed. Raw strings are zero-copy.
pub fn read(input: &mut BytesMut, limits: &Limits) -> Result<Read<Bytes>, ErrorKind> {
    let (h, hn) = crate::ready!(peek_header(input)?);
    match h {
        StrHeader::Raw { len } => {
            check_limit("string length", len, limits.max_string)?;
            let total = hn + len as usize;
            if input.len() < total {
                return Ok(Read::Need(total));
            }
            input.advance(hn);
            Ok(Read::Done(input.split_to(len as usize).freeze()))
        }
        StrHeader::Int(v) => {
            input.advance(hn);
            Ok(Read::Done(int_text(v)))
        }
        StrHeader::Lzf { clen, ulen } => {
            check_limit("LZF compressed length", clen, limits.max_string)?;
            check_limit("LZF decompressed length", ulen, limits.max_decompressed.min(limits.max_string))?;
            let total = hn + clen as usize;
            if input.len() < total {
                return Ok(Read::Need(total));
            }
            let data = lzf::decompress(input.get(hn..total).unwrap_or_default(), ulen as usize)?;
            input.advance(total);
            Ok(Read::Done(Bytes::from(data)))
        }
    }
}

/// Reads an RDB string whose value must be an integer (integer form or decimal text).
pub fn read_int(input: &mut BytesMut, limits: &Limits) -> Result<Read<i64>, ErrorKind> {
    let s = crate::ready!(read(input, limits)?);
    parse_i64(&s).map(Read::Done).ok_or_else(|| unexpected("an integer string", String::from_utf8_lossy(&s)))
}

/// Parses canonical-or-not decimal text into an i64 (as `strtoll` would, without junk).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The decimal text of `v` as bytes.
pub fn int_text(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

/// If `s` is the canonical decimal text of an i64 (no leading zeros, no '+', not "-0"),
/// returns the value. This is the test Redis and Dragonfly use before storing an integer form.
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let digits = if s[0] == b'-' { &s[1..] } else { s };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || s[0] == b'-')) {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_i64(s)
}

/// Appends `s` as Dragonfly writes strings: the int8/16/32 form when `s` is canonical decimal
/// text that fits an i32 (and is at most 11 bytes), else raw. No compression.
pub fn write(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = canonical_int(s) {
            if write_int_form(out, v) {
                return;
            }
        }
    }
    write_raw(out, s);
}

/// Appends `v` in the smallest integer form; returns false (writing nothing) if it needs > 32 bits.
pub fn write_int_form(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xc0, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends `s` as a plain length-prefixed string.
pub fn write_raw(out: &mut Vec<u8>, s: &[u8]) {
    packed::write(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends `s` LZF-compressed (`C3` form) when that saves space, else as [`write`] does.
pub fn write_lzf(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() > 20 {
        if let Some(c) = lzf::compress(s) {
            out.push(0xc3);
            packed::write(out, c.len() as u64);
            packed::write(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write(out, s);
}

/// Checks that a decoded element is not over the limit before it is buffered.
pub fn check_len(len: u64, limits: &Limits) -> Result<(), ErrorKind> {
    check_limit("string length", len, limits.max_string)
}

/// Convenience for decoders: error when a whole-buffer parse has bytes left over.
pub fn expect_consumed(what: &'static str, left: usize) -> Result<(), ErrorKind> {
    if left == 0 {
        Ok(())
    } else {
        Err(corrupt(what, format_args!("{left} unexpected bytes at the end")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> Result<Read<Bytes>, ErrorKind> {
        read(&mut BytesMut::from(bytes), &Limits::default())
    }

    #[test]
    fn integer_forms() {
        assert_eq!(read_all(&[0xc0, 0x40]), Ok(Read::Done(Bytes::from("64"))));
        assert_eq!(read_all(&[0xc1, 0x39, 0x30]), Ok(Read::Done(Bytes::from("12345"))));
        assert_eq!(read_all(&[0xc2, 0xa8, 0xb6, 0x55, 0x69]), Ok(Read::Done(Bytes::from("1767225000"))));
        assert_eq!(read_all(&[0xc0, 0xff]), Ok(Read::Done(Bytes::from("-1"))));
        let mut out = Vec::new();
        write(&mut out, b"12345");
        assert_eq!(out, [0xc1, 0x39, 0x30]);
        for s in [&b"007"[..], b"+5", b"-0", b"", b"12345678901", b"abc"] {
            let mut out = Vec::new();
            write(&mut out, s);
            assert_eq!(out[0] as usize, s.len(), "{:?} must stay a raw string", s);
        }
    }

    #[test]
    fn incomplete_needs() {
        assert_eq!(read_all(&[0x05, b'a']), Ok(Read::Need(6)));
        assert_eq!(read_all(&[0xc3, 0x02]), Ok(Read::Need(3)));
        assert_eq!(read_all(&[0xc1, 0x01]), Ok(Read::Need(3)));
        assert!(read_all(&[0xc4]).is_err());
    }

    #[test]
    fn limit_is_checked_before_buffering() {
        let limits = Limits { max_string: 10, ..Limits::default() };
        let r = read(&mut BytesMut::from(&[0x80, 0, 0, 1, 0][..]), &limits);
        assert!(matches!(r, Err(ErrorKind::Limit { .. })));
    }

    proptest! {
        #[test]
        fn round_trip(s in proptest::collection::vec(any::<u8>(), 0..200), lzf in any::<bool>()) {
            let mut out = Vec::new();
            if lzf { write_lzf(&mut out, &s) } else { write(&mut out, &s) }
            let mut buf = BytesMut::from(&out[..]);
            prop_assert_eq!(read(&mut buf, &Limits::default()), Ok(Read::Done(Bytes::from(s))));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn int_text_round_trip(v in any::<i64>()) {
            let t = int_text(v);
            prop_assert_eq!(canonical_int(&t), Some(v));
            let mut out = Vec::new();
            write(&mut out, &t);
            let mut buf = BytesMut::from(&out[..]);
            prop_assert_eq!(read(&mut buf, &Limits::default()), Ok(Read::Done(t)));
        }
    }
}
