//! The `mock-master` binary's TLS listener (`--tls-cert-file/--tls-key-file[/--tls-ca-file]`),
//! driven as a process with certificates generated at runtime: TLS clients are served, plain-text
//! clients are refused, and with a client CA a certificate is required.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use df2redis::config::Tls;
use df2redis::resp::{Cmd, ConnectOptions, Connection, TlsClient};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-master"))
        .args(["--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Proc(child), line.trim().to_owned())
}

#[tokio::test]
async fn tls_listener_serves_tls_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let issue = |sans: Vec<String>, eku: ExtendedKeyUsagePurpose, name: &str| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        let (c, k) = (dir.path().join(format!("{name}.pem")), dir.path().join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let (sc, sk) = issue(vec!["127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth, "server");
    let (cc, ck) = issue(vec![], ExtendedKeyUsagePurpose::ClientAuth, "client");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    let client = |cert: bool| {
        let tls = Tls {
            enabled: true,
            ca_file: Some(ca_file.clone()),
            cert_file: cert.then(|| cc.clone()),
            key_file: cert.then(|| ck.clone()),
            ..Tls::default()
        };
        ConnectOptions { tls: Some(TlsClient::new(&tls).unwrap()), ..ConnectOptions::default() }
    };

    let (_p, addr) = spawn(&["--tls-cert-file".into(), s(&sc), "--tls-key-file".into(), s(&sk)]);
    let mut c = Connection::connect(&addr, &client(false)).await.unwrap();
    let info = c.request(&Cmd::new("INFO").arg("SERVER")).await.unwrap().to_string_lossy();
    assert!(info.contains("dragonfly_version"), "{info}");
    let e = async { Connection::connect(&addr, &ConnectOptions::default()).await?.request(&Cmd::new("PING")).await }
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expects TLS"), "{e}");

    let (_p, addr) = spawn(&[
        "--tls-cert-file".into(),
        s(&sc),
        "--tls-key-file".into(),
        s(&sk),
        "--tls-ca-file".into(),
        s(&ca_file),
    ]);
    let mut c = Connection::connect(&addr, &client(true)).await.unwrap();
    assert_eq!(c.request(&Cmd::new("PING")).await.unwrap().to_string_lossy(), "PONG");
    let e =
        async { Connection::connect(&addr, &client(false)).await?.request(&Cmd::new("PING")).await }.await.unwrap_err();
    assert!(e.to_string().contains("client certificate"), "{e}");
}
