//! Handshake transcripts per release family (insta snapshots) checked against the spec's tables

#![allow(clippy::unwrap_used)]
//! (3.2, 3.3, 3.4, 4.1, appendices C and F), plus AUTH and error replies.

mod common;

use common::{show, Client};
use mock_master::{MockMaster, Release, Reply, FAMILIES};

const ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

async fn transcript(release: Release) -> Vec<String> {
    let m = MockMaster::new().release(release).shards(2).master_id(ID).seed(1).start().await.unwrap();
    let mut out = Vec::new();
    let mut c = Client::connect(m.addr).await;
    let steps: Vec<Vec<&str>> = vec![
        vec!["PING"],
        vec!["REPLCONF", "listening-port", "6380"],
        vec!["REPLCONF", "capa", "eof", "capa", "psync2"],
        vec!["REPLCONF", "capa", "dragonfly"],
        vec!["REPLCONF", "CLIENT-ID", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],
        vec!["REPLCONF", "CLIENT-VERSION", "4"],
    ];
    let info = c.cmd(&["INFO", "SERVER"]).await;
    let text = info.as_text().unwrap();
    let ver = text.lines().find(|l| l.starts_with("dragonfly_version:")).unwrap().to_string();
    out.push(format!("INFO SERVER -> {ver}"));
    for s in &steps {
        let r = c.cmd(s).await;
        out.push(format!("{} -> {}", s.join(" "), show(&r)));
    }
    let mut flows = Vec::new();
    for i in 0..2 {
        let mut f = Client::connect(m.addr).await;
        let idx = i.to_string();
        let args = ["DFLY", "FLOW", ID, "SYNC1", idx.as_str()];
        let r = f.cmd(&args).await;
        out.push(format!("{} -> {}", args.join(" "), show(&r)));
        flows.push(f);
    }
    for s in [["DFLY", "SYNC", "SYNC1"], ["DFLY", "STARTSTABLE", "SYNC1"], ["DFLY", "SYNC", "SYNC1"]] {
        let r = c.cmd(&s).await;
        out.push(format!("{} -> {}", s.join(" "), show(&r)));
    }
    let r = c.cmd(&["DFLY", "REPLICAOFFSET"]).await;
    out.push(format!("DFLY REPLICAOFFSET -> {}", show(&r)));
    out
}

#[tokio::test]
async fn transcripts_per_release_family() {
    for r in FAMILIES {
        let t = transcript(r).await;
        // Spec 3.3: 3 elements up to v1.3, 4 up to v1.39, 5 from v1.40 (lineage id = master id).
        let capa = t.iter().find(|l| l.starts_with("REPLCONF capa dragonfly")).unwrap();
        let n = capa.matches(", ").count() + 1;
        assert_eq!(n, r.capa_len(), "{r}: {capa}");
        // Spec 3.4: the version integer.
        match r.version_int() {
            Some(v) => assert!(capa.contains(&format!(":2, :{v}")), "{r}: {capa}"),
            None => assert!(capa.ends_with(":2]"), "{r}: {capa}"),
        }
        insta::assert_yaml_snapshot!(format!("transcript_{}", r.to_string().replace('.', "_")), t);
    }
}

#[tokio::test]
async fn error_replies_match_appendix_f() {
    let m = MockMaster::new().shards(2).master_id(ID).start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    let e = |s: &str| Reply::Error(s.to_string());
    assert_eq!(c.cmd(&["REPLCONF", "capa"]).await, e("ERR syntax error"));
    assert_eq!(c.cmd(&["REPLCONF", "bogus", "1"]).await, e("ERR syntax error"));
    assert_eq!(c.cmd(&["REPLCONF", "listening-port", "x"]).await, e("ERR value is not an integer or out of range"));
    assert_eq!(c.cmd(&["DFLY", "BOGUS"]).await, e("ERR syntax error"));
    assert_eq!(c.cmd(&["DFLY", "STARTSTABLE", "SYNC99999"]).await, e("ERR syncid not found"));
    let capa = c.cmd(&["REPLCONF", "capa", "dragonfly"]).await;
    assert!(matches!(capa, Reply::Array(Some(ref v)) if v.len() == 5));
    assert_eq!(c.cmd(&["REPLCONF", "CLIENT-VERSION", "x"]).await, e("ERR value is not an integer or out of range"));
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, e("ERR invalid state"), "no flow connected yet");
    let mut f = Client::connect(m.addr).await;
    assert_eq!(f.cmd(&["DFLY", "FLOW", &"b".repeat(40), "SYNC1", "0"]).await, e("ERR bad master id"));
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "NOTSYNC", "0"]).await, e("ERR bad sync id"));
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "SYNC7", "0"]).await, e("ERR syncid not found"));
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "2"]).await, e("ERR value is not an integer or out of range"));
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "x"]).await, e("ERR value is not an integer or out of range"));
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0", "x"]).await, e("ERR value is not an integer or out of range"));
    assert_eq!(
        f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0", ID, "1-x-3"]).await,
        e("ERR value is not an integer or out of range"),
        "LSN vector entries are integers"
    );
    assert_eq!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1"]).await, e("ERR syntax error"));
    // A pre-v1.21 master does not know ip-address; v1.40 does.
    assert_eq!(c.cmd(&["REPLCONF", "ip-address", "10.0.0.1"]).await, Reply::ok());
    let old = MockMaster::new().release(Release::new(1, 15, 0)).start().await.unwrap();
    let mut o = Client::connect(old.addr).await;
    assert_eq!(o.cmd(&["REPLCONF", "ip-address", "10.0.0.1"]).await, e("ERR syntax error"));
    // The 5-argument failover form only exists from v1.30.
    let mut of = Client::connect(old.addr).await;
    let oid = old.handle.master_id();
    o.cmd(&["REPLCONF", "capa", "dragonfly"]).await;
    assert_eq!(of.cmd(&["DFLY", "FLOW", &oid, "SYNC1", "0", &oid, "1-1"]).await, e("ERR syntax error"));
}

