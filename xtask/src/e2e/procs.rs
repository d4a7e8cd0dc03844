//! Local processes of an e2e run: a guard per process (killed by pid on drop), free ports,
//! standalone `redis-server`s that can be restarted on the same port, and small RESP helpers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use df2redis::resp::{Cmd, ConnectOptions, Connection, Frame};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One child process; SIGKILLed by pid when dropped (unless it already exited).
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Proc { name: name.to_string(), child, log: log.to_path_buf() })
    }

    /// Starts `cmd` and reads the first stdout line (the bound address of `mock-master`);
    /// the rest of its output goes to `log`.
    pub async fn spawn_with_addr(name: &str, mut cmd: Command, log: &Path) -> Result<(Proc, String)> {
        let err = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err).kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .with_context(|| format!("{name} printed no address within 30 s; see {}", log.display()))??;
        let Some(addr) = first else {
            bail!("{name} exited before printing its address; see {}", log.display());
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((Proc { name: name.to_string(), child, log: log.to_path_buf() }, addr.trim().to_string()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether it has exited (and with what).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL now and reap.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM and wait up to `grace` for a clean exit (then SIGKILL); returns the exit status.
    pub async fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(s) = self.exited() {
            return Some(s);
        }
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                self.kill().await;
                None
            }
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn admin() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Some(Duration::from_secs(30)),
        ..ConnectOptions::default()
    }
}

/// One command on a fresh connection.
pub async fn command(addr: &str, cmd: &Cmd) -> Result<Frame> {
    let mut c = Connection::connect(addr, &admin()).await.with_context(|| format!("connecting to {addr}"))?;
    let f = c.request(cmd).await.with_context(|| format!("{addr}: {cmd:?}"))?;
    if f.is_error() {
        bail!("{addr}: {} answered {}", String::from_utf8_lossy(cmd.name().unwrap_or_default()), f.to_string_lossy());
    }
    Ok(f)
}

/// Polls `probe` every 20 ms until it returns `Some`, failing after `deadline` with `what`.
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
            bail!("timed out after {:.0} s waiting for {what}", deadline.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `addr` answers PING (`+PONG`), or `proc` exits.
pub async fn wait_ping(addr: &str, proc: &mut Proc, deadline: Duration) -> Result<()> {
    let what = format!("{} at {addr} to answer PING", proc.name);
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(f) = command(addr, &Cmd::new("PING")).await {
            if !f.is_error() {
                return Ok(());
            }
        }
        if let Some(s) = proc.exited() {
            bail!("{} exited ({s}) before answering PING; see {}", proc.name, proc.log.display());
        }
        if tokio::time::Instant::now() >= end {
            bail!("timed out waiting for {what}; see {}", proc.log.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A standalone `redis-server` on a fixed loopback port with its own directory, so it can be
/// killed and started again with its data (AOF, `appendfsync always`) when `persistent`.
#[derive(Debug)]
pub struct LocalRedis {
    pub port: u16,
    pub dir: PathBuf,
    pub persistent: bool,
    pub proc: Option<Proc>,
    starts: u32,
}

impl LocalRedis {
    pub async fn start(dir: &Path, persistent: bool) -> Result<LocalRedis> {
        std::fs::create_dir_all(dir)?;
        let mut r = LocalRedis { port: free_port()?, dir: dir.to_path_buf(), persistent, proc: None, starts: 0 };
        r.launch().await?;
        Ok(r)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) -> Result<()> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--save", ""])
            .arg("--dir")
            .arg(&self.dir);
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        self.starts += 1;
        let mut p = Proc::spawn("redis-server", cmd, &self.dir.join("redis.log"))?;
        wait_ping(&self.addr(), &mut p, Duration::from_secs(10)).await?;
        self.proc = Some(p);
        Ok(())
    }

    /// SIGKILL, then start again on the same port (with its data when persistent).
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
        }
        self.launch().await
    }
}

/// `redis-server` on PATH (or `$REDIS_SERVER`), or an error with the install hint.
pub fn require_redis() -> Result<String> {
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    match std::process::Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => bail!(
            "`{bin}` not found: install Redis first (Debian/Ubuntu: `sudo apt-get install -y redis-server`; \
             macOS: `brew install redis`), or point $REDIS_SERVER at a redis-server binary"
        ),
    }
}

/// Whether `name` is an executable on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}
