//! A small test replica on the project's decoders: handshake, flows, full sync, stable sync,
//! partial resume. It applies what it receives to a second mock master's dataset (whose command
//! executor understands every rewritten journal command), so tests compare whole datasets.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use bytes::Bytes;
use df2redis::proto::assemble::{Assembled, Assembler};
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{Event, JournalOp, JournalRecord, Limits, Value};
use mock_master::{Dataset, Entry, Handle, MockMaster, Release, Reply};

use super::{Client, DEADLINE};

/// What the replica learnt from `capa dragonfly`.
#[derive(Debug, Clone)]
pub struct Capa {
    pub master_id: String,
    pub sync_id: String,
    pub flows: u32,
    pub version: Option<i64>,
}

pub struct Flow {
    pub c: Client,
    pub dec: FlowDecoder,
    pub asm: Assembler,
    pub token: String,
    pub partial: bool,
    pub next_lsn: Option<u64>,
    pub fullsync_end: bool,
    pub eof_token: bool,
    pub events: Vec<Event>,
    /// A FLUSHALL/FLUSHDB journal record waiting at the barrier (spec 6.3).
    pub barrier: Option<(u64, JournalRecord)>,
    /// Every byte received on the flow.
    pub raw: Vec<u8>,
}

pub struct Replica {
    pub ctrl: Client,
    pub capa: Capa,
    pub flows: Vec<Flow>,
    /// The applied data lives in this (never served) mock master.
    pub store: Handle,
    flushed_txids: HashSet<u64>,
    pub journal_records: Vec<(u32, u64, JournalRecord)>,
    /// Ignore records the store cannot execute (v1.30 Z*STORE fragments).
    pub lenient: bool,
}

pub async fn handshake(addr: SocketAddr, client_version: Option<i64>) -> (Client, Capa) {
    let mut c = Client::connect(addr).await;
    assert!(c.cmd(&["INFO", "SERVER"]).await.as_text().unwrap().contains("dragonfly_version:df-v"));
    assert_eq!(c.cmd(&["PING"]).await, Reply::Simple("PONG".into()));
    assert_eq!(c.cmd(&["REPLCONF", "listening-port", "6380"]).await, Reply::ok());
    assert_eq!(c.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]).await, Reply::ok());
    let Reply::Array(Some(items)) = c.cmd(&["REPLCONF", "capa", "dragonfly"]).await else { panic!("capa reply") };
    let text = |r: &Reply| r.as_text().unwrap();
    let int = |r: &Reply| match r {
        Reply::Int(n) => *n,
        other => panic!("{other:?}"),
    };
    let capa = Capa {
        master_id: text(&items[0]),
        sync_id: text(&items[1]),
        flows: int(&items[2]) as u32,
        version: items.get(3).map(int),
    };
    assert_eq!(capa.master_id.len(), 40);
    assert_eq!(c.cmd(&["REPLCONF", "CLIENT-ID", "test-replica"]).await, Reply::ok());
    if let (Some(v), Some(_)) = (client_version, capa.version) {
        assert_eq!(c.cmd(&["REPLCONF", "CLIENT-VERSION", &v.to_string()]).await, Reply::ok());
    }
    (c, capa)
}

fn sorted_value(v: &Value) -> Value {
    match v {
        Value::Set(s) => {
            let mut s = s.clone();
            s.sort();
            Value::Set(s)
        }
        Value::Hash(h) => {
            let mut h = h.clone();
            h.sort();
            Value::Hash(h)
        }
        Value::Zset(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Zset(z)
        }
        Value::Stream(s) => {
            let mut s = s.clone();
            s.meta.v2 = None;
            s.meta.length = s.entries.len() as u64;
            Value::Stream(s)
        }
        other => other.clone(),
    }
}

/// A dataset in comparable form: (db, key) → (normalized value, expiry).
pub fn normalized(d: &Dataset) -> BTreeMap<(u32, Bytes), (Value, Option<u64>)> {
    d.iter().map(|(db, k, e)| ((db, k.clone()), (sorted_value(&e.value), e.expire_ms))).collect::<BTreeMap<_, _>>()
}

