//! The difference model (kinds, per-side summaries) and the comparison of two [`KeyState`]s read
//! whole; big values are handed to [`super::bigkey`].

use super::digest::{score_bits, Digest};
use super::model::{Content, KeyState, KeyType, ValueState};
use bytes::Bytes;
use serde::Serialize;
use std::cmp::Ordering;

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// On the source, not on the target.
    MissingOnTarget,
    /// On the target, not on the source.
    ExtraOnTarget,
    /// Both exist with different types.
    Type,
    /// Same type, different length / cardinality.
    Length,
    /// Same type and length, different content.
    Value,
    /// TTL present on one side only, or different beyond the tolerance.
    Ttl,
}

impl DiffKind {
    /// Every kind, in report order.
    pub const ALL: [DiffKind; 6] = [
        DiffKind::MissingOnTarget,
        DiffKind::ExtraOnTarget,
        DiffKind::Type,
        DiffKind::Length,
        DiffKind::Value,
        DiffKind::Ttl,
    ];

    /// The snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            DiffKind::MissingOnTarget => "missing_on_target",
            DiffKind::ExtraOnTarget => "extra_on_target",
            DiffKind::Type => "type",
            DiffKind::Length => "length",
            DiffKind::Value => "value",
            DiffKind::Ttl => "ttl",
        }
    }
}

/// A short description of one side of a key, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Type, `None` = missing.
    #[serde(rename = "type")]
    pub ty: Option<KeyType>,
    /// PTTL in ms (-1 = no TTL), when read.
    pub ttl_ms: Option<i64>,
    /// Length / cardinality, when read.
    pub len: Option<u64>,
    /// Value digest (hex), when the value was read whole.
    pub digest: Option<String>,
}

impl Summary {
    /// Summarizes a key state.
    pub fn of(s: &KeyState) -> Summary {
        Summary {
            ty: s.ty,
            ttl_ms: s.pttl,
            len: s.len,
            digest: match &s.value {
                ValueState::Whole(c) => Some(Digest::of(c, 0).hex()),
                _ => None,
            },
        }
    }
}

/// One difference of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Database index.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// What differs.
    pub kind: DiffKind,
    /// Source side.
    pub source: Summary,
    /// Target side.
    pub target: Summary,
    /// Human detail: the first differing element, the TTL values...
    pub detail: Option<String>,
}

/// Comparison settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareOptions {
    /// TTL differences up to this many ms are equal.
    pub ttl_tolerance_ms: i64,
    /// Compare values (false in smart mode for big keys, and in keys/meta modes).
    pub values: bool,
}

/// Result of comparing two states: differences found, and whether the values still need a
/// chunked comparison (at least one side is big, and nothing cheaper already differs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// (kind, detail) pairs.
    pub diffs: Vec<(DiffKind, Option<String>)>,
    /// Values must be compared chunk by chunk.
    pub needs_chunks: bool,
}

/// A printable, bounded preview of bytes.
pub fn preview(b: &[u8]) -> String {
    const MAX: usize = 48;
    let s = String::from_utf8_lossy(&b[..b.len().min(MAX)]);
    let mut out = format!("{s:?}");
    if b.len() > MAX {
        out.push_str(&format!("…({} bytes)", b.len()));
    }
    out
}

/// Compares two keys' states.
pub fn compare(src: &KeyState, tgt: &KeyState, opts: CompareOptions) -> Outcome {
    let mut out = Outcome::default();
    let (st, tt) = match (src.ty, tgt.ty) {
        (None, None) => return out,
        (Some(_), None) => {
            out.diffs.push((DiffKind::MissingOnTarget, None));
            return out;
        }
        (None, Some(_)) => {
            out.diffs.push((DiffKind::ExtraOnTarget, None));
            return out;
        }
        (Some(a), Some(b)) => (a, b),
    };
    if st != tt {
        out.diffs.push((DiffKind::Type, Some(format!("source {st}, target {tt}"))));
        return out;
    }
    if let Some(d) = ttl_diff(src.pttl, tgt.pttl, opts.ttl_tolerance_ms) {
        out.diffs.push((DiffKind::Ttl, Some(d)));
    }
    if let (Some(a), Some(b)) = (src.len, tgt.len) {
        if a != b {
            out.diffs.push((DiffKind::Length, Some(format!("source {a}, target {b}"))));
            return out;
        }
    }
    if !opts.values {
        return out;
    }
    match (&src.value, &tgt.value) {
        (ValueState::Whole(a), ValueState::Whole(b)) => {
            if let Some(detail) = first_difference(a, b) {
                let kind = if a.len() != b.len() { DiffKind::Length } else { DiffKind::Value };
                out.diffs.push((kind, Some(detail)));
            }
        }
        (ValueState::Big, _) | (_, ValueState::Big) => out.needs_chunks = true,
        _ => {}
    }
    out
}

