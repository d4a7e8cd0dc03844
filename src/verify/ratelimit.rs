//! A token bucket limiting the operations verify sends to one side (ops/s).

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Shared by every task reading one side. `None` rate = unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Option<f64>,
    /// (last refill, tokens available; may go negative = debt to wait off).
    state: Mutex<(Instant, f64)>,
}

impl RateLimiter {
    /// `ops_per_sec`: `None` or 0 = unlimited. The bucket holds at most 1/10 s of tokens.
    pub fn new(ops_per_sec: Option<u64>) -> Self {
        let rate = ops_per_sec.filter(|&r| r > 0).map(|r| r as f64);
        RateLimiter { rate, state: Mutex::new((Instant::now(), 0.0)) }
    }

    /// Takes `n` operations' worth of tokens, waiting as long as needed.
    pub async fn acquire(&self, n: u64) {
        let Some(rate) = self.rate else { return };
        let wait = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let burst = (rate / 10.0).max(1.0);
            let refill = now.duration_since(st.0).as_secs_f64() * rate;
            st.1 = (st.1 + refill).min(burst) - n as f64;
            st.0 = now;
            if st.1 >= 0.0 {
                None
            } else {
                Some(Duration::from_secs_f64(-st.1 / rate))
            }
        };
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_is_enforced_over_time() {
        let l = RateLimiter::new(Some(1000));
        let start = Instant::now();
        for _ in 0..100 {
            l.acquire(50).await; // 5000 ops at 1000/s ≈ 5 s (minus the first burst)
        }
        let took = start.elapsed().as_secs_f64();
        assert!((4.8..=5.2).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let l = RateLimiter::new(None);
        let start = Instant::now();
        l.acquire(1_000_000).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
