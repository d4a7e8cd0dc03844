//! Journal records (stable-sync stream and the payload of full-sync journal blobs): decoder with
//! the SELECT prefix folded into the following record, and the matching encoders.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{check_limit, corrupt, unexpected, ErrorKind};
use super::event::{CommandKind, JournalOp, JournalRecord};
use super::{packed, Limits, Read};

/// Journal opcodes (all packed integers < 64).
pub mod op {
    /// SELECT prefix.
    pub const SELECT: u64 = 6;
    /// Expiry delete (v0.15–v1.37).
    pub const EXPIRED: u64 = 9;
    /// Command.
    pub const COMMAND: u64 = 10;
    /// One command of a multi-command transaction (≤ v1.20).
    pub const MULTI_COMMAND: u64 = 11;
    /// End of a multi-command transaction (≤ v1.20).
    pub const EXEC: u64 = 12;
    /// Ping (consumes an LSN).
    pub const PING: u64 = 13;
    /// Slot-migration end.
    pub const FIN: u64 = 14;
    /// LSN marker.
    pub const LSN: u64 = 15;
}

/// One item of a journal stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalItem {
    /// A record (consumes an LSN in the stable stream).
    Record(JournalRecord),
    /// An LSN marker: the LSN of the record sent just before.
    LsnMarker(u64),
}

/// Incremental journal decoder. Keeps the current database across records (older masters only
/// sent SELECT on change).
#[derive(Debug, Clone, Default)]
pub struct JournalDecoder {
    db: u32,
}

/// Reads a packed number at `pos` of `b`; `Need` counts from the front of `b`.
#[inline(always)]
fn packed_at(b: &[u8], pos: usize) -> Result<Read<(u64, usize)>, ErrorKind> {
    if let Some(&b0) = b.get(pos) {
        if b0 < 0x40 {
            return Ok(Read::Done((u64::from(b0), pos + 1)));
        }
    }
    match packed::peek_len(b.get(pos..).unwrap_or_default())? {
        Read::Done((v, n)) => Ok(Read::Done((v, pos + n))),
        Read::Need(n) => Ok(Read::Need(pos + n)),
    }
}

/// Arguments whose byte ranges the argument walk remembers (commands with more are re-parsed).
const INLINE_SPANS: usize = 8;

/// Fixed header of a command record, as parsed before its arguments.
struct CmdHeader {
    txid: u64,
    shard_cnt: u64,
    nargs: u64,
    total_len: u64,
}

impl JournalDecoder {
    /// A decoder whose current database is 0.
    pub fn new() -> Self {
        JournalDecoder { db: 0 }
    }

    /// A decoder starting with `db` selected.
    pub fn with_db(db: u32) -> Self {
        JournalDecoder { db }
    }

    /// The database the next record without a SELECT prefix belongs to.
    pub fn db(&self) -> u32 {
        self.db
    }

