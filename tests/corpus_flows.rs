//! Every byte of the real Dragonfly flow captures decodes with `FlowDecoder`, identically under
//! any feed chunking, with FULLSYNC_END inside the full-sync part; compact event summaries are
//! kept as insta snapshots.

#![allow(clippy::unwrap_used)]

mod chunking;

use chunking::SplitMix;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use df2redis::proto::event::{Chunk, Event, JournalOp, JournalRecord};
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{DecodeError, Limits};
use serde::Serialize;

/// `corpus/` in the repository (a missing corpus fails the test).
fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Capture folders `(version, name, path)`, sorted.
fn captures() -> Vec<(String, String, PathBuf)> {
    let root = corpus_root();
    let mut out = Vec::new();
    let mut versions: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("corpus at {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("dragonfly-v")))
        .collect();
    versions.sort();
    for v in versions {
        let mut caps: Vec<_> = std::fs::read_dir(&v)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("capture.json").is_file())
            .collect();
        caps.sort();
        for c in caps {
            let name = c.file_name().unwrap().to_string_lossy().into_owned();
            out.push((v.file_name().unwrap().to_string_lossy().into_owned(), name, c));
        }
    }
    assert!(out.len() >= 14, "expected the v1.40.1 and v1.30.3 captures under {}", root.display());
    out
}

/// Decodes `bytes` fed in pieces whose sizes `sizes` yields; returns the events and, for each
/// event, the decoder offset right after it.
fn decode(
    bytes: &[u8],
    token: [u8; 40],
    mut sizes: impl FnMut() -> usize,
) -> Result<(Vec<Event>, Vec<u64>), DecodeError> {
    let mut d = FlowDecoder::full_sync(token, Limits::default());
    let mut events = Vec::new();
    let mut offsets = Vec::new();
    let mut fed = 0;
    loop {
        while let Some(ev) = d.next_event()? {
            events.push(ev);
            offsets.push(d.offset());
        }
        if fed == bytes.len() {
            break;
        }
        let n = sizes().clamp(1, bytes.len() - fed);
        d.feed(&bytes[fed..fed + n]);
        fed += n;
    }
    d.finish()?;
    assert_eq!(d.offset(), bytes.len() as u64, "every byte consumed");
    Ok((events, offsets))
}

/// Compact, human-checkable description of a flow.
#[derive(Debug, Serialize)]
struct Summary {
    bytes: usize,
    /// Count per event kind; entries per type code.
    events: BTreeMap<String, u64>,
    aux: Vec<String>,
    dbs: Vec<u32>,
    journal_blobs: u64,
    journal_offset: Option<u64>,
    /// First and last LSN of the stable journal, and the number of records.
    lsn_range: Option<(u64, u64)>,
    journal_records: u64,
    lsn_markers: Vec<u64>,
    first_commands: Vec<String>,
    first_blob_commands: Vec<String>,
}

fn render(rec: &JournalRecord) -> String {
    match &rec.op {
        JournalOp::Command { kind, txid, args, .. } => {
            let mut s = format!("db{} {kind:?} txid={txid}:", rec.db);
            for a in args {
                let t = String::from_utf8_lossy(a);
                if t.len() > 40 || a.iter().any(|b| !b.is_ascii_graphic()) {
                    s.push_str(&format!(" <{} bytes>", a.len()));
                } else {
                    s.push_str(&format!(" {t}"));
                }
            }
            s
        }
        other => format!("db{} {other:?}", rec.db),
    }
}

fn summarize(bytes: usize, events: &[Event]) -> Summary {
    let mut s = Summary {
        bytes,
        events: BTreeMap::new(),
        aux: Vec::new(),
        dbs: Vec::new(),
        journal_blobs: 0,
        journal_offset: None,
        lsn_range: None,
        journal_records: 0,
        lsn_markers: Vec::new(),
        first_commands: Vec::new(),
        first_blob_commands: Vec::new(),
    };
    let mut bump = |k: String| *s.events.entry(k).or_default() += 1;
    for ev in events {
        match ev {
            Event::Header { version } => bump(format!("header v{version}")),
            Event::Aux { .. } => bump("aux".into()),
            Event::SelectDb { .. } => bump("select_db".into()),
            Event::ResizeDb { .. } => bump("resize_db".into()),
            Event::Skipped { opcode } => bump(format!("skipped {opcode}")),
            Event::EntryBegin { header, .. } => bump(format!("entry type {:02}", header.value_type.code())),
            Event::EntryChunk { chunk, .. } => bump(format!("chunk {}", chunk_kind(chunk))),
            Event::EntryEnd { .. } => bump("entry end".into()),
            Event::JournalBlob { .. } => bump("journal blob".into()),
            Event::FullSyncEnd => bump("fullsync end".into()),
            Event::JournalOffset { .. } => bump("journal offset".into()),
            Event::RdbEnd { .. } => bump("rdb end".into()),
            Event::EofToken => bump("eof token".into()),
            Event::Journal { .. } => bump("journal record".into()),
            Event::LsnMarker { .. } => bump("lsn marker".into()),
        }
    }
    for ev in events {
        match ev {
            Event::Aux { key, value } => {
                let k = String::from_utf8_lossy(key);
                // ctime / used-mem / table-mem vary per run; lua bodies are long.
                let v = match &*k {
                    "ctime" | "used-mem" | "table-mem" => "…".to_string(),
                    _ => String::from_utf8_lossy(value).chars().take(40).collect(),
                };
                s.aux.push(format!("{k}={v}"));
            }
            Event::SelectDb { db } if !s.dbs.contains(db) => s.dbs.push(*db),
            Event::JournalBlob { record } => {
                s.journal_blobs += 1;
                if s.first_blob_commands.len() < 5 {
                    s.first_blob_commands.push(render(record));
                }
            }
            Event::JournalOffset { lsn } => s.journal_offset = Some(*lsn),
            Event::Journal { lsn, record } => {
                s.journal_records += 1;
                s.lsn_range = Some(match s.lsn_range {
                    None => (*lsn, *lsn),
                    Some((a, _)) => (a, *lsn),
                });
                if s.first_commands.len() < 12 {
                    s.first_commands.push(render(record));
                }
            }
            Event::LsnMarker { lsn } => s.lsn_markers.push(*lsn),
            _ => {}
        }
    }
    s
}

