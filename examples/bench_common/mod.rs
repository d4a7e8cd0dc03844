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
