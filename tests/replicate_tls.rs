//! TLS end to end, with certificates generated at runtime: the mock master serving TLS (as
//! Dragonfly's `--tls`: control and flows on one port) → a real TLS-only redis-server, configured
//! from a YAML file; then `verify` over TLS on both sides. Mutual TLS (client certificates
//! required by Redis and by the master), a wrong CA, and plain-text/TLS mismatches, each failing
//! with an error that names the endpoint and the cause, within a deadline.

#![allow(clippy::unwrap_used)]

mod replicate_common;
mod tls_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use df2redis::config::ConfigArgs;
use df2redis::proto::Value;
use df2redis::replicate::{run_with, ReplicateArgs, ReplicateError, Settings};
use df2redis::resp::{Cmd, ConnectOptions, Connection, Frame, RespError, TlsClient};
use df2redis::status::Status;
use df2redis::testkit::{RedisServer, ServerOptions};
use mock_master::MockMaster;
use replicate_common::{caught_up, DEADLINE};
use tls_common::{pki, Pki};

/// 200 strings, a string with a TTL, and a hash in `hash_db`.
fn master_with_hash_in(hash_db: u32) -> MockMaster {
    let mut m = MockMaster::new().shards(2).seed(7);
    for i in 0..200 {
        m = m.key(0, &format!("k{i}"), Value::String(format!("value-{i}").into()));
    }
    m.key(hash_db, "h", Value::Hash(vec![("f".into(), "v".into()), ("g".into(), "w".into())])).key_with_expiry(
        0,
        "ttl",
        Value::String("x".into()),
        4_000_000_000_000,
    )
}

fn master() -> MockMaster {
    master_with_hash_in(1)
}

fn tls_yaml(tls: &str) -> String {
    if tls.is_empty() {
        String::new()
    } else {
        format!(", tls: {tls}")
    }
}

/// Settings as `df2redis replicate --config FILE` resolves them.
fn settings(state: &Path, src: &str, src_tls: &str, dst: &str, dst_tls: &str, retries: u32) -> Settings {
    let cfg = state.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "taskName: tls\nstateDir: {s}\n\
             source: {{type: dragonfly, addr: '{src}'{}}}\n\
             target: {{type: redis-standalone, addr: '{dst}'{}}}\n\
             checkpoint: {{enabled: true, intervalSeconds: 1, path: {s}/checkpoint.json}}\n",
            tls_yaml(src_tls),
            tls_yaml(dst_tls),
            s = state.display()
        ),
    )
    .unwrap();
    from_config(cfg, retries)
}

/// Settings from a config file, with the test's flags.
fn from_config(cfg: std::path::PathBuf, retries: u32) -> Settings {
    let args = ReplicateArgs {
        config: ConfigArgs { config: Some(cfg), ..ConfigArgs::default() },
        flush_target: true,
        ack_interval: 0.05,
        max_retries: retries,
        log_interval: 3600,
        queue_mib: 16,
        restore_max_bytes: 1 << 20,
        mset_keys: 64,
        listening_port: 6380,
        wait_timeout_ms: 1000,
        cross_slot: "fail".into(),
        ..ReplicateArgs::default()
    };
    let mut s = Settings::from_args(&args).unwrap();
    s.status_file = None;
    s
}

fn ca_yaml(p: &Path) -> String {
    format!("{{caFile: '{}'}}", p.display())
}

fn mtls_yaml(pki: &Pki) -> String {
    format!(
        "{{caFile: '{}', certFile: '{}', keyFile: '{}'}}",
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    )
}

async fn tls_redis(pki: &Pki, mutual: bool) -> RedisServer {
    RedisServer::start_with(ServerOptions { tls: Some(pki.redis(mutual)), ..ServerOptions::default() }).await.unwrap()
}

/// A session that must fail: `max_retries` 1, bounded by the deadline.
async fn failing_run(s: Settings) -> String {
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let r = tokio::time::timeout(DEADLINE, run_with(s, stop_rx, Arc::new(Status::default())))
        .await
        .expect("a failing TLS session must end, not hang");
    match r {
        // (a target that refuses before the first session counts as fatal)
        Err(e @ (ReplicateError::Exhausted(..) | ReplicateError::Fatal(_))) => e.to_string(),
        other => panic!("expected the session to fail: {other:?}"),
    }
}

