//! Command-line / environment overrides common to every subcommand (`#[command(flatten)]` them).

use super::raw::{RawConfig, RawEndpoint, RawLog, RawTls};
use super::{parse_file, validate, Config, ConfigError};
use std::path::PathBuf;

/// Flags (each also read from a `DF2REDIS_*` environment variable) that override the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// YAML config file (the Go df2redis keys are accepted).
    #[arg(short = 'c', long = "config", env = "DF2REDIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Source address host:port (overrides source.addr).
    #[arg(long, env = "DF2REDIS_SOURCE_ADDR", value_name = "HOST:PORT")]
    pub source_addr: Option<String>,
    /// Source password (prefer the env var or --source-password-file).
    #[arg(long, env = "DF2REDIS_SOURCE_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    pub source_password: Option<String>,
    /// File holding the source password.
    #[arg(long, value_name = "FILE")]
    pub source_password_file: Option<PathBuf>,
    /// Connect to the source over TLS (overrides source.tls.enabled; the other --source-tls-* flags imply it).
    #[arg(long, env = "DF2REDIS_SOURCE_TLS")]
    pub source_tls: bool,
    /// PEM file of the CAs that sign the source's certificate (default: the platform roots).
    #[arg(long, env = "DF2REDIS_SOURCE_TLS_CA_FILE", value_name = "FILE")]
    pub source_tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with the source (with --source-tls-key-file).
    #[arg(long, env = "DF2REDIS_SOURCE_TLS_CERT_FILE", value_name = "FILE")]
    pub source_tls_cert_file: Option<PathBuf>,
    /// PEM private key of --source-tls-cert-file.
    #[arg(long, env = "DF2REDIS_SOURCE_TLS_KEY_FILE", value_name = "FILE")]
    pub source_tls_key_file: Option<PathBuf>,
    /// Name to expect in the source's certificate (and send as SNI) instead of the address's host.
    #[arg(long, env = "DF2REDIS_SOURCE_TLS_SERVER_NAME", value_name = "NAME")]
    pub source_tls_server_name: Option<String>,
    /// Do not verify the source's certificate (DANGEROUS: tests only).
    #[arg(long, env = "DF2REDIS_SOURCE_TLS_INSECURE_SKIP_VERIFY")]
    pub source_tls_insecure_skip_verify: bool,
    /// Target address host:port (overrides target.addr).
    #[arg(long, env = "DF2REDIS_TARGET_ADDR", value_name = "HOST:PORT")]
    pub target_addr: Option<String>,
    /// Target type: redis-standalone, redis-cluster or auto (detect).
    #[arg(long, env = "DF2REDIS_TARGET_TYPE", value_name = "TYPE")]
    pub target_type: Option<String>,
    /// Target password (prefer the env var or --target-password-file).
    #[arg(long, env = "DF2REDIS_TARGET_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    pub target_password: Option<String>,
    /// File holding the target password.
    #[arg(long, value_name = "FILE")]
    pub target_password_file: Option<PathBuf>,
    /// Connect to the target over TLS (overrides target.tls.enabled; the other --target-tls-* flags imply it).
    #[arg(long, env = "DF2REDIS_TARGET_TLS")]
    pub target_tls: bool,
    /// PEM file of the CAs that sign the target's certificate (default: the platform roots).
    #[arg(long, env = "DF2REDIS_TARGET_TLS_CA_FILE", value_name = "FILE")]
    pub target_tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with the target (with --target-tls-key-file).
    #[arg(long, env = "DF2REDIS_TARGET_TLS_CERT_FILE", value_name = "FILE")]
    pub target_tls_cert_file: Option<PathBuf>,
    /// PEM private key of --target-tls-cert-file.
    #[arg(long, env = "DF2REDIS_TARGET_TLS_KEY_FILE", value_name = "FILE")]
    pub target_tls_key_file: Option<PathBuf>,
    /// Name to expect in the target's certificate (and send as SNI) instead of the address's host.
    #[arg(long, env = "DF2REDIS_TARGET_TLS_SERVER_NAME", value_name = "NAME")]
    pub target_tls_server_name: Option<String>,
    /// Do not verify the target's certificate (DANGEROUS: tests only).
    #[arg(long, env = "DF2REDIS_TARGET_TLS_INSECURE_SKIP_VERIFY")]
    pub target_tls_insecure_skip_verify: bool,
    /// Task name.
    #[arg(long, env = "DF2REDIS_TASK_NAME")]
    pub task_name: Option<String>,
    /// State directory.
    #[arg(long, env = "DF2REDIS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, env = "DF2REDIS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "DF2REDIS_LOG_FORMAT")]
    pub log_format: Option<String>,
}

