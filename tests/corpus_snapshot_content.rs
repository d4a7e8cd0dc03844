//! Decodes the full-sync part of every real capture made without concurrent writes and compares
//! the content, key by key, with the master's own dump (`expected-snapshot.json.gz`).
//!
//! Canonical form (corpus/dragonfly-v1.40.1/README.md, "Format of the expected-*.json.gz
//! files"): map key `"<db>:<hex key>"`; `type` as Redis' TYPE reply; `has_ttl`; `value` per type:
//! string → hex; list → hex elements in order; set → sorted hex; hash → sorted [field, value];
//! zset → sorted [member, Python repr of the score]; stream → [id, sorted field pairs] per entry;
//! ReJSON-RL / MBbloom-- → hex of Dragonfly's DUMP payload.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use df2redis::proto::assemble::{Assembled, Assembler};
use df2redis::proto::dump::{decode_dump, encode_dump};
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{EntryHeader, Event, Limits, Value};
use serde_json::{json, Value as Json};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Python's `repr(float)`: shortest round-trip digits; exponent form when the decimal point
/// position is ≤ -4 or > 16 (`1e-05`, `1e+16`, `1.5e+300`), else plain with at least one
/// fractional digit (`1.0`, `0.0001`, `3.141592653589793`); `inf`, `-inf`, `nan`.
fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, as Python's repr does.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    if decpt <= -4 || decpt > 16 {
        let m = if digits.len() == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        let e = decpt - 1;
        format!("{sign}{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.unsigned_abs())
    } else if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
    } else {
        let d = decpt as usize;
        if d >= digits.len() {
            format!("{sign}{digits}{}.0", "0".repeat(d - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..d], &digits[d..])
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn sorted_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Json {
    let mut v: Vec<(String, String)> = pairs.map(|(a, b)| (hex(a), hex(b))).collect();
    v.sort();
    Json::Array(v.into_iter().map(|(a, b)| json!([a, b])).collect())
}

fn sorted_hex<'a>(items: impl Iterator<Item = &'a [u8]>) -> Json {
    let mut v: Vec<String> = items.map(hex).collect();
    v.sort();
    json!(v)
}

/// How the comparison of a ReJSON-RL / MBbloom-- value went.
#[derive(Debug, Default)]
struct DumpStats {
    /// Our `encode_dump` reproduced the master's DUMP bytes exactly.
    byte_exact: usize,
    /// Bytes differ, but the master's payload decodes to the same value (keys listed).
    semantic_only: Vec<String>,
    /// Wire type codes of the decoded entries.
    types: BTreeSet<u8>,
}

/// The canonical JSON of one decoded entry (`type`, `has_ttl`, `value`).
fn canonical(map_key: &str, header: &EntryHeader, value: &Value, want: Option<&Json>, stats: &mut DumpStats) -> Json {
    stats.types.insert(header.value_type.code());
    let v = match value {
        Value::String(s) => json!(hex(s)),
        Value::List(l) => json!(l.iter().map(|e| hex(e)).collect::<Vec<_>>()),
        Value::Set(m) => sorted_hex(m.iter().map(|m| &m[..])),
        Value::SetWithTtl(m) => sorted_hex(m.iter().map(|(m, _)| &m[..])),
        Value::Hash(h) => sorted_pairs(h.iter().map(|(f, v)| (&f[..], &v[..]))),
        Value::HashWithTtl(h) => sorted_pairs(h.iter().map(|(f, v, _)| (&f[..], &v[..]))),
        Value::Zset(z) => {
            let mut v: Vec<(String, String)> = z.iter().map(|(m, s)| (hex(m), py_repr(*s))).collect();
            v.sort();
            Json::Array(v.into_iter().map(|(m, s)| json!([m, s])).collect())
        }
        Value::Stream(st) => Json::Array(
            st.entries
                .iter()
                .map(|e| json!([e.id.to_string(), sorted_pairs(e.fields.iter().map(|(f, v)| (&f[..], &v[..])))]))
                .collect(),
        ),
        other => {
            // Dragonfly's DUMP payload of the key: the wire type byte, the value, RDB version 9.
            let ours = encode_dump(other, header.value_type, 9).map(|b| hex(&b)).unwrap_or_default();
            let theirs = want.and_then(|w| w["value"].as_str()).unwrap_or_default();
            if ours == theirs {
                stats.byte_exact += 1;
                json!(ours)
            } else {
                // Not byte-identical: accept when the master's payload decodes to our value.
                // Known case: a v1.30.3 master in any compression mode (LZF, LZ4, zstd) DUMPs a
                // type-33 bloom filter with its bit array as an LZF-compressed string, while
                // `encode_dump` writes it raw; the decoded filters are equal.
                let same = unhex(theirs).and_then(|p| decode_dump(&p, &Limits::default()).ok()).as_ref() == Some(other);
                if same {
                    stats.semantic_only.push(map_key.to_string());
                    json!(theirs)
                } else {
                    json!(ours)
                }
            }
        }
    };
    json!({"type": value.kind_name(), "has_ttl": header.expire_ms.is_some(), "value": v})
}

fn load_expected(dir: &Path, file: &str) -> BTreeMap<String, Json> {
    let f = std::fs::File::open(dir.join(file)).unwrap();
    let mut s = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut s).unwrap();
    let all: serde_json::Map<String, Json> = serde_json::from_str(&s).unwrap();
    all.into_iter()
        .map(|(k, mut v)| {
            // `db` and `key` restate the map key; check them, then compare the rest.
            let (db, key_hex) = k.split_once(':').unwrap();
            assert_eq!(v["db"].as_u64().map(|d| d.to_string()).as_deref(), Some(db), "{k}: db");
            let key = unhex(key_hex).unwrap();
            assert_eq!(v["key"].as_str(), Some(String::from_utf8_lossy(&key).as_ref()), "{k}: key");
            let o = v.as_object_mut().unwrap();
            o.remove("db");
            o.remove("key");
            (k, v)
        })
        .collect()
}

