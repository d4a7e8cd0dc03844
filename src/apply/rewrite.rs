//! Journal record → Redis commands: strip Dragonfly-only options, map or drop Dragonfly-only
//! commands per policy, mark global commands (FLUSH*) for the cross-flow barrier, and detect
//! the records Dragonfly journals unfaithfully (spec Appendices F and G) so the key is repaired
//! from the source.

use bytes::Bytes;

use super::caps::TargetCaps;
use super::policy::{DbMap, DfKind, TypePolicies, TypePolicy};
use super::Args;
use crate::proto::{JournalOp, JournalRecord};

/// Why a key must be re-read from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepairReason {
    /// `DEL dst` + `ZADD dst …` with a shared txid: a Z*STORE / GEO…STORE rewrite whose scores
    /// Dragonfly printed with 6 significant digits (Appendix F).
    RoundedZstore,
    /// A multi-shard `*STORE` fragment no one can execute (Appendix G, v1.30).
    StoreFragment,
    /// JSON on a target without RedisJSON under `degrade`: the document is re-read as text.
    JsonAsString,
}

/// How to re-read a key from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Source database.
    pub src_db: u32,
    /// The key.
    pub key: Bytes,
    /// Why.
    pub reason: RepairReason,
}

/// What became of a record besides its commands (counted in the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied as is (possibly with options stripped).
    Applied,
    /// Not applied; nothing on the target needs it.
    Dropped(&'static str),
    /// Dropped or reduced per the policy of `DfKind`.
    Policy(DfKind, TypePolicy),
}

/// The plan for one journal record.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Target database.
    pub db: u32,
    /// Commands, in order.
    pub cmds: Vec<Args>,
    /// A global command (FLUSHALL/FLUSHDB): apply once, behind the barrier, instead of `cmds`.
    pub global: Option<(u64, Args)>,
    /// Keys to repair from the source once this record is applied.
    pub repairs: Vec<Repair>,
    /// A RESTORE whose payload the target cannot load (Dragonfly-only or too new a type):
    /// `(key, absolute expiry ms or 0, payload, replace)`; decoded and written like a snapshot entry.
    pub transcode: Option<(Bytes, u64, Bytes, bool)>,
    /// Bookkeeping.
    pub outcome: Outcome,
}

impl Plan {
    fn new(db: u32) -> Self {
        Plan { db, cmds: Vec::new(), global: None, repairs: Vec::new(), transcode: None, outcome: Outcome::Applied }
    }
}

/// A policy said `fail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} data ({detail}) cannot be written to this target and its policy is `fail` (set `--type-policy {name}=skip-and-report|degrade` to continue)", name = kind.name())]
pub struct PolicyError {
    /// The kind.
    pub kind: DfKind,
    /// Command or key.
    pub detail: String,
}

/// Per-flow rewriter (it keeps a little state to recognise multi-record rewrites).
#[derive(Debug)]
pub struct Rewriter {
    caps: TargetCaps,
    policies: TypePolicies,
    dbs: DbMap,
    /// The previous record was `DEL <key>` with this non-zero txid.
    last_del: Option<(u64, Bytes)>,
}

const LUA_PREPEND: &str =
    "local v=redis.call('GET',KEYS[1]) if v then redis.call('SET',KEYS[1],ARGV[1]..v,'KEEPTTL') end return 1";
const LUA_DELEX_IFEQ: &str = "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) end return 0";
const LUA_DELEX_IFNE: &str = "if redis.call('GET',KEYS[1])~=ARGV[1] then return redis.call('DEL',KEYS[1]) end return 0";
const LUA_FIELDEXPIRE: &str = "if redis.call('TYPE',KEYS[1]).ok=='hash' then return redis.call('HEXPIRE',KEYS[1],ARGV[1],'FIELDS',#ARGV-1,unpack(ARGV,2)) end return 0";

