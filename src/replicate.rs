//! `df2redis replicate`: join a Dragonfly master as a replica and keep a Redis target equal
//! to it — sessions, reconnects with backoff, resume from the checkpoint, shutdown, status.
//! Entry points: [`ReplicateArgs`] (clap) and [`run`] / [`run_with`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::apply::barrier::FlushBarrier;
use crate::apply::caps::TargetCaps;
use crate::apply::conn::{Frame, Pipe, PipeError, PipeOptions};
use crate::apply::entry::{EntryOptions, EntryWriter};
use crate::apply::flow::{ApplyError, FlowApplier, FlowSettings};
use crate::apply::policy::{ConflictPolicy, DbMap, TypePolicies};
use crate::apply::rewrite::Rewriter;
use crate::checkpoint::{self, Checkpoint, Phase};
use crate::config::EndpointKind;
use crate::proto::flow::FlowDecoder;
use crate::proto::Limits;
use crate::replica::flows::open_flow;
use crate::replica::handshake::handshake;
use crate::replica::reader::Reader;
use crate::replica::{ack, SessionError, SourceOpts};
use crate::resp::TlsClient;
use crate::status::{FlowPhase, Status};
use crate::target::cluster::{discover, is_cluster, serving_masters, AdminAuth, ClusterOpts, TargetMode};
use crate::target::node::NodeOptions;
use crate::target::{ClusterSettings, ClusterSink, Sink};
use crate::verify::ratelimit::RateLimiter;

/// `df2redis replicate` flags (the config file provides the rest; see `docs/replicate.md`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReplicateArgs {
    /// Config file and overrides shared with the other subcommands.
    #[command(flatten)]
    pub config: crate::config::ConfigArgs,
    /// Policy for Dragonfly-only data: `POLICY` (default for all kinds) or `KIND=POLICY`;
    /// kinds: json, bloom, cms, topk, cuckoo, hash-field-ttl, set-member-ttl, command;
    /// policies: fail, skip-and-report, degrade. Repeatable.
    #[arg(long = "type-policy", value_name = "[KIND=]POLICY")]
    pub type_policy: Vec<String>,
    /// Conflict policy at the first full sync (overrides conflict.policy): overwrite, skip, panic.
    #[arg(long, value_name = "POLICY")]
    pub conflict: Option<String>,
    /// Source db → target db mapping, e.g. `1=2,3=0`.
    #[arg(long, value_name = "MAP", default_value = "")]
    pub db_map: String,
    /// FLUSHALL the target before the first full sync.
    #[arg(long)]
    pub flush_target: bool,
    /// Do not FLUSHALL the target when a later full sync replaces an earlier one.
    #[arg(long)]
    pub no_resync_flush: bool,
    /// Limit writes to the target to this many commands per second, all flows together
    /// (overrides `advanced.qps`; 0 = unlimited).
    #[arg(long, value_name = "N")]
    pub qps: Option<u64>,
    /// Do not keep LSN markers on the target (standalone: one hash written with each batch;
    /// cluster: one per slot). Faster, but a resume after a crash may then re-apply up to one
    /// checkpoint interval of records.
    #[arg(long)]
    pub no_target_marker: bool,
    /// Database of the marker hash on the target.
    #[arg(long, default_value_t = 0)]
    pub marker_db: u32,
    /// Memory for the queues between the flow sockets and the target writers, in MiB, shared
    /// by all flows (decoded size; at the bound the sockets are not read: TCP back-pressure).
    #[arg(long, default_value_t = 64)]
    pub queue_mib: usize,
    /// Values larger than this (bytes) are built through a temporary key + RENAME.
    #[arg(long, default_value_t = 1 << 20)]
    pub restore_max_bytes: usize,
    /// Standalone target: consecutive plain `SET key value` writes of one db go as one MSET of
    /// up to this many keys (the same overwrites, cheaper for Redis); 0 sends each SET alone.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub mset_keys: usize,
    /// Port announced with REPLCONF listening-port.
    #[arg(long, default_value_t = 6380)]
    pub listening_port: u16,
    /// Seconds between REPLCONF ACKs.
    #[arg(long, default_value_t = 1.0)]
    pub ack_interval: f64,
    /// Give up after this many consecutive failed sessions (0 = never).
    #[arg(long, default_value_t = 0)]
    pub max_retries: u32,
    /// Seconds between status log lines.
    #[arg(long, default_value_t = 10)]
    pub log_interval: u64,
    /// Cluster target: replicas that must hold a batch (`WAIT`) before its LSN is confirmed;
    /// default 1 when every master has a replica, else 0.
    #[arg(long, value_name = "N")]
    pub wait_replicas: Option<u32>,
    /// Cluster target: `WAIT` timeout in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub wait_timeout_ms: u64,
    /// Cluster target: commands with no cluster equivalent: fail or skip-and-report.
    #[arg(long, value_name = "POLICY", default_value = "fail")]
    pub cross_slot: String,
}

