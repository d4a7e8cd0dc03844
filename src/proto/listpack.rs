//! Listpack blobs (spec 2.4): validated zero-copy parsing into elements, and the writer that
//! produces what Redis and Dragonfly write.

use bytes::Bytes;

use super::error::{corrupt, EncodeError, ErrorKind};
use super::string::{canonical_int, int_text, parse_i64};

/// Size of the listpack header (u32 total bytes + u16 element count).
pub const HEADER_LEN: usize = 6;
/// The element count that means "unknown, count them".
pub const UNKNOWN_COUNT: u16 = u16::MAX;
/// The terminator byte.
pub const END: u8 = 0xff;

/// One listpack (or ziplist / intset) element as stored: an integer or a byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// An integer encoding (its decimal text is the logical value).
    Int(i64),
    /// A string encoding (a zero-copy slice of the blob).
    Str(Bytes),
}

impl Elem {
    /// The logical byte-string value: integers become their canonical decimal text.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Elem::Int(v) => int_text(v),
            Elem::Str(s) => s,
        }
    }

    /// The integer value: integer encodings directly, strings parsed as decimal text.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Elem::Int(v) => Some(*v),
            Elem::Str(s) => parse_i64(s),
        }
    }

    /// The value as a double (zset scores): integers exactly as `(double)ll`, strings parsed
    /// like `strtod` (including `inf`, `-inf`, `nan`), bit-exact.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Elem::Int(v) => Some(*v as f64),
            Elem::Str(s) => parse_f64(s),
        }
    }

    /// Payload size used for batching: string length, 8 for integers.
    pub fn weight(&self) -> usize {
        match self {
            Elem::Int(_) => 8,
            Elem::Str(s) => s.len(),
        }
    }
}

/// Parses decimal text (or `inf`, `-inf`, `+inf`, `infinity`, `nan`, any case) into a double,
/// correctly rounded.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}

/// Size in bytes of the backlen that follows an entry whose encoding+data is `l` bytes.
pub fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    }
}

/// Encodes the backlen of `l` (most significant 7-bit group first; every byte but the first has
/// the high bit set) into `buf`, returning the number of bytes used.
pub fn encode_backlen(l: usize, buf: &mut [u8; 5]) -> usize {
    let n = backlen_size(l);
    for (i, slot) in buf.iter_mut().enumerate().take(n) {
        let shift = 7 * (n - 1 - i);
        let group = ((l >> shift) & 0x7f) as u8;
        *slot = if i == 0 { group } else { group | 0x80 };
    }
    n
}

/// Reads and validates a listpack header; returns the declared count (`None` = unknown).
fn check_header(data: &[u8]) -> Result<Option<u16>, ErrorKind> {
    let (Some(total), Some(count)) = (data.get(0..4), data.get(4..6)) else {
        return Err(corrupt("listpack", format_args!("{} bytes is shorter than the header", data.len())));
    };
    let total = u32::from_le_bytes([total[0], total[1], total[2], total[3]]) as usize;
    if total != data.len() {
        return Err(corrupt("listpack", format_args!("header says {total} bytes, blob has {}", data.len())));
    }
    if total < HEADER_LEN + 1 || data.last() != Some(&END) {
        return Err(corrupt("listpack", "missing 0xFF terminator"));
    }
    let count = u16::from_le_bytes([count[0], count[1]]);
    Ok((count != UNKNOWN_COUNT).then_some(count))
}

/// A validating forward iterator over a listpack blob. Owns the blob (cheap `Bytes` clone), so
/// it can live inside a decoder state across calls.
#[derive(Debug, Clone)]
pub struct Cursor {
    data: Bytes,
    pos: usize,
    declared: Option<u16>,
    seen: u64,
    done: bool,
}

impl Cursor {
    /// Validates the header (total bytes, terminator) and positions at the first element.
    pub fn new(data: Bytes) -> Result<Cursor, ErrorKind> {
        let declared = check_header(&data)?;
        Ok(Cursor { data, pos: HEADER_LEN, declared, seen: 0, done: false })
    }

    /// The element count from the header, if known.
    pub fn declared_count(&self) -> Option<u16> {
        self.declared
    }

