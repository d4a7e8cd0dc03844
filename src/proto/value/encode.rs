//! Encoders: a [`Value`] written as the body of a given type (no type byte, no key), byte for
//! byte as Redis / Dragonfly would write it.

use bytes::Bytes;

use super::super::error::EncodeError;
use super::super::event::ValueType;
use super::super::model::{Stream, StreamEntry, StreamGroup, Value};
use super::super::{intset, listpack, packed, string, ziplist};
use super::dragonfly::{encode_cms, encode_cuckoo, encode_sbf, encode_topk};
use super::module::{encode_json_module, encode_module};
use super::num::{format_score, shortest, ttl_to_wire};
use super::stream::FLAG_SAMEFIELDS;

/// A list element longer than this gets its own PLAIN quicklist node (Dragonfly's default fill).
pub(crate) const PLAIN_THRESHOLD: usize = 8192;
/// Size limit of one packed quicklist node (fill -2), and the per-element overestimate Redis
/// and Dragonfly add when checking whether one more element fits.
pub(crate) const NODE_BYTES: usize = 8192;
const NODE_ELEMENT_OVERHEAD: usize = 8;
/// Redis' `stream-node-max-entries` / `stream-node-max-bytes` defaults.
const STREAM_NODE_ENTRIES: usize = 100;
const STREAM_NODE_BYTES: usize = 4096;

fn mismatch(value: &Value, ty: ValueType) -> EncodeError {
    EncodeError::TypeMismatch { value: value.kind_name(), ty: ty.code() }
}

fn count(out: &mut Vec<u8>, n: usize) {
    packed::write(out, n as u64);
}

/// Writes a "long long as string": integer form when it fits in 32 bits, else decimal text.
pub(crate) fn write_long_long(out: &mut Vec<u8>, v: i64) {
    if !string::write_int_form(out, v) {
        string::write_raw(out, v.to_string().as_bytes());
    }
}

fn ttl(out: &mut Vec<u8>, t: Option<i64>) -> Result<(), EncodeError> {
    let w = ttl_to_wire(t).ok_or_else(|| EncodeError::Invalid(format!("member TTL {t:?} is not representable")))?;
    write_long_long(out, w);
    Ok(())
}

/// Writes a type-3 score: 1-byte length + text, or 253/254/255 for nan/+inf/-inf.
fn score_text(out: &mut Vec<u8>, s: f64) {
    if s.is_nan() {
        out.push(253);
    } else if s == f64::INFINITY {
        out.push(254);
    } else if s == f64::NEG_INFINITY {
        out.push(255);
    } else {
        let t = shortest(s);
        out.push(t.len() as u8);
        out.extend_from_slice(t.as_bytes());
    }
}

