//! Batching of container elements into bounded chunks: a [`Sink`] takes a flat sequence of
//! elements (member, field, value, score, TTL), groups them into items and emits a chunk when
//! `batch_elements` items or `batch_bytes` payload bytes are reached.

use bytes::Bytes;

use super::super::error::{check_limit, corrupt, ErrorKind};
use super::super::event::{Chunk, ValueType};
use super::super::Limits;

/// What the next element of the flat sequence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A byte string (member, field, value, list element).
    Bytes,
    /// A zset score.
    Score,
    /// A member/field TTL ("long long as string").
    Ttl,
}

/// The logical item shape of a container type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    List,
    Set,
    Hash,
    Zset,
    HashTtl,
    SetTtl,
}

impl Shape {
    /// The item shape of a flat container type (`None` for the others).
    pub(crate) fn of(ty: ValueType) -> Option<Shape> {
        use ValueType as T;
        Some(match ty {
            T::List | T::ListZiplist | T::ListQuicklist | T::ListQuicklist2 => Shape::List,
            T::Set | T::SetIntset | T::SetListpack => Shape::Set,
            T::Hash | T::HashZipmap | T::HashZiplist | T::HashListpack => Shape::Hash,
            T::ZsetV1 | T::Zset2 | T::ZsetZiplist | T::ZsetListpack => Shape::Zset,
            T::HashWithExpiry => Shape::HashTtl,
            T::SetWithExpiry => Shape::SetTtl,
            _ => return None,
        })
    }

    /// Elements per item.
    pub(crate) fn arity(self) -> u64 {
        match self {
            Shape::List | Shape::Set => 1,
            Shape::Hash | Shape::Zset | Shape::SetTtl => 2,
            Shape::HashTtl => 3,
        }
    }
}

#[derive(Debug)]
enum Batch {
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    Hash(Vec<(Bytes, Bytes)>),
    Zset(Vec<(Bytes, f64)>),
    HashTtl(Vec<(Bytes, Bytes, Option<i64>)>),
    SetTtl(Vec<(Bytes, Option<i64>)>),
}

impl Batch {
    fn new(shape: Shape, cap: usize) -> Batch {
        match shape {
            Shape::List => Batch::List(Vec::with_capacity(cap)),
            Shape::Set => Batch::Set(Vec::with_capacity(cap)),
            Shape::Hash => Batch::Hash(Vec::with_capacity(cap)),
            Shape::Zset => Batch::Zset(Vec::with_capacity(cap)),
            Shape::HashTtl => Batch::HashTtl(Vec::with_capacity(cap)),
            Shape::SetTtl => Batch::SetTtl(Vec::with_capacity(cap)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::List(v) | Batch::Set(v) => v.len(),
            Batch::Hash(v) => v.len(),
            Batch::Zset(v) => v.len(),
            Batch::HashTtl(v) => v.len(),
            Batch::SetTtl(v) => v.len(),
        }
    }

    fn into_chunk(self) -> Chunk {
        match self {
            Batch::List(v) => Chunk::List(v),
            Batch::Set(v) => Chunk::Set(v),
            Batch::Hash(v) => Chunk::Hash(v),
            Batch::Zset(v) => Chunk::Zset(v),
            Batch::HashTtl(v) => Chunk::HashWithTtl(v),
            Batch::SetTtl(v) => Chunk::SetWithTtl(v),
        }
    }
}

/// Groups a flat element sequence into items and items into bounded chunks.
#[derive(Debug)]
pub(crate) struct Sink {
    shape: Shape,
    batch: Batch,
    bytes: usize,
    items: u64,
    hint: u64,
    a: Option<Bytes>,
    b: Option<Bytes>,
    max_items: usize,
    max_bytes: usize,
    max_total: u64,
}

impl Sink {
    pub(crate) fn new(shape: Shape, limits: &Limits) -> Sink {
        Sink {
            shape,
            batch: Batch::new(shape, 0),
            bytes: 0,
            items: 0,
            hint: 0,
            a: None,
            b: None,
            max_items: limits.batch_elements.max(1),
            max_bytes: limits.batch_bytes.max(1),
            max_total: limits.max_elements,
        }
    }

    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// Tells the sink how many more items are expected (sizes the next batch allocation).
    pub(crate) fn hint(&mut self, items: u64) {
        self.hint = items;
    }

