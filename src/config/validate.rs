//! Turns a [`RawConfig`] into a [`Config`]: defaults, parsing of addresses and enums, password
//! resolution. Runs once; every error names its key path.

use super::raw::{RawConfig, RawEndpoint, RawVerify};
use super::{
    secret, Address, Advanced, Checkpoint, Config, ConfigError, ConflictPolicy, Endpoint, EndpointKind, Log, LogFormat,
    LogLevel, Tls, VerifyMode, VerifySettings,
};
use std::path::PathBuf;
use std::time::Duration;

fn invalid(file: &str, path: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { file: file.to_string(), path: path.to_string(), reason: reason.into() }
}

/// Validates `raw` (already merged with overrides); `file` names its origin in errors.
pub fn validate(raw: &RawConfig, file: &str) -> Result<Config, ConfigError> {
    let source = match &raw.source {
        Some(s) => endpoint(s, "source", file)?,
        None => return Err(invalid(file, "source", "missing (give source.addr or --source-addr)")),
    };
    if source.kind == EndpointKind::RedisCluster {
        return Err(invalid(file, "source.type", "a source cannot be a cluster: give one Dragonfly/Redis node"));
    }
    let target = raw.target.as_ref().map(|t| endpoint(t, "target", file)).transpose()?;
    let state_dir = raw.state_dir.clone().unwrap_or_else(|| PathBuf::from("./df2redis-state"));
    let status_file = raw.status_file.clone().unwrap_or_else(|| state_dir.join("status.json"));
    let cp = raw.checkpoint.clone().unwrap_or_default();
    let interval = cp.interval_seconds.unwrap_or(10);
    if interval == 0 {
        return Err(invalid(file, "checkpoint.intervalSeconds", "must be at least 1"));
    }
    let checkpoint = Checkpoint {
        enabled: cp.enabled.unwrap_or(true),
        interval: Duration::from_secs(interval),
        path: cp.path.unwrap_or_else(|| state_dir.join("checkpoint.json")),
    };
    let lg = raw.log.clone().unwrap_or_default();
    let log = Log {
        dir: lg.dir,
        level: LogLevel::parse(lg.level.as_deref().unwrap_or("info")).map_err(|e| invalid(file, "log.level", e))?,
        console: lg.console_enabled.unwrap_or(true),
        format: match lg.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid(file, "log.format", format!("`{other}`: expected text or json"))),
        },
    };
    let conflict = match raw.conflict.as_ref().and_then(|c| c.policy.as_deref()).unwrap_or("overwrite") {
        "overwrite" => ConflictPolicy::Overwrite,
        "skip" => ConflictPolicy::Skip,
        "panic" => ConflictPolicy::Panic,
        other => {
            return Err(invalid(file, "conflict.policy", format!("`{other}`: expected overwrite, skip or panic")));
        }
    };
    let adv = raw.advanced.clone().unwrap_or_default();
    let batch_size = adv.batch_size.unwrap_or(512);
    if batch_size == 0 || batch_size > 1_000_000 {
        return Err(invalid(file, "advanced.batchSize", "must be 1..=1000000"));
    }
    let advanced = Advanced { qps: adv.qps.filter(|&q| q > 0), batch_size: batch_size as usize };
    let dashboard =
        match raw.dashboard.as_ref().and_then(|d| d.addr.as_deref()) {
            None | Some("") => None,
            Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
                invalid(file, "dashboard.addr", format!("`{a}`: expected ip:port, e.g. 127.0.0.1:8080"))
            })?),
        };
    let verify = verify_settings(raw.verify.as_ref(), file)?;
    Ok(Config {
        task_name: raw.task_name.clone().unwrap_or_else(|| "df2redis".to_string()),
        state_dir,
        status_file,
        source,
        target,
        checkpoint,
        log,
        conflict,
        advanced,
        dashboard,
        verify,
    })
}

