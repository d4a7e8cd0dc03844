//! Test PKI generated at runtime with rcgen (no key material in the repo): a CA, a server
//! certificate for 127.0.0.1 / localhost / `df.test` (also usable as a client certificate: a TLS
//! cluster's bus always authenticates both ends), a client certificate, and an unrelated "wrong"
//! CA, written as PEM files into a temporary directory.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use df2redis::config::Tls;
use df2redis::testkit::ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The generated files (removed with `dir`).
pub struct Pki {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// Server certificate (SAN 127.0.0.1, localhost, df.test).
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// Client certificate (signed by `ca`).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A CA that signed nothing here.
    pub wrong_ca: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: &[ExtendedKeyUsagePurpose],
) -> (String, String) {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = usage.to_vec();
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Generates the PKI.
pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let root = ca("df2redis test CA");
    let (sc, sk) = leaf(
        &root,
        "df2redis test server",
        &["127.0.0.1", "localhost", "df.test"],
        &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    );
    let (cc, ck) = leaf(&root, "df2redis test client", &[], &[ExtendedKeyUsagePurpose::ClientAuth]);
    let wrong = ca("unrelated CA");
    Pki {
        ca: write("ca.pem", &root.pem()),
        server_cert: write("server.pem", &sc),
        server_key: write("server.key", &sk),
        client_cert: write("client.pem", &cc),
        client_key: write("client.key", &ck),
        wrong_ca: write("wrong-ca.pem", &wrong.pem()),
        dir,
    }
}

impl Pki {
    /// Files for a TLS redis-server; `mutual`: it requires client certificates (the harness
    /// then presents the client certificate).
    pub fn redis(&self, mutual: bool) -> ServerTls {
        ServerTls {
            cert_file: self.server_cert.clone(),
            key_file: self.server_key.clone(),
            ca_file: self.ca.clone(),
            auth_clients: mutual,
            client_cert: mutual.then(|| (self.client_cert.clone(), self.client_key.clone())),
        }
    }

    /// Files for a TLS mock master; `mutual`: it requires client certificates.
    pub fn mock(&self, mutual: bool) -> mock_master::tls::TlsFiles {
        mock_master::tls::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mutual.then(|| self.ca.clone()),
        }
    }

    /// Client settings trusting our CA, with or without the client certificate.
    pub fn client(&self, with_cert: bool) -> Tls {
        Tls {
            enabled: true,
            ca_file: Some(self.ca.clone()),
            cert_file: with_cert.then(|| self.client_cert.clone()),
            key_file: with_cert.then(|| self.client_key.clone()),
            server_name: None,
            insecure_skip_verify: false,
        }
    }
}
