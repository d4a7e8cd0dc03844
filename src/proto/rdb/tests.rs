//! Unit tests of the RDB decoder: spec byte listings, every record kind, error positions,
//! checksums, and writer → decoder round trips under random feed chunkings.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::proto::event::{Chunk, CommandKind, JournalOp, JournalRecord, KeyFlags, ValueType};
use crate::proto::model::Value;
use crate::proto::writer::{entry_bytes, tagged_pieces, RdbWriter};

/// Feeds `bytes` in pieces of the given sizes (cycled) and collects every event.
fn decode_with(
    bytes: &[u8],
    sizes: &[usize],
    mut dec: RdbDecoder,
) -> (Vec<Event>, Result<(), DecodeError>, RdbDecoder) {
    let mut events = Vec::new();
    let mut fed = 0;
    let mut i = 0;
    loop {
        match dec.next_event() {
            Ok(Some(ev)) => {
                events.push(ev);
                continue;
            }
            Ok(None) => {}
            Err(e) => return (events, Err(e), dec),
        }
        if fed == bytes.len() {
            break;
        }
        let n = if sizes.is_empty() { bytes.len() } else { sizes[i % sizes.len()].max(1) };
        i += 1;
        let n = n.min(bytes.len() - fed);
        dec.feed(&bytes[fed..fed + n]);
        fed += n;
    }
    let fin = dec.finish();
    (events, fin, dec)
}

fn decode(bytes: &[u8]) -> (Vec<Event>, Result<(), DecodeError>) {
    let (ev, r, _) = decode_with(bytes, &[], RdbDecoder::new(Limits::default()));
    (ev, r)
}

fn string_entry(db: u32, key: &str, expire_ms: Option<u64>) -> EntryHeader {
    EntryHeader {
        db,
        key: Bytes::copy_from_slice(key.as_bytes()),
        value_type: ValueType::String,
        expire_ms,
        flags: KeyFlags::default(),
    }
}

fn set_cmd(db: u32, k: &str, v: &str) -> JournalRecord {
    JournalRecord {
        db,
        op: JournalOp::Command {
            kind: CommandKind::Command,
            txid: 9,
            shard_cnt: 1,
            args: vec![Bytes::from("SET"), Bytes::copy_from_slice(k.as_bytes()), Bytes::copy_from_slice(v.as_bytes())],
        },
    }
}

fn str_chunk(id: u64, s: &str) -> Event {
    Event::EntryChunk { id: EntryId(id), chunk: Chunk::Str(Bytes::copy_from_slice(s.as_bytes())) }
}

/// The header and AUX part of the spec's section 9.2 listing.
const SPEC_HEADER: &str = "52454449533030303\
9fa0972656469732d76657206362e322e3131\
fa0664662d7665720a64662d76312e34302e31\
fa0a72656469732d62697473c040\
fa056374696d65c2a8b65569\
fa08757365642d6d656dc200001000\
fa0c616f662d707265616d626c65c000\
fa0b73686172642d636f756e74c001\
fa097461626c652d6d656dc10010\
fa0873686172642d6964c000";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn spec_header_writer() -> RdbWriter {
    let mut w = RdbWriter::new();
    w.header()
        .aux(b"redis-ver", b"6.2.11")
        .aux(b"df-ver", b"df-v1.40.1")
        .aux(b"redis-bits", b"64")
        .aux(b"ctime", b"1767225000")
        .aux(b"used-mem", b"1048576")
        .aux(b"aof-preamble", b"0")
        .aux(b"shard-count", b"1")
        .aux(b"table-mem", b"4096")
        .aux(b"shard-id", b"0");
    w
}

