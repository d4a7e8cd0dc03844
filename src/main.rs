//! The `df2redis` command line: a thin layer over the library (`replicate`, `verify`/`check`, `inspect`).

use std::collections::BTreeMap;
use std::io::{BufWriter, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::rdb::RdbDecoder;
use df2redis::proto::{DecodeError, ErrorKind, Event, Limits};
use serde_json::Value as Json;

mod inspect_json;

/// mimalloc: the cluster writer keeps each command until its node confirms it and then frees
/// them in bulk, which glibc's allocator pays for in consolidation (≈ a quarter of df2redis's
/// CPU in a full sync into a cluster).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "df2redis", version, about = "Replicate a live Dragonfly deployment into Redis or Redis Cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a Dragonfly master as a replica and keep a Redis target identical to it.
    Replicate(df2redis::replicate::ReplicateArgs),
    /// Compare source and target: keys, types, values and TTLs, both directions, in rounds.
    #[command(visible_alias = "check")]
    Verify(df2redis::verify::cli::VerifyArgs),
    /// Decode an RDB file, or a captured replication flow, and summarize it.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The file: an RDB file (Redis or Dragonfly), or with --flow the bytes of one DFLY FLOW
    /// connection (full sync, eof token, journal).
    file: PathBuf,
    /// Decode FILE as a captured flow rather than a plain RDB file.
    #[arg(long)]
    flow: bool,
    /// The flow's 40-character eof token (from the `DFLY FLOW` reply). When omitted, it is read
    /// from `capture.json` beside a file named `flow<i>.bin`.
    #[arg(long, requires = "flow", value_name = "HEX")]
    token: Option<String>,
    /// Print every event as one JSON object per line instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Why `inspect` failed.
#[derive(Debug)]
enum Failure {
    /// Bad arguments or an unreadable file.
    Usage(String),
    /// The bytes do not decode.
    Decode(DecodeError),
    /// Bytes after the end of an RDB file.
    Trailing(DecodeError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(s) => f.write_str(s),
            Failure::Decode(e) => write!(f, "decode error {e}"),
            Failure::Trailing(e) => write!(f, "decode error {e} (a captured flow? use --flow)"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replicate(args) => return replicate(args),
        Command::Verify(args) => return df2redis::verify::cli::run(args),
        Command::Inspect(args) => inspect(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("df2redis: {e}");
            ExitCode::from(2)
        }
    }
}

/// `replicate`: logs through tracing (`RUST_LOG` filter, default `info`; `DF2REDIS_LOG_FORMAT=json`
/// for JSON lines), runs until SIGINT/SIGTERM. Exit 0 after a clean stop, 2 on a fatal error.
/// Log settings: `log{dir,level,consoleEnabled,format}` from the config, `RUST_LOG` and
/// `DF2REDIS_LOG_FORMAT=json` override; console lines go above the progress bars on a TTY.
fn init_replicate_logs(args: &df2redis::replicate::ReplicateArgs, bars: Option<&df2redis::progress::Bars>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    // A config error is reported by `run` itself; logs then use the defaults.
    let cfg = args.config.load().ok();
    let log = cfg.as_ref().map(|c| c.log.clone());
    let level = log.as_ref().map_or("info", |l| match l.level {
        df2redis::config::LogLevel::Trace => "trace",
        df2redis::config::LogLevel::Debug => "debug",
        df2redis::config::LogLevel::Info => "info",
        df2redis::config::LogLevel::Warn => "warn",
        df2redis::config::LogLevel::Error => "error",
    });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = std::env::var("DF2REDIS_LOG_FORMAT")
        .map_or_else(|_| log.as_ref().is_some_and(|l| l.format == df2redis::config::LogFormat::Json), |v| v == "json");
    type Boxed = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;
    let mut layers: Vec<Boxed> = Vec::new();
    if log.as_ref().is_none_or(|l| l.console) {
        let l = tracing_subscriber::fmt::layer();
        layers.push(match (bars, json) {
            (Some(b), true) => l.json().with_writer(b.clone()).boxed(),
            (Some(b), false) => l.with_writer(b.clone()).boxed(),
            (None, true) => l.json().with_writer(std::io::stderr).boxed(),
            (None, false) => l.with_writer(std::io::stderr).boxed(),
        });
    }
    let mut file_err = None;
    if let (Some(dir), Some(c)) = (log.as_ref().and_then(|l| l.dir.clone()), cfg.as_ref()) {
        let path = dir.join(format!("df2redis-{}.log", c.task_name));
        match std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&path))
        {
            Ok(f) => {
                let l = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::sync::Mutex::new(f));
                layers.push(if json { l.json().boxed() } else { l.boxed() });
            }
            Err(e) => file_err = Some(format!("log file {}: {e}", path.display())),
        }
    }
    tracing_subscriber::registry().with(layers).with(filter).init();
    if let Some(e) = file_err {
        tracing::warn!("{e}; logging to the console only");
    }
}

