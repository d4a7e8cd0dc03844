//! A non-consuming reader over the front of a buffer, used to parse whole top-level records
//! before anything is consumed (`Need` counts from the record's first byte).

use bytes::Bytes;

use crate::proto::error::{check_limit, unexpected, ErrorKind};
use crate::proto::event::{KeyFlags, ValueType};
use crate::proto::string::{self, StrHeader};
use crate::proto::{lzf, packed, Limits, Read};

/// An RDB string found by the cursor: a range of the record (zero-copy once the record is
/// split off) or an owned value (integer text, LZF output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Str {
    /// `start..end` of the record bytes.
    Range(usize, usize),
    /// Decoded bytes.
    Owned(Bytes),
}

impl Str {
    /// The string's bytes, given the record they were found in.
    pub(crate) fn get(&self, rec: &Bytes) -> Bytes {
        match self {
            Str::Range(a, b) => rec.slice(*a..*b),
            Str::Owned(v) => v.clone(),
        }
    }
}

/// Cursor over `b` starting at `pos`.
#[derive(Debug)]
pub(crate) struct Cur<'a> {
    b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    /// `n` raw bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        let end = self.pos.saturating_add(n);
        match self.b.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Read::Done(s)
            }
            None => Read::Need(end),
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Read<u8> {
        match self.take(1) {
            Read::Done(s) => Read::Done(s[0]),
            Read::Need(n) => Read::Need(n),
        }
    }

    #[inline]
    pub(crate) fn u32le(&mut self) -> Read<u32> {
        match self.take(4) {
            Read::Done(s) => Read::Done(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            Read::Need(n) => Read::Need(n),
        }
    }

    #[inline]
    pub(crate) fn u64le(&mut self) -> Read<u64> {
        match self.take(8) {
            Read::Done(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Read::Done(u64::from_le_bytes(a))
            }
            Read::Need(n) => Read::Need(n),
        }
    }

    /// A packed length.
    #[inline]
    pub(crate) fn packed(&mut self) -> Result<Read<u64>, ErrorKind> {
        match packed::peek_len(self.b.get(self.pos..).unwrap_or_default())? {
            Read::Done((v, n)) => {
                self.pos += n;
                Ok(Read::Done(v))
            }
            Read::Need(n) => Ok(Read::Need(self.pos + n)),
        }
    }

    /// An RDB string.
    #[inline]
    pub(crate) fn string(&mut self, limits: &Limits) -> Result<Read<Str>, ErrorKind> {
        let rest = self.b.get(self.pos..).unwrap_or_default();
        let (h, hn) = match string::peek_header(rest)? {
            Read::Done(v) => v,
            Read::Need(n) => return Ok(Read::Need(self.pos + n)),
        };
        match h {
            StrHeader::Raw { len } => {
                check_limit("string length", len, limits.max_string)?;
                let start = self.pos + hn;
                let end = start + len as usize;
                if self.b.len() < end {
                    return Ok(Read::Need(end));
                }
                self.pos = end;
                Ok(Read::Done(Str::Range(start, end)))
            }
            StrHeader::Int(v) => {
                self.pos += hn;
                Ok(Read::Done(Str::Owned(string::int_text(v))))
            }
            StrHeader::Lzf { clen, ulen } => {
                check_limit("LZF compressed length", clen, limits.max_string)?;
                check_limit("LZF decompressed length", ulen, limits.max_decompressed.min(limits.max_string))?;
                let start = self.pos + hn;
                let end = start + clen as usize;
                let Some(src) = self.b.get(start..end) else {
                    return Ok(Read::Need(end));
                };
                let data = lzf::decompress(src, ulen as usize)?;
                self.pos = end;
                Ok(Read::Done(Str::Owned(Bytes::from(data))))
            }
        }
    }

    /// Skips an RDB string without decoding LZF payloads.
    pub(crate) fn skip_string(&mut self, limits: &Limits) -> Result<Read<()>, ErrorKind> {
        let rest = self.b.get(self.pos..).unwrap_or_default();
        let (h, hn) = match string::peek_header(rest)? {
            Read::Done(v) => v,
            Read::Need(n) => return Ok(Read::Need(self.pos + n)),
        };
        let body = match h {
            StrHeader::Raw { len } => len,
            StrHeader::Int(_) => 0,
            StrHeader::Lzf { clen, .. } => clen,
        };
        check_limit("string length", body, limits.max_string)?;
        match self.take(hn + body as usize) {
            Read::Done(_) => Ok(Read::Done(())),
            Read::Need(n) => Ok(Read::Need(n)),
        }
    }
}

