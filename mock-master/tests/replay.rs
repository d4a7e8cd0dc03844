//! Replay mode serves a real capture: same handshake replies, and the recorded flow bytes split
//! at `full_sync_bytes`, byte-exact.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{Client, DEADLINE};
use mock_master::replay::Replay;
use mock_master::Reply;
use tokio::net::TcpListener;

fn corpus(dir: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(dir);
    p.join("capture.json").exists().then_some(p)
}

async fn replay_one(dir: &str) {
    let Some(path) = corpus(dir) else {
        panic!("capture {dir} not found next to the repository");
    };
    let rp = Replay::load(&path).unwrap();
    let cap = rp.capture.clone();
    let flows = rp.flows.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rp.serve(listener, async move {
        let _ = rx.await;
    }));
    let mut c = Client::connect(addr).await;
    let info = c.cmd(&["INFO", "SERVER"]).await.as_text().unwrap();
    assert!(info.contains(&cap.server_info_version()), "{info}");
    let Reply::Array(Some(capa)) = c.cmd(&["REPLCONF", "capa", "dragonfly"]).await else { panic!() };
    assert_eq!(capa[0], Reply::Simple(cap.master_id.clone()));
    assert_eq!(capa.len(), cap.capa_reply.len());
    let mut fl = Vec::new();
    for i in 0..cap.flows {
        let mut f = Client::connect(addr).await;
        let r = f.cmd(&["DFLY", "FLOW", &cap.master_id, &cap.sync_id, &i.to_string()]).await;
        assert_eq!(
            r,
            Reply::Array(Some(vec![Reply::Simple("FULL".into()), Reply::Simple(cap.eof_tokens[i as usize].clone())]))
        );
        fl.push(f);
    }
    assert_eq!(c.cmd(&["DFLY", "SYNC", &cap.sync_id]).await, Reply::ok());
    for (i, f) in fl.iter_mut().enumerate() {
        while (f.buf.len() as u64) < cap.full_sync_bytes[i] {
            f.fill().await;
        }
        assert_eq!(f.buf.len() as u64, cap.full_sync_bytes[i], "nothing beyond the snapshot part before STARTSTABLE");
    }
    assert_eq!(c.cmd(&["DFLY", "STARTSTABLE", &cap.sync_id]).await, Reply::ok());
    for (i, f) in fl.iter_mut().enumerate() {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while f.buf.len() < flows[i].len() {
            assert!(tokio::time::Instant::now() < deadline);
            f.fill().await;
        }
        assert_eq!(&f.buf[..], &flows[i][..], "flow {i} byte-exact");
    }
    let _ = tx.send(());
    task.await.unwrap();
}

trait Version {
    fn server_info_version(&self) -> String;
}

impl Version for mock_master::replay::Capture {
    fn server_info_version(&self) -> String {
        self.transcript
            .iter()
            .find(|s| s.send.first().is_some_and(|x| x == "INFO"))
            .and_then(|s| s.reply.as_str())
            .and_then(|t| t.lines().find(|l| l.starts_with("dragonfly_version:")).map(str::to_string))
            .unwrap()
    }
}

#[tokio::test]
async fn replays_v1_40_capture_byte_exact() {
    replay_one("dragonfly-v1.40.1/plain-2shards").await;
}

#[tokio::test]
async fn replays_v1_30_capture_byte_exact() {
    replay_one("dragonfly-v1.30.3/lz4-2shards").await;
}
