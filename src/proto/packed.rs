//! Packed unsigned integers ("RDB length"): the 1/2/5/9-byte forms and the special-string marker.

use super::error::ErrorKind;
use super::Read;

/// A decoded packed integer: a length/number, or the `11xxxxxx` special-string marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packed {
    /// A plain number.
    Len(u64),
    /// The low 6 bits of a `11xxxxxx` byte (special string encodings, section 2.2).
    Special(u8),
}

/// Reads a packed integer at the front of `buf` without consuming. Returns the value and the
/// number of bytes it occupies.
pub fn peek(buf: &[u8]) -> Result<Read<(Packed, usize)>, ErrorKind> {
    let Some(&b0) = buf.first() else {
        return Ok(Read::Need(1));
    };
    match b0 >> 6 {
        0 => Ok(Read::Done((Packed::Len(u64::from(b0 & 0x3f)), 1))),
        1 => match buf.get(1) {
            Some(&b1) => Ok(Read::Done((Packed::Len((u64::from(b0 & 0x3f) << 8) | u64::from(b1)), 2))),
            None => Ok(Read::Need(2)),
        },
        3 => Ok(Read::Done((Packed::Special(b0 & 0x3f), 1))),
        _ => match b0 {
            0x80 => match buf.get(1..5) {
                Some(b) => Ok(Read::Done((Packed::Len(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))), 5))),
                None => Ok(Read::Need(5)),
            },
            0x81 => match buf.get(1..9) {
                Some(b) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Ok(Read::Done((Packed::Len(u64::from_be_bytes(a)), 9)))
                }
                None => Ok(Read::Need(9)),
            },
            other => Err(ErrorKind::BadPackedInt(other)),
        },
    }
}

/// Reads a packed number (the special form is an error here).
pub fn peek_len(buf: &[u8]) -> Result<Read<(u64, usize)>, ErrorKind> {
    match peek(buf)? {
        Read::Done((Packed::Len(v), n)) => Ok(Read::Done((v, n))),
        Read::Done((Packed::Special(s), _)) => {
            Err(super::error::unexpected("a packed length", format_args!("special encoding 0x{:02x}", 0xc0 | s)))
        }
        Read::Need(n) => Ok(Read::Need(n)),
    }
}

/// Number of bytes [`write`] uses for `v` (always the shortest form, as Dragonfly writes).
pub fn encoded_len(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

/// Appends `v` in the shortest packed form.
pub fn write(out: &mut Vec<u8>, v: u64) {
    match encoded_len(v) {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&[0x40 | (v >> 8) as u8, v as u8]),
        5 => {
            out.push(0x80);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0x81);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples() {
        for (v, bytes) in [
            (5u64, &[0x05u8][..]),
            (100, &[0x40, 0x64]),
            (16384, &[0x80, 0x00, 0x00, 0x40, 0x00]),
            (1 << 32, &[0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            write(&mut out, v);
            assert_eq!(out, bytes, "encoding {v}");
            assert_eq!(peek_len(bytes), Ok(Read::Done((v, bytes.len()))));
        }
    }

    #[test]
    fn incomplete_and_invalid() {
        assert_eq!(peek(&[]), Ok(Read::Need(1)));
        assert_eq!(peek(&[0x40]), Ok(Read::Need(2)));
        assert_eq!(peek(&[0x80, 0, 0]), Ok(Read::Need(5)));
        assert_eq!(peek(&[0x81, 0]), Ok(Read::Need(9)));
        assert_eq!(peek(&[0x82]), Err(ErrorKind::BadPackedInt(0x82)));
        assert_eq!(peek(&[0xc3]), Ok(Read::Done((Packed::Special(3), 1))));
        assert!(peek_len(&[0xc0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            write(&mut out, v);
            prop_assert_eq!(out.len(), encoded_len(v));
            prop_assert_eq!(peek_len(&out), Ok(Read::Done((v, out.len()))));
            for cut in 0..out.len() {
                prop_assert!(matches!(peek_len(&out[..cut]), Ok(Read::Need(_))));
            }
        }
    }
}
