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
