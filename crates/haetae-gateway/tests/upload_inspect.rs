//! `upload-inspect` through a real gateway and a real upstream on 127.0.0.1: multipart and
//! raw uploads, each verdict, enforce and monitor mode, the file event, and what happens to
//! bodies that cannot be scanned.

mod common;

use common::*;
use haetae_core::config::GatewayConfig;
use haetae_core::{PolicySnapshot, Verdict};
use haetae_docscan::{Limits, scan_bytes};
use http::{Request, StatusCode};

/// A JPEG whose comment segment has length 1 (CVE-2004-0200): `vulnerable`.
const BAD_JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];

fn pdf(body: &str) -> Vec<u8> {
    let mut s = format!("%PDF-1.4\n{body}\n");
    let xref = s.len();
    s.push_str(&format!(
        "xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 >>\nstartxref\n{xref}\n%%EOF\n"
    ));
    s.into_bytes()
}

/// A well-formed PDF: `clean`.
fn clean_pdf() -> Vec<u8> {
    pdf("1 0 obj\n<< /Type /Catalog >>\nendobj")
}

/// A PDF that runs JavaScript when opened: `suspicious`.
fn script_pdf() -> Vec<u8> {
    pdf("1 0 obj\n<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj")
}

fn sha256_of(data: &[u8]) -> String {
    scan_bytes(data, None, &Limits::default()).sha256
}

#[test]
fn the_fixtures_have_the_verdicts_the_tests_rely_on() {
    let v = |d: &[u8], n| scan_bytes(d, Some(n), &Limits::default()).verdict;
    assert_eq!(v(BAD_JPEG, "photo.jpg"), Verdict::Vulnerable);
    assert_eq!(v(&clean_pdf(), "a.pdf"), Verdict::Clean);
    assert_eq!(v(&script_pdf(), "a.pdf"), Verdict::Suspicious);
}

fn policy(upstream: std::net::SocketAddr, mode: &str, config: &str) -> String {
    format!(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "uploads"
        kind = "upload-inspect"
        mode = "{mode}"
        budget_ms = 3000
        config = {{ {config} }}
        [[mappings]]
        service = "bank"
        filters = ["uploads"]
        "#
    )
}

/// A multipart body with a text field and one file.
fn multipart(file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----haetaeTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"memo\"\r\n\r\n월급\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post(url: &str, content_type: &str, body: Vec<u8>) -> Request<ProxiedBody> {
    Request::post(url)
        .header("content-type", content_type)
        .body(ProxiedBody::Bytes(Some(body.into())))
        .unwrap()
}

#[tokio::test]
async fn a_vulnerable_file_in_a_multipart_upload_is_rejected_and_named_in_the_event() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let (ct, body) = multipart("photo.jpg", BAD_JPEG);
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.header("x-backend"), None, "the upstream never saw it");
    let e = &gw.events.with_action("upload-inspect.file")[0];
    let file = e.file.as_ref().expect("the event names the file");
    assert_eq!(file.name.as_deref(), Some("photo.jpg"));
    assert_eq!(file.sha256.as_deref(), Some(sha256_of(BAD_JPEG).as_str()));
    assert_eq!(file.size, Some(BAD_JPEG.len() as u64));
    assert_eq!(e.labels["verdict"], "vulnerable");
    assert_eq!(e.labels["field"], "attachment");
    assert_eq!(e.labels["action"], "reject");
    assert!(e.labels["findings"].contains("JPEG-COM-LENGTH"));
    let refusal = &gw.events.with_action("upload-inspect.respond")[0];
    assert_eq!(refusal.rule.as_ref().unwrap().name, "upload-vulnerable");
    gw.stop().await;
}

#[tokio::test]
async fn a_clean_file_reaches_the_upstream_untouched_and_quietly() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let (ct, body) = multipart("statement.pdf", &clean_pdf());
    let len = body.len();
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, format!("received={len}"));
    assert_eq!(gw.events.count("upload-inspect.file"), 0);
    gw.stop().await;
}