/// A run that cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// Configuration.
    #[error("{0}")]
    Config(String),
    /// A failure that retrying will not fix (policy, target rejection, conflict).
    #[error("{0}")]
    Fatal(String),
    /// Retries exhausted.
    #[error("giving up after {0} failed sessions; last error: {1}")]
    Exhausted(u32, String),
}

/// Everything a session needs, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Task name.
    pub task: String,
    /// Source.
    pub source: SourceOpts,
    /// Target.
    pub target: PipeOptions,
    /// Checkpoint file (None: disabled).
    pub checkpoint: Option<PathBuf>,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Status file.
    pub status_file: Option<PathBuf>,
    /// Dashboard.
    pub dashboard: Option<std::net::SocketAddr>,
    /// Policies.
    pub policies: TypePolicies,
    /// Conflict policy.
    pub conflict: ConflictPolicy,
    /// Db mapping.
    pub dbs: DbMap,
    /// Flush before the first full sync.
    pub flush_target: bool,
    /// Flush before a resync.
    pub resync_flush: bool,
    /// Marker `(db, key)`.
    pub marker: Option<(u32, Bytes)>,
    /// Queue bytes, all flows together.
    pub queue_bytes: usize,
    /// Restore threshold.
    pub restore_max_bytes: usize,
    /// Commands per batch.
    pub batch: usize,
    /// Most keys per gathered MSET on a standalone target (0: off).
    pub mset_keys: usize,
    /// Write rate limit (commands/s over all flows); `None`: unlimited.
    pub qps: Option<u64>,
    /// ACK interval.
    pub ack_interval: Duration,
    /// Max consecutive failures.
    pub max_retries: u32,
    /// Status log interval.
    pub log_interval: Duration,
    /// Standalone or cluster target, and the cluster options.
    pub cluster: ClusterOpts,
}

impl Settings {
    /// Resolves flags + config.
    pub fn from_args(a: &ReplicateArgs) -> Result<Settings, ReplicateError> {
        let cfg = a.config.load().map_err(|e| ReplicateError::Config(e.to_string()))?;
        let target = cfg.target.clone().ok_or_else(|| ReplicateError::Config("no target configured".into()))?;
        let tls = |ep: &crate::config::Endpoint, name: &str| {
            let c = TlsClient::for_endpoint(&ep.tls)
                .map_err(|e| ReplicateError::Config(format!("{name}.tls.{}: {e}", e.key())))?;
            if let Some(c) = &c {
                c.warn_if_insecure(name);
            }
            Ok::<_, ReplicateError>(c)
        };
        let (source_tls, target_tls) = (tls(&cfg.source, "source")?, tls(&target, "target")?);
        let mut policies = TypePolicies::default();
        for p in &a.type_policy {
            policies.apply_spec(p).map_err(ReplicateError::Config)?;
        }
        let conflict = match &a.conflict {
            Some(c) => c.parse().map_err(ReplicateError::Config)?,
            None => match cfg.conflict {
                crate::config::ConflictPolicy::Overwrite => ConflictPolicy::Overwrite,
                crate::config::ConflictPolicy::Skip => ConflictPolicy::Skip,
                crate::config::ConflictPolicy::Panic => ConflictPolicy::Panic,
            },
        };
        let dbs = DbMap::parse(&a.db_map).map_err(ReplicateError::Config)?;
        let pw = |e: &crate::config::Endpoint| e.password.as_ref().map(|s| s.expose().to_string());
        Ok(Settings {
            task: cfg.task_name.clone(),
            source: SourceOpts {
                addr: cfg.source.addr.to_string(),
                username: cfg.source.username.clone(),
                password: pw(&cfg.source),
                listening_port: a.listening_port,
                client_id: format!("df2redis-{}", cfg.task_name),
                tls: source_tls,
            },
            target: PipeOptions {
                addr: target.addr.to_string(),
                username: target.username.clone(),
                password: pw(&target),
                max_batches_in_flight: 256,
                conflict,
                tls: target_tls,
            },
            checkpoint: cfg.checkpoint.enabled.then(|| cfg.checkpoint.path.clone()),
            checkpoint_interval: cfg.checkpoint.interval,
            status_file: Some(cfg.status_file.clone()),
            dashboard: cfg.dashboard,
            policies,
            conflict,
            dbs,
            flush_target: a.flush_target,
            resync_flush: !a.no_resync_flush,
            marker: (!a.no_target_marker).then(|| (a.marker_db, Bytes::from(checkpoint::marker_key(&cfg.task_name)))),
            queue_bytes: a.queue_mib.max(1) << 20,
            restore_max_bytes: a.restore_max_bytes,
            batch: cfg.advanced.batch_size.max(16),
            mset_keys: a.mset_keys,
            qps: a.qps.or(cfg.advanced.qps).filter(|q| *q > 0),
            ack_interval: Duration::from_secs_f64(a.ack_interval.max(0.01)),
            max_retries: a.max_retries,
            log_interval: Duration::from_secs(a.log_interval.max(1)),
            cluster: ClusterOpts {
                mode: match target.kind {
                    EndpointKind::RedisStandalone => TargetMode::Standalone,
                    EndpointKind::RedisCluster => TargetMode::Cluster,
                    EndpointKind::Auto => TargetMode::Auto,
                    EndpointKind::Dragonfly => {
                        return Err(ReplicateError::Config("target.type dragonfly is not a replicate target".into()))
                    }
                },
                seeds: target.seeds.iter().map(|a| a.to_string()).collect(),
                wait_replicas: a.wait_replicas,
                wait_timeout_ms: a.wait_timeout_ms,
                cross_slot: a.cross_slot.parse().map_err(ReplicateError::Config)?,
            },
        })
    }
}

