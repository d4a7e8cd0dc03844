//! Runs one scenario: source, target, dataset, `df2redis replicate` with live writes and
//! faults, completion from positions (the source's `DFLY REPLICAOFFSET` or a capture's final
//! LSNs vs the LSNs df2redis reports confirmed and ACKed), then `df2redis verify`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use df2redis::resp::Cmd;
use tokio::process::Command;

use super::data::{self, LoadProgress};
use super::env::{Env, Source, Target};
use super::procs::{command, Proc};
use super::scenario::{FaultAt, FaultKind, LoadStart, Scenario, SourceKind};

/// Binaries under test.
#[derive(Debug, Clone)]
pub struct Bins {
    pub df2redis: PathBuf,
    pub mock_master: PathBuf,
}

/// What every df2redis process reported last (summed over restarts).
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    full_syncs: u64,
    partial_syncs: u64,
    sessions: u64,
}

/// A running `df2redis replicate` and its state.
struct Replicator {
    bins: Bins,
    args: Vec<String>,
    dir: PathBuf,
    proc: Option<Proc>,
    done: Totals,
    starts: u32,
}

impl Replicator {
    fn status_path(&self) -> PathBuf {
        self.dir.join("state/status.json")
    }

    fn start(&mut self) -> Result<()> {
        // A stale status file from the previous process must not count as progress.
        let _ = std::fs::remove_file(self.status_path());
        let mut c = Command::new(&self.bins.df2redis);
        c.arg("replicate").args(&self.args);
        self.starts += 1;
        self.proc = Some(Proc::spawn("df2redis replicate", c, &self.dir.join("replicate.log"))?);
        Ok(())
    }

    fn status(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.status_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn fold_status(&mut self) {
        if let Some(s) = self.status() {
            let g = |k: &str| s[k].as_u64().unwrap_or(0);
            self.done.full_syncs += g("full_syncs");
            self.done.partial_syncs += g("partial_syncs");
            self.done.sessions += g("sessions");
        }
    }

    /// Fails when the process exited (with the tail of its log).
    fn check_alive(&mut self) -> Result<()> {
        let Some(p) = self.proc.as_mut() else { bail!("df2redis replicate is not running") };
        if let Some(st) = p.exited() {
            bail!("df2redis replicate exited ({st}): {}", last_error_line(&p.log));
        }
        Ok(())
    }

    async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
        }
        self.fold_status();
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            let st = p.terminate(Duration::from_secs(30)).await;
            self.fold_status();
            match st {
                Some(s) if s.success() => {}
                Some(s) => bail!("df2redis replicate exited with {s} on SIGTERM: {}", last_error_line(&p.log)),
                None => bail!("df2redis replicate did not stop within 30 s of SIGTERM"),
            }
        }
        Ok(())
    }

    fn totals(&self) -> Totals {
        let mut t = self.done;
        if self.proc.is_some() {
            if let Some(s) = self.status() {
                let g = |k: &str| s[k].as_u64().unwrap_or(0);
                t.full_syncs += g("full_syncs");
                t.partial_syncs += g("partial_syncs");
                t.sessions += g("sessions");
            }
        }
        t
    }
}

/// The most telling line of a log: the last ERROR/WARN line, else the last line.
pub fn last_error_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let clean = |l: &str| strip_ansi(l).trim().to_string();
    text.lines()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("error:"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .map(clean)
        .unwrap_or_else(|| format!("(empty log {})", log.display()))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn flows(s: &serde_json::Value) -> Vec<serde_json::Value> {
    s["flows"].as_array().cloned().unwrap_or_default()
}

fn all_stable(s: &serde_json::Value) -> bool {
    let f = flows(s);
    !f.is_empty() && f.iter().all(|x| x["phase"] == "stable")
}

fn any_full_sync(s: &serde_json::Value) -> bool {
    flows(s).iter().any(|x| x["phase"] == "full_sync" || x["phase"] == "full_sync_done")
}

/// The source's next LSN per shard.
async fn source_offsets(addr: &str) -> Result<Vec<u64>> {
    let f = command(addr, &Cmd::new("DFLY").arg("REPLICAOFFSET")).await?;
    let a = f.as_array().context("DFLY REPLICAOFFSET: not an array")?;
    a.iter().map(|x| x.as_int().map(|v| v as u64).context("DFLY REPLICAOFFSET: not an integer")).collect()
}

/// Everything a scenario left running (kept alive with `--keep`).
#[derive(Default)]
pub struct Held {
    pub env: Option<Env>,
    pub replicate: Option<Proc>,
    pub info: String,
}

/// Result of one scenario.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub verdict: Verdict,
    pub secs: f64,
    pub detail: String,
    pub logs: PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
}