    /// What the next element must be.
    pub(crate) fn expect(&self) -> Expect {
        match (self.shape, self.a.is_some(), self.b.is_some()) {
            (Shape::Zset, true, _) => Expect::Score,
            (Shape::SetTtl, true, _) | (Shape::HashTtl, true, true) => Expect::Ttl,
            _ => Expect::Bytes,
        }
    }

    fn ensure_capacity(&mut self) {
        if self.batch.len() == 0 {
            let cap = (self.max_items as u64).min(self.hint.max(1)).min(1024) as usize;
            self.batch = Batch::new(self.shape, cap);
        }
    }

    fn complete(&mut self, weight: usize) -> Result<Option<Chunk>, ErrorKind> {
        self.items += 1;
        check_limit("container element count", self.items, self.max_total)?;
        self.hint = self.hint.saturating_sub(1);
        self.bytes = self.bytes.saturating_add(weight);
        if self.batch.len() >= self.max_items || self.bytes >= self.max_bytes {
            Ok(self.take())
        } else {
            Ok(None)
        }
    }

    /// Adds a byte-string element.
    pub(crate) fn push_bytes(&mut self, s: Bytes) -> Result<Option<Chunk>, ErrorKind> {
        if self.expect() != Expect::Bytes {
            return Err(corrupt("container", "a string where a score or TTL belongs"));
        }
        self.ensure_capacity();
        let w = s.len();
        match (&mut self.batch, self.a.take()) {
            (Batch::List(v), None) | (Batch::Set(v), None) => v.push(s),
            (Batch::Hash(v), Some(f)) => {
                let w = w + f.len();
                v.push((f, s));
                return self.complete(w);
            }
            (Batch::HashTtl(_), None) | (Batch::Hash(_), None) | (Batch::Zset(_), None) | (Batch::SetTtl(_), None) => {
                self.a = Some(s);
                return Ok(None);
            }
            (Batch::HashTtl(_), Some(f)) => {
                self.a = Some(f);
                self.b = Some(s);
                return Ok(None);
            }
            (_, Some(_)) => return Err(corrupt("container", "element sequence out of order")),
        }
        self.complete(w)
    }

    /// Adds a score (the member must be pending).
    pub(crate) fn push_score(&mut self, score: f64) -> Result<Option<Chunk>, ErrorKind> {
        match (&mut self.batch, self.a.take()) {
            (Batch::Zset(v), Some(m)) => {
                let w = m.len() + 8;
                v.push((m, score));
                self.complete(w)
            }
            _ => Err(corrupt("container", "a score where none belongs")),
        }
    }

    /// Adds a TTL (absolute Unix seconds or none) to the pending member / field+value.
    pub(crate) fn push_ttl(&mut self, ttl: Option<i64>) -> Result<Option<Chunk>, ErrorKind> {
        match (&mut self.batch, self.a.take(), self.b.take()) {
            (Batch::SetTtl(v), Some(m), None) => {
                let w = m.len() + 8;
                v.push((m, ttl));
                self.complete(w)
            }
            (Batch::HashTtl(v), Some(f), Some(val)) => {
                let w = f.len() + val.len() + 8;
                v.push((f, val, ttl));
                self.complete(w)
            }
            _ => Err(corrupt("container", "a TTL where none belongs")),
        }
    }

    /// Takes the current batch as a chunk (`None` when empty).
    pub(crate) fn take(&mut self) -> Option<Chunk> {
        if self.batch.len() == 0 {
            return None;
        }
        self.bytes = 0;
        let b = std::mem::replace(&mut self.batch, Batch::new(self.shape, 0));
        Some(b.into_chunk())
    }

    /// Ends the element sequence: an incomplete item is corruption; returns the last batch.
    pub(crate) fn finish(&mut self) -> Result<Option<Chunk>, ErrorKind> {
        if self.a.is_some() {
            return Err(corrupt("container", "odd number of elements (incomplete pair)"));
        }
        Ok(self.take())
    }
}
