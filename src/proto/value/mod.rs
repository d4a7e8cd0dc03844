//! Value bodies of key entries (spec 5.5): the incremental [`ValueDecoder`] (one state machine
//! per type family, bounded chunks), the encoders ([`encode_value`]) and the [`Dialect`] rules
//! that pick a type for a value ([`choose_type`]).
//!
//! The decoder never buffers a whole big container: it consumes one piece (an element, a
//! listpack/ziplist node, a number) at a time and emits chunks whose boundaries depend only on
//! the bytes and [`Limits::batch_elements`] / [`Limits::batch_bytes`].

mod batch;
mod dialect;
mod dragonfly;
mod encode;
mod flat;
mod module;
mod num;
mod stream;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_redis;

use bytes::{Buf, BytesMut};

use super::error::{unexpected, ErrorKind};
use super::event::{Chunk, ValueType};
use super::{packed, string, Limits, Read};

pub use dialect::{choose_type, Dialect};
pub use encode::encode_value;
pub use module::{module_id, module_name};
pub use num::{format_score, TTL_BASE};

/// What a sub-decoder produced.
#[derive(Debug)]
pub(crate) enum Step {
    /// A chunk to hand out.
    Chunk(Chunk),
    /// The value is complete.
    End,
}

/// Incremental decoder of one value body of a given type (the bytes after the key).
#[derive(Debug)]
pub struct ValueDecoder {
    limits: Limits,
    inner: Inner,
    finished: bool,
}

#[derive(Debug)]
enum Inner {
    Str(flat::StrDec),
    Counted(flat::Counted),
    Blob(flat::BlobDec),
    Quicklist(flat::QuicklistDec),
    Stream(Box<stream::StreamDec>),
    Module(module::ModuleDec),
    Json(bool),
    Df(Box<dragonfly::DfDec>),
    Unsupported(u8),
}

impl ValueDecoder {
    /// A decoder for a value of type `ty`. Type 6 (pre-Redis-5 modules) cannot be parsed
    /// generically: the first [`next`](Self::next) returns an error.
    pub fn new(ty: ValueType, limits: Limits) -> ValueDecoder {
        use ValueType as T;
        let inner = match ty {
            T::String => Inner::Str(flat::StrDec::default()),
            T::List | T::Set | T::ZsetV1 | T::Hash | T::Zset2 | T::HashWithExpiry | T::SetWithExpiry => {
                Inner::Counted(flat::Counted::new(ty, &limits))
            }
            T::HashZipmap
            | T::ListZiplist
            | T::SetIntset
            | T::ZsetZiplist
            | T::HashZiplist
            | T::HashListpack
            | T::ZsetListpack
            | T::SetListpack => Inner::Blob(flat::BlobDec::new(ty, &limits)),
            T::ListQuicklist | T::ListQuicklist2 => Inner::Quicklist(flat::QuicklistDec::new(ty, &limits)),
            T::StreamListpacks | T::StreamListpacks2 | T::StreamListpacks3 => {
                Inner::Stream(Box::new(stream::StreamDec::new(ty)))
            }
            T::Module2 => Inner::Module(module::ModuleDec::default()),
            T::ModuleV1 => Inner::Unsupported(ty.code()),
            T::Json | T::JsonOld => Inner::Json(false),
            T::Sbf | T::Sbf2 | T::Cms | T::TopK | T::Cuckoo => Inner::Df(Box::new(dragonfly::DfDec::new(ty))),
        };
        ValueDecoder { limits, inner, finished: false }
    }

    /// Decodes the next chunk from the front of `input`: `Done(Some(chunk))` for each chunk,
    /// `Done(None)` once when the value is complete, `Need(n)` when at least `n` bytes (counted
    /// from the front of `input`) are needed for the next piece, none of which was consumed.
    pub fn next(&mut self, input: &mut BytesMut) -> Result<Read<Option<Chunk>>, ErrorKind> {
        if self.finished {
            return Err(unexpected("no further call after the end of the value", "another call"));
        }
        let limits = &self.limits;
        let step = match &mut self.inner {
            Inner::Str(d) => d.step(input, limits)?,
            Inner::Counted(d) => d.step(input, limits)?,
            Inner::Blob(d) => d.step(input, limits)?,
            Inner::Quicklist(d) => d.step(input, limits)?,
            Inner::Stream(d) => d.step(input, limits)?,
            Inner::Module(d) => d.step(input, limits)?,
            Inner::Df(d) => d.step(input, limits)?,
            Inner::Json(done) => {
                if *done {
                    Read::Done(Step::End)
                } else {
                    let s = crate::ready!(string::read(input, limits)?);
                    *done = true;
                    Read::Done(Step::Chunk(Chunk::Json(s)))
                }
            }
            Inner::Unsupported(code) => {
                return Err(unexpected(
                    "a value type that can be parsed generically",
                    format_args!("type {code} (module value in the pre-Redis-5 format)"),
                ))
            }
        };
        Ok(match step {
            Read::Need(n) => Read::Need(n),
            Read::Done(Step::Chunk(c)) => Read::Done(Some(c)),
            Read::Done(Step::End) => {
                self.finished = true;
                Read::Done(None)
            }
        })
    }
}

/// Reads and consumes a packed number.
pub(crate) fn read_packed(input: &mut BytesMut) -> Result<Read<u64>, ErrorKind> {
    let (v, n) = crate::ready!(packed::peek_len(input)?);
    input.advance(n);
    Ok(Read::Done(v))
}

/// Reads and consumes `N` fixed bytes.
pub(crate) fn read_fixed<const N: usize>(input: &mut BytesMut) -> Read<[u8; N]> {
    match input.get(..N) {
        Some(s) => {
            let mut a = [0u8; N];
            a.copy_from_slice(s);
            input.advance(N);
            Read::Done(a)
        }
        None => Read::Need(N),
    }
}

/// Reads a binary double (8 bytes LE).
pub(crate) fn read_f64(input: &mut BytesMut) -> Read<f64> {
    match read_fixed::<8>(input) {
        Read::Done(a) => Read::Done(f64::from_le_bytes(a)),
        Read::Need(n) => Read::Need(n),
    }
}

/// Decodes a whole value body held in `bytes` into chunks (test helper).
#[cfg(test)]
pub(crate) fn decode_chunks(ty: ValueType, bytes: &[u8], limits: &Limits) -> Result<Vec<Chunk>, ErrorKind> {
    let mut input = BytesMut::from(bytes);
    let mut dec = ValueDecoder::new(ty, *limits);
    let mut out = Vec::new();
    loop {
        match dec.next(&mut input)? {
            Read::Done(Some(c)) => out.push(c),
            Read::Done(None) => break,
            Read::Need(_) => return Err(ErrorKind::Truncated("value")),
        }
    }
    string::expect_consumed("value", input.len())?;
    Ok(out)
}
