//! Hashes and sets whose fields / members carry TTLs (snapshot types 31 / 32): HSETEX, HEXPIRE,
//! HTTL, SADDEX — journaled verbatim with their relative TTLs (spec 6.4) — plus HSETNX and
//! HINCRBYFLOAT, and the plain HSET/HDEL/SADD/SREM when the key already holds such a value.
//! Fields that expired are dropped when the command touches the key, journaled first as
//! `HDEL k f…` / `SREM k m…` (or `DEL k` when nothing is left), as Dragonfly does.

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

/// Hash fields with their TTLs.
type TtlFields = Vec<(Bytes, Bytes, Option<i64>)>;
/// Set members with their TTLs.
type TtlMembers = Vec<(Bytes, Option<i64>)>;

fn has_ttl_variant(ctx: &mut Ctx<'_>, k: &[u8]) -> bool {
    matches!(ctx.live(k).map(|e| &e.value), Some(Value::HashWithTtl(_) | Value::SetWithTtl(_)))
}

/// Drops the expired fields of `k`, journaling HDEL / SREM (or DEL when the key became empty).
fn purge(ctx: &mut Ctx<'_>, k: &Bytes) {
    let now_s = (ctx.now / 1000) as i64;
    let dead = |t: &Option<i64>| t.is_some_and(|t| t <= now_s);
    let (cmd, gone, empty) = match ctx.live(k).map(|e| &mut e.value) {
        Some(Value::HashWithTtl(h)) if h.iter().any(|(_, _, t)| dead(t)) => {
            let gone: Vec<Bytes> = h.iter().filter(|(_, _, t)| dead(t)).map(|(f, _, _)| f.clone()).collect();
            ("HDEL", gone, h.iter().all(|(_, _, t)| dead(t)))
        }
        Some(Value::SetWithTtl(s)) if s.iter().any(|(_, t)| dead(t)) => {
            let gone: Vec<Bytes> = s.iter().filter(|(_, t)| dead(t)).map(|(m, _)| m.clone()).collect();
            ("SREM", gone, s.iter().all(|(_, t)| dead(t)))
        }
        _ => return,
    };
    if empty {
        ctx.remove(k);
        ctx.journal(k, vec![b("DEL"), k.clone()]);
        return;
    }
    match ctx.live_for_write(k).map(|e| &mut e.value) {
        Some(Value::HashWithTtl(h)) => h.retain(|(_, _, t)| !dead(t)),
        Some(Value::SetWithTtl(s)) => s.retain(|(_, t)| !dead(t)),
        _ => {}
    }
    let mut j = vec![b(cmd), k.clone()];
    j.extend(gone);
    ctx.journal(k, j);
}

/// The hash of `k` as one with field TTLs (created or converted), for a write.
fn ttl_hash<'c>(ctx: &'c mut Ctx<'_>, k: &Bytes, create: bool) -> Result<Option<&'c mut TtlFields>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None if create => ctx.store(k, Entry::new(Value::HashWithTtl(Vec::new()))),
        None => return Ok(None),
        Some(Value::Hash(_) | Value::HashWithTtl(_)) => {}
        Some(_) => return Err(wrongtype()),
    }
    let e = ctx.live_for_write(k).ok_or_else(wrongtype)?;
    if let Value::Hash(h) = &e.value {
        e.value = Value::HashWithTtl(h.iter().map(|(f, v)| (f.clone(), v.clone(), None)).collect());
    }
    match &mut e.value {
        Value::HashWithTtl(h) => Ok(Some(h)),
        _ => Err(wrongtype()),
    }
}

