//! Test harness that runs REAL `redis-server` processes (never a mock of Redis): standalone
//! servers ([`RedisServer`]), clusters ([`RedisCluster`]), and per-binary shared instances with
//! serialized access ([`shared_server`], [`shared_cluster`]).
//!
//! Processes run under a tiny `sh` supervisor whose stdin is a pipe from this process: when the
//! handle is dropped, or this process exits for any reason, the pipe closes and the supervisor
//! kills `redis-server` and removes its temporary directory. Nothing outlives the test binary.

mod cluster;
mod server;

use std::net::TcpListener;
use std::ops::Deref;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, OnceCell};

use crate::resp::{Cmd, ConnectOptions, Connection, Frame, RespError, TlsClient};

pub use cluster::{ClusterNode, RedisCluster};
pub use server::{RedisServer, ServerOptions, ServerTls};

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// Spawning or talking to a process failed.
    #[error("testkit I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A command sent to a server failed.
    #[error("testkit: {0}")]
    Resp(#[from] RespError),
    /// A server or cluster did not come up / reach the wanted state.
    #[error("testkit: {0}")]
    Failed(String),
    /// A deadline passed.
    #[error("testkit: timed out waiting for {0}")]
    Timeout(String),
}

/// Result of the harness.
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;

/// Deadline for a server to answer PING after launch.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for cluster-wide state changes (formation, failover, slot migration).
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between polls while waiting for a state.
pub const POLL: Duration = Duration::from_millis(10);

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Options for the short-lived connections the harness opens.
pub(crate) fn admin_opts(password: Option<&str>) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Some(Duration::from_secs(10)),
        auth: password.map(|p| crate::resp::Auth::Password(p.to_owned())),
        ..ConnectOptions::default()
    }
}

/// TLS servers this process runs (address → the client the harness uses with it), so every
/// harness connection, cluster helpers included, speaks TLS to them.
static TLS_SERVERS: std::sync::Mutex<Vec<(String, TlsClient)>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn register_tls(addr: &str, client: Option<TlsClient>) {
    let mut m = TLS_SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    m.retain(|(a, _)| a != addr);
    if let Some(c) = client {
        m.push((addr.to_owned(), c));
    }
}

/// The TLS client for a server this process started with TLS (`None`: plain TCP).
pub fn tls_for(addr: &str) -> Option<TlsClient> {
    TLS_SERVERS.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(a, _)| a == addr).map(|(_, c)| c.clone())
}

/// Send one command on a fresh connection (over TLS to a TLS server this process started).
pub async fn command(addr: &str, password: Option<&str>, cmd: &Cmd) -> Result<Frame> {
    let opts = ConnectOptions { tls: tls_for(addr), ..admin_opts(password) };
    let mut c = Connection::connect(addr, &opts).await?;
    Ok(c.request(cmd).await?)
}

/// Poll `probe` every [`POLL`] until it returns `Some`, or fail after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= end {
            return Err(TestkitError::Timeout(what.to_owned()));
        }
        tokio::time::sleep(POLL).await;
    }
}

static SHARED_SERVER: OnceCell<RedisServer> = OnceCell::const_new();
static SERVER_LOCK: Mutex<()> = Mutex::const_new(());
static SHARED_CLUSTER: OnceCell<RedisCluster> = OnceCell::const_new();
static CLUSTER_LOCK: Mutex<()> = Mutex::const_new(());

/// Exclusive access to a shared resource for the duration of one test.
#[derive(Debug)]
pub struct Shared<T: 'static> {
    _guard: MutexGuard<'static, ()>,
    inner: &'static T,
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
    }
}

/// The standalone server shared by this test binary, flushed, held exclusively until the returned
/// guard drops.
pub async fn shared_server() -> Result<Shared<RedisServer>> {
    let guard = SERVER_LOCK.lock().await;
    let s = SHARED_SERVER.get_or_try_init(RedisServer::start).await?;
    s.flushall().await?;
    Ok(Shared { _guard: guard, inner: s })
}

/// The cluster (3 masters, 1 replica each) shared by this test binary, flushed, held exclusively
/// until the returned guard drops. Tests that change topology (failover, slot migration) must
/// read the topology afresh rather than assume the initial layout.
pub async fn shared_cluster() -> Result<Shared<RedisCluster>> {
    let guard = CLUSTER_LOCK.lock().await;
    let c = SHARED_CLUSTER.get_or_try_init(|| RedisCluster::start(3, 1)).await?;
    c.flushall().await?;
    Ok(Shared { _guard: guard, inner: c })
}
