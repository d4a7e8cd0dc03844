//! df2redis: replicate a live Dragonfly deployment into Redis or Redis Cluster, and verify the copy.
//!
//! The crate is layered (see `docs/ARCHITECTURE.md`): [`proto`] is the sans-IO codec for
//! Dragonfly's replication stream (RDB dialect + journal); everything that does I/O sits above it.

pub mod apply;
pub mod checkpoint;
pub mod config;
pub mod progress;
pub mod proto;
pub mod replica;
pub mod replicate;
pub mod resp;
pub mod status;
pub mod target;
pub mod testkit;
pub mod verify;
