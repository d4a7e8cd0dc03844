//! Replication commands on the master side: REPLCONF, DFLY FLOW/SYNC/STARTSTABLE/REPLICAOFFSET,
//! INFO, with Dragonfly's argument rules and error replies (spec 3.2, 4.1–4.4, appendices C, F).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::commands::{int_arg, not_int, syntax};
use crate::config::WritePhase;
use crate::master::{FlowMsg, FlowSlot, Phase, Session, State};
use crate::release::PartialSync;
use crate::resp::Reply;

/// Per-connection replication facts.
#[derive(Debug, Default, Clone)]
pub struct ConnRepl {
    /// `REPLCONF listening-port`.
    pub listening_port: Option<i64>,
    /// `REPLCONF ip-address`.
    pub announced_ip: Option<String>,
    /// The session this connection created with `capa dragonfly`.
    pub session: Option<u64>,
}

/// What the connection does after a replication command.
#[derive(Debug)]
pub enum Outcome {
    /// Write this reply.
    Reply(Reply),
    /// Write this reply, then the connection is flow `flow` of session `sid`.
    BecomeFlow(Reply, u64, u32),
    /// Wait until every flow of the session wrote FULLSYNC_END, then finish STARTSTABLE.
    AwaitStable(u64),
    /// Close the connection without replying.
    Close,
}

fn eq(a: &[u8], s: &str) -> bool {
    a.eq_ignore_ascii_case(s.as_bytes())
}

/// `REPLCONF …` on a connection that is not a flow.
pub fn replconf(st: &mut State, conn: u64, peer_ip: &str, repl: &mut ConnRepl, a: &[Bytes]) -> Outcome {
    let rel = st.cfg.release;
    if a.is_empty() || a.len() % 2 != 0 {
        return Outcome::Reply(syntax());
    }
    if a.len() == 2 && eq(&a[0], "capa") && &a[1][..] == b"dragonfly" {
        return Outcome::Reply(capa_dragonfly(st, conn, peer_ip, repl));
    }
    for p in a.chunks(2) {
        let (k, v) = (&p[0], &p[1]);
        if eq(k, "listening-port") {
            match int_arg(v) {
                Ok(port) => repl.listening_port = Some(port),
                Err(e) => return Outcome::Reply(e),
            }
        } else if eq(k, "ip-address") && rel.has_ip_address() {
            repl.announced_ip = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq(k, "capa") {
        } else if eq(k, "client-id") && a.len() == 2 {
            if let Some(s) = repl.session.and_then(|id| st.sessions.get_mut(&id)) {
                s.client_id = Some(v.clone());
            }
        } else if eq(k, "client-version") && a.len() == 2 && rel.has_acks() {
            let Ok(ver) = int_arg(v) else {
                return Outcome::Reply(not_int());
            };
            match repl.session.and_then(|id| st.sessions.get_mut(&id)) {
                Some(s) => s.client_version = Some(ver),
                // Dragonfly dereferences the missing session here; the mock drops the connection.
                None => return Outcome::Close,
            }
        } else {
            return Outcome::Reply(syntax());
        }
    }
    if let Some(s) = repl.session.and_then(|id| st.sessions.get_mut(&id)) {
        s.listening_port = repl.listening_port;
        s.announced_ip = repl.announced_ip.clone();
    }
    Outcome::Reply(Reply::ok())
}

fn capa_dragonfly(st: &mut State, conn: u64, peer_ip: &str, repl: &mut ConnRepl) -> Reply {
    let id = st.next_sync;
    st.next_sync += 1;
    let shards = st.shards();
    st.sessions.insert(
        id,
        Session {
            id,
            phase: Phase::Preparation,
            control_conn: conn,
            peer_ip: peer_ip.to_string(),
            listening_port: repl.listening_port,
            announced_ip: repl.announced_ip.clone(),
            client_id: None,
            client_version: None,
            flows: (0..shards).map(|_| None).collect(),
        },
    );
    repl.session = Some(id);
    let rel = st.cfg.release;
    let mut items =
        vec![Reply::Simple(st.master_id.clone()), Reply::Simple(format!("SYNC{id}")), Reply::Int(i64::from(shards))];
    if let Some(v) = rel.version_int() {
        items.push(Reply::Int(v));
    }
    if rel.capa_len() == 5 {
        items.push(Reply::Simple(st.master_id.clone()));
    }
    Reply::Array(Some(items))
}

fn parse_sync_id(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    s.strip_prefix("SYNC")?.parse().ok()
}

fn session_of<'s>(st: &'s mut State, b: &[u8]) -> Result<&'s mut Session, Reply> {
    let id = parse_sync_id(b).ok_or_else(|| Reply::err("bad sync id"))?;
    st.sessions.get_mut(&id).ok_or_else(|| Reply::err("syncid not found"))
}

