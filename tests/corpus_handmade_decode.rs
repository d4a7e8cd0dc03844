//! Golden tests of `corpus/handmade/` (made by `tests/corpus_handmade.rs`): every file decodes
//! to its end — `.rdb` with `RdbDecoder` (checksum verified), `.bin` as a full-sync flow,
//! `.journal` as a partial-sync journal from LSN 1 — identically whole, one byte at a time and in
//! seeded random chunkings; the events are insta snapshots, and the spec's worked example (9.2)
//! and the multi-part cases are checked event by event.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod chunking;

use chunking::SplitMix;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use df2redis::proto::assemble::{Assembled, Assembler};
use df2redis::proto::event::{CommandKind, JournalOp, JournalRecord};
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::rdb::RdbDecoder;
use df2redis::proto::{DecodeError, EntryHeader, Event, KeyFlags, Limits, Value, ValueType};

const TOKEN: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/handmade")
}

fn files() -> Vec<PathBuf> {
    let dir = dir();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    assert!(out.len() >= 25, "expected the handmade files under {}", dir.display());
    out
}

/// A decoder chosen by the file's extension, behind one interface.
enum Dec {
    Rdb(Box<RdbDecoder>),
    Flow(Box<FlowDecoder>),
}

impl Dec {
    fn for_file(name: &str, limits: Limits) -> Dec {
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("rdb") => Dec::Rdb(Box::new(RdbDecoder::new(limits))),
            Some("bin") => Dec::Flow(Box::new(FlowDecoder::full_sync(*TOKEN, limits))),
            Some("journal") => Dec::Flow(Box::new(FlowDecoder::journal_only(1, limits))),
            _ => panic!("{name}: unknown kind of handmade file"),
        }
    }

    fn feed(&mut self, b: &[u8]) {
        match self {
            Dec::Rdb(d) => d.feed(b),
            Dec::Flow(d) => d.feed(b),
        }
    }

    fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        match self {
            Dec::Rdb(d) => d.next_event(),
            Dec::Flow(d) => d.next_event(),
        }
    }

    /// Checks the stream ended cleanly with every byte consumed.
    fn finish(self, len: usize) -> Result<(), DecodeError> {
        match self {
            Dec::Rdb(d) => {
                d.finish()?;
                assert!(d.is_finished());
                assert_eq!(d.offset(), len as u64, "every byte consumed");
            }
            Dec::Flow(d) => {
                d.finish()?;
                assert_eq!(d.offset(), len as u64, "every byte consumed");
            }
        }
        Ok(())
    }
}

fn decode(name: &str, bytes: &[u8], limits: Limits, mut sizes: impl FnMut() -> usize) -> Vec<Event> {
    let mut d = Dec::for_file(name, limits);
    let mut events = Vec::new();
    let mut fed = 0;
    loop {
        while let Some(ev) = d.next_event().unwrap_or_else(|e| panic!("{name}: {e}")) {
            events.push(ev);
        }
        if fed == bytes.len() {
            break;
        }
        let n = sizes().clamp(1, bytes.len() - fed);
        d.feed(&bytes[fed..fed + n]);
        fed += n;
    }
    d.finish(bytes.len()).unwrap_or_else(|e| panic!("{name}: {e}"));
    events
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap()
}

fn decode_whole(name: &str) -> Vec<Event> {
    let bytes = load(name);
    decode(name, &bytes, Limits::default(), || usize::MAX)
}

