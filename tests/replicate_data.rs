//! What `replicate` writes into a real redis-server, value by value: every type and encoding of
//! every release family, writes during full sync, FLUSHALL/FLUSHDB in stable sync and inside a
//! full sync, several dbs with a db mapping, conflict policies against pre-existing keys, exact
//! absolute TTLs, and keys already expired never resurrected.

#![allow(clippy::unwrap_used)]

mod replicate_common;

use std::sync::Arc;

use bytes::Bytes;
use df2redis::apply::policy::{ConflictPolicy, DbMap};
use df2redis::proto::model::{StreamEntry, StreamId};
use df2redis::proto::Value;
use df2redis::replicate::{run_with, ReplicateError, Settings};
use df2redis::resp::Frame;
use df2redis::status::Status;
use df2redis::testkit::RedisServer;
use mock_master::{Clock, Compression, MockMaster, Release, WritePhase, FAMILIES};
use replicate_common::*;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Every Redis type, small (listpack/ziplist/intset) and large (hashtable/skiplist/quicklist).
fn rich(m: MockMaster, now: u64) -> MockMaster {
    m.key(0, "str", Value::String(b("hello")))
        .key(0, "int", Value::String(b("-12345")))
        .key(0, "long", Value::String(Bytes::from(vec![b'x'; 20_000])))
        .key_with_expiry(0, "ttl", Value::String(b("v")), now + 3_600_000)
        .key(1, "k1", Value::String(b("v1")))
        .key(0, "lst", Value::List(vec![b("a"), b("b"), b("c")]))
        .key(0, "biglist", Value::List((0..5000).map(|i| b(&format!("element-{i}"))).collect()))
        .key(0, "intset", Value::Set(vec![b("1"), b("2"), b("300000")]))
        .key(0, "st", Value::Set(vec![b("x"), b("y")]))
        .key(0, "bigset", Value::Set((0..2000).map(|i| b(&format!("m{i}"))).collect()))
        .key(0, "h", Value::Hash(vec![(b("f"), b("v")), (b("n"), b("1"))]))
        .key(0, "bighash", Value::Hash((0..3000).map(|i| (b(&format!("f{i}")), b(&format!("v{i}")))).collect()))
        .key(0, "z", Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5), (b("c"), -0.1), (b("d"), f64::INFINITY)]))
        .key(0, "bigz", Value::Zset((0..2000).map(|i| (b(&format!("m{i}")), i as f64 / 3.0)).collect()))
        .key(
            0,
            "s",
            mock_master::scenario::stream_of(vec![
                StreamEntry { id: StreamId { ms: 1, seq: 1 }, fields: vec![(b("f"), b("v"))] },
                StreamEntry { id: StreamId { ms: 2, seq: 0 }, fields: vec![(b("a"), b("1")), (b("b"), b("2"))] },
            ]),
        )
}

fn stable_writes(h: &mock_master::Handle, round: u32) {
    let k = |s: &str| format!("{s}{round}");
    h.exec(0, &["SET", &k("foo"), "bar", "EX", "1000"]);
    h.exec(0, &["SET", &k("plain"), "1"]);
    h.exec(0, &["INCR", &k("plain")]);
    h.exec(0, &["MSET", &k("m1"), "1", &k("m2"), "2", &k("m3"), "3"]);
    h.exec(0, &["DEL", &k("m1"), &k("m2")]);
    h.exec(1, &["SET", &k("db1"), "x"]);
    h.exec(0, &["APPEND", "str", "!"]);
    h.exec(0, &["HSET", &k("hh"), "a", "1", "b", "2"]);
    h.exec(0, &["RPUSH", &k("ll"), "a", "b", "c"]);
    h.exec(0, &["LPOP", &k("ll")]);
    h.exec(0, &["SADD", &k("ss"), "a", "b", "c"]);
    h.exec(0, &["ZADD", &k("zz"), "1.5", "a", "2", "b"]);
    h.exec(0, &["ZINCRBY", "z", "0.1", "a"]);
    h.exec(0, &["XADD", "s", "*", "f", &k("v")]);
    h.exec(0, &["HDEL", "bighash", "f7"]);
    h.exec(0, &["EXPIRE", &k("plain"), "500"]);
}

struct Run {
    st: Arc<Status>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ReplicateError>>,
}

fn start(s: Settings) -> Run {
    let st = status();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_with(s, rx, st.clone()));
    Run { st, stop, task }
}

