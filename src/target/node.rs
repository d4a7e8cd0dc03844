//! One pipelined connection to one cluster master, owned by a flow's [`super::sink::ClusterSink`]:
//! units (a command, or a `MULTI … EXEC` group) are encoded into one buffer and written in large
//! writes; a reader task matches replies to units in order and reports, per sealed batch, the
//! units that must be resent (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a short `WAIT`) or the failure
//! that ends the session. A unit that was redirected was not executed, so resending it is exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::resp::tls::{ReadHalf, WriteHalf};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::apply::conn::PipeError;
use crate::apply::policy::ConflictPolicy;
use crate::apply::Args;
use crate::resp::{encode_command, Decoder, Frame, Redirect};

/// Cluster counters shown in the status.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// `MOVED` replies (units resent to the new owner).
    pub moved: AtomicU64,
    /// `ASK` replies (units resent with `ASKING`).
    pub ask: AtomicU64,
    /// `TRYAGAIN` replies.
    pub tryagain: AtomicU64,
    /// `CLUSTERDOWN` / `LOADING` / `READONLY` / `MASTERDOWN` replies.
    pub down: AtomicU64,
    /// Topology refreshes.
    pub refreshes: AtomicU64,
    /// Multi-key commands split per slot.
    pub split: AtomicU64,
    /// Cross-slot commands translated into an equivalent sequence.
    pub translated: AtomicU64,
    /// Commands with no cluster form skipped under `skip-and-report`.
    pub cross_slot_skipped: AtomicU64,
    /// `WAIT` rounds that came back with fewer replicas than asked (then retried).
    pub wait_short: AtomicU64,
    /// Keys left alone because they existed (conflict policy `skip`).
    pub conflicts_skipped: AtomicU64,
    /// Commands written.
    pub commands: AtomicU64,
    /// Units not sent on resume because their slot's marker shows them applied.
    pub replay_skipped: AtomicU64,
}

/// [`ClusterCounters`] as numbers (status JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSnapshot {
    /// `MOVED` replies.
    pub moved: u64,
    /// `ASK` replies.
    pub ask: u64,
    /// `TRYAGAIN` replies.
    pub tryagain: u64,
    /// `CLUSTERDOWN` / `LOADING` / `READONLY` / `MASTERDOWN` replies.
    pub down: u64,
    /// Topology refreshes.
    pub refreshes: u64,
    /// Commands split per slot.
    pub split: u64,
    /// Cross-slot commands translated.
    pub translated: u64,
    /// Commands skipped per the cross-slot policy.
    pub cross_slot_skipped: u64,
    /// Short `WAIT` rounds.
    pub wait_short: u64,
    /// Conflicting keys left alone.
    pub conflicts_skipped: u64,
    /// Commands acknowledged by the nodes.
    pub commands: u64,
    /// Units skipped on resume (already applied per their slot's marker).
    pub replay_skipped: u64,
}

impl ClusterCounters {
    /// The numbers.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClusterSnapshot {
            moved: g(&self.moved),
            ask: g(&self.ask),
            tryagain: g(&self.tryagain),
            down: g(&self.down),
            refreshes: g(&self.refreshes),
            split: g(&self.split),
            translated: g(&self.translated),
            cross_slot_skipped: g(&self.cross_slot_skipped),
            wait_short: g(&self.wait_short),
            conflicts_skipped: g(&self.conflicts_skipped),
            commands: g(&self.commands),
            replay_skipped: g(&self.replay_skipped),
        }
    }

    /// Adds one.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// Data: one command or a `MULTI … EXEC` group.
    Data,
    /// `WAIT <n> <ms>`: needs at least `n` replicas.
    Wait(u32),
}

