//! Block compression of the full-sync stream: one LZ4 frame (opcode 202) or one zstd frame (201),
//! decompressed under [`Limits::max_decompressed`], and the matching compressors for the writer.

use std::io::{Read as _, Write as _};

use super::error::{check_limit, corrupt, ErrorKind};
use super::Limits;

/// Which block codec a compressed blob uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// LZ4 frame, opcode `CA` (202).
    Lz4,
    /// Zstandard frame, opcode `C9` (201).
    Zstd,
}

impl Codec {
    /// The top-level opcode that introduces a blob of this codec.
    pub fn opcode(self) -> u8 {
        match self {
            Codec::Lz4 => 202,
            Codec::Zstd => 201,
        }
    }

    /// The codec of a blob opcode.
    pub fn from_opcode(op: u8) -> Option<Codec> {
        match op {
            202 => Some(Codec::Lz4),
            201 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// Name used in error contexts ("LZ4 block", "zstd block").
    pub fn block_name(self) -> &'static str {
        match self {
            Codec::Lz4 => "LZ4 block",
            Codec::Zstd => "zstd block",
        }
    }
}

/// Decompresses one frame of `codec`.
pub fn decompress(codec: Codec, frame: &[u8], limits: &Limits) -> Result<Vec<u8>, ErrorKind> {
    match codec {
        Codec::Lz4 => decompress_lz4(frame, limits),
        Codec::Zstd => decompress_zstd(frame, limits),
    }
}

/// LZ4's best case expands one input byte into at most ~255 output bytes; used to bound the
/// preallocation when a frame states an absurd content size.
const LZ4_MAX_RATIO: usize = 255;

/// Reads the content-size field of an LZ4 frame header, if the header is valid and has one.
fn lz4_content_size(frame: &[u8]) -> Result<Option<u64>, ErrorKind> {
    let magic = frame.get(0..4).ok_or_else(|| corrupt("LZ4 block", "shorter than a frame header"))?;
    if magic != [0x04, 0x22, 0x4d, 0x18] {
        return Err(corrupt("LZ4 block", format_args!("bad frame magic {magic:02x?}")));
    }
    let flg = *frame.get(4).ok_or_else(|| corrupt("LZ4 block", "shorter than a frame header"))?;
    if flg & 0x08 == 0 {
        return Ok(None);
    }
    let b = frame.get(6..14).ok_or_else(|| corrupt("LZ4 block", "frame header cut inside the content size"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(Some(u64::from_le_bytes(a)))
}

/// Walks the block headers of an LZ4 frame and checks that it ends, with its end mark (and
/// content checksum, if flagged), exactly at the end of `frame`. lz4_flex accepts a frame cut at a
/// block boundary, which would silently drop the rest of the data.
fn lz4_check_framing(frame: &[u8]) -> Result<(), ErrorKind> {
    let flg = *frame.get(4).ok_or_else(|| corrupt("LZ4 block", "shorter than a frame header"))?;
    let header = 7 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    let block_checksum = if flg & 0x10 != 0 { 4 } else { 0 };
    let mut pos = header;
    loop {
        let b = frame.get(pos..pos + 4).ok_or_else(|| corrupt("LZ4 block", "frame ends without its end mark"))?;
        let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        pos += 4;
        if word == 0 {
            break;
        }
        pos = pos.saturating_add((word & 0x7fff_ffff) as usize).saturating_add(block_checksum);
    }
    if flg & 0x04 != 0 {
        pos += 4;
    }
    if pos != frame.len() {
        return Err(corrupt("LZ4 block", format_args!("frame is {pos} bytes, blob holds {}", frame.len())));
    }
    Ok(())
}

/// Reads everything `reader` produces, failing once more than `max` bytes come out.
fn read_bounded(
    reader: impl std::io::Read,
    capacity: usize,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, ErrorKind> {
    let mut out = Vec::with_capacity(capacity);
    reader.take(max.saturating_add(1)).read_to_end(&mut out).map_err(|e| corrupt(what, e))?;
    check_limit("decompressed block size", out.len() as u64, max)?;
    Ok(out)
}

/// Decompresses one LZ4 frame. The content size (Dragonfly always sets it) bounds the
/// preallocation and must match the output; the output may never exceed the limit.
pub fn decompress_lz4(frame: &[u8], limits: &Limits) -> Result<Vec<u8>, ErrorKind> {
    let declared = lz4_content_size(frame)?;
    lz4_check_framing(frame)?;
    if let Some(n) = declared {
        check_limit("decompressed block size", n, limits.max_decompressed)?;
    }
    let bound = frame.len().saturating_mul(LZ4_MAX_RATIO).saturating_add(64);
    let cap = declared.map_or(frame.len().saturating_mul(4), |n| n as usize).min(bound);
    let cap = cap.min(usize::try_from(limits.max_decompressed).unwrap_or(usize::MAX));
    let out = read_bounded(lz4_flex::frame::FrameDecoder::new(frame), cap, limits.max_decompressed, "LZ4 block")?;
    if let Some(n) = declared {
        if out.len() as u64 != n {
            return Err(corrupt("LZ4 block", format_args!("decompressed {} bytes, frame says {n}", out.len())));
        }
    }
    Ok(out)
}

/// Decompresses one zstd frame, checking its content size against the limit first.
pub fn decompress_zstd(frame: &[u8], limits: &Limits) -> Result<Vec<u8>, ErrorKind> {
    // Exactly one complete frame: a truncated frame would otherwise stream out a silent prefix.
    let size = zstd::zstd_safe::find_frame_compressed_size(frame)
        .map_err(|code| corrupt("zstd block", zstd::zstd_safe::get_error_name(code)))?;
    if size != frame.len() {
        return Err(corrupt("zstd block", format_args!("{} bytes after the frame", frame.len().saturating_sub(size))));
    }
    let declared =
        zstd::zstd_safe::get_frame_content_size(frame).map_err(|_| corrupt("zstd block", "invalid frame header"))?;
    match declared {
        Some(n) => {
            check_limit("decompressed block size", n, limits.max_decompressed)?;
            let out = zstd::bulk::decompress(frame, n as usize).map_err(|e| corrupt("zstd block", e))?;
            if out.len() as u64 != n {
                return Err(corrupt("zstd block", format_args!("decompressed {} bytes, frame says {n}", out.len())));
            }
            Ok(out)
        }
        None => {
            let dec = zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| corrupt("zstd block", e))?;
            let cap = frame.len().saturating_mul(4).min(usize::try_from(limits.max_decompressed).unwrap_or(usize::MAX));
            read_bounded(dec, cap, limits.max_decompressed, "zstd block")
        }
    }
}

/// Compresses `data` into one frame of `codec`, with the content size in the frame header
/// (as Dragonfly writes it).
pub fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    match codec {
        Codec::Lz4 => compress_lz4(data),
        Codec::Zstd => compress_zstd(data),
    }
}

/// One LZ4 frame with the content size set.
pub fn compress_lz4(data: &[u8]) -> Vec<u8> {
    let info = lz4_flex::frame::FrameInfo::new().content_size(Some(data.len() as u64));
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2 + 64));
    // Writing into a Vec cannot fail.
    let written = enc.write_all(data).map_err(|e| e.to_string()).and_then(|()| enc.finish().map_err(|e| e.to_string()));
    written.unwrap_or_default()
}

