//! Project automation: `cargo xtask ci | demo | e2e | e2e-images | fuzz | fuzz-seeds | bench`.
//!
//! `ci` is what `.ci/run` executes after installing system packages; every step prints its
//! command and duration, and the run ends with a summary table.

mod e2e;
mod seeds;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Every cargo-fuzz target; `fuzz/fuzz_targets/<name>.rs` must exist for each, and no other.
pub const FUZZ_TARGETS: &[&str] =
    &["rdb_decoder", "flow_decoder", "journal_decoder", "packed_int", "lzf", "compressed_blocks", "value_round_trip"];

/// Seconds each fuzz target runs in `cargo xtask ci`.
const CI_FUZZ_SECONDS: u64 = 20;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                         one-command run: release build, local redis-server, mock master with a
                               sample dataset and live writes, `df2redis replicate`, then `df2redis verify`
  e2e [--list] [--scenario N]  end-to-end scenarios (tests/e2e/scenarios) on local processes or
      [--backend B] [--keep]   containers; `cargo xtask e2e --help`, docs/e2e.md
  e2e-images                   build the local Docker images the containers backend uses
  ci                           fmt check, clippy, tests, local e2e scenarios marked ci, fuzz smoke
                               (20 s per target)
  fuzz [TARGET] [--seconds N]  run one fuzz target (or all) for N seconds each (default 300)
  fuzz-seeds                   copy corpus/ files into fuzz/corpus/<target>/ as seeds
  bench                        run `cargo bench` and print the throughput figures
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("fuzz") => {
            let (target, seconds) = parse_fuzz_args(&args[1..])?;
            let fuzz = FuzzToolchain::detect();
            seeds::write_all(&root)?;
            let mut steps = Steps::default();
            steps.run("fuzz build", fuzz.cargo(&["build"]))?;
            let targets: Vec<&str> = match &target {
                Some(t) => vec![t.as_str()],
                None => FUZZ_TARGETS.to_vec(),
            };
            for t in targets {
                steps.run(&format!("fuzz {t} ({seconds} s)"), fuzz.run_cmd(t, seconds))?;
            }
            steps.summary();
            Ok(())
        }
        Some("fuzz-seeds") => {
            let n = seeds::write_all(&root)?;
            println!("wrote {n} seed files under fuzz/corpus/");
            Ok(())
        }
        Some("bench") => bench(),
        Some("demo") => demo(&root),
        Some("e2e") => {
            let a = e2e::parse(&args[1..])?;
            if e2e::main(&root, a)? {
                Ok(())
            } else {
                bail!("some e2e scenarios failed (see the summary above)")
            }
        }
        Some("e2e-images") => e2e::images(&root),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn parse_fuzz_args(args: &[String]) -> Result<(Option<String>, u64)> {
    let mut target = None;
    let mut seconds = 300;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            let v = it.next().context("--seconds needs a number")?;
            seconds = v.parse().with_context(|| format!("--seconds {v:?} is not a number"))?;
        } else if FUZZ_TARGETS.contains(&a.as_str()) && target.is_none() {
            target = Some(a.clone());
        } else {
            bail!("unexpected argument {a:?}; targets: {}", FUZZ_TARGETS.join(", "));
        }
    }
    Ok((target, seconds))
}

