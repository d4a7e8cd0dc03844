//! The e2e scenario files (`tests/e2e/scenarios/*.toml`): schema, loading, validation.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// One line: what the scenario proves.
    pub description: String,
    /// Run by `.ci/run` (`cargo xtask e2e --ci`).
    #[serde(default)]
    pub ci: bool,
    /// `standalone` (default) or `cluster` (3 masters with a replica each).
    #[serde(default)]
    pub target: TargetKind,
    /// `any` (a Dragonfly if one is available, else the mock master), `mock` (needs the mock
    /// master's faults or release emulation), or `replay` (a corpus capture).
    #[serde(default)]
    pub source: SourceKind,
    /// Capture directory for `source = "replay"`, relative to the repository.
    pub replay: Option<PathBuf>,
    /// Extra `df2redis replicate` flags.
    #[serde(default)]
    pub replicate_args: Vec<String>,
    /// Deadline for each wait on positions, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A mock-master scenario (release, shards, compression, faults, scripted writes): written
    /// to a file and passed as `mock-master --scenario`.
    pub mock: Option<toml::Table>,
    /// Data written through a client before replication starts.
    #[serde(default)]
    pub dataset: Vec<DatasetSpec>,
    /// Live writes while replicating.
    pub load: Option<LoadSpec>,
    /// Faults, in order.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Expected outcome.
    #[serde(default)]
    pub expect: Expect,
}

fn default_timeout() -> u64 {
    120
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    #[default]
    Standalone,
    Cluster,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    #[default]
    Any,
    Mock,
    Replay,
}

/// `<prefix>:<type>:<i>` keys, types cycled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[serde(default)]
    pub db: u32,
    pub prefix: String,
    pub count: usize,
    pub types: Vec<String>,
    /// Bytes per string value / element.
    #[serde(default = "default_size")]
    pub size: usize,
    /// Elements per container.
    #[serde(default = "default_elements")]
    pub elements: usize,
    /// Share of keys with a TTL of `ttl_ms`.
    #[serde(default)]
    pub ttl_fraction: f64,
    #[serde(default = "default_ttl")]
    pub ttl_ms: u64,
    /// Extra big keys (one per type, cycled) with `big_elements` elements each.
    #[serde(default)]
    pub big_keys: usize,
    #[serde(default)]
    pub big_elements: usize,
}

fn default_size() -> usize {
    16
}
fn default_elements() -> usize {
    8
}
fn default_ttl() -> u64 {
    3_600_000
}

/// When the live writer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadStart {
    /// Together with `df2redis replicate`: writes land in the full sync and the stable sync.
    #[default]
    WithReplicate,
    /// Once replication is in stable sync.
    StableSync,
}

/// Live writes: a mix of commands over `keys` keys per db.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub ops: usize,
    /// Operations per second (0 = as fast as the source takes them).
    #[serde(default)]
    pub rate: u64,
    #[serde(default = "default_load_keys")]
    pub keys: usize,
    #[serde(default = "default_dbs")]
    pub dbs: Vec<u32>,
    #[serde(default)]
    pub start: LoadStart,
    /// Commands per pipelined batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_load_keys() -> usize {
    200
}
fn default_dbs() -> Vec<u32> {
    vec![0]
}
fn default_batch() -> usize {
    50
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL `df2redis replicate` and start it again (same state dir).
    KillReplicate,
    /// SIGTERM `df2redis replicate` (final checkpoint) and start it again.
    StopReplicate,
    /// Kill the target (standalone, AOF on) and start it again on the same port.
    RestartTarget,
    /// Move slots between two cluster masters.
    Reshard,
    /// Fail a cluster master over to its replica.
    Failover,
}

/// When a fault fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAt {
    /// While any flow is still in full sync (use a mock `throttle` to make it last).
    FullSync,
    /// Once every flow is in stable sync.
    #[default]
    StableSync,
    /// When half of the live writes were acknowledged by the source.
    LoadHalf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    #[serde(default)]
    pub at: FaultAt,
    /// Reshard: how many slots to move.
    #[serde(default = "default_slots")]
    pub slots: u16,
}

fn default_slots() -> u16 {
    16
}

/// Expected outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `equal`: `df2redis verify --mode full` finds no differences except `allow`.
    #[serde(default = "default_verdict")]
    pub verify: String,
    /// `db:key` differences that are expected (documented upstream behaviour).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Full syncs over the whole run (all df2redis processes).
    pub full_syncs: Option<u64>,
    /// At least this many partial syncs (resumes).
    #[serde(default)]
    pub partial_syncs_min: u64,
}

impl Default for Expect {
    fn default() -> Self {
        Expect { verify: default_verdict(), allow: Vec::new(), full_syncs: None, partial_syncs_min: 0 }
    }
}

fn default_verdict() -> String {
    "equal".into()
}

/// The scenario directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join("tests/e2e/scenarios")
}

/// Every scenario, sorted by name.
pub fn load_all(root: &Path) -> Result<Vec<Scenario>> {
    let d = dir(root);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "toml") {
            out.push(load(&p)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn load(p: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let mut s: Scenario = toml::from_str(&text).with_context(|| format!("scenario {}", p.display()))?;
    if s.name.is_empty() {
        s.name = p.file_stem().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
    }
    s.validate().with_context(|| format!("scenario {}", p.display()))?;
    Ok(s)
}

impl Scenario {
    fn validate(&self) -> Result<()> {
        if self.source == SourceKind::Replay {
            if self.replay.is_none() {
                bail!("source = \"replay\" needs `replay = \"corpus/...\"`");
            }
            if !self.dataset.is_empty() || self.load.is_some() || self.mock.is_some() {
                bail!("a replay serves a capture: no dataset, load or mock table");
            }
        }
        for f in &self.faults {
            let cluster_only = matches!(f.kind, FaultKind::Reshard | FaultKind::Failover);
            if cluster_only != (self.target == TargetKind::Cluster) && cluster_only {
                bail!("fault {:?} needs target = \"cluster\"", f.kind);
            }
            if f.kind == FaultKind::RestartTarget && self.target == TargetKind::Cluster {
                bail!("restart_target is for a standalone target");
            }
            if f.at == FaultAt::LoadHalf && self.load.is_none() {
                bail!("fault at load_half needs a [load] table");
            }
        }
        if self.target == TargetKind::Cluster {
            let dbs = self.dataset.iter().map(|d| d.db).chain(self.load.iter().flat_map(|l| l.dbs.clone()));
            if dbs.into_iter().any(|d| d != 0) {
                bail!("a cluster target has only db 0");
            }
        }
        for d in &self.dataset {
            for t in &d.types {
                if !["string", "list", "set", "hash", "zset", "stream"].contains(&t.as_str()) {
                    bail!("dataset type {t:?}: expected string, list, set, hash, zset or stream");
                }
            }
        }
        if self.expect.verify != "equal" {
            bail!("expect.verify = {:?}: only \"equal\" is supported", self.expect.verify);
        }
        Ok(())
    }

    /// Whether the scenario needs the mock master (its faults, release emulation or replay).
    pub fn needs_mock(&self) -> bool {
        self.source != SourceKind::Any
    }
}
