//! Decoders of strings and of the flat containers: counted element sequences (types 1, 2, 3,
//! 4, 5, 31, 32), single-blob containers (9, 10, 11, 12, 13, 16, 17, 20) and quicklists (14, 18).

use bytes::{Buf, Bytes, BytesMut};

use super::super::error::{check_limit, corrupt, ErrorKind};
use super::super::event::{Chunk, ValueType};
use super::super::intset::Intset;
use super::super::listpack::{self, parse_f64, Elem};
use super::super::string::{self, StrHeader};
use super::super::{ziplist, Limits, Read};
use super::batch::{Expect, Shape, Sink};
use super::num::ttl_from_wire;
use super::{read_f64, read_packed, Step};
use crate::ready;

/// Ends a container: hands out the last batch once, then `End`.
fn finish(sink: &mut Sink, flushed: &mut bool) -> Result<Read<Step>, ErrorKind> {
    if !*flushed {
        *flushed = true;
        if let Some(c) = sink.finish()? {
            return Ok(Read::Done(Step::Chunk(c)));
        }
    }
    Ok(Read::Done(Step::End))
}

/// String value (type 0): raw bodies stream out in `batch_bytes` pieces.
#[derive(Debug, Default)]
pub(crate) struct StrDec {
    left: Option<u64>,
}

impl StrDec {
    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        let left = match self.left {
            Some(l) => l,
            None => {
                let (h, hn) = ready!(string::peek_header(input)?);
                match h {
                    StrHeader::Raw { len } => {
                        string::check_len(len, limits)?;
                        input.advance(hn);
                        if len == 0 {
                            self.left = Some(0);
                            return Ok(Read::Done(Step::Chunk(Chunk::Str(Bytes::new()))));
                        }
                        len
                    }
                    StrHeader::Int(_) | StrHeader::Lzf { .. } => {
                        let s = ready!(string::read(input, limits)?);
                        self.left = Some(0);
                        return Ok(Read::Done(Step::Chunk(Chunk::Str(s))));
                    }
                }
            }
        };
        if left == 0 {
            return Ok(Read::Done(Step::End));
        }
        let piece = left.min(limits.batch_bytes.max(1) as u64) as usize;
        if input.len() < piece {
            self.left = Some(left);
            return Ok(Read::Need(piece));
        }
        self.left = Some(left - piece as u64);
        Ok(Read::Done(Step::Chunk(Chunk::Str(input.split_to(piece).freeze()))))
    }
}

/// Reads a type-3 score: a 1-byte length then ASCII, or 253/254/255 for nan/+inf/-inf.
fn read_score_text(input: &mut BytesMut) -> Result<Read<f64>, ErrorKind> {
    let Some(&len) = input.first() else {
        return Ok(Read::Need(1));
    };
    let special = match len {
        253 => Some(f64::NAN),
        254 => Some(f64::INFINITY),
        255 => Some(f64::NEG_INFINITY),
        _ => None,
    };
    if let Some(v) = special {
        input.advance(1);
        return Ok(Read::Done(v));
    }
    let total = 1 + usize::from(len);
    let Some(text) = input.get(1..total) else {
        return Ok(Read::Need(total));
    };
    let v = parse_f64(text).ok_or_else(|| corrupt("zset score", String::from_utf8_lossy(text)))?;
    input.advance(total);
    Ok(Read::Done(v))
}

/// A counted sequence: packed count of items, then their elements one by one.
#[derive(Debug)]
pub(crate) struct Counted {
    binary_scores: bool,
    pieces_left: Option<u64>,
    sink: Sink,
    flushed: bool,
}

impl Counted {
    pub(crate) fn new(ty: ValueType, limits: &Limits) -> Counted {
        let shape = Shape::of(ty).unwrap_or(Shape::List);
        Counted {
            binary_scores: ty == ValueType::Zset2,
            pieces_left: None,
            sink: Sink::new(shape, limits),
            flushed: false,
        }
    }

    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        let mut left = match self.pieces_left {
            Some(n) => n,
            None => {
                let n = ready!(read_packed(input)?);
                check_limit("container element count", n, limits.max_elements)?;
                self.sink.hint(n);
                let pieces = n
                    .checked_mul(self.sink.shape().arity())
                    .ok_or_else(|| corrupt("container", format_args!("count {n} overflows")))?;
                self.pieces_left = Some(pieces);
                pieces
            }
        };
        while left > 0 {
            let chunk = match self.sink.expect() {
                Expect::Bytes => {
                    let s = ready!(string::read(input, limits)?);
                    self.sink.push_bytes(s)?
                }
                Expect::Score => {
                    let v = if self.binary_scores { ready!(read_f64(input)) } else { ready!(read_score_text(input)?) };
                    self.sink.push_score(v)?
                }
                Expect::Ttl => {
                    let v = ready!(string::read_int(input, limits)?);
                    self.sink.push_ttl(ttl_from_wire(v)?)?
                }
            };
            left -= 1;
            self.pieces_left = Some(left);
            if let Some(c) = chunk {
                return Ok(Read::Done(Step::Chunk(c)));
            }
        }
        finish(&mut self.sink, &mut self.flushed)
    }
}

