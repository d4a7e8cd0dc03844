//! 128-bit digests of values. Unordered types (set, hash) use an order-independent combination
//! (wrapping sum of per-element xxh3-128 hashes, plus a count), so SSCAN/HSCAN order and the
//! server's internal encoding (listpack, hashtable, intset...) do not matter; ordered types mix
//! the element's position into its hash.

use super::model::{Content, StreamEntry};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// An accumulated digest: sum of element hashes and element count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// Wrapping sum of the element hashes.
    pub sum: u128,
    /// Elements added.
    pub count: u64,
}

fn part(h: &mut Xxh3, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Canonical bits of a score: -0.0 and 0.0 are the same score.
pub fn score_bits(score: f64) -> u64 {
    if score == 0.0 {
        0
    } else {
        score.to_bits()
    }
}

impl Digest {
    fn add(&mut self, h: Xxh3) {
        self.sum = self.sum.wrapping_add(h.digest128());
        self.count += 1;
    }

    /// Adds a set member (or a list element / string when `pos` is given).
    pub fn add_member(&mut self, pos: Option<u64>, m: &[u8]) {
        let mut h = Xxh3::new();
        h.update(b"m");
        if let Some(p) = pos {
            h.update(&p.to_le_bytes());
        }
        part(&mut h, m);
        self.add(h);
    }

    /// Adds a hash field and its value.
    pub fn add_pair(&mut self, field: &[u8], value: &[u8]) {
        let mut h = Xxh3::new();
        h.update(b"p");
        part(&mut h, field);
        part(&mut h, value);
        self.add(h);
    }

    /// Adds a sorted-set member with its score at position `pos`.
    pub fn add_scored(&mut self, pos: u64, member: &[u8], score: f64) {
        let mut h = Xxh3::new();
        h.update(b"z");
        h.update(&pos.to_le_bytes());
        part(&mut h, member);
        h.update(&score_bits(score).to_le_bytes());
        self.add(h);
    }

    /// Adds a stream entry at position `pos`.
    pub fn add_entry(&mut self, pos: u64, e: &StreamEntry) {
        let mut h = Xxh3::new();
        h.update(b"x");
        h.update(&pos.to_le_bytes());
        h.update(&e.ms.to_le_bytes());
        h.update(&e.seq.to_le_bytes());
        for f in &e.fields {
            part(&mut h, f);
        }
        self.add(h);
    }

    /// Hex form for reports.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// Digest of a whole value (or of a piece starting at element `first`).
    pub fn of(content: &Content, first: u64) -> Digest {
        let mut d = Digest::default();
        d.extend(content, first);
        d
    }

    /// Adds a piece of a value whose first element is at position `first`.
    pub fn extend(&mut self, content: &Content, first: u64) {
        match content {
            Content::Str(b) => self.add_member(Some(first), b),
            Content::List(v) => {
                for (i, e) in v.iter().enumerate() {
                    self.add_member(Some(first + i as u64), e);
                }
            }
            Content::Set(v) => v.iter().for_each(|m| self.add_member(None, m)),
            Content::Hash(v) => v.iter().for_each(|(f, x)| self.add_pair(f, x)),
            Content::Zset(v) => {
                for (i, (m, s)) in v.iter().enumerate() {
                    self.add_scored(first + i as u64, m, *s);
                }
            }
            Content::Stream(v) => {
                for (i, e) in v.iter().enumerate() {
                    self.add_entry(first + i as u64, e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    proptest! {
        #[test]
        fn unordered_digest_ignores_order(mut pairs in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..40), seed in any::<u64>()) {
            let a: Vec<(Bytes, Bytes)> = pairs.iter().map(|(f, v)| (b(f), b(v))).collect();
            // a deterministic shuffle
            let n = pairs.len();
            if n > 1 {
                for i in 0..n {
                    let j = (seed.wrapping_mul(i as u64 + 1) % n as u64) as usize;
                    pairs.swap(i, j);
                }
            }
            let c: Vec<(Bytes, Bytes)> = pairs.iter().map(|(f, v)| (b(f), b(v))).collect();
            prop_assert_eq!(Digest::of(&Content::Hash(a), 0), Digest::of(&Content::Hash(c), 0));
        }

        #[test]
        fn chunked_equals_whole(v in proptest::collection::vec(".{0,6}", 0..50), cut in 0usize..50) {
            let all: Vec<Bytes> = v.iter().map(|s| b(s)).collect();
            let cut = cut.min(all.len());
            let mut d = Digest::default();
            d.extend(&Content::List(all[..cut].to_vec()), 0);
            d.extend(&Content::List(all[cut..].to_vec()), cut as u64);
            prop_assert_eq!(d, Digest::of(&Content::List(all), 0));
        }
    }

    #[test]
    fn ordered_digest_sees_order_and_fields_are_not_confused() {
        let l1 = Content::List(vec![b("a"), b("b")]);
        let l2 = Content::List(vec![b("b"), b("a")]);
        assert_ne!(Digest::of(&l1, 0), Digest::of(&l2, 0));
        // "ab" + "" vs "a" + "b": length prefixes keep them apart
        let h1 = Content::Hash(vec![(b("ab"), b(""))]);
        let h2 = Content::Hash(vec![(b("a"), b("b"))]);
        assert_ne!(Digest::of(&h1, 0), Digest::of(&h2, 0));
        let z1 = Content::Zset(vec![(b("m"), 0.0)]);
        let z2 = Content::Zset(vec![(b("m"), -0.0)]);
        let z3 = Content::Zset(vec![(b("m"), 0.1)]);
        assert_eq!(Digest::of(&z1, 0), Digest::of(&z2, 0));
        assert_ne!(Digest::of(&z1, 0), Digest::of(&z3, 0));
        assert_eq!(Digest::of(&h1, 0).count, 1);
    }
}
