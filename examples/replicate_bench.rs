//! Replication benchmark: full sync of a generated dataset and journal replay ops/s of the
//! `df2redis replicate` binary (a separate process, so its peak RSS is its own) from the mock
//! master into a local redis-server, against the same Redis's pipelined ingest ceiling
//! (`redis-benchmark -t set -d 100 -P 64`) measured in the same run.
//!
//! `cargo build --release --bin df2redis && cargo run --release --example replicate_bench --
//!  [--keys 1000000] [--size 100] [--records 1000000] [--shards 2]`
//!
//! Full sync: from process start until every flow sent its first ACK (the target confirmed the
//! whole snapshot). Journal replay: the process is paused (SIGSTOP) while `--records` SETs are
//! journaled by the master, then resumed (SIGCONT); replay time is until the ACKs reach the
//! master's offsets. Peak RSS: VmHWM of the df2redis process. CPU seconds of df2redis and
//! redis-server per phase show which side limits (the mock master runs in this process).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use df2redis::proto::Value;
use df2redis::testkit::RedisServer;
use mock_master::{Entry, MockMaster};

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
    /// Extra arguments for `df2redis replicate` (e.g. `--queue-mib 64`).
    #[arg(long, allow_hyphen_values = true, num_args = 0..)]
    extra: Vec<String>,
}

fn redis_benchmark(addr: &str, n: usize, size: usize, random_keys: bool) -> f64 {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", host, "-p", port, "-t", "set", "-d", &size.to_string(), "-P", "64", "-n", &n.to_string(), "-q"]);
    if random_keys {
        cmd.args(["-r", &n.to_string()]);
    }
    let out = cmd.output().expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.rsplit('\r').find(|l| l.contains("requests per second")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("unparsed: {text}"))
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

/// CPU seconds (user + system) used so far by `pid`.
fn cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<f64> = after.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // Fields after the command: state(skipped, not numeric) ppid pgrp ... utime is field 14 overall.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.parent().and_then(|p| p.parent()).expect("target dir").join("df2redis");
    assert!(bin.exists(), "{} missing: run `cargo build --release --bin df2redis` first", bin.display());
    bin
}

async fn wait_acks(h: &mock_master::Handle, what: &str, pred: impl Fn(&[Vec<u64>], &[u64]) -> bool) {
    h.wait_until(what, Duration::from_secs(600), |h| {
        let want = h.offsets();
        h.sessions().last().is_some_and(|s| pred(&s.acks, &want))
    })
    .await
    .expect(what);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = Args::parse();
    let bin = binary();
    let redis = RedisServer::start().await.expect("start redis-server");
    let addr = redis.addr().to_string();
    redis.flushall().await.expect("flushall");
    let ceiling = redis_benchmark(&addr, 2_000_000, args.size, false);
    redis.flushall().await.expect("flushall");
    let ceiling_r = redis_benchmark(&addr, 2_000_000, args.size, true);
    redis.flushall().await.expect("flushall");
    println!("redis-benchmark -t set -d {} -P 64: {ceiling:.0} ops/s (-r 2000000: {ceiling_r:.0} ops/s)", args.size);

    let mut m = MockMaster::new().shards(args.shards);
    let value = Bytes::from(vec![b'v'; args.size]);
    for i in 0..args.keys {
        m.dataset_mut().insert(0, Bytes::from(format!("key:{i:010}")), Entry::new(Value::String(value.clone())));
    }
    let m = m.start().await.expect("mock master");
    let h = m.handle.clone();
    let state = std::env::temp_dir().join(format!("df2redis-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    let cfg = state.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "taskName: bench\nstateDir: {s}\nstatusFile: {s}/status.json\nsource: {{addr: '{}'}}\ntarget: {{addr: '{addr}'}}\n\
             checkpoint: {{enabled: true, intervalSeconds: 10, path: {s}/checkpoint.json}}\n",
            m.addr,
            s = state.display()
        ),
    )
    .expect("config");
    let redis_base = cpu_s(redis.pid());
    let t0 = Instant::now();
    let mut child = Command::new(&bin)
        .args(["replicate", "--config"])
        .arg(&cfg)
        .args(["--flush-target", "--log-interval", "3600"])
        .args(&args.extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn df2redis");
    let pid = child.id();
    wait_acks(&h, "full sync", |acks, want| acks.len() == want.len() && acks.iter().all(|a| !a.is_empty())).await;
    let full = t0.elapsed().as_secs_f64();
    let (cpu_full, redis_full) = (cpu_s(pid), cpu_s(redis.pid()) - redis_base);
    let keys_per_s = args.keys as f64 / full;
    let rss_full = peak_rss_mib(pid);

    // Journal replay: pause df2redis, journal the records, resume and time the catch-up.
    let kill = |sig: &str| {
        Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    };
    kill("-STOP");
    let tw = Instant::now();
    for i in 0..args.records {
        h.exec(0, &["SET", &format!("j:{:08}", i % 500_000), "0123456789abcdef0123456789abcdef"]);
    }
    let gen = tw.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (c0, r0) = (cpu_s(pid), cpu_s(redis.pid()));
    kill("-CONT");
    wait_acks(&h, "journal replay", |acks, want| acks.iter().zip(want).all(|(a, w)| a.last() == Some(w))).await;
    let replay = t1.elapsed().as_secs_f64();
    let ops = args.records as f64 / replay;
    let (cpu_replay, redis_replay) = (cpu_s(pid) - c0, cpu_s(redis.pid()) - r0);
    let rss = peak_rss_mib(pid);
    kill("-TERM");
    let st = child.wait().expect("wait");
    println!(
        "full sync: {} keys of {} B in {full:.2} s = {keys_per_s:.0} keys/s = {:.0} % of the redis-benchmark ceiling ({:.0} % of -r)",
        args.keys,
        args.size,
        100.0 * keys_per_s / ceiling,
        100.0 * keys_per_s / ceiling_r
    );
    println!(
        "journal replay: {} records in {replay:.2} s = {ops:.0} ops/s (journal generated in {gen:.2} s while paused)",
        args.records
    );
    println!(
        "CPU: full sync df2redis {cpu_full:.2} s, redis-server {redis_full:.2} s (of {full:.2} s); \
         replay df2redis {cpu_replay:.2} s, redis-server {redis_replay:.2} s (of {replay:.2} s)"
    );
    println!("df2redis peak RSS: {rss_full:.0} MiB after full sync, {rss:.0} MiB at the end; exit {st}");
    let _ = std::fs::remove_dir_all(&state);
}
