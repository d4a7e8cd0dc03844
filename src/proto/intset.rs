//! Intset blobs (spec 2.6, type 11): validated parsing (width, length, strict ascending order)
//! and the writer (smallest width that holds every member, sorted).

use bytes::Bytes;

use super::error::{corrupt, EncodeError, ErrorKind};
use super::string::{canonical_int, int_text};

/// Header size: u32 LE encoding (element width) + u32 LE length.
pub const HEADER_LEN: usize = 8;

/// A validated intset blob with indexed access.
#[derive(Debug, Clone)]
pub struct Intset {
    data: Bytes,
    width: usize,
    len: usize,
}

impl Intset {
    /// Validates the header and the total size (members are checked for order while iterating).
    pub fn new(data: Bytes) -> Result<Intset, ErrorKind> {
        let h = data
            .get(0..HEADER_LEN)
            .ok_or_else(|| corrupt("intset", format_args!("{} bytes is shorter than the header", data.len())))?;
        let width = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if !matches!(width, 2 | 4 | 8) {
            return Err(corrupt("intset", format_args!("invalid element width {width}")));
        }
        if len.checked_mul(width).and_then(|b| b.checked_add(HEADER_LEN)) != Some(data.len()) {
            return Err(corrupt(
                "intset",
                format_args!("{len} × {width} bytes does not match the {}-byte blob", data.len()),
            ));
        }
        Ok(Intset { data, width, len })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Member `i` (`None` past the end).
    pub fn get(&self, i: usize) -> Option<i64> {
        let at = HEADER_LEN + i.checked_mul(self.width)?;
        let s = self.data.get(at..at + self.width)?;
        Some(match self.width {
            2 => i64::from(i16::from_le_bytes([s[0], s[1]])),
            4 => i64::from(i32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            _ => i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        })
    }

    /// Member `i`, checking it is greater than member `i - 1` (strictly ascending).
    pub fn get_checked(&self, i: usize) -> Result<i64, ErrorKind> {
        let v = self.get(i).ok_or_else(|| corrupt("intset", format_args!("index {i} out of range")))?;
        if i > 0 && self.get(i - 1).is_some_and(|p| p >= v) {
            return Err(corrupt("intset", format_args!("members not strictly ascending at index {i}")));
        }
        Ok(v)
    }
}

/// Parses a whole intset into its members' decimal text.
pub fn parse(data: &Bytes) -> Result<Vec<Bytes>, ErrorKind> {
    let set = Intset::new(data.clone())?;
    (0..set.len()).map(|i| set.get_checked(i).map(int_text)).collect()
}

/// Encodes integer members into an intset (sorted, smallest width). Duplicates are an error.
pub fn encode_ints(values: &[i64]) -> Result<Vec<u8>, EncodeError> {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(EncodeError::Invalid("duplicate intset members".into()));
    }
    let width = if v.iter().all(|&x| i16::try_from(x).is_ok()) {
        2
    } else if v.iter().all(|&x| i32::try_from(x).is_ok()) {
        4
    } else {
        8
    };
    let len = u32::try_from(v.len()).map_err(|_| EncodeError::Invalid("intset too long".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + width * v.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes()[..width]);
    }
    Ok(out)
}

/// Encodes string members, each of which must be canonical int64 text.
pub fn encode<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, EncodeError> {
    let ints = members
        .into_iter()
        .map(|m| {
            canonical_int(m).ok_or_else(|| {
                EncodeError::Invalid(format!("intset member {:?} is not an integer", String::from_utf8_lossy(m)))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    encode_ints(&ints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_example() {
        let blob = [2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0];
        assert_eq!(parse(&Bytes::copy_from_slice(&blob)).unwrap(), vec!["1", "2", "3"]);
        assert_eq!(encode([&b"3"[..], b"1", b"2"]).unwrap(), blob);
    }

    #[test]
    fn widths_and_errors() {
        assert_eq!(encode_ints(&[70000, -1]).unwrap()[0], 4);
        assert_eq!(encode_ints(&[i64::MAX]).unwrap()[0], 8);
        assert!(encode_ints(&[1, 1]).is_err());
        assert!(encode([&b"x"[..]]).is_err());
        let bad_width = [3, 0, 0, 0, 0, 0, 0, 0];
        assert!(parse(&Bytes::copy_from_slice(&bad_width)).is_err());
        let unsorted = [2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0];
        assert!(parse(&Bytes::copy_from_slice(&unsorted)).is_err());
        let short = [2, 0, 0, 0, 2, 0, 0, 0, 2, 0];
        assert!(parse(&Bytes::copy_from_slice(&short)).is_err());
        let huge = [8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(parse(&Bytes::copy_from_slice(&huge)).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(set in proptest::collection::btree_set(any::<i64>(), 0..50)) {
            let v: Vec<i64> = set.iter().copied().collect();
            let blob = encode_ints(&v).unwrap();
            let back = parse(&Bytes::from(blob)).unwrap();
            let expect: Vec<Bytes> = v.iter().map(|&x| int_text(x)).collect();
            prop_assert_eq!(back, expect);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse(&Bytes::from(data));
        }
    }
}
