//! Every byte the mock writes on a flow goes through here, on the project's own encoders
//! (`df2redis::proto::{writer, value, dump}`): RDB header and AUX fields, key entries in the
//! release's dialect, journal blobs and records, compressed blocks, tagged chunks, the RDB
//! trailer, and DUMP payloads.

use bytes::Bytes;
use df2redis::proto::compress::Codec;
use df2redis::proto::dump::encode_dump;
use df2redis::proto::value::{choose_type, encode_value, Dialect};
use df2redis::proto::writer::{JournalWriter, RdbWriter};
use df2redis::proto::{string, JournalRecord, ValueType};

use crate::dataset::Entry;
use crate::release::Release;

/// The RDB header and AUX fields of a flow, in Dragonfly's order (spec 5.2). `shard-count`,
/// `table-mem` and `shard-id` are on v1.40.1 captures and absent from v1.30.3 captures; the mock
/// writes them from v1.37 (the release that reworked per-flow AUX fields).
pub fn header(out: &mut Vec<u8>, release: Release, flow: u32, shards: u32, ctime_s: u64, used_mem: u64) {
    let mut w = RdbWriter::new();
    w.header()
        .aux(b"redis-ver", b"6.2.11")
        .aux(b"df-ver", release.df_ver().as_bytes())
        .aux(b"redis-bits", b"64")
        .aux(b"ctime", ctime_s.to_string().as_bytes())
        .aux(b"used-mem", used_mem.to_string().as_bytes())
        .aux(b"aof-preamble", b"0");
    if release >= Release::new(1, 37, 0) {
        if flow == 0 {
            w.aux(b"shard-count", shards.to_string().as_bytes())
                .aux(b"table-mem", (used_mem / 4).to_string().as_bytes());
        }
        w.aux(b"shard-id", flow.to_string().as_bytes());
    }
    out.extend_from_slice(w.as_bytes());
}

/// `FE <db>`
pub fn select_db(out: &mut Vec<u8>, db: u32) {
    let mut w = RdbWriter::new();
    w.select_db(db);
    out.extend_from_slice(w.as_bytes());
}

/// The dialect of a release.
pub fn dialect(release: Release) -> Dialect {
    Dialect::dragonfly(release.major, release.minor)
}

/// The type byte the release writes `value` with.
pub fn value_type(value: &df2redis::proto::Value, release: Release) -> Result<ValueType, String> {
    choose_type(value, &dialect(release)).map_err(|e| e.to_string())
}

/// The whole key entry (`FC <ms>` if it expires, type byte, key, value) in the release's dialect.
/// In LZF mode the key and every string inside the value are saved as Dragonfly's
/// `--compression_mode=1` does ([`crate::lzfmode`]).
pub fn entry(key: &[u8], e: &Entry, release: Release, lzf: bool) -> Result<Vec<u8>, String> {
    let ty = value_type(&e.value, release)?;
    let mut out = Vec::new();
    if let Some(t) = e.expire_ms {
        out.push(0xfc);
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.push(ty.code());
    if lzf {
        crate::lzfmode::save_string(&mut out, key);
        let mut body = Vec::new();
        encode_value(&mut body, &e.value, ty).map_err(|e| e.to_string())?;
        out.extend_from_slice(&crate::lzfmode::compress_body(&body, ty).map_err(|m| m.0.to_string())?);
    } else {
        string::write(&mut out, key);
        encode_value(&mut out, &e.value, ty).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// `D2 01 <rdb string of the journal record>` (LZF-compressed payload in LZF mode).
pub fn journal_blob(out: &mut Vec<u8>, rec: &JournalRecord, lzf: bool) {
    let mut w = RdbWriter::new();
    w.journal_blob(rec, lzf);
    out.extend_from_slice(w.as_bytes());
}

/// A stable-sync journal record (`select`: with its SELECT prefix, for masters before v1.11
/// only when the db changed).
pub fn journal_record(out: &mut Vec<u8>, rec: &JournalRecord, select: bool) {
    if select {
        let mut w = JournalWriter::new();
        w.record(rec);
        out.extend_from_slice(w.as_bytes());
    } else {
        df2redis::proto::journal::encode_record(out, rec, false);
    }
}

/// An LSN marker.
pub fn lsn_marker(out: &mut Vec<u8>, lsn: u64) {
    let mut w = JournalWriter::new();
    w.lsn_marker(lsn);
    out.extend_from_slice(w.as_bytes());
}

/// `C8` + 8 zero bytes.
pub fn fullsync_end(out: &mut Vec<u8>) {
    let mut w = RdbWriter::new();
    w.full_sync_end();
    out.extend_from_slice(w.as_bytes());
}

/// `D3` + u64 LE.
pub fn journal_offset(out: &mut Vec<u8>, lsn: u64) {
    let mut w = RdbWriter::new();
    w.journal_offset(lsn);
    out.extend_from_slice(w.as_bytes());
}

/// `FF` + the zero checksum.
pub fn eof(out: &mut Vec<u8>) {
    let mut w = RdbWriter::new();
    w.eof(false);
    out.extend_from_slice(w.as_bytes());
}

/// `E0 <id> <len> <payload>`
pub fn tagged_chunk(out: &mut Vec<u8>, stream_id: u32, payload: &[u8]) {
    out.extend_from_slice(&df2redis::proto::writer::tagged_chunk_bytes(stream_id, payload));
}

/// A compressed blob of `data` (complete records), or `None` when Dragonfly would send the
/// buffer plainly (< 256 B, > 1 MiB, or saving < 5%).
pub fn compressed(codec: Codec, data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 256 || data.len() > 1 << 20 {
        return None;
    }
    let mut w = RdbWriter::new();
    w.compressed(codec, data);
    let blob = w.into_bytes();
    // Opcode and length prefix are at most 10 bytes; compare the frame itself.
    if (blob.len().saturating_sub(10)) * 100 > data.len() * 95 {
        return None;
    }
    Some(blob)
}

/// A DUMP payload as the release writes it (RDB version 9 footer, CRC64). `lzf`: strings inside
/// are saved in SINGLE_ENTRY mode, as Dragonfly's DUMP does whenever `--compression_mode` is not 0.
pub fn dump(v: &df2redis::proto::Value, release: Release, lzf: bool) -> Result<Bytes, String> {
    let ty = value_type(v, release)?;
    let plain = encode_dump(v, ty, 9).map_err(|e| e.to_string())?;
    if !lzf {
        return Ok(Bytes::from(plain));
    }
    let body = &plain[1..plain.len() - 10];
    let mut out = vec![ty.code()];
    out.extend_from_slice(&crate::lzfmode::compress_body(body, ty).map_err(|m| m.0.to_string())?);
    out.extend_from_slice(&9u16.to_le_bytes());
    let crc = df2redis::proto::crc64::checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(Bytes::from(out))
}
