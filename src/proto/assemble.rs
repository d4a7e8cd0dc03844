//! Folding value chunks back into whole values: [`ValueBuilder`] for one value,
//! [`Assembler`] for an event stream (entries may interleave by [`EntryId`]), and
//! [`decode_value`] for a value body held whole in memory.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::error::{unexpected, ErrorKind};
use super::event::{Chunk, EntryHeader, EntryId, Event, ValueType};
use super::model::Value;
use super::value::ValueDecoder;
use super::{string, Limits, Read};

#[derive(Debug)]
enum Acc {
    Str(Vec<Bytes>),
    Value(Value),
    Whole(Option<Value>),
    Module(Option<Value>),
    Unsupported,
}

/// Accumulates the chunks of one value of a known type.
#[derive(Debug)]
pub struct ValueBuilder {
    ty: ValueType,
    acc: Acc,
}

fn chunk_name(c: &Chunk) -> &'static str {
    match c {
        Chunk::Str(_) => "Str",
        Chunk::List(_) => "List",
        Chunk::Set(_) => "Set",
        Chunk::SetWithTtl(_) => "SetWithTtl",
        Chunk::Hash(_) => "Hash",
        Chunk::HashWithTtl(_) => "HashWithTtl",
        Chunk::Zset(_) => "Zset",
        Chunk::StreamEntries(_) => "StreamEntries",
        Chunk::StreamMeta(_) => "StreamMeta",
        Chunk::StreamGroup(_) => "StreamGroup",
        Chunk::Json(_) => "Json",
        Chunk::Sbf(_) => "Sbf",
        Chunk::Cms(_) => "Cms",
        Chunk::TopK(_) => "TopK",
        Chunk::Cuckoo(_) => "Cuckoo",
        Chunk::Module(_) => "Module",
    }
}

impl ValueBuilder {
    /// A builder for a value of type `ty`.
    pub fn new(ty: ValueType) -> ValueBuilder {
        use ValueType as T;
        let acc = match ty {
            T::String => Acc::Str(Vec::new()),
            T::List | T::ListZiplist | T::ListQuicklist | T::ListQuicklist2 => Acc::Value(Value::List(Vec::new())),
            T::Set | T::SetIntset | T::SetListpack => Acc::Value(Value::Set(Vec::new())),
            T::SetWithExpiry => Acc::Value(Value::SetWithTtl(Vec::new())),
            T::Hash | T::HashZipmap | T::HashZiplist | T::HashListpack => Acc::Value(Value::Hash(Vec::new())),
            T::HashWithExpiry => Acc::Value(Value::HashWithTtl(Vec::new())),
            T::ZsetV1 | T::Zset2 | T::ZsetZiplist | T::ZsetListpack => Acc::Value(Value::Zset(Vec::new())),
            T::StreamListpacks | T::StreamListpacks2 | T::StreamListpacks3 => Acc::Value(Value::Stream(Box::default())),
            T::Json | T::JsonOld | T::Sbf | T::Sbf2 | T::Cms | T::TopK | T::Cuckoo => Acc::Whole(None),
            T::Module2 => Acc::Module(None),
            T::ModuleV1 => Acc::Unsupported,
        };
        ValueBuilder { ty, acc }
    }

