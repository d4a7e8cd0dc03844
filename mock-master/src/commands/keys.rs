//! Generic key commands and strings: GET/SET family, DEL, EXPIRE family, TTL, TYPE, SCAN, DBSIZE.

use bytes::Bytes;
use df2redis::proto::Value;

use super::{arity, int_arg, not_int, syntax, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn num(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "PING" => Ok(match a {
            [] => Reply::Simple("PONG".into()),
            [m] => Reply::bulk(m.clone()),
            _ => return Some(Err(arity(name))),
        }),
        "ECHO" => match a {
            [m] => Ok(Reply::bulk(m.clone())),
            _ => Err(arity(name)),
        },
        "DBSIZE" => {
            let now = ctx.now;
            Ok(Reply::Int(ctx.st.data.db(ctx.db).map_or(0, |m| m.values().filter(|e| !e.expired(now)).count()) as i64))
        }
        "GET" => match a {
            [k] => get_string(ctx, k).map(|v| v.map_or(Reply::nil(), Reply::bulk)),
            _ => Err(arity(name)),
        },
        "STRLEN" => match a {
            [k] => get_string(ctx, k).map(|v| Reply::Int(v.map_or(0, |v| v.len() as i64))),
            _ => Err(arity(name)),
        },
        "MGET" if !a.is_empty() => Ok(Reply::Array(Some(
            a.iter()
                .map(|k| match ctx.live(k).map(|e| &e.value) {
                    Some(Value::String(s)) => Reply::bulk(s.clone()),
                    _ => Reply::nil(),
                })
                .collect(),
        ))),
        "SET" => set(ctx, a),
        "SETEX" | "PSETEX" => match a {
            [k, t, v] => {
                let t = match int_arg(t) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                if t <= 0 {
                    return Some(Err(Reply::err(format!(
                        "invalid expire time in '{}' command",
                        name.to_ascii_lowercase()
                    ))));
                }
                let ms = if name == "SETEX" { t.saturating_mul(1000) } else { t };
                let abs = ctx.now.saturating_add(ms as u64);
                ctx.store(k, Entry { value: Value::String(v.clone()), expire_ms: Some(abs) });
                ctx.journal(k, vec![b("SET"), k.clone(), v.clone(), b("PXAT"), num(abs as i64)]);
                Ok(Reply::ok())
            }
            _ => Err(arity(name)),
        },
        "SETNX" => match a {
            [k, v] => {
                if ctx.exists(k) {
                    Ok(Reply::Int(0))
                } else {
                    ctx.store(k, Entry::new(Value::String(v.clone())));
                    ctx.journal(k, vec![b("SET"), k.clone(), v.clone()]);
                    Ok(Reply::Int(1))
                }
            }
            _ => Err(arity(name)),
        },
        "MSET" | "MSETNX" if !a.is_empty() && a.len() % 2 == 0 => {
            if name == "MSETNX" && a.chunks(2).any(|p| ctx.exists(&p[0])) {
                return Some(Ok(Reply::Int(0)));
            }
            let mut items = Vec::new();
            for p in a.chunks(2) {
                ctx.store(&p[0], Entry::new(Value::String(p[1].clone())));
                items.push((p[0].clone(), vec![p[0].clone(), p[1].clone()]));
            }
            ctx.journal_split("MSET", items);
            Ok(if name == "MSET" { Reply::ok() } else { Reply::Int(1) })
        }
        "DEL" | "UNLINK" if !a.is_empty() => {
            let mut items = Vec::new();
            for k in a {
                if ctx.remove(k) {
                    items.push((k.clone(), vec![k.clone()]));
                }
            }
            let n = items.len() as i64;
            ctx.journal_split("DEL", items);
            Ok(Reply::Int(n))
        }
        "EXISTS" if !a.is_empty() => Ok(Reply::Int(a.iter().filter(|k| ctx.exists(k)).count() as i64)),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => expire(ctx, name, a),
        "PERSIST" => match a {
            [k] => match ctx.live_for_write(k) {
                Some(e) if e.expire_ms.is_some() => {
                    e.expire_ms = None;
                    ctx.journal(k, vec![b("PERSIST"), k.clone()]);
                    Ok(Reply::Int(1))
                }
                _ => Ok(Reply::Int(0)),
            },
            _ => Err(arity(name)),
        },
        "TTL" | "PTTL" => match a {
            [k] => {
                let now = ctx.now;
                Ok(Reply::Int(match ctx.live(k) {
                    None => -2,
                    Some(Entry { expire_ms: None, .. }) => -1,
                    Some(Entry { expire_ms: Some(t), .. }) => {
                        let left = t.saturating_sub(now) as i64;
                        if name == "TTL" {
                            (left + 500) / 1000
                        } else {
                            left
                        }
                    }
                }))
            }
            _ => Err(arity(name)),
        },
        "TYPE" => match a {
            [k] => Ok(Reply::Simple(ctx.live(k).map_or("none", |e| e.value.kind_name()).to_string())),
            _ => Err(arity(name)),
        },
        "KEYS" => match a {
            [pat] => Ok(Reply::bulks(live_keys(ctx).into_iter().filter(|k| glob(pat, k)))),
            _ => Err(arity(name)),
        },
        "SCAN" => scan(ctx, a),
        "INCR" | "DECR" => match a {
            [k] => incr(ctx, k, if name == "INCR" { 1 } else { -1 }).map(|v| {
                if ctx.in_script {
                    // Inside EVAL Dragonfly journals the script's own command verbatim (Appendix F).
                    let cmd = if name == "INCR" { "INCR" } else { "DECR" };
                    ctx.journal(k, vec![b(cmd), k.clone()]);
                } else {
                    let cmd = if name == "INCR" { "INCRBY" } else { "DECRBY" };
                    ctx.journal(k, vec![b(cmd), k.clone(), b("1")]);
                }
                Reply::Int(v)
            }),
            _ => Err(arity(name)),
        },
        "INCRBY" | "DECRBY" => match a {
            [k, d] => {
                let d = match int_arg(d) {
                    Ok(d) => d,
                    Err(e) => return Some(Err(e)),
                };
                let delta = if name == "INCRBY" { Some(d) } else { d.checked_neg() };
                let Some(delta) = delta else {
                    return Some(Err(not_int()));
                };
                incr(ctx, k, delta).map(|v| {
                    ctx.journal(
                        k,
                        vec![b(if name == "INCRBY" { "INCRBY" } else { "DECRBY" }), k.clone(), a[1].clone()],
                    );
                    Reply::Int(v)
                })
            }
            _ => Err(arity(name)),
        },
        "APPEND" => match a {
            [k, v] => {
                let len = match ctx.live_for_write(k) {
                    Some(Entry { value: Value::String(s), .. }) => {
                        let mut n = s.to_vec();
                        n.extend_from_slice(v);
                        let len = n.len();
                        *s = Bytes::from(n);
                        len
                    }
                    Some(_) => return Some(Err(wrongtype())),
                    None => {
                        ctx.store(k, Entry::new(Value::String(v.clone())));
                        v.len()
                    }
                };
                ctx.journal(k, vec![b("APPEND"), k.clone(), v.clone()]);
                Ok(Reply::Int(len as i64))
            }
            _ => Err(arity(name)),
        },
        "DUMP" => match a {
            [k] => Ok(match ctx.live(k).map(|e| e.value.clone()) {
                None => Reply::nil(),
                Some(v) => match ctx.st.dump_payload(&v) {
                    Ok(p) => Reply::bulk(p),
                    Err(m) => Reply::err(m),
                },
            }),
            _ => Err(arity(name)),
        },
        _ => return None,
    })
}

