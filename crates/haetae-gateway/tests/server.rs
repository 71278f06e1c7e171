//! The gateway's own HTTP/1.1 server, seen from a raw client socket: request smuggling
//! refused before anything reaches the upstream, pipelining, chunked and `Expect:
//! 100-continue` request bodies, bodiless responses, limits and timeouts, keep-alive rules
//! and shutdown. Real sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestGateway;
use haetae_core::config::GatewayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the upstream received: (head, body) per request.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Reads a head byte by byte up to the blank line; `None` at end of stream.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.ok()?);
        assert!(head.len() < 70 * 1024, "head too long");
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or_default()
}

/// Reads a body framed by `Content-Length` or chunked.
async fn read_body(s: &mut TcpStream, head: &str) -> Vec<u8> {
    if value(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                line.push(s.read_u8().await.unwrap());
            }
            let text = String::from_utf8(line).unwrap();
            let size = usize::from_str_radix(text.trim().split(';').next().unwrap(), 16).unwrap();
            if size == 0 {
                // Trailers, up to the blank line.
                let mut rest = Vec::new();
                while !(rest.ends_with(b"\r\n") && (rest.len() == 2 || rest.ends_with(b"\r\n\r\n")))
                {
                    rest.push(s.read_u8().await.unwrap());
                }
                return body;
            }
            let mut chunk = vec![0; size + 2];
            s.read_exact(&mut chunk).await.unwrap();
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let len: usize = value(head, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    body
}

/// A raw upstream: reads each request (`Content-Length` or chunked body), records it, and
/// answers `200` with `x-seen-path` and the body echoed (`HEAD`: the length only).
async fn spawn_echo_backend() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut s).await {
                    let body = read_body(&mut s, &head).await;
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let head_request = head.starts_with("HEAD ");
                    record.lock().unwrap().push((head, body.clone()));
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\nx-seen-path: {path}\r\ncontent-length: {}\r\n\r\n",
                        body.len().max(5)
                    )
                    .into_bytes();
                    if !head_request {
                        if body.is_empty() {
                            answer.extend_from_slice(b"empty");
                        } else {
                            answer.extend_from_slice(&body);
                        }
                    }
                    if s.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn policy(upstream: SocketAddr) -> String {
    format!(
        "[[services]]\nid = \"bank\"\nupstream = \"http://{upstream}\"\n[[services.match]]\npath_prefix = \"/\"\n"
    )
}

async fn connect(gw: &TestGateway) -> TcpStream {
    TcpStream::connect(gw.addr).await.unwrap()
}

/// Reads until the peer closes (or 5 s pass): what arrived.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was not closed");
    rest
}

