//! Replication benchmark: full sync of a generated dataset and journal replay ops/s of the
//! `df2redis replicate` binary (a separate process, so its peak RSS is its own) from the mock
//! master into a local redis-server, against the same Redis's pipelined ingest ceiling
//! (`redis-benchmark -t set -d 100 -P 64`, one key and `-r 1000000000` distinct keys) measured in the same
//! round. Medians over `--rounds`.
//!
//! `cargo build --release --bin df2redis && cargo run --release --example replicate_bench --
//!  [--keys 1000000] [--size 100] [--records 1000000] [--shards 2] [--rounds 3]`
//!
//! Full sync: from process start until every flow sent its first ACK (the target confirmed the
//! whole snapshot). Journal replay: the process is paused (SIGSTOP) while `--records` SETs are
//! journaled by the master, then resumed (SIGCONT); replay time is until the ACKs reach the
//! master's offsets. Peak RSS: VmHWM of the df2redis process.
//!
//! The machine may be shared, so besides wall-clock rates the bench reports CPU seconds per
//! 1 M keys (records) of df2redis, redis-server and the mock master (this process) per phase,
//! and redis-server's CPU per 1 M SETs during `redis-benchmark -r`: when ours is close to that,
//! the target, not df2redis, bounds the rate.

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use df2redis::proto::Value;
use df2redis::testkit::RedisServer;
use mock_master::{Entry, MockMaster};

#[path = "bench_common/mod.rs"]
mod bench_common;
use bench_common::{binary, cmds_reads, cpu_s, loadavg, median, spawn_replicate, wait_acks};

fn cpu3(c: [f64; 3]) -> String {
    bench_common::cpu3("redis", c)
}

#[derive(Parser, Debug)]
struct Args {
    /// Keys in the generated dataset (strings).
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Journal records replayed.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Shards (flows) of the mock master.
    #[arg(long, default_value_t = 2)]
    shards: u32,
    /// Rounds (medians reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Extra arguments for `df2redis replicate` (e.g. `--queue-mib 64`).
    #[arg(long, allow_hyphen_values = true, num_args = 0..)]
    extra: Vec<String>,
    /// Pin the target's servers to CPU 0 and everything else (mock master, df2redis,
    /// redis-benchmark) to the other CPUs.
    #[arg(long)]
    pin: bool,
}

/// `redis-benchmark -t set -P 64`: SET/s and the client's CPU seconds; one key, or distinct keys.
fn redis_benchmark(addr: &str, n: usize, size: usize, random_keys: bool) -> (f64, f64) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let (n, size) = (n.to_string(), size.to_string());
    let mut a = vec!["-h", host, "-p", port, "-t", "set", "-d", &size, "-P", "64", "-n", &n];
    if random_keys {
        // Keys drawn from 10^9: nearly every SET inserts a new key, as the full sync does
        // (`-r N` over N requests overwrites an existing key in 37 % of them, which is cheaper).
        a.extend(["-r", "1000000000"]);
    }
    bench_common::redis_benchmark(&a)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn depth(a: (f64, f64), b: (f64, f64)) -> f64 {
    (b.0 - a.0) / (b.1 - a.1).max(1.0)
}

/// Figures of one round.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    ceiling: f64,
    ceiling_r: f64,
    /// redis-server CPU seconds per 1 M SETs during `redis-benchmark -r`.
    redis_r_cpu: f64,
    /// The redis-benchmark client's CPU seconds per 1 M SETs (`-r`).
    client_cpu: f64,
    /// Commands per socket read on redis-server: redis-benchmark -r, full sync, replay.
    depth: [f64; 3],
    keys_s: f64,
    full_s: f64,
    /// CPU seconds per 1 M keys: df2redis, redis-server, mock master.
    full_cpu: [f64; 3],
    ops_s: f64,
    replay_s: f64,
    replay_cpu: [f64; 3],
    rss: f64,
}

