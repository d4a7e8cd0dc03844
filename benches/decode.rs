//! Decoder throughput: RDB streams (string-heavy, listpack-heavy, the real corpus flows) and
//! journal records. Run with `cargo xtask bench` (or `cargo bench --bench decode`).

// Bench setup: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use df2redis::proto::event::CommandKind;
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::journal::{encode_record, JournalDecoder, JournalItem};
use df2redis::proto::rdb::RdbDecoder;
use df2redis::proto::writer::RdbWriter;
use df2redis::proto::{EntryHeader, Event, JournalOp, JournalRecord, KeyFlags, Limits, Read, Value, ValueType};

/// String-heavy stream: this many keys...
const STRING_KEYS: usize = 100_000;
/// ...of this many value bytes each.
const STRING_VALUE: usize = 1024;
/// Listpack-heavy stream: this many small hashes, sorted sets and lists each.
const SMALL_CONTAINERS: usize = 30_000;

fn header(i: usize, prefix: &str, value_type: ValueType) -> EntryHeader {
    EntryHeader {
        db: 0,
        key: Bytes::from(format!("{prefix}:{i:08}")),
        value_type,
        expire_ms: None,
        flags: KeyFlags::default(),
    }
}

/// 100k string keys with 1 KiB incompressible-looking values, as one RDB stream.
fn string_heavy() -> Vec<u8> {
    let mut w = RdbWriter::new();
    w.header().aux(b"redis-ver", b"6.2.11").select_db(0);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..STRING_KEYS {
        let value: Vec<u8> = (0..STRING_VALUE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        w.entry(&header(i, "str", ValueType::String), &Value::String(Bytes::from(value))).unwrap();
    }
    w.eof(false);
    w.into_bytes()
}

/// Many small hashes (10 fields), sorted sets (10 members) and lists (10 elements), in the
/// listpack encodings Dragonfly v1.40 writes.
fn listpack_heavy() -> Vec<u8> {
    let mut w = RdbWriter::new();
    w.header().aux(b"redis-ver", b"6.2.11").select_db(0);
    let item = |j: usize| Bytes::from(format!("item-{j}"));
    for i in 0..SMALL_CONTAINERS {
        let hash = Value::Hash((0..10).map(|j| (item(j), Bytes::from(format!("{}", i * 10 + j)))).collect());
        w.entry(&header(i, "hash", ValueType::HashListpack), &hash).unwrap();
        let zset = Value::Zset((0..10).map(|j| (item(j), (i * 10 + j) as f64 / 4.0)).collect());
        w.entry(&header(i, "zset", ValueType::ZsetListpack), &zset).unwrap();
        let list = Value::List((0..10).map(item).collect());
        w.entry(&header(i, "list", ValueType::ListQuicklist2), &list).unwrap();
    }
    w.eof(false);
    w.into_bytes()
}

/// Decodes a whole RDB stream fed in 64 KiB pieces (as a socket would deliver it); returns the
/// number of entries.
fn decode_rdb(bytes: &[u8], limits: Limits) -> usize {
    let mut dec = RdbDecoder::new_unverified(limits);
    let mut entries = 0;
    for piece in bytes.chunks(64 << 10) {
        dec.feed(piece);
        while let Some(ev) = dec.next_event().unwrap() {
            if matches!(ev, Event::EntryEnd { .. }) {
                entries += 1;
            }
            black_box(&ev);
        }
    }
    dec.finish().unwrap();
    entries
}

/// Every flow of every capture in corpus/, with its eof token.
fn corpus_flows() -> Vec<(Vec<u8>, [u8; 40])> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut flows = Vec::new();
    for version in ["dragonfly-v1.40.1", "dragonfly-v1.30.3"] {
        let mut dirs: Vec<_> = std::fs::read_dir(root.join(version)).unwrap().map(|d| d.unwrap().path()).collect();
        dirs.sort();
        for dir in dirs {
            let Ok(text) = std::fs::read_to_string(dir.join("capture.json")) else { continue };
            let cap: serde_json::Value = serde_json::from_str(&text).unwrap();
            for (i, token) in cap["eof_tokens"].as_array().unwrap().iter().enumerate() {
                let token: [u8; 40] = token.as_str().unwrap().as_bytes().try_into().unwrap();
                flows.push((std::fs::read(dir.join(format!("flow{i}.bin"))).unwrap(), token));
            }
        }
    }
    flows
}

