//! `RedisServer`: one real `redis-server` on a free loopback port in a temporary directory,
//! supervised so that it dies with its handle or with this process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{admin_opts, command, free_port, Result, TestkitError, POLL, START_TIMEOUT};
use crate::resp::{Client, Cmd, Connection, Frame, Pipeline, RespError, TlsClient};

/// Supervisor: start the server with stdin from /dev/null, print its pid, kill it when our stdin
/// (a pipe from the test process) reaches EOF, and remove the temp dir once it is gone.
const SUPERVISOR: &str = r#"dir=$1; shift
exec 3<&0
"$@" </dev/null >/dev/null 2>&1 &
p=$!
echo $p
( read _ <&3; kill -9 $p 2>/dev/null ) &
w=$!
exec 3<&-
wait $p
rc=$?
kill $w 2>/dev/null
rm -rf "$dir"
exit $rc
"#;

/// How to start a server.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// `--requirepass` (the harness authenticates its own connections with it).
    pub password: Option<String>,
    /// Run with `cluster-enabled yes` (a bus port is allocated too).
    pub cluster: bool,
    /// Extra `redis-server` arguments, e.g. `["--maxmemory", "64mb"]`.
    pub args: Vec<String>,
    /// The binary (default `redis-server` from `PATH`, or `$REDIS_SERVER`).
    pub binary: Option<PathBuf>,
    /// Serve TLS only (`--port 0 --tls-port P`); with `cluster`, the bus and replication too.
    pub tls: Option<ServerTls>,
}

