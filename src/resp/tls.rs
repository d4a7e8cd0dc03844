//! TLS for every outgoing connection: [`TlsClient`] (one rustls client config per endpoint: trust
//! roots, optional client certificate, SNI override, or the dangerous no-verify mode), the one
//! stream type [`Stream`] (plain TCP or TLS, splittable into owned halves) and the one
//! [`connect`] every connector uses (RESP connections, the target pipelines, cluster nodes,
//! Dragonfly flows), with bounded TCP connect and handshake times and errors that say why.
//!
//! rustls runs on the `ring` provider. SNI and certificate names: `tls.serverName` when set,
//! otherwise the host of the address dialled — for a cluster that is the address each node
//! announces, so nodes announcing IPs need IP SANs in their certificate or a `serverName`.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::config::Tls;

/// The TLS stream over TCP.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS setting that cannot be used; `key` is the config key it came from (`caFile`,
/// `certFile`, `keyFile`, `serverName`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("{}: {reason}", path.display())]
    File {
        /// Config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A setting that is wrong without a file involved.
    #[error("{reason}")]
    Setting {
        /// Config key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl TlsError {
    /// The config key (under `<endpoint>.tls.`) the error belongs to.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::File { key, .. } | TlsError::Setting { key, .. } => key,
        }
    }
}

/// Client TLS for one endpoint. Cheap to clone (the rustls config is shared).
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    insecure: bool,
    client_cert: bool,
    roots: Arc<str>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("insecure_skip_verify", &self.insecure)
            .field("client_cert", &self.client_cert)
            .field("roots", &self.roots)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(key: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File { key, path: path.to_path_buf(), reason: reason.into() }
}

/// Reads every certificate of a PEM file (`key` names the setting in errors).
pub fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    std::fs::metadata(path).map_err(|e| file_err(key, path, format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_err(key, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    std::fs::metadata(path).map_err(|e| file_err(key, path, format!("cannot read: {e}")))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file_err(key, path, "holds no PEM private key (expected -----BEGIN ... PRIVATE KEY-----)")
        }
        e => file_err(key, path, format!("not a PEM private key file: {e}")),
    })
}

