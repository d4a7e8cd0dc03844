//! The binary: `mock-master --scenario FILE --port 0` prints the bound address and serves.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::Client;
use mock_master::scenario::Scenario;
use mock_master::Reply;

#[test]
fn example_scenarios_parse_and_build() {
    for f in ["basic.toml", "faults.toml"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(f);
        let s = Scenario::load(&p).unwrap();
        let m = s.build(mock_master::Clock::System).unwrap();
        assert!(!m.build().dataset().is_empty(), "{f}");
    }
}

#[tokio::test]
async fn serves_a_scenario_on_port_0() {
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/basic.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-master"))
        .args(["--scenario", scenario.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();
    assert!(addr.ip().is_loopback());
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["GET", "greeting"]).await, Reply::bulk("hello"));
    assert_eq!(c.cmd(&["SET", "a", "1"]).await, Reply::ok());
    assert_eq!(c.cmd(&["SELECT", "1"]).await, Reply::ok());
    assert_eq!(c.cmd(&["ZSCORE", "leaderboard", "alice"]).await, Reply::bulk("12.5"));
    let info = c.cmd(&["INFO", "SERVER"]).await.as_text().unwrap();
    assert!(info.contains("dragonfly_version:df-v1.40.1"));
    child.kill().unwrap();
    child.wait().unwrap();
}