/// TLS files of a test server (PEM files the test generated; nothing is checked in).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// `--tls-cert-file`.
    pub cert_file: PathBuf,
    /// `--tls-key-file`.
    pub key_file: PathBuf,
    /// `--tls-ca-cert-file`: the CA that signed the server's certificate and the clients'.
    pub ca_file: PathBuf,
    /// `--tls-auth-clients yes`: clients must present a certificate signed by `ca_file`.
    pub auth_clients: bool,
    /// Certificate and key the harness presents on its own connections (needed when
    /// `auth_clients`; a cluster's nodes also use it on the bus).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ServerTls {
    /// The client the harness connects with: trusts `ca_file`, presents `client_cert`.
    pub fn client(&self) -> Result<TlsClient> {
        let (cert_file, key_file) = match &self.client_cert {
            Some((c, k)) => (Some(c.clone()), Some(k.clone())),
            None => (None, None),
        };
        TlsClient::new(&crate::config::Tls {
            enabled: true,
            ca_file: Some(self.ca_file.clone()),
            cert_file,
            key_file,
            server_name: None,
            insecure_skip_verify: false,
        })
        .map_err(|e| TestkitError::Failed(format!("test TLS files: {e}")))
    }

    fn args(&self, port: u16, cluster: bool) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            self.cert_file.display().to_string(),
            "--tls-key-file".into(),
            self.key_file.display().to_string(),
            "--tls-ca-cert-file".into(),
            self.ca_file.display().to_string(),
            "--tls-auth-clients".into(),
            if self.auth_clients { "yes" } else { "no" }.into(),
        ];
        if cluster {
            a.extend(["--tls-cluster".into(), "yes".into(), "--tls-replication".into(), "yes".into()]);
        }
        if let Some((c, k)) = &self.client_cert {
            a.extend([
                "--tls-client-cert-file".into(),
                c.display().to_string(),
                "--tls-client-key-file".into(),
                k.display().to_string(),
            ]);
        }
        a
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cluster", &self.cluster)
            .field("args", &self.args)
            .field("binary", &self.binary)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A running `redis-server`. Killed (SIGKILL) and its directory removed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    addr: String,
    port: u16,
    pid: u32,
    dir: PathBuf,
    password: Option<String>,
    tls: Option<TlsClient>,
    supervisor: Child,
    stdin: Option<ChildStdin>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "df2redis-testkit-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl RedisServer {
    /// Start a plain server (no persistence, no password).
    pub async fn start() -> Result<RedisServer> {
        RedisServer::start_with(ServerOptions::default()).await
    }

    /// Start a server with options. Retries on a new port if the chosen one was taken meanwhile.
    pub async fn start_with(opts: ServerOptions) -> Result<RedisServer> {
        let mut last = String::new();
        for _ in 0..5 {
            match RedisServer::try_start(&opts).await? {
                Ok(s) => return Ok(s),
                Err(log) => last = log,
            }
        }
        Err(TestkitError::Failed(format!("redis-server did not start; last log:\n{last}")))
    }

    /// `Ok(Err(log))`: the process exited during startup (e.g. port collision), try again.
    async fn try_start(opts: &ServerOptions) -> Result<std::result::Result<RedisServer, String>> {
        let port = free_port()?;
        let dir = temp_dir()?;
        let binary = opts
            .binary
            .clone()
            .or_else(|| std::env::var_os("REDIS_SERVER").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let log = dir.join("redis.log");
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            log.display().to_string(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
        ];
        if opts.cluster {
            args.extend([
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                "nodes.conf".into(),
                "--cluster-node-timeout".into(),
                "2000".into(),
                "--cluster-port".into(),
                free_port()?.to_string(),
            ]);
        }
        let tls = match &opts.tls {
            Some(t) => {
                args.extend(t.args(port, opts.cluster));
                Some(t.client()?)
            }
            None => None,
        };
        if let Some(p) = &opts.password {
            args.extend(["--requirepass".into(), p.clone(), "--masterauth".into(), p.clone()]);
        }
        args.extend(opts.args.iter().cloned());
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("df2redis-testkit")
            .arg(&dir)
            .arg(&binary)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = supervisor.stdin.take();
        let mut line = String::new();
        if let Some(out) = supervisor.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let pid: u32 = line
            .trim()
            .parse()
            .map_err(|_| TestkitError::Failed(format!("supervisor printed {line:?} instead of a pid")))?;
        let mut server = RedisServer {
            addr: format!("127.0.0.1:{port}"),
            port,
            pid,
            dir,
            password: opts.password.clone(),
            tls,
            supervisor,
            stdin,
        };
        let end = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if server.supervisor.try_wait()?.is_some() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                if log.contains("already in use") {
                    return Ok(Err(log));
                }
                return Err(TestkitError::Failed(format!("redis-server exited during startup:\n{log}")));
            }
            if server.answers_as_ours().await {
                super::register_tls(&server.addr, server.tls.clone());
                return Ok(Ok(server));
            }
            if tokio::time::Instant::now() >= end {
                return Err(TestkitError::Timeout(format!("redis-server on port {port} to answer PING")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the process answering on our port is the one we started.
    async fn answers_as_ours(&self) -> bool {
        let mut opts = self.connect_options();
        opts.connect_timeout = Duration::from_millis(500);
        let Ok(mut c) = Connection::connect(&self.addr, &opts).await else {
            return false;
        };
        let Ok(info) = c.request(&Cmd::new("INFO").arg("server")).await else {
            return false;
        };
        let want = format!("process_id:{}\r", self.pid);
        info.as_bytes().is_some_and(|b| String::from_utf8_lossy(b).contains(&want))
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `redis-server` pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its working directory (removed when it stops).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `requirepass` password, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// The TLS client the harness uses with this server (`None`: plain TCP).
    pub fn tls_client(&self) -> Option<&TlsClient> {
        self.tls.as_ref()
    }

    /// Connect options that authenticate to this server (over TLS when it serves TLS).
    pub fn connect_options(&self) -> crate::resp::ConnectOptions {
        crate::resp::ConnectOptions { tls: self.tls.clone(), ..admin_opts(self.password.as_deref()) }
    }

    /// A new connection.
    pub async fn connect(&self) -> Result<Connection, RespError> {
        Connection::connect(&self.addr, &self.connect_options()).await
    }

    /// A new pipelined client.
    pub async fn client(&self) -> Result<Client, RespError> {
        Client::connect(&self.addr, &self.connect_options()).await
    }

    /// A new pipeline.
    pub async fn pipeline(&self) -> Result<Pipeline, RespError> {
        Pipeline::connect(&self.addr, &self.connect_options()).await
    }

    /// One command on a fresh connection.
    pub async fn cmd(&self, cmd: &Cmd) -> Result<Frame> {
        command(&self.addr, self.password.as_deref(), cmd).await
    }

    /// `FLUSHALL`.
    pub async fn flushall(&self) -> Result<()> {
        self.cmd(&Cmd::new("FLUSHALL")).await.map(|_| ())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// Kill the server now (SIGKILL) and wait until it is gone.
    pub fn kill(&mut self) {
        if self.tls.is_some() {
            super::register_tls(&self.addr, None);
        }
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
