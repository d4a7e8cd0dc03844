//! `REPLCONF ACK <next lsn>` on a flow socket, carrying only what the target confirmed:
//! once at start, every second, after 1024 records, at once after a PING record, and a last
//! one when the applier finished draining at shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::resp::encode_command as encode;
use crate::status::FlowCounters;

/// Records between ACKs at most.
pub const ACK_EVERY_RECORDS: u64 = 1024;

/// Encodes `REPLCONF ACK n`.
pub fn ack_bytes(n: u64) -> BytesMut {
    let mut out = BytesMut::new();
    encode(&mut out, &[Bytes::from_static(b"REPLCONF"), Bytes::from_static(b"ACK"), Bytes::from(n.to_string())]);
    out
}

/// Writes one ACK and flushes it (TLS holds written bytes until a flush).
async fn send_ack(w: &mut crate::resp::tls::WriteHalf, lsn: u64) -> std::io::Result<()> {
    w.write_all(&ack_bytes(lsn)).await?;
    w.flush().await
}

/// Runs until the socket fails or the task is aborted. `start` is the LSN stable sync began at.
pub async fn ack_loop(
    mut w: crate::resp::tls::WriteHalf,
    mut confirmed: watch::Receiver<u64>,
    counters: Arc<FlowCounters>,
    start: u64,
    interval: Duration,
) -> std::io::Result<()> {
    let mut last = start.max(*confirmed.borrow());
    send_ack(&mut w, last).await?;
    counters.lsn_acked.store(last, Ordering::Relaxed);
    counters.lsn_confirmed.fetch_max(last, Ordering::Relaxed);
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        let send = tokio::select! {
            r = confirmed.changed() => {
                if r.is_err() {
                    // The applier finished (shutdown drain): one last ACK of what it confirmed,
                    // so the master, the checkpoint and the target agree.
                    let v = (*confirmed.borrow()).max(last);
                    if v > last {
                        send_ack(&mut w, v).await?;
                        counters.lsn_acked.store(v, Ordering::Relaxed);
                    }
                    counters.lsn_confirmed.fetch_max(v, Ordering::Relaxed);
                    return Ok(());
                }
                let v = *confirmed.borrow_and_update();
                counters.lsn_confirmed.fetch_max(v, Ordering::Relaxed);
                let ping = counters.ping_next_lsn.load(Ordering::Relaxed);
                v >= last + ACK_EVERY_RECORDS || (ping > last && v >= ping)
            }
            _ = tick.tick() => true,
        };
        if send {
            let v = (*confirmed.borrow()).max(last);
            send_ack(&mut w, v).await?;
            last = v;
            counters.lsn_acked.store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ack_is_two_args() {
        assert_eq!(&super::ack_bytes(3004)[..], b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n3004\r\n");
    }
}
