//! List commands beyond push/pop: LTRIM, LSET, LREM (verbatim), LMOVE / RPOPLPUSH / BLMOVE /
//! BRPOPLPUSH (→ pop + push records; verbatim `LMOVE` on one shard up to v1.20) and BLPOP / BRPOP
//! (→ `LPOP k` / `RPOP k` of the key served). The mock never blocks: a blocking command that
//! finds nothing answers as if its timeout expired.

use bytes::Bytes;
use df2redis::proto::Value;

use super::{arity, float_arg, int_arg, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn verbatim(name: &str, a: &[Bytes]) -> Vec<Bytes> {
    let mut v = vec![Bytes::from(name.to_string())];
    v.extend(a.iter().cloned());
    v
}

fn list_mut<'c>(ctx: &'c mut Ctx<'_>, k: &[u8]) -> Result<Option<&'c mut Vec<Bytes>>, Reply> {
    match ctx.live(k).map(|e| e.value.kind_name()) {
        None => return Ok(None),
        Some("list") => {}
        Some(_) => return Err(wrongtype()),
    }
    match ctx.live_for_write(k) {
        Some(Entry { value: Value::List(l), .. }) => Ok(Some(l)),
        _ => Ok(None),
    }
}

fn drop_if_empty(ctx: &mut Ctx<'_>, k: &[u8]) {
    if matches!(ctx.live(k).map(|e| &e.value), Some(Value::List(l)) if l.is_empty()) {
        if let Some(m) = ctx.st.data.db_mut(ctx.db) {
            m.remove(k);
        }
    }
}

fn side(b: &[u8]) -> Result<bool, Reply> {
    if b.eq_ignore_ascii_case(b"LEFT") {
        Ok(true)
    } else if b.eq_ignore_ascii_case(b"RIGHT") {
        Ok(false)
    } else {
        Err(super::syntax())
    }
}

fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    usize::try_from(i).ok().filter(|i| *i < len)
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "LTRIM" => (|| {
            let [k, s, e] = a else { return Err(arity(name)) };
            let (s, e) = (int_arg(s)?, int_arg(e)?);
            let Some(l) = list_mut(ctx, k)? else { return Ok(Reply::ok()) };
            let len = l.len() as i64;
            let s = if s < 0 { (len + s).max(0) } else { s };
            let e = if e < 0 { len + e } else { e.min(len - 1) };
            if s > e || s >= len {
                l.clear();
            } else {
                l.truncate((e + 1) as usize);
                l.drain(..s as usize);
            }
            ctx.journal(k, verbatim(name, a));
            drop_if_empty(ctx, k);
            Ok(Reply::ok())
        })(),
        "LSET" => (|| {
            let [k, i, v] = a else { return Err(arity(name)) };
            let i = int_arg(i)?;
            let Some(l) = list_mut(ctx, k)? else { return Err(Reply::err("no such key")) };
            let Some(i) = index(l.len(), i) else { return Err(Reply::err("index out of range")) };
            l[i] = v.clone();
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::ok())
        })(),
        "LREM" => (|| {
            let [k, n, v] = a else { return Err(arity(name)) };
            let n = int_arg(n)?;
            let Some(l) = list_mut(ctx, k)? else { return Ok(Reply::Int(0)) };
            let limit = if n == 0 { usize::MAX } else { n.unsigned_abs() as usize };
            let mut removed = 0usize;
            if n >= 0 {
                l.retain(|x| {
                    let hit = x == v && removed < limit;
                    removed += usize::from(hit);
                    !hit
                });
            } else {
                l.reverse();
                l.retain(|x| {
                    let hit = x == v && removed < limit;
                    removed += usize::from(hit);
                    !hit
                });
                l.reverse();
            }
            if removed > 0 {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Int(removed as i64))
        })(),
        "LMOVE" | "BLMOVE" => match a {
            [src, dst, from, to] | [src, dst, from, to, _] => (|| {
                if name == "BLMOVE" && a.len() == 5 {
                    float_arg(&a[4])?;
                } else if a.len() != 4 {
                    return Err(arity(name));
                }
                lmove(ctx, src, dst, side(from)?, side(to)?)
            })(),
            _ => Err(arity(name)),
        },
        "RPOPLPUSH" => match a {
            [src, dst] => lmove(ctx, src, dst, false, true),
            _ => Err(arity(name)),
        },
        "BRPOPLPUSH" => match a {
            [src, dst, t] => float_arg(t).and_then(|_| lmove(ctx, src, dst, false, true)),
            _ => Err(arity(name)),
        },
        "BLPOP" | "BRPOP" => (|| {
            let [keys @ .., t] = a else { return Err(arity(name)) };
            if keys.is_empty() {
                return Err(arity(name));
            }
            let t = float_arg(t)?;
            if t < 0.0 {
                return Err(Reply::err("timeout is negative"));
            }
            ctx.declare(keys);
            let left = name == "BLPOP";
            for k in keys {
                let Some(l) = list_mut(ctx, k)? else { continue };
                let Some(v) = (if left { (!l.is_empty()).then(|| l.remove(0)) } else { l.pop() }) else {
                    continue;
                };
                ctx.journal(k, vec![b(if left { "LPOP" } else { "RPOP" }), k.clone()]);
                drop_if_empty(ctx, k);
                return Ok(Reply::Array(Some(vec![Reply::bulk(k.clone()), Reply::bulk(v)])));
            }
            Ok(Reply::Array(None))
        })(),
        _ => return None,
    })
}

fn lmove(ctx: &mut Ctx<'_>, src: &Bytes, dst: &Bytes, from_left: bool, to_left: bool) -> CmdResult {
    ctx.declare([src, dst]);
    if let Some(v) = ctx.live(dst).map(|e| e.value.kind_name()) {
        if v != "list" {
            return Err(wrongtype());
        }
    }
    let Some(l) = list_mut(ctx, src)? else { return Ok(Reply::nil()) };
    let Some(v) = (if from_left { (!l.is_empty()).then(|| l.remove(0)) } else { l.pop() }) else {
        return Ok(Reply::nil());
    };
    drop_if_empty(ctx, src);
    if !ctx.exists(dst) {
        ctx.store(dst, Entry::new(Value::List(Vec::new())));
    }
    if let Some(l) = list_mut(ctx, dst)? {
        if to_left {
            l.insert(0, v.clone());
        } else {
            l.push(v.clone());
        }
    }
    let dir = |l: bool| b(if l { "LEFT" } else { "RIGHT" });
    let same = ctx.st.shard(src) == ctx.st.shard(dst);
    if same && ctx.st.cfg.release.lmove_verbatim() {
        ctx.journal(src, vec![b("LMOVE"), src.clone(), dst.clone(), dir(from_left), dir(to_left)]);
    } else {
        let cnt = if same { 1 } else { 2 };
        ctx.journal_cnt(src, vec![b(if from_left { "LPOP" } else { "RPOP" }), src.clone()], cnt);
        ctx.journal_cnt(dst, vec![b(if to_left { "LPUSH" } else { "RPUSH" }), dst.clone(), v.clone()], cnt);
    }
    Ok(Reply::bulk(v))
}
