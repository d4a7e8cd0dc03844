//! `RedisCluster`: N real cluster-enabled `redis-server`s joined with `redis-cli --cluster create`,
//! plus topology helpers (nodes, failover, slot migration) for tests.

use super::server::{RedisServer, ServerOptions};
use super::{command, wait_for, Result, TestkitError, CLUSTER_TIMEOUT};
use crate::resp::{Cmd, Frame};
use crate::target::route::SlotMap;

/// A node as `CLUSTER NODES` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// Node id.
    pub id: String,
    /// `host:port` (client port).
    pub addr: String,
    /// Whether it is a master (else a replica).
    pub master: bool,
    /// For a replica, its master's id.
    pub master_id: Option<String>,
    /// Owned slot ranges (inclusive).
    pub slots: Vec<(u16, u16)>,
    /// Flagged `fail` or `fail?`.
    pub failing: bool,
}

/// A running cluster. Every process it started is killed when dropped; nodes it was handed
/// ([`RedisCluster::form`], e.g. containers) are their owner's.
#[derive(Debug)]
pub struct RedisCluster {
    servers: Vec<RedisServer>,
    addrs: Vec<String>,
    replicas_per_master: usize,
}

impl RedisCluster {
    /// Start `masters` masters with `replicas_per_master` replicas each, form the cluster, and
    /// wait until every node reports `cluster_state:ok` and every replica is in sync.
    pub async fn start(masters: usize, replicas_per_master: usize) -> Result<RedisCluster> {
        RedisCluster::start_with(masters, replicas_per_master, ServerOptions::default()).await
    }

    /// [`RedisCluster::start`] with options for every node (`cluster` is forced on). With
    /// `tls`, the nodes serve TLS only, the bus and replication run over TLS, and the cluster is
    /// formed with `redis-cli --tls`.
    pub async fn start_with(masters: usize, replicas_per_master: usize, opts: ServerOptions) -> Result<RedisCluster> {
        if masters < 3 {
            return Err(TestkitError::Failed("redis-cli --cluster create needs at least 3 masters".into()));
        }
        let total = masters * (1 + replicas_per_master);
        let mut servers = Vec::with_capacity(total);
        for _ in 0..total {
            servers.push(RedisServer::start_with(ServerOptions { cluster: true, ..opts.clone() }).await?);
        }
        let addrs = servers.iter().map(|s| s.addr().to_owned()).collect();
        let mut cli: Vec<String> = Vec::new();
        if let Some(t) = &opts.tls {
            cli.extend(["--tls".into(), "--cacert".into(), t.ca_file.display().to_string()]);
            if let Some((c, k)) = &t.client_cert {
                cli.extend(["--cert".into(), c.display().to_string(), "--key".into(), k.display().to_string()]);
            }
        }
        RedisCluster::create(servers, addrs, replicas_per_master, &cli).await
    }

    /// Form a cluster of already running cluster-enabled nodes (`addrs`, `3 × (1 + replicas)` of
    /// them, reachable from here and from each other at those addresses) and wait until healthy.
    pub async fn form(addrs: Vec<String>, replicas_per_master: usize) -> Result<RedisCluster> {
        RedisCluster::create(Vec::new(), addrs, replicas_per_master, &[]).await
    }

