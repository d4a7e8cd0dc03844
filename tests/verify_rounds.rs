//! Multi-round verify while a writer changes keys on the source and copies them to the target
//! (as replicate would): transient differences disappear, a planted persistent one is reported.

mod verify_common;

use df2redis::resp::Cmd;
use df2redis::testkit::ServerOptions;
use df2redis::verify::engine::{Engine, Settings};
use df2redis::verify::progress::Progress;
use df2redis::verify::{rounds, DiffKind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verify_common::*;

#[tokio::test]
async fn transient_differences_vanish_persistent_one_is_reported() {
    let (s, t) = pair(ServerOptions::default()).await;
    let data = dataset(20_000, 50, now_ms(3_600_000), false);
    load(&s, data.iter().map(|x| x.1.clone())).await;
    load(&t, data.into_iter().map(|x| x.1)).await;
    // Writes "in flight": on the source, not yet on the target; copied once round 1 is over.
    let pending: Vec<String> = (0..100).map(|i| format!("inflight:{i}")).collect();
    load(&s, pending.iter().map(|k| Cmd::new("SET").arg(k).arg("new"))).await;
    load(&s, [Cmd::new("SET").arg("planted").arg("source-value")]).await;
    load(&t, [Cmd::new("SET").arg("planted").arg("target-value")]).await;

    let round1_done = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    // A writer that keeps changing keys on the source and then copying them to the target.
    let writer = {
        let (src, tgt) = (s.client().await.unwrap(), t.client().await.unwrap());
        let (stop, writes, round1_done) = (stop.clone(), writes.clone(), round1_done.clone());
        let pending = pending.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            let copy_pending = round1_done.notified();
            tokio::pin!(copy_pending);
            loop {
                tokio::select! {
                    _ = &mut copy_pending => break,
                    _ = async {} => {}
                }
                let k = format!("str:{}", i % 5000);
                let v = format!("w{i}");
                src.send(Cmd::new("SET").arg(&k).arg(&v)).await.unwrap();
                tokio::task::yield_now().await;
                tgt.send(Cmd::new("SET").arg(&k).arg(&v)).await.unwrap();
                writes.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            // Copy the in-flight writes, pipelined (send() queues at once; replies awaited after).
            let copies: Vec<_> = pending.iter().map(|k| tgt.send(Cmd::new("SET").arg(k).arg("new"))).collect();
            for c in copies {
                c.await.unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let (a, b) = stores(s.addr(), t.addr()).await;
    let engine = Engine::new(a, b, Settings { batch: 64, ..Settings::default() }, Progress::hidden());
    let out = rounds::run(&engine, 4, Duration::from_millis(300), |round, _| {
        if round == 1 {
            round1_done.notify_one();
        }
    })
    .await
    .unwrap();
    writer.await.unwrap();
    assert!(stop.load(Ordering::Relaxed));
    assert!(writes.load(Ordering::Relaxed) > 0, "the writer ran during round 1");
    assert!(out.per_round[0] >= 101, "{:?}", out.per_round);
    assert_eq!(found(&out.diffs), vec![("planted".to_string(), DiffKind::Value)], "{:?}", out.per_round);
    assert_eq!(*out.per_round.last().unwrap(), 1);
}
