//! Probe rounds against real redis-servers: lengths and values read without length commands
//! when provable, and reads guided by the other side's types (right, wrong or absent guesses)
//! give exactly what unguided reads give.

#![allow(clippy::unwrap_used)]

use super::RedisStore;
use crate::resp::Cmd;
use crate::testkit::{RedisServer, ServerOptions};
use crate::verify::model::{Depth, KeyState, KeyType, ValueState};
use crate::verify::store::Store;
use bytes::Bytes;

/// The big-key threshold of these tests.
const T: u64 = 8;

fn n(k: usize) -> Vec<String> {
    (0..k).map(|i| format!("{i}")).collect()
}

fn dataset() -> Vec<Cmd> {
    let zadd = |key: &str, k: usize| {
        let mut c = Cmd::new("ZADD").arg(key);
        for i in 0..k {
            c = c.arg(format!("{}", i as f64 / 2.0)).arg(format!("m{i}"));
        }
        c
    };
    let hset = |key: &str, k: usize| {
        let mut c = Cmd::new("HSET").arg(key);
        for i in 0..k {
            c = c.arg(format!("f{i}")).arg(format!("v{i}"));
        }
        c
    };
    vec![
        Cmd::new("SET").arg("str").arg("value"),
        Cmd::new("SET").arg("empty-str").arg(""),
        Cmd::new("RPUSH").arg("l7").args(n(7)),
        Cmd::new("PEXPIRE").arg("l7").arg(3_600_000),
        Cmd::new("RPUSH").arg("l8").args(n(8)),
        Cmd::new("RPUSH").arg("l9").args(n(9)),
        zadd("z3", 3),
        zadd("z8", 8),
        zadd("z20", 20),
        Cmd::new("XGROUP").arg("CREATE").arg("x0").arg("g").arg("$").arg("MKSTREAM"),
        Cmd::new("XADD").arg("x2").arg("1-1").arg("f").arg("v"),
        Cmd::new("XADD").arg("x2").arg("2-1").arg("f").arg("w"),
        Cmd::new("SADD").arg("ints8").args(n(8)),
        Cmd::new("SADD").arg("ints10").args(n(10)),
        Cmd::new("SADD").arg("words3").args(["a", "b", "c"]),
        hset("h3", 3),
        hset("h20", 20),
    ]
}

fn keys() -> Vec<Bytes> {
    [
        "str",
        "empty-str",
        "l7",
        "l8",
        "l9",
        "z3",
        "z8",
        "z20",
        "x0",
        "x2",
        "ints8",
        "ints10",
        "words3",
        "h3",
        "h20",
        "missing",
    ]
    .iter()
    .map(|k| Bytes::from_static(k.as_bytes()))
    .collect()
}

/// PTTLs read at different instants differ by a few ms: round them away for equality.
fn settle(mut v: Vec<KeyState>) -> Vec<KeyState> {
    for s in &mut v {
        s.pttl = s.pttl.map(|p| if p < 0 { p } else { (p + 30_000) / 60_000 });
    }
    v
}

async fn check(server: &RedisServer) {
    let mut p = server.pipeline().await.unwrap();
    p.run(dataset(), 64, |i, f| assert!(!f.is_error(), "command {i}: {f:?}")).await.unwrap();
    let store = RedisStore::connect_addr("source", server.addr(), Default::default()).await.unwrap();
    let keys = keys();
    let plain = store.probe(0, &keys, Depth::Full, T).await.unwrap();
    // Lengths are the real ones; values are whole up to T elements, big above.
    for (k, st) in keys.iter().zip(&plain) {
        let ty = server.cmd(&Cmd::new("TYPE").arg(&k[..])).await.unwrap();
        let ty = KeyType::from_type_reply(ty.as_bytes().unwrap());
        assert_eq!(st.ty, ty, "{k:?}");
        let Some(ty) = ty else {
            assert_eq!(st, &KeyState::MISSING);
            continue;
        };
        let len_cmd = super::len_cmd(ty);
        let len = server.cmd(&Cmd::new(std::str::from_utf8(len_cmd).unwrap()).arg(&k[..])).await.unwrap();
        let len = len.as_int().unwrap() as u64;
        assert_eq!(st.len, Some(len), "{k:?}");
        match &st.value {
            ValueState::Whole(c) => {
                assert_eq!(c.len(), len, "{k:?}");
                assert!(ty == KeyType::String || len <= T, "{k:?} is {len} long, read whole");
            }
            ValueState::Big => {
                // Sets and hashes in a hashtable may need more than one SCAN call even when small.
                assert!(len > T || matches!(ty, KeyType::Set | KeyType::Hash), "{k:?} marked big at {len}");
            }
            ValueState::NotRead => panic!("{k:?} not read"),
        }
        let ttl = if &k[..] == b"l7" { st.pttl.unwrap() > 3_500_000 } else { st.pttl == Some(-1) };
        assert!(ttl, "{k:?}: {:?}", st.pttl);
    }
    // Guesses of the other side: right, every wrong type, none at all.
    let guesses = [
        None,
        Some(KeyType::String),
        Some(KeyType::List),
        Some(KeyType::Set),
        Some(KeyType::Zset),
        Some(KeyType::Hash),
        Some(KeyType::Stream),
        Some(KeyType::Other),
    ];
    let expected = settle(plain.clone());
    let guided = store.probe_like(0, &keys, Depth::Full, T, &plain).await.unwrap();
    assert_eq!(settle(guided), expected, "guided by the right types");
    for g in guesses {
        let like: Vec<KeyState> = keys.iter().map(|_| KeyState { ty: g, ..KeyState::MISSING }).collect();
        let guided = store.probe_like(0, &keys, Depth::Full, T, &like).await.unwrap();
        assert_eq!(settle(guided), expected, "guided by {g:?}");
    }
}

#[tokio::test]
async fn small_encodings_read_without_length_commands_and_guided_reads_agree() {
    check(&RedisServer::start().await.unwrap()).await;
}

#[tokio::test]
async fn hashtable_encodings_read_without_length_commands_and_guided_reads_agree() {
    let opts = ServerOptions {
        args: ["--hash-max-listpack-entries", "0", "--set-max-intset-entries", "0", "--zset-max-listpack-entries", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..ServerOptions::default()
    };
    check(&RedisServer::start_with(opts).await.unwrap()).await;
}
