//! TLS termination: HTTP/2 over TLS (ALPN h2) from the client, plain HTTP/1.1 upstream.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use haetae_core::config::GatewayConfig;
use haetae_gateway::{EventSink, Gateway, GatewayError};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

// A P-256 test CA and a localhost/127.0.0.1 server certificate it signed, made for this
// test with `openssl req`/`openssl x509 -req` (valid for 100 years).
const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUbfqEjqJBh/rBAajT0urDifDCgY8wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaGFldGFlIHRlc3QgQ0EwIBcNMjYxMTIzMDIwMzAyWhgPMjEy
NjEwMzAwMjAzMDJaMBkxFzAVBgNVBAMMDmhhZXRhZSB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEHDtSY24lHtKaE7uZdeiaPWXM68AstUYy+4Ki4JxK
6AnpZlq6E/Vc3SI/TYXugL1QIgdlRyS2nt2G9ocJbZEIMKNTMFEwHQYDVR0OBBYE
FLHhdVL7sXFlkSY0cBeRTasxOlRFMB8GA1UdIwQYMBaAFLHhdVL7sXFlkSY0cBeR
TasxOlRFMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgPxVthZ/3
zqvUhnTnR3uiwMJJjiO7s1dERJ4ZI1308KICIAlQLoWJqSpKqqQa/XyUC/MwAumz
nb0uO/0e5u/nyA0e
-----END CERTIFICATE-----
";
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvjCCAWSgAwIBAgIUd4MHHC2Ago1h9srqGvqrkyXZPC4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaGFldGFlIHRlc3QgQ0EwIBcNMjYxMTIzMDIwMzAyWhgPMjEy
NjEwMzAwMjAzMDJaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABIR5Cr0z4Z28+CvaJ3Dh/YYpo3F2LqIwdHVQOSK6jAtWJpXC
uemrgRWN0u2kUyUAFEnvBVTs4T7bx7lTc21AeHOjgYwwgYkwGgYDVR0RBBMwEYIJ
bG9jYWxob3N0hwR/AAABMAkGA1UdEwQCMAAwCwYDVR0PBAQDAgeAMBMGA1UdJQQM
MAoGCCsGAQUFBwMBMB0GA1UdDgQWBBQdw/ct2o1QIggEVENlq7/6Y22BZjAfBgNV
HSMEGDAWgBSx4XVS+7FxZZEmNHAXkU2rMTpURTAKBggqhkjOPQQDAgNIADBFAiEA
0CRo0onVTvvs10ugwYtA02K/p1iEYNrTHx6sFn5ep68CICBiNYTTosw0ajf7eUqs
EzVrwk54GrH/2yHXxcAhMROu
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRCmI98PBWwVM4LxV
iXnA461hrt/CfwL3oCR1KygF3uehRANCAASEeQq9M+GdvPgr2idw4f2GKaNxdi6i
MHR1UDkiuowLViaVwrnpq4EVjdLtpFMlABRJ7wVU7OE+28e5U3NtQHhz
-----END PRIVATE KEY-----
";

fn write_pair(tag: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("haetae-gw-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, CERT).unwrap();
    std::fs::write(&key, KEY).unwrap();
    (dir, cert, key)
}

#[tokio::test]
async fn tls_is_terminated_and_http2_is_served_by_alpn() {
    let backend = spawn_backend("a").await;
    let (dir, cert, key) = write_pair("ok");
    let config = GatewayConfig {
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(
        &format!("[[services]]\nid = \"all\"\nupstream = \"http://{backend}\"\n"),
        config,
    )
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
        .unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gateway");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://localhost/secure")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let forwarded = resp.headers()["x-seen-forwarded"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(forwarded.contains("proto=https"), "{forwarded}");
    assert_eq!(resp.headers()["x-seen-path"], "/secure");
    let _ = resp.into_body().collect().await.unwrap();
    gw.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_unreadable_key_is_reported_with_its_path() {
    let (dir, cert, _key) = write_pair("bad");
    let missing = dir.join("missing-key.pem");
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: Some(cert),
        tls_key: Some(missing.clone()),
        ..GatewayConfig::default()
    };
    let gateway = Arc::new(
        Gateway::new(
            &config,
            Arc::new(Collector::default()) as Arc<dyn EventSink>,
            registry(),
        )
        .unwrap(),
    );
    let err = gateway.start().await.unwrap_err();
    assert!(
        matches!(&err, GatewayError::Tls { path, .. } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("missing-key.pem"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
