//! Journal forms of the commands the mock rewrites (spec 6.3–6.5), decoded from the flow bytes
//! with the project's decoders: MULTI/EXEC and EVAL (MULTI_COMMAND + EXEC up to v1.20), list and
//! set moves, blocking pops, MOVE, GETEX, SPOP with a count, past expiries, Z*STORE per release,
//! PFMERGE, consumer groups, and fields with TTLs (types 31/32 in the snapshot).

#![allow(clippy::unwrap_used)]

mod common;

use common::replica::{normalized, store_for, Replica};
use df2redis::proto::event::CommandKind;
use df2redis::proto::{JournalOp, Value};
use mock_master::shard::shard_of;
use mock_master::{Clock, MockMaster, Release, Reply, Running};

const T0: u64 = 1_700_000_000_000;

/// (flow, kind, txid, shard_cnt, db, args); EXEC records as kind `Command` with args `["<EXEC>"]`.
type Rec = (u32, CommandKind, u64, u64, u32, Vec<String>);

async fn stable(release: Release, shards: u32, clock: &Clock) -> (Running, Replica) {
    let m = MockMaster::new().release(release).shards(shards).clock(clock.clone()).start().await.unwrap();
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock.clone())).await;
    rep.full_sync().await;
    rep.start_stable().await;
    rep.until_tokens().await;
    (m, rep)
}

async fn records(m: &Running, rep: &mut Replica) -> Vec<Rec> {
    let target = m.handle.offsets();
    rep.pump_until("records", |r| r.next_lsns() == target).await;
    let out = rep
        .journal_records
        .iter()
        .filter_map(|(f, _, r)| match &r.op {
            JournalOp::Command { kind, txid, shard_cnt, args } => Some((
                *f,
                *kind,
                *txid,
                *shard_cnt,
                r.db,
                args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect(),
            )),
            JournalOp::Exec { txid, shard_cnt } => {
                Some((*f, CommandKind::Command, *txid, *shard_cnt, r.db, vec!["<EXEC>".into()]))
            }
            _ => None,
        })
        .collect();
    rep.journal_records.clear();
    out
}

fn key_on(shard: u32, prefix: &str) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|k| shard_of(k.as_bytes(), 2) == shard).unwrap()
}

fn args(r: &[Rec]) -> Vec<(u32, Vec<String>)> {
    r.iter().map(|x| (x.0, x.5.clone())).collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test]
async fn multi_exec_and_eval_groups_per_release() {
    let (a, b) = (key_on(0, "a"), key_on(1, "b"));
    for release in [Release::new(1, 20, 0), Release::new(1, 21, 0), Release::new(1, 40, 1)] {
        let clock = Clock::manual(T0);
        let (m, mut rep) = stable(release, 2, &clock).await;
        let r = m.handle.exec_multi(0, &[&["SET", &a, "1"], &["INCR", &a], &["SET", &b, "2"]]);
        assert_eq!(r, Reply::Array(Some(vec![Reply::ok(), Reply::Int(2), Reply::ok()])));
        let script = "redis.call('SET', KEYS[1], 'x'); return redis.call('INCR', KEYS[2])";
        assert_eq!(m.handle.exec(0, &["EVAL", script, "2", &b, "cnt"]), Reply::Int(1));
        let recs = records(&m, &mut rep).await;
        let tx = recs[0].2;
        assert_ne!(tx, 0, "{release}: MULTI/EXEC bodies carry a txid");
        let multi: Vec<_> = recs.iter().filter(|r| r.2 == tx).collect();
        if release.multi_exec_opcodes() {
            let kinds: Vec<_> = multi.iter().filter(|r| r.0 == 0).map(|r| (r.1, r.5[0].clone(), r.3)).collect();
            assert_eq!(
                kinds,
                vec![
                    (CommandKind::MultiCommand, "SET".into(), 1),
                    (CommandKind::MultiCommand, "INCRBY".into(), 1),
                    (CommandKind::Command, "<EXEC>".into(), 2),
                ],
                "{release}: MULTI_COMMANDs closed by one EXEC per flow counting the written flows"
            );
            assert_eq!(multi.iter().filter(|r| r.5[0] == "<EXEC>").count(), 2);
        } else {
            assert!(multi.iter().all(|r| r.1 == CommandKind::Command && r.5[0] != "<EXEC>"));
            assert_eq!(multi.len(), 3);
        }
        // EVAL on one shard: txid 0 from v1.21 (squashed), a group with a txid up to v1.20;
        // INCR stays verbatim inside scripts.
        let eval: Vec<_> = recs.iter().filter(|r| r.2 != tx && r.5[0] != "<EXEC>").collect();
        let cnt_shard = shard_of(b"cnt", 2);
        assert!(eval.iter().any(|r| r.5 == s(&["INCR", "cnt"]) && r.0 == cnt_shard), "{release}: {eval:?}");
        let spans = shard_of(b.as_bytes(), 2) != cnt_shard;
        assert_eq!(eval[0].2 != 0, spans || release.multi_exec_opcodes(), "{release}: EVAL txid");
        assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()), "{release}");
    }
}

