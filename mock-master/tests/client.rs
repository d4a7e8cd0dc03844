//! Ordinary client commands on the same port (reads, writes, DUMP).

#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use mock_master::{Clock, MockMaster, Reply};

#[tokio::test]
async fn reads_and_writes() {
    let clock = Clock::manual(1_700_000_000_000);
    let m = MockMaster::new().clock(clock.clone()).start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    let ok = Reply::ok();
    assert_eq!(c.cmd(&["SET", "a", "1", "PX", "1000"]).await, ok);
    assert_eq!(c.cmd(&["PTTL", "a"]).await, Reply::Int(1000));
    assert_eq!(c.cmd(&["TYPE", "a"]).await, Reply::Simple("string".into()));
    assert_eq!(c.cmd(&["INCR", "a"]).await, Reply::Int(2));
    assert_eq!(c.cmd(&["PEXPIREAT", "a", "1700000000500"]).await, Reply::Int(1));
    clock.advance(600);
    assert_eq!(c.cmd(&["GET", "a"]).await, Reply::nil());
    assert_eq!(c.cmd(&["HSET", "h", "f", "v", "g", "w"]).await, Reply::Int(2));
    assert_eq!(c.cmd(&["HGET", "h", "g"]).await, Reply::bulk("w"));
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]).await, Reply::Int(2));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]).await, Reply::bulks(["a".into(), "b".into()]));
    assert_eq!(c.cmd(&["SADD", "s", "x"]).await, Reply::Int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "m"]).await, Reply::Int(1));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await, Reply::bulks(["m".into(), "1.5".into()]));
    assert!(matches!(c.cmd(&["XADD", "x", "*", "f", "v"]).await, Reply::Bulk(Some(_))));
    assert_eq!(c.cmd(&["XLEN", "x"]).await, Reply::Int(1));
    assert_eq!(c.cmd(&["DBSIZE"]).await, Reply::Int(5));
    let Reply::Array(Some(scan)) = c.cmd(&["SCAN", "0", "COUNT", "100"]).await else { panic!() };
    assert_eq!(scan[0], Reply::bulk("0"));
    assert_eq!(c.cmd(&["DEL", "h", "l", "nope"]).await, Reply::Int(2));
    assert!(matches!(c.cmd(&["GET", "s"]).await, Reply::Error(e) if e.starts_with("WRONGTYPE")));
    let Reply::Bulk(Some(payload)) = c.cmd(&["DUMP", "s"]).await else { panic!() };
    let v = df2redis::proto::dump::decode_dump(&payload, &df2redis::proto::Limits::default()).unwrap();
    assert_eq!(v, df2redis::proto::Value::Set(vec!["x".into()]));
    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok);
    assert_eq!(c.cmd(&["DBSIZE"]).await, Reply::Int(0));
    assert_eq!(c.cmd(&["FLUSHALL"]).await, ok);
    assert!(m.handle.dataset().is_empty());
}
