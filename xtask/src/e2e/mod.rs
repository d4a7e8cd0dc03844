//! `cargo xtask e2e`: data-driven end-to-end scenarios (`tests/e2e/scenarios/*.toml`) — a source,
//! a target, `df2redis replicate` with live writes and faults, then `df2redis verify` — on local
//! processes or containers. See docs/e2e.md.

mod containers;
mod data;
mod env;
mod procs;
mod replay;
mod run;
mod scenario;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use env::{Backend, Env};
use run::{Bins, Held, Outcome, Verdict};
use scenario::Scenario;

pub const USAGE: &str = "\
usage: cargo xtask e2e [--list] [--scenario NAME]... [--backend auto|local|containers] [--keep]
                       [--ci] [--debug] [--dragonfly PATH] [--dragonfly-image IMAGE]
                       [--redis-image IMAGE] [--mock-image IMAGE]
       cargo xtask e2e-images      build the local images (redis, mock-master) with docker import
";

/// Parsed `e2e` flags.
#[derive(Debug, Default)]
pub struct Args {
    pub list: bool,
    pub scenarios: Vec<String>,
    pub backend: String,
    pub keep: bool,
    pub ci: bool,
    pub debug: bool,
    pub dragonfly: Option<PathBuf>,
    pub dragonfly_image: Option<String>,
    pub redis_image: Option<String>,
    pub mock_image: Option<String>,
    /// Print each scenario's verify summary (the demo).
    pub verbose: bool,
}

