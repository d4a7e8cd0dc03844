//! Round-trip, feed-pattern, limit and corruption tests of the value decoder and encoders.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::super::assemble::ValueBuilder;
use super::super::event::{Chunk, ValueType};
use super::super::model::*;
use super::super::{ErrorKind, Limits, Read};
use super::num::TTL_BASE;
use super::{choose_type, decode_chunks, encode_value, Dialect, ValueDecoder};

/// How the encoded bytes are handed to the decoder.
#[derive(Debug, Clone)]
pub(crate) enum Feed {
    Whole,
    Bytewise,
    Pieces(Vec<usize>),
}

/// Runs a decoder over `bytes` fed as `feed`; checks the `Need` contract on the way.
pub(crate) fn run(ty: ValueType, bytes: &[u8], limits: Limits, feed: &Feed) -> Result<Vec<Chunk>, ErrorKind> {
    let mut dec = ValueDecoder::new(ty, limits);
    let mut input = BytesMut::new();
    let mut pos = 0usize;
    let mut piece = 0usize;
    if let Feed::Whole = feed {
        input.extend_from_slice(bytes);
        pos = bytes.len();
    }
    let mut out = Vec::new();
    loop {
        match dec.next(&mut input)? {
            Read::Done(Some(c)) => out.push(c),
            Read::Done(None) => break,
            Read::Need(n) => {
                assert!(n > input.len(), "Need({n}) with {} bytes available", input.len());
                if pos >= bytes.len() {
                    return Err(ErrorKind::Truncated("test input"));
                }
                let take = match feed {
                    Feed::Whole => unreachable!("whole input cannot need more"),
                    Feed::Bytewise => 1,
                    Feed::Pieces(p) => {
                        piece += 1;
                        p.get(piece % p.len().max(1)).copied().unwrap_or(1).max(1)
                    }
                };
                let end = (pos + take).min(bytes.len());
                input.extend_from_slice(&bytes[pos..end]);
                pos = end;
            }
        }
    }
    let left = input.len() + (bytes.len() - pos);
    if left > 0 {
        return Err(ErrorKind::Trailing(left as u64));
    }
    Ok(out)
}

pub(crate) fn build(ty: ValueType, chunks: &[Chunk]) -> Value {
    let mut b = ValueBuilder::new(ty);
    for c in chunks {
        b.push(c.clone()).unwrap();
    }
    b.finish().unwrap()
}

fn bytes_strategy() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..16),
        2 => any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        2 => (-20i64..300).prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 60..300),
        1 => Just(b"007".to_vec()),
    ]
    .prop_map(Bytes::from)
}

fn score_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("no NaN", |x| !x.is_nan()),
        (-1000i64..1000).prop_map(|v| v as f64),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(2.5),
        Just(-1e-300),
        Just(-0.0),
    ]
}

fn ttl_strategy() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        (0i64..1 << 40).prop_map(|d| Some(TTL_BASE + d)),
        (0i64..100).prop_map(|d| Some(TTL_BASE - 2 - d))
    ]
}

fn id_strategy() -> impl Strategy<Value = StreamId> {
    (0u64..50, 0u64..4).prop_map(|(ms, seq)| StreamId { ms: ms * 1000, seq })
}

fn stream_strategy(version: u8) -> impl Strategy<Value = Value> {
    let field = prop_oneof![Just(Bytes::from("a")), Just(Bytes::from("b")), Just(Bytes::from("12")), bytes_strategy()];
    let entries = proptest::collection::btree_map(
        id_strategy(),
        proptest::collection::vec((field, bytes_strategy()), 1..4),
        0..30,
    );
    let consumer = (bytes_strategy(), any::<u64>(), any::<u64>(), proptest::collection::vec(id_strategy(), 0..3));
    let group = (
        bytes_strategy(),
        id_strategy(),
        any::<u64>(),
        proptest::collection::vec((id_strategy(), any::<u64>(), any::<u64>()), 0..4),
        proptest::collection::vec(consumer, 0..3),
    );
    (entries, id_strategy(), any::<u64>(), proptest::collection::vec(group, 0..3)).prop_map(
        move |(entries, extra, added, groups)| {
            let entries: Vec<StreamEntry> =
                entries.into_iter().map(|(id, fields)| StreamEntry { id, fields }).collect();
            let last = entries.last().map(|e| e.id).unwrap_or(extra);
            let meta = StreamMeta {
                length: entries.len() as u64,
                last_id: last,
                v2: (version >= 2).then(|| StreamMetaV2 {
                    first_id: entries.first().map(|e| e.id).unwrap_or_default(),
                    max_deleted_id: extra,
                    entries_added: added,
                }),
            };
            let groups = groups
                .into_iter()
                .map(|(name, last_delivered, read, pel, consumers)| StreamGroup {
                    name,
                    last_delivered,
                    entries_read: (version >= 2).then_some(read),
                    pel: pel
                        .into_iter()
                        .map(|(id, t, c)| PendingEntry { id, delivery_time_ms: t, delivery_count: c })
                        .collect(),
                    consumers: consumers
                        .into_iter()
                        .map(|(name, seen, active, pending)| Consumer {
                            name,
                            seen_time_ms: seen,
                            active_time_ms: (version >= 3).then_some(active),
                            pending,
                        })
                        .collect(),
                })
                .collect();
            Value::Stream(Box::new(Stream { entries, meta, groups }))
        },
    )
}

