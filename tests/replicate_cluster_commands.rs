//! The cluster writer against a real 3-master Redis Cluster: the documented behaviour of every
//! cross-slot journal command (split, translated, policy), and databases other than 0.

#![allow(clippy::unwrap_used)]

mod replicate_cluster_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use df2redis::apply::policy::{ConflictPolicy, DbMap};
use df2redis::apply::{Args, DbCmd};
use df2redis::proto::Value;
use df2redis::replicate::{run_with, ReplicateError};
use df2redis::resp::{Cmd, ConnectOptions, Connection, Frame};
use df2redis::status::Status;
use df2redis::target::cluster::discover;
use df2redis::target::node::NodeOptions;
use df2redis::target::route::key_slot;
use df2redis::target::{ClusterCounters, ClusterSettings, ClusterSink, CrossSlotPolicy, Sink};
use df2redis::testkit::shared_cluster;
use replicate_cluster_common::*;

fn a(s: &[&str]) -> Args {
    s.iter().map(|x| Bytes::copy_from_slice(x.as_bytes())).collect()
}

async fn sink(seed: &str, policy: CrossSlotPolicy) -> (Sink, Arc<ClusterCounters>) {
    let (s, c) = cluster_sink(seed, policy).await;
    (Sink::from(s), c)
}

async fn cluster_sink(seed: &str, policy: CrossSlotPolicy) -> (ClusterSink, Arc<ClusterCounters>) {
    let cfg = Arc::new(ClusterSettings {
        seeds: vec![seed.to_owned()],
        node: NodeOptions {
            username: None,
            password: None,
            max_batches: 16,
            conflict: ConflictPolicy::Overwrite,
            tls: None,
        },
        wait_replicas: 1,
        wait_timeout_ms: 2000,
        cross_slot: policy,
        retry_budget: Duration::from_secs(20),
        markers: None,
    });
    let map = discover(&cfg.seeds, &cfg.auth()).await.unwrap();
    let counters = Arc::new(ClusterCounters::default());
    let mut s = ClusterSink::new(cfg, map, counters.clone());
    s.connect_all().await.unwrap();
    (s, counters)
}

/// The cross-slot command table (every kind of split and translation) and its result.
fn table() -> Vec<Args> {
    vec![
        a(&["MSET", "foo", "1", "bar", "2", "baz", "3", "qux", "4"]),
        a(&["DEL", "baz", "qux", "missing"]),
        a(&["SET", "src", "payload"]),
        a(&["PEXPIRE", "src", "600000"]),
        a(&["RENAME", "src", "dst"]),
        a(&["RPUSH", "l1", "a", "b", "c"]),
        a(&["RPOPLPUSH", "l1", "l2"]),
        a(&["LMOVE", "l1", "l2", "LEFT", "RIGHT"]),
        a(&["SADD", "s1", "m", "n"]),
        a(&["SMOVE", "s1", "s2", "m"]),
        a(&["SMOVE", "s1", "s2", "absent"]),
        a(&["ZADD", "z1", "1.5", "a", "2", "b"]),
        a(&["ZADD", "z2", "10", "b", "20", "c"]),
        a(&["ZUNIONSTORE", "zu", "2", "z1", "z2", "WEIGHTS", "1", "2"]),
        a(&["SADD", "s3", "n", "o"]),
        a(&["SINTERSTORE", "si", "s1", "s3"]),
        a(&["INCRBY", "foo", "10"]),
        a(&["MULTI"]),
        a(&["INCR", "{t}a"]),
        a(&["RPUSH", "{t}b", "x"]),
        a(&["EXEC"]),
    ]
}

