//! Full-sync throughput into a 3-master Redis Cluster: `df2redis replicate` from the mock master
//! (N string keys of 100 bytes) against `redis-benchmark --cluster -t set -d 100 -P 64` on the
//! same cluster in the same run. Reports keys/s of both and the ratio.
//!
//! `cargo run --release --example cluster_bench -- [--keys 500000] [--shards 4] [--rounds 3]`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use df2redis::apply::conn::PipeOptions;
use df2redis::apply::policy::{ConflictPolicy, DbMap, TypePolicies};
use df2redis::proto::Value;
use df2redis::replica::SourceOpts;
use df2redis::replicate::{run_with, Settings};
use df2redis::status::{FlowPhase, Status};
use df2redis::target::cluster::{ClusterOpts, TargetMode};
use df2redis::testkit::RedisCluster;
use mock_master::dataset::Entry;

#[derive(Parser, Debug)]
struct Args {
    /// Keys in the dataset.
    #[arg(long, default_value_t = 500_000)]
    keys: usize,
    /// Source shards (flows).
    #[arg(long, default_value_t = 4)]
    shards: u32,
    /// Rounds (medians reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Commands per batch.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Also time the same full sync into one standalone redis-server (to see whether the source
    /// or the cluster writer bounds the figure).
    #[arg(long)]
    standalone: bool,
}

fn settings(src: &str, seed: &str, batch: usize) -> Settings {
    Settings {
        task: "bench".into(),
        source: SourceOpts {
            addr: src.into(),
            username: None,
            password: None,
            listening_port: 6380,
            client_id: "bench".into(),
        },
        target: PipeOptions { addr: seed.into(), max_batches_in_flight: 64, ..Default::default() },
        checkpoint: None,
        checkpoint_interval: Duration::from_secs(60),
        status_file: None,
        dashboard: None,
        policies: TypePolicies::default(),
        conflict: ConflictPolicy::Overwrite,
        dbs: DbMap::default(),
        flush_target: true,
        resync_flush: true,
        marker: None,
        queue_bytes: 32 << 20,
        restore_max_bytes: 1 << 20,
        batch,
        qps: None,
        ack_interval: Duration::from_secs(1),
        max_retries: 1,
        log_interval: Duration::from_secs(600),
        cluster: ClusterOpts { mode: TargetMode::Cluster, seeds: vec![], wait_replicas: Some(0), ..Default::default() },
    }
}

async fn ours(cluster: &RedisCluster, a: &Args) -> f64 {
    let mut mm = mock_master::MockMaster::new().shards(a.shards);
    let val = Bytes::from(vec![b'x'; 100]);
    for i in 0..a.keys {
        mm.dataset_mut().insert(0, Bytes::from(format!("key:{i:010}")), Entry::new(Value::String(val.clone())));
    }
    let m = mm.start().await.expect("mock master");
    let status = Arc::new(Status::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let run = tokio::spawn(run_with(settings(&m.addr.to_string(), cluster.seed(), a.batch), rx, status.clone()));
    loop {
        let flows = status.flows.lock().expect("status").clone();
        if !flows.is_empty()
            && flows.iter().all(|f| f.phase() == FlowPhase::Stable && f.lsn_confirmed.load(Ordering::Relaxed) > 0)
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "full sync did not finish: {}", status.log_line());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.send(true).expect("stop");
    run.await.expect("join").expect("replicate");
    m.stop().await;
    let mut total = 0;
    for mst in cluster.masters().await.expect("masters") {
        let f = df2redis::testkit::command(&mst.addr, None, &df2redis::resp::Cmd::new("DBSIZE")).await.expect("dbsize");
        total += f.as_int().unwrap_or(0);
    }
    assert_eq!(total as usize, a.keys, "keys on the cluster");
    a.keys as f64 / secs
}

async fn redis_benchmark(cluster: &RedisCluster, n: usize) -> f64 {
    let (host, port) = cluster.seed().rsplit_once(':').expect("addr");
    let out = tokio::process::Command::new("redis-benchmark")
        .args(["--cluster", "-h", host, "-p", port, "-t", "set", "-d", "100", "-P", "64", "-q"])
        .args(["-n", &n.to_string(), "-r", &n.to_string()])
        .output()
        .await
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // `-q` prints progress with `\r`; the figure is the token before "requests per second".
    let before = text.rsplit_once("requests per second").map(|(b, _)| b).unwrap_or_default();
    let num = before.split_whitespace().last().unwrap_or("0");
    num.parse().unwrap_or_else(|_| panic!("cannot parse redis-benchmark output: {text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let cluster = RedisCluster::start(3, 0).await.expect("cluster");
    let (mut us, mut them) = (Vec::new(), Vec::new());
    for r in 0..a.rounds {
        cluster.flushall().await.expect("flush");
        let b = redis_benchmark(&cluster, a.keys).await;
        cluster.flushall().await.expect("flush");
        let o = ours(&cluster, &a).await;
        println!(
            "round {r}: df2redis full sync {o:.0} keys/s, redis-benchmark --cluster -P 64 {b:.0} SET/s ({:.1} %)",
            100.0 * o / b
        );
        us.push(o);
        them.push(b);
    }
    if a.standalone {
        let single = df2redis::testkit::RedisServer::start().await.expect("redis-server");
        let mut st = a.keys;
        let mut mm = mock_master::MockMaster::new().shards(a.shards);
        let val = Bytes::from(vec![b'x'; 100]);
        for i in 0..a.keys {
            mm.dataset_mut().insert(0, Bytes::from(format!("key:{i:010}")), Entry::new(Value::String(val.clone())));
        }
        let m = mm.start().await.expect("mock master");
        let status = Arc::new(Status::default());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut set = settings(&m.addr.to_string(), single.addr(), a.batch);
        set.cluster.mode = TargetMode::Standalone;
        let start = Instant::now();
        let run = tokio::spawn(run_with(set, rx, status.clone()));
        loop {
            let flows = status.flows.lock().expect("status").clone();
            if !flows.is_empty()
                && flows.iter().all(|f| f.phase() == FlowPhase::Stable && f.lsn_confirmed.load(Ordering::Relaxed) > 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        st = (st as f64 / start.elapsed().as_secs_f64()) as usize;
        stop.send(true).expect("stop");
        run.await.expect("join").expect("replicate");
        println!("standalone target, same source: {st} keys/s");
    }
    let (o, b) = (median(us), median(them));
    println!(
        "median: df2redis {o:.0} keys/s vs redis-benchmark {b:.0} SET/s = {:.1} % ({} keys, {} flows, 3 masters)",
        100.0 * o / b,
        a.keys,
        a.shards
    );
}
