//! mock-master: a scriptable fake Dragonfly master speaking the real replication protocol
//! (see docs/mock-master.md). Build one with [`MockMaster`], or from a scenario file
//! ([`scenario::Scenario`]), or replay a real capture ([`replay`]).

pub mod clock;
pub mod commands;
pub mod config;
pub mod dataset;
pub mod encode;
pub mod faults;
mod flow;
pub mod lzfmode;
pub mod master;
pub mod release;
pub mod repl;
pub mod replay;
pub mod resp;
pub mod scenario;
mod server;
pub mod shard;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use df2redis::proto::Value;
use tokio::net::TcpListener;

pub use clock::Clock;
pub use config::{Compression, Config, LiveWrite, WritePhase};
pub use dataset::{Dataset, Entry};
pub use faults::Fault;
pub use master::{Phase, SessionInfo};
pub use release::{PartialSync, Release, FAMILIES};
pub use resp::Reply;

use master::{Shared, State};

/// Builder of a mock master: configuration plus the initial dataset.
#[derive(Debug, Clone)]
pub struct MockMaster {
    cfg: Config,
    data: Dataset,
}

impl Default for MockMaster {
    fn default() -> Self {
        MockMaster::new()
    }
}

impl MockMaster {
    /// v1.40.1, 2 shards, 16 dbs, LZ4, empty dataset.
    pub fn new() -> Self {
        let cfg = Config::default();
        let data = Dataset::new(cfg.dbs);
        MockMaster { cfg, data }
    }

    /// From a full configuration and dataset.
    pub fn from_parts(cfg: Config, data: Dataset) -> Self {
        MockMaster { cfg, data }
    }

    /// The emulated release.
    pub fn release(mut self, r: Release) -> Self {
        self.cfg.release = r;
        self
    }

    /// Number of shards (flows).
    pub fn shards(mut self, n: u32) -> Self {
        self.cfg.shards = n.max(1);
        self
    }

    /// Compression mode.
    pub fn compression(mut self, c: Compression) -> Self {
        self.cfg.compression = c;
        self
    }

    /// `requirepass`.
    pub fn requirepass(mut self, p: &str) -> Self {
        self.cfg.requirepass = Some(p.to_string());
        self
    }

    /// An ACL user.
    pub fn user(mut self, name: &str, pass: &str) -> Self {
        self.cfg.users.push((name.to_string(), pass.to_string()));
        self
    }

    /// `--serialization_max_chunk_size`.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.cfg.chunk_size = n.max(1);
        self
    }

    /// A fixed master id.
    pub fn master_id(mut self, id: &str) -> Self {
        self.cfg.master_id = Some(id.to_string());
        self
    }

    /// Seed of ids and tokens.
    pub fn seed(mut self, s: u64) -> Self {
        self.cfg.seed = s;
        self
    }

    /// Backlog length override.
    pub fn backlog_len(mut self, n: usize) -> Self {
        self.cfg.backlog_len = Some(n);
        self
    }

    /// The clock.
    pub fn clock(mut self, c: Clock) -> Self {
        self.cfg.clock = c;
        self
    }

    /// Declares the master promoted from `master_id` whose shards had reached `lsns` (next LSN
    /// per shard): the "last master" partial-sync form (spec 7.3).
    pub fn promoted_from(mut self, master_id: &str, lsns: &[u64]) -> Self {
        self.cfg.promoted_from = Some(config::Promotion { master_id: master_id.to_string(), lsns: lsns.to_vec() });
        self
    }

    /// Enables `--journal_omit_redundant_writes` (effective from v1.39).
    pub fn journal_omit(mut self, on: bool) -> Self {
        self.cfg.journal_omit = on;
        self
    }

    /// Adds a fault.
    pub fn fault(mut self, f: Fault) -> Self {
        self.cfg.faults.push(f);
        self
    }

    /// Adds a live write run at `phase` of the first session.
    pub fn live_write(mut self, phase: WritePhase, db: u32, command: &[&str]) -> Self {
        self.cfg.writes.push(LiveWrite { phase, db, command: command.iter().map(|s| s.to_string()).collect() });
        self
    }

    /// Adds a key.
    pub fn key(mut self, db: u32, key: &str, value: Value) -> Self {
        self.data.insert(db, Bytes::copy_from_slice(key.as_bytes()), Entry::new(value));
        self
    }

    /// Adds a key with an absolute expiry (Unix ms).
    pub fn key_with_expiry(mut self, db: u32, key: &str, value: Value, expire_ms: u64) -> Self {
        self.data.insert(db, Bytes::copy_from_slice(key.as_bytes()), Entry { value, expire_ms: Some(expire_ms) });
        self
    }

    /// Mutable access to the initial dataset.
    pub fn dataset_mut(&mut self) -> &mut Dataset {
        &mut self.data
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A handle on a master that is not serving yet (tests may serve it later with [`Handle::serve`]).
    pub fn build(self) -> Handle {
        Handle { shared: Shared::new(State::new(self.cfg, self.data)) }
    }

    /// Binds 127.0.0.1 on an ephemeral port and serves in the background.
    pub async fn start(self) -> std::io::Result<Running> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(self.build().spawn(listener))
    }

    /// [`MockMaster::start`] over TLS (like Dragonfly's `--tls`: one port, flows included).
    pub async fn start_tls(self, files: &tls::TlsFiles) -> std::io::Result<Running> {
        let acceptor = files.acceptor()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(self.build().spawn_with(listener, Some(acceptor)))
    }
}

