//! `df2redis verify` (alias `check`): a differential consistency checker between a source
//! (Dragonfly or any Redis-protocol server) and a target (Redis standalone or Cluster).
//!
//! Layers: [`model`] (what a key looks like on one side), [`digest`] and [`diff`] (comparison),
//! [`store`] (the read operations a side offers), [`bigkey`] (chunked comparison), [`engine`]
//! (a pass over the keyspace, both directions), [`rounds`] (re-checks), [`report`] (human and
//! JSON output), [`cli`] (the subcommand).

pub mod bigkey;
pub mod diff;
pub mod digest;
pub mod engine;
pub mod glob;
pub mod model;
pub mod progress;
pub mod ratelimit;
pub mod store;

#[cfg(test)]
mod fake;

pub use diff::{Diff, DiffKind, Summary};
pub use engine::{Engine, EngineError, Settings};
pub use model::{Content, Depth, KeyState, KeyType, ValueState};
pub use store::{Store, StoreError};
