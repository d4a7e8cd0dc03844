//! Stream trimming and consumer groups with Dragonfly's journal forms (spec 6.4): XTRIM
//! (→ `XTRIM k MINID <new first id>` or `XTRIM k MAXLEN 0`), XGROUP (verbatim), XREADGROUP `>`
//! (→ `XGROUP CREATECONSUMER`, one `XCLAIM … FORCE JUSTID LASTID` per delivered entry unless
//! NOACK, then `XGROUP SETID k g <last id> ENTRIESREAD <n>`), XACK (verbatim).

use bytes::Bytes;
use df2redis::proto::model::{Consumer, PendingEntry, Stream, StreamGroup, StreamId, StreamMetaV2};
use df2redis::proto::Value;

use super::stream::{entry_reply, parse_id, refresh_meta};
use super::{arity, int_arg, syntax, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn s(x: impl ToString) -> Bytes {
    Bytes::from(x.to_string())
}

fn bad_id() -> Reply {
    Reply::err("Invalid stream ID specified as stream command argument")
}

fn no_group(k: &[u8], g: &[u8]) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(k),
        String::from_utf8_lossy(g)
    ))
}

fn stream_mut<'c>(ctx: &'c mut Ctx<'_>, k: &[u8]) -> Result<Option<&'c mut Stream>, Reply> {
    match ctx.live(k).map(|e| e.value.kind_name()) {
        None => return Ok(None),
        Some("stream") => {}
        Some(_) => return Err(wrongtype()),
    }
    match ctx.live_for_write(k) {
        Some(Entry { value: Value::Stream(st), .. }) => Ok(Some(st)),
        _ => Ok(None),
    }
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "XTRIM" => xtrim(ctx, a),
        "XGROUP" => xgroup(ctx, a),
        "XREADGROUP" => xreadgroup(ctx, a),
        "XACK" => (|| {
            let [k, g, ids @ ..] = a else { return Err(arity(name)) };
            if ids.is_empty() {
                return Err(arity(name));
            }
            let ids: Vec<StreamId> = ids.iter().map(|i| parse_id(i, 0).ok_or_else(bad_id)).collect::<Result<_, _>>()?;
            let Some(st) = stream_mut(ctx, k)? else { return Ok(Reply::Int(0)) };
            let Some(grp) = st.groups.iter_mut().find(|x| x.name == g) else { return Ok(Reply::Int(0)) };
            let before = grp.pel.len();
            grp.pel.retain(|p| !ids.contains(&p.id));
            for c in &mut grp.consumers {
                c.pending.retain(|p| !ids.contains(p));
            }
            let n = (before - grp.pel.len()) as i64;
            if n > 0 {
                let mut j = vec![b("XACK")];
                j.extend(a.iter().cloned());
                ctx.journal(k, j);
            }
            Ok(Reply::Int(n))
        })(),
        _ => return None,
    })
}

fn xtrim(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, strategy, rest @ ..] = a else { return Err(arity("XTRIM")) };
    let mut rest = rest;
    if rest.first().is_some_and(|x| &x[..] == b"=" || &x[..] == b"~") {
        rest = &rest[1..];
    }
    let [threshold, tail @ ..] = rest else { return Err(syntax()) };
    match tail {
        [] => {}
        [l, n] if l.eq_ignore_ascii_case(b"LIMIT") => {
            int_arg(n)?;
        }
        _ => return Err(syntax()),
    }
    enum By {
        Len(usize),
        Id(StreamId),
    }
    let by = if strategy.eq_ignore_ascii_case(b"MAXLEN") {
        By::Len(usize::try_from(int_arg(threshold)?).map_err(|_| Reply::err("The MAXLEN argument must be >= 0."))?)
    } else if strategy.eq_ignore_ascii_case(b"MINID") {
        By::Id(parse_id(threshold, 0).ok_or_else(bad_id)?)
    } else {
        return Err(syntax());
    };
    let Some(st) = stream_mut(ctx, k)? else { return Ok(Reply::Int(0)) };
    let before = st.entries.len();
    let cut = match by {
        By::Len(n) => before.saturating_sub(n),
        By::Id(id) => st.entries.iter().take_while(|e| e.id < id).count(),
    };
    let mut max_del = st.meta.v2.map(|v| v.max_deleted_id).unwrap_or_default();
    for e in st.entries.drain(..cut) {
        max_del = max_del.max(e.id);
    }
    st.meta.v2.get_or_insert_with(StreamMetaV2::default).max_deleted_id = max_del;
    refresh_meta(st);
    let first = st.entries.first().map(|e| e.id);
    let j = match first {
        Some(id) => vec![b("XTRIM"), k.clone(), b("MINID"), s(id)],
        None => vec![b("XTRIM"), k.clone(), b("MAXLEN"), b("0")],
    };
    ctx.journal(k, j);
    Ok(Reply::Int(cut as i64))
}