impl TlsClient {
    /// Builds the client config an endpoint's `tls` settings describe (whether or not
    /// `enabled`): reads and checks the CA, certificate and key files.
    pub fn new(tls: &Tls) -> Result<TlsClient, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setting { key: "enabled", reason: format!("TLS provider: {e}") })?;
        let (builder, roots) = if tls.insecure_skip_verify {
            let b = builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)));
            (b, "none (insecureSkipVerify)".to_string())
        } else {
            let mut store = RootCertStore::empty();
            let roots = match &tls.ca_file {
                Some(ca) => {
                    let (added, _) = store.add_parsable_certificates(load_certs("caFile", ca)?);
                    if added == 0 {
                        return Err(file_err("caFile", ca, "holds no usable CA certificate"));
                    }
                    format!("tls.caFile {}", ca.display())
                }
                None => {
                    let native = rustls_native_certs::load_native_certs();
                    let (added, _) = store.add_parsable_certificates(native.certs);
                    if added == 0 {
                        return Err(TlsError::Setting {
                            key: "caFile",
                            reason: "no platform CA certificates found (install ca-certificates or set caFile)".into(),
                        });
                    }
                    "the platform CA roots".to_string()
                }
            };
            (builder.with_root_certificates(store), roots)
        };
        let config = match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                let chain = load_certs("certFile", cert)?;
                let key_der = load_key("keyFile", key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| file_err("keyFile", key, format!("unusable with certFile {}: {e}", cert.display())))?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsError::Setting { key: "keyFile", reason: "missing: certFile needs keyFile".into() })
            }
            (None, Some(_)) => {
                return Err(TlsError::Setting { key: "certFile", reason: "missing: keyFile needs certFile".into() })
            }
        };
        let server_name = match &tls.server_name {
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| TlsError::Setting {
                key: "serverName",
                reason: format!("`{n}` is not a valid DNS name or IP address"),
            })?),
            None => None,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            insecure: tls.insecure_skip_verify,
            client_cert: tls.cert_file.is_some(),
            roots: roots.into(),
        })
    }

    /// The client for an endpoint's settings, or `None` when TLS is off.
    pub fn for_endpoint(tls: &Tls) -> Result<Option<TlsClient>, TlsError> {
        if tls.enabled {
            TlsClient::new(tls).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Whether certificates are not verified (`insecureSkipVerify`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Logs the loud warning `insecureSkipVerify` deserves; call once per endpoint at start.
    pub fn warn_if_insecure(&self, endpoint: &str) {
        if self.insecure {
            warn_insecure(endpoint);
        }
    }

    /// The name the certificate is checked against (and sent as SNI) when dialling `addr`.
    pub fn server_name_for(&self, addr: &str) -> io::Result<ServerName<'static>> {
        if let Some(n) = &self.server_name {
            return Ok(n.clone());
        }
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h,
            None => addr,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS: `{host}` is not a valid certificate name; set tls.serverName"),
            )
        })
    }

    fn hint(&self, e: &rustls::Error, name: &ServerName<'_>) -> String {
        let name = name.to_str();
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "the server's certificate is not signed by a CA we trust ({}): set tls.caFile to the CA that \
                     signed it",
                    self.roots
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                    "the server's certificate is not valid for `{name}` ({e}): set tls.serverName to a name the \
                     certificate holds, or give the certificate a SAN for `{name}` (cluster nodes announcing IPs \
                     need IP SANs)"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the server's certificate has expired ({e})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("the server's certificate is not valid yet ({e}); check the clocks")
                }
                _ => format!("the server's certificate was rejected: {e}"),
            },
            rustls::Error::AlertReceived(a) => match a {
                AlertDescription::CertificateRequired => format!(
                    "the server requires a client certificate{}",
                    if self.client_cert { " and refused ours" } else { ": set tls.certFile and tls.keyFile" }
                ),
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateUnknown => {
                    if self.client_cert {
                        format!("the server rejected our client certificate (alert {a:?}): is it signed by a CA the server trusts?")
                    } else {
                        format!("the server refused the handshake (alert {a:?}); it may require a client certificate (tls.certFile, tls.keyFile)")
                    }
                }
                AlertDescription::HandshakeFailure | AlertDescription::ProtocolVersion => format!(
                    "the server refused the handshake (alert {a:?}): no common TLS version / cipher suite{}",
                    if self.client_cert {
                        ""
                    } else {
                        ", or it requires a client certificate (tls.certFile, tls.keyFile)"
                    }
                ),
                _ => format!("the server sent the TLS alert {a:?}"),
            },
            rustls::Error::InvalidMessage(_) => format!(
                "the server did not answer in TLS ({e}): is it a plain-text port? (disable tls, or use the server's \
                 TLS port)"
            ),
            other => format!("{other}"),
        }
    }
}

/// The loud warning for `insecureSkipVerify` on `endpoint` (`source`, `target`).
pub fn warn_insecure(endpoint: &str) {
    tracing::warn!(
        endpoint,
        "TLS certificate verification is OFF for the {endpoint} (tls.insecureSkipVerify): the connection is \
         encrypted but anyone on the path can impersonate the server. Use caFile instead outside tests."
    );
}

/// Skips certificate checks (`insecureSkipVerify`), still checking handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why [`connect`] failed. The peer address is added by the caller's error type.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable, DNS...).
    #[error("{0}")]
    Tcp(#[source] io::Error),
    /// TCP connect or the TLS handshake took too long.
    #[error("timed out after {after:?} while {what}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The bound.
        after: Duration,
    },
    /// The TLS handshake failed; the text says why and what to change.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

impl ConnectError {
    /// As an `io::Error` (for callers whose errors carry I/O errors).
    pub fn into_io(self) -> io::Error {
        match self {
            ConnectError::Tcp(e) => e,
            e @ ConnectError::Timeout { .. } => io::Error::new(io::ErrorKind::TimedOut, e.to_string()),
            e @ ConnectError::Handshake(_) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        }
    }
}