fn decode_flows(flows: &[(Vec<u8>, [u8; 40])], limits: Limits) -> usize {
    let mut events = 0;
    for (bytes, token) in flows {
        let mut dec = FlowDecoder::full_sync(*token, limits);
        for piece in bytes.chunks(64 << 10) {
            dec.feed(piece);
            while let Some(ev) = dec.next_event().unwrap() {
                black_box(&ev);
                events += 1;
            }
        }
        dec.finish().unwrap();
    }
    events
}

fn rdb(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("rdb");
    g.sample_size(10);

    let strings = string_heavy();
    assert_eq!(decode_rdb(&strings, limits), STRING_KEYS);
    g.throughput(Throughput::Bytes(strings.len() as u64));
    g.bench_function("string_heavy_100k_x_1KiB", |b| b.iter(|| decode_rdb(black_box(&strings), limits)));

    let small = listpack_heavy();
    assert_eq!(decode_rdb(&small, limits), 3 * SMALL_CONTAINERS);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("listpack_heavy_90k_small_containers", |b| b.iter(|| decode_rdb(black_box(&small), limits)));
    g.throughput(Throughput::Elements(3 * SMALL_CONTAINERS as u64));
    g.bench_function("listpack_heavy_90k_small_containers_keys", |b| b.iter(|| decode_rdb(black_box(&small), limits)));

    let flows = corpus_flows();
    let total: usize = flows.iter().map(|(b, _)| b.len()).sum();
    assert!(decode_flows(&flows, limits) > 0);
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("corpus_all_flows", |b| b.iter(|| decode_flows(black_box(&flows), limits)));
    g.finish();
}

/// Number of generated journal records.
const JOURNAL_RECORDS: usize = 1_000_000;

/// 1M records cycling SET / HSET / DEL, each with the SELECT prefix Dragonfly writes.
fn journal_stream() -> Vec<u8> {
    let mut out = Vec::with_capacity(JOURNAL_RECORDS * 48);
    let value = Bytes::from_static(b"0123456789abcdef");
    for i in 0..JOURNAL_RECORDS {
        let key = Bytes::from(format!("key:{i:08}"));
        let args = match i % 3 {
            0 => vec![Bytes::from_static(b"SET"), key, value.clone()],
            1 => vec![Bytes::from_static(b"HSET"), key, Bytes::from_static(b"field"), value.clone()],
            _ => vec![Bytes::from_static(b"DEL"), key],
        };
        let rec = JournalRecord {
            db: 0,
            op: JournalOp::Command { kind: CommandKind::Command, txid: i as u64, shard_cnt: 1, args },
        };
        encode_record(&mut out, &rec, true);
    }
    out
}

/// Decodes every record of `input` (the bytes a socket reader has already buffered).
fn decode_journal(mut input: BytesMut, limits: &Limits) -> usize {
    let mut dec = JournalDecoder::new();
    let mut n = 0;
    while let Ok(Read::Done(item)) = dec.next(&mut input, limits) {
        if let JournalItem::Record(rec) = item {
            black_box(&rec);
            n += 1;
        }
    }
    n
}

fn journal(c: &mut Criterion) {
    let bytes = journal_stream();
    let limits = Limits::default();
    assert_eq!(decode_journal(BytesMut::from(&bytes[..]), &limits), JOURNAL_RECORDS);
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(JOURNAL_RECORDS as u64));
    // The copy into a fresh buffer (48 MB: memcpy and first-touch page faults) is setup, not
    // decoding: a flow reader decodes from the buffer its socket reads filled.
    g.bench_function("set_hset_del_1M_records", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            |input| decode_journal(black_box(input), &limits),
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
    // Wall-clock figures above depend on what else the machine runs; the thread's own CPU time
    // (Linux schedstat) does not: records per second of one core actually spent decoding.
    let mut rates: Vec<f64> = (0..7)
        .filter_map(|_| {
            let input = BytesMut::from(&bytes[..]);
            let t0 = thread_cpu_secs()?;
            let n = decode_journal(black_box(input), &limits);
            let t1 = thread_cpu_secs()?;
            Some(n as f64 / (t1 - t0) / 1e6)
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    if let Some(m) = rates.get(rates.len() / 2) {
        println!(
            "journal/set_hset_del_1M_records: {m:.2} M records/s per core of CPU time (median of {})",
            rates.len()
        );
    }
}

/// This thread's CPU time so far (`/proc/thread-self/schedstat`), if the system exposes it.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

criterion_group!(benches, rdb, journal);
criterion_main!(benches);