    /// Adds the next chunk; its kind must match the type.
    pub fn push(&mut self, chunk: Chunk) -> Result<(), ErrorKind> {
        use ValueType as T;
        let ty = self.ty;
        let mismatch = |c: &Chunk| {
            unexpected(
                "a chunk of the entry's value type",
                format_args!("{} chunk for type {}", chunk_name(c), ty.code()),
            )
        };
        match (&mut self.acc, chunk) {
            (Acc::Str(parts), Chunk::Str(s)) => parts.push(s),
            (Acc::Value(Value::List(v)), Chunk::List(mut c)) => v.append(&mut c),
            (Acc::Value(Value::Set(v)), Chunk::Set(mut c)) => v.append(&mut c),
            (Acc::Value(Value::SetWithTtl(v)), Chunk::SetWithTtl(mut c)) => v.append(&mut c),
            (Acc::Value(Value::Hash(v)), Chunk::Hash(mut c)) => v.append(&mut c),
            (Acc::Value(Value::HashWithTtl(v)), Chunk::HashWithTtl(mut c)) => v.append(&mut c),
            (Acc::Value(Value::Zset(v)), Chunk::Zset(mut c)) => v.append(&mut c),
            (Acc::Value(Value::Stream(s)), Chunk::StreamEntries(mut c)) => s.entries.append(&mut c),
            (Acc::Value(Value::Stream(s)), Chunk::StreamMeta(m)) => s.meta = m,
            (Acc::Value(Value::Stream(s)), Chunk::StreamGroup(g)) => s.groups.push(g),
            (Acc::Whole(slot @ None), c) => {
                let v = match (ty, c) {
                    (T::Json | T::JsonOld, Chunk::Json(t)) => Value::Json(t),
                    (T::Sbf | T::Sbf2, Chunk::Sbf(s)) => Value::Sbf(s),
                    (T::Cms, Chunk::Cms(c)) => Value::Cms(c),
                    (T::TopK, Chunk::TopK(t)) => Value::TopK(t),
                    (T::Cuckoo, Chunk::Cuckoo(c)) => Value::Cuckoo(c),
                    (_, c) => return Err(mismatch(&c)),
                };
                *slot = Some(v);
            }
            (Acc::Module(slot @ None), Chunk::Json(t)) => *slot = Some(Value::Json(t)),
            (Acc::Module(slot @ None), Chunk::Module(m)) => *slot = Some(Value::Module(m)),
            (_, c) => return Err(mismatch(&c)),
        }
        Ok(())
    }

    /// The complete value.
    pub fn finish(self) -> Result<Value, ErrorKind> {
        match self.acc {
            Acc::Str(parts) => Ok(Value::String(match parts.len() {
                0 => return Err(ErrorKind::Truncated("string value (no chunk)")),
                1 => parts.into_iter().next().unwrap_or_default(),
                _ => {
                    let total = parts.iter().map(Bytes::len).sum();
                    let mut b = BytesMut::with_capacity(total);
                    parts.iter().for_each(|p| b.extend_from_slice(p));
                    b.freeze()
                }
            })),
            Acc::Value(v) => Ok(v),
            Acc::Whole(Some(v)) | Acc::Module(Some(v)) => Ok(v),
            Acc::Whole(None) | Acc::Module(None) => Err(ErrorKind::Truncated("value (no chunk)")),
            Acc::Unsupported => Err(ErrorKind::UnknownType(self.ty.code())),
        }
    }
}

/// A complete entry, or any other event passed through.
#[derive(Debug, Clone, PartialEq)]
pub enum Assembled {
    /// A key entry with its whole value.
    Entry {
        /// Key, db, type, expiry, flags.
        header: EntryHeader,
        /// The value.
        value: Value,
    },
    /// Any event that is not part of an entry.
    Other(Event),
}

/// Folds `EntryBegin` / `EntryChunk` / `EntryEnd` events into whole entries.
#[derive(Debug, Default)]
pub struct Assembler {
    open: HashMap<EntryId, (EntryHeader, ValueBuilder)>,
}

impl Assembler {
    /// An assembler with no open entries.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Number of entries begun and not yet ended.
    pub fn open_entries(&self) -> usize {
        self.open.len()
    }

    /// Consumes one event; returns a complete entry at its `EntryEnd`, other events as they come.
    pub fn push(&mut self, ev: Event) -> Result<Option<Assembled>, ErrorKind> {
        match ev {
            Event::EntryBegin { id, header } => {
                let b = ValueBuilder::new(header.value_type);
                if self.open.insert(id, (header, b)).is_some() {
                    return Err(unexpected("a new entry id", format_args!("entry {} begun twice", id.0)));
                }
                Ok(None)
            }
            Event::EntryChunk { id, chunk } => {
                let (_, b) = self
                    .open
                    .get_mut(&id)
                    .ok_or_else(|| unexpected("a chunk of an open entry", format_args!("entry {}", id.0)))?;
                b.push(chunk)?;
                Ok(None)
            }
            Event::EntryEnd { id } => {
                let (header, b) = self
                    .open
                    .remove(&id)
                    .ok_or_else(|| unexpected("the end of an open entry", format_args!("entry {}", id.0)))?;
                Ok(Some(Assembled::Entry { header, value: b.finish()? }))
            }
            other => Ok(Some(Assembled::Other(other))),
        }
    }
}

