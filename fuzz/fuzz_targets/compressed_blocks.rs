//! Fuzzes LZ4-frame and zstd decompression under a small `max_decompressed`: no panics, no
//! output over the limit, and compress → decompress returns the input.
#![no_main]

use df2redis::proto::compress::{compress, decompress, Codec};
use df2redis::proto::Limits;
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let codec = if selector & 1 == 0 { Codec::Lz4 } else { Codec::Zstd };
    let limits = Limits { max_decompressed: LIMIT, ..Limits::default() };
    if let Ok(out) = decompress(codec, frame, &limits) {
        assert!(out.len() as u64 <= LIMIT, "{} bytes out, limit {LIMIT}", out.len());
        let again = compress(codec, &out);
        assert_eq!(decompress(codec, &again, &limits).as_deref(), Ok(&out[..]));
    }
    // The input itself as plain data (small enough to stay under the limit).
    let packed = compress(codec, frame);
    assert_eq!(decompress(codec, &packed, &limits).as_deref(), Ok(frame));
});