/// `DFLY …`
pub fn dfly(st: &mut State, conn: u64, a: &[Bytes]) -> Outcome {
    let Some(sub) = a.first() else {
        return Outcome::Reply(crate::commands::arity("DFLY"));
    };
    let rest = &a[1..];
    let r = if eq(sub, "FLOW") {
        return flow(st, conn, rest).unwrap_or_else(Outcome::Reply);
    } else if eq(sub, "SYNC") {
        sync(st, rest)
    } else if eq(sub, "STARTSTABLE") {
        match startstable_check(st, rest) {
            Ok(Some(id)) => return Outcome::AwaitStable(id),
            Ok(None) => Ok(Reply::ok()),
            Err(e) => Err(e),
        }
    } else if eq(sub, "REPLICAOFFSET") {
        Ok(Reply::Array(Some(st.offsets().into_iter().map(|o| Reply::Int(o as i64)).collect())))
    } else {
        Err(syntax())
    };
    Outcome::Reply(r.unwrap_or_else(|e| e))
}

fn flow(st: &mut State, conn: u64, a: &[Bytes]) -> Result<Outcome, Reply> {
    let rel = st.cfg.release;
    if a.len() < 3 || a.len() > 5 || (a.len() == 5 && !rel.has_last_master_form()) {
        return Err(syntax());
    }
    if a[0] != st.master_id.as_bytes() {
        return Err(Reply::err("bad master id"));
    }
    let shards = st.shards();
    let sid = parse_sync_id(&a[1]).ok_or_else(|| Reply::err("bad sync id"))?;
    if !st.sessions.contains_key(&sid) {
        return Err(Reply::err("syncid not found"));
    }
    let idx = std::str::from_utf8(&a[2])
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|i| *i < shards)
        .ok_or_else(not_int)?;
    let mut partial_from = None;
    if a.len() == 4 {
        let lsn = u64::try_from(int_arg(&a[3])?).map_err(|_| not_int())?;
        let form = rel.partial_sync();
        let j = &st.journals[idx as usize];
        if matches!(form, PartialSync::IncrementalSnapshot | PartialSync::Direct) && j.can_resume(lsn) {
            partial_from = Some(lsn);
        }
    } else if a.len() == 5 {
        let lsns = a[4]
            .split(|b| *b == b'-')
            .map(|l| int_arg(l).ok().and_then(|v| u64::try_from(v).ok()))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(not_int)?;
        let promoted = st.cfg.promoted_from.clone();
        if let Some(p) = promoted.filter(|p| p.master_id.as_bytes() == &a[3][..]) {
            if lsns.len() != shards as usize || lsns.len() != p.lsns.len() {
                return Err(syntax());
            }
            let j = &st.journals[idx as usize];
            match rel.partial_sync() {
                // v1.30: PARTIAL only when the sibling stopped exactly where this node did, and
                // the stream starts at this node's current LSN (records journaled since the
                // promotion are skipped — the data loss v1.34 fixed).
                PartialSync::LastMasterOnly => {
                    if lsns == p.lsns {
                        partial_from = Some(j.next_lsn);
                    }
                }
                PartialSync::Unavailable => {}
                _ => {
                    if j.can_resume(lsns[idx as usize]) {
                        partial_from = Some(lsns[idx as usize]);
                    }
                }
            }
        }
    }
    let token = st.rng.hex40();
    let sess = st.sessions.get_mut(&sid).ok_or_else(|| Reply::err("syncid not found"))?;
    if sess.phase != Phase::Preparation {
        return Err(Reply::err("invalid state"));
    }
    sess.flows[idx as usize] = Some(FlowSlot {
        conn,
        token: token.clone(),
        partial_from,
        subscribed: false,
        queue: VecDeque::new(),
        remaining: Default::default(),
        snapshotting: false,
        fullsync_end_sent: false,
        notify: Arc::new(Notify::new()),
        acks: Vec::new(),
        bytes_sent: 0,
        records_sent: 0,
    });
    let kind = if partial_from.is_some() { "PARTIAL" } else { "FULL" };
    Ok(Outcome::BecomeFlow(Reply::Array(Some(vec![Reply::Simple(kind.into()), Reply::Simple(token)])), sid, idx))
}

