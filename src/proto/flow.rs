//! One DFLY FLOW connection's byte stream: the full-sync RDB part, the eof token, then the
//! LSN-counted journal stream (or the journal alone for a partial sync).

use bytes::{Buf, BytesMut};

use super::error::{unexpected, DecodeError, ErrorKind};
use super::event::Event;
use super::journal::{JournalDecoder, JournalItem};
use super::rdb::RdbDecoder;
use super::{Limits, Read};

/// Length of the eof token that follows the RDB part.
pub const EOF_TOKEN_LEN: usize = 40;

#[derive(Debug)]
enum Stage {
    /// The RDB part (boxed: it is much larger than the other stages).
    Rdb(Box<RdbDecoder>),
    /// The 40 token bytes.
    Token,
    /// The journal stream.
    Journal,
}

/// Decoder of one flow: `feed` bytes, call `next_event` until `Ok(None)`.
#[derive(Debug)]
pub struct FlowDecoder {
    limits: Limits,
    stage: Stage,
    token: [u8; EOF_TOKEN_LEN],
    /// Bytes after the RDB part (token and journal), once the RDB part ended.
    buf: BytesMut,
    fed: u64,
    need: usize,
    journal: JournalDecoder,
    next_lsn: Option<u64>,
    failed: Option<DecodeError>,
}

impl FlowDecoder {
    /// A flow that starts with a full sync; `eof_token` is the one the `DFLY FLOW` reply named.
    pub fn full_sync(eof_token: [u8; EOF_TOKEN_LEN], limits: Limits) -> Self {
        FlowDecoder {
            limits,
            stage: Stage::Rdb(Box::new(RdbDecoder::new_unverified(limits))),
            token: eof_token,
            buf: BytesMut::new(),
            fed: 0,
            need: 0,
            journal: JournalDecoder::new(),
            next_lsn: None,
            failed: None,
        }
    }

    /// A flow resumed by a partial sync (v1.35+): raw journal from the first byte, the first
    /// record having LSN `next_lsn`.
    pub fn journal_only(next_lsn: u64, limits: Limits) -> Self {
        FlowDecoder {
            stage: Stage::Journal,
            next_lsn: Some(next_lsn),
            ..FlowDecoder::full_sync([0; EOF_TOKEN_LEN], limits)
        }
    }

