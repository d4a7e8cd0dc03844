//! Which shard (and hence which flow) a key belongs to: Dragonfly's default function (spec appendix A).

use xxhash_rust::xxh64::xxh64;

/// The seed Dragonfly hashes keys with.
pub const SHARD_SEED: u64 = 120_577_240_643;

/// `XXH64(key, seed) mod shards` (`shards` ≥ 1).
pub fn shard_of(key: &[u8], shards: u32) -> u32 {
    let n = u64::from(shards.max(1));
    (xxh64(key, SHARD_SEED) % n) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_matches_spec_hex() {
        assert_eq!(SHARD_SEED, 0x1C_12F6_AE43);
    }

    #[test]
    fn one_shard_is_always_zero_and_keys_spread() {
        assert_eq!(shard_of(b"foo", 1), 0);
        let mut seen = [0u32; 4];
        for i in 0..400 {
            seen[shard_of(format!("key:{i}").as_bytes(), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
    }
}
