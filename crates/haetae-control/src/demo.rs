//! `haetae up --demo`: a small internet-banking application to put behind the gateway
//! (login, balance, transfer, file upload), the policy that protects it, two alert rules,
//! and a traffic generator that plays customers, a lost phone and an attacker, so a new
//! user sees decisions, events and alerts on the dashboard within a minute.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use haetae_core::PolicySnapshot;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ControlHandle;
use crate::alerts::AlertRule;
use crate::http::error::ApiError;

/// The demo's restricted device (a phone reported lost).
pub const RESTRICTED_DEVICE: &str = "DEMO-LOST-PHONE";
/// The demo application's default address.
pub const APP_ADDR: &str = "127.0.0.1:7481";
/// Who the audit log names for the demo's changes.
pub const ACTOR: &str = "demo";

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                Html(
                    "<!doctype html><meta charset=utf-8><title>Demo Bank</title>\
                     <h1>Demo Bank (haetae demo)</h1><p>POST /login, GET /balance, \
                     POST /transfer, POST /upload</p>",
                )
            }),
        )
        .route(
            "/login",
            post(|| async { axum::Json(json!({ "status": "welcome" })) }),
        )
        .route(
            "/balance",
            get(|| async {
                axum::Json(json!({ "account": "110-123-456789", "balance": 1_520_000 }))
            }),
        )
        .route(
            "/transfer",
            post(|| async { axum::Json(json!({ "status": "done" })) }),
        )
        .route(
            "/upload",
            post(|body: axum::body::Bytes| async move {
                axum::Json(json!({ "received": body.len() }))
            }),
        )
        .route(
            "/notice",
            get(|| async {
                Html("<!doctype html><meta charset=utf-8><p>This device is restricted. Call the bank.</p>")
            }),
        )
}

/// Serves the demo bank on `listener` until `stop` turns true.
pub fn serve_app(listener: TcpListener, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app())
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "the demo application stopped");
        }
    })
}

/// The demo policy: the bank behind device-info, restrict (a lost phone), injection
/// (blocking) and security headers.
pub fn policy(upstream: SocketAddr) -> Result<PolicySnapshot, String> {
    let toml = format!(
        r#"
[[services]]
id = "demo-bank"
name = "Demo Bank"
upstream = "http://{upstream}"

[[filters]]
id = "device"
kind = "device-info"
config = {{ user_agent_pattern = 'HaetaeDevice/(?P<id>[^\s;)]+)', sample_rate = 0.0 }}

[[filters]]
id = "restrict"
kind = "restrict"
config = {{ device_lists = ["restricted-devices"], user_header = "X-User-Id", notice_path = "/notice", notice = "forward" }}

[[filters]]
id = "injection"
kind = "injection"
config = {{ paranoia = 1 }}

[[filters]]
id = "headers"
kind = "security-headers"

[[mappings]]
service = "demo-bank"
filters = ["device", "restrict", "injection", "headers"]

[lists.restricted-devices]
kind = "device"
entries = ["{RESTRICTED_DEVICE}"]
description = "Demo: a phone reported lost"
"#
    );
    let p = PolicySnapshot::from_toml(&toml).map_err(|e| e.to_string())?;
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
}

/// The demo's alert rules: any attempt from a restricted device; three injection blocks
/// from one address within five minutes.
#[must_use]
pub fn alert_rules() -> Vec<AlertRule> {
    let rules = [
        json!({ "id": "demo-restricted-device", "name": "Restricted device used",
                "severity": "high", "condition": { "type": "each" },
                "filter": { "action": "restrict.*" }, "group_by": "device", "quiet_minutes": 1 }),
        json!({ "id": "demo-injection-burst", "name": "Injection attempts from one address",
                "severity": "critical", "condition": { "type": "threshold", "count": 3, "minutes": 5 },
                "filter": { "action": "injection.*", "outcome": "failure" },
                "group_by": "source-ip", "quiet_minutes": 2 }),
    ];
    rules
        .into_iter()
        .filter_map(|r| serde_json::from_value(r).ok())
        .collect()
}

