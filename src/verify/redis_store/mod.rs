//! [`Store`] over real servers: a standalone Redis-protocol server (Dragonfly included) or a
//! Redis Cluster (detected with `INFO cluster`; every master scanned; keys routed by slot, with a
//! topology refresh and retry on MOVED/ASK). Commands go out in pipelines on pooled connections,
//! one pool per (node, db); only commands Dragonfly also supports are used.

mod parse;

use super::model::KeyType;
use super::store::StoreError;
use crate::config::Endpoint;
use crate::resp::{Auth, ConnectOptions, Frame, Pipeline, RespError};
use crate::target::route::SlotMap;
use bytes::Bytes;
use parse::Unexpected;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Idle connections kept per (node, db).
const MAX_IDLE: usize = 64;
/// MOVED/ASK retries of one batch before giving up.
const REDIRECT_RETRIES: usize = 5;

#[derive(Debug)]
struct Pool {
    addr: String,
    opts: ConnectOptions,
    idle: Mutex<Vec<Pipeline>>,
}

impl Pool {
    async fn get(&self) -> Result<Pipeline, RespError> {
        let p = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match p {
            Some(p) => Ok(p),
            None => Pipeline::connect(&self.addr, &self.opts).await,
        }
    }

    fn put(&self, p: Pipeline) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(p);
        }
    }
}

#[derive(Debug, Clone)]
struct Topology {
    cluster: bool,
    map: SlotMap,
    /// Master addresses (node index = position).
    masters: Vec<String>,
}

/// One side (source or target) over real servers.
#[derive(Debug)]
pub struct RedisStore {
    side: &'static str,
    seed: String,
    opts: ConnectOptions,
    topo: RwLock<Topology>,
    pools: Mutex<HashMap<(String, u32), Arc<Pool>>>,
}

/// Connect options for verify's reads (TLS as the endpoint's `tls` says).
pub fn connect_options(ep: &Endpoint) -> Result<ConnectOptions, String> {
    let tls = crate::resp::TlsClient::for_endpoint(&ep.tls).map_err(|e| format!("tls.{}: {e}", e.key()))?;
    let auth = ep.password.as_ref().map(|p| match &ep.username {
        Some(u) => Auth::User { user: u.clone(), password: p.expose().to_string() },
        None => Auth::Password(p.expose().to_string()),
    });
    Ok(ConnectOptions {
        auth,
        tls,
        response_timeout: Some(Duration::from_secs(60)),
        client_name: Some("df2redis-verify".into()),
        ..ConnectOptions::default()
    })
}