pub fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args { backend: "auto".into(), ..Args::default() };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        let mut val = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n{USAGE}"));
        match x.as_str() {
            "--list" => a.list = true,
            "--scenario" => a.scenarios.push(val("--scenario")?),
            "--backend" => a.backend = val("--backend")?,
            "--keep" => a.keep = true,
            "--ci" => a.ci = true,
            "--debug" => a.debug = true,
            "--dragonfly" => a.dragonfly = Some(PathBuf::from(val("--dragonfly")?)),
            "--dragonfly-image" => a.dragonfly_image = Some(val("--dragonfly-image")?),
            "--redis-image" => a.redis_image = Some(val("--redis-image")?),
            "--mock-image" => a.mock_image = Some(val("--mock-image")?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    if !["auto", "local", "containers"].contains(&a.backend.as_str()) {
        bail!("--backend {:?}: expected auto, local or containers", a.backend);
    }
    Ok(a)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Builds `df2redis` and `mock-master` (release unless `debug`) and returns their paths.
pub fn build_bins(root: &Path, debug: bool) -> Result<Bins> {
    let mut c = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(["build", "-p", "df2redis", "-p", "mock-master", "--bins"]);
    if !debug {
        c.arg("--release");
    }
    println!("==> building the binaries: {}", crate::describe(&c));
    let st = c.status().context("running cargo build")?;
    if !st.success() {
        bail!("cargo build failed ({st})");
    }
    let dir = target_dir(root).join(if debug { "debug" } else { "release" });
    Ok(Bins { df2redis: dir.join("df2redis"), mock_master: dir.join("mock-master") })
}

/// `cargo xtask e2e-images`.
pub fn images(root: &Path) -> Result<()> {
    if !containers::engine_answers() {
        bail!("no Docker engine answers (`docker info` failed); see docs/e2e.md");
    }
    let bins = build_bins(root, false)?;
    let redis = procs::on_path("redis-server").context("redis-server is not on PATH (apt-get install redis-server)")?;
    let mut redis_bins = vec![redis];
    redis_bins.extend(procs::on_path("redis-cli"));
    let work = target_dir(root).join("e2e-images");
    std::fs::create_dir_all(&work)?;
    containers::build_image(containers::REDIS_IMAGE, &redis_bins, &work)?;
    println!("==> built {}", containers::REDIS_IMAGE);
    containers::build_image(containers::MOCK_IMAGE, &[bins.mock_master], &work)?;
    println!("==> built {}", containers::MOCK_IMAGE);
    Ok(())
}

fn choose_backend(a: &Args, root: &Path) -> Result<Backend> {
    let env_or =
        |flag: &Option<String>, var: &str| flag.clone().or_else(|| std::env::var(var).ok().filter(|s| !s.is_empty()));
    let docker = || -> Result<Backend> {
        let d = containers::Docker {
            redis_image: env_or(&a.redis_image, "DF2REDIS_E2E_REDIS_IMAGE")
                .unwrap_or_else(|| containers::REDIS_IMAGE.into()),
            mock_image: env_or(&a.mock_image, "DF2REDIS_E2E_MOCK_IMAGE")
                .unwrap_or_else(|| containers::MOCK_IMAGE.into()),
            dragonfly_image: None,
        };
        if !containers::image_exists(&d.redis_image) || !containers::image_exists(&d.mock_image) {
            println!("==> local images missing: building them (cargo xtask e2e-images)");
            images(root)?;
        }
        let df = env_or(&a.dragonfly_image, "DF2REDIS_E2E_DRAGONFLY_IMAGE")
            .unwrap_or_else(|| "docker.dragonflydb.io/dragonflydb/dragonfly:v1.40.1".into());
        let dragonfly_image = if containers::image_exists(&df) {
            println!("==> source: Dragonfly image {df}");
            Some(df)
        } else {
            println!("==> source: Dragonfly image {df} is not available locally; the mock master image stands in");
            None
        };
        Ok(Backend::Containers(containers::Docker { dragonfly_image, ..d }))
    };
    let local = || -> Result<Backend> {
        let redis = procs::require_redis()?;
        let dragonfly = a.dragonfly.clone().or_else(|| procs::on_path("dragonfly"));
        match &dragonfly {
            Some(p) => println!("==> source: dragonfly binary {}", p.display()),
            None => println!("==> source: no dragonfly binary (--dragonfly PATH or on PATH): the mock master"),
        }
        println!("==> target: {redis}");
        Ok(Backend::Local { dragonfly })
    };
    match a.backend.as_str() {
        "containers" => {
            if !containers::engine_answers() {
                bail!("--backend containers: no Docker engine answers (`docker info` failed)");
            }
            println!("==> backend: containers");
            docker()
        }
        "local" => {
            println!("==> backend: local processes");
            local()
        }
        _ => {
            if containers::engine_answers() {
                println!("==> backend: containers (auto: a Docker engine answers)");
                docker()
            } else {
                println!("==> backend: local processes (auto: no Docker engine answers)");
                local()
            }
        }
    }
}

/// `cargo xtask e2e …`; returns whether every scenario passed.
pub fn main(root: &Path, a: Args) -> Result<bool> {
    let all = scenario::load_all(root)?;
    if a.list {
        for s in &all {
            println!(
                "{:<26} {:<10} {:<4} {}",
                s.name,
                format!("{:?}", s.target).to_lowercase(),
                if s.ci { "ci" } else { "" },
                s.description
            );
        }
        return Ok(true);
    }
    let mut chosen: Vec<Scenario> = Vec::new();
    for name in &a.scenarios {
        let s = all.iter().find(|s| &s.name == name).with_context(|| {
            format!(
                "no scenario {name:?}; --list shows: {}",
                all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        chosen.push(s.clone());
    }
    if chosen.is_empty() {
        chosen = all.into_iter().filter(|s| !a.ci || s.ci).collect();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_all(root, &a, chosen))
}

async fn run_all(root: &Path, a: &Args, chosen: Vec<Scenario>) -> Result<bool> {
    let backend = choose_backend(a, root)?;
    let bins = build_bins(root, a.debug)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let logs = target_dir(root).join("e2e").join(format!("{stamp}-{}", backend.name()));
    std::fs::create_dir_all(&logs)?;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut kept: Vec<(String, Held)> = Vec::new();
    let total = Instant::now();
    for sc in &chosen {
        let dir = logs.join(&sc.name);
        std::fs::create_dir_all(&dir)?;
        println!("==> scenario {}: {}", sc.name, sc.description);
        let started = Instant::now();
        let mut held = Held::default();
        let out = match Env::start(root, sc, &backend, &bins, &dir).await {
            Ok(env) => run::run(sc, env, &bins, &dir, &mut held, a.keep).await,
            Err(e) => Outcome {
                name: sc.name.clone(),
                verdict: Verdict::Fail(format!("{e:#}")),
                secs: started.elapsed().as_secs_f64(),
                detail: String::new(),
                logs: dir.clone(),
            },
        };
        match &out.verdict {
            Verdict::Pass => {
                println!("==> PASS {} ({:.1} s): {} — logs {}", out.name, out.secs, out.detail, out.logs.display())
            }
            Verdict::Fail(r) => {
                println!("==> FAIL {} ({:.1} s): {r} — logs {}", out.name, out.secs, out.logs.display())
            }
        }
        if a.verbose {
            if let Ok(s) = std::fs::read_to_string(dir.join("verify.log")) {
                println!("---- df2redis verify ----\n{}-------------------------", s);
            }
        }
        if a.keep {
            kept.push((sc.name.clone(), held));
        }
        outcomes.push(out);
    }
    println!(
        "==> e2e summary ({} backend, {:.0} s, logs under {}):",
        backend.name(),
        total.elapsed().as_secs_f64(),
        logs.display()
    );
    println!("    {:<26} {:<6} {:>8}  detail", "scenario", "result", "seconds");
    for o in &outcomes {
        let (res, why) = match &o.verdict {
            Verdict::Pass => ("PASS", o.detail.clone()),
            Verdict::Fail(r) => ("FAIL", r.clone()),
        };
        let why: String = why.chars().take(160).collect();
        println!("    {:<26} {:<6} {:>8.1}  {}", o.name, res, o.secs, why);
    }
    let failed = outcomes.iter().filter(|o| o.verdict != Verdict::Pass).count();
    println!("    {} passed, {failed} failed", outcomes.len() - failed);
    if a.keep && !kept.is_empty() {
        println!("==> --keep: everything is still running:");
        for (name, h) in &kept {
            println!("    {name}: {}", h.info);
        }
        println!("==> press Enter (or Ctrl-C) to stop them");
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    }
    drop(kept);
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
    }

    #[test]
    fn every_scenario_file_parses_and_the_required_ones_exist() {
        let all = scenario::load_all(&root()).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "smoke",
            "all-types",
            "big-keys",
            "live-writes",
            "kill-and-resume",
            "cluster-reshard",
            "cluster-failover",
            "demo",
        ] {
            assert!(names.contains(&want), "missing scenario {want}: {names:?}");
        }
        // One replay scenario per real capture.
        let corpus = root().join("corpus/dragonfly-v1.40.1");
        for e in std::fs::read_dir(&corpus).unwrap() {
            let p = e.unwrap().path();
            if p.join("capture.json").is_file() {
                let rel = p.strip_prefix(root()).unwrap().to_path_buf();
                assert!(
                    all.iter().any(|s| s.replay.as_ref() == Some(&rel)),
                    "no replay scenario for {}",
                    rel.display()
                );
            }
        }
    }

    #[test]
    fn bad_scenarios_are_rejected_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("xtask-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = [
            ("description = \"x\"\nsource = \"replay\"\n", "needs `replay"),
            ("description = \"x\"\n[[faults]]\nkind = \"reshard\"\n", "needs target"),
            ("description = \"x\"\ntarget = \"cluster\"\n[[dataset]]\ndb = 3\nprefix = \"p\"\ncount = 1\ntypes = [\"string\"]\n", "only db 0"),
            ("description = \"x\"\n[[dataset]]\nprefix = \"p\"\ncount = 1\ntypes = [\"json\"]\n", "dataset type"),
            ("description = \"x\"\nbogus = 1\n", "unknown field"),
        ];
        for (i, (text, why)) in bad.iter().enumerate() {
            let p = dir.join(format!("bad{i}.toml"));
            std::fs::write(&p, text).unwrap();
            let e = format!("{:#}", scenario::load(&p).unwrap_err());
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags_parse() {
        let a = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let x = a(&["--scenario", "smoke", "--scenario", "demo", "--backend", "local", "--keep", "--debug"]).unwrap();
        assert_eq!(x.scenarios, vec!["smoke", "demo"]);
        assert_eq!(x.backend, "local");
        assert!(x.keep && x.debug && !x.list);
        assert_eq!(a(&[]).unwrap().backend, "auto");
        assert!(a(&["--backend", "cloud"]).is_err());
        assert!(a(&["--scenario"]).is_err());
        assert!(a(&["--nope"]).is_err());
    }

    #[test]
    fn generator_is_deterministic() {
        let (mut a, mut b) = (data::Rng::new(5), data::Rng::new(5));
        assert_eq!(a.text(32), b.text(32));
        assert_ne!(a.next(), data::Rng::new(6).next());
        assert!((0..1000).map(|_| a.unit()).all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn error_lines_lose_their_colours() {
        let dir = std::env::temp_dir().join(format!("xtask-e2e-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.log");
        std::fs::write(&p, "a\n\u{1b}[31mERROR\u{1b}[0m boom\nlast\n").unwrap();
        assert_eq!(run::last_error_line(&p), "ERROR boom");
        std::fs::write(&p, "one\ntwo\n").unwrap();
        assert_eq!(run::last_error_line(&p), "two");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
