//! JSON rendering of decoder events for `df2redis inspect --json` (part of the binary only).
//!
//! Byte strings print as JSON strings when they are printable UTF-8, else as `{"hex": "…"}`;
//! scores that JSON cannot hold (`inf`, `nan`) print as strings.

use bytes::Bytes;
use df2redis::proto::event::CommandKind;
use df2redis::proto::{Chunk, Event, JournalOp, JournalRecord};
use serde_json::{json, Value as Json};

/// A byte string: text when printable UTF-8, else hex.
pub fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => json!(s),
        _ => json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
    }
}

fn list(v: &[Bytes]) -> Json {
    Json::Array(v.iter().map(|b| bytes(b)).collect())
}

fn float(x: f64) -> Json {
    if x.is_finite() {
        json!(x)
    } else {
        json!(x.to_string())
    }
}

/// The command name of a journal record (`SET`, `EXEC`, `PING`, ...), upper-cased.
pub fn command_name(r: &JournalRecord) -> String {
    match &r.op {
        JournalOp::Command { args, .. } => {
            args.first().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_else(|| "(empty)".into())
        }
        JournalOp::Exec { .. } => "EXEC".into(),
        JournalOp::Ping => "PING".into(),
        JournalOp::Fin => "FIN".into(),
    }
}

/// A journal record.
pub fn record(r: &JournalRecord) -> Json {
    match &r.op {
        JournalOp::Command { kind, txid, shard_cnt, args } => {
            let kind = match kind {
                CommandKind::Command => "command",
                CommandKind::Expired => "expired",
                CommandKind::MultiCommand => "multi_command",
            };
            json!({"db": r.db, "op": kind, "txid": txid, "shard_cnt": shard_cnt, "args": list(args)})
        }
        JournalOp::Exec { txid, shard_cnt } => json!({"db": r.db, "op": "exec", "txid": txid, "shard_cnt": shard_cnt}),
        JournalOp::Ping => json!({"db": r.db, "op": "ping"}),
        JournalOp::Fin => json!({"db": r.db, "op": "fin"}),
    }
}