impl RedisStore {
    /// Connects to an endpoint from the config and detects standalone vs cluster.
    pub async fn connect(side: &'static str, ep: &Endpoint) -> Result<RedisStore, StoreError> {
        let opts = connect_options(ep).map_err(|reason| StoreError::Io { side, addr: ep.addr.to_string(), reason })?;
        let mut last = None;
        for seed in &ep.seeds {
            match Self::connect_addr(side, &seed.to_string(), opts.clone()).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Io { side, addr: ep.addr.to_string(), reason: "no address".into() }))
    }

    /// Connects to `addr` (a standalone server or any cluster node).
    pub async fn connect_addr(side: &'static str, addr: &str, opts: ConnectOptions) -> Result<RedisStore, StoreError> {
        let store = RedisStore {
            side,
            seed: addr.to_string(),
            opts,
            topo: RwLock::new(Topology { cluster: false, map: SlotMap::single(addr), masters: vec![addr.to_string()] }),
            pools: Mutex::new(HashMap::new()),
        };
        store.refresh().await?;
        Ok(store)
    }

    /// True when this side is a cluster.
    pub fn is_cluster(&self) -> bool {
        self.topo.read().unwrap_or_else(|e| e.into_inner()).cluster
    }

    /// Master addresses.
    pub fn masters(&self) -> Vec<String> {
        self.topo.read().unwrap_or_else(|e| e.into_inner()).masters.clone()
    }

    fn io(&self, e: RespError) -> StoreError {
        StoreError::Io { side: self.side, addr: e.addr().to_string(), reason: e.to_string() }
    }

    fn reply(&self, command: &str, e: Unexpected) -> StoreError {
        StoreError::Reply { side: self.side, command: command.to_string(), reply: e.0 }
    }

    fn pool(&self, addr: &str, db: u32) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry((addr.to_string(), db))
            .or_insert_with(|| {
                let mut opts = self.opts.clone();
                opts.db = (db != 0).then_some(db);
                Arc::new(Pool { addr: addr.to_string(), opts, idle: Mutex::new(Vec::new()) })
            })
            .clone()
    }

    async fn admin(&self, addr: &str, args: &[&[u8]]) -> Result<Frame, StoreError> {
        let pool = self.pool(addr, 0);
        let mut p = pool.get().await.map_err(|e| self.io(e))?;
        p.push_args(args);
        let f = p.next_reply().await.map_err(|e| self.io(e))?;
        pool.put(p);
        Ok(f)
    }

    /// Re-reads the topology (INFO cluster; CLUSTER SHARDS, else CLUSTER SLOTS).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let seeds: Vec<String> = {
            let t = self.topo.read().unwrap_or_else(|e| e.into_inner());
            let mut v = t.masters.clone();
            v.insert(0, self.seed.clone());
            v
        };
        let mut last = None;
        for addr in seeds {
            match self.read_topology(&addr).await {
                Ok(t) => {
                    *self.topo.write().unwrap_or_else(|e| e.into_inner()) = t;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Io {
            side: self.side,
            addr: self.seed.clone(),
            reason: "no node".into(),
        }))
    }

    async fn read_topology(&self, addr: &str) -> Result<Topology, StoreError> {
        let info = self.admin(addr, &[b"INFO", b"cluster"]).await?;
        let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        if parse::info_field(&text, "cluster_enabled") != Some("1") {
            return Ok(Topology { cluster: false, map: SlotMap::single(addr), masters: vec![addr.to_string()] });
        }
        let shards = self.admin(addr, &[b"CLUSTER", b"SHARDS"]).await?;
        let map = match SlotMap::from_cluster_shards_for(&shards, self.opts.tls.is_some()) {
            Ok(m) if !shards.is_error() => m,
            _ => {
                let slots = self.admin(addr, &[b"CLUSTER", b"SLOTS"]).await?;
                SlotMap::from_cluster_slots(&slots).map_err(|e| StoreError::Reply {
                    side: self.side,
                    command: "CLUSTER SLOTS".into(),
                    reply: e.to_string(),
                })?
            }
        };
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
        let masters = map
            .nodes()
            .iter()
            .map(|n| if n.addr.starts_with(':') { format!("{host}{}", n.addr) } else { n.addr.clone() })
            .collect();
        Ok(Topology { cluster: true, map, masters })
    }

    /// Runs `per` commands per key (pushed by `push(pipeline, index, key)`), routed by node, and
    /// returns the replies flat in key order. Retries after a topology refresh on MOVED/ASK.
    async fn run_keys<F>(&self, db: u32, keys: &[Bytes], per: usize, push: F) -> Result<Vec<Frame>, StoreError>
    where
        F: Fn(&mut Pipeline, usize, &[u8]),
    {
        let (frames, _) = self
            .run_keys_var(db, keys, |p, i, k| {
                push(p, i, k);
                per
            })
            .await?;
        Ok(frames)
    }

    /// Like [`Self::run_keys`] with a varying number of commands per key: `push` returns how many
    /// it pushed. Returns the replies flat in key order and where each key's replies start
    /// (`starts[i]..starts[i + 1]`, `starts.len() == keys.len() + 1`).
    async fn run_keys_var<F>(&self, db: u32, keys: &[Bytes], push: F) -> Result<(Vec<Frame>, Vec<usize>), StoreError>
    where
        F: Fn(&mut Pipeline, usize, &[u8]) -> usize,
    {
        let mut attempt = 0;
        loop {
            let groups: Vec<(String, Vec<usize>)> = {
                let t = self.topo.read().unwrap_or_else(|e| e.into_inner());
                if t.cluster {
                    let split = t.map.split_by_node(keys).map_err(|e| StoreError::Reply {
                        side: self.side,
                        command: "route".into(),
                        reply: e.to_string(),
                    })?;
                    split.into_iter().map(|(n, idx)| (t.masters.get(n).cloned().unwrap_or_default(), idx)).collect()
                } else {
                    vec![(t.masters[0].clone(), (0..keys.len()).collect())]
                }
            };
            let mut counts = vec![0usize; keys.len()];
            let mut conns = Vec::with_capacity(groups.len());
            for (addr, idx) in &groups {
                let pool = self.pool(addr, db);
                let mut p = pool.get().await.map_err(|e| self.io(e))?;
                for &i in idx {
                    counts[i] = push(&mut p, i, &keys[i]);
                }
                p.flush().await.map_err(|e| self.io(e))?;
                conns.push((pool, p));
            }
            let mut starts = Vec::with_capacity(keys.len() + 1);
            let mut total = 0;
            for c in &counts {
                starts.push(total);
                total += c;
            }
            starts.push(total);
            let mut out = vec![Frame::Null; total];
            let mut redirected = false;
            for ((pool, mut p), (_, idx)) in conns.into_iter().zip(&groups) {
                for &i in idx {
                    for slot in &mut out[starts[i]..starts[i + 1]] {
                        let f = p.next_reply().await.map_err(|e| self.io(e))?;
                        if let Frame::Error(m) = &f {
                            redirected |= m.starts_with(b"MOVED ") || m.starts_with(b"ASK ");
                        }
                        *slot = f;
                    }
                }
                pool.put(p);
            }
            if !redirected {
                return Ok((out, starts));
            }
            attempt += 1;
            if attempt > REDIRECT_RETRIES {
                return Err(StoreError::Reply {
                    side: self.side,
                    command: "keyed read".into(),
                    reply: "still redirected (MOVED/ASK) after topology refreshes".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            self.refresh().await?;
        }
    }

    async fn one(&self, db: u32, key: &Bytes, args: &[&[u8]]) -> Result<Frame, StoreError> {
        let keys = [key.clone()];
        let mut f = self.run_keys(db, &keys, 1, |p, _, _| p.push_args(args)).await?;
        let f = f.pop().unwrap_or(Frame::Null);
        if let Frame::Error(m) = &f {
            return Err(StoreError::Reply {
                side: self.side,
                command: String::from_utf8_lossy(args[0]).into_owned(),
                reply: String::from_utf8_lossy(m).into_owned(),
            });
        }
        Ok(f)
    }
}

fn len_cmd(ty: KeyType) -> &'static [u8] {
    match ty {
        KeyType::String => b"STRLEN",
        KeyType::List => b"LLEN",
        KeyType::Set => b"SCARD",
        KeyType::Zset => b"ZCARD",
        KeyType::Hash => b"HLEN",
        KeyType::Stream => b"XLEN",
        KeyType::Other => b"EXISTS",
    }
}

mod probe;
mod store_impl;

#[cfg(test)]
mod tests;
