//! Throughput into a 3-master Redis Cluster: the `df2redis replicate` binary (its own process, so
//! its CPU is its own) from the mock master (N string keys of 100 bytes) against
//! `redis-benchmark --cluster -t set -d 100 -P 64 -r 1000000000` (distinct keys) on the same cluster in the same round;
//! then a journal replay (df2redis SIGSTOPped while the master journals `--records` SETs, then
//! SIGCONT) with the per-slot LSN markers on, or off with `--extra --no-target-marker`.
//! Medians over `--rounds`; CPU seconds per 1 M keys of df2redis, the three masters together and
//! the mock master (this process), which hold however loaded the machine is.
//!
//! `cargo build --release --bin df2redis && cargo run --release --example cluster_bench --
//!  [--keys 500000] [--records 500000] [--shards 4] [--rounds 3] [--extra --no-target-marker]`

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use df2redis::proto::Value;
use df2redis::testkit::RedisCluster;
use mock_master::dataset::Entry;
use mock_master::MockMaster;

#[path = "bench_common/mod.rs"]
mod bench_common;
use bench_common::{binary, cpu_s, loadavg, median, spawn_replicate, wait_acks};

fn cpu3(c: [f64; 3]) -> String {
    bench_common::cpu3("masters", c)
}

#[derive(Parser, Debug)]
struct Args {
    /// Keys in the dataset.
    #[arg(long, default_value_t = 500_000)]
    keys: usize,
    /// Journal records replayed after the full sync (0: none).
    #[arg(long, default_value_t = 500_000)]
    records: usize,
    /// Source shards (flows).
    #[arg(long, default_value_t = 4)]
    shards: u32,
    /// Rounds (medians reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Commands per batch (`advanced.batchSize`; the default config value when absent).
    #[arg(long)]
    batch: Option<usize>,
    /// Extra arguments for `df2redis replicate` (e.g. `--no-target-marker`, `--batch-size 2048`).
    #[arg(long, allow_hyphen_values = true, num_args = 0..)]
    extra: Vec<String>,
    /// Pin the target's servers to CPU 0 and everything else (mock master, df2redis,
    /// redis-benchmark) to the other CPUs.
    #[arg(long)]
    pin: bool,
}

fn cluster_cpu(c: &RedisCluster) -> f64 {
    c.servers().iter().map(|s| cpu_s(s.pid())).sum()
}

/// Commands and socket reads the masters processed so far (their ratio is the pipeline depth
/// the target sees).
async fn cmds_reads(c: &RedisCluster) -> (f64, f64) {
    let (mut cmds, mut reads) = (0.0, 0.0);
    for m in c.masters().await.expect("masters") {
        let (k, n) = bench_common::cmds_reads(&m.addr).await;
        cmds += k;
        reads += n;
    }
    (cmds, reads)
}

/// `redis-benchmark --cluster …`: SET/s and the client's own CPU seconds.
fn redis_benchmark(cluster: &RedisCluster, n: usize) -> (f64, f64) {
    let (host, port) = cluster.seed().rsplit_once(':').expect("addr");
    let n = n.to_string();
    // Keys drawn from 10^9: nearly every SET inserts a new key, as the full sync does
    // (`-r N` over N requests overwrites an existing key in 37 % of them, which is cheaper).
    bench_common::redis_benchmark(&[
        "--cluster",
        "-h",
        host,
        "-p",
        port,
        "-t",
        "set",
        "-d",
        "100",
        "-P",
        "64",
        "-n",
        &n,
        "-r",
        "1000000000",
    ])
}

#[derive(Debug, Clone, Copy, Default)]
struct Round {
    ceiling: f64,
    /// CPU s per 1 M SETs of the masters during redis-benchmark.
    ceiling_cpu: f64,
    /// CPU s per 1 M SETs of the redis-benchmark client.
    client_cpu: f64,
    /// CPU cores busy (all measured processes) during redis-benchmark and the full sync.
    cores: [f64; 2],
    keys_s: f64,
    /// Commands per socket read on the masters: redis-benchmark, full sync.
    depth: [f64; 2],
    /// CPU s per 1 M keys: df2redis, masters, mock master.
    full_cpu: [f64; 3],
    ops_s: f64,
    replay_cpu: [f64; 3],
}