fn sync(st: &mut State, a: &[Bytes]) -> Result<Reply, Reply> {
    let [id] = a else { return Err(syntax()) };
    let rel = st.cfg.release;
    let sess = session_of(st, id)?;
    let sid = sess.id;
    if sess.phase != Phase::Preparation || sess.flows.iter().any(Option::is_none) {
        return Err(Reply::err("invalid state"));
    }
    let any_partial = sess.flows.iter().flatten().any(|f| f.partial_from.is_some());
    if any_partial && rel.sync_rejects_partial() {
        return Err(Reply::err("invalid state"));
    }
    st.activate_journals();
    let shards = st.shards();
    let incremental = matches!(rel.partial_sync(), PartialSync::IncrementalSnapshot | PartialSync::LastMasterOnly);
    let now = st.cfg.clock.now_ms();
    let mut cuts = st.data.shard_cuts(shards).into_iter();
    for idx in 0..shards {
        let backlog: Vec<_> = st.journals[idx as usize].backlog.iter().cloned().collect();
        let cut = cuts.next().unwrap_or_default();
        let Some(Some(slot)) = st.sessions.get_mut(&sid).map(|s| &mut s.flows[idx as usize]) else {
            continue;
        };
        slot.queue.push_back(FlowMsg::StartRdb);
        match slot.partial_from {
            Some(from) if incremental => {
                for (lsn, rec) in backlog.into_iter().filter(|(l, _)| *l >= from) {
                    slot.queue.push_back(FlowMsg::Record(lsn, rec, now));
                }
            }
            _ => {
                // v1.35–v1.39 start a full snapshot on PARTIAL flows when DFLY SYNC is sent anyway.
                slot.partial_from = None;
                slot.remaining = cut;
            }
        }
        slot.snapshotting = true;
        slot.subscribed = true;
        slot.notify.notify_one();
    }
    if let Some(s) = st.sessions.get_mut(&sid) {
        s.phase = Phase::FullSync;
    }
    run_live_writes(st, WritePhase::FullSync);
    Ok(Reply::ok())
}

/// Checks a STARTSTABLE; `Ok(Some(sid))` = wait for FULLSYNC_END on every flow, `Ok(None)` =
/// done (direct partial sync started).
fn startstable_check(st: &mut State, a: &[Bytes]) -> Result<Option<u64>, Reply> {
    let [id] = a else { return Err(syntax()) };
    let rel = st.cfg.release;
    let sess = session_of(st, id)?;
    let sid = sess.id;
    if sess.flows.iter().any(Option::is_none) {
        return Err(Reply::err("invalid state"));
    }
    match sess.phase {
        Phase::FullSync => Ok(Some(sid)),
        Phase::Preparation => {
            let all_partial = sess.flows.iter().flatten().all(|f| f.partial_from.is_some());
            if !all_partial || rel.partial_sync() != PartialSync::Direct {
                return Err(Reply::err("invalid state"));
            }
            let shards = st.shards();
            let now = st.cfg.clock.now_ms();
            for idx in 0..shards {
                let backlog: Vec<_> = st.journals[idx as usize].backlog.iter().cloned().collect();
                let Some(Some(slot)) = st.sessions.get_mut(&sid).map(|s| &mut s.flows[idx as usize]) else {
                    continue;
                };
                let from = slot.partial_from.unwrap_or(0);
                slot.queue.push_back(FlowMsg::Direct);
                for (lsn, rec) in backlog.into_iter().filter(|(l, _)| *l >= from) {
                    slot.queue.push_back(FlowMsg::Record(lsn, rec, now));
                }
                slot.subscribed = true;
                slot.notify.notify_one();
            }
            if let Some(s) = st.sessions.get_mut(&sid) {
                s.phase = Phase::StableSync;
            }
            run_live_writes(st, WritePhase::StableSync);
            Ok(None)
        }
        Phase::StableSync => Err(Reply::err("invalid state")),
    }
}