fn chunk_kind(c: &Chunk) -> &'static str {
    match c {
        Chunk::Str(_) => "str",
        Chunk::List(_) => "list",
        Chunk::Set(_) => "set",
        Chunk::SetWithTtl(_) => "set_ttl",
        Chunk::Hash(_) => "hash",
        Chunk::HashWithTtl(_) => "hash_ttl",
        Chunk::Zset(_) => "zset",
        Chunk::StreamEntries(_) => "stream_entries",
        Chunk::StreamMeta(_) => "stream_meta",
        Chunk::StreamGroup(_) => "stream_group",
        Chunk::Json(_) => "json",
        Chunk::Sbf(_) => "sbf",
        Chunk::Cms(_) => "cms",
        Chunk::TopK(_) => "topk",
        Chunk::Cuckoo(_) => "cuckoo",
        Chunk::Module(_) => "module",
    }
}

#[test]
fn every_flow_decodes_identically_under_any_chunking() {
    let mut flows = 0;
    for (version, name, dir) in captures() {
        let capture: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("capture.json")).unwrap()).unwrap();
        let tokens = capture["eof_tokens"].as_array().unwrap();
        let full_sync_bytes = capture["full_sync_bytes"].as_array().unwrap();
        for (i, tok) in tokens.iter().enumerate() {
            let bytes = std::fs::read(dir.join(format!("flow{i}.bin"))).unwrap();
            let token: [u8; 40] = tok.as_str().unwrap().as_bytes().try_into().unwrap();
            let label = format!("{version}/{name}/flow{i}");
            let (events, offsets) = decode(&bytes, token, || usize::MAX).unwrap_or_else(|e| panic!("{label}: {e}"));

            // Structure: one of each framing event, FULLSYNC_END inside the full-sync part.
            let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
            assert_eq!(count(&|e| matches!(e, Event::FullSyncEnd)), 1, "{label}");
            assert_eq!(count(&|e| matches!(e, Event::JournalOffset { .. })), 1, "{label}");
            assert_eq!(count(&|e| matches!(e, Event::EofToken)), 1, "{label}");
            assert_eq!(count(&|e| matches!(e, Event::RdbEnd { checksum: 0, verified: None })), 1, "{label}");
            let fse = events.iter().position(|e| matches!(e, Event::FullSyncEnd)).unwrap();
            let limit = full_sync_bytes[i].as_u64().unwrap();
            assert!(offsets[fse] <= limit, "{label}: FULLSYNC_END ends at {} > {limit}", offsets[fse]);
            let begins = count(&|e| matches!(e, Event::EntryBegin { .. }));
            assert_eq!(begins, count(&|e| matches!(e, Event::EntryEnd { .. })), "{label}: every entry ends");
            assert!(begins > 0, "{label}: has keys");

            // The journal's LSNs are consecutive from JOURNAL_OFFSET.
            let offset = events.iter().find_map(|e| match e {
                Event::JournalOffset { lsn } => Some(*lsn),
                _ => None,
            });
            let lsns: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Journal { lsn, .. } => Some(*lsn),
                    _ => None,
                })
                .collect();
            assert!(!lsns.is_empty(), "{label}: has a stable journal");
            let expected: Vec<u64> = (offset.unwrap()..).take(lsns.len()).collect();
            assert_eq!(lsns, expected, "{label}");

            // The journal part alone, as a partial sync would deliver it, gives the same records.
            let tok = events.iter().position(|e| matches!(e, Event::EofToken)).unwrap();
            let mut partial = FlowDecoder::journal_only(offset.unwrap(), Limits::default());
            partial.feed(&bytes[offsets[tok] as usize..]);
            let mut alone = Vec::new();
            while let Some(ev) = partial.next_event().unwrap() {
                alone.push(ev);
            }
            partial.finish().unwrap();
            assert!(alone[..] == events[tok + 1..], "{label}: journal-only decoding differs");

            // Identical events whole, one byte at a time, and in seeded random pieces.
            let (one, _) = decode(&bytes, token, || 1).unwrap();
            assert!(one == events, "{label}: 1-byte feeding differs");
            for seed in 1..=3u64 {
                let mut rng = SplitMix(seed * 0x1234_5678 + i as u64);
                let max = [7u64, 300, 70_000][(seed - 1) as usize];
                let (random, _) = decode(&bytes, token, || (rng.next() % max + 1) as usize).unwrap();
                assert!(random == events, "{label}: random chunking (seed {seed}) differs");
            }

            insta::assert_yaml_snapshot!(format!("{version}__{name}__flow{i}"), summarize(bytes.len(), &events));
            flows += 1;
        }
    }
    assert!(flows >= 28);
}
