//! Dragonfly-only probabilistic types: SBF (33 whole-string filters, 34 chunked filters),
//! CMS (35), TOPK (36), CUCKOO (37). Each is read piece by piece and handed out as one chunk.

use bytes::{Bytes, BytesMut};

use super::super::error::{check_limit, corrupt, EncodeError, ErrorKind};
use super::super::event::{Chunk, ValueType};
use super::super::model::{Cms, Cuckoo, Sbf, SbfFilter, TopK};
use super::super::{packed, string, Limits, Read};
use super::{read_f64, read_packed, Step};
use crate::ready;

/// Largest chunk Dragonfly writes inside a chunked filter (64 MiB).
pub(crate) const FILTER_CHUNK: usize = 64 << 20;

/// A filter blob arriving as `packed total` + (`packed len` + raw bytes) chunks.
#[derive(Debug, Default)]
struct Chunked {
    total: Option<u64>,
    buf: BytesMut,
}

impl Chunked {
    fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Bytes>, ErrorKind> {
        let total = match self.total {
            Some(t) => t,
            None => {
                let t = ready!(read_packed(input)?);
                if t == 0 {
                    return Err(corrupt("filter", "zero total size"));
                }
                string::check_len(t, limits)?;
                self.total = Some(t);
                self.buf = BytesMut::with_capacity(t.min(1 << 20) as usize);
                t
            }
        };
        while (self.buf.len() as u64) < total {
            let (len, n) = ready!(packed::peek_len(input)?);
            let left = total - self.buf.len() as u64;
            if len == 0 || len > left {
                return Err(corrupt("filter", format_args!("chunk of {len} bytes with {left} left")));
            }
            let need = n + len as usize;
            let Some(data) = input.get(n..need) else {
                return Ok(Read::Need(need));
            };
            self.buf.extend_from_slice(data);
            let _ = input.split_to(need);
        }
        self.total = None;
        Ok(Read::Done(std::mem::take(&mut self.buf).freeze()))
    }
}

/// Incremental decoder of types 33–37.
#[derive(Debug)]
pub(crate) struct DfDec {
    ty: ValueType,
    stage: u8,
    nums: Vec<u64>,
    f: [f64; 2],
    left: u64,
    pending: Option<u64>,
    chunked: Chunked,
    sbf_filters: Vec<SbfFilter>,
    blobs: Vec<Bytes>,
    heap: Vec<(Bytes, u64)>,
    heap_item: Option<Bytes>,
    counters: Vec<i64>,
    done: bool,
}

impl DfDec {
    pub(crate) fn new(ty: ValueType) -> DfDec {
        DfDec {
            ty,
            stage: 0,
            nums: Vec::with_capacity(8),
            f: [0.0; 2],
            left: 0,
            pending: None,
            chunked: Chunked::default(),
            sbf_filters: Vec::new(),
            blobs: Vec::new(),
            heap: Vec::new(),
            heap_item: None,
            counters: Vec::new(),
            done: false,
        }
    }

    /// Reads packed numbers until `self.nums` holds `n`.
    fn nums_until(&mut self, input: &mut BytesMut, n: usize) -> Result<Read<()>, ErrorKind> {
        while self.nums.len() < n {
            let v = ready!(read_packed(input)?);
            self.nums.push(v);
        }
        Ok(Read::Done(()))
    }

