//! The applier of one flow: consumes decoded events in stream order, turns them into target
//! commands, pipelines them, and publishes the LSN the target has confirmed.
//!
//! Stable-sync batches are wrapped in `MULTI … HSET <marker> <flow> <next lsn> EXEC`, so the
//! target holds, atomically with the data, the exact position it reached (a crash between two
//! batches loses nothing and replays nothing). FLUSHALL/FLUSHDB cross the [`FlushBarrier`].
//! Unfaithful records schedule a repair: the key is read from the source between two
//! `DFLY REPLICAOFFSET` calls and restored exactly at the LSN the read corresponds to.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::barrier::{BarrierError, FlushBarrier};
use super::conn::{find_error, Frame, Pipe, PipeError, Tag};
use super::entry::{EntryNote, EntryPolicyError, EntryWriter};
use super::rewrite::{Outcome, PolicyError, Repair, RepairReason, Rewriter};
use super::{now_ms, Args, DbCmd};
use crate::proto::model::Value;
use crate::proto::{Event, JournalOp, JournalRecord};
use crate::status::{FlowCounters, FlowPhase};
use crate::target::Sink;

/// Decodes a DUMP payload into a value (provided by the value codec).
pub type DumpDecoder = fn(&[u8]) -> Option<Value>;

/// Events decoded from one read of the socket, with their share of the queue budget.
#[derive(Debug)]
pub struct EventBatch {
    /// The events, in stream order.
    pub events: Vec<Event>,
    /// Bytes of stream they came from (released when applied).
    pub bytes: u64,
    /// The queue budget they hold.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Why a flow stopped applying.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target connection failed or rejected a command.
    #[error(transparent)]
    Pipe(#[from] PipeError),
    /// A snapshot entry's policy is `fail`.
    #[error(transparent)]
    Entry(#[from] EntryPolicyError),
    /// A journal command's policy is `fail`.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// FLUSHALL/FLUSHDB inside the full sync: the session must start over (spec 5.8).
    #[error("FLUSHALL/FLUSHDB arrived during the full sync; a new full sync is needed")]
    FlushInFullSync,
    /// The global-command barrier failed.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// A RESTORE payload the target cannot load and no decoder is available.
    #[error("cannot transcode a DUMP payload of type {0} for key {1:?}")]
    Transcode(u8, String),
}

/// Fixed settings of a flow applier.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Flow index.
    pub flow: usize,
    /// Master id (written into the marker).
    pub master_id: String,
    /// Target marker hash `(db, key)`; `None` disables MULTI wrapping and the marker.
    pub marker: Option<(u32, Bytes)>,
    /// Seal a batch after this many commands...
    pub max_batch_cmds: usize,
    /// ...or this many encoded bytes.
    pub max_batch_bytes: usize,
    /// Write rate limit shared by the session's flows (`advanced.qps`).
    pub limiter: Option<Arc<crate::verify::ratelimit::RateLimiter>>,
}

/// The applier of one flow.
pub struct FlowApplier {
    s: FlowSettings,
    pipe: Sink,
    rw: Rewriter,
    entries: EntryWriter,
    barrier: Arc<FlushBarrier>,
    source: Option<Arc<tokio::sync::Mutex<Pipe>>>,
    decode_dump: Option<DumpDecoder>,
    c: Arc<FlowCounters>,
    stable: bool,
    txn_open: bool,
    next_lsn: u64,
    sealed_lsn: u64,
    deferred_repairs: Vec<Repair>,
    scheduled: Vec<(u64, Vec<DbCmd>)>,
    policy_logged: u64,
    /// Unix ms read once per event batch.
    now: u64,
}

impl std::fmt::Debug for FlowApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowApplier")
            .field("flow", &self.s.flow)
            .field("next_lsn", &self.next_lsn)
            .finish_non_exhaustive()
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn is_flush(rec: &JournalRecord) -> bool {
    matches!(&rec.op, JournalOp::Command { args, .. }
        if args.first().is_some_and(|n| n.eq_ignore_ascii_case(b"FLUSHALL") || n.eq_ignore_ascii_case(b"FLUSHDB")))
}

impl FlowApplier {
    /// An applier. `start_lsn` is `Some` for a partial sync (stable from the first record).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        s: FlowSettings,
        pipe: impl Into<Sink>,
        rw: Rewriter,
        mut entries: EntryWriter,
        barrier: Arc<FlushBarrier>,
        source: Option<Arc<tokio::sync::Mutex<Pipe>>>,
        decode_dump: Option<DumpDecoder>,
        c: Arc<FlowCounters>,
        start_lsn: Option<u64>,
    ) -> Self {
        let stable = start_lsn.is_some();
        if stable {
            entries.force_overwrite = true;
            entries.wrap_native = s.marker.is_none();
        }
        let lsn = start_lsn.unwrap_or(0);
        FlowApplier {
            s,
            pipe: pipe.into(),
            rw,
            entries,
            barrier,
            source,
            decode_dump,
            c,
            stable,
            txn_open: false,
            next_lsn: lsn,
            sealed_lsn: lsn,
            deferred_repairs: Vec::new(),
            scheduled: Vec::new(),
            policy_logged: 0,
            now: now_ms(),
        }
    }

