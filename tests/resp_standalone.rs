//! RESP client against a real redis-server: pipelining, FIFO matching, binary safety, error
//! replies, AUTH, SELECT, timeouts.

use bytes::Bytes;
use df2redis::resp::{Auth, Client, Cmd, ConnectOptions, Connection, Frame, Pipeline, RespError};
use df2redis::testkit::{shared_server, RedisServer, ServerOptions};

#[tokio::test]
async fn pipeline_100k_set_get_fifo() {
    let s = shared_server().await.unwrap();
    let mut p = s.pipeline().await.unwrap();
    let n = 100_000usize;
    let sets = (0..n).map(|i| Cmd::new("SET").arg(format!("key:{i}")).arg(format!("value-{i}")));
    let mut oks = 0;
    let sent = p.run(sets, 512, |_, f| oks += usize::from(f.is_ok())).await.unwrap();
    assert_eq!((sent, oks), (n, n));
    let gets = (0..n).map(|i| Cmd::new("GET").arg(format!("key:{i}")));
    let mut mismatches = 0;
    p.run(gets, 300, |i, f| {
        if f.as_bytes() != Some(format!("value-{i}").as_bytes()) {
            mismatches += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(mismatches, 0);
    assert_eq!(s.cmd(&Cmd::new("DBSIZE")).await.unwrap().as_int(), Some(n as i64));
}

#[tokio::test]
async fn client_concurrent_callers_fifo() {
    let s = shared_server().await.unwrap();
    let client = s.client().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut futs = Vec::new();
            for i in 0..5_000 {
                futs.push(c.send(Cmd::new("INCRBY").arg(format!("ctr:{t}")).arg(1)));
                if i % 7 == 0 {
                    futs.push(c.send(Cmd::new("ECHO").arg(format!("{t}/{i}"))));
                }
            }
            let mut last = 0;
            let mut echoes = 0;
            for f in futs {
                match f.await.unwrap() {
                    Frame::Integer(v) => {
                        assert_eq!(v, last + 1, "INCRBY replies out of order");
                        last = v;
                    }
                    Frame::Bulk(b) => {
                        assert!(b.starts_with(format!("{t}/").as_bytes()));
                        echoes += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (last, echoes)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (5_000, 715));
    }
}

#[tokio::test]
async fn binary_safe_arguments() {
    let s = shared_server().await.unwrap();
    let client = s.client().await.unwrap();
    let key: Vec<u8> = vec![0, b'\r', b'\n', 0xff, b'{', b'}', b' '];
    let mut val: Vec<u8> = (0..=255u8).collect();
    val.extend_from_slice(b"\r\n$-1\r\n*3\r\n");
    val.extend(std::iter::repeat_n(0u8, 1 << 20));
    client.send(Cmd::new("SET").arg(&key).arg(&val)).await.unwrap();
    let got = client.send(Cmd::new("GET").arg(&key)).await.unwrap();
    assert_eq!(got, Frame::Bulk(Bytes::from(val.clone())));
    let empty = client.send(Cmd::new("GET").arg(&b""[..])).await.unwrap();
    assert!(empty.is_null());
    client.send(Cmd::new("SET").arg(&b""[..]).arg(&b""[..])).await.unwrap();
    assert_eq!(client.send(Cmd::new("GET").arg(&b""[..])).await.unwrap(), Frame::Bulk(Bytes::new()));
}

#[tokio::test]
async fn error_replies_do_not_break_the_pipeline() {
    let s = shared_server().await.unwrap();
    let client = s.client().await.unwrap();
    client.send(Cmd::new("LPUSH").arg("list").arg("x")).await.unwrap();
    let a = client.send(Cmd::new("SET").arg("a").arg("1"));
    let bad = client.send(Cmd::new("INCR").arg("list"));
    let unknown = client.send(Cmd::new("NOSUCHCOMMAND"));
    let b = client.send(Cmd::new("GET").arg("a"));
    assert!(a.await.unwrap().is_ok());
    let e = bad.await.unwrap_err();
    assert!(matches!(&e, RespError::Server { msg, .. } if msg.starts_with("WRONGTYPE")), "{e:?}");
    assert_eq!(e.addr(), s.addr());
    assert!(!e.is_fatal());
    assert!(unknown.await.unwrap_err().server_message().unwrap().starts_with("ERR unknown command"));
    assert_eq!(b.await.unwrap().as_bytes(), Some(&b"1"[..]));

    let mut p = s.pipeline().await.unwrap();
    p.push(&Cmd::new("INCR").arg("list"));
    p.push(&Cmd::new("PING"));
    let replies = p.drain().await.unwrap();
    assert!(replies[0].is_error());
    assert_eq!(replies[1].as_bytes(), Some(&b"PONG"[..]));
    assert!(p.next_reply().await.is_err());
}

#[tokio::test]
async fn auth_and_select() {
    let s = RedisServer::start_with(ServerOptions { password: Some("s3cret pass".into()), ..Default::default() })
        .await
        .unwrap();
    let noauth = Connection::connect(s.addr(), &ConnectOptions::default())
        .await
        .unwrap()
        .request(&Cmd::new("GET").arg("k"))
        .await;
    assert!(noauth.unwrap_err().server_message().unwrap().starts_with("NOAUTH"));

    let wrong = ConnectOptions { auth: Some(Auth::Password("nope".into())), ..Default::default() };
    let err = Connection::connect(s.addr(), &wrong).await.unwrap_err();
    assert!(err.server_message().is_some_and(|m| m.contains("WRONGPASS") || m.contains("invalid")), "{err:?}");
    assert!(!err.to_string().contains("nope"));

    let user = ConnectOptions {
        auth: Some(Auth::User { user: "default".into(), password: "s3cret pass".into() }),
        db: Some(3),
        client_name: Some("df2redis-test".into()),
        ..Default::default()
    };
    let c = Client::connect(s.addr(), &user).await.unwrap();
    c.send(Cmd::new("SET").arg("in3").arg("yes")).await.unwrap();
    let info = c.send(Cmd::new("CLIENT").arg("INFO")).await.unwrap().to_string_lossy();
    assert!(info.contains("db=3") && info.contains("name=df2redis-test"), "{info}");

    let db0 = ConnectOptions { auth: Some(Auth::Password("s3cret pass".into())), ..Default::default() };
    let mut c0 = Connection::connect(s.addr(), &db0).await.unwrap();
    assert!(c0.request(&Cmd::new("GET").arg("in3")).await.unwrap().is_null());
    c0.request(&Cmd::new("SELECT").arg(3)).await.unwrap();
    assert_eq!(c0.request(&Cmd::new("GET").arg("in3")).await.unwrap().as_bytes(), Some(&b"yes"[..]));

    let bad_db = ConnectOptions { db: Some(99_999), ..db0 };
    assert!(Connection::connect(s.addr(), &bad_db).await.unwrap_err().server_message().is_some());
}

#[tokio::test]
async fn killed_server_surfaces_closed_and_refused() {
    let mut s = RedisServer::start().await.unwrap();
    let c = s.client().await.unwrap();
    let mut p = s.pipeline().await.unwrap();
    assert!(c.send(Cmd::new("PING")).await.is_ok());
    let addr = s.addr().to_owned();
    s.kill();
    assert!(!s.is_running());
    let e = c.send(Cmd::new("PING")).await.unwrap_err();
    assert!(e.is_fatal() && e.addr() == addr, "{e:?}");
    p.push(&Cmd::new("PING"));
    assert!(p.next_reply().await.unwrap_err().is_fatal());
    let e = Connection::connect(&addr, &ConnectOptions::default()).await.unwrap_err();
    assert!(matches!(e, RespError::Io { .. }), "{e:?}");
}

#[tokio::test]
async fn response_timeout_on_blocked_server() {
    let s = shared_server().await.unwrap();
    let opts = ConnectOptions { response_timeout: Some(std::time::Duration::from_millis(200)), ..Default::default() };
    let mut conn = Connection::connect(s.addr(), &opts).await.unwrap();
    let e = conn.request(&Cmd::new("BLPOP").arg("never").arg(5)).await.unwrap_err();
    assert!(matches!(e, RespError::Timeout { .. }), "{e:?}");
    assert!(conn.request(&Cmd::new("PING")).await.is_err(), "a timed-out connection stays broken");
}

#[tokio::test]
async fn pipeline_raw_encoding_and_large_replies() {
    let s = shared_server().await.unwrap();
    let mut p: Pipeline = s.pipeline().await.unwrap();
    let big = vec![b'x'; 300_000];
    for i in 0..64 {
        p.push_args(&[&b"SET"[..], format!("big{i}").as_bytes(), &big]);
    }
    p.push_encoded(2, |buf| {
        df2redis::resp::encode_command(buf, &["RPUSH", "l", "a", "b"]);
        df2redis::resp::encode_command(buf, &["LRANGE", "l", "0", "-1"]);
    });
    let r = p.drain().await.unwrap();
    assert_eq!(r.len(), 66);
    assert!(r[..64].iter().all(Frame::is_ok));
    assert_eq!(r[65].as_array().map(<[Frame]>::len), Some(2));
    for i in 0..64 {
        p.push(&Cmd::new("GET").arg(format!("big{i}")));
    }
    for f in p.drain().await.unwrap() {
        assert_eq!(f.as_bytes().map(<[u8]>::len), Some(big.len()));
    }
}