/// A master serving in the background; stops when dropped.
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// Control and observation handle.
    pub handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Controls and observes a mock master.
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// A wait ran past its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out waiting for {0}")]
pub struct Timeout(pub String);

impl Handle {
    /// Serves `listener` until `shutdown` resolves.
    pub fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> impl Future<Output = ()> {
        server::serve(listener, None, self.shared.clone(), shutdown)
    }

    /// Serves `listener` over TLS when `tls` is given, until `shutdown` resolves.
    pub fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Option<tls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = ()> {
        server::serve(listener, tls, self.shared.clone(), shutdown)
    }

    /// Serves `listener` in a background task.
    pub fn spawn(self, listener: TcpListener) -> Running {
        self.spawn_with(listener, None)
    }

    /// Serves `listener` (TLS when `tls` is given) in a background task.
    pub fn spawn_with(self, listener: TcpListener, tls: Option<tls::TlsAcceptor>) -> Running {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let fut = server::serve(listener, tls, self.shared.clone(), async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(fut);
        Running { addr, handle: self, stop: Some(tx), task: Some(task) }
    }

    /// The current master id.
    pub fn master_id(&self) -> String {
        self.shared.lock().master_id.clone()
    }

    /// Next LSN per shard (`DFLY REPLICAOFFSET`).
    pub fn offsets(&self) -> Vec<u64> {
        self.shared.lock().offsets()
    }

    /// Every live session.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let st = self.shared.lock();
        st.sessions.keys().filter_map(|id| st.session_info(*id)).collect()
    }

    /// Runs a client command in `db` as if a client sent it (writes are journaled).
    pub fn exec(&self, db: u32, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let mut client = commands::Client::on(db);
        let r = commands::execute(&mut self.shared.lock(), &mut client, &args);
        self.shared.bump();
        r
    }

    /// Runs `commands` as one MULTI/EXEC transaction in `db` (one shared txid).
    pub fn exec_multi(&self, db: u32, commands: &[&[&str]]) -> Reply {
        let queue: Vec<Vec<Bytes>> =
            commands.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect();
        let mut db = db;
        let r = commands::exec_multi(&mut self.shared.lock(), &mut db, &queue);
        self.shared.bump();
        r
    }

    /// Runs a command given as raw byte arguments (binary-safe).
    pub fn exec_bytes(&self, db: u32, args: &[Bytes]) -> Reply {
        let mut client = commands::Client::on(db);
        let r = commands::execute(&mut self.shared.lock(), &mut client, args);
        self.shared.bump();
        r
    }

    /// Writes a PING record into every shard's journal.
    pub fn journal_ping(&self) {
        self.shared.lock().publish_ping();
        self.shared.bump();
    }

    /// Expires every key whose time has come (active expiry), journaling `DEL`s with txid 0.
    pub fn expire_now(&self) -> usize {
        let mut st = self.shared.lock();
        let now = st.cfg.clock.now_ms();
        let dead: Vec<(u32, Bytes)> =
            st.data.iter().filter(|(_, _, e)| e.expired(now)).map(|(db, k, _)| (db, k.clone())).collect();
        for (db, k) in &dead {
            st.touch(*db, k);
            if let Some(m) = st.data.db_mut(*db) {
                m.remove(k);
            }
            st.publish_expired(*db, k.clone());
        }
        drop(st);
        self.shared.bump();
        dead.len()
    }

    /// Restarts the master (new id, sessions and backlog gone, dataset kept).
    pub fn restart(&self) {
        self.shared.lock().restart();
        self.shared.bump();
    }

    /// Inserts or replaces a key directly (not journaled).
    pub fn insert(&self, db: u32, key: Bytes, entry: Entry) {
        self.shared.lock().data.insert(db, key, entry);
    }

    /// A copy of the dataset.
    pub fn dataset(&self) -> Dataset {
        self.shared.lock().data.clone()
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        self.shared.lock().cfg.clock.clone()
    }

    /// Waits until `pred` holds on the observable state, or fails after `timeout`.
    pub async fn wait_until<F>(&self, what: &str, timeout: Duration, mut pred: F) -> Result<(), Timeout>
    where
        F: FnMut(&Handle) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.epoch.subscribe();
        loop {
            if pred(self) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return if pred(self) { Ok(()) } else { Err(Timeout(what.to_string())) };
            }
        }
    }
}
