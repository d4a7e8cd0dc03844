//! Records the decoder parses only to skip them, item by item so that a huge one never has
//! to be buffered whole: MODULE_AUX items, VECTOR_INDEX nodes, SHARD_DOC_INDEX mappings.

use bytes::{Buf, BytesMut};

use super::cursor::Cur;
use crate::proto::error::{check_limit, unexpected, ErrorKind};
use crate::proto::{Limits, Read};

/// What is left of a record being skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipper {
    /// Module opcode items until the EOF item (0).
    Module,
    /// This many HNSW nodes.
    Vector { left: u64 },
    /// This many (key, doc id) mappings.
    DocIndex { left: u64 },
}

/// Module item opcodes.
const MODULE_EOF: u64 = 0;
const MODULE_SINT: u64 = 1;
const MODULE_UINT: u64 = 2;
const MODULE_FLOAT: u64 = 3;
const MODULE_DOUBLE: u64 = 4;
const MODULE_STRING: u64 = 5;

impl Skipper {
    /// Skips one item from the front of `input`. `Done(true)`: the record is complete.
    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<bool>, ErrorKind> {
        match self {
            Skipper::Module => {
                let mut cur = Cur::new(input);
                let op = crate::ready!(cur.packed()?);
                match op {
                    MODULE_EOF => {}
                    MODULE_SINT | MODULE_UINT => {
                        crate::ready!(cur.packed()?);
                    }
                    MODULE_FLOAT => {
                        crate::ready!(cur.take(4));
                    }
                    MODULE_DOUBLE => {
                        crate::ready!(cur.take(8));
                    }
                    MODULE_STRING => crate::ready!(cur.skip_string(limits)?),
                    other => return Err(unexpected("a module data opcode (0..5)", other)),
                }
                input.advance(cur.pos);
                Ok(Read::Done(op == MODULE_EOF))
            }
            Skipper::Vector { left } => {
                if *left == 0 {
                    return Ok(Read::Done(true));
                }
                let mut cur = Cur::new(input);
                crate::ready!(cur.take(4 + 8));
                let level = crate::ready!(cur.u32le());
                check_limit("vector index node levels", u64::from(level) + 1, limits.max_elements)?;
                for _ in 0..=level {
                    let links = crate::ready!(cur.u32le());
                    check_limit("vector index links", u64::from(links) * 4, limits.max_record)?;
                    crate::ready!(cur.take(links as usize * 4));
                    check_limit("vector index node size", cur.pos as u64, limits.max_record)?;
                }
                input.advance(cur.pos);
                *left -= 1;
                Ok(Read::Done(*left == 0))
            }
            Skipper::DocIndex { left } => {
                if *left == 0 {
                    return Ok(Read::Done(true));
                }
                let mut cur = Cur::new(input);
                crate::ready!(cur.skip_string(limits)?);
                crate::ready!(cur.packed()?);
                input.advance(cur.pos);
                *left -= 1;
                Ok(Read::Done(*left == 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_items() {
        let mut b =
            BytesMut::from(&[2, 5, 1, 0x40, 0x64, 3, 1, 2, 3, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, b'h', b'i', 0][..]);
        let mut s = Skipper::Module;
        let mut steps = 0;
        while s.step(&mut b, &Limits::default()) == Ok(Read::Done(false)) {
            steps += 1;
        }
        assert_eq!(steps, 5);
        assert!(b.is_empty());
        assert!(Skipper::Module.step(&mut BytesMut::from(&[9u8][..]), &Limits::default()).is_err());
        assert_eq!(
            Skipper::Module.step(&mut BytesMut::from(&[5u8, 3, b'a'][..]), &Limits::default()),
            Ok(Read::Need(5))
        );
    }

    #[test]
    fn vector_nodes() {
        // Node: id, global id, level 1, level 0: 2 links, level 1: 0 links.
        let mut node = vec![0u8; 12];
        node.extend_from_slice(&1u32.to_le_bytes());
        node.extend_from_slice(&2u32.to_le_bytes());
        node.extend_from_slice(&[7, 0, 0, 0, 8, 0, 0, 0]);
        node.extend_from_slice(&0u32.to_le_bytes());
        let mut s = Skipper::Vector { left: 1 };
        assert_eq!(
            s.step(&mut BytesMut::from(&node[..node.len() - 1]), &Limits::default()),
            Ok(Read::Need(node.len()))
        );
        let mut b = BytesMut::from(&node[..]);
        assert_eq!(s.step(&mut b, &Limits::default()), Ok(Read::Done(true)));
        assert!(b.is_empty());
    }
}