fn upper(b: &[u8]) -> Vec<u8> {
    b.to_ascii_uppercase()
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Multi-key commands that store into a destination and that Dragonfly v1.30 journals as
/// per-shard fragments (Appendix G).
const STORE_COMMANDS: [&[u8]; 10] = [
    b"ZUNIONSTORE",
    b"ZINTERSTORE",
    b"ZDIFFSTORE",
    b"ZRANGESTORE",
    b"SUNIONSTORE",
    b"SINTERSTORE",
    b"SDIFFSTORE",
    b"GEORADIUS",
    b"GEORADIUSBYMEMBER",
    b"GEOSEARCHSTORE",
];

impl Rewriter {
    /// A rewriter for one flow.
    pub fn new(caps: TargetCaps, policies: TypePolicies, dbs: DbMap) -> Self {
        Rewriter { caps, policies, dbs, last_del: None }
    }

    /// The target db for a source db.
    pub fn map_db(&self, db: u32) -> u32 {
        self.dbs.map(db)
    }

    /// The target capabilities it plans for.
    pub fn caps(&self) -> &TargetCaps {
        &self.caps
    }

    /// Plans one record. PING / EXEC / FIN records yield an empty plan.
    pub fn plan(&mut self, rec: &JournalRecord) -> Result<Plan, PolicyError> {
        let db = self.dbs.map(rec.db);
        let mut plan = Plan::new(db);
        let (txid, shard_cnt, args) = match &rec.op {
            JournalOp::Command { txid, shard_cnt, args, .. } => (*txid, *shard_cnt, args),
            JournalOp::Ping => {
                plan.outcome = Outcome::Dropped("ping");
                return Ok(plan);
            }
            JournalOp::Exec { .. } => {
                plan.outcome = Outcome::Dropped("exec");
                return Ok(plan);
            }
            JournalOp::Fin => {
                plan.outcome = Outcome::Dropped("fin");
                return Ok(plan);
            }
        };
        let last_del = self.last_del.take();
        let Some(name) = args.first() else {
            plan.outcome = Outcome::Dropped("empty command");
            return Ok(plan);
        };
        let name = upper(name);
        let key = args.get(1).cloned();
        match name.as_slice() {
            b"FLUSHALL" | b"FLUSHDB" => {
                let mut a = args.clone();
                a[0] = Bytes::from(name);
                plan.global = Some((txid, a));
            }
            b"SET" => plan.cmds.push(strip_set(args)),
            b"DEL" => {
                if txid != 0 && args.len() == 2 {
                    self.last_del = key.map(|k| (txid, k));
                }
                plan.cmds.push(args.clone());
            }
            b"ZADD" => {
                plan.cmds.push(args.clone());
                if let (Some((t, k)), Some(key)) = (last_del, key) {
                    if t == txid && k == key {
                        plan.repairs.push(Repair { src_db: rec.db, key, reason: RepairReason::RoundedZstore });
                    }
                }
            }
            n if STORE_COMMANDS.contains(&n) => {
                if shard_cnt > 1 || !store_well_formed(n, args) {
                    plan.outcome = Outcome::Dropped("unexecutable multi-shard *STORE fragment");
                    for k in args.iter().skip(1) {
                        plan.repairs.push(Repair {
                            src_db: rec.db,
                            key: k.clone(),
                            reason: RepairReason::StoreFragment,
                        });
                    }
                } else {
                    plan.cmds.push(args.clone());
                }
            }
            b"RESTORE" => {
                let a: Args = args.iter().filter(|x| !x.eq_ignore_ascii_case(b"STICK")).cloned().collect();
                let code = a.get(3).and_then(|p| p.first()).copied();
                match code {
                    Some(c) if c <= self.caps.max_type_code() && c != 20 => plan.cmds.push(a),
                    _ => {
                        let ttl = a.get(2).and_then(|t| std::str::from_utf8(t).ok()?.parse::<i64>().ok()).unwrap_or(0);
                        let abs = a.iter().skip(4).any(|x| x.eq_ignore_ascii_case(b"ABSTTL"));
                        let replace = a.iter().skip(4).any(|x| x.eq_ignore_ascii_case(b"REPLACE"));
                        let at = match (ttl, abs) {
                            (t, _) if t <= 0 => 0,
                            (t, true) => t as u64,
                            (t, false) => super::now_ms().saturating_add(t as u64),
                        };
                        if let (Some(k), Some(p)) = (a.get(1), a.get(3)) {
                            plan.transcode = Some((k.clone(), at, p.clone(), replace));
                        }
                    }
                }
            }
            b"MOVE" => {
                let mut a = args.clone();
                if let Some(d) = a.get(2).and_then(|d| std::str::from_utf8(d).ok()?.parse::<u32>().ok()) {
                    a[2] = Bytes::from(self.dbs.map(d).to_string());
                }
                plan.cmds.push(a);
            }
            b"STICK" => plan.outcome = Outcome::Dropped("STICK (sticky flag has no Redis form)"),
            b"PREPEND" => {
                if let (Some(k), Some(v)) = (args.get(1), args.get(2)) {
                    plan.cmds.push(vec![b("EVAL"), b(LUA_PREPEND), b("1"), k.clone(), v.clone()]);
                }
            }
            b"DELEX" => match args.get(2).map(|o| upper(o)).as_deref() {
                None => plan.cmds.push(vec![b("DEL"), key.unwrap_or_default()]),
                Some(b"IFEQ") | Some(b"IFNE") if args.len() == 4 => {
                    let script = if upper(&args[2]) == b"IFEQ" { LUA_DELEX_IFEQ } else { LUA_DELEX_IFNE };
                    plan.cmds.push(vec![b("EVAL"), b(script), b("1"), args[1].clone(), args[3].clone()]);
                }
                Some(_) => self.policy(&mut plan, DfKind::Command, args, |_| Vec::new())?,
            },
            b"SADDEX" => self.policy(&mut plan, DfKind::SetMemberTtl, args, |a| {
                let mut c = vec![b("SADD"), a[1].clone()];
                c.extend(a.iter().skip(3).cloned());
                vec![c]
            })?,
            b"HSETEX" => {
                let (opts, rest) = hsetex_split(args);
                let nx = opts.iter().any(|o| o == b"NX");
                let keepttl = opts.iter().any(|o| o == b"KEEPTTL");
                let Some((secs, pairs)) = rest.split_first() else {
                    plan.outcome = Outcome::Dropped("malformed HSETEX");
                    return Ok(plan);
                };
                let k = args[1].clone();
                let mut cmds = hset_cmds(&k, pairs, nx);
                if self.caps.hash_field_ttl() && !keepttl {
                    let fields: Vec<Bytes> = pairs.chunks(2).map(|p| p[0].clone()).collect();
                    let mut e = vec![b("HEXPIRE"), k, secs.clone(), b("FIELDS"), Bytes::from(fields.len().to_string())];
                    e.extend(fields);
                    cmds.push(e);
                    plan.cmds = cmds;
                } else if self.caps.hash_field_ttl() {
                    plan.cmds = cmds;
                } else {
                    self.policy(&mut plan, DfKind::HashFieldTtl, args, |_| cmds.clone())?;
                }
            }
            b"HEXPIRE" | b"HPEXPIRE" | b"HEXPIREAT" | b"HPEXPIREAT" | b"HPERSIST" => {
                if self.caps.hash_field_ttl() {
                    plan.cmds.push(args.clone());
                } else {
                    self.policy(&mut plan, DfKind::HashFieldTtl, args, |_| Vec::new())?;
                }
            }
            b"FIELDEXPIRE" => {
                if self.caps.hash_field_ttl() && args.len() >= 4 {
                    let mut c = vec![b("EVAL"), b(LUA_FIELDEXPIRE), b("1"), args[1].clone()];
                    c.extend(args.iter().skip(2).cloned());
                    plan.cmds.push(c);
                } else {
                    self.policy(&mut plan, DfKind::HashFieldTtl, args, |_| Vec::new())?;
                }
            }
            n if n.starts_with(b"JSON.") => {
                if self.caps.json {
                    plan.cmds.push(args.clone());
                } else {
                    let p = self.policies.get(DfKind::Json);
                    match p {
                        TypePolicy::Fail => return Err(policy_err(DfKind::Json, args)),
                        TypePolicy::SkipAndReport => {}
                        TypePolicy::Degrade => {
                            let step = if n == b"JSON.MSET" { 3 } else { usize::MAX };
                            let mut i = 1;
                            while let Some(k) = args.get(i) {
                                plan.repairs.push(Repair {
                                    src_db: rec.db,
                                    key: k.clone(),
                                    reason: RepairReason::JsonAsString,
                                });
                                i = i.saturating_add(step);
                            }
                        }
                    }
                    plan.outcome = Outcome::Policy(DfKind::Json, p);
                }
            }
            n if n.starts_with(b"BF.")
                || n.starts_with(b"CF.")
                || n.starts_with(b"CMS.")
                || n.starts_with(b"TOPK.") =>
            {
                let kind = if n.starts_with(b"BF.") {
                    DfKind::Bloom
                } else if n.starts_with(b"CF.") {
                    DfKind::Cuckoo
                } else if n.starts_with(b"CMS.") {
                    DfKind::Cms
                } else {
                    DfKind::TopK
                };
                if self.caps.bloom {
                    plan.cmds.push(args.clone());
                } else {
                    self.policy(&mut plan, kind, args, |_| Vec::new())?;
                }
            }
            b"CL.THROTTLE" | b"DFLYCLUSTER" | b"SHRINK" => {
                self.policy(&mut plan, DfKind::Command, args, |_| Vec::new())?
            }
            n if n.starts_with(b"FT.") => self.policy(&mut plan, DfKind::Command, args, |_| Vec::new())?,
            b"SCRIPT" => {
                if args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"LOAD")) {
                    plan.cmds.push(args.clone());
                } else {
                    plan.outcome = Outcome::Dropped("SCRIPT subcommand other than LOAD");
                }
            }
            b"SELECT" => plan.outcome = Outcome::Dropped("SELECT (the db travels in the record prefix)"),
            _ => plan.cmds.push(args.clone()),
        }
        Ok(plan)
    }

    fn policy(
        &self,
        plan: &mut Plan,
        kind: DfKind,
        args: &Args,
        degrade: impl FnOnce(&Args) -> Vec<Args>,
    ) -> Result<(), PolicyError> {
        let p = self.policies.get(kind);
        match p {
            TypePolicy::Fail => return Err(policy_err(kind, args)),
            TypePolicy::SkipAndReport => {}
            TypePolicy::Degrade => plan.cmds = degrade(args),
        }
        plan.outcome = Outcome::Policy(kind, p);
        Ok(())
    }
}

