//! The per-flow reader: reads the socket continuously, feeds the decoder, and hands events to
//! the applier through a queue bounded in bytes (a slow target stops the reads at the bound,
//! which back-pressures the master — visible as `queue_bytes` and lag).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch, Semaphore};

use super::SessionError;
use crate::apply::flow::EventBatch;
use crate::proto::flow::FlowDecoder;
use crate::proto::Event;
use crate::status::{FlowCounters, FlowPhase};

/// Reader of one flow.
#[derive(Debug)]
pub struct Reader {
    /// Flow index.
    pub flow: usize,
    /// Socket.
    pub read: OwnedReadHalf,
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
        let bytes = data.len();
        let want = bytes.clamp(1, self.budget_max) as u32;
        let permit = self.budget.clone().acquire_many_owned(want).await.map_err(|_| SessionError::Closed(flow))?;
        FlowCounters::add(&self.counters.queue_bytes, bytes as u64);
        self.tx
            .send(EventBatch { events, bytes: bytes as u64, permit: Some(permit) })
            .await
            .map_err(|_| SessionError::Closed(flow))
    }
}
