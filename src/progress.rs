//! Live per-flow progress of `replicate` on a terminal: one indicatif line per flow (phase,
//! bytes, keys, LSN confirmed/read, lag, queue) refreshed from [`Status`], and a log writer that
//! prints log lines above the bars instead of through them. Nothing is drawn off a TTY (the
//! periodic status log line covers that case).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::status::{FlowSnapshot, Status};

/// The bars (cheap to clone).
#[derive(Clone, Debug)]
pub struct Bars {
    mp: MultiProgress,
}

impl Bars {
    /// Bars on stderr when it is a terminal, `None` otherwise.
    pub fn for_stderr() -> Option<Bars> {
        std::io::stderr()
            .is_terminal()
            .then(|| Bars { mp: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5)) })
    }

    /// A log writer that prints above the bars.
    pub fn writer(&self) -> BarWriter {
        BarWriter { mp: self.mp.clone(), buf: Vec::new() }
    }

    /// Refreshes the bars from `status` until the task is aborted.
    pub fn spawn(&self, status: Arc<Status>) -> tokio::task::JoinHandle<()> {
        let mp = self.mp.clone();
        tokio::spawn(async move {
            let style = ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let mut bars: Vec<ProgressBar> = Vec::new();
            let mut head = mp.add(ProgressBar::new_spinner());
            head.set_style(style.clone());
            head.set_prefix("df2redis");
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let s = status.snapshot();
                if bars.len() != s.flows.len() {
                    for b in bars.drain(..) {
                        b.finish_and_clear();
                        mp.remove(&b);
                    }
                    mp.remove(&head);
                    head = mp.add(ProgressBar::new_spinner());
                    head.set_style(style.clone());
                    head.set_prefix("df2redis");
                    for f in &s.flows {
                        let b = mp.add(ProgressBar::new_spinner());
                        b.set_style(style.clone());
                        b.set_prefix(format!("flow {:>2}", f.flow));
                        bars.push(b);
                    }
                }
                head.set_message(format!(
                    "master {} {} · sessions {} · full syncs {} · partial {}{}",
                    s.master_id.get(..8).unwrap_or(&s.master_id),
                    s.source_version,
                    s.sessions,
                    s.full_syncs,
                    s.partial_syncs,
                    s.last_error.as_deref().map(|e| format!(" · last error: {e}")).unwrap_or_default()
                ));
                head.tick();
                for (b, f) in bars.iter().zip(&s.flows) {
                    b.set_message(flow_line(f));
                    b.tick();
                }
            }
        })
    }

    /// Removes the bars from the terminal.
    pub fn clear(&self) {
        let _ = self.mp.clear();
    }
}

/// One flow's line.
pub fn flow_line(f: &FlowSnapshot) -> String {
    format!(
        "{:<13} {:>10} read · {:>9} keys · {:>7} blobs · {:>9} records · lsn {}/{} (acked {}) · lag {} · queue {}",
        format!("{:?}", f.phase),
        indicatif::HumanBytes(f.bytes_read).to_string(),
        f.keys,
        f.blobs,
        f.records,
        f.lsn_confirmed,
        f.lsn_read.max(f.lsn_confirmed),
        f.lsn_acked,
        f.apply_lag.max(f.master_lag),
        indicatif::HumanBytes(f.queue_bytes)
    )
}

/// Buffers one log event and prints it above the bars when dropped.
#[derive(Debug)]
pub struct BarWriter {
    mp: MultiProgress,
    buf: Vec<u8>,
}

impl Write for BarWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.mp.suspend(|| {
            let _ = std::io::stderr().write_all(&buf);
        });
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Bars {
    type Writer = BarWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_line_shows_every_field() {
        let st = Status::default();
        let c = st.new_session("m", "df-v1.40.1", 1);
        c[0].keys.store(42, std::sync::atomic::Ordering::Relaxed);
        c[0].lsn_confirmed.store(7, std::sync::atomic::Ordering::Relaxed);
        c[0].lsn_read.store(9, std::sync::atomic::Ordering::Relaxed);
        let line = flow_line(&st.snapshot().flows[0]);
        assert!(line.contains("42 keys") && line.contains("lsn 7/9"), "{line}");
    }
}