/// Asserts the state [`table`] leaves.
async fn assert_table_result(r: &mut Reader) {
    let get = |f: Frame| f.to_string_lossy();
    assert_eq!(get(r.cmd(b"foo", Cmd::new("GET").arg("foo")).await), "11");
    assert_eq!(get(r.cmd(b"bar", Cmd::new("GET").arg("bar")).await), "2");
    assert_eq!(r.cmd(b"baz", Cmd::new("EXISTS").arg("baz")).await.as_int(), Some(0));
    assert_eq!(r.cmd(b"qux", Cmd::new("EXISTS").arg("qux")).await.as_int(), Some(0));
    assert_eq!(r.cmd(b"src", Cmd::new("EXISTS").arg("src")).await.as_int(), Some(0));
    assert_eq!(get(r.cmd(b"dst", Cmd::new("GET").arg("dst")).await), "payload");
    let pttl = r.cmd(b"dst", Cmd::new("PTTL").arg("dst")).await.as_int().unwrap();
    assert!(pttl > 590_000 && pttl <= 600_000, "{pttl}");
    assert_eq!(get(r.cmd(b"l1", Cmd::new("LRANGE").arg("l1").arg(0).arg(-1)).await), "[b]");
    assert_eq!(get(r.cmd(b"l2", Cmd::new("LRANGE").arg("l2").arg(0).arg(-1)).await), "[c, a]");
    assert_eq!(get(r.cmd(b"s1", Cmd::new("SMEMBERS").arg("s1")).await), "[n]");
    assert_eq!(get(r.cmd(b"s2", Cmd::new("SMEMBERS").arg("s2")).await), "[m]");
    assert_eq!(
        get(r.cmd(b"zu", Cmd::new("ZRANGE").arg("zu").arg(0).arg(-1).arg("WITHSCORES")).await),
        "[a, 1.5, b, 22, c, 40]"
    );
    assert_eq!(get(r.cmd(b"si", Cmd::new("SMEMBERS").arg("si")).await), "[n]");
    assert_eq!(get(r.cmd(b"{t}a", Cmd::new("GET").arg("{t}a")).await), "1");
    assert_eq!(get(r.cmd(b"{t}b", Cmd::new("LRANGE").arg("{t}b").arg(0).arg(-1)).await), "[x]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_slot_commands_follow_the_table() {
    let cluster = shared_cluster().await.unwrap();
    let (mut s, counters) = sink(cluster.seed(), CrossSlotPolicy::Fail).await;
    // foo, bar, baz, qux: pairwise different slots.
    let pairs = [
        ("foo", "bar"),
        ("foo", "baz"),
        ("bar", "baz"),
        ("foo", "qux"),
        ("src", "dst"),
        ("l1", "l2"),
        ("s1", "s2"),
        ("zu", "z2"),
        ("si", "s3"),
    ];
    for (x, y) in pairs {
        assert_ne!(key_slot(x.as_bytes()), key_slot(y.as_bytes()));
    }
    for c in table() {
        s.push(&DbCmd::new(0, c));
    }
    s.drain().await.unwrap();
    let mut r = Reader::new(&cluster).await;
    let get = |f: Frame| f.to_string_lossy();
    assert_table_result(&mut r).await;
    // Temporary copies are gone: 2 strings, l1, l2, s1, s2, s3, si, z1, z2, zu, dst, {t}a, {t}b.
    assert_eq!(r.dbsize().await, 14);
    let c = counters.snapshot();
    assert_eq!((c.split, c.translated), (2, 7), "{c:?}");

    // No cluster form: `fail` stops with the command named, `skip-and-report` counts it.
    s.push(&DbCmd::new(0, a(&["EVAL", "return 1", "2", "foo", "bar"])));
    let e = s.drain().await.unwrap_err().to_string();
    assert!(e.contains("EVAL") && e.contains("several slots"), "{e}");
    let (mut s, counters) = sink(cluster.seed(), CrossSlotPolicy::SkipAndReport).await;
    s.push(&DbCmd::new(0, a(&["EVAL", "return 1", "2", "foo", "bar"])));
    s.push(&DbCmd::new(0, a(&["SET", "after", "1"])));
    s.drain().await.unwrap();
    assert_eq!(counters.snapshot().cross_slot_skipped, 1);
    assert_eq!(get(r.cmd(b"after", Cmd::new("GET").arg("after")).await), "1");
    // db 1 on a cluster: a clear error.
    s.push(&DbCmd::new(1, a(&["SET", "x", "1"])));
    let e = s.drain().await.unwrap_err().to_string();
    assert!(e.contains("db 1") && e.contains("--db-map 1=0"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_other_than_zero() {
    let cluster = shared_cluster().await.unwrap();
    let m = mock_master::MockMaster::new()
        .shards(2)
        .key(0, "k0", Value::String(Bytes::from_static(b"zero")))
        .key(1, "k1", Value::String(Bytes::from_static(b"one")))
        .start()
        .await
        .unwrap();
    let state = state_dir("cluster-db");
    let src = m.addr.to_string();

    // A mapping onto a db the cluster does not have: refused at start.
    let mut st = settings(&src, cluster.seed(), &state);
    st.dbs = DbMap::parse("1=2").unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let e = run_with(st, rx, Arc::new(Status::default())).await.unwrap_err();
    assert!(matches!(&e, ReplicateError::Config(m) if m.contains("only db 0")), "{e}");

    // Data in db 1 without a mapping: stops with an error that says what to do.
    let st = settings(&src, cluster.seed(), &state);
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let e = run_with(st, rx, Arc::new(Status::default())).await.unwrap_err().to_string();
    assert!(e.contains("db 1") && e.contains("--db-map 1=0"), "{e}");

    // Mapped onto 0: both keys land in db 0.
    let _ = std::fs::remove_dir_all(&state);
    let mut st = settings(&src, cluster.seed(), &state);
    st.dbs = DbMap::parse("1=0").unwrap();
    let status = Arc::new(Status::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(st, rx, status.clone()));
    caught_up(&status, &m.handle).await;
    let mut r = Reader::new(&cluster).await;
    assert_eq!(r.cmd(b"k0", Cmd::new("GET").arg("k0")).await.to_string_lossy(), "zero");
    assert_eq!(r.cmd(b"k1", Cmd::new("GET").arg("k1")).await.to_string_lossy(), "one");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&state);
}

/// Per-slot markers: a flow that stopped after some records (a crash, a lost node, a failover)
/// and replays everything from an older position applies each record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_make_replays_exact() {
    let cluster = shared_cluster().await.unwrap();
    let cmds = table();
    let marked = |s: &mut ClusterSink| s.enable_markers(b"df2redis:lsn:cmds", 0);
    let push_from = |s: &mut ClusterSink, from: usize, to: usize| {
        for (i, c) in cmds.iter().enumerate().take(to).skip(from) {
            s.set_lsn(Some(100 + i as u64));
            s.push(&DbCmd::new(0, c.clone()));
        }
    };
    // Session 1 applies the first 9 records (through the first SMOVE), then stops.
    let (mut s1, c1) = cluster_sink(cluster.seed(), CrossSlotPolicy::Fail).await;
    marked(&mut s1);
    s1.load_markers(1).await.unwrap();
    push_from(&mut s1, 0, 10);
    s1.drain().await.unwrap();
    assert_eq!(c1.snapshot().replay_skipped, 0);
    drop(s1);
    // Session 2 resumes from the start (an old checkpoint): what landed is skipped.
    let (mut s2, c2) = cluster_sink(cluster.seed(), CrossSlotPolicy::Fail).await;
    marked(&mut s2);
    s2.load_markers(1).await.unwrap();
    push_from(&mut s2, 0, cmds.len());
    s2.drain().await.unwrap();
    let skipped = c2.snapshot().replay_skipped;
    assert!(skipped >= 10, "{skipped}");
    let mut r = Reader::new(&cluster).await;
    assert_table_result(&mut r).await;
    assert_eq!(r.user_keys().await, 14);
    // Session 3 replays everything again: every write is skipped (the masters run only the
    // reads the translations start with), nothing changes.
    let (mut s3, c3) = cluster_sink(cluster.seed(), CrossSlotPolicy::Fail).await;
    marked(&mut s3);
    s3.load_markers(1).await.unwrap();
    let masters = df2redis::target::cluster::serving_masters(&cluster.slot_map().await.unwrap());
    for m in &masters {
        let mut c = Connection::connect(m, &ConnectOptions::default()).await.unwrap();
        c.request(&Cmd::new("CONFIG").arg("RESETSTAT")).await.unwrap();
    }
    push_from(&mut s3, 0, cmds.len());
    s3.drain().await.unwrap();
    assert!(c3.snapshot().replay_skipped > skipped, "{:?}", c3.snapshot());
    for m in &masters {
        let mut c = Connection::connect(m, &ConnectOptions::default()).await.unwrap();
        let stats = c.request(&Cmd::new("INFO").arg("commandstats")).await.unwrap().to_string_lossy();
        for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
            let name = line.trim_start_matches("cmdstat_").split([':', '|']).next().unwrap();
            assert!(["dump", "pttl", "lindex", "sismember", "config", "info"].contains(&name), "{m} ran {line}");
        }
    }
    assert_table_result(&mut r).await;
    // A cleared marker set replays from scratch (a full sync that does not flush clears them).
    s3.clear_markers().await.unwrap();
    let left: Vec<Bytes> = r.keys().await.into_iter().filter(|k| k.starts_with(b"df2redis:lsn:")).collect();
    assert!(left.is_empty(), "{} markers left, e.g. {:?}", left.len(), left.first());
}
