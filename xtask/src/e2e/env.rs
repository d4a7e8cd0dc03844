//! Where a scenario runs: the source (mock master, replay, Dragonfly) and the target (standalone
//! or 3-master cluster), as local processes or containers, with the target-side faults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use df2redis::testkit::RedisCluster;
use tokio::process::Command;

use super::containers::{self, Docker};
use super::procs::{free_port, wait_ping, LocalRedis, Proc};
use super::replay::{self, Reference};
use super::run::Bins;
use super::scenario::{FaultKind, Scenario, SourceKind, TargetKind};

/// Which backend runs the processes.
#[derive(Debug, Clone)]
pub enum Backend {
    Local { dragonfly: Option<PathBuf> },
    Containers(Docker),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local { .. } => "local",
            Backend::Containers(_) => "containers",
        }
    }
}

/// A process or container held for its `Drop` (which kills / removes it).
#[allow(dead_code, clippy::large_enum_variant)] // a handful of long-lived values
enum Guard {
    Proc(Proc),
    Container(Box<containers::Container>),
}

/// The source of a scenario.
pub struct Source {
    addr: String,
    pub kind: String,
    _guard: Guard,
}

impl Source {
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// The target of a scenario.
#[allow(clippy::large_enum_variant)] // one per scenario
pub enum Target {
    Local(LocalRedis),
    Cluster(RedisCluster),
    Container(Box<containers::Container>),
}

/// A scenario's running world.
pub struct Env {
    pub root: PathBuf,
    pub source: Source,
    pub target: Target,
    backend: Backend,
    dir: PathBuf,
    references: Vec<Guard>,
    extra: Vec<LocalRedis>,
    /// The containers of a cluster target (the cluster itself only knows their addresses).
    _cluster_nodes: Vec<containers::Container>,
}

impl Env {
    pub async fn start(root: &Path, sc: &Scenario, backend: &Backend, bins: &Bins, dir: &Path) -> Result<Env> {
        let source = start_source(root, sc, backend, bins, dir).await.context("starting the source")?;
        let persistent = sc.faults.iter().any(|f| f.kind == FaultKind::RestartTarget);
        let mut cluster_nodes = Vec::new();
        let target = match (sc.target, backend) {
            (TargetKind::Standalone, Backend::Local { .. }) => {
                Target::Local(LocalRedis::start(&dir.join("target"), persistent).await.context("starting the target")?)
            }
            (TargetKind::Standalone, Backend::Containers(d)) => Target::Container(Box::new(
                d.redis("target", persistent).await.context("starting the target container")?,
            )),
            (TargetKind::Cluster, Backend::Local { .. }) => Target::Cluster(
                RedisCluster::start(3, 1).await.map_err(|e| anyhow::anyhow!("starting a 3-master cluster: {e}"))?,
            ),
            (TargetKind::Cluster, Backend::Containers(d)) => {
                for _ in 0..6 {
                    cluster_nodes.push(d.redis_cluster_node().await.context("starting a cluster node container")?);
                }
                let addrs = cluster_nodes.iter().map(|c| c.addr.clone()).collect();
                Target::Cluster(
                    RedisCluster::form(addrs, 1)
                        .await
                        .map_err(|e| anyhow::anyhow!("forming a 3-master cluster of containers: {e}"))?,
                )
            }
        };
        Ok(Env {
            root: root.to_path_buf(),
            source,
            target,
            backend: backend.clone(),
            dir: dir.to_path_buf(),
            references: Vec::new(),
            extra: Vec::new(),
            _cluster_nodes: cluster_nodes,
        })
    }

