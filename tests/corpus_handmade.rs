//! The generator of `corpus/handmade/`: one small file per Dragonfly-only value type, opcode and
//! journal opcode, written with the project's encoders (`RdbWriter`, `JournalWriter`,
//! `encode_value`), each checked against the byte layouts of the protocol spec (sections 5.3,
//! 5.5–5.8, 6.1, 9), written out by hand below from the spec's tables — not from the encoders.
//!
//! `DF2REDIS_REGEN=1 cargo test --test corpus_handmade` rewrites the files; otherwise the test
//! fails unless the committed bytes equal what the generator produces now. After a
//! regeneration, update the SHA-256 list in `corpus/README.md` (`tests/corpus_integrity.rs`).
//! `tests/corpus_handmade_decode.rs` decodes the committed files.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use df2redis::proto::compress;
use df2redis::proto::event::{CommandKind, JournalOp, JournalRecord};
use df2redis::proto::model::{
    Cms, Cuckoo, Sbf, SbfFilter, Stream, StreamEntry, StreamId, StreamMeta, StreamMetaV2, TopK,
};
use df2redis::proto::writer::{entry_bytes, Codec, JournalWriter, RdbWriter};
use df2redis::proto::{crc64, lzf, packed, string, EntryHeader, KeyFlags, Value, ValueType};

/// The eof token of the flow files (the one of spec section 9).
const TOKEN: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

/// `REDIS0009`, AUX `df-ver` = `df-v1.40.1`, SELECTDB 0: the start of every `.rdb` file.
const HEADER: &str = "52 45 44 49 53 30 30 30 39
    fa 06 64 66 2d 76 65 72 0a 64 66 2d 76 31 2e 34 30 2e 31
    fe 00";

