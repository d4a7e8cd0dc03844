//! Ziplist blobs (spec 2.5, written by older masters): validated zero-copy parsing into
//! elements, and the writer Redis uses (prevlen, zltail, integer encodings).

use bytes::Bytes;

use super::error::{corrupt, EncodeError, ErrorKind};
use super::listpack::Elem;
use super::string::canonical_int;

/// Header size: zlbytes, zltail (u32 LE each) and zllen (u16 LE).
pub const HEADER_LEN: usize = 10;
/// The terminator byte.
pub const END: u8 = 0xff;

/// A validating forward iterator over a ziplist blob (checks zlbytes, zltail, zllen, every
/// prevlen, and the terminator).
#[derive(Debug, Clone)]
pub struct Cursor {
    data: Bytes,
    pos: usize,
    prev_len: usize,
    last_start: usize,
    tail: usize,
    declared: Option<u16>,
    seen: u64,
    done: bool,
}

impl Cursor {
    /// Validates the header and positions at the first entry.
    pub fn new(data: Bytes) -> Result<Cursor, ErrorKind> {
        let h = data
            .get(0..HEADER_LEN)
            .ok_or_else(|| corrupt("ziplist", format_args!("{} bytes is shorter than the header", data.len())))?;
        let total = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let tail = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let count = u16::from_le_bytes([h[8], h[9]]);
        if total != data.len() {
            return Err(corrupt("ziplist", format_args!("header says {total} bytes, blob has {}", data.len())));
        }
        if total < HEADER_LEN + 1 || data.last() != Some(&END) {
            return Err(corrupt("ziplist", "missing 0xFF terminator"));
        }
        if tail >= total {
            return Err(corrupt("ziplist", format_args!("zltail {tail} outside the {total}-byte blob")));
        }
        let declared = (count != u16::MAX).then_some(count);
        Ok(Cursor { data, pos: HEADER_LEN, prev_len: 0, last_start: HEADER_LEN, tail, declared, seen: 0, done: false })
    }

    /// The element count from the header, if known.
    pub fn declared_count(&self) -> Option<u16> {
        self.declared
    }

    /// The next element, or `None` at the (validated) end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Elem>, ErrorKind> {
        if self.done {
            return Ok(None);
        }
        let pos = self.pos;
        let data = &self.data;
        let at = |i: usize| data.get(i).copied().ok_or_else(|| corrupt("ziplist", "entries run past the end"));
        let b0 = at(pos)?;
        if b0 == END {
            if pos + 1 != data.len() {
                return Err(corrupt("ziplist", format_args!("terminator at {pos} of {}", data.len())));
            }
            if self.last_start != self.tail {
                return Err(corrupt(
                    "ziplist",
                    format_args!("zltail {} but last entry at {}", self.tail, self.last_start),
                ));
            }
            if let Some(c) = self.declared {
                if u64::from(c) != self.seen {
                    return Err(corrupt("ziplist", format_args!("header says {c} entries, found {}", self.seen)));
                }
            }
            self.done = true;
            return Ok(None);
        }
        let (prevlen, plen) = match b0 {
            0xfe => {
                let b = data.get(pos + 1..pos + 5).ok_or_else(|| corrupt("ziplist", "truncated prevlen"))?;
                (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 5)
            }
            v => (usize::from(v), 1),
        };
        if prevlen != self.prev_len {
            return Err(corrupt("ziplist", format_args!("prevlen {prevlen} but previous entry has {}", self.prev_len)));
        }
        let e = pos + plen;
        let enc = at(e)?;
        let int = |n: usize| -> Result<i64, ErrorKind> {
            let s = data.get(e + 1..e + 1 + n).ok_or_else(|| corrupt("ziplist", "truncated integer"))?;
            let mut a = [0u8; 8];
            a[8 - n..].copy_from_slice(s);
            // Sign-extend from the top: the bytes sit in the high end of the LE array.
            Ok(i64::from_le_bytes(a) >> (8 * (8 - n)))
        };
        let (elem, body_end) = match enc >> 6 {
            0 => self.string(e + 1, usize::from(enc & 0x3f))?,
            1 => {
                let len = (usize::from(enc & 0x3f) << 8) | usize::from(at(e + 1)?);
                self.string(e + 2, len)?
            }
            2 => {
                let b = data.get(e + 1..e + 5).ok_or_else(|| corrupt("ziplist", "truncated string length"))?;
                self.string(e + 5, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)?
            }
            _ => match enc {
                0xc0 => (Elem::Int(int(2)?), e + 3),
                0xd0 => (Elem::Int(int(4)?), e + 5),
                0xe0 => (Elem::Int(int(8)?), e + 9),
                0xf0 => (Elem::Int(int(3)?), e + 4),
                0xfe => (Elem::Int(int(1)?), e + 2),
                0xf1..=0xfd => (Elem::Int(i64::from(enc & 0x0f) - 1), e + 1),
                other => return Err(corrupt("ziplist", format_args!("invalid encoding byte 0x{other:02x} at {e}"))),
            },
        };
        if body_end >= data.len() {
            return Err(corrupt("ziplist", "entry runs past the end"));
        }
        self.last_start = pos;
        self.prev_len = body_end - pos;
        self.pos = body_end;
        self.seen += 1;
        Ok(Some(elem))
    }

    fn string(&self, start: usize, len: usize) -> Result<(Elem, usize), ErrorKind> {
        match start.checked_add(len).filter(|&e| e < self.data.len()) {
            Some(end) => Ok((Elem::Str(self.data.slice(start..end)), end)),
            None => Err(corrupt("ziplist", format_args!("string of {len} bytes runs past the end"))),
        }
    }
}

