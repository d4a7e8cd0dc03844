//! Data written through an ordinary client: the scenario's dataset before replication starts,
//! and the live write load while it runs. Works against any source (mock master or Dragonfly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use df2redis::resp::{Cmd, ConnectOptions, Connection};

use super::scenario::{DatasetSpec, LoadSpec};

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `len` printable bytes.
    pub fn text(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len).map(|_| A[self.below(A.len() as u64) as usize] as char).collect()
    }
}

/// A connection that sends batches of commands and checks every reply.
pub struct Writer {
    conn: Connection,
    addr: String,
    queued: Vec<String>,
}

impl Writer {
    pub async fn connect(addr: &str, db: u32) -> Result<Writer> {
        let opts =
            ConnectOptions { db: Some(db), response_timeout: Some(Duration::from_secs(60)), ..Default::default() };
        let conn =
            Connection::connect(addr, &opts).await.with_context(|| format!("connecting to the source {addr}"))?;
        Ok(Writer { conn, addr: addr.to_string(), queued: Vec::new() })
    }

    pub fn push(&mut self, cmd: Cmd) {
        self.queued.push(String::from_utf8_lossy(cmd.name().unwrap_or_default()).into_owned());
        self.conn.queue(&cmd);
    }

    /// Sends what is queued and reads every reply; an error reply fails the batch.
    pub async fn flush(&mut self) -> Result<usize> {
        let n = self.queued.len();
        self.conn.flush().await.with_context(|| format!("writing to {}", self.addr))?;
        for name in self.queued.drain(..) {
            let f = self.conn.read_frame().await.with_context(|| format!("reply from {}", self.addr))?;
            if f.is_error() {
                bail!("source {} rejected {name}: {}", self.addr, f.to_string_lossy());
            }
        }
        Ok(n)
    }
}

/// Writes one dataset spec; returns the number of keys.
pub async fn load_dataset(addr: &str, d: &DatasetSpec, seed: u64) -> Result<usize> {
    let mut w = Writer::connect(addr, d.db).await?;
    let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut keys = 0;
    let total = d.count + d.big_keys;
    for i in 0..total {
        let big = i >= d.count;
        let ty = &d.types[i % d.types.len()];
        let key = if big { format!("{}:big:{ty}:{}", d.prefix, i - d.count) } else { format!("{}:{ty}:{i}", d.prefix) };
        let n = if big { d.big_elements.max(1) } else { d.elements.max(1) };
        for cmd in value_cmds(&mut rng, &key, ty, n, d.size) {
            w.push(cmd);
        }
        if !big && d.ttl_fraction > 0.0 && rng.unit() < d.ttl_fraction {
            w.push(Cmd::new("PEXPIRE").arg(key.as_str()).arg(d.ttl_ms));
        }
        keys += 1;
        if i % 64 == 63 || big {
            w.flush().await?;
        }
    }
    w.flush().await?;
    Ok(keys)
}

/// Commands that create `key` of type `ty` with `n` elements of `size` bytes.
fn value_cmds(rng: &mut Rng, key: &str, ty: &str, n: usize, size: usize) -> Vec<Cmd> {
    let mut out = Vec::new();
    let elem = |rng: &mut Rng, i: usize| format!("{i}:{}", rng.text(size.saturating_sub(8).max(1)));
    match ty {
        "string" => out.push(Cmd::new("SET").arg(key).arg(rng.text(size.max(1)).as_str())),
        "stream" => {
            for i in 0..n {
                let v = elem(rng, i);
                out.push(
                    Cmd::new("XADD")
                        .arg(key)
                        .arg(format!("{}-{}", 1_700_000_000_000u64 + i as u64, 1).as_str())
                        .args(["f", v.as_str()]),
                );
            }
        }
        _ => {
            for start in (0..n).step_by(1000) {
                let end = (start + 1000).min(n);
                let mut c = Cmd::new(match ty {
                    "list" => "RPUSH",
                    "set" => "SADD",
                    "hash" => "HSET",
                    _ => "ZADD",
                })
                .arg(key);
                for i in start..end {
                    let e = elem(rng, i);
                    match ty {
                        "hash" => c.push_arg(format!("f{i}").as_str()).push_arg(e.as_str()),
                        "zset" => {
                            c.push_arg(format!("{}", (rng.below(100_000) as f64) / 8.0).as_str()).push_arg(e.as_str())
                        }
                        _ => c.push_arg(e.as_str()),
                    };
                }
                out.push(c);
            }
        }
    }
    out
}