/// How a file must look, written from the spec.
enum Layout {
    /// `HEADER`, these bytes, then `FF` + the CRC-64 of everything before it (LE).
    Body(&'static str),
    /// Exactly these bytes.
    Whole(&'static str),
    /// `HEADER`, `opcode packed(len) frame` where the frame starts with `magic` and
    /// decompresses to `records`, then `FF` + CRC.
    Compressed { opcode: u8, magic: &'static [u8], records: &'static str },
    /// `HEADER`, `D2 01 C3 packed(clen) packed(ulen) lzf`, where the LZF data expands to
    /// `record`, then `FF` + CRC.
    LzfJournalBlob { record: &'static str },
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    layout: Layout,
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    assert_eq!(s.len() % 2, 0, "odd hex: {s}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cmd(db: u32, kind: CommandKind, txid: u64, shard_cnt: u64, args: &[&str]) -> JournalRecord {
    JournalRecord { db, op: JournalOp::Command { kind, txid, shard_cnt, args: args.iter().map(|a| b(a)).collect() } }
}

fn header(db: u32, key: &str, value_type: ValueType) -> EntryHeader {
    EntryHeader { db, key: b(key), value_type, expire_ms: None, flags: KeyFlags::default() }
}

/// An `.rdb` file: HEADER, what `body` writes, EOF with the checksum.
fn rdb(body: impl FnOnce(&mut RdbWriter)) -> Vec<u8> {
    let mut w = RdbWriter::new();
    w.header().aux(b"df-ver", b"df-v1.40.1").select_db(0);
    body(&mut w);
    w.eof(true);
    w.into_bytes()
}

/// An `.rdb` file holding one key entry.
fn one_entry(key: &str, ty: ValueType, value: Value) -> Vec<u8> {
    rdb(|w| {
        w.entry(&header(0, key, ty), &value).unwrap();
    })
}

/// The "SET k2 x" journal blob of spec 9.4.
fn set_k2_x() -> JournalRecord {
    cmd(0, CommandKind::Command, 9, 1, &["SET", "k2", "x"])
}

const JOURNAL_BLOB_9_4: &str = "d2 01 10 06 00 0a 09 01 03 06 03 53 45 54 02 6b 32 01 78";

fn sbf(filters: Vec<SbfFilter>) -> Value {
    Value::Sbf(Box::new(Sbf {
        grow_factor: 2.0,
        fp_prob: 0.01,
        prev_size: 0,
        current_size: 3,
        max_capacity: 50,
        filters,
    }))
}

/// Every handmade file, in a fixed order.
fn cases() -> Vec<Case> {
    let eight = Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let four = Bytes::from_static(&[0xaa, 0xbb, 0xcc, 0xdd]);
    let at_2026 = Some(1_767_225_600); // 92 016 000 s after Dragonfly's TTL base 2023-02-01.
    let mut out = vec![
        // 5.5, type 30: rdb_string with the JSON text.
        Case {
            name: "type-30-json.rdb",
            bytes: one_entry("doc", ValueType::Json, Value::Json(b(r#"{"a":[1,2]}"#))),
            layout: Layout::Body("1e 03 64 6f 63  0b 7b 22 61 22 3a 5b 31 2c 32 5d 7d"),
        },
        // Type 20 in a version-9 stream: JSON before v1.15, same layout as 30.
        Case {
            name: "type-20-json-old.rdb",
            bytes: one_entry("old", ValueType::JsonOld, Value::Json(b(r#"{"a":[1,2]}"#))),
            layout: Layout::Body("14 03 6f 6c 64  0b 7b 22 61 22 3a 5b 31 2c 32 5d 7d"),
        },
        // Type 31: count, then (field, value, ttl) with ttl a long long as string: seconds
        // since 2023-02-01 (92016000 = C2 int32), -1 = none (C0 ff).
        Case {
            name: "type-31-hash-with-expiry.rdb",
            bytes: one_entry(
                "hx",
                ValueType::HashWithExpiry,
                Value::HashWithTtl(vec![(b("f1"), b("v1"), at_2026), (b("f2"), b("v2"), None)]),
            ),
            layout: Layout::Body("1f 02 68 78  02  02 66 31 02 76 31 c2 80 0d 7c 05  02 66 32 02 76 32 c0 ff"),
        },
        // Type 32: count, then (member, ttl).
        Case {
            name: "type-32-set-with-expiry.rdb",
            bytes: one_entry(
                "sx",
                ValueType::SetWithExpiry,
                Value::SetWithTtl(vec![(b("m1"), at_2026), (b("m2"), None)]),
            ),
            layout: Layout::Body("20 02 73 78  02  02 6d 31 c2 80 0d 7c 05  02 6d 32 c0 ff"),
        },
        // Type 33: packed 0, double grow, double fp, prev, current, max, num_filters, then
        // per filter hash_count + rdb_string bits.
        Case {
            name: "type-33-sbf.rdb",
            bytes: one_entry("bf", ValueType::Sbf, sbf(vec![SbfFilter { hash_count: 7, bits: eight.clone() }])),
            layout: Layout::Body(
                "21 02 62 66  00  00 00 00 00 00 00 00 40  7b 14 ae 47 e1 7a 84 3f  00 03 32 01
                 07 08 01 02 03 04 05 06 07 08",
            ),
        },
        // Type 34: like 33, each filter hash_count, total_size, then chunks (len + bytes).
        Case {
            name: "type-34-sbf2.rdb",
            bytes: one_entry(
                "b2",
                ValueType::Sbf2,
                sbf(vec![
                    SbfFilter { hash_count: 7, bits: eight.clone() },
                    SbfFilter { hash_count: 9, bits: four.clone() },
                ]),
            ),
            layout: Layout::Body(
                "22 02 62 32  00  00 00 00 00 00 00 00 40  7b 14 ae 47 e1 7a 84 3f  00 03 32 02
                 07 08 08 01 02 03 04 05 06 07 08  09 04 04 aa bb cc dd",
            ),
        },
        // Type 35: width, depth, total_count, width×depth i64 LE counters.
        Case {
            name: "type-35-cms.rdb",
            bytes: one_entry(
                "cms",
                ValueType::Cms,
                Value::Cms(Box::new(Cms { width: 2, depth: 2, total_count: 5, counters: vec![1, 2, -1, 3] })),
            ),
            layout: Layout::Body(
                "23 03 63 6d 73  02 02 05  01 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00
                 ff ff ff ff ff ff ff ff  03 00 00 00 00 00 00 00",
            ),
        },
        // Type 36: packed 0, k, width, depth, double decay, heap_size × (item, count), then the
        // rdb_string of width×depth u32 counters.
        Case {
            name: "type-36-topk.rdb",
            bytes: one_entry(
                "tk",
                ValueType::TopK,
                Value::TopK(Box::new(TopK {
                    k: 2,
                    width: 2,
                    depth: 1,
                    decay: 0.9,
                    heap: vec![(b("a"), 5), (b("b"), 3)],
                    counters: Bytes::from_static(&[1, 0, 0, 0, 2, 0, 0, 0]),
                })),
            ),
            layout: Layout::Body(
                "24 02 74 6b  00 02 02 01  cd cc cc cc cc cc ec 3f  02 01 61 05 01 62 03
                 08 01 00 00 00 02 00 00 00",
            ),
        },
        // Type 37: slots_per_bucket, max_iterations, expansion, num_buckets, num_items,
        // num_deletes, num_filters, then per filter total_size + chunks.
        Case {
            name: "type-37-cuckoo.rdb",
            bytes: one_entry(
                "cf",
                ValueType::Cuckoo,
                Value::Cuckoo(Box::new(Cuckoo {
                    slots_per_bucket: 4,
                    max_iterations: 20,
                    expansion: 1,
                    num_buckets: 2,
                    num_items: 3,
                    num_deletes: 0,
                    filters: vec![eight.clone(), four.clone()],
                })),
            ),
            layout: Layout::Body(
                "25 02 63 66  04 14 01 02 03 00  02  08 08 01 02 03 04 05 06 07 08  04 04 aa bb cc dd",
            ),
        },
        // Type 12 (before v1.31): a ziplist member, score, ... — zlbytes 24, zltail 18, 4
        // entries; "1" as a 4-bit immediate (F2), "2.5" as a string.
        Case {
            name: "type-12-zset-ziplist.rdb",
            bytes: one_entry("zz", ValueType::ZsetZiplist, Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5)])),
            layout: Layout::Body(
                "0c 02 7a 7a  18  18 00 00 00 12 00 00 00 04 00
                 00 01 61  03 f2  02 01 62  03 03 32 2e 35  ff",
            ),
        },
        // Type 13 (before v1.31): a ziplist field, value.
        Case {
            name: "type-13-hash-ziplist.rdb",
            bytes: one_entry("hz", ValueType::HashZiplist, Value::Hash(vec![(b("f"), b("v"))])),
            layout: Layout::Body("0d 02 68 7a  11  11 00 00 00 0d 00 00 00 02 00  00 01 66  03 01 76  ff"),
        },
        // Type 14 (before v1.24): packed node count, then per node rdb_string(ziplist).
        Case {
            name: "type-14-list-quicklist.rdb",
            bytes: one_entry("ql", ValueType::ListQuicklist, Value::List(vec![b("a"), b("b")])),
            layout: Layout::Body("0e 02 71 6c  01  11  11 00 00 00 0d 00 00 00 02 00  00 01 61  03 01 62  ff"),
        },
        // Type 15 (before v1.27): stream v1 — nodes, length, last id, groups (no v2 fields).
        Case {
            name: "type-15-stream-v1.rdb",
            bytes: one_entry("s1", ValueType::StreamListpacks, stream_1_1(false)),
            layout: Layout::Body(
                "0f 02 73 31  01  10 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01
                 1d 1d 00 00 00 0a 00 01 01 00 01 01 01 81 66 02 00 01 02 01 00 01 00 01 81 76 02 04 01 ff
                 01  01 01  00",
            ),
        },
        // 5.3, 200: FULLSYNC_END + 8 zero bytes.
        Case {
            name: "op-200-fullsync-end.rdb",
            bytes: rdb(|w| {
                w.full_sync_end();
            }),
            layout: Layout::Body("c8 00 00 00 00 00 00 00 00"),
        },
        // 211: JOURNAL_OFFSET + u64 LE.
        Case {
            name: "op-211-journal-offset.rdb",
            bytes: rdb(|w| {
                w.journal_offset(42);
            }),
            layout: Layout::Body("d3 2a 00 00 00 00 00 00 00"),
        },
        // 5.8 / 9.4: D2 packed(1) rdb_string(record).
        Case {
            name: "op-210-journal-blob.rdb",
            bytes: rdb(|w| {
                w.journal_blob(&set_k2_x(), false);
            }),
            layout: Layout::Body(JOURNAL_BLOB_9_4),
        },
    ];
    out.extend(more_cases());
    out
}

/// The stream `s` of spec 9.2: one entry 1-1 f=v (v2 fields only for types 19/21).
fn stream_1_1(v2: bool) -> Value {
    let id = StreamId { ms: 1, seq: 1 };
    Value::Stream(Box::new(Stream {
        entries: vec![StreamEntry { id, fields: vec![(b("f"), b("v"))] }],
        meta: StreamMeta {
            length: 1,
            last_id: id,
            v2: v2.then_some(StreamMetaV2 { first_id: id, max_deleted_id: StreamId::default(), entries_added: 1 }),
        },
        groups: vec![],
    }))
}

/// The record of an LZF-compressed journal blob: a SET whose key and value repeat.
const LZF_RECORD: &str = "06 00 0a 00 01 03 3c 03 53 45 54
    1c 6b 65 79 3a 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61
    1d 76 61 6c 75 65 3a 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61";

/// Records inside the compressed blocks: "a" = "x", the 9.4 journal blob, "b" = "y".
const BLOCK_RECORDS: &str = "00 01 61 01 78  d2 01 10 06 00 0a 09 01 03 06 03 53 45 54 02 6b 32 01 78  00 01 62 01 79";

fn more_cases() -> Vec<Case> {
    let block_records = || {
        let mut w = RdbWriter::new();
        w.entry(&header(0, "a", ValueType::String), &Value::String(b("x"))).unwrap();
        w.journal_blob(&set_k2_x(), false);
        w.entry(&header(0, "b", ValueType::String), &Value::String(b("y"))).unwrap();
        w.into_bytes()
    };
    vec![
        // `--compression_mode=1`: the payload string of the journal blob is LZF (C3).
        Case {
            name: "op-210-journal-blob-lzf.rdb",
            bytes: rdb(|w| {
                let key = format!("key:{}", "a".repeat(24));
                let value = format!("value:{}", "a".repeat(23));
                w.journal_blob(&cmd(0, CommandKind::Command, 0, 1, &["SET", &key, &value]), true);
            }),
            layout: Layout::LzfJournalBlob { record: LZF_RECORD },
        },
        // 5.6: C9 packed(len) zstd frame (magic 28 B5 2F FD) of complete records.
        Case {
            name: "op-201-zstd-block.rdb",
            bytes: rdb(|w| {
                w.compressed(Codec::Zstd, &block_records());
            }),
            layout: Layout::Compressed { opcode: 201, magic: &[0x28, 0xb5, 0x2f, 0xfd], records: BLOCK_RECORDS },
        },
        // CA packed(len) LZ4 frame (magic 04 22 4D 18).
        Case {
            name: "op-202-lz4-block.rdb",
            bytes: rdb(|w| {
                w.compressed(Codec::Lz4, &block_records());
            }),
            layout: Layout::Compressed { opcode: 202, magic: &[0x04, 0x22, 0x4d, 0x18], records: BLOCK_RECORDS },
        },
        // 5.4: DC u32 flags [u32 mc_flags]: sticky only; memcache flags only; expiry + both.
        Case {
            name: "op-220-df-mask.rdb",
            bytes: rdb(|w| {
                let flagged = |key: &str, expire_ms, sticky, mc_flags| EntryHeader {
                    expire_ms,
                    flags: KeyFlags { sticky, mc_flags },
                    ..header(0, key, ValueType::String)
                };
                w.entry(&flagged("s", None, true, None), &Value::String(b("x"))).unwrap();
                w.entry(&flagged("m", None, false, Some(0xdead_beef)), &Value::String(b("y"))).unwrap();
                w.entry(&flagged("e", Some(1_767_225_600_000), true, Some(7)), &Value::String(b("z"))).unwrap();
            }),
            layout: Layout::Body(
                "dc 01 00 00 00  00 01 73 01 78
                 dc 02 00 00 00 ef be ad de  00 01 6d 01 79
                 fc 00 a8 da 76 9b 01 00 00  dc 03 00 00 00 07 00 00 00  00 01 65 01 7a",
            ),
        },
        // 222 (v1.39+ layout, with the entry point): index key, enterpoint, element count, then
        // per element u32 id, u64 global id, u32 level, (level+1) × (u32 links, links × u32).
        // Skipped, and the entry after it decodes.
        Case {
            name: "op-222-vector-index.rdb",
            bytes: rdb(|w| {
                let mut r = vec![222];
                string::write(&mut r, b"idx:vec");
                packed::write(&mut r, 0);
                packed::write(&mut r, 2);
                for (id, level, links) in [(1u32, 0u32, vec![vec![2u32]]), (2, 1, vec![vec![1], vec![]])] {
                    r.extend_from_slice(&id.to_le_bytes());
                    r.extend_from_slice(&u64::from(id).to_le_bytes());
                    r.extend_from_slice(&level.to_le_bytes());
                    for l in links {
                        r.extend_from_slice(&(l.len() as u32).to_le_bytes());
                        l.iter().for_each(|x| r.extend_from_slice(&x.to_le_bytes()));
                    }
                }
                w.raw(&r).entry(&header(0, "aft", ValueType::String), &Value::String(b("z"))).unwrap();
            }),
            layout: Layout::Body(
                "de 07 69 64 78 3a 76 65 63  00  02
                 01 00 00 00  01 00 00 00 00 00 00 00  00 00 00 00  01 00 00 00 02 00 00 00
                 02 00 00 00  02 00 00 00 00 00 00 00  01 00 00 00  01 00 00 00 01 00 00 00  00 00 00 00
                 00 03 61 66 74 01 7a",
            ),
        },
        // 223: shard id, index name, count × (key, doc id). Skipped likewise.
        Case {
            name: "op-223-shard-doc-index.rdb",
            bytes: rdb(|w| {
                let mut r = vec![223];
                packed::write(&mut r, 0);
                string::write(&mut r, b"idx");
                packed::write(&mut r, 2);
                for (key, doc) in [("doc:1", 1), ("doc:2", 2)] {
                    string::write(&mut r, key.as_bytes());
                    packed::write(&mut r, doc);
                }
                w.raw(&r).entry(&header(0, "aft", ValueType::String), &Value::String(b("z"))).unwrap();
            }),
            layout: Layout::Body(
                "df 00 03 69 64 78 02  05 64 6f 63 3a 31 01  05 64 6f 63 3a 32 02
                 00 03 61 66 74 01 7a",
            ),
        },
        // 5.7 / 9.4: tagged chunks; ids 5 and 6 in flight at once, a journal blob and a plain
        // entry between their pieces.
        Case {
            name: "op-224-tagged-chunks.rdb",
            bytes: rdb(|w| {
                let big = entry_bytes(&header(0, "big", ValueType::Set), &Value::Set(vec![b("a"), b("b"), b("c")]));
                let h2 = entry_bytes(
                    &header(0, "h2", ValueType::Hash),
                    &Value::Hash(vec![(b("f1"), b("x")), (b("f2"), b("y"))]),
                );
                let (big, h2) = (big.unwrap(), h2.unwrap());
                w.tagged_chunk(5, &big[..10]).tagged_chunk(6, &h2[..10]).journal_blob(&set_k2_x(), false);
                w.entry(&header(0, "plain", ValueType::String), &Value::String(b("p"))).unwrap();
                w.tagged_chunk(5, &big[10..]).tagged_chunk(6, &h2[10..]);
            }),
            layout: Layout::Body(
                "e0 05 00 00 00 0a 00 00 00  02 03 62 69 67 03 01 61 01 62
                 e0 06 00 00 00 0a 00 00 00  04 02 68 32 02 02 66 31 01 78
                 d2 01 10 06 00 0a 09 01 03 06 03 53 45 54 02 6b 32 01 78
                 00 05 70 6c 61 69 6e 01 70
                 e0 05 00 00 00 02 00 00 00  01 63
                 e0 06 00 00 00 05 00 00 00  02 66 32 01 79",
            ),
        },
        // 6.1: every journal opcode, decoded as a partial-sync stream from LSN 1: COMMAND (10),
        // LSN marker (15), EXPIRED (9), MULTI_COMMAND (11) ×2, EXEC (12), PING (13), FIN (14),
        // each command-like record with its SELECT (6) prefix.
        Case {
            name: "journal-opcodes.journal",
            bytes: {
                let mut j = JournalWriter::new();
                j.record(&cmd(0, CommandKind::Command, 7, 1, &["SET", "foo", "bar"])).lsn_marker(1);
                j.record(&cmd(1, CommandKind::Expired, 0, 1, &["DEL", "session:1"]));
                j.record(&cmd(1, CommandKind::MultiCommand, 12, 2, &["SET", "a", "1"]));
                j.record(&cmd(1, CommandKind::MultiCommand, 12, 2, &["DEL", "b"]));
                j.record(&JournalRecord { db: 1, op: JournalOp::Exec { txid: 12, shard_cnt: 2 } });
                j.record(&JournalRecord { db: 1, op: JournalOp::Ping });
                j.record(&JournalRecord { db: 1, op: JournalOp::Fin }).lsn_marker(7);
                j.into_bytes()
            },
            layout: Layout::Whole(
                "06 00 0a 07 01 03 09 03 53 45 54 03 66 6f 6f 03 62 61 72
                 0f 01
                 06 01 09 00 01 02 0c 03 44 45 4c 09 73 65 73 73 69 6f 6e 3a 31
                 06 01 0b 0c 02 03 05 03 53 45 54 01 61 01 31
                 06 01 0b 0c 02 02 04 03 44 45 4c 01 62
                 06 01 0c 0c 02
                 0d
                 0e
                 0f 07",
            ),
        },
        // Section 9.2, flow 0 of the worked example, byte for byte.
        Case { name: "spec-9.2-flow0.bin", bytes: spec_9_2_flow0(), layout: Layout::Whole(SPEC_9_2) },
    ]
}

/// Spec 9.2's listing (header, snapshot, RDB end, token, journal).
const SPEC_9_2: &str = "52 45 44 49 53 30 30 30 39
    fa 09 72 65 64 69 73 2d 76 65 72 06 36 2e 32 2e 31 31
    fa 06 64 66 2d 76 65 72 0a 64 66 2d 76 31 2e 34 30 2e 31
    fa 0a 72 65 64 69 73 2d 62 69 74 73 c0 40
    fa 05 63 74 69 6d 65 c2 a8 b6 55 69
    fa 08 75 73 65 64 2d 6d 65 6d c2 00 00 10 00
    fa 0c 61 6f 66 2d 70 72 65 61 6d 62 6c 65 c0 00
    fa 0b 73 68 61 72 64 2d 63 6f 75 6e 74 c0 01
    fa 09 74 61 62 6c 65 2d 6d 65 6d c1 00 10
    fa 08 73 68 61 72 64 2d 69 64 c0 00
    fe 00
    00 03 73 74 72 05 68 65 6c 6c 6f
    00 03 6e 75 6d c1 39 30
    fc 00 a8 da 76 9b 01 00 00
    00 03 74 74 6c 01 76
    12 03 6c 73 74 01 02 10 10 00 00 00 03 00 81 61 02 81 62 02 81 63 02 ff
    0b 02 73 74 0e 02 00 00 00 03 00 00 00 01 00 02 00 03 00
    02 04 74 61 67 73 02 01 78 01 79
    10 01 68 0d 0d 00 00 00 02 00 81 66 02 81 76 02 ff
    11 01 7a 14 14 00 00 00 04 00 81 61 02 01 01 81 62 02 83 32 2e 35 04 ff
    15 01 73 01 10 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01
       1d 1d 00 00 00 0a 00 01 01 00 01 01 01 81 66 02 00 01
       02 01 00 01 00 01 81 76 02 04 01 ff
       01 01 01 01 01 00 00 01 00
    fe 01
    00 02 6b 31 02 76 31
    c8 00 00 00 00 00 00 00 00
    d3 01 00 00 00 00 00 00 00
    ff 00 00 00 00 00 00 00 00
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66
    30 31 32 33 34 35 36 37
    06 00 0a 07 01 03 09 03 53 45 54 03 66 6f 6f 03 62 61 72
    0f 01
    06 00 0a 08 01 03 19 09 50 45 58 50 49 52 45 41 54 03 66 6f 6f
    0d 31 37 36 37 32 32 35 36 30 30 30 30 30";

fn spec_9_2_flow0() -> Vec<u8> {
    let mut w = RdbWriter::new();
    w.header();
    for (k, v) in [
        ("redis-ver", "6.2.11"),
        ("df-ver", "df-v1.40.1"),
        ("redis-bits", "64"),
        ("ctime", "1767225000"),
        ("used-mem", "1048576"),
        ("aof-preamble", "0"),
        ("shard-count", "1"),
        ("table-mem", "4096"),
        ("shard-id", "0"),
    ] {
        w.aux(k.as_bytes(), v.as_bytes());
    }
    w.select_db(0);
    let entries = [
        ("str", ValueType::String, None, Value::String(b("hello"))),
        ("num", ValueType::String, None, Value::String(b("12345"))),
        ("ttl", ValueType::String, Some(1_767_225_600_000), Value::String(b("v"))),
        ("lst", ValueType::ListQuicklist2, None, Value::List(vec![b("a"), b("b"), b("c")])),
        ("st", ValueType::SetIntset, None, Value::Set(vec![b("1"), b("2"), b("3")])),
        ("tags", ValueType::Set, None, Value::Set(vec![b("x"), b("y")])),
        ("h", ValueType::HashListpack, None, Value::Hash(vec![(b("f"), b("v"))])),
        ("z", ValueType::ZsetListpack, None, Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5)])),
        ("s", ValueType::StreamListpacks3, None, stream_1_1(true)),
    ];
    for (key, ty, expire_ms, value) in entries {
        w.entry(&EntryHeader { expire_ms, ..header(0, key, ty) }, &value).unwrap();
    }
    w.select_db(1).entry(&header(1, "k1", ValueType::String), &Value::String(b("v1"))).unwrap();
    w.full_sync_end().journal_offset(1).eof(false).raw(TOKEN);
    let mut j = JournalWriter::new();
    j.record(&cmd(0, CommandKind::Command, 7, 1, &["SET", "foo", "bar"])).lsn_marker(1);
    j.record(&cmd(0, CommandKind::Command, 8, 1, &["PEXPIREAT", "foo", "1767225600000"]));
    w.raw(j.as_bytes());
    w.into_bytes()
}

/// Splits `HEADER … FF crc` into the middle part, checking both ends and the checksum.
fn rdb_body<'a>(name: &str, bytes: &'a [u8]) -> &'a [u8] {
    let head = hex(HEADER);
    assert!(bytes.starts_with(&head), "{name}: does not start with the common header");
    assert!(bytes.len() >= head.len() + 9, "{name}: too short");
    let (rest, tail) = bytes.split_at(bytes.len() - 9);
    assert_eq!(tail[0], 0xff, "{name}: EOF opcode");
    let crc = u64::from_le_bytes(tail[1..].try_into().unwrap());
    assert_eq!(crc, crc64::checksum(&bytes[..bytes.len() - 8]), "{name}: CRC-64 over everything up to FF");
    &rest[head.len()..]
}

fn diff(name: &str, got: &[u8], want: &[u8]) {
    let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    assert!(
        got == want,
        "{name}: bytes differ from the spec layout at byte {first}:\n got  {:02x?}\n want {:02x?}",
        &got[first..],
        &want[first..]
    );
}

fn check_layout(case: &Case) {
    let name = case.name;
    match &case.layout {
        Layout::Whole(h) => diff(name, &case.bytes, &hex(h)),
        Layout::Body(h) => diff(name, rdb_body(name, &case.bytes), &hex(h)),
        Layout::Compressed { opcode, magic, records } => {
            let body = rdb_body(name, &case.bytes);
            assert_eq!(body[0], *opcode, "{name}: opcode");
            let (len, n) = match packed::peek_len(&body[1..]).unwrap() {
                df2redis::proto::Read::Done(v) => v,
                other => panic!("{name}: {other:?}"),
            };
            let frame = &body[1 + n..];
            assert_eq!(frame.len() as u64, len, "{name}: the frame fills the rest of the block");
            assert!(frame.starts_with(magic), "{name}: frame magic {:02x?}", &frame[..4]);
            let codec = if *opcode == 201 { Codec::Zstd } else { Codec::Lz4 };
            let plain = compress::decompress(codec, frame, &Default::default()).unwrap();
            diff(name, &plain, &hex(records));
        }
        Layout::LzfJournalBlob { record } => {
            let body = rdb_body(name, &case.bytes);
            assert_eq!(&body[..3], &[0xd2, 0x01, 0xc3], "{name}: D2, count 1, LZF string");
            let rd = |at: usize| match packed::peek_len(&body[at..]).unwrap() {
                df2redis::proto::Read::Done(v) => v,
                other => panic!("{name}: {other:?}"),
            };
            let (clen, n1) = rd(3);
            let (ulen, n2) = rd(3 + n1);
            let data = &body[3 + n1 + n2..];
            assert_eq!(data.len() as u64, clen, "{name}: compressed length");
            assert!(clen < ulen, "{name}: LZF saves space");
            diff(name, &lzf::decompress(data, ulen as usize).unwrap(), &hex(record));
        }
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/handmade")
}

#[test]
fn every_file_follows_the_spec_layout() {
    let cases = cases();
    assert!(cases.len() >= 25);
    for case in &cases {
        check_layout(case);
    }
}

#[test]
fn committed_files_equal_the_generator_output() {
    let cases = cases();
    let dir = dir();
    if std::env::var_os("DF2REDIS_REGEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for case in &cases {
            std::fs::write(dir.join(case.name), &case.bytes).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (generate with DF2REDIS_REGEN=1)", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = cases.iter().map(|c| c.name.to_string()).collect();
    names.sort();
    assert_eq!(on_disk, names, "corpus/handmade/ holds exactly the generated files");
    for case in &cases {
        let committed = std::fs::read(dir.join(case.name)).unwrap();
        assert!(
            committed == case.bytes,
            "{}: committed bytes differ from the generator; regenerate with DF2REDIS_REGEN=1 and update the \
             SHA-256 list in corpus/README.md",
            case.name
        );
    }
}
