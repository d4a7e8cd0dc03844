//! verify against real redis-server pairs: no false positives on equal data stored in different
//! encodings and orders, every kind of difference injected and classified, big keys, modes,
//! filters, exit codes.

mod verify_common;

use df2redis::resp::Cmd;
use df2redis::testkit::ServerOptions;
use df2redis::verify::engine::Settings;
use df2redis::verify::{Depth, DiffKind, KeyType};
use verify_common::*;

fn settings(depth: Depth) -> Settings {
    Settings { depth, big_threshold: 100, chunk: 64, batch: 128, ..Settings::default() }
}

#[tokio::test]
async fn equal_data_in_different_encodings_has_no_differences() {
    let (s, t) = pair(big_encodings()).await;
    let exp = now_ms(3_600_000);
    let data = dataset(3000, 500, exp, false);
    let rev = dataset(3000, 500, exp, true);
    load(&s, data.into_iter().map(|x| x.1)).await;
    load(&t, rev.into_iter().map(|x| x.1)).await;
    // Same logical data in db 2 too.
    load(&s, [Cmd::new("SELECT").arg(2), Cmd::new("SET").arg("db2key").arg("x")]).await;
    load(&t, [Cmd::new("SELECT").arg(2), Cmd::new("SET").arg("db2key").arg("x")]).await;
    let enc = t.cmd(&Cmd::new("OBJECT").arg("ENCODING").arg("hash:small")).await.unwrap();
    assert_eq!(enc.as_bytes(), Some(&b"hashtable"[..]));
    let enc = s.cmd(&Cmd::new("OBJECT").arg("ENCODING").arg("hash:small")).await.unwrap();
    assert_eq!(enc.as_bytes(), Some(&b"listpack"[..]));
    for depth in [Depth::Keys, Depth::Meta, Depth::Full] {
        let d = verify(s.addr(), t.addr(), settings(depth)).await;
        assert!(d.is_empty(), "{depth:?}: {:?}", &d[..d.len().min(5)]);
        // whole-value path too (threshold above every key)
        let d = verify(s.addr(), t.addr(), Settings { big_threshold: 100_000, ..settings(depth) }).await;
        assert!(d.is_empty(), "{depth:?} whole: {:?}", &d[..d.len().min(5)]);
    }
}