/// Something sent to one node and resent as a whole.
#[derive(Debug)]
pub struct Unit {
    /// Global order within the flow (resends are sorted by it).
    pub seq: u64,
    /// Commands (a group starts with MULTI and ends with EXEC).
    pub cmds: Vec<Args>,
    /// The slot that routed it (`None`: broadcast or WAIT).
    pub slot: Option<u16>,
    /// Send `ASKING` first.
    pub asking: bool,
    /// Key whose existing value makes the (single) command a conflict (RESTORE without
    /// REPLACE, RENAMENX, SET NX).
    pub conflict: Option<Bytes>,
    /// Kind.
    pub kind: UnitKind,
    /// Where the replies go (then error replies other than redirections are returned, not failed).
    pub reply: Option<oneshot::Sender<Vec<Frame>>>,
    /// The node it was sent to, for units not routed by a slot (broadcast, WAIT).
    pub node: Option<String>,
    /// The journal record it comes from (stable sync; `None` in the full sync).
    pub lsn: Option<u64>,
    /// For a marked transaction: where the units it carries sit in `cmds` (they are resent one
    /// by one when the slot is being migrated).
    pub parts: Vec<Part>,
}

/// One unit inside a marked transaction: its commands are `cmds[start..start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The unit's sequence number.
    pub seq: u64,
    /// Its record's LSN.
    pub lsn: Option<u64>,
    /// First command.
    pub start: usize,
    /// Number of commands.
    pub len: usize,
    /// It was a `MULTI … EXEC` group of its own (its body is what `cmds` holds).
    pub group: bool,
}

impl Unit {
    /// A data unit.
    pub fn data(seq: u64, cmds: Vec<Args>, slot: Option<u16>) -> Unit {
        Unit {
            seq,
            cmds,
            slot,
            asking: false,
            conflict: None,
            kind: UnitKind::Data,
            reply: None,
            node: None,
            lsn: None,
            parts: Vec::new(),
        }
    }

    /// The node of a unit not routed by slot.
    pub fn node_addr(&self) -> Option<String> {
        self.node.clone()
    }

    /// Records the node of a unit not routed by slot.
    pub fn set_node(&mut self, addr: &str) {
        if self.slot.is_none() {
            self.node = Some(addr.to_owned());
        }
    }

    fn frames(&self) -> usize {
        self.cmds.len() + usize::from(self.asking)
    }

    /// Lossy name for messages.
    pub fn name(&self) -> String {
        let c = self.cmds.iter().find(|c| !c.first().is_some_and(|n| n.eq_ignore_ascii_case(b"MULTI")));
        c.map(|a| {
            a.iter().take(2).map(|x| String::from_utf8_lossy(&x[..x.len().min(64)]).into_owned()).collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .join(" ")
    }
}

/// Why a unit must be resent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// `MOVED` / `ASK`.
    Redirect(Redirect),
    /// `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`: wait, then resend.
    Backoff(String),
    /// `READONLY` (the node is a replica now): refresh the topology, resend.
    Refresh(String),
    /// `WAIT` saw too few replicas.
    WaitShort(i64),
}

/// Per-node bookkeeping shared by the sink and the node readers.
#[derive(Debug, Default)]
pub struct SharedState {
    /// Per node: tags of batches in flight, oldest first.
    pub inflight: Vec<std::collections::VecDeque<u64>>,
    /// Units to resend, with why.
    pub retry: Vec<(Unit, Retry)>,
    /// A failure that ends the session.
    pub fatal: Option<PipeError>,
    /// Units that hit `CROSSSLOT` (policy decides): (command, message).
    pub crossslot: Vec<(String, String)>,
    /// Last tag handed out.
    pub next_tag: u64,
    /// Last tag whose batches are all registered in `inflight`.
    pub sealed: u64,
    /// `(tag, lsn)` not yet published, oldest first.
    pub lsns: std::collections::VecDeque<(u64, u64)>,
    /// Units were redirected and are not resent yet: nothing may be published.
    pub recovering: bool,
}

/// State shared between a sink and its node readers.
#[derive(Debug)]
pub struct Shared {
    /// The state.
    pub st: Mutex<SharedState>,
    /// Signalled whenever a batch completes.
    pub done: Notify,
    /// The confirmed next LSN.
    pub confirmed: tokio::sync::watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { st: Mutex::default(), done: Notify::new(), confirmed: tokio::sync::watch::channel(0).0 }
    }
}

