//! Stream values (types 15, 19, 21): node listpacks walked entry by entry (spec 2.7), then the
//! metadata, then one chunk per consumer group.

use bytes::{Buf, Bytes, BytesMut};

use super::super::error::{check_limit, corrupt, ErrorKind};
use super::super::event::{Chunk, ValueType};
use super::super::listpack::{self, Elem};
use super::super::model::{Consumer, PendingEntry, StreamEntry, StreamGroup, StreamId, StreamMeta, StreamMetaV2};
use super::super::{packed, string, Limits, Read};
use super::{read_fixed, read_packed, Step};
use crate::ready;

/// Entry flag: the entry is deleted (tombstone).
pub(crate) const FLAG_DELETED: i64 = 1;
/// Entry flag: the entry has exactly the master entry's fields.
pub(crate) const FLAG_SAMEFIELDS: i64 = 2;

/// Parses a 16-byte big-endian stream id.
pub(crate) fn id_from_be(b: &[u8]) -> Option<StreamId> {
    let ms = u64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    Some(StreamId { ms, seq })
}

/// Walks the entries of one node listpack.
#[derive(Debug)]
struct NodeIter {
    lp: listpack::Cursor,
    base: StreamId,
    fields: Vec<Bytes>,
    left: u64,
}

fn next_elem(lp: &mut listpack::Cursor) -> Result<Elem, ErrorKind> {
    lp.next()?.ok_or_else(|| corrupt("stream node", "listpack ends inside an entry"))
}

fn next_int(lp: &mut listpack::Cursor) -> Result<i64, ErrorKind> {
    let e = next_elem(lp)?;
    e.as_i64().ok_or_else(|| corrupt("stream node", format_args!("expected an integer, found {e:?}")))
}

fn next_count(lp: &mut listpack::Cursor, limits: &Limits) -> Result<u64, ErrorKind> {
    let v = next_int(lp)?;
    let v = u64::try_from(v).map_err(|_| corrupt("stream node", format_args!("negative count {v}")))?;
    check_limit("stream field count", v, limits.max_elements)?;
    Ok(v)
}

impl NodeIter {
    fn open(base: StreamId, blob: Bytes, limits: &Limits) -> Result<NodeIter, ErrorKind> {
        let mut lp = listpack::Cursor::new(blob)?;
        if lp.declared_count() == Some(0) {
            return Err(corrupt("stream node", "empty listpack"));
        }
        let count = next_count(&mut lp, limits)?;
        let deleted = next_count(&mut lp, limits)?;
        let nf = next_count(&mut lp, limits)?;
        let mut fields = Vec::with_capacity(nf.min(64) as usize);
        for _ in 0..nf {
            fields.push(next_elem(&mut lp)?.into_bytes());
        }
        if next_int(&mut lp)? != 0 {
            return Err(corrupt("stream node", "master entry not terminated by 0"));
        }
        let left = count.checked_add(deleted).ok_or_else(|| corrupt("stream node", "entry count overflows"))?;
        Ok(NodeIter { lp, base, fields, left })
    }