#[test]
fn spec_9_2_string_part_byte_exact() {
    let mut w = spec_header_writer();
    w.select_db(0);
    w.entry(&string_entry(0, "str", None), &Value::String(Bytes::from("hello"))).unwrap();
    w.entry(&string_entry(0, "num", None), &Value::String(Bytes::from("12345"))).unwrap();
    w.entry(&string_entry(0, "ttl", Some(1_767_225_600_000)), &Value::String(Bytes::from("v"))).unwrap();
    w.select_db(1);
    w.entry(&string_entry(1, "k1", None), &Value::String(Bytes::from("v1"))).unwrap();
    w.full_sync_end().journal_offset(1).eof(false);
    let expected = hex(&format!(
        "{SPEC_HEADER} fe00 000373747205 68656c6c6f 00036e756dc13930 fc00a8da769b010000 000374746c0176 \
         fe01 00026b31027631 c8 0000000000000000 d3 0100000000000000 ff 0000000000000000"
    ));
    assert_eq!(w.as_bytes(), &expected[..]);

    let (events, fin) = decode(&expected);
    fin.unwrap();
    let aux: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Aux { key, value } => {
                Some((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(aux[3], ("ctime".into(), "1767225000".into()));
    assert_eq!(aux[7], ("table-mem".into(), "4096".into()));
    assert_eq!(events[0], Event::Header { version: 9 });
    let body: Vec<Event> = events.into_iter().skip(10).collect();
    assert_eq!(
        body,
        vec![
            Event::SelectDb { db: 0 },
            Event::EntryBegin { id: EntryId(0), header: string_entry(0, "str", None) },
            str_chunk(0, "hello"),
            Event::EntryEnd { id: EntryId(0) },
            Event::EntryBegin { id: EntryId(1), header: string_entry(0, "num", None) },
            str_chunk(1, "12345"),
            Event::EntryEnd { id: EntryId(1) },
            Event::EntryBegin { id: EntryId(2), header: string_entry(0, "ttl", Some(1_767_225_600_000)) },
            str_chunk(2, "v"),
            Event::EntryEnd { id: EntryId(2) },
            Event::SelectDb { db: 1 },
            Event::EntryBegin { id: EntryId(3), header: string_entry(1, "k1", None) },
            str_chunk(3, "v1"),
            Event::EntryEnd { id: EntryId(3) },
            Event::FullSyncEnd,
            Event::JournalOffset { lsn: 1 },
            Event::RdbEnd { checksum: 0, verified: None },
        ]
    );
}

#[test]
fn never_waits_beyond_the_current_record() {
    let mut w = RdbWriter::new();
    w.header().select_db(0).full_sync_end();
    let mut d = RdbDecoder::new(Limits::default());
    d.feed(w.as_bytes());
    let mut got = Vec::new();
    while let Some(ev) = d.next_event().unwrap() {
        got.push(ev);
    }
    assert_eq!(got, vec![Event::Header { version: 9 }, Event::SelectDb { db: 0 }, Event::FullSyncEnd]);
    assert_eq!(d.offset(), w.len() as u64);
    assert!(matches!(d.finish(), Err(DecodeError { kind: ErrorKind::Truncated(_), .. })));
}

#[test]
fn spec_9_4_journal_blob() {
    let mut bytes = RdbWriter::new().header().as_bytes().to_vec();
    let blob = hex("d20110 06000a0901030603534554026b320178");
    bytes.extend_from_slice(&blob);
    let mut w = RdbWriter::new();
    w.journal_blob(&set_cmd(0, "k2", "x"), false);
    assert_eq!(w.as_bytes(), &blob[..]);
    let (events, _) = decode(&bytes);
    assert_eq!(events[1], Event::JournalBlob { record: set_cmd(0, "k2", "x") });
}

#[test]
fn journal_blob_with_several_records_and_lzf() {
    let mut payload = Vec::new();
    crate::proto::journal::encode_record(&mut payload, &set_cmd(2, "a", "1"), true);
    crate::proto::journal::encode_record(&mut payload, &JournalRecord { db: 0, op: JournalOp::Ping }, false);
    let mut w = RdbWriter::new();
    w.header().raw(&[0xd2, 0x02]);
    string::write_raw(&mut payload.clone(), &[]);
    let mut rec = Vec::new();
    string::write_raw(&mut rec, &payload);
    w.raw(&rec);
    w.journal_blob(&set_cmd(3, "long-key-long-key-long-key", "long-value-long-value-long-value"), true);
    let (events, _) = decode(w.as_bytes());
    assert_eq!(
        &events[1..],
        &[
            Event::JournalBlob { record: set_cmd(2, "a", "1") },
            Event::JournalBlob { record: JournalRecord { db: 2, op: JournalOp::Ping } },
            Event::JournalBlob { record: set_cmd(3, "long-key-long-key-long-key", "long-value-long-value-long-value") },
        ]
    );
    // The LZF form was really used.
    assert!(w.as_bytes().windows(2).any(|p| p == [0x01, 0xc3]));
}

#[test]
fn tagged_entries_interleave() {
    let value: String = (0..300).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let entry = entry_bytes(&string_entry(0, "big", Some(5)), &Value::String(Bytes::from(value.clone()))).unwrap();
    let other = entry_bytes(&string_entry(0, "other", None), &Value::String(Bytes::from("o"))).unwrap();
    let pieces = tagged_pieces(5, &entry, 100);
    assert_eq!(pieces.len(), 4);
    let mut w = RdbWriter::new();
    w.header().select_db(0);
    w.raw(&pieces[0]).journal_blob(&set_cmd(0, "k2", "x"), false).raw(&pieces[1]);
    w.raw(&other).raw(&pieces[2]).select_db(1).raw(&pieces[3]);
    let limits = Limits { batch_bytes: 1000, ..Limits::default() };
    let (events, _, _) = decode_with(w.as_bytes(), &[], RdbDecoder::new(limits));
    // Begin after the first piece, the value after the last, other records in between.
    assert_eq!(events[2], Event::EntryBegin { id: EntryId(0), header: string_entry(0, "big", Some(5)) });
    assert_eq!(events[3], Event::JournalBlob { record: set_cmd(0, "k2", "x") });
    assert_eq!(events[4], Event::EntryBegin { id: EntryId(1), header: string_entry(0, "other", None) });
    assert_eq!(events[7], Event::SelectDb { db: 1 });
    assert_eq!(events[8], str_chunk(0, &value));
    assert_eq!(events[9], Event::EntryEnd { id: EntryId(0) });
    assert_eq!(events.len(), 10);
}

#[test]
fn tagged_errors() {
    let entry = entry_bytes(&string_entry(0, "big", None), &Value::String(Bytes::from("abcdef"))).unwrap();
    // A piece holding bytes beyond the end of the value.
    let mut long = entry.clone();
    long.push(0);
    let mut w = RdbWriter::new();
    w.header().tagged_chunk(7, &long);
    let (_, r) = decode(w.as_bytes());
    let e = r.unwrap_err();
    assert_eq!(e.offset, 9);
    assert_eq!(e.context.as_deref(), Some("tagged stream id 7"));
    // An entry still open at EOF.
    let mut w = RdbWriter::new();
    w.header().tagged_chunk(7, &entry[..4]).eof(false);
    assert!(matches!(decode(w.as_bytes()).1, Err(DecodeError { kind: ErrorKind::Corrupt { .. }, .. })));
    // Stream id 0 and empty payloads are invalid.
    for bad in [tagged_pieces(0, &entry, 100), vec![crate::proto::writer::tagged_chunk_bytes(3, &[])]] {
        let mut w = RdbWriter::new();
        w.header().raw(&bad[0]);
        assert!(decode(w.as_bytes()).1.is_err());
    }
}

#[test]
fn compressed_blobs() {
    for codec in [Codec::Lz4, Codec::Zstd] {
        let mut inner = RdbWriter::new();
        inner.select_db(3);
        inner.entry(&string_entry(3, "a", None), &Value::String(Bytes::from("1"))).unwrap();
        inner.journal_blob(&set_cmd(3, "b", "2"), false).full_sync_end().journal_offset(77);
        let mut w = RdbWriter::new();
        w.header().compressed(codec, inner.as_bytes()).eof(true);
        let (events, fin) = decode(w.as_bytes());
        fin.unwrap();
        assert_eq!(events.len(), 9, "{codec:?}: {events:?}");
        assert_eq!(events[6], Event::FullSyncEnd);
        assert_eq!(events[7], Event::JournalOffset { lsn: 77 });
        assert!(matches!(events[8], Event::RdbEnd { verified: Some(true), .. }));

        // A record cut at the end of the block.
        let cut = &inner.as_bytes()[..inner.len() - 3];
        let mut w = RdbWriter::new();
        w.header().compressed(codec, cut);
        let e = decode(w.as_bytes()).1.unwrap_err();
        assert_eq!(e.offset, 9);
        let ctx = e.context.unwrap();
        assert!(ctx.starts_with(&format!("inside {} at offset ", codec.block_name())), "{ctx}");
        assert!(matches!(e.kind, ErrorKind::Corrupt { .. }));
    }
}

#[test]
fn checksums() {
    let mut w = RdbWriter::new();
    w.header_version(11).aux(b"redis-ver", b"7.2.0").select_db(0);
    w.entry(&string_entry(0, "k", None), &Value::String(Bytes::from("v"))).unwrap();
    w.eof(true);
    let good = w.into_bytes();
    let (events, fin) = decode(&good);
    fin.unwrap();
    assert!(matches!(events.last(), Some(Event::RdbEnd { verified: Some(true), .. })));
    // Trailing bytes fed together with the checksum are taken back out of the digest.
    let mut with_tail = good.clone();
    with_tail.extend_from_slice(b"trailing journal bytes");
    for sizes in [vec![], vec![1], vec![3, 7]] {
        let (events, fin, d) = decode_with(&with_tail, &sizes, RdbDecoder::new(Limits::default()));
        fin.unwrap();
        assert!(matches!(events.last(), Some(Event::RdbEnd { verified: Some(true), .. })));
        assert_eq!(&d.into_remaining()[..], b"trailing journal bytes");
    }
    let mut bad = good.clone();
    bad[22] ^= 1;
    assert!(matches!(decode(&bad).1, Err(DecodeError { kind: ErrorKind::Checksum { .. }, .. })));
    // The unverified decoder does not look at it.
    let (events, _, _) = decode_with(&bad, &[], RdbDecoder::new_unverified(Limits::default()));
    assert!(matches!(events.last(), Some(Event::RdbEnd { verified: None, .. })));
}

#[test]
fn key_options_attach_to_the_next_entry() {
    let mut h = string_entry(0, "k", Some(1000));
    h.flags = KeyFlags { sticky: true, mc_flags: Some(42) };
    let mut w = RdbWriter::new();
    w.header().raw(&[0xfd, 1, 0, 0, 0]);
    w.entry(&h, &Value::String(Bytes::from("v"))).unwrap();
    let (events, _) = decode(w.as_bytes());
    // FD then FC: the later option wins.
    assert_eq!(events[1], Event::EntryBegin { id: EntryId(0), header: h.clone() });
    // Options followed by something that is not a key entry.
    let mut w = RdbWriter::new();
    w.header().raw(&[0xfc, 1, 0, 0, 0, 0, 0, 0, 0]).select_db(0);
    let e = decode(w.as_bytes()).1.unwrap_err();
    assert_eq!(e.offset, 18);
}

#[test]
fn skipped_records() {
    let mut w = RdbWriter::new();
    w.header();
    w.raw(&[0xf4, 1, 2, 3]); // SLOT_INFO
    w.raw(&[0xf8, 0x40, 0x10, 0xf9, 7]); // IDLE, FREQ
    w.raw(&[0xf5, 3, b'a', b'b', b'c']); // FUNCTION2
    w.raw(&[0xf6, 1, b'n', 3, b'L', b'U', b'A', 1, 1, b'd', 2, b'c', b'c']); // FUNCTION pre-GA
    w.raw(&[0xf7, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 2, 2, 5, 1, b'x', 0]); // MODULE_AUX
    w.raw(&[0xde, 3, b'i', b':', b'f', 0, 1]); // VECTOR_INDEX, 1 node
    w.raw(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0]);
    w.raw(&[0xdf, 0, 2, b'i', b'x', 2, 1, b'a', 0, 1, b'b', 1]); // SHARD_DOC_INDEX
    w.raw(&[0xde, 1, b'i', 0, 0]); // empty VECTOR_INDEX
    w.resize_db(10, 2).eof(false);
    let (events, fin) = decode(w.as_bytes());
    fin.unwrap();
    let ops: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Skipped { opcode } => Some(*opcode),
            _ => None,
        })
        .collect();
    assert_eq!(ops, vec![244, 248, 249, 245, 246, 247, 222, 223, 222]);
    assert!(events.contains(&Event::ResizeDb { db_size: 10, expires_size: 2 }));
}

