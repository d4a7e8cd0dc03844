//! The `verify` subcommand (alias `check`, with the Go df2redis flags): arguments, settings
//! resolution (flags > config file `verify:` > defaults), the run, output and exit code
//! (0 equal, 1 differences, 2 error).

use super::engine::{Engine, EngineError, Settings};
use super::glob::Patterns;
use super::model::{Depth, KeyType};
use super::progress::Progress;
use super::redis_store::RedisStore;
use super::report::Report;
use super::rounds;
use super::store::StoreError;
use crate::config::{validate, Config, ConfigArgs, ConfigError, VerifyMode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `df2redis verify` / `df2redis check`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// Config file and connection overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// keys (alias outline) | meta (alias length) | full | smart.
    #[arg(long)]
    pub mode: Option<String>,
    /// Read rate limit per side, ops/s (0 = unlimited).
    #[arg(long)]
    pub qps: Option<u64>,
    /// Pipelined batches in flight per side.
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Rounds: differing keys are re-checked this many times in all; only persistent ones reported.
    #[arg(long = "compare-times", visible_alias = "rounds")]
    pub compare_times: Option<u32>,
    /// Seconds between rounds.
    #[arg(long)]
    pub interval: Option<f64>,
    /// Directory for report.json, summary.txt, repair.jsonl.
    #[arg(long)]
    pub result_dir: Option<PathBuf>,
    /// Check at most this many keys per direction (0 = all).
    #[arg(long)]
    pub max_keys: Option<u64>,
    /// Quick look: check only N keys per direction (same as --max-keys N).
    #[arg(long)]
    pub sample: Option<u64>,
    /// Key patterns (glob); repeat or separate with '|'.
    #[arg(long)]
    pub filter: Vec<String>,
    /// Databases to check (repeatable; default all).
    #[arg(long = "db")]
    pub dbs: Vec<u32>,
    /// Types to check: string, list, set, zset, hash, stream (repeatable).
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// TTL tolerance in milliseconds.
    #[arg(long)]
    pub ttl_tolerance_ms: Option<u64>,
    /// Containers with more elements than this are compared in chunks.
    #[arg(long)]
    pub big_key_threshold: Option<u64>,
    /// Keys per SCAN / pipeline batch.
    #[arg(long, default_value_t = 512)]
    pub batch_size: usize,
    /// Do not scan the target for keys the source lacks.
    #[arg(long)]
    pub no_extras: bool,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Write the repair list (JSON lines: db, key, key_hex) to this file.
    #[arg(long)]
    pub repair_list: Option<PathBuf>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Verify failed to run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A side failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Writing reports failed.
    #[error("writing reports: {0}")]
    Io(#[from] std::io::Error),
}

/// What a run needs, resolved from config + flags.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The validated config (source, target...).
    pub config: Config,
    /// Engine settings.
    pub settings: Settings,
    /// Mode name for reports.
    pub mode: VerifyMode,
    /// Rounds.
    pub rounds: u32,
    /// Interval between rounds.
    pub interval: Duration,
}

fn bad(path: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { file: "flags".into(), path: path.into(), reason: reason.into() }
}

impl VerifyArgs {
    /// Merges flags over the config file's `verify:` section and validates.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        let (mut raw, name) = self.config.raw()?;
        let v = raw.verify.get_or_insert_with(Default::default);
        if let Some(m) = &self.mode {
            v.mode = Some(m.clone());
        }
        if let Some(q) = self.qps {
            v.qps = Some(q);
        }
        if let Some(p) = self.parallel {
            v.parallel = Some(p as u64);
        }
        if let Some(c) = self.compare_times {
            v.compare_times = Some(u64::from(c));
        }
        if let Some(i) = self.interval {
            v.interval_seconds = Some(i);
        }
        if let Some(d) = &self.result_dir {
            v.result_dir = Some(d.clone());
        }
        if let Some(m) = self.sample.or(self.max_keys) {
            v.max_keys = Some(m);
        }
        if !self.filter.is_empty() {
            v.filter = Some(self.filter.clone());
        }
        if !self.dbs.is_empty() {
            v.dbs = Some(self.dbs.clone());
        }
        if !self.types.is_empty() {
            v.types = Some(self.types.clone());
        }
        if let Some(t) = self.ttl_tolerance_ms {
            v.ttl_tolerance_ms = Some(t);
        }
        if let Some(b) = self.big_key_threshold {
            v.big_key_threshold = Some(b);
        }
        let config = validate(&raw, &name)?;
        if config.target.is_none() {
            return Err(bad("target", "missing (give target.addr in the file or --target-addr)"));
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(bad("--batch-size", "must be 1..=100000"));
        }
        let vs = &config.verify;
        let settings = Settings {
            depth: match vs.mode {
                VerifyMode::Keys => Depth::Keys,
                VerifyMode::Meta => Depth::Meta,
                VerifyMode::Full | VerifyMode::Smart => Depth::Full,
            },
            smart: vs.mode == VerifyMode::Smart,
            ttl_tolerance_ms: i64::try_from(vs.ttl_tolerance.as_millis()).unwrap_or(i64::MAX),
            big_threshold: vs.big_key_threshold,
            chunk: vs.big_key_threshold.clamp(16, 4096),
            batch: self.batch_size,
            parallel: vs.parallel,
            qps: vs.qps,
            patterns: Patterns::parse(&vs.filter),
            types: vs.types.iter().filter_map(|t| KeyType::from_name(t)).collect(),
            dbs: vs.dbs.clone(),
            max_keys: vs.max_keys,
            extras: !self.no_extras,
        };
        Ok(Plan { mode: vs.mode, rounds: vs.compare_times, interval: vs.interval, settings, config })
    }
}

