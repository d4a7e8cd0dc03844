//! The mock journals the corpus write program (`corpus/dragonfly-v1.40.1/write-programs/dfwrites.py`)
//! exactly as the real v1.40.1 and v1.30.3 masters did: the mock is seeded with the capture's own
//! snapshot (decoded with the project's decoders), runs the same commands, and every journal
//! record it sends — decoded from its flow bytes — matches the real record on the same flow in
//! opcode, shard_cnt, db, zero/non-zero txid, txid grouping and arguments (timestamps, stream ids
//! and set/zset member order normalized; RESTORE payloads byte for byte).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use common::replica::{normalized, store_for, Replica};
use df2redis::proto::assemble::{Assembled, Assembler};
use df2redis::proto::event::CommandKind;
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{Event, JournalOp, JournalRecord, Limits};
use mock_master::replay::Replay;
use mock_master::{Clock, Compression, Config, Dataset, Entry, MockMaster, Release};

fn capture_dir(dir: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(dir);
    assert!(p.join("capture.json").exists(), "capture {dir} missing");
    p
}

/// One journal record in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    kind: CommandKind,
    txid: u64,
    shard_cnt: u64,
    db: u32,
    args: Vec<String>,
}

fn is_ms(s: &str) -> bool {
    s.len() == 13 && s.bytes().all(|b| b.is_ascii_digit())
}

fn norm(rec: &JournalRecord) -> Option<Rec> {
    let JournalOp::Command { kind, txid, shard_cnt, args } = &rec.op else { return None };
    let mut a: Vec<String> = args
        .iter()
        .map(|x| match std::str::from_utf8(x) {
            Ok(s) if is_ms(s) => "<ms>".into(),
            Ok(s) if s.split_once('-').is_some_and(|(m, q)| is_ms(m) && q.bytes().all(|b| b.is_ascii_digit())) => {
                "<id>".into()
            }
            Ok(s) => s.to_string(),
            Err(_) => x.iter().map(|b| format!("{b:02x}")).collect(),
        })
        .collect();
    match a[0].as_str() {
        "SADD" if a.len() > 3 => a[2..].sort(),
        "ZADD" => {
            let mut pairs: Vec<(String, String)> = a[2..].chunks(2).map(|p| (p[1].clone(), p[0].clone())).collect();
            pairs.sort();
            a.truncate(2);
            a.extend(pairs.into_iter().flat_map(|(m, s)| [s, m]));
        }
        // SPOP pops a random member.
        "SREM" if a[1] == "set:small:3" => a[2] = "<popped>".into(),
        _ => {}
    }
    Some(Rec { kind: *kind, txid: *txid, shard_cnt: *shard_cnt, db: rec.db, args: a })
}

/// The capture's snapshot as a dataset, its ctime (ms) and every journal record per flow.
fn decode_capture(dir: &str) -> (Dataset, u64, Vec<Vec<Rec>>) {
    let rp = Replay::load(&capture_dir(dir)).unwrap();
    let mut data = Dataset::new(16);
    let mut ctime = 0;
    let mut flows = Vec::new();
    for (i, bytes) in rp.flows.iter().enumerate() {
        let mut tok = [0u8; 40];
        tok.copy_from_slice(rp.capture.eof_tokens[i].as_bytes());
        let mut dec = FlowDecoder::full_sync(tok, Limits::default());
        dec.feed(bytes);
        let mut asm = Assembler::new();
        let mut recs = Vec::new();
        while let Some(ev) = dec.next_event().unwrap() {
            match asm.push(ev).unwrap() {
                Some(Assembled::Entry { header, value }) => {
                    data.insert(header.db, header.key.clone(), Entry { value, expire_ms: header.expire_ms })
                }
                Some(Assembled::Other(Event::Aux { key, value })) if &key[..] == b"ctime" => {
                    ctime = std::str::from_utf8(&value).unwrap().parse::<u64>().unwrap() * 1000;
                }
                Some(Assembled::Other(Event::Journal { record, .. })) => recs.extend(norm(&record)),
                _ => {}
            }
        }
        flows.push(recs);
    }
    (data, ctime, flows)
}

