//! Redis module values (type 7): module id → 9-character name + encoding version, the
//! opcode-tagged items, and the RedisJSON special case (`ReJSON-RL` v3 = one string item).

use bytes::BytesMut;

use super::super::error::{check_limit, corrupt, EncodeError, ErrorKind};
use super::super::event::Chunk;
use super::super::model::{ModuleItem, ModuleValue};
use super::super::{packed, string, Limits, Read};
use super::{read_fixed, read_packed, Step};
use crate::ready;

const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The RedisJSON module type name.
pub(crate) const JSON_MODULE: &str = "ReJSON-RL";
/// The RedisJSON encoding version whose payload is a single JSON text string.
pub(crate) const JSON_ENCVER: u64 = 3;

const OP_EOF: u64 = 0;
const OP_SINT: u64 = 1;
const OP_UINT: u64 = 2;
const OP_FLOAT: u64 = 3;
const OP_DOUBLE: u64 = 4;
const OP_STRING: u64 = 5;

/// The 9-character type name encoded in the top 54 bits of a module id.
pub fn module_name(id: u64) -> String {
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = CHARSET[(id & 63) as usize];
        id >>= 6;
    }
    name.iter().map(|&c| char::from(c)).collect()
}

/// The module id for a 9-character type name and an encoding version (< 1024).
pub fn module_id(name: &str, encver: u64) -> Result<u64, EncodeError> {
    let bytes = name.as_bytes();
    if bytes.len() != 9 || encver > 1023 {
        return Err(EncodeError::Invalid(format!("module name {name:?} / encver {encver} not encodable")));
    }
    let mut id = 0u64;
    for &c in bytes {
        let idx = CHARSET.iter().position(|&x| x == c).ok_or_else(|| {
            EncodeError::Invalid(format!("module name {name:?} has a character outside the module charset"))
        })?;
        id = (id << 6) | idx as u64;
    }
    Ok((id << 10) | encver)
}

/// Incremental module value decoder.
#[derive(Debug, Default)]
pub(crate) struct ModuleDec {
    id: Option<u64>,
    opcode: Option<u64>,
    items: Vec<ModuleItem>,
    bytes: u64,
    done: bool,
}

impl ModuleDec {
    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        if self.done {
            return Ok(Read::Done(Step::End));
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = ready!(read_packed(input)?);
                self.id = Some(id);
                id
            }
        };
        loop {
            let op = match self.opcode {
                Some(op) => op,
                None => {
                    let op = ready!(read_packed(input)?);
                    self.opcode = Some(op);
                    op
                }
            };
            let item = match op {
                OP_EOF => {
                    self.done = true;
                    return Ok(Read::Done(Step::Chunk(self.finish(id))));
                }
                OP_SINT => ModuleItem::Sint(ready!(read_packed(input)?) as i64),
                OP_UINT => ModuleItem::Uint(ready!(read_packed(input)?)),
                OP_FLOAT => ModuleItem::Float(f32::from_le_bytes(ready!(read_fixed::<4>(input)))),
                OP_DOUBLE => ModuleItem::Double(f64::from_le_bytes(ready!(read_fixed::<8>(input)))),
                OP_STRING => {
                    let s = ready!(string::read(input, limits)?);
                    self.bytes = self.bytes.saturating_add(s.len() as u64);
                    check_limit("module value size", self.bytes, limits.max_string)?;
                    ModuleItem::Str(s)
                }
                other => return Err(corrupt("module value", format_args!("unknown opcode {other}"))),
            };
            self.opcode = None;
            self.items.push(item);
            check_limit("module item count", self.items.len() as u64, limits.max_elements)?;
        }
    }

    fn finish(&mut self, id: u64) -> Chunk {
        let name = module_name(id);
        let encver = id & 1023;
        let items = std::mem::take(&mut self.items);
        if name == JSON_MODULE && encver == JSON_ENCVER {
            if let [ModuleItem::Str(text)] = &items[..] {
                return Chunk::Json(text.clone());
            }
        }
        Chunk::Module(Box::new(ModuleValue { module_id: id, name, encver, items }))
    }
}

/// Writes a module value body: packed id, opcode-tagged items, EOF.
pub(crate) fn encode_module(out: &mut Vec<u8>, m: &ModuleValue) {
    packed::write(out, m.module_id);
    for item in &m.items {
        match item {
            ModuleItem::Sint(v) => {
                packed::write(out, OP_SINT);
                packed::write(out, *v as u64);
            }
            ModuleItem::Uint(v) => {
                packed::write(out, OP_UINT);
                packed::write(out, *v);
            }
            ModuleItem::Float(v) => {
                packed::write(out, OP_FLOAT);
                out.extend_from_slice(&v.to_le_bytes());
            }
            ModuleItem::Double(v) => {
                packed::write(out, OP_DOUBLE);
                out.extend_from_slice(&v.to_le_bytes());
            }
            ModuleItem::Str(s) => {
                packed::write(out, OP_STRING);
                string::write_raw(out, s);
            }
        }
    }
    packed::write(out, OP_EOF);
}

/// Writes a JSON document as a RedisJSON (`ReJSON-RL` v3) module value body.
pub(crate) fn encode_json_module(out: &mut Vec<u8>, text: &[u8]) -> Result<(), EncodeError> {
    packed::write(out, module_id(JSON_MODULE, JSON_ENCVER)?);
    packed::write(out, OP_STRING);
    string::write_raw(out, text);
    packed::write(out, OP_EOF);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejson_id_from_the_corpus() {
        // redis_json.rdb: 81 45 e2 52 38 df 91 2c 03
        let id = 0x45e2_5238_df91_2c03u64;
        assert_eq!(module_name(id), "ReJSON-RL");
        assert_eq!(id & 1023, 3);
        assert_eq!(module_id("ReJSON-RL", 3), Ok(id));
        assert!(module_id("short", 1).is_err());
        assert!(module_id("ReJSON-R!", 1).is_err());
    }
}
