//! Fuzzes the RDB decoder on arbitrary bytes: no panics, and the events (and the whole error:
//! kind, offset, context) are the same whether the input arrives whole or in arbitrary pieces.
#![no_main]

use df2redis::proto::rdb::RdbDecoder;
use df2redis::proto::Limits;
use libfuzzer_sys::fuzz_target;

fn limits(batch: u8) -> Limits {
    Limits {
        max_string: 1 << 20,
        max_elements: 1 << 16,
        max_record: 1 << 20,
        max_decompressed: 4 << 20,
        batch_elements: usize::from(batch % 16) + 1,
        batch_bytes: usize::from(batch) * 16 + 1,
    }
}

/// Feeds `data` in pieces whose sizes cycle through `cuts` (empty = whole), collecting events
/// as Debug text (NaN scores compare equal that way) and the outcome.
fn run(data: &[u8], cuts: &[u8], verify: bool, limits: Limits) -> (Vec<String>, String) {
    let mut dec = if verify { RdbDecoder::new(limits) } else { RdbDecoder::new_unverified(limits) };
    let mut events = Vec::new();
    let mut fed = 0;
    let mut i = 0;
    loop {
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => events.push(format!("{ev:?}")),
                Ok(None) => break,
                // The whole error (kind, offset, context) must not depend on the feeding.
                Err(e) => return (events, format!("error {e:?}")),
            }
        }
        if fed == data.len() {
            return (events, format!("{:?} at {}", dec.finish(), dec.offset()));
        }
        let n = match cuts.get(i % cuts.len().max(1)) {
            Some(&c) => usize::from(c).max(1).min(data.len() - fed),
            None => data.len() - fed,
        };
        i += 1;
        dec.feed(&data[fed..fed + n]);
        fed += n;
    }
}

fuzz_target!(|input: &[u8]| {
    // Header: [flags, batch, ncuts, cuts...], then the stream.
    let [flags, batch, ncuts, rest @ ..] = input else { return };
    let ncuts = usize::from(*ncuts % 8).min(rest.len());
    let (cuts, data) = rest.split_at(ncuts);
    let verify = flags & 1 == 1;
    let limits = limits(*batch);
    let whole = run(data, &[], verify, limits);
    let pieces = run(data, cuts, verify, limits);
    assert_eq!(whole, pieces, "feeding in pieces {cuts:?} changed the events");
    let bytewise = run(data, &[1], verify, limits);
    assert_eq!(whole, bytewise, "feeding byte by byte changed the events");
});
