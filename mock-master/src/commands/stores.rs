//! Multi-key set and sorted-set commands with Dragonfly's journal forms (spec 6.4, Appendices
//! F/G): SMOVE (→ `SREM src m` + `SADD dst m`), S*STORE (→ `DEL dst` + `SADD dst …`), Z*STORE
//! (v1.34+: `DEL dst` + `ZADD dst` with scores printed by `absl::StrCat` — 6 significant digits,
//! the precision loss of Appendix F; before v1.34 auto-journaled: verbatim on one shard,
//! per-shard key fragments across shards), ZPOPMIN/ZPOPMAX (verbatim), BZPOPMIN/BZPOPMAX
//! (→ `ZPOPMIN k` / `ZPOPMAX k`), and the SINTER/SUNION/SDIFF reads.

use bytes::Bytes;
use df2redis::proto::Value;

use super::collections::sort_zset;
use super::{arity, float_arg, fmt_float, int_arg, syntax, wrongtype, CmdResult, Ctx};
use crate::dataset::Entry;
use crate::resp::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// A double as `absl::StrCat` prints it: C's `%g` with 6 significant digits
/// (`6.283185307179586` → `6.28319`, `27` → `27`, `-2e-300` → `-2e-300`, `1e6` → `1e+06`).
pub fn six_digits(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{v:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-4..6).contains(&x) {
        strip(&format!("{:.*}", (5 - x) as usize, v))
    } else {
        format!("{}e{}{:02}", strip(mant), if x < 0 { '-' } else { '+' }, x.abs())
    }
}

fn set_of(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Vec<Bytes>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(Vec::new()),
        Some(Value::Set(s)) => Ok(s.clone()),
        Some(Value::SetWithTtl(s)) => Ok(s.iter().map(|(m, _)| m.clone()).collect()),
        Some(_) => Err(wrongtype()),
    }
}

fn zset_of(ctx: &mut Ctx<'_>, k: &[u8]) -> Result<Option<Vec<(Bytes, f64)>>, Reply> {
    match ctx.live(k).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Zset(z)) => Ok(Some(z.clone())),
        Some(Value::Set(s)) => Ok(Some(s.iter().map(|m| (m.clone(), 1.0)).collect())),
        Some(_) => Err(wrongtype()),
    }
}

fn set_op(ctx: &mut Ctx<'_>, op: &str, keys: &[Bytes]) -> Result<Vec<Bytes>, Reply> {
    let mut sets = Vec::new();
    for k in keys {
        sets.push(set_of(ctx, k)?);
    }
    let mut it = sets.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for s in it {
        match op {
            "SINTER" => acc.retain(|m| s.contains(m)),
            "SUNION" => s.into_iter().for_each(|m| {
                if !acc.contains(&m) {
                    acc.push(m);
                }
            }),
            _ => acc.retain(|m| !s.contains(m)),
        }
    }
    Ok(acc)
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "SMOVE" => (|| {
            let [src, dst, m] = a else { return Err(arity(name)) };
            ctx.declare([src, dst]);
            ctx.multi_hop();
            let from = set_of(ctx, src)?;
            set_of(ctx, dst)?;
            if !from.contains(m) {
                return Ok(Reply::Int(0));
            }
            if src == dst {
                return Ok(Reply::Int(1));
            }
            if let Some(Entry { value: Value::Set(s), .. }) = ctx.live_for_write(src) {
                s.retain(|x| x != m);
                if s.is_empty() {
                    ctx.remove(src);
                }
            }
            if !ctx.exists(dst) {
                ctx.store(dst, Entry::new(Value::Set(Vec::new())));
            }
            if let Some(Entry { value: Value::Set(s), .. }) = ctx.live_for_write(dst) {
                if !s.contains(m) {
                    s.push(m.clone());
                }
            }
            ctx.journal(src, vec![b("SREM"), src.clone(), m.clone()]);
            ctx.journal(dst, vec![b("SADD"), dst.clone(), m.clone()]);
            Ok(Reply::Int(1))
        })(),
        "SINTER" | "SUNION" | "SDIFF" if !a.is_empty() => set_op(ctx, name, a).map(Reply::bulks),
        "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => (|| {
            let [dst, keys @ ..] = a else { return Err(arity(name)) };
            if keys.is_empty() {
                return Err(arity(name));
            }
            ctx.declare(a);
            ctx.multi_hop();
            let res = set_op(ctx, &name[..name.len() - 5], keys)?;
            let n = res.len() as i64;
            ctx.remove(dst);
            ctx.journal(dst, vec![b("DEL"), dst.clone()]);
            if !res.is_empty() {
                ctx.store(dst, Entry::new(Value::Set(res.clone())));
                let mut j = vec![b("SADD"), dst.clone()];
                j.extend(res);
                ctx.journal(dst, j);
            }
            Ok(Reply::Int(n))
        })(),
        "ZPOPMIN" | "ZPOPMAX" => (|| {
            let (k, count) = match a {
                [k] => (k, 1usize),
                [k, c] => (k, usize::try_from(int_arg(c)?).map_err(|_| super::not_int())?),
                _ => return Err(arity(name)),
            };
            let popped = zpop(ctx, k, name == "ZPOPMIN", count)?;
            if !popped.is_empty() {
                let mut j = vec![Bytes::from(name.to_string())];
                j.extend(a.iter().cloned());
                ctx.journal(k, j);
            }
            Ok(Reply::bulks(popped.into_iter().flat_map(|(m, s)| [m, Bytes::from(fmt_float(s))])))
        })(),
        "BZPOPMIN" | "BZPOPMAX" => (|| {
            let [keys @ .., t] = a else { return Err(arity(name)) };
            if keys.is_empty() {
                return Err(arity(name));
            }
            float_arg(t)?;
            ctx.declare(keys);
            let min = name == "BZPOPMIN";
            for k in keys {
                let popped = zpop(ctx, k, min, 1)?;
                if let Some((m, s)) = popped.into_iter().next() {
                    ctx.journal(k, vec![b(if min { "ZPOPMIN" } else { "ZPOPMAX" }), k.clone()]);
                    return Ok(Reply::bulks([k.clone(), m, Bytes::from(fmt_float(s))]));
                }
            }
            Ok(Reply::Array(None))
        })(),
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => zstore(ctx, name, a),
        "ZRANGESTORE" => zrangestore(ctx, a),
        _ => return None,
    })
}

