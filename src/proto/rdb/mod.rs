//! Incremental decoder of Dragonfly's full-sync RDB stream (and of Redis RDB files): top-level
//! records, key entries streamed through the value decoder, compressed blobs, tagged chunks,
//! journal blobs, the EOF checksum.

/// Like `crate::ready!`, for functions returning a bare [`Read`].
macro_rules! ready_r {
    ($e:expr) => {
        match $e {
            $crate::proto::Read::Done(v) => v,
            $crate::proto::Read::Need(n) => return $crate::proto::Read::Need(n),
        }
    };
}

mod checksum;
mod cursor;
mod skip;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use self::checksum::RunningCrc;
use self::cursor::{entry_head, key_option, to_u32, value_type, Cur, KeyOptions};
use self::skip::Skipper;
use super::compress::{self, Codec};
use super::error::{check_limit, corrupt, unexpected, DecodeError, ErrorKind};
use super::event::{EntryHeader, EntryId, Event};
use super::journal::{JournalDecoder, JournalItem};
use super::string::{self, StrHeader};
use super::value::ValueDecoder;
use super::{Limits, Read};

/// Top-level opcodes.
pub mod opcode {
    /// FULLSYNC_END + 8 bytes.
    pub const FULLSYNC_END: u8 = 200;
    /// zstd blob.
    pub const COMPRESSED_ZSTD: u8 = 201;
    /// LZ4 blob.
    pub const COMPRESSED_LZ4: u8 = 202;
    /// Journal blob.
    pub const JOURNAL_BLOB: u8 = 210;
    /// Journal offset + u64 LE.
    pub const JOURNAL_OFFSET: u8 = 211;
    /// Key flags.
    pub const DF_MASK: u8 = 220;
    /// HNSW index nodes.
    pub const VECTOR_INDEX: u8 = 222;
    /// Search index key mapping.
    pub const SHARD_DOC_INDEX: u8 = 223;
    /// Piece of a split entry.
    pub const TAGGED_CHUNK: u8 = 224;
    /// Redis cluster slot info.
    pub const SLOT_INFO: u8 = 244;
    /// Redis functions (GA format).
    pub const FUNCTION2: u8 = 245;
    /// Redis functions (pre-GA format).
    pub const FUNCTION_PRE_GA: u8 = 246;
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 247;
    /// LRU idle time.
    pub const IDLE: u8 = 248;
    /// LFU frequency.
    pub const FREQ: u8 = 249;
    /// AUX field.
    pub const AUX: u8 = 250;
    /// RESIZEDB.
    pub const RESIZEDB: u8 = 251;
    /// Expiry in ms.
    pub const EXPIRETIME_MS: u8 = 252;
    /// Expiry in s.
    pub const EXPIRETIME: u8 = 253;
    /// SELECTDB.
    pub const SELECTDB: u8 = 254;
    /// EOF + checksum.
    pub const EOF: u8 = 255;
}

use opcode as op;

/// Split entries that may be open at once before the stream is considered corrupt.
const MAX_OPEN_TAGGED: usize = 1 << 16;

/// Where a record or item starts: the stream offset, and inside a compressed blob the codec
/// and the offset in its decompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    outer: u64,
    inner: Option<(Codec, u64)>,
}

/// The decompressed bytes of the blob being parsed.
#[derive(Debug)]
struct Blob {
    codec: Codec,
    data: BytesMut,
    total: usize,
    at: u64,
}

/// State of one open tagged stream id.
#[derive(Debug)]
struct Tagged {
    carry: BytesMut,
    state: TaggedState,
    piece_at: Pos,
}

#[derive(Debug)]
enum TaggedState {
    /// Waiting for the entry head (options, type, key) in the carry.
    Head { db: u32, opts: KeyOptions },
    /// The value is being decoded.
    Value { id: EntryId, dec: Box<ValueDecoder> },
}

