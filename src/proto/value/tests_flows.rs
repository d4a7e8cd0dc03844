//! Decodes the snapshot values of real Dragonfly flow captures (uncompressed and LZF modes,
//! v1.40.1 and v1.30.3) with a minimal test-only record loop (including tagged chunks), and
//! compares every key with the master's `expected-snapshot.json.gz`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::Path;

use bytes::{Buf, Bytes, BytesMut};

use super::super::dump::decode_dump;
use super::super::event::{Chunk, ValueType};
use super::super::model::Value;
use super::super::{string, Limits, Read};
use super::tests::build;
use super::ValueDecoder;

const CORPUS: &str = "/work/shared/corpus";

fn must<T>(r: Read<T>) -> T {
    match r {
        Read::Done(v) => v,
        Read::Need(n) => panic!("record truncated (need {n})"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A key entry being decoded (from a plain record or from tagged-chunk pieces).
struct Open {
    db: u64,
    key: Bytes,
    ty: ValueType,
    dec: ValueDecoder,
    chunks: Vec<Chunk>,
    buf: BytesMut,
}

impl Open {
    /// Parses the entry head (expiry, flags, type, key) from the front of `input`.
    fn head(db: u64, input: &mut BytesMut, limits: Limits) -> Open {
        let mut code = input.get_u8();
        if code == 0xfc {
            input.advance(8);
            code = input.get_u8();
        }
        if code == 0xdc {
            let flags = input.get_u32_le();
            if flags & 2 != 0 {
                input.advance(4);
            }
            code = input.get_u8();
        }
        let ty = ValueType::from_code(code, 9).unwrap_or_else(|| panic!("type {code}"));
        let key = must(string::read(input, &limits).unwrap());
        Open { db, key, ty, dec: ValueDecoder::new(ty, limits), chunks: Vec::new(), buf: BytesMut::new() }
    }

    /// Decodes as far as `input` allows; true when the value is complete.
    fn run(&mut self, input: &mut BytesMut) -> bool {
        loop {
            match self.dec.next(input).unwrap_or_else(|e| panic!("key {:?}: {e}", self.key)) {
                Read::Done(Some(c)) => self.chunks.push(c),
                Read::Done(None) => return true,
                Read::Need(_) => return false,
            }
        }
    }
}

/// Every key entry of a flow's snapshot part: `"db:hexkey"` → (type, value).
fn walk(data: &[u8], limits: Limits, out: &mut BTreeMap<String, (ValueType, Value)>) {
    assert_eq!(&data[..5], b"REDIS");
    let mut input = BytesMut::from(&data[9..]);
    let mut db = 0;
    let mut tagged: HashMap<u32, Open> = HashMap::new();
    let mut done = |o: Open| {
        out.insert(format!("{}:{}", o.db, hex(&o.key)), (o.ty, build(o.ty, &o.chunks)));
    };
    loop {
        match input[0] {
            0xfa => {
                input.advance(1);
                must(string::read(&mut input, &limits).unwrap());
                must(string::read(&mut input, &limits).unwrap());
            }
            0xfe => {
                input.advance(1);
                db = must(super::read_packed(&mut input).unwrap());
            }
            0xd2 => {
                input.advance(1);
                assert_eq!(must(super::read_packed(&mut input).unwrap()), 1);
                must(string::read(&mut input, &limits).unwrap());
            }
            0xc8 => break,
            0xe0 => {
                input.advance(1);
                let id = input.get_u32_le();
                let len = input.get_u32_le() as usize;
                let mut piece = input.split_to(len);
                let mut open = match tagged.remove(&id) {
                    Some(o) => o,
                    None => Open::head(db, &mut piece, limits),
                };
                open.buf.extend_from_slice(&piece);
                let mut buf = std::mem::take(&mut open.buf);
                let complete = open.run(&mut buf);
                open.buf = buf;
                if complete {
                    assert!(open.buf.is_empty(), "tagged entry ends inside a piece");
                    done(open);
                } else {
                    tagged.insert(id, open);
                }
            }
            _ => {
                let mut open = Open::head(db, &mut input, limits);
                assert!(open.run(&mut input), "plain entry {:?} incomplete", open.key);
                done(open);
            }
        }
    }
    assert!(tagged.is_empty(), "tagged entries left open at FULLSYNC_END");
}

fn load_expected(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    let f = std::fs::File::open(dir.join("expected-snapshot.json.gz")).expect("expected-snapshot");
    let mut s = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut s).expect("gunzip");
    serde_json::from_str(&s).expect("json")
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

/// Checks one decoded value against the expected JSON form.
fn check(key: &str, ty: ValueType, v: &Value, want: &serde_json::Value) {
    let w = &want["value"];
    let arr = |x: &serde_json::Value| x.as_array().cloned().unwrap_or_default();
    let pairs = |p: Vec<(String, String)>| {
        let mut p = p;
        p.sort();
        let e: Vec<(String, String)> = arr(w).iter().map(|x| (s(&x[0]), s(&x[1]))).collect();
        assert_eq!(p, e, "{key} ({ty:?})");
    };
    match v {
        Value::String(b) => assert_eq!(hex(b), s(w), "{key}"),
        Value::List(l) => {
            assert_eq!(l.iter().map(|x| hex(x)).collect::<Vec<_>>(), arr(w).iter().map(s).collect::<Vec<_>>())
        }
        Value::Set(m) => {
            let mut m: Vec<String> = m.iter().map(|x| hex(x)).collect();
            m.sort();
            assert_eq!(m, arr(w).iter().map(s).collect::<Vec<_>>(), "{key}");
        }
        Value::SetWithTtl(m) => {
            let mut m: Vec<String> = m.iter().map(|x| hex(&x.0)).collect();
            m.sort();
            assert_eq!(m, arr(w).iter().map(s).collect::<Vec<_>>(), "{key}");
        }
        Value::Hash(h) => pairs(h.iter().map(|(f, x)| (hex(f), hex(x))).collect()),
        Value::HashWithTtl(h) => pairs(h.iter().map(|(f, x, _)| (hex(f), hex(x))).collect()),
        Value::Zset(z) => {
            let mut z: Vec<(String, u64)> = z.iter().map(|(m, sc)| (hex(m), sc.to_bits())).collect();
            z.sort();
            let mut e: Vec<(String, u64)> =
                arr(w).iter().map(|x| (s(&x[0]), s(&x[1]).parse::<f64>().expect("score").to_bits())).collect();
            e.sort();
            assert_eq!(z, e, "{key}");
        }
        Value::Stream(st) => {
            let e = arr(w);
            assert_eq!(st.entries.len(), e.len(), "{key}");
            for (a, b) in st.entries.iter().zip(&e) {
                assert_eq!(a.id.to_string(), s(&b[0]), "{key}");
                let mut f: Vec<(String, String)> = a.fields.iter().map(|(x, y)| (hex(x), hex(y))).collect();
                f.sort();
                let g: Vec<(String, String)> = arr(&b[1]).iter().map(|x| (s(&x[0]), s(&x[1]))).collect();
                assert_eq!(f, g, "{key}");
            }
        }
        other => {
            let payload: Vec<u8> =
                (0..s(w).len() / 2).map(|i| u8::from_str_radix(&s(w)[2 * i..2 * i + 2], 16).expect("hex")).collect();
            let dumped = decode_dump(&payload, &Limits::default()).expect("decode the master's DUMP");
            assert_eq!(&dumped, other, "{key}");
        }
    }
}

fn check_capture(rel: &str) -> Option<BTreeMap<String, usize>> {
    let dir = Path::new(CORPUS).join(rel);
    if !dir.exists() {
        eprintln!("capture {rel} not present; skipping");
        return None;
    }
    let cap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("capture.json")).expect("capture.json")).expect("json");
    let limits = Limits { batch_elements: 7, batch_bytes: 300, ..Limits::default() };
    let mut got = BTreeMap::new();
    for i in 0..cap["flows"].as_u64().expect("flows") as usize {
        let data = std::fs::read(dir.join(format!("flow{i}.bin"))).expect("flow");
        let n = cap["full_sync_bytes"][i].as_u64().expect("bytes") as usize;
        walk(&data[..n], limits, &mut got);
    }
    let want = load_expected(&dir);
    assert_eq!(got.len(), want.len(), "{rel}: key count");
    let mut types = BTreeMap::new();
    for (k, (ty, v)) in &got {
        check(k, *ty, v, want.get(k).unwrap_or_else(|| panic!("{rel}: unexpected key {k}")));
        *types.entry(format!("{ty:?}")).or_insert(0) += 1;
    }
    Some(types)
}

#[test]
fn dragonfly_v1_40_plain_snapshot_matches_the_master() {
    let Some(types) = check_capture("dragonfly-v1.40.1/plain-2shards") else { return };
    use ValueType as T;
    for t in [T::String, T::ListQuicklist2, T::SetIntset, T::Set, T::HashListpack, T::Hash, T::ZsetListpack, T::Zset2] {
        assert!(types.contains_key(&format!("{t:?}")), "{t:?} missing from {types:?}");
    }
    for t in [T::StreamListpacks3, T::Json, T::Sbf2, T::HashWithExpiry, T::SetWithExpiry] {
        assert!(types.contains_key(&format!("{t:?}")), "{t:?} missing from {types:?}");
    }
}

#[test]
fn dragonfly_v1_40_lzf_and_chunked_snapshots_match_the_master() {
    check_capture("dragonfly-v1.40.1/lzf-2shards");
    check_capture("dragonfly-v1.40.1/chunked-2shards");
}

#[test]
fn dragonfly_v1_30_plain_snapshot_matches_the_master() {
    let Some(types) = check_capture("dragonfly-v1.30.3/plain-2shards") else { return };
    assert!(types.contains_key("HashZiplist"), "{types:?}");
    assert!(types.contains_key("ZsetZiplist"), "{types:?}");
    check_capture("dragonfly-v1.30.3/lzf-2shards");
}
