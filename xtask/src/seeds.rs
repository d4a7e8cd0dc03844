//! Fuzz seed corpora: copies `corpus/` bytes into `fuzz/corpus/<target>/` (git-ignored).
//!
//! Seeds are cut to at most [`MAX_SEED`] bytes so libFuzzer's mutations stay fast. Flow
//! captures have their eof token replaced by [`FUZZ_EOF_TOKEN`], the fixed token the
//! `flow_decoder` target expects, so a seed that reaches the token can go past it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Largest seed written.
pub const MAX_SEED: usize = 64 << 10;

/// The eof token `fuzz/fuzz_targets/flow_decoder.rs` passes to `FlowDecoder::full_sync`.
pub const FUZZ_EOF_TOKEN: &[u8; 40] = b"f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

/// The eof token of `corpus/handmade/spec-9.2-flow0.bin` (spec section 9).
const HANDMADE_EOF_TOKEN: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

/// LZ4 frame magic (little-endian 0x184D2204) and zstd frame magic (0xFD2FB528).
const LZ4_MAGIC: &[u8] = &[0x04, 0x22, 0x4d, 0x18];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// One flow capture: its bytes and its eof token.
struct Flow {
    name: String,
    bytes: Vec<u8>,
    token: Vec<u8>,
}

/// Writes every seed; returns how many files were written.
pub fn write_all(root: &Path) -> Result<usize> {
    let corpus = root.join("corpus");
    let out = root.join("fuzz/corpus");
    let flows = load_flows(&corpus)?;
    let mut n = 0;

    // RDB files whole (they are small), and flow prefixes (the RDB part of a full sync).
    for entry in std::fs::read_dir(corpus.join("dragonfly-testdata"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rdb") {
            let bytes = std::fs::read(&path)?;
            n += seed(&out, "rdb_decoder", &file_stem(&path), &bytes)?;
        }
    }
    for f in &flows {
        let prefix = &f.bytes[..f.bytes.len().min(MAX_SEED)];
        n += seed(&out, "rdb_decoder", &f.name, prefix)?;
        n += seed(&out, "flow_decoder", &f.name, &replace_token(prefix, &f.token))?;
        // The stable-sync journal after the eof token (raw journal records).
        if let Some(pos) = find(&f.bytes, &f.token) {
            let journal = &f.bytes[pos + f.token.len()..];
            if !journal.is_empty() {
                n += seed(&out, "journal_decoder", &f.name, &journal[..journal.len().min(MAX_SEED)])?;
            }
            // A flow small enough to be a seed whole lets the flow decoder reach its journal.
            if f.bytes.len() <= MAX_SEED {
                n += seed(&out, "flow_decoder", &format!("{}-whole", f.name), &replace_token(&f.bytes, &f.token))?;
            }
        }
        // Compressed frames as they appear in the LZ4 / zstd captures: selector byte + frame.
        for (selector, magic) in [(0u8, LZ4_MAGIC), (1u8, ZSTD_MAGIC)] {
            for (i, frame) in frames(&f.bytes, magic).into_iter().take(6).enumerate() {
                let mut s = vec![selector];
                s.extend_from_slice(frame);
                n += seed(&out, "compressed_blocks", &format!("{}-{selector}-{i}", f.name), &s)?;
            }
        }
        // LZF: slices of the LZF captures (they carry many compressed strings).
        if f.name.contains("lzf") {
            for (i, piece) in f.bytes.chunks(4096).take(8).enumerate() {
                n += seed(&out, "lzf", &format!("{}-{i}", f.name), piece)?;
            }
        }
    }

    // The hand-made files (one per Dragonfly-only type / opcode / journal opcode), whole.
    let mut handmade: Vec<PathBuf> =
        std::fs::read_dir(corpus.join("handmade"))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    handmade.sort();
    for path in handmade {
        let bytes = std::fs::read(&path)?;
        let name = format!("handmade-{}", file_stem(&path));
        match path.extension().and_then(|e| e.to_str()) {
            Some("rdb") => n += seed(&out, "rdb_decoder", &name, &bytes)?,
            Some("bin") => n += seed(&out, "flow_decoder", &name, &replace_token(&bytes, HANDMADE_EOF_TOKEN))?,
            Some("journal") => {
                n += seed(&out, "journal_decoder", &name, &bytes)?;
                n += seed_raw(&out, "flow_decoder", &format!("{name}-partial"), &[&[1, 7], &bytes[..]].concat())?;
            }
            _ => {}
        }
    }

    // Packed integers: every form and its boundaries.
    for (i, bytes) in [
        &[0x05u8][..],
        &[0x3f],
        &[0x40, 0x64],
        &[0x7f, 0xff],
        &[0x80, 0, 0, 0x40, 0],
        &[0x80, 0xff, 0xff, 0xff, 0xff],
        &[0x81, 0, 0, 0, 1, 0, 0, 0, 0],
        &[0xc0, 0x40],
        &[0xc3, 0x05, 0x0a],
    ]
    .into_iter()
    .enumerate()
    {
        n += seed(&out, "packed_int", &format!("form-{i}"), bytes)?;
    }
    Ok(n)
}

