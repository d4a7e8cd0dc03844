//! Redis Cluster routing, pure: key → hash slot (CRC16-XMODEM with `{hash tags}`), slot → node
//! (`SlotMap` from `CLUSTER SHARDS` / `CLUSTER SLOTS` replies), and grouping keys by slot or node.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use crc::{Crc, Table, CRC_16_XMODEM};

use crate::resp::Frame;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);
const UNASSIGNED: u16 = u16::MAX;

/// CRC16-XMODEM, the checksum Redis Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// The part of `key` that is hashed: the content of the first `{...}` if it is non-empty (first
/// `{`, then the first `}` after it), else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        let after = &key[open + 1..];
        if let Some(close) = after.iter().position(|&c| c == b'}') {
            if close > 0 {
                return &after[..close];
            }
        }
    }
    key
}

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

/// Errors building or using a [`SlotMap`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A `CLUSTER SLOTS` / `CLUSTER SHARDS` reply did not have the expected shape.
    #[error("malformed cluster topology reply: {0}")]
    Malformed(String),
    /// No node serves this slot.
    #[error("slot {0} is not served by any node")]
    Unassigned(u16),
}

fn malformed(what: impl Into<String>) -> RouteError {
    RouteError::Malformed(what.into())
}

/// One node of the topology (a master that owns slots, with the replicas reported for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// `host:port` (IPv6 hosts bracketed). The host is empty if the node did not know its own.
    pub addr: String,
    /// Cluster node id, when the reply carries it.
    pub id: Option<String>,
    /// `host:port` of its replicas.
    pub replicas: Vec<String>,
}

/// Slot → node table for all 16384 slots.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotMap {
    slots: Box<[u16]>,
    nodes: Vec<NodeInfo>,
}

impl std::fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMap").field("nodes", &self.nodes).field("ranges", &self.ranges()).finish()
    }
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap::new()
    }
}

