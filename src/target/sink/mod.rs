//! The writer a flow applies through: [`Sink::Single`] (one [`crate::apply::conn::Pipe`] to a standalone Redis) or
//! [`Sink::Cluster`] (a [`ClusterSink`]: one pipelined [`NodeConn`] per master, commands routed by
//! slot, multi-key commands split or translated per `split`, MOVED/ASK/TRYAGAIN/CLUSTERDOWN
//! handled by resending exactly the units that were not executed, in their original order).
//!
//! Order: a flow's commands for one slot always travel on one connection in order. When a node
//! answers with a redirection the sink stops, lets every batch in flight finish, updates the map
//! and resends the failed units sorted by their original sequence, before anything newer is
//! routed. A sealed LSN is published only once every node confirmed its part of every batch up to
//! it and no resend is pending; with `wait_replicas > 0` each node's part ends with
//! `WAIT n timeout` and counts only when `n` replicas have it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

mod either;
mod marks;
mod translate;

pub use either::{to_conn_frame, Sink};

use super::cluster::{discover, refresh_candidates, serving_masters, AdminAuth};
use super::node::{ClusterCounters, NodeConn, NodeOptions, Retry, Shared, Unit, UnitKind};
use super::route::{key_slot, SlotMap};
use super::split::{plan, ClusterPlan};
use crate::apply::conn::{PipeError, Tag};
use crate::apply::{Args, Check, DbCmd};
use crate::resp::{Frame, Redirect};

/// What to do with a command that has no equivalent on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrossSlotPolicy {
    /// Stop with an error naming the command.
    #[default]
    Fail,
    /// Skip it, count it, log it.
    SkipAndReport,
}

impl std::str::FromStr for CrossSlotPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(CrossSlotPolicy::Fail),
            "skip" | "skip-and-report" => Ok(CrossSlotPolicy::SkipAndReport),
            o => Err(format!("unknown cross-slot policy {o:?} (fail | skip-and-report)")),
        }
    }
}

/// Settings shared by the cluster sinks of a session.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Seeds (any node).
    pub seeds: Vec<String>,
    /// Node connections.
    pub node: NodeOptions,
    /// Replicas that must have a batch before its LSN counts (0: off).
    pub wait_replicas: u32,
    /// `WAIT` timeout.
    pub wait_timeout_ms: u64,
    /// Commands with no cluster form.
    pub cross_slot: CrossSlotPolicy,
    /// How long resends may keep failing (TRYAGAIN, CLUSTERDOWN, short WAIT) before the session ends.
    pub retry_budget: Duration,
    /// The task's marker key: per-slot markers make stable sync exactly once (`None`: off,
    /// a resume after a crash applies again what followed the last checkpoint).
    pub markers: Option<Bytes>,
}

impl ClusterSettings {
    /// Admin credentials.
    pub fn auth(&self) -> AdminAuth {
        AdminAuth {
            username: self.node.username.clone(),
            password: self.node.password.clone(),
            tls: self.node.tls.clone(),
        }
    }
}

/// Where a unit's replies go.
type Reply = oneshot::Sender<Vec<Frame>>;

/// A queued item (routed at the next seal).
#[derive(Debug)]
enum Item {
    Cmd(Args, Option<Bytes>),
    Group(Vec<Args>),
}

/// The cluster writer of one flow.
pub struct ClusterSink {
    cfg: Arc<ClusterSettings>,
    map: SlotMap,
    nodes: HashMap<String, NodeConn>,
    shared: Arc<Shared>,
    /// Counters (shared by the session's sinks).
    pub counters: Arc<ClusterCounters>,
    /// Queued items with the LSN of their record and where their replies go.
    pending: Vec<(Item, Option<u64>, Option<Reply>)>,
    pending_cmds: usize,
    pending_bytes: usize,
    group: Option<Vec<Args>>,
    seq: u64,
    error: Option<PipeError>,
    /// Per-slot markers (stable sync exactly once), when on.
    marks: Option<marks::Marks>,
    /// LSN of the record whose commands are being pushed.
    cur_lsn: Option<u64>,
    /// LSN of the item being routed.
    route_lsn: Option<u64>,
    /// Masters whose `WAIT` is lowered to the replicas they have (warned once).
    wait_lowered: std::collections::HashSet<String>,
}

impl std::fmt::Debug for ClusterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSink").field("nodes", &self.nodes.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn io(addr: &str, d: impl Into<String>) -> PipeError {
    PipeError::Io { addr: addr.to_owned(), detail: d.into() }
}

