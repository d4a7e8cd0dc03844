//! The resume checkpoint: master id, per-flow confirmed next LSN, phase — written atomically
//! (temp file, fsync, rename, fsync of the directory). It never holds an LSN the target has
//! not confirmed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the session was when the checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Full sync in progress: a restart must do a full sync again.
    FullSync,
    /// Stable sync: `flows` are the next LSNs to ask for.
    Stable,
}

/// The persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version (1).
    pub version: u32,
    /// The task name from the config.
    pub task: String,
    /// Master id (40 hex) of the session.
    pub master_id: String,
    /// Phase.
    pub phase: Phase,
    /// Per flow: the LSN of the first record not yet confirmed by the target.
    pub flows: Vec<u64>,
    /// `dragonfly_version` of the master, for the log.
    pub source_version: String,
    /// Wall clock when written (Unix ms).
    pub updated_unix_ms: u64,
}

/// Errors reading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Not our format.
    #[error("checkpoint {path} is not valid: {detail}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

impl Checkpoint {
    /// The LSNs to resume from, if this checkpoint is a stable-sync position of `master_id`
    /// with `num_flows` flows.
    pub fn resume_lsns(&self, master_id: &str, num_flows: usize) -> Option<Vec<u64>> {
        (self.phase == Phase::Stable && self.master_id == master_id && self.flows.len() == num_flows)
            .then(|| self.flows.clone())
    }
}

/// Writes `cp` to `path` atomically: a reader (or a crash) sees the old or the new file.
pub fn save(path: &Path, cp: &Checkpoint) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let body = serde_json::to_vec_pretty(cp).map_err(io::Error::other)?;
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Reads the checkpoint at `path` (`None` if there is none).
pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let body = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Io { path: path.into(), source }),
    };
    let cp: Checkpoint = serde_json::from_slice(&body)
        .map_err(|e| CheckpointError::Invalid { path: path.into(), detail: e.to_string() })?;
    if cp.version != 1 {
        return Err(CheckpointError::Invalid { path: path.into(), detail: format!("unknown version {}", cp.version) });
    }
    if cp.master_id.len() != 40 || !cp.master_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CheckpointError::Invalid {
            path: path.into(),
            detail: "master_id is not 40 hex characters".into(),
        });
    }
    Ok(Some(cp))
}

/// Name of the hash on the target that records, inside each applied batch, the next LSN of
/// every flow (fields `master` and `0`, `1`, …). It is exact where the file checkpoint may lag.
pub fn marker_key(task: &str) -> String {
    format!("df2redis:lsn:{task}")
}

/// Prefix of every marker key (`verify` does not count them as extra keys on the target).
pub const MARKER_PREFIX: &[u8] = b"df2redis:lsn:";

/// Combines the file checkpoint with the target's marker hash (`master` field + per-flow
/// LSNs): the marker, written atomically with the data, wins when it names the same master.
pub fn reconcile(file: &[u64], marker_master: Option<&str>, marker: &[Option<u64>], master_id: &str) -> Vec<u64> {
    if marker_master != Some(master_id) {
        return file.to_vec();
    }
    file.iter().enumerate().map(|(i, &f)| marker.get(i).copied().flatten().map_or(f, |m| m.max(f))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            version: 1,
            task: "t".into(),
            master_id: "a".repeat(40),
            phase: Phase::Stable,
            flows: vec![5, 9],
            source_version: "df-v1.40.1".into(),
            updated_unix_ms: 1,
        }
    }

    #[test]
    fn save_load_round_trip_and_overwrite() {
        let dir = std::env::temp_dir().join(format!("df2redis-cp-{}", std::process::id()));
        let p = dir.join("sub/cp.json");
        assert!(load(&p).unwrap().is_none());
        save(&p, &cp()).unwrap();
        assert_eq!(load(&p).unwrap().unwrap(), cp());
        let mut c2 = cp();
        c2.flows = vec![6, 10];
        save(&p, &c2).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().flows, vec![6, 10]);
        assert!(!dir.join("sub/.cp.json.tmp").exists());
        fs::write(&p, b"{").unwrap();
        assert!(matches!(load(&p), Err(CheckpointError::Invalid { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_only_for_same_master_stable() {
        let c = cp();
        assert_eq!(c.resume_lsns(&"a".repeat(40), 2), Some(vec![5, 9]));
        assert_eq!(c.resume_lsns(&"b".repeat(40), 2), None);
        assert_eq!(c.resume_lsns(&"a".repeat(40), 3), None);
        let mut f = c.clone();
        f.phase = Phase::FullSync;
        assert_eq!(f.resume_lsns(&"a".repeat(40), 2), None);
    }

    #[test]
    fn marker_wins_for_same_master() {
        let m = "a".repeat(40);
        assert_eq!(reconcile(&[5, 9], Some(&m), &[Some(7), None], &m), vec![7, 9]);
        assert_eq!(reconcile(&[5, 9], Some("other"), &[Some(7), Some(20)], &m), vec![5, 9]);
        assert_eq!(reconcile(&[5, 9], None, &[], &m), vec![5, 9]);
    }
}
