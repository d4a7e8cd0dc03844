//! The per-flow reader: reads the socket continuously, feeds the decoder, and hands events to
//! the applier through a queue bounded in bytes (a slow target stops the reads at the bound,
//! which back-pressures the master — visible as `queue_bytes` and lag).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch, Semaphore};

use super::SessionError;
use crate::apply::flow::EventBatch;
use crate::proto::event::Chunk;
use crate::proto::flow::FlowDecoder;
use crate::proto::{Event, JournalOp};
use crate::status::{FlowCounters, FlowPhase};

/// Reader of one flow.
#[derive(Debug)]
pub struct Reader {
    /// Flow index.
    pub flow: usize,
    /// Socket.
    pub read: crate::resp::tls::ReadHalf,
    /// Decoder (full-sync or journal-only).
    pub decoder: FlowDecoder,
    /// Bytes received with the FLOW reply.
    pub leftover: BytesMut,
    /// To the applier.
    pub tx: mpsc::Sender<EventBatch>,
    /// Queue budget in bytes.
    pub budget: Arc<Semaphore>,
    /// Largest single acquisition (the budget's size).
    pub budget_max: usize,
    /// Counters.
    pub counters: Arc<FlowCounters>,
    /// Set when FULLSYNC_END was read.
    pub full_sync_end: watch::Sender<bool>,
    /// Becomes true on shutdown: stop reading, let the applier drain.
    pub stop: watch::Receiver<bool>,
}

impl Reader {
    /// Runs until EOF, an error, or the stop signal (then returns `Ok`).
    pub async fn run(mut self) -> Result<(), SessionError> {
        let flow = self.flow;
        if !self.leftover.is_empty() {
            let first = std::mem::take(&mut self.leftover);
            self.push(&first).await?;
        }
        let mut buf = BytesMut::with_capacity(1 << 16);
        loop {
            buf.clear();
            buf.reserve(1 << 16);
            let n = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => return Ok(()),
                r = self.read.read_buf(&mut buf) => r.map_err(|e| SessionError::Io { addr: format!("flow {flow}"), detail: e.to_string() })?,
            };
            if n == 0 {
                return Err(SessionError::Closed(flow));
            }
            FlowCounters::add(&self.counters.bytes_read, n as u64);
            self.push(&buf).await?;
        }
    }

    async fn push(&mut self, data: &[u8]) -> Result<(), SessionError> {
        let flow = self.flow;
        self.decoder.feed(data);
        let mut events = Vec::new();
        loop {
            match self.decoder.next_event() {
                Ok(Some(ev)) => {
                    match &ev {
                        Event::FullSyncEnd => {
                            if self.counters.phase() == FlowPhase::FullSync {
                                self.counters.set_phase(FlowPhase::FullSyncDone);
                            }
                            self.full_sync_end.send_replace(true);
                        }
                        Event::Journal { lsn, .. } => {
                            self.counters.lsn_read.store(lsn + 1, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    events.push(ev);
                }
                Ok(None) => break,
                Err(error) => return Err(SessionError::Decode { flow, error }),
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        // Compressed input expands (LZ4 of repetitive values: 20x and more): the queue is
        // bounded by what the decoded events hold, not by the bytes read.
        let bytes = data.len().max(events.iter().map(weight).sum());
        let want = bytes.clamp(1, self.budget_max) as u32;
        let permit = self.budget.clone().acquire_many_owned(want).await.map_err(|_| SessionError::Closed(flow))?;
        FlowCounters::add(&self.counters.queue_bytes, bytes as u64);
        self.tx
            .send(EventBatch { events, bytes: bytes as u64, permit: Some(permit) })
            .await
            .map_err(|_| SessionError::Closed(flow))
    }
}

/// Approximate memory an event holds once decoded (payloads plus per-element overhead).
pub fn weight(ev: &Event) -> usize {
    const B: usize = 32;
    let list = |v: &[bytes::Bytes]| v.iter().map(|b| b.len() + B).sum::<usize>();
    std::mem::size_of::<Event>()
        + match ev {
            Event::EntryBegin { header, .. } => header.key.len(),
            Event::EntryChunk { chunk, .. } => match chunk {
                Chunk::Str(b) | Chunk::Json(b) => b.len(),
                Chunk::List(v) | Chunk::Set(v) => list(v),
                Chunk::SetWithTtl(v) => v.iter().map(|(m, _)| m.len() + B + 8).sum(),
                Chunk::Hash(v) => v.iter().map(|(f, x)| f.len() + x.len() + 2 * B).sum(),
                Chunk::HashWithTtl(v) => v.iter().map(|(f, x, _)| f.len() + x.len() + 2 * B + 8).sum(),
                Chunk::Zset(v) => v.iter().map(|(m, _)| m.len() + B + 8).sum(),
                Chunk::StreamEntries(v) => {
                    v.iter().map(|e| B + e.fields.iter().map(|(f, x)| f.len() + x.len() + 2 * B).sum::<usize>()).sum()
                }
                // Stream metadata and the probabilistic types: bounded, small next to the rest.
                _ => 4096,
            },
            Event::JournalBlob { record } | Event::Journal { record, .. } => match &record.op {
                JournalOp::Command { args, .. } => list(args),
                _ => 0,
            },
            Event::Aux { key, value } => key.len() + value.len(),
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn weight_counts_decoded_payloads() {
        let small = weight(&Event::FullSyncEnd);
        let v: Vec<Bytes> = (0..1000).map(|_| Bytes::from(vec![b'v'; 100])).collect();
        let big = weight(&Event::EntryChunk { id: crate::proto::event::EntryId(1), chunk: Chunk::List(v) });
        assert!(big >= 1000 * 100 + small, "{big}");
    }
}
