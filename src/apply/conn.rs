//! A pipelined connection to the target: commands are encoded into one buffer and written in
//! large writes while a reader task matches replies, in order, to sealed batches. Many
//! batches are in flight; a batch's tag (the LSN it completes, or a reply channel) resolves
//! only when every reply of it arrived and none was an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::policy::ConflictPolicy;
use super::{Args, Check, DbCmd};
use crate::resp::{DecodeLimits, Decoder};

/// Encodes one command as a RESP array of bulk strings (the project's one RESP encoder).
pub use crate::resp::encode_command as encode;
/// A reply frame (the project's one RESP value type).
pub use crate::resp::Frame;

/// Target connection failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipeError {
    /// Socket.
    #[error("target {addr}: {detail}")]
    Io {
        /// Address.
        addr: String,
        /// Cause.
        detail: String,
    },
    /// The target answered an error to a command that must succeed.
    #[error("target rejected `{command}`: {message}")]
    Rejected {
        /// Command (name and key, lossy).
        command: String,
        /// The error reply.
        message: String,
    },
    /// A key of the full sync already existed and the conflict policy is `panic`.
    #[error("key {0:?} already exists on the target (conflict policy: panic)")]
    Conflict(String),
    /// The connection was closed by an earlier failure.
    #[error("target connection closed: {0}")]
    Closed(String),
}

/// What a sealed batch resolves when it completes.
#[derive(Debug)]
pub enum Tag {
    /// Nothing.
    None,
    /// Publish this value as the confirmed next LSN.
    Lsn(u64),
    /// Send the replies (or the failure) here.
    Reply(oneshot::Sender<Result<Vec<Frame>, PipeError>>),
}

#[derive(Debug)]
struct Batch {
    /// Reply count.
    n: usize,
    /// Name and first argument of the commands, kept only for error messages (made text only
    /// then): (index, name, first argument).
    names: Vec<(usize, Bytes, Option<Bytes>)>,
    /// Replies that may signal "key existed": (index, key).
    conflicts: Vec<(usize, Bytes)>,
    tag: Tag,
}

/// Counters shared with the reader task.
#[derive(Debug, Default)]
pub struct PipeStats {
    /// Commands written.
    pub commands: AtomicU64,
    /// Replies received.
    pub replies: AtomicU64,
    /// Keys left alone because they existed (conflict policy `skip`).
    pub conflicts_skipped: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
}

type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// The writing side (owned by one applier); the reading side runs in its own task.
pub struct Pipe {
    addr: String,
    wr: BoxWrite,
    out: BytesMut,
    cur: Batch,
    exp: mpsc::Sender<Batch>,
    db: Option<u32>,
    failure: Arc<Mutex<Option<PipeError>>>,
    /// Counters.
    pub stats: Arc<PipeStats>,
    confirmed: Arc<watch::Sender<u64>>,
    /// Turns true when the reader failed (an idle writer learns of it without writing).
    dead: watch::Receiver<bool>,
    reader: tokio::task::JoinHandle<()>,
    /// Plain `SET key value` commands gathered into one MSET (see [`Pipe::coalesce_sets`]).
    mset: Mset,
}

/// Consecutive plain `SET key value` commands of one db, not yet encoded.
#[derive(Debug, Default)]
struct Mset {
    /// Most pairs per MSET (0: off).
    max_pairs: usize,
    db: u32,
    /// `MSET k1 v1 k2 v2 …` (empty when nothing is pending).
    args: Vec<Bytes>,
    bytes: usize,
    /// Keys of the current batch's encoded MSETs beyond one per command.
    extra: usize,
}

/// Bytes of keys and values gathered before an MSET is encoded.
const MSET_MAX_BYTES: usize = 64 << 10;

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe").field("addr", &self.addr).field("db", &self.db).finish_non_exhaustive()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn new_batch() -> Batch {
    Batch { n: 0, names: Vec::new(), conflicts: Vec::new(), tag: Tag::None }
}