impl Shared {
    /// Locks the state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the LSN of the newest tag every node has fully applied (nothing while a resend
    /// is pending or after a failure).
    pub fn publish(&self) {
        let mut st = self.lock();
        if st.fatal.is_some() || st.recovering || !st.retry.is_empty() {
            return;
        }
        let mut conf = st.sealed;
        for q in &st.inflight {
            if let Some(f) = q.front() {
                conf = conf.min(f.saturating_sub(1));
            }
        }
        let mut last = None;
        while let Some(&(t, l)) = st.lsns.front() {
            if t > conf {
                break;
            }
            last = Some(l);
            st.lsns.pop_front();
        }
        drop(st);
        if let Some(l) = last {
            self.confirmed.send_if_modified(|v| {
                let up = l > *v;
                if up {
                    *v = l;
                }
                up
            });
        }
    }
}

struct NodeBatch {
    tag: u64,
    units: Vec<Unit>,
}

/// The writing side of a node connection.
pub struct NodeConn {
    /// Index in the shared state.
    pub id: usize,
    /// `host:port`.
    pub addr: String,
    wr: WriteHalf,
    out: BytesMut,
    cur: Vec<Unit>,
    cur_cmds: usize,
    exp: mpsc::Sender<NodeBatch>,
    reader: tokio::task::JoinHandle<()>,
    /// Set by the reader when the connection failed.
    pub broken: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for NodeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConn").field("id", &self.id).field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for NodeConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How a node connection is opened and judged.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// ACL user.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<String>,
    /// Batches in flight per node.
    pub max_batches: usize,
    /// Conflict policy.
    pub conflict: ConflictPolicy,
    /// TLS (`None`: plain TCP); the certificate is checked against the node's announced host
    /// unless the client has a server name.
    pub tls: Option<crate::resp::TlsClient>,
}

fn io_err(addr: &str, e: impl std::fmt::Display) -> PipeError {
    PipeError::Io { addr: addr.to_owned(), detail: e.to_string() }
}

impl NodeConn {
    /// Connects (and authenticates).
    pub async fn connect(
        id: usize,
        addr: &str,
        o: &NodeOptions,
        shared: Arc<Shared>,
        counters: Arc<ClusterCounters>,
    ) -> Result<NodeConn, PipeError> {
        let s = crate::resp::tls::connect(addr, o.tls.as_ref(), std::time::Duration::from_secs(5))
            .await
            .map_err(|e| io_err(addr, e))?;
        let (mut r, mut w) = s.into_split();
        let mut rbuf = BytesMut::with_capacity(1 << 16);
        if let Some(pw) = &o.password {
            let mut a: Vec<Bytes> = vec![Bytes::from_static(b"AUTH")];
            if let Some(u) = &o.username {
                a.push(Bytes::from(u.clone()));
            }
            a.push(Bytes::from(pw.clone()));
            let mut out = BytesMut::new();
            encode_command(&mut out, &a);
            w.write_all(&out).await.map_err(|e| io_err(addr, e))?;
            w.flush().await.map_err(|e| io_err(addr, e))?;
            let mut d = Decoder::default();
            let f = loop {
                if let Some(f) = d.decode(&mut rbuf).map_err(|e| io_err(addr, e))? {
                    break f;
                }
                if r.read_buf(&mut rbuf).await.map_err(|e| io_err(addr, e))? == 0 {
                    return Err(io_err(addr, "closed during AUTH"));
                }
            };
            if let Frame::Error(m) = f {
                return Err(PipeError::Rejected {
                    command: "AUTH".into(),
                    message: String::from_utf8_lossy(&m).into_owned(),
                });
            }
        }
        let (tx, rx) = mpsc::channel(o.max_batches.max(1));
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader =
            tokio::spawn(read_loop(id, addr.to_owned(), r, rbuf, rx, shared, counters, o.conflict, broken.clone()));
        Ok(NodeConn {
            id,
            addr: addr.to_owned(),
            wr: w,
            out: BytesMut::with_capacity(1 << 16),
            cur: Vec::new(),
            cur_cmds: 0,
            exp: tx,
            reader,
            broken,
        })
    }