/// What the decoder is in the middle of. (One per decoder: the size of the `Value` variant does
/// not matter, and not boxing it saves an allocation per key.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Mode {
    /// At a record boundary.
    Top,
    /// An untagged key entry's value, read from the current source; `at` is where the entry
    /// starts (every error inside the value is reported there, whatever the feeding).
    Value { id: EntryId, dec: ValueDecoder, at: Pos },
    /// Draining the events a tagged piece made available.
    Tagged { sid: u32 },
    /// Records of a journal blob still to emit.
    Journal { carry: BytesMut, left: u64, at: Pos },
    /// Skipping the items of a record that starts at `at`.
    Skip { opcode: u8, skip: Skipper, at: Pos },
}

/// Result of one parsing step on the current source.
enum Progress {
    Event(Event),
    Continue,
    Need(usize),
}

/// Incremental RDB decoder: `feed` bytes, then call `next_event` until it returns `Ok(None)`.
#[derive(Debug)]
pub struct RdbDecoder {
    limits: Limits,
    buf: BytesMut,
    fed: u64,
    need: usize,
    version: Option<u32>,
    finished: bool,
    failed: Option<DecodeError>,
    db: u32,
    next_id: u64,
    opts: KeyOptions,
    mode: Mode,
    blob: Option<Blob>,
    tagged: HashMap<u32, Tagged>,
    journal: JournalDecoder,
    crc: Option<RunningCrc>,
    vector_enterpoint: bool,
}

impl RdbDecoder {
    /// A decoder that verifies a non-zero EOF checksum.
    pub fn new(limits: Limits) -> Self {
        RdbDecoder {
            limits,
            buf: BytesMut::new(),
            fed: 0,
            need: 0,
            version: None,
            finished: false,
            failed: None,
            db: 0,
            next_id: 0,
            opts: KeyOptions::default(),
            mode: Mode::Top,
            blob: None,
            tagged: HashMap::new(),
            journal: JournalDecoder::new(),
            crc: Some(RunningCrc::default()),
            vector_enterpoint: true,
        }
    }

    /// A decoder that does not compute the checksum (replication streams: Dragonfly always
    /// writes 0 there); `RdbEnd.verified` is then always `None`.
    pub fn new_unverified(limits: Limits) -> Self {
        RdbDecoder { crc: None, ..RdbDecoder::new(limits) }
    }