#[tokio::test]
async fn every_kind_of_difference_is_found_and_classified() {
    let (s, t) = pair(ServerOptions::default()).await;
    let exp = now_ms(3_600_000);
    let data = dataset(1000, 300, exp, false);
    load(&s, data.iter().map(|x| x.1.clone())).await;
    load(&t, data.into_iter().map(|x| x.1)).await;
    let inject = [
        Cmd::new("DEL").arg("str:1"),                                             // missing
        Cmd::new("SET").arg("only-on-target").arg("x"),                           // extra
        Cmd::new("DEL").arg("str:2"),                                             // type
        Cmd::new("RPUSH").arg("str:2").arg("value-2"),                            //
        Cmd::new("SET").arg("str:3").arg("value-X"),                              // string value
        Cmd::new("DEL").arg("list:small"),                                        // list order
        Cmd::new("RPUSH").arg("list:small").args(["e1", "e0", "e2", "e3", "e4"]), //
        Cmd::new("HSET").arg("hash:small").arg("f3").arg("changed"),              // hash field
        Cmd::new("SREM").arg("set:small").arg("m2"),                              // set member
        Cmd::new("SADD").arg("set:small").arg("m2x"),                             //
        Cmd::new("ZADD").arg("zset:small").arg("9.5").arg("z1"),                  // zset score
        Cmd::new("DEL").arg("stream:small"), // stream entry: rebuilt with entry 1001-0 changed
        Cmd::new("XADD").arg("stream:small").arg("1000-0").arg("f").arg("0").arg("g").arg("h"),
        Cmd::new("XADD").arg("stream:small").arg("1000-1").arg("f").arg("1").arg("g").arg("h"),
        Cmd::new("XADD").arg("stream:small").arg("1000-2").arg("f").arg("2").arg("g").arg("h"),
        Cmd::new("XADD").arg("stream:small").arg("1001-0").arg("f").arg("other").arg("g").arg("h"),
        Cmd::new("XADD").arg("stream:small").arg("1001-1").arg("f").arg("4").arg("g").arg("h"),
        Cmd::new("PERSIST").arg("str:10"),                     // ttl absent on target
        Cmd::new("PEXPIRE").arg("str:11").arg(50_000_000),     // ttl present on target only
        Cmd::new("PEXPIREAT").arg("str:20").arg(exp + 60_000), // ttl beyond tolerance
        Cmd::new("PEXPIREAT").arg("str:30").arg(exp + 500),    // within tolerance: equal
        Cmd::new("SADD").arg("intset:small").arg(99999),       // length
        Cmd::new("HSET").arg("hash:big").arg("f250").arg("deep"), // big hash element
        Cmd::new("LSET").arg("list:big").arg(200).arg("deep"), // big list element
        Cmd::new("SREM").arg("set:big").arg("m123"),           // big set member
        Cmd::new("SADD").arg("set:big").arg("m123x"),          //
        Cmd::new("ZADD").arg("zset:big").arg("0.25").arg("z299"), // big zset score
    ];
    load(&t, inject).await;
    let d = verify(s.addr(), t.addr(), settings(Depth::Full)).await;
    let mut want = vec![
        ("hash:big", DiffKind::Value),
        ("hash:small", DiffKind::Value),
        ("intset:small", DiffKind::Length),
        ("list:big", DiffKind::Value),
        ("list:small", DiffKind::Value),
        ("only-on-target", DiffKind::ExtraOnTarget),
        ("set:big", DiffKind::Value),
        ("set:small", DiffKind::Value),
        ("str:1", DiffKind::MissingOnTarget),
        ("str:10", DiffKind::Ttl),
        ("str:11", DiffKind::Ttl),
        ("str:2", DiffKind::Type),
        ("str:20", DiffKind::Ttl),
        ("str:3", DiffKind::Value),
        ("stream:small", DiffKind::Value),
        ("zset:big", DiffKind::Value),
        ("zset:small", DiffKind::Value),
    ];
    want.sort();
    let mut got: Vec<(String, DiffKind)> = found(&d);
    got.sort();
    let want: Vec<(String, DiffKind)> = want.into_iter().map(|(k, x)| (k.to_string(), x)).collect();
    assert_eq!(got, want);
    let detail = |k: &str| d.iter().find(|x| x.key == k.as_bytes()).unwrap().detail.clone().unwrap_or_default();
    assert!(detail("hash:big").contains("f250"), "{}", detail("hash:big"));
    assert!(detail("list:big").contains("index 200"), "{}", detail("list:big"));
    assert!(detail("set:big").contains("m123"), "{}", detail("set:big"));
    assert!(detail("hash:small").contains("\"changed\""), "{}", detail("hash:small"));
    assert!(detail("stream:small").contains("1001-0"), "{}", detail("stream:small"));
    assert!(detail("str:10").contains("no TTL on target"), "{}", detail("str:10"));
    let ty = d.iter().find(|x| x.key == "str:2".as_bytes()).unwrap();
    assert_eq!((ty.source.ty, ty.target.ty), (Some(KeyType::String), Some(KeyType::List)));

    // meta mode: presence, type, length and TTL only
    let d = verify(s.addr(), t.addr(), settings(Depth::Meta)).await;
    let mut got = found(&d);
    got.sort();
    assert_eq!(
        got,
        [
            ("intset:small", DiffKind::Length),
            ("only-on-target", DiffKind::ExtraOnTarget),
            ("str:1", DiffKind::MissingOnTarget),
            ("str:10", DiffKind::Ttl),
            ("str:11", DiffKind::Ttl),
            ("str:2", DiffKind::Type),
            ("str:20", DiffKind::Ttl),
        ]
        .map(|(k, x)| (k.to_string(), x))
    );
    // keys mode: presence and type
    let d = verify(s.addr(), t.addr(), settings(Depth::Keys)).await;
    assert_eq!(d.len(), 3, "{:?}", found(&d));
    // filters: pattern and type
    let d = verify(
        s.addr(),
        t.addr(),
        Settings {
            patterns: df2redis::verify::glob::Patterns::parse(&["str:1*|only*".into()]),
            ..settings(Depth::Full)
        },
    )
    .await;
    assert_eq!(found(&d).len(), 4, "{:?}", found(&d)); // str:1, str:10, str:11, only-on-target
    let d = verify(s.addr(), t.addr(), Settings { types: vec![KeyType::Zset], ..settings(Depth::Full) }).await;
    assert_eq!(found(&d).len(), 2, "{:?}", found(&d));
}