async fn round(a: &Args, bin: &std::path::Path, cluster: &RedisCluster, source: &MockMaster, r: usize) -> Round {
    let me = std::process::id();
    let mut out = Round::default();
    cluster.flushall().await.expect("flush");
    let c0 = cluster_cpu(cluster);
    let (k0, n0) = cmds_reads(cluster).await;
    let t = Instant::now();
    let (rate, client) = redis_benchmark(cluster, a.keys);
    let (secs, masters) = (t.elapsed().as_secs_f64(), cluster_cpu(cluster) - c0);
    out.ceiling = rate;
    out.ceiling_cpu = masters * 1e6 / a.keys as f64;
    out.client_cpu = client * 1e6 / a.keys as f64;
    out.cores[0] = (masters + client) / secs;
    let (k1, n1) = cmds_reads(cluster).await;
    out.depth[0] = (k1 - k0) / (n1 - n0).max(1.0);
    cluster.flushall().await.expect("flush");

    let m = source.clone().start().await.expect("mock master");
    let h = m.handle.clone();
    let (state, cfg) = bench_common::bench_config(
        "cbench",
        r,
        &format!("{{addr: '{}'}}", m.addr),
        &format!("{{type: redis-cluster, addr: '{}'}}", cluster.seed()),
        &a.batch.map(|b| format!("advanced: {{batchSize: {b}}}\n")).unwrap_or_default(),
    );
    let (r0, m0) = (cluster_cpu(cluster), cpu_s(me));
    let (k0, n0) = cmds_reads(cluster).await;
    let t0 = Instant::now();
    let mut child = spawn_replicate(bin, &cfg, &a.extra);
    let pid = child.id();
    wait_acks(&h, "full sync", |acks, want| acks.len() == want.len() && acks.iter().all(|a| !a.is_empty())).await;
    let secs = t0.elapsed().as_secs_f64();
    let per_m = 1e6 / a.keys as f64;
    out.full_cpu = [cpu_s(pid) * per_m, (cluster_cpu(cluster) - r0) * per_m, (cpu_s(me) - m0) * per_m];
    out.keys_s = a.keys as f64 / secs;
    out.cores[1] = out.full_cpu.iter().sum::<f64>() / per_m / secs;
    let (k1, n1) = cmds_reads(cluster).await;
    out.depth[1] = (k1 - k0) / (n1 - n0).max(1.0);
    let mut total = 0;
    for mst in cluster.masters().await.expect("masters") {
        let f = df2redis::testkit::command(&mst.addr, None, &df2redis::resp::Cmd::new("DBSIZE")).await.expect("dbsize");
        total += f.as_int().unwrap_or(0);
    }
    // The per-slot marker hashes are keys too (one per slot written in stable sync: none yet).
    assert!(total as usize >= a.keys, "keys on the cluster: {total} < {}", a.keys);

    if a.records > 0 {
        let kill = |sig: &str| {
            Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
        };
        kill("-STOP");
        for i in 0..a.records {
            h.exec(0, &["SET", &format!("j:{:08}", i % 500_000), "0123456789abcdef0123456789abcdef"]);
        }
        let (c0, r0, m0) = (cpu_s(pid), cluster_cpu(cluster), cpu_s(me));
        let t1 = Instant::now();
        kill("-CONT");
        wait_acks(&h, "journal replay", |acks, want| acks.iter().zip(want).all(|(a, w)| a.last() == Some(w))).await;
        out.ops_s = a.records as f64 / t1.elapsed().as_secs_f64();
        let per_m = 1e6 / a.records as f64;
        out.replay_cpu = [(cpu_s(pid) - c0) * per_m, (cluster_cpu(cluster) - r0) * per_m, (cpu_s(me) - m0) * per_m];
    }
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    let st = child.wait().expect("wait");
    assert!(st.success(), "df2redis exited with {st}");
    m.stop().await;
    let _ = std::fs::remove_dir_all(&state);
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let a = Args::parse();
    let bin = binary();
    let cluster = RedisCluster::start(3, 0).await.expect("cluster");
    let pinned = a.pin && bench_common::pin_target(&cluster.servers().iter().map(|s| s.pid()).collect::<Vec<_>>());
    let mut source = MockMaster::new().shards(a.shards);
    let val = Bytes::from(vec![b'x'; 100]);
    // Keys are slices of one buffer: the master's snapshot clones them without allocating.
    let names = Bytes::from((0..a.keys).flat_map(|i| format!("key:{i:010}").into_bytes()).collect::<Vec<u8>>());
    for i in 0..a.keys {
        source.dataset_mut().insert(0, names.slice(i * 14..(i + 1) * 14), Entry::new(Value::String(val.clone())));
    }
    println!(
        "{} keys, {} journal SETs, {} flows, 3 masters, extra {:?}; {}; loadavg {}",
        a.keys,
        a.records,
        a.shards,
        a.extra,
        if pinned { "masters pinned to CPU 0, the rest to the other CPUs" } else { "not pinned" },
        loadavg()
    );
    let mut rounds = Vec::new();
    for r in 0..a.rounds.max(1) {
        let x = round(&a, &bin, &cluster, &source, r).await;
        println!(
            "round {r}: redis-benchmark --cluster {:.0} SET/s (masters {:.2} s/M, client {:.2} s/M, {:.2} cores, {:.0} cmds/read) \
             | full sync {:.0} keys/s ({:.0} %, {:.0} cmds/read, {:.2} cores) cpu s/M: {} \
             | replay {:.0} ops/s cpu s/M: {} | loadavg {}",
            x.ceiling,
            x.ceiling_cpu,
            x.client_cpu,
            x.cores[0],
            x.depth[0],
            x.keys_s,
            100.0 * x.keys_s / x.ceiling,
            x.depth[1],
            x.cores[1],
            cpu3(x.full_cpu),
            x.ops_s,
            cpu3(x.replay_cpu),
            loadavg()
        );
        rounds.push(x);
    }
    let med = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    println!("medians of {} rounds (loadavg now {}):", rounds.len(), loadavg());
    println!(
        "  redis-benchmark --cluster -t set -d 100 -P 64 -r 1e9: {:.0} SET/s, masters {:.2} CPU s per 1 M SETs",
        med(&|x| x.ceiling),
        med(&|x| x.ceiling_cpu)
    );
    println!(
        "  full sync: {:.0} keys/s = {:.0} % of it (per-round ratios); CPU s per 1 M keys: df2redis {:.2}, masters {:.2}, mock {:.2}",
        med(&|x| x.keys_s),
        100.0 * med(&|x| x.keys_s / x.ceiling),
        med(&|x| x.full_cpu[0]),
        med(&|x| x.full_cpu[1]),
        med(&|x| x.full_cpu[2])
    );
    // What 2 cores allow when every process is CPU-bound: the ceiling costs masters + client per
    // key, the full sync costs df2redis + masters + mock per key.
    let full = med(&|x| x.full_cpu.iter().sum());
    let bench = med(&|x| x.ceiling_cpu + x.client_cpu);
    println!(
        "  CPU budget on 2 cores: redis-benchmark path {:.2} s/M (client {:.2}) → ≤ {:.0} SET/s; full-sync path {:.2} s/M → ≤ {:.0} keys/s; \
         bound on the ratio with both CPU-bound: {:.0} %; cores busy: benchmark {:.2}, full sync {:.2}",
        bench,
        med(&|x| x.client_cpu),
        2e6 / bench,
        full,
        2e6 / full,
        100.0 * bench / full,
        med(&|x| x.cores[0]),
        med(&|x| x.cores[1])
    );
    if a.records > 0 {
        println!(
            "  journal replay: {:.0} ops/s; CPU s per 1 M records: df2redis {:.2}, masters {:.2}, mock {:.2}",
            med(&|x| x.ops_s),
            med(&|x| x.replay_cpu[0]),
            med(&|x| x.replay_cpu[1]),
            med(&|x| x.replay_cpu[2])
        );
    }
}