fn module_strategy() -> impl Strategy<Value = Value> {
    let item = prop_oneof![
        any::<i64>().prop_map(ModuleItem::Sint),
        any::<u64>().prop_map(ModuleItem::Uint),
        (-1e6f32..1e6).prop_map(ModuleItem::Float),
        (-1e300f64..1e300).prop_map(ModuleItem::Double),
        bytes_strategy().prop_map(ModuleItem::Str),
    ];
    ("X[A-Za-z0-9_-]{8}", 0u64..1024, proptest::collection::vec(item, 0..6)).prop_map(|(name, encver, items)| {
        let module_id = super::module_id(&name, encver).unwrap();
        Value::Module(Box::new(ModuleValue { module_id, name, encver, items }))
    })
}

fn df_strategy() -> impl Strategy<Value = (Value, ValueType)> {
    let filter_bits = proptest::collection::vec(any::<u8>(), 1..40).prop_map(Bytes::from);
    let sbf = (
        any::<bool>(),
        -1e3f64..1e3,
        0.0f64..1.0,
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec((0u64..20, filter_bits.clone()), 0..3),
    )
        .prop_map(|(chunked, g, p, a, b, c, f)| {
            let filters = f.into_iter().map(|(hash_count, bits)| SbfFilter { hash_count, bits }).collect();
            let v = Sbf { grow_factor: g, fp_prob: p, prev_size: a, current_size: b, max_capacity: c, filters };
            (Value::Sbf(Box::new(v)), if chunked { ValueType::Sbf2 } else { ValueType::Sbf })
        });
    let cms = (0u64..6, 0u64..6, any::<u64>(), any::<i64>()).prop_map(|(w, d, t, seed)| {
        let counters = (0..w * d).map(|i| seed.wrapping_mul(i as i64 + 1)).collect();
        (Value::Cms(Box::new(Cms { width: w, depth: d, total_count: t, counters })), ValueType::Cms)
    });
    let topk =
        (1u64..10, 0u64..5, 0u64..5, 0.0f64..1.0, proptest::collection::vec((bytes_strategy(), any::<u64>()), 0..4))
            .prop_map(|(k, w, d, decay, heap)| {
                let counters = Bytes::from((0..w * d * 4).map(|i| i as u8).collect::<Vec<u8>>());
                (Value::TopK(Box::new(TopK { k, width: w, depth: d, decay, heap, counters })), ValueType::TopK)
            });
    let cuckoo = (proptest::collection::vec(any::<u64>(), 6), proptest::collection::vec(filter_bits, 0..3)).prop_map(
        |(n, filters)| {
            let c = Cuckoo {
                slots_per_bucket: n[0],
                max_iterations: n[1],
                expansion: n[2],
                num_buckets: n[3],
                num_items: n[4],
                num_deletes: n[5],
                filters,
            };
            (Value::Cuckoo(Box::new(c)), ValueType::Cuckoo)
        },
    );
    prop_oneof![sbf, cms, topk, cuckoo]
}

