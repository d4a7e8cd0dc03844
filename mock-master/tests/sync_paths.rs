//! The replicator's hard paths: DUMP of every type the mock holds (decoded with the project's
//! `decode_dump`, LZF strings inside when compression is on) with `DFLY REPLICAOFFSET` matching
//! the journal; the "last master" partial sync after a promotion (v1.30 and v1.40 behaviour);
//! v1.39's journal-omit optimisation; LZF mode compressing the strings inside containers.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::replica::{normalized, store_for, Replica};
use common::Client;
use df2redis::proto::dump::decode_dump;
use df2redis::proto::{Event, Limits, Value};
use mock_master::{Clock, Compression, MockMaster, Release, Reply, WritePhase};

const T0: u64 = 1_700_000_000_000;
const OLD: &str = "0123456789abcdef0123456789abcdef01234567";

fn every_type(m: &mock_master::Handle) {
    let long = "abcdefgh".repeat(20);
    for cmd in [
        vec!["SET", "s", long.as_str()],
        vec!["RPUSH", "l", long.as_str(), "2", "3"],
        vec!["SADD", "st", "1", "2", "3"],
        vec!["SADD", "ss", "a", long.as_str()],
        vec!["HSET", "h", "f", long.as_str()],
        vec!["ZADD", "z", "1.5", "a", "-2", long.as_str()],
        vec!["XADD", "x", "1-1", "f", long.as_str()],
        vec!["HSETEX", "hx", "100", "f", "v"],
        vec!["SADDEX", "sx", "100", "m"],
        vec!["PFADD", "hll", "a", "b"],
    ] {
        assert!(!matches!(m.exec(0, &cmd), Reply::Error(_)), "{cmd:?}");
    }
    m.insert(0, Bytes::from_static(b"j"), mock_master::Entry::new(Value::Json(Bytes::from_static(b"{\"a\":[1,2]}"))));
}

#[tokio::test]
async fn dump_decodes_for_every_type_and_replicaoffset_tracks_the_journal() {
    for (compression, lzf) in [(Compression::None, false), (Compression::Lz4, true), (Compression::Lzf, true)] {
        for release in [Release::new(1, 40, 1), Release::new(1, 30, 3), Release::new(1, 20, 0)] {
            let clock = Clock::manual(T0);
            let m = MockMaster::new().release(release).compression(compression).clock(clock.clone()).start().await;
            let m = m.unwrap();
            every_type(&m.handle);
            let mut c = Client::connect(m.addr).await;
            for (k, e) in m.handle.dataset().db(0).unwrap() {
                let key = String::from_utf8(k.to_vec()).unwrap();
                let Reply::Bulk(Some(payload)) = c.cmd(&["DUMP", &key]).await else { panic!("DUMP {key}") };
                let v = decode_dump(&payload, &Limits::default()).unwrap_or_else(|e| panic!("{release} {key}: {e}"));
                let (mut got, mut want) = (normalize(&v), normalize(&e.value));
                if let (Value::Stream(g), Value::Stream(w)) = (&mut got, &mut want) {
                    if g.meta.v2.is_none() {
                        w.meta.v2 = None; // type 15 (before v1.30's stream v2) has no such metadata
                    }
                }
                assert_eq!(got, want, "{release} {compression:?}: DUMP {key}");
                let has_lzf = payload.windows(1).any(|w| w[0] == 0xc3);
                if key == "s" || key == "h" || key == "l" {
                    assert_eq!(has_lzf, lzf, "{release} {compression:?}: LZF strings inside DUMP of {key}");
                }
            }
            assert_eq!(c.cmd(&["DUMP", "missing"]).await, Reply::nil());
            // REPLICAOFFSET is 0 before any replica, then each shard's next LSN.
            assert_eq!(c.cmd(&["DFLY", "REPLICAOFFSET"]).await, Reply::Array(Some(vec![Reply::Int(0), Reply::Int(0)])));
            if release.has_acks() {
                let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock.clone())).await;
                rep.full_sync().await;
                rep.start_stable().await;
                rep.until_tokens().await;
                c.cmd(&["SET", "s", "new"]).await;
                c.cmd(&["MSET", "a1", "1", "a2", "2", "a3", "3"]).await;
                let Reply::Array(Some(off)) = c.cmd(&["DFLY", "REPLICAOFFSET"]).await else { panic!() };
                let off: Vec<u64> = off.iter().map(|r| if let Reply::Int(n) = r { *n as u64 } else { 0 }).collect();
                rep.pump_until("offsets", |r| r.next_lsns() == off).await;
                assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()), "{release}");
            }
        }
    }
}

fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    match &mut v {
        Value::Set(s) => s.sort(),
        Value::Zset(z) => z.sort_by(|a, b| a.0.cmp(&b.0)),
        _ => {}
    }
    v
}

fn lsn_vec(l: &[u64]) -> Vec<Vec<String>> {
    let joined = l.iter().map(u64::to_string).collect::<Vec<_>>().join("-");
    l.iter().map(|_| vec![OLD.to_string(), joined.clone()]).collect()
}

