//! Native Redis commands for value pieces (RPUSH/SADD/HSET/ZADD/XADD/…), score formatting,
//! and the temporary-key naming used for atomic replacement of big values.

use bytes::Bytes;

use super::Args;
use crate::proto::model::{StreamEntry, StreamGroup, StreamId, StreamMeta};
use crate::proto::Chunk;

/// The shortest decimal text that parses back (with C `strtod`, as Redis does) to exactly `f`.
pub fn fmt_score(f: f64) -> Bytes {
    if f.is_infinite() {
        return Bytes::from_static(if f > 0.0 { b"inf" } else { b"-inf" });
    }
    let plain = format!("{f}");
    let exp = format!("{f:e}");
    Bytes::from(if exp.len() < plain.len() { exp } else { plain })
}

/// Text of a stream id.
pub fn id_text(id: StreamId) -> Bytes {
    Bytes::from(id.to_string())
}

/// A key in the same cluster slot as `key`, private to df2redis, for building a big value
/// before renaming it over `key`. `None` when no such name can be formed (a key without a
/// hash tag that contains `}`), in which case the value is built in place.
pub fn temp_key(key: &[u8], flow: usize, id: u64) -> Option<Bytes> {
    let tag: &[u8] = match hash_tag(key) {
        Some(t) => t,
        None if key.contains(&b'}') => return None,
        None => key,
    };
    let mut k = Vec::with_capacity(tag.len() + 40);
    k.push(b'{');
    k.extend_from_slice(tag);
    k.extend_from_slice(format!("}}:df2redis:tmp:{flow}:{id}").as_bytes());
    Some(Bytes::from(k))
}

/// The Redis Cluster hash tag of `key` (non-empty text between the first `{` and the next `}`).
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = key.get(open + 1..)?;
    let close = rest.iter().position(|&b| b == b'}')?;
    if close == 0 {
        None
    } else {
        rest.get(..close)
    }
}

/// Commands that add one chunk of a value to `key` (which must hold the earlier chunks, or
/// not exist for the first). Chunks with no Redis form (JSON, filters, modules) and member TTLs
/// are the caller's business: this returns `None` for them.
/// `now_ms` drops hash fields / set members whose TTL has passed; `field_ttl` says whether
/// `HPEXPIREAT` may be used for the remaining hash field TTLs (else they are dropped).
pub fn chunk_commands(key: &Bytes, chunk: &Chunk, now_ms: u64, field_ttl: bool) -> Option<Vec<Args>> {
    let k = || key.clone();
    let live = |t: &Option<i64>| t.is_none_or(|s| s.saturating_mul(1000) > now_ms as i64);
    let mut out = Vec::new();
    match chunk {
        Chunk::Str(b) => out.push(vec![Bytes::from_static(b"APPEND"), k(), b.clone()]),
        Chunk::List(items) if !items.is_empty() => {
            let mut c = vec![Bytes::from_static(b"RPUSH"), k()];
            c.extend(items.iter().cloned());
            out.push(c);
        }
        Chunk::Set(items) if !items.is_empty() => {
            let mut c = vec![Bytes::from_static(b"SADD"), k()];
            c.extend(items.iter().cloned());
            out.push(c);
        }
        Chunk::SetWithTtl(items) => {
            let mut c = vec![Bytes::from_static(b"SADD"), k()];
            c.extend(items.iter().filter(|(_, t)| live(t)).map(|(m, _)| m.clone()));
            if c.len() > 2 {
                out.push(c);
            }
        }
        Chunk::Hash(pairs) if !pairs.is_empty() => {
            let mut c = vec![Bytes::from_static(b"HSET"), k()];
            for (f, v) in pairs {
                c.push(f.clone());
                c.push(v.clone());
            }
            out.push(c);
        }
        Chunk::HashWithTtl(triples) => {
            let mut c = vec![Bytes::from_static(b"HSET"), k()];
            let mut ttls: Vec<(i64, Bytes)> = Vec::new();
            for (f, v, t) in triples.iter().filter(|(_, _, t)| live(t)) {
                c.push(f.clone());
                c.push(v.clone());
                if let (Some(s), true) = (t, field_ttl) {
                    ttls.push((*s, f.clone()));
                }
            }
            if c.len() > 2 {
                out.push(c);
            }
            ttls.sort_by_key(|(s, _)| *s);
            for group in ttls.chunk_by(|a, b| a.0 == b.0) {
                let ms = group[0].0.saturating_mul(1000);
                let mut e = vec![Bytes::from_static(b"HPEXPIREAT"), k(), Bytes::from(ms.to_string())];
                e.push(Bytes::from_static(b"FIELDS"));
                e.push(Bytes::from(group.len().to_string()));
                e.extend(group.iter().map(|(_, f)| f.clone()));
                out.push(e);
            }
        }
        Chunk::Zset(pairs) if !pairs.is_empty() => {
            let mut c = vec![Bytes::from_static(b"ZADD"), k()];
            for (m, s) in pairs {
                c.push(fmt_score(*s));
                c.push(m.clone());
            }
            out.push(c);
        }
        Chunk::StreamEntries(entries) => out.extend(entries.iter().map(|e| xadd(key, e))),
        Chunk::StreamMeta(meta) => out.push(xsetid(key, meta)),
        Chunk::StreamGroup(g) => out.extend(group_commands(key, g)),
        Chunk::List(_) | Chunk::Set(_) | Chunk::Hash(_) | Chunk::Zset(_) => {}
        Chunk::Json(_) | Chunk::Sbf(_) | Chunk::Cms(_) | Chunk::TopK(_) | Chunk::Cuckoo(_) | Chunk::Module(_) => {
            return None
        }
    }
    Some(out)
}