fn endpoint(raw: &RawEndpoint, name: &str, file: &str) -> Result<Endpoint, ConfigError> {
    let kind = match raw.kind.as_deref() {
        Some(k) => EndpointKind::parse(k).map_err(|e| invalid(file, &format!("{name}.type"), e))?,
        None => EndpointKind::Auto,
    };
    if raw.addr.is_some() && raw.seed.is_some() {
        return Err(invalid(file, &format!("{name}.seed"), "give addr or seed (its old name), not both"));
    }
    let (addr_text, addr_key) = match (&raw.addr, &raw.seed) {
        (Some(a), _) => (Some(a.as_str()), "addr"),
        (None, Some(s)) => (Some(s.as_str()), "seed"),
        (None, None) => (None, "addr"),
    };
    let mut seeds = Vec::new();
    if let Some(list) = raw.cluster.as_ref().and_then(|c| c.seeds.as_ref()) {
        for (i, s) in list.iter().enumerate() {
            seeds.push(Address::parse(s).map_err(|e| invalid(file, &format!("{name}.cluster.seeds[{i}]"), e))?);
        }
    }
    let addr = match addr_text {
        Some(a) => Address::parse(a).map_err(|e| invalid(file, &format!("{name}.{addr_key}"), e))?,
        None => match seeds.first() {
            Some(s) => s.clone(),
            None => return Err(invalid(file, &format!("{name}.addr"), "missing")),
        },
    };
    if !seeds.contains(&addr) {
        seeds.insert(0, addr.clone());
    }
    if seeds.len() > 1 && kind != EndpointKind::RedisCluster && kind != EndpointKind::Auto {
        return Err(invalid(file, &format!("{name}.cluster.seeds"), "seeds are only for type redis-cluster"));
    }
    let password = secret::resolve(raw.password.as_deref(), raw.password_file.as_deref(), raw.password_env.as_deref())
        .map_err(|e| {
            let key = match e {
                secret::SecretError::File { .. } => "passwordFile",
                secret::SecretError::Env { .. } => "passwordEnv",
                secret::SecretError::Ambiguous => "password",
            };
            invalid(file, &format!("{name}.{key}"), e.to_string())
        })?;
    let t = raw.tls.clone().unwrap_or_default();
    let tls = Tls {
        enabled: t.enabled,
        ca_file: t.ca_file,
        cert_file: t.cert_file,
        key_file: t.key_file,
        server_name: t.server_name,
        insecure_skip_verify: t.insecure_skip_verify,
    };
    check_tls(&tls).map_err(|(key, reason)| invalid(file, &format!("{name}.tls.{key}"), reason))?;
    Ok(Endpoint { kind, addr, seeds, username: raw.username.clone().filter(|u| !u.is_empty()), password, tls })
}

/// TLS settings checked once: certFile and keyFile together, files readable; when TLS is on,
/// the CA, certificate and key files parsed and the client config built exactly as connections
/// will build it. Errors: (key under `tls.`, reason).
fn check_tls(tls: &Tls) -> Result<(), (&'static str, String)> {
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => {
            return Err(("keyFile", "missing: certFile and keyFile go together (give both or neither)".into()))
        }
        (None, Some(_)) => {
            return Err(("certFile", "missing: certFile and keyFile go together (give both or neither)".into()))
        }
        _ => {}
    }
    for (key, path) in [("caFile", &tls.ca_file), ("certFile", &tls.cert_file), ("keyFile", &tls.key_file)] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err((key, format!("{} is not a readable file", p.display())));
            }
        }
    }
    if tls.enabled {
        crate::resp::tls::TlsClient::new(tls).map_err(|e| (e.key(), e.to_string()))?;
    }
    Ok(())
}

fn verify_settings(raw: Option<&RawVerify>, file: &str) -> Result<VerifySettings, ConfigError> {
    let d = VerifySettings::default();
    let Some(v) = raw else { return Ok(d) };
    let mode = match &v.mode {
        Some(m) => VerifyMode::parse(m).map_err(|e| invalid(file, "verify.mode", e))?,
        None => d.mode,
    };
    let parallel = v.parallel.unwrap_or(d.parallel as u64);
    if parallel == 0 || parallel > 1024 {
        return Err(invalid(file, "verify.parallel", "must be 1..=1024"));
    }
    let compare_times = v.compare_times.unwrap_or(u64::from(d.compare_times));
    if compare_times == 0 || compare_times > 1000 {
        return Err(invalid(file, "verify.compareTimes", "must be 1..=1000"));
    }
    let interval = match v.interval_seconds {
        Some(s) if !(0.0..=86_400.0).contains(&s) => {
            return Err(invalid(file, "verify.intervalSeconds", "must be 0..=86400"));
        }
        Some(s) => Duration::from_secs_f64(s),
        None => d.interval,
    };
    let big = v.big_key_threshold.unwrap_or(d.big_key_threshold);
    if big == 0 {
        return Err(invalid(file, "verify.bigKeyThreshold", "must be at least 1"));
    }
    let types = v.types.clone().unwrap_or_default();
    for (i, t) in types.iter().enumerate() {
        if !crate::verify::KeyType::NAMES.contains(&t.as_str()) {
            return Err(invalid(
                file,
                &format!("verify.types[{i}]"),
                format!("`{t}`: expected one of {}", crate::verify::KeyType::NAMES.join(", ")),
            ));
        }
    }
    Ok(VerifySettings {
        mode,
        qps: v.qps.filter(|&q| q > 0),
        parallel: parallel as usize,
        compare_times: compare_times as u32,
        interval,
        ttl_tolerance: v.ttl_tolerance_ms.map(Duration::from_millis).unwrap_or(d.ttl_tolerance),
        big_key_threshold: big,
        result_dir: v.result_dir.clone(),
        max_keys: v.max_keys.unwrap_or(0),
        filter: v.filter.clone().unwrap_or_default(),
        dbs: v.dbs.clone().unwrap_or_default(),
        types,
    })
}
