//! The master's shared state: dataset, per-shard journals with backlog, replication sessions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use df2redis::proto::event::CommandKind;
use df2redis::proto::{JournalOp, JournalRecord};
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::dataset::{Dataset, Entry};
use crate::shard::shard_of;

/// A small deterministic generator for ids and tokens (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 40 lowercase hex characters (master ids, eof tokens).
    pub fn hex40(&mut self) -> String {
        let mut s = String::with_capacity(48);
        while s.len() < 40 {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(40);
        s
    }
}

/// A shard's journal: LSN counter and the backlog of recent records.
#[derive(Debug, Clone, Default)]
pub struct ShardJournal {
    /// Journaling starts with the first replica; before that writes consume no LSN.
    pub active: bool,
    /// LSN the next record gets.
    pub next_lsn: u64,
    /// Recent records, oldest first.
    pub backlog: VecDeque<(u64, JournalRecord)>,
}

impl ShardJournal {
    /// Whether a replica asking for `lsn` can be served from this journal.
    pub fn can_resume(&self, lsn: u64) -> bool {
        self.active
            && (lsn == self.next_lsn || self.backlog.front().is_some_and(|(l, _)| *l <= lsn && lsn < self.next_lsn))
    }
}

/// A replication session's phase (`INFO REPLICATION` `state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// After `capa dragonfly`, while flows register.
    Preparation,
    /// After `DFLY SYNC`.
    FullSync,
    /// After `DFLY STARTSTABLE`.
    StableSync,
}

/// What a flow task is told to write, in order.
#[derive(Debug, Clone)]
pub enum FlowMsg {
    /// Start the RDB part (header + AUX). `incremental`: partial sync through `DFLY SYNC`.
    StartRdb,
    /// Serialize this entry now (a write is about to change it).
    Entry(u32, Bytes, Entry),
    /// A journal record with its LSN and the time it was journaled (Unix ms): a journal blob
    /// before stable sync, a record after.
    Record(u64, JournalRecord, u64),
    /// Finish the RDB part: JOURNAL_OFFSET(lsn), EOF, token; then stable sync.
    Stable(u64),
    /// Direct partial sync: stable sync without any RDB part.
    Direct,
    /// Raw bytes (a reply to a command sent on the flow connection).
    Raw(Vec<u8>),
}

/// One registered flow of a session.
#[derive(Debug)]
pub struct FlowSlot {
    /// Connection id of the flow socket.
    pub conn: u64,
    /// The 40-hex eof token.
    pub token: String,
    /// `Some(lsn)` when the flow answered PARTIAL.
    pub partial_from: Option<u64>,
    /// Whether journal records of the shard are forwarded to this flow.
    pub subscribed: bool,
    /// Pending messages.
    pub queue: VecDeque<FlowMsg>,
    /// Snapshot entries not serialized yet.
    pub remaining: BTreeMap<(u32, Bytes), Entry>,
    /// Whether the RDB snapshot part is running.
    pub snapshotting: bool,
    /// Whether FULLSYNC_END was written.
    pub fullsync_end_sent: bool,
    /// Wakes the flow task.
    pub notify: Arc<Notify>,
    /// Every `REPLCONF ACK` value received, in order.
    pub acks: Vec<u64>,
    /// Bytes written on the socket so far.
    pub bytes_sent: u64,
    /// Stable-sync journal records sent.
    pub records_sent: u64,
}

/// A replication session (`SYNC<n>`).
#[derive(Debug)]
pub struct Session {
    /// n of `SYNC<n>`.
    pub id: u64,
    /// Phase.
    pub phase: Phase,
    /// Control connection id.
    pub control_conn: u64,
    /// Peer address of the control connection.
    pub peer_ip: String,
    /// `REPLCONF listening-port`.
    pub listening_port: Option<i64>,
    /// `REPLCONF ip-address`.
    pub announced_ip: Option<String>,
    /// `REPLCONF CLIENT-ID`.
    pub client_id: Option<Bytes>,
    /// `REPLCONF CLIENT-VERSION`.
    pub client_version: Option<i64>,
    /// Flow slots, one per shard.
    pub flows: Vec<Option<FlowSlot>>,
}

/// Observable facts about a session, for tests and `INFO REPLICATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// `SYNC<n>`.
    pub sync_id: String,
    /// Phase.
    pub phase: Phase,
    /// ACKs per flow.
    pub acks: Vec<Vec<u64>>,
    /// Bytes written per flow.
    pub bytes_sent: Vec<u64>,
    /// `CLIENT-VERSION`.
    pub client_version: Option<i64>,
    /// PARTIAL start LSN per flow.
    pub partial_from: Vec<Option<u64>>,
}