#[test]
fn malformed_streams() {
    assert!(matches!(decode(b"REDIX0009").1, Err(DecodeError { offset: 0, .. })));
    let mut w = RdbWriter::new();
    w.header().raw(&[0xcb]);
    assert_eq!(decode(w.as_bytes()).1.unwrap_err(), DecodeError::at(9, ErrorKind::UnknownOpcode(0xcb)));
    let mut w = RdbWriter::new();
    w.header().raw(&[0x16, 1, b'k']);
    assert_eq!(decode(w.as_bytes()).1.unwrap_err(), DecodeError::at(9, ErrorKind::UnknownType(0x16)));
    // The error is sticky.
    let mut d = RdbDecoder::new(Limits::default());
    d.feed(w.as_bytes());
    let first = loop {
        if let Err(e) = d.next_event() {
            break e;
        }
    };
    assert_eq!(d.next_event(), Err(first.clone()));
    assert_eq!(d.finish(), Err(first));
}

#[test]
fn old_versions_have_no_checksum() {
    let mut w = RdbWriter::new();
    w.header_version(4).select_db(0).raw(&[0xff]);
    let (events, fin) = decode(w.as_bytes());
    fin.unwrap();
    assert_eq!(events.last(), Some(&Event::RdbEnd { checksum: 0, verified: None }));
}

