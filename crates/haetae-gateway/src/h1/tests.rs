//! The client against raw upstreams on 127.0.0.1: framing, interim responses, keep-alive
//! and what makes a connection unusable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::H1Error;
use crate::pool::{H1Pool, PoolError, PoolSettings, Pools};
use crate::proxy::ProxyBody;

/// What the upstream answers to one request.
enum Answer {
    /// These bytes, and the connection stays open.
    Keep(&'static str),
    /// These bytes, then the connection is closed.
    Close(&'static str),
}

struct Upstream {
    pool: Arc<H1Pool>,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Reads one request (head, then a `Content-Length` or chunked body); `None` at the end.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    while !req.ends_with(b"\r\n\r\n") {
        req.push(s.read_u8().await.ok()?);
    }
    let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let mut body = vec![0; len.trim().parse().unwrap()];
        s.read_exact(&mut body).await.ok()?;
        req.extend_from_slice(&body);
    } else if head.contains("transfer-encoding: chunked") {
        let start = req.len();
        while !req[start..].ends_with(b"0\r\n\r\n") {
            req.push(s.read_u8().await.ok()?);
        }
    }
    Some(req)
}

/// An upstream that answers the requests it gets, on whatever connection, with `answers`
/// in order.
async fn upstream(answers: Vec<Answer>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (r, answers) = (Arc::clone(&r), Arc::clone(&answers));
            tokio::spawn(async move {
                while let Some(req) = read_request(&mut s).await {
                    r.lock().unwrap().push(req);
                    let next = answers.lock().unwrap().next();
                    match next {
                        Some(Answer::Keep(bytes)) => {
                            if s.write_all(bytes.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Some(Answer::Close(bytes)) => {
                            let _ = s.write_all(bytes.as_bytes()).await;
                            return;
                        }
                        None => return,
                    }
                }
            });
        }
    });
    let pools = Pools::new(PoolSettings {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(60),
    });
    let pool = pools.get(&format!("127.0.0.1:{port}").parse().unwrap());
    Upstream {
        pool,
        connections,
        requests,
    }
}

fn get(path: &str) -> Request<ProxyBody> {
    Request::get(path)
        .header("host", "bank.example")
        .body(ProxyBody::empty())
        .unwrap()
}

