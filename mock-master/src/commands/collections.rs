//! Hash, list, set and sorted-set commands (writes journaled verbatim, SPOP as SREM).

use bytes::Bytes;
use df2redis::proto::Value;

use super::{arity, float_arg, fmt_float, int_arg, syntax, wrongtype, CmdResult, Ctx};
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

/// Gets the value of `k` for a write, creating it with `empty` when missing; checks the kind.
fn container<'c>(
    ctx: &'c mut Ctx<'_>,
    k: &Bytes,
    kind: &str,
    empty: Option<fn() -> Value>,
) -> Result<Option<&'c mut Value>, Reply> {
    match ctx.live(k).map(|e| e.value.kind_name()) {
        Some(found) if found != kind => return Err(wrongtype()),
        Some(_) => {}
        None => match empty {
            Some(f) => ctx.store(k, Entry::new(f())),
            None => return Ok(None),
        },
    }
    Ok(ctx.live_for_write(k).map(|e| &mut e.value))
}

/// Removes `k` if its container became empty.
fn drop_if_empty(ctx: &mut Ctx<'_>, k: &[u8]) {
    let empty = match ctx.live(k).map(|e| &e.value) {
        Some(Value::Hash(v)) => v.is_empty(),
        Some(Value::List(v)) | Some(Value::Set(v)) => v.is_empty(),
        Some(Value::Zset(v)) => v.is_empty(),
        _ => false,
    };
    if empty {
        if let Some(m) = ctx.st.data.db_mut(ctx.db) {
            m.remove(k);
        }
    }
}