fn set_password(ep: &mut RawEndpoint, inline: &Option<String>, file: &Option<PathBuf>) {
    if inline.is_some() || file.is_some() {
        ep.password = inline.clone();
        ep.password_file = file.clone();
        ep.password_env = None;
    }
}

/// The TLS flags of one endpoint.
struct TlsFlags<'a> {
    on: bool,
    ca: &'a Option<PathBuf>,
    cert: &'a Option<PathBuf>,
    key: &'a Option<PathBuf>,
    name: &'a Option<String>,
    insecure: bool,
}

impl TlsFlags<'_> {
    fn any(&self) -> bool {
        self.on
            || self.insecure
            || self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.name.is_some()
    }

    /// Any flag turns TLS on; given values replace the file's.
    fn apply(&self, ep: &mut RawEndpoint) {
        if !self.any() {
            return;
        }
        let t = ep.tls.get_or_insert_with(RawTls::default);
        t.enabled = true;
        if self.ca.is_some() {
            t.ca_file = self.ca.clone();
        }
        if self.cert.is_some() || self.key.is_some() {
            t.cert_file = self.cert.clone();
            t.key_file = self.key.clone();
        }
        if self.name.is_some() {
            t.server_name = self.name.clone();
        }
        if self.insecure {
            t.insecure_skip_verify = true;
        }
    }
}

impl ConfigArgs {
    fn source_tls(&self) -> TlsFlags<'_> {
        TlsFlags {
            on: self.source_tls,
            ca: &self.source_tls_ca_file,
            cert: &self.source_tls_cert_file,
            key: &self.source_tls_key_file,
            name: &self.source_tls_server_name,
            insecure: self.source_tls_insecure_skip_verify,
        }
    }

    fn target_tls(&self) -> TlsFlags<'_> {
        TlsFlags {
            on: self.target_tls,
            ca: &self.target_tls_ca_file,
            cert: &self.target_tls_cert_file,
            key: &self.target_tls_key_file,
            name: &self.target_tls_server_name,
            insecure: self.target_tls_insecure_skip_verify,
        }
    }

    /// Applies these overrides onto a parsed file.
    pub fn apply(&self, raw: &mut RawConfig) {
        if self.source_addr.is_some()
            || self.source_password.is_some()
            || self.source_password_file.is_some()
            || self.source_tls().any()
        {
            let src = raw.source.get_or_insert_with(RawEndpoint::default);
            if let Some(a) = &self.source_addr {
                src.addr = Some(a.clone());
                src.seed = None;
            }
            set_password(src, &self.source_password, &self.source_password_file);
            self.source_tls().apply(src);
        }
        if self.target_addr.is_some()
            || self.target_type.is_some()
            || self.target_password.is_some()
            || self.target_password_file.is_some()
            || self.target_tls().any()
        {
            let t = raw.target.get_or_insert_with(RawEndpoint::default);
            if let Some(a) = &self.target_addr {
                t.addr = Some(a.clone());
                t.seed = None;
                if let Some(c) = t.cluster.as_mut() {
                    c.seeds = None;
                }
            }
            if let Some(k) = &self.target_type {
                t.kind = Some(k.clone());
            }
            set_password(t, &self.target_password, &self.target_password_file);
            self.target_tls().apply(t);
        }
        if let Some(n) = &self.task_name {
            raw.task_name = Some(n.clone());
        }
        if let Some(d) = &self.state_dir {
            raw.state_dir = Some(d.clone());
        }
        if self.log_level.is_some() || self.log_format.is_some() {
            let l = raw.log.get_or_insert_with(RawLog::default);
            if let Some(v) = &self.log_level {
                l.level = Some(v.clone());
            }
            if let Some(v) = &self.log_format {
                l.format = Some(v.clone());
            }
        }
    }

    /// Reads the file (if any), applies the overrides, and returns the raw result plus a name for
    /// errors. Callers with their own flags (e.g. `verify`) apply them before [`validate`].
    pub fn raw(&self) -> Result<(RawConfig, String), ConfigError> {
        let (mut raw, name) = match &self.config {
            Some(p) => (parse_file(p)?, p.display().to_string()),
            None => (RawConfig::default(), "(flags)".to_string()),
        };
        self.apply(&mut raw);
        Ok((raw, name))
    }

    /// File + overrides, validated.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let (raw, name) = self.raw()?;
        validate(&raw, &name)
    }
}
