//! The configuration shared by `replicate` and `verify`: YAML file (the Go df2redis keys plus
//! ours) + flag/env overrides, validated once into [`Config`].
//!
//! Precedence: command-line flag > environment variable > file > default. Loading fails with a
//! [`ConfigError`] naming the file, the key path and the reason (unknown key, bad address,
//! unreadable password file, bad enum value...). Secrets are [`Secret`]s and never printed.

pub mod args;
pub mod raw;
pub mod secret;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::ConfigArgs;
pub use raw::RawConfig;
pub use secret::{Secret, SecretError};

/// A `host:port` address (IPv6 hosts are written `[::1]:6379`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
}

impl Address {
    /// Parses `host:port`, `[v6]:port`; the port is required.
    pub fn parse(s: &str) -> Result<Address, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(|| format!("`{s}`: expected [ipv6]:port"))?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(|| format!("`{s}`: expected host:port"))?
        };
        if host.is_empty() || host.contains(char::is_whitespace) || (!s.starts_with('[') && host.contains(':')) {
            return Err(format!("`{s}`: bad host"));
        }
        let port: u16 = port.parse().map_err(|_| format!("`{s}`: port must be a number 1-65535"))?;
        if port == 0 {
            return Err(format!("`{s}`: port must be a number 1-65535"));
        }
        Ok(Address { host: host.to_string(), port })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What kind of server an endpoint is. `Auto` = detect (INFO / CLUSTER INFO) at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// A Dragonfly master (a source).
    Dragonfly,
    /// A single Redis (or Redis-protocol) server.
    RedisStandalone,
    /// A Redis Cluster, reached through `seeds`.
    RedisCluster,
    /// Not stated: detect.
    Auto,
}

impl EndpointKind {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "dragonfly" => Ok(Self::Dragonfly),
            "redis" | "redis-standalone" | "standalone" => Ok(Self::RedisStandalone),
            "redis-cluster" | "cluster" => Ok(Self::RedisCluster),
            "auto" => Ok(Self::Auto),
            _ => Err(format!("`{s}`: expected dragonfly, redis-standalone, redis-cluster or auto")),
        }
    }
}

/// TLS settings of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Use TLS.
    pub enabled: bool,
    /// PEM file of CAs to trust (default: the platform roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; given with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (never logged; only its path is kept here).
    pub key_file: Option<PathBuf>,
    /// SNI / certificate name when it differs from the host.
    pub server_name: Option<String>,
    /// Skip certificate verification (tests only; warned about at start).
    pub insecure_skip_verify: bool,
}

/// A server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Declared kind.
    pub kind: EndpointKind,
    /// Main address (for a cluster: the first seed).
    pub addr: Address,
    /// Cluster seeds (always contains `addr` first).
    pub seeds: Vec<Address>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (AUTH), resolved from `password`, `passwordFile` or `passwordEnv`.
    pub password: Option<Secret>,
    /// TLS.
    pub tls: Tls,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.seeds.len() > 1 {
            write!(f, " (+{} seeds)", self.seeds.len() - 1)?;
        }
        if self.password.is_some() {
            f.write_str(" auth=***")?;
        }
        if self.tls.enabled {
            f.write_str(" tls")?;
        }
        Ok(())
    }
}

/// `checkpoint:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Write checkpoints.
    pub enabled: bool,
    /// Interval between checkpoints.
    pub interval: Duration,
    /// File path (default `<stateDir>/checkpoint.json`).
    pub path: PathBuf,
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info (default)
    Info,
    /// warn
    Warn,
    /// error
    Error,
}

impl LogLevel {
    /// Parses trace|debug|info|warn|warning|error (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" | "warning" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            _ => Err(format!("`{s}`: expected trace, debug, info, warn or error")),
        }
    }

    /// The `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Directory for log files (none: no file).
    pub dir: Option<PathBuf>,
    /// Level.
    pub level: LogLevel,
    /// Also log to the console.
    pub console: bool,
    /// Format.
    pub format: LogFormat,
}

/// What to do with a key that already exists on the target at full sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Replace it (default).
    Overwrite,
    /// Keep the target's key.
    Skip,
    /// Stop the run.
    Panic,
}

/// `advanced:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// Write rate limit (ops/s); `None` = unlimited.
    pub qps: Option<u64>,
    /// Commands per pipeline batch.
    pub batch_size: usize,
}

/// Comparison depth of `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Presence and type.
    Keys,
    /// + length/cardinality + TTL.
    Meta,
    /// + values.
    Full,
    /// Values for keys up to the big-key threshold, length + TTL only above it.
    Smart,
}

impl VerifyMode {
    /// Parses our names and the Go tool's (`outline` = keys, `length` = meta).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "keys" | "outline" | "key" => Ok(Self::Keys),
            "meta" | "length" => Ok(Self::Meta),
            "full" | "value" => Ok(Self::Full),
            "smart" => Ok(Self::Smart),
            _ => Err(format!("`{s}`: expected keys (outline), meta (length), full or smart")),
        }
    }
}

