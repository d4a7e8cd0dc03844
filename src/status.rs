//! Live counters of a replication run (per flow and global) and their JSON snapshot, served by
//! the status file, the `dashboard.addr` HTTP endpoint and the periodic log line.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Phase of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPhase {
    /// Not connected.
    Connecting = 0,
    /// Receiving the snapshot.
    FullSync = 1,
    /// Snapshot read (FULLSYNC_END); waiting for the other flows / STARTSTABLE.
    FullSyncDone = 2,
    /// Journal stream.
    Stable = 3,
    /// Stopped.
    Stopped = 4,
}

impl FlowPhase {
    fn from_u8(v: u8) -> FlowPhase {
        match v {
            1 => FlowPhase::FullSync,
            2 => FlowPhase::FullSyncDone,
            3 => FlowPhase::Stable,
            4 => FlowPhase::Stopped,
            _ => FlowPhase::Connecting,
        }
    }
}

/// Counters of one flow (shared between its reader, applier and ACK tasks).
#[derive(Debug, Default)]
pub struct FlowCounters {
    phase: AtomicU8,
    /// Bytes read from the master.
    pub bytes_read: AtomicU64,
    /// Snapshot keys written.
    pub keys: AtomicU64,
    /// Snapshot keys skipped because already expired.
    pub keys_expired: AtomicU64,
    /// Journal blobs applied during the full sync.
    pub blobs: AtomicU64,
    /// Stable-sync records applied.
    pub records: AtomicU64,
    /// Next LSN read from the stream (decoder position).
    pub lsn_read: AtomicU64,
    /// Next LSN confirmed by the target.
    pub lsn_confirmed: AtomicU64,
    /// Last LSN sent in REPLCONF ACK.
    pub lsn_acked: AtomicU64,
    /// The master's next LSN for this shard (DFLY REPLICAOFFSET, polled).
    pub lsn_master: AtomicU64,
    /// Bytes waiting in the queue between reader and applier.
    pub queue_bytes: AtomicU64,
    /// Records dropped (no Redis effect) or handled per a type policy.
    pub dropped: AtomicU64,
    /// Keys / records handled per a skip-and-report or degrade policy.
    pub policy_applied: AtomicU64,
    /// Keys repaired from the source.
    pub repairs: AtomicU64,
    /// Repairs that could not read the source.
    pub repairs_failed: AtomicU64,
    /// Keys left alone because they existed on the target (conflict policy skip).
    pub conflicts_skipped: AtomicU64,
    /// LSN + 1 of the last PING record applied (the ACK task acknowledges it at once).
    pub ping_next_lsn: AtomicU64,
}