/// A copy of the value of `k` for a read; hashes and sets with field TTLs read as plain ones
/// (their expired fields left out).
fn read(ctx: &mut Ctx<'_>, k: &[u8], kind: &str) -> Result<Option<Value>, Reply> {
    let now_s = (ctx.now / 1000) as i64;
    match ctx.live(k) {
        None => Ok(None),
        Some(e) if e.value.kind_name() == kind => Ok(Some(match &e.value {
            Value::HashWithTtl(h) => Value::Hash(
                h.iter()
                    .filter(|(_, _, t)| t.is_none_or(|t| t > now_s))
                    .map(|(f, v, _)| (f.clone(), v.clone()))
                    .collect(),
            ),
            Value::SetWithTtl(s) => {
                Value::Set(s.iter().filter(|(_, t)| t.is_none_or(|t| t > now_s)).map(|(m, _)| m.clone()).collect())
            }
            v => v.clone(),
        })),
        Some(_) => Err(wrongtype()),
    }
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "HSET" | "HMSET" => (|| {
            let [k, pairs @ ..] = a else { return Err(arity(name)) };
            if pairs.is_empty() || pairs.len() % 2 != 0 {
                return Err(arity(name));
            }
            let Some(Value::Hash(h)) = container(ctx, k, "hash", Some(|| Value::Hash(Vec::new())))? else {
                return Err(wrongtype());
            };
            let mut added = 0;
            for p in pairs.chunks(2) {
                match h.iter_mut().find(|(f, _)| *f == p[0]) {
                    Some(slot) => slot.1 = p[1].clone(),
                    None => {
                        h.push((p[0].clone(), p[1].clone()));
                        added += 1;
                    }
                }
            }
            ctx.journal(k, verbatim(name, a));
            Ok(if name == "HSET" { Reply::Int(added) } else { Reply::ok() })
        })(),
        "HDEL" => (|| {
            let [k, fields @ ..] = a else { return Err(arity(name)) };
            if fields.is_empty() {
                return Err(arity(name));
            }
            let Some(v) = container(ctx, k, "hash", None)? else {
                return Ok(Reply::Int(0));
            };
            let Value::Hash(h) = v else { return Err(wrongtype()) };
            let before = h.len();
            h.retain(|(f, _)| !fields.contains(f));
            let n = (before - h.len()) as i64;
            if n > 0 {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Int(n))
        })(),
        "HINCRBY" => (|| {
            let [k, f, d] = a else { return Err(arity(name)) };
            let d = int_arg(d)?;
            let Some(Value::Hash(h)) = container(ctx, k, "hash", Some(|| Value::Hash(Vec::new())))? else {
                return Err(wrongtype());
            };
            let idx = match h.iter().position(|(x, _)| x == f) {
                Some(i) => i,
                None => {
                    h.push((f.clone(), b("0")));
                    h.len() - 1
                }
            };
            let cur = int_arg(&h[idx].1).map_err(|_| Reply::err("hash value is not an integer"))?;
            let v = cur.checked_add(d).ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
            h[idx].1 = Bytes::from(v.to_string());
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(v))
        })(),
        "HGET" => match a {
            [k, f] => read(ctx, k, "hash").map(|v| match v {
                Some(Value::Hash(h)) => {
                    h.iter().find(|(x, _)| x == f).map_or(Reply::nil(), |(_, v)| Reply::bulk(v.clone()))
                }
                _ => Reply::nil(),
            }),
            _ => Err(arity(name)),
        },
        "HMGET" if a.len() >= 2 => read(ctx, &a[0], "hash").map(|v| {
            Reply::Array(Some(
                a[1..]
                    .iter()
                    .map(|f| match &v {
                        Some(Value::Hash(h)) => {
                            h.iter().find(|(x, _)| x == f).map_or(Reply::nil(), |(_, v)| Reply::bulk(v.clone()))
                        }
                        _ => Reply::nil(),
                    })
                    .collect(),
            ))
        }),
        "HGETALL" | "HKEYS" | "HVALS" => match a {
            [k] => read(ctx, k, "hash").map(|v| {
                let h = match v {
                    Some(Value::Hash(h)) => h.clone(),
                    _ => Vec::new(),
                };
                Reply::bulks(h.into_iter().flat_map(|(f, v)| match name {
                    "HKEYS" => vec![f],
                    "HVALS" => vec![v],
                    _ => vec![f, v],
                }))
            }),
            _ => Err(arity(name)),
        },
        "HLEN" => match a {
            [k] => {
                read(ctx, k, "hash").map(|v| Reply::Int(if let Some(Value::Hash(h)) = v { h.len() as i64 } else { 0 }))
            }
            _ => Err(arity(name)),
        },
        "HEXISTS" => match a {
            [k, f] => read(ctx, k, "hash")
                .map(|v| Reply::Int(i64::from(matches!(v, Some(Value::Hash(h)) if h.iter().any(|(x, _)| x == f))))),
            _ => Err(arity(name)),
        },
        "LPUSH" | "RPUSH" => (|| {
            let [k, items @ ..] = a else { return Err(arity(name)) };
            if items.is_empty() {
                return Err(arity(name));
            }
            let Some(Value::List(l)) = container(ctx, k, "list", Some(|| Value::List(Vec::new())))? else {
                return Err(wrongtype());
            };
            for it in items {
                if name == "LPUSH" {
                    l.insert(0, it.clone());
                } else {
                    l.push(it.clone());
                }
            }
            let n = l.len() as i64;
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(n))
        })(),
        "LPOP" | "RPOP" => (|| {
            let (k, count) = match a {
                [k] => (k, None),
                [k, c] => (k, Some(usize::try_from(int_arg(c)?).map_err(|_| super::not_int())?)),
                _ => return Err(arity(name)),
            };
            let Some(v) = container(ctx, k, "list", None)? else {
                return Ok(if count.is_some() { Reply::Array(None) } else { Reply::nil() });
            };
            let Value::List(l) = v else { return Err(wrongtype()) };
            let n = count.unwrap_or(1).min(l.len());
            let popped: Vec<Bytes> = if name == "LPOP" {
                l.drain(..n).collect()
            } else {
                l.split_off(l.len() - n).into_iter().rev().collect()
            };
            if !popped.is_empty() {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(match count {
                Some(_) => Reply::bulks(popped),
                None => popped.into_iter().next().map_or(Reply::nil(), Reply::bulk),
            })
        })(),
        "LRANGE" => match a {
            [k, s, e] => (|| {
                let (s, e) = (int_arg(s)?, int_arg(e)?);
                let l = match read(ctx, k, "list")? {
                    Some(Value::List(l)) => l.clone(),
                    _ => Vec::new(),
                };
                Ok(Reply::bulks(range(l.len(), s, e).map(|r| l[r].to_vec()).unwrap_or_default()))
            })(),
            _ => Err(arity(name)),
        },
        "LLEN" => match a {
            [k] => {
                read(ctx, k, "list").map(|v| Reply::Int(if let Some(Value::List(l)) = v { l.len() as i64 } else { 0 }))
            }
            _ => Err(arity(name)),
        },
        "LINDEX" => match a {
            [k, i] => (|| {
                let i = int_arg(i)?;
                Ok(match read(ctx, k, "list")? {
                    Some(Value::List(l)) => {
                        let idx = if i < 0 { l.len() as i64 + i } else { i };
                        usize::try_from(idx)
                            .ok()
                            .and_then(|x| l.get(x))
                            .map_or(Reply::nil(), |v| Reply::bulk(v.clone()))
                    }
                    _ => Reply::nil(),
                })
            })(),
            _ => Err(arity(name)),
        },
        "SADD" | "SREM" => (|| {
            let [k, members @ ..] = a else { return Err(arity(name)) };
            if members.is_empty() {
                return Err(arity(name));
            }
            let create: Option<fn() -> Value> = if name == "SADD" { Some(|| Value::Set(Vec::new())) } else { None };
            let Some(v) = container(ctx, k, "set", create)? else {
                return Ok(Reply::Int(0));
            };
            let Value::Set(s) = v else { return Err(wrongtype()) };
            let mut n = 0;
            for m in members {
                let pos = s.iter().position(|x| x == m);
                match (name, pos) {
                    ("SADD", None) => {
                        s.push(m.clone());
                        n += 1;
                    }
                    ("SREM", Some(p)) => {
                        s.swap_remove(p);
                        n += 1;
                    }
                    _ => {}
                }
            }
            if n > 0 || name == "SADD" {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Int(n))
        })(),
        "SPOP" => (|| {
            let (k, count) = match a {
                [k] => (k, None),
                [k, c] => (k, Some(usize::try_from(int_arg(c)?).map_err(|_| super::not_int())?)),
                _ => return Err(arity(name)),
            };
            let seed = ctx.st.rng.next_u64();
            let Some(v) = container(ctx, k, "set", None)? else {
                return Ok(if count.is_some() { Reply::Array(Some(vec![])) } else { Reply::nil() });
            };
            let Value::Set(s) = v else { return Err(wrongtype()) };
            let mut popped = Vec::new();
            let mut r = seed;
            for _ in 0..count.unwrap_or(1).min(s.len()) {
                r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let i = (r >> 33) as usize % s.len();
                popped.push(s.swap_remove(i));
            }
            if s.is_empty() {
                ctx.journal(k, vec![b("DEL"), k.clone()]);
            } else if !popped.is_empty() {
                let mut j = vec![b("SREM"), k.clone()];
                j.extend(popped.iter().cloned());
                ctx.journal(k, j);
            }
            drop_if_empty(ctx, k);
            Ok(match count {
                Some(_) => Reply::bulks(popped),
                None => popped.into_iter().next().map_or(Reply::nil(), Reply::bulk),
            })
        })(),
        "SMEMBERS" => match a {
            [k] => {
                read(ctx, k, "set").map(|v| Reply::bulks(if let Some(Value::Set(s)) = v { s.clone() } else { vec![] }))
            }
            _ => Err(arity(name)),
        },
        "SCARD" => match a {
            [k] => {
                read(ctx, k, "set").map(|v| Reply::Int(if let Some(Value::Set(s)) = v { s.len() as i64 } else { 0 }))
            }
            _ => Err(arity(name)),
        },
        "SISMEMBER" => match a {
            [k, m] => {
                read(ctx, k, "set").map(|v| Reply::Int(i64::from(matches!(v, Some(Value::Set(s)) if s.contains(m)))))
            }
            _ => Err(arity(name)),
        },
        "ZADD" => zadd(ctx, a),
        "ZINCRBY" => (|| {
            let [k, d, m] = a else { return Err(arity(name)) };
            let d = float_arg(d)?;
            let Some(Value::Zset(z)) = container(ctx, k, "zset", Some(|| Value::Zset(Vec::new())))? else {
                return Err(wrongtype());
            };
            let v = match z.iter_mut().find(|(x, _)| x == m) {
                Some(slot) => {
                    slot.1 += d;
                    slot.1
                }
                None => {
                    z.push((m.clone(), d));
                    d
                }
            };
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::bulk(fmt_float(v)))
        })(),
        "ZREM" => (|| {
            let [k, members @ ..] = a else { return Err(arity(name)) };
            if members.is_empty() {
                return Err(arity(name));
            }
            let Some(v) = container(ctx, k, "zset", None)? else {
                return Ok(Reply::Int(0));
            };
            let Value::Zset(z) = v else { return Err(wrongtype()) };
            let before = z.len();
            z.retain(|(m, _)| !members.contains(m));
            let n = (before - z.len()) as i64;
            if n > 0 {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Int(n))
        })(),
        "ZSCORE" => match a {
            [k, m] => read(ctx, k, "zset").map(|v| match v {
                Some(Value::Zset(z)) => {
                    z.iter().find(|(x, _)| x == m).map_or(Reply::nil(), |(_, s)| Reply::bulk(fmt_float(*s)))
                }
                _ => Reply::nil(),
            }),
            _ => Err(arity(name)),
        },
        "ZCARD" => match a {
            [k] => {
                read(ctx, k, "zset").map(|v| Reply::Int(if let Some(Value::Zset(z)) = v { z.len() as i64 } else { 0 }))
            }
            _ => Err(arity(name)),
        },
        "ZRANGE" => (|| {
            let [k, s, e, rest @ ..] = a else {
                return Err(arity(name));
            };
            let withscores = match rest {
                [] => false,
                [w] if w.eq_ignore_ascii_case(b"WITHSCORES") => true,
                _ => return Err(syntax()),
            };
            let (s, e) = (int_arg(s)?, int_arg(e)?);
            let mut z = match read(ctx, k, "zset")? {
                Some(Value::Zset(z)) => z.clone(),
                _ => Vec::new(),
            };
            sort_zset(&mut z);
            let slice = range(z.len(), s, e).map(|r| z[r].to_vec()).unwrap_or_default();
            Ok(Reply::bulks(slice.into_iter().flat_map(|(m, sc)| {
                if withscores {
                    vec![m, Bytes::from(fmt_float(sc))]
                } else {
                    vec![m]
                }
            })))
        })(),
        _ => return None,
    })
}

