//! One comparison pass over the keyspace, both directions at once: scan the source and check each
//! key on the target; scan the target and find keys the source lacks. Also re-checks a list of keys
//! (for rounds). Batches are pipelined by the stores; `parallel` batches are in flight at once.

use super::bigkey;
use super::diff::{compare, CompareOptions, Diff, DiffKind, Summary};
use super::glob::Patterns;
use super::model::{Depth, KeyState, KeyType};
use super::progress::Progress;
use super::ratelimit::RateLimiter;
use super::store::{ScanUnit, Store, StoreError};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What a pass does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Depth of comparison.
    pub depth: Depth,
    /// Smart mode: big keys are compared by type, length and TTL only.
    pub smart: bool,
    /// TTL tolerance (ms).
    pub ttl_tolerance_ms: i64,
    /// Values with more elements than this are compared in chunks.
    pub big_threshold: u64,
    /// Elements per chunk for big values.
    pub chunk: u64,
    /// Keys per SCAN / pipeline batch.
    pub batch: usize,
    /// Batches in flight.
    pub parallel: usize,
    /// Ops/s per side.
    pub qps: Option<u64>,
    /// Key patterns.
    pub patterns: Patterns,
    /// Types to compare (empty = all).
    pub types: Vec<KeyType>,
    /// Databases (empty = all).
    pub dbs: Vec<u32>,
    /// Keys to check per direction (0 = all).
    pub max_keys: u64,
    /// Also scan the target for keys the source lacks.
    pub extras: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            depth: Depth::Full,
            smart: false,
            ttl_tolerance_ms: 2000,
            big_threshold: 1024,
            chunk: 1024,
            batch: 256,
            parallel: 8,
            qps: None,
            patterns: Patterns::default(),
            types: Vec::new(),
            dbs: Vec::new(),
            max_keys: 0,
            extras: true,
        }
    }
}

/// Counters of a pass.
#[derive(Debug, Default)]
pub struct Stats {
    /// Source keys compared.
    pub source_keys: AtomicU64,
    /// Target keys scanned for extras.
    pub target_keys: AtomicU64,
    /// Keys compared in chunks.
    pub big_keys: AtomicU64,
}

/// Verify failed (as opposed to: found differences).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A side failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task panicked or was cancelled.
    #[error("internal task failure: {0}")]
    Task(String),
}