/// Every encodable (model, type) pair.
pub(crate) fn model_strategy() -> impl Strategy<Value = (Value, ValueType)> {
    use ValueType as T;
    let list = proptest::collection::vec(bytes_strategy(), 0..40);
    let set = proptest::collection::btree_set(bytes_strategy(), 0..40).prop_map(|s| s.into_iter().collect::<Vec<_>>());
    let ints = proptest::collection::btree_set(any::<i64>(), 0..40)
        .prop_map(|s| s.into_iter().map(|v| Bytes::from(v.to_string())).collect::<Vec<_>>());
    let hash = proptest::collection::btree_map(bytes_strategy(), bytes_strategy(), 0..30)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    let zset = proptest::collection::btree_map(bytes_strategy(), score_strategy(), 0..30)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|s| (Value::String(Bytes::from(s)), T::String)),
        bytes_strategy().prop_map(|s| (Value::String(s), T::String)),
        (list, prop_oneof![Just(T::List), Just(T::ListZiplist), Just(T::ListQuicklist), Just(T::ListQuicklist2)])
            .prop_map(|(v, t)| (Value::List(v), t)),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..9000).prop_map(Bytes::from), 1..4)
            .prop_map(|v| (Value::List(v), T::ListQuicklist2)),
        (set, prop_oneof![Just(T::Set), Just(T::SetListpack)]).prop_map(|(v, t)| (Value::Set(v), t)),
        ints.prop_map(|v| (Value::Set(v), T::SetIntset)),
        (hash, prop_oneof![Just(T::Hash), Just(T::HashZiplist), Just(T::HashListpack)])
            .prop_map(|(v, t)| (Value::Hash(v), t)),
        (zset, prop_oneof![Just(T::ZsetV1), Just(T::Zset2), Just(T::ZsetZiplist), Just(T::ZsetListpack)])
            .prop_map(|(v, t)| (Value::Zset(v), t)),
        proptest::collection::btree_map(bytes_strategy(), (bytes_strategy(), ttl_strategy()), 0..20).prop_map(|m| (
            Value::HashWithTtl(m.into_iter().map(|(f, (v, t))| (f, v, t)).collect()),
            T::HashWithExpiry
        )),
        proptest::collection::btree_map(bytes_strategy(), ttl_strategy(), 0..20)
            .prop_map(|m| (Value::SetWithTtl(m.into_iter().collect()), T::SetWithExpiry)),
        stream_strategy(1).prop_map(|v| (v, T::StreamListpacks)),
        stream_strategy(2).prop_map(|v| (v, T::StreamListpacks2)),
        stream_strategy(3).prop_map(|v| (v, T::StreamListpacks3)),
        (bytes_strategy(), prop_oneof![Just(T::Json), Just(T::JsonOld), Just(T::Module2)])
            .prop_map(|(t, ty)| (Value::Json(t), ty)),
        module_strategy().prop_map(|v| (v, T::Module2)),
        df_strategy(),
    ]
}

/// Listpack / ziplist zsets are encoded in (score, member) order, as Redis requires.
fn score_ordered(v: &Value, ty: ValueType) -> Value {
    match (v, ty) {
        (Value::Zset(z), ValueType::ZsetListpack | ValueType::ZsetZiplist) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Value::Zset(z)
        }
        _ => v.clone(),
    }
}