// ---- Round trip under random chunkings -------------------------------------------------------

/// One generated top-level item.
#[derive(Debug, Clone)]
enum Item {
    Select(u32),
    Entry(EntryHeader, Value),
    Blob(JournalRecord, bool),
    Compressed(Codec, Vec<Item>),
    /// A split entry: stream id, header, value, piece size; its pieces get interleaved.
    Tagged(u32, EntryHeader, Value, usize),
}

fn arb_header() -> impl Strategy<Value = (Bytes, Option<u64>, bool, Option<u32>)> {
    (
        prop_oneof![Just(Bytes::from("k")), "[a-z0-9]{1,12}".prop_map(Bytes::from)],
        proptest::option::of(any::<u64>()),
        any::<bool>(),
        proptest::option::of(any::<u32>()),
    )
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        "[0-9]{1,12}".prop_map(Bytes::from),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from),
        "(abc){10,60}".prop_map(Bytes::from),
    ]
}

fn arb_member() -> impl Strategy<Value = Bytes> {
    prop_oneof!["-?[0-9]{1,5}".prop_map(Bytes::from), "[a-z]{0,20}".prop_map(Bytes::from)]
}

/// A value of any of the common kinds (containers non-empty, members unique).
fn arb_value() -> impl Strategy<Value = Value> {
    let members =
        || proptest::collection::btree_set(arb_member(), 1..40).prop_map(|s| s.into_iter().collect::<Vec<_>>());
    prop_oneof![
        3 => arb_bytes().prop_map(Value::String),
        1 => proptest::collection::vec(arb_member(), 1..40).prop_map(Value::List),
        1 => members().prop_map(Value::Set),
        1 => (members(), proptest::collection::vec(arb_bytes(), 40)).prop_map(|(f, v)| Value::Hash(f.into_iter().zip(v).collect())),
        1 => (members(), proptest::collection::vec(-1e9f64..1e9, 40)).prop_map(|(m, sc)| Value::Zset(m.into_iter().zip(sc).collect())),
    ]
}