struct FlowSummary {
    entries: usize,
    blobs_before_end: usize,
}

/// Decodes one flow up to FULLSYNC_END, adding each entry's canonical form to `got`.
fn decode_snapshot(
    bytes: &[u8],
    token: [u8; 40],
    limits: Limits,
    want: &BTreeMap<String, Json>,
    got: &mut BTreeMap<String, Json>,
    stats: &mut DumpStats,
) -> FlowSummary {
    let mut dec = FlowDecoder::full_sync(token, limits);
    dec.feed(bytes);
    let mut asm = Assembler::new();
    let mut summary = FlowSummary { entries: 0, blobs_before_end: 0 };
    loop {
        let ev = match dec.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("flow ended before FULLSYNC_END (offset {})", dec.offset()),
            Err(e) => panic!("decode error: {e}"),
        };
        match asm.push(ev).unwrap_or_else(|e| panic!("assembler at offset {}: {e}", dec.offset())) {
            Some(Assembled::Entry { header, value }) => {
                let k = format!("{}:{}", header.db, hex(&header.key));
                let c = canonical(&k, &header, &value, want.get(&k), stats);
                assert!(got.insert(k.clone(), c).is_none(), "key {k} appears twice in the snapshot");
                summary.entries += 1;
            }
            Some(Assembled::Other(Event::JournalBlob { .. })) => summary.blobs_before_end += 1,
            Some(Assembled::Other(Event::FullSyncEnd)) => {
                assert_eq!(asm.open_entries(), 0, "entries still open at FULLSYNC_END");
                return summary;
            }
            Some(Assembled::Other(_)) | None => {}
        }
    }
}

fn short(v: Option<&Json>) -> String {
    let s = v.map_or_else(|| "(absent)".to_string(), Json::to_string);
    if s.len() > 400 {
        format!("{}… ({} chars)", &s[..400], s.len())
    } else {
        s
    }
}