/// The comparison engine over a source and a target store.
#[derive(Debug)]
pub struct Engine<S, T> {
    src: Arc<S>,
    tgt: Arc<T>,
    cfg: Arc<Settings>,
    lim_src: Arc<RateLimiter>,
    lim_tgt: Arc<RateLimiter>,
    progress: Progress,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl<S, T> Clone for Engine<S, T> {
    fn clone(&self) -> Self {
        Engine {
            src: self.src.clone(),
            tgt: self.tgt.clone(),
            cfg: self.cfg.clone(),
            lim_src: self.lim_src.clone(),
            lim_tgt: self.lim_tgt.clone(),
            progress: self.progress.clone(),
            stats: self.stats.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Extras,
}

fn cost(depth: Depth) -> u64 {
    match depth {
        Depth::Keys => 1,
        Depth::Meta | Depth::Full => 3,
    }
}

impl<S: Store, T: Store> Engine<S, T> {
    /// A new engine.
    pub fn new(src: Arc<S>, tgt: Arc<T>, cfg: Settings, progress: Progress) -> Self {
        Engine {
            lim_src: Arc::new(RateLimiter::new(cfg.qps)),
            lim_tgt: Arc::new(RateLimiter::new(cfg.qps)),
            src,
            tgt,
            cfg: Arc::new(cfg),
            progress,
            stats: Arc::new(Stats::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.cfg
    }

    fn type_ok(&self, t: Option<KeyType>) -> bool {
        match t {
            None => false,
            Some(t) => self.cfg.types.is_empty() || self.cfg.types.contains(&t),
        }
    }

    /// A full pass: source → target and (if enabled) target → source, both at once (they share
    /// the `parallel` batches in flight).
    pub async fn pass(&self) -> Result<Vec<Diff>, EngineError> {
        let sem = Arc::new(Semaphore::new(self.cfg.parallel.max(1)));
        let units = self.src.units(&self.cfg.dbs).await?;
        let source_total: u64 = units.iter().map(|u| u.keys).sum();
        let mut diffs = if self.cfg.extras {
            let target_units = self.tgt.units(&self.cfg.dbs).await?;
            self.progress.phase("both sides", source_total + target_units.iter().map(|u| u.keys).sum::<u64>());
            let (a, b) = tokio::join!(
                self.scan_side(Direction::Forward, units, sem.clone()),
                self.scan_side(Direction::Extras, target_units, sem)
            );
            let mut a = a?;
            a.extend(b?);
            a
        } else {
            self.progress.phase("source", source_total);
            self.scan_side(Direction::Forward, units, sem).await?
        };
        sort(&mut diffs);
        Ok(diffs)
    }

    async fn scan_side(
        &self,
        dir: Direction,
        units: Vec<ScanUnit>,
        sem: Arc<Semaphore>,
    ) -> Result<Vec<Diff>, EngineError> {
        let taken = Arc::new(AtomicU64::new(0));
        let mut scanners = JoinSet::new();
        for unit in units {
            let me = self.clone();
            let (sem, taken) = (sem.clone(), taken.clone());
            scanners.spawn(async move { me.scan_unit(dir, unit, sem, taken).await });
        }
        let mut out = Vec::new();
        while let Some(r) = scanners.join_next().await {
            out.extend(r.map_err(|e| EngineError::Task(e.to_string()))??);
        }
        Ok(out)
    }

    async fn scan_unit(
        &self,
        dir: Direction,
        unit: ScanUnit,
        sem: Arc<Semaphore>,
        taken: Arc<AtomicU64>,
    ) -> Result<Vec<Diff>, EngineError> {
        let mut batches = JoinSet::new();
        let mut out = Vec::new();
        let mut cursor = 0u64;
        let max = self.cfg.max_keys;
        // SCAN several batches' worth per round trip: the scan is the one sequential step.
        let scan_count = self.cfg.batch.saturating_mul(4).clamp(1, 8192);
        loop {
            match dir {
                Direction::Forward => self.lim_src.acquire(1).await,
                Direction::Extras => self.lim_tgt.acquire(1).await,
            }
            let pattern = self.cfg.patterns.scan_match();
            let (next, mut keys) = match dir {
                Direction::Forward => self.src.scan(&unit, cursor, scan_count, pattern).await?,
                Direction::Extras => self.tgt.scan(&unit, cursor, scan_count, pattern).await?,
            };
            self.progress.inc(keys.len() as u64);
            keys.retain(|k| self.cfg.patterns.accepts(k));
            let mut last = next == 0;
            if max > 0 && !keys.is_empty() {
                let before = taken.fetch_add(keys.len() as u64, Ordering::Relaxed);
                let room = max.saturating_sub(before);
                if room <= keys.len() as u64 {
                    keys.truncate(room as usize);
                    last = true;
                }
            }
            let batch = self.cfg.batch.max(1);
            while !keys.is_empty() {
                let rest = keys.split_off(keys.len().min(batch));
                let chunk = std::mem::replace(&mut keys, rest);
                let permit = sem.clone().acquire_owned().await.map_err(|e| EngineError::Task(e.to_string()))?;
                let me = self.clone();
                let db = unit.db;
                batches.spawn(async move {
                    let r = match dir {
                        Direction::Forward => me.forward_batch(db, chunk).await,
                        Direction::Extras => me.extras_batch(db, chunk).await,
                    };
                    drop(permit);
                    r
                });
            }
            while let Some(r) = batches.try_join_next() {
                out.extend(r.map_err(|e| EngineError::Task(e.to_string()))??);
            }
            if last {
                break;
            }
            cursor = next;
        }
        while let Some(r) = batches.join_next().await {
            out.extend(r.map_err(|e| EngineError::Task(e.to_string()))??);
        }
        Ok(out)
    }

    async fn forward_batch(&self, db: u32, keys: Vec<Bytes>) -> Result<Vec<Diff>, EngineError> {
        let d = self.cfg.depth;
        let big = self.cfg.big_threshold;
        let ops = keys.len() as u64 * cost(d);
        if self.cfg.types.is_empty() {
            // No type filter: the source first, then the target with the source's types as
            // hints (a container's first read goes out without asking its type).
            tokio::join!(self.lim_src.acquire(ops), self.lim_tgt.acquire(ops));
            let s = self.src.probe(db, &keys, d, big).await?;
            let t = self.tgt.probe_like(db, &keys, d, big, &s).await?;
            let keep: Vec<usize> = (0..keys.len()).filter(|&i| s[i].exists()).collect();
            self.stats.source_keys.fetch_add(keep.len() as u64, Ordering::Relaxed);
            if keep.len() == keys.len() {
                return self.compare_states(db, &keys, &s, &t).await;
            }
            // Keys gone from the source since the scan are not compared (the target scan finds
            // them if they linger there).
            let pick = |v: &[KeyState]| keep.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
            let ks: Vec<Bytes> = keep.iter().map(|&i| keys[i].clone()).collect();
            return self.compare_states(db, &ks, &pick(&s), &pick(&t)).await;
        }
        self.lim_src.acquire(ops).await;
        let s = self.src.probe(db, &keys, d, big).await?;
        let (keys, s): (Vec<Bytes>, Vec<KeyState>) =
            keys.into_iter().zip(s).filter(|(_, st)| self.type_ok(st.ty)).unzip();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.stats.source_keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        self.lim_tgt.acquire(keys.len() as u64 * cost(d)).await;
        let t = self.tgt.probe_like(db, &keys, d, big, &s).await?;
        self.compare_states(db, &keys, &s, &t).await
    }

    async fn extras_batch(&self, db: u32, keys: Vec<Bytes>) -> Result<Vec<Diff>, EngineError> {
        self.stats.target_keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        self.lim_src.acquire(keys.len() as u64).await;
        let s = self.src.exists(db, &keys).await?;
        // `df2redis replicate`'s own LSN marker hash (`df2redis:lsn:<task>`) is bookkeeping the
        // target holds on purpose, not an extra key.
        let missing: Vec<Bytes> = keys
            .into_iter()
            .zip(s)
            .filter(|(k, e)| !e && !k.starts_with(crate::checkpoint::MARKER_PREFIX))
            .map(|(k, _)| k)
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.cfg.depth.min(Depth::Meta);
        self.lim_tgt.acquire(missing.len() as u64 * cost(d)).await;
        let t = self.tgt.probe(db, &missing, d, self.cfg.big_threshold).await?;
        Ok(missing
            .into_iter()
            .zip(t)
            .filter(|(_, st)| self.type_ok(st.ty))
            .map(|(key, st)| Diff {
                db,
                key,
                kind: DiffKind::ExtraOnTarget,
                source: Summary::default(),
                target: Summary::of(&st),
                detail: None,
            })
            .collect())
    }

    async fn compare_states(
        &self,
        db: u32,
        keys: &[Bytes],
        s: &[KeyState],
        t: &[KeyState],
    ) -> Result<Vec<Diff>, EngineError> {
        let opts =
            CompareOptions { ttl_tolerance_ms: self.cfg.ttl_tolerance_ms, values: self.cfg.depth == Depth::Full };
        let mut out = Vec::new();
        for ((key, a), b) in keys.iter().zip(s).zip(t) {
            let o = compare(a, b, opts);
            let mut found = o.diffs;
            if o.needs_chunks && !self.cfg.smart {
                if let Some(ty) = a.ty {
                    self.stats.big_keys.fetch_add(1, Ordering::Relaxed);
                    if let Some((k, d)) = bigkey::compare(&*self.src, &*self.tgt, db, key, ty, self.cfg.chunk).await? {
                        found.push((k, Some(d)));
                    }
                }
            }
            for (kind, detail) in found {
                out.push(Diff { db, key: key.clone(), kind, source: Summary::of(a), target: Summary::of(b), detail });
            }
        }
        Ok(out)
    }

    /// Re-checks these keys on both sides (either direction's differences).
    pub async fn recheck(&self, keys: &[(u32, Bytes)]) -> Result<Vec<Diff>, EngineError> {
        let mut by_db: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
        for (db, k) in keys {
            by_db.entry(*db).or_default().push(k.clone());
        }
        let d = self.cfg.depth;
        let mut out = Vec::new();
        for (db, list) in by_db {
            for batch in list.chunks(self.cfg.batch.max(1)) {
                self.lim_src.acquire(batch.len() as u64 * cost(d)).await;
                self.lim_tgt.acquire(batch.len() as u64 * cost(d)).await;
                let (s, t) = tokio::join!(
                    self.src.probe(db, batch, d, self.cfg.big_threshold),
                    self.tgt.probe(db, batch, d, self.cfg.big_threshold)
                );
                let (s, t) = (s?, t?);
                let keep: Vec<usize> =
                    (0..batch.len()).filter(|&i| self.type_ok(s[i].ty) || self.type_ok(t[i].ty)).collect();
                let pick = |v: &[KeyState]| keep.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
                let ks: Vec<Bytes> = keep.iter().map(|&i| batch[i].clone()).collect();
                out.extend(self.compare_states(db, &ks, &pick(&s), &pick(&t)).await?);
            }
        }
        sort(&mut out);
        Ok(out)
    }
}

/// Reports list differences by db, key, kind.
pub fn sort(d: &mut [Diff]) {
    d.sort_by(|a, b| (a.db, &a.key, a.kind).cmp(&(b.db, &b.key, b.kind)));
}

#[cfg(test)]
mod tests;