#[derive(Parser)]
struct VerifyCli {
    #[command(flatten)]
    v: df2redis::verify::cli::VerifyArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_and_verify_over_tls() {
    let pki = pki();
    let redis = tls_redis(&pki, false).await;
    let m = master().start_tls(&pki.mock(false)).await.unwrap();
    let src = m.addr.to_string();
    let state = replicate_common::state_dir("tls-e2e");
    let s = settings(&state, &src, &ca_yaml(&pki.ca), redis.addr(), &ca_yaml(&pki.ca), 0);
    assert!(s.source.tls.is_some() && s.target.tls.is_some());
    let status = Arc::new(Status::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(s, stop_rx, status.clone()));
    caught_up(&status, &m.handle).await;
    // The journal over TLS too.
    m.handle.exec(0, &["SET", "live", "after-full-sync"]);
    m.handle.exec(1, &["HSET", "h", "f", "v2"]);
    caught_up(&status, &m.handle).await;
    let mut c = redis.connect().await.unwrap();
    assert_eq!(c.request(&Cmd::new("GET").arg("live")).await.unwrap(), Frame::Bulk("after-full-sync".into()));
    assert_eq!(c.request(&Cmd::new("DBSIZE")).await.unwrap(), Frame::Integer(203)); // db 0 (+ the marker)

    // `df2redis verify` over TLS on both sides, flags only.
    let ca = pki.ca.display().to_string();
    let cli = VerifyCli::try_parse_from([
        "verify",
        "--source-addr",
        &src,
        "--source-tls-ca-file",
        &ca,
        "--target-addr",
        redis.addr(),
        "--target-tls-ca-file",
        &ca,
        "--mode",
        "full",
        "--compare-times",
        "1",
    ])
    .unwrap();
    let plan = cli.v.plan().unwrap();
    assert!(plan.config.source.tls.enabled && plan.config.target.as_ref().unwrap().tls.enabled);
    let report = df2redis::verify::cli::execute(&plan, df2redis::verify::progress::Progress::hidden()).await.unwrap();
    assert_eq!(report.source_keys, 203, "{report:?}");
    assert!(report.diffs.is_empty(), "{:?}", report.diffs);

    // And a difference is seen over TLS.
    c.request(&Cmd::new("DEL").arg("k5")).await.unwrap();
    let report = df2redis::verify::cli::execute(&plan, df2redis::verify::progress::Progress::hidden()).await.unwrap();
    assert_eq!(report.diffs.len(), 1, "{:?}", report.diffs);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_both_sides() {
    let pki = pki();
    let redis = tls_redis(&pki, true).await;
    let m = master().start_tls(&pki.mock(true)).await.unwrap();
    let src = m.addr.to_string();

    // Without a client certificate: clear errors from Redis and from the master.
    let no_cert = TlsClient::new(&pki.client(false)).unwrap();
    for addr in [redis.addr(), src.as_str()] {
        let opts = ConnectOptions { tls: Some(no_cert.clone()), ..ConnectOptions::default() };
        let err = match Connection::connect(addr, &opts).await {
            // TLS 1.3: the server's refusal arrives after the client finished its handshake.
            Ok(mut c) => c.request(&Cmd::new("PING")).await.unwrap_err(),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.contains(addr) && text.contains("client certificate"), "{addr}: {text}");
    }
    let state = replicate_common::state_dir("tls-mtls-fail");
    let e = failing_run(settings(&state, &src, &ca_yaml(&pki.ca), redis.addr(), &mtls_yaml(&pki), 1)).await;
    assert!(e.contains("source") && e.contains(&src) && e.contains("client certificate"), "{e}");
    let state = replicate_common::state_dir("tls-mtls-fail-target");
    let e = failing_run(settings(&state, &src, &mtls_yaml(&pki), redis.addr(), &ca_yaml(&pki.ca), 1)).await;
    assert!(e.contains("target") && e.contains(redis.addr()) && e.contains("client certificate"), "{e}");

    // With certificates: replicates.
    let state = replicate_common::state_dir("tls-mtls");
    let s = settings(&state, &src, &mtls_yaml(&pki), redis.addr(), &mtls_yaml(&pki), 0);
    let status = Arc::new(Status::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(run_with(s, stop_rx, status.clone()));
    caught_up(&status, &m.handle).await;
    let mut c = redis.connect().await.unwrap();
    assert_eq!(c.request(&Cmd::new("DBSIZE")).await.unwrap(), Frame::Integer(202)); // db 0 (+ the marker)
    stop_tx.send(true).unwrap();
    tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_names_the_endpoint() {
    let pki = pki();
    let redis = tls_redis(&pki, false).await;
    let m = master().start_tls(&pki.mock(false)).await.unwrap();
    let src = m.addr.to_string();
    let state = replicate_common::state_dir("tls-wrong-ca-target");
    let e = failing_run(settings(&state, &src, &ca_yaml(&pki.ca), redis.addr(), &ca_yaml(&pki.wrong_ca), 1)).await;
    assert!(e.contains("target") && e.contains(redis.addr()) && e.contains("not signed by a CA we trust"), "{e}");
    let state = replicate_common::state_dir("tls-wrong-ca-source");
    let e = failing_run(settings(&state, &src, &ca_yaml(&pki.wrong_ca), redis.addr(), &ca_yaml(&pki.ca), 1)).await;
    assert!(e.contains("source") && e.contains(&src) && e.contains("not signed by a CA we trust"), "{e}");
    // A name the certificate does not hold.
    let tls =
        TlsClient::new(&df2redis::config::Tls { server_name: Some("other.test".into()), ..pki.client(false) }).unwrap();
    let e = Connection::connect(redis.addr(), &ConnectOptions { tls: Some(tls), ..ConnectOptions::default() })
        .await
        .unwrap_err();
    assert!(matches!(e, RespError::Tls { .. }) && e.to_string().contains("not valid for `other.test`"), "{e}");
    // insecureSkipVerify: any certificate is accepted (the session is still encrypted).
    let tls = TlsClient::new(&df2redis::config::Tls {
        ca_file: Some(pki.wrong_ca.clone()),
        insecure_skip_verify: true,
        ..pki.client(false)
    })
    .unwrap();
    assert!(tls.is_insecure());
    let mut c = Connection::connect(redis.addr(), &ConnectOptions { tls: Some(tls), ..ConnectOptions::default() })
        .await
        .unwrap();
    assert_eq!(c.request(&Cmd::new("PING")).await.unwrap(), Frame::Simple("PONG".into()));
    // serverName naming a SAN the certificate has works with any address.
    let tls =
        TlsClient::new(&df2redis::config::Tls { server_name: Some("df.test".into()), ..pki.client(false) }).unwrap();
    let mut c = Connection::connect(redis.addr(), &ConnectOptions { tls: Some(tls), ..ConnectOptions::default() })
        .await
        .unwrap();
    assert_eq!(c.request(&Cmd::new("PING")).await.unwrap(), Frame::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_and_tls_mismatches_fail_fast_and_clearly() {
    let pki = pki();
    let tls_redis = tls_redis(&pki, false).await;
    let plain_redis = RedisServer::start().await.unwrap();
    let tls_master = MockMaster::new().start_tls(&pki.mock(false)).await.unwrap();
    let plain_master = MockMaster::new().start().await.unwrap();
    let tls = TlsClient::new(&pki.client(false)).unwrap();
    let quick = Duration::from_secs(2);
    let bound = Duration::from_secs(15);

    // TLS client → plain-text server: the server answers in plain text, or waits silently for
    // more bytes; either way a clear error within the handshake bound.
    for addr in [plain_redis.addr().to_string(), plain_master.addr.to_string()] {
        let opts = ConnectOptions { tls: Some(tls.clone()), connect_timeout: quick, ..ConnectOptions::default() };
        let e = tokio::time::timeout(bound, Connection::connect(&addr, &opts)).await.unwrap().unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&addr), "{text}");
        assert!(
            text.contains("did not answer in TLS")
                || text.contains("no TLS answer")
                || text.contains("closed the connection during the handshake"),
            "{addr}: {text}"
        );
    }

    // Plain-text client → TLS server.
    for addr in [tls_redis.addr().to_string(), tls_master.addr.to_string()] {
        let opts =
            ConnectOptions { connect_timeout: quick, response_timeout: Some(quick), ..ConnectOptions::default() };
        let e = tokio::time::timeout(bound, async {
            let mut c = Connection::connect(&addr, &opts).await?;
            c.request(&Cmd::new("PING")).await
        })
        .await
        .unwrap()
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&addr), "{text}");
        assert!(text.contains("expects TLS"), "{addr}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_target_over_tls() {
    let pki = pki();
    // 3 masters serving TLS only, bus and replication over TLS, announcing 127.0.0.1 (an IP SAN
    // of the server certificate): discovery, per-node pipelines and markers all speak TLS.
    let cluster = df2redis::testkit::RedisCluster::start_with(
        3,
        0,
        ServerOptions { tls: Some(pki.redis(false)), ..ServerOptions::default() },
    )
    .await
    .unwrap();
    let m = master_with_hash_in(0).start_tls(&pki.mock(false)).await.unwrap();
    let src = m.addr.to_string();
    let state = replicate_common::state_dir("tls-cluster");
    let cfg = state.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "taskName: tlsc\nstateDir: {s}\n\
             source: {{type: dragonfly, addr: '{src}', tls: {ca}}}\n\
             target: {{type: redis-cluster, addr: '{seed}', tls: {ca}}}\n\
             checkpoint: {{enabled: true, intervalSeconds: 1, path: {s}/checkpoint.json}}\n",
            ca = ca_yaml(&pki.ca),
            seed = cluster.seed(),
            s = state.display()
        ),
    )
    .unwrap();
    let s = from_config(cfg, 0);
    let status = Arc::new(Status::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut run = tokio::spawn(run_with(s, stop_rx, status.clone()));
    tokio::select! {
        () = caught_up(&status, &m.handle) => {}
        r = &mut run => panic!("replicate ended: {r:?}"),
    }
    m.handle.exec(0, &["SET", "live", "over-tls"]);
    caught_up(&status, &m.handle).await;
    let map = cluster.slot_map().await.unwrap();
    let mut total = 0;
    for n in map.nodes() {
        let tls = df2redis::testkit::tls_for(&n.addr).expect("a TLS node");
        let mut c = Connection::connect(&n.addr, &ConnectOptions { tls: Some(tls), ..ConnectOptions::default() })
            .await
            .unwrap();
        let keys = c.request(&Cmd::new("KEYS").arg("*")).await.unwrap().into_array().unwrap();
        total += keys.iter().filter(|k| !k.to_string_lossy().starts_with("df2redis:")).count();
    }
    assert_eq!(total, 203, "200 strings + ttl + h + live across the masters");
    // verify over TLS against the cluster (topology, per-node pools).
    let ca = pki.ca.display().to_string();
    let plan = VerifyCli::try_parse_from([
        "verify",
        "--source-addr",
        &src,
        "--source-tls-ca-file",
        &ca,
        "--target-addr",
        cluster.seed(),
        "--target-tls-ca-file",
        &ca,
        "--compare-times",
        "1",
    ])
    .unwrap()
    .v
    .plan()
    .unwrap();
    let report = df2redis::verify::cli::execute(&plan, df2redis::verify::progress::Progress::hidden()).await.unwrap();
    assert!(report.target.contains("cluster"), "{}", report.target);
    assert_eq!(report.source_keys, 203, "{report:?}");
    assert!(report.diffs.is_empty(), "{:?}", report.diffs);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_2_naming_the_endpoint_on_a_tls_failure() {
    let pki = pki();
    let redis = tls_redis(&pki, false).await;
    let m = master().start_tls(&pki.mock(false)).await.unwrap();
    let src = m.addr.to_string();
    let run = |args: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_df2redis"))
            .args(args)
            .env_remove("DF2REDIS_LOG_FORMAT")
            .stdin(std::process::Stdio::null())
            .output()
    };
    let (ca, wrong) = (pki.ca.display().to_string(), pki.wrong_ca.display().to_string());
    let args = |target_ca: &str| -> Vec<String> {
        [
            "verify",
            "--no-progress",
            "--compare-times",
            "1",
            "--source-addr",
            &src,
            "--source-tls-ca-file",
            &ca,
            "--target-addr",
            redis.addr(),
            "--target-tls-ca-file",
            target_ca,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let out = tokio::time::timeout(DEADLINE, run(args(&wrong))).await.unwrap().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("target") && err.contains(redis.addr()) && err.contains("not signed by a CA we trust"),
        "{err}"
    );
    let out = tokio::time::timeout(DEADLINE, run(args(&ca))).await.unwrap().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the marker-less target lacks every key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // replicate: a key file that is not a key is refused at start, naming the config key.
    let key_is_cert = pki.server_cert.display().to_string();
    let out = run(vec![
        "replicate".into(),
        "--source-addr".into(),
        src.clone(),
        "--target-addr".into(),
        redis.addr().into(),
        "--target-tls-ca-file".into(),
        ca.clone(),
        "--target-tls-cert-file".into(),
        pki.client_cert.display().to_string(),
        "--target-tls-key-file".into(),
        key_is_cert,
    ])
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("target.tls.keyFile") && err.contains("no PEM private key"), "{err}");
}