/// Puts the demo policy in the draft and publishes it (unless the latest published
/// version already has the same content), and stores the demo's alert rules. Returns the
/// published version.
pub async fn install(center: &ControlHandle, upstream: SocketAddr) -> Result<u64, ApiError> {
    let state = center.state();
    let snapshot = policy(upstream).map_err(|e| ApiError::invalid("policy", e))?;
    for r in alert_rules() {
        state.store.put_alert_rule(&r).await?;
    }
    state.alerts.reload(&state.store).await?;
    if let Some(v) = state.store.latest_version_number().await?
        && let Some(latest) = state.store.version(v).await?
    {
        let mut same = latest.clone();
        same.version = snapshot.version;
        same.created_at = snapshot.created_at;
        if same == snapshot {
            return Ok(latest.version);
        }
    }
    state
        .store
        .save_draft(&snapshot, ACTOR, crate::store::now_micros())
        .await?;
    let published = crate::policy::publish(
        state,
        &snapshot,
        ACTOR,
        "haetae up --demo",
        "policy.publish",
    )
    .await?;
    Ok(published.version)
}

/// One request of the demo's script.
struct Step {
    method: &'static str,
    path: &'static str,
    device: &'static str,
    user: &'static str,
    body: &'static str,
}

const SCRIPT: &[Step] = &[
    Step {
        method: "POST",
        path: "/login",
        device: "PHONE-KIM",
        user: "kim",
        body: "username=kim",
    },
    Step {
        method: "GET",
        path: "/balance",
        device: "PHONE-KIM",
        user: "kim",
        body: "",
    },
    Step {
        method: "POST",
        path: "/transfer",
        device: "PHONE-LEE",
        user: "lee",
        body: "to=110-987-654321&amount=50000",
    },
    Step {
        method: "GET",
        path: "/balance",
        device: RESTRICTED_DEVICE,
        user: "park",
        body: "",
    },
    Step {
        method: "GET",
        path: "/balance?account=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
        device: "PC-X",
        user: "mallory",
        body: "",
    },
    Step {
        method: "POST",
        path: "/upload",
        device: "PHONE-LEE",
        user: "lee",
        body: "statement for March",
    },
    Step {
        method: "GET",
        path: "/balance?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
        device: "PC-X",
        user: "mallory",
        body: "",
    },
];

/// Sends one HTTP/1.1 request and returns the status code.
async fn send(gateway: SocketAddr, step: &Step) -> std::io::Result<u16> {
    let mut conn = tokio::net::TcpStream::connect(gateway).await?;
    let content_type = if step.path == "/upload" {
        "text/plain"
    } else {
        "application/x-www-form-urlencoded"
    };
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: demo-bank\r\nUser-Agent: DemoBankApp/1.0 (HaetaeDevice/{})\r\n\
         X-User-Id: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        step.method,
        step.path,
        step.device,
        step.user,
        step.body.len(),
        step.body
    );
    conn.write_all(request.as_bytes()).await?;
    let mut head = vec![0u8; 64];
    let n = conn.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Drain the rest so the server is not cut off mid-write.
    let mut sink = Vec::new();
    let _ = conn.read_to_end(&mut sink).await;
    Ok(status)
}

/// Plays the script through the gateway, one request every `every`, until `stop`.
pub async fn traffic(gateway: SocketAddr, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut i = 0;
    loop {
        let step = &SCRIPT[i % SCRIPT.len()];
        match tokio::time::timeout(Duration::from_secs(5), send(gateway, step)).await {
            Ok(Ok(status)) => {
                tracing::debug!(
                    path = step.path,
                    device = step.device,
                    status,
                    "demo request"
                );
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "demo request failed"),
            Err(_) => tracing::debug!("demo request timed out"),
        }
        i += 1;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_policy_and_rules_are_valid() {
        let p = policy("127.0.0.1:7481".parse().unwrap()).unwrap();
        assert_eq!(p.services[0].upstream, "http://127.0.0.1:7481");
        assert_eq!(p.lists["restricted-devices"].entries, [RESTRICTED_DEVICE]);
        let rules = alert_rules();
        assert_eq!(rules.len(), 2);
        for r in &rules {
            r.validate().unwrap();
        }
    }

    #[tokio::test]
    async fn the_demo_bank_answers_its_routes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let task = serve_app(listener, rx);
        for step in SCRIPT {
            assert_eq!(send(addr, step).await.unwrap(), 200, "{}", step.path);
        }
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
