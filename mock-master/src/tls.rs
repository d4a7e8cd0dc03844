//! The mock master's listener transport: plain TCP or TLS (Dragonfly's `--tls` on its main port;
//! replication flows use the same port), turned into boxed read/write halves for the servers.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
pub use tokio_rustls::TlsAcceptor;

/// Read half of a served connection.
pub type Rd = Box<dyn AsyncRead + Send + Unpin>;
/// Write half of a served connection (flush after writing: TLS buffers until then).
pub type Wr = Box<dyn AsyncWrite + Send + Unpin>;

/// Bound on a client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS listener files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

fn bad(path: &Path, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {what}: {e}", path.display()))
}

fn certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let v = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(path, "reading PEM certificates", e))?;
    if v.is_empty() {
        return Err(bad(path, "reading PEM certificates", "none found"));
    }
    Ok(v)
}

impl TlsFiles {
    /// The acceptor these files describe.
    pub fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(certs(ca)?);
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| bad(ca, "client CA", e))?;
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, "reading the PEM key", e))?;
        let cfg = builder.with_single_cert(certs(&self.cert)?, key).map_err(|e| bad(&self.cert, "certificate", e))?;
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}

/// Runs the TLS handshake when `tls` is given (bounded), and splits the connection.
pub async fn accept(sock: TcpStream, tls: Option<&TlsAcceptor>) -> io::Result<(Rd, Wr)> {
    let _ = sock.set_nodelay(true);
    match tls {
        None => {
            let (r, w) = sock.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Some(a) => {
            let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(sock))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            let (r, w) = tokio::io::split(s);
            Ok((Box::new(r), Box::new(w)))
        }
    }
}

/// Writes `bytes` and flushes them.
pub async fn send(w: &mut Wr, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