/// Decodes a capture's snapshot and compares it with `expected-snapshot.json.gz`.
fn check_capture(dir: &Path, limits: Limits) -> DumpStats {
    let cap: Json = serde_json::from_slice(&std::fs::read(dir.join("capture.json")).unwrap()).unwrap();
    let want = load_expected(dir, "expected-snapshot.json.gz");
    let mut got = BTreeMap::new();
    let mut stats = DumpStats::default();
    let flows = cap["flows"].as_u64().unwrap() as usize;
    for i in 0..flows {
        let bytes = std::fs::read(dir.join(format!("flow{i}.bin"))).unwrap();
        let token: [u8; 40] = cap["eof_tokens"][i].as_str().unwrap().as_bytes().try_into().unwrap();
        let s = decode_snapshot(&bytes, token, limits, &want, &mut got, &mut stats);
        assert_eq!(s.blobs_before_end, 0, "{}: flow{i} carries journal blobs in a no-writes capture", dir.display());
        assert!(s.entries > 0, "{}: flow{i} has no entries", dir.display());
    }

    let mut diffs = Vec::new();
    for k in want.keys().chain(got.keys().filter(|k| !want.contains_key(*k))) {
        let (w, g) = (want.get(k), got.get(k));
        if w != g {
            diffs.push(format!("  {k}\n    expected {}\n    decoded  {}", short(w), short(g)));
        }
    }
    assert!(
        diffs.is_empty(),
        "{}: {} of {} expected keys differ ({} decoded); first 20:\n{}",
        dir.display(),
        diffs.len(),
        want.len(),
        got.len(),
        diffs.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    stats
}

/// Every capture folder whose flags say the full sync saw no concurrent writes.
fn quiet_captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for version in std::fs::read_dir(corpus()).unwrap() {
        let version = version.unwrap().path();
        if !version.file_name().unwrap().to_string_lossy().starts_with("dragonfly-v") {
            continue;
        }
        for dir in std::fs::read_dir(&version).unwrap() {
            let dir = dir.unwrap().path();
            let Ok(flags) = std::fs::read_to_string(dir.join("flags.txt")) else {
                continue;
            };
            if flags.trim_end().ends_with("during none") {
                out.push(dir);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn snapshots_of_quiet_captures_equal_the_masters_content() {
    let captures = quiet_captures();
    // 6 v1.40.1 captures (plain, lzf, zstd, lz4, chunked, flush) and 5 v1.30.3 ones.
    assert_eq!(captures.len(), 11, "{captures:?}");
    for dir in &captures {
        let stats = check_capture(dir, Limits::default());
        if !stats.semantic_only.is_empty() {
            eprintln!(
                "{}: DUMP payloads of {:?} are not byte-identical to the master's; their decoded values are equal",
                dir.display(),
                stats.semantic_only
            );
        }
        assert!(stats.byte_exact + stats.semantic_only.len() >= 2, "{}: JSON and bloom keys missing", dir.display());
        // The plain captures reach every type their release writes for this dataset.
        let must: &[u8] = if dir.ends_with("dragonfly-v1.40.1/plain-2shards") {
            &[0, 2, 4, 5, 11, 16, 17, 18, 21, 30, 31, 32, 34]
        } else if dir.ends_with("dragonfly-v1.30.3/plain-2shards") {
            &[0, 2, 4, 5, 11, 12, 13, 18, 21, 30, 31, 32, 33]
        } else {
            &[]
        };
        let missing: Vec<u8> = must.iter().copied().filter(|t| !stats.types.contains(t)).collect();
        assert!(missing.is_empty(), "{}: types {missing:?} not exercised (got {:?})", dir.display(), stats.types);
    }
}

#[test]
fn chunking_does_not_change_the_content() {
    // Tiny batches split every container into many chunks; the content must not change.
    let limits = Limits { batch_elements: 3, batch_bytes: 100, ..Limits::default() };
    check_capture(&corpus().join("dragonfly-v1.40.1/chunked-2shards"), limits);
}

#[test]
fn python_float_repr() {
    for (x, want) in [
        (1.0, "1.0"),
        (-1.0, "-1.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (2.5, "2.5"),
        (std::f64::consts::PI, "3.141592653589793"),
        (std::f64::consts::TAU, "6.283185307179586"),
        ("6.28319".parse().unwrap(), "6.28319"),
        (1e-300, "1e-300"),
        (-1e-300, "-1e-300"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.000123, "0.000123"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (1.5e300, "1.5e+300"),
        (123456789.125, "123456789.125"),
        (9007199254740993.0, "9007199254740992.0"),
        (0.1, "0.1"),
        (1.0 / 3.0, "0.3333333333333333"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (5e-324, "5e-324"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ] {
        assert_eq!(py_repr(x), want, "repr of {x:e}");
    }
    // Every finite repr parses back to the same double.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = f64::from_bits(state);
        if x.is_finite() {
            assert_eq!(py_repr(x).parse::<f64>().unwrap().to_bits(), x.to_bits(), "{x:e}");
        }
    }
}
