//! The server-side codec behind a real socket: our `Client`, raw inline bytes in pieces, and the
//! real `redis-cli` all talk to a tiny server built on `resp::server`.

use bytes::BytesMut;
use df2redis::resp::server::{write_array_header, write_bulk, write_error, write_int, CommandReader};
use df2redis::resp::{Client, Cmd, ConnectOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Replies: PING → +PONG, ECHO x → x, ARGS ... → array of its args, LEN ... → argc, else error.
async fn serve(mut sock: TcpStream) {
    let mut reader = CommandReader::default();
    let mut inbuf = BytesMut::new();
    let mut out = BytesMut::new();
    loop {
        loop {
            match reader.read(&mut inbuf) {
                Ok(Some(args)) => match args[0].to_ascii_uppercase().as_slice() {
                    b"PING" => df2redis::resp::server::write_simple(&mut out, "PONG"),
                    b"ECHO" if args.len() == 2 => write_bulk(&mut out, &args[1]),
                    b"ARGS" => {
                        write_array_header(&mut out, args.len() - 1);
                        for a in &args[1..] {
                            write_bulk(&mut out, a);
                        }
                    }
                    b"LEN" => write_int(&mut out, args.len() as i64),
                    _ => write_error(&mut out, "ERR unknown command"),
                },
                Ok(None) => break,
                Err(e) => {
                    write_error(&mut out, &format!("ERR Protocol error: {e}"));
                    let _ = sock.write_all(&out).await;
                    return;
                }
            }
        }
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match sock.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn start() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("local addr").to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

#[tokio::test]
async fn client_round_trips_through_server_codec() {
    let addr = start().await;
    let c = Client::connect(&addr, &ConnectOptions::default()).await.unwrap();
    let mut futs = Vec::new();
    for i in 0..20_000u32 {
        futs.push(c.send(Cmd::new("ARGS").arg(i).arg(&[0u8, 13, 10][..]).arg(&b""[..])));
    }
    for (i, f) in futs.into_iter().enumerate() {
        let f = f.await.unwrap();
        let a = f.as_array().unwrap();
        assert_eq!(a[0].as_int(), Some(i as i64));
        assert_eq!(a[1].as_bytes(), Some(&[0u8, 13, 10][..]));
        assert_eq!(a[2].as_bytes(), Some(&b""[..]));
    }
    assert!(c.send(Cmd::new("NOPE")).await.unwrap_err().server_message().is_some());
    assert_eq!(
        c.send(Cmd::new("ECHO").arg(vec![7u8; 1 << 20])).await.unwrap().as_bytes().map(<[u8]>::len),
        Some(1 << 20)
    );
}

#[tokio::test]
async fn inline_commands_in_pieces() {
    let addr = start().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for piece in [&b"PI"[..], b"NG\r\n", b"LEN a  \"b c\" ", b"'d'\r\n*2\r\n$4\r\nEC", b"HO\r\n$2\r\nhi\r\n"] {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let want = b"+PONG\r\n:4\r\n$2\r\nhi\r\n";
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, want);
    s.write_all(b"*1\r\n:5\r\n").await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.starts_with(b"-ERR Protocol error"), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn real_redis_cli_talks_to_server_codec() {
    let addr = start().await;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = tokio::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "ARGS", "x y", "", "z"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x y\n\nz\n");
    let out = tokio::process::Command::new("redis-cli").args(["-h", host, "-p", port, "PING"]).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PONG\n");
}
