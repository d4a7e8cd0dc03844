//! Benchmark of `verify` full mode: two local redis-servers with the same N mixed keys
//! (default 1 M: 70 % strings, the rest small hashes, lists, sets, sorted sets, streams; one
//! key in ten carries a TTL), passes in both directions, keys/s reported with the CPU time the
//! two servers and verify itself spent per key, and the load average.
//!
//! `cargo run --release --example verify_bench -- [keys] [parallel] [batch] [repeats]`
//! `VERIFY_BENCH_MODES=full` (comma list of keys, meta, full; default all three),
//! `VERIFY_BENCH_STRINGS=1`: strings only.

use df2redis::resp::Cmd;
use df2redis::testkit::RedisServer;
use df2redis::verify::engine::{Engine, Settings};
use df2redis::verify::progress::Progress;
use df2redis::verify::{Depth, RedisStore};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

fn commands(n: usize, expire_at_ms: u64) -> impl Iterator<Item = Cmd> {
    let strings_only = std::env::var_os("VERIFY_BENCH_STRINGS").is_some();
    (0..n).flat_map(move |i| {
        let k = format!("key:{i:08}");
        let c = match if strings_only { 0 } else { i % 20 } {
            0..=13 => Cmd::new("SET").arg(&k).arg(format!("{i:0>64}")),
            14 | 15 => {
                let mut c = Cmd::new("HSET").arg(&k);
                for f in 0..10 {
                    c = c.arg(format!("field{f}")).arg(format!("value-{i}-{f}"));
                }
                c
            }
            16 => Cmd::new("RPUSH").arg(&k).args((0..10).map(|e| format!("elem-{e}"))),
            17 => Cmd::new("SADD").arg(&k).args((0..10).map(|e| format!("member-{e}"))),
            18 => {
                let mut c = Cmd::new("ZADD").arg(&k);
                for m in 0..10 {
                    c = c.arg(format!("{}", m as f64 * 1.5)).arg(format!("m{m}"));
                }
                c
            }
            _ => Cmd::new("XADD").arg(&k).arg("*").arg("f").arg("v").arg("g").arg(format!("{i}")),
        };
        // One key in ten expires in an hour, at the same instant on both sides.
        let ttl = (i % 10 == 3).then(|| Cmd::new("PEXPIREAT").arg(k).arg(expire_at_ms));
        std::iter::once(c).chain(ttl)
    })
}

async fn load(s: &RedisServer, n: usize, expire_at_ms: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut p = s.pipeline().await?;
    let mut errors = 0usize;
    p.run(commands(n, expire_at_ms), 1024, |_, f| errors += usize::from(f.is_error())).await?;
    if errors > 0 {
        return Err(format!("{errors} load errors").into());
    }
    Ok(())
}

/// CPU seconds (user + sys) a redis-server has used, from `INFO cpu`.
async fn server_cpu(s: &RedisServer) -> Result<f64, Box<dyn std::error::Error>> {
    let f = s.cmd(&Cmd::new("INFO").arg("cpu")).await?;
    let text = String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned();
    let field = |name: &str| -> f64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap_or(0.0)
    };
    Ok(field("used_cpu_user") + field("used_cpu_sys"))
}

/// CPU seconds (user + sys) of this process, from /proc/self/stat (clock ticks of 10 ms).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// `INFO commandstats` condensed to `cmd calls×µs` (after `CONFIG RESETSTAT`), for profiling.
async fn command_stats(s: &RedisServer) -> Result<String, Box<dyn std::error::Error>> {
    let f = s.cmd(&Cmd::new("INFO").arg("commandstats")).await?;
    let text = String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned();
    let mut out = Vec::new();
    for l in text.lines() {
        let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
        let field = |k: &str| rest.split(',').find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='));
        if matches!(name, "info" | "config" | "client" | "select") {
            continue;
        }
        out.push(format!("{name} {}×{}µs", field("calls").unwrap_or("?"), field("usec_per_call").unwrap_or("?")));
    }
    Ok(out.join(", "))
}

#[path = "bench_common/mod.rs"]
mod bench_common;
use bench_common::loadavg;

