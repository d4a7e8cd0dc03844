//! Each fault does what it says.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::replica::{store_for, Replica};
use common::{Client, DEADLINE};
use mock_master::{Clock, Compression, Fault, MockMaster, Release, Reply};

const ID: &str = "cccccccccccccccccccccccccccccccccccccccc";

async fn one_flow(m: &mock_master::Running) -> (Client, Client) {
    let mut c = Client::connect(m.addr).await;
    c.cmd(&["REPLCONF", "capa", "dragonfly"]).await;
    let mut f = Client::connect(m.addr).await;
    assert!(matches!(f.cmd(&["DFLY", "FLOW", ID, "SYNC1", "0"]).await, Reply::Array(_)));
    (c, f)
}

fn base() -> MockMaster {
    MockMaster::new().shards(1).master_id(ID).compression(Compression::None).key(
        0,
        "k",
        mock_master::scenario::gen_value(&mut mock_master::master::Rng::new(1), "string", 1, 4000).unwrap(),
    )
}

#[tokio::test]
async fn close_flow_at_byte() {
    let m = base().fault(Fault::CloseFlow { flow: 0, at_byte: Some(777), after_records: None }).start().await.unwrap();
    let (mut c, mut f) = one_flow(&m).await;
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, Reply::ok());
    assert!(f.read_to_eof().await);
    assert_eq!(f.buf.len(), 777);
    m.handle.wait_until("cancel", DEADLINE, |h| h.sessions().is_empty()).await.unwrap();
    assert_eq!(c.cmd(&["DFLY", "STARTSTABLE", "SYNC1"]).await, Reply::err("syncid not found"));
}

#[tokio::test]
async fn flip_byte() {
    let m = base().fault(Fault::FlipByte { flow: 0, offset: 3 }).start().await.unwrap();
    let (mut c, mut f) = one_flow(&m).await;
    c.cmd(&["DFLY", "SYNC", "SYNC1"]).await;
    while f.buf.len() < 9 {
        f.fill().await;
    }
    assert_eq!(&f.buf[..9], &[b'R', b'E', b'D', b'I' ^ 0xff, b'S', b'0', b'0', b'0', b'9']);
}

#[tokio::test]
async fn stall_delays_the_rest_of_the_flow() {
    let m = base().fault(Fault::Stall { flow: 0, at_byte: 100, ms: 300 }).start().await.unwrap();
    let (mut c, mut f) = one_flow(&m).await;
    let t = Instant::now();
    c.cmd(&["DFLY", "SYNC", "SYNC1"]).await;
    while f.buf.len() < 100 {
        f.fill().await;
    }
    assert_eq!(f.buf.len(), 100, "exactly the bytes before the stall");
    f.fill().await;
    assert!(t.elapsed().as_millis() >= 300);
}

#[tokio::test]
async fn refuse_and_stall_command() {
    let m = base()
        .fault(Fault::Refuse { command: "dfly sync".into(), error: "ERR invalid state".into(), times: 1 })
        .fault(Fault::StallCommand { command: "PING".into(), ms: 200 })
        .start()
        .await
        .unwrap();
    let (mut c, _f) = one_flow(&m).await;
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, Reply::err("invalid state"));
    assert_eq!(c.cmd(&["DFLY", "SYNC", "SYNC1"]).await, Reply::ok());
    let t = Instant::now();
    assert_eq!(c.cmd(&["PING"]).await, Reply::Simple("PONG".into()));
    assert!(t.elapsed().as_millis() >= 200);
    let t = Instant::now();
    c.cmd(&["PING"]).await;
    assert!(t.elapsed().as_millis() < 200, "fires once");
}

#[tokio::test]
async fn throttle_limits_the_rate() {
    let m = base().fault(Fault::Throttle { flow: 0, bytes_per_sec: 10_000 }).start().await.unwrap();
    let (mut c, mut f) = one_flow(&m).await;
    let t = Instant::now();
    c.cmd(&["DFLY", "SYNC", "SYNC1"]).await;
    while f.buf.len() < 3000 {
        f.fill().await;
    }
    assert!(t.elapsed().as_millis() >= 200, "3000 bytes at 10 kB/s");
}

async fn stable(m: &mock_master::Running, clock: &Clock) -> Replica {
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(Release::new(1, 40, 1), clock.clone())).await;
    rep.full_sync().await;
    rep.start_stable().await;
    rep.until_tokens().await;
    rep
}

#[tokio::test]
async fn close_flow_after_records_then_partial_resume() {
    let clock = Clock::manual(1_700_000_000_000);
    let m = MockMaster::new()
        .shards(1)
        .clock(clock.clone())
        .fault(Fault::CloseFlow { flow: 0, at_byte: None, after_records: Some(2) })
        .start()
        .await
        .unwrap();
    let mut rep = stable(&m, &clock).await;
    for i in 0..5 {
        m.handle.exec(0, &["SET", "a", &i.to_string()]);
    }
    assert!(rep.flows[0].c.read_to_eof().await);
    rep.pump_until("2 records", |r| r.next_lsns() == vec![3]).await;
    m.handle.wait_until("cancel", DEADLINE, |h| h.sessions().is_empty()).await.unwrap();
    let store = rep.store.clone();
    let lsns = rep.next_lsns();
    drop(rep);
    let mut rep = Replica::connect(m.addr, Some(4), Some(&lsns), store).await;
    assert!(rep.all_partial());
    rep.direct_partial(&lsns);
    rep.start_stable().await;
    rep.pump_until("rest", |r| r.next_lsns() == vec![6]).await;
    assert_eq!(rep.store.exec(0, &["GET", "a"]), Reply::bulk("4"));
}

#[tokio::test]
async fn close_control_after_records() {
    let clock = Clock::manual(1_700_000_000_000);
    let m = MockMaster::new()
        .shards(1)
        .clock(clock.clone())
        .fault(Fault::CloseControl { after_records: 1 })
        .start()
        .await
        .unwrap();
    let mut rep = stable(&m, &clock).await;
    m.handle.exec(0, &["SET", "a", "1"]);
    assert!(rep.ctrl.read_to_eof().await);
    assert!(rep.flows[0].c.read_to_eof().await, "the session is cancelled: flows close too");
}

#[tokio::test]
async fn restart_changes_master_id_and_loses_backlog() {
    let clock = Clock::manual(1_700_000_000_000);
    let m = MockMaster::new()
        .shards(1)
        .clock(clock.clone())
        .fault(Fault::Restart { after_records: 1 })
        .start()
        .await
        .unwrap();
    let old_id = m.handle.master_id();
    let mut rep = stable(&m, &clock).await;
    m.handle.exec(0, &["SET", "a", "1"]);
    assert!(rep.flows[0].c.read_to_eof().await);
    m.handle.wait_until("restart", DEADLINE, |h| h.master_id() != old_id).await.unwrap();
    assert_eq!(m.handle.offsets(), vec![0], "journal gone");
    let mut c = Client::connect(m.addr).await;
    let Reply::Array(Some(capa)) = c.cmd(&["REPLCONF", "capa", "dragonfly"]).await else { panic!() };
    assert_eq!(capa[1], Reply::Simple("SYNC1".into()), "sync ids start again");
    let mut f = Client::connect(m.addr).await;
    assert_eq!(f.cmd(&["DFLY", "FLOW", &old_id, "SYNC1", "0", "2"]).await, Reply::err("bad master id"));
}
