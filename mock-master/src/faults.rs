//! Injected faults: what can go wrong on a connection, and the bookkeeping of which already fired.

use serde::{Deserialize, Serialize};

/// One fault. Each fires at most once per master process (a restart does not re-arm it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Close flow `flow` after writing exactly `at_byte` bytes on it (counted after the FLOW reply),
    /// or after it sent `after_records` stable-sync journal records.
    CloseFlow {
        /// Flow index.
        flow: u32,
        /// Byte offset.
        #[serde(default)]
        at_byte: Option<u64>,
        /// Stable-sync journal records (PINGs included, LSN markers not).
        #[serde(default)]
        after_records: Option<u64>,
    },
    /// Close the control connection once `after_records` stable-sync journal records went out
    /// over all flows (0 = right after `DFLY STARTSTABLE` succeeded).
    CloseControl {
        /// Stable-sync journal records over all flows.
        after_records: u64,
    },
    /// Stop writing on flow `flow` for `ms` milliseconds once `at_byte` bytes were written.
    Stall {
        /// Flow index.
        flow: u32,
        /// Byte offset.
        at_byte: u64,
        /// Duration.
        ms: u64,
    },
    /// Delay the reply to the first command starting with `command` by `ms` milliseconds.
    StallCommand {
        /// Command prefix, e.g. `DFLY SYNC` (case-insensitive).
        command: String,
        /// Duration.
        ms: u64,
    },
    /// XOR the byte at `offset` of flow `flow` with 0xFF.
    FlipByte {
        /// Flow index.
        flow: u32,
        /// Byte offset.
        offset: u64,
    },
    /// Restart the master (new master id, sync ids from SYNC1 again, backlog and sessions gone;
    /// the dataset survives) once `after_records` stable-sync journal records were sent.
    Restart {
        /// Stable-sync journal records over all flows.
        after_records: u64,
    },
    /// Answer the first `times` commands starting with `command` with `-<error>`.
    Refuse {
        /// Command prefix, e.g. `DFLY FLOW` (case-insensitive).
        command: String,
        /// The error text without the leading `-`, e.g. `ERR invalid state`.
        error: String,
        /// How many times (default 1).
        #[serde(default = "one")]
        times: u32,
    },
    /// Limit flow `flow` to `bytes_per_sec`.
    Throttle {
        /// Flow index.
        flow: u32,
        /// Rate.
        bytes_per_sec: u64,
    },
}

fn one() -> u32 {
    1
}

/// Whether `args` starts with the words of `prefix` (case-insensitive).
pub fn command_matches(prefix: &str, args: &[bytes::Bytes]) -> bool {
    let words: Vec<&str> = prefix.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= args.len()
        && words.iter().zip(args).all(|(w, a)| a.eq_ignore_ascii_case(w.as_bytes()))
}

/// The faults that apply to one flow connection, resolved when the flow starts streaming.
#[derive(Debug, Clone, Default)]
pub struct FlowFaults {
    /// Close at this byte offset.
    pub close_at_byte: Option<(usize, u64)>,
    /// Close after this many stable records.
    pub close_after_records: Option<(usize, u64)>,
    /// Stall (fault index, offset, ms).
    pub stall: Option<(usize, u64, u64)>,
    /// Flip the byte at this offset.
    pub flip: Option<(usize, u64)>,
    /// Throttle rate.
    pub throttle: Option<u64>,
}