impl Run {
    async fn finish(self) -> Arc<Status> {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        self.st
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_of_every_release_family() {
    let redis = RedisServer::start().await.unwrap();
    let mut releases: Vec<Release> = FAMILIES.iter().copied().filter(|r| r.has_acks()).collect();
    releases.push(Release::new(1, 30, 3));
    for (i, r) in releases.into_iter().enumerate() {
        let c = [Compression::None, Compression::Lzf, Compression::Zstd, Compression::Lz4][i % 4];
        let now = df2redis::apply::now_ms();
        let m =
            rich(MockMaster::new().release(r).shards(2).compression(c).chunk_size(4096), now).start().await.unwrap();
        let state = state_dir(&format!("family-{r}"));
        let run = start(settings(&format!("family{i}"), &m.addr.to_string(), redis.addr(), &state));
        caught_up(&run.st, &m.handle).await;
        assert_target_equals_source(&format!("{r} {c:?} after full sync"), redis.addr(), &m.handle).await;
        stable_writes(&m.handle, 1);
        caught_up(&run.st, &m.handle).await;
        run.finish().await;
        assert_target_equals_source(&format!("{r} {c:?} after stable sync"), redis.addr(), &m.handle).await;
        let _ = std::fs::remove_dir_all(&state);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_full_sync_never_lose_to_the_snapshot() {
    let now = df2redis::apply::now_ms();
    let mut m = rich(MockMaster::new().shards(2).chunk_size(1024), now);
    for cmd in [
        &["SET", "str", "newer"][..],
        &["INCRBY", "int", "5"],
        &["DEL", "lst"],
        &["HSET", "bighash", "f1", "changed", "extra", "1"],
        &["RPUSH", "biglist", "tail"],
        &["ZADD", "bigz", "1e9", "m3"],
        &["SET", "during", "1", "PX", "3600000"],
        &["SREM", "bigset", "m5"],
    ] {
        m = m.live_write(WritePhase::FullSync, 0, cmd);
    }
    let m = m.start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("during");
    let run = start(settings("during", &m.addr.to_string(), redis.addr(), &state));
    caught_up(&run.st, &m.handle).await;
    let st = run.finish().await;
    assert!(st.snapshot().flows.iter().map(|f| f.blobs).sum::<u64>() >= 8, "{:?}", st.snapshot());
    assert_target_equals_source("writes during full sync", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_and_flushdb_in_stable_sync_are_barriers() {
    let now = df2redis::apply::now_ms();
    let m = rich(MockMaster::new().shards(3), now).start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("flush");
    let run = start(settings("flush", &m.addr.to_string(), redis.addr(), &state));
    caught_up(&run.st, &m.handle).await;
    stable_writes(&m.handle, 1);
    m.handle.exec(1, &["FLUSHDB"]);
    stable_writes(&m.handle, 2);
    caught_up(&run.st, &m.handle).await;
    assert_target_equals_source("after FLUSHDB", redis.addr(), &m.handle).await;
    m.handle.exec(0, &["FLUSHALL"]);
    stable_writes(&m.handle, 3);
    caught_up(&run.st, &m.handle).await;
    run.finish().await;
    assert_target_equals_source("after FLUSHALL", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_inside_a_full_sync_aborts_and_redoes_it() {
    let now = df2redis::apply::now_ms();
    let m = rich(MockMaster::new().shards(2), now)
        .live_write(WritePhase::FullSync, 0, &["SET", "before-flush", "1"])
        .live_write(WritePhase::FullSync, 0, &["FLUSHALL"])
        .live_write(WritePhase::FullSync, 0, &["SET", "after-flush", "2"])
        .start()
        .await
        .unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("flush-fs");
    let run = start(settings("flushfs", &m.addr.to_string(), redis.addr(), &state));
    caught_up(&run.st, &m.handle).await;
    stable_writes(&m.handle, 1);
    caught_up(&run.st, &m.handle).await;
    let st = run.finish().await;
    assert_eq!(st.snapshot().full_syncs, 2, "{:?}", st.snapshot());
    assert_target_equals_source("FLUSHALL inside full sync", redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_dbs_with_a_db_mapping() {
    let now = df2redis::apply::now_ms();
    let m = rich(MockMaster::new().shards(2), now)
        .key(3, "in3", Value::Hash(vec![(b("a"), b("b"))]))
        .key(15, "in15", Value::String(b("last db")))
        .start()
        .await
        .unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("dbmap");
    let mut s = settings("dbmap", &m.addr.to_string(), redis.addr(), &state);
    s.dbs = DbMap::parse("1=5,3=7").unwrap();
    let run = start(s);
    caught_up(&run.st, &m.handle).await;
    stable_writes(&m.handle, 1);
    m.handle.exec(3, &["HSET", "in3", "c", "d"]);
    m.handle.exec(3, &["FLUSHDB"]);
    m.handle.exec(3, &["SET", "after", "1"]);
    caught_up(&run.st, &m.handle).await;
    run.finish().await;
    let map = |d: u32| match d {
        1 => 5,
        3 => 7,
        d => d,
    };
    let want = expected(&m.handle.dataset(), df2redis::apply::now_ms(), &map);
    assert_same("db mapping", &target(redis.addr(), 0..16).await, &want);
    let _ = std::fs::remove_dir_all(&state);
}

async fn preloaded(redis: &RedisServer) {
    let mut p = connect(redis.addr()).await;
    req(&mut p, 0, &[b"FLUSHALL"]).await;
    req(&mut p, 0, &[b"SET", b"str", b"target's"]).await;
    req(&mut p, 0, &[b"RPUSH", b"biglist", b"target's"]).await;
    req(&mut p, 0, &[b"SET", b"only-on-target", b"x"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_policies_against_pre_existing_keys() {
    let now = df2redis::apply::now_ms();
    let m = rich(MockMaster::new().shards(2).chunk_size(4096), now).start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let src = m.addr.to_string();
    let source = expected(&m.handle.dataset(), now, &|d| d);
    let only = (0u32, b("only-on-target"));

    // overwrite: the source wins, unrelated target keys stay.
    preloaded(&redis).await;
    let state = state_dir("conflict-overwrite");
    let mut s = settings("cow", &src, redis.addr(), &state);
    (s.flush_target, s.conflict, s.target.conflict) = (false, ConflictPolicy::Overwrite, ConflictPolicy::Overwrite);
    let run = start(s);
    caught_up(&run.st, &m.handle).await;
    run.finish().await;
    let mut want = source.clone();
    want.insert(only.clone(), (Norm::Str(b("x")), None));
    assert_same("overwrite", &target(redis.addr(), 0..16).await, &want);

    // skip: the target's keys stay as they were, and are counted.
    preloaded(&redis).await;
    let state = state_dir("conflict-skip");
    let mut s = settings("cskip", &src, redis.addr(), &state);
    (s.flush_target, s.conflict, s.target.conflict) = (false, ConflictPolicy::Skip, ConflictPolicy::Skip);
    let run = start(s);
    caught_up(&run.st, &m.handle).await;
    let st = run.finish().await;
    assert_eq!(st.snapshot().flows.iter().map(|f| f.conflicts_skipped).sum::<u64>(), 2, "{:?}", st.snapshot());
    let mut want = source.clone();
    want.insert(only.clone(), (Norm::Str(b("x")), None));
    want.insert((0, b("str")), (Norm::Str(b("target's")), None));
    want.insert((0, b("biglist")), (Norm::List(vec![b("target's")]), None));
    assert_same("skip", &target(redis.addr(), 0..16).await, &want);

    // panic: stops with an error naming a conflicting key.
    preloaded(&redis).await;
    let state = state_dir("conflict-panic");
    let mut s = settings("cpanic", &src, redis.addr(), &state);
    (s.flush_target, s.conflict, s.target.conflict) = (false, ConflictPolicy::Panic, ConflictPolicy::Panic);
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let err = run_with(s, rx, status()).await.unwrap_err().to_string();
    assert!(err.contains("already exists") && (err.contains("\"str\"") || err.contains("\"biglist\"")), "{err}");
    let mut p = connect(redis.addr()).await;
    assert_eq!(req(&mut p, 0, &[b"GET", b"str"]).await, Frame::Bulk(b("target's")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_are_absolute_and_expired_keys_are_not_resurrected() {
    // The master's clock runs 10 minutes behind: it still serves keys whose absolute expiry has
    // passed in real time, as a lagging or loaded master does.
    let real = df2redis::apply::now_ms();
    let clock = Clock::manual(real - 600_000);
    let m = MockMaster::new()
        .shards(2)
        .clock(clock.clone())
        .key_with_expiry(0, "live", Value::String(b("v")), real + 3_600_000)
        .key_with_expiry(0, "live-hash", Value::Hash(vec![(b("f"), b("v"))]), real + 7_200_123)
        .key_with_expiry(0, "dead", Value::String(b("v")), real - 60_000)
        .key_with_expiry(0, "dead-list", Value::List(vec![b("a")]), real - 1)
        .key_with_expiry(0, "dead-big", Value::List((0..50_000).map(|i| b(&format!("e{i}"))).collect()), real - 1)
        .live_write(WritePhase::FullSync, 0, &["SET", "dead-blob", "1", "PX", "1000"])
        .start()
        .await
        .unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("ttl");
    let mut s = settings("ttl", &m.addr.to_string(), redis.addr(), &state);
    s.restore_max_bytes = 64 << 10;
    let run = start(s);
    caught_up(&run.st, &m.handle).await;
    m.handle.exec(0, &["SET", "j-live", "1", "PX", "3600000"]);
    m.handle.exec(0, &["SET", "j-dead", "1", "PX", "1000"]);
    m.handle.exec(0, &["PEXPIREAT", "live-hash", &(real + 9_000_321).to_string()]);
    m.handle.exec(0, &["SET", "j-persist", "1", "EX", "100000"]);
    m.handle.exec(0, &["PERSIST", "j-persist"]);
    caught_up(&run.st, &m.handle).await;
    run.finish().await;
    let got = target(redis.addr(), 0..16).await;
    let want = expected(&m.handle.dataset(), df2redis::apply::now_ms(), &|d| d);
    for k in ["dead", "dead-list", "dead-big", "dead-blob", "j-dead"] {
        assert!(!got.contains_key(&(0, b(k))), "{k} resurrected");
    }
    assert_eq!(got[&(0, b("live-hash"))].1, Some(real + 9_000_321));
    assert_eq!(got[&(0, b("j-live"))].1, Some(real - 600_000 + 3_600_000));
    assert_eq!(got[&(0, b("j-persist"))].1, None);
    assert_same("TTLs", &got, &want);
    let _ = std::fs::remove_dir_all(&state);
}

/// `advanced.qps` / `--qps`: all flows together write no faster than the limit (a lower bound
/// on the time, which a slow machine cannot break), and the copy is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qps_limits_the_write_rate() {
    let mut mm = MockMaster::new().shards(2);
    for i in 0..3000 {
        mm = mm.key(0, &format!("q:{i}"), Value::String(b(&format!("v{i}"))));
    }
    let m = mm.start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("qps");
    let mut s = settings("qps", &m.addr.to_string(), redis.addr(), &state);
    s.qps = Some(2000);
    let started = std::time::Instant::now();
    let run = start(s);
    caught_up(&run.st, &m.handle).await;
    let took = started.elapsed().as_secs_f64();
    // 3000 writes at 2000/s, less the limiter's 0.1 s burst: at least 1.4 s.
    assert!(took >= 1.4, "3000 keys at --qps 2000 took only {took:.2} s");
    run.finish().await;
    let want = expected(&m.handle.dataset(), df2redis::apply::now_ms(), &|d| d);
    assert_same("qps", &target(redis.addr(), 0..1).await, &want);
    let _ = std::fs::remove_dir_all(&state);
}

/// Appendix F, live: a v1.40 master journals `ZUNIONSTORE` as `DEL` + `ZADD` with scores rounded
/// to 6 digits. df2redis detects it, reads the key back from the source (`DUMP` + `PTTL` between
/// two `DFLY REPLICAOFFSET`) and restores it at that position: the scores are exact, not rounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfaithful_zstore_is_repaired_from_the_live_source() {
    let m = MockMaster::new().shards(2).start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir("repair");
    let run = start(settings("repair", &m.addr.to_string(), redis.addr(), &state));
    caught_up(&run.st, &m.handle).await;
    m.handle.exec(0, &["ZADD", "{r}z1", "1.23456789", "a", "2.000000001", "b"]);
    m.handle.exec(0, &["ZADD", "{r}z2", "0.333333333333", "a", "7.77777777", "c"]);
    m.handle.exec(0, &["ZUNIONSTORE", "{r}dst", "2", "{r}z1", "{r}z2", "WEIGHTS", "1", "3"]);
    m.handle.exec(0, &["SET", "after", "1"]);
    caught_up(&run.st, &m.handle).await;
    let snap = run.st.snapshot();
    let repairs: u64 = snap.flows.iter().map(|f| f.repairs).sum();
    let failed: u64 = snap.flows.iter().map(|f| f.repairs_failed).sum();
    run.finish().await;
    assert!(repairs >= 1 && failed == 0, "repairs {repairs}, failed {failed}");
    let want = expected(&m.handle.dataset(), df2redis::apply::now_ms(), &|d| d);
    // Exact scores: 1.23456789 + 3 × 0.333333333333 is not what 6 digits would give.
    assert_same("repair", &target(redis.addr(), 0..1).await, &want);
    let _ = std::fs::remove_dir_all(&state);
}