#[tokio::test]
async fn a_suspicious_file_passes_with_an_event_by_default_and_is_rejected_when_configured() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let (ct, body) = multipart("form.pdf", &script_pdf());
    let r = send(&client(), post(&gw.url("/documents"), &ct, body.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    let e = &gw.events.with_action("upload-inspect.file")[0];
    assert_eq!(e.labels["verdict"], "suspicious");
    assert_eq!(e.labels["action"], "pass");
    gw.stop().await;

    let gw = TestGateway::start(&policy(up, "enforce", r#"on_suspicious = "reject""#)).await;
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    gw.stop().await;
}

#[tokio::test]
async fn a_raw_body_upload_is_scanned_as_one_file_named_by_content_disposition() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let req = Request::put(gw.url("/profile/photo"))
        .header("content-type", "image/jpeg")
        .header("content-disposition", "attachment; filename=\"me.jpg\"")
        .body(ProxiedBody::Bytes(Some(BAD_JPEG.into())))
        .unwrap();
    let r = send(&client(), req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let e = &gw.events.with_action("upload-inspect.file")[0];
    assert_eq!(e.file.as_ref().unwrap().name.as_deref(), Some("me.jpg"));
    assert!(!e.labels.contains_key("field"));
    gw.stop().await;
}

#[tokio::test]
async fn form_and_json_bodies_are_not_treated_as_uploads() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let c = client();
    let body = BAD_JPEG.to_vec();
    for ct in ["application/json", "application/x-www-form-urlencoded"] {
        let r = send(&c, post(&gw.url("/transfer"), ct, body.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}");
    }
    assert_eq!(gw.events.count("upload-inspect.file"), 0);
    gw.stop().await;
}

#[tokio::test]
async fn monitor_mode_lets_a_vulnerable_file_through_and_still_reports_it() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "monitor", "")).await;
    let (ct, body) = multipart("photo.jpg", BAD_JPEG);
    let len = body.len();
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, format!("received={len}"));
    assert_eq!(
        gw.events.with_action("upload-inspect.file")[0].labels["verdict"],
        "vulnerable"
    );
    let decided = &gw.events.with_action("upload-inspect.respond")[0];
    assert_eq!(decided.labels["mode"], "monitor");
    gw.stop().await;
}