fn policy_err(kind: DfKind, args: &Args) -> PolicyError {
    let name = args.first().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
    let key = args.get(1).map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
    PolicyError { kind, detail: format!("command {name} on key {key:?}") }
}

/// `SET` without Dragonfly's `STICK` and `_MCFLAGS <n>` options.
pub fn strip_set(args: &Args) -> Args {
    let mut out: Args = args.iter().take(3).cloned().collect();
    let mut i = 3;
    while let Some(a) = args.get(i) {
        if a.eq_ignore_ascii_case(b"STICK") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"_MCFLAGS") {
            i += 2;
        } else {
            out.push(a.clone());
            i += 1;
        }
    }
    out
}

/// `HSETEX key [NX] [KEEPTTL] seconds f v …` → (options, [seconds, f, v, …]).
fn hsetex_split(args: &Args) -> (Vec<Vec<u8>>, &[Bytes]) {
    let mut i = 2;
    let mut opts = Vec::new();
    while let Some(a) = args.get(i) {
        let u = upper(a);
        if u == b"NX" || u == b"KEEPTTL" {
            opts.push(u);
            i += 1;
        } else {
            break;
        }
    }
    (opts, args.get(i..).unwrap_or_default())
}

fn hset_cmds(key: &Bytes, pairs: &[Bytes], nx: bool) -> Vec<Args> {
    if nx {
        pairs.chunks_exact(2).map(|p| vec![b("HSETNX"), key.clone(), p[0].clone(), p[1].clone()]).collect()
    } else {
        let mut c = vec![b("HSET"), key.clone()];
        c.extend(pairs.iter().take(pairs.len() / 2 * 2).cloned());
        vec![c]
    }
}

