//! Fuzzes LZF: decompressing arbitrary input with an arbitrary declared length never panics or
//! over-allocates, and compress → decompress returns the input.
#![no_main]

use arbitrary::Arbitrary;
use df2redis::proto::lzf;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Declared decompressed length, bounded so the target cannot be made to reserve gigabytes.
    declared: u16,
    /// Bytes given to the decompressor as-is.
    compressed: &'a [u8],
    /// Bytes compressed and then decompressed.
    plain: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    if let Ok(out) = lzf::decompress(input.compressed, usize::from(input.declared)) {
        assert_eq!(out.len(), usize::from(input.declared));
    }
    // `None` means "not smaller than the input": the caller stores the string raw.
    if let Some(packed) = lzf::compress(input.plain) {
        assert!(packed.len() < input.plain.len(), "compress returned a result that is not smaller");
        assert_eq!(lzf::decompress(&packed, input.plain.len()).as_deref(), Ok(input.plain));
    }
});
