//! Stream commands: XADD (journaled with the generated id, MAXLEN as MINID), XDEL, XLEN, XRANGE.

use bytes::Bytes;
use df2redis::proto::model::{Stream, StreamEntry, StreamId, StreamMetaV2};
use df2redis::proto::Value;

use super::{arity, int_arg, syntax, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

pub(super) fn parse_id(b: &[u8], default_seq: u64) -> Option<StreamId> {
    let s = std::str::from_utf8(b).ok()?;
    match s {
        "-" => return Some(StreamId { ms: 0, seq: 0 }),
        "+" => return Some(StreamId { ms: u64::MAX, seq: u64::MAX }),
        _ => {}
    }
    match s.split_once('-') {
        Some((ms, seq)) => Some(StreamId { ms: ms.parse().ok()?, seq: seq.parse().ok()? }),
        None => Some(StreamId { ms: s.parse().ok()?, seq: default_seq }),
    }
}

pub(super) fn refresh_meta(st: &mut Stream) {
    st.meta.length = st.entries.len() as u64;
    let v2 = st.meta.v2.get_or_insert_with(StreamMetaV2::default);
    v2.first_id = st.entries.first().map(|e| e.id).unwrap_or_default();
}

pub(super) fn entry_reply(e: &StreamEntry) -> Reply {
    Reply::Array(Some(vec![
        Reply::bulk(e.id.to_string()),
        Reply::bulks(e.fields.iter().flat_map(|(f, v)| [f.clone(), v.clone()])),
    ]))
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "XADD" => xadd(ctx, a),
        "XDEL" => (|| {
            let [k, ids @ ..] = a else { return Err(arity(name)) };
            if ids.is_empty() {
                return Err(arity(name));
            }
            let ids: Vec<StreamId> = ids
                .iter()
                .map(|i| {
                    parse_id(i, 0).ok_or_else(|| Reply::err("Invalid stream ID specified as stream command argument"))
                })
                .collect::<Result<_, _>>()?;
            match ctx.live(k).map(|e| e.value.kind_name()) {
                None => return Ok(Reply::Int(0)),
                Some("stream") => {}
                Some(_) => return Err(wrongtype()),
            }
            let Some(Entry { value: Value::Stream(st), .. }) = ctx.live_for_write(k) else {
                return Err(wrongtype());
            };
            let before = st.entries.len();
            let mut max_del = st.meta.v2.map(|v| v.max_deleted_id).unwrap_or_default();
            st.entries.retain(|e| {
                let del = ids.contains(&e.id);
                if del && e.id > max_del {
                    max_del = e.id;
                }
                !del
            });
            let n = (before - st.entries.len()) as i64;
            refresh_meta(st);
            if let Some(v2) = st.meta.v2.as_mut() {
                v2.max_deleted_id = max_del;
            }
            if n > 0 {
                let mut j = vec![Bytes::from_static(b"XDEL")];
                j.extend(a.iter().cloned());
                ctx.journal(k, j);
            }
            Ok(Reply::Int(n))
        })(),
        "XLEN" => match a {
            [k] => match ctx.live(k).map(|e| &e.value) {
                None => Ok(Reply::Int(0)),
                Some(Value::Stream(s)) => Ok(Reply::Int(s.entries.len() as i64)),
                Some(_) => Err(wrongtype()),
            },
            _ => Err(arity(name)),
        },
        "XRANGE" | "XREVRANGE" => (|| {
            let [k, s, e, rest @ ..] = a else {
                return Err(arity(name));
            };
            let (s, e) = if name == "XRANGE" { (s, e) } else { (e, s) };
            let bad = || Reply::err("Invalid stream ID specified as stream command argument");
            let lo = parse_id(s, 0).ok_or_else(bad)?;
            let hi = parse_id(e, u64::MAX).ok_or_else(bad)?;
            let count = match rest {
                [] => usize::MAX,
                [c, n] if c.eq_ignore_ascii_case(b"COUNT") => usize::try_from(int_arg(n)?).unwrap_or(0),
                _ => return Err(syntax()),
            };
            let entries: Vec<StreamEntry> = match ctx.live(k).map(|e| &e.value) {
                None => Vec::new(),
                Some(Value::Stream(st)) => st.entries.iter().filter(|x| x.id >= lo && x.id <= hi).cloned().collect(),
                Some(_) => return Err(wrongtype()),
            };
            let it: Box<dyn Iterator<Item = &StreamEntry>> =
                if name == "XRANGE" { Box::new(entries.iter()) } else { Box::new(entries.iter().rev()) };
            Ok(Reply::Array(Some(it.take(count).map(entry_reply).collect())))
        })(),
        _ => return None,
    })
}

