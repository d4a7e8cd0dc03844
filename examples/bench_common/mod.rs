//! What the replication benches share: CPU seconds of a process, a Redis server's commands and
//! socket reads, the load average, the df2redis binary beside the bench, waiting on the mock
//! master's ACKs, medians.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<f64> = after.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // After the command: state (not numeric, skipped) ppid pgrp …; utime is field 14 overall.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

/// Commands and socket reads the redis-server at `addr` processed so far (their ratio is the
/// pipeline depth it sees).
pub async fn cmds_reads(addr: &str) -> (f64, f64) {
    let f = df2redis::testkit::command(addr, None, &df2redis::resp::Cmd::new("INFO").arg("stats")).await.expect("info");
    let text = String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned();
    let field = |k: &str| -> f64 {
        text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
    };
    (field("total_commands_processed:"), field("total_reads_processed:"))
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `df2redis` binary of the same build profile as the bench.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.parent().and_then(|p| p.parent()).expect("target dir").join("df2redis");
    assert!(bin.exists(), "{} missing: run `cargo build --release --bin df2redis` first", bin.display());
    bin
}

/// Polls the master's observable state every millisecond (a bench, not a test: polling keeps
/// the observer from waking on every byte the master writes).
pub async fn wait_acks(h: &mock_master::Handle, what: &str, pred: impl Fn(&[Vec<u64>], &[u64]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let want = h.offsets();
        if h.sessions().last().is_some_and(|s| pred(&s.acks, &want)) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The median (upper middle for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU seconds of df2redis, the target (`target` names it) and the mock master.
pub fn cpu3(target: &str, c: [f64; 3]) -> String {
    format!("df2redis {:.2} / {target} {:.2} / mock {:.2}", c[0], c[1], c[2])
}

/// Starts `df2redis replicate --config cfg --flush-target` (quiet logs) with `extra` arguments.
pub fn spawn_replicate(bin: &Path, cfg: &Path, extra: &[String]) -> Child {
    Command::new(bin)
        .args(["replicate", "--config"])
        .arg(cfg)
        .args(["--flush-target", "--log-interval", "3600"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn df2redis")
}

/// Runs `redis-benchmark ARGS -q`: its SET/s and the client's own CPU seconds (bash `times`).
pub fn redis_benchmark(args: &[&str]) -> (f64, f64) {
    let out = Command::new("bash")
        .args(["-c", "redis-benchmark \"$@\" -q; times", "redis-benchmark"])
        .args(args)
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // `-q` prints progress with `\r`; the figure is the token before "requests per second".
    let before = text.rsplit_once("requests per second").map(|(b, _)| b).unwrap_or_default();
    let num = before.split_whitespace().last().unwrap_or("0");
    let rate = num.parse().unwrap_or_else(|_| panic!("cannot parse redis-benchmark output: {text}"));
    // `times` prints the shell's user/sys, then its children's: "0m1.234s 0m0.567s".
    let secs = |t: &str| -> f64 {
        let (m, s) = t.trim_end_matches('s').split_once('m').unwrap_or(("0", "0"));
        m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
    };
    let client = text.lines().last().map(|l| l.split_whitespace().map(secs).sum()).unwrap_or(0.0);
    (rate, client)
}

/// Pins the target's server processes to CPU 0 and this process (the mock master, and every
/// child it starts from now on: df2redis, redis-benchmark) to the other CPUs, so the target has
/// a core of its own in both the ceiling and the replication measurements — as in production,
/// where the source and df2redis do not run on the target's host. No-op on one CPU.
pub fn pin_target(target_pids: &[u32]) -> bool {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cpus < 2 {
        return false;
    }
    let taskset = |list: &str, pid: u32| {
        let st =
            Command::new("taskset").args(["-a", "-p", "-c", list, &pid.to_string()]).stdout(Stdio::null()).status();
        assert!(st.is_ok_and(|s| s.success()), "taskset -a -p -c {list} {pid} failed");
    };
    for &p in target_pids {
        taskset("0", p);
    }
    taskset(&format!("1-{}", cpus - 1), std::process::id());
    true
}

/// A fresh state directory `df2redis-<name>-<pid>-<round>` and a `df2redis replicate` config in
/// it: `source` and `target` are the YAML maps, `extra` more top-level lines.
pub fn bench_config(name: &str, round: usize, source: &str, target: &str, extra: &str) -> (PathBuf, PathBuf) {
    let state = std::env::temp_dir().join(format!("df2redis-{name}-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    let cfg = state.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "taskName: bench\nstateDir: {s}\nstatusFile: {s}/status.json\nsource: {source}\ntarget: {target}\n\
             checkpoint: {{enabled: true, intervalSeconds: 10, path: {s}/checkpoint.json}}\n{extra}",
            s = state.display()
        ),
    )
    .expect("config");
    (state, cfg)
}
