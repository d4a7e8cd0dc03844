//! Fuzzes the packed-integer reader: never panics, `Need` is honest, and write → peek round-trips.
#![no_main]

use df2redis::proto::packed::{self, Packed};
use df2redis::proto::Read;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match packed::peek(data) {
        Ok(Read::Done((value, used))) => {
            assert!(used >= 1 && used <= 9 && used <= data.len(), "used {used} of {}", data.len());
            // Every shorter prefix must ask for more, never decode differently.
            for cut in 0..used {
                assert!(matches!(packed::peek(&data[..cut]), Ok(Read::Need(n)) if n > cut));
            }
            if let Packed::Len(v) = value {
                let mut out = Vec::new();
                packed::write(&mut out, v);
                assert_eq!(out.len(), packed::encoded_len(v));
                assert_eq!(packed::peek_len(&out), Ok(Read::Done((v, out.len()))));
            }
        }
        Ok(Read::Need(n)) => assert!(n > data.len(), "Need({n}) with {} bytes present", data.len()),
        Err(_) => {}
    }
    // Any 8 bytes as a number round-trip through the shortest form.
    if let Some(b) = data.get(..8) {
        let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let mut out = Vec::new();
        packed::write(&mut out, v);
        assert_eq!(packed::peek_len(&out), Ok(Read::Done((v, out.len()))));
    }
});
