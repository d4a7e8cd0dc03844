//! Checks particular values of the Redis-written RDB files in `corpus/dragonfly-testdata/`
//! (decoded with the real `RdbDecoder` and `Assembler`, with tiny chunk batches):
//! `tests/corpus_rdb.rs` decodes every file and snapshots it; these tests pin down values
//! of each container encoding by hand. A missing corpus fails the tests.

use std::path::Path;

use bytes::Bytes;

use super::super::assemble::{Assembled, Assembler};
use super::super::event::{Event, ValueType};
use super::super::model::Value;
use super::super::rdb::RdbDecoder;
use super::super::Limits;

/// (db, key, type, value) of every key entry in an RDB file of the corpus, decoded whole; the
/// same file fed one byte at a time must give the same events.
fn walk(name: &str, limits: Limits) -> Vec<(u64, Bytes, ValueType, Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/dragonfly-testdata").join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decode = |piece: usize| {
        let mut dec = RdbDecoder::new(limits);
        let mut events = Vec::new();
        for p in data.chunks(piece) {
            dec.feed(p);
            while let Some(ev) = dec.next_event().unwrap_or_else(|e| panic!("{name}: {e}")) {
                events.push(ev);
            }
        }
        dec.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        events
    };
    let events = decode(data.len());
    assert!(decode(1) == events, "{name}: 1-byte feeding differs");
    assert!(matches!(events.last(), Some(Event::RdbEnd { verified: Some(true), .. })), "{name}: checksum");
    let mut asm = Assembler::new();
    let mut out = Vec::new();
    for ev in events {
        if let Some(Assembled::Entry { header, value }) = asm.push(ev).unwrap_or_else(|e| panic!("{name}: {e}")) {
            out.push((u64::from(header.db), header.key, header.value_type, value));
        }
    }
    out
}

fn small_batches() -> Limits {
    Limits { batch_elements: 3, batch_bytes: 50, ..Limits::default() }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn find<'a>(entries: &'a [(u64, Bytes, ValueType, Value)], key: &str) -> (&'a ValueType, &'a Value) {
    let e = entries.iter().find(|e| e.1 == key).unwrap_or_else(|| panic!("key {key} missing"));
    (&e.2, &e.3)
}

#[test]
fn redis7_small_values() {
    let e = walk("redis7_small.rdb", small_batches());
    assert_eq!(find(&e, "my-list"), (&ValueType::ListQuicklist2, &Value::List(vec![b("list2"), b("list1")])));
    assert_eq!(
        find(&e, "zset"),
        (&ValueType::ZsetListpack, &Value::Zset(vec![(b("einstein"), 0.0), (b("schrodinger"), 1.0)]))
    );
    assert_eq!(find(&e, "my-set"), (&ValueType::SetListpack, &Value::Set(vec![b("acme"), b("redis")])));
    assert_eq!(
        find(&e, "my-hset"),
        (&ValueType::HashListpack, &Value::Hash(vec![(b("acme"), b("44")), (b("field"), b("22"))]))
    );
}

#[test]
fn redis6_small_values() {
    let e = walk("redis6_small.rdb", small_batches());
    let types: Vec<(String, u8)> = e.iter().map(|x| (String::from_utf8_lossy(&x.1).into_owned(), x.2.code())).collect();
    for (k, code) in
        [("set1", 2), ("zset_zl", 12), ("list1", 14), ("hset_zl", 13), ("hset_ht", 4), ("zset_sl", 5), ("intset", 11)]
    {
        assert!(types.contains(&(k.to_string(), code)), "{k} type {code} in {types:?}");
    }
    let (_, Value::Zset(z)) = find(&e, "zset_sl") else { panic!() };
    assert!(!z.is_empty());
    let (_, Value::List(l)) = find(&e, "list2") else { panic!() };
    assert!(l.iter().any(|x| x.len() > 64), "list2 holds a long element");
    assert_eq!(e.iter().filter(|x| x.0 == 1).count(), 10);
}

#[test]
fn streams_v1_v2_v3() {
    let e = walk("RDB_TYPE_STREAM_LISTPACKS_2.rdb", small_batches());
    let (ty, Value::Stream(s)) = find(&e, "mystream") else { panic!() };
    assert_eq!(*ty, ValueType::StreamListpacks2);
    assert_eq!(s.entries.len(), 2);
    assert_eq!(s.entries[0].fields, vec![(b("foo"), b("bar"))]);
    assert_eq!(s.entries[1].fields, vec![(b("foo"), b("bar2"))]);
    assert_eq!(s.meta.length, 2);
    assert!(s.meta.v2.is_some());
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].name, b("mygroup"));
    assert!(s.groups[0].entries_read.is_some());
    let e = walk("RDB_TYPE_STREAM_LISTPACKS_3.rdb", small_batches());
    let (ty, Value::Stream(s)) = find(&e, "mystream") else { panic!() };
    assert_eq!(*ty, ValueType::StreamListpacks3);
    assert_eq!(s.entries.len(), 2);
    assert!(s.groups[0].consumers.iter().all(|c| c.active_time_ms.is_some()));
    let e = walk("redis6_stream.rdb", small_batches());
    assert_eq!(e.len(), 11);
    for (_, key, ty, v) in &e {
        assert_eq!(*ty, ValueType::StreamListpacks, "{key:?}");
        let Value::Stream(s) = v else { panic!() };
        assert_eq!(s.meta.length, s.entries.len() as u64, "{key:?}");
        assert_eq!(s.entries.last().map(|x| x.id), Some(s.meta.last_id), "{key:?}");
    }
}

#[test]
fn redis_json_module_values() {
    let e = walk("redis_json.rdb", small_batches());
    assert_eq!(find(&e, "json-str"), (&ValueType::Module2, &Value::Json(b("\"hello\""))));
    assert_eq!(find(&e, "json-arr"), (&ValueType::Module2, &Value::Json(b("[1,true,\"hello\",3.14]"))));
    let (_, Value::Json(obj)) = find(&e, "json-obj") else { panic!() };
    let parsed: serde_json::Value = serde_json::from_slice(obj).unwrap();
    assert_eq!(parsed["company"], "DragonflyDB");
}

#[test]
fn hll_and_strings() {
    let e = walk("hll.rdb", small_batches());
    for (_, key, _, v) in &e {
        let Value::String(s) = v else { panic!() };
        assert!(s.starts_with(b"HYLL"), "{key:?}");
    }
    let e = walk("historical-testdata-small.rdb", small_batches());
    assert_eq!(find(&e, "hello:7").1, &Value::String(b("value:7")));
    assert_eq!(find(&e, "foo").1, &Value::String(b("bar")));
}