    /// Adds a unit to the current batch.
    pub fn push(&mut self, u: Unit) {
        if u.asking {
            encode_command(&mut self.out, &[b"ASKING"]);
        }
        for c in &u.cmds {
            encode_command(&mut self.out, c);
        }
        self.cur_cmds += u.cmds.len();
        self.cur.push(u);
    }

    /// Commands in the current batch.
    pub fn batch_cmds(&self) -> usize {
        self.cur_cmds
    }

    /// Bytes not yet written.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Closes the current batch (if not empty) with `tag`; registers it as in flight.
    pub async fn seal(&mut self, tag: u64, shared: &Shared) -> Result<(), PipeError> {
        if self.cur.is_empty() {
            return Ok(());
        }
        let units = std::mem::take(&mut self.cur);
        self.cur_cmds = 0;
        shared.lock().inflight[self.id].push_back(tag);
        let b = NodeBatch { tag, units };
        match self.exp.try_send(b) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(b)) => {
                self.flush().await?;
                self.exp.send(b).await.map_err(|_| io_err(&self.addr, "node reader stopped"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(io_err(&self.addr, "node reader stopped")),
        }
    }

    /// Writes everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), PipeError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = match self.wr.write_all(&self.out).await {
            Ok(()) => self.wr.flush().await,
            e => e,
        };
        self.out.clear();
        if self.out.capacity() > 8 << 20 {
            self.out = BytesMut::with_capacity(1 << 16);
        }
        r.map_err(|e| io_err(&self.addr, e))
    }
}

fn classify(msg: &str) -> Option<Retry> {
    if let Some(r) = Redirect::parse(msg) {
        return Some(Retry::Redirect(r));
    }
    let head = msg.split_ascii_whitespace().next().unwrap_or_default();
    match head {
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => Some(Retry::Backoff(msg.to_owned())),
        "READONLY" => Some(Retry::Refresh(msg.to_owned())),
        _ => None,
    }
}

fn err_text(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(m) => Some(String::from_utf8_lossy(m).into_owned()),
        _ => None,
    }
}

/// The unit's verdict.
enum Verdict {
    Ok,
    Retry(Retry),
    Conflict(Bytes),
    CrossSlot(String),
    Rejected(String),
}