/// Describes a TTL difference, if any beyond `tol` ms.
pub fn ttl_diff(src: Option<i64>, tgt: Option<i64>, tol: i64) -> Option<String> {
    let (a, b) = (src?, tgt?);
    match (a < 0, b < 0) {
        (true, true) => None,
        (true, false) => Some(format!("no TTL on source, {b} ms on target")),
        (false, true) => Some(format!("{a} ms on source, no TTL on target")),
        (false, false) if a.abs_diff(b) > tol.unsigned_abs() => {
            Some(format!("source {a} ms, target {b} ms (tolerance {tol} ms)"))
        }
        _ => None,
    }
}

fn scores_equal(a: f64, b: f64) -> bool {
    score_bits(a) == score_bits(b)
}

/// Describes the first difference between two values of the same type (`None` = equal).
/// `offset` is added to positions (for chunks of big values).
pub fn first_difference_at(a: &Content, b: &Content, offset: u64) -> Option<String> {
    match (a, b) {
        (Content::Str(x), Content::Str(y)) => {
            if x == y {
                return None;
            }
            let i = x.iter().zip(y.iter()).take_while(|(p, q)| p == q).count();
            let at = |s: &Bytes| preview(s.get(i..).unwrap_or_default());
            Some(format!("first difference at byte {}: source {}, target {}", offset + i as u64, at(x), at(y)))
        }
        (Content::List(x), Content::List(y)) => {
            let i = x.iter().zip(y.iter()).take_while(|(p, q)| p == q).count();
            if i == x.len() && i == y.len() {
                return None;
            }
            let el = |v: &Vec<Bytes>| v.get(i).map(|e| preview(e)).unwrap_or_else(|| "(end)".into());
            Some(format!("index {}: source {}, target {}", offset + i as u64, el(x), el(y)))
        }
        (Content::Set(x), Content::Set(y)) => {
            merge_first(x, y, |m| m, |m| format!("member {}", preview(m)), |_, _| None)
        }
        (Content::Hash(x), Content::Hash(y)) => merge_first(
            x,
            y,
            |p| &p.0,
            |p| format!("field {}", preview(&p.0)),
            |p, q| {
                (p.1 != q.1)
                    .then(|| format!("field {}: source {}, target {}", preview(&p.0), preview(&p.1), preview(&q.1)))
            },
        ),
        (Content::Zset(x), Content::Zset(y)) => {
            let i = x.iter().zip(y.iter()).take_while(|(p, q)| p.0 == q.0 && scores_equal(p.1, q.1)).count();
            if i == x.len() && i == y.len() {
                return None;
            }
            let el = |v: &Vec<(Bytes, f64)>| {
                v.get(i).map(|(m, s)| format!("{} (score {s})", preview(m))).unwrap_or_else(|| "(end)".into())
            };
            Some(format!("rank {}: source {}, target {}", offset + i as u64, el(x), el(y)))
        }
        (Content::Stream(x), Content::Stream(y)) => {
            let i = x.iter().zip(y.iter()).take_while(|(p, q)| p == q).count();
            if i == x.len() && i == y.len() {
                return None;
            }
            let el = |v: &Vec<super::model::StreamEntry>| {
                v.get(i)
                    .map(|e| {
                        let f: Vec<String> = e.fields.iter().take(6).map(|f| preview(f)).collect();
                        format!("{} [{}]", e.id_text(), f.join(" "))
                    })
                    .unwrap_or_else(|| "(end)".into())
            };
            Some(format!("entry {}: source {}, target {}", offset + i as u64, el(x), el(y)))
        }
        _ => Some("values of different types".to_string()),
    }
}

/// [`first_difference_at`] with offset 0.
pub fn first_difference(a: &Content, b: &Content) -> Option<String> {
    first_difference_at(a, b, 0)
}

/// Walks two sorted lists; reports the first key present on one side only, or the first pair
/// whose `same` check fails.
fn merge_first<T>(
    x: &[T],
    y: &[T],
    key: impl Fn(&T) -> &Bytes,
    name: impl Fn(&T) -> String,
    same: impl Fn(&T, &T) -> Option<String>,
) -> Option<String> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (x.get(i), y.get(j)) {
            (None, None) => return None,
            (Some(a), None) => return Some(format!("{} only on source", name(a))),
            (None, Some(b)) => return Some(format!("{} only on target", name(b))),
            (Some(a), Some(b)) => match key(a).cmp(key(b)) {
                Ordering::Less => return Some(format!("{} only on source", name(a))),
                Ordering::Greater => return Some(format!("{} only on target", name(b))),
                Ordering::Equal => {
                    if let Some(d) = same(a, b) {
                        return Some(d);
                    }
                    i += 1;
                    j += 1;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
