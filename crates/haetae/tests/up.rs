//! `haetae up` end to end, through the real binary: a policy published in the Control
//! Center reaches the gateway in the same process, a request from a restricted device is
//! sent to the notice page, and the event naming its user shows up in the Center.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "up test admin password 1";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A backend that answers every request with its own path, so the test can tell whether a
/// request reached the service or the notice page.
fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_path_echo(stream));
        }
    });
    addr
}

fn serve_path_echo(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{path}",
            path.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

struct Up {
    child: Child,
    _data: TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_until_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {addr} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_policy_published_in_the_center_is_enforced_by_the_gateway_and_its_events_come_back() {
    let backend = start_backend();
    let center: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gateway: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let data = TempDir(std::env::temp_dir().join(format!("haetae-up-test-{}", std::process::id())));
    let child = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .arg("up")
        .env("HAETAE_DATA_DIR", &data.0)
        .env("HAETAE_CONTROL__LISTEN", center.to_string())
        .env("HAETAE_GATEWAY__LISTEN", gateway.to_string())
        .env("HAETAE_GATEWAY__ADMIN_LISTEN", admin.to_string())
        .env("HAETAE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HAETAE_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haetae up starts");
    let _up = Up { child, _data: data };
    wait_until_listening(center);
    wait_until_listening(gateway);

    // With no policy yet, the gateway answers unmatched requests itself.
    assert_eq!(http(gateway, "GET", "/bank/balance", &[], None).status, 404);

    // Log in to the Center and publish a policy with `device-info` then `restrict`.
    let login = http(
        center,
        "POST",
        "/api/v1/session",
        &[],
        Some(&json!({ "username": "admin", "password": ADMIN_PASSWORD })),
    );
    assert_eq!(login.status, 200, "login: {}", login.body);
    let csrf = login.json()["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let auth = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let policy = json!({
        "services": [{ "id": "bank", "upstream": format!("http://{backend}") }],
        "filters": [
            { "id": "device", "kind": "device-info",
              "config": { "user_agent_pattern": "HaetaeDevice/(?P<id>[^\\s;)]+)" } },
            { "id": "restrict", "kind": "restrict",
              "config": { "device_lists": ["restricted-devices"], "user_header": "X-User-Id",
                          "notice_path": "/notice", "notice": "forward" } }
        ],
        "mappings": [{ "service": "bank", "filters": ["device", "restrict"] }],
        "lists": { "restricted-devices": { "kind": "device", "entries": ["BLOCKED-DEVICE-1"] } }
    });
    let draft = http(center, "PUT", "/api/v1/policy/draft", &auth, Some(&policy));
    assert_eq!(draft.status, 200, "draft: {}", draft.body);
    let published = http(
        center,
        "POST",
        "/api/v1/policy/publish",
        &auth,
        Some(&json!({ "comment": "up test" })),
    );
    assert_eq!(published.status, 200, "publish: {}", published.body);

    // The gateway in the same process runs it within a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http(gateway, "GET", "/bank/balance", &[], None);
        if r.status == 200 {
            assert_eq!(
                r.body, "/bank/balance",
                "an ordinary request reaches the service"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the published policy never reached the gateway"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A restricted device is forwarded to the notice page.
    let blocked = http(
        gateway,
        "GET",
        "/bank/transfer",
        &[
            (
                "user-agent",
                "BankApp/5.1 (Android 14) HaetaeDevice/BLOCKED-DEVICE-1",
            ),
            ("x-user-id", "kim-minsu"),
        ],
        None,
    );
    assert_eq!(
        blocked.body, "/notice",
        "the restricted device was not sent to the notice page"
    );

    // The Center received the event that names the device and its user.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = http(
            center,
            "GET",
            "/api/v1/events?device=BLOCKED-DEVICE-1&limit=50",
            &auth,
            None,
        );
        assert_eq!(events.status, 200, "events: {}", events.body);
        let json = events.json();
        let list = json
            .get("events")
            .or(Some(&json))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if list
            .iter()
            .any(|e| e.to_string().contains("kim-minsu") && e.to_string().contains("restrict"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no restrict event for the device reached the Center: {}",
            events.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn up_with_demo_shows_blocks_events_and_alerts_within_a_minute() {
    let center: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gateway: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let demo: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let data =
        TempDir(std::env::temp_dir().join(format!("haetae-up-demo-test-{}", std::process::id())));
    let child = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args(["up", "--demo", "--demo-listen", &demo.to_string()])
        .env("HAETAE_DATA_DIR", &data.0)
        .env("HAETAE_CONTROL__LISTEN", center.to_string())
        .env("HAETAE_GATEWAY__LISTEN", gateway.to_string())
        .env("HAETAE_GATEWAY__ADMIN_LISTEN", admin.to_string())
        .env("HAETAE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HAETAE_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haetae up --demo starts");
    let _up = Up { child, _data: data };
    wait_until_listening(center);
    wait_until_listening(demo);
    let login = http(
        center,
        "POST",
        "/api/v1/session",
        &[],
        Some(&json!({ "username": "admin", "password": ADMIN_PASSWORD })),
    );
    assert_eq!(login.status, 200, "login: {}", login.body);
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let auth = [("cookie", cookie.as_str())];
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut blocked, mut alerts) = (Value::Null, Value::Null);
    while Instant::now() < deadline {
        blocked = http(center, "GET", "/api/v1/events?outcome=failure", &auth, None).json();
        alerts = http(center, "GET", "/api/v1/alerts", &auth, None).json();
        let has_restrict = blocked.as_array().is_some_and(|a| {
            a.iter().any(|e| {
                e["device_id"] == "DEMO-LOST-PHONE"
                    && e["action"]
                        .as_str()
                        .is_some_and(|x| x.starts_with("restrict."))
            })
        });
        let has_alert = alerts
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["rule_id"] == "demo-restricted-device"));
        if has_restrict && has_alert {
            let versions = http(center, "GET", "/api/v1/policy/versions", &auth, None).json();
            assert_eq!(versions[0]["version"], 1, "{versions}");
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("after 60 s: blocked events {blocked}, alerts {alerts}");
}
