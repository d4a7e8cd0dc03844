//! Every byte the mock writes on a flow goes through here, on the project's own encoders
//! (`df2redis::proto`): RDB header and AUX fields, key entries, journal blobs and records,
//! compressed blocks, tagged chunks, the RDB trailer, and DUMP payloads.

use bytes::Bytes;
use df2redis::proto::compress::{self, Codec};
use df2redis::proto::journal;
use df2redis::proto::{packed, string, JournalRecord, Value};

use crate::dataset::Entry;
use crate::release::Release;

/// AUX fields of a flow's header, in Dragonfly's order (spec 5.2; `shard-count`, `table-mem` and
/// `shard-id` are absent on v1.30.3, present on v1.40.1: see docs/mock-master.md).
pub fn header(out: &mut Vec<u8>, release: Release, flow: u32, shards: u32, ctime_s: u64, used_mem: u64) {
    out.extend_from_slice(b"REDIS0009");
    let aux = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
        out.push(0xfa);
        string::write(out, k.as_bytes());
        string::write(out, v);
    };
    aux(out, "redis-ver", b"6.2.11");
    aux(out, "df-ver", release.df_ver().as_bytes());
    aux(out, "redis-bits", b"64");
    aux(out, "ctime", ctime_s.to_string().as_bytes());
    aux(out, "used-mem", used_mem.to_string().as_bytes());
    aux(out, "aof-preamble", b"0");
    if release >= Release::new(1, 37, 0) {
        if flow == 0 {
            aux(out, "shard-count", shards.to_string().as_bytes());
            aux(out, "table-mem", (used_mem / 4).to_string().as_bytes());
        }
        aux(out, "shard-id", flow.to_string().as_bytes());
    }
}

/// `FE <db>`
pub fn select_db(out: &mut Vec<u8>, db: u32) {
    out.push(0xfe);
    packed::write(out, u64::from(db));
}

/// The whole key entry (`FC <ms>` if it expires, type byte, key, value) in the release's dialect.
pub fn entry(key: &[u8], e: &Entry, release: Release, lzf: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(t) = e.expire_ms {
        out.push(0xfc);
        out.extend_from_slice(&t.to_le_bytes());
    }
    let (ty, body) = value_body(&e.value, release, lzf)?;
    out.push(ty);
    string::write(&mut out, key);
    out.extend_from_slice(&body);
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, s: &[u8], lzf: bool) {
    if lzf {
        string::write_lzf(out, s);
    } else {
        string::write(out, s);
    }
}

/// Type byte and encoded value.
fn value_body(v: &Value, _release: Release, lzf: bool) -> Result<(u8, Vec<u8>), String> {
    let mut out = Vec::new();
    let ty = match v {
        Value::String(s) => {
            put_str(&mut out, s, lzf);
            0
        }
        Value::List(l) => {
            packed::write(&mut out, l.len() as u64);
            for x in l {
                put_str(&mut out, x, lzf);
            }
            1
        }
        Value::Set(s) => {
            packed::write(&mut out, s.len() as u64);
            for x in s {
                put_str(&mut out, x, lzf);
            }
            2
        }
        Value::Hash(h) => {
            packed::write(&mut out, h.len() as u64);
            for (f, x) in h {
                put_str(&mut out, f, lzf);
                put_str(&mut out, x, lzf);
            }
            4
        }
        Value::Zset(z) => {
            packed::write(&mut out, z.len() as u64);
            for (m, s) in z {
                put_str(&mut out, m, lzf);
                out.extend_from_slice(&s.to_le_bytes());
            }
            5
        }
        other => return Err(format!("cannot encode a {} value yet", other.kind_name())),
    };
    Ok((ty, out))
}

/// `D2 01 <rdb string of the journal record>` (LZF-compressed payload in LZF mode).
pub fn journal_blob(out: &mut Vec<u8>, rec: &JournalRecord, lzf: bool) {
    let mut body = Vec::new();
    journal::encode_record(&mut body, rec, journal::has_select_prefix(rec));
    out.push(0xd2);
    packed::write(out, 1);
    if lzf {
        string::write_lzf(out, &body);
    } else {
        string::write_raw(out, &body);
    }
}

/// A stable-sync journal record.
pub fn journal_record(out: &mut Vec<u8>, rec: &JournalRecord, select: bool) {
    journal::encode_record(out, rec, select && journal::has_select_prefix(rec));
}

/// An LSN marker.
pub fn lsn_marker(out: &mut Vec<u8>, lsn: u64) {
    journal::encode_lsn_marker(out, lsn);
}

/// `C8` + 8 zero bytes.
pub fn fullsync_end(out: &mut Vec<u8>) {
    out.push(0xc8);
    out.extend_from_slice(&[0; 8]);
}

/// `D3` + u64 LE.
pub fn journal_offset(out: &mut Vec<u8>, lsn: u64) {
    out.push(0xd3);
    out.extend_from_slice(&lsn.to_le_bytes());
}

/// `FF` + the zero checksum.
pub fn eof(out: &mut Vec<u8>) {
    out.push(0xff);
    out.extend_from_slice(&[0; 8]);
}

/// `E0 <id> <len> <payload>`
pub fn tagged_chunk(out: &mut Vec<u8>, stream_id: u32, payload: &[u8]) {
    out.push(0xe0);
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A compressed blob of `data` (complete records), or `None` when Dragonfly would send the
/// buffer plainly (< 256 B, > 1 MiB, or saving < 5%).
pub fn compressed(codec: Codec, data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 256 || data.len() > 1 << 20 {
        return None;
    }
    let frame = compress::compress(codec, data);
    if frame.len() * 100 > data.len() * 95 {
        return None;
    }
    let mut out = vec![codec.opcode()];
    packed::write(&mut out, frame.len() as u64);
    out.extend_from_slice(&frame);
    Some(out)
}

/// A DUMP payload: type byte, value, RDB version 9 (u16 LE), CRC64 (u64 LE).
pub fn dump(v: &Value, release: Release) -> Result<Bytes, String> {
    let (ty, body) = value_body(v, release, false)?;
    let mut out = vec![ty];
    out.extend_from_slice(&body);
    out.extend_from_slice(&9u16.to_le_bytes());
    let crc = df2redis::proto::crc64::checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(Bytes::from(out))
}