fn xgroup(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [sub, k, g, rest @ ..] = a else { return Err(arity("XGROUP")) };
    let sub = String::from_utf8_lossy(sub).to_ascii_uppercase();
    let now = ctx.now;
    if sub == "CREATE" && !ctx.exists(k) {
        if rest.iter().any(|x| x.eq_ignore_ascii_case(b"MKSTREAM")) {
            ctx.store(k, Entry::new(Value::Stream(Box::default())));
        } else {
            return Err(Reply::err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        }
    }
    let Some(st) = stream_mut(ctx, k)? else { return Err(no_group(k, g)) };
    let last = st.meta.last_id;
    let id_of = |x: &Bytes| if &x[..] == b"$" { Some(last) } else { parse_id(x, 0) };
    let reply = match sub.as_str() {
        "CREATE" => {
            let id = id_of(rest.first().ok_or_else(syntax)?).ok_or_else(bad_id)?;
            if st.groups.iter().any(|x| x.name == g) {
                return Err(Reply::Error("BUSYGROUP Consumer Group name already exists".into()));
            }
            st.groups.push(StreamGroup {
                name: g.clone(),
                last_delivered: id,
                entries_read: Some(0),
                pel: Vec::new(),
                consumers: Vec::new(),
            });
            Reply::ok()
        }
        "SETID" => {
            let id = id_of(rest.first().ok_or_else(syntax)?).ok_or_else(bad_id)?;
            let grp = st.groups.iter_mut().find(|x| x.name == g).ok_or_else(|| no_group(k, g))?;
            grp.last_delivered = id;
            if let [_, kw, n] = rest {
                if kw.eq_ignore_ascii_case(b"ENTRIESREAD") {
                    grp.entries_read = Some(u64::try_from(int_arg(n)?).unwrap_or(0));
                }
            }
            Reply::ok()
        }
        "DESTROY" => {
            let before = st.groups.len();
            st.groups.retain(|x| x.name != g);
            Reply::Int((before - st.groups.len()) as i64)
        }
        "CREATECONSUMER" | "DELCONSUMER" => {
            let c = rest.first().ok_or_else(syntax)?;
            let grp = st.groups.iter_mut().find(|x| x.name == g).ok_or_else(|| no_group(k, g))?;
            let pos = grp.consumers.iter().position(|x| x.name == c);
            match (sub.as_str(), pos) {
                ("CREATECONSUMER", Some(_)) => return Ok(Reply::Int(0)),
                ("CREATECONSUMER", None) => {
                    grp.consumers.push(consumer(c, now));
                    Reply::Int(1)
                }
                (_, None) => return Ok(Reply::Int(0)),
                (_, Some(p)) => {
                    let gone = grp.consumers.remove(p);
                    grp.pel.retain(|x| !gone.pending.contains(&x.id));
                    Reply::Int(gone.pending.len() as i64)
                }
            }
        }
        _ => return Err(syntax()),
    };
    let mut j = vec![b("XGROUP")];
    j.extend(a.iter().cloned());
    ctx.journal(k, j);
    Ok(reply)
}

fn consumer(name: &Bytes, now: u64) -> Consumer {
    Consumer { name: name.clone(), seen_time_ms: now, active_time_ms: Some(now), pending: Vec::new() }
}

fn xreadgroup(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [kw, g, c, rest @ ..] = a else { return Err(arity("XREADGROUP")) };
    if !kw.eq_ignore_ascii_case(b"GROUP") {
        return Err(syntax());
    }
    let (mut count, mut noack, mut i) = (usize::MAX, false, 0);
    loop {
        let o = rest.get(i).ok_or_else(syntax)?;
        match String::from_utf8_lossy(o).to_ascii_uppercase().as_str() {
            "COUNT" => {
                count = usize::try_from(int_arg(rest.get(i + 1).ok_or_else(syntax)?)?).unwrap_or(0).max(1);
                i += 1;
            }
            "BLOCK" => {
                int_arg(rest.get(i + 1).ok_or_else(syntax)?)?;
                i += 1;
            }
            "NOACK" => noack = true,
            "STREAMS" => break,
            _ => return Err(syntax()),
        }
        i += 1;
    }
    let streams = &rest[i + 1..];
    if streams.is_empty() || streams.len() % 2 != 0 {
        return Err(Reply::err(
            "Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.",
        ));
    }
    let (keys, ids) = streams.split_at(streams.len() / 2);
    ctx.declare(keys);
    let now = ctx.now;
    let mut out = Vec::new();
    for (k, id) in keys.iter().zip(ids) {
        let Some(st) = stream_mut(ctx, k)? else { return Err(no_group(k, g)) };
        let entries = st.entries.clone();
        let grp = st.groups.iter_mut().find(|x| x.name == g).ok_or_else(|| no_group(k, g))?;
        let is_new = !grp.consumers.iter().any(|x| x.name == c);
        if is_new {
            grp.consumers.push(consumer(c, now));
        }
        let mut journal = Vec::new();
        if is_new {
            journal.push(vec![b("XGROUP"), b("CREATECONSUMER"), k.clone(), g.clone(), c.clone()]);
        }
        let delivered: Vec<_> = if &id[..] == b">" {
            let fresh: Vec<_> = entries.iter().filter(|e| e.id > grp.last_delivered).take(count).cloned().collect();
            for e in &fresh {
                grp.last_delivered = e.id;
                grp.entries_read = Some(grp.entries_read.unwrap_or(0) + 1);
                if !noack {
                    grp.pel.push(PendingEntry { id: e.id, delivery_time_ms: now, delivery_count: 1 });
                    if let Some(cons) = grp.consumers.iter_mut().find(|x| x.name == c) {
                        cons.pending.push(e.id);
                    }
                    journal.push(vec![
                        b("XCLAIM"),
                        k.clone(),
                        g.clone(),
                        c.clone(),
                        b("0"),
                        s(e.id),
                        b("TIME"),
                        s(now),
                        b("RETRYCOUNT"),
                        b("1"),
                        b("FORCE"),
                        b("JUSTID"),
                        b("LASTID"),
                        s(e.id),
                    ]);
                }
            }
            if let Some(last) = fresh.last() {
                journal.push(vec![
                    b("XGROUP"),
                    b("SETID"),
                    k.clone(),
                    g.clone(),
                    s(last.id),
                    b("ENTRIESREAD"),
                    s(grp.entries_read.unwrap_or(0)),
                ]);
            }
            fresh
        } else {
            let from = parse_id(id, 0).ok_or_else(bad_id)?;
            let mine: Vec<StreamId> =
                grp.consumers.iter().find(|x| x.name == c).map(|x| x.pending.clone()).unwrap_or_default();
            entries.iter().filter(|e| e.id > from && mine.contains(&e.id)).take(count).cloned().collect()
        };
        if let Some(cons) = grp.consumers.iter_mut().find(|x| x.name == c) {
            cons.seen_time_ms = now;
        }
        for j in journal {
            ctx.journal(k, j);
        }
        if !delivered.is_empty() {
            out.push(Reply::Array(Some(vec![
                Reply::bulk(k.clone()),
                Reply::Array(Some(delivered.iter().map(entry_reply).collect())),
            ])));
        }
    }
    Ok(if out.is_empty() { Reply::Array(None) } else { Reply::Array(Some(out)) })
}
