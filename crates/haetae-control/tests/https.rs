//! The Control Center over HTTPS (`control.tls_cert`/`tls_key`): the login page is served
//! over TLS to a client that trusts the test CA, the session cookie is `Secure`, a client
//! that sends plain HTTP gets nothing, and a key that does not fit fails the start naming
//! the file. The certificates below were made for these tests only (`openssl req`, P-256,
//! valid until 2125, `localhost` and 127.0.0.1).

use std::sync::Arc;

use haetae_bus::Bus;
use haetae_control::{ControlCenter, ControlOptions, StartError};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAU+gAwIBAgIUDFl/CXgAy89w8LQ/gj09sGChRMswCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWaGFldGFlIGNvbnRyb2wgdGVzdCBDQTAgFw0yNjExMjMwODUw
NTJaGA8yMTI2MTAzMDA4NTA1MlowITEfMB0GA1UEAwwWaGFldGFlIGNvbnRyb2wg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABH8CzGEO9Mg8CzB+YTmv
yGK3lRMgpEb6BEbjdp2pLH4rohX+2OUwZC/spCZ/cExmU6snY7NDtWbUFs0qkErz
yoyjYzBhMB0GA1UdDgQWBBTsWFpWU35UviONjOcEyRzhAEA7XTAfBgNVHSMEGDAW
gBTsWFpWU35UviONjOcEyRzhAEA7XTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
/wQEAwICBDAKBggqhkjOPQQDAgNIADBFAiEAgFyiz2ywAjpvLvxDLGie351hXfBo
fW92z4WzDgA3drECIBvMhD3DGGcavoN4D+niKpd7b19q8KHqk2YInE69TASw
-----END CERTIFICATE-----";
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBtjCCAV2gAwIBAgIUE8Gz7w06MIX83my54Gejp4vHEo8wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWaGFldGFlIGNvbnRyb2wgdGVzdCBDQTAgFw0yNjExMjMwODUw
NTJaGA8yMTI2MTAzMDA4NTA1MlowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYH
KoZIzj0CAQYIKoZIzj0DAQcDQgAEJY8psvJ9magQ+UkJblSWU1bSIvVljUOoh588
hmzkVPR0IQqHdxPXccaiA5CYR3Nm1IBlEyYdQ/Jx0fAVIN303KN+MHwwGgYDVR0R
BBMwEYIJbG9jYWxob3N0hwR/AAABMAkGA1UdEwQCMAAwEwYDVR0lBAwwCgYIKwYB
BQUHAwEwHQYDVR0OBBYEFMuHy2toQIAboh6IZtd33uPC0eqsMB8GA1UdIwQYMBaA
FOxYWlZTflS+I42M5wTJHOEAQDtdMAoGCCqGSM49BAMCA0cAMEQCIEEE27R32K+3
ZuvOdj+x3DNprhVv2r9hC2NUaFJX4qxSAiAhDM6MoPMzloAgFKBPo1Y2XTm6hiPK
Qj7IAKjyW19HYQ==
-----END CERTIFICATE-----";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0o7VBwKKe0tBVsfQ
H4lSHvQ7FhnsvilAH5hhxWH6nO2hRANCAAQljymy8n2ZqBD5SQluVJZTVtIi9WWN
Q6iHnzyGbORU9HQhCod3E9dxxqIDkJhHc2bUgGUTJh1D8nHR8BUg3fTc
-----END PRIVATE KEY-----";

fn options(dir: &std::path::Path, cert: &str, key: &str) -> ControlOptions {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    ControlOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        data_dir: dir.to_path_buf(),
        retention_days: 0,
        secure_cookies: false,
        admin_password: Some("https test password 1".into()),
        tls: Some((dir.join("cert.pem"), dir.join("key.pem"))),
        relay_handoff: None,
        agent_tickets: None,
        recording_key: None,
        wasm: Default::default(),
    }
}

#[tokio::test]
async fn the_center_serves_https_with_secure_cookies_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let center = ControlCenter::start(options(dir.path(), CERT, KEY), Bus::in_process())
        .await
        .unwrap();
    let addr = center.local_addr();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the Center");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            hyper::Request::get("/login")
                .header("host", "localhost")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty());
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")),
        "cookies over HTTPS must be Secure: {cookies:?}"
    );

    // Plain HTTP on the HTTPS port: the handshake fails, no page is served.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"), "plain HTTP was served");
    center.shutdown().await;
}

#[tokio::test]
async fn a_key_that_does_not_fit_fails_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = ControlCenter::start(options(dir.path(), CERT, "not a key"), Bus::in_process())
        .await
        .unwrap_err();
    match err {
        StartError::Tls { path, message } => {
            assert!(path.ends_with("key.pem"), "{path:?}");
            assert!(message.contains("private key"), "{message}");
        }
        other => panic!("{other}"),
    }
}
