//! Shared helpers of the `replicate_*` integration tests: settings for `run_with`, waits on
//! LSNs/ACKs with deadlines, and a value-level comparison of a real Redis target with the mock
//! master's dataset (every type, exact scores, exact absolute expiry via PEXPIRETIME).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use df2redis::apply::conn::{Pipe, PipeOptions};
use df2redis::apply::policy::{ConflictPolicy, DbMap, TypePolicies};
use df2redis::proto::Value;
use df2redis::replica::SourceOpts;
use df2redis::replicate::Settings;
use df2redis::resp::Frame;
use df2redis::status::{FlowPhase, Status};

/// Generous deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A fresh state directory.
pub fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("df2redis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Settings for `run_with` against `src` → `dst`.
pub fn settings(task: &str, src: &str, dst: &str, state: &Path) -> Settings {
    Settings {
        task: task.into(),
        source: SourceOpts {
            addr: src.into(),
            username: None,
            password: None,
            listening_port: 6380,
            client_id: "df2redis-test".into(),
            tls: None,
        },
        target: PipeOptions { addr: dst.into(), max_batches_in_flight: 64, ..Default::default() },
        checkpoint: Some(state.join("checkpoint.json")),
        checkpoint_interval: Duration::from_millis(100),
        status_file: None,
        dashboard: None,
        policies: TypePolicies::default(),
        conflict: ConflictPolicy::Overwrite,
        dbs: DbMap::default(),
        flush_target: true,
        resync_flush: true,
        marker: Some((0, Bytes::from(format!("df2redis:lsn:{task}")))),
        queue_bytes: 4 << 20,
        restore_max_bytes: 1 << 20,
        batch: 256,
        mset_keys: 64,
        qps: None,
        ack_interval: Duration::from_millis(50),
        max_retries: 0,
        log_interval: Duration::from_secs(60),
        cluster: Default::default(),
    }
}

/// Waits until every flow is stable and both confirmed and ACKed at the master's offsets.
pub async fn caught_up(status: &Status, master: &mock_master::Handle) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = String::new();
    loop {
        let want = master.offsets();
        let flows = status.flows.lock().unwrap().clone();
        if flows.len() == want.len()
            && flows.iter().zip(&want).all(|(f, w)| {
                f.phase() == FlowPhase::Stable
                    && f.lsn_acked.load(Ordering::Relaxed) == *w
                    && f.lsn_confirmed.load(Ordering::Relaxed) == *w
            })
        {
            return;
        }
        let line = status.log_line();
        assert!(
            tokio::time::Instant::now() < deadline,
            "not caught up: {line} vs {want:?}; last error {:?}",
            status.snapshot().last_error
        );
        if line != last {
            last = line;
        }
        // Poll the shared counters (no event source in-process); bounded by the deadline.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the mock master's last session ACKed exactly its offsets on every flow.
pub async fn master_acked(master: &mock_master::Handle) {
    master
        .wait_until("every flow ACKed at the master's offsets", DEADLINE, |h| {
            let want = h.offsets();
            h.sessions().last().is_some_and(|s| {
                s.acks.len() == want.len() && s.acks.iter().zip(&want).all(|(a, w)| a.last() == Some(w))
            })
        })
        .await
        .unwrap();
}

/// A stream entry: (ms, seq, fields in order).
pub type StreamEntry = (u64, u64, Vec<(Bytes, Bytes)>);

/// A value in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Norm {
    /// String bytes.
    Str(Bytes),
    /// List, head first.
    List(Vec<Bytes>),
    /// Set, sorted.
    Set(Vec<Bytes>),
    /// Hash, sorted.
    Hash(Vec<(Bytes, Bytes)>),
    /// Zset: member → score bits, sorted by member.
    Zset(Vec<(Bytes, u64)>),
    /// Stream entries: (ms, seq, fields in order).
    Stream(Vec<StreamEntry>),
}

/// `(db, key)` → (value, absolute expiry in ms).
pub type Snapshot = BTreeMap<(u32, Bytes), (Norm, Option<u64>)>;

fn zscore_bits(s: f64) -> u64 {
    // Redis has no -0 and no NaN scores.
    if s == 0.0 {
        0
    } else {
        s.to_bits()
    }
}

/// The mock master's dataset as the target should hold it (expired entries dropped, dbs mapped).
pub fn expected(data: &mock_master::Dataset, now_ms: u64, map: &dyn Fn(u32) -> u32) -> Snapshot {
    let mut out = Snapshot::new();
    for (db, key, e) in data.iter() {
        if e.expired(now_ms) {
            continue;
        }
        let n = match &e.value {
            Value::String(s) => Norm::Str(s.clone()),
            Value::List(l) => Norm::List(l.clone()),
            Value::Set(s) => {
                let mut v = s.clone();
                v.sort();
                Norm::Set(v)
            }
            Value::Hash(h) => {
                let mut v = h.clone();
                v.sort();
                Norm::Hash(v)
            }
            Value::Zset(z) => {
                let mut v: Vec<(Bytes, u64)> = z.iter().map(|(m, s)| (m.clone(), zscore_bits(*s))).collect();
                v.sort();
                Norm::Zset(v)
            }
            Value::Stream(s) => {
                Norm::Stream(s.entries.iter().map(|en| (en.id.ms, en.id.seq, en.fields.clone())).collect::<Vec<_>>())
            }
            other => panic!("no Redis form for {}", other.kind_name()),
        };
        out.insert((map(db), key.clone()), (n, e.expire_ms));
    }
    out
}

/// A target connection.
pub async fn connect(addr: &str) -> Pipe {
    Pipe::connect(&PipeOptions { addr: addr.into(), max_batches_in_flight: 16, ..Default::default() }).await.unwrap()
}

/// One request.
pub async fn req(p: &mut Pipe, db: u32, a: &[&[u8]]) -> Frame {
    p.request(Some(db), a.iter().map(|x| Bytes::copy_from_slice(x)).collect()).await.unwrap()
}

/// A bulk or simple string reply.
pub fn bulk(f: &Frame) -> Bytes {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => b.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// An array reply.
pub fn arr(f: Frame) -> Vec<Frame> {
    match f {
        Frame::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// Everything in `dbs` of the target (the `df2redis:lsn:*` marker hashes left out).
pub async fn target(addr: &str, dbs: std::ops::Range<u32>) -> Snapshot {
    let mut p = connect(addr).await;
    let mut out = Snapshot::new();
    for db in dbs {
        let mut cursor = b"0".to_vec();
        let mut keys = Vec::new();
        loop {
            let r = arr(req(&mut p, db, &[b"SCAN", &cursor, b"COUNT", b"1000"]).await);
            cursor = bulk(&r[0]).to_vec();
            keys.extend(arr(r[1].clone()).iter().map(bulk));
            if cursor == b"0" {
                break;
            }
        }
        for key in keys {
            if key.starts_with(b"df2redis:lsn:") {
                continue;
            }
            let ty = bulk(&req(&mut p, db, &[b"TYPE", &key]).await);
            let n = match &ty[..] {
                b"string" => Norm::Str(bulk(&req(&mut p, db, &[b"GET", &key]).await)),
                b"list" => {
                    Norm::List(arr(req(&mut p, db, &[b"LRANGE", &key, b"0", b"-1"]).await).iter().map(bulk).collect())
                }
                b"set" => {
                    let mut v: Vec<Bytes> = arr(req(&mut p, db, &[b"SMEMBERS", &key]).await).iter().map(bulk).collect();
                    v.sort();
                    Norm::Set(v)
                }
                b"hash" => {
                    let a = arr(req(&mut p, db, &[b"HGETALL", &key]).await);
                    let mut v: Vec<(Bytes, Bytes)> = a.chunks(2).map(|c| (bulk(&c[0]), bulk(&c[1]))).collect();
                    v.sort();
                    Norm::Hash(v)
                }
                b"zset" => {
                    let a = arr(req(&mut p, db, &[b"ZRANGE", &key, b"0", b"-1", b"WITHSCORES"]).await);
                    let mut v: Vec<(Bytes, u64)> = a
                        .chunks(2)
                        .map(|c| {
                            let s: f64 = String::from_utf8_lossy(&bulk(&c[1])).parse().unwrap();
                            (bulk(&c[0]), zscore_bits(s))
                        })
                        .collect();
                    v.sort();
                    Norm::Zset(v)
                }
                b"stream" => Norm::Stream(
                    arr(req(&mut p, db, &[b"XRANGE", &key, b"-", b"+"]).await)
                        .into_iter()
                        .map(|e| {
                            let e = arr(e);
                            let id = String::from_utf8_lossy(&bulk(&e[0])).into_owned();
                            let (ms, seq) = id.split_once('-').unwrap();
                            let f = arr(e[1].clone());
                            (
                                ms.parse().unwrap(),
                                seq.parse().unwrap(),
                                f.chunks(2).map(|c| (bulk(&c[0]), bulk(&c[1]))).collect(),
                            )
                        })
                        .collect(),
                ),
                b"none" => continue, // expired between SCAN and TYPE
                other => panic!("unexpected type {}", String::from_utf8_lossy(other)),
            };
            let t = int(&req(&mut p, db, &[b"PEXPIRETIME", &key]).await);
            out.insert((db, key), (n, u64::try_from(t).ok()));
        }
    }
    out
}

/// Asserts the target holds exactly `want` (values and absolute expiries), with a short diff.
pub fn assert_same(what: &str, got: &Snapshot, want: &Snapshot) {
    if got == want {
        return;
    }
    let mut diff = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diff.push(format!("missing {}:{}", k.0, String::from_utf8_lossy(&k.1))),
            Some(g) if g != v => diff.push(format!(
                "differs {}:{}: got {:.200} want {:.200}",
                k.0,
                String::from_utf8_lossy(&k.1),
                format!("{g:?}"),
                format!("{v:?}")
            )),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diff.push(format!("extra {}:{}", k.0, String::from_utf8_lossy(&k.1)));
    }
    diff.truncate(20);
    panic!("{what}: target differs from the source ({} vs {} keys): {diff:#?}", got.len(), want.len());
}

/// Compares the whole target (dbs 0..16) with the master's dataset now.
pub async fn assert_target_equals_source(what: &str, addr: &str, master: &mock_master::Handle) {
    let want = expected(&master.dataset(), df2redis::apply::now_ms(), &|d| d);
    let got = target(addr, 0..16).await;
    assert_same(what, &got, &want);
}

/// Arc'ed status for `run_with`.
pub fn status() -> Arc<Status> {
    Arc::new(Status::default())
}