fn get_string(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Option<Bytes>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrongtype()),
    }
}

fn incr(ctx: &mut Ctx<'_>, k: &Bytes, delta: i64) -> Result<i64, Reply> {
    let cur = match get_string(ctx, k)? {
        None => 0,
        Some(s) => int_arg(&s)?,
    };
    let v = cur.checked_add(delta).ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
    let expire_ms = ctx.live(k).and_then(|e| e.expire_ms);
    ctx.store(k, Entry { value: Value::String(Bytes::from(v.to_string())), expire_ms });
    Ok(v)
}

fn set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, v, opts @ ..] = a else { return Err(arity("SET")) };
    let (mut nx, mut xx, mut get, mut keep) = (false, false, false, false);
    let mut exp: Option<u64> = None;
    let mut i = 0;
    while i < opts.len() {
        let o = String::from_utf8_lossy(&opts[i]).to_ascii_uppercase();
        match o.as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GET" => get = true,
            "KEEPTTL" => keep = true,
            "EX" | "PX" | "EXAT" | "PXAT" => {
                let t = int_arg(opts.get(i + 1).ok_or_else(syntax)?)?;
                if t <= 0 || exp.is_some() {
                    return Err(Reply::err("invalid expire time in 'set' command"));
                }
                let t = t as u64;
                exp = Some(match o.as_str() {
                    "EX" => ctx.now.saturating_add(t.saturating_mul(1000)),
                    "PX" => ctx.now.saturating_add(t),
                    "EXAT" => t.saturating_mul(1000),
                    _ => t,
                });
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    if (nx && xx) || (keep && exp.is_some()) {
        return Err(syntax());
    }
    let old = match ctx.live(k).map(|e| (e.value.clone(), e.expire_ms)) {
        Some((Value::String(s), t)) => Some((Some(s), t)),
        Some((_, t)) if !get => Some((None, t)),
        Some(_) => return Err(wrongtype()),
        None => None,
    };
    let reply_old = || match &old {
        Some((Some(s), _)) => Reply::bulk(s.clone()),
        _ => Reply::nil(),
    };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return Ok(if get { reply_old() } else { Reply::nil() });
    }
    if exp.is_some_and(|t| t <= ctx.now) {
        if ctx.remove(k) {
            ctx.journal(k, vec![b("DEL"), k.clone()]);
        }
        return Ok(if get { reply_old() } else { Reply::ok() });
    }
    let expire_ms = if keep { old.as_ref().and_then(|o| o.1) } else { exp };
    if ctx.mode == super::Mode::Single {
        if let Some(shard) = ctx.st.omittable(ctx.db, k) {
            ctx.st.omit_write(shard, ctx.db, k.clone(), Entry { value: Value::String(v.clone()), expire_ms });
            return Ok(if get { reply_old() } else { Reply::ok() });
        }
    }
    ctx.store(k, Entry { value: Value::String(v.clone()), expire_ms });
    let mut j = vec![b("SET"), k.clone(), v.clone()];
    if let Some(t) = exp {
        j.extend([b("PXAT"), num(t as i64)]);
    }
    if keep {
        j.push(b("KEEPTTL"));
    }
    ctx.journal(k, j);
    Ok(if get { reply_old() } else { Reply::ok() })
}