/// `verify:` after validation (flags of `verify` override these).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    /// Depth.
    pub mode: VerifyMode,
    /// Read rate limit per side, ops/s (`None` = unlimited).
    pub qps: Option<u64>,
    /// Concurrent batches in flight per side.
    pub parallel: usize,
    /// Rounds (1 = no re-check).
    pub compare_times: u32,
    /// Wait between rounds.
    pub interval: Duration,
    /// TTL differences up to this are equal.
    pub ttl_tolerance: Duration,
    /// Containers with more elements (strings: more bytes) than this are compared in chunks.
    pub big_key_threshold: u64,
    /// Where reports go (none: no files).
    pub result_dir: Option<PathBuf>,
    /// Stop after this many source keys (0 = all).
    pub max_keys: u64,
    /// Key glob patterns (empty = all keys).
    pub filter: Vec<String>,
    /// Databases (empty = every non-empty db).
    pub dbs: Vec<u32>,
    /// Types (empty = all).
    pub types: Vec<String>,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            mode: VerifyMode::Full,
            qps: None,
            parallel: 8,
            compare_times: 3,
            interval: Duration::from_secs(5),
            ttl_tolerance: Duration::from_millis(2000),
            big_key_threshold: 1024,
            result_dir: None,
            max_keys: 0,
            filter: Vec::new(),
            dbs: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Task name (used in logs and state file names).
    pub task_name: String,
    /// Directory for state (checkpoint, status).
    pub state_dir: PathBuf,
    /// Status file (default `<stateDir>/status.json`).
    pub status_file: PathBuf,
    /// The Dragonfly (or Redis-protocol) source.
    pub source: Endpoint,
    /// The Redis target; `None` only when the file has no target (verify then needs a flag).
    pub target: Option<Endpoint>,
    /// Checkpointing.
    pub checkpoint: Checkpoint,
    /// Logging.
    pub log: Log,
    /// Conflict policy at full sync.
    pub conflict: ConflictPolicy,
    /// Tuning.
    pub advanced: Advanced,
    /// Dashboard listen address, if any.
    pub dashboard: Option<std::net::SocketAddr>,
    /// `verify` defaults.
    pub verify: VerifySettings,
}

impl Config {
    /// The target, or the error to show when a command that needs one has none.
    pub fn require_target(&self) -> Result<&Endpoint, ConfigError> {
        self.target.as_ref().ok_or_else(|| ConfigError::Invalid {
            file: "config".into(),
            path: "target".into(),
            reason: "missing (give target.addr in the file or --target-addr)".into(),
        })
    }
}

/// A configuration error: which file, which key path, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error as text.
        reason: String,
    },
    /// YAML syntax error.
    #[error("config file {file}: YAML syntax: {reason}")]
    Syntax {
        /// The file (or `<string>`).
        file: String,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A key the schema does not know.
    #[error("config file {file}: unknown key `{key}` at `{path}`{hint}")]
    UnknownKey {
        /// The file.
        file: String,
        /// The unknown key.
        key: String,
        /// Its full path, e.g. `source.tls.foo`.
        path: String,
        /// ", expected one of ..." when known.
        hint: String,
    },
    /// A value that is of the wrong shape or fails validation.
    #[error("config {file}: `{path}`: {reason}")]
    Invalid {
        /// The file (or `flags`).
        file: String,
        /// The key path, e.g. `target.addr`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses YAML text into the raw schema; `file` names it in errors.
pub fn parse_str(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let tree: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| ConfigError::Syntax { file: file.to_string(), reason: e.to_string() })?;
    if tree.is_null() {
        return Ok(RawConfig::default());
    }
    serde_path_to_error::deserialize::<_, RawConfig>(tree).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        unknown_key(&msg, &path, file).unwrap_or_else(|| ConfigError::Invalid {
            file: file.to_string(),
            path,
            reason: msg,
        })
    })
}

/// serde reports "unknown field `x`, expected one of `a`, `b`": rebuild it with the full path.
fn unknown_key(msg: &str, path: &str, file: &str) -> Option<ConfigError> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (key, tail) = rest.split_once('`')?;
    // serde_path_to_error's path already ends with the unknown key.
    let full = if path.is_empty() || path == "." { key.to_string() } else { path.to_string() };
    let hint = tail.split_once(',').map(|(_, h)| format!(",{h}")).unwrap_or_default();
    Some(ConfigError::UnknownKey { file: file.to_string(), key: key.to_string(), path: full, hint })
}

/// Reads and parses a config file.
pub fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
    parse_str(&text, &path.display().to_string())
}

mod validate;
pub use validate::validate;

#[cfg(test)]
mod tests;