/// Decodes a whole value body (the bytes after the key) of type `ty`; leftover bytes are an error.
pub fn decode_value(ty: ValueType, bytes: &[u8], limits: &Limits) -> Result<Value, ErrorKind> {
    let mut input = BytesMut::from(bytes);
    let mut dec = ValueDecoder::new(ty, *limits);
    let mut b = ValueBuilder::new(ty);
    loop {
        match dec.next(&mut input)? {
            Read::Done(Some(c)) => b.push(c)?,
            Read::Done(None) => break,
            Read::Need(_) => return Err(ErrorKind::Truncated("value")),
        }
    }
    string::expect_consumed("value", input.len())?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::event::KeyFlags;

    fn header(key: &str, ty: ValueType) -> EntryHeader {
        EntryHeader {
            db: 0,
            key: Bytes::copy_from_slice(key.as_bytes()),
            value_type: ty,
            expire_ms: None,
            flags: KeyFlags::default(),
        }
    }

    #[test]
    fn interleaved_entries_fold_by_id() {
        let mut a = Assembler::new();
        let (one, two) = (EntryId(1), EntryId(2));
        assert_eq!(a.push(Event::EntryBegin { id: one, header: header("l", ValueType::ListQuicklist2) }), Ok(None));
        assert_eq!(a.push(Event::EntryBegin { id: two, header: header("s", ValueType::String) }), Ok(None));
        assert_eq!(a.push(Event::EntryChunk { id: one, chunk: Chunk::List(vec![Bytes::from("a")]) }), Ok(None));
        assert_eq!(a.push(Event::EntryChunk { id: two, chunk: Chunk::Str(Bytes::from("he")) }), Ok(None));
        assert_eq!(a.push(Event::SelectDb { db: 3 }), Ok(Some(Assembled::Other(Event::SelectDb { db: 3 }))));
        assert_eq!(a.push(Event::EntryChunk { id: two, chunk: Chunk::Str(Bytes::from("llo")) }), Ok(None));
        assert_eq!(a.push(Event::EntryChunk { id: one, chunk: Chunk::List(vec![Bytes::from("b")]) }), Ok(None));
        assert_eq!(a.open_entries(), 2);
        assert_eq!(
            a.push(Event::EntryEnd { id: two }),
            Ok(Some(Assembled::Entry {
                header: header("s", ValueType::String),
                value: Value::String(Bytes::from("hello"))
            }))
        );
        assert_eq!(
            a.push(Event::EntryEnd { id: one }),
            Ok(Some(Assembled::Entry {
                header: header("l", ValueType::ListQuicklist2),
                value: Value::List(vec![Bytes::from("a"), Bytes::from("b")])
            }))
        );
        assert_eq!(a.open_entries(), 0);
    }

    #[test]
    fn mismatches_are_errors() {
        let mut a = Assembler::new();
        assert!(a.push(Event::EntryChunk { id: EntryId(9), chunk: Chunk::Str(Bytes::new()) }).is_err());
        assert!(a.push(Event::EntryEnd { id: EntryId(9) }).is_err());
        a.push(Event::EntryBegin { id: EntryId(1), header: header("h", ValueType::HashListpack) }).unwrap();
        assert!(a.push(Event::EntryBegin { id: EntryId(1), header: header("h", ValueType::Hash) }).is_err());
        assert!(a.push(Event::EntryChunk { id: EntryId(1), chunk: Chunk::Set(vec![]) }).is_err());
        let mut b = ValueBuilder::new(ValueType::Json);
        b.push(Chunk::Json(Bytes::from("1"))).unwrap();
        assert!(b.push(Chunk::Json(Bytes::from("2"))).is_err(), "a whole-value type takes one chunk");
        assert!(ValueBuilder::new(ValueType::String).finish().is_err());
        assert!(ValueBuilder::new(ValueType::ModuleV1).finish().is_err());
        let mut m = ValueBuilder::new(ValueType::Module2);
        m.push(Chunk::Json(Bytes::from("{}"))).unwrap();
        assert_eq!(m.finish(), Ok(Value::Json(Bytes::from("{}"))));
    }

    #[test]
    fn decode_value_whole_buffer() {
        let limits = Limits::default();
        assert_eq!(
            decode_value(ValueType::Set, &[2, 1, b'a', 1, b'b'], &limits),
            Ok(Value::Set(vec!["a".into(), "b".into()]))
        );
        assert!(decode_value(ValueType::Set, &[2, 1, b'a', 1, b'b', 0], &limits).is_err(), "leftover byte");
        assert_eq!(decode_value(ValueType::Set, &[2, 1, b'a'], &limits), Err(ErrorKind::Truncated("value")));
        assert_eq!(decode_value(ValueType::Hash, &[0], &limits), Ok(Value::Hash(vec![])));
    }
}
