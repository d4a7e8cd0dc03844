//! Reports: a human summary (counts per kind and db, examples), a JSON report with every
//! difference (key as lossy text and hex), and a repair list (keys to re-copy, JSON lines).

use super::diff::{Diff, DiffKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `keys`, `meta`, `full` or `smart`.
    pub mode: String,
    /// Source description (no secrets).
    pub source: String,
    /// Target description (no secrets).
    pub target: String,
    /// Differing keys after each round.
    pub rounds: Vec<usize>,
    /// Source keys compared (first pass).
    pub source_keys: u64,
    /// Target keys scanned for extras (first pass).
    pub target_keys: u64,
    /// Keys compared in chunks.
    pub big_keys: u64,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Persistent differences.
    #[serde(serialize_with = "ser_diffs")]
    pub diffs: Vec<Diff>,
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[derive(Serialize)]
struct DiffJson<'a> {
    db: u32,
    key: String,
    key_hex: String,
    kind: DiffKind,
    source: &'a super::diff::Summary,
    target: &'a super::diff::Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: &'a Option<String>,
}

impl<'a> DiffJson<'a> {
    fn of(d: &'a Diff) -> Self {
        DiffJson {
            db: d.db,
            key: String::from_utf8_lossy(&d.key).into_owned(),
            key_hex: hex(&d.key),
            kind: d.kind,
            source: &d.source,
            target: &d.target,
            detail: &d.detail,
        }
    }
}

fn ser_diffs<S: serde::Serializer>(d: &[Diff], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(d.iter().map(DiffJson::of))
}

/// Files written by [`Report::write_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `report.json`.
    pub json: PathBuf,
    /// `summary.txt`.
    pub summary: PathBuf,
    /// `repair.jsonl` (only when there are differences).
    pub repair: Option<PathBuf>,
}

impl Report {
    /// Keys per second over the first pass.
    pub fn keys_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            (self.source_keys + self.target_keys) as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// Counts per (kind, db).
    pub fn counts(&self) -> BTreeMap<(DiffKind, u32), usize> {
        let mut m = BTreeMap::new();
        for d in &self.diffs {
            *m.entry((d.kind, d.db)).or_insert(0) += 1;
        }
        m
    }

    /// The human summary, with up to `examples` examples per kind.
    pub fn human(&self, examples: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "df2redis verify ({} mode): {} → {}", self.mode, self.source, self.target);
        let _ = writeln!(
            s,
            "checked {} source keys and {} target keys in {:.1}s ({:.0} keys/s); {} big keys compared in chunks",
            self.source_keys,
            self.target_keys,
            self.elapsed_secs,
            self.keys_per_sec(),
            self.big_keys
        );
        if self.rounds.len() > 1 {
            let r: Vec<String> = self.rounds.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(s, "differing keys per round: {}", r.join(" → "));
        }
        if self.diffs.is_empty() {
            let _ = writeln!(s, "RESULT: EQUAL — no differences");
            return s;
        }
        let keys = super::rounds::keys_of(&self.diffs).len();
        let _ = writeln!(s, "RESULT: {} differences in {keys} keys", self.diffs.len());
        let _ = writeln!(s, "{:<20} {:>6} {:>10}", "kind", "db", "count");
        for ((kind, db), n) in self.counts() {
            let _ = writeln!(s, "{:<20} {:>6} {:>10}", kind.name(), db, n);
        }
        for kind in DiffKind::ALL {
            let ex: Vec<&Diff> = self.diffs.iter().filter(|d| d.kind == kind).take(examples).collect();
            if ex.is_empty() {
                continue;
            }
            let _ = writeln!(s, "examples of {}:", kind.name());
            for d in ex {
                let _ = write!(s, "  db{} {}", d.db, super::diff::preview(&d.key));
                let ty = |t: Option<super::model::KeyType>| t.map(|t| t.name()).unwrap_or("none");
                let _ = write!(s, " [source {} / target {}]", ty(d.source.ty), ty(d.target.ty));
                if let Some(x) = &d.detail {
                    let _ = write!(s, ": {x}");
                }
                s.push('\n');
            }
        }
        s
    }

    /// The JSON report.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// One JSON object per key to re-copy (`{"db":0,"key":"...","key_hex":"..."}`).
    pub fn repair_list(&self) -> String {
        let mut out = String::new();
        for (db, key) in super::rounds::keys_of(&self.diffs) {
            let line = serde_json::json!({"db": db, "key": String::from_utf8_lossy(&key), "key_hex": hex(&key)});
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }

    /// Writes `report.json`, `summary.txt` and (if anything differs) `repair.jsonl` into `dir`.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<Written> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&self.json()).map_err(std::io::Error::other)?)?;
        let summary = dir.join("summary.txt");
        std::fs::write(&summary, self.human(20))?;
        let repair = if self.diffs.is_empty() {
            None
        } else {
            let p = dir.join("repair.jsonl");
            std::fs::write(&p, self.repair_list())?;
            Some(p)
        };
        Ok(Written { json, summary, repair })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::diff::Summary;
    use crate::verify::model::KeyType;
    use bytes::Bytes;

    fn report() -> Report {
        let d = |db, k: &[u8], kind| Diff {
            db,
            key: Bytes::copy_from_slice(k),
            kind,
            source: Summary { ty: Some(KeyType::Hash), ttl_ms: Some(-1), len: Some(3), digest: None },
            target: Summary::default(),
            detail: Some("field \"f\" only on source".into()),
        };
        Report {
            mode: "full".into(),
            source: "127.0.0.1:1".into(),
            target: "127.0.0.1:2".into(),
            rounds: vec![5, 2],
            source_keys: 100,
            target_keys: 99,
            big_keys: 1,
            elapsed_secs: 2.0,
            diffs: vec![
                d(0, b"a\xff", DiffKind::MissingOnTarget),
                d(0, b"b", DiffKind::Value),
                d(0, b"b", DiffKind::Ttl),
                d(2, b"c", DiffKind::Value),
            ],
        }
    }

    #[test]
    fn human_summary_counts_per_kind_and_db() {
        let h = report().human(5);
        assert!(h.contains("RESULT: 4 differences in 3 keys"), "{h}");
        assert!(h.contains("differing keys per round: 5 → 2"), "{h}");
        assert!(h.contains("missing_on_target         0          1"), "{h}");
        assert!(h.contains("value                     2          1"), "{h}");
        assert!(h.contains("examples of ttl:\n  db0 \"b\" [source hash / target none]"), "{h}");
        let mut r = report();
        r.diffs.clear();
        assert!(r.human(5).contains("RESULT: EQUAL"));
    }

    #[test]
    fn json_has_every_difference_with_hex_keys_and_repair_list_is_per_key() {
        let r = report();
        let j = r.json();
        let diffs = j["diffs"].as_array().unwrap();
        assert_eq!(diffs.len(), 4);
        assert_eq!(diffs[0]["key_hex"], "61ff");
        assert_eq!(diffs[0]["kind"], "missing_on_target");
        assert_eq!(diffs[0]["source"]["type"], "hash");
        assert_eq!(diffs[0]["target"]["type"], serde_json::Value::Null);
        let repair = r.repair_list();
        assert_eq!(repair.lines().count(), 3);
        assert!(repair.lines().next().unwrap().contains("\"key_hex\":\"61ff\""));
        let dir = tempfile::tempdir().unwrap();
        let w = r.write_dir(dir.path()).unwrap();
        assert!(w.repair.is_some());
        let back: serde_json::Value = serde_json::from_slice(&std::fs::read(w.json).unwrap()).unwrap();
        assert_eq!(back["source_keys"], 100);
    }
}
