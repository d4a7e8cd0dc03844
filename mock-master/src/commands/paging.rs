//! Read-only paging commands `df2redis verify` sends to a source: SSCAN, HSCAN, SMISMEMBER,
//! GETRANGE, and CLIENT (SETNAME and friends answered +OK).

use bytes::Bytes;
use df2redis::proto::Value;

use super::{arity, int_arg, syntax, wrongtype, CmdResult, Ctx};
use crate::resp::Reply;

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "CLIENT" => match a {
            [] => Err(arity(name)),
            _ => Ok(Reply::ok()),
        },
        "SSCAN" | "HSCAN" => scan(ctx, name, a),
        "SMISMEMBER" => match a {
            [k, members @ ..] if !members.is_empty() => match ctx.live(k).map(|e| &e.value) {
                None => Ok(Reply::Array(Some(members.iter().map(|_| Reply::Int(0)).collect()))),
                Some(Value::Set(s)) => {
                    Ok(Reply::Array(Some(members.iter().map(|m| Reply::Int(i64::from(s.contains(m)))).collect())))
                }
                Some(_) => Err(wrongtype()),
            },
            _ => Err(arity(name)),
        },
        "GETRANGE" => match a {
            [k, start, end] => (|| {
                let (start, end) = (int_arg(start)?, int_arg(end)?);
                let s = match ctx.live(k).map(|e| &e.value) {
                    None => return Ok(Reply::bulk(Bytes::new())),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => return Err(wrongtype()),
                };
                let len = s.len() as i64;
                let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
                let (from, to) = (norm(start), norm(end).min(len - 1));
                if len == 0 || from > to {
                    return Ok(Reply::bulk(Bytes::new()));
                }
                Ok(Reply::bulk(s.slice(from as usize..=to as usize)))
            })(),
            _ => Err(arity(name)),
        },
        _ => return None,
    })
}

/// `SSCAN|HSCAN key cursor [MATCH pattern] [COUNT n]`: the cursor is an element index.
fn scan(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> CmdResult {
    let [k, cur, opts @ ..] = a else { return Err(arity(name)) };
    let cursor = std::str::from_utf8(cur)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut pat, mut count) = (None, 10usize);
    let mut i = 0;
    while i < opts.len() {
        let v = opts.get(i + 1).ok_or_else(syntax)?;
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "MATCH" => pat = Some(v.clone()),
            "COUNT" => count = usize::try_from(int_arg(v)?).ok().filter(|c| *c > 0).ok_or_else(syntax)?,
            _ => return Err(syntax()),
        }
        i += 2;
    }
    let items: Vec<(Bytes, Option<Bytes>)> = match (name, ctx.live(k).map(|e| &e.value)) {
        (_, None) => Vec::new(),
        ("SSCAN", Some(Value::Set(s))) => s.iter().map(|m| (m.clone(), None)).collect(),
        ("HSCAN", Some(Value::Hash(h))) => h.iter().map(|(f, v)| (f.clone(), Some(v.clone()))).collect(),
        _ => return Err(wrongtype()),
    };
    let end = cursor.saturating_add(count).min(items.len());
    let next = if end >= items.len() { 0 } else { end };
    let mut out = Vec::new();
    for (m, v) in items.get(cursor.min(end)..end).unwrap_or(&[]) {
        if pat.as_ref().is_some_and(|p| !super::keys::glob(p, m)) {
            continue;
        }
        out.push(m.clone());
        out.extend(v.clone());
    }
    Ok(Reply::Array(Some(vec![Reply::bulk(next.to_string()), Reply::bulks(out)])))
}