/// Parses a whole ziplist into its elements (integers as decimal text).
pub fn parse(data: &Bytes) -> Result<Vec<Bytes>, ErrorKind> {
    let mut c = Cursor::new(data.clone())?;
    let mut out = Vec::with_capacity(usize::from(c.declared_count().unwrap_or(0)).min(1024));
    while let Some(e) = c.next()? {
        out.push(e.into_bytes());
    }
    Ok(out)
}

/// Builds a ziplist the way Redis does: strings shorter than 32 bytes that are canonical int64
/// text become integer entries (immediate 0..12, then int8/16/24/32/64).
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    count: u64,
    prev_len: usize,
    tail: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty ziplist.
    pub fn new() -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER_LEN]);
        Writer { buf, count: 0, prev_len: 0, tail: HEADER_LEN }
    }

    /// Entries appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes the finished ziplist will occupy.
    pub fn byte_len(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends an element.
    pub fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        if self.prev_len < 254 {
            self.buf.push(self.prev_len as u8);
        } else {
            self.buf.push(0xfe);
            self.buf.extend_from_slice(&(self.prev_len as u32).to_le_bytes());
        }
        match (s.len() < 32).then(|| canonical_int(s)).flatten() {
            Some(v) => self.put_int(v),
            None => {
                let len = s.len();
                if len <= 0x3f {
                    self.buf.push(len as u8);
                } else if len <= 0x3fff {
                    self.buf.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
                } else {
                    self.buf.push(0x80);
                    self.buf.extend_from_slice(&(len as u32).to_be_bytes());
                }
                self.buf.extend_from_slice(s);
            }
        }
        self.tail = start;
        self.prev_len = self.buf.len() - start;
        self.count += 1;
    }

    fn put_int(&mut self, v: i64) {
        if (0..=12).contains(&v) {
            self.buf.push(0xf1 + v as u8);
        } else if let Ok(b) = i8::try_from(v) {
            self.buf.extend_from_slice(&[0xfe, b as u8]);
        } else if let Ok(h) = i16::try_from(v) {
            self.buf.push(0xc0);
            self.buf.extend_from_slice(&h.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            self.buf.push(0xd0);
            self.buf.extend_from_slice(&w.to_le_bytes());
        } else {
            self.buf.push(0xe0);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Writes the header and terminator and returns the blob.
    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        self.buf.push(END);
        let total = u32::try_from(self.buf.len())
            .map_err(|_| EncodeError::Invalid(format!("ziplist of {} bytes exceeds 4 GiB", self.buf.len())))?;
        let count = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..8].copy_from_slice(&(self.tail as u32).to_le_bytes());
        self.buf[8..10].copy_from_slice(&count.to_le_bytes());
        Ok(self.buf)
    }
}

