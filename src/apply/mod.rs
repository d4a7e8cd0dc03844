//! Turning decoded Dragonfly events into Redis commands and applying them to the target.
//!
//! Data flows one way: decoded flow events → [`entry`] (full-sync key entries → RESTORE or
//! native commands, big values through a temporary key) and [`rewrite`] (journal records →
//! Redis commands, per the documented [`policy`] table) → [`conn`] (pipelined target
//! connection, many commands in flight, replies matched in order) → confirmed LSNs. The
//! [`flow`] module drives that for one replication flow; [`barrier`] coordinates the global
//! commands (FLUSHALL/FLUSHDB) across flows.

pub mod barrier;
pub mod caps;
pub mod conn;
pub mod entry;
pub mod flow;
pub mod native;
pub mod policy;
pub mod rewrite;

use bytes::Bytes;

/// One Redis command: name and arguments, binary-safe.
pub type Args = Vec<Bytes>;

/// Builds an [`Args`] from anything byte-like.
pub fn args<I, T>(items: I) -> Args
where
    I: IntoIterator<Item = T>,
    T: Into<Bytes>,
{
    items.into_iter().map(Into::into).collect()
}

/// How a command's reply is judged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Check {
    /// Any non-error reply is success (errors inside an EXEC array count as errors).
    #[default]
    Ok,
    /// A write that refuses to replace an existing key: `-BUSYKEY`, `:0` or nil mean the key
    /// already existed on the target (handled per the conflict policy).
    Conflict(Bytes),
}

/// A command bound to a (target) database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbCmd {
    /// Target database (after db mapping).
    pub db: u32,
    /// The command.
    pub args: Args,
    /// How to judge its reply.
    pub check: Check,
}

impl DbCmd {
    /// A command whose reply only has to be a non-error.
    pub fn new(db: u32, args: Args) -> Self {
        DbCmd { db, args, check: Check::Ok }
    }
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
