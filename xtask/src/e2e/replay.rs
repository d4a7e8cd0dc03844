//! Real-capture replay scenarios: the LSN each flow of a capture ends at (the completion
//! position), and a reference Redis loaded from the capture's `expected-final.json.gz` with the
//! keys' absolute expiries, so that `df2redis verify` can compare the target against it.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{Event, JournalOp, Limits};
use df2redis::resp::Cmd;

use super::data::Writer;

fn capture(dir: &Path) -> Result<serde_json::Value> {
    let p = dir.join("capture.json");
    serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)
        .with_context(|| format!("parsing {}", p.display()))
}

/// Decodes every flow of the capture; calls `f` with each event.
fn each_event(dir: &Path, mut f: impl FnMut(usize, Event)) -> Result<Vec<u64>> {
    let cap = capture(dir)?;
    let flows = cap["flows"].as_u64().context("capture.json: flows")? as usize;
    let mut lsns = Vec::new();
    for i in 0..flows {
        let tok = cap["eof_tokens"][i].as_str().context("capture.json: eof_tokens")?;
        let mut t = [0u8; 40];
        if tok.len() != 40 {
            bail!("capture.json: eof token {i} is not 40 bytes");
        }
        t.copy_from_slice(tok.as_bytes());
        let mut d = FlowDecoder::full_sync(t, Limits::default());
        let p = dir.join(format!("flow{i}.bin"));
        d.feed(&std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
        while let Some(ev) = d.next_event().with_context(|| format!("decoding {}", p.display()))? {
            f(i, ev);
        }
        lsns.push(d.next_lsn().unwrap_or(0));
    }
    Ok(lsns)
}

/// The next LSN each flow reaches at the end of the capture.
pub fn final_lsns(dir: &Path) -> Result<Vec<u64>> {
    each_event(dir, |_, _| {})
}

/// Absolute expiry (Unix ms) of every key at the end of the capture, from the snapshot headers
/// and the journal's expiry commands.
/// `(db, key)` → absolute expiry (Unix ms), `None` = persistent.
type Expiries = BTreeMap<(u32, Vec<u8>), Option<u64>>;

fn expiries(dir: &Path) -> Result<Expiries> {
    let mut out = BTreeMap::new();
    let now = df2redis::apply::now_ms();
    each_event(dir, |_, ev| {
        let rec = match ev {
            Event::EntryBegin { header, .. } => {
                out.insert((header.db, header.key.to_vec()), header.expire_ms);
                return;
            }
            Event::JournalBlob { record } | Event::Journal { record, .. } => record,
            _ => return,
        };
        let JournalOp::Command { args, .. } = &rec.op else { return };
        let Some(name) = args.first().map(|a| a.to_ascii_uppercase()) else { return };
        let num = |b: &Bytes| std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok());
        let Some(k) = args.get(1) else { return };
        let key = (rec.db, k.to_vec());
        match name.as_slice() {
            b"SET" => {
                let px = args
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(b"PXAT"))
                    .and_then(|i| args.get(i + 1))
                    .and_then(num);
                if !args.iter().any(|a| a.eq_ignore_ascii_case(b"KEEPTTL")) {
                    out.insert(key, px);
                }
            }
            b"PEXPIREAT" => {
                out.insert(key, args.get(2).and_then(num));
            }
            // A key whose TTL passed before the PERSIST arrives is gone on a late replay.
            b"PERSIST" if out.get(&key).copied().flatten().is_none_or(|x| x > now) => {
                out.insert(key, None);
            }
            b"RESTORE" => {
                out.insert(key, args.get(2).and_then(num).filter(|t| *t > 0));
            }
            _ => {}
        }
    })?;
    Ok(out)
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    if s.len() % 2 != 0 {
        bail!("odd hex length");
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("bad hex")).collect()
}

/// Counts of what was loaded into the reference.
#[derive(Debug, Default)]
pub struct Reference {
    pub keys: usize,
    pub expired: usize,
    pub dragonfly_only: usize,
}

/// Writes every key of `expected-final` that Redis can hold into `addr` (with its absolute
/// expiry); keys of Dragonfly-only types are left out (the scenario replicates them with
/// `skip-and-report`), keys whose expiry already passed are left out (the target must not have
/// them either).
pub async fn load_reference(dir: &Path, addr: &str) -> Result<Reference> {
    let p = dir.join("expected-final.json.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?)
        .read_to_end(&mut raw)?;
    let expected: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&raw)?;
    let exp = expiries(dir)?;
    let now = df2redis::apply::now_ms();
    let mut r = Reference::default();
    let mut writers: BTreeMap<u32, Writer> = BTreeMap::new();
    for (id, e) in &expected {
        let (db, key_hex) = id.split_once(':').context("expected-final: key id is not <db>:<hex>")?;
        let db: u32 = db.parse()?;
        let key = unhex(key_hex)?;
        let ty = e["type"].as_str().unwrap_or_default();
        let v = &e["value"];
        let hexs = |x: &serde_json::Value| unhex(x.as_str().unwrap_or_default());
        let k = key.as_slice();
        let cmds: Vec<Cmd> = match ty {
            "string" => vec![Cmd::new("SET").arg(k).arg(hexs(v)?.as_slice())],
            "list" | "set" => {
                let mut c = Cmd::new(if ty == "list" { "RPUSH" } else { "SADD" }).arg(k);
                for m in v.as_array().into_iter().flatten() {
                    c.push_arg(hexs(m)?.as_slice());
                }
                vec![c]
            }
            "hash" => {
                let mut c = Cmd::new("HSET").arg(k);
                for p in v.as_array().into_iter().flatten() {
                    c.push_arg(hexs(&p[0])?.as_slice()).push_arg(hexs(&p[1])?.as_slice());
                }
                vec![c]
            }
            "zset" => {
                let mut c = Cmd::new("ZADD").arg(k);
                for p in v.as_array().into_iter().flatten() {
                    let score = match &p[1] {
                        serde_json::Value::String(s) => s.clone(),
                        n => n.to_string(),
                    };
                    c.push_arg(score.as_str()).push_arg(hexs(&p[0])?.as_slice());
                }
                vec![c]
            }
            "stream" => {
                let mut out = Vec::new();
                for entry in v.as_array().into_iter().flatten() {
                    let mut c = Cmd::new("XADD").arg(k).arg(entry[0].as_str().unwrap_or_default());
                    for p in entry[1].as_array().into_iter().flatten() {
                        c.push_arg(hexs(&p[0])?.as_slice()).push_arg(hexs(&p[1])?.as_slice());
                    }
                    out.push(c);
                }
                out
            }
            _ => {
                r.dragonfly_only += 1;
                continue;
            }
        };
        let expiry = exp.get(&(db, key.clone())).copied().flatten();
        if expiry.is_some_and(|x| x <= now) {
            r.expired += 1;
            continue;
        }
        let w = match writers.entry(db) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => v.insert(Writer::connect(addr, db).await?),
        };
        for c in cmds {
            w.push(c);
        }
        if let Some(x) = expiry {
            w.push(Cmd::new("PEXPIREAT").arg(k).arg(x));
        }
        w.flush().await?;
        r.keys += 1;
    }
    Ok(r)
}