/// `XADD key <id> f v …`.
pub fn xadd(key: &Bytes, e: &StreamEntry) -> Args {
    let mut c = vec![Bytes::from_static(b"XADD"), key.clone(), id_text(e.id)];
    for (f, v) in &e.fields {
        c.push(f.clone());
        c.push(v.clone());
    }
    c
}

/// The command that creates an empty stream at `key` whose last id is `meta.last_id`
/// (needed when a stream has no live entry): XADD of a placeholder trimmed away at once.
pub fn empty_stream(key: &Bytes, meta: &StreamMeta) -> Args {
    let id = if meta.last_id == StreamId::default() { StreamId { ms: 0, seq: 1 } } else { meta.last_id };
    vec![
        Bytes::from_static(b"XADD"),
        key.clone(),
        Bytes::from_static(b"MAXLEN"),
        Bytes::from_static(b"0"),
        id_text(id),
        Bytes::from_static(b"_"),
        Bytes::from_static(b"_"),
    ]
}

/// `XSETID key last [ENTRIESADDED n MAXDELETEDID id]`.
pub fn xsetid(key: &Bytes, meta: &StreamMeta) -> Args {
    let mut c = vec![Bytes::from_static(b"XSETID"), key.clone(), id_text(meta.last_id)];
    if let Some(v2) = meta.v2 {
        c.push(Bytes::from_static(b"ENTRIESADDED"));
        c.push(Bytes::from(v2.entries_added.to_string()));
        c.push(Bytes::from_static(b"MAXDELETEDID"));
        c.push(id_text(v2.max_deleted_id));
    }
    c
}