    /// Elements returned so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether the terminator has been reached (and the count checked).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next element, or `None` at the terminator (after checking that it is the last byte and
    /// that the declared count matches).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Elem>, ErrorKind> {
        if self.done {
            return Ok(None);
        }
        let data = &self.data;
        let pos = self.pos;
        let b0 = *data.get(pos).ok_or_else(|| corrupt("listpack", "entries run past the end"))?;
        if b0 == END {
            if pos + 1 != data.len() {
                return Err(corrupt("listpack", format_args!("terminator at {pos} of {}", data.len())));
            }
            if let Some(c) = self.declared {
                if u64::from(c) != self.seen {
                    return Err(corrupt("listpack", format_args!("header says {c} elements, found {}", self.seen)));
                }
            }
            self.done = true;
            return Ok(None);
        }
        let byte = |i: usize| data.get(pos + i).copied().ok_or_else(|| corrupt("listpack", "truncated entry"));
        let fixed = |n: usize| -> Result<[u8; 8], ErrorKind> {
            let s = data.get(pos + 1..pos + 1 + n).ok_or_else(|| corrupt("listpack", "truncated integer"))?;
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(s);
            Ok(a)
        };
        let (elem, enc_len) = if b0 < 0x80 {
            (Elem::Int(i64::from(b0)), 1)
        } else if b0 & 0xc0 == 0x80 {
            self.string(pos + 1, usize::from(b0 & 0x3f))?
        } else if b0 & 0xe0 == 0xc0 {
            let v = (i64::from(b0 & 0x1f) << 8) | i64::from(byte(1)?);
            (Elem::Int(if v >= 4096 { v - 8192 } else { v }), 2)
        } else if b0 & 0xf0 == 0xe0 {
            let len = (usize::from(b0 & 0x0f) << 8) | usize::from(byte(1)?);
            self.string(pos + 2, len)?
        } else {
            match b0 {
                0xf0 => {
                    let a = fixed(4)?;
                    let len = u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as usize;
                    self.string(pos + 5, len)?
                }
                0xf1 => {
                    let a = fixed(2)?;
                    (Elem::Int(i64::from(i16::from_le_bytes([a[0], a[1]]))), 3)
                }
                0xf2 => {
                    let a = fixed(3)?;
                    (Elem::Int(i64::from(i32::from_le_bytes([0, a[0], a[1], a[2]]) >> 8)), 4)
                }
                0xf3 => {
                    let a = fixed(4)?;
                    (Elem::Int(i64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]]))), 5)
                }
                0xf4 => (Elem::Int(i64::from_le_bytes(fixed(8)?)), 9),
                other => return Err(corrupt("listpack", format_args!("invalid encoding byte 0x{other:02x} at {pos}"))),
            }
        };
        let mut expect = [0u8; 5];
        let bl = encode_backlen(enc_len, &mut expect);
        let back_at = pos + enc_len;
        match self.data.get(back_at..back_at + bl) {
            Some(found) if found == &expect[..bl] => {}
            Some(found) => {
                return Err(corrupt("listpack", format_args!("bad backlen {found:02x?} for entry of {enc_len} bytes")))
            }
            None => return Err(corrupt("listpack", "truncated backlen")),
        }
        self.pos = back_at + bl;
        self.seen += 1;
        Ok(Some(elem))
    }

    fn string(&self, start: usize, len: usize) -> Result<(Elem, usize), ErrorKind> {
        let end = start.checked_add(len).filter(|&e| e < self.data.len());
        match end {
            Some(end) => Ok((Elem::Str(self.data.slice(start..end)), end - self.pos)),
            None => Err(corrupt("listpack", format_args!("string of {len} bytes runs past the end"))),
        }
    }
}

/// Parses a whole listpack into its elements (integers as decimal text).
pub fn parse(data: &Bytes) -> Result<Vec<Bytes>, ErrorKind> {
    let mut c = Cursor::new(data.clone())?;
    let mut out = Vec::with_capacity(usize::from(c.declared_count().unwrap_or(0)).min(1024));
    while let Some(e) = c.next()? {
        out.push(e.into_bytes());
    }
    Ok(out)
}

/// Builds a listpack the way Redis and Dragonfly do: canonical int64 text is stored as the
/// smallest integer encoding, strings with the smallest length header, correct backlens.
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    count: u64,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty listpack.
    pub fn new() -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER_LEN]);
        Writer { buf, count: 0 }
    }

    /// Elements appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes the finished listpack will occupy.
    pub fn byte_len(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends a string element (stored as an integer when it is canonical int64 text).
    pub fn push(&mut self, s: &[u8]) {
        match canonical_int(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    /// Appends an integer element in its smallest encoding.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            self.buf.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
        } else if let Ok(h) = i16::try_from(v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&h.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&w.to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Appends a string element verbatim (never converted to an integer encoding).
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let len = s.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let mut bl = [0u8; 5];
        let n = encode_backlen(self.buf.len() - start, &mut bl);
        self.buf.extend_from_slice(&bl[..n]);
        self.count += 1;
    }

    /// Writes the header and terminator and returns the blob.
    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        self.buf.push(END);
        let total = u32::try_from(self.buf.len())
            .map_err(|_| EncodeError::Invalid(format!("listpack of {} bytes exceeds 4 GiB", self.buf.len())))?;
        let count = u16::try_from(self.count).ok().filter(|&c| c != UNKNOWN_COUNT).unwrap_or(UNKNOWN_COUNT);
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        Ok(self.buf)
    }
}

