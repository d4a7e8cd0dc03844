//! Lua scripting (embedded Lua 5.4 through mlua): EVAL / EVALSHA run the script against the
//! dataset; `redis.call` / `redis.pcall` run commands in the same journaling context, so the
//! script's writes are journaled with one txid when they span shards (txid 0 on one shard,
//! Appendix F), INCR/DECR verbatim, and as MULTI_COMMAND + EXEC up to v1.20. SCRIPT LOAD is
//! journaled verbatim on flow 0; SCRIPT EXISTS / FLUSH are served.

use bytes::Bytes;
use mlua::{Lua, MultiValue, Value as Lv, Variadic};

use super::{arity, int_arg, CmdResult, Ctx};
use crate::resp::Reply;

fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

pub(super) fn run(ctx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Option<CmdResult> {
    Some(match name {
        "EVAL" | "EVALSHA" => (|| {
            let [script, nk, rest @ ..] = a else { return Err(arity(name)) };
            let nk = usize::try_from(int_arg(nk)?).map_err(|_| Reply::err("Number of keys can't be negative"))?;
            if nk > rest.len() {
                return Err(Reply::err("Number of keys can't be greater than number of args"));
            }
            let body = if name == "EVAL" {
                let sha = sha1_hex(script);
                ctx.st.scripts.insert(sha, script.clone());
                script.clone()
            } else {
                let sha = String::from_utf8_lossy(script).to_ascii_lowercase();
                ctx.st
                    .scripts
                    .get(&sha)
                    .cloned()
                    .ok_or_else(|| Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()))?
            };
            let (keys, argv) = rest.split_at(nk);
            ctx.declare(keys);
            eval(ctx, &body, keys, argv)
        })(),
        "SCRIPT" => (|| {
            let [sub, args @ ..] = a else { return Err(arity(name)) };
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "LOAD" => {
                    let [body] = args else { return Err(arity("SCRIPT|LOAD")) };
                    let lua = Lua::new();
                    if let Err(e) = lua.load(&body[..]).into_function() {
                        return Err(Reply::err(format!("Error compiling script: {e}")));
                    }
                    let sha = sha1_hex(body);
                    ctx.st.scripts.insert(sha.clone(), body.clone());
                    let mut j = vec![Bytes::from_static(b"SCRIPT")];
                    j.extend(a.iter().cloned());
                    ctx.journal_on(0, j);
                    Ok(Reply::bulk(sha))
                }
                "EXISTS" => Ok(Reply::Array(Some(
                    args.iter()
                        .map(|s| {
                            let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                            Reply::Int(i64::from(ctx.st.scripts.contains_key(&sha)))
                        })
                        .collect(),
                ))),
                "FLUSH" => {
                    ctx.st.scripts.clear();
                    Ok(Reply::ok())
                }
                _ => Err(super::syntax()),
            }
        })(),
        _ => return None,
    })
}

fn eval(ctx: &mut Ctx<'_>, body: &[u8], keys: &[Bytes], argv: &[Bytes]) -> CmdResult {
    let lua = Lua::new();
    let was = ctx.in_script;
    ctx.enter_script();
    let r = lua.scope(|scope| {
        let call = scope.create_function_mut(|lua, (protected, args): (bool, Variadic<mlua::String>)| {
            let args: Vec<Bytes> = args.iter().map(|s| Bytes::copy_from_slice(&s.as_bytes())).collect();
            if args.is_empty() {
                return Err(mlua::Error::runtime("Please specify at least one argument for this redis lib call"));
            }
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            if matches!(name.as_str(), "EVAL" | "EVALSHA" | "MULTI" | "EXEC" | "SELECT" | "SCRIPT") {
                return Err(mlua::Error::runtime("This Redis command is not allowed from script"));
            }
            let mut db = ctx.db;
            let reply = super::run_one(ctx, &mut db, &name, &args);
            if let Reply::Error(e) = &reply {
                if !protected {
                    return Err(mlua::Error::runtime(e.clone()));
                }
            }
            to_lua(lua, &reply)
        })?;
        let redis = lua.create_table()?;
        let c2 = call.clone();
        redis.set("call", lua.create_function(move |_, args: MultiValue| c2.call::<Lv>((false, args)))?)?;
        redis.set("pcall", lua.create_function(move |_, args: MultiValue| call.call::<Lv>((true, args)))?)?;
        redis.set(
            "status_reply",
            lua.create_function(|lua, s: mlua::String| {
                let t = lua.create_table()?;
                t.set("ok", s)?;
                Ok(t)
            })?,
        )?;
        redis.set(
            "error_reply",
            lua.create_function(|lua, s: mlua::String| {
                let t = lua.create_table()?;
                t.set("err", s)?;
                Ok(t)
            })?,
        )?;
        lua.globals().set("redis", redis)?;
        let list = |items: &[Bytes]| -> mlua::Result<mlua::Table> {
            let t = lua.create_table()?;
            for (i, k) in items.iter().enumerate() {
                t.set(i + 1, lua.create_string(&k[..])?)?;
            }
            Ok(t)
        };
        lua.globals().set("KEYS", list(keys)?)?;
        lua.globals().set("ARGV", list(argv)?)?;
        let v: Lv = lua.load(body).set_name("@user_script").eval()?;
        Ok(from_lua(&v))
    });
    ctx.in_script = was;
    r.map_err(|e| Reply::err(format!("Error running script: {}", first_line(&e.to_string()))))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn to_lua(lua: &Lua, r: &Reply) -> mlua::Result<Lv> {
    Ok(match r {
        Reply::Int(n) => Lv::Integer(*n),
        Reply::Bulk(Some(b)) => Lv::String(lua.create_string(&b[..])?),
        Reply::Bulk(None) | Reply::Array(None) => Lv::Boolean(false),
        Reply::Simple(s) => {
            let t = lua.create_table()?;
            t.set("ok", s.as_str())?;
            Lv::Table(t)
        }
        Reply::Error(e) => {
            let t = lua.create_table()?;
            t.set("err", e.as_str())?;
            Lv::Table(t)
        }
        Reply::Array(Some(items)) => {
            let t = lua.create_table()?;
            for (i, it) in items.iter().enumerate() {
                t.set(i + 1, to_lua(lua, it)?)?;
            }
            Lv::Table(t)
        }
    })
}

fn from_lua(v: &Lv) -> Reply {
    match v {
        Lv::Integer(n) => Reply::Int(*n),
        Lv::Number(f) => Reply::Int(*f as i64),
        Lv::String(s) => Reply::bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Lv::Boolean(true) => Reply::Int(1),
        Lv::Table(t) => {
            if let Ok(Lv::String(s)) = t.get::<Lv>("ok") {
                return Reply::Simple(s.to_string_lossy());
            }
            if let Ok(Lv::String(s)) = t.get::<Lv>("err") {
                return Reply::Error(s.to_string_lossy());
            }
            let mut out = Vec::new();
            for i in 1.. {
                match t.raw_get::<Lv>(i) {
                    Ok(Lv::Nil) | Err(_) => break,
                    Ok(x) => out.push(from_lua(&x)),
                }
            }
            Reply::Array(Some(out))
        }
        _ => Reply::nil(),
    }
}
