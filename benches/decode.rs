//! Decoder throughput: RDB streams (string-heavy, listpack-heavy, the real corpus flows) and
//! journal records. Run with `cargo xtask bench` (or `cargo bench --bench decode`).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use df2redis::proto::event::CommandKind;
use df2redis::proto::journal::{encode_record, JournalDecoder, JournalItem};
use df2redis::proto::{JournalOp, JournalRecord, Limits, Read};

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

fn decode_journal(bytes: &[u8], limits: &Limits) -> usize {
    let mut dec = JournalDecoder::new();
    let mut input = BytesMut::from(bytes);
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
    assert_eq!(decode_journal(&bytes, &limits), JOURNAL_RECORDS);
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(JOURNAL_RECORDS as u64));
    g.bench_function("set_hset_del_1M_records", |b| b.iter(|| decode_journal(black_box(&bytes), &limits)));
    g.finish();
}

criterion_group!(benches, journal);
criterion_main!(benches);
