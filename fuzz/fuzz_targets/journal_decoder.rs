//! Fuzzes the journal decoder: no panics, `Need` is honest, feeding in pieces gives the same
//! items and the same error (the decoder's errors carry no offset: the error is that of the
//! record after the last item, which the caller positions) as feeding whole, and every decoded
//! record re-encodes and decodes to itself.
#![no_main]

use bytes::BytesMut;
use df2redis::proto::journal::{encode_record, has_select_prefix, JournalDecoder, JournalItem};
use df2redis::proto::{ErrorKind, Limits, Read};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits { max_string: 1 << 20, max_elements: 1 << 16, max_record: 1 << 20, ..Limits::default() }
}

/// Decodes `data` feeding it `step` bytes at a time (0 = whole); stops at the first error.
/// Returns the items, the error (if any) and the bytes consumed.
fn decode(data: &[u8], step: usize) -> (Vec<JournalItem>, Option<ErrorKind>, usize) {
    let limits = limits();
    let mut dec = JournalDecoder::new();
    let mut input = BytesMut::new();
    let mut fed = 0;
    let mut items = Vec::new();
    loop {
        match dec.next(&mut input, &limits) {
            Ok(Read::Done(item)) => items.push(item),
            Ok(Read::Need(n)) => {
                assert!(n > input.len(), "Need({n}) with {} bytes buffered", input.len());
                if fed == data.len() {
                    return (items, None, fed - input.len());
                }
                let take = if step == 0 { data.len() - fed } else { step.min(data.len() - fed) };
                input.extend_from_slice(&data[fed..fed + take]);
                fed += take;
            }
            Err(e) => return (items, Some(e), fed - input.len()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (whole, whole_err, whole_used) = decode(rest, 0);
    let step = usize::from(first % 17) + 1;
    let (pieces, pieces_err, pieces_used) = decode(rest, step);
    assert_eq!(whole, pieces, "items differ between whole and {step}-byte feeding");
    assert_eq!(whole_err, pieces_err, "the error differs between whole and {step}-byte feeding");
    assert_eq!(whole_used, pieces_used, "the bytes consumed differ between whole and {step}-byte feeding");

    let limits = limits();
    for item in &whole {
        let JournalItem::Record(rec) = item else { continue };
        let mut out = Vec::new();
        encode_record(&mut out, rec, has_select_prefix(rec));
        let mut dec = JournalDecoder::with_db(rec.db);
        let mut buf = BytesMut::from(&out[..]);
        match dec.next(&mut buf, &limits) {
            Ok(Read::Done(JournalItem::Record(again))) => assert_eq!(&again, rec),
            other => panic!("re-encoded record {rec:?} decoded as {other:?}"),
        }
        assert!(buf.is_empty(), "{} bytes left after a re-encoded record", buf.len());
    }
});