    /// The target's confirmed-LSN watch.
    pub fn confirmed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pipe.confirmed()
    }

    /// Applies batches until the queue closes (then drains) or an error stops it.
    pub async fn run(mut self, mut rx: mpsc::Receiver<EventBatch>) -> Result<(), ApplyError> {
        loop {
            let batch = match rx.try_recv() {
                Ok(b) => b,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.seal().await?;
                    self.pipe.flush().await?;
                    let next = loop {
                        // The sink may need attention while idle: a cluster node has units to
                        // resend, or a standalone pipe failed (then `flush` returns the error).
                        let attention = self.pipe.attention();
                        tokio::select! {
                            b = rx.recv() => break b,
                            () = attention => self.pipe.flush().await?,
                        }
                    };
                    match next {
                        Some(b) => b,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            self.c
                .queue_bytes
                .fetch_sub(batch.bytes.min(self.c.queue_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
            // One clock read per batch (expiry checks): a key that expires while the batch is
            // applied is written with its absolute TTL, which the target expires at once.
            self.now = now_ms();
            for ev in batch.events {
                self.event(ev).await?;
                if self.pipe.batch_len() >= self.s.max_batch_cmds || self.pipe.buffered() >= self.s.max_batch_bytes {
                    self.seal().await?;
                    self.pipe.flush().await?;
                }
            }
            drop(batch.permit);
        }
        self.seal().await?;
        self.pipe.drain().await?;
        self.sync_stats();
        Ok(())
    }

    /// Publishes the pipe's reply-side counters in the flow's status.
    fn sync_stats(&self) {
        self.c.conflicts_skipped.store(self.pipe.conflicts_skipped(), Ordering::Relaxed);
    }

    fn open_txn(&mut self) {
        if self.stable && self.s.marker.is_some() && !self.txn_open {
            self.pipe.push_any_db(&[b("MULTI")]);
            self.txn_open = true;
        }
    }

    fn push(&mut self, cmd: &DbCmd) {
        self.open_txn();
        self.pipe.push(cmd);
    }

    /// [`Self::push`] of a command the sink may keep (the hot paths: no argument list copy).
    fn push_owned(&mut self, cmd: DbCmd) {
        self.open_txn();
        self.pipe.push_owned(cmd);
    }

    fn marker_cmd(&self, lsns: &[(usize, u64)]) -> Option<DbCmd> {
        let (db, key) = self.s.marker.clone()?;
        let mut a: Args = vec![b("HSET"), key, b("master"), Bytes::from(self.s.master_id.clone())];
        for (f, l) in lsns {
            a.push(Bytes::from(f.to_string()));
            a.push(Bytes::from(l.to_string()));
        }
        Some(DbCmd::new(db, a))
    }

    /// Closes the batch being built (publishing `next_lsn` in stable sync).
    /// Waits for the write rate limit's share of the batch about to be sealed.
    fn limit(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (l, n) = (self.s.limiter.clone(), self.pipe.batch_len() as u64);
        async move {
            if let Some(l) = l {
                l.acquire(n).await;
            }
        }
    }

    async fn seal(&mut self) -> Result<(), PipeError> {
        self.sync_stats();
        self.limit().await;
        if !self.stable {
            if self.pipe.batch_len() > 0 {
                self.pipe.seal(Tag::None).await?;
            }
            return Ok(());
        }
        if self.txn_open {
            if let Some(m) = self.marker_cmd(&[(self.s.flow, self.next_lsn)]) {
                self.pipe.push(&m);
            }
            self.pipe.push_any_db(&[b("EXEC")]);
            self.txn_open = false;
        } else if self.next_lsn == self.sealed_lsn && self.pipe.batch_len() == 0 {
            return Ok(());
        }
        self.pipe.seal(Tag::Lsn(self.next_lsn)).await?;
        self.sealed_lsn = self.next_lsn;
        Ok(())
    }

    fn note_policy(&mut self, what: &str, key: &[u8]) {
        FlowCounters::add(&self.c.policy_applied, 1);
        if self.policy_logged < 20 {
            self.policy_logged += 1;
            tracing::warn!(flow = self.s.flow, key = %String::from_utf8_lossy(key), "{what}");
        }
    }

    async fn event(&mut self, ev: Event) -> Result<(), ApplyError> {
        let now = self.now;
        match ev {
            Event::Aux { key, value } if key.as_ref() == b"lua" => {
                self.push(&DbCmd::new(0, vec![b("SCRIPT"), b("LOAD"), value]));
            }
            Event::EntryBegin { id, header } => {
                for c in self.entries.begin(id, header, now)? {
                    self.push_owned(c);
                }
            }
            Event::EntryChunk { id, chunk } => {
                for c in self.entries.chunk(id, chunk, now) {
                    self.push_owned(c);
                }
            }
            Event::EntryEnd { id } => {
                let (out, note) = self.entries.end(id, now);
                let policy_key = matches!(note, EntryNote::Policy(..))
                    .then(|| out.first().and_then(|c| c.args.get(1)).cloned().unwrap_or_default());
                for c in out {
                    self.push_owned(c);
                }
                match note {
                    EntryNote::Written => FlowCounters::add(&self.c.keys, 1),
                    EntryNote::Expired => FlowCounters::add(&self.c.keys_expired, 1),
                    EntryNote::Policy(kind, p) => {
                        let key = policy_key.unwrap_or_default();
                        self.note_policy(&format!("snapshot key handled per policy {}={p}", kind.name()), &key);
                    }
                }
            }
            Event::JournalBlob { record } => {
                if is_flush(&record) {
                    return Err(ApplyError::FlushInFullSync);
                }
                FlowCounters::add(&self.c.blobs, 1);
                let plan = self.rw.plan(&record)?;
                self.apply_plan_cmds(plan.cmds, plan.db, plan.outcome, plan.transcode, record.db)?;
                self.deferred_repairs.extend(plan.repairs);
            }
            Event::FullSyncEnd => {
                if self.c.phase() == FlowPhase::FullSync {
                    self.c.set_phase(FlowPhase::FullSyncDone);
                }
            }
            Event::JournalOffset { lsn } => {
                // The snapshot and its journal blobs are all pushed: from here on, LSNs count.
                self.stable = true;
                self.entries.force_overwrite = true;
                self.entries.wrap_native = self.s.marker.is_none();
                self.next_lsn = lsn;
                if let Some(m) = self.marker_cmd(&[(self.s.flow, lsn)]) {
                    self.pipe.push(&m);
                }
                self.limit().await;
                self.pipe.seal(Tag::Lsn(lsn)).await?;
                self.sealed_lsn = lsn;
                self.c.set_phase(FlowPhase::Stable);
                for r in std::mem::take(&mut self.deferred_repairs) {
                    self.repair(r).await?;
                }
            }
            Event::Journal { lsn, record } => {
                self.pipe.set_lsn(Some(lsn));
                self.run_scheduled(lsn);
                self.c.lsn_read.store(lsn + 1, Ordering::Relaxed);
                let plan = self.rw.plan(&record)?;
                if let Some((txid, args)) = plan.global {
                    self.global(txid, plan.db, args, lsn).await?;
                } else {
                    self.apply_plan_cmds(plan.cmds, plan.db, plan.outcome, plan.transcode, record.db)?;
                    self.next_lsn = lsn + 1;
                    // A repair read at this position goes right after this record (the flow's
                    // next record may be long in coming).
                    self.run_scheduled(self.next_lsn);
                    if matches!(record.op, JournalOp::Ping) {
                        self.c.ping_next_lsn.store(lsn + 1, Ordering::Relaxed);
                    }
                    for r in plan.repairs {
                        self.repair(r).await?;
                    }
                }
                FlowCounters::add(&self.c.records, 1);
            }
            Event::Header { .. }
            | Event::Aux { .. }
            | Event::SelectDb { .. }
            | Event::ResizeDb { .. }
            | Event::Skipped { .. }
            | Event::RdbEnd { .. }
            | Event::EofToken
            | Event::LsnMarker { .. } => {}
        }
        Ok(())
    }

    fn apply_plan_cmds(
        &mut self,
        cmds: Vec<Args>,
        db: u32,
        outcome: Outcome,
        transcode: Option<(Bytes, u64, Bytes, bool)>,
        src_db: u32,
    ) -> Result<(), ApplyError> {
        let policy_key = matches!(outcome, Outcome::Policy(..))
            .then(|| cmds.first().and_then(|c| c.get(1)).cloned().unwrap_or_default());
        for args in cmds {
            self.push_owned(DbCmd { db, args, check: super::Check::Ok });
        }
        match outcome {
            Outcome::Applied => {}
            Outcome::Dropped(_) => FlowCounters::add(&self.c.dropped, 1),
            Outcome::Policy(kind, p) => {
                let key = policy_key.unwrap_or_default();
                self.note_policy(&format!("journal record handled per policy {}={p}", kind.name()), &key);
            }
        }
        if let Some((key, at, payload, _replace)) = transcode {
            let code = payload.first().copied().unwrap_or(0);
            let value = self
                .decode_dump
                .and_then(|d| d(&payload))
                .ok_or_else(|| ApplyError::Transcode(code, String::from_utf8_lossy(&key).into_owned()))?;
            let expire = (at != 0).then_some(at);
            let (out, _) = self.entries.write_value(src_db, key, value, expire, now_ms())?;
            for c in &out {
                self.push(c);
            }
        }
        Ok(())
    }

    /// FLUSHALL / FLUSHDB: drain, meet the other flows, one applies it (with every flow's
    /// marker), all continue.
    async fn global(&mut self, txid: u64, db: u32, args: Args, lsn: u64) -> Result<(), ApplyError> {
        self.seal().await?;
        self.pipe.drain().await?;
        let flow = self.s.flow;
        let marker = self.s.marker.clone();
        let master = self.s.master_id.clone();
        let pipe = &mut self.pipe;
        self.barrier
            .cross(flow, txid, lsn + 1, |lsns| async move {
                if pipe.flush_applied(&lsns) {
                    tracing::info!(lsns = ?lsns, "FLUSHALL/FLUSHDB already applied before the resume; not again");
                    return Ok(());
                }
                pipe.push_any_db(&[b("MULTI")]);
                pipe.push(&DbCmd::new(db, args));
                if let Some((mdb, key)) = marker {
                    let mut a: Args = vec![b("HSET"), key, b("master"), Bytes::from(master)];
                    for (i, l) in lsns.iter().enumerate() {
                        a.push(Bytes::from(i.to_string()));
                        a.push(Bytes::from(l.to_string()));
                    }
                    pipe.push(&DbCmd::new(mdb, a));
                }
                pipe.push_any_db(&[b("EXEC")]);
                let frames = pipe.round_trip().await.map_err(|e| e.to_string())?;
                if let Some(e) = frames.iter().find_map(find_error) {
                    return Err(e);
                }
                pipe.mark_flush(&lsns).await.map_err(|e| e.to_string())
            })
            .await?;
        self.next_lsn = lsn + 1;
        self.pipe.seal(Tag::Lsn(self.next_lsn)).await?;
        self.sealed_lsn = self.next_lsn;
        Ok(())
    }

    fn run_scheduled(&mut self, lsn: u64) {
        if self.scheduled.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.scheduled).into_iter().partition(|(at, _)| *at <= lsn);
        self.scheduled = later;
        for (_, cmds) in due {
            for c in &cmds {
                self.push(c);
            }
            FlowCounters::add(&self.c.repairs, 1);
        }
    }

    /// Reads `r.key` from the source at a known position and schedules its restore there.
    async fn repair(&mut self, r: Repair) -> Result<(), ApplyError> {
        let Some(src) = self.source.clone() else {
            tracing::warn!(flow = self.s.flow, key = %String::from_utf8_lossy(&r.key), reason = ?r.reason,
                "key needs a repair from the source but no source connection is configured");
            return Ok(());
        };
        let flow = self.s.flow;
        let json = r.reason == RepairReason::JsonAsString;
        let mut at = self.next_lsn;
        let mut value: Option<Frame> = None;
        let mut pttl: i64 = -1;
        let mut src = src.lock().await;
        for attempt in 0..8 {
            src.push_any_db(&[b("DFLY"), b("REPLICAOFFSET")]);
            let read = if json { vec![b("JSON.GET"), r.key.clone()] } else { vec![b("DUMP"), r.key.clone()] };
            src.push(&DbCmd::new(r.src_db, read));
            src.push(&DbCmd::new(r.src_db, vec![b("PTTL"), r.key.clone()]));
            src.push_any_db(&[b("DFLY"), b("REPLICAOFFSET")]);
            let frames = src.round_trip().await?;
            let n = frames.len();
            let offs = |f: Option<&Frame>| match f {
                Some(Frame::Array(a)) => match a.get(flow) {
                    Some(Frame::Integer(i)) => Some(*i as u64),
                    _ => None,
                },
                _ => None,
            };
            let (o1, o2) = (offs(frames.first()), offs(frames.get(n.saturating_sub(1))));
            value = frames.get(n.saturating_sub(3)).cloned();
            pttl = match frames.get(n.saturating_sub(2)) {
                Some(Frame::Integer(i)) => *i,
                _ => -1,
            };
            match (o1, o2) {
                (Some(a), Some(b2)) if a == b2 => {
                    at = a.max(self.next_lsn);
                    break;
                }
                (Some(_), Some(_)) if attempt < 7 => continue,
                _ => {
                    tracing::warn!(
                        flow,
                        "source has no DFLY REPLICAOFFSET position; repair applied at the current position"
                    );
                    break;
                }
            }
        }
        drop(src);
        let db = self.rw.map_db(r.src_db);
        let key = r.key.clone();
        let mut cmds = Vec::new();
        match value {
            Some(Frame::Null) | None => cmds.push(DbCmd::new(db, vec![b("DEL"), key])),
            Some(Frame::Bulk(v)) if json => {
                let mut a = vec![b("SET"), key, v];
                if pttl > 0 {
                    a.push(b("PX"));
                    a.push(Bytes::from(pttl.to_string()));
                }
                cmds.push(DbCmd::new(db, a));
            }
            Some(Frame::Bulk(payload)) => {
                let code = payload.first().copied().unwrap_or(0);
                if code <= self.rw.caps().max_type_code() && code != 20 {
                    let ttl = if pttl > 0 { pttl.to_string() } else { "0".into() };
                    cmds.push(DbCmd::new(db, vec![b("RESTORE"), key, Bytes::from(ttl), payload, b("REPLACE")]));
                } else {
                    let value = self
                        .decode_dump
                        .and_then(|d| d(&payload))
                        .ok_or_else(|| ApplyError::Transcode(code, String::from_utf8_lossy(&key).into_owned()))?;
                    let expire = (pttl > 0).then(|| now_ms() + pttl as u64);
                    cmds = self.entries.write_value(r.src_db, key, value, expire, now_ms())?.0;
                }
            }
            Some(other) => {
                FlowCounters::add(&self.c.repairs_failed, 1);
                tracing::error!(flow, key = %String::from_utf8_lossy(&r.key), reason = ?r.reason, reply = ?other,
                    "cannot read the key from the source; it stays as the journal left it");
                return Ok(());
            }
        }
        tracing::info!(flow, key = %String::from_utf8_lossy(&r.key), reason = ?r.reason, at_lsn = at,
            "repairing key from the source");
        if at <= self.next_lsn {
            for c in &cmds {
                self.push(c);
            }
            FlowCounters::add(&self.c.repairs, 1);
        } else {
            self.scheduled.push((at, cmds));
        }
        Ok(())
    }
}
