//! One flow connection's writer: the RDB part (header, snapshot entries, journal blobs, compressed
//! blocks, tagged chunks, FULLSYNC_END), the switch to stable sync (JOURNAL_OFFSET, EOF, token),
//! and the journal stream with LSN markers; plus the byte sink that injects flow faults.
//!
//! The bytes are the same whatever the write sizes: the sink gathers them into large socket
//! writes (flushed whenever the flow has nothing more to send, before any stall or close), and
//! the snapshot takes entries a batch at a time, so serving costs little next to a replica.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use df2redis::proto::compress::Codec;
use df2redis::proto::{JournalOp, JournalRecord};
use tokio::io::AsyncWriteExt;

use crate::config::Compression;
use crate::dataset::Entry;
use crate::encode;
use crate::faults::{Fault, FlowFaults};
use crate::master::{FlowMsg, Shared, State};
use crate::release::Release;

/// Dragonfly flushes its serializer buffer at about this size.
const FLUSH_AT: usize = 8 << 10;
/// LSN markers go out after a record once more than this many ms passed since the last one.
const LSN_MARKER_INTERVAL_MS: u64 = 3000;
/// The sink writes to the socket once this much is gathered (and whenever the flow goes idle).
const WRITE_AT: usize = 256 << 10;
/// Snapshot entries taken from the shard per lock.
const SNAPSHOT_BATCH: usize = 64;

/// The connection was closed on purpose (fault) or failed.
#[derive(Debug)]
struct Closed;

/// Writes bytes to the socket, counting them and applying this flow's faults.
struct Sink {
    w: crate::tls::Wr,
    /// Stream position: bytes handed to the sink (fault offsets count these).
    written: u64,
    /// Gathered bytes not on the socket yet.
    buf: Vec<u8>,
    /// Bytes on the socket (what `bytes_sent` reports).
    on_socket: u64,
    faults: FlowFaults,
    shared: Arc<Shared>,
    sid: u64,
    idx: u32,
}

