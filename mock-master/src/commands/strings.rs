//! More string commands: GETEX (journaled as PEXPIREAT / PERSIST / DEL), GETDEL, GETSET,
//! SETRANGE, GETRANGE and INCRBYFLOAT (journaled verbatim, spec 6.4).

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

fn string_of(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Option<Bytes>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrongtype()),
    }
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "GETEX" => getex(ctx, a),
        "GETDEL" => match a {
            [k] => string_of(ctx, k).map(|v| match v {
                None => Reply::nil(),
                Some(v) => {
                    ctx.remove(k);
                    ctx.journal(k, verbatim(name, a));
                    Reply::bulk(v)
                }
            }),
            _ => Err(arity(name)),
        },
        "GETSET" => match a {
            [k, v] => string_of(ctx, k).map(|old| {
                ctx.store(k, Entry::new(Value::String(v.clone())));
                ctx.journal(k, verbatim(name, a));
                old.map_or(Reply::nil(), Reply::bulk)
            }),
            _ => Err(arity(name)),
        },
        "SETRANGE" => (|| {
            let [k, off, v] = a else { return Err(arity(name)) };
            let off = usize::try_from(int_arg(off)?).map_err(|_| Reply::err("offset is out of range"))?;
            if off.saturating_add(v.len()) > 512 << 20 {
                return Err(Reply::err("string exceeds maximum allowed size"));
            }
            let cur = string_of(ctx, k)?;
            if cur.is_none() && v.is_empty() {
                return Ok(Reply::Int(0));
            }
            let mut s = cur.clone().map(|c| c.to_vec()).unwrap_or_default();
            if s.len() < off + v.len() {
                s.resize(off + v.len(), 0);
            }
            s[off..off + v.len()].copy_from_slice(v);
            let len = s.len() as i64;
            let expire_ms = ctx.live_for_write(k).and_then(|e| e.expire_ms);
            ctx.store(k, Entry { value: Value::String(Bytes::from(s)), expire_ms });
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::Int(len))
        })(),
        "GETRANGE" => (|| {
            let [k, s, e] = a else { return Err(arity(name)) };
            let (s, e) = (int_arg(s)?, int_arg(e)?);
            let v = string_of(ctx, k)?.unwrap_or_default();
            let len = v.len() as i64;
            let s = if s < 0 { (len + s).max(0) } else { s };
            let e = if e < 0 { len + e } else { e.min(len - 1) };
            if len == 0 || s > e || s >= len {
                return Ok(Reply::bulk(Bytes::new()));
            }
            Ok(Reply::bulk(v.slice(s as usize..(e + 1) as usize)))
        })(),
        "INCRBYFLOAT" => (|| {
            let [k, d] = a else { return Err(arity(name)) };
            let d = float_arg(d)?;
            let cur = match string_of(ctx, k)? {
                None => 0.0,
                Some(s) => float_arg(&s).map_err(|_| Reply::err("value is not a valid float"))?,
            };
            let v = cur + d;
            if !v.is_finite() {
                return Err(Reply::err("increment would produce NaN or Infinity"));
            }
            let text = Bytes::from(fmt_float(v));
            let expire_ms = ctx.live_for_write(k).and_then(|e| e.expire_ms);
            ctx.store(k, Entry { value: Value::String(text.clone()), expire_ms });
            ctx.journal(k, verbatim(name, a));
            Ok(Reply::bulk(text))
        })(),
        _ => return None,
    })
}

fn getex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [k, opts @ ..] = a else { return Err(arity("GETEX")) };
    enum Op {
        None,
        At(i64),
        Persist,
    }
    let op = match opts {
        [] => Op::None,
        [p] if p.eq_ignore_ascii_case(b"PERSIST") => Op::Persist,
        [o, t] => {
            let t = int_arg(t)?;
            if t <= 0 {
                return Err(Reply::err("invalid expire time in 'getex' command"));
            }
            let now = ctx.now as i64;
            Op::At(match String::from_utf8_lossy(o).to_ascii_uppercase().as_str() {
                "EX" => now.saturating_add(t.saturating_mul(1000)),
                "PX" => now.saturating_add(t),
                "EXAT" => t.saturating_mul(1000),
                "PXAT" => t,
                _ => return Err(syntax()),
            })
        }
        _ => return Err(syntax()),
    };
    let Some(v) = string_of(ctx, k)? else { return Ok(Reply::nil()) };
    match op {
        Op::None => {}
        Op::Persist => {
            if let Some(e) = ctx.live_for_write(k) {
                e.expire_ms = None;
            }
            ctx.journal(k, vec![b("PERSIST"), k.clone()]);
        }
        Op::At(t) if t <= ctx.now as i64 => {
            ctx.remove(k);
            ctx.journal(k, vec![b("DEL"), k.clone()]);
        }
        Op::At(t) => {
            if let Some(e) = ctx.live_for_write(k) {
                e.expire_ms = Some(t as u64);
            }
            ctx.journal(k, vec![b("PEXPIREAT"), k.clone(), Bytes::from(t.to_string())]);
        }
    }
    Ok(Reply::bulk(v))
}