#[tokio::test]
async fn request_smuggling_is_refused_before_anything_reaches_the_upstream() {
    let (backend, seen) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    for attack in [
        // CL.TE: a front end that believes Content-Length forwards "0\r\n\r\nGET /admin…".
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 3, 4\r\n\r\nabcd",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nContent-Length: +3\r\n\r\nabc",
        "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: bank.example\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: bank.example\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let mut s = connect(&gw).await;
        s.write_all(attack.as_bytes()).await.unwrap();
        let head = read_head(&mut s).await.expect("an answer");
        assert_eq!(status(&head), "400", "{attack:?}: {head}");
        assert_eq!(value(&head, "connection"), Some("close"), "{head}");
        let body = read_body(&mut s, &head).await;
        assert!(
            String::from_utf8(body)
                .unwrap()
                .starts_with("Bad request: ")
        );
        // Nothing after the refusal: the smuggled request is never read.
        assert!(read_to_close(&mut s).await.is_empty(), "{attack:?}");
    }
    // A malformed chunked body (after a valid head) never completes upstream.
    let mut s = connect(&gw).await;
    s.write_all(b"POST /c HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX\r\n0\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the upstream: {:?}",
        seen.lock().unwrap()
    );
    gw.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (backend, seen) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(
        b"GET /one HTTP/1.1\r\nHost: bank.example\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 5\r\n\r\nhello\
          POST /three HTTP/1.1\r\nHost: bank.example\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n\
          GET /four HTTP/1.1\r\nHost: bank.example\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..4 {
        let head = read_head(&mut s).await.expect("an answer");
        let body = read_body(&mut s, &head).await;
        answers.push((
            value(&head, "x-seen-path").unwrap_or_default().to_owned(),
            String::from_utf8(body).unwrap(),
        ));
        if answers.len() == 4 {
            assert_eq!(value(&head, "connection"), Some("close"));
        }
    }
    assert_eq!(
        answers,
        [
            ("/one".to_owned(), "empty".to_owned()),
            ("/two".to_owned(), "hello".to_owned()),
            ("/three".to_owned(), "abcde".to_owned()),
            ("/four".to_owned(), "empty".to_owned()),
        ]
    );
    assert!(read_to_close(&mut s).await.is_empty());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    // The chunked body went on chunked (its length was not known), without the trailer.
    assert_eq!(value(&seen[2].0, "transfer-encoding"), Some("chunked"));
    assert!(value(&seen[2].0, "x-trailer").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_read() {
    let (backend, _) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(
        b"POST /up HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = read_head(&mut s).await.unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"secret").await.unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "200", "{head}");
    assert_eq!(read_body(&mut s, &head).await, b"secret");
    gw.stop().await;
}

#[tokio::test]
async fn head_answers_have_no_body_and_keep_the_connection() {
    let (backend, _) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: bank.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "200", "{head}");
    assert_eq!(value(&head, "content-length"), Some("5"), "the upstream's");
    assert!(value(&head, "date").is_some(), "{head}");
    // The next bytes are the next answer's: no body was written.
    s.write_all(b"GET /g HTTP/1.1\r\nHost: bank.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(value(&head, "x-seen-path"), Some("/g"));
    gw.stop().await;
}

#[tokio::test]
async fn an_oversized_head_is_431_and_a_slow_one_is_cut_at_the_header_timeout() {
    let (backend, seen) = spawn_echo_backend().await;
    let config = GatewayConfig {
        client_header_timeout_ms: 300,
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(&policy(backend), config).await;
    let mut s = connect(&gw).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: bank.example\r\nCookie: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    // The gateway may close before all is written.
    let _ = s.write_all(big.as_bytes()).await;
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "431", "{head}");

    // Slowloris: a head that never ends.
    let mut s = connect(&gw).await;
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: bank.example\r\n")
        .await
        .unwrap();
    let mut trickle = tokio::time::interval(Duration::from_millis(50));
    let closed = loop {
        trickle.tick().await;
        if s.write_all(b"X-A: b\r\n").await.is_err() {
            break true;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => break true,
            _ if started.elapsed() > Duration::from_secs(5) => break false,
            _ => {}
        }
    };
    assert!(closed, "the slow head was not cut");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // An idle keep-alive connection is closed at the same timeout.
    let mut s = connect(&gw).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bank.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await.unwrap();
    read_body(&mut s, &head).await;
    assert!(read_to_close(&mut s).await.is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn http10_closes_unless_it_asks_for_keep_alive() {
    let (backend, _) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(b"GET /x HTTP/1.0\r\n\r\n").await.unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "200");
    assert_eq!(value(&head, "connection"), Some("close"));
    read_body(&mut s, &head).await;
    assert!(read_to_close(&mut s).await.is_empty());

    let mut s = connect(&gw).await;
    for path in ["/a", "/b"] {
        s.write_all(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut s).await.unwrap();
        assert_eq!(value(&head, "connection"), Some("keep-alive"), "{head}");
        assert_eq!(value(&head, "x-seen-path"), Some(path));
        read_body(&mut s, &head).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn an_unread_small_body_is_drained_and_a_large_one_closes_the_connection() {
    let (backend, seen) = spawn_echo_backend().await;
    // Only /bank is served: elsewhere the gateway answers 404 itself, without reading
    // the body.
    let gw = TestGateway::start(&format!(
        "[[services]]\nid = \"bank\"\nupstream = \"http://{backend}\"\n[[services.match]]\npath_prefix = \"/bank\"\n"
    ))
    .await;
    let mut s = connect(&gw).await;
    s.write_all(b"POST /elsewhere HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 10\r\n\r\n0123456789GET /bank/next HTTP/1.1\r\nHost: bank.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "404", "{head}");
    assert!(value(&head, "connection").is_none(), "{head}");
    read_body(&mut s, &head).await;
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(value(&head, "x-seen-path"), Some("/bank/next"), "{head}");
    read_body(&mut s, &head).await;

    let mut s = connect(&gw).await;
    s.write_all(
        b"POST /elsewhere HTTP/1.1\r\nHost: bank.example\r\nContent-Length: 1000000\r\n\r\n0123",
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await.unwrap();
    assert_eq!(status(&head), "404", "{head}");
    assert_eq!(value(&head, "connection"), Some("close"), "{head}");
    read_body(&mut s, &head).await;
    assert!(read_to_close(&mut s).await.is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let (backend, _) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bank.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await.unwrap();
    read_body(&mut s, &head).await;
    let started = Instant::now();
    gw.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited for an idle connection"
    );
    assert!(read_to_close(&mut s).await.is_empty());
}

#[tokio::test]
async fn h2c_with_prior_knowledge_still_goes_to_http2() {
    let (backend, _) = spawn_echo_backend().await;
    let gw = TestGateway::start(&policy(backend)).await;
    let mut s = connect(&gw).await;
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's first frame is its SETTINGS (type 4).
    let mut frame = [0u8; 9];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 4, "a SETTINGS frame: {frame:?}");
    gw.stop().await;
}
