//! Where writes go: Redis standalone or Redis Cluster. [`route`] maps keys to hash slots and
//! slots to nodes (pure, no I/O).

pub mod route;
