//! verify with a real 3-master Redis Cluster on either side: every master scanned, keys routed
//! by slot, no false positives, injected differences found in both directions.

mod verify_common;

use df2redis::resp::Cmd;
use df2redis::testkit::{shared_cluster, RedisServer};
use df2redis::verify::engine::Settings;
use df2redis::verify::{DiffKind, RedisStore};
use verify_common::*;

#[tokio::test]
async fn standalone_and_cluster_in_both_roles() {
    let cluster = shared_cluster().await.unwrap();
    let single = RedisServer::start().await.unwrap();
    let data = dataset(2000, 300, now_ms(3_600_000), false);
    load(&single, data.iter().map(|x| x.1.clone())).await;
    load_cluster(&cluster, dataset(2000, 300, now_ms(0) + 3_600_000, true)).await;
    let store = RedisStore::connect_addr("target", cluster.seed(), Default::default()).await.unwrap();
    assert!(store.is_cluster());
    assert_eq!(store.masters().len(), 3);

    let st = Settings { big_threshold: 100, chunk: 64, ttl_tolerance_ms: 5_000, ..Settings::default() };
    let d = verify(single.addr(), cluster.seed(), st.clone()).await;
    assert!(d.is_empty(), "{:?}", found(&d));
    let d = verify(cluster.seed(), single.addr(), st.clone()).await;
    assert!(d.is_empty(), "{:?}", found(&d));

    load_cluster(
        &cluster,
        vec![
            (b"str:7".to_vec(), Cmd::new("DEL").arg("str:7")),
            (b"cluster-only".to_vec(), Cmd::new("SET").arg("cluster-only").arg("1")),
            (b"hash:big".to_vec(), Cmd::new("HSET").arg("hash:big").arg("f222").arg("x")),
            (b"zset:small".to_vec(), Cmd::new("ZADD").arg("zset:small").arg("100").arg("z0")),
            (b"stream:big".to_vec(), Cmd::new("XDEL").arg("stream:big").arg("1050-1")),
            (b"str:40".to_vec(), Cmd::new("PERSIST").arg("str:40")),
        ],
    )
    .await;
    let mut want = vec![
        ("cluster-only".to_string(), DiffKind::ExtraOnTarget),
        ("hash:big".to_string(), DiffKind::Value),
        ("str:40".to_string(), DiffKind::Ttl),
        ("str:7".to_string(), DiffKind::MissingOnTarget),
        ("stream:big".to_string(), DiffKind::Length),
        ("zset:small".to_string(), DiffKind::Value),
    ];
    let mut got = found(&verify(single.addr(), cluster.seed(), st.clone()).await);
    got.sort();
    assert_eq!(got, want);
    // Cluster as the source: missing and extra swap.
    for w in &mut want {
        w.1 = match w.1 {
            DiffKind::ExtraOnTarget => DiffKind::MissingOnTarget,
            DiffKind::MissingOnTarget => DiffKind::ExtraOnTarget,
            k => k,
        };
    }
    let mut got = found(&verify(cluster.seed(), single.addr(), st).await);
    got.sort();
    assert_eq!(got, want);
}
