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

/// A CA-signed certificate and its key, as PEM text (generated; nothing checked in).
fn test_cert() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn tls_files_are_checked_once_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_cert();
    let f = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (ca, cert, key, junk) = (f("ca.pem", &ca), f("c.pem", &cert), f("c.key", &key), f("junk", "hello\n"));
    let missing = dir.path().join("missing.pem").display().to_string();
    let cfg = |tls: String| format!("source: {{addr: 'h:1'}}\ntarget: {{addr: 'h:2', tls: {tls}}}");
    let path_of = |e: ConfigError| match e {
        ConfigError::Invalid { path, reason, .. } => (path, reason),
        other => panic!("{other}"),
    };
    for (tls, path, why) in [
        (format!("{{certFile: '{cert}'}}"), "target.tls.keyFile", "give both or neither"),
        (format!("{{keyFile: '{key}'}}"), "target.tls.certFile", "give both or neither"),
        (format!("{{certFile: '{missing}', keyFile: '{key}'}}"), "target.tls.certFile", "not a readable file"),
        (format!("{{caFile: '{missing}'}}"), "target.tls.caFile", "not a readable file"),
        (format!("{{caFile: '{junk}'}}"), "target.tls.caFile", "no PEM certificate"),
        (
            format!("{{caFile: '{ca}', certFile: '{junk}', keyFile: '{key}'}}"),
            "target.tls.certFile",
            "no PEM certificate",
        ),
        (
            format!("{{caFile: '{ca}', certFile: '{cert}', keyFile: '{cert}'}}"),
            "target.tls.keyFile",
            "no PEM private key",
        ),
        (format!("{{caFile: '{ca}', serverName: 'not a name'}}"), "target.tls.serverName", "not a valid"),
    ] {
        let (p, reason) = path_of(load(&cfg(tls.clone())).unwrap_err());
        assert_eq!(p, path, "{tls}: {reason}");
        assert!(reason.contains(why), "{tls}: {reason}");
    }
    let c = load(&cfg(format!("{{caFile: '{ca}', certFile: '{cert}', keyFile: '{key}', serverName: db.internal}}")))
        .unwrap();
    let t = c.target.unwrap().tls;
    assert!(t.enabled && !t.insecure_skip_verify);
    assert_eq!(t.key_file.as_deref(), Some(Path::new(&key)));
    // Key material never reaches Debug output (only paths are kept).
    let key_text = std::fs::read_to_string(&key).unwrap();
    let body = key_text.lines().nth(1).unwrap();
    assert!(!format!("{t:?}").contains(body));
    // tls: false with files: files still checked for existence, nothing parsed.
    load(&cfg(format!("{{enabled: false, caFile: '{junk}'}}"))).unwrap();
}

#[test]
fn tls_flags_turn_tls_on() {
    let args = ConfigArgs {
        source_addr: Some("a:1".into()),
        source_tls_insecure_skip_verify: true,
        target_addr: Some("b:2".into()),
        target_tls_server_name: Some("redis.internal".into()),
        target_tls_ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..ConfigArgs::default()
    };
    let (mut raw, _) = args.raw().unwrap();
    let s = raw.source.as_ref().unwrap().tls.clone().unwrap();
    assert!(s.enabled && s.insecure_skip_verify);
    let t = raw.target.as_ref().unwrap().tls.clone().unwrap();
    assert!(t.enabled && t.server_name.as_deref() == Some("redis.internal"));
    let e = validate(&raw, "(flags)").unwrap_err();
    assert!(e.to_string().contains("target.tls.caFile"), "{e}");
    raw.target.as_mut().unwrap().tls.as_mut().unwrap().ca_file = None;
    raw.target.as_mut().unwrap().tls.as_mut().unwrap().insecure_skip_verify = true;
    let c = validate(&raw, "(flags)").unwrap();
    assert!(c.source.tls.insecure_skip_verify && c.target.unwrap().tls.enabled);
}