fn zpop(ctx: &mut Ctx<'_>, k: &Bytes, min: bool, count: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
    let Some(mut z) = zset_of(ctx, k)? else { return Ok(Vec::new()) };
    if !matches!(ctx.live(k).map(|e| &e.value), Some(Value::Zset(_))) {
        return Err(wrongtype());
    }
    sort_zset(&mut z);
    let n = count.min(z.len());
    let popped: Vec<(Bytes, f64)> = if min { z.drain(..n).collect() } else { z.split_off(z.len() - n) };
    let popped = if min { popped } else { popped.into_iter().rev().collect() };
    if let Some(Entry { value: Value::Zset(zz), .. }) = ctx.live_for_write(k) {
        zz.retain(|(m, _)| !popped.iter().any(|(p, _)| p == m));
        if zz.is_empty() {
            ctx.remove(k);
        }
    }
    Ok(popped)
}

/// Stores a Z*STORE result and journals it the way the release does.
fn store_result(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes], dst: &Bytes, keys: &[Bytes], res: Vec<(Bytes, f64)>) {
    let existed = ctx.remove(dst);
    let n = res.len();
    if n > 0 {
        ctx.store(dst, Entry::new(Value::Zset(res.clone())));
    }
    if ctx.st.cfg.release.zstore_rewrite() {
        if n == 0 {
            if existed {
                ctx.journal(dst, vec![b("DEL"), dst.clone()]);
            }
            return;
        }
        ctx.journal(dst, vec![b("DEL"), dst.clone()]);
        let mut j = vec![b("ZADD"), dst.clone()];
        for (m, s) in res {
            j.push(Bytes::from(six_digits(s)));
            j.push(m);
        }
        ctx.journal(dst, j);
        return;
    }
    let shards: std::collections::BTreeSet<u32> = std::iter::once(dst).chain(keys).map(|k| ctx.st.shard(k)).collect();
    if shards.len() == 1 {
        let mut j = vec![Bytes::from(name.to_string())];
        j.extend(a.iter().cloned());
        ctx.journal(dst, j);
    } else {
        let items = std::iter::once(dst).chain(keys).map(|k| (k.clone(), vec![k.clone()])).collect();
        ctx.journal_split(name, items);
    }
}