    /// A fresh Redis loaded from a capture's `expected-final` (replay scenarios verify against it).
    pub async fn reference(&mut self, capture: &Path) -> Result<(String, Reference)> {
        let addr = match &self.backend {
            Backend::Local { .. } => {
                let r = LocalRedis::start(&self.dir.join("reference"), false).await?;
                let a = r.addr();
                self.extra.push(r);
                a
            }
            Backend::Containers(d) => {
                let c = d.redis("reference", false).await?;
                let a = c.addr.clone();
                self.references.push(Guard::Container(Box::new(c)));
                a
            }
        };
        let r = replay::load_reference(capture, &addr).await.context("loading the reference from expected-final")?;
        Ok((addr, r))
    }
}

async fn start_source(root: &Path, sc: &Scenario, backend: &Backend, bins: &Bins, dir: &Path) -> Result<Source> {
    let log = dir.join("source.log");
    // Mock master arguments (a replay or a scenario file).
    let mock_args = || -> Result<(Vec<String>, String)> {
        Ok(match sc.source {
            SourceKind::Replay => {
                let cap = root.join(sc.replay.as_ref().context("replay")?);
                (vec!["--replay".into(), cap.display().to_string()], format!("mock-master --replay {}", cap.display()))
            }
            _ => {
                let p = dir.join("mock.toml");
                let table = sc.mock.clone().unwrap_or_default();
                std::fs::write(&p, toml::to_string(&table)?)?;
                (vec!["--scenario".into(), p.display().to_string()], "mock-master".to_string())
            }
        })
    };
    match backend {
        Backend::Local { dragonfly } => {
            if let (Some(df), false) = (dragonfly, sc.needs_mock()) {
                let port = free_port()?;
                let mut c = Command::new(df);
                c.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--proactor_threads", "2"]).args([
                    "--dbfilename",
                    "",
                    "--logtostderr",
                ]);
                let mut p = Proc::spawn("dragonfly", c, &log)?;
                let addr = format!("127.0.0.1:{port}");
                wait_ping(&addr, &mut p, Duration::from_secs(30)).await?;
                return Ok(Source { addr, kind: format!("dragonfly {}", df.display()), _guard: Guard::Proc(p) });
            }
            let (args, kind) = mock_args()?;
            let mut c = Command::new(&bins.mock_master);
            c.args(["--port", "0"]).args(&args);
            let (p, addr) = Proc::spawn_with_addr("mock-master", c, &log).await?;
            Ok(Source { addr, kind, _guard: Guard::Proc(p) })
        }
        Backend::Containers(d) => {
            if let (Some(image), false) = (&d.dragonfly_image, sc.needs_mock()) {
                let c = d.dragonfly(image).await?;
                let addr = c.addr.clone();
                return Ok(Source {
                    addr,
                    kind: format!("dragonfly container {image}"),
                    _guard: Guard::Container(Box::new(c)),
                });
            }
            let c = d.mock_master(sc, root, dir).await?;
            let addr = c.addr.clone();
            Ok(Source {
                addr,
                kind: format!("mock-master container {}", d.mock_image),
                _guard: Guard::Container(Box::new(c)),
            })
        }
    }
}

impl Target {
    pub fn addr(&self) -> String {
        match self {
            Target::Local(r) => r.addr(),
            Target::Cluster(c) => c.seed().to_string(),
            Target::Container(c) => c.addr.clone(),
        }
    }

    pub fn kind(&self) -> String {
        match self {
            Target::Local(_) => "redis-server".into(),
            Target::Cluster(c) => format!("redis cluster, 3 masters + 1 replica each, {} nodes", c.addrs().len()),
            Target::Container(c) => format!("redis container {}", c.image),
        }
    }

    pub async fn restart(&mut self) -> Result<()> {
        match self {
            Target::Local(r) => r.restart().await,
            Target::Container(c) => c.restart().await,
            Target::Cluster(_) => bail!("restart_target is for a standalone target"),
        }
    }

    /// Moves `n` slots from the first master to the second, the way `redis-cli --cluster reshard` does.
    pub async fn reshard(&mut self, n: u16) -> Result<()> {
        let Target::Cluster(c) = self else { bail!("reshard needs a cluster target") };
        let te = |e: df2redis::testkit::TestkitError| anyhow::anyhow!("{e}");
        let mut masters = c.masters().await.map_err(te)?;
        masters.sort_by_key(|m| m.slots.first().map(|s| s.0));
        let (from, to) = (masters[0].clone(), masters[1].clone());
        let first = from.slots.first().context("first master owns no slots")?.0;
        for slot in first..first + n {
            c.migrate_slot(slot, &from.addr, &to.addr).await.map_err(te)?;
        }
        println!("    moved slots {first}..{} from {} to {}", first + n - 1, from.addr, to.addr);
        Ok(())
    }

    /// Fails the first master over to its replica.
    pub async fn failover(&mut self) -> Result<()> {
        let Target::Cluster(c) = self else { bail!("failover needs a cluster target") };
        let te = |e: df2redis::testkit::TestkitError| anyhow::anyhow!("{e}");
        let mut masters = c.masters().await.map_err(te)?;
        masters.sort_by_key(|m| m.slots.first().map(|s| s.0));
        let old = masters[0].addr.clone();
        let new = c.failover(&old).await.map_err(te)?;
        println!("    failed over {old} → {new}");
        Ok(())
    }
}
