//! Replica-side conformance: a test replica built on the project's decoders drives the mock
//! through handshake → full sync → stable sync → disconnect → partial resume, for every release
//! family, and checks that what it applied equals the master's dataset at every step.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::replica::{normalized, store_for, Replica};
use common::DEADLINE;
use df2redis::proto::Value;
use mock_master::{Clock, Compression, MockMaster, PartialSync, Release, FAMILIES};

const T0: u64 = 1_700_000_000_000;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

pub fn rich(m: MockMaster, strings_only: bool) -> MockMaster {
    let mut m = m
        .key(0, "str", Value::String(b("hello")))
        .key(0, "num", Value::String(b("12345")))
        .key_with_expiry(0, "ttl", Value::String(b("v")), T0 + 3_600_000)
        .key(1, "k1", Value::String(b("v1")))
        .key(0, "long", Value::String(Bytes::from(vec![b'x'; 5000])));
    for i in 0..50 {
        m = m.key(0, &format!("s:{i}"), Value::String(b(&format!("value-{i}"))));
    }
    if strings_only {
        return m;
    }
    m.key(0, "lst", Value::List(vec![b("a"), b("b"), b("c")]))
        .key(0, "st", Value::Set(vec![b("1"), b("2"), b("3")]))
        .key(0, "tags", Value::Set(vec![b("x"), b("y")]))
        .key(0, "h", Value::Hash(vec![(b("f"), b("v"))]))
        .key(0, "z", Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5)]))
        .key(0, "biglist", Value::List((0..20_000).map(|i| b(&format!("element-{i}"))).collect()))
        .key(0, "bighash", Value::Hash((0..3000).map(|i| (b(&format!("f{i}")), b(&format!("v{i}")))).collect()))
        .key(
            0,
            "s",
            mock_master::scenario::stream_of(vec![df2redis::proto::model::StreamEntry {
                id: df2redis::proto::model::StreamId { ms: 1, seq: 1 },
                fields: vec![(b("f"), b("v"))],
            }]),
        )
}

fn writes(h: &mock_master::Handle, round: u32) {
    let k = |s: &str| format!("{s}{round}");
    h.exec(0, &["SET", &k("foo"), "bar", "EX", "100"]);
    h.exec(0, &["SET", &k("plain"), "1"]);
    h.exec(0, &["INCR", &k("plain")]);
    h.exec(0, &["EXPIRE", &k("plain"), "500"]);
    h.exec(0, &["MSET", &k("m1"), "1", &k("m2"), "2", &k("m3"), "3", &k("m4"), "4"]);
    h.exec(0, &["DEL", &k("m1"), &k("m2"), &k("m3")]);
    h.exec(1, &["SET", &k("db1"), "x"]);
    h.exec(0, &["APPEND", "str", "!"]);
}

fn collection_writes(h: &mock_master::Handle, round: u32) {
    let k = |s: &str| format!("{s}{round}");
    h.exec(0, &["HSET", &k("hh"), "a", "1", "b", "2"]);
    h.exec(0, &["RPUSH", &k("ll"), "a", "b", "c"]);
    h.exec(0, &["LPOP", &k("ll")]);
    h.exec(0, &["SADD", &k("ss"), "a", "b", "c"]);
    h.exec(0, &["SPOP", &k("ss")]);
    h.exec(0, &["ZADD", &k("zz"), "1", "a", "2", "b"]);
    h.exec(0, &["XADD", "s", "*", "f", &k("v")]);
}