/// Opens a TCP connection to `addr` (`host:port`), with `TCP_NODELAY`, and runs the TLS handshake
/// when `tls` is given. TCP connect and the handshake are each bounded by `timeout`.
pub async fn connect(addr: &str, tls: Option<&TlsClient>, timeout: Duration) -> Result<Stream, ConnectError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r.map_err(ConnectError::Tcp)?,
        Err(_) => return Err(ConnectError::Timeout { what: "connecting (TCP)", after: timeout }),
    };
    tcp.set_nodelay(true).map_err(ConnectError::Tcp)?;
    let Some(tls) = tls else { return Ok(Stream::Plain(tcp, FirstRead::default())) };
    let name = tls.server_name_for(addr).map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match tokio::time::timeout(timeout, connector.connect(name.clone(), tcp)).await {
        Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => Err(ConnectError::Handshake(match rustls_error(&e) {
            Some(r) => tls.hint(r, &name),
            None if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => {
                "the server closed the connection during the handshake (a plain-text server, or one that refused \
                 our client certificate)"
                    .to_string()
            }
            None => e.to_string(),
        })),
        Err(_) => Err(ConnectError::Timeout {
            what: "doing the TLS handshake (no TLS answer: a plain-text server waits silently for more of our \
                   ClientHello; check that this port serves TLS)",
            after: timeout,
        }),
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// Rewrites an I/O error carrying a TLS failure after the handshake (e.g. TLS 1.3 servers send
/// "certificate required" only then) into one that says so.
fn explain_io(e: io::Error) -> io::Error {
    match rustls_error(&e) {
        Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) => io::Error::new(
            e.kind(),
            "TLS: the server requires a client certificate (alert CertificateRequired): set tls.certFile and \
             tls.keyFile, signed by a CA the server trusts",
        ),
        Some(rustls::Error::AlertReceived(a @ (AlertDescription::UnknownCA | AlertDescription::BadCertificate))) => {
            io::Error::new(e.kind(), format!("TLS: the server rejected our client certificate (alert {a:?})"))
        }
        Some(r) => io::Error::new(e.kind(), format!("TLS: {r}")),
        None => e,
    }
}

/// Notices a TLS server answering a plain-text client: the first bytes read are a TLS record.
#[derive(Debug, Default)]
pub struct FirstRead {
    seen: bool,
}

impl FirstRead {
    fn check(&mut self, buf: &ReadBuf<'_>, before: usize) -> io::Result<()> {
        if self.seen || buf.filled().len() == before {
            return Ok(());
        }
        self.seen = true;
        let got = &buf.filled()[before..];
        // A TLS record: content type alert (21) or handshake (22), then major version 3.
        if matches!(got[0], 0x15 | 0x16) && got.get(1).is_none_or(|&v| v == 3) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server answered with a TLS record: it expects TLS (enable tls for this endpoint)",
            ));
        }
        Ok(())
    }
}

/// A connection to a server: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// Plain text.
    Plain(TcpStream, FirstRead),
    /// TLS.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The TCP socket underneath (for socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s, _) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Owned read and write halves (plain TCP splits without a lock).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s, first) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r, first), WriteHalf::Plain(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

fn poll_read_checked<R: AsyncRead + Unpin>(
    r: &mut R,
    first: &mut FirstRead,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let before = buf.filled().len();
    match Pin::new(r).poll_read(cx, buf) {
        Poll::Ready(Ok(())) => Poll::Ready(first.check(buf, before)),
        // OpenSSL servers (Redis) reset a plain-text client on its first bytes.
        Poll::Ready(Err(e)) if !first.seen && e.kind() == io::ErrorKind::ConnectionReset => {
            Poll::Ready(Err(io::Error::new(
                e.kind(),
                format!("{e}, before any reply: if the server expects TLS, enable tls for this endpoint"),
            )))
        }
        other => other,
    }
}

fn tls_read<R: AsyncRead + Unpin>(r: &mut R, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    Pin::new(r).poll_read(cx, buf).map_err(explain_io)
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s, first) => poll_read_checked(s, first, cx, buf),
            Stream::Tls(s) => tls_read(s, cx, buf),
        }
    }
}