/// A zipmap (type 9) walked element by element.
#[derive(Debug)]
pub(crate) struct Zipmap {
    data: Bytes,
    pos: usize,
    value_next: bool,
    declared: Option<u8>,
    pairs: u64,
}

impl Zipmap {
    fn new(data: Bytes) -> Result<Zipmap, ErrorKind> {
        let first = *data.first().ok_or_else(|| corrupt("zipmap", "empty blob"))?;
        if data.last() != Some(&0xff) || data.len() < 2 {
            return Err(corrupt("zipmap", "missing 0xFF terminator"));
        }
        Ok(Zipmap { data, pos: 1, value_next: false, declared: (first < 254).then_some(first), pairs: 0 })
    }

    fn len_at(&self, pos: usize) -> Result<(Option<usize>, usize), ErrorKind> {
        match self.data.get(pos) {
            Some(0xff) => Ok((None, 1)),
            Some(254) => {
                let b = self.data.get(pos + 1..pos + 5).ok_or_else(|| corrupt("zipmap", "truncated length"))?;
                Ok((Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize), 5))
            }
            Some(&l) => Ok((Some(usize::from(l)), 1)),
            None => Err(corrupt("zipmap", "entries run past the end")),
        }
    }

    fn next(&mut self) -> Result<Option<Elem>, ErrorKind> {
        let (len, n) = self.len_at(self.pos)?;
        let Some(len) = len else {
            if self.value_next {
                return Err(corrupt("zipmap", "key without a value"));
            }
            if self.pos + 1 != self.data.len() {
                return Err(corrupt("zipmap", "terminator before the end"));
            }
            if let Some(d) = self.declared {
                if u64::from(d) != self.pairs {
                    return Err(corrupt("zipmap", format_args!("header says {d} pairs, found {}", self.pairs)));
                }
            }
            return Ok(None);
        };
        let mut start = self.pos + n;
        let mut free = 0usize;
        if self.value_next {
            free = usize::from(*self.data.get(start).ok_or_else(|| corrupt("zipmap", "truncated free byte"))?);
            start += 1;
            self.pairs += 1;
        }
        let end = start.checked_add(len).filter(|&e| e < self.data.len());
        let end = end.ok_or_else(|| corrupt("zipmap", "entry runs past the end"))?;
        self.pos = end.checked_add(free).ok_or_else(|| corrupt("zipmap", "free bytes overflow"))?;
        self.value_next = !self.value_next;
        Ok(Some(Elem::Str(self.data.slice(start..end))))
    }
}

/// Any single-blob element source.
#[derive(Debug)]
pub(crate) enum BlobCursor {
    Listpack(listpack::Cursor),
    Ziplist(ziplist::Cursor),
    Intset(Intset, usize),
    Zipmap(Zipmap),
    Plain(Option<Bytes>),
}

impl BlobCursor {
    fn open(ty: ValueType, blob: Bytes) -> Result<BlobCursor, ErrorKind> {
        use ValueType as T;
        Ok(match ty {
            T::HashZipmap => BlobCursor::Zipmap(Zipmap::new(blob)?),
            T::SetIntset => BlobCursor::Intset(Intset::new(blob)?, 0),
            T::ListZiplist | T::ZsetZiplist | T::HashZiplist | T::ListQuicklist => {
                BlobCursor::Ziplist(ziplist::Cursor::new(blob)?)
            }
            _ => BlobCursor::Listpack(listpack::Cursor::new(blob)?),
        })
    }

    /// Elements expected (for allocation hints only).
    fn hint(&self) -> u64 {
        match self {
            BlobCursor::Listpack(c) => u64::from(c.declared_count().unwrap_or(0)),
            BlobCursor::Ziplist(c) => u64::from(c.declared_count().unwrap_or(0)),
            BlobCursor::Intset(s, _) => s.len() as u64,
            BlobCursor::Zipmap(_) | BlobCursor::Plain(_) => 1,
        }
    }

