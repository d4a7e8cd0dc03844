//! Pure planning of one command for a Redis Cluster target: which key routes it, whether it is
//! split per slot (DEL, UNLINK, TOUCH, EXISTS, MSET, MSETNX, JSON.MSET), translated into an
//! equivalent sequence across slots (RENAME/RENAMENX, LMOVE/RPOPLPUSH, SMOVE, the `*STORE`
//! family through temporary copies in the destination's slot), broadcast to every master
//! (FLUSHALL, FLUSHDB, SCRIPT LOAD), or impossible on a cluster (the cross-slot policy decides).
//! The table is documented in `docs/cluster.md`.

use bytes::Bytes;

use super::route::{hash_tag, key_slot};
use crate::apply::Args;

/// What a command becomes on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterPlan {
    /// Send as is to the node of this key.
    Route(Bytes),
    /// No key: send to every master.
    Broadcast,
    /// Per-slot commands (each routed by its own first key), in order.
    Split(Vec<Args>),
    /// An equivalent sequence that needs replies (see [`Translation`]).
    Translate(Translation),
    /// No equivalent on a cluster; the cross-slot policy applies.
    Unsupported(String),
}

/// Cross-slot commands rebuilt from reads and single-slot writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// `RENAME src dst` across slots: `DUMP src` + `PTTL src`, `RESTORE dst <pttl> <payload>
    /// REPLACE`, then (once `dst` is confirmed) `DEL src` (a missing `src` deletes `dst`, as the
    /// master would not have journaled a failed RENAME).
    Rename {
        /// Source.
        src: Bytes,
        /// Destination.
        dst: Bytes,
    },
    /// `LMOVE`/`RPOPLPUSH`: read the element (`LINDEX src 0|-1`); if there is one, `LPUSH|RPUSH
    /// dst <element>`, then (once confirmed) `LPOP|RPOP src`.
    ListMove {
        /// Source list.
        src: Bytes,
        /// Destination list.
        dst: Bytes,
        /// `LPOP` or `RPOP`.
        pop: &'static str,
        /// `LPUSH` or `RPUSH`.
        push: &'static str,
    },
    /// `SMOVE src dst m`: if `SISMEMBER src m`, `SADD dst m`, then (once confirmed) `SREM src m`.
    SetMove {
        /// Source set.
        src: Bytes,
        /// Destination set.
        dst: Bytes,
        /// Member.
        member: Bytes,
    },
    /// A command that writes `cmd[dst]` from source keys in other slots: every source is read
    /// (`DUMP`), then, in the destination's slot, copied to a temporary key (`RESTORE`), the
    /// command runs with the temporary names, the temporary keys are deleted.
    ViaTemp {
        /// The command.
        cmd: Args,
        /// Index of the destination key.
        dst: usize,
        /// Indexes of the source keys that live in another slot.
        sources: Vec<usize>,
    },
}

fn up(a: &[u8]) -> Vec<u8> {
    a.to_ascii_uppercase()
}

fn int(args: &Args, i: usize) -> Option<usize> {
    std::str::from_utf8(args.get(i)?).ok()?.parse().ok()
}

/// Splits `name k1 … kn` (step 1) or `name k1 v1 …` (step 2) / triples (step 3) per slot.
fn split_keys(args: &Args, step: usize) -> ClusterPlan {
    let items: Vec<&[Bytes]> = args[1..].chunks(step).collect();
    let Some(first) = items.first() else { return ClusterPlan::Broadcast };
    let s0 = key_slot(&first[0]);
    if items.iter().all(|c| key_slot(&c[0]) == s0) {
        return ClusterPlan::Route(first[0].clone());
    }
    let mut groups: Vec<(u16, Args)> = Vec::new();
    for c in items {
        let s = key_slot(&c[0]);
        match groups.iter_mut().find(|(gs, _)| *gs == s) {
            Some((_, a)) => a.extend(c.iter().cloned()),
            None => {
                let mut a = vec![args[0].clone()];
                a.extend(c.iter().cloned());
                groups.push((s, a));
            }
        }
    }
    ClusterPlan::Split(groups.into_iter().map(|(_, a)| a).collect())
}

fn via_temp(args: &Args, dst: usize, sources: Vec<usize>) -> ClusterPlan {
    let Some(d) = args.get(dst) else { return ClusterPlan::Route(args.get(1).cloned().unwrap_or_default()) };
    let ds = key_slot(d);
    let others: Vec<usize> = sources.into_iter().filter(|&i| args.get(i).is_some_and(|k| key_slot(k) != ds)).collect();
    if others.is_empty() {
        return ClusterPlan::Route(d.clone());
    }
    if temp_prefix(d).is_none() {
        return ClusterPlan::Unsupported(format!(
            "destination key {:?} has no usable hash tag",
            String::from_utf8_lossy(d)
        ));
    }
    ClusterPlan::Translate(Translation::ViaTemp { cmd: args.clone(), dst, sources: others })
}

