//! Every mock-master fault against `replicate` into a real redis-server: the run recovers (or
//! fails with a clear error) and the target ends equal to the source, nothing lost.

#![allow(clippy::unwrap_used)]

mod replicate_common;

use std::sync::Arc;

use bytes::Bytes;
use df2redis::proto::Value;
use df2redis::replicate::run_with;
use df2redis::status::Status;
use df2redis::testkit::RedisServer;
use mock_master::{Compression, Fault, MockMaster};
use replicate_common::*;

fn writes(m: &mock_master::Handle, round: u32) {
    for i in 0..60 {
        let k = format!("w{round}:{i}");
        m.exec(0, &["SET", &k, &i.to_string(), "PX", "3600000"]);
        m.exec(0, &["INCRBY", "counter", "1"]);
        m.exec(1, &["RPUSH", "list", &k]);
        m.exec(0, &["ZADD", "z", &format!("{}.125", i), &k]);
    }
}

/// Runs a session with `fault` through two rounds of stable writes; returns the status.
async fn survive(name: &str, fault: Fault, compression: Compression) -> Arc<Status> {
    let mut mm = MockMaster::new().shards(2).compression(compression).chunk_size(4096).fault(fault);
    for i in 0..200 {
        mm = mm.key(0, &format!("k{i}"), Value::String(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 50)))));
    }
    mm = mm.key(0, "big", Value::List((0..3000).map(|i| Bytes::from(format!("e{i}"))).collect()));
    let m = mm.start().await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let state = state_dir(&format!("fault-{name}"));
    let st = status();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(settings(name, &m.addr.to_string(), redis.addr(), &state), stop_rx, st.clone()));
    caught_up(&st, &m.handle).await;
    writes(&m.handle, 1);
    caught_up(&st, &m.handle).await;
    writes(&m.handle, 2);
    caught_up(&st, &m.handle).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    assert_target_equals_source(name, redis.addr(), &m.handle).await;
    let _ = std::fs::remove_dir_all(&state);
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flow_during_full_sync_redoes_the_full_sync() {
    let st = survive(
        "close-flow-byte",
        Fault::CloseFlow { flow: 1, at_byte: Some(500), after_records: None },
        Compression::Lz4,
    )
    .await;
    let s = st.snapshot();
    assert_eq!(s.full_syncs, 2, "{s:?}");
    // The master cancels the whole session when one flow goes: either flow may report it first.
    assert!(s.last_error.unwrap().contains("closed by the master"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flow_in_stable_sync_resumes_partially() {
    let st = survive(
        "close-flow-records",
        Fault::CloseFlow { flow: 0, at_byte: None, after_records: Some(40) },
        Compression::Lz4,
    )
    .await;
    let s = st.snapshot();
    assert_eq!((s.full_syncs, s.partial_syncs), (1, 1), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_control_resumes_partially() {
    let st = survive("close-control", Fault::CloseControl { after_records: 30 }, Compression::Zstd).await;
    let s = st.snapshot();
    assert_eq!((s.full_syncs, s.partial_syncs), (1, 1), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_are_waited_out_without_a_reconnect() {
    let st = survive("stall", Fault::Stall { flow: 0, at_byte: 2000, ms: 300 }, Compression::Lz4).await;
    assert_eq!(st.snapshot().sessions, 1);
    let st =
        survive("stall-command", Fault::StallCommand { command: "DFLY SYNC".into(), ms: 300 }, Compression::Lz4).await;
    assert_eq!(st.snapshot().sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_a_clear_error_naming_flow_and_offset_then_a_resync() {
    let st = survive("flip", Fault::FlipByte { flow: 1, offset: 0 }, Compression::None).await;
    let s = st.snapshot();
    let e = s.last_error.clone().unwrap();
    assert!(e.contains("flow 1") && e.contains("at byte 0") && e.contains("RDB magic"), "{e}");
    assert_eq!(s.full_syncs, 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_are_retried() {
    for cmd in ["DFLY FLOW", "DFLY SYNC", "DFLY STARTSTABLE", "REPLCONF"] {
        let st = survive(
            &format!("refuse-{}", cmd.replace(' ', "-")),
            Fault::Refuse { command: cmd.into(), error: "ERR injected refusal".into(), times: 2 },
            Compression::Lz4,
        )
        .await;
        let s = st.snapshot();
        // A refused handshake never becomes a session; later refusals end one.
        assert!(cmd == "REPLCONF" || s.sessions >= 2, "{cmd}: {s:?}");
        assert!(s.last_error.clone().unwrap().contains("injected refusal"), "{cmd}: {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_flow_still_completes() {
    let st = survive("throttle", Fault::Throttle { flow: 0, bytes_per_sec: 256 << 10 }, Compression::None).await;
    assert_eq!(st.snapshot().sessions, 1);
}