/// Encodes `items` into a ziplist.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    for s in items {
        w.push(s);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_slice(b: &[u8]) -> Result<Vec<Bytes>, ErrorKind> {
        parse(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn hand_computed() {
        // ["a", 5, "300", -2]: 00 01 'a' | 03 f6 | 02 c0 2c 01 | 04 fe fe
        let zl = encode([&b"a"[..], b"5", b"300", b"-2"]).unwrap();
        let body = [0x00, 0x01, b'a', 0x03, 0xf6, 0x02, 0xc0, 0x2c, 0x01, 0x04, 0xfe, 0xfe, 0xff];
        assert_eq!(&zl[10..], &body);
        assert_eq!(u32::from_le_bytes(zl[0..4].try_into().unwrap()) as usize, zl.len());
        assert_eq!(u32::from_le_bytes(zl[4..8].try_into().unwrap()), 19);
        assert_eq!(u16::from_le_bytes(zl[8..10].try_into().unwrap()), 4);
        assert_eq!(parse_slice(&zl).unwrap(), vec!["a", "5", "300", "-2"]);
        // Empty ziplist: zltail points at the terminator's offset (10).
        let empty = encode(std::iter::empty()).unwrap();
        assert_eq!(empty, [11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xff]);
        assert!(parse_slice(&empty).unwrap().is_empty());
    }

    #[test]
    fn integer_widths() {
        for v in [0i64, 12, 13, -1, 127, -128, 128, 32767, -32769, 8_388_607, -8_388_609, i32::MAX as i64 + 1, i64::MIN]
        {
            let t = v.to_string();
            let zl = encode([t.as_bytes()]).unwrap();
            assert_eq!(parse_slice(&zl).unwrap(), vec![t.clone()], "{v}");
        }
        // Long digit strings (>= 32 bytes) stay strings; 20-digit ints are ints.
        let zl = encode([&b"-9223372036854775808"[..]]).unwrap();
        assert_eq!(zl[11], 0xe0);
    }

    #[test]
    fn big_prevlen() {
        let big = vec![b'x'; 300];
        let zl = encode([&big[..], b"y"]).unwrap();
        let second = 10 + 1 + 2 + 300;
        assert_eq!(&zl[second..second + 5], &[0xfe, 0x2f, 0x01, 0, 0]);
        assert_eq!(parse_slice(&zl).unwrap(), vec![Bytes::from(big), Bytes::from("y")]);
    }

    #[test]
    fn corrupt_inputs() {
        let good = encode([&b"a"[..], b"hello", b"7"]).unwrap();
        for cut in 0..good.len() {
            assert!(parse_slice(&good[..cut]).is_err());
        }
        let mut bad = good.clone();
        bad[4] = 12; // zltail
        assert!(parse_slice(&bad).is_err());
        let mut bad = good.clone();
        bad[8] = 4; // zllen
        assert!(parse_slice(&bad).is_err());
        let mut bad = good.clone();
        bad[13] = 9; // prevlen of the second entry
        assert!(parse_slice(&bad).is_err());
        let mut bad = good;
        bad[11] = 0xc5; // invalid encoding
        assert!(parse_slice(&bad).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                any::<i64>().prop_map(|v| v.to_string().into_bytes()),
                (-20..20i64).prop_map(|v| v.to_string().into_bytes()),
            ], 0..30)) {
            let blob = encode(items.iter().map(|v| &v[..])).unwrap();
            let back = parse(&Bytes::from(blob)).unwrap();
            prop_assert_eq!(back.len(), items.len());
            for (a, b) in back.iter().zip(&items) {
                prop_assert_eq!(&a[..], &b[..]);
            }
        }

        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if data.len() >= 10 {
                let n = data.len() as u32;
                data[0..4].copy_from_slice(&n.to_le_bytes());
            }
            let _ = parse_slice(&data);
        }
    }
}