fn judge(u: &Unit, frames: &[Frame]) -> Verdict {
    let frames = &frames[usize::from(u.asking)..];
    if let UnitKind::Wait(n) = u.kind {
        return match frames.first() {
            Some(Frame::Integer(k)) if *k >= i64::from(n) => Verdict::Ok,
            Some(Frame::Integer(k)) => Verdict::Retry(Retry::WaitShort(*k)),
            // Any other error (e.g. "WAIT cannot be used with replica instances" after a
            // failover): the topology changed; refresh it before deciding where to wait.
            Some(f) => match err_text(f) {
                Some(m) => Verdict::Retry(classify(&m).unwrap_or(Retry::Refresh(m))),
                None => Verdict::Retry(Retry::WaitShort(-1)),
            },
            None => Verdict::Retry(Retry::WaitShort(-1)),
        };
    }
    // Redirections and retryable errors anywhere (a group is resent as a whole).
    for f in frames {
        if let Some(m) = err_text(f) {
            if let Some(r) = classify(&m) {
                return Verdict::Retry(r);
            }
            if m.starts_with("CROSSSLOT") {
                return Verdict::CrossSlot(m);
            }
        }
    }
    if let (Some(k), Some(f)) = (&u.conflict, frames.last()) {
        let conflict = match f {
            Frame::Error(m) => m.starts_with(b"BUSYKEY"),
            Frame::Integer(0) | Frame::Null => true,
            _ => false,
        };
        if conflict {
            return Verdict::Conflict(k.clone());
        }
    }
    if u.reply.is_some() {
        return Verdict::Ok;
    }
    let first_err = frames.iter().find_map(|f| match f {
        Frame::Error(m) if !m.starts_with(b"EXECABORT") => Some(String::from_utf8_lossy(m).into_owned()),
        Frame::Array(items) => items.iter().find_map(err_text),
        _ => None,
    });
    match first_err.or_else(|| frames.iter().find_map(err_text)) {
        Some(m) => Verdict::Rejected(m),
        None => Verdict::Ok,
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    id: usize,
    addr: String,
    mut r: ReadHalf,
    mut buf: BytesMut,
    mut rx: mpsc::Receiver<NodeBatch>,
    shared: Arc<Shared>,
    counters: Arc<ClusterCounters>,
    conflict: ConflictPolicy,
    broken: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut dec = Decoder::default();
    let fail = |e: PipeError| {
        broken.store(true, Ordering::Relaxed);
        let mut st = shared.lock();
        st.fatal.get_or_insert(e);
        st.inflight[id].clear();
        drop(st);
        shared.done.notify_waiters();
    };
    while let Some(b) = rx.recv().await {
        let mut retries = Vec::new();
        let mut fatal = None;
        for mut u in b.units {
            let mut frames = Vec::with_capacity(u.frames());
            while frames.len() < u.frames() {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => {
                        frames.push(f);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        rx.close();
                        return fail(io_err(&addr, format!("bad reply: {e}")));
                    }
                }
                buf.reserve(1 << 16);
                match r.read_buf(&mut buf).await {
                    Ok(0) => {
                        rx.close();
                        return fail(io_err(&addr, "connection closed by the node"));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        rx.close();
                        return fail(io_err(&addr, e));
                    }
                }
            }
            let n = if u.parts.is_empty() { u.cmds.len() } else { u.parts.iter().map(|p| p.len).sum() };
            counters.commands.fetch_add(n as u64, Ordering::Relaxed);
            match judge(&u, &frames) {
                Verdict::Ok => {
                    if let Some(tx) = u.reply.take() {
                        let _ = tx.send(frames.split_off(usize::from(u.asking)));
                    }
                }
                Verdict::Retry(why) => {
                    match &why {
                        Retry::Redirect(Redirect::Moved { .. }) => ClusterCounters::inc(&counters.moved),
                        Retry::Redirect(Redirect::Ask { .. }) => ClusterCounters::inc(&counters.ask),
                        Retry::Backoff(m) if m.starts_with("TRYAGAIN") => ClusterCounters::inc(&counters.tryagain),
                        Retry::Backoff(_) | Retry::Refresh(_) => ClusterCounters::inc(&counters.down),
                        Retry::WaitShort(_) => ClusterCounters::inc(&counters.wait_short),
                    }
                    u.asking = false;
                    retries.push((u, why));
                }
                Verdict::Conflict(k) => match conflict {
                    ConflictPolicy::Panic => {
                        fatal.get_or_insert(PipeError::Conflict(String::from_utf8_lossy(&k).into_owned()));
                    }
                    _ => ClusterCounters::inc(&counters.conflicts_skipped),
                },
                Verdict::CrossSlot(m) => {
                    shared.lock().crossslot.push((u.name(), m));
                    if let Some(tx) = u.reply.take() {
                        let _ = tx.send(frames);
                    }
                }
                Verdict::Rejected(m) => {
                    fatal.get_or_insert(PipeError::Rejected {
                        command: format!("{} (node {addr})", u.name()),
                        message: m,
                    });
                }
            }
        }
        tracing::debug!(node = %addr, tag = b.tag, retries = retries.len(), fatal = fatal.is_some(), "batch done");
        {
            let mut st = shared.lock();
            if st.inflight[id].front() == Some(&b.tag) {
                st.inflight[id].pop_front();
            }
            st.recovering |= !retries.is_empty();
            st.retry.extend(retries);
            if let Some(e) = fatal {
                st.fatal.get_or_insert(e);
            }
        }
        shared.publish();
        shared.done.notify_waiters();
    }
}