/// Encodes `items` into a listpack.
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

    fn elems(blob: &[u8]) -> Result<Vec<Elem>, ErrorKind> {
        let mut c = Cursor::new(Bytes::copy_from_slice(blob))?;
        let mut v = Vec::new();
        while let Some(e) = c.next()? {
            v.push(e);
        }
        Ok(v)
    }

    #[test]
    fn spec_examples() {
        // Section 9.2: list "a","b","c".
        let lst = [0x10, 0, 0, 0, 3, 0, 0x81, b'a', 2, 0x81, b'b', 2, 0x81, b'c', 2, 0xff];
        assert_eq!(parse(&Bytes::copy_from_slice(&lst)).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(encode([&b"a"[..], b"b", b"c"]).unwrap(), lst);
        // Zset "a" 1 "b" "2.5".
        let z = [20, 0, 0, 0, 4, 0, 0x81, b'a', 2, 1, 1, 0x81, b'b', 2, 0x83, b'2', b'.', b'5', 4, 0xff];
        let e = elems(&z).unwrap();
        assert_eq!(e[1], Elem::Int(1));
        assert_eq!(e[3].as_f64(), Some(2.5));
        assert_eq!(encode([&b"a"[..], b"1", b"b", b"2.5"]).unwrap(), z);
        // Hash f v.
        let h = [0x0d, 0, 0, 0, 2, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0xff];
        assert_eq!(encode([&b"f"[..], b"v"]).unwrap(), h);
    }

    #[test]
    fn integer_encodings() {
        for (v, enc) in [
            (0i64, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0xc0, 0x80]),
            (-1, vec![0xdf, 0xff]),
            (-4096, vec![0xd0, 0x00]),
            (4095, vec![0xcf, 0xff]),
            (4096, vec![0xf1, 0x00, 0x10]),
            (-32769, vec![0xf2, 0xff, 0x7f, 0xff]),
            (1 << 23, vec![0xf3, 0, 0, 0x80, 0]),
            (i64::MIN, vec![0xf4, 0, 0, 0, 0, 0, 0, 0, 0x80]),
        ] {
            let mut w = Writer::new();
            w.push(v.to_string().as_bytes());
            let blob = w.finish().unwrap();
            assert_eq!(&blob[6..6 + enc.len()], &enc[..], "{v}");
            assert_eq!(elems(&blob).unwrap(), vec![Elem::Int(v)]);
        }
    }

    #[test]
    fn backlen_forms() {
        let bl = |l: usize| {
            let mut b = [0u8; 5];
            let n = encode_backlen(l, &mut b);
            b[..n].to_vec()
        };
        assert_eq!(bl(2), [2]);
        assert_eq!(bl(127), [127]);
        assert_eq!(bl(128), [1, 0x80]);
        assert_eq!(bl(16382), [127, 0xfe]);
        assert_eq!(bl(16383), [0, 0xff, 0xff]);
        assert_eq!(bl(16384), [1, 0x80, 0x80]);
        assert_eq!(backlen_size(268_435_455), 5);
        // A 200-byte string: 2-byte header + 200 = 202 -> backlen 2 bytes.
        let s = vec![b'x'; 200];
        let blob = encode([&s[..]]).unwrap();
        assert_eq!(&blob[6..8], &[0xe0, 200]);
        assert_eq!(&blob[208..210], &[1, 0x80 | (202 - 128)]);
        assert_eq!(parse(&Bytes::from(blob)).unwrap(), vec![Bytes::from(s)]);
    }

    #[test]
    fn corrupt_inputs() {
        let good = encode([&b"a"[..], b"bb", b"12"]).unwrap();
        assert!(elems(&good).is_ok());
        // Truncations.
        for cut in 0..good.len() {
            assert!(elems(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Wrong total.
        let mut bad = good.clone();
        bad[0] += 1;
        assert!(elems(&bad).is_err());
        // Wrong count.
        let mut bad = good.clone();
        bad[4] = 2;
        assert!(matches!(elems(&bad), Err(ErrorKind::Corrupt { .. })));
        // Unknown count is fine.
        let mut ok = good.clone();
        ok[4] = 0xff;
        ok[5] = 0xff;
        assert_eq!(elems(&ok).unwrap().len(), 3);
        // Bad backlen.
        let mut bad = good.clone();
        bad[8] = 3;
        assert!(elems(&bad).is_err());
        // Bad terminator / early terminator.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0xfe;
        assert!(elems(&bad).is_err());
        let mut bad = good.clone();
        bad[6] = 0xff;
        assert!(elems(&bad).is_err());
        // Invalid encoding byte.
        let mut bad = good;
        bad[6] = 0xf7;
        assert!(elems(&bad).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<i64>().prop_map(|v| v.to_string().into_bytes()),
                (0..200i64).prop_map(|v| v.to_string().into_bytes()),
            ], 0..40)) {
            let blob = encode(items.iter().map(|v| &v[..])).unwrap();
            let back = parse(&Bytes::from(blob)).unwrap();
            prop_assert_eq!(back.len(), items.len());
            for (a, b) in back.iter().zip(&items) {
                prop_assert_eq!(&a[..], &b[..]);
            }
        }

        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if data.len() >= 6 {
                let n = data.len() as u32;
                data[0..4].copy_from_slice(&n.to_le_bytes());
            }
            let _ = elems(&data);
        }
    }
}