#[tokio::test]
async fn moves_pops_and_expiry_rewrites() {
    let clock = Clock::manual(T0);
    let release = Release::new(1, 30, 3);
    let (m, mut rep) = stable(release, 2, &clock).await;
    let h = &m.handle;
    let (l0, l1) = (key_on(0, "l"), key_on(1, "l"));
    h.exec(0, &["RPUSH", &l0, "x", "y", "z"]);
    h.exec(0, &["RPOPLPUSH", &l0, &l1]);
    h.exec(0, &["LMOVE", &l0, &l0, "LEFT", "RIGHT"]);
    h.exec(0, &["BLPOP", "nothing", &l1, "0"]);
    h.exec(0, &["SET", "mv", "1"]);
    h.exec(0, &["MOVE", "mv", "3"]);
    h.exec(0, &["SET", "g", "1"]);
    h.exec(0, &["GETEX", "g", "PX", "5000"]);
    h.exec(0, &["GETEX", "g", "PERSIST"]);
    h.exec(0, &["SADD", "sp", "a", "b", "c"]);
    assert!(matches!(h.exec(0, &["SPOP", "sp", "2"]), Reply::Array(Some(ref v)) if v.len() == 2));
    h.exec(0, &["SPOP", "sp", "5"]);
    h.exec(0, &["SET", "old", "1"]);
    h.exec(0, &["EXPIREAT", "old", "1"]);
    h.exec(0, &["ZADD", "zz", "1", "a", "2", "b"]);
    h.exec(0, &["BZPOPMIN", "zz", "0"]);
    let recs = records(&m, &mut rep).await;
    let want_shard = |k: &str| shard_of(k.as_bytes(), 2);
    let rows = args(&recs);
    assert!(rows.contains(&(0, s(&["RPOP", &l0]))) && rows.contains(&(1, s(&["LPUSH", &l1, "z"]))));
    let pop = recs.iter().find(|r| r.5[0] == "RPOP").unwrap();
    let push = recs.iter().find(|r| r.5[0] == "LPUSH").unwrap();
    assert_eq!((pop.2, pop.3), (push.2, 2), "cross-shard move: one txid, shard_cnt 2 on v1.30");
    assert_ne!(pop.2, 0);
    assert!(rows.contains(&(0, s(&["LPOP", &l0]))) && rows.contains(&(0, s(&["RPUSH", &l0, "x"]))));
    assert!(rows.contains(&(1, s(&["LPOP", &l1]))), "BLPOP → LPOP of the key served");
    let mv = recs.iter().find(|r| r.5[0] == "MOVE").unwrap();
    assert_eq!((mv.0, mv.4, mv.5.clone()), (want_shard("mv"), 0, s(&["MOVE", "mv", "3"])), "once, source db");
    assert_eq!(recs.iter().filter(|r| r.5[0] == "MOVE").count(), 1);
    assert!(rows.contains(&(want_shard("g"), s(&["PEXPIREAT", "g", &(T0 + 5000).to_string()]))));
    assert!(rows.contains(&(want_shard("g"), s(&["PERSIST", "g"]))));
    let srem: Vec<_> = recs.iter().filter(|r| r.5[0] == "SREM" && r.5[1] == "sp").collect();
    assert_eq!(srem.len(), 1);
    assert_eq!(srem[0].5.len(), 4, "SPOP 2 → SREM with both members");
    assert!(rows.contains(&(want_shard("sp"), s(&["DEL", "sp"]))), "SPOP emptying the set → DEL");
    assert!(rows.contains(&(want_shard("old"), s(&["DEL", "old"]))), "EXPIREAT in the past → DEL");
    assert!(rows.contains(&(want_shard("zz"), s(&["ZPOPMIN", "zz"]))));
    assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
}

