//! [`Sink`]: where a flow writes — one pipelined [`Pipe`] to a standalone Redis, or a
//! [`ClusterSink`] routing over a Redis Cluster — with one interface for the applier.

use bytes::Bytes;
use tokio::sync::watch;

use super::ClusterSink;
use crate::apply::conn::{Frame as ConnFrame, Pipe, PipeError, Tag};
use crate::apply::{Args, DbCmd};
use crate::resp::Frame;

/// Where a flow writes.
#[derive(Debug)]
pub enum Sink {
    /// A standalone Redis.
    Single(Box<Pipe>),
    /// A Redis Cluster.
    Cluster(Box<ClusterSink>),
}

impl From<Pipe> for Sink {
    fn from(p: Pipe) -> Self {
        Sink::Single(Box::new(p))
    }
}

impl From<ClusterSink> for Sink {
    fn from(c: ClusterSink) -> Self {
        Sink::Cluster(Box::new(c))
    }
}

impl Sink {
    /// Keys left alone so far because they existed on the target (conflict policy `skip`).
    pub fn conflicts_skipped(&self) -> u64 {
        use std::sync::atomic::Ordering;
        match self {
            Sink::Single(p) => p.stats.conflicts_skipped.load(Ordering::Relaxed),
            Sink::Cluster(c) => c.counters.conflicts_skipped.load(Ordering::Relaxed),
        }
    }

    /// Resolves when the sink needs its owner to call [`Sink::flush`] although no new data came
    /// (a cluster node redirected units that must be resent, or failed; a standalone pipe
    /// failed — e.g. an error reply to an earlier batch — and `flush` then returns that error).
    pub fn attention(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (shared, failed) = match self {
            Sink::Single(p) => (None, Some(p.failed())),
            Sink::Cluster(c) => (Some(c.shared.clone()), None),
        };
        async move {
            if let Some(f) = failed {
                let _ = f.await;
                return;
            }
            let Some(sh) = shared else { return std::future::pending().await };
            loop {
                let n = sh.done.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                {
                    let st = sh.lock();
                    if st.recovering || st.fatal.is_some() {
                        return;
                    }
                }
                n.await;
            }
        }
    }

    /// The journal record the next commands come from (cluster markers; `None`: snapshot data).
    pub fn set_lsn(&mut self, lsn: Option<u64>) {
        if let Sink::Cluster(c) = self {
            c.set_lsn(lsn);
        }
    }

    /// Whether the global command reaching `next` (per flow) is already applied (cluster markers).
    pub fn flush_applied(&self, next: &[u64]) -> bool {
        match self {
            Sink::Single(_) => false,
            Sink::Cluster(c) => c.flush_applied(next),
        }
    }

    /// Records an applied global command (cluster markers; a standalone target records it in
    /// the same transaction).
    pub async fn mark_flush(&mut self, next: &[u64]) -> Result<(), PipeError> {
        match self {
            Sink::Single(_) => Ok(()),
            Sink::Cluster(c) => c.mark_flush(next).await,
        }
    }

    /// Whether writes go to a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Sink::Cluster(_))
    }

    /// The confirmed-LSN watch.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        match self {
            Sink::Single(p) => p.confirmed(),
            Sink::Cluster(c) => c.confirmed(),
        }
    }

    /// Queues a command.
    pub fn push(&mut self, cmd: &DbCmd) {
        match self {
            Sink::Single(p) => p.push(cmd),
            Sink::Cluster(c) => c.push(cmd),
        }
    }

    /// Queues a command the sink may keep (a cluster sink then copies no argument list).
    pub fn push_owned(&mut self, cmd: DbCmd) {
        match self {
            Sink::Single(p) => p.push_owned(cmd),
            Sink::Cluster(c) => c.push_owned(cmd),
        }
    }

    /// Queues a command with no db.
    pub fn push_any_db(&mut self, args: &[Bytes]) {
        match self {
            Sink::Single(p) => p.push_any_db(args),
            Sink::Cluster(c) => c.push_any_db(args),
        }
    }

    /// Commands in the batch being built.
    pub fn batch_len(&self) -> usize {
        match self {
            Sink::Single(p) => p.batch_len(),
            Sink::Cluster(c) => c.batch_len(),
        }
    }

    /// Bytes buffered.
    pub fn buffered(&self) -> usize {
        match self {
            Sink::Single(p) => p.buffered(),
            Sink::Cluster(c) => c.buffered(),
        }
    }

    /// Closes the batch with `tag`.
    pub async fn seal(&mut self, tag: Tag) -> Result<(), PipeError> {
        match self {
            Sink::Single(p) => p.seal(tag).await,
            Sink::Cluster(c) => c.seal(tag).await,
        }
    }

    /// Writes what is buffered.
    pub async fn flush(&mut self) -> Result<(), PipeError> {
        match self {
            Sink::Single(p) => p.flush().await,
            Sink::Cluster(c) => c.flush().await,
        }
    }

    /// Waits until everything sealed is applied.
    pub async fn drain(&mut self) -> Result<(), PipeError> {
        match self {
            Sink::Single(p) => p.drain().await,
            Sink::Cluster(c) => c.drain().await,
        }
    }

    /// One command (in `db` on a standalone target) and its reply.
    pub async fn request(&mut self, db: Option<u32>, args: Args) -> Result<ConnFrame, PipeError> {
        match self {
            Sink::Single(p) => p.request(db, args).await,
            Sink::Cluster(c) => c.request(args).await.map(to_conn_frame),
        }
    }

    /// Sends what is queued and returns the replies.
    pub async fn round_trip(&mut self) -> Result<Vec<ConnFrame>, PipeError> {
        match self {
            Sink::Single(p) => p.round_trip().await,
            Sink::Cluster(c) => Ok(c.round_trip().await?.into_iter().map(to_conn_frame).collect()),
        }
    }
}

/// A reply in the standalone pipe's frame type (the same type since the pipe uses `resp`).
pub fn to_conn_frame(f: Frame) -> ConnFrame {
    f
}
