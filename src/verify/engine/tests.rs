//! Engine tests on in-memory stores: every kind of difference, both directions, filters, limits.

use super::*;
use crate::verify::fake::MemStore;
use crate::verify::model::Content;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn engine(s: MemStore, t: MemStore, cfg: Settings) -> Engine<MemStore, MemStore> {
    Engine::new(Arc::new(s), Arc::new(t), cfg, Progress::hidden())
}

fn both(f: impl Fn(&MemStore)) -> (MemStore, MemStore) {
    let (s, t) = (MemStore::default(), MemStore::default());
    f(&s);
    f(&t);
    (s, t)
}

fn seed(m: &MemStore) {
    for i in 0..500 {
        m.put(0, &format!("k{i}"), Content::Str(b(&format!("v{i}"))), -1);
    }
    m.put(0, "list", Content::List(vec![b("a"), b("b"), b("c")]), -1);
    m.put(0, "hash", Content::Hash(vec![(b("f"), b("1")), (b("g"), b("2"))]), 60_000);
    m.put(0, "set", Content::Set(vec![b("x"), b("y")]), -1);
    m.put(0, "zset", Content::Zset(vec![(b("m"), 1.0), (b("n"), 2.0)]), -1);
    m.put(3, "db3", Content::Str(b("x")), -1);
    m.put(0, "bighash", Content::Hash((0..5000).map(|i| (b(&format!("f{i}")), b("v"))).collect()), -1);
}

#[tokio::test]
async fn equal_data_has_no_differences_in_any_mode() {
    for depth in [Depth::Keys, Depth::Meta, Depth::Full] {
        let (s, t) = both(seed);
        let e = engine(s, t, Settings { depth, batch: 64, ..Settings::default() });
        assert_eq!(e.pass().await.unwrap(), vec![], "{depth:?}");
        assert_eq!(e.stats.source_keys.load(Ordering::Relaxed), 506);
        assert_eq!(e.stats.target_keys.load(Ordering::Relaxed), 506);
    }
}

#[tokio::test]
async fn every_kind_is_found_and_classified() {
    let (s, t) = both(seed);
    t.del(0, "k1"); // missing
    t.put(0, "extra", Content::Str(b("e")), -1); // extra
    t.put(0, "df2redis:lsn:task", Content::Hash(vec![(b("master"), b("m"))]), -1); // replicate's marker: not extra
    t.put(0, "k2", Content::List(vec![b("v2")]), -1); // type
    t.put(0, "k3", Content::Str(b("V3")), -1); // value
    t.put(0, "k4", Content::Str(b("v4")), 120_000); // ttl
    t.put(0, "list", Content::List(vec![b("a"), b("c"), b("b")]), -1); // value (order)
    t.put(0, "set", Content::Set(vec![b("x")]), -1); // length
    let mut big: Vec<(Bytes, Bytes)> = (0..5000).map(|i| (b(&format!("f{i}")), b("v"))).collect();
    big[4321].1 = b("changed");
    t.put(0, "bighash", Content::Hash(big), -1); // value in a big key
    let e = engine(s, t, Settings { big_threshold: 100, chunk: 250, ..Settings::default() });
    let d = e.pass().await.unwrap();
    let got: Vec<(&[u8], DiffKind)> = d.iter().map(|x| (&x.key[..], x.kind)).collect();
    assert_eq!(
        got,
        vec![
            (&b"bighash"[..], DiffKind::Value),
            (b"extra", DiffKind::ExtraOnTarget),
            (b"k1", DiffKind::MissingOnTarget),
            (b"k2", DiffKind::Type),
            (b"k3", DiffKind::Value),
            (b"k4", DiffKind::Ttl),
            (b"list", DiffKind::Value),
            (b"set", DiffKind::Length),
        ]
    );
    assert!(d[0].detail.as_deref().unwrap().contains("f4321"), "{:?}", d[0].detail);
    assert_eq!(e.stats.big_keys.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn modes_limit_what_is_compared() {
    let (s, t) = both(seed);
    t.put(0, "k3", Content::Str(b("V3")), -1); // value only: invisible to keys/meta
    t.put(0, "k4", Content::Str(b("v4")), 120_000); // ttl: invisible to keys
    t.put(0, "k5", Content::Str(b("longer")), -1); // length: visible from meta
    let (s2, t2) = (MemStore::default(), MemStore::default());
    for (src, dst) in [(&s, &s2), (&t, &t2)] {
        *dst.data.lock().unwrap() = src.data.lock().unwrap().clone();
    }
    let kinds = |d: Vec<Diff>| d.into_iter().map(|x| x.kind).collect::<Vec<_>>();
    let e = engine(s, t, Settings { depth: Depth::Keys, ..Settings::default() });
    assert_eq!(kinds(e.pass().await.unwrap()), vec![]);
    let e = engine(s2, t2, Settings { depth: Depth::Meta, ..Settings::default() });
    assert_eq!(kinds(e.pass().await.unwrap()), vec![DiffKind::Ttl, DiffKind::Length]);
}

#[tokio::test]
async fn filters_and_limits() {
    let (s, t) = both(seed);
    t.del(0, "k7");
    t.del(0, "hash");
    t.del(3, "db3");
    t.put(0, "zzz", Content::Str(b("x")), -1);
    let e = engine(s, t, Settings { patterns: Patterns::parse(&["k7|hash|zzz".into()]), ..Settings::default() });
    assert_eq!(e.pass().await.unwrap().len(), 3);
    let (s, t) = both(seed);
    t.del(0, "k7");
    t.del(0, "hash");
    t.del(3, "db3");
    let e = engine(s, t, Settings { types: vec![KeyType::Hash], ..Settings::default() });
    let d = e.pass().await.unwrap();
    assert_eq!(d.iter().map(|x| &x.key[..]).collect::<Vec<_>>(), vec![&b"hash"[..]]);
    let (s, t) = both(seed);
    t.del(3, "db3");
    t.del(0, "k7");
    let e = engine(s, t, Settings { dbs: vec![3], ..Settings::default() });
    let d = e.pass().await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].db, d[0].kind), (3, DiffKind::MissingOnTarget));
    let (s, t) = both(seed);
    let e = engine(s, t, Settings { max_keys: 100, extras: false, batch: 30, ..Settings::default() });
    e.pass().await.unwrap();
    let n = e.stats.source_keys.load(Ordering::Relaxed);
    assert!((100..=100 + 30).contains(&n), "{n}");
}

#[tokio::test]
async fn smart_mode_skips_big_values_but_not_their_length() {
    let (s, t) = both(seed);
    let mut big: Vec<(Bytes, Bytes)> = (0..5000).map(|i| (b(&format!("f{i}")), b("v"))).collect();
    big[10].1 = b("changed");
    t.put(0, "bighash", Content::Hash(big), -1);
    let e = engine(s, t, Settings { smart: true, big_threshold: 100, ..Settings::default() });
    assert_eq!(e.pass().await.unwrap(), vec![]);
}

#[tokio::test]
async fn recheck_reports_only_what_still_differs() {
    let (s, t) = both(seed);
    t.del(0, "k1");
    t.put(0, "extra", Content::Str(b("e")), -1);
    let e = engine(s, t, Settings::default());
    let keys = vec![(0, b("k1")), (0, b("extra")), (0, b("k2")), (0, b("gone"))];
    let d = e.recheck(&keys).await.unwrap();
    assert_eq!(d.iter().map(|x| x.kind).collect::<Vec<_>>(), vec![DiffKind::ExtraOnTarget, DiffKind::MissingOnTarget]);
}
