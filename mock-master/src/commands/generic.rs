//! Key-moving commands with Dragonfly's journal forms (spec 6.4, 6.5, Appendices F/G): RENAME /
//! RENAMENX (verbatim on one shard; `DEL src` + `RESTORE dst … REPLACE ABSTTL` across shards),
//! COPY (→ RESTORE), MOVE (once, source db in the SELECT prefix), RESTORE (verbatim).

use bytes::Bytes;
use df2redis::proto::{dump::decode_dump, Limits};

use super::{arity, int_arg, syntax, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// The `RESTORE dst <abs ms or 0> <payload> REPLACE ABSTTL` record Dragonfly writes for a value
/// that lands on another shard (and for every COPY).
pub fn restore_record(ctx: &Ctx<'_>, dst: &Bytes, e: &Entry) -> Result<Vec<Bytes>, Reply> {
    let payload = ctx.st.dump_payload(&e.value).map_err(Reply::err)?;
    Ok(vec![
        b("RESTORE"),
        dst.clone(),
        Bytes::from(e.expire_ms.unwrap_or(0).to_string()),
        payload,
        b("REPLACE"),
        b("ABSTTL"),
    ])
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "RENAME" | "RENAMENX" => match a {
            [src, dst] => rename(ctx, name, src, dst),
            _ => Err(arity(name)),
        },
        "COPY" => copy(ctx, a),
        "MOVE" => (|| {
            let [k, d] = a else { return Err(arity(name)) };
            let target = int_arg(d)?;
            if target < 0 || target as u64 >= u64::from(ctx.st.data.db_count()) {
                return Err(Reply::err("DB index is out of range"));
            }
            let target = target as u32;
            if target == ctx.db {
                return Err(Reply::err("source and destination objects are the same"));
            }
            if !ctx.exists(k) {
                return Ok(Reply::Int(0));
            }
            let now = ctx.now;
            if ctx.st.data.get(target, k).is_some_and(|e| !e.expired(now)) {
                return Ok(Reply::Int(0));
            }
            let Some(e) = ctx.take(k) else { return Ok(Reply::Int(0)) };
            ctx.st.touch(target, k);
            ctx.st.data.insert(target, k.clone(), e);
            ctx.journal(k, vec![b("MOVE"), k.clone(), d.clone()]);
            Ok(Reply::Int(1))
        })(),
        "RESTORE" => restore(ctx, a),
        _ => return None,
    })
}

fn rename(ctx: &mut Ctx<'_>, name: &str, src: &Bytes, dst: &Bytes) -> CmdResult {
    let nx = name == "RENAMENX";
    ctx.declare([src, dst]);
    if !ctx.exists(src) {
        return Err(Reply::err("no such key"));
    }
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::ok() });
    }
    if nx && ctx.exists(dst) {
        return Ok(Reply::Int(0));
    }
    let Some(e) = ctx.take(src) else { return Err(Reply::err("no such key")) };
    ctx.store(dst, e.clone());
    if ctx.st.shard(src) == ctx.st.shard(dst) {
        ctx.journal(src, vec![Bytes::from(name.to_string()), src.clone(), dst.clone()]);
    } else {
        let rec = restore_record(ctx, dst, &e)?;
        ctx.journal_cnt(src, vec![b("DEL"), src.clone()], 2);
        ctx.journal_cnt(dst, rec, 2);
    }
    Ok(if nx { Reply::Int(1) } else { Reply::ok() })
}

fn copy(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [src, dst, opts @ ..] = a else { return Err(arity("COPY")) };
    let mut replace = false;
    let mut i = 0;
    while i < opts.len() {
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "REPLACE" => replace = true,
            "DB" => {
                let d = int_arg(opts.get(i + 1).ok_or_else(syntax)?)?;
                if d != i64::from(ctx.db) {
                    return Err(Reply::err("COPY to another database is not supported"));
                }
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    ctx.declare([src, dst]);
    if src == dst {
        return Err(Reply::err("source and destination objects are the same"));
    }
    let Some(e) = ctx.live(src).cloned() else { return Ok(Reply::Int(0)) };
    if ctx.exists(dst) && !replace {
        return Ok(Reply::Int(0));
    }
    ctx.store(dst, e.clone());
    let rec = restore_record(ctx, dst, &e)?;
    // COPY runs as a two-hop transaction and records shard_cnt 2 even on one shard (v1.30.3).
    ctx.multi_hop();
    ctx.journal_cnt(dst, rec, 2);
    Ok(Reply::Int(1))
}

fn restore(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, ttl, payload, opts @ ..] = a else { return Err(arity("RESTORE")) };
    let ttl = int_arg(ttl)?;
    if ttl < 0 {
        return Err(Reply::err("Invalid TTL value, must be >= 0"));
    }
    let (mut replace, mut absttl) = (false, false);
    let mut i = 0;
    while i < opts.len() {
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "REPLACE" => replace = true,
            "ABSTTL" => absttl = true,
            "IDLETIME" | "FREQ" => {
                int_arg(opts.get(i + 1).ok_or_else(syntax)?)?;
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    let value = decode_dump(payload, &Limits::default())
        .map_err(|_| Reply::err("DUMP payload version or checksum are wrong"))?;
    if !replace && ctx.exists(k) {
        return Err(Reply::Error("BUSYKEY Target key name already exists.".into()));
    }
    let expire_ms = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t as u64),
        (t, false) => Some(ctx.now.saturating_add(t as u64)),
    };
    let mut j = vec![b("RESTORE")];
    j.extend(a.iter().cloned());
    if expire_ms.is_some_and(|t| t <= ctx.now) {
        if ctx.remove(k) {
            ctx.journal(k, j);
        }
        return Ok(Reply::ok());
    }
    ctx.store(k, Entry { value, expire_ms });
    ctx.journal(k, j);
    Ok(Reply::ok())
}
