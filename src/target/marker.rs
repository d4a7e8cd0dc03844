//! Per-slot LSN markers of a cluster target (pure: keys, tags, grouping; no I/O).
//!
//! A standalone target records the applied position inside each batch's `MULTI … EXEC`; a
//! cluster cannot run one transaction across slots, so the position is kept per slot instead:
//! every slot written in stable sync gets one hash, `<base>:{<tag>}` whose hash tag puts it in
//! that slot, with one field per flow holding the next LSN not yet applied on that slot. A
//! flow's commands for one slot in one batch travel as one `MULTI … HSET <marker> <flow> <lsn>
//! EXEC`, so the data and its position change together on the slot's master and reach its
//! replicas together. After a crash, a lost connection or a failover, the session resumes from
//! the checkpoint and skips, slot by slot, every unit whose record the slot already holds:
//! nothing is applied twice and nothing is lost.
//!
//! `FLUSHALL`/`FLUSHDB` (no slot) are recorded in `<base>:flush` once applied.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::node::{Part, Unit};
use super::route::{key_slot, SLOTS};

/// For every slot, a short tag whose CRC16 falls in it (`{tag}` routes a key to that slot).
pub fn slot_tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut tags: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
        let mut left = usize::from(SLOTS);
        let mut len = 1u32;
        while left > 0 {
            let total = ALPHABET.len().pow(len);
            for mut i in 0..total {
                let mut s = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    s.push(ALPHABET[i % ALPHABET.len()]);
                    i /= ALPHABET.len();
                }
                let slot = usize::from(key_slot(&s));
                if tags[slot].is_none() {
                    tags[slot] = Some(String::from_utf8_lossy(&s).into_owned());
                    left -= 1;
                }
            }
            len += 1;
        }
        tags.into_iter().map(Option::unwrap_or_default).collect()
    })
}

/// The marker keys of one task (all 16384 built once).
#[derive(Debug, Clone)]
pub struct SlotMarkers {
    keys: Arc<Vec<Bytes>>,
    flush: Bytes,
}

impl SlotMarkers {
    /// Markers under `base` (the task's marker key; braces in it are replaced so that only the
    /// slot tag is a hash tag).
    pub fn new(base: &[u8]) -> SlotMarkers {
        let base = String::from_utf8_lossy(base).replace(['{', '}'], "_");
        let keys = slot_tags().iter().map(|t| Bytes::from(format!("{base}:{{{t}}}"))).collect();
        SlotMarkers { keys: Arc::new(keys), flush: Bytes::from(format!("{base}:flush")) }
    }

    /// The marker hash of `slot`.
    pub fn key(&self, slot: u16) -> Bytes {
        self.keys[usize::from(slot) % self.keys.len()].clone()
    }

    /// The hash that records applied `FLUSHALL`/`FLUSHDB` records (field per flow).
    pub fn flush_key(&self) -> Bytes {
        self.flush.clone()
    }
}

/// A flow's units for one slot, waiting to be sent as one marked transaction.
#[derive(Debug, Default)]
pub struct Group {
    /// The units, in order.
    pub units: Vec<Unit>,
    /// Highest LSN among them.
    pub max_lsn: u64,
}

fn is(name: Option<&Bytes>, what: &[u8]) -> bool {
    name.is_some_and(|n| n.eq_ignore_ascii_case(what))
}

/// Turns `g` into one marked transaction for `slot`: `MULTI`, every unit's commands (a unit
/// that is itself a `MULTI … EXEC` group contributes its body), `HSET <marker> <flow>
/// <max_lsn + 1>`, `EXEC`; and where each unit sits in it.
pub fn group_commands(markers: &SlotMarkers, slot: u16, flow: &Bytes, g: Group) -> (Vec<Vec<Bytes>>, Vec<Part>) {
    let mut cmds = Vec::with_capacity(g.units.iter().map(|u| u.cmds.len()).sum::<usize>() + 3);
    let mut parts = Vec::with_capacity(g.units.len());
    cmds.push(vec![Bytes::from_static(b"MULTI")]);
    for u in g.units {
        let group = u.cmds.len() >= 2
            && is(u.cmds.first().and_then(|c| c.first()), b"MULTI")
            && is(u.cmds.last().and_then(|c| c.first()), b"EXEC");
        let mut body = u.cmds;
        if group {
            body.pop();
            body.remove(0);
        }
        parts.push(Part { seq: u.seq, lsn: u.lsn, start: cmds.len(), len: body.len(), group });
        cmds.extend(body);
    }
    cmds.push(vec![
        Bytes::from_static(b"HSET"),
        markers.key(slot),
        flow.clone(),
        Bytes::from((g.max_lsn + 1).to_string()),
    ]);
    cmds.push(vec![Bytes::from_static(b"EXEC")]);
    (cmds, parts)
}