    /// Appends stream bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.fed += data.len() as u64;
        match &mut self.stage {
            Stage::Rdb(rdb) => rdb.feed(data),
            _ => self.buf.extend_from_slice(data),
        }
    }

    /// Bytes of the flow consumed so far.
    pub fn offset(&self) -> u64 {
        match &self.stage {
            Stage::Rdb(rdb) => rdb.offset(),
            _ => self.fed - self.buf.len() as u64,
        }
    }

    /// The LSN of the next journal record (the value to ACK), once known: from
    /// JOURNAL_OFFSET in a full sync, from the start for a partial sync.
    pub fn next_lsn(&self) -> Option<u64> {
        self.next_lsn
    }

    /// Whether the decoder is in the journal stream (after the token, or partial sync).
    pub fn in_journal(&self) -> bool {
        matches!(self.stage, Stage::Journal)
    }

    /// Checks that the stream stopped at an item boundary of the journal stream.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match &self.stage {
            Stage::Rdb(rdb) => {
                rdb.finish().and(Err(DecodeError::at(rdb.offset(), ErrorKind::Truncated("the RDB part"))))
            }
            Stage::Token => Err(DecodeError::at(self.offset(), ErrorKind::Truncated("the eof token"))),
            Stage::Journal if self.buf.is_empty() => Ok(()),
            Stage::Journal => Err(DecodeError::at(self.offset(), ErrorKind::Truncated("a journal record"))),
        }
    }

    /// The next event, or `Ok(None)` when more bytes are needed. Errors are sticky.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.step();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn step(&mut self) -> Result<Option<Event>, DecodeError> {
        match &mut self.stage {
            Stage::Rdb(rdb) => {
                let at = rdb.offset();
                let ev = rdb.next_event()?;
                match &ev {
                    Some(Event::JournalOffset { lsn }) => self.next_lsn = Some(*lsn),
                    Some(Event::RdbEnd { .. }) => {
                        if self.next_lsn.is_none() {
                            return Err(DecodeError::at(at, unexpected("JOURNAL_OFFSET before the RDB EOF", "EOF")));
                        }
                        let db = rdb.journal_db();
                        let done = std::mem::replace(&mut self.stage, Stage::Token);
                        if let Stage::Rdb(rdb) = done {
                            self.buf = rdb.into_remaining();
                        }
                        self.journal = JournalDecoder::with_db(db);
                    }
                    _ => {}
                }
                Ok(ev)
            }
            Stage::Token => {
                let Some(found) = self.buf.get(..EOF_TOKEN_LEN) else {
                    return Ok(None);
                };
                if found != self.token {
                    return Err(DecodeError::at(
                        self.offset(),
                        ErrorKind::Token {
                            expected: String::from_utf8_lossy(&self.token).into_owned(),
                            found: String::from_utf8_lossy(found).into_owned(),
                        },
                    ));
                }
                self.buf.advance(EOF_TOKEN_LEN);
                self.stage = Stage::Journal;
                Ok(Some(Event::EofToken))
            }
            Stage::Journal => {
                if self.buf.is_empty() || self.buf.len() < self.need {
                    return Ok(None);
                }
                self.need = 0;
                let at = self.offset();
                match self.journal.next(&mut self.buf, &self.limits) {
                    Ok(Read::Done(JournalItem::Record(record))) => {
                        let lsn = self.next_lsn.unwrap_or(0);
                        self.next_lsn = Some(lsn.saturating_add(1));
                        Ok(Some(Event::Journal { lsn, record }))
                    }
                    Ok(Read::Done(JournalItem::LsnMarker(lsn))) => {
                        let expected = self.next_lsn.unwrap_or(0).saturating_sub(1);
                        if lsn != expected {
                            return Err(DecodeError::at(at, ErrorKind::Lsn { expected, found: lsn }));
                        }
                        Ok(Some(Event::LsnMarker { lsn }))
                    }
                    Ok(Read::Need(n)) => {
                        self.need = n;
                        Ok(None)
                    }
                    Err(kind) => Err(DecodeError::at(at, kind)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::event::{CommandKind, JournalOp, JournalRecord};
    use crate::proto::writer::{JournalWriter, RdbWriter};

    const TOKEN: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

    fn cmd(db: u32, txid: u64, args: &[&str]) -> JournalRecord {
        JournalRecord {
            db,
            op: JournalOp::Command {
                kind: CommandKind::Command,
                txid,
                shard_cnt: 1,
                args: args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect(),
            },
        }
    }

    fn run(dec: &mut FlowDecoder, bytes: &[u8], piece: usize) -> Result<Vec<Event>, DecodeError> {
        let mut out = Vec::new();
        for p in bytes.chunks(piece.max(1)) {
            dec.feed(p);
            while let Some(ev) = dec.next_event()? {
                out.push(ev);
            }
        }
        dec.finish()?;
        Ok(out)
    }

    fn spec_stream() -> Vec<u8> {
        let mut w = RdbWriter::new();
        w.header().aux(b"redis-ver", b"6.2.11").select_db(0).full_sync_end().journal_offset(1).eof(false);
        w.raw(TOKEN);
        let mut j = JournalWriter::new();
        j.record(&cmd(0, 7, &["SET", "foo", "bar"])).lsn_marker(1);
        j.record(&cmd(0, 8, &["PEXPIREAT", "foo", "1767225600000"]));
        w.raw(j.as_bytes());
        w.into_bytes()
    }

    #[test]
    fn spec_9_2_tail() {
        let bytes = spec_stream();
        // The journal part of 9.2, byte for byte.
        let tail = &bytes[bytes.len() - 56..];
        let mut expected = vec![0x06, 0x00, 0x0a, 0x07, 0x01, 0x03, 0x09];
        expected.extend_from_slice(b"\x03SET\x03foo\x03bar\x0f\x01\x06\x00\x0a\x08\x01\x03\x19");
        expected.extend_from_slice(b"\x09PEXPIREAT\x03foo\x0d1767225600000");
        assert_eq!(tail, &expected[..]);
        for piece in [1, 7, bytes.len()] {
            let mut d = FlowDecoder::full_sync(*TOKEN, Limits::default());
            let events = run(&mut d, &bytes, piece).unwrap();
            let n = events.len();
            assert_eq!(
                &events[n - 5..],
                &[
                    Event::RdbEnd { checksum: 0, verified: None },
                    Event::EofToken,
                    Event::Journal { lsn: 1, record: cmd(0, 7, &["SET", "foo", "bar"]) },
                    Event::LsnMarker { lsn: 1 },
                    Event::Journal { lsn: 2, record: cmd(0, 8, &["PEXPIREAT", "foo", "1767225600000"]) },
                ]
            );
            assert_eq!(d.next_lsn(), Some(3));
            assert_eq!(d.offset(), bytes.len() as u64);
        }
    }

    #[test]
    fn token_mismatch_and_missing_offset() {
        let mut bytes = spec_stream();
        let pos = bytes.windows(40).position(|w| w == TOKEN).unwrap();
        bytes[pos + 1] = b'X';
        let e = run(&mut FlowDecoder::full_sync(*TOKEN, Limits::default()), &bytes, 5).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Token { .. }));
        let mut w = RdbWriter::new();
        w.header().full_sync_end().eof(false).raw(TOKEN);
        let e = run(&mut FlowDecoder::full_sync(*TOKEN, Limits::default()), w.as_bytes(), 3).unwrap_err();
        assert_eq!(e.offset, 18);
    }

    #[test]
    fn lsn_markers_are_checked() {
        let mut j = JournalWriter::new();
        j.record(&cmd(1, 0, &["DEL", "k"])).record(&JournalRecord { db: 1, op: JournalOp::Ping }).lsn_marker(11);
        let events = run(&mut FlowDecoder::journal_only(10, Limits::default()), j.as_bytes(), 2).unwrap();
        assert_eq!(
            events,
            vec![
                Event::Journal { lsn: 10, record: cmd(1, 0, &["DEL", "k"]) },
                Event::Journal { lsn: 11, record: JournalRecord { db: 1, op: JournalOp::Ping } },
                Event::LsnMarker { lsn: 11 },
            ]
        );
        j.lsn_marker(13);
        let mut d = FlowDecoder::journal_only(10, Limits::default());
        let e = run(&mut d, j.as_bytes(), 100).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Lsn { expected: 11, found: 13 });
        assert_eq!(e.offset as usize, j.as_bytes().len() - 2);
        assert_eq!(d.next_event(), Err(e));
    }

    #[test]
    fn truncation_is_reported() {
        let bytes = spec_stream();
        for cut in [5, 30, bytes.len() - 60, bytes.len() - 50, bytes.len() - 3] {
            let r = run(&mut FlowDecoder::full_sync(*TOKEN, Limits::default()), &bytes[..cut], 4);
            assert!(matches!(r, Err(DecodeError { kind: ErrorKind::Truncated(_), .. })), "cut {cut}: {r:?}");
        }
    }

    #[test]
    fn journal_offset_inside_a_compressed_blob() {
        // Appendix F: the last journal blobs and D3 share one LZ4 blob; FF follows at top level.
        let mut inner = RdbWriter::new();
        inner.journal_blob(&cmd(0, 0, &["SET", "a", "1"]), false).journal_offset(42);
        let mut w = RdbWriter::new();
        w.header().full_sync_end().compressed(crate::proto::compress::Codec::Lz4, inner.as_bytes()).eof(false);
        w.raw(TOKEN);
        let mut j = JournalWriter::new();
        j.record(&cmd(0, 0, &["DEL", "a"])).lsn_marker(42);
        w.raw(j.as_bytes());
        let events = run(&mut FlowDecoder::full_sync(*TOKEN, Limits::default()), w.as_bytes(), 3).unwrap();
        assert_eq!(
            &events[2..],
            &[
                Event::JournalBlob { record: cmd(0, 0, &["SET", "a", "1"]) },
                Event::JournalOffset { lsn: 42 },
                Event::RdbEnd { checksum: 0, verified: None },
                Event::EofToken,
                Event::Journal { lsn: 42, record: cmd(0, 0, &["DEL", "a"]) },
                Event::LsnMarker { lsn: 42 },
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn corrupted_flows_fail_the_same_way_however_fed(
            flips in proptest::collection::vec((0usize..1000, proptest::prelude::any::<u8>()), 1..4),
            piece in 1usize..40,
        ) {
            let mut bytes = spec_stream();
            for (pos, b) in flips {
                let i = pos % bytes.len();
                bytes[i] = b;
            }
            // The events and the whole error (kind, offset, context) do not depend on the feeding.
            let text = |r: Result<Vec<Event>, DecodeError>| format!("{r:?}");
            let full = || FlowDecoder::full_sync(*TOKEN, Limits::default());
            let whole = text(run(&mut full(), &bytes, bytes.len()));
            proptest::prop_assert_eq!(&text(run(&mut full(), &bytes, piece)), &whole);
            proptest::prop_assert_eq!(&text(run(&mut full(), &bytes, 1)), &whole);
            let partial = || FlowDecoder::journal_only(1, Limits::default());
            let whole = text(run(&mut partial(), &bytes, bytes.len()));
            proptest::prop_assert_eq!(&text(run(&mut partial(), &bytes, piece)), &whole);
        }
    }
}
