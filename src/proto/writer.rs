//! Byte-exact writers of Dragonfly's replication streams (the full-sync RDB part and the
//! journal stream), used by the mock master and by the round-trip tests.

use super::compress;
pub use super::compress::Codec;
use super::error::EncodeError;
use super::event::{EntryHeader, JournalRecord, KeyFlags};
use super::journal::{encode_lsn_marker, encode_record, has_select_prefix};
use super::model::Value;
use super::rdb::opcode as op;
use super::value::encode_value;
use super::{crc64, packed, string};

/// Builds an RDB stream record by record, the way Dragonfly writes it.
#[derive(Debug, Clone, Default)]
pub struct RdbWriter {
    out: Vec<u8>,
}

/// Appends the DF_MASK record for `flags`, if any flag is set (Dragonfly omits it otherwise).
fn write_flags(out: &mut Vec<u8>, flags: &KeyFlags) {
    let mask = u32::from(flags.sticky) | if flags.mc_flags.is_some() { 2 } else { 0 };
    if mask != 0 {
        out.push(op::DF_MASK);
        out.extend_from_slice(&mask.to_le_bytes());
        if let Some(f) = flags.mc_flags {
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
}

/// The bytes of one key entry: `[FC ms] [DC flags] type key value`.
pub fn entry_bytes(header: &EntryHeader, value: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    if let Some(ms) = header.expire_ms {
        out.push(op::EXPIRETIME_MS);
        out.extend_from_slice(&ms.to_le_bytes());
    }
    write_flags(&mut out, &header.flags);
    out.push(header.value_type.code());
    string::write(&mut out, &header.key);
    encode_value(&mut out, value, header.value_type)?;
    Ok(out)
}

/// One TAGGED_CHUNK record: `E0 u32 stream_id u32 len payload`.
pub fn tagged_chunk_bytes(stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    out.push(op::TAGGED_CHUNK);
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Cuts `entry` (the bytes of one key entry) into TAGGED_CHUNK records of at most
/// `piece_size` payload bytes each.
pub fn tagged_pieces(stream_id: u32, entry: &[u8], piece_size: usize) -> Vec<Vec<u8>> {
    entry.chunks(piece_size.max(1)).map(|p| tagged_chunk_bytes(stream_id, p)).collect()
}

impl RdbWriter {
    /// An empty stream.
    pub fn new() -> Self {
        RdbWriter { out: Vec::new() }
    }

    /// `REDIS0009`, as every Dragonfly stream starts.
    pub fn header(&mut self) -> &mut Self {
        self.header_version(9)
    }

    /// `REDISnnnn` with another version (Redis files).
    pub fn header_version(&mut self, version: u32) -> &mut Self {
        self.out.extend_from_slice(format!("REDIS{:04}", version % 10_000).as_bytes());
        self
    }

    /// AUX field; values that are canonical int32 text use the integer forms.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.out.push(op::AUX);
        string::write(&mut self.out, key);
        string::write(&mut self.out, value);
        self
    }

    /// SELECTDB.
    pub fn select_db(&mut self, db: u32) -> &mut Self {
        self.out.push(op::SELECTDB);
        packed::write(&mut self.out, u64::from(db));
        self
    }

    /// RESIZEDB hint.
    pub fn resize_db(&mut self, db_size: u64, expires_size: u64) -> &mut Self {
        self.out.push(op::RESIZEDB);
        packed::write(&mut self.out, db_size);
        packed::write(&mut self.out, expires_size);
        self
    }

    /// A key entry with its expiry and flags.
    pub fn entry(&mut self, header: &EntryHeader, value: &Value) -> Result<&mut Self, EncodeError> {
        let bytes = entry_bytes(header, value)?;
        self.out.extend_from_slice(&bytes);
        Ok(self)
    }

    /// JOURNAL_BLOB holding `rec` (with its SELECT prefix); `lzf` compresses the payload string
    /// as `--compression_mode=1` does.
    pub fn journal_blob(&mut self, rec: &JournalRecord, lzf: bool) -> &mut Self {
        let mut payload = Vec::new();
        encode_record(&mut payload, rec, has_select_prefix(rec));
        self.out.push(op::JOURNAL_BLOB);
        packed::write(&mut self.out, 1);
        if lzf {
            string::write_lzf(&mut self.out, &payload);
        } else {
            string::write_raw(&mut self.out, &payload);
        }
        self
    }

    /// FULLSYNC_END + 8 zero bytes.
    pub fn full_sync_end(&mut self) -> &mut Self {
        self.out.push(op::FULLSYNC_END);
        self.out.extend_from_slice(&[0; 8]);
        self
    }

    /// JOURNAL_OFFSET + u64 LE.
    pub fn journal_offset(&mut self, lsn: u64) -> &mut Self {
        self.out.push(op::JOURNAL_OFFSET);
        self.out.extend_from_slice(&lsn.to_le_bytes());
        self
    }

    /// EOF + checksum: the CRC-64 of every byte so far including `FF` when `with_crc`, else 0
    /// (as Dragonfly writes it in replication).
    pub fn eof(&mut self, with_crc: bool) -> &mut Self {
        self.out.push(op::EOF);
        let crc = if with_crc { crc64::checksum(&self.out) } else { 0 };
        self.out.extend_from_slice(&crc.to_le_bytes());
        self
    }

    /// A compressed blob holding `records` (complete top-level records).
    pub fn compressed(&mut self, codec: Codec, records: &[u8]) -> &mut Self {
        let frame = compress::compress(codec, records);
        self.out.push(codec.opcode());
        packed::write(&mut self.out, frame.len() as u64);
        self.out.extend_from_slice(&frame);
        self
    }

    /// One TAGGED_CHUNK record.
    pub fn tagged_chunk(&mut self, stream_id: u32, payload: &[u8]) -> &mut Self {
        self.out.extend_from_slice(&tagged_chunk_bytes(stream_id, payload));
        self
    }

    /// Arbitrary bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// Bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.out
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

/// Builds a stable-sync journal stream.
#[derive(Debug, Clone, Default)]
pub struct JournalWriter {
    out: Vec<u8>,
}

impl JournalWriter {
    /// An empty stream.
    pub fn new() -> Self {
        JournalWriter { out: Vec::new() }
    }

    /// A record, with the SELECT prefix Dragonfly puts before command-like records.
    pub fn record(&mut self, rec: &JournalRecord) -> &mut Self {
        encode_record(&mut self.out, rec, has_select_prefix(rec));
        self
    }

    /// An LSN marker.
    pub fn lsn_marker(&mut self, lsn: u64) -> &mut Self {
        encode_lsn_marker(&mut self.out, lsn);
        self
    }

    /// Arbitrary bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// Bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.out
    }

    /// The stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::assemble::{Assembled, Assembler};
    use crate::proto::event::{CommandKind, Event, JournalOp, ValueType};
    use crate::proto::flow::FlowDecoder;
    use crate::proto::model::{Stream, StreamEntry, StreamId, StreamMeta, StreamMetaV2};
    use crate::proto::Limits;

    const TOKEN: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

    /// The complete flow-0 byte listing of spec section 9.2: the hand-made corpus file, which
    /// `tests/corpus_handmade.rs` checks byte by byte against the spec's listing.
    fn spec_9_2() -> Vec<u8> {
        include_bytes!("../../corpus/handmade/spec-9.2-flow0.bin").to_vec()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// The dataset of section 9, in writing order: (db, key, type, expiry, value).
    fn dataset() -> Vec<(u32, &'static str, ValueType, Option<u64>, Value)> {
        let id = StreamId { ms: 1, seq: 1 };
        let stream = Stream {
            entries: vec![StreamEntry { id, fields: vec![(b("f"), b("v"))] }],
            meta: StreamMeta {
                length: 1,
                last_id: id,
                v2: Some(StreamMetaV2 { first_id: id, max_deleted_id: StreamId::default(), entries_added: 1 }),
            },
            groups: vec![],
        };
        vec![
            (0, "str", ValueType::String, None, Value::String(b("hello"))),
            (0, "num", ValueType::String, None, Value::String(b("12345"))),
            (0, "ttl", ValueType::String, Some(1_767_225_600_000), Value::String(b("v"))),
            (0, "lst", ValueType::ListQuicklist2, None, Value::List(vec![b("a"), b("b"), b("c")])),
            (0, "st", ValueType::SetIntset, None, Value::Set(vec![b("1"), b("2"), b("3")])),
            (0, "tags", ValueType::Set, None, Value::Set(vec![b("x"), b("y")])),
            (0, "h", ValueType::HashListpack, None, Value::Hash(vec![(b("f"), b("v"))])),
            (0, "z", ValueType::ZsetListpack, None, Value::Zset(vec![(b("a"), 1.0), (b("b"), 2.5)])),
            (0, "s", ValueType::StreamListpacks3, None, Value::Stream(Box::new(stream))),
            (1, "k1", ValueType::String, None, Value::String(b("v1"))),
        ]
    }

    fn command(txid: u64, args: &[&str]) -> JournalRecord {
        JournalRecord {
            db: 0,
            op: JournalOp::Command {
                kind: CommandKind::Command,
                txid,
                shard_cnt: 1,
                args: args.iter().map(|a| b(a)).collect(),
            },
        }
    }

    #[test]
    fn spec_9_2_byte_for_byte() {
        let mut w = RdbWriter::new();
        w.header();
        for (k, v) in [
            ("redis-ver", "6.2.11"),
            ("df-ver", "df-v1.40.1"),
            ("redis-bits", "64"),
            ("ctime", "1767225000"),
            ("used-mem", "1048576"),
            ("aof-preamble", "0"),
            ("shard-count", "1"),
            ("table-mem", "4096"),
            ("shard-id", "0"),
        ] {
            w.aux(k.as_bytes(), v.as_bytes());
        }
        let mut db = None;
        for (d, key, ty, expire_ms, value) in dataset() {
            if db != Some(d) {
                w.select_db(d);
                db = Some(d);
            }
            let header = EntryHeader { db: d, key: b(key), value_type: ty, expire_ms, flags: KeyFlags::default() };
            w.entry(&header, &value).unwrap();
        }
        w.full_sync_end().journal_offset(1).eof(false).raw(TOKEN);
        let mut j = JournalWriter::new();
        j.record(&command(7, &["SET", "foo", "bar"])).lsn_marker(1);
        j.record(&command(8, &["PEXPIREAT", "foo", "1767225600000"]));
        w.raw(j.as_bytes());
        let expected = spec_9_2();
        let got = w.into_bytes();
        let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!((first_diff, got.len()), (None, expected.len()), "writer output differs from the spec listing");

        // And it decodes back to the spec's meaning.
        let mut d = FlowDecoder::full_sync(*TOKEN, Limits::default());
        d.feed(&expected);
        let mut asm = Assembler::new();
        let mut entries = Vec::new();
        let mut journal = Vec::new();
        while let Some(ev) = d.next_event().unwrap() {
            match asm.push(ev).unwrap() {
                Some(Assembled::Entry { header, value }) => entries.push((header, value)),
                Some(Assembled::Other(Event::Journal { lsn, record })) => journal.push((lsn, record)),
                _ => {}
            }
        }
        d.finish().unwrap();
        let want: Vec<(EntryHeader, Value)> = dataset()
            .into_iter()
            .map(|(db, key, ty, expire_ms, v)| {
                (EntryHeader { db, key: b(key), value_type: ty, expire_ms, flags: KeyFlags::default() }, v)
            })
            .collect();
        assert_eq!(entries, want);
        assert_eq!(
            journal,
            vec![(1, command(7, &["SET", "foo", "bar"])), (2, command(8, &["PEXPIREAT", "foo", "1767225600000"]))]
        );
        assert_eq!(d.next_lsn(), Some(3));
    }

    #[test]
    fn tagged_pieces_cover_the_entry() {
        let entry: Vec<u8> = (0..=255).collect();
        let pieces = tagged_pieces(9, &entry, 100);
        assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), vec![109, 109, 65]);
        assert_eq!(&pieces[2][..9], &[0xe0, 9, 0, 0, 0, 56, 0, 0, 0]);
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p[9..].to_vec()).collect();
        assert_eq!(joined, entry);
    }

    #[test]
    fn key_flags_record() {
        let mut out = Vec::new();
        write_flags(&mut out, &KeyFlags::default());
        assert!(out.is_empty());
        write_flags(&mut out, &KeyFlags { sticky: true, mc_flags: Some(7) });
        assert_eq!(out, [0xdc, 3, 0, 0, 0, 7, 0, 0, 0]);
    }
}