/// Runs dfwrites.py's commands against the mock.
fn write_program(h: &mock_master::Handle, clock: &Clock) {
    let x = |args: &[&str]| {
        let r = h.exec(0, args);
        assert!(!matches!(r, mock_master::Reply::Error(_)), "{args:?}: {r:?}");
    };
    x(&["SET", "w:plain", "1"]);
    x(&["SET", "w:ex", "v", "EX", "100"]);
    x(&["SETEX", "w:setex", "50", "v"]);
    x(&["EXPIRE", "str:small:1", "1000"]);
    x(&["PEXPIRE", "str:small:2", "1000000"]);
    x(&["PERSIST", "ttl:1"]);
    x(&["INCR", "w:counter"]);
    x(&["INCRBYFLOAT", "w:float", "1.25"]);
    x(&["APPEND", "str:small:3", "++"]);
    x(&["MSET", "w:m1", "a", "w:m2", "b", "w:m3", "c", "w:m4", "d"]);
    x(&["DEL", "str:small:4", "str:small:5", "str:small:6"]);
    x(&["HSET", "hash:small:1", "new", "field"]);
    x(&["HDEL", "hash:small:2", "f1"]);
    x(&["HINCRBY", "hash:small:3", "n", "5"]);
    x(&["LPUSH", "list:small:1", "head"]);
    x(&["RPOP", "list:small:2"]);
    x(&["LTRIM", "list:small:3", "0", "2"]);
    x(&["LSET", "list:small:4", "0", "X"]);
    x(&["SADD", "set:small:1", "added"]);
    x(&["SREM", "set:small:2", "m1"]);
    x(&["SPOP", "set:small:3"]);
    x(&["SMOVE", "set:small:4", "set:small:5", "m2"]);
    x(&["ZADD", "zset:small:1", "9.75", "z"]);
    x(&["ZINCRBY", "zset:small:2", "2.5", "m1"]);
    x(&["ZREM", "zset:small:3", "m1"]);
    x(&["ZPOPMIN", "zset:small:4"]);
    x(&["SUNIONSTORE", "w:sunion", "set:small:6", "set:small:7"]);
    x(&["ZUNIONSTORE", "w:zunion", "2", "zset:small:6", "zset:small:7"]);
    x(&["XADD", "stream:0", "*", "live", "1"]);
    x(&["XADD", "stream:1", "MAXLEN", "100", "*", "t", "2"]);
    x(&["XTRIM", "stream:2", "MINID", "0-0"]);
    x(&["RENAME", "str:small:7", "w:renamed"]);
    x(&["RENAME", "str:small:8", "{w}renamed2"]);
    x(&["COPY", "str:small:9", "w:copied"]);
    let r = h.exec_multi(0, &[&["SET", "w:tx1", "1"], &["SET", "w:tx2", "2"], &["INCR", "w:tx1"]]);
    assert!(matches!(r, mock_master::Reply::Array(Some(ref v)) if v.len() == 3), "{r:?}");
    let script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])";
    assert_eq!(h.exec(0, &["EVAL", script, "2", "w:lua1", "w:lua2", "x"]), mock_master::Reply::Int(1));
    x(&["PFADD", "hll:1", "new-user"]);
    assert_eq!(h.exec(2, &["SET", "w:db2", "two"]), mock_master::Reply::ok());
    x(&["SET", "w:px", "v", "PX", "1"]);
    clock.advance(300);
    assert_eq!(h.exec(0, &["GET", "w:px"]), mock_master::Reply::nil());
}

/// Same txid ⇔ same txid, over all records of both flows.
fn txid_classes(flows: &[Vec<Rec>]) -> Vec<Vec<(usize, usize)>> {
    let mut by: BTreeMap<u64, Vec<(usize, usize)>> = BTreeMap::new();
    for (f, recs) in flows.iter().enumerate() {
        for (i, r) in recs.iter().enumerate() {
            if r.txid != 0 {
                by.entry(r.txid).or_default().push((f, i));
            }
        }
    }
    let mut classes: Vec<_> = by.into_values().collect();
    classes.sort();
    classes
}

async fn compare(dir: &str, release: Release) {
    let (data, ctime, real) = decode_capture(dir);
    assert!(real.iter().all(|f| !f.is_empty()), "{dir}: the capture has journal records on every flow");
    let clock = Clock::manual(ctime);
    let cfg = Config { release, shards: 2, compression: Compression::None, clock: clock.clone(), ..Config::default() };
    let m = MockMaster::from_parts(cfg, data).start().await.unwrap();
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock.clone())).await;
    rep.lenient = !release.zstore_rewrite();
    rep.full_sync().await;
    rep.start_stable().await;
    rep.until_tokens().await;
    write_program(&m.handle, &clock);
    let target = m.handle.offsets();
    rep.pump_until("the write program's records", |r| r.next_lsns() == target).await;
    let mut mine: Vec<Vec<Rec>> = vec![Vec::new(), Vec::new()];
    for (f, _, rec) in &rep.journal_records {
        mine[*f as usize].extend(norm(rec));
    }
    for f in 0..2 {
        let strip = |v: &[Rec]| v.iter().map(|r| Rec { txid: u64::from(r.txid != 0), ..r.clone() }).collect::<Vec<_>>();
        assert_eq!(strip(&mine[f]), strip(&real[f]), "{dir}: flow {f}");
    }
    assert_eq!(txid_classes(&mine), txid_classes(&real), "{dir}: txid grouping");
    if release.zstore_rewrite() {
        // Everything replays — with the rounded ZUNIONSTORE score, exactly as Dragonfly's replica.
        let mut want = m.handle.dataset();
        let mut e = want.get(0, b"w:zunion").unwrap().clone();
        let df2redis::proto::Value::Zset(z) = &mut e.value else { panic!("zset") };
        for (_, score) in z.iter_mut() {
            *score = mock_master::commands::six_digits(*score).parse().unwrap();
        }
        want.insert(0, Bytes::from_static(b"w:zunion"), e);
        let want = normalized(&want);
        assert_eq!(normalized(&rep.store.dataset()), want);
    }
}

#[tokio::test]
async fn v1_40_1_journal_matches_the_real_capture() {
    compare("dragonfly-v1.40.1/plain-2shards", Release::new(1, 40, 1)).await;
}

#[tokio::test]
async fn v1_30_3_journal_matches_the_real_capture() {
    compare("dragonfly-v1.30.3/plain-2shards", Release::new(1, 30, 3)).await;
}