fn limits_strategy() -> impl Strategy<Value = Limits> {
    (1usize..12, 1usize..400).prop_map(|(e, b)| Limits { batch_elements: e, batch_bytes: b, ..Limits::default() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(
        (model, ty) in model_strategy(),
        limits in limits_strategy(),
        pieces in proptest::collection::vec(1usize..50, 1..20),
    ) {
        let mut bytes = Vec::new();
        encode_value(&mut bytes, &model, ty).unwrap();
        let whole = run(ty, &bytes, limits, &Feed::Whole).unwrap();
        prop_assert_eq!(&build(ty, &whole), &score_ordered(&model, ty));
        let bytewise = run(ty, &bytes, limits, &Feed::Bytewise).unwrap();
        prop_assert_eq!(&whole, &bytewise);
        let split = run(ty, &bytes, limits, &Feed::Pieces(pieces)).unwrap();
        prop_assert_eq!(&whole, &split);
        // Chunks respect the batch limits (one element may exceed batch_bytes on its own).
        for c in &whole {
            let n = match c {
                Chunk::List(v) | Chunk::Set(v) => v.len(),
                Chunk::Hash(v) => v.len(),
                Chunk::Zset(v) => v.len(),
                Chunk::HashWithTtl(v) => v.len(),
                Chunk::SetWithTtl(v) => v.len(),
                Chunk::StreamEntries(v) => v.len(),
                Chunk::Str(s) if bytes[0] < 0xc0 => {
                    prop_assert!(s.len() <= limits.batch_bytes);
                    0
                }
                _ => 0,
            };
            prop_assert!(n <= limits.batch_elements);
        }
        // Truncations are reported as needing more, never as a value.
        if bytes.len() > 1 {
            let cut = &bytes[..bytes.len() - 1];
            prop_assert!(decode_chunks(ty, cut, &limits).is_err());
        }
    }

    #[test]
    fn dialects_choose_encodable_types((model, _) in model_strategy(), major in 0u32..2, minor in 0u32..45, r in 9u16..12) {
        for d in [Dialect::dragonfly(major, minor), Dialect::redis(r)] {
            if let Ok(ty) = choose_type(&model, &d) {
                let mut bytes = Vec::new();
                encode_value(&mut bytes, &model, ty).unwrap();
                let chunks = decode_chunks(ty, &bytes, &Limits::default()).unwrap();
                let back = build(ty, &chunks);
                // Version-specific stream metadata is filled in or dropped by the encoder.
                let sorted = |v: &Value| match v {
                    Value::Set(s) => { let mut s = s.clone(); s.sort(); Value::Set(s) }
                    Value::Zset(_) => score_ordered(v, ValueType::ZsetListpack),
                    Value::Stream(s) => {
                        let mut s = s.clone();
                        s.meta.v2 = None;
                        for g in &mut s.groups {
                            g.entries_read = None;
                            g.consumers.iter_mut().for_each(|c| c.active_time_ms = None);
                        }
                        Value::Stream(s)
                    }
                    other => other.clone(),
                };
                match (&model, ty) {
                    // Intsets come back in numeric order.
                    (Value::Set(a), ValueType::SetIntset) => {
                        let mut a: Vec<i64> = a.iter().map(|m| std::str::from_utf8(m).unwrap().parse().unwrap()).collect();
                        a.sort_unstable();
                        let want: Vec<Bytes> = a.iter().map(|v| Bytes::from(v.to_string())).collect();
                        prop_assert_eq!(back, Value::Set(want));
                    }
                    _ => prop_assert_eq!(sorted(&back), sorted(&model)),
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(code in prop_oneof![0u8..=21, 30u8..=37], data in proptest::collection::vec(any::<u8>(), 0..200), lim in limits_strategy()) {
        if let Some(ty) = ValueType::from_code(code, 11) {
            let _ = run(ty, &data, lim, &Feed::Whole);
            let _ = run(ty, &data, lim, &Feed::Bytewise);
        }
        if let Some(ty) = ValueType::from_code(code, 9) {
            let _ = run(ty, &data, lim, &Feed::Whole);
        }
    }

    #[test]
    fn mutated_encodings_never_panic((model, ty) in model_strategy(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = Vec::new();
        encode_value(&mut bytes, &model, ty).unwrap();
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let _ = run(ty, &bytes, Limits::default(), &Feed::Whole);
    }
}

fn tiny() -> Limits {
    Limits { max_string: 1000, max_elements: 100, max_decompressed: 1000, ..Limits::default() }
}

#[test]
fn huge_declared_sizes_fail_fast() {
    use ValueType as T;
    let huge_count = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    for ty in [T::List, T::Set, T::Hash, T::Zset2, T::ZsetV1, T::HashWithExpiry, T::SetWithExpiry, T::ListQuicklist2] {
        let r = run(ty, &huge_count, Limits::default(), &Feed::Whole);
        assert!(matches!(r, Err(ErrorKind::Limit { .. })), "{ty:?}: {r:?}");
    }
    let big_string = [0x80, 0x00, 0x10, 0x00, 0x00];
    for ty in [T::String, T::Json, T::HashListpack, T::SetIntset] {
        let r = run(ty, &big_string, tiny(), &Feed::Whole);
        assert!(matches!(r, Err(ErrorKind::Limit { .. })), "{ty:?}: {r:?}");
    }
    // Count over the element limit even though it would fit in memory.
    assert!(matches!(run(T::Set, &[0x40, 0x65], tiny(), &Feed::Whole), Err(ErrorKind::Limit { .. })));
    // Stream: node count, then group PEL sizes.
    assert!(matches!(
        run(T::StreamListpacks3, &huge_count, Limits::default(), &Feed::Whole),
        Err(ErrorKind::Limit { .. })
    ));
    // CMS with width × depth over the limit.
    let cms = [0x80, 0, 1, 0, 0, 0x80, 0, 1, 0, 0, 0];
    assert!(matches!(run(T::Cms, &cms, tiny(), &Feed::Whole), Err(ErrorKind::Limit { .. })));
    // SBF2 filter of a declared 4 GiB.
    let sbf = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0x80, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(run(T::Sbf2, &sbf, tiny(), &Feed::Whole), Err(ErrorKind::Limit { .. })));
    // Many elements inside a listpack over max_elements.
    let members: Vec<Bytes> = (0..150).map(|i| Bytes::from(format!("m{i}"))).collect();
    let mut bytes = Vec::new();
    encode_value(&mut bytes, &Value::Set(members), T::SetListpack).unwrap();
    let lim = Limits { max_elements: 100, ..Limits::default() };
    assert!(matches!(run(T::SetListpack, &bytes, lim, &Feed::Whole), Err(ErrorKind::Limit { .. })));
}

#[test]
fn corrupt_containers_are_errors() {
    use ValueType as T;
    let hash = Value::Hash(vec![(Bytes::from("f"), Bytes::from("v")), (Bytes::from("g"), Bytes::from("w"))]);
    let mut good = Vec::new();
    encode_value(&mut good, &hash, T::HashListpack).unwrap();
    assert!(run(T::HashListpack, &good, Limits::default(), &Feed::Whole).is_ok());
    // good = len byte + listpack.
    let corrupt = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        run(T::HashListpack, &b, Limits::default(), &Feed::Whole)
    };
    assert!(matches!(corrupt(&|b| b[5] = 3), Err(ErrorKind::Corrupt { .. })), "wrong count");
    assert!(matches!(corrupt(&|b| *b.last_mut().unwrap() = 0), Err(ErrorKind::Corrupt { .. })), "bad terminator");
    assert!(matches!(corrupt(&|b| b[9] = 9), Err(ErrorKind::Corrupt { .. })), "bad backlen");
    // Odd number of elements in a hash listpack.
    let mut odd = Vec::new();
    encode_value(&mut odd, &Value::List(vec![Bytes::from("a")]), T::ListZiplist).unwrap();
    let lp = super::super::listpack::encode([&b"f"[..], b"v", b"g"]).unwrap();
    let mut b = Vec::new();
    super::super::string::write_raw(&mut b, &lp);
    assert!(matches!(run(T::HashListpack, &b, Limits::default(), &Feed::Whole), Err(ErrorKind::Corrupt { .. })));
    // Quicklist container 3.
    assert!(run(T::ListQuicklist2, &[1, 3, 0], Limits::default(), &Feed::Whole).is_err());
    // Stream node key of the wrong size.
    assert!(run(T::StreamListpacks3, &[1, 1, 0], Limits::default(), &Feed::Whole).is_err());
    // Module type 6 cannot be parsed.
    assert!(run(T::ModuleV1, &[0], Limits::default(), &Feed::Whole).is_err());
    // Unknown module opcode.
    assert!(run(T::Module2, &[1, 9], Limits::default(), &Feed::Whole).is_err());
    // Truncated listpack inside a zset: everything there but the terminator.
    let mut z = Vec::new();
    encode_value(&mut z, &Value::Zset(vec![(Bytes::from("a"), 1.5)]), T::ZsetListpack).unwrap();
    z[0] -= 1;
    z.pop();
    assert!(run(T::ZsetListpack, &z, Limits::default(), &Feed::Whole).is_err());
}

#[test]
fn stream_lp_count_and_deleted_entries() {
    use super::super::listpack::Writer;
    // Node with two entries: one deleted, one live with its own fields.
    let mut w = Writer::new();
    for v in [1, 1, 1] {
        w.push_int(v); // count=1, deleted=1, 1 master field
    }
    w.push(b"f");
    w.push_int(0);
    // Deleted entry (flags 1|2): same fields, value "x", lp_count 4.
    for v in [3, 0, 0] {
        w.push_int(v);
    }
    w.push(b"x");
    w.push_int(4);
    // Live entry without SAMEFIELDS: 1 field g=y, lp_count 6.
    for v in [0, 0, 1, 1] {
        w.push_int(v);
    }
    w.push(b"g");
    w.push(b"y");
    w.push_int(6);
    let lp = w.finish().unwrap();
    let mut body = vec![1];
    let mut key = vec![0u8; 16];
    key[7] = 5;
    super::super::string::write_raw(&mut body, &key);
    super::super::string::write_raw(&mut body, &lp);
    body.extend_from_slice(&[1, 5, 1, 0]);
    let chunks = run(ValueType::StreamListpacks, &body, Limits::default(), &Feed::Whole).unwrap();
    let Value::Stream(s) = build(ValueType::StreamListpacks, &chunks) else { panic!("not a stream") };
    assert_eq!(
        s.entries,
        vec![StreamEntry { id: StreamId { ms: 5, seq: 1 }, fields: vec![(Bytes::from("g"), Bytes::from("y"))] }]
    );
    assert_eq!(s.meta.last_id, StreamId { ms: 5, seq: 1 });
    // A wrong lp_count is corruption.
    let mut bad = body.clone();
    let pos = bad.len() - 4 - 3;
    assert_eq!(bad[pos], 6);
    bad[pos] = 7;
    assert!(matches!(
        run(ValueType::StreamListpacks, &bad, Limits::default(), &Feed::Whole),
        Err(ErrorKind::Corrupt { .. })
    ));
}

#[test]
fn string_chunking_is_by_batch_bytes() {
    let lim = Limits { batch_bytes: 4, ..Limits::default() };
    let chunks = run(ValueType::String, b"\x0ahelloworl", lim, &Feed::Whole);
    assert!(chunks.is_err(), "10-byte header with 9 bytes of body is one short");
    let chunks = run(ValueType::String, b"\x0ahelloworld", lim, &Feed::Bytewise).unwrap();
    let pieces: Vec<&[u8]> = chunks.iter().map(|c| if let Chunk::Str(s) = c { &s[..] } else { panic!() }).collect();
    assert_eq!(pieces, [&b"hell"[..], b"owor", b"ld"]);
    let empty = run(ValueType::String, &[0], lim, &Feed::Whole).unwrap();
    assert_eq!(empty, vec![Chunk::Str(Bytes::new())]);
    let int = run(ValueType::String, &[0xc1, 0x39, 0x30], lim, &Feed::Whole).unwrap();
    assert_eq!(int, vec![Chunk::Str(Bytes::from("12345"))]);
}

#[test]
fn spec_9_2_values() {
    use ValueType as T;
    let d = |ty, b: &[u8]| build(ty, &decode_chunks(ty, b, &Limits::default()).unwrap());
    let lst = [1, 2, 0x10, 0x10, 0, 0, 0, 3, 0, 0x81, b'a', 2, 0x81, b'b', 2, 0x81, b'c', 2, 0xff];
    assert_eq!(d(T::ListQuicklist2, &lst), Value::List(vec!["a".into(), "b".into(), "c".into()]));
    let st = [0x0e, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0];
    assert_eq!(d(T::SetIntset, &st), Value::Set(vec!["1".into(), "2".into(), "3".into()]));
    let z = [0x14, 0x14, 0, 0, 0, 4, 0, 0x81, b'a', 2, 1, 1, 0x81, b'b', 2, 0x83, b'2', b'.', b'5', 4, 0xff];
    assert_eq!(d(T::ZsetListpack, &z), Value::Zset(vec![("a".into(), 1.0), ("b".into(), 2.5)]));
    let s = [
        1, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x1d, 0x1d, 0, 0, 0, 0x0a, 0, 1, 1, 0, 1, 1, 1, 0x81,
        b'f', 2, 0, 1, 2, 1, 0, 1, 0, 1, 0x81, b'v', 2, 4, 1, 0xff, 1, 1, 1, 1, 1, 0, 0, 1, 0,
    ];
    let Value::Stream(s) = d(T::StreamListpacks3, &s) else { panic!() };
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].id, StreamId { ms: 1, seq: 1 });
    assert_eq!(s.entries[0].fields, vec![(Bytes::from("f"), Bytes::from("v"))]);
    assert_eq!(s.meta.v2.unwrap().entries_added, 1);
    // Hand-built encodings agree with the encoder byte for byte.
    let mut out = Vec::new();
    encode_value(&mut out, &Value::Stream(s), T::StreamListpacks3).unwrap();
    assert_eq!(
        out[..],
        [
            1, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x1d, 0x1d, 0, 0, 0, 0x0a, 0, 1, 1, 0, 1, 1, 1,
            0x81, b'f', 2, 0, 1, 2, 1, 0, 1, 0, 1, 0x81, b'v', 2, 4, 1, 0xff, 1, 1, 1, 1, 1, 0, 0, 1, 0,
        ]
    );
    let mut out = Vec::new();
    encode_value(&mut out, &Value::Zset(vec![("a".into(), 1.0), ("b".into(), 2.5)]), T::ZsetListpack).unwrap();
    assert_eq!(out, z);
}

#[test]
fn zipmap_hash() {
    // {"foo": "bar", "hello": "world"}, the second value with 2 free bytes after it.
    let mut zm = vec![2, 3];
    zm.extend_from_slice(b"foo");
    zm.extend_from_slice(&[3, 0]);
    zm.extend_from_slice(b"bar");
    zm.push(5);
    zm.extend_from_slice(b"hello");
    zm.extend_from_slice(&[5, 2]);
    zm.extend_from_slice(b"world??");
    zm.push(0xff);
    let mut body = Vec::new();
    super::super::string::write_raw(&mut body, &zm);
    let chunks = run(ValueType::HashZipmap, &body, Limits::default(), &Feed::Bytewise).unwrap();
    assert_eq!(
        build(ValueType::HashZipmap, &chunks),
        Value::Hash(vec![("foo".into(), "bar".into()), ("hello".into(), "world".into())])
    );
    // A wrong pair count, and a key without a value, are corruption.
    let mut bad = body.clone();
    bad[1] = 3;
    assert!(run(ValueType::HashZipmap, &bad, Limits::default(), &Feed::Whole).is_err());
    let mut odd = Vec::new();
    super::super::string::write_raw(&mut odd, &[1, 1, b'k', 0xff]);
    assert!(run(ValueType::HashZipmap, &odd, Limits::default(), &Feed::Whole).is_err());
}

#[test]
fn dragonfly_sketch_layouts() {
    // CMS: width 2, depth 1, total 5, counters 3 and -1 (i64 LE).
    let mut cms = vec![2, 1, 5];
    cms.extend_from_slice(&3i64.to_le_bytes());
    cms.extend_from_slice(&(-1i64).to_le_bytes());
    let want = Value::Cms(Box::new(Cms { width: 2, depth: 1, total_count: 5, counters: vec![3, -1] }));
    assert_eq!(build(ValueType::Cms, &decode_chunks(ValueType::Cms, &cms, &Limits::default()).unwrap()), want);
    let mut out = Vec::new();
    encode_value(&mut out, &want, ValueType::Cms).unwrap();
    assert_eq!(out, cms);
    // TOPK: options 0, k 2, width 1, depth 1, decay 0.9, heap [("a", 7)], counters (4 bytes).
    let mut topk = vec![0, 2, 1, 1];
    topk.extend_from_slice(&0.9f64.to_le_bytes());
    topk.extend_from_slice(&[1, 1, b'a', 7, 4, 9, 0, 0, 0]);
    let want = Value::TopK(Box::new(TopK {
        k: 2,
        width: 1,
        depth: 1,
        decay: 0.9,
        heap: vec![("a".into(), 7)],
        counters: Bytes::from_static(&[9, 0, 0, 0]),
    }));
    assert_eq!(build(ValueType::TopK, &decode_chunks(ValueType::TopK, &topk, &Limits::default()).unwrap()), want);
    let mut out = Vec::new();
    encode_value(&mut out, &want, ValueType::TopK).unwrap();
    assert_eq!(out, topk);
    // A counter array of the wrong size is corruption.
    let mut bad = topk.clone();
    let n = bad.len();
    bad[n - 5] = 3;
    bad.truncate(n - 1);
    assert!(decode_chunks(ValueType::TopK, &bad, &Limits::default()).is_err());
    // Cuckoo: slots 4, iterations 500, expansion 1, buckets 8, items 2, deletes 0, 1 filter of 3 bytes.
    let mut cfb = vec![4, 0x41, 0xf4, 1, 8, 2, 0, 1, 3, 3, 1, 2, 3];
    let Value::Cuckoo(c) =
        build(ValueType::Cuckoo, &decode_chunks(ValueType::Cuckoo, &cfb, &Limits::default()).unwrap())
    else {
        panic!()
    };
    assert_eq!((c.slots_per_bucket, c.max_iterations, c.num_buckets), (4, 500, 8));
    assert_eq!(c.filters, vec![Bytes::from_static(&[1, 2, 3])]);
    // A chunk longer than what is left of the filter is corruption.
    cfb[8] = 4;
    assert!(decode_chunks(ValueType::Cuckoo, &cfb, &Limits::default()).is_err());
}
