//! Comparison of values too big to read whole. Ordered types (string, list, zset, stream) are
//! read from both sides in lockstep pieces and compared piece by piece, so the first differing
//! element is found directly. Sets and hashes are scanned on each side into order-independent
//! digests; when the digests differ, point lookups (HMGET / SMISMEMBER) locate the first
//! differing element — and settle the case where SCAN returned an element twice.

use super::diff::{first_difference_at, preview, DiffKind};
use super::digest::Digest;
use super::model::{Content, KeyType};
use super::store::{Pos, Store, StoreError};
use bytes::Bytes;

/// Compares one big key of type `ty` on both sides; `None` = equal.
pub async fn compare<S: Store, T: Store>(
    src: &S,
    tgt: &T,
    db: u32,
    key: &Bytes,
    ty: KeyType,
    chunk: u64,
) -> Result<Option<(DiffKind, String)>, StoreError> {
    match ty {
        KeyType::Set | KeyType::Hash => unordered(src, tgt, db, key, ty, chunk).await,
        KeyType::Other => Ok(None),
        _ => ordered(src, tgt, db, key, ty, chunk).await,
    }
}

async fn ordered<S: Store, T: Store>(
    src: &S,
    tgt: &T,
    db: u32,
    key: &Bytes,
    ty: KeyType,
    chunk: u64,
) -> Result<Option<(DiffKind, String)>, StoreError> {
    let chunk = if ty == KeyType::String { chunk.saturating_mul(64).max(1) } else { chunk.max(1) };
    let (mut ps, mut pt) = (Some(Pos::start(ty)), Some(Pos::start(ty)));
    let mut offset = 0u64;
    loop {
        let (a, b) = match (ps, pt) {
            (None, None) => return Ok(None),
            (Some(x), Some(y)) => {
                let (a, b) = tokio::join!(src.piece(db, key, ty, x, chunk), tgt.piece(db, key, ty, y, chunk));
                (a?, b?)
            }
            (Some(_), None) => return Ok(Some((DiffKind::Length, format!("target ends at element {offset}")))),
            (None, Some(_)) => return Ok(Some((DiffKind::Length, format!("source ends at element {offset}")))),
        };
        if let Some(d) = first_difference_at(&a.content, &b.content, offset) {
            // A shorter piece on one side with the other continuing is a length difference.
            let kind = if a.content.len() != b.content.len() && (a.next.is_none() || b.next.is_none()) {
                DiffKind::Length
            } else {
                DiffKind::Value
            };
            return Ok(Some((kind, d)));
        }
        offset += a.content.len();
        if a.content.is_empty() && a.next.is_some() && b.next.is_some() {
            // Defensive: a server that returns empty pieces forever must not loop forever.
            return Err(StoreError::Reply {
                side: "source",
                command: "range read".into(),
                reply: "empty piece with more to come".into(),
            });
        }
        ps = a.next;
        pt = b.next;
    }
}

async fn digest_of<S: Store>(s: &S, db: u32, key: &Bytes, ty: KeyType, chunk: u64) -> Result<Digest, StoreError> {
    let mut d = Digest::default();
    let mut pos = Some(Pos::start(ty));
    while let Some(p) = pos {
        let piece = s.piece(db, key, ty, p, chunk).await?;
        d.extend(&piece.content, 0);
        pos = piece.next;
    }
    Ok(d)
}

