//! Policies: what to do with Dragonfly-only data, with keys already on the target, with db
//! numbers. The table in `docs/replicate.md` is generated from [`POLICY_TABLE`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What to do with data the target cannot hold faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypePolicy {
    /// Stop replication with an error naming the key, before writing it.
    #[default]
    Fail,
    /// Do not write it; count it and log it (first occurrences by key).
    SkipAndReport,
    /// Write the closest Redis form (see [`POLICY_TABLE`]); count it.
    Degrade,
}

impl FromStr for TypePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(TypePolicy::Fail),
            "skip" | "skip-and-report" => Ok(TypePolicy::SkipAndReport),
            "degrade" => Ok(TypePolicy::Degrade),
            _ => Err(format!("unknown type policy {s:?} (expected fail, skip-and-report or degrade)")),
        }
    }
}

impl fmt::Display for TypePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TypePolicy::Fail => "fail",
            TypePolicy::SkipAndReport => "skip-and-report",
            TypePolicy::Degrade => "degrade",
        })
    }
}

/// The Dragonfly-only kinds of data a policy is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DfKind {
    /// JSON documents (type 30/20, `JSON.*`).
    Json,
    /// Scalable bloom filters (types 33/34, `BF.*`).
    Bloom,
    /// Count-min sketches (type 35, `CMS.*`).
    Cms,
    /// Top-k (type 36, `TOPK.*`).
    TopK,
    /// Cuckoo filters (type 37, `CF.*`).
    Cuckoo,
    /// Hashes with per-field TTLs (type 31, `HSETEX`, `HEXPIRE`, `FIELDEXPIRE` on hashes).
    HashFieldTtl,
    /// Sets with per-member TTLs (type 32, `SADDEX`).
    SetMemberTtl,
    /// Dragonfly-only commands without a Redis form (`CL.THROTTLE`, `FT.*`, ...).
    Command,
}

impl DfKind {
    /// Every kind, in table order.
    pub const ALL: [DfKind; 8] = [
        DfKind::Json,
        DfKind::Bloom,
        DfKind::Cms,
        DfKind::TopK,
        DfKind::Cuckoo,
        DfKind::HashFieldTtl,
        DfKind::SetMemberTtl,
        DfKind::Command,
    ];

    /// The name used in flags and config (`--type-policy json=degrade`).
    pub fn name(self) -> &'static str {
        match self {
            DfKind::Json => "json",
            DfKind::Bloom => "bloom",
            DfKind::Cms => "cms",
            DfKind::TopK => "topk",
            DfKind::Cuckoo => "cuckoo",
            DfKind::HashFieldTtl => "hash-field-ttl",
            DfKind::SetMemberTtl => "set-member-ttl",
            DfKind::Command => "command",
        }
    }
}

impl FromStr for DfKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DfKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<_> = DfKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown data kind {s:?} (expected one of {})", names.join(", "))
        })
    }
}

/// One row of the documented policy table: what each choice does for a kind, with and
/// without target support.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRow {
    /// The kind.
    pub kind: DfKind,
    /// What is written when the target supports it natively (module / version present).
    pub supported: &'static str,
    /// What `degrade` writes when it does not.
    pub degrade: &'static str,
}

/// The documented table (rendered into `docs/replicate.md`; a test keeps them equal).
pub const POLICY_TABLE: [PolicyRow; 8] = [
    PolicyRow {
        kind: DfKind::Json,
        supported: "RedisJSON loaded: `JSON.SET key $ <doc>`; journal `JSON.*` passed through",
        degrade: "the document text as a plain string (`SET`); journal `JSON.*` → key re-read from the source (`JSON.GET`) and re-`SET`",
    },
    PolicyRow {
        kind: DfKind::Bloom,
        supported: "RedisBloom loaded: journal `BF.*` passed through; snapshot values have no exact RedisBloom form → degrade/skip",
        degrade: "no faithful form: skipped and counted as degraded",
    },
    PolicyRow {
        kind: DfKind::Cms,
        supported: "RedisBloom loaded: journal `CMS.*` passed through; snapshot values → degrade/skip",
        degrade: "no faithful form: skipped and counted as degraded",
    },
    PolicyRow {
        kind: DfKind::TopK,
        supported: "RedisBloom loaded: journal `TOPK.*` passed through; snapshot values → degrade/skip",
        degrade: "no faithful form: skipped and counted as degraded",
    },
    PolicyRow {
        kind: DfKind::Cuckoo,
        supported: "RedisBloom loaded: journal `CF.*` passed through; snapshot values → degrade/skip",
        degrade: "no faithful form: skipped and counted as degraded",
    },
    PolicyRow {
        kind: DfKind::HashFieldTtl,
        supported: "Redis ≥ 7.4: `HSET` + `HPEXPIREAT` per field (absolute); `HSETEX`/`FIELDEXPIRE` → `HSET` + `HEXPIRE`",
        degrade: "`HSET` without the field TTLs (fields already expired are dropped); `HSETEX` → `HSET`, `HEXPIRE`/`FIELDEXPIRE` dropped",
    },
    PolicyRow {
        kind: DfKind::SetMemberTtl,
        supported: "no Redis version has member TTLs → as degrade/skip",
        degrade: "`SADD` without the member TTLs (members already expired are dropped); `SADDEX k ttl m…` → `SADD k m…`",
    },
    PolicyRow {
        kind: DfKind::Command,
        supported: "—",
        degrade: "dropped and counted (`CL.THROTTLE`, `FT.*`, `DFLYCLUSTER`, `SHRINK`, `SCRIPT CONFIG`)",
    },
];

