//! CPU cost of the RESP layer without I/O: encoding SET commands, decoding `+OK` and bulk/array
//! replies, slot hashing, and server-side command parsing.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use df2redis::resp::server::CommandReader;
use df2redis::resp::{encode_command, Cmd, Decoder, Frame};
use df2redis::target::route::key_slot;
use std::hint::black_box;

fn encode(c: &mut Criterion) {
    let val = vec![b'x'; 100];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("encode_command SET 100B x1000", |b| {
        let mut out = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for i in 0..1000u32 {
                encode_command(&mut out, &[&b"SET"[..], &i.to_le_bytes(), &val]);
            }
            black_box(out.len())
        })
    });
    g.bench_function("Cmd builder SET 100B x1000", |b| {
        let mut out = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for i in 0..1000u32 {
                Cmd::new("SET").arg(i.to_le_bytes()).arg(&val).encode(&mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1000));
    let oks: Vec<u8> = b"+OK\r\n".repeat(1000);
    g.bench_function("+OK x1000", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&oks[..]);
            let mut d = Decoder::default();
            let mut n = 0;
            while let Some(f) = d.decode(&mut buf).expect("valid") {
                n += usize::from(f.is_ok());
            }
            black_box(n)
        })
    });
    let mut bulks = BytesMut::new();
    for _ in 0..1000 {
        Frame::Bulk(vec![b'v'; 100].into()).encode(&mut bulks);
    }
    g.bench_function("bulk 100B x1000", |b| {
        b.iter(|| {
            let mut buf = bulks.clone();
            let mut d = Decoder::default();
            let mut n = 0;
            while let Some(f) = d.decode(&mut buf).expect("valid") {
                n += f.as_bytes().map_or(0, <[u8]>::len);
            }
            black_box(n)
        })
    });
    let mut cmds = BytesMut::new();
    for i in 0..1000u32 {
        encode_command(&mut cmds, &[&b"SET"[..], &i.to_le_bytes(), &[b'x'; 100]]);
    }
    g.bench_function("server CommandReader SET x1000", |b| {
        b.iter(|| {
            let mut buf = cmds.clone();
            let mut r = CommandReader::default();
            let mut n = 0;
            while let Some(args) = r.read(&mut buf).expect("valid") {
                n += args.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn slots(c: &mut Criterion) {
    let keys: Vec<String> = (0..1000).map(|i| format!("user:{i}:profile")).collect();
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("key_slot x1000", |b| {
        b.iter(|| keys.iter().map(|k| u32::from(key_slot(k.as_bytes()))).sum::<u32>())
    });
    g.finish();
}

criterion_group!(benches, encode, decode, slots);
criterion_main!(benches);
