//! Stand-in for the value decoder of `proto::value` while that module is being written:
//! decodes string values only (same interface), so the top-level decoder can be tested alone.

use bytes::{Buf, BytesMut};

use crate::proto::error::{check_limit, ErrorKind};
use crate::proto::event::{Chunk, ValueType};
use crate::proto::string::{self, StrHeader};
use crate::proto::{Limits, Read};

/// Decodes one value of a key entry, chunk by chunk.
#[derive(Debug)]
pub struct ValueDecoder {
    ty: ValueType,
    limits: Limits,
    /// Raw string bytes still to come, once the header was read.
    left: Option<u64>,
    done: bool,
}

impl ValueDecoder {
    /// A decoder for a value of type `ty`.
    pub fn new(ty: ValueType, limits: Limits) -> Self {
        ValueDecoder {
            ty,
            limits,
            left: None,
            done: false,
        }
    }

    /// Next chunk (`Done(Some)`), the end of the value (`Done(None)`), or `Need(n)`.
    pub fn next(&mut self, input: &mut BytesMut) -> Result<Read<Option<Chunk>>, ErrorKind> {
        if self.ty != ValueType::String {
            return Err(ErrorKind::UnknownType(self.ty.code()));
        }
        if self.done {
            return Ok(Read::Done(None));
        }
        match self.left {
            None => {
                let (h, hn) = crate::ready!(string::peek_header(input)?);
                match h {
                    StrHeader::Raw { len } => {
                        check_limit("string length", len, self.limits.max_string)?;
                        input.advance(hn);
                        if len == 0 {
                            self.done = true;
                            return Ok(Read::Done(Some(Chunk::Str(bytes::Bytes::new()))));
                        }
                        self.left = Some(len);
                        self.next(input)
                    }
                    StrHeader::Int(_) | StrHeader::Lzf { .. } => {
                        let s = crate::ready!(string::read(input, &self.limits)?);
                        self.done = true;
                        Ok(Read::Done(Some(Chunk::Str(s))))
                    }
                }
            }
            Some(left) => {
                let n = (left as usize).min(self.limits.batch_bytes.max(1));
                if input.len() < n {
                    return Ok(Read::Need(n));
                }
                let piece = input.split_to(n).freeze();
                let rest = left - n as u64;
                if rest == 0 {
                    self.done = true;
                }
                self.left = Some(rest);
                Ok(Read::Done(Some(Chunk::Str(piece))))
            }
        }
    }
}

/// Encodes a value with type byte `ty` (strings only in this stand-in).
pub(crate) fn encode_value(
    out: &mut Vec<u8>,
    value: &crate::proto::model::Value,
    ty: ValueType,
) -> Result<(), crate::proto::error::EncodeError> {
    match (value, ty) {
        (crate::proto::model::Value::String(s), ValueType::String) => {
            string::write(out, s);
            Ok(())
        }
        _ => Err(crate::proto::error::EncodeError::TypeMismatch {
            value: value.kind_name(),
            ty: ty.code(),
        }),
    }
}