/// Whether a `*STORE` record carries a complete, executable command.
fn store_well_formed(name: &[u8], args: &Args) -> bool {
    let int = |i: usize| args.get(i).and_then(|a| std::str::from_utf8(a).ok()?.parse::<usize>().ok());
    match name {
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" => {
            int(2).is_some_and(|n| n > 0 && args.len() >= 3usize.saturating_add(n))
        }
        b"ZRANGESTORE" => args.len() >= 5,
        b"SUNIONSTORE" | b"SINTERSTORE" | b"SDIFFSTORE" => args.len() >= 3,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::caps::Version;
    use crate::proto::event::CommandKind;

    fn rec(db: u32, txid: u64, shard_cnt: u64, a: &[&str]) -> JournalRecord {
        JournalRecord {
            db,
            op: JournalOp::Command {
                kind: CommandKind::Command,
                txid,
                shard_cnt,
                args: a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect(),
            },
        }
    }

    fn rw(policy: &str) -> Rewriter {
        let mut p = TypePolicies::default();
        p.apply_spec(policy).unwrap();
        Rewriter::new(TargetCaps::plain(Version::new(7, 0, 15)), p, DbMap::parse("1=5").unwrap())
    }

    fn cmds(p: &Plan) -> Vec<Vec<String>> {
        p.cmds.iter().map(|c| c.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()).collect()
    }

    #[test]
    fn set_options_stripped() {
        let p = rw("fail").plan(&rec(0, 0, 1, &["SET", "k", "STICK", "PXAT", "5", "STICK", "_MCFLAGS", "7"])).unwrap();
        assert_eq!(cmds(&p), [["SET", "k", "STICK", "PXAT", "5"]]);
        assert_eq!(p.outcome, Outcome::Applied);
    }

    #[test]
    fn db_mapping_and_move() {
        let p = rw("fail").plan(&rec(1, 0, 1, &["MOVE", "k", "1"])).unwrap();
        assert_eq!(p.db, 5);
        assert_eq!(cmds(&p), [["MOVE", "k", "5"]]);
    }

    #[test]
    fn flush_is_global() {
        let p = rw("fail").plan(&rec(0, 42, 1, &["flushall", "ASYNC"])).unwrap();
        assert!(p.cmds.is_empty());
        let (t, a) = p.global.unwrap();
        assert_eq!(t, 42);
        assert_eq!(a[0], "FLUSHALL");
    }

    #[test]
    fn zstore_rewrite_is_repaired() {
        let mut r = rw("fail");
        let d = r.plan(&rec(0, 9, 1, &["DEL", "dst"])).unwrap();
        assert!(d.repairs.is_empty());
        let z = r.plan(&rec(0, 9, 1, &["ZADD", "dst", "6.28319", "pi"])).unwrap();
        assert_eq!(
            z.repairs,
            [Repair { src_db: 0, key: Bytes::from_static(b"dst"), reason: RepairReason::RoundedZstore }]
        );
        // A ZADD not preceded by DEL of the same key in the same txid is plain.
        let z = r.plan(&rec(0, 9, 1, &["ZADD", "dst", "1", "a"])).unwrap();
        assert!(z.repairs.is_empty());
        let _ = r.plan(&rec(0, 0, 1, &["DEL", "x"])).unwrap();
        assert!(r.plan(&rec(0, 0, 1, &["ZADD", "x", "1", "a"])).unwrap().repairs.is_empty());
    }

    #[test]
    fn store_fragments_are_repaired_not_run() {
        let mut r = rw("fail");
        let p = r.plan(&rec(0, 5, 2, &["ZUNIONSTORE", "w:zunion", "zset:small:7"])).unwrap();
        assert!(p.cmds.is_empty());
        assert_eq!(p.repairs.len(), 2);
        let p = r.plan(&rec(0, 5, 1, &["ZUNIONSTORE", "zset:small:6"])).unwrap();
        assert_eq!(p.repairs.len(), 1);
        let p = r.plan(&rec(0, 5, 1, &["ZUNIONSTORE", "d", "2", "a", "b"])).unwrap();
        assert_eq!(cmds(&p), [["ZUNIONSTORE", "d", "2", "a", "b"]]);
    }

    #[test]
    fn dragonfly_only_commands_follow_policy() {
        assert!(rw("fail").plan(&rec(0, 0, 1, &["JSON.SET", "j", "$", "1"])).is_err());
        let p = rw("skip").plan(&rec(0, 0, 1, &["JSON.SET", "j", "$", "1"])).unwrap();
        assert!(p.cmds.is_empty() && p.repairs.is_empty());
        let p = rw("degrade").plan(&rec(0, 0, 1, &["JSON.MSET", "a", "$", "1", "b", "$", "2"])).unwrap();
        assert_eq!(p.repairs.len(), 2);
        let p = rw("degrade").plan(&rec(0, 0, 1, &["SADDEX", "s", "10", "m1", "m2"])).unwrap();
        assert_eq!(cmds(&p), [["SADD", "s", "m1", "m2"]]);
        let p = rw("degrade").plan(&rec(0, 0, 1, &["HSETEX", "h", "NX", "10", "f", "v"])).unwrap();
        assert_eq!(cmds(&p), [["HSETNX", "h", "f", "v"]]);
        let p = rw("degrade").plan(&rec(0, 0, 1, &["BF.ADD", "b", "x"])).unwrap();
        assert_eq!(p.outcome, Outcome::Policy(DfKind::Bloom, TypePolicy::Degrade));
        assert!(p.cmds.is_empty());
        assert!(rw("fail").plan(&rec(0, 0, 1, &["CL.THROTTLE", "k", "1", "2", "3"])).is_err());
        let p = rw("fail").plan(&rec(0, 0, 1, &["STICK", "k"])).unwrap();
        assert!(p.cmds.is_empty());
        let p = rw("fail").plan(&rec(0, 0, 1, &["PREPEND", "k", "x"])).unwrap();
        assert_eq!(cmds(&p)[0][0], "EVAL");
    }

    #[test]
    fn hsetex_on_new_redis_sets_field_ttls() {
        let mut r = Rewriter::new(TargetCaps::plain(Version::new(7, 4, 0)), TypePolicies::default(), DbMap::default());
        let p = r.plan(&rec(0, 0, 1, &["HSETEX", "h", "10", "f", "v", "g", "w"])).unwrap();
        assert_eq!(
            cmds(&p),
            [vec!["HSET", "h", "f", "v", "g", "w"], vec!["HEXPIRE", "h", "10", "FIELDS", "2", "f", "g"]]
        );
    }

    #[test]
    fn restore_of_dragonfly_type_is_transcoded() {
        let mut r = rw("fail");
        let p = r.plan(&rec(0, 0, 1, &["RESTORE", "k", "0", "\x12abc", "REPLACE", "ABSTTL", "STICK"])).unwrap();
        assert_eq!(cmds(&p), [["RESTORE", "k", "0", "\x12abc", "REPLACE", "ABSTTL"]]);
        let p = r.plan(&rec(0, 0, 1, &["RESTORE", "k", "1767225600000", "\x1eabc", "REPLACE", "ABSTTL"])).unwrap();
        assert!(p.cmds.is_empty());
        let (k, at, _, replace) = p.transcode.unwrap();
        assert_eq!((k.as_ref(), at, replace), (&b"k"[..], 1767225600000, true));
    }
}