    async fn create(
        servers: Vec<RedisServer>,
        addrs: Vec<String>,
        replicas_per_master: usize,
        cli_args: &[String],
    ) -> Result<RedisCluster> {
        let out = tokio::process::Command::new("redis-cli")
            .args(cli_args)
            .arg("--cluster")
            .arg("create")
            .args(addrs.iter())
            .arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes")
            .stdin(std::process::Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            return Err(TestkitError::Failed(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let cluster = RedisCluster { servers, addrs, replicas_per_master };
        cluster.wait_healthy().await?;
        Ok(cluster)
    }

    /// Every server process this cluster started (masters and replicas, in start order; roles
    /// change on failover); empty for a [`RedisCluster::form`]ed one.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// Every node's address (masters and replicas; a crashed one is removed).
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Replicas per master as started.
    pub fn replicas_per_master(&self) -> usize {
        self.replicas_per_master
    }

    /// A seed address.
    pub fn seed(&self) -> &str {
        &self.addrs[0]
    }

    /// The topology as the first node sees it.
    pub async fn nodes(&self) -> Result<Vec<ClusterNode>> {
        nodes_seen_by(self.seed()).await
    }

    /// Current masters (owning slots or not).
    pub async fn masters(&self) -> Result<Vec<ClusterNode>> {
        Ok(self.nodes().await?.into_iter().filter(|n| n.master).collect())
    }

    /// The slot map as the seed node reports it (`CLUSTER SHARDS`).
    pub async fn slot_map(&self) -> Result<SlotMap> {
        let reply = command(self.seed(), None, &Cmd::new("CLUSTER").arg("SHARDS")).await?;
        SlotMap::from_cluster_shards_for(&reply, super::tls_for(self.seed()).is_some())
            .map_err(|e| TestkitError::Failed(e.to_string()))
    }

    /// `FLUSHALL` on every master, then wait until replicas applied it.
    pub async fn flushall(&self) -> Result<()> {
        for m in self.masters().await? {
            command(&m.addr, None, &Cmd::new("FLUSHALL")).await?;
            if self.replicas_per_master > 0 {
                command(&m.addr, None, &Cmd::new("WAIT").arg(self.replicas_per_master).arg(5000)).await?;
            }
        }
        Ok(())
    }

    /// Fail `master_addr` over to one of its replicas (`CLUSTER FAILOVER` on the replica) and wait
    /// until the roles flipped everywhere and the cluster is healthy. Returns the new master's address.
    pub async fn failover(&self, master_addr: &str) -> Result<String> {
        let nodes = self.nodes().await?;
        let master = nodes
            .iter()
            .find(|n| n.addr == master_addr && n.master)
            .ok_or_else(|| TestkitError::Failed(format!("{master_addr} is not a master")))?;
        let replica = nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(&master.id))
            .ok_or_else(|| TestkitError::Failed(format!("{master_addr} has no replica")))?
            .clone();
        command(&replica.addr, None, &Cmd::new("CLUSTER").arg("FAILOVER")).await?;
        let (old, new) = (master.addr.clone(), replica.addr.clone());
        wait_for("failover roles to flip", CLUSTER_TIMEOUT, || {
            let (old, new) = (old.clone(), new.clone());
            let addrs: Vec<String> = self.addrs.clone();
            async move {
                for a in &addrs {
                    let view = nodes_seen_by(a).await?;
                    let flipped = view.iter().any(|n| n.addr == new && n.master)
                        && view.iter().any(|n| n.addr == old && !n.master);
                    if !flipped {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            }
        })
        .await?;
        self.wait_healthy().await?;
        Ok(new)
    }

    /// Kill master `master_addr` (SIGKILL, no failover handshake) and wait until its replica
    /// was elected in its place and every surviving node reports `cluster_state:ok` with all
    /// slots served. Returns the new master's address. The dead node stays out.
    pub async fn crash_master(&mut self, master_addr: &str) -> Result<String> {
        let nodes = self.nodes().await?;
        let master = nodes
            .iter()
            .find(|n| n.addr == master_addr && n.master)
            .ok_or_else(|| TestkitError::Failed(format!("{master_addr} is not a master")))?
            .clone();
        let replica = nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(&master.id))
            .ok_or_else(|| TestkitError::Failed(format!("{master_addr} has no replica")))?
            .clone();
        let i = self
            .servers
            .iter()
            .position(|s| s.addr() == master_addr)
            .ok_or_else(|| TestkitError::Failed(format!("{master_addr} is not one of this cluster's servers")))?;
        let mut dead = self.servers.remove(i);
        dead.kill();
        self.addrs.retain(|a| a != master_addr);
        let live = self.addrs.clone();
        let new = replica.addr.clone();
        wait_for("the replica of the crashed master to serve its slots everywhere", CLUSTER_TIMEOUT, || {
            let (live, new) = (live.clone(), new.clone());
            async move {
                for a in &live {
                    let info = command(a, None, &Cmd::new("CLUSTER").arg("INFO")).await?.to_string_lossy();
                    if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_assigned:16384") {
                        return Ok(None);
                    }
                    let view = nodes_seen_by(a).await?;
                    if !view.iter().any(|n| n.addr == new && n.master && !n.slots.is_empty()) {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            }
        })
        .await?;
        Ok(new)
    }

    /// Move `slot` from master `from` to master `to` the way `redis-cli --cluster reshard` does:
    /// SETSLOT IMPORTING / MIGRATING, MIGRATE every key, SETSLOT NODE on all masters; then wait
    /// until every node agrees.
    pub async fn migrate_slot(&self, slot: u16, from: &str, to: &str) -> Result<()> {
        let myid = |addr: String| async move {
            let f = command(&addr, None, &Cmd::new("CLUSTER").arg("MYID")).await?;
            Ok::<_, TestkitError>(f.to_string_lossy())
        };
        let from_id = myid(from.to_owned()).await?;
        let to_id = myid(to.to_owned()).await?;
        command(to, None, &Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(from_id.as_str())).await?;
        command(from, None, &Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(to_id.as_str())).await?;
        let (host, port) = to.rsplit_once(':').ok_or_else(|| TestkitError::Failed(format!("bad address {to}")))?;
        loop {
            let keys = command(from, None, &Cmd::new("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(1000)).await?;
            let keys: Vec<bytes::Bytes> =
                keys.into_array().unwrap_or_default().iter().filter_map(Frame::to_bytes).collect();
            if keys.is_empty() {
                break;
            }
            let cmd = Cmd::new("MIGRATE").arg(host).arg(port).arg("").arg(0).arg(10_000).arg("REPLACE").arg("KEYS");
            command(from, None, &cmd.args(keys.iter())).await?;
        }
        let masters = self.masters().await?;
        let mut order: Vec<String> = vec![to.to_owned(), from.to_owned()];
        order.extend(masters.iter().map(|m| m.addr.clone()).filter(|a| a != to && a != from));
        for addr in &order {
            command(addr, None, &Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(to_id.as_str())).await?;
        }
        let addrs: Vec<String> = self.addrs.clone();
        let to = to.to_owned();
        wait_for("slot migration to be seen by every node", CLUSTER_TIMEOUT, || {
            let (addrs, to) = (addrs.clone(), to.clone());
            async move {
                for a in &addrs {
                    let reply = command(a, None, &Cmd::new("CLUSTER").arg("SLOTS")).await?;
                    let map = SlotMap::from_cluster_slots(&reply).map_err(|e| TestkitError::Failed(e.to_string()))?;
                    let owner = map.node_of_slot(slot).and_then(|i| map.nodes().get(i)).map(|n| n.addr.as_str());
                    if owner != Some(to.as_str()) {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            }
        })
        .await
    }

    /// Wait until every node reports `cluster_state:ok` with all slots assigned and every replica
    /// has its master link up.
    pub async fn wait_healthy(&self) -> Result<()> {
        let addrs: Vec<String> = self.addrs.clone();
        let total = addrs.len();
        wait_for("cluster_state:ok on every node", CLUSTER_TIMEOUT, || {
            let addrs = addrs.clone();
            async move {
                for a in &addrs {
                    let info = command(a, None, &Cmd::new("CLUSTER").arg("INFO")).await?.to_string_lossy();
                    let ok = info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_assigned:16384")
                        && info.contains(&format!("cluster_known_nodes:{total}\r"));
                    if !ok {
                        return Ok(None);
                    }
                    let repl = command(a, None, &Cmd::new("INFO").arg("replication")).await?.to_string_lossy();
                    if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            }
        })
        .await
    }
}

/// Parse `CLUSTER NODES` as seen by `addr`.
pub async fn nodes_seen_by(addr: &str) -> Result<Vec<ClusterNode>> {
    let text = command(addr, None, &Cmd::new("CLUSTER").arg("NODES")).await?.to_string_lossy();
    parse_cluster_nodes(&text, addr)
}

fn parse_cluster_nodes(text: &str, seen_by: &str) -> Result<Vec<ClusterNode>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 8 {
            return Err(TestkitError::Failed(format!("odd CLUSTER NODES line {line:?}")));
        }
        let mut addr = f[1].split(['@', ',']).next().unwrap_or_default().to_owned();
        if addr.starts_with(':') {
            // A node that does not know its own IP yet: it is the one we asked.
            addr = seen_by.to_owned();
        }
        let flags: Vec<&str> = f[2].split(',').collect();
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue;
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                slots.push((a, b));
            }
        }
        out.push(ClusterNode {
            id: f[0].to_owned(),
            addr,
            master: flags.contains(&"master"),
            master_id: (f[3] != "-").then(|| f[3].to_owned()),
            slots,
            failing: flags.iter().any(|fl| fl.starts_with("fail")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]\n\
                    b2 127.0.0.1:7001@17001,host master - 0 0 2 connected 5461 5462-10922\n\
                    c3 127.0.0.1:7002@17002 slave,fail? a1 0 0 1 connected\n";
        let n = parse_cluster_nodes(text, "127.0.0.1:7000").unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].slots, vec![(0, 5460)]);
        assert_eq!(n[1].addr, "127.0.0.1:7001");
        assert_eq!(n[1].slots, vec![(5461, 5461), (5462, 10922)]);
        assert!(!n[2].master && n[2].failing);
        assert_eq!(n[2].master_id.as_deref(), Some("a1"));
        assert!(parse_cluster_nodes("bad line", "x").is_err());
    }
}
