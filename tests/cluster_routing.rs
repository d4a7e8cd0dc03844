//! Slot routing against a real 3-master / 3-replica Redis Cluster: routed writes, reads per node,
//! MOVED / ASK parsing, slot migration and failover.

use std::collections::HashMap;

use df2redis::resp::{Client, Cmd, ConnectOptions, Frame, Pipeline, Redirect};
use df2redis::target::route::{key_slot, SlotMap};
use df2redis::testkit::shared_cluster;

async fn clients(map: &SlotMap) -> Vec<Client> {
    let mut out = Vec::new();
    for n in map.nodes() {
        out.push(Client::connect(&n.addr, &ConnectOptions::default()).await.expect("connect to master"));
    }
    out
}

#[tokio::test]
async fn routed_writes_land_on_their_slot_owner() {
    let cluster = shared_cluster().await.unwrap();
    let map = cluster.slot_map().await.unwrap();
    assert!(map.is_complete());
    assert_eq!(map.nodes().len(), 3);
    assert!(map.nodes().iter().all(|n| n.replicas.len() == 1));
    let clients = clients(&map).await;
    let keys: Vec<String> = (0..10_000).map(|i| format!("k:{i}")).collect();
    let groups = map.split_by_node(&keys).unwrap();
    assert_eq!(groups.len(), 3);
    let mut futs = Vec::new();
    for (node, idxs) in &groups {
        for &i in idxs {
            futs.push(clients[*node].send(Cmd::new("SET").arg(&keys[i]).arg(format!("v{i}"))));
        }
    }
    for f in futs {
        assert!(f.await.unwrap().is_ok());
    }
    // Each node holds exactly its share, and serves every one of its keys.
    for (node, idxs) in &groups {
        let c = &clients[*node];
        assert_eq!(c.send(Cmd::new("DBSIZE")).await.unwrap().as_int(), Some(idxs.len() as i64));
        let mut p = Pipeline::connect(c.addr(), &ConnectOptions::default()).await.unwrap();
        let cmds: Vec<Cmd> = idxs.iter().map(|&i| Cmd::new("GET").arg(&keys[i])).collect();
        p.run(&cmds, 256, |j, f| assert_eq!(f.as_bytes(), Some(format!("v{}", idxs[j]).as_bytes()))).await.unwrap();
    }
}

#[tokio::test]
async fn wrong_node_yields_parseable_moved() {
    let cluster = shared_cluster().await.unwrap();
    let map = cluster.slot_map().await.unwrap();
    let owner = map.node_of_key(b"foo").unwrap();
    let wrong = (owner + 1) % map.nodes().len();
    let c = Client::connect(&map.nodes()[wrong].addr, &ConnectOptions::default()).await.unwrap();
    let e = c.send(Cmd::new("SET").arg("foo").arg("1")).await.unwrap_err();
    assert_eq!(e.redirect(), Some(Redirect::Moved { slot: 12182, addr: map.nodes()[owner].addr.clone() }), "{e:?}");
    // The connection stays usable after a redirect, and raw sends keep the error as a frame.
    let raw = c.send_raw(Cmd::new("GET").arg("{user1000}.following")).await.unwrap();
    let expect_slot = key_slot(b"{user1000}.followers");
    match map.node_of_slot(expect_slot) {
        Some(n) if n == wrong => assert!(raw.is_null()),
        _ => assert_eq!(raw.redirect().map(|r| r.slot()), Some(expect_slot)),
    }
    assert!(c.send(Cmd::new("PING")).await.is_ok());
}

