//! The emulated Dragonfly release and every wire behaviour that depends on it (spec 3.3, 3.4, 7, 8.1).

use std::fmt;
use std::str::FromStr;

/// A Dragonfly release `vMAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    /// Major version (1 for every release the mock models).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

/// How a release serves `DFLY FLOW … <lsn>` (spec 7.2, 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialSync {
    /// The LSN argument is ignored: always FULL (≤ v1.10 and v1.21–v1.29).
    Unavailable,
    /// PARTIAL goes through `DFLY SYNC` and a data-less RDB stream (v1.11–v1.20, v1.31–v1.34).
    IncrementalSnapshot,
    /// Only the "last master" form after a failover (v1.30); the same-master form is FULL.
    LastMasterOnly,
    /// PARTIAL continues with `DFLY STARTSTABLE` directly (v1.35+).
    Direct,
}

/// The release families of the spec's version table, one representative release each.
pub const FAMILIES: [Release; 8] = [
    Release::new(1, 3, 0),
    Release::new(1, 10, 0),
    Release::new(1, 15, 0),
    Release::new(1, 21, 0),
    Release::new(1, 29, 0),
    Release::new(1, 34, 0),
    Release::new(1, 39, 0),
    Release::new(1, 40, 1),
];

impl Release {
    /// A release.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Release { major, minor, patch }
    }

    fn at_least(&self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }

    fn between(&self, lo: u32, hi: u32) -> bool {
        self.major == 1 && self.minor >= lo && self.minor <= hi
    }

    /// `dragonfly_version` / `df-ver` text, e.g. `df-v1.40.1`.
    pub fn df_ver(&self) -> String {
        format!("df-{self}")
    }

    /// Number of elements of the `REPLCONF capa dragonfly` reply: 3, 4 or 5 (spec 3.3).
    pub fn capa_len(&self) -> usize {
        if !self.at_least(4) {
            3
        } else if !self.at_least(40) {
            4
        } else {
            5
        }
    }

    /// The protocol version integer the master sends (spec 3.4), `None` before v1.4.
    pub fn version_int(&self) -> Option<i64> {
        Some(if !self.at_least(4) {
            return None;
        } else if !self.at_least(11) {
            1
        } else if !self.at_least(16) {
            2
        } else if !self.at_least(22) {
            4
        } else if !self.at_least(30) {
            3
        } else if !self.at_least(37) {
            4
        } else {
            5
        })
    }

    /// Whether `REPLCONF ACK`, `CLIENT-VERSION`, JOURNAL_OFFSET and LSN offsets exist (v1.4+).
    pub fn has_acks(&self) -> bool {
        self.at_least(4)
    }

    /// Whether `REPLCONF ip-address` is understood (v1.21+).
    pub fn has_ip_address(&self) -> bool {
        self.at_least(21)
    }

    /// The partial-sync behaviour.
    pub fn partial_sync(&self) -> PartialSync {
        if !self.at_least(11) || self.between(21, 29) {
            PartialSync::Unavailable
        } else if self.between(11, 20) || self.between(31, 34) {
            PartialSync::IncrementalSnapshot
        } else if self.between(30, 30) {
            PartialSync::LastMasterOnly
        } else {
            PartialSync::Direct
        }
    }

    /// Whether the 5-argument "last master" form of `DFLY FLOW` is parsed (v1.30+).
    pub fn has_last_master_form(&self) -> bool {
        self.at_least(30)
    }

    /// Whether LSN markers go to a replica that announced `client_version` (`None` = never sent).
    pub fn lsn_markers(&self, client_version: Option<i64>) -> bool {
        if !self.at_least(16) {
            false
        } else if self.at_least(35) {
            true
        } else {
            let threshold = if self.at_least(22) { 3 } else { 4 };
            client_version.is_some_and(|v| v >= threshold)
        }
    }

    /// Records kept per shard for partial sync (spec 7.1); 0 when there is no backlog.
    pub fn backlog_len(&self) -> usize {
        if !self.at_least(11) {
            0
        } else if !self.at_least(34) {
            1024
        } else {
            8192
        }
    }

    /// Whether big values are split into tagged chunks (default on since v1.40).
    pub fn tagged_chunks(&self) -> bool {
        self.at_least(40)
    }

    /// Whether mid-entry flushes of big values happen (v1.27+ default chunk size 64 KiB).
    pub fn splits_big_values(&self) -> bool {
        self.at_least(27)
    }

    /// Whether every journal record carries its own SELECT prefix (v1.11+).
    pub fn select_every_record(&self) -> bool {
        self.at_least(11)
    }

    /// Whether expiry deletes use the EXPIRED opcode (9) instead of COMMAND (v0.15–v1.37).
    pub fn expired_opcode(&self) -> bool {
        !self.at_least(38)
    }

    /// Whether `shard_cnt` is always 1 (v1.38+); before, it counts the shards involved.
    pub fn shard_cnt_always_one(&self) -> bool {
        self.at_least(38)
    }

    /// Whether MULTI/EXEC and EVAL bodies are journaled as MULTI_COMMAND records closed by one
    /// EXEC record per written flow (≤ v1.20; v1.21 stopped sending EXEC).
    pub fn multi_exec_opcodes(&self) -> bool {
        !self.at_least(21)
    }

    /// Whether Z*STORE is journaled as `DEL dst` + `ZADD dst …` (v1.34+); before, the command is
    /// auto-journaled: verbatim on one shard, per-shard key fragments across shards (Appendix G).
    pub fn zstore_rewrite(&self) -> bool {
        self.at_least(34)
    }

    /// Whether a single-shard LMOVE / RPOPLPUSH is journaled verbatim as `LMOVE` (≤ v1.20).
    pub fn lmove_verbatim(&self) -> bool {
        !self.at_least(21)
    }

    /// Whether `--journal_omit_redundant_writes` exists (v1.39+).
    pub fn has_journal_omit(&self) -> bool {
        self.at_least(39)
    }

    /// Whether `DFLY SYNC` is refused when a flow is PARTIAL (v1.40+).
    pub fn sync_rejects_partial(&self) -> bool {
        self.at_least(40)
    }

    /// `INFO REPLICATION` name of the stable-sync state.
    pub fn stable_state_name(&self) -> &'static str {
        if self.at_least(40) {
            "online"
        } else {
            "stable_sync"
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A release string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad release {0:?}: expected e.g. v1.40.1 or 1.30")]
pub struct BadRelease(pub String);

impl FromStr for Release {
    type Err = BadRelease;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches("df-").trim_start_matches('v');
        let mut it = t.split('.').map(|p| p.parse::<u32>());
        let bad = || BadRelease(s.to_string());
        let major = it.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let minor = it.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let patch = match it.next() {
            Some(p) => p.map_err(|_| bad())?,
            None => 0,
        };
        if it.next().is_some() || major != 1 {
            return Err(bad());
        }
        Ok(Release { major, minor, patch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_integers_follow_the_renumbering() {
        let v = |s: &str| s.parse::<Release>().unwrap().version_int();
        assert_eq!(v("1.3"), None);
        assert_eq!(v("1.4"), Some(1));
        assert_eq!(v("1.10.2"), Some(1));
        assert_eq!(v("1.11"), Some(2));
        assert_eq!(v("1.16"), Some(4));
        assert_eq!(v("1.21"), Some(4));
        assert_eq!(v("1.22"), Some(3));
        assert_eq!(v("1.29"), Some(3));
        assert_eq!(v("v1.30.3"), Some(4));
        assert_eq!(v("1.36"), Some(4));
        assert_eq!(v("1.37"), Some(5));
        assert_eq!(v("df-v1.40.1"), Some(5));
    }

    #[test]
    fn capa_lengths_and_partial_forms() {
        let r = |s: &str| s.parse::<Release>().unwrap();
        assert_eq!(r("1.3").capa_len(), 3);
        assert_eq!(r("1.39").capa_len(), 4);
        assert_eq!(r("1.40").capa_len(), 5);
        assert_eq!(r("1.10").partial_sync(), PartialSync::Unavailable);
        assert_eq!(r("1.11").partial_sync(), PartialSync::IncrementalSnapshot);
        assert_eq!(r("1.25").partial_sync(), PartialSync::Unavailable);
        assert_eq!(r("1.30").partial_sync(), PartialSync::LastMasterOnly);
        assert_eq!(r("1.33").partial_sync(), PartialSync::IncrementalSnapshot);
        assert_eq!(r("1.35").partial_sync(), PartialSync::Direct);
    }

    #[test]
    fn lsn_marker_gating() {
        let r = |s: &str| s.parse::<Release>().unwrap();
        assert!(!r("1.15").lsn_markers(Some(9)));
        assert!(!r("1.16").lsn_markers(Some(3)));
        assert!(r("1.16").lsn_markers(Some(4)));
        assert!(r("1.22").lsn_markers(Some(3)));
        assert!(!r("1.34").lsn_markers(None));
        assert!(r("1.35").lsn_markers(None));
    }

    #[test]
    fn parse_errors() {
        assert!("x".parse::<Release>().is_err());
        assert!("2.0".parse::<Release>().is_err());
        assert!("1.2.3.4".parse::<Release>().is_err());
    }
}