    /// Decodes one item from the front of `input`, consuming it only when it is complete.
    /// `Need(n)`: `input` must hold at least `n` bytes before the item can be decoded.
    pub fn next(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Read<JournalItem>, ErrorKind> {
        let b: &[u8] = input;
        let mut pos = 0usize;
        let mut db = self.db;
        loop {
            let (opcode, p) = crate::ready!(packed_at(b, pos)?);
            pos = p;
            match opcode {
                op::SELECT => {
                    let (v, p) = crate::ready!(packed_at(b, pos)?);
                    db = u32::try_from(v).map_err(|_| unexpected("a database index", v))?;
                    pos = p;
                }
                op::EXPIRED | op::COMMAND | op::MULTI_COMMAND => {
                    let kind = match opcode {
                        op::EXPIRED => CommandKind::Expired,
                        op::COMMAND => CommandKind::Command,
                        _ => CommandKind::MultiCommand,
                    };
                    let (h, start) = crate::ready!(Self::command_header(b, pos, limits)?);
                    let mut spans = [(0u32, 0u32); INLINE_SPANS];
                    let end = crate::ready!(Self::walk_args(b, start, &h, limits, &mut spans)?);
                    let args = Self::split_args(input, start, end, h.nargs, &spans);
                    self.db = db;
                    let op = JournalOp::Command { kind, txid: h.txid, shard_cnt: h.shard_cnt, args };
                    return Ok(Read::Done(JournalItem::Record(JournalRecord { db, op })));
                }
                op::EXEC => {
                    let (txid, p) = crate::ready!(packed_at(b, pos)?);
                    let (shard_cnt, p) = crate::ready!(packed_at(b, p)?);
                    input.advance(p);
                    self.db = db;
                    let op = JournalOp::Exec { txid, shard_cnt };
                    return Ok(Read::Done(JournalItem::Record(JournalRecord { db, op })));
                }
                op::PING | op::FIN => {
                    input.advance(pos);
                    self.db = db;
                    let op = if opcode == op::PING { JournalOp::Ping } else { JournalOp::Fin };
                    return Ok(Read::Done(JournalItem::Record(JournalRecord { db, op })));
                }
                op::LSN => {
                    let (lsn, p) = crate::ready!(packed_at(b, pos)?);
                    input.advance(p);
                    self.db = db;
                    return Ok(Read::Done(JournalItem::LsnMarker(lsn)));
                }
                other => {
                    return Err(match u8::try_from(other) {
                        Ok(o) => ErrorKind::UnknownOpcode(o),
                        Err(_) => unexpected("a journal opcode", other),
                    })
                }
            }
        }
    }

    /// Parses `txid shard_cnt nargs total_len` at `pos`; returns it and the position after it.
    #[inline]
    fn command_header(b: &[u8], pos: usize, limits: &Limits) -> Result<Read<(CmdHeader, usize)>, ErrorKind> {
        let (txid, p) = crate::ready!(packed_at(b, pos)?);
        let (shard_cnt, p) = crate::ready!(packed_at(b, p)?);
        let (nargs, p) = crate::ready!(packed_at(b, p)?);
        let (total_len, p) = crate::ready!(packed_at(b, p)?);
        if nargs == 0 {
            return Err(corrupt("journal record", "command with no arguments"));
        }
        check_limit("journal argument count", nargs, limits.max_elements.min(limits.max_record))?;
        check_limit("journal record size", total_len, limits.max_record)?;
        Ok(Read::Done((CmdHeader { txid, shard_cnt, nargs, total_len }, p)))
    }

    /// Checks the argument list starting at `start` and returns the record's end position; the
    /// byte ranges of the first [`INLINE_SPANS`] arguments go to `spans`.
    #[inline]
    fn walk_args(
        b: &[u8],
        start: usize,
        h: &CmdHeader,
        limits: &Limits,
        spans: &mut [(u32, u32); INLINE_SPANS],
    ) -> Result<Read<usize>, ErrorKind> {
        // Every argument takes at least one length byte: wait for the lower bound in one go
        // instead of re-walking the arguments on every partial feed.
        let lower = (start as u64).saturating_add(h.nargs).saturating_add(h.total_len);
        if (b.len() as u64) < lower {
            return Ok(Read::Need(usize::try_from(lower).unwrap_or(usize::MAX)));
        }
        let mut pos = start;
        let mut sum = 0u64;
        for i in 0..h.nargs {
            let (len, p) = crate::ready!(packed_at(b, pos)?);
            check_limit("journal argument length", len, limits.max_string)?;
            sum = sum.saturating_add(len);
            if sum > h.total_len {
                return Err(corrupt(
                    "journal record",
                    format_args!("arguments exceed the stated total length {}", h.total_len),
                ));
            }
            pos = p + len as usize;
            if let Some(span) = spans.get_mut(i as usize) {
                // Positions fit: the record is at most `max_record` (< 4 GiB) plus its headers,
                // and any other case takes the re-parsing path of `split_args`.
                *span = (u32::try_from(p).unwrap_or(u32::MAX), u32::try_from(pos).unwrap_or(u32::MAX));
            }
        }
        if sum != h.total_len {
            return Err(corrupt(
                "journal record",
                format_args!("arguments hold {sum} bytes, the record says {}", h.total_len),
            ));
        }
        if b.len() < pos {
            return Ok(Read::Need(pos));
        }
        Ok(Read::Done(pos))
    }

    /// Consumes the (already validated) record `..end` from the front of `input` with one split,
    /// and cuts its arguments (which start at `start`; the first ones at `spans`) out of the
    /// frozen record bytes: one shared handle per argument, the last one taking over the record's.
    #[inline]
    fn split_args(
        input: &mut BytesMut,
        start: usize,
        end: usize,
        nargs: u64,
        spans: &[(u32, u32); INLINE_SPANS],
    ) -> Vec<Bytes> {
        let mut rec = input.split_to(end.min(input.len())).freeze();
        let n = nargs as usize;
        if (1..=INLINE_SPANS).contains(&n) && spans[n - 1].1 as usize == end {
            let mut args = Vec::with_capacity(n);
            for &(a, e) in &spans[..n - 1] {
                args.push(rec.slice(a as usize..e as usize));
            }
            let (a, e) = spans[n - 1];
            rec.truncate(e as usize);
            rec.advance(a as usize);
            args.push(rec);
            return args;
        }
        // Many arguments: parse the lengths again. `walk_args` saw every argument take at least
        // one byte of `start..end`.
        let mut args = Vec::with_capacity(nargs.min((end - start) as u64) as usize);
        let mut pos = start;
        for _ in 0..nargs {
            let Ok(Read::Done((len, p))) = packed_at(&rec, pos) else { break };
            let e = p.saturating_add(len as usize);
            if e > rec.len() {
                break;
            }
            args.push(rec.slice(p..e));
            pos = e;
        }
        args
    }
}

/// Appends `rec` in the journal wire format, with its `06 <db>` SELECT prefix when `select`.
pub fn encode_record(out: &mut Vec<u8>, rec: &JournalRecord, select: bool) {
    if select {
        packed::write(out, op::SELECT);
        packed::write(out, u64::from(rec.db));
    }
    match &rec.op {
        JournalOp::Command { kind, txid, shard_cnt, args } => {
            let opcode = match kind {
                CommandKind::Command => op::COMMAND,
                CommandKind::Expired => op::EXPIRED,
                CommandKind::MultiCommand => op::MULTI_COMMAND,
            };
            packed::write(out, opcode);
            packed::write(out, *txid);
            packed::write(out, *shard_cnt);
            packed::write(out, args.len() as u64);
            packed::write(out, args.iter().map(|a| a.len() as u64).sum());
            for a in args {
                packed::write(out, a.len() as u64);
                out.extend_from_slice(a);
            }
        }
        JournalOp::Exec { txid, shard_cnt } => {
            packed::write(out, op::EXEC);
            packed::write(out, *txid);
            packed::write(out, *shard_cnt);
        }
        JournalOp::Ping => packed::write(out, op::PING),
        JournalOp::Fin => packed::write(out, op::FIN),
    }
}

/// Appends an LSN marker `0F <lsn>`.
pub fn encode_lsn_marker(out: &mut Vec<u8>, lsn: u64) {
    packed::write(out, op::LSN);
    packed::write(out, lsn);
}

/// Whether Dragonfly writes a SELECT prefix before this record (every command-like record,
/// never PING/FIN).
pub fn has_select_prefix(rec: &JournalRecord) -> bool {
    matches!(rec.op, JournalOp::Command { .. } | JournalOp::Exec { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(db: u32, txid: u64, args: &[&[u8]]) -> JournalRecord {
        JournalRecord {
            db,
            op: JournalOp::Command {
                kind: CommandKind::Command,
                txid,
                shard_cnt: 1,
                args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            },
        }
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<JournalItem>, ErrorKind> {
        let mut d = JournalDecoder::new();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while !buf.is_empty() {
            match d.next(&mut buf, &Limits::default())? {
                Read::Done(item) => out.push(item),
                Read::Need(n) => return Err(ErrorKind::Truncated(if n > buf.len() { "record" } else { "??" })),
            }
        }
        Ok(out)
    }

    #[test]
    fn spec_6_1_set_foo_bar() {
        let bytes = [
            0x06, 0x00, 0x0a, 0x07, 0x01, 0x03, 0x09, 0x03, 0x53, 0x45, 0x54, 0x03, 0x66, 0x6f, 0x6f, 0x03, 0x62, 0x61,
            0x72,
        ];
        let rec = cmd(0, 7, &[b"SET", b"foo", b"bar"]);
        let mut out = Vec::new();
        encode_record(&mut out, &rec, true);
        assert_eq!(out, bytes);
        assert_eq!(decode_all(&bytes), Ok(vec![JournalItem::Record(rec)]));
    }

    #[test]
    fn spec_9_2_journal_stream() {
        let mut bytes = vec![0x06, 0x00, 0x0a, 0x07, 0x01, 0x03, 0x09];
        bytes.extend_from_slice(b"\x03SET\x03foo\x03bar");
        bytes.extend_from_slice(&[0x0f, 0x01, 0x06, 0x00, 0x0a, 0x08, 0x01, 0x03, 0x19]);
        bytes.extend_from_slice(b"\x09PEXPIREAT\x03foo\x0d1767225600000");
        let items = decode_all(&bytes).unwrap();
        assert_eq!(
            items,
            vec![
                JournalItem::Record(cmd(0, 7, &[b"SET", b"foo", b"bar"])),
                JournalItem::LsnMarker(1),
                JournalItem::Record(cmd(0, 8, &[b"PEXPIREAT", b"foo", b"1767225600000"])),
            ]
        );
    }

    #[test]
    fn spec_9_4_records() {
        // Expiry delete, v1.38+ and before (opcode 9).
        let mut del = vec![0x06, 0x00, 0x0a, 0x00, 0x01, 0x02, 0x0c];
        del.extend_from_slice(b"\x03DEL\x09session:1");
        assert_eq!(decode_all(&del), Ok(vec![JournalItem::Record(cmd(0, 0, &[b"DEL", b"session:1"]))]));
        del[2] = 0x09;
        let JournalItem::Record(JournalRecord { op: JournalOp::Command { kind, .. }, .. }) =
            &decode_all(&del).unwrap()[0]
        else {
            panic!("not a command")
        };
        assert_eq!(*kind, CommandKind::Expired);
        assert_eq!(decode_all(&[0x0d]), Ok(vec![JournalItem::Record(JournalRecord { db: 0, op: JournalOp::Ping })]));
        assert_eq!(
            decode_all(&[0x0c, 0x0c, 0x02]),
            Ok(vec![JournalItem::Record(JournalRecord { db: 0, op: JournalOp::Exec { txid: 12, shard_cnt: 2 } })])
        );
        // FLUSHALL on db 3 (9.3).
        let mut f = vec![0x06, 0x03, 0x0a, 0x05, 0x01, 0x01, 0x08, 0x08];
        f.extend_from_slice(b"FLUSHALL");
        assert_eq!(decode_all(&f), Ok(vec![JournalItem::Record(cmd(3, 5, &[b"FLUSHALL"]))]));
    }

    #[test]
    fn db_persists_across_records() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, &cmd(5, 0, &[b"X"]), true);
        encode_record(&mut bytes, &cmd(5, 0, &[b"Y"]), false);
        bytes.push(0x0d);
        let items = decode_all(&bytes).unwrap();
        assert_eq!(items[1], JournalItem::Record(cmd(5, 0, &[b"Y"])));
        assert_eq!(items[2], JournalItem::Record(JournalRecord { db: 5, op: JournalOp::Ping }));
    }

    #[test]
    fn bad_records() {
        // total_len says 10, args hold 9.
        let mut b = vec![0x0a, 0x00, 0x01, 0x03, 0x0a];
        b.extend_from_slice(b"\x03SET\x03foo\x03bar\x0d");
        assert!(matches!(decode_all(&b), Err(ErrorKind::Corrupt { .. })));
        // total_len says 8, args hold 9.
        b[4] = 0x08;
        assert!(matches!(decode_all(&b), Err(ErrorKind::Corrupt { .. })));
        assert_eq!(decode_all(&[0x00]), Err(ErrorKind::UnknownOpcode(0)));
        assert_eq!(decode_all(&[0x07]), Err(ErrorKind::UnknownOpcode(7)));
        assert!(matches!(decode_all(&[0x0a, 0, 1, 0, 0]), Err(ErrorKind::Corrupt { .. })));
        let limits = Limits { max_record: 100, ..Limits::default() };
        let mut buf = BytesMut::from(&[0x0a, 0x00, 0x01, 0x01, 0x80, 0, 0, 1, 0][..]);
        assert!(matches!(JournalDecoder::new().next(&mut buf, &limits), Err(ErrorKind::Limit { .. })));
    }

    #[test]
    fn need_is_a_useful_lower_bound() {
        let mut full = Vec::new();
        encode_record(&mut full, &cmd(0, 7, &[b"SET", b"foo", b"bar"]), true);
        let mut d = JournalDecoder::new();
        // After the header is visible the decoder asks for header + nargs + total_len at once.
        let mut buf = BytesMut::from(&full[..7]);
        assert_eq!(d.next(&mut buf, &Limits::default()), Ok(Read::Need(7 + 3 + 9)));
        assert_eq!(buf.len(), 7, "nothing consumed");
        let mut buf = BytesMut::from(&full[..1]);
        assert_eq!(d.next(&mut buf, &Limits::default()), Ok(Read::Need(2)));
    }

    fn arb_record() -> impl Strategy<Value = JournalRecord> {
        let args = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..12);
        let kind = prop_oneof![Just(CommandKind::Command), Just(CommandKind::Expired), Just(CommandKind::MultiCommand)];
        let op = prop_oneof![
            6 => (kind, any::<u64>(), 0u64..5, args).prop_map(|(kind, txid, shard_cnt, args)| JournalOp::Command {
                kind,
                txid,
                shard_cnt,
                args: args.into_iter().map(Bytes::from).collect(),
            }),
            1 => (any::<u64>(), any::<u64>()).prop_map(|(txid, shard_cnt)| JournalOp::Exec { txid, shard_cnt }),
            1 => Just(JournalOp::Ping),
            1 => Just(JournalOp::Fin),
        ];
        (0u32..20_000, op).prop_map(|(db, op)| JournalRecord { db, op })
    }

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec((arb_record(), proptest::option::of(any::<u64>())), 0..20),
                      cuts in proptest::collection::vec(1usize..40, 0..40)) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            let mut db = 0;
            for (rec, marker) in &items {
                let select = has_select_prefix(rec);
                encode_record(&mut bytes, rec, select);
                let mut rec = rec.clone();
                if select { db = rec.db } else { rec.db = db }
                expected.push(JournalItem::Record(rec));
                if let Some(lsn) = marker {
                    encode_lsn_marker(&mut bytes, *lsn);
                    expected.push(JournalItem::LsnMarker(*lsn));
                }
            }
            // Feed in pieces; only call the decoder once its stated need is met.
            let mut d = JournalDecoder::new();
            let mut buf = BytesMut::new();
            let mut fed = 0;
            let mut got = Vec::new();
            let mut cut_iter = cuts.iter().copied().cycle();
            let mut need = 1;
            while fed < bytes.len() || !buf.is_empty() {
                if buf.len() < need {
                    let n = cut_iter.next().unwrap_or(bytes.len()).min(bytes.len() - fed);
                    prop_assert!(n > 0, "decoder needs {} bytes but the input is exhausted", need);
                    buf.extend_from_slice(&bytes[fed..fed + n]);
                    fed += n;
                    continue;
                }
                match d.next(&mut buf, &Limits::default()).unwrap() {
                    Read::Done(item) => { got.push(item); need = 1; }
                    Read::Need(n) => { prop_assert!(n > buf.len()); need = n; }
                }
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = JournalDecoder::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Read::Done(_)) = d.next(&mut buf, &Limits::default()) {}
        }
    }
}