async fn round(args: &Args, bin: &std::path::Path, redis: &RedisServer, source: &MockMaster, r: usize) -> Round {
    let addr = redis.addr().to_string();
    let me = std::process::id();
    let mut out = Round::default();
    redis.flushall().await.expect("flushall");
    out.ceiling = redis_benchmark(&addr, 2_000_000, args.size, false).0;
    redis.flushall().await.expect("flushall");
    let c = cpu_s(redis.pid());
    let d0 = cmds_reads(&addr).await;
    let (rate, client) = redis_benchmark(&addr, 2_000_000, args.size, true);
    out.ceiling_r = rate;
    out.redis_r_cpu = (cpu_s(redis.pid()) - c) / 2.0;
    out.client_cpu = client / 2.0;
    out.depth[0] = depth(d0, cmds_reads(&addr).await);
    redis.flushall().await.expect("flushall");

    let m = source.clone().start().await.expect("mock master");
    let h = m.handle.clone();
    let (state, cfg) =
        bench_common::bench_config("bench", r, &format!("{{addr: '{}'}}", m.addr), &format!("{{addr: '{addr}'}}"), "");
    let (r0, m0) = (cpu_s(redis.pid()), cpu_s(me));
    let d0 = cmds_reads(&addr).await;
    let t0 = Instant::now();
    let mut child = spawn_replicate(bin, &cfg, &args.extra);
    let pid = child.id();
    wait_acks(&h, "full sync", |acks, want| acks.len() == want.len() && acks.iter().all(|a| !a.is_empty())).await;
    out.full_s = t0.elapsed().as_secs_f64();
    let per_m = 1e6 / args.keys as f64;
    out.full_cpu = [cpu_s(pid) * per_m, (cpu_s(redis.pid()) - r0) * per_m, (cpu_s(me) - m0) * per_m];
    out.keys_s = args.keys as f64 / out.full_s;
    out.depth[1] = depth(d0, cmds_reads(&addr).await);

    // Journal replay: pause df2redis, journal the records, resume and time the catch-up.
    let kill = |sig: &str| {
        Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    };
    kill("-STOP");
    for i in 0..args.records {
        h.exec(0, &["SET", &format!("j:{:08}", i % 500_000), "0123456789abcdef0123456789abcdef"]);
    }
    let (c0, r0, m0) = (cpu_s(pid), cpu_s(redis.pid()), cpu_s(me));
    let d0 = cmds_reads(&addr).await;
    let t1 = Instant::now();
    kill("-CONT");
    wait_acks(&h, "journal replay", |acks, want| acks.iter().zip(want).all(|(a, w)| a.last() == Some(w))).await;
    out.replay_s = t1.elapsed().as_secs_f64();
    out.ops_s = args.records as f64 / out.replay_s;
    out.depth[2] = depth(d0, cmds_reads(&addr).await);
    let per_m = 1e6 / args.records as f64;
    out.replay_cpu = [(cpu_s(pid) - c0) * per_m, (cpu_s(redis.pid()) - r0) * per_m, (cpu_s(me) - m0) * per_m];
    out.rss = peak_rss_mib(pid);
    kill("-TERM");
    let st = child.wait().expect("wait");
    assert!(st.success(), "df2redis exited with {st}");
    m.stop().await;
    let _ = std::fs::remove_dir_all(&state);
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = Args::parse();
    let bin = binary();
    let redis = RedisServer::start().await.expect("start redis-server");
    let pinned = args.pin && bench_common::pin_target(&[redis.pid()]);
    let mut source = MockMaster::new().shards(args.shards);
    let value = Bytes::from(vec![b'v'; args.size]);
    // Keys are slices of one buffer: the master's snapshot clones them without allocating.
    let names = Bytes::from((0..args.keys).flat_map(|i| format!("key:{i:010}").into_bytes()).collect::<Vec<u8>>());
    for i in 0..args.keys {
        source.dataset_mut().insert(0, names.slice(i * 14..(i + 1) * 14), Entry::new(Value::String(value.clone())));
    }
    println!(
        "{} keys of {} B, {} journal SETs, {} flows, {} rounds; {}; loadavg {}",
        args.keys,
        args.size,
        args.records,
        args.shards,
        args.rounds,
        if pinned { "redis-server pinned to CPU 0, the rest to the other CPUs" } else { "not pinned" },
        loadavg()
    );
    let mut rounds = Vec::new();
    for r in 0..args.rounds.max(1) {
        let x = round(&args, &bin, &redis, &source, r).await;
        println!(
            "round {r}: ceiling {:.0} (-r {:.0}, redis {:.2} s/M) | full sync {:.0} keys/s ({:.0} % / {:.0} % of -r) cpu s/M: {} \
             | replay {:.0} ops/s cpu s/M: {} | cmds/read {:.0} / {:.0} / {:.0} | rss {:.0} MiB | loadavg {}",
            x.ceiling,
            x.ceiling_r,
            x.redis_r_cpu,
            x.keys_s,
            100.0 * x.keys_s / x.ceiling,
            100.0 * x.keys_s / x.ceiling_r,
            cpu3(x.full_cpu),
            x.ops_s,
            cpu3(x.replay_cpu),
            x.depth[0],
            x.depth[1],
            x.depth[2],
            x.rss,
            loadavg()
        );
        rounds.push(x);
    }
    let med = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let ratio = med(&|x| x.keys_s / x.ceiling);
    let ratio_r = med(&|x| x.keys_s / x.ceiling_r);
    println!("medians of {} rounds (loadavg now {}):", rounds.len(), loadavg());
    println!(
        "  redis-benchmark -t set -d {} -P 64: {:.0} ops/s; with -r: {:.0} ops/s, redis-server {:.2} CPU s per 1 M SETs",
        args.size,
        med(&|x| x.ceiling),
        med(&|x| x.ceiling_r),
        med(&|x| x.redis_r_cpu)
    );
    println!(
        "  full sync: {:.0} keys/s ({:.2} s) = {:.0} % of the one-key ceiling, {:.0} % of the -r ceiling (per-round ratios); \
         CPU s per 1 M keys: df2redis {:.2}, redis-server {:.2}, mock master {:.2}",
        med(&|x| x.keys_s),
        med(&|x| x.full_s),
        100.0 * ratio,
        100.0 * ratio_r,
        med(&|x| x.full_cpu[0]),
        med(&|x| x.full_cpu[1]),
        med(&|x| x.full_cpu[2])
    );
    // What 2 cores allow when every process is CPU-bound: the -r ceiling costs redis + client
    // per key, the full sync costs df2redis + redis + mock per key.
    let full = med(&|x| x.full_cpu.iter().sum());
    let bench = med(&|x| x.redis_r_cpu + x.client_cpu);
    println!(
        "  CPU per 1 M keys: redis-benchmark -r path {:.2} s (client {:.2}), full-sync path {:.2} s: \
         with both CPU-bound on 2 cores the ratio could reach {:.0} %",
        bench,
        med(&|x| x.client_cpu),
        full,
        100.0 * bench / full
    );
    println!(
        "  journal replay: {:.0} ops/s ({:.2} s); CPU s per 1 M records: df2redis {:.2}, redis-server {:.2}, mock master {:.2}",
        med(&|x| x.ops_s),
        med(&|x| x.replay_s),
        med(&|x| x.replay_cpu[0]),
        med(&|x| x.replay_cpu[1]),
        med(&|x| x.replay_cpu[2])
    );
    println!(
        "  df2redis peak RSS: {:.0} MiB (max {:.0})",
        med(&|x| x.rss),
        rounds.iter().map(|x| x.rss).fold(0.0, f64::max)
    );
}