/// `host:port`, bracketing IPv6 literals.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl SlotMap {
    /// A map with every slot unassigned and no nodes.
    pub fn new() -> Self {
        SlotMap { slots: vec![UNASSIGNED; SLOTS as usize].into_boxed_slice(), nodes: Vec::new() }
    }

    /// Every slot on one node (a standalone server).
    pub fn single(addr: &str) -> Self {
        let mut m = SlotMap::new();
        let n = m.add_node(addr);
        m.assign(0..=SLOTS - 1, n);
        m
    }

    /// Build from a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id?, ...], replica...], ...]`.
    pub fn from_cluster_slots(reply: &Frame) -> Result<Self, RouteError> {
        let mut m = SlotMap::new();
        let ranges = reply.as_array().ok_or_else(|| malformed("CLUSTER SLOTS reply is not an array"))?;
        for range in ranges {
            let r = range.as_array().ok_or_else(|| malformed("slot range is not an array"))?;
            let (Some(start), Some(end)) = (r.first().and_then(Frame::as_int), r.get(1).and_then(Frame::as_int)) else {
                return Err(malformed("slot range without integer bounds"));
            };
            let bounds = slot_range(start, end)?;
            let master = r.get(2).ok_or_else(|| malformed("slot range without a master"))?;
            let (addr, id) = slots_node(master)?;
            let idx = m.add_node_with_id(&addr, id);
            for replica in r.iter().skip(3) {
                let (raddr, _) = slots_node(replica)?;
                let reps = &mut m.nodes[idx].replicas;
                if !reps.contains(&raddr) {
                    reps.push(raddr);
                }
            }
            m.assign(bounds, idx);
        }
        Ok(m)
    }

    /// Build from a `CLUSTER SHARDS` reply (Redis 7): per shard, `slots` (start/end pairs) and
    /// `nodes` (flat key/value arrays with `ip`/`endpoint`, `port`, `id`, `role`).
    pub fn from_cluster_shards(reply: &Frame) -> Result<Self, RouteError> {
        SlotMap::from_cluster_shards_for(reply, false)
    }

    /// [`SlotMap::from_cluster_shards`] for a client connecting over TLS when `tls`: each node's
    /// `tls-port` is used (a TLS-only node lists no `port`); without TLS, `port` (else `tls-port`).
    pub fn from_cluster_shards_for(reply: &Frame, tls: bool) -> Result<Self, RouteError> {
        let mut m = SlotMap::new();
        let shards = reply.as_array().ok_or_else(|| malformed("CLUSTER SHARDS reply is not an array"))?;
        for shard in shards {
            let shard = shard.as_array().ok_or_else(|| malformed("shard is not an array"))?;
            let slots =
                field(shard, "slots").and_then(Frame::as_array).ok_or_else(|| malformed("shard without slots"))?;
            let nodes =
                field(shard, "nodes").and_then(Frame::as_array).ok_or_else(|| malformed("shard without nodes"))?;
            let mut master: Option<(String, Option<String>)> = None;
            let mut replicas = Vec::new();
            for node in nodes {
                let kv = node.as_array().ok_or_else(|| malformed("shard node is not an array"))?;
                let pick = |k: &str| field(kv, k).and_then(Frame::as_int).filter(|p| *p > 0);
                let port = if tls {
                    pick("tls-port").or_else(|| pick("port"))
                } else {
                    pick("port").or_else(|| pick("tls-port"))
                };
                let port = port.ok_or_else(|| malformed("shard node without port"))?;
                let port = u16::try_from(port).map_err(|_| malformed(format!("bad port {port}")))?;
                let endpoint = field(kv, "endpoint").and_then(Frame::as_bytes).filter(|e| !e.is_empty() && *e != b"?");
                let host = endpoint.or_else(|| field(kv, "ip").and_then(Frame::as_bytes)).unwrap_or_default();
                let addr = join_host_port(&String::from_utf8_lossy(host), port);
                let id = field(kv, "id").and_then(Frame::as_bytes).map(|b| String::from_utf8_lossy(b).into_owned());
                // A failed (crashed) node serves nothing and acknowledges no WAIT (a `loading`
                // one — a replica resyncing — is kept: it will).
                if field(kv, "health").and_then(Frame::as_bytes).is_some_and(|h| h == b"failed" || h == b"fail") {
                    continue;
                }
                match field(kv, "role").and_then(Frame::as_bytes) {
                    Some(b"master") => master = Some((addr, id)),
                    _ => replicas.push(addr),
                }
            }
            if slots.is_empty() {
                continue;
            }
            let (addr, id) =
                master.ok_or_else(|| malformed("shard with slots but no master online (a failover in progress?)"))?;
            let idx = m.add_node_with_id(&addr, id);
            for r in replicas {
                if !m.nodes[idx].replicas.contains(&r) {
                    m.nodes[idx].replicas.push(r);
                }
            }
            if slots.len() % 2 != 0 {
                return Err(malformed("odd number of slot bounds"));
            }
            for pair in slots.chunks_exact(2) {
                let (Some(s), Some(e)) = (pair[0].as_int(), pair[1].as_int()) else {
                    return Err(malformed("non-integer slot bound"));
                };
                m.assign(slot_range(s, e)?, idx);
            }
        }
        Ok(m)
    }

    /// The nodes, indexed as [`SlotMap::node_of_slot`] answers.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Rewrites every node and replica address in place (e.g. to fill in an unknown host).
    pub fn rewrite_addrs(&mut self, mut f: impl FnMut(&mut String)) {
        for n in &mut self.nodes {
            f(&mut n.addr);
            n.replicas.iter_mut().for_each(&mut f);
        }
    }

    /// Index of the node at `addr`.
    pub fn node_index(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// Add a node (or find it) by address; returns its index.
    pub fn add_node(&mut self, addr: &str) -> usize {
        self.add_node_with_id(addr, None)
    }

    fn add_node_with_id(&mut self, addr: &str, id: Option<String>) -> usize {
        if let Some(i) = self.node_index(addr) {
            if self.nodes[i].id.is_none() {
                self.nodes[i].id = id;
            }
            return i;
        }
        self.nodes.push(NodeInfo { addr: addr.to_owned(), id, replicas: Vec::new() });
        self.nodes.len() - 1
    }

    /// Assign a range of slots to node `node` (an index from [`SlotMap::add_node`]).
    ///
    /// # Panics
    /// If `node` is not an index of this map.
    pub fn assign(&mut self, slots: RangeInclusive<u16>, node: usize) {
        assert!(node < self.nodes.len(), "node index {node} out of range");
        let (s, e) = (*slots.start() as usize, (*slots.end()).min(SLOTS - 1) as usize);
        if s <= e {
            self.slots[s..=e].fill(node as u16);
        }
    }

    /// Record a `MOVED slot addr`: the slot now belongs to `addr` (added if new). Returns its index.
    pub fn apply_moved(&mut self, slot: u16, addr: &str) -> usize {
        let idx = self.add_node(addr);
        if slot < SLOTS {
            self.slots[slot as usize] = idx as u16;
        }
        idx
    }

    /// The node serving `slot`.
    pub fn node_of_slot(&self, slot: u16) -> Option<usize> {
        match self.slots.get(slot as usize) {
            Some(&n) if n != UNASSIGNED => Some(n as usize),
            _ => None,
        }
    }

    /// The node serving `key`.
    pub fn node_of_key(&self, key: &[u8]) -> Option<usize> {
        self.node_of_slot(key_slot(key))
    }

    /// Number of slots no node serves.
    pub fn unassigned(&self) -> usize {
        self.slots.iter().filter(|&&n| n == UNASSIGNED).count()
    }

    /// Whether every slot is served.
    pub fn is_complete(&self) -> bool {
        self.unassigned() == 0
    }

    /// Contiguous `(start, end, node)` runs of assigned slots.
    pub fn ranges(&self) -> Vec<(u16, u16, usize)> {
        let mut out = Vec::new();
        let mut i = 0usize;
        while i < self.slots.len() {
            let n = self.slots[i];
            let mut j = i;
            while j + 1 < self.slots.len() && self.slots[j + 1] == n {
                j += 1;
            }
            if n != UNASSIGNED {
                out.push((i as u16, j as u16, n as usize));
            }
            i = j + 1;
        }
        out
    }

    /// Group key indices by serving node, in order of first appearance; fails on an unserved slot.
    pub fn split_by_node<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<(usize, Vec<usize>)>, RouteError> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut at: HashMap<usize, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let slot = key_slot(k.as_ref());
            let node = self.node_of_slot(slot).ok_or(RouteError::Unassigned(slot))?;
            let g = *at.entry(node).or_insert_with(|| {
                groups.push((node, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        Ok(groups)
    }
}

/// Group key indices by hash slot, in order of first appearance.
pub fn split_by_slot<K: AsRef<[u8]>>(keys: &[K]) -> Vec<(u16, Vec<usize>)> {
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    let mut at: HashMap<u16, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let slot = key_slot(k.as_ref());
        let g = *at.entry(slot).or_insert_with(|| {
            groups.push((slot, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

/// Whether all `keys` hash to one slot (what multi-key commands require in a cluster).
pub fn same_slot<K: AsRef<[u8]>>(keys: &[K]) -> bool {
    let mut it = keys.iter().map(|k| key_slot(k.as_ref()));
    match it.next() {
        Some(first) => it.all(|s| s == first),
        None => true,
    }
}

fn slot_range(start: i64, end: i64) -> Result<RangeInclusive<u16>, RouteError> {
    let ok = |v: i64| u16::try_from(v).ok().filter(|&s| s < SLOTS);
    match (ok(start), ok(end)) {
        (Some(s), Some(e)) if s <= e => Ok(s..=e),
        _ => Err(malformed(format!("bad slot range {start}-{end}"))),
    }
}

/// `[host, port, id?, ...]` of a CLUSTER SLOTS node entry.
fn slots_node(f: &Frame) -> Result<(String, Option<String>), RouteError> {
    let a = f.as_array().ok_or_else(|| malformed("node entry is not an array"))?;
    let host = a.first().and_then(Frame::as_bytes).ok_or_else(|| malformed("node entry without host"))?;
    let port = a.get(1).and_then(Frame::as_int).ok_or_else(|| malformed("node entry without port"))?;
    let port = u16::try_from(port).map_err(|_| malformed(format!("bad port {port}")))?;
    let host = String::from_utf8_lossy(host);
    let host = if host == "?" { "" } else { &host };
    let id = a.get(2).and_then(Frame::as_bytes).map(|b| String::from_utf8_lossy(b).into_owned());
    Ok((join_host_port(host, port), id))
}

/// Value following the bulk/simple string `name` in a flat key/value array.
fn field<'a>(kv: &'a [Frame], name: &str) -> Option<&'a Frame> {
    kv.chunks_exact(2).find(|p| p[0].as_bytes() == Some(name.as_bytes())).map(|p| &p[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn crc_and_slots() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"{"), crc16(b"{") & 16383);
        assert_eq!(hash_tag(b"a{b}"), b"b");
        assert_eq!(hash_tag(b"a}b{"), b"a}b{");
    }

    #[test]
    fn split_helpers() {
        let keys = ["{a}1", "b", "{a}2", "b"];
        let g = split_by_slot(&keys);
        assert_eq!(g, vec![(key_slot(b"a"), vec![0, 2]), (key_slot(b"b"), vec![1, 3])]);
        assert!(same_slot(&["{x}1", "{x}2"]));
        assert!(!same_slot(&["foo", "bar"]));
        let mut m = SlotMap::new();
        let n0 = m.add_node("h:1");
        let n1 = m.add_node("h:2");
        m.assign(0..=8191, n0);
        assert_eq!(m.split_by_node(&["bar", "foo"]), Err(RouteError::Unassigned(12182)));
        m.assign(8192..=16383, n1);
        assert_eq!(m.split_by_node(&["foo", "bar", "x{foo}"]).unwrap(), vec![(n1, vec![0, 2]), (n0, vec![1])]);
        assert!(m.is_complete());
        assert_eq!(m.ranges(), vec![(0, 8191, 0), (8192, 16383, 1)]);
        let n2 = m.apply_moved(12182, "h:3");
        assert_eq!(m.node_of_key(b"foo"), Some(n2));
        assert_eq!(m.ranges().len(), 4);
        assert_eq!(SlotMap::single("x:1").node_of_slot(16383), Some(0));
    }

    #[test]
    fn parses_cluster_slots() {
        let reply = Frame::Array(vec![
            Frame::Array(vec![
                Frame::Integer(0),
                Frame::Integer(5460),
                Frame::Array(vec![bulk("127.0.0.1"), Frame::Integer(30001), bulk("id1"), Frame::Array(vec![])]),
                Frame::Array(vec![bulk("127.0.0.1"), Frame::Integer(30004), bulk("id4")]),
            ]),
            Frame::Array(vec![
                Frame::Integer(5461),
                Frame::Integer(16383),
                Frame::Array(vec![bulk("::1"), Frame::Integer(30002), bulk("id2")]),
            ]),
        ]);
        let m = SlotMap::from_cluster_slots(&reply).unwrap();
        assert_eq!(m.nodes().len(), 2);
        assert_eq!(m.nodes()[0].replicas, vec!["127.0.0.1:30004".to_owned()]);
        assert_eq!(m.nodes()[1].addr, "[::1]:30002");
        assert_eq!(m.nodes()[0].id.as_deref(), Some("id1"));
        assert_eq!(m.node_of_slot(5460), Some(0));
        assert_eq!(m.node_of_slot(5461), Some(1));
        let bad = Frame::Array(vec![Frame::Array(vec![Frame::Integer(5), Frame::Integer(2)])]);
        assert!(SlotMap::from_cluster_slots(&bad).is_err());
        assert!(SlotMap::from_cluster_slots(&Frame::Null).is_err());
    }

    #[test]
    fn cluster_shards_of_tls_nodes() {
        // A TLS-only node lists `tls-port` and no `port`; with both, TLS clients take `tls-port`.
        let shard = |ports: Vec<Frame>| {
            let mut node = vec![bulk("id"), bulk("m"), bulk("ip"), bulk("127.0.0.1"), bulk("role"), bulk("master")];
            node.extend(ports);
            Frame::Array(vec![Frame::Array(vec![
                bulk("slots"),
                Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]),
                bulk("nodes"),
                Frame::Array(vec![Frame::Array(node)]),
            ])])
        };
        let tls_only = shard(vec![bulk("tls-port"), Frame::Integer(7100)]);
        assert_eq!(SlotMap::from_cluster_shards_for(&tls_only, true).unwrap().nodes()[0].addr, "127.0.0.1:7100");
        assert_eq!(SlotMap::from_cluster_shards(&tls_only).unwrap().nodes()[0].addr, "127.0.0.1:7100");
        let both = shard(vec![bulk("port"), Frame::Integer(7000), bulk("tls-port"), Frame::Integer(7100)]);
        assert_eq!(SlotMap::from_cluster_shards_for(&both, true).unwrap().nodes()[0].addr, "127.0.0.1:7100");
        assert_eq!(SlotMap::from_cluster_shards(&both).unwrap().nodes()[0].addr, "127.0.0.1:7000");
        assert!(SlotMap::from_cluster_shards(&shard(vec![])).is_err());
    }

    #[test]
    fn parses_cluster_shards() {
        let node_h = |id: &str, port: i64, role: &str, health: &str| {
            Frame::Array(vec![
                bulk("id"),
                bulk(id),
                bulk("port"),
                Frame::Integer(port),
                bulk("ip"),
                bulk("127.0.0.1"),
                bulk("endpoint"),
                bulk("127.0.0.1"),
                bulk("role"),
                bulk(role),
                bulk("health"),
                bulk(health),
            ])
        };
        let node = |id: &str, port: i64, role: &str| node_h(id, port, role, "online");
        let reply = Frame::Array(vec![
            Frame::Array(vec![
                bulk("slots"),
                Frame::Array(vec![Frame::Integer(0), Frame::Integer(99), Frame::Integer(200), Frame::Integer(16383)]),
                bulk("nodes"),
                Frame::Array(vec![node("r", 7001, "replica"), node("m", 7000, "master")]),
            ]),
            Frame::Array(vec![
                bulk("slots"),
                Frame::Array(vec![Frame::Integer(100), Frame::Integer(199)]),
                bulk("nodes"),
                Frame::Array(vec![node("m2", 7002, "master")]),
            ]),
        ]);
        let m = SlotMap::from_cluster_shards(&reply).unwrap();
        assert!(m.is_complete());
        assert_eq!(m.nodes()[0].addr, "127.0.0.1:7000");
        assert_eq!(m.nodes()[0].replicas, vec!["127.0.0.1:7001".to_owned()]);
        assert_eq!(m.node_of_slot(150), Some(1));
        assert_eq!(m.node_of_slot(99), Some(0));
        // After a crash: the dead master is listed as a failed master next to the promoted one;
        // a resyncing replica is `loading` and kept.
        let reply = Frame::Array(vec![Frame::Array(vec![
            bulk("slots"),
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]),
            bulk("nodes"),
            Frame::Array(vec![
                node("new", 7001, "master"),
                node_h("dead", 7000, "master", "failed"),
                node_h("r", 7003, "replica", "loading"),
            ]),
        ])]);
        let m = SlotMap::from_cluster_shards(&reply).unwrap();
        assert_eq!(m.nodes().len(), 1);
        assert_eq!(m.nodes()[0].addr, "127.0.0.1:7001");
        assert_eq!(m.nodes()[0].replicas, vec!["127.0.0.1:7003".to_owned()]);
    }
}