fn ci(root: &Path) -> Result<()> {
    check_fuzz_target_list(root)?;
    let mut steps = Steps::default();
    steps.run("fmt", cargo(&["fmt", "--all", "--", "--check"]))?;
    steps.run("fmt fuzz", cargo(&["fmt", "--manifest-path", "fuzz/Cargo.toml", "--all", "--", "--check"]))?;
    steps.run("clippy", cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The codec alone (what the fuzz crate links): catches a module added outside the `runtime` gate.
    steps.run(
        "codec-only build",
        cargo(&["clippy", "-p", "df2redis", "--lib", "--no-default-features", "--", "-D", "warnings"]),
    )?;
    let mut test = cargo(&["test", "--workspace"]);
    test.env("INSTA_UPDATE", "no");
    let counts = steps.run_counting_tests("test", test)?;
    // The local-backend e2e scenarios marked `ci = true`, on the debug binaries the tests built.
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut e2e = Command::new(me);
    e2e.args(["e2e", "--ci", "--backend", "local", "--debug"]);
    steps.run("e2e (local backend, ci scenarios)", e2e)?;
    let n = seeds::write_all(root)?;
    println!("==> fuzz seeds: {n} files under fuzz/corpus/");
    let fuzz = FuzzToolchain::detect();
    steps.run("fuzz build", fuzz.cargo(&["build"]))?;
    for t in FUZZ_TARGETS {
        steps.run(&format!("fuzz {t} ({CI_FUZZ_SECONDS} s)"), fuzz.run_cmd(t, CI_FUZZ_SECONDS))?;
    }
    // Benches and examples are type-checked by clippy's `--all-targets` above; building them in
    // release here would cost ~10 minutes of CI for no further check.
    steps.summary();
    // The last line: the whole test suite's count (cargo's own last line is a doc-test
    // binary's, often "0 passed").
    println!("tests: {} passed, {} failed, {} skipped", counts.passed, counts.failed, counts.ignored);
    Ok(())
}

/// Totals of cargo test's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestCounts {
    /// Adds `test result: ok. 97 passed; 0 failed; 1 ignored; 0 measured; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { return };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (n, what) = match words.as_slice() {
                [_, n, what] | [n, what] => (n, what),
                _ => continue,
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match *what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Fails when `FUZZ_TARGETS` and the files under `fuzz/fuzz_targets/` disagree.
fn check_fuzz_target_list(root: &Path) -> Result<()> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rs") {
            on_disk.push(stem.to_string());
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = FUZZ_TARGETS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    if on_disk != listed {
        bail!("fuzz targets on disk {on_disk:?} differ from xtask's FUZZ_TARGETS {listed:?}");
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    c
}

/// How to invoke cargo-fuzz: nightly with AddressSanitizer when a nightly toolchain is
/// installed, otherwise the stable toolchain without a sanitizer (`-s none`).
struct FuzzToolchain {
    nightly: bool,
}

impl FuzzToolchain {
    fn detect() -> Self {
        let nightly =
            Command::new("cargo").args(["+nightly", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
        if nightly {
            println!("==> fuzzing with the nightly toolchain and AddressSanitizer");
        } else {
            println!("==> no nightly toolchain: fuzzing on stable without a sanitizer (-s none)");
        }
        FuzzToolchain { nightly }
    }

    fn cargo(&self, args: &[&str]) -> Command {
        // Plain `cargo` (not $CARGO): the rustup proxy must pick the toolchain.
        let mut c = Command::new("cargo");
        c.env_remove("CARGO").env_remove("RUSTC").env_remove("RUSTUP_TOOLCHAIN");
        if self.nightly {
            c.arg("+nightly");
        }
        c.arg("fuzz");
        c.args(args);
        if !self.nightly {
            c.args(["-s", "none"]);
        }
        c
    }

    fn run_cmd(&self, target: &str, seconds: u64) -> Command {
        let mut c = self.cargo(&["run", target]);
        c.args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048", "-print_final_stats=1"]);
        c
    }
}

#[derive(Default)]
struct Steps {
    done: Vec<(String, Duration)>,
}

impl Steps {
    fn run(&mut self, name: &str, mut cmd: Command) -> Result<()> {
        println!("==> {name}: {}", describe(&cmd));
        let start = Instant::now();
        let status = cmd.status().with_context(|| format!("starting {name}"))?;
        let took = start.elapsed();
        println!("==> {name}: {} in {:.1} s", if status.success() { "ok" } else { "FAILED" }, took.as_secs_f64());
        if !status.success() {
            self.summary();
            bail!("step {name:?} failed ({status})");
        }
        self.done.push((name.to_string(), took));
        Ok(())
    }

    /// Like [`Steps::run`], echoing the command's stdout and totalling its test results.
    fn run_counting_tests(&mut self, name: &str, mut cmd: Command) -> Result<TestCounts> {
        use std::io::BufRead as _;
        println!("==> {name}: {}", describe(&cmd));
        let start = Instant::now();
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("starting {name}"))?;
        let mut counts = TestCounts::default();
        if let Some(out) = child.stdout.take() {
            for line in std::io::BufReader::new(out).lines() {
                let line = line.context("reading test output")?;
                counts.add_line(&line);
                println!("{line}");
            }
        }
        let status = child.wait().with_context(|| format!("waiting for {name}"))?;
        let took = start.elapsed();
        println!("==> {name}: {} in {:.1} s", if status.success() { "ok" } else { "FAILED" }, took.as_secs_f64());
        println!("==> {name}: {} passed, {} failed, {} ignored", counts.passed, counts.failed, counts.ignored);
        if !status.success() {
            self.summary();
            bail!("step {name:?} failed ({status})");
        }
        self.done.push((name.to_string(), took));
        Ok(counts)
    }

    fn summary(&self) {
        println!("==> step durations:");
        let mut total = Duration::ZERO;
        for (name, took) in &self.done {
            println!("    {name:<32} {:>8.1} s", took.as_secs_f64());
            total += *took;
        }
        println!("    {:<32} {:>8.1} s", "total", total.as_secs_f64());
    }
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `cargo xtask demo`: the `demo` scenario (every type, TTLs, several dbs, a big key, live
/// writes) on local processes with release binaries; prints `df2redis verify`'s report.
fn demo(root: &Path) -> Result<()> {
    let a = e2e::Args { scenarios: vec!["demo".into()], backend: "local".into(), verbose: true, ..Default::default() };
    if e2e::main(root, a)? {
        println!("==> demo finished: the target equals the source, every process stopped");
        Ok(())
    } else {
        bail!("the demo failed (see above)")
    }
}

/// Runs the criterion benches and repeats their throughput lines at the end.
fn bench() -> Result<()> {
    let start = Instant::now();
    let out = cargo(&["bench", "--bench", "decode"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting cargo bench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() {
        bail!("cargo bench failed ({})", out.status);
    }
    println!("==> throughput (criterion median), {:.0} s in all:", start.elapsed().as_secs_f64());
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("thrpt:") {
            // The "change" section repeats `thrpt:` with percentages; skip it.
            if !rest.contains('%') {
                println!("    {current:<48} {}", median_of_triplet(rest));
            }
        } else if let Some((name, _)) = line.split_once("time:") {
            if !name.trim().is_empty() {
                current = name.trim().to_string();
            }
        } else if !trimmed.is_empty() && !line.starts_with(' ') && !trimmed.contains(':') {
            // criterion prints long bench names on their own line before `time:`.
            current = trimmed.to_string();
        }
    }
    Ok(())
}

/// `[1.0 GiB/s 1.1 GiB/s 1.2 GiB/s]` → `1.1 GiB/s`.
fn median_of_triplet(s: &str) -> String {
    let parts: Vec<&str> = s.trim().trim_start_matches('[').trim_end_matches(']').split_whitespace().collect();
    match parts.as_slice() {
        [_, _, m, u, _, _] => format!("{m} {u}"),
        _ => s.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_middle_figure() {
        assert_eq!(median_of_triplet(" [1.0 GiB/s 1.1 GiB/s 1.2 GiB/s]"), "1.1 GiB/s");
        assert_eq!(median_of_triplet("[9.9 Melem/s 10.1 Melem/s 10.3 Melem/s]"), "10.1 Melem/s");
        assert_eq!(median_of_triplet("odd"), "odd");
    }

    #[test]
    fn test_counts_add_up() {
        let mut c = TestCounts::default();
        c.add_line("test result: ok. 97 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 6.15s");
        c.add_line("test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out");
        c.add_line("running 3 tests");
        assert_eq!(c, TestCounts { passed: 98, failed: 3, ignored: 2 });
    }

    #[test]
    fn fuzz_args() {
        let a = |v: &[&str]| parse_fuzz_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]).unwrap(), (None, 300));
        assert_eq!(a(&["lzf", "--seconds", "5"]).unwrap(), (Some("lzf".into()), 5));
        assert!(a(&["nope"]).is_err());
        assert!(a(&["--seconds"]).is_err());
    }

    #[test]
    fn fuzz_target_list_matches_the_files() {
        check_fuzz_target_list(&workspace_root()).unwrap();
    }
}
