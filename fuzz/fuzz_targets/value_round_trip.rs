//! Fuzzes the value codecs: an arbitrary value, encoded with the type a dialect chooses for it,
//! decodes (with arbitrary batch limits) to the same value.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bytes::Bytes;
use df2redis::proto::assemble::decode_value;
use df2redis::proto::model::{Stream, StreamEntry, StreamId, StreamMeta};
use df2redis::proto::value::{choose_type, encode_value, Dialect, TTL_BASE};
use df2redis::proto::{Limits, Value};
use libfuzzer_sys::fuzz_target;

/// `Value` mirrored with types that implement `Arbitrary` (`Bytes` does not).
#[derive(Debug, Arbitrary)]
enum AValue {
    String(Vec<u8>),
    Int(i64),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    IntSet(Vec<i64>),
    SetWithTtl(Vec<(Vec<u8>, Option<u32>)>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    HashWithTtl(Vec<(Vec<u8>, Vec<u8>, Option<u32>)>),
    Zset(Vec<(Vec<u8>, f64)>),
    Stream(Vec<(u32, u8, Vec<(Vec<u8>, Vec<u8>)>)>),
    Json(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum ADialect {
    Dragonfly(u8, u8),
    Redis(u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    value: AValue,
    dialect: ADialect,
    batch_elements: u8,
    batch_bytes: u16,
}

fn b(v: Vec<u8>) -> Bytes {
    Bytes::from(v)
}

fn ttl(t: Option<u32>) -> Option<i64> {
    t.map(|d| TTL_BASE + i64::from(d))
}

/// Builds a valid model value: unique set members / hash fields / zset members, no NaN scores,
/// stream ids strictly increasing and entries with at least one field.
fn build(v: AValue) -> Value {
    match v {
        AValue::String(s) => Value::String(b(s)),
        AValue::Int(i) => Value::String(Bytes::from(i.to_string())),
        AValue::List(l) => Value::List(l.into_iter().map(b).collect()),
        AValue::Set(s) => {
            let m: BTreeMap<Vec<u8>, ()> = s.into_iter().map(|x| (x, ())).collect();
            Value::Set(m.into_keys().map(b).collect())
        }
        AValue::IntSet(s) => {
            let m: BTreeMap<i64, ()> = s.into_iter().map(|x| (x, ())).collect();
            Value::Set(m.into_keys().map(|i| Bytes::from(i.to_string())).collect())
        }
        AValue::SetWithTtl(s) => {
            let m: BTreeMap<Vec<u8>, Option<u32>> = s.into_iter().collect();
            Value::SetWithTtl(m.into_iter().map(|(k, t)| (b(k), ttl(t))).collect())
        }
        AValue::Hash(h) => {
            let m: BTreeMap<Vec<u8>, Vec<u8>> = h.into_iter().collect();
            Value::Hash(m.into_iter().map(|(f, v)| (b(f), b(v))).collect())
        }
        AValue::HashWithTtl(h) => {
            let m: BTreeMap<Vec<u8>, (Vec<u8>, Option<u32>)> = h.into_iter().map(|(f, v, t)| (f, (v, t))).collect();
            Value::HashWithTtl(m.into_iter().map(|(f, (v, t))| (b(f), b(v), ttl(t))).collect())
        }
        AValue::Zset(z) => {
            let m: BTreeMap<Vec<u8>, f64> = z.into_iter().map(|(k, s)| (k, if s.is_nan() { 0.0 } else { s })).collect();
            Value::Zset(m.into_iter().map(|(k, s)| (b(k), s)).collect())
        }
        AValue::Stream(entries) => {
            let mut by_id: BTreeMap<StreamId, Vec<(Bytes, Bytes)>> = BTreeMap::new();
            for (ms, seq, fields) in entries {
                if !fields.is_empty() {
                    let id = StreamId { ms: u64::from(ms) + 1, seq: u64::from(seq) };
                    by_id.insert(id, fields.into_iter().map(|(f, v)| (b(f), b(v))).collect());
                }
            }
            let entries: Vec<StreamEntry> = by_id.into_iter().map(|(id, fields)| StreamEntry { id, fields }).collect();
            let meta = StreamMeta {
                length: entries.len() as u64,
                last_id: entries.last().map(|e| e.id).unwrap_or_default(),
                v2: None,
            };
            Value::Stream(Box::new(Stream { entries, meta, groups: Vec::new() }))
        }
        AValue::Json(j) => Value::Json(b(j)),
    }
}

/// What survives any encoding: set order is the encoder's (intsets sort numerically), packed
/// zsets come back in (score, member) order, and the stream metadata versions differ by type.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Set(s) => {
            let mut s = s.clone();
            s.sort();
            Value::Set(s)
        }
        Value::Zset(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Value::Zset(z)
        }
        Value::Stream(s) => {
            let mut s = s.clone();
            s.meta.v2 = None;
            Value::Stream(s)
        }
        other => other.clone(),
    }
}

fuzz_target!(|input: Input| {
    let value = build(input.value);
    let dialect = match input.dialect {
        ADialect::Dragonfly(major, minor) => Dialect::dragonfly(u32::from(major % 3), u32::from(minor % 45)),
        ADialect::Redis(v) => Dialect::redis(9 + u16::from(v % 4)),
    };
    let Ok(ty) = choose_type(&value, &dialect) else { return };
    let mut bytes = Vec::new();
    encode_value(&mut bytes, &value, ty).unwrap_or_else(|e| panic!("choose_type said {ty:?}, encode failed: {e}"));
    let limits = Limits {
        batch_elements: usize::from(input.batch_elements).max(1),
        batch_bytes: usize::from(input.batch_bytes).max(1),
        ..Limits::default()
    };
    let back = decode_value(ty, &bytes, &limits).unwrap_or_else(|e| panic!("{ty:?} encoding does not decode: {e}"));
    assert_eq!(normalize(&back), normalize(&value), "round trip through {ty:?} changed the value");
});
