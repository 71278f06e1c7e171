//! Request-path hardening, seen from both sides on raw sockets: which protocol upgrades reach
//! the upstream, requests without `Host`, who may set the forwarding headers, and when the
//! upstream pool sends a request again. Real sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestGateway;
use haetae_core::config::GatewayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the raw upstream does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    /// `200`, keep-alive, body `conn=<connection number>`.
    Answer,
    /// Close the connection without a byte of response (a stale keep-alive connection).
    Close,
    /// Write the first bytes of a status line, then close.
    Partial,
}

/// The request heads a raw upstream read: (connection number from 0, head).
#[derive(Default)]
struct Seen(Mutex<Vec<(usize, String)>>);

impl Seen {
    fn heads(&self) -> Vec<(usize, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// Reads an HTTP/1.1 head (up to the blank line) byte by byte; `None` at end of stream.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.ok()?);
        assert!(head.len() < 16 * 1024, "head too long");
    }
    Some(String::from_utf8(head).unwrap())
}

/// The values of header `name` in `head`, in order.
fn values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// A raw HTTP/1.1 upstream: reads each request (head and `Content-Length` body), records
/// the head, and does what `act(connection, request on that connection)` says.
async fn spawn_raw_backend(act: fn(usize, usize) -> Act) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut conns = 0;
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let conn = conns;
            conns += 1;
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                for nth in 0.. {
                    let Some(head) = read_head(&mut s).await else {
                        return;
                    };
                    let len: usize = values(&head, "content-length")
                        .first()
                        .map_or(0, |v| v.parse().unwrap());
                    let mut body = vec![0; len];
                    if s.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    record.0.lock().unwrap().push((conn, head));
                    match act(conn, nth) {
                        Act::Answer => {
                            let body = format!("conn={conn}");
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Act::Close => return,
                        Act::Partial => {
                            let _ = s.write_all(b"HTTP/1.1 20").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn policy(upstream: SocketAddr) -> String {
    format!("[[services]]\nid = \"bank\"\nupstream = \"http://{upstream}\"\n")
}

/// Sends raw bytes to the gateway and reads its response head and `Content-Length` body.
async fn exchange(gw: &TestGateway, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await.expect("a response head");
    let len: usize = values(&head, "content-length")
        .first()
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn only_a_websocket_upgrade_reaches_the_upstream_and_http2_settings_never_does() {
    let (backend, seen) = spawn_raw_backend(|_, _| Act::Answer).await;
    let gw = TestGateway::start(&policy(backend)).await;
    for upgrade in [
        // RFC 7540 §3.2's h2c upgrade, as curl --http2 sends it.
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
        // HTTP2-Settings not named in Connection.
        "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
        // A list that includes websocket, and another protocol.
        "Connection: upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "Connection: upgrade\r\nUpgrade: TLS/1.2\r\n",
        // Two Upgrade fields.
        "Connection: upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n",
    ] {
        let (head, body) = exchange(
            &gw,
            &format!("GET /x HTTP/1.1\r\nHost: bank.example\r\n{upgrade}\r\n"),
        )
        .await;
        assert_eq!(status(&head), "200", "{upgrade:?}: {head}");
        assert!(body.starts_with("conn="), "{body}");
        let (_, upstream_head) = seen.heads().pop().unwrap();
        for name in ["upgrade", "http2-settings", "connection"] {
            assert!(
                values(&upstream_head, name).is_empty(),
                "{upgrade:?}: {name} reached the upstream:\n{upstream_head}"
            );
        }
    }
    assert_eq!(
        gw.gateway
            .metrics()
            .upgrades
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_http11_request_without_exactly_one_valid_host_is_refused_with_400() {
    let (backend, seen) = spawn_raw_backend(|_, _| Act::Answer).await;
    let gw = TestGateway::start(&policy(backend)).await;
    for request in [
        "GET /x HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: user@bank.example\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: bank example\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: bank.example/admin\r\n\r\n",
        "GET http://bank.example/x HTTP/1.1\r\n\r\n",
    ] {
        let (head, _) = exchange(&gw, request).await;
        assert_eq!(status(&head), "400", "{request:?}: {head}");
    }
    assert!(seen.heads().is_empty(), "nothing reached the upstream");
    // HTTP/1.0 may omit Host; a valid one passes.
    for request in [
        "GET /x HTTP/1.0\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: bank.example:8443\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
    ] {
        let (head, _) = exchange(&gw, request).await;
        assert_eq!(status(&head), "200", "{request:?}: {head}");
    }
    gw.stop().await;
}

const FORGED: &str = "X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: admin.internal\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.9.9.9;proto=https\r\n";

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_client_are_replaced() {
    let (backend, seen) = spawn_raw_backend(|_, _| Act::Answer).await;
    let gw = TestGateway::start(&policy(backend)).await;
    let (head, _) = exchange(
        &gw,
        &format!("GET /x HTTP/1.1\r\nHost: bank.example:8080\r\n{FORGED}\r\n"),
    )
    .await;
    assert_eq!(status(&head), "200", "{head}");
    let (_, up) = seen.heads().pop().unwrap();
    assert_eq!(values(&up, "x-forwarded-for"), ["127.0.0.1"], "{up}");
    assert_eq!(values(&up, "x-forwarded-host"), ["bank.example"], "{up}");
    assert_eq!(values(&up, "x-forwarded-proto"), ["http"], "{up}");
    assert_eq!(
        values(&up, "forwarded"),
        ["for=127.0.0.1;proto=http;host=bank.example"],
        "{up}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_kept_and_appended_to() {
    let (backend, seen) = spawn_raw_backend(|_, _| Act::Answer).await;
    let config = GatewayConfig {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(&policy(backend), config).await;
    let (head, _) = exchange(
        &gw,
        &format!("GET /x HTTP/1.1\r\nHost: bank.example:8080\r\n{FORGED}\r\n"),
    )
    .await;
    assert_eq!(status(&head), "200", "{head}");
    let (_, up) = seen.heads().pop().unwrap();
    assert_eq!(
        values(&up, "x-forwarded-for"),
        ["10.9.9.9, 127.0.0.1"],
        "{up}"
    );
    assert_eq!(values(&up, "x-forwarded-host"), ["admin.internal"], "{up}");
    assert_eq!(values(&up, "x-forwarded-proto"), ["https"], "{up}");
    let forwarded = values(&up, "forwarded").join(", ");
    assert_eq!(
        forwarded, "for=10.9.9.9;proto=https, for=127.0.0.1;proto=http;host=bank.example",
        "{up}"
    );
    gw.stop().await;
}

const GET: &str = "GET /x HTTP/1.1\r\nHost: bank.example\r\n\r\n";
const POST: &str = "POST /transfer HTTP/1.1\r\nHost: bank.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\namount=10";

/// Lets the upstream record what it may still receive.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Longer than the pool's idle time after which a connection may be stale (250 ms).
async fn idle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_get_on_a_stale_keep_alive_connection_is_sent_once_more_on_a_new_one() {
    // The first connection answers once, then closes at the next request without a byte
    // of response, as an upstream whose keep-alive timeout fired just then.
    let (backend, seen) = spawn_raw_backend(|c, n| {
        if c == 0 && n == 1 {
            Act::Close
        } else {
            Act::Answer
        }
    })
    .await;
    let gw = TestGateway::start(&policy(backend)).await;
    let (head, body) = exchange(&gw, GET).await;
    assert_eq!((status(&head), body.as_str()), ("200", "conn=0"));
    idle().await;
    let (head, body) = exchange(&gw, GET).await;
    assert_eq!((status(&head), body.as_str()), ("200", "conn=1"), "{head}");
    settle().await;
    let conns: Vec<usize> = seen.heads().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0, 1]);
    gw.stop().await;
}

#[tokio::test]
async fn a_post_whose_bytes_were_written_is_never_sent_again() {
    let (backend, seen) = spawn_raw_backend(|c, n| {
        if c == 0 && n == 1 {
            Act::Close
        } else {
            Act::Answer
        }
    })
    .await;
    let gw = TestGateway::start(&policy(backend)).await;
    let (head, _) = exchange(&gw, POST).await;
    assert_eq!(status(&head), "200");
    idle().await;
    let (head, _) = exchange(&gw, POST).await;
    assert_eq!(status(&head), "502", "{head}");
    settle().await;
    let conns: Vec<usize> = seen.heads().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0], "the upstream got the second POST once");
    gw.stop().await;
}

#[tokio::test]
async fn a_get_is_not_sent_again_once_response_bytes_arrived_nor_more_than_once() {
    // A response that breaks off after its first bytes: the upstream was answering.
    let (backend, seen) = spawn_raw_backend(|c, n| {
        if c == 0 && n == 1 {
            Act::Partial
        } else {
            Act::Answer
        }
    })
    .await;
    let gw = TestGateway::start(&policy(backend)).await;
    assert_eq!(status(&exchange(&gw, GET).await.0), "200");
    idle().await;
    let (head, _) = exchange(&gw, GET).await;
    assert_eq!(status(&head), "502", "{head}");
    settle().await;
    let conns: Vec<usize> = seen.heads().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0]);
    gw.stop().await;

    // Every connection but the first answer closes without a response: one retry, then 502.
    let (backend, seen) = spawn_raw_backend(|c, n| {
        if c == 0 && n == 0 {
            Act::Answer
        } else {
            Act::Close
        }
    })
    .await;
    let gw = TestGateway::start(&policy(backend)).await;
    assert_eq!(status(&exchange(&gw, GET).await.0), "200");
    idle().await;
    let (head, _) = exchange(&gw, GET).await;
    assert_eq!(status(&head), "502", "{head}");
    settle().await;
    let conns: Vec<usize> = seen.heads().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0, 1], "the stale connection, then one new one");
    gw.stop().await;
}
