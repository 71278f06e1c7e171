//! `haetae relay` through the real binary: it listens where told, issues a code to an agent
//! on loopback, pairs a customer who types it, forwards frames, and writes the session's
//! history event to its log.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use haetae_remote::client::RelayClient;
use haetae_remote::protocol::RelayMessage;

/// Starts `cmd` with stdout discarded and its stderr lines forwarded to the returned channel
/// (read on a thread, so waiting on a line can time out).
fn spawn_with_stderr_lines(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
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
    (child, lines)
}

#[tokio::test]
async fn the_relay_pairs_an_agent_and_a_customer_by_code() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haetae"));
    cmd.args([
        "relay",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--code-digits",
        "8",
    ])
    .env("HAETAE_DATA_DIR", data.path())
    .env_remove("HAETAE_CONFIG");
    let (mut child, lines) = spawn_with_stderr_lines(&mut cmd);
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

/// One HTTP/1.1 exchange with the Center on 127.0.0.1:`port`: the status and the body.
fn http(port: u16, request: &str) -> (String, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (head[9..12].to_owned(), head.to_owned(), body.to_owned())
}

/// Logs in as the first admin and asks for an agent ticket.
fn ticket_of_admin(center: u16) -> String {
    let login = r#"{"username":"admin","password":"relay up test password 1"}"#;
    let (status, head, _) = http(
        center,
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{login}",
            login.len()
        ),
    );
    assert_eq!(status, "200", "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let (status, _, body) = http(
        center,
        &format!(
            "GET /remote/ticket HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["ticket"].as_str().unwrap().to_owned()
}

/// `haetae up` serves the relay at `/relay` on the Control Center's address: a WebSocket
/// there pairs an agent and a customer, and the Center keeps answering HTTP on the same port.
#[tokio::test]
async fn haetae_up_serves_the_relay_on_the_centers_address() {
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    };
    let (center, gateway, admin) = (free(), free(), free());
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haetae"));
    cmd.arg("up")
        .env("HAETAE_DATA_DIR", data.path())
        .env_remove("HAETAE_CONFIG")
        .env("HAETAE_CONTROL__LISTEN", format!("127.0.0.1:{center}"))
        .env("HAETAE_GATEWAY__LISTEN", format!("127.0.0.1:{gateway}"))
        .env("HAETAE_GATEWAY__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("HAETAE_ADMIN_PASSWORD", "relay up test password 1");
    let (mut child, lines) = spawn_with_stderr_lines(&mut cmd);
    let url = format!("ws://127.0.0.1:{center}/relay");
    let mut announced = false;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        if line.contains("remote-support relay") && line.contains(&url) {
            announced = true;
        }
        if line.contains("running; Ctrl-C stops") {
            break;
        }
    }
    assert!(announced, "haetae up did not announce the relay at {url}");

    // Agents need the Center's ticket: none is refused; an admin who logs in gets one for
    // its own name.
    assert!(RelayClient::open_as_agent(&url, "admin").await.is_err());
    let ticket = tokio::task::spawn_blocking(move || ticket_of_admin(center))
        .await
        .unwrap();
    let (mut agent, code, _) =
        RelayClient::open_as_agent(&format!("{url}?ticket={ticket}"), "admin")
            .await
            .unwrap();
    let (mut customer, sid) = RelayClient::join_as_customer(&url, &code).await.unwrap();
    assert_eq!(agent.wait_paired().await.unwrap(), sid);
    customer
        .send(&RelayMessage::Peer(vec![7, 7, 7]))
        .await
        .unwrap();
    assert_eq!(agent.recv_peer_bytes().await.unwrap(), vec![7, 7, 7]);
    agent.bye().await;

    // The Center still answers plain HTTP on the same port (a path that starts like the
    // relay's is the Center's).
    for (path, want) in [("/api/v1/openapi.json", "200"), ("/relays", "404")] {
        let status = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", center)).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            String::from_utf8_lossy(&head[9..12]).into_owned()
        })
        .await
        .unwrap();
        assert_eq!(status, want, "GET {path} on the Center");
    }
    let _ = child.kill();
    let _ = child.wait();
}