    fn next(&mut self) -> Result<Option<Elem>, ErrorKind> {
        match self {
            BlobCursor::Listpack(c) => c.next(),
            BlobCursor::Ziplist(c) => c.next(),
            BlobCursor::Intset(s, i) => {
                if *i >= s.len() {
                    return Ok(None);
                }
                let v = s.get_checked(*i)?;
                *i += 1;
                Ok(Some(Elem::Int(v)))
            }
            BlobCursor::Zipmap(z) => z.next(),
            BlobCursor::Plain(p) => Ok(p.take().map(Elem::Str)),
        }
    }

    /// Feeds elements to `sink` until a chunk is full (returned) or the blob ends (`None`).
    fn drain(&mut self, sink: &mut Sink) -> Result<Option<Chunk>, ErrorKind> {
        while let Some(e) = self.next()? {
            let out = match sink.expect() {
                Expect::Bytes => sink.push_bytes(e.into_bytes())?,
                Expect::Score => {
                    let v = e.as_f64().ok_or_else(|| corrupt("zset score", format_args!("{e:?} is not a number")))?;
                    sink.push_score(v)?
                }
                Expect::Ttl => return Err(corrupt("container", "TTLs cannot be stored in a blob")),
            };
            if out.is_some() {
                return Ok(out);
            }
        }
        Ok(None)
    }
}

/// A container stored as one blob string (listpack, ziplist, intset, zipmap).
#[derive(Debug)]
pub(crate) struct BlobDec {
    ty: ValueType,
    cursor: Option<BlobCursor>,
    sink: Sink,
    flushed: bool,
}

impl BlobDec {
    pub(crate) fn new(ty: ValueType, limits: &Limits) -> BlobDec {
        let shape = Shape::of(ty).unwrap_or(Shape::List);
        BlobDec { ty, cursor: None, sink: Sink::new(shape, limits), flushed: false }
    }

    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        let cursor = match &mut self.cursor {
            Some(c) => c,
            None => {
                let blob = ready!(string::read(input, limits)?);
                let c = BlobCursor::open(self.ty, blob)?;
                let hint = c.hint() / self.sink.shape().arity();
                check_limit("container element count", hint, limits.max_elements)?;
                self.sink.hint(hint);
                self.cursor.insert(c)
            }
        };
        if let Some(c) = cursor.drain(&mut self.sink)? {
            return Ok(Read::Done(Step::Chunk(c)));
        }
        finish(&mut self.sink, &mut self.flushed)
    }
}

/// A quicklist: packed node count, then per node [packed container (type 18)] + blob string.
#[derive(Debug)]
pub(crate) struct QuicklistDec {
    v2: bool,
    nodes_left: Option<u64>,
    container: Option<u64>,
    cursor: Option<BlobCursor>,
    sink: Sink,
    flushed: bool,
}

impl QuicklistDec {
    pub(crate) fn new(ty: ValueType, limits: &Limits) -> QuicklistDec {
        QuicklistDec {
            v2: ty == ValueType::ListQuicklist2,
            nodes_left: None,
            container: None,
            cursor: None,
            sink: Sink::new(Shape::List, limits),
            flushed: false,
        }
    }

    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        let mut left = match self.nodes_left {
            Some(n) => n,
            None => {
                let n = ready!(read_packed(input)?);
                check_limit("quicklist node count", n, limits.max_elements)?;
                self.nodes_left = Some(n);
                n
            }
        };
        loop {
            if let Some(c) = &mut self.cursor {
                if let Some(chunk) = c.drain(&mut self.sink)? {
                    return Ok(Read::Done(Step::Chunk(chunk)));
                }
                self.cursor = None;
            }
            if left == 0 {
                return finish(&mut self.sink, &mut self.flushed);
            }
            let container = if self.v2 {
                match self.container {
                    Some(c) => c,
                    None => {
                        let c = ready!(read_packed(input)?);
                        if c != 1 && c != 2 {
                            return Err(corrupt("quicklist", format_args!("node container {c} (expected 1 or 2)")));
                        }
                        self.container = Some(c);
                        c
                    }
                }
            } else {
                2
            };
            let blob = ready!(string::read(input, limits)?);
            self.container = None;
            left -= 1;
            self.nodes_left = Some(left);
            let c = match (self.v2, container) {
                (false, _) => BlobCursor::Ziplist(ziplist::Cursor::new(blob)?),
                (true, 1) => BlobCursor::Plain(Some(blob)),
                _ => BlobCursor::Listpack(listpack::Cursor::new(blob)?),
            };
            self.sink.hint(c.hint());
            self.cursor = Some(c);
        }
    }
}
