//! Helpers shared by the verify integration tests: real redis-server pairs, datasets, a runner.

#![allow(dead_code, clippy::unwrap_used)]

use df2redis::resp::Cmd;
use df2redis::testkit::{RedisServer, ServerOptions};
use df2redis::verify::engine::{Engine, Settings};
use df2redis::verify::progress::Progress;
use df2redis::verify::{Diff, DiffKind, RedisStore};
use std::sync::Arc;

/// Server options that force every "small" encoding off: hashtable hashes/sets/zsets and
/// one-element quicklist nodes, so equal data is stored differently than on a default server.
pub fn big_encodings() -> ServerOptions {
    ServerOptions {
        args: [
            "--hash-max-listpack-entries",
            "0",
            "--set-max-intset-entries",
            "0",
            "--zset-max-listpack-entries",
            "0",
            "--list-max-listpack-size",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        ..ServerOptions::default()
    }
}

/// A source with default settings and a target with `target` options.
pub async fn pair(target: ServerOptions) -> (RedisServer, RedisServer) {
    let (s, t) = tokio::join!(RedisServer::start(), RedisServer::start_with(target));
    (s.unwrap(), t.unwrap())
}

/// Sends commands in a pipeline; panics on any error reply.
pub async fn load(s: &RedisServer, cmds: impl IntoIterator<Item = Cmd>) {
    let mut p = s.pipeline().await.unwrap();
    let mut errors = Vec::new();
    p.run(cmds, 512, |i, f| {
        if f.is_error() {
            errors.push((i, f.to_string_lossy()));
        }
    })
    .await
    .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Sends commands to a cluster, each to the node owning its key (first argument after the name).
pub async fn load_cluster(c: &df2redis::testkit::RedisCluster, cmds: Vec<(Vec<u8>, Cmd)>) {
    let map = c.slot_map().await.unwrap();
    let mut per: std::collections::BTreeMap<usize, Vec<Cmd>> = Default::default();
    for (key, cmd) in cmds {
        per.entry(map.node_of_key(&key).unwrap()).or_default().push(cmd);
    }
    for (node, cmds) in per {
        let addr = map.nodes()[node].addr.clone();
        let mut p = df2redis::resp::Pipeline::connect(&addr, &Default::default()).await.unwrap();
        let mut errors = Vec::new();
        p.run(cmds, 512, |i, f| {
            if f.is_error() {
                errors.push((i, f.to_string_lossy()));
            }
        })
        .await
        .unwrap();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// A deterministic mixed dataset: `n` strings plus containers of every type, small and big
/// (`big` elements), some with an absolute expiry `expire_at_ms`. `reverse` inserts elements in
/// the opposite order (same logical value, different internal order).
pub fn dataset(n: usize, big: usize, expire_at_ms: u64, reverse: bool) -> Vec<(Vec<u8>, Cmd)> {
    let mut out: Vec<(Vec<u8>, Cmd)> = Vec::new();
    let ord = |v: Vec<usize>| if reverse { v.into_iter().rev().collect() } else { v };
    for i in 0..n {
        let k = format!("str:{i}");
        out.push((k.clone().into(), Cmd::new("SET").arg(&k).arg(format!("value-{i}"))));
        if i % 10 == 0 {
            out.push((k.clone().into(), Cmd::new("PEXPIREAT").arg(&k).arg(expire_at_ms)));
        }
    }
    out.push(("str:int".into(), Cmd::new("SET").arg("str:int").arg("12345")));
    out.push(("str:bin".into(), Cmd::new("SET").arg("str:bin").arg(&b"\x00\xff\r\n"[..])));
    for (name, size) in [("small", 5usize), ("big", big)] {
        let l = format!("list:{name}");
        for i in 0..size {
            out.push((l.clone().into(), Cmd::new("RPUSH").arg(&l).arg(format!("e{i}"))));
        }
        let h = format!("hash:{name}");
        for i in ord((0..size).collect()) {
            out.push((h.clone().into(), Cmd::new("HSET").arg(&h).arg(format!("f{i}")).arg(format!("v{i}"))));
        }
        let s = format!("set:{name}");
        for i in ord((0..size).collect()) {
            out.push((s.clone().into(), Cmd::new("SADD").arg(&s).arg(format!("m{i}"))));
        }
        let si = format!("intset:{name}");
        for i in ord((0..size).collect()) {
            out.push((si.clone().into(), Cmd::new("SADD").arg(&si).arg(i as u64 * 7)));
        }
        let z = format!("zset:{name}");
        for i in ord((0..size).collect()) {
            out.push((
                z.clone().into(),
                Cmd::new("ZADD").arg(&z).arg(format!("{}", i as f64 / 3.0)).arg(format!("z{i}")),
            ));
        }
        let x = format!("stream:{name}");
        for i in 0..size {
            out.push((
                x.clone().into(),
                Cmd::new("XADD")
                    .arg(&x)
                    .arg(format!("{}-{}", 1000 + i / 3, i % 3))
                    .arg("f")
                    .arg(format!("{i}"))
                    .arg("g")
                    .arg("h"),
            ));
        }
    }
    out.push(("hash:small".into(), Cmd::new("PEXPIREAT").arg("hash:small").arg(expire_at_ms)));
    out
}

/// Milliseconds since the epoch plus `plus_ms`.
pub fn now_ms(plus_ms: u64) -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + plus_ms
}

/// Stores for a source and target address.
pub async fn stores(src: &str, tgt: &str) -> (Arc<RedisStore>, Arc<RedisStore>) {
    let s = RedisStore::connect_addr("source", src, Default::default()).await.unwrap();
    let t = RedisStore::connect_addr("target", tgt, Default::default()).await.unwrap();
    (Arc::new(s), Arc::new(t))
}

/// One pass with `settings`.
pub async fn verify(src: &str, tgt: &str, settings: Settings) -> Vec<Diff> {
    let (s, t) = stores(src, tgt).await;
    Engine::new(s, t, settings, Progress::hidden()).pass().await.unwrap()
}

/// (key, kind) of each difference.
pub fn found(d: &[Diff]) -> Vec<(String, DiffKind)> {
    d.iter().map(|x| (String::from_utf8_lossy(&x.key).into_owned(), x.kind)).collect()
}
