//! Ingest benchmark: SET with 100-byte values through `resp::Pipeline` into a local redis-server,
//! against `redis-benchmark -t set -d 100 -P 64 -n 2000000 -q` on the same server in the same run.
//!
//! `cargo run --release --example ingest -- [--n 2000000] [--window 512] [--conns 1] [--rounds 3]`
//! (starts its own redis-server through the testkit unless `--addr host:port` is given).

use std::io::Write as _;
use std::time::Instant;

use clap::Parser;
use df2redis::resp::{ConnectOptions, Frame, Pipeline};
use df2redis::testkit::{command, RedisServer};

#[derive(Parser, Debug)]
struct Args {
    /// Commands per run.
    #[arg(long, default_value_t = 2_000_000)]
    n: usize,
    /// Commands in flight per connection.
    #[arg(long, default_value_t = 512)]
    window: usize,
    /// Parallel connections (each its own pipeline).
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Rounds (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Use this server instead of starting one.
    #[arg(long)]
    addr: Option<String>,
}

/// CPU seconds (user + system) this process has used so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// SET `n` keys (`key:<i>` when `distinct`, else one key like redis-benchmark without -r).
async fn ours(addr: &str, n: usize, conns: usize, window: usize, size: usize, distinct: bool) -> (f64, f64) {
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let per = n / conns;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut p = Pipeline::connect(&addr, &ConnectOptions::default()).await.expect("connect");
            let val = vec![b'x'; size];
            let mut key = Vec::with_capacity(32);
            let mut errors = 0usize;
            let mut check = |f: Frame| errors += usize::from(!f.is_ok());
            for i in 0..per {
                if p.in_flight() >= window {
                    check(p.next_reply().await.expect("reply"));
                }
                key.clear();
                if distinct {
                    write!(key, "key:{c}:{i}").expect("format");
                } else {
                    key.extend_from_slice(b"key:__rand_int__");
                }
                p.push_args(&[&b"SET"[..], &key, &val]);
            }
            p.drain_with(check).await.expect("drain");
            assert_eq!(errors, 0, "error replies");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let done = (per * conns) as f64;
    (done / start.elapsed().as_secs_f64(), (cpu_seconds() - cpu0) * 1e9 / done)
}

fn redis_benchmark(addr: &str, n: usize, size: usize, random_keys: bool) -> f64 {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = std::process::Command::new("redis-benchmark");
    cmd.args(["-h", host, "-p", port, "-t", "set", "-d", &size.to_string(), "-P", "64", "-n", &n.to_string(), "-q"]);
    if random_keys {
        cmd.args(["-r", &n.to_string()]);
    }
    let out = cmd.output().expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 523560.22 requests per second, p50=..." (progress lines end in \r).
    let line = text.rsplit('\r').find(|l| l.contains("requests per second")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("unparsed: {text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = Args::parse();
    let server = match &args.addr {
        Some(_) => None,
        None => Some(RedisServer::start().await.expect("start redis-server")),
    };
    let addr = args.addr.clone().unwrap_or_else(|| server.as_ref().map(|s| s.addr().to_owned()).unwrap_or_default());
    let flush = || async { command(&addr, None, &df2redis::resp::Cmd::new("FLUSHALL")).await.expect("flushall") };
    let (mut rb, mut rb_r, mut same, mut distinct, mut cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        flush().await;
        rb.push(redis_benchmark(&addr, args.n, args.size, false));
        flush().await;
        let (rate, ns) = ours(&addr, args.n, args.conns, args.window, args.size, false).await;
        same.push(rate);
        cpu.push(ns);
        flush().await;
        rb_r.push(redis_benchmark(&addr, args.n, args.size, true));
        flush().await;
        let (rate, ns) = ours(&addr, args.n, args.conns, args.window, args.size, true).await;
        distinct.push(rate);
        cpu.push(ns);
        eprintln!(
            "round {round}: redis-benchmark {:.0}/s, ours(same key) {:.0}/s, redis-benchmark -r {:.0}/s, ours(distinct) {:.0}/s",
            rb[round], same[round], rb_r[round], distinct[round]
        );
    }
    // Paired ratios (each round's two runs are adjacent in time, so they share the machine's load).
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    let (pair_same, pair_distinct) = (ratio(&same, &rb), ratio(&distinct, &rb_r));
    let (rb, same, rb_r, distinct, cpu) = (median(rb), median(same), median(rb_r), median(distinct), median(cpu));
    println!(
        "SET {} B, n={}, window={}, conns={}: redis-benchmark -P 64: {rb:.0} ops/s; Pipeline same key: {same:.0} ops/s ({:.0} %)",
        args.size,
        args.n,
        args.window,
        args.conns,
        100.0 * same / rb
    );
    println!(
        "distinct keys: redis-benchmark -P 64 -r {}: {rb_r:.0} ops/s; Pipeline: {distinct:.0} ops/s ({:.0} %)",
        args.n,
        100.0 * distinct / rb_r
    );
    println!(
        "median of per-round ratios: same key {:.0} %, distinct keys {:.0} %",
        100.0 * pair_same,
        100.0 * pair_distinct
    );
    println!("client CPU per SET (median): {cpu:.0} ns");
}