fn chunk(c: &Chunk) -> Json {
    let ttl = |t: &Option<i64>| t.map_or(Json::Null, |t| json!(t));
    match c {
        Chunk::Str(b) => json!({ "str": bytes(b) }),
        Chunk::List(v) => json!({ "list": list(v) }),
        Chunk::Set(v) => json!({ "set": list(v) }),
        Chunk::SetWithTtl(v) => {
            json!({ "set_with_ttl": v.iter().map(|(m, t)| json!([bytes(m), ttl(t)])).collect::<Vec<_>>() })
        }
        Chunk::Hash(v) => json!({ "hash": v.iter().map(|(f, x)| json!([bytes(f), bytes(x)])).collect::<Vec<_>>() }),
        Chunk::HashWithTtl(v) => {
            json!({ "hash_with_ttl": v.iter().map(|(f, x, t)| json!([bytes(f), bytes(x), ttl(t)])).collect::<Vec<_>>() })
        }
        Chunk::Zset(v) => json!({ "zset": v.iter().map(|(m, s)| json!([bytes(m), float(*s)])).collect::<Vec<_>>() }),
        Chunk::StreamEntries(v) => json!({ "stream_entries": v
            .iter()
            .map(|e| json!({
                "id": e.id.to_string(),
                "fields": e.fields.iter().map(|(f, x)| json!([bytes(f), bytes(x)])).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>() }),
        Chunk::StreamMeta(m) => {
            let mut o = json!({"length": m.length, "last_id": m.last_id.to_string()});
            if let Some(v2) = &m.v2 {
                o["first_id"] = json!(v2.first_id.to_string());
                o["max_deleted_id"] = json!(v2.max_deleted_id.to_string());
                o["entries_added"] = json!(v2.entries_added);
            }
            json!({ "stream_meta": o })
        }
        Chunk::StreamGroup(g) => json!({ "stream_group": {
            "name": bytes(&g.name),
            "last_delivered": g.last_delivered.to_string(),
            "entries_read": g.entries_read,
            "pending": g.pel.iter().map(|p| p.id.to_string()).collect::<Vec<_>>(),
            "consumers": g.consumers.iter().map(|c| json!({
                "name": bytes(&c.name),
                "pending": c.pending.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }}),
        Chunk::Json(b) => json!({ "json": bytes(b) }),
        Chunk::Sbf(s) => json!({ "bloom": {
            "grow_factor": float(s.grow_factor),
            "fp_prob": float(s.fp_prob),
            "prev_size": s.prev_size,
            "current_size": s.current_size,
            "max_capacity": s.max_capacity,
            "filters": s.filters.iter().map(|f| json!({"hash_count": f.hash_count, "bytes": f.bits.len()})).collect::<Vec<_>>(),
        }}),
        Chunk::Cms(c) => json!({ "cms": {
            "width": c.width, "depth": c.depth, "total_count": c.total_count, "counters": c.counters.len(),
        }}),
        Chunk::TopK(t) => json!({ "topk": {
            "k": t.k, "width": t.width, "depth": t.depth, "decay": float(t.decay),
            "heap": t.heap.iter().map(|(i, n)| json!([bytes(i), n])).collect::<Vec<_>>(),
        }}),
        Chunk::Cuckoo(c) => json!({ "cuckoo": {
            "buckets": c.num_buckets, "items": c.num_items, "deletes": c.num_deletes,
            "filters": c.filters.iter().map(Bytes::len).collect::<Vec<_>>(),
        }}),
        Chunk::Module(m) => json!({ "module": {"name": m.name, "encver": m.encver, "items": m.items.len()} }),
    }
}

/// One event as a JSON object with an `"event"` tag.
pub fn event(ev: &Event) -> Json {
    match ev {
        Event::Header { version } => json!({"event": "header", "version": version}),
        Event::Aux { key, value } => json!({"event": "aux", "key": bytes(key), "value": bytes(value)}),
        Event::SelectDb { db } => json!({"event": "select_db", "db": db}),
        Event::ResizeDb { db_size, expires_size } => {
            json!({"event": "resize_db", "db_size": db_size, "expires_size": expires_size})
        }
        Event::Skipped { opcode } => json!({"event": "skipped", "opcode": opcode}),
        Event::EntryBegin { id, header } => json!({
            "event": "entry_begin",
            "id": id.0,
            "db": header.db,
            "key": bytes(&header.key),
            "type": format!("{:?}", header.value_type),
            "type_code": header.value_type.code(),
            "expire_ms": header.expire_ms,
            "sticky": header.flags.sticky,
            "mc_flags": header.flags.mc_flags,
        }),
        Event::EntryChunk { id, chunk: c } => json!({"event": "entry_chunk", "id": id.0, "chunk": chunk(c)}),
        Event::EntryEnd { id } => json!({"event": "entry_end", "id": id.0}),
        Event::JournalBlob { record: r } => json!({"event": "journal_blob", "record": record(r)}),
        Event::FullSyncEnd => json!({"event": "full_sync_end"}),
        Event::JournalOffset { lsn } => json!({"event": "journal_offset", "lsn": lsn}),
        Event::RdbEnd { checksum, verified } => {
            json!({"event": "rdb_end", "checksum": format!("{checksum:016x}"), "verified": verified})
        }
        Event::EofToken => json!({"event": "eof_token"}),
        Event::Journal { lsn, record: r } => json!({"event": "journal", "lsn": lsn, "record": record(r)}),
        Event::LsnMarker { lsn } => json!({"event": "lsn_marker", "lsn": lsn}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_render_as_text_or_hex() {
        assert_eq!(bytes(b"abc"), json!("abc"));
        assert_eq!(bytes(b"a\nb"), json!({"hex": "610a62"}));
        assert_eq!(bytes(&[0xff, 0x00]), json!({"hex": "ff00"}));
    }

    #[test]
    fn non_finite_scores_are_strings() {
        let c = Chunk::Zset(vec![(Bytes::from_static(b"m"), f64::INFINITY), (Bytes::from_static(b"n"), 1.5)]);
        assert_eq!(chunk(&c), json!({"zset": [["m", "inf"], ["n", 1.5]]}));
    }

    #[test]
    fn journal_records() {
        let r = JournalRecord {
            db: 1,
            op: JournalOp::Command {
                kind: CommandKind::Command,
                txid: 3,
                shard_cnt: 1,
                args: vec![Bytes::from_static(b"set"), Bytes::from_static(b"k")],
            },
        };
        assert_eq!(command_name(&r), "SET");
        assert_eq!(
            event(&Event::Journal { lsn: 9, record: r }),
            json!({"event": "journal", "lsn": 9, "record":
                {"db": 1, "op": "command", "txid": 3, "shard_cnt": 1, "args": ["set", "k"]}})
        );
    }
}