fn load_flows(corpus: &Path) -> Result<Vec<Flow>> {
    let mut flows = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for version in std::fs::read_dir(corpus)? {
        let version = version?.path();
        if !version.file_name().is_some_and(|n| n.to_string_lossy().starts_with("dragonfly-v")) {
            continue;
        }
        for capture in std::fs::read_dir(&version)? {
            let capture = capture?.path();
            if capture.join("capture.json").is_file() {
                dirs.push(capture);
            }
        }
    }
    dirs.sort();
    for dir in dirs {
        let json = std::fs::read_to_string(dir.join("capture.json"))?;
        let tokens = eof_tokens(&json).with_context(|| format!("eof_tokens in {}", dir.display()))?;
        let version = dir.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
        let capture = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        for (i, token) in tokens.into_iter().enumerate() {
            let path = dir.join(format!("flow{i}.bin"));
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let name =
                format!("{}-{}-flow{i}", version.clone().unwrap_or_default(), capture.clone().unwrap_or_default());
            flows.push(Flow { name, bytes, token: token.into_bytes() });
        }
    }
    Ok(flows)
}

/// Extracts the `"eof_tokens": ["…", "…"]` array without a JSON dependency.
fn eof_tokens(json: &str) -> Option<Vec<String>> {
    let start = json.find("\"eof_tokens\"")?;
    let rest = &json[start..];
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    let tokens: Vec<String> =
        rest.get(open + 1..close)?.split(',').map(|t| t.trim().trim_matches('"').to_string()).collect();
    if tokens.iter().all(|t| t.len() == 40) {
        Some(tokens)
    } else {
        None
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace_token(bytes: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(pos) = find(&out, token) {
        out[pos..pos + token.len()].copy_from_slice(FUZZ_EOF_TOKEN);
    }
    out
}

/// Byte ranges starting at each occurrence of `magic`, up to the next one or [`MAX_SEED`].
fn frames<'a>(bytes: &'a [u8], magic: &[u8]) -> Vec<&'a [u8]> {
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(p) = bytes.get(from..).and_then(|b| find(b, magic)) {
        starts.push(from + p);
        from += p + magic.len();
    }
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(bytes.len()).min(s + MAX_SEED);
        out.push(&bytes[s..end]);
    }
    out
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The bytes a target reads before its input (see `fuzz/fuzz_targets/*.rs`): `rdb_decoder`
/// `[flags (1 = verify the checksum), batch, ncuts]`, `flow_decoder` `[mode (0 = full sync),
/// piece size]`, `journal_decoder` `[piece size selector]`.
fn target_prefix(target: &str) -> &'static [u8] {
    match target {
        "rdb_decoder" => &[1, 0, 0],
        "flow_decoder" => &[0, 7],
        "journal_decoder" => &[3],
        _ => &[],
    }
}

/// Writes a seed: the target's prefix, then `bytes`.
fn seed(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<usize> {
    seed_raw(out, target, name, &[target_prefix(target), bytes].concat())
}

/// Writes a seed exactly as given.
fn seed_raw(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<usize> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_parsed() {
        let j = r#"{"flows": 2, "eof_tokens": [
  "7e27e9845d3c424714e34c122e605dba4933eff0",
  "e0ca69fa91907227b7f4878f48a78d9d9e02cca3"
 ], "x": [1]}"#;
        assert_eq!(
            eof_tokens(j).unwrap(),
            vec!["7e27e9845d3c424714e34c122e605dba4933eff0", "e0ca69fa91907227b7f4878f48a78d9d9e02cca3"]
        );
        assert_eq!(eof_tokens(r#"{"eof_tokens": ["short"]}"#), None);
    }

    #[test]
    fn frames_split_at_each_magic() {
        let b = [9, 1, 2, 9, 1, 2, 3, 7];
        assert_eq!(frames(&b, &[1, 2]), vec![&b[1..4], &b[4..]]);
        assert!(frames(&b, &[5]).is_empty());
    }

    #[test]
    fn token_is_replaced_once() {
        let token = [b'a'; 40];
        let mut b = vec![1, 2];
        b.extend_from_slice(&token);
        b.push(3);
        let r = replace_token(&b, &token);
        assert_eq!(&r[2..42], FUZZ_EOF_TOKEN);
        assert_eq!((r[0], r[42]), (1, 3));
    }
}