/// Runs a scenario; never panics, every failure becomes `Verdict::Fail` with its reason.
/// With `keep`, the processes stay up in `held` (else they are stopped here).
pub async fn run(sc: &Scenario, mut env: Env, bins: &Bins, dir: &Path, held: &mut Held, keep: bool) -> Outcome {
    let start = Instant::now();
    let mut detail = String::new();
    held.info = format!(
        "source {} ({}), target {} ({}), logs {}",
        env.source.addr(),
        env.source.describe(),
        env.target.addr(),
        env.target.describe(),
        dir.display()
    );
    println!("    {}", held.info);
    let mut args: Vec<String> = vec![
        "--source-addr".into(),
        env.source.addr().to_string(),
        "--target-addr".into(),
        env.target.addr(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
        "--task-name".into(),
        "e2e".into(),
        "--log-interval".into(),
        "1".into(),
        "--ack-interval".into(),
        "0.2".into(),
        "--log-format".into(),
        "text".into(),
    ];
    args.extend(sc.replicate_args.iter().cloned());
    let mut rep =
        Replicator { bins: bins.clone(), args, dir: dir.to_path_buf(), proc: None, done: Totals::default(), starts: 0 };
    let r = run_inner(sc, &mut env, bins, dir, &mut rep, keep, &mut detail).await;
    if keep {
        held.replicate = rep.proc.take();
        held.env = Some(env);
    }
    Outcome {
        name: sc.name.clone(),
        verdict: match r {
            Ok(()) => Verdict::Pass,
            Err(e) => Verdict::Fail(format!("{e:#}")),
        },
        secs: start.elapsed().as_secs_f64(),
        detail,
        logs: dir.to_path_buf(),
    }
}

async fn run_inner(
    sc: &Scenario,
    env: &mut Env,
    bins: &Bins,
    dir: &Path,
    rep: &mut Replicator,
    keep: bool,
    detail: &mut String,
) -> Result<()> {
    let deadline = Duration::from_secs(sc.timeout_secs);
    let src = env.source.addr().to_string();
    let tgt = env.target.addr();

    // Dataset through a client.
    let mut keys = 0;
    for (i, d) in sc.dataset.iter().enumerate() {
        keys +=
            data::load_dataset(&src, d, i as u64 + 1).await.with_context(|| format!("loading dataset {}", d.prefix))?;
    }

    let progress = Arc::new(LoadProgress::default());
    let mut load = None;
    let spawn_load = |progress: Arc<LoadProgress>| {
        let spec = sc.load.clone();
        let src = src.clone();
        spec.map(|l| tokio::spawn(data::run_load(src, l, 7, progress)))
    };
    if sc.load.as_ref().is_some_and(|l| l.start == LoadStart::WithReplicate) {
        load = spawn_load(progress.clone());
    }
    rep.start()?;

    // Writes acknowledged by the source before df2redis first reported stable sync.
    let mut before_stable: Option<u64> = None;
    let mut observe = |rep: &mut Replicator| -> Result<Option<serde_json::Value>> {
        rep.check_alive()?;
        let s = rep.status();
        if before_stable.is_none() && s.as_ref().is_some_and(all_stable) {
            before_stable = Some(progress.done.load(Ordering::Relaxed));
        }
        Ok(s)
    };

    if sc.load.as_ref().is_some_and(|l| l.start == LoadStart::StableSync) {
        wait_state(rep, &mut observe, "stable sync", deadline, |s, _| all_stable(s)).await?;
        load = spawn_load(progress.clone());
    }

    for f in &sc.faults {
        match f.at {
            FaultAt::FullSync => {
                wait_state(rep, &mut observe, "a flow in full sync", deadline, |s, _| any_full_sync(s)).await?
            }
            FaultAt::StableSync => wait_state(rep, &mut observe, "stable sync", deadline, |s, _| all_stable(s)).await?,
            FaultAt::LoadHalf => {
                let half = sc.load.as_ref().map_or(0, |l| l.ops as u64 / 2);
                let p = progress.clone();
                wait_state(rep, &mut observe, "half of the live writes", deadline, move |_, _| {
                    p.done.load(Ordering::Relaxed) >= half
                })
                .await?
            }
        }
        println!("    fault: {:?} at {:?}", f.kind, f.at);
        match f.kind {
            FaultKind::KillReplicate => {
                rep.kill().await;
                rep.start()?;
            }
            FaultKind::StopReplicate => {
                rep.stop().await?;
                rep.start()?;
            }
            FaultKind::RestartTarget => env.target.restart().await?,
            FaultKind::Reshard => env.target.reshard(f.slots).await?,
            FaultKind::Failover => env.target.failover().await?,
        }
    }

    // Live writes to their end (a failed writer fails the scenario).
    let mut load_line = String::new();
    if let Some(h) = load {
        let (n, secs) = h.await.context("load task")?.context("live writes")?;
        load_line = format!("{n} live writes in {secs:.1} s");
    }

    // Completion from positions.
    let replay_lsns = match sc.source {
        SourceKind::Replay => Some(super::replay::final_lsns(&env.root.join(sc.replay.as_ref().context("replay")?))?),
        _ => None,
    };
    let t0 = Instant::now();
    let end = tokio::time::Instant::now() + deadline;
    let caught = loop {
        let s = observe(rep)?;
        let want = match &replay_lsns {
            Some(v) => v.clone(),
            None => source_offsets(&src).await?,
        };
        if let Some(s) = &s {
            let f = flows(s);
            let ok = all_stable(s)
                && f.len() == want.len()
                && f.iter().zip(&want).all(|(x, w)| {
                    x["lsn_confirmed"].as_u64().unwrap_or(0) >= *w && x["lsn_acked"].as_u64().unwrap_or(0) >= *w
                });
            if ok {
                break want;
            }
        }
        if tokio::time::Instant::now() >= end {
            let line = s.map(|s| status_line(&s)).unwrap_or_else(|| "no status file".into());
            bail!("not caught up within {} s: source at {want:?}, df2redis: {line}", sc.timeout_secs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let catch_up = t0.elapsed().as_secs_f64();

    // Verify against the source (or, for a replay, a reference loaded from expected-final).
    let verify_src = match &sc.source {
        SourceKind::Replay => {
            let capture = env.root.join(sc.replay.as_ref().context("replay")?);
            let (addr, r) = env.reference(&capture).await?;
            println!(
                "    reference: {} keys from expected-final ({} expired since the capture, {} of Dragonfly-only types)",
                r.keys, r.expired, r.dragonfly_only
            );
            addr
        }
        _ => src.clone(),
    };
    let verdict = verify(bins, &verify_src, &tgt, dir, &sc.expect.allow).await?;

    // Clean stop, then the expectations on sessions.
    if !keep {
        rep.stop().await?;
    }
    let t = rep.totals();
    if let Some(n) = sc.expect.full_syncs {
        if t.full_syncs != n {
            bail!("expected {n} full sync(s), df2redis reported {}", t.full_syncs);
        }
    }
    if t.partial_syncs < sc.expect.partial_syncs_min {
        bail!(
            "expected at least {} partial sync(s) (resume), df2redis reported {}",
            sc.expect.partial_syncs_min,
            t.partial_syncs
        );
    }
    *detail = format!(
        "{}{}{}caught up at LSNs {:?} {:.1} s after the last write; {} df2redis process(es), {} full / {} partial syncs; {verdict}",
        if keys > 0 { format!("{keys} keys loaded; ") } else { String::new() },
        if load_line.is_empty() { String::new() } else { load_line.clone() },
        match before_stable {
            Some(n) if !load_line.is_empty() => format!(" ({n} before stable sync); "),
            _ if !load_line.is_empty() => "; ".into(),
            _ => String::new(),
        },
        caught,
        catch_up,
        rep.starts,
        t.full_syncs,
        t.partial_syncs
    );
    Ok(())
}

fn status_line(s: &serde_json::Value) -> String {
    flows(s)
        .iter()
        .map(|f| {
            format!(
                "flow{} {} confirmed={} acked={} master={}",
                f["flow"],
                f["phase"].as_str().unwrap_or("?"),
                f["lsn_confirmed"],
                f["lsn_acked"],
                f["lsn_master"]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn wait_state<F>(
    rep: &mut Replicator,
    observe: &mut impl FnMut(&mut Replicator) -> Result<Option<serde_json::Value>>,
    what: &str,
    deadline: Duration,
    mut pred: F,
) -> Result<()>
where
    F: FnMut(&serde_json::Value, &Replicator) -> bool,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(s) = observe(rep)? {
            if pred(&s, rep) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= end {
            bail!("timed out after {} s waiting for {what}", deadline.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `df2redis verify --mode full`; differences other than `allow` (`db:key`) fail.
async fn verify(bins: &Bins, src: &str, tgt: &str, dir: &Path, allow: &[String]) -> Result<String> {
    let out_dir = dir.join("verify");
    let log = dir.join("verify.log");
    let mut c = Command::new(&bins.df2redis);
    c.args(["verify", "--mode", "full", "--no-progress", "--compare-times", "3", "--interval", "0.5"])
        .args(["--source-addr", src, "--target-addr", tgt])
        .arg("--result-dir")
        .arg(&out_dir);
    let mut p = Proc::spawn("df2redis verify", c, &log)?;
    let st = tokio::time::timeout(Duration::from_secs(600), p.child.wait())
        .await
        .context("df2redis verify did not finish within 600 s")??;
    let report: serde_json::Value = match std::fs::read_to_string(out_dir.join("report.json")) {
        Ok(t) => serde_json::from_str(&t)?,
        Err(_) => bail!("df2redis verify exited with {st} and wrote no report: {}", last_error_line(&log)),
    };
    let diffs = report["diffs"].as_array().cloned().unwrap_or_default();
    let unexpected: Vec<String> = diffs
        .iter()
        .map(|d| {
            (format!("{}:{}", d["db"], d["key"].as_str().unwrap_or("")), d["kind"].as_str().unwrap_or("?").to_string())
        })
        .filter(|(k, _)| !allow.contains(k))
        .map(|(k, kind)| format!("{k} ({kind})"))
        .collect();
    let checked = report["source_keys"].as_u64().unwrap_or(0);
    if !unexpected.is_empty() {
        let shown: Vec<&String> = unexpected.iter().take(5).collect();
        bail!(
            "df2redis verify: {} unexpected difference(s) of {checked} keys, e.g. {shown:?} (report {})",
            unexpected.len(),
            out_dir.join("report.json").display()
        );
    }
    if !st.success() && diffs.is_empty() {
        bail!("df2redis verify exited with {st}: {}", last_error_line(&log));
    }
    Ok(if diffs.is_empty() {
        format!("verify: equal ({checked} keys)")
    } else {
        format!("verify: equal except {} documented difference(s) ({checked} keys)", diffs.len())
    })
}

/// Source and target of one run, for the description line.
impl Source {
    pub fn describe(&self) -> String {
        self.kind.clone()
    }
}

impl Target {
    pub fn describe(&self) -> String {
        self.kind()
    }
}
