//! Configuration of a mock master: release, shards, compression, auth, faults and live writes.

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::faults::Fault;
use crate::release::Release;

/// Full-sync compression, as Dragonfly's `--compression_mode` 0..3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Mode 0: nothing compressed.
    None,
    /// Mode 1: LZF per string (and per journal-blob payload).
    Lzf,
    /// Mode 2: zstd blocks.
    Zstd,
    /// Mode 3 (Dragonfly's default): LZ4 blocks.
    #[default]
    Lz4,
}

/// When a live write runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePhase {
    /// Right after the snapshot cut of `DFLY SYNC` (the writes become journal blobs).
    FullSync,
    /// Right after `DFLY STARTSTABLE` (the writes become stable-sync journal records).
    StableSync,
}

/// A client command the master runs by itself at a phase of the first replication session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveWrite {
    /// When.
    pub phase: WritePhase,
    /// Database the command runs in.
    #[serde(default)]
    pub db: u32,
    /// The command and its arguments, as a client would send them.
    pub command: Vec<String>,
}

/// Everything that shapes a mock master.
#[derive(Debug, Clone)]
pub struct Config {
    /// The emulated release.
    pub release: Release,
    /// Number of shards (= flows).
    pub shards: u32,
    /// Number of databases.
    pub dbs: u32,
    /// Full-sync compression mode.
    pub compression: Compression,
    /// `requirepass`.
    pub requirepass: Option<String>,
    /// ACL users: (name, password).
    pub users: Vec<(String, String)>,
    /// `--serialization_max_chunk_size`: entries bigger than this are split (where the release does).
    pub chunk_size: usize,
    /// Fixed master id (40 lowercase hex); random when `None`.
    pub master_id: Option<String>,
    /// Seed of the id / token generator (ids are reproducible for a given seed).
    pub seed: u64,
    /// Overrides the release's backlog length (records per shard).
    pub backlog_len: Option<usize>,
    /// The clock (TTLs, LSN-marker cadence, ctime).
    pub clock: Clock,
    /// Injected faults.
    pub faults: Vec<Fault>,
    /// Live writes run during the first session.
    pub writes: Vec<LiveWrite>,
    /// This master was a replica of another master and got promoted (spec 7.3, "last master"
    /// form): that master's id and the per-shard next LSNs it had reached. The journals continue
    /// from those LSNs, and a former sibling replica can resume with
    /// `DFLY FLOW … <last_master_id> <lsn-vector>`.
    pub promoted_from: Option<Promotion>,
    /// `--journal_omit_redundant_writes` (v1.39+): a SET during a full sync to a key the snapshot
    /// has not reached yet is not journaled; the shard's backlog is cleared and its LSN bumped.
    pub journal_omit: bool,
}

/// Where a promoted master came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The former master's id.
    pub master_id: String,
    /// Next LSN per shard of the former master when this one was promoted.
    pub lsns: Vec<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            release: Release::new(1, 40, 1),
            shards: 2,
            dbs: 16,
            compression: Compression::Lz4,
            requirepass: None,
            users: Vec::new(),
            chunk_size: 64 << 10,
            master_id: None,
            seed: 0x5eed,
            backlog_len: None,
            clock: Clock::System,
            faults: Vec::new(),
            writes: Vec::new(),
            promoted_from: None,
            journal_omit: false,
        }
    }
}

impl Config {
    /// The effective backlog length.
    pub fn backlog_len(&self) -> usize {
        self.backlog_len.unwrap_or_else(|| self.release.backlog_len())
    }
}