async fn run_family(release: Release, compression: Compression, strings_only: bool) {
    let clock = Clock::manual(T0);
    let master = rich(
        MockMaster::new().release(release).shards(2).clock(clock.clone()).compression(compression).chunk_size(4096),
        strings_only,
    )
    .start()
    .await
    .unwrap();
    let h = master.handle.clone();
    let store = store_for(release, clock.clone());
    let mut rep = Replica::connect(master.addr, Some(4), None, store.clone()).await;
    assert!(rep.flows.iter().all(|f| !f.partial));
    rep.full_sync().await;
    assert_eq!(normalized(&store.dataset()), normalized(&h.dataset()), "{release}: after full sync");
    if !release.has_acks() {
        // v1.3 has no JOURNAL_OFFSET, which the project's FlowDecoder requires (see docs).
        return;
    }
    rep.start_stable().await;
    rep.until_tokens().await;
    assert_eq!(rep.next_lsns(), h.offsets(), "{release}: JOURNAL_OFFSET = next LSN");
    writes(&h, 1);
    if !strings_only {
        collection_writes(&h, 1);
    }
    clock.advance(4000);
    h.exec(0, &["SET", "late", "1"]);
    let target = h.offsets();
    rep.pump_until("stable records", |r| r.next_lsns() == target).await;
    assert_eq!(normalized(&store.dataset()), normalized(&h.dataset()), "{release}: after stable sync");
    // Every SELECT/LSN rule was checked by the decoder; the txid rules here:
    for (_, _, rec) in &rep.journal_records {
        if let df2redis::proto::JournalOp::Command { txid, args, .. } = &rec.op {
            let name = String::from_utf8_lossy(&args[0]).to_string();
            if name != "MSET" && name != "DEL" {
                assert_eq!(txid, &0, "{release}: single-shard {name} has txid 0");
            }
        }
    }
    rep.ack_all().await;
    let acked = rep.next_lsns();
    h.wait_until("acks", DEADLINE, |h| {
        h.sessions()
            .first()
            .is_some_and(|s| s.acks.iter().map(|a| a.last().copied().unwrap_or(0)).collect::<Vec<_>>() == acked)
    })
    .await
    .unwrap();
    // Disconnect; the master cancels the session; more writes land in the backlog.
    let lsns = rep.next_lsns();
    drop(rep);
    h.wait_until("session gone", DEADLINE, |h| h.sessions().is_empty()).await.unwrap();
    writes(&h, 2);
    if !strings_only {
        collection_writes(&h, 2);
    }
    let mut rep = Replica::connect(master.addr, Some(4), Some(&lsns), store.clone()).await;
    match release.partial_sync() {
        PartialSync::Direct => {
            assert!(rep.all_partial(), "{release}: PARTIAL expected");
            rep.direct_partial(&lsns);
            rep.start_stable().await;
        }
        PartialSync::IncrementalSnapshot => {
            assert!(rep.all_partial(), "{release}: PARTIAL expected");
            rep.full_sync().await;
            let entries = rep
                .flows
                .iter()
                .flat_map(|f| &f.events)
                .filter(|e| matches!(e, df2redis::proto::Event::EntryBegin { .. }))
                .count();
            assert_eq!(entries, 0, "{release}: the incremental snapshot carries no keys");
            rep.start_stable().await;
            rep.until_tokens().await;
        }
        PartialSync::Unavailable | PartialSync::LastMasterOnly => {
            assert!(rep.flows.iter().all(|f| !f.partial), "{release}: FULL expected");
            rep.full_sync().await;
            rep.start_stable().await;
            rep.until_tokens().await;
        }
    }
    h.exec(0, &["SET", "after-resume", "1"]);
    let target = h.offsets();
    rep.pump_until("resumed records", |r| r.next_lsns() == target).await;
    assert_eq!(normalized(&store.dataset()), normalized(&h.dataset()), "{release}: after resume");
}

#[tokio::test]
async fn every_family_strings_lz4() {
    for r in FAMILIES {
        run_family(r, Compression::Lz4, true).await;
    }
}

#[tokio::test]
async fn every_family_all_types_and_compressions() {
    for (i, r) in FAMILIES.into_iter().enumerate() {
        let c = [Compression::None, Compression::Lzf, Compression::Zstd, Compression::Lz4][i % 4];
        run_family(r, c, false).await;
    }
}