impl Replica {
    /// Control handshake + one `DFLY FLOW` per shard (with `lsns` for a partial attempt).
    pub async fn connect(
        addr: SocketAddr,
        client_version: Option<i64>,
        lsns: Option<&[u64]>,
        store: Handle,
    ) -> Replica {
        let extra = lsns.map(|l| l.iter().map(|x| vec![x.to_string()]).collect::<Vec<_>>());
        Replica::connect_with(addr, client_version, extra, store).await
    }

    /// Like [`Replica::connect`], with `extra[i]` appended to flow i's `DFLY FLOW`.
    pub async fn connect_with(
        addr: SocketAddr,
        client_version: Option<i64>,
        extra: Option<Vec<Vec<String>>>,
        store: Handle,
    ) -> Replica {
        let (ctrl, capa) = handshake(addr, client_version).await;
        let mut flows = Vec::new();
        for i in 0..capa.flows {
            let mut c = Client::connect(addr).await;
            let idx = i.to_string();
            let mut args = vec!["DFLY", "FLOW", capa.master_id.as_str(), capa.sync_id.as_str(), idx.as_str()];
            if let Some(e) = &extra {
                args.extend(e[i as usize].iter().map(String::as_str));
            }
            let Reply::Array(Some(r)) = c.cmd(&args).await else { panic!("flow reply") };
            let kind = r[0].as_text().unwrap();
            let token = r[1].as_text().unwrap();
            assert_eq!(token.len(), 40);
            let partial = kind == "PARTIAL";
            let mut tok = [0u8; 40];
            tok.copy_from_slice(token.as_bytes());
            flows.push(Flow {
                c,
                dec: FlowDecoder::full_sync(tok, Limits::default()),
                asm: Assembler::new(),
                token,
                partial,
                next_lsn: None,
                fullsync_end: false,
                eof_token: false,
                events: Vec::new(),
                barrier: None,
                raw: Vec::new(),
            });
        }
        Replica { ctrl, capa, flows, store, flushed_txids: HashSet::new(), journal_records: Vec::new(), lenient: false }
    }

    pub fn all_partial(&self) -> bool {
        self.flows.iter().all(|f| f.partial)
    }

    /// Switches partial flows to journal-only decoding (direct partial sync).
    pub fn direct_partial(&mut self, lsns: &[u64]) {
        for (i, f) in self.flows.iter_mut().enumerate() {
            f.dec = FlowDecoder::journal_only(lsns[i], Limits::default());
            f.next_lsn = Some(lsns[i]);
            f.eof_token = true;
            f.fullsync_end = true;
        }
    }

    fn apply(&mut self, flow: usize, rec: &JournalRecord) {
        if let JournalOp::Command { txid, args, .. } = &rec.op {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            if (name == "FLUSHALL" || name == "FLUSHDB") && !self.flushed_txids.insert(*txid) {
                return;
            }
            let r = self.store.exec_bytes(rec.db, args);
            assert!(self.lenient || !matches!(r, Reply::Error(_)), "flow {flow}: applying {args:?} failed: {r:?}");
        }
    }

    /// Applies a global command once every flow reached it (all with the same txid).
    fn release_barrier(&mut self) {
        let txids: Vec<Option<u64>> = self.flows.iter().map(|f| f.barrier.as_ref().map(|b| b.0)).collect();
        if txids.iter().all(|t| t.is_some() && *t == txids[0]) {
            let rec = self.flows[0].barrier.as_ref().map(|b| b.1.clone());
            for f in &mut self.flows {
                f.barrier = None;
            }
            if let Some(rec) = rec {
                self.apply(0, &rec);
            }
        }
    }

