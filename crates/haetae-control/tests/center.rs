//! `ControlCenter::start` as `haetae up` and `haetae control` use it: a real listener, the
//! first admin created once, a clean shutdown.

use haetae_bus::Bus;
use haetae_control::{ControlCenter, ControlOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options(dir: &std::path::Path, password: Option<&str>) -> ControlOptions {
    ControlOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        data_dir: dir.to_path_buf(),
        retention_days: 90,
        secure_cookies: false,
        admin_password: password.map(str::to_owned),
        tls: None,
        relay_handoff: None,
        agent_tickets: None,
        recording_key: None,
        wasm: Default::default(),
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn the_first_start_creates_an_admin_with_a_random_password_and_later_starts_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let first = ControlCenter::start(options(dir.path(), None), Bus::in_process())
        .await
        .unwrap();
    let admin = first.initial_admin().cloned().expect("a first admin");
    assert_eq!(admin.username, "admin");
    assert!(admin.generated);
    assert!(admin.password.len() >= 20);
    first.shutdown().await;
    let again = ControlCenter::start(options(dir.path(), None), Bus::in_process())
        .await
        .unwrap();
    assert!(again.initial_admin().is_none());
    again.shutdown().await;
}

#[tokio::test]
async fn the_admin_password_can_be_given_and_a_short_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = ControlCenter::start(options(dir.path(), Some("short")), Bus::in_process())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HAETAE_ADMIN_PASSWORD"), "{err}");
    let center = ControlCenter::start(
        options(dir.path(), Some("a chosen admin password")),
        Bus::in_process(),
    )
    .await
    .unwrap();
    assert!(!center.initial_admin().unwrap().generated);
    center.shutdown().await;
}

#[tokio::test]
async fn it_serves_the_login_page_and_the_openapi_document_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let center = ControlCenter::start(options(dir.path(), None), Bus::in_process())
        .await
        .unwrap();
    let login = get(center.local_addr(), "/login").await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    assert!(login.contains("name=\"password\""));
    let doc = get(center.local_addr(), "/api/v1/openapi.json").await;
    assert!(doc.contains("\"openapi\""));
    center.shutdown().await;
}

#[tokio::test]
async fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), None);
    opts.listen = taken.local_addr().unwrap();
    let err = ControlCenter::start(opts, Bus::in_process())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot listen on") && err.contains("control.listen"),
        "{err}"
    );
}
