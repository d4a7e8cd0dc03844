//! Redis Cluster discovery: is the target a cluster (`INFO cluster` → `cluster_enabled:1`), and
//! its topology from any reachable seed (`CLUSTER SHARDS`, `CLUSTER SLOTS` on servers older than
//! 7.0). Nodes that do not know their own host (`:7001`) get the host the seed was reached on.

use std::time::Duration;

use crate::resp::{Auth, Cmd, ConnectOptions, Connection, Frame};
use crate::target::route::{join_host_port, NodeInfo, SlotMap};

/// Why the topology could not be learnt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TopologyError {
    /// No seed answered.
    #[error("no cluster seed answered ({tried}): {last}")]
    Unreachable {
        /// Seeds tried.
        tried: String,
        /// Last error.
        last: String,
    },
    /// A seed answered with a topology that does not cover every slot.
    #[error("cluster topology from {addr} leaves {unassigned} slots unserved (cluster not ready?)")]
    Incomplete {
        /// Seed.
        addr: String,
        /// Unserved slots.
        unassigned: usize,
    },
}

/// Credentials, TLS and timeouts for the short admin connections used here.
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    /// ACL user.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<String>,
    /// TLS (`None`: plain TCP).
    pub tls: Option<crate::resp::TlsClient>,
}

impl AdminAuth {
    /// Connection options for an admin connection.
    pub fn options(&self) -> ConnectOptions {
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some(Auth::User { user: u.clone(), password: p.clone() }),
            (None, Some(p)) => Some(Auth::Password(p.clone())),
            _ => None,
        };
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(10)),
            auth,
            tls: self.tls.clone(),
            ..ConnectOptions::default()
        }
    }
}

/// Standalone or cluster target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetMode {
    /// Ask the target (`INFO cluster`).
    #[default]
    Auto,
    /// A single Redis.
    Standalone,
    /// A Redis Cluster.
    Cluster,
}

/// Cluster-target options as configured (resolved against the live cluster at start).
#[derive(Debug, Clone, Default)]
pub struct ClusterOpts {
    /// `target.type`.
    pub mode: TargetMode,
    /// `target.cluster.seeds` (the target address first).
    pub seeds: Vec<String>,
    /// Replicas a batch must reach before its LSN counts: `None` = 1 when every master has a
    /// replica, else 0.
    pub wait_replicas: Option<u32>,
    /// `WAIT` timeout in ms (0: 1000).
    pub wait_timeout_ms: u64,
    /// Commands with no cluster form.
    pub cross_slot: super::sink::CrossSlotPolicy,
}

/// Whether `addr` runs with `cluster-enabled yes` (`INFO cluster`).
pub async fn is_cluster(addr: &str, auth: &AdminAuth) -> Result<bool, String> {
    let mut c = Connection::connect(addr, &auth.options()).await.map_err(|e| e.to_string())?;
    let f = c.request(&Cmd::new("INFO").arg("cluster")).await.map_err(|e| e.to_string())?;
    Ok(f.to_string_lossy().lines().any(|l| l.trim() == "cluster_enabled:1"))
}

fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    }
}

/// Fills empty hosts (a node that does not know its address) with the seed's host.
fn fix_hosts(map: &mut SlotMap, seed: &str) {
    let host = host_of(seed).trim_start_matches('[').trim_end_matches(']').to_owned();
    let fix = |a: &mut String| {
        if a.starts_with(':') {
            if let Ok(port) = a[1..].parse::<u16>() {
                *a = join_host_port(&host, port);
            }
        }
    };
    map.rewrite_addrs(fix);
}

/// The slot map as `addr` reports it.
pub async fn slot_map_from(addr: &str, auth: &AdminAuth) -> Result<SlotMap, String> {
    let mut c = Connection::connect(addr, &auth.options()).await.map_err(|e| e.to_string())?;
    let shards = c.request(&Cmd::new("CLUSTER").arg("SHARDS")).await;
    let mut map = match shards {
        Ok(f @ Frame::Array(_)) => {
            SlotMap::from_cluster_shards_for(&f, auth.tls.is_some()).map_err(|e| e.to_string())?
        }
        _ => {
            let f = c.request(&Cmd::new("CLUSTER").arg("SLOTS")).await.map_err(|e| e.to_string())?;
            if let Frame::Error(e) = &f {
                return Err(String::from_utf8_lossy(e).into_owned());
            }
            SlotMap::from_cluster_slots(&f).map_err(|e| e.to_string())?
        }
    };
    fix_hosts(&mut map, addr);
    Ok(map)
}

/// The topology from the first seed that answers with a complete map.
pub async fn discover(seeds: &[String], auth: &AdminAuth) -> Result<SlotMap, TopologyError> {
    let mut last = String::from("no seeds");
    let mut incomplete = None;
    for s in seeds {
        match slot_map_from(s, auth).await {
            Ok(m) if m.is_complete() => return Ok(m),
            Ok(m) => incomplete = Some(TopologyError::Incomplete { addr: s.clone(), unassigned: m.unassigned() }),
            Err(e) => last = format!("{s}: {e}"),
        }
    }
    Err(incomplete.unwrap_or(TopologyError::Unreachable { tried: seeds.join(", "), last }))
}

/// Every address worth asking for the topology: the known masters, their replicas, the seeds.
pub fn refresh_candidates(map: &SlotMap, seeds: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        if !a.is_empty() && !out.iter().any(|x| x == a) {
            out.push(a.to_owned());
        }
    };
    for NodeInfo { addr, replicas, .. } in map.nodes() {
        add(addr);
        for r in replicas {
            add(r);
        }
    }
    for s in seeds {
        add(s);
    }
    out
}

/// The masters that own at least one slot.
pub fn serving_masters(map: &SlotMap) -> Vec<String> {
    let mut used = vec![false; map.nodes().len()];
    for (_, _, n) in map.ranges() {
        used[n] = true;
    }
    map.nodes().iter().zip(used).filter(|(_, u)| *u).map(|(n, _)| n.addr.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_candidates() {
        let mut m = SlotMap::new();
        let a = m.add_node(":7001");
        let b2 = m.add_node("10.0.0.2:7002");
        m.assign(0..=100, a);
        m.assign(101..=16383, b2);
        fix_hosts(&mut m, "10.0.0.9:7000");
        assert_eq!(m.nodes()[0].addr, "10.0.0.9:7001");
        assert_eq!(serving_masters(&m), vec!["10.0.0.9:7001".to_owned(), "10.0.0.2:7002".to_owned()]);
        let c = refresh_candidates(&m, &["s:1".to_owned(), "10.0.0.2:7002".to_owned()]);
        assert_eq!(c, vec!["10.0.0.9:7001", "10.0.0.2:7002", "s:1"]);
        assert_eq!(host_of("[::1]:7"), "[::1]");
    }
}