/// The units a marked transaction `u` carries, rebuilt from its commands (for a resend one by
/// one).
pub fn ungroup(u: &Unit) -> Vec<Unit> {
    u.parts
        .iter()
        .map(|p| {
            let body = u.cmds.get(p.start..p.start + p.len).unwrap_or_default();
            let mut cmds = Vec::with_capacity(body.len() + 2);
            if p.group {
                cmds.push(vec![Bytes::from_static(b"MULTI")]);
            }
            cmds.extend(body.iter().cloned());
            if p.group {
                cmds.push(vec![Bytes::from_static(b"EXEC")]);
            }
            let mut unit = Unit::data(p.seq, cmds, u.slot);
            unit.lsn = p.lsn;
            unit
        })
        .collect()
}

/// A flow's resume positions read from the markers: per slot, the next LSN not applied there.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Per slot (16384 entries).
    pub slots: Vec<u64>,
    /// Next LSN after the last `FLUSHALL`/`FLUSHDB` applied, per flow.
    pub flush: Vec<u64>,
}

impl Default for Applied {
    fn default() -> Self {
        Applied { slots: vec![0; usize::from(SLOTS)], flush: Vec::new() }
    }
}

impl Applied {
    /// Whether the record at `lsn` is already applied on `slot`.
    pub fn holds(&self, slot: u16, lsn: u64) -> bool {
        self.slots.get(usize::from(slot)).is_some_and(|n| lsn < *n)
    }

    /// Whether the global command every flow reached at `next` (per flow: the LSN after it) is
    /// already applied.
    pub fn flushed(&self, next: &[u64]) -> bool {
        !next.is_empty() && next.len() == self.flush.len() && next.iter().zip(&self.flush).all(|(n, f)| n <= f)
    }
}

/// Parses an integer reply text (marker field).
pub fn parse_lsn(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_tag_that_routes_to_it() {
        let tags = slot_tags();
        assert_eq!(tags.len(), 16384);
        let m = SlotMarkers::new(b"df2redis:lsn:task{x}");
        for (s, t) in tags.iter().enumerate() {
            assert!(!t.is_empty() && t.len() <= 4, "slot {s}: {t:?}");
            let slot = u16::try_from(s).unwrap();
            assert_eq!(key_slot(&m.key(slot)), slot, "{:?}", m.key(slot));
        }
        assert_eq!(&m.key(0)[..20], b"df2redis:lsn:task_x_");
    }

    #[test]
    fn a_group_is_one_marked_transaction() {
        let m = SlotMarkers::new(b"df2redis:lsn:t");
        let b = |s: &str| Bytes::from(s.to_owned());
        let g = Group {
            units: vec![
                Unit::data(1, vec![vec![b("SET"), b("a"), b("1")]], Some(7)),
                Unit::data(2, vec![vec![b("MULTI")], vec![b("INCR"), b("a")], vec![b("EXEC")]], Some(7)),
            ],
            max_lsn: 41,
        };
        let originals: Vec<Vec<Vec<Bytes>>> = g.units.iter().map(|u| u.cmds.clone()).collect();
        let (cmds, parts) = group_commands(&m, 7, &b("3"), g);
        let names: Vec<&[u8]> = cmds.iter().map(|c| &c[0][..]).collect();
        assert_eq!(names, [&b"MULTI"[..], b"SET", b"INCR", b"HSET", b"EXEC"]);
        assert_eq!(cmds[3][1], m.key(7));
        assert_eq!(cmds[3][2..], [b("3"), b("42")]);
        // Unbundled for a resend, the units are the originals again.
        let mut u = Unit::data(1, cmds, Some(7));
        u.parts = parts;
        let back = ungroup(&u);
        assert_eq!(back.iter().map(|u| u.cmds.clone()).collect::<Vec<_>>(), originals);
        assert_eq!(back.iter().map(|u| u.seq).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn applied_positions() {
        let mut a = Applied::default();
        a.slots[5] = 10;
        assert!(a.holds(5, 9));
        assert!(!a.holds(5, 10));
        assert!(!a.holds(6, 0));
        a.flush = vec![8, 4];
        assert!(a.flushed(&[8, 3]));
        assert!(!a.flushed(&[9, 3]));
        assert!(!a.flushed(&[8]));
    }
}