/// Whether every flow of `sid` wrote FULLSYNC_END (`None`: the session is gone).
pub fn all_fullsync_ended(st: &State, sid: u64) -> Option<bool> {
    let s = st.sessions.get(&sid)?;
    Some(s.flows.iter().all(|f| f.as_ref().is_some_and(|f| f.fullsync_end_sent)))
}

/// Second half of STARTSTABLE, under the lock once every flow ended its snapshot.
pub fn finish_startstable(st: &mut State, sid: u64) -> Reply {
    let shards = st.shards();
    let Some(s) = st.sessions.get(&sid) else {
        return Reply::err("syncid not found");
    };
    if s.phase != Phase::FullSync {
        return Reply::err("invalid state");
    }
    for idx in 0..shards {
        let next = st.journals[idx as usize].next_lsn;
        if let Some(Some(slot)) = st.sessions.get_mut(&sid).map(|s| &mut s.flows[idx as usize]) {
            slot.queue.push_back(FlowMsg::Stable(next));
            slot.snapshotting = false;
            slot.notify.notify_one();
        }
    }
    if let Some(s) = st.sessions.get_mut(&sid) {
        s.phase = Phase::StableSync;
    }
    run_live_writes(st, WritePhase::StableSync);
    Reply::ok()
}

/// Runs the configured live writes of `phase` once (first session only).
pub fn run_live_writes(st: &mut State, phase: WritePhase) {
    let i = match phase {
        WritePhase::FullSync => 0,
        WritePhase::StableSync => 1,
    };
    if st.writes_run[i] {
        return;
    }
    st.writes_run[i] = true;
    let writes: Vec<_> = st.cfg.writes.iter().filter(|w| w.phase == phase).cloned().collect();
    for w in writes {
        let mut client = crate::commands::Client::on(w.db);
        let args: Vec<Bytes> = w.command.iter().map(|s| Bytes::from(s.clone())).collect();
        crate::commands::execute(st, &mut client, &args);
    }
}

/// `INFO [section]`
pub fn info(st: &State, a: &[Bytes], port: u16) -> Reply {
    let want = |s: &str| a.is_empty() || a.iter().any(|x| eq(x, s) || eq(x, "all") || eq(x, "everything"));
    let mut out = String::new();
    if want("server") {
        out.push_str(&format!(
            "# Server\r\nredis_version:7.4.0\r\ndragonfly_version:{}\r\nredis_mode:standalone\r\narch_bits:64\r\nos:mock-master\r\nthread_count:{}\r\ntcp_port:{port}\r\nuptime_in_seconds:1\r\nuptime_in_days:0\r\n",
            st.cfg.release.df_ver(),
            st.shards()
        ));
    }
    if want("replication") {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let offsets = st.offsets();
        let live: Vec<&Session> = st.sessions.values().filter(|s| s.flows.iter().all(Option::is_some)).collect();
        out.push_str(&format!("# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n", live.len()));
        for (i, s) in live.iter().enumerate() {
            let state = match s.phase {
                Phase::Preparation => "preparation",
                Phase::FullSync => "full_sync",
                Phase::StableSync => st.cfg.release.stable_state_name(),
            };
            let lag = s
                .flows
                .iter()
                .enumerate()
                .map(|(k, f)| {
                    let acked = f.as_ref().and_then(|f| f.acks.last().copied()).unwrap_or(0);
                    offsets.get(k).copied().unwrap_or(0).saturating_sub(acked)
                })
                .max()
                .unwrap_or(0);
            let ip = s.announced_ip.clone().unwrap_or_else(|| s.peer_ip.clone());
            out.push_str(&format!(
                "slave{i}:ip={ip},port={},state={state},lag={lag}\r\n",
                s.listening_port.unwrap_or(0)
            ));
        }
        out.push_str(&format!("master_replid:{}\r\n", st.master_id));
    }
    if want("keyspace") {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str("# Keyspace\r\n");
        let now = st.cfg.clock.now_ms();
        for db in 0..st.data.db_count() {
            let Some(m) = st.data.db(db) else { continue };
            let live: Vec<_> = m.values().filter(|e| !e.expired(now)).collect();
            if !live.is_empty() {
                let expires = live.iter().filter(|e| e.expire_ms.is_some()).count();
                out.push_str(&format!("db{db}:keys={},expires={expires},avg_ttl=0\r\n", live.len()));
            }
        }
    }
    Reply::bulk(out)
}
