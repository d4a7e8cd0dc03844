//! The YAML schema as written by users (Go df2redis keys plus ours), before validation.
//!
//! Every struct denies unknown keys; [`super::load_str`] turns serde's message into one naming
//! the key and its path. Keys are camelCase like the Go tool's.

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    pub task_name: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub status_file: Option<PathBuf>,
    pub source: Option<RawEndpoint>,
    pub target: Option<RawEndpoint>,
    pub checkpoint: Option<RawCheckpoint>,
    pub log: Option<RawLog>,
    pub conflict: Option<RawConflict>,
    pub advanced: Option<RawAdvanced>,
    pub dashboard: Option<RawDashboard>,
    pub verify: Option<RawVerify>,
    /// Legacy section of the Go tool's samples (snapshot + redis-shake migration); accepted and
    /// ignored so existing files load.
    pub migrate: Option<RawMigrate>,
}

/// `source:` or `target:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEndpoint {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub addr: Option<String>,
    /// The Go tool's older spelling of `addr` for targets.
    pub seed: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub tls: Option<RawTls>,
    pub cluster: Option<RawCluster>,
}

/// `tls: true|false` or `tls: {enabled, caFile, certFile, keyFile, serverName, insecureSkipVerify}`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawTls {
    pub enabled: bool,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTlsMap {
    enabled: Option<bool>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(enabled) => Ok(RawTls { enabled, ..RawTls::default() }),
            v @ serde_json::Value::Object(_) => {
                let m: RawTlsMap = serde_json::from_value(v).map_err(D::Error::custom)?;
                Ok(RawTls {
                    enabled: m.enabled.unwrap_or(true),
                    ca_file: m.ca_file,
                    cert_file: m.cert_file,
                    key_file: m.key_file,
                    server_name: m.server_name,
                    insecure_skip_verify: m.insecure_skip_verify,
                })
            }
            other => Err(D::Error::custom(format!(
                "expected true, false or a map {{enabled, caFile, certFile, keyFile, serverName, insecureSkipVerify}}, \
                 found {other}"
            ))),
        }
    }
}

/// `target.cluster:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    pub seeds: Option<Vec<String>>,
}

/// `checkpoint:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCheckpoint {
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u64>,
    pub path: Option<PathBuf>,
}

/// `log:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLog {
    pub dir: Option<PathBuf>,
    pub level: Option<String>,
    pub console_enabled: Option<bool>,
    /// `text` (default) or `json`.
    pub format: Option<String>,
}

/// `conflict:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConflict {
    pub policy: Option<String>,
}

/// `advanced:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAdvanced {
    pub qps: Option<u64>,
    pub batch_size: Option<u64>,
}

/// `dashboard:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDashboard {
    pub addr: Option<String>,
}

/// `verify:` (ours): defaults for `df2redis verify` / `check`; flags override them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVerify {
    pub mode: Option<String>,
    pub qps: Option<u64>,
    pub parallel: Option<u64>,
    pub compare_times: Option<u64>,
    pub interval_seconds: Option<f64>,
    pub ttl_tolerance_ms: Option<u64>,
    pub big_key_threshold: Option<u64>,
    pub result_dir: Option<PathBuf>,
    pub max_keys: Option<u64>,
    pub filter: Option<Vec<String>>,
    pub dbs: Option<Vec<u32>>,
    pub types: Option<Vec<String>>,
}

/// The Go tool's `migrate:` section (not used by df2redis).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMigrate {
    pub snapshot_path: Option<PathBuf>,
    pub shake_binary: Option<PathBuf>,
}