#[tokio::test]
async fn second_sync_and_late_flow_are_invalid_state() {
    let m = MockMaster::new().shards(1).master_id(ID).start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    c.cmd(&["REPLCONF", "capa", "dragonfly"]).await;
    let mut f = Client::connect(m.addr).await;
    assert!(matches!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0"]).await, Reply::Array(_)));
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, Reply::ok());
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, Reply::err("invalid state"));
    let mut g = Client::connect(m.addr).await;
    assert_eq!(g.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0"]).await, Reply::err("invalid state"));
}

#[tokio::test]
async fn client_version_before_capa_drops_the_connection() {
    let m = MockMaster::new().start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    c.send(&["REPLCONF", "CLIENT-VERSION", "4"]).await;
    assert!(c.read_to_eof().await);
    assert!(c.buf.is_empty());
    // CLIENT-ID first is ignored.
    let mut d = Client::connect(m.addr).await;
    assert_eq!(d.cmd(&["REPLCONF", "CLIENT-ID", "x"]).await, Reply::ok());
}

#[tokio::test]
async fn auth_requirepass_and_acl_users() {
    let m = MockMaster::new().requirepass("pw").user("repl", "secret").start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    assert_eq!(c.cmd(&["PING"]).await, Reply::Error("NOAUTH Authentication required.".into()));
    assert_eq!(c.cmd(&["REPLCONF", "capa", "dragonfly"]).await, Reply::Error("NOAUTH Authentication required.".into()));
    assert!(matches!(c.cmd(&["AUTH", "nope"]).await, Reply::Error(e) if e.starts_with("WRONGPASS")));
    assert_eq!(c.cmd(&["AUTH", "pw"]).await, Reply::ok());
    assert_eq!(c.cmd(&["PING"]).await, Reply::Simple("PONG".into()));
    let mut d = Client::connect(m.addr).await;
    assert!(matches!(d.cmd(&["AUTH", "repl", "pw"]).await, Reply::Error(e) if e.starts_with("WRONGPASS")));
    assert_eq!(d.cmd(&["AUTH", "repl", "secret"]).await, Reply::ok());
    assert_eq!(d.cmd(&["AUTH", "default", "pw"]).await, Reply::ok());
    let open = MockMaster::new().start().await.unwrap();
    let mut o = Client::connect(open.addr).await;
    assert!(matches!(o.cmd(&["AUTH", "x"]).await, Reply::Error(e) if e.contains("without any password")));
}

#[tokio::test]
async fn info_replication_shows_the_replica_and_lag() {
    let m = MockMaster::new().shards(1).master_id(ID).start().await.unwrap();
    let mut c = Client::connect(m.addr).await;
    c.cmd(&["REPLCONF", "listening-port", "7001"]).await;
    c.cmd(&["REPLCONF", "capa", "dragonfly"]).await;
    let mut f = Client::connect(m.addr).await;
    f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0"]).await;
    c.cmd(&["DFLY", "SYNC", "SYNC1"]).await;
    assert_eq!(c.cmd(&["DFLY", "STARTSTABLE", "SYNC1"]).await, Reply::ok());
    m.handle.exec(0, &["SET", "a", "1"]);
    let info = c.cmd(&["INFO", "REPLICATION"]).await.as_text().unwrap();
    assert!(info.contains("slave0:ip=127.0.0.1,port=7001,state=online,lag=2"), "{info}");
    f.send(&["REPLCONF", "ACK", "2"]).await;
    m.handle
        .wait_until("ack", common::DEADLINE, |h| h.sessions().first().is_some_and(|s| s.acks[0] == vec![2]))
        .await
        .unwrap();
    let info = c.cmd(&["INFO", "REPLICATION"]).await.as_text().unwrap();
    assert!(info.contains("lag=0"), "{info}");
    assert_eq!(c.cmd(&["DFLY", "REPLICAOFFSET"]).await, Reply::Array(Some(vec![Reply::Int(2)])));
}