fn xadd(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, rest @ ..] = a else { return Err(arity("XADD")) };
    let mut i = 0;
    let mut nomk = false;
    let mut maxlen: Option<usize> = None;
    let mut min_id: Option<StreamId> = None;
    loop {
        let Some(o) = rest.get(i) else {
            return Err(arity("XADD"));
        };
        match String::from_utf8_lossy(o).to_ascii_uppercase().as_str() {
            "NOMKSTREAM" => nomk = true,
            "MAXLEN" => {
                i += 1;
                if rest.get(i).is_some_and(|x| &x[..] == b"=" || &x[..] == b"~") {
                    i += 1;
                }
                maxlen =
                    Some(usize::try_from(int_arg(rest.get(i).ok_or_else(syntax)?)?).map_err(|_| super::not_int())?);
            }
            "MINID" => {
                i += 1;
                if rest.get(i).is_some_and(|x| &x[..] == b"=" || &x[..] == b"~") {
                    i += 1;
                }
                let bad = || Reply::err("Invalid stream ID specified as stream command argument");
                min_id = Some(parse_id(rest.get(i).ok_or_else(syntax)?, 0).ok_or_else(bad)?);
            }
            _ => break,
        }
        i += 1;
    }
    let Some(id_arg) = rest.get(i) else { return Err(arity("XADD")) };
    let fields = &rest[i + 1..];
    if fields.is_empty() || fields.len() % 2 != 0 {
        return Err(arity("XADD"));
    }
    let exists = match ctx.live(k).map(|e| e.value.kind_name()) {
        None => false,
        Some("stream") => true,
        Some(_) => return Err(wrongtype()),
    };
    if !exists {
        if nomk {
            return Ok(Reply::nil());
        }
        ctx.store(k, Entry::new(Value::Stream(Box::default())));
    }
    let now = ctx.now;
    let Some(Entry { value: Value::Stream(st), .. }) = ctx.live_for_write(k) else {
        return Err(wrongtype());
    };
    let last = st.meta.last_id;
    let id = if &id_arg[..] == b"*" {
        if now > last.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            StreamId { ms: last.ms, seq: last.seq + 1 }
        }
    } else {
        let bad = || Reply::err("Invalid stream ID specified as stream command argument");
        let s = std::str::from_utf8(id_arg).map_err(|_| bad())?;
        match s.split_once('-') {
            Some((ms, "*")) => {
                let ms: u64 = ms.parse().map_err(|_| bad())?;
                StreamId { ms, seq: if ms == last.ms { last.seq + 1 } else { 0 } }
            }
            _ => parse_id(id_arg, 0).ok_or_else(bad)?,
        }
    };
    if id <= last || (id.ms == 0 && id.seq == 0) {
        return Err(Reply::err("The ID specified in XADD is equal or smaller than the target stream top item"));
    }
    st.entries.push(StreamEntry { id, fields: fields.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect() });
    st.meta.last_id = id;
    let mut minid = None;
    let cut_for = |st: &Stream| match (maxlen, min_id) {
        (Some(m), _) => Some(st.entries.len().saturating_sub(m)),
        (None, Some(id)) => Some(st.entries.iter().take_while(|e| e.id < id).count()),
        (None, None) => None,
    };
    if let Some(cut) = cut_for(st) {
        if cut > 0 {
            let mut max_del = st.meta.v2.map(|v| v.max_deleted_id).unwrap_or_default();
            for e in st.entries.drain(..cut) {
                max_del = max_del.max(e.id);
            }
            st.meta.v2.get_or_insert_with(StreamMetaV2::default).max_deleted_id = max_del;
        }
        minid = Some(st.entries.first().map(|e| e.id));
    }
    let v2 = st.meta.v2.get_or_insert_with(StreamMetaV2::default);
    v2.entries_added += 1;
    refresh_meta(st);
    let mut j = vec![Bytes::from_static(b"XADD"), k.clone()];
    match minid {
        Some(Some(m)) => j.extend([Bytes::from_static(b"MINID"), Bytes::from(m.to_string())]),
        Some(None) => j.extend([Bytes::from_static(b"MAXLEN"), Bytes::from_static(b"0")]),
        None => {}
    }
    if nomk {
        j.push(Bytes::from_static(b"NOMKSTREAM"));
    }
    j.push(Bytes::from(id.to_string()));
    j.extend(fields.iter().cloned());
    ctx.journal(k, j);
    Ok(Reply::bulk(id.to_string()))
}