/// Runs a plan against real servers and returns the report.
pub async fn execute(plan: &Plan, progress: Progress) -> Result<Report, VerifyError> {
    let target_ep = plan.config.target.as_ref().ok_or_else(|| bad("target", "missing"))?;
    for (name, ep) in [("source", &plan.config.source), ("target", target_ep)] {
        if ep.tls.enabled && ep.tls.insecure_skip_verify {
            crate::resp::tls::warn_insecure(name);
        }
    }
    let (src, tgt) =
        tokio::join!(RedisStore::connect("source", &plan.config.source), RedisStore::connect("target", target_ep));
    let (src, tgt) = (Arc::new(src?), Arc::new(tgt?));
    let describe = |s: &RedisStore, ep: &crate::config::Endpoint| {
        if s.is_cluster() {
            format!("{ep} (cluster, {} masters)", s.masters().len())
        } else {
            ep.to_string()
        }
    };
    let (sd, td) = (describe(&src, &plan.config.source), describe(&tgt, target_ep));
    let engine = Engine::new(src, tgt, plan.settings.clone(), progress.clone());
    let start = Instant::now();
    let mut first_pass = None;
    let out = rounds::run(&engine, plan.rounds, plan.interval, |round, diffs| {
        if round == 1 {
            first_pass = Some(start.elapsed());
        }
        tracing::info!(round, differing = rounds::keys_of(diffs).len(), "verify round done");
    })
    .await?;
    progress.finish();
    let stats = &engine.stats;
    use std::sync::atomic::Ordering::Relaxed;
    Ok(Report {
        mode: format!("{:?}", plan.mode).to_lowercase(),
        source: sd,
        target: td,
        rounds: out.per_round,
        source_keys: stats.source_keys.load(Relaxed),
        target_keys: stats.target_keys.load(Relaxed),
        big_keys: stats.big_keys.load(Relaxed),
        elapsed_secs: first_pass.unwrap_or_else(|| start.elapsed()).as_secs_f64(),
        diffs: out.diffs,
    })
}

/// Runs `verify` with these arguments inside an existing runtime; prints the summary (or JSON)
/// and writes files. Returns the exit code.
pub async fn run_async(args: VerifyArgs) -> ExitCode {
    match run_inner(&args).await {
        Ok(r) if r.diffs.is_empty() => ExitCode::from(0),
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("df2redis verify: error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(args: &VerifyArgs) -> Result<Report, VerifyError> {
    let plan = args.plan()?;
    let report = execute(&plan, Progress::new(!args.no_progress && !args.json)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json()).unwrap_or_default());
    } else {
        print!("{}", report.human(10));
    }
    if let Some(dir) = &plan.config.verify.result_dir {
        let w = report.write_dir(dir)?;
        if !args.json {
            println!("report: {}", w.json.display());
        }
    }
    if let Some(p) = &args.repair_list {
        std::fs::write(p, report.repair_list())?;
    }
    Ok(report)
}

/// Entry point for the binary: builds a runtime, runs, returns 0 (equal), 1 (differences) or
/// 2 (error).
pub fn run(args: VerifyArgs) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run_async(args)),
        Err(e) => {
            eprintln!("df2redis verify: error: cannot start runtime: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        v: VerifyArgs,
    }

    #[test]
    fn go_check_flags_parse_and_resolve() {
        let cli = Cli::try_parse_from([
            "check",
            "--source-addr",
            "127.0.0.1:1",
            "--target-addr",
            "127.0.0.1:2",
            "--mode",
            "outline",
            "--qps",
            "1000",
            "--parallel",
            "8",
            "--compare-times",
            "3",
            "--interval",
            "5",
            "--result-dir",
            "/tmp/x",
            "--max-keys",
            "10",
            "--filter",
            "user:*|session:*",
        ])
        .unwrap();
        let p = cli.v.plan().unwrap();
        assert_eq!(p.settings.depth, Depth::Keys);
        assert_eq!(p.settings.qps, Some(1000));
        assert_eq!(p.settings.parallel, 8);
        assert_eq!(p.rounds, 3);
        assert_eq!(p.interval, Duration::from_secs(5));
        assert_eq!(p.settings.max_keys, 10);
        assert_eq!(p.settings.patterns.0.len(), 2);
        assert_eq!(p.config.verify.result_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn missing_target_and_bad_mode_are_errors() {
        let cli = Cli::try_parse_from(["verify", "--source-addr", "127.0.0.1:1"]).unwrap();
        assert!(cli.v.plan().unwrap_err().to_string().contains("target"));
        let cli =
            Cli::try_parse_from(["verify", "--source-addr", "a:1", "--target-addr", "b:2", "--mode", "x"]).unwrap();
        assert!(cli.v.plan().unwrap_err().to_string().contains("verify.mode"));
    }

    #[tokio::test]
    async fn unreachable_server_exits_2() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cli = Cli::try_parse_from([
            "verify",
            "--source-addr",
            &format!("127.0.0.1:{port}"),
            "--target-addr",
            &format!("127.0.0.1:{port}"),
            "--no-progress",
        ])
        .unwrap();
        assert_eq!(run_async(cli.v).await, ExitCode::from(2));
    }
}