#[test]
fn every_file_decodes_identically_under_any_chunking() {
    for path in files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        for limits in [Limits::default(), Limits { batch_elements: 1, batch_bytes: 1, ..Limits::default() }] {
            let events = decode(&name, &bytes, limits, || usize::MAX);
            if name.ends_with(".rdb") {
                assert!(
                    matches!(events.last(), Some(Event::RdbEnd { checksum, verified: Some(true) }) if *checksum != 0),
                    "{name}: ends with a verified checksum"
                );
            }
            assert!(decode(&name, &bytes, limits, || 1) == events, "{name}: 1-byte feeding differs");
            for seed in 1..=4u64 {
                let mut rng = SplitMix(seed.wrapping_mul(0x1234_5678) ^ bytes.len() as u64);
                let max = [2u64, 5, 13, 64][(seed - 1) as usize];
                let random = decode(&name, &bytes, limits, || (rng.next() % max + 1) as usize);
                assert!(random == events, "{name}: random chunking (seed {seed}) differs");
            }
            if limits == Limits::default() {
                let lines: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
                insta::assert_yaml_snapshot!(name.clone(), lines);
            }
        }
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cmd(db: u32, kind: CommandKind, txid: u64, shard_cnt: u64, args: &[&str]) -> JournalRecord {
    JournalRecord { db, op: JournalOp::Command { kind, txid, shard_cnt, args: args.iter().map(|a| b(a)).collect() } }
}

/// Entries (as header + whole value) and the other events, in order.
fn assemble(events: Vec<Event>) -> Vec<Result<(EntryHeader, Value), Event>> {
    let mut asm = Assembler::new();
    let mut out = Vec::new();
    for ev in events {
        match asm.push(ev).unwrap() {
            Some(Assembled::Entry { header, value }) => out.push(Ok((header, value))),
            Some(Assembled::Other(ev)) => out.push(Err(ev)),
            None => {}
        }
    }
    assert_eq!(asm.open_entries(), 0);
    out
}

fn entry(db: u32, key: &str, value_type: ValueType, expire_ms: Option<u64>, value: Value) -> (EntryHeader, Value) {
    (EntryHeader { db, key: b(key), value_type, expire_ms, flags: KeyFlags::default() }, value)
}

#[test]
fn spec_9_2_flow0_decodes_as_the_spec_says() {
    let got = assemble(decode_whole("spec-9.2-flow0.bin"));
    let aux = [
        ("redis-ver", "6.2.11"),
        ("df-ver", "df-v1.40.1"),
        ("redis-bits", "64"),
        ("ctime", "1767225000"),
        ("used-mem", "1048576"),
        ("aof-preamble", "0"),
        ("shard-count", "1"),
        ("table-mem", "4096"),
        ("shard-id", "0"),
    ];
    let id = df2redis::proto::model::StreamId { ms: 1, seq: 1 };
    let stream = df2redis::proto::model::Stream {
        entries: vec![df2redis::proto::model::StreamEntry { id, fields: vec![(b("f"), b("v"))] }],
        meta: df2redis::proto::model::StreamMeta {
            length: 1,
            last_id: id,
            v2: Some(df2redis::proto::model::StreamMetaV2 {
                first_id: id,
                max_deleted_id: Default::default(),
                entries_added: 1,
            }),
        },
        groups: vec![],
    };
    let mut want: Vec<Result<(EntryHeader, Value), Event>> = vec![Err(Event::Header { version: 9 })];
    want.extend(aux.iter().map(|(k, v)| Err(Event::Aux { key: b(k), value: b(v) })));
    want.push(Err(Event::SelectDb { db: 0 }));
    want.extend([
        Ok(entry(0, "str", ValueType::String, None, Value::String(b("hello")))),
        Ok(entry(0, "num", ValueType::String, None, Value::String(b("12345")))),
        Ok(entry(0, "ttl", ValueType::String, Some(1_767_225_600_000), Value::String(b("v")))),
        Ok(entry(0, "lst", ValueType::ListQuicklist2, None, Value::List(vec![b("a"), b("b"), b("c")]))),
        Ok(entry(0, "st", ValueType::SetIntset, None, Value::Set(vec![b("1"), b("2"), b("3")]))),
        Ok(entry(0, "tags", ValueType::Set, None, Value::Set(vec![b("x"), b("y")]))),
        Ok(entry(0, "h", ValueType::HashListpack, None, Value::Hash(vec![(b("f"), b("v"))]))),
        Ok(entry(0, "z", ValueType::ZsetListpack, None, Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5)]))),
        Ok(entry(0, "s", ValueType::StreamListpacks3, None, Value::Stream(Box::new(stream)))),
        Err(Event::SelectDb { db: 1 }),
        Ok(entry(1, "k1", ValueType::String, None, Value::String(b("v1")))),
        Err(Event::FullSyncEnd),
        Err(Event::JournalOffset { lsn: 1 }),
        Err(Event::RdbEnd { checksum: 0, verified: None }),
        Err(Event::EofToken),
        Err(Event::Journal { lsn: 1, record: cmd(0, CommandKind::Command, 7, 1, &["SET", "foo", "bar"]) }),
        Err(Event::LsnMarker { lsn: 1 }),
        Err(Event::Journal {
            lsn: 2,
            record: cmd(0, CommandKind::Command, 8, 1, &["PEXPIREAT", "foo", "1767225600000"]),
        }),
    ]);
    assert_eq!(got, want);
}