/// The header for `v` with the type Dragonfly v1.40 would choose.
fn header_for(key: Bytes, v: &Value, expire_ms: Option<u64>, flags: KeyFlags) -> EntryHeader {
    let value_type = crate::proto::value::choose_type(v, &crate::proto::value::Dialect::dragonfly(1, 40)).unwrap();
    EntryHeader { db: 0, key, value_type, expire_ms, flags }
}

fn arb_simple_item() -> impl Strategy<Value = Item> {
    let entry = (arb_header(), arb_value()).prop_map(|((key, expire_ms, sticky, mc), v)| {
        let flags = KeyFlags { sticky, mc_flags: mc };
        Item::Entry(header_for(key, &v, expire_ms, flags), v)
    });
    let blob = ("[a-z]{1,5}", "[a-z]{0,40}", 0u32..4, any::<bool>())
        .prop_map(|(k, v, db, lzf)| Item::Blob(set_cmd(db, &k, &v), lzf));
    prop_oneof![3 => entry, 2 => blob, 1 => (0u32..20).prop_map(Item::Select)]
}

fn arb_item() -> impl Strategy<Value = Item> {
    let tagged = (1u32..4, arb_header(), arb_value(), 1usize..64).prop_map(|(sid, (key, expire_ms, _, _), v, ps)| {
        Item::Tagged(sid, header_for(key, &v, expire_ms, KeyFlags::default()), v, ps)
    });
    let compressed = (any::<bool>(), proptest::collection::vec(arb_simple_item(), 1..5))
        .prop_map(|(z, items)| Item::Compressed(if z { Codec::Zstd } else { Codec::Lz4 }, items));
    prop_oneof![6 => arb_simple_item(), 1 => compressed, 2 => tagged]
}