fn zstore(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> CmdResult {
    let [dst, nk, rest @ ..] = a else { return Err(arity(name)) };
    let nk = usize::try_from(int_arg(nk)?).map_err(|_| syntax())?;
    if nk == 0 {
        return Err(Reply::err(format!("at least 1 input key is needed for '{}' command", name.to_ascii_lowercase())));
    }
    if rest.len() < nk {
        return Err(syntax());
    }
    let (keys, opts) = rest.split_at(nk);
    let mut weights = vec![1.0; nk];
    let mut agg = "SUM".to_string();
    let mut i = 0;
    while i < opts.len() {
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "WEIGHTS" if name != "ZDIFFSTORE" => {
                for w in weights.iter_mut() {
                    i += 1;
                    *w = float_arg(opts.get(i).ok_or_else(syntax)?)
                        .map_err(|_| Reply::err("weight value is not a float"))?;
                }
            }
            "AGGREGATE" if name != "ZDIFFSTORE" => {
                i += 1;
                agg = String::from_utf8_lossy(opts.get(i).ok_or_else(syntax)?).to_ascii_uppercase();
                if !["SUM", "MIN", "MAX"].contains(&agg.as_str()) {
                    return Err(syntax());
                }
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    ctx.declare(std::iter::once(dst).chain(keys));
    ctx.multi_hop();
    let mut inputs = Vec::new();
    for k in keys {
        inputs.push(zset_of(ctx, k)?);
    }
    let combine = |x: f64, y: f64| match agg.as_str() {
        "MIN" => x.min(y),
        "MAX" => x.max(y),
        _ => {
            let s = x + y;
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
    };
    let mut res: Vec<(Bytes, f64)> = Vec::new();
    match name {
        "ZUNIONSTORE" => {
            for (z, w) in inputs.iter().zip(&weights) {
                for (m, s) in z.iter().flatten() {
                    let s = s * w;
                    match res.iter_mut().find(|(x, _)| x == m) {
                        Some(slot) => slot.1 = combine(slot.1, s),
                        None => res.push((m.clone(), s)),
                    }
                }
            }
        }
        "ZINTERSTORE" => {
            if let Some(Some(first)) = inputs.first() {
                'm: for (m, s) in first {
                    let mut acc = s * weights[0];
                    for (z, w) in inputs.iter().zip(&weights).skip(1) {
                        match z.as_ref().and_then(|z| z.iter().find(|(x, _)| x == m)) {
                            Some((_, s2)) => acc = combine(acc, s2 * w),
                            None => continue 'm,
                        }
                    }
                    res.push((m.clone(), acc));
                }
            }
        }
        _ => {
            if let Some(Some(first)) = inputs.first() {
                for (m, s) in first {
                    if !inputs.iter().skip(1).flatten().any(|z| z.iter().any(|(x, _)| x == m)) {
                        res.push((m.clone(), *s));
                    }
                }
            }
        }
    }
    sort_zset(&mut res);
    let n = res.len() as i64;
    store_result(ctx, name, a, dst, keys, res);
    Ok(Reply::Int(n))
}

fn score_bound(b: &[u8]) -> Result<(f64, bool), Reply> {
    let bad = || Reply::err("min or max is not a float");
    match b.strip_prefix(b"(") {
        Some(r) => Ok((float_arg(r).map_err(|_| bad())?, true)),
        None => Ok((float_arg(b).map_err(|_| bad())?, false)),
    }
}

fn zrangestore(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let [dst, src, lo, hi, opts @ ..] = a else { return Err(arity("ZRANGESTORE")) };
    let (mut byscore, mut rev, mut limit) = (false, false, None);
    let mut i = 0;
    while i < opts.len() {
        match String::from_utf8_lossy(&opts[i]).to_ascii_uppercase().as_str() {
            "BYSCORE" => byscore = true,
            "REV" => rev = true,
            "LIMIT" => {
                let off = int_arg(opts.get(i + 1).ok_or_else(syntax)?)?;
                let cnt = int_arg(opts.get(i + 2).ok_or_else(syntax)?)?;
                limit = Some((off.max(0) as usize, if cnt < 0 { usize::MAX } else { cnt as usize }));
                i += 2;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    ctx.declare([dst, src]);
    ctx.multi_hop();
    let mut z = zset_of(ctx, src)?.unwrap_or_default();
    sort_zset(&mut z);
    if rev {
        z.reverse();
    }
    let mut res: Vec<(Bytes, f64)> = if byscore {
        let (a_lo, b_hi) = if rev { (hi, lo) } else { (lo, hi) };
        let ((min, min_ex), (max, max_ex)) = (score_bound(a_lo)?, score_bound(b_hi)?);
        let ok = |s: f64| (if min_ex { s > min } else { s >= min }) && (if max_ex { s < max } else { s <= max });
        let (off, cnt) = limit.unwrap_or((0, usize::MAX));
        z.into_iter().filter(|(_, s)| ok(*s)).skip(off).take(cnt).collect()
    } else {
        let (s, e) = (int_arg(lo)?, int_arg(hi)?);
        let len = z.len() as i64;
        let s = if s < 0 { (len + s).max(0) } else { s };
        let e = if e < 0 { len + e } else { e.min(len - 1) };
        if s > e || s >= len {
            Vec::new()
        } else {
            z[s as usize..=e as usize].to_vec()
        }
    };
    sort_zset(&mut res);
    let n = res.len() as i64;
    store_result(ctx, "ZRANGESTORE", a, dst, std::slice::from_ref(src), res);
    Ok(Reply::Int(n))
}

#[cfg(test)]
mod tests {
    use super::six_digits;

    #[test]
    fn scores_print_like_absl_six_digits() {
        assert_eq!(six_digits(std::f64::consts::TAU), "6.28319");
        assert_eq!(six_digits(27.0), "27");
        assert_eq!(six_digits(-2e-300), "-2e-300");
        assert_eq!(six_digits(1e6), "1e+06");
        assert_eq!(six_digits(123456.0), "123456");
        assert_eq!(six_digits(1234567.0), "1.23457e+06");
        assert_eq!(six_digits(0.0001), "0.0001");
        assert_eq!(six_digits(0.00001234), "1.234e-05");
        assert_eq!(six_digits(2.5), "2.5");
        assert_eq!(six_digits(f64::INFINITY), "inf");
        assert_eq!(six_digits(999999.5), "1e+06");
    }
}