/// Opcodes of the key-entry options.
pub(crate) const OP_EXPIRETIME_MS: u8 = 252;
pub(crate) const OP_EXPIRETIME: u8 = 253;
pub(crate) const OP_DF_MASK: u8 = 220;

/// DF_MASK bits.
const DF_MASK_STICKY: u32 = 1;
const DF_MASK_MC_FLAGS: u32 = 2;

/// Expiry and flags that precede a key entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeyOptions {
    pub(crate) expire_ms: Option<u64>,
    pub(crate) flags: Option<KeyFlags>,
}

impl KeyOptions {
    pub(crate) fn is_empty(&self) -> bool {
        self.expire_ms.is_none() && self.flags.is_none()
    }
}

/// Parses one key option (`FC`, `FD` or `DC` record) at the cursor, whose opcode byte was
/// already read, into `opts`.
pub(crate) fn key_option(cur: &mut Cur<'_>, opcode: u8, opts: &mut KeyOptions) -> Read<()> {
    match opcode {
        OP_EXPIRETIME_MS => {
            let ms = ready_r!(cur.u64le());
            opts.expire_ms = Some(ms);
        }
        OP_EXPIRETIME => {
            let s = ready_r!(cur.u32le());
            opts.expire_ms = Some(u64::from(s) * 1000);
        }
        _ => {
            let mask = ready_r!(cur.u32le());
            let mc_flags = if mask & DF_MASK_MC_FLAGS != 0 { Some(ready_r!(cur.u32le())) } else { None };
            opts.flags = Some(KeyFlags { sticky: mask & DF_MASK_STICKY != 0, mc_flags });
        }
    }
    Read::Done(())
}

/// The start of a key entry: options, type, key.
#[derive(Debug, Clone)]
pub(crate) struct EntryHead {
    pub(crate) opts: KeyOptions,
    pub(crate) value_type: ValueType,
    pub(crate) key: Str,
}

/// Resolves a top-level byte that is not a known opcode as a value type.
pub(crate) fn value_type(code: u8, rdb_version: u32) -> Result<ValueType, ErrorKind> {
    ValueType::from_code(code, rdb_version).ok_or(if code < 200 {
        ErrorKind::UnknownType(code)
    } else {
        ErrorKind::UnknownOpcode(code)
    })
}

/// Parses `[FC ..] [DC ..] type key` (the first bytes of a tagged entry) from the front of `b`.
pub(crate) fn entry_head(b: &[u8], version: u32, limits: &Limits) -> Result<Read<(EntryHead, usize)>, ErrorKind> {
    let mut cur = Cur::new(b);
    let mut opts = KeyOptions::default();
    loop {
        let code = crate::ready!(cur.u8());
        match code {
            OP_EXPIRETIME_MS | OP_EXPIRETIME | OP_DF_MASK => crate::ready!(key_option(&mut cur, code, &mut opts)),
            _ => {
                let value_type = value_type(code, version)?;
                let key = crate::ready!(cur.string(limits)?);
                return Ok(Read::Done((EntryHead { opts, value_type, key }, cur.pos)));
            }
        }
    }
}

/// Checks a packed number fits a u32 (db indexes, counts used as u32).
pub(crate) fn to_u32(v: u64, what: &'static str) -> Result<u32, ErrorKind> {
    u32::try_from(v).map_err(|_| unexpected(what, v))
}
