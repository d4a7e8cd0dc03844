//! Unit tests of config parsing and validation.

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    validate(&parse_str(text, "t.yaml")?, "t.yaml")
}

const GO_SAMPLE: &str = r#"
taskName: orders
stateDir: ./out
statusFile: ./out/status.json
source:
  type: dragonfly
  addr: 10.0.0.1:6380
  password: ""
  tls: false
target:
  type: redis-cluster
  addr: 10.0.0.2:7000
  password: "pw"
  tls: false
  cluster:
    seeds: ["10.0.0.2:7000", "10.0.0.3:7000"]
checkpoint:
  enabled: true
  intervalSeconds: 5
  path: ./out/cp.json
log:
  dir: ./logs
  level: debug
  consoleEnabled: false
conflict:
  policy: skip
advanced:
  qps: 1000
  batchSize: 256
dashboard:
  addr: 127.0.0.1:8080
migrate:
  snapshotPath: /tmp/placeholder.rdb
  shakeBinary: /tmp/placeholder
"#;

#[test]
fn go_sample_keys_load() {
    let c = load(GO_SAMPLE).unwrap();
    assert_eq!(c.task_name, "orders");
    assert_eq!(c.source.kind, EndpointKind::Dragonfly);
    assert_eq!(c.source.addr.to_string(), "10.0.0.1:6380");
    assert_eq!(c.source.password, None);
    let t = c.target.unwrap();
    assert_eq!(t.kind, EndpointKind::RedisCluster);
    assert_eq!(t.seeds.len(), 2);
    assert_eq!(t.password.as_ref().unwrap().expose(), "pw");
    assert_eq!(c.checkpoint.interval, Duration::from_secs(5));
    assert_eq!(c.log.level, LogLevel::Debug);
    assert!(!c.log.console);
    assert_eq!(c.conflict, ConflictPolicy::Skip);
    assert_eq!(c.advanced, Advanced { qps: Some(1000), batch_size: 256 });
    assert_eq!(c.dashboard.unwrap().port(), 8080);
}

#[test]
fn old_seed_key_is_addr() {
    let c = load("source: {addr: 'h:1'}\ntarget: {type: redis-standalone, seed: 'localhost:6379'}").unwrap();
    assert_eq!(c.target.unwrap().addr, Address { host: "localhost".into(), port: 6379 });
}

#[test]
fn unknown_keys_name_their_path() {
    let e = load("source: {addr: 'h:1', pasword: x}").unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, path, .. } if key == "pasword" && path == "source.pasword"),
        "{msg}"
    );
    assert!(msg.contains("expected one of"), "{msg}");
    let e = load("source: {addr: 'h:1'}\nbogus: 1").unwrap_err();
    assert!(matches!(&e, ConfigError::UnknownKey { path, .. } if path == "bogus"), "{e}");
    let e = load("source: {addr: 'h:1', tls: {enabled: true, cafile: x}}").unwrap_err();
    assert!(e.to_string().contains("source.tls") && e.to_string().contains("cafile"), "{e}");
    let e = load("source: {addr: 'h:1'}\ntarget: {addr: 'h:2', cluster: {seed: []}}").unwrap_err();
    assert!(matches!(&e, ConfigError::UnknownKey { path, .. } if path == "target.cluster.seed"), "{e}");
}

#[test]
fn bad_values_are_reported_with_their_path() {
    for (text, path) in [
        ("source: {addr: 'nohost'}", "source.addr"),
        ("source: {addr: 'h:0'}", "source.addr"),
        ("source: {addr: 'h:99999'}", "source.addr"),
        ("source: {addr: 'h:1', type: mysql}", "source.type"),
        ("source: {addr: 'h:1'}\nconflict: {policy: maybe}", "conflict.policy"),
        ("source: {addr: 'h:1'}\nlog: {level: loud}", "log.level"),
        ("source: {addr: 'h:1', passwordFile: /nonexistent/pw}", "source.passwordFile"),
        ("source: {addr: 'h:1', password: a, passwordEnv: B}", "source.password"),
        ("source: {addr: 'h:1'}\ntarget: {addr: 'x:1', cluster: {seeds: ['bad']}}", "target.cluster.seeds[0]"),
        ("source: {addr: 'h:1'}\ncheckpoint: {intervalSeconds: 0}", "checkpoint.intervalSeconds"),
        ("source: {addr: 'h:1'}\nverify: {mode: deep}", "verify.mode"),
        ("source: {addr: 'h:1'}\nverify: {types: [list, blob]}", "verify.types[1]"),
        ("source: {addr: 'h:1'}\ndashboard: {addr: 'localhost'}", "dashboard.addr"),
        ("source: {addr: 'h:1'}\nadvanced: {batchSize: 'many'}", "advanced.batchSize"),
        ("target: {addr: 'h:1'}", "source"),
    ] {
        match load(text) {
            Err(ConfigError::Invalid { path: p, .. }) => assert_eq!(p, path, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn yaml_syntax_errors_are_syntax() {
    assert!(matches!(load("source: [unclosed"), Err(ConfigError::Syntax { .. })));
}

#[test]
fn password_file_and_tls_map() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "topsecret\n").unwrap();
    let text =
        format!("source: {{addr: '[::1]:6380', passwordFile: '{}', tls: {{serverName: df.local}}}}", pw.display());
    let c = load(&text).unwrap();
    assert_eq!(c.source.addr.to_string(), "[::1]:6380");
    assert_eq!(c.source.password.as_ref().unwrap().expose(), "topsecret");
    assert!(c.source.tls.enabled);
    assert_eq!(c.source.tls.server_name.as_deref(), Some("df.local"));
    let dbg = format!("{c:?} {}", c.source);
    assert!(!dbg.contains("topsecret"), "{dbg}");
}

#[test]
fn flags_override_the_file() {
    let mut raw = parse_str(GO_SAMPLE, "t").unwrap();
    let args = ConfigArgs {
        source_addr: Some("127.0.0.1:1".into()),
        target_addr: Some("127.0.0.1:2".into()),
        target_type: Some("redis-standalone".into()),
        target_password: Some("other".into()),
        log_level: Some("warn".into()),
        ..ConfigArgs::default()
    };
    args.apply(&mut raw);
    let c = validate(&raw, "t").unwrap();
    assert_eq!(c.source.addr.port, 1);
    let t = c.target.unwrap();
    assert_eq!(t.addr.port, 2);
    assert_eq!(t.kind, EndpointKind::RedisStandalone);
    assert_eq!(t.seeds.len(), 1);
    assert_eq!(t.password.unwrap().expose(), "other");
    assert_eq!(c.log.level, LogLevel::Warn);
}

#[test]
fn flags_alone_are_enough() {
    let args = ConfigArgs { source_addr: Some("a:1".into()), ..ConfigArgs::default() };
    let c = args.load().unwrap();
    assert_eq!(c.source.kind, EndpointKind::Auto);
    assert!(c.target.is_none());
    assert!(c.require_target().unwrap_err().to_string().contains("target"));
    assert_eq!(c.verify, VerifySettings::default());
}

#[test]
fn sample_file_in_examples_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/replicate.sample.yaml");
    let raw = parse_file(&path).unwrap();
    validate(&raw, "sample").unwrap();
}