/// Scans `from` and looks each piece up in `other`; returns the first element of `from` that
/// `other` lacks or holds with another value.
async fn locate<A: Store, B: Store>(
    from: &A,
    other: &B,
    db: u32,
    key: &Bytes,
    ty: KeyType,
    chunk: u64,
    from_is_source: bool,
) -> Result<Option<String>, StoreError> {
    let mut pos = Some(Pos::start(ty));
    let here = if from_is_source { "source" } else { "target" };
    while let Some(p) = pos {
        let piece = from.piece(db, key, ty, p, chunk).await?;
        pos = piece.next;
        let (names, values): (Vec<Bytes>, Vec<Option<Bytes>>) = match piece.content {
            Content::Hash(v) => v.into_iter().map(|(f, x)| (f, Some(x))).unzip(),
            Content::Set(v) => v.into_iter().map(|m| (m, None)).unzip(),
            _ => continue,
        };
        let found = other.lookup(db, key, ty, &names).await?;
        for ((name, mine), theirs) in names.iter().zip(values).zip(found) {
            let what = if ty == KeyType::Hash { "field" } else { "member" };
            match (mine, theirs) {
                (_, None) => return Ok(Some(format!("{what} {} only on {here}", preview(name)))),
                (Some(m), Some(t)) if m != t => {
                    let (s, g) = if from_is_source { (m, t) } else { (t, m) };
                    return Ok(Some(format!(
                        "{what} {}: source {}, target {}",
                        preview(name),
                        preview(&s),
                        preview(&g)
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(None)
}

async fn unordered<S: Store, T: Store>(
    src: &S,
    tgt: &T,
    db: u32,
    key: &Bytes,
    ty: KeyType,
    chunk: u64,
) -> Result<Option<(DiffKind, String)>, StoreError> {
    let (a, b) = tokio::join!(digest_of(src, db, key, ty, chunk), digest_of(tgt, db, key, ty, chunk));
    if a? == b? {
        return Ok(None);
    }
    if let Some(d) = locate(src, tgt, db, key, ty, chunk, true).await? {
        return Ok(Some((DiffKind::Value, d)));
    }
    if let Some(d) = locate(tgt, src, db, key, ty, chunk, false).await? {
        return Ok(Some((DiffKind::Value, d)));
    }
    // Digests differed only because a scan returned some element twice: the values are equal.
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::fake::MemStore;
    use crate::verify::model::StreamEntry;

    fn b(s: String) -> Bytes {
        Bytes::from(s)
    }

    fn pair(n: usize, changed: Option<usize>) -> (MemStore, MemStore) {
        let (s, t) = (MemStore::default(), MemStore::default());
        let h = |c: Option<usize>| {
            Content::Hash(
                (0..n)
                    .map(|i| (b(format!("f{i}")), b(format!("v{i}{}", if Some(i) == c { "!" } else { "" }))))
                    .collect(),
            )
        };
        s.put(0, "h", h(None), -1);
        t.put(0, "h", h(changed), -1);
        let l = |c: Option<usize>| {
            Content::List((0..n).map(|i| b(format!("e{}", if Some(i) == c { n + 1 } else { i }))).collect())
        };
        s.put(0, "l", l(None), -1);
        t.put(0, "l", l(changed), -1);
        let st = |c: Option<usize>| {
            Content::Set((0..n).map(|i| b(format!("m{}", if Some(i) == c { n + 1 } else { i }))).collect())
        };
        s.put(0, "s", st(None), -1);
        t.put(0, "s", st(changed), -1);
        let z = |c: Option<usize>| {
            Content::Zset((0..n).map(|i| (b(format!("z{i:06}")), if Some(i) == c { 0.5 } else { i as f64 })).collect())
        };
        s.put(0, "z", z(None), -1);
        t.put(0, "z", z(changed), -1);
        let x = |c: Option<usize>| {
            Content::Stream(
                (0..n)
                    .map(|i| StreamEntry {
                        ms: i as u64 + 1,
                        seq: 0,
                        fields: vec![b("f".into()), b(format!("{}", if Some(i) == c { 0 } else { i }))],
                    })
                    .collect(),
            )
        };
        s.put(0, "x", x(None), -1);
        t.put(0, "x", x(changed), -1);
        s.put(0, "str", Content::Str(Bytes::from(vec![b'a'; n * 70])), -1);
        let mut v = vec![b'a'; n * 70];
        if let Some(c) = changed {
            v[c * 70] = b'b';
        }
        t.put(0, "str", Content::Str(Bytes::from(v)), -1);
        (s, t)
    }

    #[tokio::test]
    async fn equal_big_values_are_equal_and_one_change_deep_inside_is_found() {
        let (s, t) = pair(1000, None);
        for (k, ty) in [
            ("h", KeyType::Hash),
            ("l", KeyType::List),
            ("s", KeyType::Set),
            ("z", KeyType::Zset),
            ("x", KeyType::Stream),
            ("str", KeyType::String),
        ] {
            let key = Bytes::from(k);
            assert_eq!(compare(&s, &t, 0, &key, ty, 64).await.unwrap(), None, "{k}");
        }
        let (s, t) = pair(1000, Some(777));
        for (k, ty, want) in [
            ("h", KeyType::Hash, "field \"f777\": source \"v777\", target \"v777!\""),
            ("l", KeyType::List, "index 777"),
            ("s", KeyType::Set, "member \"m777\" only on source"),
            ("z", KeyType::Zset, "rank"),
            ("x", KeyType::Stream, "entry 777"),
            ("str", KeyType::String, "byte 54390"),
        ] {
            let key = Bytes::from(k);
            let (kind, detail) = compare(&s, &t, 0, &key, ty, 64).await.unwrap().expect(k);
            assert_eq!(kind, DiffKind::Value, "{k}");
            assert!(detail.contains(want), "{k}: {detail}");
        }
    }

    #[tokio::test]
    async fn shorter_side_is_a_length_difference() {
        let (s, t) = (MemStore::default(), MemStore::default());
        s.put(0, "l", Content::List((0..100).map(|i| b(format!("{i}"))).collect()), -1);
        t.put(0, "l", Content::List((0..99).map(|i| b(format!("{i}"))).collect()), -1);
        let r = compare(&s, &t, 0, &Bytes::from("l"), KeyType::List, 10).await.unwrap().unwrap();
        assert_eq!(r.0, DiffKind::Length, "{r:?}");
        s.put(0, "s", Content::Set((0..100).map(|i| b(format!("{i}"))).collect()), -1);
        t.put(0, "s", Content::Set((1..101).map(|i| b(format!("{i}"))).collect()), -1);
        let r = compare(&s, &t, 0, &Bytes::from("s"), KeyType::Set, 10).await.unwrap().unwrap();
        assert!(r.1.contains("member \"0\" only on source"), "{r:?}");
    }
}