/// Sends `req` and reads the whole response.
async fn send(u: &Upstream, req: Request<ProxyBody>) -> Result<(StatusCode, Bytes), String> {
    let response = u.pool.send(req, b"").await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

#[tokio::test]
async fn length_chunked_and_empty_bodies_keep_one_connection() {
    let u = upstream(vec![
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        Answer::Keep(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nchu\r\n5\r\nnked!\r\n0\r\nX-T: 1\r\n\r\n",
        ),
        Answer::Keep("HTTP/1.1 204 No Content\r\n\r\n"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    .await;
    assert_eq!(send(&u, get("/a")).await.unwrap().1, "hello");
    assert_eq!(send(&u, get("/b")).await.unwrap().1, "chunked!");
    assert_eq!(send(&u, get("/c")).await.unwrap().0, StatusCode::NO_CONTENT);
    assert_eq!(send(&u, get("/d")).await.unwrap().1, "");
    assert_eq!(u.connections.load(Ordering::SeqCst), 1);
    let first = String::from_utf8(u.requests.lock().unwrap()[0].clone()).unwrap();
    assert_eq!(first, "GET /a HTTP/1.1\r\nhost: bank.example\r\n\r\n");
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let u = upstream(vec![Answer::Keep(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )])
    .await;
    assert_eq!(
        send(&u, get("/")).await.unwrap(),
        (StatusCode::OK, Bytes::from("ok"))
    );
}

#[tokio::test]
async fn a_response_to_head_has_no_body_and_the_connection_is_reused() {
    let u = upstream(vec![
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    ])
    .await;
    let mut head = get("/");
    *head.method_mut() = http::Method::HEAD;
    let (status, body) = send(&u, head).await.unwrap();
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(send(&u, get("/")).await.unwrap().1, "z");
    assert_eq!(u.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_close_http10_and_close_delimited_bodies_are_not_reused() {
    let u = upstream(vec![
        Answer::Keep("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na"),
        Answer::Keep("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"),
        Answer::Close("HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        Answer::Keep("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nc"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd"),
    ])
    .await;
    assert_eq!(send(&u, get("/")).await.unwrap().1, "a");
    assert_eq!(send(&u, get("/")).await.unwrap().1, "b");
    assert_eq!(send(&u, get("/")).await.unwrap().1, "until the end");
    assert_eq!(send(&u, get("/")).await.unwrap().1, "c");
    assert_eq!(send(&u, get("/")).await.unwrap().1, "d");
    assert_eq!(u.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn ambiguous_or_broken_responses_are_errors() {
    let u = upstream(vec![Answer::Keep(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )])
    .await;
    let e = u.pool.send(get("/"), b"").await.unwrap_err();
    assert!(matches!(e, PoolError::Request(H1Error::Invalid(_))), "{e}");
    assert!(e.to_string().contains("smuggling"), "{e}");

    let u = upstream(vec![Answer::Close(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    )])
    .await;
    let e = send(&u, get("/")).await.unwrap_err();
    assert!(e.contains("before the end of the response body"), "{e}");

    let u = upstream(vec![Answer::Close(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX",
    )])
    .await;
    let e = send(&u, get("/")).await.unwrap_err();
    assert!(e.contains("CRLF"), "{e}");

    let u = upstream(vec![Answer::Close("HTTP/1.1 20")]).await;
    let e = u.pool.send(get("/"), b"").await.unwrap_err();
    assert!(
        matches!(e, PoolError::Request(H1Error::ClosedInHead)),
        "{e}"
    );
    let u = upstream(vec![Answer::Close("")]).await;
    let e = u.pool.send(get("/"), b"").await.unwrap_err();
    assert!(matches!(e, PoolError::Request(H1Error::Closed)), "{e}");
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_the_connection() {
    let u = upstream(vec![
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    ])
    .await;
    let response = u.pool.send(get("/"), b"").await.unwrap();
    drop(response);
    assert_eq!(send(&u, get("/")).await.unwrap().1, "z");
    assert_eq!(u.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn request_bodies_are_framed_by_their_length() {
    let u = upstream(vec![
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Answer::Keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    .await;
    let post = |body: ProxyBody| {
        Request::post("/t")
            .header("host", "b")
            .header("content-length", "1")
            .body(body)
            .unwrap()
    };
    send(&u, post(ProxyBody::full("amount=10"))).await.unwrap();
    send(&u, post(ProxyBody::empty())).await.unwrap();
    let big = vec![b'x'; 100_000];
    send(&u, post(ProxyBody::full(big.clone()))).await.unwrap();
    let seen = u.requests.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        b"POST /t HTTP/1.1\r\nhost: b\r\ncontent-length: 9\r\n\r\namount=10"
    );
    assert_eq!(
        seen[1],
        b"POST /t HTTP/1.1\r\nhost: b\r\ncontent-length: 0\r\n\r\n"
    );
    let head = b"POST /t HTTP/1.1\r\nhost: b\r\ncontent-length: 100000\r\n\r\n";
    assert_eq!(&seen[2][..head.len()], head);
    assert_eq!(&seen[2][head.len()..], &big[..]);
    assert_eq!(u.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn response_heads_are_bounded_in_fields_and_bytes() {
    let many: &'static str =
        Box::leak(format!("HTTP/1.1 200 OK\r\n{}\r\n", "X-F: v\r\n".repeat(150)).into_boxed_str());
    let huge: &'static str = Box::leak(
        format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000)).into_boxed_str(),
    );
    let u = upstream(vec![Answer::Keep(many), Answer::Keep(huge)]).await;
    let e = u.pool.send(get("/"), b"").await.unwrap_err();
    assert!(e.to_string().contains("more than 100 fields"), "{e}");
    let e = u.pool.send(get("/"), b"").await.unwrap_err();
    assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
}
