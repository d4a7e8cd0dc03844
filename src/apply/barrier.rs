//! The cross-flow barrier for global commands (FLUSHALL / FLUSHDB): every flow journals them
//! with the same txid; each flow stops there, one of them applies the command once when all
//! have arrived, then all continue (spec 6.3).

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::Barrier;

/// Why a barrier round failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarrierError {
    /// Flows reached global commands with different txids (streams out of step).
    #[error("flows reached global commands with different txids: {0:?}")]
    Mismatch(Vec<u64>),
    /// The flow that applied the command failed.
    #[error("applying the global command failed: {0}")]
    Apply(String),
}

#[derive(Debug, Default)]
struct Round {
    txids: Vec<Option<u64>>,
    next_lsns: Vec<u64>,
    result: Option<Result<(), BarrierError>>,
}

/// A reusable barrier over `n` flows.
#[derive(Debug)]
pub struct FlushBarrier {
    n: usize,
    arrive: Barrier,
    leave: Barrier,
    round: Mutex<Round>,
}

impl FlushBarrier {
    /// A barrier for `n` flows.
    pub fn new(n: usize) -> Self {
        FlushBarrier {
            n,
            arrive: Barrier::new(n),
            leave: Barrier::new(n),
            round: Mutex::new(Round { txids: vec![None; n], next_lsns: vec![0; n], result: None }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flow `flow` reached the global command `txid`, after which its next LSN is
    /// `next_lsn`. Exactly one caller runs `exec(next LSN of every flow)`; all return its
    /// outcome once it finished. Returns `Ok(true)` to the flow that executed.
    pub async fn cross<F, Fut>(&self, flow: usize, txid: u64, next_lsn: u64, exec: F) -> Result<bool, BarrierError>
    where
        F: FnOnce(Vec<u64>) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        {
            let mut r = self.lock();
            if let Some(t) = r.txids.get_mut(flow) {
                *t = Some(txid);
            }
            if let Some(l) = r.next_lsns.get_mut(flow) {
                *l = next_lsn;
            }
        }
        let leader = self.arrive.wait().await.is_leader();
        if leader {
            let (txids, lsns) = {
                let r = self.lock();
                (r.txids.clone(), r.next_lsns.clone())
            };
            let result = if txids.iter().any(|t| *t != Some(txid)) || txids.len() != self.n {
                Err(BarrierError::Mismatch(txids.iter().map(|t| t.unwrap_or(0)).collect()))
            } else {
                exec(lsns).await.map_err(BarrierError::Apply)
            };
            let mut r = self.lock();
            r.result = Some(result);
            r.txids.iter_mut().for_each(|t| *t = None);
        }
        self.leave.wait().await;
        let result = self.lock().result.clone().unwrap_or(Ok(()));
        // Everyone has read the result before the next round can overwrite it: the next
        // round's leader only writes after all n flows arrived again.
        result.map(|()| leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn applies_once_per_round() {
        let b = Arc::new(FlushBarrier::new(3));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for flow in 0..3 {
            let (b, runs) = (b.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                let mut led = 0;
                for round in 0..5u64 {
                    let runs = runs.clone();
                    let r = b
                        .cross(flow, 100 + round, 10 * round + flow as u64, |lsns| async move {
                            assert_eq!(lsns, vec![10 * round, 10 * round + 1, 10 * round + 2]);
                            runs.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .await
                        .unwrap();
                    led += usize::from(r);
                }
                led
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 5);
        assert_eq!(runs.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn mismatched_txids_fail_everyone() {
        let b = Arc::new(FlushBarrier::new(2));
        let b2 = b.clone();
        let t = tokio::spawn(async move { b2.cross(0, 1, 0, |_| async { Ok(()) }).await });
        let r = b.cross(1, 2, 0, |_| async { Ok(()) }).await;
        assert!(matches!(r, Err(BarrierError::Mismatch(_))));
        assert!(matches!(t.await.unwrap(), Err(BarrierError::Mismatch(_))));
    }

    #[tokio::test]
    async fn exec_failure_reaches_all() {
        let b = Arc::new(FlushBarrier::new(2));
        let b2 = b.clone();
        let t = tokio::spawn(async move { b2.cross(0, 7, 0, |_| async { Err("boom".to_string()) }).await });
        let r = b.cross(1, 7, 0, |_| async { Err("boom".to_string()) }).await;
        assert_eq!(r, Err(BarrierError::Apply("boom".into())));
        assert_eq!(t.await.unwrap(), Err(BarrierError::Apply("boom".into())));
    }
}
