//! Dragonfly's `--compression_mode=1` (SINGLE_ENTRY): every RDB string its serializer saves —
//! keys, string values, listpack / ziplist / intset blobs, set members, hash fields and values,
//! sorted-set members, stream node keys and listpacks, JSON text — is LZF-compressed when longer
//! than 20 bytes and the result is smaller than both `len − 8` and `0.85 · len`
//! (`RdbSerializer::SaveString` in rdb_save.cc). DUMP payloads use the same mode whenever the
//! master's compression mode is not NONE (`RdbSerializer::DumpValue`).
//!
//! The project's encoders write uncompressed strings; [`compress_body`] walks an encoded value
//! body of a given type and re-saves each string the way Dragonfly would.

use df2redis::proto::string::{self, StrHeader};
use df2redis::proto::{lzf, packed, Read, ValueType};

/// Appends `s` as `SaveString` does in SINGLE_ENTRY mode.
pub fn save_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = string::canonical_int(s) {
            if string::write_int_form(out, v) {
                return;
            }
        }
    }
    let len = s.len();
    if len > 20 {
        if let Some(c) = lzf::compress(s) {
            if !c.is_empty() && c.len() + 8 < len && (c.len() as f64) < len as f64 * 0.85 {
                out.push(0xc3);
                packed::write(out, c.len() as u64);
                packed::write(out, len as u64);
                out.extend_from_slice(&c);
                return;
            }
        }
    }
    string::write_raw(out, s);
}

/// A walk over an encoded body ran past its end or met something it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

struct Walk<'a> {
    src: &'a [u8],
    pos: usize,
    out: Vec<u8>,
}

impl Walk<'_> {
    fn len(&mut self) -> Result<u64, Malformed> {
        match packed::peek_len(&self.src[self.pos..]) {
            Ok(Read::Done((v, n))) => {
                self.out.extend_from_slice(&self.src[self.pos..self.pos + n]);
                self.pos += n;
                Ok(v)
            }
            _ => Err(Malformed("length")),
        }
    }

    fn copy(&mut self, n: usize) -> Result<(), Malformed> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.src.len()).ok_or(Malformed("fixed bytes"))?;
        self.out.extend_from_slice(&self.src[self.pos..end]);
        self.pos = end;
        Ok(())
    }

    /// Re-saves one RDB string (raw ones through [`save_string`], others copied).
    fn string(&mut self) -> Result<(), Malformed> {
        let (h, n) = match string::peek_header(&self.src[self.pos..]) {
            Ok(Read::Done(x)) => x,
            _ => return Err(Malformed("string header")),
        };
        match h {
            StrHeader::Raw { len } => {
                let start = self.pos + n;
                let end =
                    start.checked_add(len as usize).filter(|e| *e <= self.src.len()).ok_or(Malformed("string"))?;
                save_string(&mut self.out, &self.src[start..end]);
                self.pos = end;
                Ok(())
            }
            StrHeader::Int(_) => self.copy(n),
            StrHeader::Lzf { clen, .. } => self.copy(n + clen as usize),
        }
    }

    fn score_text(&mut self) -> Result<(), Malformed> {
        let l = *self.src.get(self.pos).ok_or(Malformed("score"))?;
        self.copy(1)?;
        if l < 253 {
            self.copy(usize::from(l))?;
        }
        Ok(())
    }

    fn rest(&mut self) {
        self.out.extend_from_slice(&self.src[self.pos..]);
        self.pos = self.src.len();
    }
}

/// `body` (a value encoded as `ty` by the project's encoder) with its strings re-saved in
/// SINGLE_ENTRY mode. Types whose strings Dragonfly does not save through `SaveString` (bloom
/// filters, sketches, module values) come back unchanged, as do member TTLs.
pub fn compress_body(body: &[u8], ty: ValueType) -> Result<Vec<u8>, Malformed> {
    use ValueType as T;
    let mut w = Walk { src: body, pos: 0, out: Vec::with_capacity(body.len()) };
    match ty {
        T::String
        | T::ListZiplist
        | T::SetIntset
        | T::ZsetZiplist
        | T::HashZiplist
        | T::HashListpack
        | T::ZsetListpack
        | T::SetListpack
        | T::Json
        | T::JsonOld => w.string()?,
        T::List | T::Set | T::ListQuicklist => {
            for _ in 0..w.len()? {
                w.string()?;
            }
        }
        T::Hash => {
            for _ in 0..w.len()? {
                w.string()?;
                w.string()?;
            }
        }
        T::ZsetV1 => {
            for _ in 0..w.len()? {
                w.string()?;
                w.score_text()?;
            }
        }
        T::Zset2 => {
            for _ in 0..w.len()? {
                w.string()?;
                w.copy(8)?;
            }
        }
        T::ListQuicklist2 => {
            for _ in 0..w.len()? {
                w.len()?;
                w.string()?;
            }
        }
        T::SetWithExpiry => {
            for _ in 0..w.len()? {
                w.string()?;
                w.string()?;
            }
        }
        T::HashWithExpiry => {
            for _ in 0..w.len()? {
                w.string()?;
                w.string()?;
                w.string()?;
            }
        }
        T::StreamListpacks | T::StreamListpacks2 | T::StreamListpacks3 => {
            for _ in 0..w.len()? {
                w.string()?;
                w.string()?;
            }
            w.rest();
        }
        _ => w.rest(),
    }
    w.rest();
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_save_string() {
        let mut out = Vec::new();
        save_string(&mut out, b"12345");
        assert_eq!(out, [0xc0, 12345u16 as u8].iter().take(0).copied().chain([0xc1, 0x39, 0x30]).collect::<Vec<_>>());
        let mut out = Vec::new();
        save_string(&mut out, &[b'a'; 20]);
        assert_eq!(out[0], 20, "20 bytes are never compressed");
        let mut out = Vec::new();
        save_string(&mut out, &[b'a'; 200]);
        assert_eq!(out[0], 0xc3);
        let mut out = Vec::new();
        let noise: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        save_string(&mut out, &noise);
        assert_ne!(out[0], 0xc3, "incompressible data stays raw");
    }
}