    /// Decodes whatever flow `i` has buffered; returns whether anything happened.
    fn drain(&mut self, i: usize) -> bool {
        let data = self.flows[i].c.buf.split();
        self.flows[i].raw.extend_from_slice(&data);
        self.flows[i].dec.feed(&data);
        let mut any = false;
        loop {
            self.release_barrier();
            if self.flows[i].barrier.is_some() {
                break;
            }
            let ev = self.flows[i].dec.next_event().unwrap_or_else(|e| panic!("flow {i}: decode error {e}"));
            let Some(ev) = ev else { break };
            any = true;
            self.flows[i].events.push(ev.clone());
            match self.flows[i].asm.push(ev).unwrap() {
                Some(Assembled::Entry { header, value }) => {
                    let mut ds = Dataset::new(1);
                    ds.insert(0, header.key.clone(), Entry { value, expire_ms: header.expire_ms });
                    let e = ds.get(0, &header.key).unwrap().clone();
                    self.store_insert(header.db, header.key, e);
                }
                Some(Assembled::Other(Event::JournalBlob { record })) => self.apply(i, &record),
                Some(Assembled::Other(Event::FullSyncEnd)) => self.flows[i].fullsync_end = true,
                Some(Assembled::Other(Event::JournalOffset { lsn })) => self.flows[i].next_lsn = Some(lsn),
                Some(Assembled::Other(Event::EofToken)) => self.flows[i].eof_token = true,
                Some(Assembled::Other(Event::Journal { lsn, record })) => {
                    assert_eq!(Some(lsn), self.flows[i].next_lsn, "flow {i}: LSNs are consecutive");
                    self.flows[i].next_lsn = Some(lsn + 1);
                    self.journal_records.push((i as u32, lsn, record.clone()));
                    match &record.op {
                        JournalOp::Command { txid, args, .. }
                            if args[0].eq_ignore_ascii_case(b"FLUSHALL")
                                || args[0].eq_ignore_ascii_case(b"FLUSHDB") =>
                        {
                            self.flows[i].barrier = Some((*txid, record.clone()));
                        }
                        _ => self.apply(i, &record),
                    }
                }
                _ => {}
            }
        }
        any
    }

    fn store_insert(&mut self, db: u32, key: Bytes, e: Entry) {
        // Replace semantics, as a replica loads a full sync.
        let key_s = String::from_utf8(key.to_vec()).unwrap();
        self.store.exec(db, &["DEL", &key_s]);
        self.store.insert(db, key, e);
    }

    /// Reads flows until `done(self)` holds.
    pub async fn pump_until(&mut self, what: &str, done: impl Fn(&Replica) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            for _ in 0..2 {
                for i in 0..self.flows.len() {
                    self.drain(i);
                }
            }
            if done(self) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            // Read from whichever flow has data (poll each briefly, fairly).
            let futs = self.flows.iter_mut().map(|f| {
                Box::pin(async move {
                    use tokio::io::AsyncReadExt;
                    f.c.s.read_buf(&mut f.c.buf).await
                })
            });
            let (r, _, _) = tokio::time::timeout(DEADLINE, futures_select(futs.collect())).await.expect(what);
            assert!(matches!(r, Ok(n) if n > 0), "flow closed while waiting for {what}");
        }
    }

    pub async fn full_sync(&mut self) {
        assert_eq!(self.ctrl.cmd(&["DFLY", "SYNC", &self.capa.sync_id.clone()]).await, Reply::ok());
        self.pump_until("FULLSYNC_END", |r| r.flows.iter().all(|f| f.fullsync_end)).await;
    }

    pub async fn start_stable(&mut self) {
        let sid = self.capa.sync_id.clone();
        assert_eq!(self.ctrl.cmd(&["DFLY", "STARTSTABLE", &sid]).await, Reply::ok());
    }

    pub async fn until_tokens(&mut self) {
        self.pump_until("eof tokens", |r| r.flows.iter().all(|f| f.eof_token)).await;
    }

    pub fn next_lsns(&self) -> Vec<u64> {
        self.flows.iter().map(|f| f.next_lsn.unwrap_or(0)).collect()
    }

    pub async fn ack_all(&mut self) {
        for f in &mut self.flows {
            let n = f.next_lsn.unwrap().to_string();
            f.c.send(&["REPLCONF", "ACK", &n]).await;
        }
    }
}

async fn futures_select<F, T>(futs: Vec<std::pin::Pin<Box<F>>>) -> (T, usize, ())
where
    F: std::future::Future<Output = T> + ?Sized,
{
    let mut futs = futs;
    std::future::poll_fn(move |cx| {
        for (i, f) in futs.iter_mut().enumerate() {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready((v, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A replica store for `release` sharing `clock`.
pub fn store_for(release: Release, clock: mock_master::Clock) -> Handle {
    MockMaster::new().release(release).clock(clock).build()
}