impl ClusterSink {
    /// A sink over `map` (learnt with [`discover`]).
    pub fn new(cfg: Arc<ClusterSettings>, map: SlotMap, counters: Arc<ClusterCounters>) -> ClusterSink {
        ClusterSink {
            cfg,
            map,
            nodes: HashMap::new(),
            shared: Arc::new(Shared::default()),
            counters,
            pending: Vec::new(),
            pending_cmds: 0,
            pending_bytes: 0,
            group: None,
            seq: 0,
            error: None,
            marks: None,
            cur_lsn: None,
            route_lsn: None,
            wait_lowered: std::collections::HashSet::new(),
        }
    }

    /// Connects to every serving master now (so a dead node fails the session at start).
    pub async fn connect_all(&mut self) -> Result<(), PipeError> {
        for a in serving_masters(&self.map) {
            self.node(&a).await?;
        }
        Ok(())
    }

    /// The current slot map.
    pub fn slot_map(&self) -> &SlotMap {
        &self.map
    }

    /// The confirmed-LSN watch.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.shared.confirmed.subscribe()
    }

    async fn node(&mut self, addr: &str) -> Result<&mut NodeConn, PipeError> {
        if self.nodes.get(addr).is_some_and(|n| n.broken.load(std::sync::atomic::Ordering::Relaxed)) {
            self.nodes.remove(addr);
        }
        if !self.nodes.contains_key(addr) {
            let id = {
                let mut st = self.shared.lock();
                st.inflight.push(VecDeque::new());
                st.inflight.len() - 1
            };
            let n = NodeConn::connect(id, addr, &self.cfg.node, self.shared.clone(), self.counters.clone()).await?;
            self.nodes.insert(addr.to_owned(), n);
        }
        self.nodes.get_mut(addr).ok_or_else(|| io(addr, "node vanished"))
    }

    /// Queues a command (db must be 0: a cluster has no other).
    pub fn push(&mut self, cmd: &DbCmd) {
        self.push_owned(cmd.clone());
    }

    /// Queues a command it may keep (no copy of the argument list).
    pub fn push_owned(&mut self, cmd: DbCmd) {
        if cmd.db != 0 && self.error.is_none() {
            self.error = Some(PipeError::Rejected {
                command: cmd.args.first().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
                message: format!(
                    "the source has data in db {} but a Redis Cluster has only db 0; map it with `--db-map {}=0` \
                     (keys of the same name in both dbs then collide)",
                    cmd.db, cmd.db
                ),
            });
        }
        let conflict = match cmd.check {
            Check::Conflict(k) => Some(k),
            Check::Ok => None,
        };
        self.push_args(cmd.args, conflict);
    }

    /// Queues a command with no db.
    pub fn push_any_db(&mut self, args: &[Bytes]) {
        self.push_args(args.to_vec(), None);
    }

    fn push_args(&mut self, args: Args, conflict: Option<Bytes>) {
        let name = args.first().cloned().unwrap_or_default();
        self.pending_cmds += 1;
        self.pending_bytes += args.iter().map(|a| a.len() + 8).sum::<usize>();
        if name.eq_ignore_ascii_case(b"MULTI") {
            self.group = Some(vec![args]);
        } else if let Some(g) = &mut self.group {
            g.push(args);
            if name.eq_ignore_ascii_case(b"EXEC") {
                let g = self.group.take().unwrap_or_default();
                self.pending.push((Item::Group(g), self.cur_lsn, None));
            }
        } else {
            self.pending.push((Item::Cmd(args, conflict), self.cur_lsn, None));
        }
    }

    /// Commands queued since the last seal.
    pub fn batch_len(&self) -> usize {
        self.pending_cmds
    }

    /// Bytes queued (estimate) plus bytes encoded but not written.
    pub fn buffered(&self) -> usize {
        self.pending_bytes + self.nodes.values().map(NodeConn::buffered).sum::<usize>()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    async fn send(&mut self, mut u: Unit) -> Result<(), PipeError> {
        let addr = match (&u.kind, u.slot) {
            (UnitKind::Data, Some(s)) => {
                let n = self.map.node_of_slot(s).ok_or_else(|| io("cluster", format!("slot {s} is not served")))?;
                // Fast path (no address copy): a connected, healthy node.
                let a = &self.map.nodes()[n].addr;
                if let Some(c) = self.nodes.get_mut(a.as_str()) {
                    if !c.broken.load(std::sync::atomic::Ordering::Relaxed) {
                        c.push(u);
                        return Ok(());
                    }
                }
                a.clone()
            }
            _ => u.node_addr().ok_or_else(|| io("cluster", "unit without a node"))?,
        };
        u.set_node(&addr);
        self.node(&addr).await?.push(u);
        Ok(())
    }

    async fn send_to(&mut self, addr: &str, mut u: Unit) -> Result<(), PipeError> {
        u.set_node(addr);
        self.node(addr).await?.push(u);
        Ok(())
    }

    async fn broadcast(
        &mut self,
        cmds: Vec<Args>,
        mut reply: Option<oneshot::Sender<Vec<Frame>>>,
    ) -> Result<(), PipeError> {
        if self.marks.as_ref().is_some_and(marks::Marks::has_groups) {
            // The slots' transactions so far complete before anything after this command.
            self.flush_groups().await?;
            self.seal_nodes(None).await?;
            self.settle().await?;
        }
        for a in serving_masters(&self.map) {
            let seq = self.next_seq();
            let mut u = Unit::data(seq, cmds.clone(), None);
            u.reply = reply.take();
            self.send_to(&a, u).await?;
        }
        Ok(())
    }

    async fn route(&mut self, item: Item, reply: Option<oneshot::Sender<Vec<Frame>>>) -> Result<(), PipeError> {
        match item {
            Item::Group(cmds) => {
                let body = &cmds[1..cmds.len().saturating_sub(1)];
                let mut slot: Option<u16> = None;
                let mut cross = false;
                let mut keyless = true;
                for c in body {
                    if let ClusterPlan::Route(k) = plan(c) {
                        keyless = false;
                        let s = key_slot(&k);
                        cross |= slot.is_some_and(|x| x != s);
                        slot = Some(s);
                    } else if !matches!(plan(c), ClusterPlan::Broadcast) {
                        cross = true;
                    }
                }
                if cross {
                    // No single node can run it: the commands one by one (atomicity lost, logged).
                    tracing::warn!(cmd = %body.first().map(|c| String::from_utf8_lossy(&c[0]).into_owned()).unwrap_or_default(),
                        "a MULTI group spans several slots; applied command by command");
                    for c in body.iter().cloned() {
                        Box::pin(self.route(Item::Cmd(c, None), None)).await?;
                    }
                    return Ok(());
                }
                if keyless {
                    return self.broadcast(cmds, reply).await;
                }
                let seq = self.next_seq();
                let mut u = Unit::data(seq, cmds, slot);
                u.reply = reply;
                self.emit(u).await
            }
            Item::Cmd(args, conflict) => match plan(&args) {
                ClusterPlan::Route(k) => {
                    let seq = self.next_seq();
                    let mut u = Unit::data(seq, vec![args], Some(key_slot(&k)));
                    u.conflict = conflict;
                    u.reply = reply;
                    self.emit(u).await
                }
                ClusterPlan::Broadcast => self.broadcast(vec![args], reply).await,
                ClusterPlan::Split(parts) => {
                    ClusterCounters::inc(&self.counters.split);
                    for p in parts {
                        let seq = self.next_seq();
                        let s = key_slot(&p[1]);
                        self.emit(Unit::data(seq, vec![p], Some(s))).await?;
                    }
                    Ok(())
                }
                ClusterPlan::Translate(t) => {
                    ClusterCounters::inc(&self.counters.translated);
                    self.translate(t).await
                }
                ClusterPlan::Unsupported(why) => {
                    let name = String::from_utf8_lossy(&args[0]).into_owned();
                    self.unsupported(&name, &why)
                }
            },
        }
    }

    fn unsupported(&mut self, name: &str, why: &str) -> Result<(), PipeError> {
        match self.cfg.cross_slot {
            CrossSlotPolicy::Fail => Err(PipeError::Rejected {
                command: name.to_owned(),
                message: format!(
                    "no equivalent on a Redis Cluster: {why} (cross-slot policy `fail`; `skip-and-report` skips it)"
                ),
            }),
            CrossSlotPolicy::SkipAndReport => {
                ClusterCounters::inc(&self.counters.cross_slot_skipped);
                tracing::warn!(command = name, "skipped per cross-slot policy: {why}");
                Ok(())
            }
        }
    }

    async fn route_pending(&mut self) -> Result<(), PipeError> {
        if let Some(e) = self.error.clone() {
            return Err(e);
        }
        let items = std::mem::take(&mut self.pending);
        self.pending_cmds = 0;
        self.pending_bytes = 0;
        for (it, lsn, reply) in items {
            self.route_lsn = lsn;
            self.route(it, reply).await?;
        }
        self.route_lsn = None;
        self.flush_groups().await
    }

    async fn seal_nodes(&mut self, lsn: Option<u64>) -> Result<(), PipeError> {
        let tag = {
            let mut st = self.shared.lock();
            st.next_tag += 1;
            st.next_tag
        };
        if lsn.is_some() && self.cfg.wait_replicas > 0 {
            let addrs: Vec<String> =
                self.nodes.iter().filter(|(_, c)| c.batch_cmds() > 0).map(|(a, _)| a.clone()).collect();
            for a in addrs {
                let Some(u) = self.wait_unit(&a) else { continue };
                self.send_to(&a, u).await?;
            }
        }
        let shared = self.shared.clone();
        for n in self.nodes.values_mut() {
            n.seal(tag, &shared).await?;
        }
        let mut st = self.shared.lock();
        st.sealed = tag;
        if let Some(l) = lsn {
            st.lsns.push_back((tag, l));
        }
        Ok(())
    }

    /// `WAIT n` for the node at `addr`: `n` is the configured count, lowered to the replicas the
    /// node has online now (a master promoted after a crash has none until its old master
    /// returns); `None` when it has none.
    fn wait_unit(&mut self, addr: &str) -> Option<Unit> {
        let want = self.cfg.wait_replicas;
        let have = self.map.nodes().iter().find(|n| n.addr == addr).map_or(0, |n| n.replicas.len());
        let n = want.min(u32::try_from(have).unwrap_or(u32::MAX));
        if n < want && self.wait_lowered.insert(addr.to_owned()) {
            tracing::warn!(
                node = addr,
                replicas = have,
                wanted = want,
                "a master has fewer replicas online than --wait-replicas: its writes are confirmed with WAIT {n}"
            );
        } else if n == want {
            self.wait_lowered.remove(addr);
        }
        if n == 0 {
            return None;
        }
        let seq = self.next_seq();
        let w = vec![b("WAIT"), Bytes::from(n.to_string()), Bytes::from(self.cfg.wait_timeout_ms.to_string())];
        let mut u = Unit::data(seq, vec![w], None);
        u.kind = UnitKind::Wait(n);
        Some(u)
    }

    /// Routes everything queued and closes the batch with `tag`.
    pub async fn seal(&mut self, tag: Tag) -> Result<(), PipeError> {
        match tag {
            Tag::Reply(tx) => {
                let r = self.round_trip().await;
                let _ = tx.send(r.map(|v| v.into_iter().map(to_conn_frame).collect()));
                Ok(())
            }
            Tag::None => {
                self.route_pending().await?;
                self.seal_nodes(None).await?;
                self.check().await
            }
            Tag::Lsn(l) => {
                self.route_pending().await?;
                self.seal_nodes(Some(l)).await?;
                if self.marks.is_some() {
                    // Marked transactions go one batch at a time: a slot's transaction that
                    // meets a migration (ASK) aborts as a whole; had a later one for the same
                    // slot been in flight, it could run first — reordering a key's writes and
                    // moving the slot's marker past records not applied.
                    self.settle().await?;
                } else {
                    self.check().await?;
                }
                self.shared.publish();
                Ok(())
            }
        }
    }

    async fn check(&mut self) -> Result<(), PipeError> {
        let (fatal, recovering) = {
            let st = self.shared.lock();
            (st.fatal.clone(), st.recovering)
        };
        if let Some(e) = fatal {
            return Err(e);
        }
        if recovering {
            self.settle().await?;
        }
        Ok(())
    }

    /// Writes everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), PipeError> {
        for n in self.nodes.values_mut() {
            n.flush().await?;
        }
        self.check().await
    }

    /// Waits until every batch in flight finished and every resend succeeded.
    async fn settle(&mut self) -> Result<(), PipeError> {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(10);
        loop {
            for n in self.nodes.values_mut() {
                n.flush().await?;
            }
            loop {
                let notified = self.shared.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let st = self.shared.lock();
                    if let Some(e) = st.fatal.clone() {
                        return Err(e);
                    }
                    if st.inflight.iter().all(VecDeque::is_empty) {
                        break;
                    }
                    tracing::debug!(inflight = ?st.inflight, "settle: waiting for batches in flight");
                }
                notified.await;
            }
            let retry = std::mem::take(&mut self.shared.lock().retry);
            if retry.is_empty() {
                self.shared.lock().recovering = false;
                self.shared.publish();
                return Ok(());
            }
            if started.elapsed() > self.cfg.retry_budget {
                let (u, why) = &retry[0];
                return Err(io(
                    "cluster",
                    format!("`{}` still failing after {:?}: {why:?}", u.name(), self.cfg.retry_budget),
                ));
            }
            self.recover(retry, &mut backoff).await?;
        }
    }

    async fn refresh(&mut self) {
        ClusterCounters::inc(&self.counters.refreshes);
        let cands = refresh_candidates(&self.map, &self.cfg.seeds);
        match discover(&cands, &self.cfg.auth()).await {
            Ok(m) => self.map = m,
            Err(e) => tracing::warn!("topology refresh failed: {e}"),
        }
    }

    async fn recover(&mut self, mut retry: Vec<(Unit, Retry)>, backoff: &mut Duration) -> Result<(), PipeError> {
        retry.sort_by_key(|(u, _)| u.seq);
        let wait = retry.iter().any(|(_, r)| matches!(r, Retry::Backoff(_) | Retry::WaitShort(_) | Retry::Refresh(_)));
        let refresh = retry.iter().any(|(_, r)| {
            matches!(
                r,
                Retry::Redirect(Redirect::Moved { .. }) | Retry::Refresh(_) | Retry::Backoff(_) | Retry::WaitShort(_)
            )
        });
        if wait {
            tokio::time::sleep(*backoff).await;
            *backoff = (*backoff * 2).min(Duration::from_millis(500));
        }
        if refresh {
            self.refresh().await;
        }
        for (_, r) in &retry {
            if let Retry::Redirect(Redirect::Moved { slot, addr }) = r {
                self.map.apply_moved(*slot, &fill_host(addr, &self.map));
            }
        }
        tracing::info!(units = retry.len(), first = ?retry[0].1, "resending units after cluster redirections/errors");
        let masters = serving_masters(&self.map);
        for (mut u, why) in retry {
            let migrating = match &why {
                Retry::Redirect(Redirect::Ask { .. }) => true,
                Retry::Backoff(m) => m.starts_with("TRYAGAIN"),
                _ => false,
            };
            if !u.parts.is_empty() && migrating {
                for p in self.unbundle(&u) {
                    self.send(p).await?;
                }
                continue;
            }
            match (&why, u.kind) {
                (Retry::Redirect(Redirect::Ask { addr, .. }), _) => {
                    u.asking = true;
                    let a = fill_host(addr, &self.map);
                    self.send_to(&a, u).await?;
                }
                (_, UnitKind::Wait(_)) => {
                    // Still a master: wait again, for as many replicas as it has now.
                    let still = u.node_addr().filter(|a| masters.contains(a));
                    if let Some(a) = still {
                        if let Some(mut w) = self.wait_unit(&a) {
                            w.seq = u.seq;
                            self.send_to(&a, w).await?;
                        }
                    }
                }
                _ if u.slot.is_none() => {
                    // A broadcast unit: to the node now serving in its place (or where it was).
                    let a = u.node_addr().filter(|a| masters.contains(a)).unwrap_or_else(|| masters[0].clone());
                    self.send_to(&a, u).await?;
                }
                _ => self.send(u).await?,
            }
        }
        self.seal_nodes(None).await
    }

    /// Waits until everything sent so far is applied.
    pub async fn drain(&mut self) -> Result<(), PipeError> {
        self.route_pending().await?;
        self.seal_nodes(None).await?;
        self.settle().await
    }

    /// Sends everything queued, waits, and returns the replies in order.
    pub async fn round_trip(&mut self) -> Result<Vec<Frame>, PipeError> {
        let mut rxs = Vec::new();
        for (_, _, r) in self.pending.iter_mut() {
            let (tx, rx) = oneshot::channel();
            *r = Some(tx);
            rxs.push(rx);
        }
        self.drain().await?;
        let mut out = Vec::new();
        for rx in rxs {
            if let Ok(f) = rx.await {
                out.extend(f);
            }
        }
        Ok(out)
    }

    /// One command, its reply.
    pub async fn request(&mut self, args: Args) -> Result<Frame, PipeError> {
        self.push_any_db(&args);
        self.round_trip().await?.pop().ok_or_else(|| io("cluster", "no reply"))
    }
}

/// `:port` (a node that does not know its host) → the host of a known node.
fn fill_host(addr: &str, map: &SlotMap) -> String {
    if let Some(port) = addr.strip_prefix(':') {
        if let Some((h, _)) = map.nodes().first().and_then(|n| n.addr.rsplit_once(':')) {
            return format!("{h}:{port}");
        }
    }
    addr.to_owned()
}
