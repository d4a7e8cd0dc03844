//! The `mock-master` binary: serve a scenario (or defaults) or replay a capture.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mock_master::replay::Replay;
use mock_master::scenario::Scenario;
use mock_master::{Clock, Compression, MockMaster, Release};
use tokio::net::TcpListener;

/// A scriptable fake Dragonfly master.
#[derive(Debug, Parser)]
#[command(name = "mock-master", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Port (0 = any free port; the bound address is printed).
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Scenario file (TOML).
    #[arg(long, conflicts_with = "replay")]
    scenario: Option<PathBuf>,
    /// Replay a capture directory (corpus/dragonfly-v*/<name>).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Emulated release when no scenario is given.
    #[arg(long, default_value = "v1.40.1")]
    release: String,
    /// Shards when no scenario is given.
    #[arg(long, default_value_t = 2)]
    shards: u32,
    /// Compression when no scenario is given: none, lzf, zstd, lz4.
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// Serve TLS on the port (like Dragonfly's `--tls`): PEM certificate chain (with --tls-key-file).
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Require client certificates signed by the CAs in this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_ca_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => Some(
            mock_master::tls::TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: args.tls_ca_file.clone() }
                .acceptor()
                .context("TLS files")?,
        ),
        _ => None,
    };
    let listener = TcpListener::bind((args.bind.as_str(), args.port)).await.context("binding")?;
    let addr = listener.local_addr()?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Some(dir) = args.replay {
        let rp = Replay::load(&dir)?;
        println!("{addr}");
        rp.serve_tls(listener, tls, shutdown).await;
        return Ok(());
    }
    let master = match args.scenario {
        Some(p) => Scenario::load(&p)?.build(Clock::System)?,
        None => {
            let release: Release = args.release.parse()?;
            let compression: Compression = serde_json::from_value(serde_json::Value::String(args.compression.clone()))
                .with_context(|| format!("bad --compression {}", args.compression))?;
            MockMaster::new()
                .release(release)
                .shards(args.shards)
                .compression(compression)
                .seed(std::process::id().into())
        }
    };
    println!("{addr}");
    let handle = master.build();
    handle.serve_tls(listener, tls, shutdown).await;
    Ok(())
}