    pub(crate) fn step(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Step>, ErrorKind> {
        if self.done {
            return Ok(Read::Done(Step::End));
        }
        let chunk = match self.ty {
            ValueType::Sbf | ValueType::Sbf2 => ready!(self.sbf(input, limits)?),
            ValueType::Cms => ready!(self.cms(input, limits)?),
            ValueType::TopK => ready!(self.topk(input, limits)?),
            _ => ready!(self.cuckoo(input, limits)?),
        };
        self.done = true;
        Ok(Read::Done(Step::Chunk(chunk)))
    }

    fn sbf(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Chunk>, ErrorKind> {
        loop {
            match self.stage {
                0 => {
                    ready!(self.nums_until(input, 1)?);
                    if self.nums[0] != 0 {
                        return Err(corrupt("SBF", format_args!("options {} (expected 0)", self.nums[0])));
                    }
                    self.stage = 1;
                }
                1 | 2 => {
                    self.f[usize::from(self.stage - 1)] = ready!(read_f64(input));
                    self.stage += 1;
                }
                3 => {
                    ready!(self.nums_until(input, 5)?);
                    self.left = self.nums[4];
                    check_limit("SBF filter count", self.left, limits.max_elements)?;
                    self.sbf_filters = Vec::with_capacity(self.left.min(64) as usize);
                    self.stage = 4;
                }
                _ => {
                    while self.left > 0 {
                        let hash_count = match self.pending {
                            Some(h) => h,
                            None => {
                                let h = ready!(read_packed(input)?);
                                self.pending = Some(h);
                                h
                            }
                        };
                        let bits = if self.ty == ValueType::Sbf2 {
                            ready!(self.chunked.step(input, limits)?)
                        } else {
                            ready!(string::read(input, limits)?)
                        };
                        self.pending = None;
                        self.left -= 1;
                        self.sbf_filters.push(SbfFilter { hash_count, bits });
                    }
                    let n = &self.nums;
                    return Ok(Read::Done(Chunk::Sbf(Box::new(Sbf {
                        grow_factor: self.f[0],
                        fp_prob: self.f[1],
                        prev_size: n[1],
                        current_size: n[2],
                        max_capacity: n[3],
                        filters: std::mem::take(&mut self.sbf_filters),
                    }))));
                }
            }
        }
    }

    fn cms(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Chunk>, ErrorKind> {
        if self.stage == 0 {
            ready!(self.nums_until(input, 3)?);
            let cells =
                self.nums[0].checked_mul(self.nums[1]).ok_or_else(|| corrupt("CMS", "width × depth overflows"))?;
            check_limit("CMS counter count", cells, limits.max_elements)?;
            string::check_len(cells.saturating_mul(8), limits)?;
            self.left = cells;
            self.counters = Vec::with_capacity(cells.min(1 << 16) as usize);
            self.stage = 1;
        }
        while self.left > 0 {
            let avail = (input.len() / 8) as u64;
            if avail == 0 {
                return Ok(Read::Need(8));
            }
            let take = avail.min(self.left) as usize;
            let raw = input.split_to(take * 8);
            self.counters.extend(raw.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }));
            self.left -= take as u64;
        }
        Ok(Read::Done(Chunk::Cms(Box::new(Cms {
            width: self.nums[0],
            depth: self.nums[1],
            total_count: self.nums[2],
            counters: std::mem::take(&mut self.counters),
        }))))
    }

    fn topk(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Chunk>, ErrorKind> {
        loop {
            match self.stage {
                0 => {
                    ready!(self.nums_until(input, 4)?);
                    if self.nums[0] != 0 {
                        return Err(corrupt("TOPK", format_args!("options {} (expected 0)", self.nums[0])));
                    }
                    self.stage = 1;
                }
                1 => {
                    self.f[0] = ready!(read_f64(input));
                    self.stage = 2;
                }
                2 => {
                    ready!(self.nums_until(input, 5)?);
                    self.left = self.nums[4];
                    check_limit("TOPK heap size", self.left, limits.max_elements)?;
                    self.heap = Vec::with_capacity(self.left.min(1024) as usize);
                    self.stage = 3;
                }
                3 => {
                    while self.left > 0 {
                        let item = match self.heap_item.take() {
                            Some(i) => i,
                            None => ready!(string::read(input, limits)?),
                        };
                        let count = match read_packed(input)? {
                            Read::Done(c) => c,
                            Read::Need(n) => {
                                self.heap_item = Some(item);
                                return Ok(Read::Need(n));
                            }
                        };
                        self.heap.push((item, count));
                        self.left -= 1;
                    }
                    self.stage = 4;
                }
                _ => {
                    let counters = ready!(string::read(input, limits)?);
                    let expect = self.nums[2].checked_mul(self.nums[3]).and_then(|c| c.checked_mul(4));
                    if expect != Some(counters.len() as u64) {
                        return Err(corrupt("TOPK", format_args!("counter array of {} bytes", counters.len())));
                    }
                    return Ok(Read::Done(Chunk::TopK(Box::new(TopK {
                        k: self.nums[1],
                        width: self.nums[2],
                        depth: self.nums[3],
                        decay: self.f[0],
                        heap: std::mem::take(&mut self.heap),
                        counters,
                    }))));
                }
            }
        }
    }

    fn cuckoo(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<Chunk>, ErrorKind> {
        if self.stage == 0 {
            ready!(self.nums_until(input, 7)?);
            self.left = self.nums[6];
            check_limit("cuckoo filter count", self.left, limits.max_elements)?;
            self.blobs = Vec::with_capacity(self.left.min(64) as usize);
            self.stage = 1;
        }
        while self.left > 0 {
            let b = ready!(self.chunked.step(input, limits)?);
            self.blobs.push(b);
            self.left -= 1;
        }
        let n = &self.nums;
        Ok(Read::Done(Chunk::Cuckoo(Box::new(Cuckoo {
            slots_per_bucket: n[0],
            max_iterations: n[1],
            expansion: n[2],
            num_buckets: n[3],
            num_items: n[4],
            num_deletes: n[5],
            filters: std::mem::take(&mut self.blobs),
        }))))
    }
}

/// Writes `data` as `packed total` + chunks of at most `chunk` bytes (SBF2 and cuckoo filters).
pub(crate) fn write_chunked(out: &mut Vec<u8>, data: &[u8], chunk: usize) -> Result<(), EncodeError> {
    if data.is_empty() {
        return Err(EncodeError::Invalid("a chunked filter cannot be empty".into()));
    }
    packed::write(out, data.len() as u64);
    for piece in data.chunks(chunk.max(1)) {
        packed::write(out, piece.len() as u64);
        out.extend_from_slice(piece);
    }
    Ok(())
}

/// Writes an SBF body (type 33 with whole-string filters, 34 chunked).
pub(crate) fn encode_sbf(out: &mut Vec<u8>, s: &Sbf, chunked: bool) -> Result<(), EncodeError> {
    packed::write(out, 0);
    out.extend_from_slice(&s.grow_factor.to_le_bytes());
    out.extend_from_slice(&s.fp_prob.to_le_bytes());
    for v in [s.prev_size, s.current_size, s.max_capacity, s.filters.len() as u64] {
        packed::write(out, v);
    }
    for f in &s.filters {
        packed::write(out, f.hash_count);
        if chunked {
            write_chunked(out, &f.bits, FILTER_CHUNK)?;
        } else {
            string::write_raw(out, &f.bits);
        }
    }
    Ok(())
}

/// Writes a CMS body.
pub(crate) fn encode_cms(out: &mut Vec<u8>, c: &Cms) -> Result<(), EncodeError> {
    if c.width.checked_mul(c.depth) != Some(c.counters.len() as u64) {
        return Err(EncodeError::Invalid(format!("CMS {}×{} with {} counters", c.width, c.depth, c.counters.len())));
    }
    for v in [c.width, c.depth, c.total_count] {
        packed::write(out, v);
    }
    out.reserve(c.counters.len() * 8);
    for v in &c.counters {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

/// Writes a TOPK body.
pub(crate) fn encode_topk(out: &mut Vec<u8>, t: &TopK) -> Result<(), EncodeError> {
    if t.width.checked_mul(t.depth).and_then(|c| c.checked_mul(4)) != Some(t.counters.len() as u64) {
        return Err(EncodeError::Invalid(format!(
            "TOPK {}×{} with {} counter bytes",
            t.width,
            t.depth,
            t.counters.len()
        )));
    }
    for v in [0, t.k, t.width, t.depth] {
        packed::write(out, v);
    }
    out.extend_from_slice(&t.decay.to_le_bytes());
    packed::write(out, t.heap.len() as u64);
    for (item, count) in &t.heap {
        string::write(out, item);
        packed::write(out, *count);
    }
    string::write_raw(out, &t.counters);
    Ok(())
}

/// Writes a cuckoo filter body.
pub(crate) fn encode_cuckoo(out: &mut Vec<u8>, c: &Cuckoo) -> Result<(), EncodeError> {
    for v in [c.slots_per_bucket, c.max_iterations, c.expansion, c.num_buckets, c.num_items, c.num_deletes] {
        packed::write(out, v);
    }
    packed::write(out, c.filters.len() as u64);
    for f in &c.filters {
        write_chunked(out, f, FILTER_CHUNK)?;
    }
    Ok(())
}
