//! df2redis: replicate a live Dragonfly deployment into Redis or Redis Cluster, and verify the copy.
//!
//! The crate is layered (see `docs/ARCHITECTURE.md`): [`proto`] is the sans-IO codec for
//! Dragonfly's replication stream (RDB dialect + journal); everything that does I/O sits above it,
//! behind the default `runtime` feature (the fuzz targets build the codec alone).

#[cfg(feature = "runtime")]
pub mod apply;
#[cfg(feature = "runtime")]
pub mod checkpoint;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod progress;
pub mod proto;
#[cfg(feature = "runtime")]
pub mod replica;
#[cfg(feature = "runtime")]
pub mod replicate;
#[cfg(feature = "runtime")]
pub mod resp;
#[cfg(feature = "runtime")]
pub mod status;
#[cfg(feature = "runtime")]
pub mod target;
#[cfg(feature = "runtime")]
pub mod testkit;
#[cfg(feature = "runtime")]
pub mod verify;