/// Runs until SIGINT/SIGTERM (exit 0 after a drain and a final checkpoint) or a fatal error.
pub async fn run(args: ReplicateArgs) -> Result<(), ReplicateError> {
    run_status(args, Arc::new(Status::default())).await
}

/// [`run`] with a status the caller also reads (progress bars, embedding).
pub async fn run_status(args: ReplicateArgs, status: Arc<Status>) -> Result<(), ReplicateError> {
    let settings = Settings::from_args(&args)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("signal received: stopping reads, draining, writing the final checkpoint");
        let _ = stop_tx.send(true);
    });
    run_with(settings, stop_rx, status).await
}

fn dump_encoder(v: &crate::proto::Value, rdb_version: u16) -> Option<Bytes> {
    let ty = crate::proto::value::choose_type(v, &crate::proto::value::Dialect::redis(rdb_version)).ok()?;
    crate::proto::dump::encode_dump(v, ty, rdb_version).ok().map(Bytes::from)
}

fn dump_decoder(p: &[u8]) -> Option<crate::proto::Value> {
    crate::proto::dump::decode_dump(p, &Limits::default()).ok()
}

enum End {
    Stopped,
}

/// Runs with a given stop signal and status (tests, embedding).
pub async fn run_with(s: Settings, stop: watch::Receiver<bool>, status: Arc<Status>) -> Result<(), ReplicateError> {
    let mut s = s;
    let cluster = resolve_cluster(&mut s).await?;
    let s = s;
    status.started_unix_ms.store(crate::apply::now_ms(), Ordering::Relaxed);
    let mut side = JoinSet::new();
    if let Some(addr) = s.dashboard {
        let st = status.clone();
        side.spawn(async move {
            if let Err(e) = crate::status::serve(addr, st).await {
                tracing::error!("dashboard on {addr}: {e}");
            }
        });
    }
    {
        let (st, file, every) = (status.clone(), s.status_file.clone(), s.log_interval);
        side.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tick.tick().await;
                n += 1;
                if let Some(f) = &file {
                    let _ = crate::status::write_file(f, &st.snapshot());
                }
                if n % every.as_secs().max(1) == 0 {
                    tracing::info!("{}", st.log_line());
                }
            }
        });
    }
    let caps = target_caps(&s).await.map_err(|e| ReplicateError::Fatal(e.to_string()))?;
    tracing::info!(target = %s.target.addr, version = %caps.version, rdb = caps.rdb_version, json = caps.json, bloom = caps.bloom, "target");
    let mut resume: Option<(String, Vec<u64>)> = None;
    let mut wrote_before = false;
    if let Some(p) = &s.checkpoint {
        match checkpoint::load(p) {
            Ok(Some(cp)) => {
                tracing::info!(path = %p.display(), master = %cp.master_id, phase = ?cp.phase, lsns = ?cp.flows, "checkpoint found");
                wrote_before = true;
                if cp.phase == Phase::Stable {
                    resume = Some((cp.master_id, cp.flows));
                }
            }
            Ok(None) => {}
            Err(e) => return Err(ReplicateError::Config(e.to_string())),
        }
    }
    if resume.is_none() {
        // Killed before the first stable checkpoint (or the file was lost): the target's marker,
        // written atomically with the data, still says exactly where the target is.
        if let Ok(Some((m, lsns))) = marker_resume(&s).await {
            tracing::info!(master = %m, lsns = ?lsns, "resume position taken from the target marker");
            wrote_before = true;
            resume = Some((m, lsns));
        }
    }
    let mut failures = 0u32;
    let mut backoff = Duration::from_millis(500);
    let result = loop {
        if *stop.borrow() {
            break Ok(());
        }
        let out = session(&s, &caps, &status, cluster.clone(), resume.clone(), wrote_before, stop.clone()).await;
        match out {
            Ok((End::Stopped, _)) => break Ok(()),
            Err((e, next_resume, wrote)) => {
                wrote_before |= wrote;
                if next_resume.is_some() {
                    // The session reached stable sync: failures before it were not consecutive.
                    failures = 0;
                    backoff = Duration::from_millis(500);
                }
                resume = next_resume.or(resume.take());
                let fatal = e.fatal;
                status.set_error(Some(e.msg.clone()));
                if fatal {
                    tracing::error!("{}", e.msg);
                    break Err(ReplicateError::Fatal(e.msg));
                }
                if e.full_resync {
                    resume = None;
                }
                failures += 1;
                if s.max_retries > 0 && failures >= s.max_retries {
                    break Err(ReplicateError::Exhausted(failures, e.msg));
                }
                tracing::warn!(retry_in_ms = backoff.as_millis() as u64, "session ended: {}; reconnecting", e.msg);
                let mut st = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = st.wait_for(|v| *v) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    if let Some(f) = &s.status_file {
        let _ = crate::status::write_file(f, &status.snapshot());
    }
    side.abort_all();
    result
}

/// Standalone or cluster: asks the target unless `target.type` says; for a cluster, checks the
/// db mapping, turns the in-transaction marker off (it cannot span slots) and decides `WAIT`.
async fn resolve_cluster(s: &mut Settings) -> Result<Option<Arc<ClusterSettings>>, ReplicateError> {
    let auth = AdminAuth {
        username: s.target.username.clone(),
        password: s.target.password.clone(),
        tls: s.target.tls.clone(),
    };
    let mut seeds = s.cluster.seeds.clone();
    if !seeds.contains(&s.target.addr) {
        seeds.insert(0, s.target.addr.clone());
    }
    let cluster = match s.cluster.mode {
        TargetMode::Standalone => false,
        TargetMode::Cluster => true,
        TargetMode::Auto => {
            let mut last = String::new();
            let mut found = None;
            for a in &seeds {
                match is_cluster(a, &auth).await {
                    Ok(c) => {
                        found = Some(c);
                        break;
                    }
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            found
                .ok_or_else(|| ReplicateError::Fatal(format!("target: cannot tell standalone from cluster: {last}")))?
        }
    };
    if !cluster {
        return Ok(None);
    }
    if let Some((from, to)) = s.dbs.0.iter().map(|(a, b)| (*a, *b)).find(|(_, to)| *to != 0) {
        return Err(ReplicateError::Config(format!(
            "--db-map maps db {from} to db {to}, but a Redis Cluster target has only db 0"
        )));
    }
    for from in s.dbs.0.keys().copied().filter(|f| *f != 0) {
        tracing::warn!(
            db = from,
            "source db {from} is written into db 0 of the cluster: keys of the same name collide"
        );
    }
    let map = discover(&seeds, &auth).await.map_err(|e| ReplicateError::Fatal(format!("target: {e}")))?;
    // Every node known now is a seed later: the configured seed may be the node that crashes.
    for a in map.nodes().iter().flat_map(|n| std::iter::once(&n.addr).chain(&n.replicas)) {
        if !seeds.contains(a) {
            seeds.push(a.clone());
        }
    }
    let masters = serving_masters(&map);
    let with_replicas = map.nodes().iter().filter(|n| masters.contains(&n.addr)).all(|n| !n.replicas.is_empty());
    let wait = s.cluster.wait_replicas.unwrap_or(u32::from(with_replicas));
    tracing::info!(masters = ?masters, wait_replicas = wait, "target is a Redis Cluster");
    let markers = s.marker.take().map(|(_, key)| key);
    if markers.is_some() {
        tracing::info!(
            "cluster target: per-slot LSN markers (one MULTI per slot and batch) make the stable sync exactly once"
        );
    } else {
        tracing::info!(
            "cluster target without markers: resume uses the checkpoint file (exact after a clean stop; after a crash \
             or a lost node connection, records since the last checkpoint are applied again)"
        );
    }
    Ok(Some(Arc::new(ClusterSettings {
        seeds,
        node: NodeOptions {
            username: s.target.username.clone(),
            password: s.target.password.clone(),
            max_batches: s.target.max_batches_in_flight.max(1),
            conflict: s.conflict,
            tls: s.target.tls.clone(),
        },
        wait_replicas: wait,
        wait_timeout_ms: if s.cluster.wait_timeout_ms == 0 { 1000 } else { s.cluster.wait_timeout_ms },
        cross_slot: s.cluster.cross_slot,
        retry_budget: Duration::from_secs(60),
        markers,
    })))
}

async fn target_caps(s: &Settings) -> Result<TargetCaps, PipeError> {
    let mut p = Pipe::connect(&s.target).await?;
    let info = p.request(None, vec![Bytes::from_static(b"INFO"), Bytes::from_static(b"SERVER")]).await?;
    let text = match &info {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let mods = p.request(None, vec![Bytes::from_static(b"MODULE"), Bytes::from_static(b"LIST")]).await?;
    let mut names = Vec::new();
    if let Frame::Array(items) = mods {
        for m in items {
            if let Frame::Array(kv) = m {
                for pair in kv.chunks(2) {
                    if let (Some(Frame::Bulk(k)), Some(Frame::Bulk(v))) = (pair.first(), pair.get(1)) {
                        if &k[..] == b"name" {
                            names.push(String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
            }
        }
    }
    Ok(TargetCaps::from_info(&text, &names))
}

struct SessionFail {
    msg: String,
    fatal: bool,
    full_resync: bool,
}

impl From<SessionError> for SessionFail {
    fn from(e: SessionError) -> Self {
        let full_resync = matches!(e, SessionError::Mixed);
        SessionFail { msg: e.to_string(), fatal: false, full_resync }
    }
}

impl From<ApplyError> for SessionFail {
    fn from(e: ApplyError) -> Self {
        let (fatal, full_resync) = match &e {
            ApplyError::Pipe(PipeError::Io { .. }) | ApplyError::Pipe(PipeError::Closed(_)) => (false, false),
            ApplyError::FlushInFullSync => (false, true),
            ApplyError::Barrier(_) => (false, false),
            _ => (true, false),
        };
        SessionFail { msg: e.to_string(), fatal, full_resync }
    }
}

impl From<PipeError> for SessionFail {
    fn from(e: PipeError) -> Self {
        ApplyError::Pipe(e).into()
    }
}

type SessionOut = Result<(End, ()), (SessionFail, Option<(String, Vec<u64>)>, bool)>;

enum TaskEnd {
    Reader(usize, Result<(), SessionError>),
    Applier(usize, Result<(), ApplyError>),
}

/// The marker hash as a resume position: its master id and flows `0..n` (all present).
async fn marker_resume(s: &Settings) -> Result<Option<(String, Vec<u64>)>, PipeError> {
    let (master, lsns) = read_marker(s, 1024).await?;
    let n = lsns.iter().take_while(|l| l.is_some()).count();
    if n == 0 || lsns[n..].iter().any(Option::is_some) {
        return Ok(None);
    }
    Ok(master.map(|m| (m, lsns.into_iter().take(n).flatten().collect())))
}

/// Reads the marker hash on the target: (`master` field, per-flow LSNs).
async fn read_marker(s: &Settings, n: usize) -> Result<(Option<String>, Vec<Option<u64>>), PipeError> {
    let Some((db, key)) = &s.marker else { return Ok((None, vec![None; n])) };
    let mut p = Pipe::connect(&s.target).await?;
    let r = p.request(Some(*db), vec![Bytes::from_static(b"HGETALL"), key.clone()]).await?;
    let mut master = None;
    let mut lsns = vec![None; n];
    if let Frame::Array(items) = r {
        for pair in items.chunks(2) {
            if let (Some(Frame::Bulk(k)), Some(Frame::Bulk(v))) = (pair.first(), pair.get(1)) {
                let v = String::from_utf8_lossy(v).into_owned();
                if &k[..] == b"master" {
                    master = Some(v);
                } else if let (Ok(i), Ok(l)) = (String::from_utf8_lossy(k).parse::<usize>(), v.parse::<u64>()) {
                    if let Some(slot) = lsns.get_mut(i) {
                        *slot = Some(l);
                    }
                }
            }
        }
    }
    Ok((master, lsns))
}

fn save_cp(s: &Settings, master: &str, version: &str, phase: Phase, flows: Vec<u64>) {
    if let Some(p) = &s.checkpoint {
        let cp = Checkpoint {
            version: 1,
            task: s.task.clone(),
            master_id: master.to_string(),
            phase,
            flows,
            source_version: version.to_string(),
            updated_unix_ms: crate::apply::now_ms(),
        };
        if let Err(e) = checkpoint::save(p, &cp) {
            tracing::error!(path = %p.display(), "writing the checkpoint failed: {e}");
        }
    }
}

#[allow(clippy::too_many_lines)]
async fn session(
    s: &Settings,
    caps: &TargetCaps,
    status: &Arc<Status>,
    cluster: Option<Arc<ClusterSettings>>,
    resume: Option<(String, Vec<u64>)>,
    wrote_before: bool,
    stop: watch::Receiver<bool>,
) -> SessionOut {
    let fail = |e: SessionFail| Err((e, None, false));
    let mut control = match handshake(&s.source).await {
        Ok(c) => c,
        Err(e) => return fail(e.into()),
    };
    let n = control.num_flows;
    let master = control.master_id.clone();
    let version = control.release_text.clone();
    tracing::info!(master = %master, sync = %control.sync_id, flows = n, release = %version, proto = ?control.proto_version, "connected to the master");
    let counters = status.new_session(&master, &version, n);
    // Resume only from the same master with the same shard count; the target marker is exact.
    let lsns: Option<Vec<u64>> = match resume {
        Some((m, l)) if m == master && l.len() == n => {
            let (mm, ml) = match read_marker(s, n).await {
                Ok(x) => x,
                Err(e) => return fail(e.into()),
            };
            Some(checkpoint::reconcile(&l, mm.as_deref(), &ml, &master))
        }
        Some((m, _)) => {
            tracing::warn!(old = %m, new = %master, "master id changed (restart or another node): full resync");
            None
        }
        None => None,
    };
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let lsn = lsns.as_ref().and_then(|l| l.get(i).copied());
        match open_flow(&s.source, &master, &control.sync_id, i, lsn).await {
            Ok(c) => conns.push(c),
            Err(e) => return fail(e.into()),
        }
    }
    let fulls = conns.iter().filter(|c| c.full).count();
    if fulls != 0 && fulls != n {
        return fail(SessionError::Mixed.into());
    }
    let full = fulls == n;
    if full && lsns.is_some() {
        tracing::warn!("the master refused the partial sync (backlog too short or reset): full resync");
    }
    if full {
        status.full_syncs.fetch_add(1, Ordering::Relaxed);
    } else {
        status.partial_syncs.fetch_add(1, Ordering::Relaxed);
        tracing::info!(lsns = ?lsns, "partial sync: resuming the journal");
    }
    // Target connections, one per flow (a cluster: one per flow and master).
    let mut pipes: Vec<Sink> = Vec::with_capacity(n);
    let map = match &cluster {
        Some(c) => match discover(&c.seeds, &c.auth()).await {
            Ok(m) => Some(m),
            Err(e) => return fail(PipeError::Io { addr: s.target.addr.clone(), detail: e.to_string() }.into()),
        },
        None => None,
    };
    for i in 0..n {
        let sink = match (&cluster, &map) {
            (Some(c), Some(m)) => {
                let mut sink = ClusterSink::new(c.clone(), m.clone(), status.cluster.clone());
                if let Some(base) = &c.markers {
                    sink.enable_markers(base, i);
                }
                let mut ready = sink.connect_all().await;
                if ready.is_ok() && !full {
                    ready = sink.load_markers(n).await;
                }
                ready.map(|()| Sink::from(sink))
            }
            _ => Pipe::connect(&s.target).await.map(|mut p| {
                p.coalesce_sets(s.mset_keys);
                Sink::from(p)
            }),
        };
        match sink {
            Ok(p) => pipes.push(p),
            Err(e) => return fail(e.into()),
        }
    }
    let source_aux = match Pipe::connect(&PipeOptions { max_batches_in_flight: 4, ..source_pipe_opts(s) }).await {
        Ok(p) => Some(Arc::new(tokio::sync::Mutex::new(p))),
        Err(e) => return fail(e.into()),
    };
    if full {
        save_cp(s, &master, &version, Phase::FullSync, vec![0; n]);
        let flush = if wrote_before { s.resync_flush } else { s.flush_target };
        if flush {
            tracing::info!(resync = wrote_before, "FLUSHALL on the target before the full sync");
            if let Err(e) = pipes[0].request(None, vec![Bytes::from_static(b"FLUSHALL")]).await {
                // (a cluster sink sends it to every master)
                return fail(e.into());
            }
        } else if let Some((db, key)) = &s.marker {
            if let Err(e) = pipes[0].request(Some(*db), vec![Bytes::from_static(b"DEL"), key.clone()]).await {
                return fail(e.into());
            }
        } else if let Sink::Cluster(c) = &mut pipes[0] {
            if let Err(e) = c.clear_markers().await {
                return fail(e.into());
            }
        }
    }
    let barrier = Arc::new(FlushBarrier::new(n));
    let limiter = s.qps.map(|q| Arc::new(RateLimiter::new(Some(q))));
    let mut tasks: JoinSet<TaskEnd> = JoinSet::new();
    let mut fse_rx = Vec::new();
    let mut ack_parts = Vec::new();
    for (conn, (pipe, c)) in conns.into_iter().zip(pipes.into_iter().zip(counters.iter().cloned())) {
        let i = conn.index;
        let start = lsns.as_ref().filter(|_| !full).and_then(|l| l.get(i).copied());
        let decoder = match start {
            Some(l) if control.direct_partial() => FlowDecoder::journal_only(l, Limits::default()),
            _ => FlowDecoder::full_sync(conn.token, Limits::default()),
        };
        c.set_phase(if start.is_some() { FlowPhase::Stable } else { FlowPhase::FullSync });
        if let Some(l) = start {
            c.lsn_read.store(l, Ordering::Relaxed);
            c.lsn_confirmed.store(l, Ordering::Relaxed);
        }
        let (fse_tx, fse) = watch::channel(false);
        fse_rx.push(fse);
        let (tx, rx) = mpsc::channel(1024);
        let per_flow = (s.queue_bytes / n).max(1 << 20);
        let budget = Arc::new(Semaphore::new(per_flow));
        let reader = Reader {
            flow: i,
            read: conn.read,
            decoder,
            leftover: conn.leftover,
            tx,
            budget,
            budget_max: per_flow,
            counters: c.clone(),
            full_sync_end: fse_tx,
            stop: stop.clone(),
        };
        let mut entries = EntryWriter::new(EntryOptions {
            flow: i,
            restore_max_bytes: s.restore_max_bytes,
            conflict: s.conflict,
            caps: caps.clone(),
            policies: s.policies.clone(),
            dbs: s.dbs.clone(),
            dump: Some(dump_encoder),
        });
        entries.force_overwrite = wrote_before;
        let applier = FlowApplier::new(
            FlowSettings {
                flow: i,
                master_id: master.clone(),
                marker: s.marker.clone(),
                max_batch_cmds: s.batch,
                max_batch_bytes: 1 << 20,
                limiter: limiter.clone(),
            },
            pipe,
            Rewriter::new(caps.clone(), s.policies.clone(), s.dbs.clone()),
            entries,
            barrier.clone(),
            source_aux.clone(),
            Some(dump_decoder),
            c.clone(),
            start.filter(|_| control.direct_partial()),
        );
        ack_parts.push((conn.write, applier.confirmed(), c.clone(), start));
        tasks.spawn(async move { TaskEnd::Reader(i, reader.run().await) });
        tasks.spawn(async move { TaskEnd::Applier(i, applier.run(rx).await) });
    }
    let confirmed_lsns = |counters: &[Arc<crate::status::FlowCounters>]| -> Vec<u64> {
        counters.iter().map(|c| c.lsn_confirmed.load(Ordering::Relaxed)).collect()
    };
    let resume_of = |counters: &[Arc<crate::status::FlowCounters>]| -> Option<(String, Vec<u64>)> {
        counters.iter().all(|c| c.phase() == FlowPhase::Stable).then(|| (master.clone(), confirmed_lsns(counters)))
    };
    // Drive the protocol while watching the tasks.
    let need_sync = full || !control.direct_partial();
    let mut acks: JoinSet<std::io::Result<()>> = JoinSet::new();
    let proto = async {
        if need_sync {
            control.dfly("SYNC").await?;
            for f in fse_rx.iter_mut() {
                f.wait_for(|v| *v)
                    .await
                    .map_err(|_| SessionError::Protocol("flow ended before FULLSYNC_END".into()))?;
            }
            tracing::info!("FULLSYNC_END on every flow: DFLY STARTSTABLE");
        }
        control.dfly("STARTSTABLE").await?;
        Ok::<(), SessionError>(())
    };
    let mut proto_done = false;
    tokio::pin!(proto);
    let mut cp_tick = tokio::time::interval(s.checkpoint_interval.max(Duration::from_millis(100)));
    let mut lag_tick = tokio::time::interval(Duration::from_secs(2));
    // The first Stable checkpoint is written as soon as every flow is stable, not a whole
    // checkpoint interval later: a crash right after STARTSTABLE must resume, not resync.
    let mut first_stable_tick = tokio::time::interval(Duration::from_millis(50));
    let mut first_stable_saved = false;
    let mut stopping = false;
    let mut appliers_left = n;
    loop {
        tokio::select! {
            r = &mut proto, if !proto_done => {
                if let Err(e) = r {
                    // A flow that ended early holds the root cause (decode error with its offset,
                    // closed socket): report that rather than "ended before FULLSYNC_END".
                    let root = tokio::time::timeout(Duration::from_millis(500), async {
                        while let Some(t) = tasks.join_next().await {
                            match t {
                                Ok(TaskEnd::Reader(_, Err(e))) => return Some(SessionFail::from(e)),
                                Ok(TaskEnd::Applier(_, Err(e))) => return Some(SessionFail::from(e)),
                                _ => {}
                            }
                        }
                        None
                    })
                    .await
                    .ok()
                    .flatten();
                    return Err((root.unwrap_or_else(|| e.into()), resume_of(&counters), true));
                }
                proto_done = true;
                for (w, conf, c, start) in ack_parts.drain(..) {
                    let start = start.unwrap_or(0);
                    let every = s.ack_interval;
                    acks.spawn(async move {
                        // ACK only once stable: the first confirmed LSN is JOURNAL_OFFSET.
                        let mut conf2 = conf.clone();
                        if start == 0 {
                            let _ = conf2.wait_for(|v| *v > 0).await;
                        }
                        ack::ack_loop(w, conf, c, start, every).await
                    });
                }
            }
            Some(t) = tasks.join_next() => {
                match t {
                    Ok(TaskEnd::Reader(_, Ok(()))) => {}
                    Ok(TaskEnd::Reader(i, Err(e))) => {
                        if stopping { continue; }
                        tracing::warn!(flow = i, "reader: {e}");
                        return Err((e.into(), resume_of(&counters), true));
                    }
                    Ok(TaskEnd::Applier(_, Ok(()))) => {
                        appliers_left -= 1;
                        if appliers_left == 0 {
                            // Let each ACK task send its final ACK (its watch closed with the pipe).
                            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                                while acks.join_next().await.is_some() {}
                            })
                            .await;
                            let cp = confirmed_lsns(&counters);
                            if counters.iter().all(|c| c.phase() == FlowPhase::Stable) {
                                save_cp(s, &master, &version, Phase::Stable, cp);
                            }
                            for c in counters.iter() { c.set_phase(FlowPhase::Stopped); }
                            tracing::info!("stopped: everything read was applied; final checkpoint written");
                            return Ok((End::Stopped, ()));
                        }
                    }
                    Ok(TaskEnd::Applier(i, Err(e))) => {
                        tracing::warn!(flow = i, "applier: {e}");
                        return Err((e.into(), resume_of(&counters), true));
                    }
                    Err(e) => return Err((SessionFail { msg: format!("task failed: {e}"), fatal: true, full_resync: false }, None, true)),
                }
            }
            Some(r) = acks.join_next(), if !acks.is_empty() => {
                if let Ok(Err(e)) = r {
                    if !stopping {
                        return Err((SessionError::Io { addr: s.source.addr.clone(), detail: format!("ACK: {e}") }.into(), resume_of(&counters), true));
                    }
                }
            }
            _ = first_stable_tick.tick(), if !first_stable_saved => {
                if counters.iter().all(|c| c.phase() == FlowPhase::Stable) {
                    save_cp(s, &master, &version, Phase::Stable, confirmed_lsns(&counters));
                    first_stable_saved = true;
                }
            }
            _ = cp_tick.tick() => {
                if counters.iter().all(|c| c.phase() == FlowPhase::Stable) {
                    save_cp(s, &master, &version, Phase::Stable, confirmed_lsns(&counters));
                }
            }
            _ = lag_tick.tick() => {
                if let Some(src) = &source_aux {
                    if let Ok(mut p) = src.try_lock() {
                        if let Ok(Frame::Array(items)) = p.request(None, vec![Bytes::from_static(b"DFLY"), Bytes::from_static(b"REPLICAOFFSET")]).await {
                            for (c, it) in counters.iter().zip(items) {
                                if let Frame::Integer(v) = it { c.lsn_master.store(v.max(0) as u64, Ordering::Relaxed); }
                            }
                        }
                    }
                }
            }
            _ = async { let mut st = stop.clone(); let _ = st.wait_for(|v| *v).await; }, if !stopping => {
                stopping = true;
                tracing::info!("stopping: readers stop, appliers drain what was read");
            }
        }
    }
}

fn source_pipe_opts(s: &Settings) -> PipeOptions {
    PipeOptions {
        addr: s.source.addr.clone(),
        username: s.source.username.clone(),
        password: s.source.password.clone(),
        max_batches_in_flight: 4,
        conflict: ConflictPolicy::Overwrite,
        tls: s.source.tls.clone(),
    }
}