macro_rules! delegate_write {
    ($ty:ident, $plain:pat => $p:ident, $tls:pat => $t:ident) => {
        impl AsyncWrite for $ty {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $plain => Pin::new($p).poll_write(cx, buf),
                    $tls => Pin::new($t).poll_write(cx, buf).map_err(explain_io),
                }
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $plain => Pin::new($p).poll_write_vectored(cx, bufs),
                    $tls => Pin::new($t).poll_write_vectored(cx, bufs).map_err(explain_io),
                }
            }
            fn is_write_vectored(&self) -> bool {
                match self {
                    $plain => $p.is_write_vectored(),
                    $tls => $t.is_write_vectored(),
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $plain => Pin::new($p).poll_flush(cx),
                    $tls => Pin::new($t).poll_flush(cx).map_err(explain_io),
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $plain => Pin::new($p).poll_shutdown(cx),
                    $tls => Pin::new($t).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_write!(Stream, Stream::Plain(p, _) => p, Stream::Tls(t) => t);

/// The read half of a [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    /// Plain text.
    Plain(OwnedReadHalf, FirstRead),
    /// TLS.
    Tls(tokio::io::ReadHalf<TlsStream>),
}

/// The write half of a [`Stream`]. With TLS, bytes written may sit encrypted in the session
/// until `flush`: writers must flush after each batch (a no-op on plain TCP).
#[derive(Debug)]
pub enum WriteHalf {
    /// Plain text.
    Plain(OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<TlsStream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s, first) => poll_read_checked(s, first, cx, buf),
            ReadHalf::Tls(s) => tls_read(s, cx, buf),
        }
    }
}

delegate_write!(WriteHalf, WriteHalf::Plain(p) => p, WriteHalf::Tls(t) => t);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_from_address_or_override() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls { enabled: true, insecure_skip_verify: true, ..Tls::default() };
        let c = TlsClient::new(&tls).unwrap();
        assert!(c.is_insecure());
        assert_eq!(c.server_name_for("127.0.0.1:6379").unwrap().to_str(), "127.0.0.1");
        assert_eq!(c.server_name_for("[::1]:6379").unwrap().to_str(), "::1");
        assert_eq!(c.server_name_for("redis.example.com:6379").unwrap().to_str(), "redis.example.com");
        let c = TlsClient::new(&Tls { server_name: Some("db.internal".into()), ..tls.clone() }).unwrap();
        assert_eq!(c.server_name_for("10.0.0.7:7000").unwrap().to_str(), "db.internal");
        let e = TlsClient::new(&Tls { server_name: Some("bad name!".into()), ..tls.clone() }).unwrap_err();
        assert_eq!(e.key(), "serverName");
        // Files: missing, empty, key without cert.
        let missing = dir.path().join("nope.pem");
        let e = TlsClient::new(&Tls { ca_file: Some(missing.clone()), insecure_skip_verify: false, ..tls.clone() })
            .unwrap_err();
        assert_eq!(e.key(), "caFile");
        assert!(e.to_string().contains("nope.pem") && e.to_string().contains("cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let e = TlsClient::new(&Tls { ca_file: Some(empty.clone()), insecure_skip_verify: false, ..tls.clone() })
            .unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = TlsClient::new(&Tls { key_file: Some(empty.clone()), ..tls.clone() }).unwrap_err();
        assert_eq!(e.key(), "certFile");
        let e = TlsClient::new(&Tls { cert_file: Some(empty.clone()), key_file: Some(empty), ..tls }).unwrap_err();
        assert_eq!(e.key(), "certFile");
    }

    #[test]
    fn first_read_spots_tls_records() {
        let mut storage = [0u8; 8];
        let mut buf = ReadBuf::new(&mut storage);
        buf.put_slice(&[0x15, 0x03, 0x03, 0x00, 0x02]);
        assert!(FirstRead::default().check(&buf, 0).is_err());
        let mut storage = [0u8; 8];
        let mut buf = ReadBuf::new(&mut storage);
        buf.put_slice(b"+OK\r\n");
        let mut f = FirstRead::default();
        assert!(f.check(&buf, 0).is_ok());
        // Only the first bytes of the stream are judged.
        let mut storage = [0u8; 8];
        let mut buf = ReadBuf::new(&mut storage);
        buf.put_slice(&[0x16, 0x03]);
        assert!(f.check(&buf, 0).is_ok());
    }
}