fn expire(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> CmdResult {
    let [k, t, flags @ ..] = a else { return Err(arity(name)) };
    let t = int_arg(t)?;
    let abs: i64 = match name {
        "EXPIRE" => (ctx.now as i64).saturating_add(t.saturating_mul(1000)),
        "PEXPIRE" => (ctx.now as i64).saturating_add(t),
        "EXPIREAT" => t.saturating_mul(1000),
        _ => t,
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for f in flags {
        match String::from_utf8_lossy(f).to_ascii_uppercase().as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GT" => gt = true,
            "LT" => lt = true,
            _ => return Err(Reply::err(format!("Unsupported option {}", String::from_utf8_lossy(f)))),
        }
    }
    let now = ctx.now as i64;
    let Some(e) = ctx.live(k) else { return Ok(Reply::Int(0)) };
    let cur = e.expire_ms.map(|t| t as i64);
    let ok = match cur {
        None => !xx && !gt,
        Some(c) => !nx && (!gt || abs > c) && (!lt || abs < c),
    };
    if !ok {
        return Ok(Reply::Int(0));
    }
    if abs <= now {
        ctx.remove(k);
        ctx.journal(k, vec![b("DEL"), k.clone()]);
    } else {
        ctx.st.touch(ctx.db, k);
        if let Some(e) = ctx.live(k) {
            e.expire_ms = Some(abs as u64);
        }
        ctx.journal(k, vec![b("PEXPIREAT"), k.clone(), num(abs)]);
    }
    Ok(Reply::Int(1))
}

fn live_keys(ctx: &mut Ctx<'_>) -> Vec<Bytes> {
    let now = ctx.now;
    ctx.st
        .data
        .db(ctx.db)
        .map_or_else(Vec::new, |m| m.iter().filter(|(_, e)| !e.expired(now)).map(|(k, _)| k.clone()).collect())
}

fn scan(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [cur, opts @ ..] = a else { return Err(arity("SCAN")) };
    let cursor = std::str::from_utf8(cur)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut pat, mut count, mut ty) = (None, 10usize, None);
    let mut i = 0;
    while i < opts.len() {
        let v = opts.get(i + 1).ok_or_else(syntax)?;
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "MATCH" => pat = Some(v.clone()),
            "COUNT" => count = usize::try_from(int_arg(v)?).ok().filter(|c| *c > 0).ok_or_else(syntax)?,
            "TYPE" => ty = Some(String::from_utf8_lossy(v).to_ascii_lowercase()),
            _ => return Err(syntax()),
        }
        i += 2;
    }
    let keys = live_keys(ctx);
    let end = cursor.saturating_add(count).min(keys.len());
    let next = if end >= keys.len() { 0 } else { end };
    let mut out = Vec::new();
    for k in keys.get(cursor.min(end)..end).unwrap_or(&[]) {
        if pat.as_ref().is_some_and(|p| !glob(p, k)) {
            continue;
        }
        if let Some(t) = &ty {
            if ctx.live(k).map(|e| e.value.kind_name()) != Some(t.as_str()) {
                continue;
            }
        }
        out.push(k.clone());
    }
    Ok(Reply::Array(Some(vec![Reply::bulk(next.to_string()), Reply::bulks(out)])))
}

/// Redis glob matching (`*`, `?`, `[...]`, `\`).
pub fn glob(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some((&c, srest)) = s.split_first() else {
                return false;
            };
            let Some(close) = rest.iter().position(|&x| x == b']') else {
                return false;
            };
            let (class, after) = (&rest[..close], &rest[close + 1..]);
            let (neg, class) = match class.split_first() {
                Some((b'^', c2)) => (true, c2),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != neg && glob(after, srest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => s.first() == rest.first() && glob(&rest[1..], &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_patterns() {
        assert!(glob(b"*", b"abc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"k:[0-9]*", b"k:12"));
        assert!(!glob(b"k:[^0-9]", b"k:1"));
        assert!(glob(b"a\\*", b"a*"));
        assert!(!glob(b"a", b"ab"));
    }
}