/// Progress of the live writer.
#[derive(Debug, Default)]
pub struct LoadProgress {
    /// Commands acknowledged by the source.
    pub done: AtomicU64,
}

/// One live write: a mix of commands over the live keys (each key has one type).
fn live_cmd(rng: &mut Rng, keys: usize) -> Cmd {
    let i = rng.below(keys as u64);
    let v = rng.text(12);
    match rng.below(16) {
        0 | 1 => Cmd::new("SET").arg(format!("live:str:{i}").as_str()).arg(v.as_str()),
        2 => Cmd::new("SET").arg(format!("live:str:{i}").as_str()).arg(v.as_str()).arg("EX").arg(3600),
        3 => Cmd::new("INCRBY").arg(format!("live:cnt:{i}").as_str()).arg(rng.below(10) as i64 + 1),
        4 => Cmd::new("HSET")
            .arg(format!("live:hash:{i}").as_str())
            .arg(format!("f{}", rng.below(20)).as_str())
            .arg(v.as_str()),
        5 => Cmd::new("HDEL").arg(format!("live:hash:{i}").as_str()).arg(format!("f{}", rng.below(20)).as_str()),
        6 => Cmd::new("RPUSH").arg(format!("live:list:{i}").as_str()).arg(v.as_str()),
        7 => Cmd::new("LPOP").arg(format!("live:list:{i}").as_str()),
        8 => Cmd::new("SADD").arg(format!("live:set:{i}").as_str()).arg(format!("m{}", rng.below(50)).as_str()),
        9 => Cmd::new("SREM").arg(format!("live:set:{i}").as_str()).arg(format!("m{}", rng.below(50)).as_str()),
        10 => Cmd::new("ZADD")
            .arg(format!("live:zset:{i}").as_str())
            .arg(format!("{}", rng.below(1000) as f64 / 4.0).as_str())
            .arg(format!("m{}", rng.below(50)).as_str()),
        11 => Cmd::new("ZINCRBY")
            .arg(format!("live:zset:{i}").as_str())
            .arg("1.5")
            .arg(format!("m{}", rng.below(50)).as_str()),
        12 => Cmd::new("XADD").arg(format!("live:stream:{}", i % 16).as_str()).arg("*").arg("f").arg(v.as_str()),
        13 => Cmd::new("DEL").arg(format!("live:str:{i}").as_str()),
        14 => Cmd::new("EXPIRE").arg(format!("live:hash:{i}").as_str()).arg(1800),
        _ => Cmd::new("MSET")
            .arg(format!("live:str:{i}").as_str())
            .arg(v.as_str())
            .arg(format!("live:str:{}", rng.below(keys as u64)).as_str())
            .arg(rng.text(6).as_str()),
    }
}

/// Runs the live load to its end; returns (commands, seconds).
pub async fn run_load(addr: String, spec: LoadSpec, seed: u64, progress: Arc<LoadProgress>) -> Result<(u64, f64)> {
    let mut writers = Vec::new();
    for db in &spec.dbs {
        writers.push(Writer::connect(&addr, *db).await?);
    }
    let mut rng = Rng::new(seed ^ 0x51ed_270b_2775_3b6d);
    let start = Instant::now();
    let mut sent = 0usize;
    let batch = spec.batch.max(1);
    while sent < spec.ops {
        let n = batch.min(spec.ops - sent);
        let w = &mut writers[(sent / batch) % spec.dbs.len().max(1)];
        for _ in 0..n {
            w.push(live_cmd(&mut rng, spec.keys.max(1)));
        }
        w.flush().await?;
        sent += n;
        progress.done.store(sent as u64, Ordering::Relaxed);
        if spec.rate > 0 {
            // Pacing to the configured rate (a rate limit, not a wait for state).
            let due = start + Duration::from_secs_f64(sent as f64 / spec.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    Ok((sent as u64, start.elapsed().as_secs_f64()))
}