#[tokio::test]
async fn migration_gives_ask_then_moved() {
    let cluster = shared_cluster().await.unwrap();
    let map = cluster.slot_map().await.unwrap();
    let slot = key_slot(b"bar");
    let from = map.nodes()[map.node_of_slot(slot).unwrap()].addr.clone();
    let to = map.nodes().iter().find(|n| n.addr != from).unwrap().addr.clone();
    let src = Client::connect(&from, &ConnectOptions::default()).await.unwrap();
    let dst = Client::connect(&to, &ConnectOptions::default()).await.unwrap();
    for i in 0..50 {
        src.send(Cmd::new("SET").arg(format!("{{bar}}{i}")).arg(i)).await.unwrap();
    }
    let id = |c: &Client| {
        let f = c.send(Cmd::new("CLUSTER").arg("MYID"));
        async move { f.await.unwrap().to_string_lossy() }
    };
    let (from_id, to_id) = (id(&src).await, id(&dst).await);
    dst.send(Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(&from_id)).await.unwrap();
    src.send(Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(&to_id)).await.unwrap();
    // A key of the migrating slot that the source does not have: ASK to the target.
    let e = src.send(Cmd::new("GET").arg("{bar}missing")).await.unwrap_err();
    assert_eq!(e.redirect(), Some(Redirect::Ask { slot, addr: to.clone() }));
    // The target only serves it after ASKING, on the same connection.
    let mut p = Pipeline::connect(&to, &ConnectOptions::default()).await.unwrap();
    p.push(&Cmd::new("ASKING"));
    p.push(&Cmd::new("GET").arg("{bar}missing"));
    let r = p.drain().await.unwrap();
    assert!(r[0].is_ok() && r[1].is_null(), "{r:?}");
    // Finish with the harness' migration; the old owner now answers MOVED.
    cluster.migrate_slot(slot, &from, &to).await.unwrap();
    let e = src.send(Cmd::new("GET").arg("{bar}7")).await.unwrap_err();
    assert_eq!(e.redirect(), Some(Redirect::Moved { slot, addr: to.clone() }));
    assert_eq!(dst.send(Cmd::new("GET").arg("{bar}7")).await.unwrap().as_int(), Some(7));
    assert_eq!(dst.send(Cmd::new("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot)).await.unwrap().as_int(), Some(50));
    let mut updated = map.clone();
    updated.apply_moved(slot, &to);
    assert_eq!(cluster.slot_map().await.unwrap().node_of_slot(slot).map(|i| &updated.nodes()[i].addr), Some(&to));
    // Give the slot back so later tests see the initial shape.
    cluster.migrate_slot(slot, &to, &from).await.unwrap();
}

#[tokio::test]
async fn failover_keeps_data_and_flips_roles() {
    let cluster = shared_cluster().await.unwrap();
    let map = cluster.slot_map().await.unwrap();
    let clients = clients(&map).await;
    let keys: Vec<String> = (0..1000).map(|i| format!("f:{i}")).collect();
    for (node, idxs) in map.split_by_node(&keys).unwrap() {
        for i in idxs {
            clients[node].send(Cmd::new("SET").arg(&keys[i]).arg(i)).await.unwrap();
        }
    }
    let old = map.nodes()[0].addr.clone();
    let new = cluster.failover(&old).await.unwrap();
    assert_eq!(map.nodes()[0].replicas, vec![new.clone()]);
    let after = cluster.slot_map().await.unwrap();
    let idx = after.node_index(&new).unwrap();
    assert_eq!(after.nodes()[idx].replicas, vec![old.clone()]);
    let by_node: HashMap<usize, Vec<usize>> = after.split_by_node(&keys).unwrap().into_iter().collect();
    let c = Client::connect(&new, &ConnectOptions::default()).await.unwrap();
    for &i in &by_node[&idx] {
        assert_eq!(c.send(Cmd::new("GET").arg(&keys[i])).await.unwrap(), Frame::Bulk(i.to_string().into()));
    }
    // The demoted node redirects writes for its former slots.
    let e = Client::connect(&old, &ConnectOptions::default())
        .await
        .unwrap()
        .send(Cmd::new("SET").arg(&keys[by_node[&idx][0]]).arg("x"))
        .await
        .unwrap_err();
    assert!(matches!(e.redirect(), Some(Redirect::Moved { addr, .. }) if addr == new), "{e:?}");
    // Fail back so later tests see the initial shape.
    cluster.failover(&new).await.unwrap();
}

#[tokio::test]
async fn key_slot_matches_redis_keyslot() {
    let cluster = shared_cluster().await.unwrap();
    let mut p = Pipeline::connect(cluster.seed(), &ConnectOptions::default()).await.unwrap();
    // Deterministic pseudo-random keys over an alphabet rich in braces, plus the spec's vectors.
    let mut keys: Vec<Vec<u8>> = ["foo", "bar", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{}", "}{", ""]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let alphabet = b"{}ab\x00\xff1";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 12) as usize;
        keys.push((0..len).map(|i| alphabet[((x >> (i * 5)) % alphabet.len() as u64) as usize]).collect());
    }
    let cmds: Vec<Cmd> = keys.iter().map(|k| Cmd::new("CLUSTER").arg("KEYSLOT").arg(k)).collect();
    p.run(&cmds, 512, |i, f| assert_eq!(f.as_int(), Some(i64::from(key_slot(&keys[i]))), "key {:?}", keys[i]))
        .await
        .unwrap();
}
