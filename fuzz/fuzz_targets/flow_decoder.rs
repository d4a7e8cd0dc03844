//! Fuzzes the flow decoder (full sync with a fixed eof token, or journal only): no panics, and
//! the events and the whole error (kind, offset, context) are the same whether the input arrives
//! whole or in arbitrary pieces.
#![no_main]

use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::Limits;
use libfuzzer_sys::fuzz_target;

/// Must equal `xtask::seeds::FUZZ_EOF_TOKEN` (the seeds carry it in place of the real tokens).
const TOKEN: [u8; 40] = *b"f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

fn limits() -> Limits {
    Limits {
        max_string: 1 << 20,
        max_elements: 1 << 16,
        max_record: 1 << 20,
        max_decompressed: 4 << 20,
        batch_elements: 16,
        batch_bytes: 4096,
    }
}

fn decoder(journal_only: bool) -> FlowDecoder {
    if journal_only {
        FlowDecoder::journal_only(1, limits())
    } else {
        FlowDecoder::full_sync(TOKEN, limits())
    }
}

fn run(data: &[u8], step: usize, journal_only: bool) -> (Vec<String>, String) {
    let mut dec = decoder(journal_only);
    let mut events = Vec::new();
    let mut fed = 0;
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
            return (events, format!("{:?} at {} next_lsn {:?}", dec.finish(), dec.offset(), dec.next_lsn()));
        }
        let n = if step == 0 { data.len() - fed } else { step.min(data.len() - fed) };
        dec.feed(&data[fed..fed + n]);
        fed += n;
    }
}

fuzz_target!(|input: &[u8]| {
    let [mode, step, data @ ..] = input else { return };
    let journal_only = mode & 1 == 1;
    let whole = run(data, 0, journal_only);
    let pieces = run(data, usize::from(*step).max(1), journal_only);
    assert_eq!(whole, pieces, "feeding in {step}-byte pieces changed the events");
});
