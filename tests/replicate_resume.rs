//! Stop (as on SIGTERM) and restart against the mock master: the second run resumes with a
//! PARTIAL sync from the checkpoint, nothing lost, nothing applied twice (INCRBY / RPUSH).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use df2redis::apply::conn::{Pipe, PipeOptions};
use df2redis::replicate::{run_with, Settings};
use df2redis::resp::Frame;
use df2redis::status::Status;
use df2redis::testkit::RedisServer;

mod replicate_common;
use replicate_common::caught_up;

/// The shared settings, with reconnects allowed (the test stops and restarts the session).
fn settings(src: &str, dst: &str, state: &Path) -> Settings {
    Settings { max_retries: 3, ..replicate_common::settings("resume", src, dst, state) }
}

async fn get(p: &mut Pipe, a: &[&str]) -> Frame {
    p.request(Some(0), a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_resume_partially_without_loss_or_doubling() {
    let m = mock_master::MockMaster::new().shards(2).start().await.unwrap();
    for i in 0..50 {
        m.handle.exec(0, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    let redis = RedisServer::start().await.unwrap();
    let state = std::env::temp_dir().join(format!("df2redis-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let src = m.addr.to_string();

    // Run 1: full sync, then journal writes, then a graceful stop.
    let status = Arc::new(Status::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(settings(&src, redis.addr(), &state), stop_rx, status.clone()));
    for _ in 0..10 {
        m.handle.exec(0, &["INCRBY", "counter", "1"]);
        m.handle.exec(0, &["RPUSH", "list", "x"]);
    }
    caught_up(&status, &m.handle).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(status.snapshot().full_syncs, 1);

    // While we are away.
    for _ in 0..5 {
        m.handle.exec(0, &["INCRBY", "counter", "1"]);
        m.handle.exec(0, &["RPUSH", "list", "y"]);
    }

    // Run 2: resumes partially.
    let status = Arc::new(Status::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(settings(&src, redis.addr(), &state), stop_rx, status.clone()));
    caught_up(&status, &m.handle).await;
    let snap = status.snapshot();
    assert_eq!((snap.full_syncs, snap.partial_syncs), (0, 1), "{snap:?}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let mut p =
        Pipe::connect(&PipeOptions { addr: redis.addr().into(), max_batches_in_flight: 4, ..Default::default() })
            .await
            .unwrap();
    assert_eq!(get(&mut p, &["GET", "counter"]).await, Frame::Bulk(Bytes::from_static(b"15")));
    assert_eq!(get(&mut p, &["LLEN", "list"]).await, Frame::Integer(15));
    assert_eq!(get(&mut p, &["GET", "k49"]).await, Frame::Bulk(Bytes::from_static(b"v49")));
    let _ = std::fs::remove_dir_all(&state);
}