#[tokio::test]
async fn an_upload_longer_than_the_buffer_is_refused_unscanned_unless_configured() {
    let up = spawn_backend("bank").await;
    let config = GatewayConfig {
        max_body_buffer: 4096,
        ..GatewayConfig::default()
    };
    let (ct, body) = multipart("big.pdf", &vec![b'A'; 10_000]);
    let gw = TestGateway::start_with(&policy(up, "enforce", ""), config.clone()).await;
    let r = send(&client(), post(&gw.url("/documents"), &ct, body.clone())).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let e = &gw.events.with_action("upload-inspect.unscanned")[0];
    assert_eq!(e.rule.as_ref().unwrap().name, "upload-too-large");
    gw.stop().await;

    let gw =
        TestGateway::start_with(&policy(up, "enforce", r#"on_oversize = "log""#), config).await;
    let len = body.len();
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        format!("received={len}"),
        "every byte still arrives"
    );
    assert_eq!(gw.events.count("upload-inspect.unscanned"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_multipart_body_that_cannot_be_parsed_is_refused_with_400() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let c = client();
    let (ct, mut body) = multipart("photo.jpg", BAD_JPEG);
    body.truncate(body.len() - 10); // no closing delimiter: the file's end is unknown
    let r = send(&c, post(&gw.url("/documents"), &ct, body.clone())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&c, post(&gw.url("/documents"), "multipart/form-data", body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no boundary parameter");
    let e = gw.events.with_action("upload-inspect.unscanned");
    assert_eq!(e.len(), 2);
    assert!(
        e[1].message
            .as_deref()
            .unwrap()
            .contains("without a valid boundary")
    );
    gw.stop().await;
}

#[test]
fn a_scan_time_beyond_the_budget_is_a_config_error() {
    let text = policy(
        "127.0.0.1:9".parse().unwrap(),
        "enforce",
        "scan_time_ms = 5000",
    );
    let policy = PolicySnapshot::from_toml(&text).unwrap();
    let gateway = haetae_gateway::Gateway::new(
        &GatewayConfig::default(),
        std::sync::Arc::new(Collector::default()),
        registry(),
    )
    .unwrap();
    let err = gateway.apply_policy(&policy).unwrap_err().to_string();
    assert!(err.contains("config.scan_time_ms"), "{err}");
}

/// An RTF document with an embedded `Package` object: `suspicious` (`RTF-PACKAGE`).
const PACKAGE_RTF: &[u8] = b"{\\rtf1\\ansi Hello {\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000080000005061636b61676500000000000000000010000000414141414141414141414141414141410000000000}} world}";

/// An upstream that keeps the body of every request it gets and answers 200.
async fn spawn_recording_backend() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (p + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                seen.lock()
                    .unwrap()
                    .push(buf[head_end..head_end + length].to_vec());
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, bodies)
}

#[tokio::test]
async fn with_disarm_a_suspicious_file_reaches_the_upstream_as_its_rebuilt_copy() {
    assert_eq!(
        scan_bytes(PACKAGE_RTF, Some("letter.rtf"), &Limits::default()).verdict,
        Verdict::Suspicious
    );
    let (up, bodies) = spawn_recording_backend().await;
    let gw = TestGateway::start(&policy(up, "enforce", r#"on_suspicious = "disarm""#)).await;
    let (ct, body) = multipart("letter.rtf", PACKAGE_RTF);
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::OK);
    let received = bodies
        .lock()
        .unwrap()
        .pop()
        .expect("the upstream got the request");
    // The same multipart form: the text field untouched, the file replaced by a copy
    // without the object, which scans clean.
    let boundary = ct.split("boundary=").nth(1).unwrap();
    let files = haetae_gateway::filters::upload_inspect::multipart_files(&received, boundary)
        .expect("a well-formed multipart body");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name.as_deref(), Some("letter.rtf"));
    let copy = &received[files[0].range.clone()];
    assert!(String::from_utf8_lossy(copy).contains("Hello"));
    assert!(!String::from_utf8_lossy(copy).contains("objdata"));
    assert_eq!(
        scan_bytes(copy, Some("letter.rtf"), &Limits::default()).verdict,
        Verdict::Clean
    );
    assert!(String::from_utf8_lossy(&received).contains("name=\"memo\"\r\n\r\n월급"));
    let e = &gw.events.with_action("upload-inspect.file")[0];
    assert_eq!(e.labels["action"], "disarm");
    assert_eq!(e.labels["verdict"], "suspicious");
    assert!(e.labels["removed"].parse::<u32>().unwrap() >= 1);
    gw.stop().await;
}

#[tokio::test]
async fn with_disarm_a_file_that_cannot_be_rebuilt_is_refused() {
    let (up, bodies) = spawn_recording_backend().await;
    let gw = TestGateway::start(&policy(up, "enforce", r#"on_vulnerable = "disarm""#)).await;
    let (ct, body) = multipart("photo.jpg", BAD_JPEG);
    let r = send(&client(), post(&gw.url("/documents"), &ct, body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        bodies.lock().unwrap().is_empty(),
        "the upstream never saw it"
    );
    let e = &gw.events.with_action("upload-inspect.file")[0];
    assert_eq!(e.labels["action"], "reject");
    assert!(e.labels.contains_key("disarm_error"), "{:?}", e.labels);
    let refusal = &gw.events.with_action("upload-inspect.respond")[0];
    assert_eq!(refusal.rule.as_ref().unwrap().name, "upload-disarm-failed");
    gw.stop().await;
}

#[tokio::test]
async fn with_disarm_a_raw_upload_is_replaced_whole() {
    let (up, bodies) = spawn_recording_backend().await;
    let gw = TestGateway::start(&policy(up, "enforce", r#"on_suspicious = "disarm""#)).await;
    let req = Request::put(gw.url("/letters/1"))
        .header("content-type", "application/rtf")
        .body(ProxiedBody::Bytes(Some(PACKAGE_RTF.into())))
        .unwrap();
    let r = send(&client(), req).await;
    assert_eq!(r.status, StatusCode::OK);
    let received = bodies.lock().unwrap().pop().unwrap();
    assert!(received.len() < PACKAGE_RTF.len());
    assert_eq!(
        scan_bytes(&received, None, &Limits::default()).verdict,
        Verdict::Clean
    );
    gw.stop().await;
}
