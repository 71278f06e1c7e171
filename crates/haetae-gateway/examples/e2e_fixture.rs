//! The browser test fixture of `e2e-fields` (tests/browser/keypad.test.mjs): a banking
//! page behind a real gateway with `e2e-fields`, an in-process shared store and a key
//! directory in a temporary folder.
//!
//! The application serves `GET /` (a transfer form with a keypad PIN and an account number,
//! strict CSP, no inline script) and `POST /transfer` (prints `RECEIVED <body>` on stdout
//! and answers `ok`). The fixture prints `LISTENING <gateway url>` once ready and runs
//! until its standard input closes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use haetae_bus::Bus;
use haetae_core::PolicySnapshot;
use haetae_core::config::GatewayConfig;
use haetae_gateway::{EventSink, Gateway};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>이체</title>
<script type="module" src="/haetae/e2e.js"></script></head>
<body>
<form id="transfer" method="post" action="/transfer" data-haetae-e2e>
  <label>금액 <input name="amount" value="50000"></label>
  <label>계좌번호 <input id="account" name="account_number" data-haetae-e2e autocomplete="off"></label>
  <label>PIN <input type="hidden" id="pin" name="pin" data-haetae-keypad data-haetae-length="6"></label>
  <button id="send" type="submit">이체</button>
</form>
</body></html>
"#;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Prints what the application received; never the gateway's keys.
struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, event: haetae_core::Event) -> bool {
        println!("EVENT {}", event.event.action);
        true
    }
}

async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let mut r = match path.as_str() {
        "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
            r.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            r
        }
        "/transfer" => {
            println!("RECEIVED {}", String::from_utf8_lossy(&body));
            Response::new(Full::new(Bytes::from_static(b"ok")))
        }
        _ => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
            *r.status_mut() = http::StatusCode::NOT_FOUND;
            r
        }
    };
    r.headers_mut()
        .insert("content-security-policy", CSP.parse().unwrap());
    Ok(r)
}

#[tokio::main]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(app))
                    .await;
            });
        }
    });
    let keys = tempfile::tempdir().unwrap();
    let kv = Bus::in_process()
        .kv("gateway", Duration::from_secs(3600))
        .await
        .unwrap();
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "gw-browser".into(),
        ..GatewayConfig::default()
    };
    let gateway = Arc::new(
        Gateway::with_shared_state(
            &config,
            Arc::new(Quiet),
            Some(kv),
            haetae_gateway::filters::FilterRegistry::standard(),
        )
        .unwrap(),
    );
    let policy = PolicySnapshot::from_toml(&format!(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "e2e"
        kind = "e2e-fields"
        failure = "fail-closed"
        config = {{ fields = ["pin", "account_number"], paths = ["/transfer"], key_dir = {dir:?} }}
        [[mappings]]
        service = "bank"
        filters = ["e2e"]
        "#,
        dir = keys.path().display().to_string(),
    ))
    .unwrap();
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    println!("LISTENING http://{}", running.addr);
    // Runs until standard input closes (the test ends the fixture that way).
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
    running.shutdown().await;
}