/// The state behind the lock.
#[derive(Debug)]
pub struct State {
    /// Configuration.
    pub cfg: Config,
    /// Current master id.
    pub master_id: String,
    /// The dataset.
    pub data: Dataset,
    /// One journal per shard.
    pub journals: Vec<ShardJournal>,
    /// Live sessions by n.
    pub sessions: BTreeMap<u64, Session>,
    /// Next n of `SYNC<n>`.
    pub next_sync: u64,
    /// Next transaction id.
    pub next_txid: u64,
    /// Id generator.
    pub rng: Rng,
    /// Which faults fired.
    pub fault_fired: Vec<bool>,
    /// Remaining refusals per fault.
    pub refuse_left: Vec<u32>,
    /// Stable-sync journal records written over all flows and sessions since start.
    pub stable_records: u64,
    /// Live-write phases already run.
    pub writes_run: [bool; 2],
    /// Restarts so far.
    pub restarts: u64,
    /// Set when a fault asks the control connection of a session to close.
    pub close_control: Option<u64>,
    /// Scripts by lowercase SHA1 (EVAL, SCRIPT LOAD).
    pub scripts: BTreeMap<String, Bytes>,
}

impl State {
    /// A fresh master from a config and an initial dataset.
    pub fn new(cfg: Config, data: Dataset) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let master_id = cfg.master_id.clone().unwrap_or_else(|| rng.hex40());
        let shards = cfg.shards.max(1) as usize;
        let faults = cfg.faults.len();
        let refuse_left = cfg
            .faults
            .iter()
            .map(|f| match f {
                crate::faults::Fault::Refuse { times, .. } => *times,
                _ => 0,
            })
            .collect();
        let mut journals = vec![ShardJournal::default(); shards];
        if let Some(p) = &cfg.promoted_from {
            // A promoted replica keeps journaling from the LSNs it had replicated up to.
            for (j, lsn) in journals.iter_mut().zip(&p.lsns) {
                j.active = true;
                j.next_lsn = (*lsn).max(1);
            }
        }
        State {
            master_id,
            data,
            journals,
            sessions: BTreeMap::new(),
            next_sync: 1,
            next_txid: 1,
            rng,
            fault_fired: vec![false; faults],
            refuse_left,
            stable_records: 0,
            writes_run: [false; 2],
            restarts: 0,
            close_control: None,
            scripts: BTreeMap::new(),
            cfg,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.cfg.shards.max(1)
    }

    /// Shard of a key.
    pub fn shard(&self, key: &[u8]) -> u32 {
        shard_of(key, self.shards())
    }

    /// The DUMP payload of `value` as this master writes it (LZF strings unless compression is off).
    pub fn dump_payload(&self, value: &df2redis::proto::Value) -> Result<Bytes, String> {
        let lzf = self.cfg.compression != crate::config::Compression::None;
        crate::encode::dump(value, self.cfg.release, lzf)
    }

    /// `--journal_omit_redundant_writes`: whether a SET of `key` can skip the journal because the
    /// only replica is in full sync and its snapshot has not reached the key yet (v1.39+).
    /// Returns the shard when it can.
    pub fn omittable(&self, db: u32, key: &[u8]) -> Option<u32> {
        if !self.cfg.journal_omit || !self.cfg.release.has_journal_omit() || self.sessions.len() != 1 {
            return None;
        }
        let shard = self.shard(key);
        let s = self.sessions.values().next()?;
        let slot = s.flows.get(shard as usize)?.as_ref()?;
        let pending = s.phase == Phase::FullSync
            && slot.snapshotting
            && !slot.fullsync_end_sent
            && slot.remaining.contains_key(&(db, Bytes::copy_from_slice(key)));
        pending.then_some(shard)
    }

    /// Applies an omitted write: the snapshot will serialize the new entry, the shard's backlog is
    /// cleared and its LSN bumped by one so no stale LSN can resume (`journal::ClearBuffer`).
    pub fn omit_write(&mut self, shard: u32, db: u32, key: Bytes, entry: Entry) {
        for s in self.sessions.values_mut() {
            if let Some(Some(slot)) = s.flows.get_mut(shard as usize) {
                slot.remaining.insert((db, key.clone()), entry.clone());
            }
        }
        self.data.insert(db, key, entry);
        if let Some(j) = self.journals.get_mut(shard as usize) {
            j.backlog.clear();
            j.next_lsn += 1;
        }
    }

    /// Starts journaling on every shard (first replica).
    pub fn activate_journals(&mut self) {
        for j in &mut self.journals {
            if !j.active {
                j.active = true;
                j.next_lsn = 1;
            }
        }
    }

    /// Next LSN per shard, 0 where journaling never started (`DFLY REPLICAOFFSET`).
    pub fn offsets(&self) -> Vec<u64> {
        self.journals.iter().map(|j| if j.active { j.next_lsn } else { 0 }).collect()
    }

