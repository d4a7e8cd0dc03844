//! Shared helpers of the cluster replication tests: settings, waiting on positions, and a direct
//! comparison of the mock master's dataset with what a real Redis Cluster holds.

#![allow(dead_code, clippy::unwrap_used)]

#[path = "../replicate_common/mod.rs"]
mod base;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use df2redis::proto::Value;
use df2redis::replicate::Settings;
use df2redis::resp::{Cmd, ConnectOptions, Connection, Frame};
use df2redis::status::{FlowPhase, Status};
use df2redis::target::cluster::{ClusterOpts, TargetMode};
use df2redis::target::route::{key_slot, SlotMap};
use df2redis::testkit::RedisCluster;

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=df2redis=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn settings(src: &str, seed: &str, state: &Path) -> Settings {
    init_logs();
    Settings {
        restore_max_bytes: 4096,
        max_retries: 3,
        cluster: ClusterOpts {
            mode: TargetMode::Auto,
            seeds: vec![],
            wait_replicas: None,
            wait_timeout_ms: 2000,
            cross_slot: Default::default(),
        },
        ..base::settings("cluster", src, seed, state)
    }
}

pub fn state_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("df2redis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Waits until every flow is stable and the master's offsets are acknowledged.
pub async fn caught_up(status: &Status, master: &mock_master::Handle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let want = master.offsets();
        let flows = status.flows.lock().unwrap().clone();
        if flows.len() == want.len()
            && flows
                .iter()
                .zip(&want)
                .all(|(f, w)| f.phase() == FlowPhase::Stable && f.lsn_acked.load(Ordering::Relaxed) == *w)
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not caught up: {} vs {want:?}", status.log_line());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads keys from the cluster, each from the master that serves its slot.
pub struct Reader {
    map: SlotMap,
    conns: HashMap<String, Connection>,
}

impl Reader {
    pub async fn new(c: &RedisCluster) -> Reader {
        Reader { map: c.slot_map().await.unwrap(), conns: HashMap::new() }
    }

    pub async fn cmd(&mut self, key: &[u8], cmd: Cmd) -> Frame {
        let n = self.map.node_of_slot(key_slot(key)).unwrap();
        let addr = self.map.nodes()[n].addr.clone();
        if !self.conns.contains_key(&addr) {
            let c = Connection::connect(&addr, &ConnectOptions::default()).await.unwrap();
            self.conns.insert(addr.clone(), c);
        }
        self.conns.get_mut(&addr).unwrap().request(&cmd).await.unwrap()
    }

    /// Total keys over all masters.
    pub async fn dbsize(&mut self) -> i64 {
        let mut total = 0;
        let masters: Vec<String> = df2redis::target::cluster::serving_masters(&self.map);
        for a in masters {
            let mut c = Connection::connect(&a, &ConnectOptions::default()).await.unwrap();
            total += c.request(&Cmd::new("DBSIZE")).await.unwrap().as_int().unwrap();
        }
        total
    }

    /// Every key over all masters (SCAN).
    pub async fn keys(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        for a in df2redis::target::cluster::serving_masters(&self.map) {
            let mut c = Connection::connect(&a, &ConnectOptions::default()).await.unwrap();
            let mut cursor = "0".to_owned();
            loop {
                let f = c.request(&Cmd::new("SCAN").arg(&cursor).arg("COUNT").arg(1000)).await.unwrap();
                let parts = f.as_array().unwrap();
                cursor = parts[0].to_string_lossy();
                out.extend(bulks(&parts[1]));
                if cursor == "0" {
                    break;
                }
            }
        }
        out
    }

    /// Keys that are not df2redis's own LSN markers.
    pub async fn user_keys(&mut self) -> usize {
        self.keys().await.iter().filter(|k| !k.starts_with(b"df2redis:lsn:")).count()
    }
}

fn bulks(f: &Frame) -> Vec<Bytes> {
    f.as_array().unwrap_or_default().iter().filter_map(Frame::to_bytes).collect()
}

/// Every live key of the mock's db 0 (after `dbs` mapping onto 0) equals the cluster's; no
/// extra keys. Returns the number of keys compared.
pub async fn assert_same(master: &mock_master::Handle, cluster: &RedisCluster, now_ms: u64) -> usize {
    let mut r = Reader::new(cluster).await;
    let data = master.dataset();
    let mut n = 0usize;
    for (_db, key, e) in data.iter() {
        if e.expire_ms.is_some_and(|t| t <= now_ms + 1000) {
            continue;
        }
        n += 1;
        let k = key.clone();
        let ctx = String::from_utf8_lossy(&k).into_owned();
        match &e.value {
            Value::String(v) => {
                let got = r.cmd(&k, Cmd::new("GET").arg(&k)).await;
                assert_eq!(got.to_bytes().as_ref(), Some(v), "{ctx}");
            }
            Value::List(v) => {
                let got = r.cmd(&k, Cmd::new("LRANGE").arg(&k).arg(0).arg(-1)).await;
                assert_eq!(&bulks(&got), v, "{ctx}");
            }
            Value::Set(v) => {
                let mut got = bulks(&r.cmd(&k, Cmd::new("SMEMBERS").arg(&k)).await);
                let mut want = v.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{ctx}");
            }
            Value::Hash(v) => {
                let got = bulks(&r.cmd(&k, Cmd::new("HGETALL").arg(&k)).await);
                let mut got: Vec<(Bytes, Bytes)> = got.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                let mut want = v.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{ctx}");
            }
            Value::Zset(v) => {
                let got = bulks(&r.cmd(&k, Cmd::new("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES")).await);
                let mut got: Vec<(Bytes, f64)> = got
                    .chunks(2)
                    .map(|p| (p[0].clone(), std::str::from_utf8(&p[1]).unwrap().parse::<f64>().unwrap()))
                    .collect();
                let mut want = v.clone();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                want.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "{ctx}");
            }
            Value::Stream(s) => {
                let got = r.cmd(&k, Cmd::new("XRANGE").arg(&k).arg("-").arg("+")).await;
                let ids: Vec<String> =
                    got.as_array().unwrap().iter().map(|e| e.as_array().unwrap()[0].to_string_lossy()).collect();
                let want: Vec<String> = s.entries.iter().map(|e| e.id.to_string()).collect();
                assert_eq!(ids, want, "{ctx}");
            }
            other => panic!("unexpected type in the test dataset: {other:?}"),
        }
        let pttl = r.cmd(&k, Cmd::new("PTTL").arg(&k)).await.as_int().unwrap();
        assert_eq!(pttl > 0, e.expire_ms.is_some(), "{ctx}: pttl {pttl}");
    }
    assert_eq!(r.user_keys().await, n, "extra or missing keys on the cluster");
    n
}