/// `{tag}` of `key`, usable as the prefix of a temporary key in the same slot.
pub fn temp_prefix(key: &[u8]) -> Option<Bytes> {
    let tag = hash_tag(key);
    if tag.contains(&b'}') {
        return None;
    }
    let mut v = Vec::with_capacity(tag.len() + 2);
    v.push(b'{');
    v.extend_from_slice(tag);
    v.push(b'}');
    (key_slot(&v) == key_slot(key)).then(|| Bytes::from(v))
}

/// Plans `args` for a cluster.
pub fn plan(args: &Args) -> ClusterPlan {
    let Some(name) = args.first() else { return ClusterPlan::Broadcast };
    let name = up(name);
    let key = |i: usize| args.get(i).cloned();
    let route1 = || match key(1) {
        Some(k) => ClusterPlan::Route(k),
        None => ClusterPlan::Broadcast,
    };
    match name.as_slice() {
        b"FLUSHALL" | b"FLUSHDB" | b"SCRIPT" | b"FUNCTION" | b"PING" => ClusterPlan::Broadcast,
        b"DEL" | b"UNLINK" | b"TOUCH" | b"EXISTS" if args.len() > 2 => split_keys(args, 1),
        b"MSET" | b"MSETNX" if args.len() > 3 && args.len() % 2 == 1 => split_keys(args, 2),
        b"JSON.MSET" if args.len() > 4 && (args.len() - 1) % 3 == 0 => split_keys(args, 3),
        b"RENAME" | b"RENAMENX" if args.len() == 3 => {
            if key_slot(&args[1]) == key_slot(&args[2]) {
                route1()
            } else {
                ClusterPlan::Translate(Translation::Rename { src: args[1].clone(), dst: args[2].clone() })
            }
        }
        b"RPOPLPUSH" | b"BRPOPLPUSH" | b"LMOVE" | b"BLMOVE" if args.len() >= 3 => {
            if key_slot(&args[1]) == key_slot(&args[2]) {
                return route1();
            }
            let (from, to) = if name.ends_with(b"RPOPLPUSH") {
                (b"RIGHT".to_vec(), b"LEFT".to_vec())
            } else {
                match (args.get(3), args.get(4)) {
                    (Some(f), Some(t)) => (up(f), up(t)),
                    _ => return ClusterPlan::Unsupported("LMOVE without directions".into()),
                }
            };
            let pop = if from == b"LEFT" { "LPOP" } else { "RPOP" };
            let push = if to == b"LEFT" { "LPUSH" } else { "RPUSH" };
            ClusterPlan::Translate(Translation::ListMove { src: args[1].clone(), dst: args[2].clone(), pop, push })
        }
        b"SMOVE" if args.len() == 4 => {
            if key_slot(&args[1]) == key_slot(&args[2]) {
                route1()
            } else {
                ClusterPlan::Translate(Translation::SetMove {
                    src: args[1].clone(),
                    dst: args[2].clone(),
                    member: args[3].clone(),
                })
            }
        }
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" => match int(args, 2) {
            Some(n) if args.len() >= 3 + n => via_temp(args, 1, (3..3 + n).collect()),
            _ => route1(),
        },
        b"SUNIONSTORE" | b"SINTERSTORE" | b"SDIFFSTORE" | b"PFMERGE" => via_temp(args, 1, (2..args.len()).collect()),
        b"ZRANGESTORE" | b"GEOSEARCHSTORE" | b"COPY" if args.len() >= 3 => {
            if name == b"COPY" {
                via_temp(args, 2, vec![1])
            } else {
                via_temp(args, 1, vec![2])
            }
        }
        b"BITOP" if args.len() >= 4 => via_temp(args, 2, (3..args.len()).collect()),
        b"GEORADIUS" | b"GEORADIUSBYMEMBER" | b"SORT" => {
            let store = args.iter().position(|a| {
                let u = up(a);
                u == b"STORE" || u == b"STOREDIST"
            });
            match store {
                Some(i) if i + 1 < args.len() && i >= 2 => via_temp(args, i + 1, vec![1]),
                _ => route1(),
            }
        }
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let n = int(args, 2).unwrap_or(0);
            let keys: Vec<&Bytes> = args.iter().skip(3).take(n).collect();
            match keys.first() {
                None => ClusterPlan::Broadcast,
                Some(k0) if keys.iter().all(|k| key_slot(k) == key_slot(k0)) => ClusterPlan::Route((*k0).clone()),
                Some(_) => ClusterPlan::Unsupported("script over keys in several slots".into()),
            }
        }
        b"XGROUP" | b"XINFO" | b"OBJECT" => match key(2) {
            Some(k) => ClusterPlan::Route(k),
            None => ClusterPlan::Broadcast,
        },
        b"MOVE" | b"SWAPDB" | b"SELECT" => {
            ClusterPlan::Unsupported(format!("{} (a cluster has only db 0)", String::from_utf8_lossy(&name)))
        }
        _ => route1(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &[&str]) -> Args {
        s.iter().map(|x| Bytes::copy_from_slice(x.as_bytes())).collect()
    }

    #[test]
    fn splits_per_slot() {
        assert_eq!(plan(&a(&["DEL", "{x}1", "{x}2"])), ClusterPlan::Route(Bytes::from_static(b"{x}1")));
        let p = plan(&a(&["DEL", "foo", "bar", "{foo}2"]));
        assert_eq!(p, ClusterPlan::Split(vec![a(&["DEL", "foo", "{foo}2"]), a(&["DEL", "bar"])]));
        let p = plan(&a(&["MSET", "foo", "1", "bar", "2"]));
        assert_eq!(p, ClusterPlan::Split(vec![a(&["MSET", "foo", "1"]), a(&["MSET", "bar", "2"])]));
        assert_eq!(plan(&a(&["FLUSHALL"])), ClusterPlan::Broadcast);
        assert_eq!(plan(&a(&["SCRIPT", "LOAD", "x"])), ClusterPlan::Broadcast);
        assert_eq!(plan(&a(&["SET", "k", "v"])), ClusterPlan::Route(Bytes::from_static(b"k")));
        assert!(matches!(plan(&a(&["MOVE", "k", "1"])), ClusterPlan::Unsupported(_)));
    }

    #[test]
    fn translations() {
        assert_eq!(plan(&a(&["RENAME", "{a}1", "{a}2"])), ClusterPlan::Route(Bytes::from_static(b"{a}1")));
        assert_eq!(
            plan(&a(&["RENAME", "foo", "bar"])),
            ClusterPlan::Translate(Translation::Rename { src: "foo".into(), dst: "bar".into() })
        );
        assert_eq!(
            plan(&a(&["RPOPLPUSH", "foo", "bar"])),
            ClusterPlan::Translate(Translation::ListMove {
                src: "foo".into(),
                dst: "bar".into(),
                pop: "RPOP",
                push: "LPUSH"
            })
        );
        assert_eq!(
            plan(&a(&["LMOVE", "foo", "bar", "left", "RIGHT"])),
            ClusterPlan::Translate(Translation::ListMove {
                src: "foo".into(),
                dst: "bar".into(),
                pop: "LPOP",
                push: "RPUSH"
            })
        );
        assert!(matches!(plan(&a(&["SMOVE", "foo", "bar", "m"])), ClusterPlan::Translate(Translation::SetMove { .. })));
        assert_eq!(
            plan(&a(&["ZUNIONSTORE", "foo", "2", "foo", "bar", "WEIGHTS", "1", "2"])),
            ClusterPlan::Translate(Translation::ViaTemp {
                cmd: a(&["ZUNIONSTORE", "foo", "2", "foo", "bar", "WEIGHTS", "1", "2"]),
                dst: 1,
                sources: vec![4]
            })
        );
        assert_eq!(plan(&a(&["SUNIONSTORE", "{d}x", "{d}y"])), ClusterPlan::Route(Bytes::from_static(b"{d}x")));
        assert!(matches!(
            plan(&a(&["GEORADIUS", "src", "1", "2", "3", "km", "STORE", "dst"])),
            ClusterPlan::Translate(Translation::ViaTemp { dst: 7, .. })
        ));
        assert!(matches!(plan(&a(&["EVAL", "s", "2", "foo", "bar"])), ClusterPlan::Unsupported(_)));
        assert_eq!(plan(&a(&["EVAL", "s", "1", "foo", "x"])), ClusterPlan::Route(Bytes::from_static(b"foo")));
    }

    #[test]
    fn temp_prefixes_share_the_slot() {
        for k in ["plain", "{tag}rest", "a{b}c", "a{b"] {
            let p = temp_prefix(k.as_bytes()).unwrap();
            assert_eq!(key_slot(&p), key_slot(k.as_bytes()), "{k}");
        }
        assert_eq!(temp_prefix(b"a}b"), None);
        assert_eq!(temp_prefix(b"x{}y"), None);
    }
}
