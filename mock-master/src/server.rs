//! The TCP server (plain or TLS): accepts connections, authenticates them, serves client commands, turns
//! connections into replication control or flow connections, and applies command faults.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::faults::{command_matches, Fault};
use crate::master::{FlowMsg, Shared};
use crate::repl::{self, ConnRepl, Outcome};
use crate::resp::Reply;
use crate::tls::{send, Rd, TlsAcceptor, Wr};
use df2redis::resp::server::CommandReader;

/// Serves `listener` (TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    let mut next_conn = 1u64;
    tokio::pin!(shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            acc = listener.accept() => {
                let Ok((sock, peer)) = acc else { continue };
                let id = next_conn;
                next_conn += 1;
                let (tls, shared) = (tls.clone(), shared.clone());
                tasks.spawn(async move {
                    // A failed TLS handshake just closes the connection, as a real server does.
                    if let Ok((r, w)) = crate::tls::accept(sock, tls.as_ref()).await {
                        connection(r, w, peer.ip().to_string(), id, port, shared).await;
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
}

struct Conn {
    id: u64,
    port: u16,
    peer_ip: String,
    authed: bool,
    client: crate::commands::Client,
    repl: ConnRepl,
}

async fn connection(mut r: Rd, mut w: Wr, peer_ip: String, id: u64, port: u16, shared: Arc<Shared>) {
    let authed = {
        let st = shared.lock();
        st.cfg.requirepass.is_none() && st.cfg.users.is_empty()
    };
    let mut c = Conn { id, port, peer_ip, authed, client: Default::default(), repl: ConnRepl::default() };
    let mut buf = BytesMut::with_capacity(4096);
    let mut reader = CommandReader::default();
    let mut epoch = shared.epoch.subscribe();
    'outer: loop {
        loop {
            let args = match reader.read(&mut buf) {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(e) => {
                    let _ = send(&mut w, &Reply::Error(format!("ERR {e}")).to_bytes()).await;
                    break 'outer;
                }
            };
            if args.is_empty() {
                continue;
            }
            let (outcome, delay) = dispatch(&shared, &mut c, &args);
            if let Some(ms) = delay {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let outcome = match outcome {
                Outcome::AwaitStable(sid) => Outcome::Reply(await_stable(&shared, sid).await),
                o => o,
            };
            match outcome {
                Outcome::Reply(rep) => {
                    if send(&mut w, &rep.to_bytes()).await.is_err() {
                        break 'outer;
                    }
                    shared.bump();
                }
                Outcome::Close => break 'outer,
                Outcome::BecomeFlow(rep, sid, idx) => {
                    if send(&mut w, &rep.to_bytes()).await.is_err() {
                        break 'outer;
                    }
                    shared.bump();
                    let writer = tokio::spawn(crate::flow::run(shared.clone(), sid, idx, id, w));
                    flow_reader(&shared, &mut c, r, buf, reader, sid, idx).await;
                    writer.abort();
                    return;
                }
                Outcome::AwaitStable(_) => {}
            }
        }
        tokio::select! {
            n = r.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = epoch.changed() => {
                let mut st = shared.lock();
                if let Some(sid) = c.repl.session {
                    if st.close_control == Some(sid) {
                        st.close_control = None;
                        st.cancel_session(sid);
                        break;
                    }
                }
            }
        }
    }
    if let Some(sid) = c.repl.session {
        let mut st = shared.lock();
        if st.sessions.get(&sid).is_some_and(|s| s.control_conn == c.id) {
            st.cancel_session(sid);
        }
    }
    shared.bump();
}

/// Reads a flow connection: `REPLCONF ACK <n>` is recorded, anything else is answered into the
/// data stream (as Dragonfly would). EOF cancels the session.
async fn flow_reader(
    shared: &Arc<Shared>,
    c: &mut Conn,
    mut r: Rd,
    mut buf: BytesMut,
    mut reader: CommandReader,
    sid: u64,
    idx: u32,
) {
    loop {
        while let Ok(Some(args)) = reader.read(&mut buf) {
            if args.is_empty() {
                continue;
            }
            let is_ack =
                args.len() == 3 && args[0].eq_ignore_ascii_case(b"REPLCONF") && args[1].eq_ignore_ascii_case(b"ACK");
            let mut st = shared.lock();
            if is_ack && st.cfg.release.has_acks() {
                if let Ok(n) = crate::commands::int_arg(&args[2]) {
                    if let Some(slot) =
                        st.sessions.get_mut(&sid).and_then(|s| s.flows.get_mut(idx as usize)).and_then(Option::as_mut)
                    {
                        slot.acks.push(n.max(0) as u64);
                    }
                }
                drop(st);
                shared.bump();
                continue;
            }
            drop(st);
            let (outcome, _) = dispatch(shared, c, &args);
            let rep = match outcome {
                Outcome::Reply(r) => r,
                _ => Reply::err("invalid state"),
            };
            let mut st = shared.lock();
            if let Some(slot) =
                st.sessions.get_mut(&sid).and_then(|s| s.flows.get_mut(idx as usize)).and_then(Option::as_mut)
            {
                slot.queue.push_back(FlowMsg::Raw(rep.to_bytes()));
                slot.notify.notify_one();
            }
        }
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let mut st = shared.lock();
    if st
        .sessions
        .get(&sid)
        .and_then(|s| s.flows.get(idx as usize))
        .and_then(Option::as_ref)
        .is_some_and(|f| f.conn == c.id)
    {
        st.cancel_session(sid);
    }
    drop(st);
    shared.bump();
}

async fn await_stable(shared: &Arc<Shared>, sid: u64) -> Reply {
    let mut rx = shared.epoch.subscribe();
    loop {
        {
            let mut st = shared.lock();
            match repl::all_fullsync_ended(&st, sid) {
                None => return Reply::err("syncid not found"),
                Some(true) => {
                    let r = repl::finish_startstable(&mut st, sid);
                    drop(st);
                    shared.bump();
                    return r;
                }
                Some(false) => {}
            }
        }
        if rx.changed().await.is_err() {
            return Reply::err("invalid state");
        }
    }
}

fn noauth_exempt(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"AUTH") || name.eq_ignore_ascii_case(b"QUIT") || name.eq_ignore_ascii_case(b"HELLO")
}

/// Runs one command; returns what to do and an optional reply delay (stall fault).
fn dispatch(shared: &Arc<Shared>, c: &mut Conn, args: &[Bytes]) -> (Outcome, Option<u64>) {
    let mut st = shared.lock();
    let mut delay = None;
    for i in 0..st.cfg.faults.len() {
        match st.cfg.faults[i].clone() {
            Fault::Refuse { command, error, .. } if st.refuse_left[i] > 0 && command_matches(&command, args) => {
                st.refuse_left[i] -= 1;
                st.fault_fired[i] = true;
                return (Outcome::Reply(Reply::Error(error)), None);
            }
            Fault::StallCommand { command, ms } if !st.fault_fired[i] && command_matches(&command, args) => {
                delay = Some(ms);
                st.fault_fired[i] = true;
            }
            _ => {}
        }
    }
    let name = &args[0];
    if !c.authed && !noauth_exempt(name) {
        return (Outcome::Reply(Reply::Error("NOAUTH Authentication required.".into())), delay);
    }
    let rest = &args[1..];
    let out = if name.eq_ignore_ascii_case(b"AUTH") {
        Outcome::Reply(auth(&st, c, rest))
    } else if name.eq_ignore_ascii_case(b"QUIT") {
        Outcome::Close
    } else if name.eq_ignore_ascii_case(b"REPLCONF") {
        let peer = c.peer_ip.clone();
        repl::replconf(&mut st, c.id, &peer, &mut c.repl, rest)
    } else if name.eq_ignore_ascii_case(b"DFLY") {
        repl::dfly(&mut st, c.id, rest)
    } else if name.eq_ignore_ascii_case(b"INFO") {
        Outcome::Reply(repl::info(&st, rest, c.port))
    } else {
        Outcome::Reply(crate::commands::execute(&mut st, &mut c.client, args))
    };
    (out, delay)
}

fn auth(st: &crate::master::State, c: &mut Conn, a: &[Bytes]) -> Reply {
    let wrong = || Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    match a {
        [pass] => match &st.cfg.requirepass {
            None => Reply::err(
                "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ),
            Some(p) if p.as_bytes() == &pass[..] => {
                c.authed = true;
                Reply::ok()
            }
            Some(_) => wrong(),
        },
        [user, pass] => {
            let ok = st.cfg.users.iter().any(|(u, p)| u.as_bytes() == &user[..] && p.as_bytes() == &pass[..])
                || (&user[..] == b"default" && st.cfg.requirepass.as_ref().is_some_and(|p| p.as_bytes() == &pass[..]));
            if ok {
                c.authed = true;
                Reply::ok()
            } else {
                wrong()
            }
        }
        _ => crate::commands::arity("AUTH"),
    }
}