fn ttl_set<'c>(ctx: &'c mut Ctx<'_>, k: &Bytes, create: bool) -> Result<Option<&'c mut TtlMembers>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None if create => ctx.store(k, Entry::new(Value::SetWithTtl(Vec::new()))),
        None => return Ok(None),
        Some(Value::Set(_) | Value::SetWithTtl(_)) => {}
        Some(_) => return Err(wrongtype()),
    }
    let e = ctx.live_for_write(k).ok_or_else(wrongtype)?;
    if let Value::Set(s) = &e.value {
        e.value = Value::SetWithTtl(s.iter().map(|m| (m.clone(), None)).collect());
    }
    match &mut e.value {
        Value::SetWithTtl(s) => Ok(Some(s)),
        _ => Err(wrongtype()),
    }
}

fn drop_if_empty(ctx: &mut Ctx<'_>, k: &[u8]) {
    let empty = match ctx.live(k).map(|e| &e.value) {
        Some(Value::HashWithTtl(h)) => h.is_empty(),
        Some(Value::SetWithTtl(s)) => s.is_empty(),
        _ => false,
    };
    if empty {
        if let Some(m) = ctx.st.data.db_mut(ctx.db) {
            m.remove(k);
        }
    }
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    let on_ttl_variant = matches!(name, "HSET" | "HMSET" | "HDEL" | "SADD" | "SREM")
        && a.first().is_some_and(|k| has_ttl_variant(ctx, k));
    if matches!(name, "HSET" | "HMSET" | "HDEL" | "SADD" | "SREM") && !on_ttl_variant {
        return None;
    }
    let now_s = (ctx.now / 1000) as i64;
    Some(match name {
        "HSETEX" => (|| {
            let [k, rest @ ..] = a else { return Err(arity(name)) };
            let (mut nx, mut keep, mut i) = (false, false, 0);
            while let Some(o) = rest.get(i) {
                match String::from_utf8_lossy(o).to_ascii_uppercase().as_str() {
                    "NX" => nx = true,
                    "KEEPTTL" => keep = true,
                    _ => break,
                }
                i += 1;
            }
            let [secs, pairs @ ..] = &rest[i..] else { return Err(arity(name)) };
            let secs = int_arg(secs)?;
            if secs <= 0 {
                return Err(Reply::err("invalid expire time"));
            }
            if pairs.is_empty() || pairs.len() % 2 != 0 {
                return Err(arity(name));
            }
            purge(ctx, k);
            let h = ttl_hash(ctx, k, true)?.ok_or_else(wrongtype)?;
            let mut added = 0;
            for p in pairs.chunks(2) {
                match h.iter_mut().find(|(f, _, _)| *f == p[0]) {
                    Some(_) if nx => {}
                    Some(slot) => {
                        slot.1 = p[1].clone();
                        if !keep {
                            slot.2 = Some(now_s + secs);
                        }
                    }
                    None => {
                        h.push((p[0].clone(), p[1].clone(), Some(now_s + secs)));
                        added += 1;
                    }
                }
            }
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(added))
        })(),
        "HEXPIRE" => (|| {
            let [k, secs, rest @ ..] = a else { return Err(arity(name)) };
            let secs = int_arg(secs)?;
            let mut i = 0;
            let mut cond = None;
            if let Some(c) = rest.first().map(|c| String::from_utf8_lossy(c).to_ascii_uppercase()) {
                if ["NX", "XX", "GT", "LT"].contains(&c.as_str()) {
                    cond = Some(c);
                    i = 1;
                }
            }
            let [kw, n, fields @ ..] = &rest[i..] else { return Err(syntax()) };
            if !kw.eq_ignore_ascii_case(b"FIELDS") || usize::try_from(int_arg(n)?).ok() != Some(fields.len()) {
                return Err(Reply::err(
                    "Parameter `numFields` should be greater than 0 and match the number of fields",
                ));
            }
            purge(ctx, k);
            let Some(h) = ttl_hash(ctx, k, false)? else {
                return Ok(Reply::Array(Some(fields.iter().map(|_| Reply::Int(-2)).collect())));
            };
            let at = now_s + secs;
            let mut out = Vec::new();
            let mut changed = false;
            for f in fields {
                let Some(pos) = h.iter().position(|(x, _, _)| x == f) else {
                    out.push(Reply::Int(-2));
                    continue;
                };
                let cur = h[pos].2;
                let ok = match cond.as_deref() {
                    Some("NX") => cur.is_none(),
                    Some("XX") => cur.is_some(),
                    Some("GT") => cur.is_some_and(|c| at > c),
                    Some("LT") => cur.is_none_or(|c| at < c),
                    _ => true,
                };
                if !ok {
                    out.push(Reply::Int(0));
                } else if secs <= 0 {
                    h.remove(pos);
                    changed = true;
                    out.push(Reply::Int(2));
                } else {
                    h[pos].2 = Some(at);
                    changed = true;
                    out.push(Reply::Int(1));
                }
            }
            if changed {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Array(Some(out)))
        })(),
        "HTTL" => (|| {
            let [k, kw, n, fields @ ..] = a else { return Err(arity(name)) };
            if !kw.eq_ignore_ascii_case(b"FIELDS") || usize::try_from(int_arg(n)?).ok() != Some(fields.len()) {
                return Err(syntax());
            }
            let ttls: Vec<Reply> = match ctx.live(k).map(|e| &e.value) {
                None => fields.iter().map(|_| Reply::Int(-2)).collect(),
                Some(Value::Hash(h)) => {
                    fields.iter().map(|f| Reply::Int(if h.iter().any(|(x, _)| x == f) { -1 } else { -2 })).collect()
                }
                Some(Value::HashWithTtl(h)) => fields
                    .iter()
                    .map(|f| match h.iter().find(|(x, _, t)| x == f && t.is_none_or(|t| t > now_s)) {
                        None => Reply::Int(-2),
                        Some((_, _, None)) => Reply::Int(-1),
                        Some((_, _, Some(t))) => Reply::Int(t - now_s),
                    })
                    .collect(),
                Some(_) => return Err(wrongtype()),
            };
            Ok(Reply::Array(Some(ttls)))
        })(),
        "SADDEX" => (|| {
            let [k, rest @ ..] = a else { return Err(arity(name)) };
            let keep = rest.first().is_some_and(|o| o.eq_ignore_ascii_case(b"KEEPTTL"));
            let [secs, members @ ..] = &rest[usize::from(keep)..] else { return Err(arity(name)) };
            let secs = int_arg(secs)?;
            if secs <= 0 || members.is_empty() {
                return Err(if members.is_empty() { arity(name) } else { Reply::err("invalid expire time") });
            }
            purge(ctx, k);
            let s = ttl_set(ctx, k, true)?.ok_or_else(wrongtype)?;
            let mut added = 0;
            for m in members {
                match s.iter_mut().find(|(x, _)| x == m) {
                    Some(slot) if !keep => slot.1 = Some(now_s + secs),
                    Some(_) => {}
                    None => {
                        s.push((m.clone(), Some(now_s + secs)));
                        added += 1;
                    }
                }
            }
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(added))
        })(),
        "HSET" | "HMSET" => (|| {
            let [k, pairs @ ..] = a else { return Err(arity(name)) };
            if pairs.is_empty() || pairs.len() % 2 != 0 {
                return Err(arity(name));
            }
            purge(ctx, k);
            let h = ttl_hash(ctx, k, true)?.ok_or_else(wrongtype)?;
            let mut added = 0;
            for p in pairs.chunks(2) {
                match h.iter_mut().find(|(f, _, _)| *f == p[0]) {
                    Some(slot) => slot.1 = p[1].clone(),
                    None => {
                        h.push((p[0].clone(), p[1].clone(), None));
                        added += 1;
                    }
                }
            }
            ctx.journal(k, verbatim(name, a));
            Ok(if name == "HSET" { Reply::Int(added) } else { Reply::ok() })
        })(),
        "SADD" => (|| {
            let [k, members @ ..] = a else { return Err(arity(name)) };
            purge(ctx, k);
            let s = ttl_set(ctx, k, true)?.ok_or_else(wrongtype)?;
            let mut added = 0;
            for m in members {
                if !s.iter().any(|(x, _)| x == m) {
                    s.push((m.clone(), None));
                    added += 1;
                }
            }
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(added))
        })(),
        "HDEL" | "SREM" => (|| {
            let [k, items @ ..] = a else { return Err(arity(name)) };
            purge(ctx, k);
            let n = match ctx.live_for_write(k).map(|e| &mut e.value) {
                Some(Value::HashWithTtl(h)) if name == "HDEL" => {
                    let before = h.len();
                    h.retain(|(f, _, _)| !items.contains(f));
                    before - h.len()
                }
                Some(Value::SetWithTtl(s)) if name == "SREM" => {
                    let before = s.len();
                    s.retain(|(m, _)| !items.contains(m));
                    before - s.len()
                }
                None => 0,
                _ => return Err(wrongtype()),
            };
            if n > 0 {
                ctx.journal(k, verbatim(name, a));
            }
            drop_if_empty(ctx, k);
            Ok(Reply::Int(n as i64))
        })(),
        "HSETNX" => (|| {
            let [k, f, v] = a else { return Err(arity(name)) };
            purge(ctx, k);
            let h = ttl_or_plain_fields(ctx, k)?;
            if h.iter().any(|x| x == f) {
                return Ok(Reply::Int(0));
            }
            set_field(ctx, k, f, v.clone())?;
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(1))
        })(),
        "HINCRBYFLOAT" => (|| {
            let [k, f, d] = a else { return Err(arity(name)) };
            let d = float_arg(d)?;
            purge(ctx, k);
            let cur = field_value(ctx, k, f)?;
            let cur = match cur {
                None => 0.0,
                Some(c) => float_arg(&c).map_err(|_| Reply::err("hash value is not a float"))?,
            };
            let v = cur + d;
            if !v.is_finite() {
                return Err(Reply::err("increment would produce NaN or Infinity"));
            }
            let text = Bytes::from(fmt_float(v));
            set_field(ctx, k, f, text.clone())?;
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::bulk(text))
        })(),
        _ => return None,
    })
}