    /// Allocates a transaction id.
    pub fn alloc_txid(&mut self) -> u64 {
        let t = self.next_txid;
        self.next_txid += 1;
        t
    }

    /// Before `key` of `db` changes: any flow still holding it unserialized writes it first.
    pub fn touch(&mut self, db: u32, key: &[u8]) {
        let shard = self.shard(key) as usize;
        for s in self.sessions.values_mut() {
            if let Some(Some(slot)) = s.flows.get_mut(shard) {
                if slot.snapshotting {
                    if let Some(e) = slot.remaining.remove(&(db, Bytes::copy_from_slice(key))) {
                        slot.queue.push_back(FlowMsg::Entry(db, Bytes::copy_from_slice(key), e));
                        slot.notify.notify_one();
                    }
                }
            }
        }
    }

    /// Appends a record to a shard's journal and forwards it to subscribed flows.
    pub fn publish(&mut self, shard: u32, rec: JournalRecord) {
        let backlog_len = self.cfg.backlog_len();
        let Some(j) = self.journals.get_mut(shard as usize) else {
            return;
        };
        if !j.active {
            return;
        }
        let lsn = j.next_lsn;
        j.next_lsn += 1;
        let now = self.cfg.clock.now_ms();
        if backlog_len > 0 {
            j.backlog.push_back((lsn, rec.clone()));
            while j.backlog.len() > backlog_len {
                j.backlog.pop_front();
            }
        }
        for s in self.sessions.values_mut() {
            if let Some(Some(slot)) = s.flows.get_mut(shard as usize) {
                if slot.subscribed {
                    slot.queue.push_back(FlowMsg::Record(lsn, rec.clone(), now));
                    slot.notify.notify_one();
                }
            }
        }
    }

    /// Journals a command on `shard`.
    pub fn publish_command(
        &mut self,
        shard: u32,
        db: u32,
        kind: CommandKind,
        txid: u64,
        shard_cnt: u64,
        args: Vec<Bytes>,
    ) {
        self.publish(shard, JournalRecord { db, op: JournalOp::Command { kind, txid, shard_cnt, args } });
    }

    /// Journals an expiry/eviction delete (txid 0).
    pub fn publish_expired(&mut self, db: u32, key: Bytes) {
        let kind = if self.cfg.release.expired_opcode() { CommandKind::Expired } else { CommandKind::Command };
        let shard = self.shard(&key);
        self.publish_command(shard, db, kind, 0, 1, vec![Bytes::from_static(b"DEL"), key]);
    }

    /// Writes a PING record into every shard's journal (as `WAIT` / `DFLY TAKEOVER` do).
    pub fn publish_ping(&mut self) {
        for shard in 0..self.shards() {
            self.publish(shard, JournalRecord { db: 0, op: JournalOp::Ping });
        }
    }

    /// Cancels a session: every flow socket is shut down and the sync id is forgotten.
    pub fn cancel_session(&mut self, id: u64) {
        if let Some(s) = self.sessions.remove(&id) {
            // Flow tasks notice that their slot is gone and shut their sockets down.
            for slot in s.flows.into_iter().flatten() {
                slot.notify.notify_one();
            }
        }
    }

    /// Restarts the master: new id, sync ids from 1 again, journals and sessions gone.
    pub fn restart(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.cancel_session(id);
        }
        self.master_id = self.rng.hex40();
        self.next_sync = 1;
        for j in &mut self.journals {
            *j = ShardJournal::default();
        }
        self.restarts += 1;
    }

    /// Snapshot of a session for observers.
    pub fn session_info(&self, id: u64) -> Option<SessionInfo> {
        let s = self.sessions.get(&id)?;
        Some(SessionInfo {
            sync_id: format!("SYNC{}", s.id),
            phase: s.phase,
            acks: s.flows.iter().map(|f| f.as_ref().map(|f| f.acks.clone()).unwrap_or_default()).collect(),
            bytes_sent: s.flows.iter().map(|f| f.as_ref().map_or(0, |f| f.bytes_sent)).collect(),
            client_version: s.client_version,
            partial_from: s.flows.iter().map(|f| f.as_ref().and_then(|f| f.partial_from)).collect(),
        })
    }
}

/// State shared by every connection of one master.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    /// Bumped on every observable change (session phases, ACKs, flow progress).
    pub epoch: watch::Sender<u64>,
}

impl Shared {
    /// Wraps a state.
    pub fn new(state: State) -> Arc<Self> {
        let (epoch, _) = watch::channel(0);
        Arc::new(Shared { state: Mutex::new(state), epoch })
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signals observers that something changed.
    pub fn bump(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}