fn lossy_name(name: &[u8], arg: Option<&Bytes>) -> String {
    let mut s: String = std::iter::once(name)
        .chain(arg.map(|a| &a[..]))
        .map(|a| String::from_utf8_lossy(&a[..a.len().min(64)]).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    s.truncate(160);
    s
}

/// Options of a target connection.
#[derive(Debug, Clone, Default)]
pub struct PipeOptions {
    /// `host:port`.
    pub addr: String,
    /// AUTH username (ACL), if any.
    pub username: Option<String>,
    /// AUTH password, if any (never logged).
    pub password: Option<String>,
    /// Batches in flight before `seal` waits.
    pub max_batches_in_flight: usize,
    /// What conflicting keys do.
    pub conflict: ConflictPolicy,
    /// TLS (`None`: plain TCP).
    pub tls: Option<crate::resp::TlsClient>,
}

/// Bound on TCP connect, and separately on the TLS handshake, of a target/source pipe.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Pipe {
    /// Connects, authenticates, and starts the reply reader.
    pub async fn connect(opts: &PipeOptions) -> Result<Pipe, PipeError> {
        let s = crate::resp::tls::connect(&opts.addr, opts.tls.as_ref(), CONNECT_TIMEOUT)
            .await
            .map_err(|e| PipeError::Io { addr: opts.addr.clone(), detail: e.to_string() })?;
        let (r, w) = s.into_split();
        let mut p =
            Pipe::from_halves(&opts.addr, Box::new(r), Box::new(w), opts.max_batches_in_flight.max(1), opts.conflict);
        if let Some(pw) = &opts.password {
            let mut a = vec![Bytes::from_static(b"AUTH")];
            if let Some(u) = &opts.username {
                a.push(Bytes::from(u.clone()));
            }
            a.push(Bytes::from(pw.clone()));
            p.request(None, a).await.map_err(|e| match e {
                PipeError::Rejected { message, .. } => PipeError::Rejected { command: "AUTH".into(), message },
                e => e,
            })?;
        }
        Ok(p)
    }

    /// Wraps already-connected halves.
    pub fn from_halves(addr: &str, r: BoxRead, w: BoxWrite, max_batches: usize, conflict: ConflictPolicy) -> Pipe {
        let (tx, rx) = mpsc::channel(max_batches);
        let failure = Arc::new(Mutex::new(None));
        let stats = Arc::new(PipeStats::default());
        let confirmed = Arc::new(watch::channel(0u64).0);
        let (dead_tx, dead) = watch::channel(false);
        let reader = tokio::spawn(read_loop(
            addr.to_string(),
            r,
            rx,
            (failure.clone(), dead_tx),
            stats.clone(),
            confirmed.clone(),
            conflict,
        ));
        Pipe {
            addr: addr.to_string(),
            wr: w,
            out: BytesMut::with_capacity(1 << 16),
            cur: new_batch(),
            exp: tx,
            db: None,
            failure,
            stats,
            confirmed,
            dead,
            reader,
            mset: Mset::default(),
        }
    }

    /// Gathers up to `max_pairs` consecutive plain `SET key value` commands (no options, no
    /// conflict check, one db) into one `MSET`, which the target executes as the same
    /// sequence of overwrites (each key's TTL cleared, any type replaced) for about a third
    /// less of its CPU. `0` turns it off. Ordering is unchanged: any other command, a seal or
    /// a request first encodes what was gathered.
    pub fn coalesce_sets(&mut self, max_pairs: usize) {
        self.flush_mset();
        self.mset.max_pairs = max_pairs;
    }

    /// Gathers `cmd` if it is a plain `SET key value` (handing it back otherwise).
    fn try_gather(&mut self, cmd: DbCmd) -> Option<DbCmd> {
        let m = &self.mset;
        let plain = m.max_pairs != 0
            && cmd.args.len() == 3
            && matches!(cmd.check, Check::Ok)
            && cmd.args[0].eq_ignore_ascii_case(b"SET");
        if !plain {
            return Some(cmd);
        }
        if !m.args.is_empty() && m.db != cmd.db {
            self.flush_mset();
        }
        let m = &mut self.mset;
        if m.args.is_empty() {
            m.args.reserve(1 + 2 * m.max_pairs);
            m.args.push(Bytes::from_static(b"MSET"));
            m.db = cmd.db;
        }
        for a in cmd.args.into_iter().skip(1) {
            m.bytes += a.len();
            m.args.push(a);
        }
        if m.args.len() / 2 >= m.max_pairs || m.bytes >= MSET_MAX_BYTES {
            self.flush_mset();
        }
        None
    }

    /// Encodes the gathered MSET, if any.
    fn flush_mset(&mut self) {
        if self.mset.args.is_empty() {
            return;
        }
        let args = std::mem::take(&mut self.mset.args);
        self.mset.bytes = 0;
        self.mset.extra += args.len() / 2 - 1;
        self.select(self.mset.db);
        self.push_args(&args, None);
    }

    /// The target address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The watch that carries the last confirmed LSN tag.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.confirmed.subscribe()
    }

    /// The failure that closed the connection, if any.
    pub fn failure(&self) -> Option<PipeError> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resolves with the failure once the connection failed (replies are read even while no
    /// command is being written, so an error reply to an earlier batch surfaces here).
    pub fn failed(&self) -> impl std::future::Future<Output = PipeError> + Send + 'static {
        let (mut d, failure) = (self.dead.clone(), self.failure.clone());
        async move {
            let _ = d.wait_for(|v| *v).await;
            let f = failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
            f.unwrap_or_else(|| PipeError::Closed("reader stopped".into()))
        }
    }

    /// Bytes encoded (or gathered) but not yet written.
    pub fn buffered(&self) -> usize {
        self.out.len() + self.mset.bytes
    }

    /// Commands in the batch being built (an MSET counts its keys).
    pub fn batch_len(&self) -> usize {
        self.cur.n + self.mset.extra + self.mset.args.len() / 2
    }

    /// Forgets the selected db (after a command that may have changed it).
    pub fn reset_db(&mut self) {
        self.db = None;
    }

    fn push_args(&mut self, args: &[Bytes], check: Option<&Check>) {
        if let Some(Check::Conflict(k)) = check {
            self.cur.conflicts.push((self.cur.n, k.clone()));
        }
        if self.cur.names.len() < 4096 {
            self.cur.names.push((self.cur.n, args.first().cloned().unwrap_or_default(), args.get(1).cloned()));
        }
        encode(&mut self.out, args);
        self.cur.n += 1;
    }

    fn select(&mut self, db: u32) {
        if self.db != Some(db) {
            let a = [Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())];
            self.push_args(&a, None);
            self.db = Some(db);
        }
    }

    /// Adds a command to the current batch (with a SELECT first if its db differs).
    pub fn push(&mut self, cmd: &DbCmd) {
        if self.mset.max_pairs != 0 {
            return self.push_owned(cmd.clone());
        }
        self.select(cmd.db);
        self.push_args(&cmd.args, Some(&cmd.check));
    }

    /// [`Self::push`] of a command the pipe may keep (plain SETs are gathered without copies).
    pub fn push_owned(&mut self, cmd: DbCmd) {
        if let Some(cmd) = self.try_gather(cmd) {
            self.flush_mset();
            self.select(cmd.db);
            self.push_args(&cmd.args, Some(&cmd.check));
        }
    }

    /// Adds a command that needs no db (or runs in the current one).
    pub fn push_any_db(&mut self, args: &[Bytes]) {
        self.flush_mset();
        self.push_args(args, None);
    }

    /// Closes the current batch with `tag` (a batch may be empty: its tag resolves when all
    /// earlier batches did). Waits when too many batches are in flight.
    pub async fn seal(&mut self, tag: Tag) -> Result<(), PipeError> {
        self.flush_mset();
        self.mset.extra = 0;
        let mut b = std::mem::replace(&mut self.cur, new_batch());
        b.tag = tag;
        self.stats.commands.fetch_add(b.n as u64, Ordering::Relaxed);
        match self.exp.try_send(b) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(b)) => {
                // The reader needs these bytes to finish earlier batches.
                self.flush().await?;
                self.exp.send(b).await.map_err(|_| self.closed())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.closed()),
        }
    }

    fn closed(&self) -> PipeError {
        self.failure().unwrap_or_else(|| PipeError::Closed("reader stopped".into()))
    }

    /// Writes everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), PipeError> {
        if self.out.is_empty() {
            return self.failure().map_or(Ok(()), Err);
        }
        let n = self.out.len();
        // (TLS keeps written bytes in the session until flushed; plain TCP flush is a no-op.)
        let r = match self.wr.write_all(&self.out).await {
            Ok(()) => self.wr.flush().await,
            e => e,
        };
        self.out.clear();
        if self.out.capacity() > 8 << 20 {
            self.out = BytesMut::with_capacity(1 << 16);
        }
        r.map_err(|e| PipeError::Io { addr: self.addr.clone(), detail: e.to_string() })?;
        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        match self.failure() {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Sends one command (in `db`, or the current db) and waits for its reply.
    pub async fn request(&mut self, db: Option<u32>, args: Args) -> Result<Frame, PipeError> {
        self.flush_mset();
        if let Some(db) = db {
            self.select(db);
        }
        self.push_args(&args, None);
        let mut frames = self.round_trip().await?;
        frames.pop().ok_or_else(|| PipeError::Closed("no reply".into()))
    }

    /// Seals the current batch with a reply channel, flushes, and waits for its replies.
    pub async fn round_trip(&mut self) -> Result<Vec<Frame>, PipeError> {
        let (tx, rx) = oneshot::channel();
        self.seal(Tag::Reply(tx)).await?;
        self.flush().await?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Waits until every sealed batch completed (flushes first).
    pub async fn drain(&mut self) -> Result<(), PipeError> {
        self.round_trip().await.map(|_| ())
    }
}

/// Error text of an error frame.
pub fn error_text(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// First error inside a frame (top level or an EXEC array element).
pub fn find_error(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(s) => Some(String::from_utf8_lossy(s).into_owned()),
        Frame::Array(items) => items.iter().find_map(find_error),
        _ => None,
    }
}

fn is_conflict(f: &Frame) -> bool {
    match f {
        Frame::Error(s) => s.starts_with(b"BUSYKEY"),
        Frame::Integer(0) | Frame::Null => true,
        _ => false,
    }
}

async fn read_loop(
    addr: String,
    mut r: BoxRead,
    mut rx: mpsc::Receiver<Batch>,
    (failure, dead): (Arc<Mutex<Option<PipeError>>>, watch::Sender<bool>),
    stats: Arc<PipeStats>,
    confirmed: Arc<watch::Sender<u64>>,
    conflict: ConflictPolicy,
) {
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut dec = Decoder::new(DecodeLimits::default());
    let fail = |e: PipeError, rx: &mut mpsc::Receiver<Batch>, cur: Option<Batch>| {
        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        dead.send_replace(true);
        rx.close();
        for b in cur.into_iter() {
            if let Tag::Reply(tx) = b.tag {
                let _ = tx.send(Err(e.clone()));
            }
        }
        while let Ok(b) = rx.try_recv() {
            if let Tag::Reply(tx) = b.tag {
                let _ = tx.send(Err(e.clone()));
            }
        }
    };
    'batches: while let Some(mut b) = rx.recv().await {
        let want_frames = matches!(b.tag, Tag::Reply(_));
        let mut frames = Vec::new();
        let mut first_error: Option<PipeError> = None;
        let mut ci = 0usize;
        for i in 0..b.n {
            let frame = loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => break f,
                    Ok(None) => {}
                    Err(e) => {
                        let e = PipeError::Io { addr: addr.clone(), detail: format!("bad reply: {e}") };
                        fail(e, &mut rx, Some(b));
                        return;
                    }
                }
                buf.reserve(1 << 16);
                match r.read_buf(&mut buf).await {
                    Ok(0) => {
                        let e = PipeError::Io { addr: addr.clone(), detail: "connection closed by the target".into() };
                        fail(e, &mut rx, Some(b));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        fail(PipeError::Io { addr: addr.clone(), detail: e.to_string() }, &mut rx, Some(b));
                        return;
                    }
                }
            };
            stats.replies.fetch_add(1, Ordering::Relaxed);
            let conflict_key = match b.conflicts.get(ci) {
                Some((idx, k)) if *idx == i => {
                    ci += 1;
                    Some(k.clone())
                }
                _ => None,
            };
            if let Some(k) = conflict_key.filter(|_| is_conflict(&frame)) {
                match conflict {
                    ConflictPolicy::Panic => {
                        first_error.get_or_insert(PipeError::Conflict(String::from_utf8_lossy(&k).into_owned()));
                    }
                    _ => {
                        stats.conflicts_skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else if !want_frames {
                if let Some(msg) = find_error(&frame) {
                    let command = b
                        .names
                        .iter()
                        .find(|(j, _, _)| *j == i)
                        .map(|(_, n, a)| lossy_name(n, a.as_ref()))
                        .unwrap_or_default();
                    first_error.get_or_insert(PipeError::Rejected { command, message: msg });
                }
            }
            if want_frames {
                frames.push(frame);
            }
        }
        if let Some(e) = first_error {
            fail(e, &mut rx, Some(b));
            return;
        }
        match std::mem::replace(&mut b.tag, Tag::None) {
            Tag::None => {}
            Tag::Lsn(l) => {
                confirmed.send_replace(l);
            }
            Tag::Reply(tx) => {
                let _ = tx.send(Ok(frames));
            }
        }
        continue 'batches;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp_arrays() {
        let mut out = BytesMut::new();
        encode(&mut out, &[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::new()]);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    fn set(db: u32, k: &'static str, v: &'static str) -> DbCmd {
        DbCmd::new(
            db,
            vec![Bytes::from_static(b"SET"), Bytes::from_static(k.as_bytes()), Bytes::from_static(v.as_bytes())],
        )
    }

    #[tokio::test]
    async fn plain_sets_are_gathered_into_msets_in_order() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (cr, cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(server);
        let mut p = Pipe::from_halves("test", Box::new(cr), Box::new(cw), 4, ConflictPolicy::Overwrite);
        p.coalesce_sets(2);
        let mut conf = p.confirmed();
        for c in [set(0, "a", "1"), set(0, "b", "2"), set(0, "c", "3"), set(1, "d", "4")] {
            p.push(&c);
        }
        assert_eq!(p.batch_len(), 5, "SELECT 0, MSET a b (2 keys), MSET c, and d gathered");
        // A command with options, another command, or a conflict check ends the gathering.
        p.push(&DbCmd::new(
            1,
            vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"e"),
                Bytes::from_static(b"5"),
                Bytes::from_static(b"NX"),
            ],
        ));
        p.push(&set(1, "f", "6"));
        p.push_any_db(&[Bytes::from_static(b"DEL"), Bytes::from_static(b"x")]);
        p.push(&set(1, "g", "7"));
        assert_eq!(p.batch_len(), 10, "8 commands + g gathered, MSET a b counting 2");
        p.seal(Tag::Lsn(3)).await.unwrap();
        assert_eq!(p.batch_len(), 0);
        p.flush().await.unwrap();
        let want = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n\
                    *5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n\
                    *3\r\n$4\r\nMSET\r\n$1\r\nc\r\n$1\r\n3\r\n\
                    *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n\
                    *3\r\n$4\r\nMSET\r\n$1\r\nd\r\n$1\r\n4\r\n\
                    *4\r\n$3\r\nSET\r\n$1\r\ne\r\n$1\r\n5\r\n$2\r\nNX\r\n\
                    *3\r\n$4\r\nMSET\r\n$1\r\nf\r\n$1\r\n6\r\n\
                    *2\r\n$3\r\nDEL\r\n$1\r\nx\r\n\
                    *3\r\n$4\r\nMSET\r\n$1\r\ng\r\n$1\r\n7\r\n";
        let mut got = vec![0u8; want.len()];
        sr.read_exact(&mut got).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
        // One reply per encoded command (9), and the LSN resolves only after the last one.
        sw.write_all(b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n:1\r\n").await.unwrap();
        assert_eq!(*conf.borrow(), 0);
        sw.write_all(b"+OK\r\n").await.unwrap();
        conf.wait_for(|&l| l == 3).await.unwrap();
        assert_eq!(p.stats.commands.load(Ordering::Relaxed), 9);
    }

    #[tokio::test]
    async fn batches_resolve_in_order_and_errors_close() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (cr, cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(server);
        let mut p = Pipe::from_halves("test", Box::new(cr), Box::new(cw), 4, ConflictPolicy::Skip);
        let mut conf = p.confirmed();
        p.push(&DbCmd::new(0, vec![Bytes::from_static(b"SET"), Bytes::from_static(b"a"), Bytes::from_static(b"1")]));
        p.seal(Tag::Lsn(7)).await.unwrap();
        p.push(&DbCmd {
            db: 0,
            args: vec![Bytes::from_static(b"RENAMENX"), Bytes::from_static(b"t"), Bytes::from_static(b"k")],
            check: Check::Conflict(Bytes::from_static(b"k")),
        });
        p.seal(Tag::Lsn(9)).await.unwrap();
        p.flush().await.unwrap();
        let mut got = vec![0u8; 256];
        let n = sr.read(&mut got).await.unwrap();
        assert!(got[..n].starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET"));
        sw.write_all(b"+OK\r\n+OK\r\n:0\r\n").await.unwrap();
        conf.wait_for(|&l| l == 9).await.unwrap();
        assert_eq!(p.stats.conflicts_skipped.load(Ordering::Relaxed), 1);
        // An error reply fails the connection and never confirms its LSN.
        p.push_any_db(&[Bytes::from_static(b"INCR"), Bytes::from_static(b"a")]);
        p.seal(Tag::Lsn(10)).await.unwrap();
        p.flush().await.unwrap();
        sw.write_all(b"-ERR not an integer\r\n").await.unwrap();
        let r = p.drain().await;
        assert!(matches!(r, Err(PipeError::Rejected { .. })), "{r:?}");
        assert_eq!(*conf.borrow(), 9);
    }
}