fn ttl_or_plain_fields(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Vec<Bytes>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(Vec::new()),
        Some(Value::Hash(h)) => Ok(h.iter().map(|(f, _)| f.clone()).collect()),
        Some(Value::HashWithTtl(h)) => Ok(h.iter().map(|(f, _, _)| f.clone()).collect()),
        Some(_) => Err(wrongtype()),
    }
}

fn field_value(ctx: &mut Ctx<'_>, k: &[u8], f: &[u8]) -> Result<Option<Bytes>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(h.iter().find(|(x, _)| x == f).map(|(_, v)| v.clone())),
        Some(Value::HashWithTtl(h)) => Ok(h.iter().find(|(x, _, _)| x == f).map(|(_, v, _)| v.clone())),
        Some(_) => Err(wrongtype()),
    }
}

fn set_field(ctx: &mut Ctx<'_>, k: &Bytes, f: &Bytes, v: Bytes) -> Result<(), Reply> {
    if !ctx.exists(k) {
        ctx.store(k, Entry::new(Value::Hash(Vec::new())));
    }
    match ctx.live_for_write(k).map(|e| &mut e.value) {
        Some(Value::Hash(h)) => match h.iter_mut().find(|(x, _)| x == f) {
            Some(slot) => slot.1 = v,
            None => h.push((f.clone(), v)),
        },
        Some(Value::HashWithTtl(h)) => match h.iter_mut().find(|(x, _, _)| x == f) {
            Some(slot) => slot.1 = v,
            None => h.push((f.clone(), v, None)),
        },
        _ => return Err(wrongtype()),
    }
    Ok(())
}