/// One zstd frame (level 1) with the content size set.
pub fn compress_zstd(data: &[u8]) -> Vec<u8> {
    // The one-shot API records the content size in the frame header; it cannot fail on a Vec.
    zstd::bulk::compress(data, 1).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lz4_sets_content_size() {
        let data = b"hello hello hello hello hello".repeat(20);
        let f = compress_lz4(&data);
        assert_eq!(&f[..4], &[0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(lz4_content_size(&f), Ok(Some(data.len() as u64)));
        assert_eq!(decompress_lz4(&f, &Limits::default()).as_deref(), Ok(&data[..]));
    }

    #[test]
    fn zstd_sets_content_size() {
        let data = b"abcabcabc".repeat(100);
        let f = compress_zstd(&data);
        assert_eq!(&f[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&f).ok(), Some(Some(data.len() as u64)));
        assert_eq!(decompress_zstd(&f, &Limits::default()).as_deref(), Ok(&data[..]));
    }

    #[test]
    fn limits_are_enforced() {
        let data = vec![7u8; 10_000];
        let limits = Limits { max_decompressed: 9_999, ..Limits::default() };
        for codec in [Codec::Lz4, Codec::Zstd] {
            let f = compress(codec, &data);
            assert!(matches!(decompress(codec, &f, &limits), Err(ErrorKind::Limit { .. })), "{codec:?}");
        }
    }

    #[test]
    fn lying_content_size_is_caught() {
        let data = vec![1u8; 1000];
        let mut f = compress_lz4(&data);
        // Content size is at 6..14; the header checksum byte then mismatches, or the size does.
        f[6] = 0xe7;
        assert!(decompress_lz4(&f, &Limits::default()).is_err());
        // A frame without a content size still decodes, bounded by the limit.
        let info = lz4_flex::frame::FrameInfo::new();
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&data).unwrap();
        let f = enc.finish().unwrap();
        assert_eq!(decompress_lz4(&f, &Limits::default()).map(|v| v.len()), Ok(1000));
        let small = Limits { max_decompressed: 999, ..Limits::default() };
        assert!(matches!(decompress_lz4(&f, &small), Err(ErrorKind::Limit { .. })));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect();
        for codec in [Codec::Lz4, Codec::Zstd] {
            let f = compress(codec, &data);
            for cut in [0, 3, 7, 11, 15, 19, f.len() / 2, f.len() - 5, f.len() - 4, f.len() - 1] {
                assert!(decompress(codec, &f[..cut], &Limits::default()).is_err(), "{codec:?} cut at {cut}");
            }
            let mut longer = f.clone();
            longer.push(0);
            assert!(decompress(codec, &longer, &Limits::default()).is_err(), "{codec:?} trailing byte");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for codec in [Codec::Lz4, Codec::Zstd] {
            assert!(decompress(codec, b"", &Limits::default()).is_err());
            assert!(decompress(codec, b"\x04\x22\x4d\x18\x40\x40\xc0", &Limits::default()).is_err());
            assert!(decompress(codec, b"\x28\xb5\x2f\xfd\x00", &Limits::default()).is_err());
        }
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..3000), zstd in any::<bool>()) {
            let codec = if zstd { Codec::Zstd } else { Codec::Lz4 };
            let f = compress(codec, &data);
            prop_assert_eq!(decompress(codec, &f, &Limits::default()), Ok(data));
        }

        #[test]
        fn corrupt_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 1..500), pos in any::<usize>(), byte in any::<u8>()) {
            for codec in [Codec::Lz4, Codec::Zstd] {
                let mut f = compress(codec, &data);
                let i = pos % f.len();
                f[i] = byte;
                let _ = decompress(codec, &f, &Limits::default());
            }
        }
    }
}
