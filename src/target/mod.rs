//! Where writes go: Redis standalone or Redis Cluster. [`route`] maps keys to hash slots and
//! slots to nodes (pure, no I/O); [`split`] plans multi-key commands for a cluster (pure);
//! [`cluster`] discovers the topology; [`node`] is one pipelined connection to a master;
//! [`sink`] is the writer a flow applies through (standalone pipe or routing cluster sink).

pub mod cluster;
pub mod marker;
pub mod node;
pub mod route;
pub mod sink;
pub mod split;

pub use node::ClusterCounters;
pub use sink::{ClusterSettings, ClusterSink, CrossSlotPolicy, Sink};