    /// Appends stream bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.finished {
            if let Some(c) = &mut self.crc {
                c.update(data);
            }
        }
        self.fed += data.len() as u64;
        self.buf.extend_from_slice(data);
    }

    /// Bytes of the fed stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.fed - self.buf.len() as u64
    }

    /// Whether EOF and its checksum were read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The RDB version of the header, once read.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The database of the journal reader (for a journal stream that follows).
    pub fn journal_db(&self) -> u32 {
        self.journal.db()
    }

    /// Checks that the stream ended cleanly (EOF read, nothing pending).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.finished {
            return Ok(());
        }
        let what = if self.version.is_none() {
            "the RDB header"
        } else if self.blob.is_some() {
            "a compressed block"
        } else {
            match self.mode {
                Mode::Value { .. } => "a key entry",
                Mode::Skip { .. } => "a skipped record",
                Mode::Journal { .. } => "a journal blob",
                _ if !self.buf.is_empty() => "a record",
                _ => "the RDB stream before EOF",
            }
        };
        // Inside a value or a skipped record: where that item starts, as for every error in it.
        match self.mode {
            Mode::Value { at, .. } | Mode::Skip { at, .. } if self.blob.is_none() => {
                Err(Self::err(at, ErrorKind::Truncated(what), None))
            }
            _ => Err(DecodeError::at(self.offset(), ErrorKind::Truncated(what))),
        }
    }

    /// The bytes fed after the end of the RDB part (and anything not consumed).
    pub fn into_remaining(self) -> BytesMut {
        self.buf
    }

    /// The next event, or `Ok(None)` when more bytes are needed (or the stream ended).
    /// After an error, the same error is returned again.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.step();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn step(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            match self.mode {
                Mode::Tagged { sid } => {
                    match self.drain_tagged(sid)? {
                        Some(ev) => return Ok(Some(ev)),
                        None => self.mode = Mode::Top,
                    }
                    continue;
                }
                Mode::Journal { .. } => {
                    if let Some(ev) = self.drain_journal()? {
                        return Ok(Some(ev));
                    }
                    continue;
                }
                _ => {}
            }
            let in_blob = match &self.blob {
                Some(b) => {
                    if b.data.is_empty() && matches!(self.mode, Mode::Top) {
                        self.end_blob()?;
                        continue;
                    }
                    true
                }
                None => {
                    if self.finished || self.buf.len() < self.need {
                        return Ok(None);
                    }
                    self.need = 0;
                    false
                }
            };
            let mut src = match &mut self.blob {
                Some(b) if in_blob => std::mem::take(&mut b.data),
                _ => std::mem::take(&mut self.buf),
            };
            let r = self.step_src(&mut src, in_blob);
            match &mut self.blob {
                Some(b) if in_blob => b.data = src,
                _ => self.buf = src,
            }
            match r? {
                Progress::Event(ev) => return Ok(Some(ev)),
                Progress::Continue => {}
                Progress::Need(n) => {
                    self.need = n;
                    return Ok(None);
                }
            }
        }
    }

    /// The position of the front of the current source, whose remaining length is `src_len`.
    fn pos(&self, src_len: usize, in_blob: bool) -> Pos {
        match &self.blob {
            Some(b) if in_blob => Pos { outer: b.at, inner: Some((b.codec, b.total.saturating_sub(src_len) as u64)) },
            _ => Pos { outer: self.fed - src_len as u64, inner: None },
        }
    }

    fn err(pos: Pos, kind: ErrorKind, extra: Option<String>) -> DecodeError {
        let inner = pos.inner.map(|(c, off)| format!("inside {} at offset {off}", c.block_name()));
        let context = match (inner, extra) {
            (Some(a), Some(b)) => Some(format!("{a}, {b}")),
            (a, b) => a.or(b),
        };
        DecodeError { offset: pos.outer, context, kind }
    }

    /// A `Need` on the current source: wait for bytes, or inside a blob, a record cut short.
    fn need_or_cut(&self, n: usize, at: Pos) -> Result<Progress, DecodeError> {
        match at.inner {
            Some((codec, _)) => {
                Err(Self::err(at, corrupt(codec.block_name(), "a record is cut at the end of the block"), None))
            }
            None => Ok(Progress::Need(n)),
        }
    }

    fn end_blob(&mut self) -> Result<(), DecodeError> {
        if let Some(b) = self.blob.take() {
            if !self.opts.is_empty() {
                let at = Pos { outer: b.at, inner: Some((b.codec, b.total as u64)) };
                return Err(Self::err(at, corrupt(b.codec.block_name(), "expiry/flags at the end of the block"), None));
            }
        }
        Ok(())
    }

    fn step_src(&mut self, src: &mut BytesMut, in_blob: bool) -> Result<Progress, DecodeError> {
        match &mut self.mode {
            Mode::Value { id, dec, at } => match dec.next(src) {
                Ok(Read::Done(Some(chunk))) => Ok(Progress::Event(Event::EntryChunk { id: *id, chunk })),
                Ok(Read::Done(None)) => {
                    let id = *id;
                    self.mode = Mode::Top;
                    Ok(Progress::Event(Event::EntryEnd { id }))
                }
                Ok(Read::Need(n)) => {
                    let at = *at;
                    self.need_or_cut(n, at)
                }
                Err(k) => Err(Self::err(*at, k, None)),
            },
            Mode::Skip { opcode, skip, at } => match skip.step(src, &self.limits) {
                Ok(Read::Done(true)) => {
                    let opcode = *opcode;
                    self.mode = Mode::Top;
                    Ok(Progress::Event(Event::Skipped { opcode }))
                }
                Ok(Read::Done(false)) => Ok(Progress::Continue),
                Ok(Read::Need(n)) => {
                    let at = *at;
                    self.need_or_cut(n, at)
                }
                Err(k) => Err(Self::err(*at, k, None)),
            },
            Mode::Top => {
                // Records are parsed whole before anything is consumed, so the front of the
                // source is the record's start.
                let at = self.pos(src.len(), in_blob);
                match self.record(src, in_blob, at) {
                    Ok(Read::Done(p)) => Ok(p),
                    Ok(Read::Need(n)) => self.need_or_cut(n, at),
                    Err(k) => Err(Self::err(at, k, None)),
                }
            }
            Mode::Tagged { .. } | Mode::Journal { .. } => Ok(Progress::Continue),
        }
    }

    fn next_entry_id(&mut self) -> EntryId {
        let id = EntryId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Parses one top-level record at the front of `src`.
    fn record(&mut self, src: &mut BytesMut, in_blob: bool, at: Pos) -> Result<Read<Progress>, ErrorKind> {
        let Some(version) = self.version else {
            return self.header(src);
        };
        let Some(&code) = src.first() else {
            return Ok(Read::Need(1));
        };
        if !self.opts.is_empty()
            && code >= op::FULLSYNC_END
            && !matches!(
                code,
                op::EXPIRETIME_MS | op::EXPIRETIME | op::DF_MASK | op::IDLE | op::FREQ | op::TAGGED_CHUNK
            )
        {
            return Err(unexpected("a key entry after its expiry/flags", format_args!("opcode {code}")));
        }
        let limits = self.limits;
        let mut cur = Cur::new(src);
        cur.pos = 1;
        let ev = match code {
            op::AUX => {
                let key = crate::ready!(cur.string(&limits)?);
                let value = crate::ready!(cur.string(&limits)?);
                let rec = src.split_to(cur.pos).freeze();
                let (key, value) = (key.get(&rec), value.get(&rec));
                if &key[..] == b"df-ver" {
                    // VECTOR_INDEX had no entry-point field in v1.37 and v1.38.
                    self.vector_enterpoint = !(value.starts_with(b"df-v1.37.") || value.starts_with(b"df-v1.38."));
                }
                Event::Aux { key, value }
            }
            op::SELECTDB => {
                let db = to_u32(crate::ready!(cur.packed()?), "a database index")?;
                src.advance(cur.pos);
                self.db = db;
                Event::SelectDb { db }
            }
            op::RESIZEDB => {
                let db_size = crate::ready!(cur.packed()?);
                let expires_size = crate::ready!(cur.packed()?);
                src.advance(cur.pos);
                Event::ResizeDb { db_size, expires_size }
            }
            op::EXPIRETIME_MS | op::EXPIRETIME | op::DF_MASK => {
                let mut opts = self.opts;
                crate::ready!(key_option(&mut cur, code, &mut opts));
                self.opts = opts;
                src.advance(cur.pos);
                return Ok(Read::Done(Progress::Continue));
            }
            op::FULLSYNC_END => {
                crate::ready!(cur.take(8));
                src.advance(cur.pos);
                Event::FullSyncEnd
            }
            op::JOURNAL_OFFSET => {
                let lsn = crate::ready!(cur.u64le());
                src.advance(cur.pos);
                Event::JournalOffset { lsn }
            }
            op::EOF => return self.eof(src, in_blob, version),
            op::COMPRESSED_ZSTD | op::COMPRESSED_LZ4 => return self.compressed(src, code, in_blob, at),
            op::JOURNAL_BLOB => {
                let count = crate::ready!(cur.packed()?);
                let rest = src.get(cur.pos..).unwrap_or_default();
                let (h, hn) = crate::ready!(shift(string::peek_header(rest)?, cur.pos));
                let carry = match h {
                    StrHeader::Raw { len } => {
                        check_limit("journal blob size", len, limits.max_record)?;
                        let total = cur.pos + hn + len as usize;
                        if src.len() < total {
                            return Ok(Read::Need(total));
                        }
                        src.advance(cur.pos + hn);
                        src.split_to(len as usize)
                    }
                    StrHeader::Int(_) | StrHeader::Lzf { .. } => {
                        let s = crate::ready!(cur.string(&limits)?);
                        let rec = src.split_to(cur.pos).freeze();
                        BytesMut::from(&s.get(&rec)[..])
                    }
                };
                if count == 0 && !carry.is_empty() {
                    return Err(corrupt("journal blob", "a count of 0 with a non-empty payload"));
                }
                self.mode = Mode::Journal { carry, left: count, at };
                return Ok(Read::Done(Progress::Continue));
            }
            op::TAGGED_CHUNK => return self.tagged_chunk(src, at),
            op::SLOT_INFO => {
                for _ in 0..3 {
                    crate::ready!(cur.packed()?);
                }
                src.advance(cur.pos);
                Event::Skipped { opcode: code }
            }
            op::IDLE => {
                crate::ready!(cur.packed()?);
                src.advance(cur.pos);
                Event::Skipped { opcode: code }
            }
            op::FREQ => {
                crate::ready!(cur.take(1));
                src.advance(cur.pos);
                Event::Skipped { opcode: code }
            }
            op::FUNCTION2 => {
                crate::ready!(cur.skip_string(&limits)?);
                src.advance(cur.pos);
                Event::Skipped { opcode: code }
            }
            op::FUNCTION_PRE_GA => {
                // name, engine, has-description flag, [description], code.
                crate::ready!(cur.skip_string(&limits)?);
                crate::ready!(cur.skip_string(&limits)?);
                if crate::ready!(cur.packed()?) != 0 {
                    crate::ready!(cur.skip_string(&limits)?);
                }
                crate::ready!(cur.skip_string(&limits)?);
                src.advance(cur.pos);
                Event::Skipped { opcode: code }
            }
            op::MODULE_AUX => {
                crate::ready!(cur.packed()?);
                src.advance(cur.pos);
                self.mode = Mode::Skip { opcode: code, skip: Skipper::Module, at };
                return Ok(Read::Done(Progress::Continue));
            }
            op::VECTOR_INDEX => {
                crate::ready!(cur.skip_string(&limits)?);
                if self.vector_enterpoint {
                    crate::ready!(cur.packed()?);
                }
                let left = crate::ready!(cur.packed()?);
                src.advance(cur.pos);
                return Ok(Read::Done(self.start_skip(code, Skipper::Vector { left }, left, at)));
            }
            op::SHARD_DOC_INDEX => {
                crate::ready!(cur.packed()?);
                crate::ready!(cur.skip_string(&limits)?);
                let left = crate::ready!(cur.packed()?);
                src.advance(cur.pos);
                return Ok(Read::Done(self.start_skip(code, Skipper::DocIndex { left }, left, at)));
            }
            _ => {
                let value_type = value_type(code, version)?;
                let key = crate::ready!(cur.string(&limits)?);
                let rec = src.split_to(cur.pos).freeze();
                let opts = std::mem::take(&mut self.opts);
                let header = EntryHeader {
                    db: self.db,
                    key: key.get(&rec),
                    value_type,
                    expire_ms: opts.expire_ms,
                    flags: opts.flags.unwrap_or_default(),
                };
                let id = self.next_entry_id();
                self.mode = Mode::Value { id, dec: ValueDecoder::new(value_type, limits), at };
                Event::EntryBegin { id, header }
            }
        };
        Ok(Read::Done(Progress::Event(ev)))
    }

    fn start_skip(&mut self, opcode: u8, skip: Skipper, left: u64, at: Pos) -> Progress {
        if left == 0 {
            Progress::Event(Event::Skipped { opcode })
        } else {
            self.mode = Mode::Skip { opcode, skip, at };
            Progress::Continue
        }
    }

    fn header(&mut self, src: &mut BytesMut) -> Result<Read<Progress>, ErrorKind> {
        let Some(b) = src.get(..9) else {
            return Ok(Read::Need(9));
        };
        if &b[..5] != b"REDIS" || !b[5..].iter().all(u8::is_ascii_digit) {
            return Err(unexpected("the RDB magic REDISnnnn", String::from_utf8_lossy(b)));
        }
        let version = b[5..].iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        src.advance(9);
        self.version = Some(version);
        Ok(Read::Done(Progress::Event(Event::Header { version })))
    }

    fn eof(&mut self, src: &mut BytesMut, in_blob: bool, version: u32) -> Result<Read<Progress>, ErrorKind> {
        if in_blob {
            return Err(unexpected("a record allowed inside a compressed block", "EOF"));
        }
        if !self.tagged.is_empty() {
            let mut ids: Vec<u32> = self.tagged.keys().copied().collect();
            ids.sort_unstable();
            return Err(corrupt("tagged chunk", format_args!("split entries {ids:?} are still open at EOF")));
        }
        if version < 5 {
            src.advance(1);
            self.finished = true;
            return Ok(Read::Done(Progress::Event(Event::RdbEnd { checksum: 0, verified: None })));
        }
        let Some(b) = src.get(1..9) else {
            return Ok(Read::Need(9));
        };
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let checksum = u64::from_le_bytes(a);
        let verified = match &mut self.crc {
            Some(crc) if checksum != 0 => {
                // Everything fed so far was digested; take back what follows the FF byte.
                crc.rewind(src.get(1..).unwrap_or_default());
                let computed = crc.value();
                if computed != checksum {
                    return Err(ErrorKind::Checksum { expected: checksum, computed });
                }
                Some(true)
            }
            _ => None,
        };
        src.advance(9);
        self.finished = true;
        self.crc = None;
        Ok(Read::Done(Progress::Event(Event::RdbEnd { checksum, verified })))
    }

    fn compressed(
        &mut self,
        src: &mut BytesMut,
        code: u8,
        in_blob: bool,
        at: Pos,
    ) -> Result<Read<Progress>, ErrorKind> {
        let codec = Codec::from_opcode(code).unwrap_or(Codec::Lz4);
        if in_blob {
            return Err(unexpected("a record allowed inside a compressed block", "a nested compressed block"));
        }
        let mut cur = Cur::new(src);
        cur.pos = 1;
        let len = crate::ready!(cur.packed()?);
        check_limit("compressed block size", len, self.limits.max_decompressed)?;
        let frame = crate::ready!(cur.take(len as usize));
        let data = compress::decompress(codec, frame, &self.limits)?;
        src.advance(cur.pos);
        let total = data.len();
        self.blob = Some(Blob { codec, data: BytesMut::from(bytes::Bytes::from(data)), total, at: at.outer });
        Ok(Read::Done(Progress::Continue))
    }

    fn tagged_chunk(&mut self, src: &mut BytesMut, at: Pos) -> Result<Read<Progress>, ErrorKind> {
        let mut cur = Cur::new(src);
        cur.pos = 1;
        let sid = crate::ready!(cur.u32le());
        let len = crate::ready!(cur.u32le());
        if sid == 0 || len == 0 {
            return Err(corrupt("tagged chunk", format_args!("stream id {sid}, payload length {len}")));
        }
        check_limit("tagged chunk size", u64::from(len), self.limits.max_string)?;
        crate::ready!(cur.take(len as usize));
        src.advance(9);
        let payload = src.split_to(len as usize);
        match self.tagged.get_mut(&sid) {
            Some(t) => {
                if !self.opts.is_empty() {
                    return Err(unexpected("a key entry after its expiry/flags", "a continuation piece"));
                }
                if t.carry.is_empty() {
                    t.carry = payload;
                } else {
                    t.carry.extend_from_slice(&payload);
                }
                t.piece_at = at;
            }
            None => {
                if self.tagged.len() >= MAX_OPEN_TAGGED {
                    return Err(ErrorKind::Limit {
                        what: "open split entries",
                        value: self.tagged.len() as u64 + 1,
                        limit: MAX_OPEN_TAGGED as u64,
                    });
                }
                let opts = std::mem::take(&mut self.opts);
                let state = TaggedState::Head { db: self.db, opts };
                self.tagged.insert(sid, Tagged { carry: payload, state, piece_at: at });
            }
        }
        self.mode = Mode::Tagged { sid };
        Ok(Read::Done(Progress::Continue))
    }

    /// Next event of the tagged entry `sid` from the bytes its pieces delivered so far.
    fn drain_tagged(&mut self, sid: u32) -> Result<Option<Event>, DecodeError> {
        let version = self.version.unwrap_or(9);
        let limits = self.limits;
        let Some(t) = self.tagged.get_mut(&sid) else {
            return Ok(None);
        };
        let ctx = || Some(format!("tagged stream id {sid}"));
        match &mut t.state {
            TaggedState::Head { db, opts } => match entry_head(&t.carry, version, &limits) {
                Ok(Read::Need(_)) => Ok(None),
                Ok(Read::Done((h, end))) => {
                    let rec = t.carry.split_to(end).freeze();
                    let header = EntryHeader {
                        db: *db,
                        key: h.key.get(&rec),
                        value_type: h.value_type,
                        expire_ms: h.opts.expire_ms.or(opts.expire_ms),
                        flags: h.opts.flags.or(opts.flags).unwrap_or_default(),
                    };
                    let id = EntryId(self.next_id);
                    self.next_id += 1;
                    t.state = TaggedState::Value { id, dec: Box::new(ValueDecoder::new(h.value_type, limits)) };
                    Ok(Some(Event::EntryBegin { id, header }))
                }
                Err(k) => Err(Self::err(t.piece_at, k, ctx())),
            },
            TaggedState::Value { id, dec } => match dec.next(&mut t.carry) {
                Ok(Read::Done(Some(chunk))) => Ok(Some(Event::EntryChunk { id: *id, chunk })),
                Ok(Read::Done(None)) => {
                    let id = *id;
                    if !t.carry.is_empty() {
                        let detail = format_args!("the value ends {} bytes before the end of its piece", t.carry.len());
                        return Err(Self::err(t.piece_at, corrupt("tagged chunk", detail), ctx()));
                    }
                    self.tagged.remove(&sid);
                    Ok(Some(Event::EntryEnd { id }))
                }
                Ok(Read::Need(_)) => Ok(None),
                Err(k) => Err(Self::err(t.piece_at, k, ctx())),
            },
        }
    }

    /// Next record of the journal blob being emitted.
    fn drain_journal(&mut self) -> Result<Option<Event>, DecodeError> {
        let Mode::Journal { carry, left, at } = &mut self.mode else {
            return Ok(None);
        };
        let at = *at;
        if *left == 0 {
            if !carry.is_empty() {
                let detail = format_args!("{} bytes after its records", carry.len());
                return Err(Self::err(at, corrupt("journal blob", detail), None));
            }
            self.mode = Mode::Top;
            return Ok(None);
        }
        match self.journal.next(carry, &self.limits) {
            Ok(Read::Done(JournalItem::Record(record))) => {
                *left -= 1;
                Ok(Some(Event::JournalBlob { record }))
            }
            Ok(Read::Done(JournalItem::LsnMarker(_))) => {
                Err(Self::err(at, unexpected("a journal record in a journal blob", "an LSN marker"), None))
            }
            Ok(Read::Need(_)) => Err(Self::err(at, corrupt("journal blob", "the payload ends inside a record"), None)),
            Err(k) => Err(Self::err(at, k, None)),
        }
    }
}

/// Adjusts a `Need` by `by` bytes in front.
fn shift<T>(r: Read<T>, by: usize) -> Read<T> {
    match r {
        Read::Need(n) => Read::Need(n + by),
        done => done,
    }
}