#[tokio::test]
async fn single_shard_lmove_is_verbatim_up_to_v1_20() {
    let (a, b) = (key_on(0, "x"), key_on(0, "y"));
    for (release, verbatim) in [(Release::new(1, 20, 0), true), (Release::new(1, 21, 0), false)] {
        let clock = Clock::manual(T0);
        let (m, mut rep) = stable(release, 2, &clock).await;
        m.handle.exec(0, &["RPUSH", &a, "1", "2"]);
        m.handle.exec(0, &["LMOVE", &a, &b, "LEFT", "RIGHT"]);
        let rows = args(&records(&m, &mut rep).await);
        assert_eq!(rows.contains(&(0, s(&["LMOVE", &a, &b, "LEFT", "RIGHT"]))), verbatim, "{release}");
        assert_eq!(rows.contains(&(0, s(&["LPOP", &a]))), !verbatim, "{release}");
        assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
    }
}

#[tokio::test]
async fn zstore_forms_per_release() {
    let (d0, z1, z0) = (key_on(0, "dst"), key_on(1, "z"), key_on(0, "z"));
    for release in [Release::new(1, 30, 3), Release::new(1, 34, 0)] {
        let clock = Clock::manual(T0);
        let (m, mut rep) = stable(release, 2, &clock).await;
        rep.lenient = !release.zstore_rewrite();
        m.handle.exec(0, &["ZADD", &z1, "3.141592653589793", "pi", "1", "one"]);
        m.handle.exec(0, &["ZADD", &z0, "2", "one"]);
        m.handle.exec(0, &["ZUNIONSTORE", &d0, "2", &z0, &z1, "WEIGHTS", "1", "2"]);
        m.handle.exec(0, &["ZINTERSTORE", &d0, "1", &z0]);
        m.handle.exec(0, &["SINTERSTORE", "sdst", "nosuch"]);
        let recs = records(&m, &mut rep).await;
        let rows = args(&recs);
        if release.zstore_rewrite() {
            let zadd = recs.iter().find(|r| r.5[0] == "ZADD" && r.5[1] == d0).unwrap();
            assert_eq!(zadd.5, s(&["ZADD", &d0, "4", "one", "6.28319", "pi"]), "6 significant digits");
            assert!(rows.contains(&(0, s(&["ZADD", &d0, "2", "one"]))), "ZINTERSTORE → DEL + ZADD");
            let m_pi = match m.handle.dataset().get(0, d0.as_bytes()).map(|e| e.value.clone()) {
                Some(Value::Zset(z)) => z,
                other => panic!("{other:?}"),
            };
            assert_eq!(m_pi, vec![(bytes::Bytes::from_static(b"one"), 2.0)]);
        } else {
            let frag: Vec<_> = recs.iter().filter(|r| r.5[0] == "ZUNIONSTORE").collect();
            assert_eq!(frag.len(), 2, "one fragment per shard");
            assert!(frag.iter().all(|r| r.3 == 2 && r.2 == frag[0].2 && r.2 != 0));
            assert!(
                rows.contains(&(0, s(&["ZUNIONSTORE", &d0, &z0]))) && rows.contains(&(1, s(&["ZUNIONSTORE", &z1])))
            );
            let inter = recs.iter().find(|r| r.5[0] == "ZINTERSTORE").unwrap();
            assert_eq!((inter.5.clone(), inter.3), (s(&["ZINTERSTORE", &d0, "1", &z0]), 1), "one shard: verbatim");
            assert_ne!(inter.2, 0, "a multi-hop transaction has a txid even on one shard");
        }
        assert!(rows.contains(&(shard_of(b"sdst", 2), s(&["DEL", "sdst"]))), "empty S*STORE → just DEL dst");
        assert!(!rows.iter().any(|r| r.1[0] == "SADD"));
    }
}

#[tokio::test]
async fn pfmerge_is_a_set_of_the_hll_bytes() {
    let clock = Clock::manual(T0);
    let (m, mut rep) = stable(Release::new(1, 40, 1), 2, &clock).await;
    m.handle.exec(0, &["PFADD", "h1", "a", "b", "c"]);
    m.handle.exec(0, &["PFADD", "h2", "c", "d"]);
    assert_eq!(m.handle.exec(0, &["PFMERGE", "hm", "h1", "h2"]), Reply::ok());
    assert_eq!(m.handle.exec(0, &["PFCOUNT", "hm"]), Reply::Int(4));
    let recs = records(&m, &mut rep).await;
    let set = recs.iter().find(|r| r.5[0] == "SET").unwrap();
    assert_eq!(&set.5[1], "hm");
    assert!(set.5[2].starts_with("HYLL"));
    assert_eq!(normalized(&rep.store.dataset()), normalized(&m.handle.dataset()));
    assert_eq!(rep.store.exec(0, &["PFCOUNT", "hm"]), Reply::Int(4));
}

