//! Unit tests of the whole-value comparison.

use super::*;
use crate::verify::model::StreamEntry;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn st(ty: KeyType, pttl: i64, c: Content) -> KeyState {
    KeyState { ty: Some(ty), pttl: Some(pttl), len: Some(c.len()), value: ValueState::Whole(c) }
}

const FULL: CompareOptions = CompareOptions { ttl_tolerance_ms: 1000, values: true };

fn kinds(o: &Outcome) -> Vec<DiffKind> {
    o.diffs.iter().map(|d| d.0).collect()
}

#[test]
fn presence_and_type() {
    let s = st(KeyType::String, -1, Content::Str(b("a")));
    assert_eq!(kinds(&compare(&s, &KeyState::MISSING, FULL)), [DiffKind::MissingOnTarget]);
    assert_eq!(kinds(&compare(&KeyState::MISSING, &s, FULL)), [DiffKind::ExtraOnTarget]);
    assert!(compare(&KeyState::MISSING, &KeyState::MISSING, FULL).diffs.is_empty());
    let l = st(KeyType::List, -1, Content::List(vec![b("a")]));
    assert_eq!(kinds(&compare(&s, &l, FULL)), [DiffKind::Type]);
    assert!(compare(&s, &s, FULL).diffs.is_empty());
}

#[test]
fn ttl_rules() {
    let c = || Content::Str(b("v"));
    let k = |p| st(KeyType::String, p, c());
    assert!(compare(&k(-1), &k(-1), FULL).diffs.is_empty());
    assert!(compare(&k(50_000), &k(49_500), FULL).diffs.is_empty());
    assert_eq!(kinds(&compare(&k(50_000), &k(45_000), FULL)), [DiffKind::Ttl]);
    assert_eq!(kinds(&compare(&k(-1), &k(45_000), FULL)), [DiffKind::Ttl]);
    assert_eq!(kinds(&compare(&k(45_000), &k(-1), FULL)), [DiffKind::Ttl]);
    // TTL and value both differ: both reported
    let other = st(KeyType::String, -1, Content::Str(b("w")));
    assert_eq!(kinds(&compare(&k(5000), &other, FULL)), [DiffKind::Ttl, DiffKind::Value]);
}

#[test]
fn element_changes_in_every_type() {
    let cases: Vec<(KeyType, Content, Content, &str)> = vec![
        (KeyType::String, Content::Str(b("hello")), Content::Str(b("help!")), "byte 3"),
        (KeyType::List, Content::List(vec![b("a"), b("b")]), Content::List(vec![b("b"), b("a")]), "index 0"),
        (
            KeyType::Set,
            Content::Set(vec![b("a"), b("b")]),
            Content::Set(vec![b("a"), b("c")]),
            "member \"b\" only on source",
        ),
        (
            KeyType::Hash,
            Content::Hash(vec![(b("f"), b("1")), (b("g"), b("2"))]),
            Content::Hash(vec![(b("f"), b("1")), (b("g"), b("3"))]),
            "field \"g\": source \"2\", target \"3\"",
        ),
        (KeyType::Zset, Content::Zset(vec![(b("m"), 1.0)]), Content::Zset(vec![(b("m"), 1.5)]), "rank 0"),
        (
            KeyType::Stream,
            Content::Stream(vec![StreamEntry { ms: 1, seq: 0, fields: vec![b("f"), b("v")] }]),
            Content::Stream(vec![StreamEntry { ms: 1, seq: 0, fields: vec![b("f"), b("w")] }]),
            "entry 0: source 1-0",
        ),
    ];
    for (ty, a, bb, want) in cases {
        let o = compare(&st(ty, -1, a.clone()), &st(ty, -1, bb), FULL);
        assert_eq!(kinds(&o), [DiffKind::Value], "{ty}");
        let detail = o.diffs[0].1.clone().unwrap();
        assert!(detail.contains(want), "{ty}: {detail}");
        assert!(compare(&st(ty, -1, a.clone()), &st(ty, -1, a), FULL).diffs.is_empty());
    }
}

#[test]
fn length_beats_value_and_big_needs_chunks() {
    let a = st(KeyType::Set, -1, Content::Set(vec![b("a"), b("b")]));
    let c = st(KeyType::Set, -1, Content::Set(vec![b("a")]));
    assert_eq!(kinds(&compare(&a, &c, FULL)), [DiffKind::Length]);
    let big = KeyState { value: ValueState::Big, ..a.clone() };
    let o = compare(&big, &a, FULL);
    assert!(o.diffs.is_empty() && o.needs_chunks);
    let meta = CompareOptions { values: false, ..FULL };
    let o = compare(&big, &big, meta);
    assert!(o.diffs.is_empty() && !o.needs_chunks);
}

#[test]
fn preview_is_bounded() {
    let long = vec![b'x'; 1000];
    let p = preview(&long);
    assert!(p.len() < 80 && p.contains("1000 bytes"), "{p}");
}
