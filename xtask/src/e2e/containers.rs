//! The containers backend (testcontainers): local images built without a registry by
//! `docker import` of a root filesystem holding a binary and the libraries `ldd` lists
//! (`cargo xtask e2e-images`), containers reached through 127.0.0.1 and a fixed mapped port
//! (inside some VMs `get_host()` answers a bridge address), and restart on the same port;
//! cluster nodes on the host network.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::procs::{command, free_port, wait_for};
use super::scenario::{Scenario, SourceKind};
use df2redis::resp::Cmd;

/// Default local image names (override with flags or env).
pub const REDIS_IMAGE: &str = "df2redis-e2e/redis:local";
pub const MOCK_IMAGE: &str = "df2redis-e2e/mock-master:local";

/// Images the containers backend uses.
#[derive(Debug, Clone)]
pub struct Docker {
    pub redis_image: String,
    pub mock_image: String,
    /// The official Dragonfly image (e.g. `docker.dragonflydb.io/dragonflydb/dragonfly:v1.40.1`),
    /// if it is available locally; else the mock master's image stands in.
    pub dragonfly_image: Option<String>,
}

/// Whether a Docker engine answers.
pub fn engine_answers() -> bool {
    StdCommand::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether `image` exists in the local engine.
pub fn image_exists(image: &str) -> bool {
    StdCommand::new("docker").args(["image", "inspect", image]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn split(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// A running container reached at `addr` (127.0.0.1 + a fixed mapped port).
pub struct Container {
    inner: ContainerAsync<GenericImage>,
    pub addr: String,
    pub image: String,
}

impl Container {
    /// Stops and starts the container (same port mapping, same filesystem: AOF data kept).
    pub async fn restart(&mut self) -> Result<()> {
        self.inner.stop().await.context("stopping the container")?;
        self.inner.start().await.context("starting the container again")?;
        wait_ping(&self.addr).await
    }
}

async fn wait_ping(addr: &str) -> Result<()> {
    let a = addr.to_string();
    wait_for(&format!("{addr} to answer PING"), Duration::from_secs(30), || {
        let a = a.clone();
        async move { Ok(command(&a, &Cmd::new("PING")).await.ok().map(|_| ())) }
    })
    .await
}

impl Docker {
    async fn run(
        &self,
        image: &str,
        port: u16,
        cmd: Vec<String>,
        mounts: Vec<(PathBuf, &str)>,
        wait: WaitFor,
    ) -> Result<Container> {
        let host_port = free_port()?;
        let (name, tag) = split(image);
        let mut req = GenericImage::new(name, tag)
            .with_exposed_port(port.tcp())
            .with_wait_for(wait)
            .with_mapped_port(host_port, port.tcp())
            .with_cmd(cmd);
        for (host, inside) in mounts {
            req = req.with_mount(Mount::bind_mount(host.display().to_string(), inside));
        }
        let inner = req.start().await.with_context(|| format!("starting a container of {image}"))?;
        let addr = format!("127.0.0.1:{host_port}");
        wait_ping(&addr).await?;
        Ok(Container { inner, addr, image: image.to_string() })
    }

    /// A Redis container (AOF with `appendfsync always` when `persistent`).
    pub async fn redis(&self, _what: &str, persistent: bool) -> Result<Container> {
        let mut cmd: Vec<String> =
            ["redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""]
                .iter()
                .map(|s| s.to_string())
                .collect();
        cmd.extend(
            if persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "no"]
            }
            .iter()
            .map(|s| s.to_string()),
        );
        self.run(&self.redis_image, 6379, cmd, Vec::new(), WaitFor::message_on_stdout("Ready to accept connections"))
            .await
    }

    /// A cluster-enabled Redis node on the host's network (`--network host`): the nodes and
    /// df2redis reach each other at 127.0.0.1 and the ports the nodes announce, which a bridge
    /// network with mapped ports cannot give (the cluster bus would announce container addresses).
    pub async fn redis_cluster_node(&self) -> Result<Container> {
        let (port, bus) = (free_port()?, free_port()?);
        let cmd: Vec<String> = [
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
            "--cluster-node-timeout",
            "2000",
            "--cluster-config-file",
            &format!("nodes-{port}.conf"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (name, tag) = split(&self.redis_image);
        let req = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_network("host")
            .with_cmd(cmd);
        let inner = req.start().await.with_context(|| format!("starting a cluster node of {}", self.redis_image))?;
        let addr = format!("127.0.0.1:{port}");
        wait_ping(&addr).await?;
        Ok(Container { inner, addr, image: self.redis_image.clone() })
    }

    /// The official Dragonfly image.
    pub async fn dragonfly(&self, image: &str) -> Result<Container> {
        let cmd = ["dragonfly", "--port", "6379", "--proactor_threads", "2", "--dbfilename", "", "--logtostderr"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        self.run(image, 6379, cmd, Vec::new(), WaitFor::Nothing).await
    }

    /// The mock master (a scenario file or a capture mounted into the container).
    pub async fn mock_master(&self, sc: &Scenario, root: &Path, dir: &Path) -> Result<Container> {
        let mut cmd: Vec<String> =
            ["mock-master", "--bind", "0.0.0.0", "--port", "6379"].iter().map(|s| s.to_string()).collect();
        let mut mounts = Vec::new();
        if sc.source == SourceKind::Replay {
            let cap = root.join(sc.replay.as_ref().context("replay")?).canonicalize()?;
            mounts.push((cap, "/capture"));
            cmd.extend(["--replay".to_string(), "/capture".to_string()]);
        } else {
            let d = dir.join("mock");
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("mock.toml"), toml::to_string(&sc.mock.clone().unwrap_or_default())?)?;
            mounts.push((d.canonicalize()?, "/scenario"));
            cmd.extend(["--scenario".to_string(), "/scenario/mock.toml".to_string()]);
        }
        self.run(&self.mock_image, 6379, cmd, mounts, WaitFor::message_on_stdout(":6379")).await
    }
}

/// Builds `image` from `binaries` and their shared libraries with `docker import` (no registry).
pub fn build_image(image: &str, binaries: &[PathBuf], work: &Path) -> Result<()> {
    let rootfs = work.join(format!("rootfs-{}", image.replace(['/', ':'], "-")));
    let _ = std::fs::remove_dir_all(&rootfs);
    for d in ["usr/local/bin", "tmp", "data"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    for bin in binaries {
        let name = bin.file_name().context("binary name")?;
        std::fs::copy(bin, rootfs.join("usr/local/bin").join(name))
            .with_context(|| format!("copying {}", bin.display()))?;
        let out = StdCommand::new("ldd").arg(bin).output().context("running ldd")?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
            if path.starts_with('/') {
                let dst = rootfs.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(dst.parent().context("lib dir")?)?;
                std::fs::copy(path, &dst).with_context(|| format!("copying {path}"))?;
            }
        }
    }
    let tar = work.join(format!("{}.tar", image.replace(['/', ':'], "-")));
    let st = StdCommand::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status()?;
    if !st.success() {
        bail!("tar of {} failed", rootfs.display());
    }
    let st = StdCommand::new("docker")
        .args(["import", "--change", "WORKDIR /data", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin"])
        .arg(&tar)
        .arg(image)
        .status()
        .context("running docker import")?;
    if !st.success() {
        bail!("docker import {image} failed");
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    let _ = std::fs::remove_file(&tar);
    Ok(())
}