/// Sorts sorted-set pairs by (score, member).
pub fn sort_zset(z: &mut [(Bytes, f64)]) {
    z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
}

fn range(len: usize, s: i64, e: i64) -> Option<std::ops::Range<usize>> {
    let len = len as i64;
    let s = if s < 0 { (len + s).max(0) } else { s };
    let e = if e < 0 { len + e } else { e.min(len - 1) };
    if s > e || s >= len {
        return None;
    }
    Some(s as usize..(e + 1) as usize)
}

fn zadd(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, rest @ ..] = a else { return Err(arity("ZADD")) };
    let mut i = 0;
    let (mut nx, mut xx, mut ch) = (false, false, false);
    while let Some(o) = rest.get(i) {
        match String::from_utf8_lossy(o).to_ascii_uppercase().as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "CH" => ch = true,
            _ => break,
        }
        i += 1;
    }
    let pairs = &rest[i..];
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(syntax());
    }
    let mut parsed = Vec::new();
    for p in pairs.chunks(2) {
        parsed.push((p[1].clone(), float_arg(&p[0])?));
    }
    let Some(Value::Zset(z)) = container(ctx, k, "zset", Some(|| Value::Zset(Vec::new())))? else {
        return Err(wrongtype());
    };
    let (mut added, mut changed) = (0, 0);
    for (m, s) in parsed {
        match z.iter_mut().find(|(x, _)| *x == m) {
            Some(slot) if !nx && slot.1 != s => {
                slot.1 = s;
                changed += 1;
            }
            None if !xx => {
                z.push((m, s));
                added += 1;
            }
            _ => {}
        }
    }
    ctx.journal(k, verbatim("ZADD", a));
    drop_if_empty(ctx, k);
    Ok(Reply::Int(if ch { added + changed } else { added }))
}
