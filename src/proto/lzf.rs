//! LZF (liblzf) compression and decompression, as used by RDB `C3` strings.

use super::error::{corrupt, ErrorKind};

/// Decompresses `input` into exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, ErrorKind> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut i = 0usize;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            let lit = input
                .get(i..i + len)
                .ok_or_else(|| corrupt("LZF", format_args!("literal run of {len} bytes past the input end")))?;
            if out.len() + len > out_len {
                return Err(corrupt("LZF", "output longer than declared"));
            }
            out.extend_from_slice(lit);
            i += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or_else(|| corrupt("LZF", "truncated back-reference"))?);
                i += 1;
            }
            let lo = usize::from(*input.get(i).ok_or_else(|| corrupt("LZF", "truncated back-reference"))?);
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + lo + 1;
            let len = len + 2;
            if back > out.len() {
                return Err(corrupt("LZF", format_args!("back-reference {back} before the output start")));
            }
            if out.len() + len > out_len {
                return Err(corrupt("LZF", "output longer than declared"));
            }
            let start = out.len() - back;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err(corrupt("LZF", format_args!("decompressed {} bytes, declared {out_len}", out.len())));
    }
    Ok(out)
}

const HLOG: u32 = 14;
const MAX_OFF: usize = 1 << 13;
/// Longest back-reference: the length byte stores `len - 2 - 7` in 8 bits.
const MAX_MATCH: usize = 2 + 7 + 255;
const MAX_LIT: usize = 1 << 5;

/// Compresses `input`. Returns `None` when the result would not be smaller than `input`
/// (the caller then stores the string raw), like liblzf with an output bound of `len - 1`.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() < 4 {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    let mut table = vec![0usize; 1 << HLOG];
    let hash = |p: usize| -> usize {
        let v = (u32::from(input[p]) << 16) | (u32::from(input[p + 1]) << 8) | u32::from(input[p + 2]);
        (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
    };
    let mut lit_start = 0usize;
    let mut i = 0usize;
    let flush_literals = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let n = (to - s).min(MAX_LIT);
            out.push((n - 1) as u8);
            out.extend_from_slice(&input[s..s + n]);
            s += n;
        }
    };
    while i + 2 < input.len() {
        let h = hash(i);
        let cand = table[h];
        table[h] = i + 1; // 0 means empty
        if cand > 0 {
            let r = cand - 1;
            let off = i - r - 1;
            if off < MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let max_len = (input.len() - i).min(MAX_MATCH);
                let mut len = 3;
                while len < max_len && input[r + len] == input[i + len] {
                    len += 1;
                }
                flush_literals(&mut out, lit_start, i);
                let l = len - 2;
                if l < 7 {
                    out.push(((l << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                i += len;
                lit_start = i;
                if out.len() >= input.len() {
                    return None;
                }
                continue;
            }
        }
        i += 1;
    }
    flush_literals(&mut out, lit_start, input.len());
    if out.len() >= input.len() {
        None
    } else {
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetitive_input() {
        let input = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabc hello hello hello hello".repeat(20);
        let c = compress(&input).expect("compressible");
        assert!(c.len() < input.len() / 4);
        assert_eq!(decompress(&c, input.len()).unwrap(), input);
    }

    #[test]
    fn rejects_bad_back_reference() {
        assert!(decompress(&[0x20, 0x05], 3).is_err());
        assert!(decompress(&[0x05, b'a'], 6).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..5000)) {
            if let Some(c) = compress(&data) {
                prop_assert!(c.len() < data.len());
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
            }
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..1000) {
            let _ = decompress(&data, n);
        }
    }
}
