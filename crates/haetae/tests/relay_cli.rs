//! `haetae relay` through the real binary: it listens where told, issues a code to an agent
//! on loopback, pairs a customer who types it, forwards frames, and writes the session's
//! history event to its log.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use haetae_remote::client::RelayClient;
use haetae_remote::protocol::RelayMessage;

#[tokio::test]
async fn the_relay_pairs_an_agent_and_a_customer_by_code() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--code-digits",
            "8",
        ])
        .env("HAETAE_DATA_DIR", data.path())
        .env_remove("HAETAE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut listening = false;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        if line.contains("listening on ws://127.0.0.1") {
            listening = true;
            break;
        }
    }
    assert!(listening, "the relay did not report that it listens");

    let url = format!("ws://127.0.0.1:{port}/");
    let (mut agent, code, _) = RelayClient::open_as_agent(&url, "agent-cli").await.unwrap();
    assert_eq!(code.len(), 8);
    let (mut customer, sid) = RelayClient::join_as_customer(&url, &code).await.unwrap();
    assert_eq!(agent.wait_paired().await.unwrap(), sid);
    customer
        .send(&RelayMessage::Peer(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(agent.recv_peer_bytes().await.unwrap(), vec![1, 2, 3]);
    agent.bye().await;

    let mut history = None;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        if line.contains("remote.session") {
            history = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let history = history.expect("no remote.session event in the log");
    assert!(history.contains("agent-cli"));
    assert!(!history.contains(&code));
}