#[tokio::test]
async fn a_promoted_master_resumes_siblings_of_its_old_master() {
    // v1.40: the sibling's LSN vector is looked up in the promoted node's own journal, which
    // continues the old master's numbering: PARTIAL, then direct stable sync.
    let clock = Clock::manual(T0);
    let release = Release::new(1, 40, 1);
    let m = MockMaster::new().release(release).clock(clock.clone()).promoted_from(OLD, &[5, 9]).start().await.unwrap();
    assert_eq!(m.handle.offsets(), vec![5, 9]);
    m.handle.exec(0, &["SET", "after-promotion", "1"]);
    let mut rep =
        Replica::connect_with(m.addr, Some(4), Some(lsn_vec(&[5, 9])), store_for(release, clock.clone())).await;
    assert!(rep.all_partial());
    rep.direct_partial(&[5, 9]);
    rep.start_stable().await;
    let target = m.handle.offsets();
    rep.pump_until("the record written after the promotion", |r| r.next_lsns() == target).await;
    assert_eq!(
        rep.store.dataset().get(0, b"after-promotion").map(|e| e.value.clone()),
        Some(Value::String("1".into()))
    );
    drop(rep);
    // A vector that is not in the backlog → FULL; unknown master → FULL; wrong length → error.
    for (id, vec, want) in [(OLD, "4-9", "FULL"), ("f".repeat(40).leak() as &str, "5-9", "FULL")] {
        let (mut ctrl, capa) = common::replica::handshake(m.addr, Some(4)).await;
        let mut f = Client::connect(m.addr).await;
        let Reply::Array(Some(r)) = f.cmd(&["DFLY", "FLOW", &capa.master_id, &capa.sync_id, "0", id, vec]).await else {
            panic!()
        };
        assert_eq!(r[0], Reply::Simple(want.into()), "{id} {vec}");
        ctrl.cmd(&["PING"]).await;
    }
    let (_ctrl, capa) = common::replica::handshake(m.addr, Some(4)).await;
    let mut f = Client::connect(m.addr).await;
    assert_eq!(
        f.cmd(&["DFLY", "FLOW", &capa.master_id, &capa.sync_id, "0", OLD, "5-9-1"]).await,
        Reply::err("syntax error")
    );

    // v1.30: PARTIAL only for the exact vector, starting at the node's current LSN through an
    // incremental snapshot — the write made after the promotion is skipped (fixed in v1.34).
    let release = Release::new(1, 30, 3);
    let m = MockMaster::new().release(release).clock(clock.clone()).promoted_from(OLD, &[5, 9]).start().await.unwrap();
    m.handle.exec(0, &["SET", "lost", "1"]);
    let mut rep =
        Replica::connect_with(m.addr, Some(4), Some(lsn_vec(&[5, 9])), store_for(release, clock.clone())).await;
    assert!(rep.all_partial());
    rep.full_sync().await;
    rep.start_stable().await;
    rep.until_tokens().await;
    assert_eq!(rep.next_lsns(), m.handle.offsets());
    m.handle.exec(0, &["SET", "kept", "1"]);
    let target = m.handle.offsets();
    rep.pump_until("new records", |r| r.next_lsns() == target).await;
    let ds = rep.store.dataset();
    assert!(ds.get(0, b"kept").is_some() && ds.get(0, b"lost").is_none(), "v1.30 failover form skips the gap");
    let mut rep2 = Replica::connect_with(m.addr, Some(4), Some(lsn_vec(&[5, 10])), store_for(release, clock)).await;
    assert!(rep2.flows.iter().all(|f| !f.partial), "v1.30 wants the exact vector");
    rep2.full_sync().await;
}

#[tokio::test]
async fn v1_39_omits_redundant_writes_during_full_sync() {
    for (release, omit) in [(Release::new(1, 39, 0), true), (Release::new(1, 38, 0), false)] {
        let clock = Clock::manual(T0);
        let mut b = MockMaster::new().release(release).shards(1).clock(clock.clone()).journal_omit(true);
        for i in 0..50 {
            b = b.key(0, &format!("k{i:02}"), Value::String("old".into()));
        }
        let m = b.live_write(WritePhase::FullSync, 0, &["SET", "k49", "new"]).start().await.unwrap();
        let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock.clone())).await;
        rep.full_sync().await;
        rep.start_stable().await;
        rep.until_tokens().await;
        let blobs = rep.flows[0].events.iter().filter(|e| matches!(e, Event::JournalBlob { .. })).count();
        assert_eq!(blobs, usize::from(!omit), "{release}");
        assert_eq!(rep.next_lsns(), vec![2], "{release}: an omitted write still moves the LSN");
        assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()), "{release}");
        drop(rep);
        // The omission cleared the backlog: LSN 1 can no longer be resumed.
        let rep = Replica::connect(m.addr, Some(4), Some(&[1]), store_for(release, clock)).await;
        assert_eq!(rep.all_partial(), !omit, "{release}");
    }
}

#[tokio::test]
async fn lzf_mode_compresses_strings_inside_containers() {
    let clock = Clock::manual(T0);
    let release = Release::new(1, 40, 1);
    let m = MockMaster::new().release(release).compression(Compression::Lzf).clock(clock.clone()).start().await;
    let m = m.unwrap();
    let long = "0123456789".repeat(30);
    let fields: Vec<String> = (0..200).map(|i| format!("field-{i:03}-{long}")).collect();
    let mut h = vec!["HSET", "bighash"];
    for f in &fields {
        h.extend([f.as_str(), "v"]);
    }
    m.handle.exec(0, &h);
    m.handle.exec(0, &["RPUSH", "biglist", &long, &long, &long]);
    m.handle.exec(0, &["SADD", "bigset", &format!("a{long}"), &format!("b{long}")]);
    let plain =
        mock_master::encode::entry(b"bighash", m.handle.dataset().get(0, b"bighash").unwrap(), release, false).unwrap();
    let packed =
        mock_master::encode::entry(b"bighash", m.handle.dataset().get(0, b"bighash").unwrap(), release, true).unwrap();
    assert!(packed.len() * 3 < plain.len(), "{} vs {}", packed.len(), plain.len());
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock)).await;
    rep.full_sync().await;
    let raw: usize = rep.flows.iter().map(|f| f.raw.len()).sum();
    assert!(raw < plain.len() / 2, "the snapshot is LZF-compressed inside containers ({raw} bytes)");
    assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
}