/// Writes `value` as the body of a `ty` value.
pub fn encode_value(out: &mut Vec<u8>, value: &Value, ty: ValueType) -> Result<(), EncodeError> {
    use ValueType as T;
    match (ty, value) {
        (T::String, Value::String(s)) => string::write(out, s),
        (T::List, Value::List(v)) | (T::Set, Value::Set(v)) => {
            count(out, v.len());
            v.iter().for_each(|e| string::write(out, e));
        }
        (T::ListZiplist, Value::List(v)) => string::write_raw(out, &ziplist::encode(v.iter().map(|e| &e[..]))?),
        (T::ListQuicklist, Value::List(v)) => quicklist_v1(out, v)?,
        (T::ListQuicklist2, Value::List(v)) => quicklist_v2(out, v)?,
        (T::SetIntset, Value::Set(v)) => string::write_raw(out, &intset::encode(v.iter().map(|e| &e[..]))?),
        (T::SetListpack, Value::Set(v)) => string::write_raw(out, &listpack::encode(v.iter().map(|e| &e[..]))?),
        (T::SetWithExpiry, Value::SetWithTtl(v)) => {
            count(out, v.len());
            for (m, t) in v {
                string::write(out, m);
                ttl(out, *t)?;
            }
        }
        (T::Hash, Value::Hash(v)) => {
            count(out, v.len());
            for (f, x) in v {
                string::write(out, f);
                string::write(out, x);
            }
        }
        (T::HashZiplist, Value::Hash(v)) => {
            string::write_raw(out, &ziplist::encode(v.iter().flat_map(|(f, x)| [&f[..], &x[..]]))?)
        }
        (T::HashListpack, Value::Hash(v)) => {
            string::write_raw(out, &listpack::encode(v.iter().flat_map(|(f, x)| [&f[..], &x[..]]))?)
        }
        (T::HashWithExpiry, Value::HashWithTtl(v)) => {
            count(out, v.len());
            for (f, x, t) in v {
                string::write(out, f);
                string::write(out, x);
                ttl(out, *t)?;
            }
        }
        (T::ZsetV1, Value::Zset(v)) => {
            count(out, v.len());
            for (m, s) in v {
                string::write(out, m);
                score_text(out, *s);
            }
        }
        (T::Zset2, Value::Zset(v)) => {
            count(out, v.len());
            for (m, s) in v {
                string::write(out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        (T::ZsetZiplist | T::ZsetListpack, Value::Zset(v)) => {
            // Redis trusts a listpack / ziplist zset to be ordered by (score, member): ZRANGE
            // and ZADD on the restored key read it as stored, so sort it here.
            let mut v: Vec<&(Bytes, f64)> = v.iter().collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let texts: Vec<String> = v.iter().map(|(_, s)| format_score(*s)).collect();
            let flat = v.iter().zip(&texts).flat_map(|((m, _), t)| [&m[..], t.as_bytes()]);
            let blob = if ty == T::ZsetZiplist { ziplist::encode(flat)? } else { listpack::encode(flat)? };
            string::write_raw(out, &blob);
        }
        (T::StreamListpacks | T::StreamListpacks2 | T::StreamListpacks3, Value::Stream(s)) => stream(out, s, ty)?,
        (T::Json | T::JsonOld, Value::Json(t)) => string::write(out, t),
        (T::Module2, Value::Json(t)) => encode_json_module(out, t)?,
        (T::Module2, Value::Module(m)) => encode_module(out, m),
        (T::Sbf, Value::Sbf(s)) => encode_sbf(out, s, false)?,
        (T::Sbf2, Value::Sbf(s)) => encode_sbf(out, s, true)?,
        (T::Cms, Value::Cms(c)) => encode_cms(out, c)?,
        (T::TopK, Value::TopK(t)) => encode_topk(out, t)?,
        (T::Cuckoo, Value::Cuckoo(c)) => encode_cuckoo(out, c)?,
        _ => return Err(mismatch(value, ty)),
    }
    Ok(())
}

/// Type 14: nodes are ziplists of at most [`NODE_BYTES`] (a bigger element gets its own node).
fn quicklist_v1(out: &mut Vec<u8>, v: &[Bytes]) -> Result<(), EncodeError> {
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut cur = ziplist::Writer::new();
    for e in v {
        if cur.count() > 0
            && (cur.byte_len() + e.len() + NODE_ELEMENT_OVERHEAD > NODE_BYTES || cur.count() >= u64::from(u16::MAX - 1))
        {
            nodes.push(std::mem::take(&mut cur).finish()?);
        }
        cur.push(e);
    }
    if cur.count() > 0 {
        nodes.push(cur.finish()?);
    }
    count(out, nodes.len());
    nodes.iter().for_each(|n| string::write_raw(out, n));
    Ok(())
}

/// Type 18: PACKED listpack nodes of at most [`NODE_BYTES`], PLAIN nodes for big elements.
fn quicklist_v2(out: &mut Vec<u8>, v: &[Bytes]) -> Result<(), EncodeError> {
    enum Node {
        Plain(Bytes),
        Packed(Vec<u8>),
    }
    let mut nodes = Vec::new();
    let mut cur = listpack::Writer::new();
    for e in v {
        let flush = cur.count() > 0
            && (e.len() > PLAIN_THRESHOLD
                || cur.byte_len() + e.len() + NODE_ELEMENT_OVERHEAD > NODE_BYTES
                || cur.count() >= u64::from(u16::MAX - 1));
        if flush {
            nodes.push(Node::Packed(std::mem::take(&mut cur).finish()?));
        }
        if e.len() > PLAIN_THRESHOLD {
            nodes.push(Node::Plain(e.clone()));
        } else {
            cur.push(e);
        }
    }
    if cur.count() > 0 {
        nodes.push(Node::Packed(cur.finish()?));
    }
    count(out, nodes.len());
    for n in &nodes {
        match n {
            Node::Plain(b) => {
                packed::write(out, 1);
                string::write_raw(out, b);
            }
            Node::Packed(b) => {
                packed::write(out, 2);
                string::write_raw(out, b);
            }
        }
    }
    Ok(())
}

fn id_be(id: super::super::model::StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

/// One stream node: master fields from the first entry, SAMEFIELDS where the names match.
fn stream_node(entries: &[StreamEntry]) -> Result<Vec<u8>, EncodeError> {
    let first = entries.first().ok_or_else(|| EncodeError::Invalid("empty stream node".into()))?;
    let base = first.id;
    let mut w = listpack::Writer::new();
    w.push_int(entries.len() as i64);
    w.push_int(0);
    w.push_int(first.fields.len() as i64);
    for (f, _) in &first.fields {
        w.push(f);
    }
    w.push_int(0);
    for e in entries {
        let same = e.fields.len() == first.fields.len() && e.fields.iter().zip(&first.fields).all(|(a, b)| a.0 == b.0);
        w.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
        w.push_int(e.id.ms.wrapping_sub(base.ms) as i64);
        w.push_int(e.id.seq.wrapping_sub(base.seq) as i64);
        if same {
            for (_, v) in &e.fields {
                w.push(v);
            }
            w.push_int(e.fields.len() as i64 + 3);
        } else {
            w.push_int(e.fields.len() as i64);
            for (f, v) in &e.fields {
                w.push(f);
                w.push(v);
            }
            w.push_int(2 * e.fields.len() as i64 + 4);
        }
    }
    w.finish()
}

fn stream(out: &mut Vec<u8>, s: &Stream, ty: ValueType) -> Result<(), EncodeError> {
    if s.entries.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(EncodeError::Invalid("stream entry ids must be strictly increasing".into()));
    }
    let version = match ty {
        ValueType::StreamListpacks => 1,
        ValueType::StreamListpacks2 => 2,
        _ => 3,
    };
    // Split into nodes by entry count and approximate size.
    let mut bounds = Vec::new();
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, e) in s.entries.iter().enumerate() {
        let w: usize = e.fields.iter().map(|(f, v)| f.len() + v.len() + 4).sum::<usize>() + 8;
        if i > start && (i - start >= STREAM_NODE_ENTRIES || bytes + w > STREAM_NODE_BYTES) {
            bounds.push((start, i));
            start = i;
            bytes = 0;
        }
        bytes += w;
    }
    if start < s.entries.len() {
        bounds.push((start, s.entries.len()));
    }
    count(out, bounds.len());
    for &(a, b) in &bounds {
        let node = &s.entries[a..b];
        string::write_raw(out, &id_be(node[0].id));
        string::write_raw(out, &stream_node(node)?);
    }
    let m = &s.meta;
    for v in [m.length, m.last_id.ms, m.last_id.seq] {
        packed::write(out, v);
    }
    if version >= 2 {
        let v2 = m.v2.unwrap_or_default();
        for v in [v2.first_id.ms, v2.first_id.seq, v2.max_deleted_id.ms, v2.max_deleted_id.seq, v2.entries_added] {
            packed::write(out, v);
        }
    }
    count(out, s.groups.len());
    for g in &s.groups {
        group(out, g, version);
    }
    Ok(())
}

fn group(out: &mut Vec<u8>, g: &StreamGroup, version: u8) {
    string::write(out, &g.name);
    packed::write(out, g.last_delivered.ms);
    packed::write(out, g.last_delivered.seq);
    if version >= 2 {
        packed::write(out, g.entries_read.unwrap_or(u64::MAX));
    }
    count(out, g.pel.len());
    for p in &g.pel {
        out.extend_from_slice(&id_be(p.id));
        out.extend_from_slice(&p.delivery_time_ms.to_le_bytes());
        packed::write(out, p.delivery_count);
    }
    count(out, g.consumers.len());
    for c in &g.consumers {
        string::write(out, &c.name);
        out.extend_from_slice(&c.seen_time_ms.to_le_bytes());
        if version >= 3 {
            out.extend_from_slice(&c.active_time_ms.unwrap_or(c.seen_time_ms).to_le_bytes());
        }
        count(out, c.pending.len());
        for id in &c.pending {
            out.extend_from_slice(&id_be(*id));
        }
    }
}