/// Policies for every Dragonfly-only kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypePolicies {
    /// Fallback for kinds not in `per_kind`.
    pub default: TypePolicy,
    /// Overrides.
    pub per_kind: BTreeMap<DfKind, TypePolicy>,
}

impl TypePolicies {
    /// The policy for `kind`.
    pub fn get(&self, kind: DfKind) -> TypePolicy {
        self.per_kind.get(&kind).copied().unwrap_or(self.default)
    }

    /// Parses `kind=policy` or a bare `policy` (sets the default).
    pub fn apply_spec(&mut self, spec: &str) -> Result<(), String> {
        match spec.split_once('=') {
            Some((k, p)) => {
                self.per_kind.insert(k.trim().parse()?, p.trim().parse()?);
            }
            None => self.default = spec.trim().parse()?,
        }
        Ok(())
    }
}

/// What to do when a key of the full sync already exists on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Replace the target's value (RESTORE … REPLACE / RENAME).
    #[default]
    Overwrite,
    /// Keep the target's value, count the key (RESTORE without REPLACE → BUSYKEY / RENAMENX).
    Skip,
    /// Stop replication with an error naming the key.
    Panic,
}

impl FromStr for ConflictPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "overwrite" => Ok(ConflictPolicy::Overwrite),
            "skip" => Ok(ConflictPolicy::Skip),
            "panic" => Ok(ConflictPolicy::Panic),
            _ => Err(format!("unknown conflict policy {s:?} (expected overwrite, skip or panic)")),
        }
    }
}

/// Source db → target db mapping (unmapped dbs keep their number).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbMap(pub BTreeMap<u32, u32>);

impl DbMap {
    /// The target db for source db `db`.
    pub fn map(&self, db: u32) -> u32 {
        self.0.get(&db).copied().unwrap_or(db)
    }

    /// Parses `1=2,3=0`.
    pub fn parse(s: &str) -> Result<DbMap, String> {
        let mut m = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('=').ok_or_else(|| format!("db mapping {part:?} is not SRC=DST"))?;
            let a: u32 = a.trim().parse().map_err(|_| format!("bad source db in {part:?}"))?;
            let b: u32 = b.trim().parse().map_err(|_| format!("bad target db in {part:?}"))?;
            if m.insert(a, b).is_some() {
                return Err(format!("source db {a} mapped twice"));
            }
        }
        Ok(DbMap(m))
    }
}

/// Renders [`POLICY_TABLE`] as a Markdown table.
pub fn policy_table_markdown() -> String {
    let mut s = String::from("| Kind | Target supports it | `degrade` without support |\n|---|---|---|\n");
    for r in POLICY_TABLE {
        s.push_str(&format!("| `{}` | {} | {} |\n", r.kind.name(), r.supported, r.degrade));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        let mut p = TypePolicies::default();
        assert_eq!(p.get(DfKind::Json), TypePolicy::Fail);
        p.apply_spec("skip").unwrap();
        p.apply_spec("json=degrade").unwrap();
        assert_eq!(p.get(DfKind::Json), TypePolicy::Degrade);
        assert_eq!(p.get(DfKind::Bloom), TypePolicy::SkipAndReport);
        assert!(p.apply_spec("jsn=degrade").is_err());
        assert!(p.apply_spec("json=maybe").is_err());
    }

    #[test]
    fn db_map_parses_and_rejects() {
        let m = DbMap::parse("1=2, 3=0").unwrap();
        assert_eq!((m.map(1), m.map(3), m.map(5)), (2, 0, 5));
        assert!(DbMap::parse("1=2,1=3").is_err());
        assert!(DbMap::parse("x=1").is_err());
        assert!(DbMap::parse("1").is_err());
        assert_eq!(DbMap::parse("").unwrap(), DbMap::default());
    }

    #[test]
    fn table_covers_every_kind_once() {
        let kinds: Vec<_> = POLICY_TABLE.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, DfKind::ALL.to_vec());
        assert!(policy_table_markdown().lines().count() == 2 + DfKind::ALL.len());
    }
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn docs_carry_the_table() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/replicate.md")).unwrap();
        assert!(doc.contains(&super::policy_table_markdown()), "docs/replicate.md is out of date");
    }
}
