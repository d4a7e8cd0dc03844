//! Decodes every value of the Redis-written RDB files in the shared corpus, walking the files
//! with a minimal test-only top-level loop (the real RDB decoder lives elsewhere).

use std::path::Path;

use bytes::{Buf, Bytes, BytesMut};

use super::super::event::ValueType;
use super::super::model::Value;
use super::super::{string, Limits, Read};
use super::tests::{build, run, Feed};

const CORPUS: &str = "/work/shared/corpus/dragonfly-testdata";

fn must<T>(r: Read<T>) -> T {
    match r {
        Read::Done(v) => v,
        Read::Need(n) => panic!("file truncated (need {n})"),
    }
}

/// (db, key, type, value) of every key entry in an RDB file.
fn walk(name: &str, limits: Limits) -> Option<Vec<(u64, Bytes, ValueType, Value)>> {
    let path = Path::new(CORPUS).join(name);
    let data = std::fs::read(&path).ok()?;
    let version: u32 = std::str::from_utf8(&data[5..9]).unwrap().parse().unwrap();
    let mut input = BytesMut::from(&data[9..]);
    let mut out = Vec::new();
    let mut db = 0;
    loop {
        let op = input.get_u8();
        match op {
            0xff => break,
            0xfa => {
                must(string::read(&mut input, &limits).unwrap());
                must(string::read(&mut input, &limits).unwrap());
            }
            0xfe => db = must(super::read_packed(&mut input).unwrap()),
            0xfb => {
                must(super::read_packed(&mut input).unwrap());
                must(super::read_packed(&mut input).unwrap());
            }
            0xfc => input.advance(8),
            0xfd => input.advance(4),
            0xf8 => input.advance(1),
            0xf9 => {
                must(super::read_packed(&mut input).unwrap());
            }
            code => {
                let ty = ValueType::from_code(code, version).unwrap_or_else(|| panic!("{name}: type {code}"));
                let key = must(string::read(&mut input, &limits).unwrap());
                // Find the value's extent by decoding it once from the rest of the file.
                let mut probe = input.clone();
                let chunks = {
                    let mut dec = super::ValueDecoder::new(ty, limits);
                    let mut v = Vec::new();
                    while let Some(c) = must(dec.next(&mut probe).unwrap()) {
                        v.push(c);
                    }
                    v
                };
                let used = input.len() - probe.len();
                let body = input.split_to(used);
                // The same bytes fed one at a time must give the same chunks.
                assert_eq!(run(ty, &body, limits, &Feed::Bytewise).unwrap(), chunks, "{name}: key {key:?}");
                out.push((db, key, ty, build(ty, &chunks)));
            }
        }
    }
    assert_eq!(input.len(), 8, "{name}: only the checksum follows EOF");
    Some(out)
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
fn every_corpus_file_decodes() {
    let files = [
        "RDB_TYPE_STREAM_LISTPACKS_2.rdb",
        "RDB_TYPE_STREAM_LISTPACKS_3.rdb",
        "empty.rdb",
        "historical-testdata-small.rdb",
        "historical-tests-dump.rdb",
        "hll.rdb",
        "ignore_expiry.rdb",
        "redis6_small.rdb",
        "redis6_stream.rdb",
        "redis7_small.rdb",
        "redis_json.rdb",
    ];
    let mut total = 0;
    for f in files {
        let Some(entries) = walk(f, small_batches()) else {
            eprintln!("corpus file {f} not present; skipping");
            return;
        };
        total += entries.len();
    }
    assert!(total > 200, "{total} entries");
}

#[test]
fn redis7_small_values() {
    let Some(e) = walk("redis7_small.rdb", small_batches()) else {
        return;
    };
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
    let Some(e) = walk("redis6_small.rdb", small_batches()) else {
        return;
    };
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
    let Some(e) = walk("RDB_TYPE_STREAM_LISTPACKS_2.rdb", small_batches()) else {
        return;
    };
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
    let Some(e) = walk("RDB_TYPE_STREAM_LISTPACKS_3.rdb", small_batches()) else {
        return;
    };
    let (ty, Value::Stream(s)) = find(&e, "mystream") else { panic!() };
    assert_eq!(*ty, ValueType::StreamListpacks3);
    assert_eq!(s.entries.len(), 2);
    assert!(s.groups[0].consumers.iter().all(|c| c.active_time_ms.is_some()));
    let Some(e) = walk("redis6_stream.rdb", small_batches()) else {
        return;
    };
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
    let Some(e) = walk("redis_json.rdb", small_batches()) else {
        return;
    };
    assert_eq!(find(&e, "json-str"), (&ValueType::Module2, &Value::Json(b("\"hello\""))));
    assert_eq!(find(&e, "json-arr"), (&ValueType::Module2, &Value::Json(b("[1,true,\"hello\",3.14]"))));
    let (_, Value::Json(obj)) = find(&e, "json-obj") else { panic!() };
    let parsed: serde_json::Value = serde_json::from_slice(obj).unwrap();
    assert_eq!(parsed["company"], "DragonflyDB");
}

#[test]
fn hll_and_strings() {
    let Some(e) = walk("hll.rdb", small_batches()) else {
        return;
    };
    for (_, key, _, v) in &e {
        let Value::String(s) = v else { panic!() };
        assert!(s.starts_with(b"HYLL"), "{key:?}");
    }
    let Some(e) = walk("historical-testdata-small.rdb", small_batches()) else {
        return;
    };
    assert_eq!(find(&e, "hello:7").1, &Value::String(b("value:7")));
    assert_eq!(find(&e, "foo").1, &Value::String(b("bar")));
}
