//! Benchmark of `verify` full mode: two local redis-servers with the same N mixed keys
//! (default 1 M: 70 % strings, the rest small hashes, lists, sets, sorted sets, streams),
//! one full pass in both directions, keys/s reported.
//!
//! `cargo run --release --example verify_bench -- [keys] [parallel] [batch]`
//! (`VERIFY_BENCH_STRINGS=1`: strings only.)

use df2redis::resp::Cmd;
use df2redis::testkit::RedisServer;
use df2redis::verify::engine::{Engine, Settings};
use df2redis::verify::progress::Progress;
use df2redis::verify::{Depth, RedisStore};
use std::sync::Arc;
use std::time::Instant;

fn commands(n: usize) -> impl Iterator<Item = Cmd> {
    // VERIFY_BENCH_STRINGS=1: strings only.
    let strings_only = std::env::var_os("VERIFY_BENCH_STRINGS").is_some();
    (0..n).map(move |i| {
        let k = format!("key:{i:08}");
        match if strings_only { 0 } else { i % 20 } {
            0..=13 => Cmd::new("SET").arg(k).arg(format!("{i:0>64}")),
            14 | 15 => {
                let mut c = Cmd::new("HSET").arg(k);
                for f in 0..10 {
                    c = c.arg(format!("field{f}")).arg(format!("value-{i}-{f}"));
                }
                c
            }
            16 => Cmd::new("RPUSH").arg(k).args((0..10).map(|e| format!("elem-{e}"))),
            17 => Cmd::new("SADD").arg(k).args((0..10).map(|e| format!("member-{e}"))),
            18 => {
                let mut c = Cmd::new("ZADD").arg(k);
                for m in 0..10 {
                    c = c.arg(format!("{}", m as f64 * 1.5)).arg(format!("m{m}"));
                }
                c
            }
            _ => Cmd::new("XADD").arg(k).arg("*").arg("f").arg("v").arg("g").arg(format!("{i}")),
        }
    })
}

async fn load(s: &RedisServer, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut p = s.pipeline().await?;
    let mut errors = 0usize;
    p.run(commands(n), 1024, |_, f| errors += usize::from(f.is_error())).await?;
    if errors > 0 {
        return Err(format!("{errors} load errors").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let parallel = args.get(1).copied().unwrap_or(8);
    let batch = args.get(2).copied().unwrap_or(512);
    let (s, t) = tokio::join!(RedisServer::start(), RedisServer::start());
    let (s, t) = (s?, t?);
    let start = Instant::now();
    let (a, b) = tokio::join!(load(&s, n), load(&t, n));
    a?;
    b?;
    println!("loaded {n} keys into each server in {:.1}s", start.elapsed().as_secs_f64());
    // The streams got server-assigned ids: copy them exactly so both sides are equal.
    let mut p = t.pipeline().await?;
    p.run((0..n).filter(|i| i % 20 == 19).map(|i| Cmd::new("DEL").arg(format!("key:{i:08}"))), 1024, |_, _| {}).await?;
    let mut src = s.pipeline().await?;
    let mut dumps = Vec::new();
    src.run((0..n).filter(|i| i % 20 == 19).map(|i| Cmd::new("DUMP").arg(format!("key:{i:08}"))), 1024, |_, f| {
        dumps.push(f.to_bytes())
    })
    .await?;
    let restores = (0..n)
        .filter(|i| i % 20 == 19)
        .zip(dumps)
        .filter_map(|(i, d)| d.map(|d| Cmd::new("RESTORE").arg(format!("key:{i:08}")).arg(0).arg(&d[..])));
    p.run(restores, 1024, |_, _| {}).await?;

    // The server's own ceiling in this run: pipelined GETs (redis-benchmark -P 64), for a ratio.
    let ceiling = |port: u16| -> Option<f64> {
        let out = std::process::Command::new("redis-benchmark")
            .args(["-p", &port.to_string(), "-P", "64", "-n", "1000000", "-r", "1000000", "-t", "get", "--csv"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("\"GET\""))?;
        line.split(',').nth(1)?.trim_matches('"').parse().ok()
    };
    if let Some(c) = ceiling(s.port()) {
        println!("redis-benchmark ceiling on the source now: {c:.0} GET/s (-P 64)");
    }
    for depth in [Depth::Keys, Depth::Meta, Depth::Full, Depth::Full] {
        let src = Arc::new(RedisStore::connect_addr("source", s.addr(), Default::default()).await?);
        let tgt = Arc::new(RedisStore::connect_addr("target", t.addr(), Default::default()).await?);
        let settings = Settings { depth, parallel, batch, ..Settings::default() };
        let engine = Engine::new(src, tgt, settings, Progress::new(true));
        let start = Instant::now();
        let diffs = engine.pass().await?;
        let secs = start.elapsed().as_secs_f64();
        let sk = engine.stats.source_keys.load(std::sync::atomic::Ordering::Relaxed);
        let tk = engine.stats.target_keys.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "{depth:?}: {sk} source keys compared + {tk} target keys checked for extras in {secs:.2}s: \
             {:.0} keys/s (source keys / wall time, both directions included); {} differences",
            sk as f64 / secs,
            diffs.len()
        );
        let settings = Settings { depth, parallel, batch, extras: false, ..Settings::default() };
        let src = Arc::new(RedisStore::connect_addr("source", s.addr(), Default::default()).await?);
        let tgt = Arc::new(RedisStore::connect_addr("target", t.addr(), Default::default()).await?);
        let one_way = Engine::new(src, tgt, settings, Progress::new(true));
        let start = Instant::now();
        one_way.pass().await?;
        let secs1 = start.elapsed().as_secs_f64();
        println!("{depth:?} source→target only: {:.0} keys/s", sk as f64 / secs1);
        if !diffs.is_empty() {
            return Err(format!("unexpected differences: {:?}", &diffs[..diffs.len().min(3)]).into());
        }
    }
    Ok(())
}
