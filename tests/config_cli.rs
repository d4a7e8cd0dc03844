//! The shared config through its public API: the sample file, clap flags and DF2REDIS_* env
//! overrides (this binary owns its environment), and error messages users see.

use clap::Parser;
use df2redis::config::{ConfigArgs, ConfigError, EndpointKind};
use std::path::Path;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

#[test]
fn sample_file_flags_and_env() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/replicate.sample.yaml");
    let cli = Cli::try_parse_from(["x", "--config", sample.to_str().unwrap()]).unwrap();
    let c = cli.config.load().unwrap();
    assert_eq!(c.task_name, "orders-migration");
    assert_eq!(c.source.kind, EndpointKind::Dragonfly);
    assert_eq!(c.target.as_ref().unwrap().addr.to_string(), "127.0.0.1:6379");

    // Environment variables override the file; flags override the environment.
    std::env::set_var("DF2REDIS_TARGET_ADDR", "10.1.1.1:7000");
    std::env::set_var("DF2REDIS_TARGET_PASSWORD", "from-env");
    let cli = Cli::try_parse_from(["x", "--config", sample.to_str().unwrap()]).unwrap();
    let c = cli.config.load().unwrap();
    let t = c.target.unwrap();
    assert_eq!(t.addr.to_string(), "10.1.1.1:7000");
    assert_eq!(t.password.as_ref().unwrap().expose(), "from-env");
    assert!(!format!("{t:?} {t}").contains("from-env"));
    let cli =
        Cli::try_parse_from(["x", "--config", sample.to_str().unwrap(), "--target-addr", "10.2.2.2:7001"]).unwrap();
    assert_eq!(cli.config.load().unwrap().target.unwrap().addr.port, 7001);
    std::env::remove_var("DF2REDIS_TARGET_ADDR");
    std::env::remove_var("DF2REDIS_TARGET_PASSWORD");
}

#[test]
fn errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "source:\n  addr: 127.0.0.1:6380\n  tsl: true\n").unwrap();
    let cli = Cli::try_parse_from(["x", "--config", p.to_str().unwrap()]).unwrap();
    let e = cli.config.load().unwrap_err();
    assert!(matches!(e, ConfigError::UnknownKey { .. }));
    let msg = e.to_string();
    assert!(msg.contains("bad.yaml") && msg.contains("`source.tsl`") && msg.contains("`tls`"), "{msg}");
    let cli = Cli::try_parse_from(["x", "--config", "/nonexistent/df2redis.yaml"]).unwrap();
    assert!(matches!(cli.config.load(), Err(ConfigError::Io { .. })));
}
