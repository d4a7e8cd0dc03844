//! The `df2redis replicate` binary as an SRE runs it, against the mock master and a real
//! redis-server: SIGKILL mid-stream then restart (PARTIAL resume, exact counters), SIGTERM
//! (drain, final checkpoint = final ACK = target marker, exit 0), a master restart (full resync
//! stated in the log), and big keys (1 M-element hash) with bounded RSS and atomic replace.

#![allow(clippy::unwrap_used)]

mod replicate_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use df2redis::proto::Value;
use df2redis::resp::Frame;
use df2redis::testkit::RedisServer;
use mock_master::{Fault, MockMaster};
use replicate_common::*;

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(src: &str, dst: &str, state: &Path, task: &str, extra: &[&str]) -> Proc {
        let cfg = state.join("config.yaml");
        std::fs::write(
            &cfg,
            format!(
                "taskName: {task}\nstateDir: {s}\nstatusFile: {s}/status.json\n\
                 source: {{type: dragonfly, addr: '{src}'}}\n\
                 target: {{type: redis-standalone, addr: '{dst}'}}\n\
                 checkpoint: {{enabled: true, intervalSeconds: 1, path: {s}/checkpoint.json}}\n\
                 log: {{level: info, consoleEnabled: true}}\n",
                s = state.display()
            ),
        )
        .unwrap();
        let n = std::fs::read_dir(state).unwrap().count();
        let log = state.join(format!("run-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_df2redis"))
            .args(["replicate", "--config"])
            .arg(&cfg)
            .args(["--flush-target", "--ack-interval", "0.05", "--log-interval", "3600"])
            .args(extra)
            .env_remove("DF2REDIS_LOG_FORMAT")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }

    /// Peak resident set (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    async fn wait_exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.log());
            }
            assert!(tokio::time::Instant::now() < deadline, "df2redis did not exit: {}", self.log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn writes(m: &mock_master::Handle, from: u32, to: u32) {
    for i in from..to {
        m.exec(0, &["INCRBY", "counter", "1"]);
        m.exec(0, &["RPUSH", "list", &i.to_string()]);
        m.exec(1, &["SET", &format!("s:{i}"), &i.to_string(), "PX", "3600000"]);
        m.exec(0, &["HINCRBY", "h", &format!("f{}", i % 7), "1"]);
    }
}

async fn wait_acked(p: &Proc, m: &mock_master::Handle) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let want = m.offsets();
    m.wait_until("ACKs at the offsets", DEADLINE, |h| {
        h.sessions().last().is_some_and(|s| s.acks.iter().zip(&want).all(|(a, w)| a.last() >= Some(w)))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:?}; log:\n{}", p.log()));
    assert!(tokio::time::Instant::now() < deadline);
}

async fn counter_and_len(addr: &str) -> (Frame, Frame) {
    let mut p = connect(addr).await;
    (req(&mut p, 0, &[b"GET", b"counter"]).await, req(&mut p, 0, &[b"LLEN", b"list"]).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_resumes_partially_and_exactly() {
    let m = MockMaster::new().shards(3).start().await.unwrap();
    for i in 0..300 {
        m.handle.exec(i % 3, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("sigkill");
    let src = m.addr.to_string();
    let p = Proc::start(&src, redis.addr(), &state, "kill", &[]);
    writes(&m.handle, 0, 200);
    wait_acked(&p, &m.handle).await;
    // Mid-stream: writes flowing while the process dies; some are applied, some in flight.
    let before = m.handle.offsets();
    writes(&m.handle, 200, 1200);
    m.handle
        .wait_until("some of the new records ACKed", DEADLINE, |h| {
            h.sessions().last().is_some_and(|s| s.acks.iter().zip(&before).any(|(a, b)| a.last() > Some(b)))
        })
        .await
        .unwrap();
    p.signal("-KILL");
    let (st, _) = p.wait_exit().await;
    assert!(!st.success());
    writes(&m.handle, 1200, 1500);

    let p = Proc::start(&src, redis.addr(), &state, "kill", &[]);
    wait_acked(&p, &m.handle).await;
    let s = m.handle.sessions();
    let last = s.last().unwrap();
    assert!(last.partial_from.iter().all(Option::is_some), "expected a PARTIAL resume: {last:?}\n{}", p.log());
    p.signal("-TERM");
    let (st, log) = p.wait_exit().await;
    assert!(st.success(), "exit {st:?}: {log}");
    assert!(log.contains("partial sync"), "{log}");
    assert_eq!(counter_and_len(redis.addr()).await, (Frame::Bulk(Bytes::from_static(b"1500")), Frame::Integer(1500)));
    assert_target_equals_source("after SIGKILL + resume", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_the_final_checkpoint_equals_the_acks_and_the_target() {
    let m = MockMaster::new().shards(2).start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("sigterm");
    let src = m.addr.to_string();
    let p = Proc::start(&src, redis.addr(), &state, "term", &[]);
    writes(&m.handle, 0, 100);
    wait_acked(&p, &m.handle).await;
    writes(&m.handle, 100, 2000);
    p.signal("-TERM");
    let (st, log) = p.wait_exit().await;
    assert!(st.success(), "exit {st:?}: {log}");
    assert!(log.contains("final checkpoint"), "{log}");
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("checkpoint.json")).unwrap()).unwrap();
    let cp_lsns: Vec<u64> = cp["flows"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(cp["phase"], "stable", "{cp}");
    // The master's session is gone with the connection; df2redis' status file says what it ACKed
    // last (and the next run's PARTIAL start below is the master's own view of it).
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("status.json")).unwrap()).unwrap();
    let acked: Vec<u64> =
        status["flows"].as_array().unwrap().iter().map(|f| f["lsn_acked"].as_u64().unwrap()).collect();
    assert_eq!(cp_lsns, acked, "checkpoint vs last ACKs");
    let mut t = connect(redis.addr()).await;
    let marker = req(&mut t, 0, &[b"HMGET", b"df2redis:lsn:term", b"0", b"1"]).await;
    let marker: Vec<u64> = match marker {
        Frame::Array(a) => a.iter().map(|f| String::from_utf8_lossy(f.as_bytes().unwrap()).parse().unwrap()).collect(),
        o => panic!("{o:?}"),
    };
    assert_eq!(cp_lsns, marker, "checkpoint vs target marker");
    // Whatever was not drained arrives with the next run, from exactly those LSNs.
    let p = Proc::start(&src, redis.addr(), &state, "term", &[]);
    wait_acked(&p, &m.handle).await;
    let s = m.handle.sessions();
    assert_eq!(s.last().unwrap().partial_from, cp_lsns.iter().map(|l| Some(*l)).collect::<Vec<_>>());
    p.signal("-INT");
    let (st, log) = p.wait_exit().await;
    assert!(st.success(), "SIGINT exit {st:?}: {log}");
    assert_eq!(counter_and_len(redis.addr()).await, (Frame::Bulk(Bytes::from_static(b"2000")), Frame::Integer(2000)));
    assert_target_equals_source("after SIGTERM + resume", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restart_means_a_full_resync_stated_in_the_log() {
    let m = MockMaster::new().shards(2).fault(Fault::Restart { after_records: 150 }).start().await.unwrap();
    for i in 0..100 {
        m.handle.exec(0, &["SET", &format!("k{i}"), "v"]);
    }
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("restart");
    let first_id = m.handle.master_id();
    let p = Proc::start(&m.addr.to_string(), redis.addr(), &state, "restart", &[]);
    wait_acked(&p, &m.handle).await;
    writes(&m.handle, 0, 100);
    m.handle.wait_until("restart", DEADLINE, |h| h.master_id() != first_id).await.unwrap();
    writes(&m.handle, 100, 150);
    wait_acked(&p, &m.handle).await;
    p.signal("-TERM");
    let (st, log) = p.wait_exit().await;
    assert!(st.success(), "{log}");
    assert!(log.contains("master id changed"), "the log must state the full resync: {log}");
    assert_eq!(counter_and_len(redis.addr()).await, (Frame::Bulk(Bytes::from_static(b"150")), Frame::Integer(150)));
    assert_target_equals_source("after a master restart", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_keys_use_bounded_memory_and_appear_atomically() {
    const N: usize = 1_000_000;
    let b = |s: String| Bytes::from(s);
    let m = MockMaster::new()
        .shards(2)
        .key(0, "bighash", Value::Hash((0..N).map(|i| (b(format!("field:{i}")), b(format!("v{i}")))).collect()))
        .key(0, "biglist", Value::List((0..200_000).map(|i| b(format!("element-{i}"))).collect()))
        .key(0, "bigzset", Value::Zset((0..200_000).map(|i| (b(format!("m{i}")), i as f64 / 7.0)).collect()))
        .key(0, "bigset", Value::Set((0..200_000).map(|i| b(format!("s{i}"))).collect()))
        .start()
        .await
        .unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("bigkeys");
    // A reader sampling HLEN all along: only 0 (not there yet) or N (complete) may ever be seen.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (addr, done) = (redis.addr().to_string(), done.clone());
        tokio::spawn(async move {
            let mut p = connect(&addr).await;
            let mut seen = std::collections::BTreeSet::new();
            let mut samples = 0u64;
            while !done.load(Ordering::Relaxed) {
                match req(&mut p, 0, &[b"HLEN", b"bighash"]).await {
                    Frame::Integer(n) => {
                        seen.insert(n);
                    }
                    o => panic!("{o:?}"),
                }
                samples += 1;
            }
            (seen, samples)
        })
    };
    let p = Proc::start(&m.addr.to_string(), redis.addr(), &state, "big", &[]);
    wait_acked(&p, &m.handle).await;
    let peak_kib = p.peak_rss_kib();
    done.store(true, Ordering::Relaxed);
    let (seen, samples) = sampler.await.unwrap();
    p.signal("-TERM");
    let (st, log) = p.wait_exit().await;
    assert!(st.success(), "{log}");
    eprintln!("peak RSS {} MiB; HLEN samples {samples}, values seen {seen:?}", peak_kib / 1024);
    assert!(seen.iter().all(|n| *n == 0 || *n == N as i64), "a reader saw a partial hash: {seen:?}");
    assert!(seen.contains(&(N as i64)));
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB over 256 MiB");
    assert_target_equals_source("big keys", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}