#[tokio::test]
async fn xreadgroup_is_journaled_as_claims_and_setid() {
    let clock = Clock::manual(T0);
    let (m, mut rep) = stable(Release::new(1, 40, 1), 2, &clock).await;
    rep.lenient = true;
    let h = &m.handle;
    h.exec(0, &["XADD", "st", "1-1", "f", "v"]);
    h.exec(0, &["XADD", "st", "1-2", "f", "w"]);
    assert_eq!(h.exec(0, &["XGROUP", "CREATE", "st", "g", "0"]), Reply::ok());
    let r = h.exec(0, &["XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "st", ">"]);
    assert!(matches!(r, Reply::Array(Some(ref v)) if v.len() == 1), "{r:?}");
    h.exec(0, &["XADD", "st", "MAXLEN", "1", "2-0", "f", "x"]);
    h.exec(0, &["XTRIM", "st", "MAXLEN", "0"]);
    let rows: Vec<Vec<String>> = records(&m, &mut rep).await.into_iter().map(|r| r.5).collect();
    let ms = T0.to_string();
    let claim = |id: &str| {
        s(&["XCLAIM", "st", "g", "c", "0", id, "TIME", &ms, "RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", id])
    };
    assert_eq!(
        rows[2..],
        [
            s(&["XGROUP", "CREATE", "st", "g", "0"]),
            s(&["XGROUP", "CREATECONSUMER", "st", "g", "c"]),
            claim("1-1"),
            claim("1-2"),
            s(&["XGROUP", "SETID", "st", "g", "1-2", "ENTRIESREAD", "2"]),
            s(&["XADD", "st", "MINID", "2-0", "2-0", "f", "x"]),
            s(&["XTRIM", "st", "MAXLEN", "0"]),
        ]
    );
}

#[tokio::test]
async fn field_ttls_are_types_31_32_in_the_snapshot_and_verbatim_in_the_journal() {
    let clock = Clock::manual(T0);
    let release = Release::new(1, 40, 1);
    let m = MockMaster::new().release(release).clock(clock.clone()).start().await.unwrap();
    assert_eq!(m.handle.exec(0, &["HSETEX", "hx", "100", "f1", "v1", "f2", "v2"]), Reply::Int(2));
    assert_eq!(m.handle.exec(0, &["SADDEX", "sx", "50", "m1", "m2"]), Reply::Int(2));
    let mut rep = Replica::connect(m.addr, Some(4), None, store_for(release, clock.clone())).await;
    rep.full_sync().await;
    let types: Vec<u8> = rep
        .flows
        .iter()
        .flat_map(|f| f.events.iter())
        .filter_map(|e| match e {
            df2redis::proto::Event::EntryBegin { header, .. } => Some(header.value_type.code()),
            _ => None,
        })
        .collect();
    assert!(types.contains(&31) && types.contains(&32), "{types:?}");
    let hx = rep.store.dataset().get(0, b"hx").unwrap().value.clone();
    let t = (T0 / 1000) as i64 + 100;
    assert!(matches!(&hx, Value::HashWithTtl(v) if v.iter().all(|x| x.2 == Some(t))), "{hx:?}");
    rep.start_stable().await;
    rep.until_tokens().await;
    m.handle.exec(0, &["HEXPIRE", "hx", "10", "FIELDS", "1", "f1"]);
    m.handle.exec(0, &["SADDEX", "sx", "5", "m3"]);
    clock.advance(6_000);
    assert!(matches!(m.handle.exec(0, &["SCARD", "sx"]), Reply::Int(2)));
    m.handle.exec(0, &["SADD", "sx", "m4"]);
    let rows: Vec<Vec<String>> = records(&m, &mut rep).await.into_iter().map(|r| r.5).collect();
    assert_eq!(
        rows,
        [
            s(&["HEXPIRE", "hx", "10", "FIELDS", "1", "f1"]),
            s(&["SADDEX", "sx", "5", "m3"]),
            s(&["SREM", "sx", "m3"]),
            s(&["SADD", "sx", "m4"]),
        ]
    );
}