#[test]
fn tagged_chunks_two_ids_in_flight_with_a_journal_blob_between() {
    let got = assemble(decode_whole("op-224-tagged-chunks.rdb"));
    let set_k2_x = cmd(0, CommandKind::Command, 9, 1, &["SET", "k2", "x"]);
    // The plain entry and the blob come first; each split entry completes with its last piece.
    assert_eq!(
        &got[3..],
        &[
            Err(Event::JournalBlob { record: set_k2_x }),
            Ok(entry(0, "plain", ValueType::String, None, Value::String(b("p")))),
            Ok(entry(0, "big", ValueType::Set, None, Value::Set(vec![b("a"), b("b"), b("c")]))),
            Ok(entry(0, "h2", ValueType::Hash, None, Value::Hash(vec![(b("f1"), b("x")), (b("f2"), b("y"))]))),
            Err(got.last().unwrap().clone().unwrap_err()),
        ]
    );
}

#[test]
fn index_records_are_skipped_and_the_stream_goes_on() {
    for (name, opcode) in [("op-222-vector-index.rdb", 222u8), ("op-223-shard-doc-index.rdb", 223)] {
        let got = assemble(decode_whole(name));
        assert_eq!(got[3], Err(Event::Skipped { opcode }), "{name}");
        assert_eq!(got[4], Ok(entry(0, "aft", ValueType::String, None, Value::String(b("z")))), "{name}");
    }
}

#[test]
fn key_flags_with_and_without_memcache_flags() {
    let got = assemble(decode_whole("op-220-df-mask.rdb"));
    let flags: Vec<(Bytes, Option<u64>, KeyFlags)> =
        got.into_iter().filter_map(|x| x.ok()).map(|(h, _)| (h.key, h.expire_ms, h.flags)).collect();
    assert_eq!(
        flags,
        vec![
            (b("s"), None, KeyFlags { sticky: true, mc_flags: None }),
            (b("m"), None, KeyFlags { sticky: false, mc_flags: Some(0xdead_beef) }),
            (b("e"), Some(1_767_225_600_000), KeyFlags { sticky: true, mc_flags: Some(7) }),
        ]
    );
}

#[test]
fn every_journal_opcode_with_lsns() {
    let got = decode_whole("journal-opcodes.journal");
    assert_eq!(
        got,
        vec![
            Event::Journal { lsn: 1, record: cmd(0, CommandKind::Command, 7, 1, &["SET", "foo", "bar"]) },
            Event::LsnMarker { lsn: 1 },
            Event::Journal { lsn: 2, record: cmd(1, CommandKind::Expired, 0, 1, &["DEL", "session:1"]) },
            Event::Journal { lsn: 3, record: cmd(1, CommandKind::MultiCommand, 12, 2, &["SET", "a", "1"]) },
            Event::Journal { lsn: 4, record: cmd(1, CommandKind::MultiCommand, 12, 2, &["DEL", "b"]) },
            Event::Journal { lsn: 5, record: JournalRecord { db: 1, op: JournalOp::Exec { txid: 12, shard_cnt: 2 } } },
            Event::Journal { lsn: 6, record: JournalRecord { db: 1, op: JournalOp::Ping } },
            Event::Journal { lsn: 7, record: JournalRecord { db: 1, op: JournalOp::Fin } },
            Event::LsnMarker { lsn: 7 },
        ]
    );
}

#[test]
fn compressed_blocks_and_lzf_journal_blobs() {
    let set_k2_x = cmd(0, CommandKind::Command, 9, 1, &["SET", "k2", "x"]);
    for name in ["op-201-zstd-block.rdb", "op-202-lz4-block.rdb"] {
        let got = assemble(decode_whole(name));
        assert_eq!(
            &got[3..6],
            &[
                Ok(entry(0, "a", ValueType::String, None, Value::String(b("x")))),
                Err(Event::JournalBlob { record: set_k2_x.clone() }),
                Ok(entry(0, "b", ValueType::String, None, Value::String(b("y")))),
            ],
            "{name}"
        );
    }
    let got = assemble(decode_whole("op-210-journal-blob-lzf.rdb"));
    let key = format!("key:{}", "a".repeat(24));
    let value = format!("value:{}", "a".repeat(23));
    assert_eq!(got[3], Err(Event::JournalBlob { record: cmd(0, CommandKind::Command, 0, 1, &["SET", &key, &value]) }));
}