#[tokio::test]
async fn one_changed_field_deep_inside_a_200k_field_hash() {
    let (s, t) = pair(ServerOptions::default()).await;
    let fields = |changed: bool| {
        (0..200_000u32)
            .collect::<Vec<_>>()
            .chunks(1000)
            .map(move |c| {
                let mut cmd = Cmd::new("HSET").arg("huge");
                for &i in c {
                    let v = if changed && i == 177_777 { "CHANGED".to_string() } else { format!("value-{i}") };
                    cmd = cmd.arg(format!("field:{i}")).arg(v);
                }
                cmd
            })
            .collect::<Vec<_>>()
    };
    load(&s, fields(false)).await;
    load(&t, fields(false).into_iter().rev()).await;
    let st = Settings { big_threshold: 1024, chunk: 1024, ..Settings::default() };
    assert!(verify(s.addr(), t.addr(), st.clone()).await.is_empty());
    load(&t, [Cmd::new("HSET").arg("huge").arg("field:177777").arg("CHANGED")]).await;
    let d = verify(s.addr(), t.addr(), st).await;
    assert_eq!(found(&d), vec![("huge".to_string(), DiffKind::Value)]);
    let detail = d[0].detail.clone().unwrap();
    assert!(detail.contains("field:177777") && detail.contains("CHANGED"), "{detail}");
    assert_eq!(d[0].source.len, Some(200_000));
}

#[tokio::test]
async fn exit_codes_and_reports_through_the_cli() {
    use clap::Parser;
    use df2redis::verify::VerifyArgs;
    use std::process::ExitCode;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        v: VerifyArgs,
    }
    let (s, t) = pair(ServerOptions::default()).await;
    let data = dataset(200, 10, now_ms(3_600_000), false);
    load(&s, data.iter().map(|x| x.1.clone())).await;
    load(&t, data.into_iter().map(|x| x.1)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["verify", "--source-addr", s.addr(), "--target-addr", t.addr(), "--no-progress"];
        a.extend_from_slice(extra);
        Cli::try_parse_from(a).unwrap().v
    };
    assert_eq!(df2redis::verify::cli::run_async(args(&["--compare-times", "1"])).await, ExitCode::from(0));
    load(&t, [Cmd::new("DEL").arg("str:5")]).await;
    let rd = dir.path().to_str().unwrap();
    let code =
        df2redis::verify::cli::run_async(args(&["--compare-times", "2", "--interval", "0", "--result-dir", rd])).await;
    assert_eq!(code, ExitCode::from(1));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["diffs"][0]["key"], "str:5");
    assert_eq!(report["diffs"][0]["kind"], "missing_on_target");
    assert_eq!(report["rounds"], serde_json::json!([1, 1]));
    let repair = std::fs::read_to_string(dir.path().join("repair.jsonl")).unwrap();
    assert_eq!(repair.trim(), r#"{"db":0,"key":"str:5","key_hex":"7374723a35"}"#);
    // Go-tool flags and a sample of keys: exactly N keys per direction are checked.
    let plan = args(&["--mode", "outline", "--sample", "50", "--compare-times", "1"]).plan().unwrap();
    let report = df2redis::verify::cli::execute(&plan, df2redis::verify::progress::Progress::hidden()).await.unwrap();
    assert_eq!((report.source_keys, report.target_keys), (50, 50));
    assert_eq!(report.mode, "keys");
}

#[tokio::test]
async fn rate_limit_holds_reads_to_the_configured_ops_per_second() {
    let (s, t) = pair(ServerOptions::default()).await;
    let keys = (0..1000).map(|i| Cmd::new("SET").arg(format!("k{i}")).arg("v"));
    load(&s, keys.clone()).await;
    load(&t, keys).await;
    let start = std::time::Instant::now();
    // keys mode: ~1 op per key per side and direction; 1000 ops/s → ≥ ~0.9 s per direction.
    let d = verify(s.addr(), t.addr(), Settings { depth: Depth::Keys, qps: Some(1000), ..Settings::default() }).await;
    assert!(d.is_empty());
    let took = start.elapsed().as_secs_f64();
    assert!(took >= 1.7, "{took}");
}
