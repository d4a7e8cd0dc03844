//! Every Redis-written RDB file of the Dragonfly test data decodes to EOF with a verified
//! checksum, identically under 1-byte feeding; its assembled entries are kept as insta snapshots.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use df2redis::proto::assemble::{Assembled, Assembler};
use df2redis::proto::event::Event;
use df2redis::proto::model::Value;
use df2redis::proto::rdb::RdbDecoder;
use df2redis::proto::Limits;

/// `corpus/dragonfly-testdata/` in the repository (a missing corpus fails the test).
fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/dragonfly-testdata")
}

fn text(b: &[u8]) -> String {
    let s: String = b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(char::from).collect();
    if s.len() > 48 {
        format!("{}…({} bytes)", &s[..40], b.len())
    } else {
        s
    }
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = items.iter().take(8).map(f).collect();
    if items.len() > 8 {
        parts.push(format!("…({} in all)", items.len()));
    }
    parts.join(", ")
}

/// One line per value, short enough to review by eye.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => text(s),
        Value::List(l) => format!("[{}]", list(l, |e| text(e))),
        Value::Set(s) => {
            let mut s = s.clone();
            s.sort();
            format!("{{{}}}", list(&s, |e| text(e)))
        }
        Value::SetWithTtl(s) => format!("{{{}}}", list(s, |(m, t)| format!("{} ttl {t:?}", text(m)))),
        Value::Hash(h) => {
            let mut h = h.clone();
            h.sort();
            format!("{{{}}}", list(&h, |(f, v)| format!("{}: {}", text(f), text(v))))
        }
        Value::HashWithTtl(h) => format!("{{{}}}", list(h, |(f, v, t)| format!("{}: {} ttl {t:?}", text(f), text(v)))),
        Value::Zset(z) => format!("[{}]", list(z, |(m, s)| format!("{} {s:?}", text(m)))),
        Value::Stream(s) => format!(
            "stream of {} entries (first: {}), length {}, last id {}, v2 {}, groups [{}]",
            s.entries.len(),
            list(&s.entries[..s.entries.len().min(1)], |e| format!(
                "{} {}",
                e.id,
                list(&e.fields, |(f, v)| format!("{}={}", text(f), text(v)))
            )),
            s.meta.length,
            s.meta.last_id,
            s.meta.v2.map_or("-".to_string(), |v| format!(
                "first {} max deleted {} added {}",
                v.first_id, v.max_deleted_id, v.entries_added
            )),
            list(&s.groups, |g| format!(
                "{} last {} read {:?} pel {} consumers [{}]",
                text(&g.name),
                g.last_delivered,
                g.entries_read,
                g.pel.len(),
                list(&g.consumers, |c| format!("{} pending {}", text(&c.name), c.pending.len()))
            )),
        ),
        Value::Json(j) => format!("json {}", text(j)),
        Value::Module(m) => format!("module {} v{} with {} items", m.name, m.encver, m.items.len()),
        other => other.kind_name().to_string(),
    }
}

#[test]
fn every_testdata_rdb_decodes_with_a_valid_checksum() {
    let dir = testdata_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "expected the RDB files under {}", dir.display());
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let decode = |piece: usize| {
            let mut d = RdbDecoder::new(Limits::default());
            let mut events = Vec::new();
            for p in bytes.chunks(piece) {
                d.feed(p);
                while let Some(ev) = d.next_event().unwrap_or_else(|e| panic!("{name}: {e}")) {
                    events.push(ev);
                }
            }
            d.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(d.is_finished());
            assert!(d.into_remaining().is_empty(), "{name}: bytes after the checksum");
            events
        };
        let events = decode(bytes.len());
        assert!(decode(1) == events, "{name}: 1-byte feeding differs");
        match events.last() {
            Some(Event::RdbEnd { checksum, verified }) => {
                assert_ne!(*checksum, 0, "{name}: Redis files carry a checksum");
                assert_eq!(*verified, Some(true), "{name}");
            }
            other => panic!("{name}: ends with {other:?}"),
        }

        let mut asm = Assembler::new();
        let mut lines = Vec::new();
        for ev in events {
            match asm.push(ev).unwrap_or_else(|e| panic!("{name}: {e}")) {
                Some(Assembled::Entry { header, value }) => {
                    let ttl = header.expire_ms.map(|ms| format!(" expire_ms {ms}")).unwrap_or_default();
                    lines.push(format!(
                        "db{} {} (type {}){ttl} = {}",
                        header.db,
                        text(&header.key),
                        header.value_type.code(),
                        render(&value)
                    ));
                }
                Some(Assembled::Other(Event::Aux { key, value })) => {
                    lines.push(format!("aux {} = {}", text(&key), text(&value)));
                }
                Some(Assembled::Other(Event::Header { version })) => lines.push(format!("header version {version}")),
                Some(Assembled::Other(Event::SelectDb { db })) => lines.push(format!("select db {db}")),
                Some(Assembled::Other(Event::ResizeDb { db_size, expires_size })) => {
                    lines.push(format!("resize db {db_size} keys, {expires_size} with expiry"))
                }
                Some(Assembled::Other(Event::Skipped { opcode })) => lines.push(format!("skipped opcode {opcode}")),
                Some(Assembled::Other(Event::RdbEnd { checksum, verified })) => {
                    lines.push(format!("eof checksum {checksum:016x} verified {verified:?}"))
                }
                Some(Assembled::Other(other)) => panic!("{name}: unexpected {other:?} in a Redis file"),
                None => {}
            }
        }
        assert_eq!(asm.open_entries(), 0);
        insta::assert_yaml_snapshot!(name, lines);
    }
}
