//! Stream rules checked through the project's decoders: txids and shard_cnt of multi-shard
//! commands, FLUSHALL on every flow, expiry DELs, PING records, LSN-marker cadence and gating,
//! journal blobs and tagged chunks during full sync.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::replica::{normalized, store_for, Replica};
use df2redis::proto::event::CommandKind;
use df2redis::proto::{Event, JournalOp, Value};
use mock_master::{Clock, Compression, MockMaster, Release, WritePhase};

const T0: u64 = 1_700_000_000_000;

async fn stable(m: &mock_master::Running, release: Release, clock: &Clock, cv: Option<i64>) -> Replica {
    let mut rep = Replica::connect(m.addr, cv, None, store_for(release, clock.clone())).await;
    rep.full_sync().await;
    rep.start_stable().await;
    rep.until_tokens().await;
    rep
}

fn keys_on_both_shards() -> (String, String) {
    let a = (0..).map(|i| format!("k{i}")).find(|k| mock_master::shard::shard_of(k.as_bytes(), 2) == 0).unwrap();
    let b = (0..).map(|i| format!("k{i}")).find(|k| mock_master::shard::shard_of(k.as_bytes(), 2) == 1).unwrap();
    (a, b)
}

fn commands(rep: &Replica) -> Vec<(u32, u64, u64, CommandKind, Vec<String>)> {
    rep.journal_records
        .iter()
        .filter_map(|(flow, _, r)| match &r.op {
            JournalOp::Command { kind, txid, shard_cnt, args } => Some((
                *flow,
                *txid,
                *shard_cnt,
                *kind,
                args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn multi_shard_txids_shard_cnt_and_flushall() {
    for (release, cnt) in [(Release::new(1, 40, 1), 1), (Release::new(1, 30, 3), 2)] {
        let clock = Clock::manual(T0);
        let m = MockMaster::new().release(release).shards(2).clock(clock.clone()).start().await.unwrap();
        let mut rep = stable(&m, release, &clock, Some(4)).await;
        let (a, b) = keys_on_both_shards();
        m.handle.exec(0, &["MSET", &a, "1", &b, "2"]);
        m.handle.exec(0, &["SET", &a, "3", "EX", "10"]);
        m.handle.exec(0, &["FLUSHALL"]);
        let target = m.handle.offsets();
        rep.pump_until("records", |r| r.next_lsns() == target).await;
        let cmds = commands(&rep);
        let mset: Vec<_> = cmds.iter().filter(|c| c.4[0] == "MSET").collect();
        assert_eq!(mset.len(), 2);
        assert_ne!(mset[0].1, 0);
        assert_eq!(mset[0].1, mset[1].1, "shared txid");
        assert_ne!(mset[0].0, mset[1].0, "one record per flow");
        assert!(mset.iter().all(|c| c.2 == cnt), "{release}: shard_cnt");
        let set = cmds.iter().find(|c| c.4[0] == "SET").unwrap();
        assert_eq!(set.1, 0);
        assert_eq!(set.4, vec!["SET".to_string(), a.clone(), "3".into(), "PXAT".into(), (T0 + 10_000).to_string()]);
        let fl: Vec<_> = cmds.iter().filter(|c| c.4[0] == "FLUSHALL").collect();
        assert_eq!(fl.len(), 2, "FLUSHALL on every flow");
        assert_eq!(fl[0].1, fl[1].1);
        assert_ne!(fl[0].1, mset[0].1);
        assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
    }
}

#[tokio::test]
async fn expiry_deletes_and_pings() {
    for (release, kind) in
        [(Release::new(1, 40, 1), CommandKind::Command), (Release::new(1, 37, 0), CommandKind::Expired)]
    {
        let clock = Clock::manual(T0);
        let m = MockMaster::new().release(release).shards(1).clock(clock.clone()).start().await.unwrap();
        let mut rep = stable(&m, release, &clock, Some(4)).await;
        m.handle.exec(0, &["SET", "gone", "1", "PX", "100"]);
        clock.advance(200);
        assert_eq!(m.handle.expire_now(), 1);
        m.handle.journal_ping();
        let target = m.handle.offsets();
        rep.pump_until("records", |r| r.next_lsns() == target).await;
        let del = commands(&rep).into_iter().find(|c| c.4[0] == "DEL").unwrap();
        assert_eq!((del.1, del.3), (0, kind), "{release}");
        assert!(matches!(rep.journal_records.last().unwrap().2.op, JournalOp::Ping));
    }
}

fn markers(rep: &Replica) -> Vec<u64> {
    rep.flows[0]
        .events
        .iter()
        .filter_map(|e| if let Event::LsnMarker { lsn } = e { Some(*lsn) } else { None })
        .collect()
}

#[tokio::test]
async fn lsn_markers_cadence_and_gating() {
    let clock = Clock::manual(T0);
    let r = Release::new(1, 40, 1);
    let m = MockMaster::new().release(r).shards(1).clock(clock.clone()).start().await.unwrap();
    let mut rep = stable(&m, r, &clock, Some(4)).await;
    for i in 0..3 {
        m.handle.exec(0, &["SET", "a", &i.to_string()]);
    }
    clock.advance(3001);
    m.handle.exec(0, &["SET", "a", "x"]);
    let target = m.handle.offsets();
    rep.pump_until("records", |r| r.next_lsns() == target).await;
    assert_eq!(markers(&rep), vec![1, 4], "first record, then > 3 s later");
    // v1.22–v1.34 only send markers to replicas announcing >= 3; v1.16–v1.21 need >= 4.
    for (rel, cv, want) in [
        (Release::new(1, 29, 0), Some(2), false),
        (Release::new(1, 29, 0), Some(3), true),
        (Release::new(1, 21, 0), Some(3), false),
        (Release::new(1, 21, 0), Some(4), true),
        (Release::new(1, 15, 0), Some(4), false),
        (Release::new(1, 35, 0), None, true),
    ] {
        let clock = Clock::manual(T0);
        let m = MockMaster::new().release(rel).shards(1).clock(clock.clone()).start().await.unwrap();
        let mut rep = stable(&m, rel, &clock, cv).await;
        m.handle.exec(0, &["SET", "a", "1"]);
        let target = m.handle.offsets();
        rep.pump_until("records", |r| r.next_lsns() == target).await;
        assert_eq!(!markers(&rep).is_empty(), want, "{rel} client-version {cv:?}");
    }
}

#[tokio::test]
async fn live_writes_during_full_sync_become_blobs_between_tagged_pieces() {
    let clock = Clock::manual(T0);
    let r = Release::new(1, 40, 1);
    let mut mm =
        MockMaster::new().release(r).shards(1).clock(clock.clone()).compression(Compression::None).chunk_size(1024);
    for i in 0..20 {
        mm = mm.key(0, &format!("big{i}"), Value::String(Bytes::from(vec![b'a' + i as u8; 5000])));
    }
    mm = mm.live_write(WritePhase::FullSync, 0, &["SET", "big7", "changed"]).live_write(
        WritePhase::FullSync,
        0,
        &["SET", "new", "1"],
    );
    let m = mm.start().await.unwrap();
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(r, clock.clone())).await;
    rep.full_sync().await;
    let ev = &rep.flows[0].events;
    let end = ev.iter().position(|e| matches!(e, Event::FullSyncEnd)).unwrap();
    let blobs: Vec<usize> =
        ev.iter().enumerate().filter(|(_, e)| matches!(e, Event::JournalBlob { .. })).map(|(i, _)| i).collect();
    assert_eq!(blobs.len(), 2);
    assert!(blobs.iter().all(|b| *b < end));
    // big7 was serialized (old value) before the blob that changes it.
    let big7 =
        ev.iter().position(|e| matches!(e, Event::EntryBegin { header, .. } if &header.key[..] == b"big7")).unwrap();
    assert!(big7 < blobs[0]);
    assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
    // Tagged chunks were used (E0 with stream id 1, 1024-byte pieces).
    let raw = &rep.flows[0].raw;
    assert!(raw.windows(9).any(|w| w == [0xe0, 1, 0, 0, 0, 0, 4, 0, 0]), "tagged chunk of stream id 1");
    rep.start_stable().await;
    rep.until_tokens().await;
}

#[tokio::test]
async fn before_v1_40_big_values_are_contiguous() {
    let clock = Clock::manual(T0);
    let r = Release::new(1, 39, 0);
    let m = MockMaster::new()
        .release(r)
        .shards(1)
        .clock(clock.clone())
        .compression(Compression::Lz4)
        .chunk_size(1024)
        .key(0, "big", Value::String(Bytes::from(vec![b'q'; 5000])))
        .start()
        .await
        .unwrap();
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(r, clock.clone())).await;
    rep.full_sync().await;
    let raw = &rep.flows[0].raw;
    assert!(!raw.windows(5).any(|w| w == [0xe0, 1, 0, 0, 0]));
    assert!(raw.windows(5000).any(|w| w.iter().all(|b| *b == b'q')), "sent plainly, uncompressed");
    assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
}
