//! HyperLogLogs in Redis' format (what Dragonfly stores): PFADD (journaled verbatim), PFCOUNT,
//! PFMERGE (journaled as `SET dst <hll bytes>`, spec 6.4). The mock writes the dense encoding
//! (`HYLL`, 16384 six-bit registers, MurmurHash64A seed 0xadc83b19) and reads dense and sparse.

use bytes::Bytes;
use df2redis::proto::Value;

use super::{arity, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

const P: u32 = 14;
const REGISTERS: usize = 1 << P;
const HEADER: usize = 16;
const DENSE_SIZE: usize = HEADER + (REGISTERS * 6).div_ceil(8);

fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Register index and run length of an element (Redis' `hllPatLen`).
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << (64 - P));
    (index, rest.trailing_zeros() as u8 + 1)
}

/// The registers of an HLL string (dense or sparse), or `None` when it is not one.
fn registers(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() < HEADER || &s[..4] != b"HYLL" {
        return None;
    }
    let mut regs = vec![0u8; REGISTERS];
    match s[4] {
        0 => {
            if s.len() != DENSE_SIZE {
                return None;
            }
            let r = &s[HEADER..];
            for (i, reg) in regs.iter_mut().enumerate() {
                let (byte, fb) = (i * 6 / 8, (i * 6) % 8);
                let lo = u16::from(r[byte]);
                let hi = u16::from(r.get(byte + 1).copied().unwrap_or(0));
                *reg = (((lo | (hi << 8)) >> fb) & 63) as u8;
            }
        }
        1 => {
            let (mut idx, mut p) = (0usize, HEADER);
            while p < s.len() {
                let op = s[p];
                if op & 0xc0 == 0 {
                    idx += usize::from(op & 63) + 1;
                    p += 1;
                } else if op & 0xc0 == 0x40 {
                    idx += ((usize::from(op & 63) << 8) | usize::from(*s.get(p + 1)?)) + 1;
                    p += 2;
                } else {
                    let (val, run) = (((op >> 2) & 31) + 1, usize::from(op & 3) + 1);
                    for r in regs.get_mut(idx..idx + run)? {
                        *r = val;
                    }
                    idx += run;
                    p += 1;
                }
            }
            if idx != REGISTERS {
                return None;
            }
        }
        _ => return None,
    }
    Some(regs)
}

/// The dense encoding of `regs`, with the cardinality cache marked invalid.
fn dense(regs: &[u8]) -> Bytes {
    let mut out = vec![0u8; DENSE_SIZE];
    out[..4].copy_from_slice(b"HYLL");
    out[15] = 0x80;
    let r = &mut out[HEADER..];
    for (i, &v) in regs.iter().enumerate() {
        let (byte, fb) = (i * 6 / 8, (i * 6) % 8);
        let bits = u16::from(v & 63) << fb;
        r[byte] |= bits as u8;
        if let Some(next) = r.get_mut(byte + 1) {
            *next |= (bits >> 8) as u8;
        }
    }
    Bytes::from(out)
}

/// Redis' cardinality estimate (`hllCount`, the Ertl estimator).
fn count(regs: &[u8]) -> u64 {
    let m = REGISTERS as f64;
    let q = 64 - P as usize;
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[usize::from(r)] += 1;
    }
    let tau = |mut x: f64| {
        if x == 0.0 || x == 1.0 {
            return 0.0;
        }
        let (mut y, mut z) = (1.0, 1.0 - x);
        loop {
            x = x.sqrt();
            let zl = z;
            y *= 0.5;
            z -= (1.0 - x).powi(2) * y;
            if zl == z {
                return z / 3.0;
            }
        }
    };
    let sigma = |mut x: f64| {
        if x == 1.0 {
            return f64::INFINITY;
        }
        let (mut y, mut z) = (1.0, x);
        loop {
            x *= x;
            let zl = z;
            z += x * y;
            y += y;
            if zl == z {
                return z;
            }
        }
    };
    let mut z = m * tau((m - f64::from(histo[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (0.721_347_520_444_481_7 * m * m / z).round() as u64
}

fn hll_of(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Option<Vec<u8>>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::String(s)) => {
            registers(s).map(Some).ok_or_else(|| Reply::Error("INVALIDOBJ Corrupted HLL object detected".into()))
        }
        Some(_) => Err(wrongtype()),
    }
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "PFADD" => (|| {
            let [k, elements @ ..] = a else { return Err(arity(name)) };
            let existing = hll_of(ctx, k)?;
            let created = existing.is_none();
            let mut regs = existing.unwrap_or_else(|| vec![0u8; REGISTERS]);
            let mut changed = created;
            for e in elements {
                let (i, n) = pat_len(e);
                if regs[i] < n {
                    regs[i] = n;
                    changed = true;
                }
            }
            if changed {
                let expire_ms = ctx.live_for_write(k).and_then(|e| e.expire_ms);
                ctx.store(k, Entry { value: Value::String(dense(&regs)), expire_ms });
            }
            // Auto-journaled on success, whether or not a register changed (Appendix F).
            let mut j = vec![Bytes::from_static(b"PFADD")];
            j.extend(a.iter().cloned());
            ctx.journal(k, j);
            Ok(Reply::Int(i64::from(changed)))
        })(),
        "PFCOUNT" if !a.is_empty() => (|| {
            let mut acc = vec![0u8; REGISTERS];
            for k in a {
                if let Some(r) = hll_of(ctx, k)? {
                    acc.iter_mut().zip(r).for_each(|(x, y)| *x = (*x).max(y));
                }
            }
            Ok(Reply::Int(count(&acc) as i64))
        })(),
        "PFMERGE" if !a.is_empty() => (|| {
            let dst = &a[0];
            ctx.declare(a);
            let mut acc = vec![0u8; REGISTERS];
            for k in a {
                if let Some(r) = hll_of(ctx, k)? {
                    acc.iter_mut().zip(r).for_each(|(x, y)| *x = (*x).max(y));
                }
            }
            let bytes = dense(&acc);
            let expire_ms = ctx.live_for_write(dst).and_then(|e| e.expire_ms);
            ctx.store(dst, Entry { value: Value::String(bytes.clone()), expire_ms });
            ctx.journal(dst, vec![Bytes::from_static(b"SET"), dst.clone(), bytes]);
            Ok(Reply::ok())
        })(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_round_trip_and_estimates() {
        let mut regs = vec![0u8; REGISTERS];
        for i in 0..1000u32 {
            let (x, n) = pat_len(format!("user:{i}").as_bytes());
            regs[x] = regs[x].max(n);
        }
        let d = dense(&regs);
        assert_eq!(d.len(), DENSE_SIZE);
        assert_eq!(registers(&d).unwrap(), regs);
        let c = count(&regs);
        assert!((980..=1020).contains(&c), "{c}");
        assert_eq!(count(&vec![0u8; REGISTERS]), 0);
    }

    #[test]
    fn sparse_strings_decode() {
        // Redis' empty HLL: sparse, one XZERO run covering all 16384 registers.
        let mut s = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        s.extend_from_slice(&[0x7f, 0xff]);
        assert_eq!(registers(&s).unwrap(), vec![0u8; REGISTERS]);
    }
}