impl Sink {
    async fn write(&mut self, data: &[u8]) -> Result<(), Closed> {
        let mut data = Cow::Borrowed(data);
        let start = self.written;
        let end = start + data.len() as u64;
        if let Some((fi, off)) = self.faults.flip {
            if off >= start && off < end {
                data.to_mut()[(off - start) as usize] ^= 0xff;
                self.faults.flip = None;
                self.shared.lock().fault_fired[fi] = true;
            }
        }
        let mut pos = 0usize;
        if let Some((fi, off, ms)) = self.faults.stall {
            if off >= start && off < end {
                let cut = (off - start) as usize;
                self.raw(&data[..cut]).await?;
                self.drain().await?;
                pos = cut;
                self.faults.stall = None;
                self.shared.lock().fault_fired[fi] = true;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        if let Some((fi, off)) = self.faults.close_at_byte {
            if off >= start && off < end {
                let cut = (off - start) as usize;
                self.raw(&data[pos.min(cut)..cut]).await?;
                self.drain().await?;
                self.shared.lock().fault_fired[fi] = true;
                let _ = self.w.shutdown().await;
                return Err(Closed);
            }
        }
        self.raw(&data[pos..]).await
    }

    async fn raw(&mut self, data: &[u8]) -> Result<(), Closed> {
        if data.is_empty() {
            return Ok(());
        }
        self.written += data.len() as u64;
        if let Some(rate) = self.faults.throttle {
            self.drain().await?;
            for piece in data.chunks(1024) {
                crate::tls::send(&mut self.w, piece).await.map_err(|_| Closed)?;
                self.on_socket += piece.len() as u64;
                tokio::time::sleep(Duration::from_micros(piece.len() as u64 * 1_000_000 / rate.max(1))).await;
            }
            self.report();
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_AT {
            self.drain().await?;
        }
        Ok(())
    }

    /// Writes the gathered bytes to the socket.
    async fn drain(&mut self) -> Result<(), Closed> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = crate::tls::send(&mut self.w, &self.buf).await;
        self.on_socket += self.buf.len() as u64;
        self.buf.clear();
        r.map_err(|_| Closed)?;
        self.report();
        Ok(())
    }

    /// Publishes the bytes on the socket.
    fn report(&self) {
        {
            let mut st = self.shared.lock();
            if let Some(Some(slot)) = st.sessions.get_mut(&self.sid).map(|s| s.flows.get_mut(self.idx as usize)) {
                if let Some(s) = slot.as_mut() {
                    s.bytes_sent = self.on_socket;
                }
            }
        }
        self.shared.bump();
    }

    /// Drains what is gathered, then closes the write side.
    async fn close(&mut self) {
        let _ = self.drain().await;
        let _ = self.w.shutdown().await;
    }
}

fn resolve_faults(st: &State, idx: u32) -> FlowFaults {
    let mut f = FlowFaults::default();
    for (i, fault) in st.cfg.faults.iter().enumerate() {
        if st.fault_fired[i] {
            continue;
        }
        match fault {
            Fault::CloseFlow { flow, at_byte, after_records } if *flow == idx => {
                if let Some(b) = at_byte {
                    f.close_at_byte = Some((i, *b));
                }
                if let Some(n) = after_records {
                    f.close_after_records = Some((i, *n));
                }
            }
            Fault::Stall { flow, at_byte, ms } if *flow == idx => f.stall = Some((i, *at_byte, *ms)),
            Fault::FlipByte { flow, offset } if *flow == idx => f.flip = Some((i, *offset)),
            Fault::Throttle { flow, bytes_per_sec } if *flow == idx => f.throttle = Some(*bytes_per_sec),
            _ => {}
        }
    }
    f
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Waiting,
    Rdb,
    Stable,
}

enum Work {
    Msgs(Vec<FlowMsg>),
    Snapshot(Vec<((u32, Bytes), Entry)>),
    End,
    Idle,
    Gone,
}

struct FlowWriter {
    shared: Arc<Shared>,
    sid: u64,
    idx: u32,
    conn: u64,
    token: String,
    release: Release,
    compression: Compression,
    chunk_size: usize,
    markers: bool,
    sink: Sink,
    stage: Stage,
    batch: Vec<u8>,
    /// Snapshot entries taken from the shard and not written yet (a write to one of them
    /// already queued its journal record, which must follow the entry).
    snap: VecDeque<((u32, Bytes), Entry)>,
    cur_db: Option<u32>,
    journal_db: Option<u32>,
    next_stream_id: u32,
    last_marker_ms: Option<u64>,
}

/// Runs flow `idx` of session `sid` on its socket's write half until the session ends.
pub async fn run(shared: Arc<Shared>, sid: u64, idx: u32, conn: u64, w: crate::tls::Wr) {
    let (faults, token, release, compression, chunk_size, markers) = {
        let st = shared.lock();
        let Some(Some(slot)) = st.sessions.get(&sid).map(|s| s.flows.get(idx as usize)) else {
            return;
        };
        let Some(slot) = slot else { return };
        let cv = st.sessions.get(&sid).and_then(|s| s.client_version);
        (
            resolve_faults(&st, idx),
            slot.token.clone(),
            st.cfg.release,
            st.cfg.compression,
            st.cfg.chunk_size.max(1),
            st.cfg.release.lsn_markers(cv),
        )
    };
    let sink = Sink { w, written: 0, buf: Vec::new(), on_socket: 0, faults, shared: shared.clone(), sid, idx };
    let mut fw = FlowWriter {
        shared,
        sid,
        idx,
        conn,
        token,
        release,
        compression,
        chunk_size,
        markers,
        sink,
        stage: Stage::Waiting,
        batch: Vec::new(),
        snap: VecDeque::new(),
        cur_db: None,
        journal_db: None,
        next_stream_id: 1,
        last_marker_ms: None,
    };
    if fw.run().await.is_err() {
        // A fault closed the flow or the peer went away: the master cancels the session.
        let mut st = fw.shared.lock();
        if st
            .sessions
            .get(&sid)
            .and_then(|s| s.flows.get(idx as usize))
            .and_then(Option::as_ref)
            .is_some_and(|f| f.conn == conn)
        {
            st.cancel_session(sid);
        }
        drop(st);
        fw.shared.bump();
    }
    fw.sink.close().await;
}

impl FlowWriter {
    fn notify(&self) -> Option<Arc<tokio::sync::Notify>> {
        let st = self.shared.lock();
        st.sessions
            .get(&self.sid)?
            .flows
            .get(self.idx as usize)?
            .as_ref()
            .filter(|f| f.conn == self.conn)
            .map(|f| f.notify.clone())
    }

    fn take_work(&self) -> Work {
        let mut st = self.shared.lock();
        let Some(slot) =
            st.sessions.get_mut(&self.sid).and_then(|s| s.flows.get_mut(self.idx as usize)).and_then(Option::as_mut)
        else {
            return Work::Gone;
        };
        if slot.conn != self.conn {
            return Work::Gone;
        }
        if !slot.queue.is_empty() {
            return Work::Msgs(slot.queue.drain(..).collect());
        }
        if self.stage == Stage::Rdb && slot.snapshotting && !slot.fullsync_end_sent {
            let mut taken = Vec::new();
            while taken.len() < SNAPSHOT_BATCH {
                match slot.remaining.pop_first() {
                    Some(item) => taken.push(item),
                    None => break,
                }
            }
            if !taken.is_empty() {
                return Work::Snapshot(taken);
            }
            slot.fullsync_end_sent = true;
            return Work::End;
        }
        Work::Idle
    }

    async fn run(&mut self) -> Result<(), Closed> {
        let Some(notify) = self.notify() else { return Ok(()) };
        loop {
            match self.take_work() {
                Work::Gone => return Ok(()),
                Work::Idle => {
                    self.flush().await?;
                    self.sink.drain().await?;
                    notify.notified().await;
                }
                Work::Snapshot(taken) => {
                    self.snap.extend(taken);
                    while let Some(((db, key), e)) = self.snap.pop_front() {
                        self.entry(db, &key, &e).await?;
                    }
                }
                Work::End => {
                    encode::fullsync_end(&mut self.batch);
                    self.flush().await?;
                    self.shared.bump();
                }
                Work::Msgs(msgs) => {
                    for m in msgs {
                        self.msg(m).await?;
                    }
                }
            }
        }
    }

    async fn msg(&mut self, m: FlowMsg) -> Result<(), Closed> {
        match m {
            FlowMsg::StartRdb => {
                let (now, used) = {
                    let st = self.shared.lock();
                    (st.cfg.clock.now_ms(), 1_000_000 + st.data.len() as u64 * 64)
                };
                let mut h = Vec::new();
                encode::header(&mut h, self.release, self.idx, self.shards(), now / 1000, used);
                self.sink.write(&h).await?;
                self.stage = Stage::Rdb;
            }
            FlowMsg::Entry(db, key, e) => self.entry(db, &key, &e).await?,
            FlowMsg::Record(lsn, rec, at) => self.record(lsn, &rec, at).await?,
            FlowMsg::Stable(offset) => {
                if self.release.has_acks() {
                    encode::journal_offset(&mut self.batch, offset);
                }
                self.flush().await?;
                let mut tail = Vec::new();
                encode::eof(&mut tail);
                tail.extend_from_slice(self.token.as_bytes());
                self.sink.write(&tail).await?;
                self.stage = Stage::Stable;
            }
            FlowMsg::Direct => self.stage = Stage::Stable,
            FlowMsg::Raw(bytes) => {
                self.flush().await?;
                self.sink.write(&bytes).await?;
            }
        }
        Ok(())
    }

    fn shards(&self) -> u32 {
        self.shared.lock().shards()
    }

    fn lzf(&self) -> bool {
        self.compression == Compression::Lzf
    }

    async fn record(&mut self, lsn: u64, rec: &JournalRecord, now: u64) -> Result<(), Closed> {
        if self.stage != Stage::Stable {
            let lzf = self.lzf();
            encode::journal_blob(&mut self.batch, rec, lzf);
            return self.maybe_flush().await;
        }
        let mut out = Vec::new();
        let select = self.release.select_every_record() || self.journal_db != Some(rec.db);
        encode::journal_record(&mut out, rec, select);
        if matches!(rec.op, JournalOp::Command { .. }) {
            self.journal_db = Some(rec.db);
        }
        if self.markers && self.last_marker_ms.is_none_or(|t| now.saturating_sub(t) > LSN_MARKER_INTERVAL_MS) {
            encode::lsn_marker(&mut out, lsn);
            self.last_marker_ms = Some(now);
        }
        self.sink.write(&out).await?;
        self.after_stable_record().await
    }

    async fn after_stable_record(&mut self) -> Result<(), Closed> {
        let (close_flow, restart) = {
            let mut st = self.shared.lock();
            st.stable_records += 1;
            let n = st.stable_records;
            let mut mine = 0;
            if let Some(slot) =
                st.sessions.get_mut(&self.sid).and_then(|s| s.flows.get_mut(self.idx as usize)).and_then(Option::as_mut)
            {
                slot.records_sent += 1;
                mine = slot.records_sent;
            }
            let close_flow = match self.sink.faults.close_after_records {
                Some((fi, k)) if mine >= k => {
                    st.fault_fired[fi] = true;
                    true
                }
                _ => false,
            };
            let mut restart = false;
            for i in 0..st.cfg.faults.len() {
                if st.fault_fired[i] {
                    continue;
                }
                match st.cfg.faults[i] {
                    Fault::CloseControl { after_records } if n >= after_records => {
                        st.fault_fired[i] = true;
                        st.close_control = Some(self.sid);
                    }
                    Fault::Restart { after_records } if n >= after_records => {
                        st.fault_fired[i] = true;
                        restart = true;
                    }
                    _ => {}
                }
            }
            if restart {
                st.restart();
            }
            (close_flow, restart)
        };
        if close_flow || restart {
            self.shared.bump();
            self.sink.close().await;
            return Err(Closed);
        }
        Ok(())
    }

    async fn entry(&mut self, db: u32, key: &[u8], e: &Entry) -> Result<(), Closed> {
        let bytes = match encode::entry(key, e, self.release, self.lzf()) {
            Ok(b) => b,
            Err(_) => return Ok(()),
        };
        if self.cur_db != Some(db) {
            encode::select_db(&mut self.batch, db);
            self.cur_db = Some(db);
        }
        if bytes.len() <= self.chunk_size || !self.release.splits_big_values() {
            self.batch.extend_from_slice(&bytes);
            return self.maybe_flush().await;
        }
        if !self.release.tagged_chunks() {
            // Mid-entry flushes without tags: contiguous on the wire, never compressed.
            let pending = std::mem::take(&mut self.batch);
            self.emit(pending).await?;
            self.sink.write(&bytes).await?;
            self.cur_db = None;
            return Ok(());
        }
        let id = self.next_stream_id;
        self.next_stream_id = self.next_stream_id.checked_add(1).unwrap_or(1);
        let pieces: Vec<&[u8]> = bytes.chunks(self.chunk_size).collect();
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            encode::tagged_chunk(&mut self.batch, id, piece);
            self.flush().await?;
            if i < last {
                self.interleave_blobs(key).await?;
            }
        }
        Ok(())
    }

    /// Between two pieces of a split value: journal records that do not touch `key` go out now.
    async fn interleave_blobs(&mut self, key: &[u8]) -> Result<(), Closed> {
        let ready: Vec<(u64, JournalRecord, u64)> = {
            let mut st = self.shared.lock();
            let Some(slot) = st
                .sessions
                .get_mut(&self.sid)
                .and_then(|s| s.flows.get_mut(self.idx as usize))
                .and_then(Option::as_mut)
            else {
                return Ok(());
            };
            let mut out = Vec::new();
            while let Some(FlowMsg::Record(_, rec, _)) = slot.queue.front() {
                let pending = |a: &Bytes| &a[..] == key || self.snap.iter().any(|((_, k), _)| k == a);
                let touches = match &rec.op {
                    JournalOp::Command { args, .. } => args.iter().skip(1).any(pending),
                    _ => false,
                };
                if touches {
                    break;
                }
                if let Some(FlowMsg::Record(lsn, rec, at)) = slot.queue.pop_front() {
                    out.push((lsn, rec, at));
                }
            }
            out
        };
        for (lsn, rec, at) in ready {
            self.record(lsn, &rec, at).await?;
        }
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), Closed> {
        if self.batch.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.batch);
        self.cur_db = None;
        self.emit(data).await
    }

    async fn emit(&mut self, data: Vec<u8>) -> Result<(), Closed> {
        if data.is_empty() {
            return Ok(());
        }
        let codec = match self.compression {
            Compression::Lz4 => Some(Codec::Lz4),
            Compression::Zstd => Some(Codec::Zstd),
            _ => None,
        };
        match codec.and_then(|c| encode::compressed(c, &data)) {
            Some(blob) => self.sink.write(&blob).await,
            None => self.sink.write(&data).await,
        }
    }
}