struct Pass {
    secs: f64,
    diffs: usize,
    src_cpu: f64,
    tgt_cpu: f64,
    own_cpu: f64,
}

async fn pass(
    s: &RedisServer,
    t: &RedisServer,
    settings: Settings,
) -> Result<(Pass, u64, u64), Box<dyn std::error::Error>> {
    let src = Arc::new(RedisStore::connect_addr("source", s.addr(), Default::default()).await?);
    let tgt = Arc::new(RedisStore::connect_addr("target", t.addr(), Default::default()).await?);
    let engine = Engine::new(src, tgt, settings, Progress::new(true));
    let stats = std::env::var_os("VERIFY_BENCH_STATS").is_some();
    if stats {
        s.cmd(&Cmd::new("CONFIG").arg("RESETSTAT")).await?;
        t.cmd(&Cmd::new("CONFIG").arg("RESETSTAT")).await?;
    }
    let (c0s, c0t, c0o) = (server_cpu(s).await?, server_cpu(t).await?, own_cpu());
    let start = Instant::now();
    let diffs = engine.pass().await?;
    let secs = start.elapsed().as_secs_f64();
    let (c1s, c1t, c1o) = (server_cpu(s).await?, server_cpu(t).await?, own_cpu());
    if stats {
        println!("  source commands: {}", command_stats(s).await?);
        println!("  target commands: {}", command_stats(t).await?);
    }
    if !diffs.is_empty() {
        return Err(format!("unexpected differences: {:?}", &diffs[..diffs.len().min(3)]).into());
    }
    let p = Pass { secs, diffs: diffs.len(), src_cpu: c1s - c0s, tgt_cpu: c1t - c0t, own_cpu: c1o - c0o };
    Ok((p, engine.stats.source_keys.load(Relaxed), engine.stats.target_keys.load(Relaxed)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let parallel = args.get(1).copied().unwrap_or(8);
    let batch = args.get(2).copied().unwrap_or(512);
    let repeats = args.get(3).copied().unwrap_or(1).max(1);
    let modes = std::env::var("VERIFY_BENCH_MODES").unwrap_or_else(|_| "keys,meta,full".into());
    let depths: Vec<Depth> = modes
        .split(',')
        .filter_map(|m| match m.trim() {
            "keys" => Some(Depth::Keys),
            "meta" => Some(Depth::Meta),
            "full" => Some(Depth::Full),
            _ => None,
        })
        .collect();
    let (s, t) = tokio::join!(RedisServer::start(), RedisServer::start());
    let (s, t) = (s?, t?);
    let start = Instant::now();
    let expire_at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64 + 3_600_000;
    let (a, b) = tokio::join!(load(&s, n, expire_at_ms), load(&t, n, expire_at_ms));
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
    let restores = (0..n).filter(|i| i % 20 == 19).zip(dumps).filter_map(|(i, d)| {
        let ttl = if i % 10 == 3 { expire_at_ms } else { 0 };
        let c = d.map(|d| Cmd::new("RESTORE").arg(format!("key:{i:08}")).arg(ttl).arg(&d[..]));
        c.map(|c| if ttl > 0 { c.arg("ABSTTL") } else { c })
    });
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
        println!("redis-benchmark ceiling on the source now: {c:.0} GET/s (-P 64); load {}", loadavg());
    }
    for _ in 0..repeats {
        for &depth in &depths {
            for extras in [true, false] {
                let settings = Settings { depth, parallel, batch, extras, ..Settings::default() };
                let (p, sk, tk) = pass(&s, &t, settings).await?;
                let per = |cpu: f64| cpu / sk.max(1) as f64 * 1e6;
                println!(
                    "{depth:?} {}: {sk} source keys{} in {:.2}s: {:.0} keys/s; cpu µs/key: source redis {:.2}, \
                     target redis {:.2}, verify {:.2}; {} differences; load {}",
                    if extras { "both directions" } else { "source→target only" },
                    if extras { format!(" + {tk} target keys") } else { String::new() },
                    p.secs,
                    sk as f64 / p.secs,
                    per(p.src_cpu),
                    per(p.tgt_cpu),
                    per(p.own_cpu),
                    p.diffs,
                    loadavg()
                );
            }
        }
    }
    Ok(())
}