/// A consumer group: XGROUP CREATE, the consumers, and their pending entries (XCLAIM … FORCE).
pub fn group_commands(key: &Bytes, g: &StreamGroup) -> Vec<Args> {
    let mut out = Vec::new();
    let mut create = vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"CREATE"),
        key.clone(),
        g.name.clone(),
        id_text(g.last_delivered),
    ];
    if let Some(n) = g.entries_read {
        create.push(Bytes::from_static(b"ENTRIESREAD"));
        create.push(Bytes::from(n.to_string()));
    }
    out.push(create);
    for c in &g.consumers {
        out.push(vec![
            Bytes::from_static(b"XGROUP"),
            Bytes::from_static(b"CREATECONSUMER"),
            key.clone(),
            g.name.clone(),
            c.name.clone(),
        ]);
        for id in &c.pending {
            let pe = g.pel.iter().find(|p| p.id == *id);
            let mut x = vec![
                Bytes::from_static(b"XCLAIM"),
                key.clone(),
                g.name.clone(),
                c.name.clone(),
                Bytes::from_static(b"0"),
                id_text(*id),
            ];
            if let Some(pe) = pe {
                x.push(Bytes::from_static(b"TIME"));
                x.push(Bytes::from(pe.delivery_time_ms.to_string()));
                x.push(Bytes::from_static(b"RETRYCOUNT"));
                x.push(Bytes::from(pe.delivery_count.to_string()));
            }
            x.push(Bytes::from_static(b"FORCE"));
            x.push(Bytes::from_static(b"JUSTID"));
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[Bytes]) -> Vec<String> {
        v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn scores_are_short_and_exact() {
        assert_eq!(fmt_score(1.0), "1");
        assert_eq!(fmt_score(2.5), "2.5");
        assert_eq!(fmt_score(-1e-300), "-1e-300");
        assert_eq!(fmt_score(f64::INFINITY), "inf");
        assert_eq!(fmt_score(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_score(std::f64::consts::PI), "3.141592653589793");
        assert_eq!(fmt_score(1e22), "1e22");
    }

    proptest! {
        #[test]
        fn score_round_trips_bit_exact(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(!f.is_nan());
            let t = fmt_score(f);
            let back: f64 = std::str::from_utf8(&t).unwrap().parse().unwrap();
            prop_assert_eq!(back.to_bits(), f.to_bits());
        }
    }

    #[test]
    fn temp_keys_share_the_slot() {
        assert_eq!(temp_key(b"user:1", 0, 7).unwrap(), "{user:1}:df2redis:tmp:0:7");
        assert_eq!(temp_key(b"a{tag}b", 1, 2).unwrap(), "{tag}:df2redis:tmp:1:2");
        // "{}" is not a tag and the key contains '}': no same-slot name exists.
        assert!(temp_key(b"a{}b", 1, 2).is_none());
        assert!(temp_key(b"x}y", 0, 1).is_none());
        assert_eq!(hash_tag(b"{a}{b}"), Some(&b"a"[..]));
        assert_eq!(hash_tag(b"no"), None);
    }

    #[test]
    fn temp_key_hashes_like_key() {
        let crc = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
        let slot = |k: &[u8]| crc.checksum(hash_tag(k).unwrap_or(k)) % 16384;
        for k in [&b"plain"[..], b"a{tag}b", b"{x", b"x{", b"{a}}"] {
            let t = temp_key(k, 3, 9).unwrap();
            assert_eq!(slot(&t), slot(k), "{}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn chunk_to_commands() {
        let k = Bytes::from_static(b"k");
        let c = chunk_commands(&k, &Chunk::Zset(vec![(Bytes::from_static(b"m"), 0.5)]), 0, false).unwrap();
        assert_eq!(s(&c[0]), ["ZADD", "k", "0.5", "m"]);
        let now = 1_000_000_000_000u64;
        let live = Some(2_000_000_000i64);
        let dead = Some(900_000_000i64);
        let ch = Chunk::HashWithTtl(vec![
            (Bytes::from_static(b"a"), Bytes::from_static(b"1"), live),
            (Bytes::from_static(b"b"), Bytes::from_static(b"2"), dead),
            (Bytes::from_static(b"c"), Bytes::from_static(b"3"), None),
        ]);
        let c = chunk_commands(&k, &ch, now, true).unwrap();
        assert_eq!(s(&c[0]), ["HSET", "k", "a", "1", "c", "3"]);
        assert_eq!(s(&c[1]), ["HPEXPIREAT", "k", "2000000000000", "FIELDS", "1", "a"]);
        let c = chunk_commands(&k, &ch, now, false).unwrap();
        assert_eq!(c.len(), 1);
        let st = Chunk::SetWithTtl(vec![(Bytes::from_static(b"x"), dead)]);
        assert!(chunk_commands(&k, &st, now, false).unwrap().is_empty());
        assert!(chunk_commands(&k, &Chunk::Json(Bytes::new()), 0, false).is_none());
    }
}