fn replicate(args: df2redis::replicate::ReplicateArgs) -> ExitCode {
    let bars = df2redis::progress::Bars::for_stderr();
    init_replicate_logs(&args, bars.as_ref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("df2redis replicate: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let status = std::sync::Arc::new(df2redis::status::Status::default());
    let result = runtime.block_on(async {
        let shown = bars.as_ref().map(|b| b.spawn(status.clone()));
        let r = df2redis::replicate::run_status(args, status.clone()).await;
        if let Some(t) = shown {
            t.abort();
        }
        r
    });
    if let Some(b) = &bars {
        b.clear();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("df2redis replicate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Either decoder, behind one interface.
enum Decoder {
    Rdb(Box<RdbDecoder>),
    Flow(Box<FlowDecoder>),
}

impl Decoder {
    fn feed(&mut self, data: &[u8]) {
        match self {
            Decoder::Rdb(d) => d.feed(data),
            Decoder::Flow(d) => d.feed(data),
        }
    }
    fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        match self {
            Decoder::Rdb(d) => d.next_event(),
            Decoder::Flow(d) => d.next_event(),
        }
    }
    /// Checks the input ended cleanly; `total` is the number of bytes fed. An RDB file must
    /// end with its checksum: bytes after it are an error.
    fn finish(&self, total: u64) -> Result<(), Failure> {
        match self {
            Decoder::Rdb(d) => {
                d.finish().map_err(Failure::Decode)?;
                match total.checked_sub(d.offset()) {
                    Some(0) | None => Ok(()),
                    Some(n) => Err(Failure::Trailing(DecodeError::at(d.offset(), ErrorKind::Trailing(n)))),
                }
            }
            Decoder::Flow(d) => d.finish().map_err(Failure::Decode),
        }
    }
}

fn inspect(args: &InspectArgs) -> Result<(), Failure> {
    let limits = Limits::default();
    let mut decoder = if args.flow {
        let token = match &args.token {
            Some(t) => t.clone(),
            None => token_from_capture(&args.file)?,
        };
        let token: [u8; 40] = token.as_bytes().try_into().map_err(|_| {
            Failure::Usage(format!("--token must be the 40-character eof token, got {} characters", token.len()))
        })?;
        Decoder::Flow(Box::new(FlowDecoder::full_sync(token, limits)))
    } else {
        Decoder::Rdb(Box::new(RdbDecoder::new(limits)))
    };
    let mut file = std::fs::File::open(&args.file)
        .map_err(|e| Failure::Usage(format!("cannot open {}: {e}", args.file.display())))?;

    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Failure::Usage(format!("reading {}: {e}", args.file.display())))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        decoder.feed(&buf[..n]);
        while let Some(ev) = decoder.next_event().map_err(Failure::Decode)? {
            if args.json {
                // A closed stdout (`| head`) just ends the output.
                if writeln!(out, "{}", inspect_json::event(&ev)).is_err() {
                    return Ok(());
                }
            } else {
                summary.add(&ev);
            }
        }
    }
    decoder.finish(total)?;
    if !args.json {
        summary.print(&mut out, &args.file, total, args.flow);
    }
    let _ = out.flush();
    Ok(())
}

/// Reads `eof_tokens[i]` from the `capture.json` beside `.../flow<i>.bin`.
fn token_from_capture(file: &Path) -> Result<String, Failure> {
    let missing = || {
        Failure::Usage(format!(
            "--flow needs --token HEX (or a capture.json beside a file named flow<i>.bin): {}",
            file.display()
        ))
    };
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(missing)?;
    let index: usize = name
        .strip_prefix("flow")
        .and_then(|s| s.strip_suffix(".bin"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(missing)?;
    let capture = file.with_file_name("capture.json");
    let text = std::fs::read_to_string(&capture).map_err(|_| missing())?;
    let json: Json = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{} is not valid JSON: {e}", capture.display())))?;
    json["eof_tokens"][index].as_str().map(str::to_owned).ok_or_else(missing)
}

/// Counts gathered from the events of one input.
#[derive(Debug, Default)]
struct Summary {
    version: Option<u32>,
    aux: Vec<(String, String)>,
    keys_per_db: BTreeMap<u32, u64>,
    types: BTreeMap<String, u64>,
    entries: u64,
    with_expiry: u64,
    chunks: u64,
    skipped: BTreeMap<u8, u64>,
    blobs: u64,
    full_sync_end: bool,
    journal_offset: Option<u64>,
    rdb_end: Option<(u64, Option<bool>)>,
    eof_token: bool,
    journal: u64,
    lsn_range: Option<(u64, u64)>,
    lsn_markers: u64,
    commands: BTreeMap<String, u64>,
}

impl Summary {
    fn add(&mut self, ev: &Event) {
        match ev {
            Event::Header { version } => self.version = Some(*version),
            Event::Aux { key, value } => {
                self.aux.push((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned()))
            }
            Event::SelectDb { .. } | Event::ResizeDb { .. } | Event::EntryEnd { .. } => {}
            Event::Skipped { opcode } => *self.skipped.entry(*opcode).or_default() += 1,
            Event::EntryBegin { header, .. } => {
                self.entries += 1;
                *self.keys_per_db.entry(header.db).or_default() += 1;
                *self.types.entry(format!("{:?} ({})", header.value_type, header.value_type.code())).or_default() += 1;
                if header.expire_ms.is_some() {
                    self.with_expiry += 1;
                }
            }
            Event::EntryChunk { .. } => self.chunks += 1,
            Event::JournalBlob { .. } => self.blobs += 1,
            Event::FullSyncEnd => self.full_sync_end = true,
            Event::JournalOffset { lsn } => self.journal_offset = Some(*lsn),
            Event::RdbEnd { checksum, verified } => self.rdb_end = Some((*checksum, *verified)),
            Event::EofToken => self.eof_token = true,
            Event::Journal { lsn, record } => {
                self.journal += 1;
                self.lsn_range = Some(match self.lsn_range {
                    None => (*lsn, *lsn),
                    Some((a, b)) => (a.min(*lsn), b.max(*lsn)),
                });
                *self.commands.entry(inspect_json::command_name(record)).or_default() += 1;
            }
            Event::LsnMarker { .. } => self.lsn_markers += 1,
        }
    }

    fn print(&self, out: &mut impl Write, file: &Path, bytes: u64, flow: bool) {
        let mut lines = vec![format!("{}: {bytes} bytes, decoded to the end", file.display())];
        if let Some(v) = self.version {
            lines.push(format!("RDB version: {v}"));
        }
        if !self.aux.is_empty() {
            let aux: Vec<String> = self.aux.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(format!("aux: {}", aux.join(", ")));
        }
        let dbs: Vec<String> = self.keys_per_db.iter().map(|(db, n)| format!("db{db}: {n}")).collect();
        lines.push(format!(
            "keys: {} ({} with expiry, {} value chunks){}",
            self.entries,
            self.with_expiry,
            self.chunks,
            if dbs.is_empty() { String::new() } else { format!("; {}", dbs.join(", ")) }
        ));
        for (ty, n) in &self.types {
            lines.push(format!("  {ty:<28} {n}"));
        }
        if !self.skipped.is_empty() {
            let s: Vec<String> = self.skipped.iter().map(|(op, n)| format!("opcode {op}: {n}")).collect();
            lines.push(format!("skipped records: {}", s.join(", ")));
        }
        if let Some((checksum, verified)) = self.rdb_end {
            let v = match verified {
                Some(true) => "verified",
                Some(false) => "MISMATCH",
                None => "not checked",
            };
            lines.push(format!("RDB EOF: checksum {checksum:016x} ({v})"));
        }
        if flow {
            lines.push(format!("journal blobs during the full sync: {}", self.blobs));
            lines.push(format!("FULLSYNC_END: {}", if self.full_sync_end { "yes" } else { "no" }));
            if let Some(lsn) = self.journal_offset {
                lines.push(format!("journal offset: next LSN {lsn}"));
            }
            lines.push(format!("eof token: {}", if self.eof_token { "matched" } else { "not reached" }));
            let range = self.lsn_range.map_or_else(|| "none".to_string(), |(a, b)| format!("LSN {a}..={b}"));
            lines.push(format!("journal records: {} ({range}), LSN markers: {}", self.journal, self.lsn_markers));
            if !self.commands.is_empty() {
                let mut c: Vec<(&String, &u64)> = self.commands.iter().collect();
                c.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let c: Vec<String> = c.iter().map(|(k, n)| format!("{k} {n}")).collect();
                lines.push(format!("  commands: {}", c.join(", ")));
            }
        }
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comes_from_capture_json() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/dragonfly-v1.40.1/plain-2shards");
        let t = token_from_capture(&dir.join("flow1.bin")).unwrap();
        assert_eq!(t, "e0ca69fa91907227b7f4878f48a78d9d9e02cca3");
        assert!(token_from_capture(&dir.join("expected-final.json.gz")).is_err());
    }

    #[test]
    fn summary_counts_journal_lsns() {
        let mut s = Summary::default();
        let rec = df2redis::proto::JournalRecord { db: 0, op: df2redis::proto::JournalOp::Ping };
        s.add(&Event::Journal { lsn: 7, record: rec.clone() });
        s.add(&Event::Journal { lsn: 5, record: rec });
        assert_eq!((s.journal, s.lsn_range), (2, Some((5, 7))));
        assert_eq!(s.commands.get("PING"), Some(&2));
    }
}