/// What the decoder must report, independent of chunk boundaries.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    /// Non-entry events in order, with entry begins shown as their key.
    order: Vec<String>,
    /// Per key (unique in the generated stream): header and whole value.
    entries: BTreeMap<Vec<u8>, (EntryHeader, Value)>,
}

fn summarize(events: &[Event]) -> Summary {
    let mut s = Summary::default();
    let mut asm = crate::proto::assemble::Assembler::new();
    let mut keys: BTreeMap<EntryId, Vec<u8>> = BTreeMap::new();
    for ev in events {
        match ev {
            Event::EntryBegin { id, header } => {
                keys.insert(*id, header.key.to_vec());
            }
            Event::EntryEnd { id } => s.order.push(format!("end {:?}", String::from_utf8_lossy(&keys[id]))),
            Event::EntryChunk { .. } => {}
            other => s.order.push(format!("{other:?}")),
        }
        if let Some(crate::proto::assemble::Assembled::Entry { header, value }) = asm.push(ev.clone()).unwrap() {
            s.entries.insert(header.key.to_vec(), (header, value));
        }
    }
    s
}

/// Builds the stream for `items` (keys made unique, db tracked) and the expected summary.
fn build(items: &[Item]) -> (Vec<u8>, Summary) {
    let mut w = RdbWriter::new();
    w.header();
    let mut exp = Summary::default();
    exp.order.push(format!("{:?}", Event::Header { version: 9 }));
    let mut db = 0;
    let mut n = 0;
    // Pieces of open tagged entries still to write: (sid, remaining pieces, key).
    let mut open: Vec<(u32, Vec<Vec<u8>>, Vec<u8>)> = Vec::new();
    fn emit(
        item: &Item,
        out: &mut Vec<u8>,
        exp: &mut Summary,
        db: &mut u32,
        n: &mut usize,
    ) -> Option<(u32, Vec<Vec<u8>>, Vec<u8>)> {
        match item {
            Item::Select(d) => {
                let mut w = RdbWriter::new();
                w.select_db(*d);
                out.extend_from_slice(w.as_bytes());
                *db = *d;
                exp.order.push(format!("{:?}", Event::SelectDb { db: *d }));
                None
            }
            Item::Blob(rec, lzf) => {
                let mut w = RdbWriter::new();
                w.journal_blob(rec, *lzf);
                out.extend_from_slice(w.as_bytes());
                exp.order.push(format!("{:?}", Event::JournalBlob { record: rec.clone() }));
                None
            }
            Item::Entry(h, v) | Item::Tagged(_, h, v, _) => {
                let mut h = h.clone();
                *n += 1;
                let mut key = h.key.to_vec();
                key.extend_from_slice(format!("#{n}").as_bytes());
                h.key = Bytes::from(key.clone());
                h.db = *db;
                let bytes = entry_bytes(&h, v).unwrap();
                // What the value decoder makes of the encoded body on its own.
                let mut body = Vec::new();
                crate::proto::value::encode_value(&mut body, v, h.value_type).unwrap();
                let decoded = crate::proto::assemble::decode_value(h.value_type, &body, &Limits::default()).unwrap();
                exp.entries.insert(key.clone(), (h, decoded));
                match item {
                    Item::Tagged(sid, _, _, ps) => {
                        let mut pieces = tagged_pieces(*sid, &bytes, *ps);
                        pieces.reverse();
                        let first = pieces.pop().unwrap();
                        out.extend_from_slice(&first);
                        if pieces.is_empty() {
                            exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key)));
                            return None;
                        }
                        return Some((*sid, pieces, key));
                    }
                    _ => {
                        out.extend_from_slice(&bytes);
                        exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key)));
                    }
                }
                None
            }
            Item::Compressed(codec, inner) => {
                let mut buf = Vec::new();
                for it in inner {
                    emit(it, &mut buf, exp, db, n);
                }
                let mut w = RdbWriter::new();
                w.compressed(*codec, &buf);
                out.extend_from_slice(w.as_bytes());
                None
            }
        }
    }
    let mut out = w.into_bytes();
    for item in items {
        // A stream id cannot be reused while open: finish the older entry first.
        if let Item::Tagged(sid, ..) = item {
            if let Some(i) = open.iter().position(|o| o.0 == *sid) {
                let (_, mut pieces, key) = open.remove(i);
                while let Some(p) = pieces.pop() {
                    out.extend_from_slice(&p);
                }
                exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key)));
            }
        }
        if let Some(o) = emit(item, &mut out, &mut exp, &mut db, &mut n) {
            open.push(o);
        }
        // Write one pending piece of each open entry after every item.
        let mut still = Vec::new();
        for (sid, mut pieces, key) in open.drain(..) {
            match pieces.pop() {
                Some(p) => {
                    out.extend_from_slice(&p);
                    if pieces.is_empty() {
                        exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key)));
                    } else {
                        still.push((sid, pieces, key));
                    }
                }
                None => exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key))),
            }
        }
        open = still;
    }
    for (_, mut pieces, key) in open.drain(..) {
        while let Some(p) = pieces.pop() {
            out.extend_from_slice(&p);
        }
        exp.order.push(format!("end {:?}", String::from_utf8_lossy(&key)));
    }
    let mut w = RdbWriter::new();
    w.raw(&out).full_sync_end().journal_offset(5).eof(true);
    exp.order.push(format!("{:?}", Event::FullSyncEnd));
    exp.order.push(format!("{:?}", Event::JournalOffset { lsn: 5 }));
    let bytes = w.into_bytes();
    let crc = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
    exp.order.push(format!("{:?}", Event::RdbEnd { checksum: crc, verified: Some(true) }));
    (bytes, exp)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(items in proptest::collection::vec(arb_item(), 0..25),
                  sizes in proptest::collection::vec(1usize..50, 1..8)) {
        let (bytes, exp) = build(&items);
        let limits = Limits { batch_bytes: 64, batch_elements: 3, ..Limits::default() };
        let (whole, fin, _) = decode_with(&bytes, &[], RdbDecoder::new(limits));
        fin.unwrap();
        // Tagged values get their chunks in the order of the pieces, so the non-entry order may
        // interleave begins differently; the summary keeps only ends and other records.
        let got = summarize(&whole);
        prop_assert_eq!(&got.entries, &exp.entries);
        prop_assert_eq!(&got.order, &exp.order);
        for s in [vec![1], sizes.clone()] {
            let (events, fin, _) = decode_with(&bytes, &s, RdbDecoder::new(limits));
            fin.unwrap();
            prop_assert_eq!(&events, &whole);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut with_header = b"REDIS0009".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = decode(&with_header);
        let _ = decode(&bytes);
    }

    #[test]
    fn corrupted_streams_fail_the_same_way_however_fed(items in proptest::collection::vec(arb_item(), 1..10),
                                     flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                     sizes in proptest::collection::vec(1usize..50, 1..4),
                                     verify in any::<bool>()) {
        let (mut bytes, _) = build(&items);
        let (_, fin, _) = decode_with(&bytes[..bytes.len() / 2], &sizes, RdbDecoder::new(Limits::default()));
        prop_assert!(fin.is_err());
        for (pos, b) in flips {
            let i = pos % bytes.len();
            bytes[i] = b;
        }
        // Events (as text: a flipped score may be NaN) and the whole error — kind, offset and
        // context — must not depend on how the bytes were fed.
        let limits = Limits { batch_bytes: 64, batch_elements: 3, ..Limits::default() };
        let run = |s: &[usize]| {
            let dec = if verify { RdbDecoder::new(limits) } else { RdbDecoder::new_unverified(limits) };
            let (events, fin, dec) = decode_with(&bytes, s, dec);
            (events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(), fin, dec.offset())
        };
        let whole = run(&[]);
        prop_assert_eq!(&run(&[1]), &whole);
        prop_assert_eq!(&run(&sizes), &whole);
    }
}