impl FlowCounters {
    /// Sets the phase.
    pub fn set_phase(&self, p: FlowPhase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    /// The phase.
    pub fn phase(&self) -> FlowPhase {
        FlowPhase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// Adds to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A flow in the status JSON.
#[derive(Debug, Clone, Serialize)]
pub struct FlowSnapshot {
    /// Index.
    pub flow: usize,
    /// Phase.
    pub phase: FlowPhase,
    /// Bytes read.
    pub bytes_read: u64,
    /// Snapshot keys written.
    pub keys: u64,
    /// Snapshot keys already expired (skipped).
    pub keys_expired: u64,
    /// Full-sync journal blobs applied.
    pub blobs: u64,
    /// Stable records applied.
    pub records: u64,
    /// Next LSN read.
    pub lsn_read: u64,
    /// Next LSN confirmed by the target.
    pub lsn_confirmed: u64,
    /// Last ACK sent.
    pub lsn_acked: u64,
    /// Master's next LSN (0 = unknown).
    pub lsn_master: u64,
    /// Records read but not yet confirmed by the target.
    pub apply_lag: u64,
    /// Records the master has that are not confirmed (0 when `lsn_master` is unknown).
    pub master_lag: u64,
    /// Bytes queued between socket and target.
    pub queue_bytes: u64,
    /// Dropped records.
    pub dropped: u64,
    /// Policy-handled keys/records.
    pub policy_applied: u64,
    /// Repairs.
    pub repairs: u64,
    /// Failed repairs.
    pub repairs_failed: u64,
    /// Conflicting keys skipped.
    pub conflicts_skipped: u64,
}

/// The whole run's state.
#[derive(Debug, Default)]
pub struct Status {
    /// Per-flow counters of the current session.
    pub flows: Mutex<Vec<Arc<FlowCounters>>>,
    /// Master id of the current session.
    pub master_id: Mutex<String>,
    /// Master release.
    pub source_version: Mutex<String>,
    /// Sessions started.
    pub sessions: AtomicU64,
    /// Full syncs started.
    pub full_syncs: AtomicU64,
    /// Partial syncs (resumes).
    pub partial_syncs: AtomicU64,
    /// Last error that ended a session.
    pub last_error: Mutex<Option<String>>,
    /// Run start (Unix ms).
    pub started_unix_ms: AtomicU64,
    /// Redis Cluster target counters (redirections, splits, translations).
    pub cluster: Arc<crate::target::ClusterCounters>,
}

/// The status JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Master id.
    pub master_id: String,
    /// Master release.
    pub source_version: String,
    /// Sessions.
    pub sessions: u64,
    /// Full syncs.
    pub full_syncs: u64,
    /// Partial syncs.
    pub partial_syncs: u64,
    /// Last session error.
    pub last_error: Option<String>,
    /// All flows in stable sync and nothing unconfirmed: a safe cut-over point.
    pub caught_up: bool,
    /// Flows.
    pub flows: Vec<FlowSnapshot>,
    /// Time of the snapshot (Unix ms).
    pub at_unix_ms: u64,
    /// Start (Unix ms).
    pub started_unix_ms: u64,
    /// Redis Cluster target counters (all zero on a standalone target).
    pub cluster: crate::target::node::ClusterSnapshot,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Status {
    /// Installs the counters of a new session.
    pub fn new_session(&self, master_id: &str, version: &str, n: usize) -> Vec<Arc<FlowCounters>> {
        let flows: Vec<_> = (0..n).map(|_| Arc::new(FlowCounters::default())).collect();
        *lock(&self.flows) = flows.clone();
        *lock(&self.master_id) = master_id.to_string();
        *lock(&self.source_version) = version.to_string();
        self.sessions.fetch_add(1, Ordering::Relaxed);
        flows
    }

    /// Records the error that ended a session.
    pub fn set_error(&self, e: Option<String>) {
        *lock(&self.last_error) = e;
    }

    /// A consistent-enough snapshot for display.
    pub fn snapshot(&self) -> Snapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let flows: Vec<FlowSnapshot> = lock(&self.flows)
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let confirmed = g(&f.lsn_confirmed);
                let master = g(&f.lsn_master);
                FlowSnapshot {
                    flow: i,
                    phase: f.phase(),
                    bytes_read: g(&f.bytes_read),
                    keys: g(&f.keys),
                    keys_expired: g(&f.keys_expired),
                    blobs: g(&f.blobs),
                    records: g(&f.records),
                    lsn_read: g(&f.lsn_read),
                    lsn_confirmed: confirmed,
                    lsn_acked: g(&f.lsn_acked),
                    lsn_master: master,
                    apply_lag: g(&f.lsn_read).saturating_sub(confirmed),
                    master_lag: if master == 0 { 0 } else { master.saturating_sub(confirmed) },
                    queue_bytes: g(&f.queue_bytes),
                    dropped: g(&f.dropped),
                    policy_applied: g(&f.policy_applied),
                    repairs: g(&f.repairs),
                    repairs_failed: g(&f.repairs_failed),
                    conflicts_skipped: g(&f.conflicts_skipped),
                }
            })
            .collect();
        let caught_up = !flows.is_empty()
            && flows.iter().all(|f| f.phase == FlowPhase::Stable && f.apply_lag == 0 && f.master_lag == 0);
        Snapshot {
            master_id: lock(&self.master_id).clone(),
            source_version: lock(&self.source_version).clone(),
            sessions: g(&self.sessions),
            full_syncs: g(&self.full_syncs),
            partial_syncs: g(&self.partial_syncs),
            last_error: lock(&self.last_error).clone(),
            caught_up,
            flows,
            at_unix_ms: crate::apply::now_ms(),
            started_unix_ms: g(&self.started_unix_ms),
            cluster: self.cluster.snapshot(),
        }
    }

    /// One log line.
    pub fn log_line(&self) -> String {
        let s = self.snapshot();
        let parts: Vec<String> = s
            .flows
            .iter()
            .map(|f| {
                format!(
                    "flow{} {:?} keys={} blobs={} records={} lsn={}/{} lag={} queue={}KiB",
                    f.flow,
                    f.phase,
                    f.keys,
                    f.blobs,
                    f.records,
                    f.lsn_confirmed,
                    f.lsn_read,
                    f.apply_lag.max(f.master_lag),
                    f.queue_bytes / 1024
                )
            })
            .collect();
        parts.join(" | ")
    }
}

/// Writes the status JSON atomically to `path`.
pub fn write_file(path: &std::path::Path, s: &Snapshot) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// Serves `GET /status` (and `/`) with the status JSON on `addr` until the task is aborted.
/// A tiny HTTP/1.0 responder: one request per connection.
pub async fn serve(addr: std::net::SocketAddr, status: Arc<Status>) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (mut s, _) = l.accept().await?;
        let status = status.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let (code, body) = if path == "/" || path.starts_with("/status") {
                ("200 OK", serde_json::to_string_pretty(&status.snapshot()).unwrap_or_default())
            } else {
                ("404 Not Found", "{\"error\":\"not found\"}".to_string())
            };
            let resp = format!(
                "HTTP/1.0 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_computes_lag_and_caught_up() {
        let st = Status::default();
        let f = st.new_session(&"a".repeat(40), "df-v1.40.1", 2);
        for c in &f {
            c.set_phase(FlowPhase::Stable);
            c.lsn_read.store(10, Ordering::Relaxed);
            c.lsn_confirmed.store(10, Ordering::Relaxed);
        }
        assert!(st.snapshot().caught_up);
        f[1].lsn_master.store(12, Ordering::Relaxed);
        let s = st.snapshot();
        assert!(!s.caught_up);
        assert_eq!(s.flows[1].master_lag, 2);
        assert!(st.log_line().contains("flow1 Stable"));
    }

    #[tokio::test]
    async fn http_endpoint_serves_json() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let st = Arc::new(Status::default());
        st.new_session("m", "v", 1);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let h = tokio::spawn(serve(addr, st));
        let mut s = loop {
            if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
                break s;
            }
            tokio::task::yield_now().await;
        };
        s.write_all(b"GET /status HTTP/1.0\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.0 200 OK"));
        assert!(out.contains("\"master_id\": \"m\""));
        h.abort();
    }
}