    /// `None` at the end of the node; `Some(None)` for a deleted entry.
    fn next_entry(&mut self, limits: &Limits) -> Result<Option<Option<StreamEntry>>, ErrorKind> {
        let lp = &mut self.lp;
        if self.left == 0 {
            return match lp.next()? {
                None => Ok(None),
                Some(_) => Err(corrupt("stream node", "more entries than the master entry counts")),
            };
        }
        let flags = next_int(lp)?;
        let ms_delta = next_int(lp)?;
        let seq_delta = next_int(lp)?;
        let id = StreamId {
            ms: self.base.ms.wrapping_add(ms_delta as u64),
            seq: self.base.seq.wrapping_add(seq_delta as u64),
        };
        let (pairs, expect_count) = if flags & FLAG_SAMEFIELDS != 0 {
            let mut pairs = Vec::with_capacity(self.fields.len());
            for f in &self.fields {
                pairs.push((f.clone(), next_elem(lp)?.into_bytes()));
            }
            (pairs, self.fields.len() as u64 + 3)
        } else {
            let nf = next_count(lp, limits)?;
            let mut pairs = Vec::with_capacity(nf.min(256) as usize);
            for _ in 0..nf {
                let f = next_elem(lp)?.into_bytes();
                let v = next_elem(lp)?.into_bytes();
                pairs.push((f, v));
            }
            (pairs, 2 * nf + 4)
        };
        let lp_count = next_int(lp)?;
        if u64::try_from(lp_count).ok() != Some(expect_count) {
            return Err(corrupt("stream node", format_args!("lp_count {lp_count}, expected {expect_count}")));
        }
        self.left -= 1;
        if flags & FLAG_DELETED != 0 {
            return Ok(Some(None));
        }
        Ok(Some(Some(StreamEntry { id, fields: pairs })))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NodeCount,
    Nodes,
    Meta,
    Groups,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GStage {
    Name,
    Nums,
    PelSize,
    Pel,
    ConsCount,
    ConsName,
    ConsSeen,
    ConsActive,
    ConsPelSize,
    ConsPel,
}

#[derive(Debug)]
struct GroupBuild {
    stage: GStage,
    group: StreamGroup,
    nums: [u64; 3],
    got: usize,
    left: u64,
    consumers_left: u64,
    consumer: Consumer,
}

impl GroupBuild {
    fn new() -> GroupBuild {
        GroupBuild {
            stage: GStage::Name,
            group: StreamGroup {
                name: Bytes::new(),
                last_delivered: StreamId::default(),
                entries_read: None,
                pel: Vec::new(),
                consumers: Vec::new(),
            },
            nums: [0; 3],
            got: 0,
            left: 0,
            consumers_left: 0,
            consumer: Consumer { name: Bytes::new(), seen_time_ms: 0, active_time_ms: None, pending: Vec::new() },
        }
    }
}

/// Incremental stream decoder.
#[derive(Debug)]
pub(crate) struct StreamDec {
    version: u8,
    phase: Phase,
    nodes_left: u64,
    node_key: Option<StreamId>,
    node: Option<NodeIter>,
    batch: Vec<StreamEntry>,
    batch_bytes: usize,
    total: u64,
    nums: [u64; 9],
    got: usize,
    groups_left: u64,
    group: Option<Box<GroupBuild>>,
}

impl StreamDec {
    pub(crate) fn new(ty: ValueType) -> StreamDec {
        let version = match ty {
            ValueType::StreamListpacks => 1,
            ValueType::StreamListpacks2 => 2,
            _ => 3,
        };
        StreamDec {
            version,
            phase: Phase::NodeCount,
            nodes_left: 0,
            node_key: None,
            node: None,
            batch: Vec::new(),
            batch_bytes: 0,
            total: 0,
            nums: [0; 9],
            got: 0,
            groups_left: 0,
            group: None,
        }
    }

    fn take_batch(&mut self) -> Chunk {
        self.batch_bytes = 0;
        Chunk::StreamEntries(std::mem::take(&mut self.batch))
    }

    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        loop {
            match self.phase {
                Phase::NodeCount => {
                    let n = ready!(read_packed(input)?);
                    check_limit("stream node count", n, limits.max_elements)?;
                    self.nodes_left = n;
                    self.phase = Phase::Nodes;
                }
                Phase::Nodes => {
                    if let Some(chunk) = self.step_nodes(input, limits)? {
                        return Ok(chunk);
                    }
                }
                Phase::Meta => {
                    let need = if self.version >= 2 { 9 } else { 4 };
                    while self.got < need {
                        self.nums[self.got] = ready!(read_packed(input)?);
                        self.got += 1;
                    }
                    let n = &self.nums;
                    let v2 = (self.version >= 2).then(|| StreamMetaV2 {
                        first_id: StreamId { ms: n[3], seq: n[4] },
                        max_deleted_id: StreamId { ms: n[5], seq: n[6] },
                        entries_added: n[7],
                    });
                    let meta = StreamMeta { length: n[0], last_id: StreamId { ms: n[1], seq: n[2] }, v2 };
                    self.groups_left = n[need - 1];
                    check_limit("stream group count", self.groups_left, limits.max_elements)?;
                    self.phase = Phase::Groups;
                    return Ok(Read::Done(Step::Chunk(Chunk::StreamMeta(meta))));
                }
                Phase::Groups => {
                    if self.groups_left == 0 {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let g = ready!(self.step_group(input, limits)?);
                    self.groups_left -= 1;
                    return Ok(Read::Done(Step::Chunk(Chunk::StreamGroup(g))));
                }
                Phase::Done => return Ok(Read::Done(Step::End)),
            }
        }
    }

    /// Returns `Some` with a result to hand out (a chunk or a `Need`), `None` once the nodes are done
    /// (and the last entry batch was handed out).
    fn step_nodes(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Option<Read<Step>>, ErrorKind> {
        loop {
            if let Some(node) = &mut self.node {
                match node.next_entry(limits)? {
                    Some(Some(e)) => {
                        self.total += 1;
                        check_limit("stream entry count", self.total, limits.max_elements)?;
                        let w = 16 + e.fields.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>();
                        if self.batch.is_empty() {
                            self.batch.reserve(limits.batch_elements.clamp(1, 256));
                        }
                        self.batch.push(e);
                        self.batch_bytes = self.batch_bytes.saturating_add(w);
                        if self.batch.len() >= limits.batch_elements.max(1)
                            || self.batch_bytes >= limits.batch_bytes.max(1)
                        {
                            return Ok(Some(Read::Done(Step::Chunk(self.take_batch()))));
                        }
                        continue;
                    }
                    Some(None) => continue,
                    None => self.node = None,
                }
            }
            if self.nodes_left == 0 {
                self.phase = Phase::Meta;
                self.got = 0;
                if self.batch.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Read::Done(Step::Chunk(self.take_batch()))));
            }
            let key = match self.node_key {
                Some(k) => k,
                None => {
                    let k = match string::read(input, limits)? {
                        Read::Done(k) => k,
                        Read::Need(n) => return Ok(Some(Read::Need(n))),
                    };
                    let id = (k.len() == 16).then(|| id_from_be(&k)).flatten();
                    let id =
                        id.ok_or_else(|| corrupt("stream node key", format_args!("{} bytes, expected 16", k.len())))?;
                    self.node_key = Some(id);
                    id
                }
            };
            let blob = match string::read(input, limits)? {
                Read::Done(b) => b,
                Read::Need(n) => return Ok(Some(Read::Need(n))),
            };
            self.node_key = None;
            self.nodes_left -= 1;
            self.node = Some(NodeIter::open(key, blob, limits)?);
        }
    }

    fn step_group(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<StreamGroup>, ErrorKind> {
        let version = self.version;
        let gb = self.group.get_or_insert_with(|| Box::new(GroupBuild::new()));
        loop {
            match gb.stage {
                GStage::Name => {
                    gb.group.name = ready!(string::read(input, limits)?);
                    gb.stage = GStage::Nums;
                    gb.got = 0;
                }
                GStage::Nums => {
                    let need = if version >= 2 { 3 } else { 2 };
                    while gb.got < need {
                        gb.nums[gb.got] = ready!(read_packed(input)?);
                        gb.got += 1;
                    }
                    gb.group.last_delivered = StreamId { ms: gb.nums[0], seq: gb.nums[1] };
                    gb.group.entries_read = (version >= 2).then_some(gb.nums[2]);
                    gb.stage = GStage::PelSize;
                }
                GStage::PelSize => {
                    let n = ready!(read_packed(input)?);
                    check_limit("stream PEL size", n, limits.max_elements)?;
                    gb.left = n;
                    gb.group.pel = Vec::with_capacity(n.min(1024) as usize);
                    gb.stage = GStage::Pel;
                }
                GStage::Pel => {
                    while gb.left > 0 {
                        let Some(head) = input.get(..24) else {
                            return Ok(Read::Need(24));
                        };
                        let id = id_from_be(head).ok_or_else(|| corrupt("stream PEL", "short id"))?;
                        let time = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
                        let (count, n) = match packed::peek_len(input.get(24..).unwrap_or_default())? {
                            Read::Done(v) => v,
                            Read::Need(n) => return Ok(Read::Need(24 + n)),
                        };
                        input.advance(24 + n);
                        gb.group.pel.push(PendingEntry { id, delivery_time_ms: time, delivery_count: count });
                        gb.left -= 1;
                    }
                    gb.stage = GStage::ConsCount;
                }
                GStage::ConsCount => {
                    let n = ready!(read_packed(input)?);
                    check_limit("stream consumer count", n, limits.max_elements)?;
                    gb.consumers_left = n;
                    gb.group.consumers = Vec::with_capacity(n.min(1024) as usize);
                    gb.stage = GStage::ConsName;
                    if n == 0 {
                        let done = std::mem::replace(&mut **gb, GroupBuild::new());
                        self.group = None;
                        return Ok(Read::Done(done.group));
                    }
                }
                GStage::ConsName => {
                    gb.consumer.name = ready!(string::read(input, limits)?);
                    gb.stage = GStage::ConsSeen;
                }
                GStage::ConsSeen => {
                    gb.consumer.seen_time_ms = u64::from_le_bytes(ready!(read_fixed::<8>(input)));
                    gb.stage = if version >= 3 { GStage::ConsActive } else { GStage::ConsPelSize };
                }
                GStage::ConsActive => {
                    gb.consumer.active_time_ms = Some(u64::from_le_bytes(ready!(read_fixed::<8>(input))));
                    gb.stage = GStage::ConsPelSize;
                }
                GStage::ConsPelSize => {
                    let n = ready!(read_packed(input)?);
                    check_limit("stream consumer PEL size", n, limits.max_elements)?;
                    gb.left = n;
                    gb.consumer.pending = Vec::with_capacity(n.min(1024) as usize);
                    gb.stage = GStage::ConsPel;
                }
                GStage::ConsPel => {
                    while gb.left > 0 {
                        let raw = ready!(read_fixed::<16>(input));
                        let id = id_from_be(&raw).ok_or_else(|| corrupt("stream PEL", "short id"))?;
                        gb.consumer.pending.push(id);
                        gb.left -= 1;
                    }
                    let c = std::mem::replace(
                        &mut gb.consumer,
                        Consumer { name: Bytes::new(), seen_time_ms: 0, active_time_ms: None, pending: Vec::new() },
                    );
                    gb.group.consumers.push(c);
                    gb.consumers_left -= 1;
                    gb.stage = GStage::ConsName;
                    if gb.consumers_left == 0 {
                        let done = std::mem::replace(&mut **gb, GroupBuild::new());
                        self.group = None;
                        return Ok(Read::Done(done.group));
                    }
                }
            }
        }
    }
}
