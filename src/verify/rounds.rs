//! Multi-round verification: a full pass, then the differing keys re-checked after an interval,
//! up to N rounds in all, so writes still in flight (replicate running) are not reported; only
//! differences present in every round are.

use super::diff::Diff;
use super::engine::{Engine, EngineError};
use super::store::Store;
use bytes::Bytes;
use std::future::Future;
use std::time::Duration;

/// What the round logic needs: a full pass and a re-check of listed keys.
pub trait Checker {
    /// Compares everything.
    fn full_pass(&self) -> impl Future<Output = Result<Vec<Diff>, EngineError>> + Send;
    /// Compares these keys again.
    fn recheck(&self, keys: &[(u32, Bytes)]) -> impl Future<Output = Result<Vec<Diff>, EngineError>> + Send;
}

impl<S: Store, T: Store> Checker for Engine<S, T> {
    fn full_pass(&self) -> impl Future<Output = Result<Vec<Diff>, EngineError>> + Send {
        self.pass()
    }
    fn recheck(&self, keys: &[(u32, Bytes)]) -> impl Future<Output = Result<Vec<Diff>, EngineError>> + Send {
        Engine::recheck(self, keys)
    }
}

/// Result of all rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundsOutcome {
    /// Differences still present in the last round run.
    pub diffs: Vec<Diff>,
    /// Number of differing keys after each round run.
    pub per_round: Vec<usize>,
}

/// The distinct (db, key) pairs of a list of differences, in order.
pub fn keys_of(diffs: &[Diff]) -> Vec<(u32, Bytes)> {
    let mut keys: Vec<(u32, Bytes)> = diffs.iter().map(|d| (d.db, d.key.clone())).collect();
    keys.dedup();
    keys
}

/// Runs up to `rounds` rounds (at least one), waiting `interval` before each re-check, stopping
/// early when nothing differs. A key reported at the end differed in every round; a key is only
/// re-checked if it differed in the round before.
pub async fn run<C: Checker>(
    checker: &C,
    rounds: u32,
    interval: Duration,
    mut on_round: impl FnMut(u32, &[Diff]),
) -> Result<RoundsOutcome, EngineError> {
    let mut diffs = checker.full_pass().await?;
    on_round(1, &diffs);
    let mut per_round = vec![keys_of(&diffs).len()];
    for round in 2..=rounds.max(1) {
        if diffs.is_empty() {
            break;
        }
        tokio::time::sleep(interval).await;
        let keys = keys_of(&diffs);
        let mut again = checker.recheck(&keys).await?;
        // Only keys that differed before can be reported (recheck may see others only by bug).
        again.retain(|d| keys.binary_search_by(|k| (k.0, &k.1).cmp(&(d.db, &d.key))).is_ok());
        diffs = again;
        on_round(round, &diffs);
        per_round.push(keys_of(&diffs).len());
    }
    Ok(RoundsOutcome { diffs, per_round })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::diff::{DiffKind, Summary};
    use std::sync::Mutex;

    /// Keys that differ in round r: a fixed script.
    struct Script {
        rounds: Vec<Vec<&'static str>>,
        at: Mutex<usize>,
        asked: Mutex<Vec<Vec<(u32, Bytes)>>>,
    }

    fn diff(k: &str) -> Diff {
        Diff {
            db: 0,
            key: Bytes::copy_from_slice(k.as_bytes()),
            kind: DiffKind::Value,
            source: Summary::default(),
            target: Summary::default(),
            detail: None,
        }
    }

    impl Script {
        fn next(&self) -> Vec<Diff> {
            let mut at = self.at.lock().unwrap();
            let r = self.rounds.get(*at).cloned().unwrap_or_default();
            *at += 1;
            r.into_iter().map(diff).collect()
        }
    }

    impl Checker for Script {
        async fn full_pass(&self) -> Result<Vec<Diff>, EngineError> {
            Ok(self.next())
        }
        async fn recheck(&self, keys: &[(u32, Bytes)]) -> Result<Vec<Diff>, EngineError> {
            self.asked.lock().unwrap().push(keys.to_vec());
            Ok(self.next())
        }
    }

    fn script(r: Vec<Vec<&'static str>>) -> Script {
        Script { rounds: r, at: Mutex::new(0), asked: Mutex::new(Vec::new()) }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_differences_disappear_persistent_ones_stay() {
        let s = script(vec![vec!["a", "b", "p"], vec!["b", "p"], vec!["p"]]);
        let start = tokio::time::Instant::now();
        let out = run(&s, 3, Duration::from_secs(5), |_, _| {}).await.unwrap();
        assert_eq!(out.diffs, vec![diff("p")]);
        assert_eq!(out.per_round, vec![3, 2, 1]);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        let asked = s.asked.lock().unwrap();
        assert_eq!(asked[0].len(), 3);
        assert_eq!(asked[1], vec![(0, Bytes::from("b")), (0, Bytes::from("p"))]);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_early_when_clean_and_ignores_new_keys() {
        let s = script(vec![vec!["a"], vec![], vec!["zzz"]]);
        let out = run(&s, 5, Duration::from_secs(1), |_, _| {}).await.unwrap();
        assert!(out.diffs.is_empty());
        assert_eq!(out.per_round, vec![1, 0]);
        // A key first seen in a re-check is not one that differed before: dropped.
        let s = script(vec![vec!["a"], vec!["a", "new"]]);
        let out = run(&s, 2, Duration::ZERO, |_, _| {}).await.unwrap();
        assert_eq!(out.diffs, vec![diff("a")]);
        // One round: no re-check.
        let s = script(vec![vec!["a"]]);
        let out = run(&s, 1, Duration::from_secs(100), |_, _| {}).await.unwrap();
        assert_eq!(out.per_round, vec![1]);
        assert!(s.asked.lock().unwrap().is_empty());
    }
}