/// Regression (fuzz target rdb_decoder): a cuckoo value (type 37) with a bad packed length was
/// reported at byte 20 when fed whole and at byte 25 when fed byte by byte.
#[test]
fn errors_inside_a_value_are_reported_at_the_entry() {
    let data = hex("52 45 44 49 53 30 30 30 39 25 09 72 65 64 30 69 73 2d 76 65 72 2e 32 35 35 fa 0a 72 65 64
        69 73 2d 62 69 74 73 c0 40 fa 05 63 74 69 6d 65 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b
        6b 6b 6b 6b 00 0c 2b 00 00 6b 6b 6b 0c 00 6b");
    let limits = Limits { batch_elements: 6, batch_bytes: 1105, ..Limits::default() };
    let run = |sizes: &[usize]| decode_with(&data, sizes, RdbDecoder::new_unverified(limits)).1;
    let whole = run(&[]).unwrap_err();
    assert_eq!(whole.offset, 9, "the entry's type byte: {whole}");
    for sizes in [vec![1], vec![0xc1, 1, 0x73, 1], vec![2, 3, 5]] {
        assert_eq!(run(&sizes), Err(whole.clone()), "fed in pieces {sizes:?}");
    }

    // The same inside an LZ4 block: the block's offset, and the entry's offset inside it.
    let cuckoo = Value::Cuckoo(Box::new(crate::proto::model::Cuckoo {
        slots_per_bucket: 4,
        max_iterations: 20,
        expansion: 1,
        num_buckets: 2,
        num_items: 3,
        num_deletes: 0,
        filters: vec![Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8])],
    }));
    let header = EntryHeader { value_type: ValueType::Cuckoo, ..string_entry(0, "cf", None) };
    let mut entry = entry_bytes(&header, &cuckoo).unwrap();
    let n = entry.len();
    entry[n - 9] = 0xff; // the chunk length: 0xff is no packed-integer form
    let mut inner = RdbWriter::new();
    inner.select_db(0).raw(&entry);
    let mut w = RdbWriter::new();
    w.header().compressed(Codec::Lz4, inner.as_bytes()).eof(false);
    let run = |sizes: &[usize]| decode_with(w.as_bytes(), sizes, RdbDecoder::new(limits)).1;
    let whole = run(&[]).unwrap_err();
    assert_eq!((whole.offset, whole.context.as_deref()), (9, Some("inside LZ4 block at offset 2")), "{whole}");
    assert_eq!(run(&[1]), Err(whole.clone()));
    assert_eq!(run(&[3, 7]), Err(whole));
}
