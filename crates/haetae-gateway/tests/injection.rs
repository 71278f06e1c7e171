//! `injection` through a real gateway and upstream on 127.0.0.1: attacks in the query, a
//! form body, a JSON body and a cookie are refused with an incident id in enforce mode and
//! only reported in monitor mode; excluded fields and ordinary values pass.

mod common;

use common::*;
use http::{Request, StatusCode};

fn policy(upstream: std::net::SocketAddr, mode: &str, config: &str) -> String {
    format!(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "injection"
        kind = "injection"
        mode = "{mode}"
        config = {{ {config} }}
        [[mappings]]
        service = "bank"
        filters = ["injection"]
        "#
    )
}

fn post(url: &str, content_type: &str, body: &str) -> Request<ProxiedBody> {
    Request::post(url)
        .header("content-type", content_type)
        .body(ProxiedBody::Bytes(Some(body.to_owned().into())))
        .unwrap()
}

#[tokio::test]
async fn a_sql_injection_in_the_query_is_blocked_with_an_incident_id() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let r = get_text(&gw.url("/accounts?id=1%27%20OR%20%271%27%3D%271")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.header("x-backend"), None);
    let incident = r.header("x-haetae-incident").unwrap().to_owned();
    assert!(r.body.contains(&incident), "the page names the incident");
    let e = &gw.events.with_action("injection.detected")[0];
    assert_eq!(e.id().to_string(), incident);
    assert_eq!(e.labels["family"], "sqli");
    assert_eq!(e.labels["location"], "query:id");
    assert!(e.labels["signals"].contains("sql-quote-boolean"));
    gw.stop().await;
}

#[tokio::test]
async fn xss_in_form_json_and_cookie_values_is_blocked() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let c = client();
    let r = send(
        &c,
        post(
            &gw.url("/board"),
            "application/x-www-form-urlencoded",
            "title=hi&memo=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &c,
        post(
            &gw.url("/api/profile"),
            "application/json",
            r#"{"user": {"nick": "&lt;script&gt;alert(document.cookie)&lt;/script&gt;"}}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &c,
        get(
            &gw.url("/"),
            &[("cookie", "theme=%3Csvg%2Fonload%3Dalert(1)%3E")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let locations: Vec<String> = gw
        .events
        .with_action("injection.detected")
        .iter()
        .map(|e| e.labels["location"].clone())
        .collect();
    assert_eq!(locations, ["body:memo", "body:user.nick", "cookie:theme"]);
    gw.stop().await;
}

#[tokio::test]
async fn ordinary_banking_requests_pass() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let c = client();
    let r = send(
        &c,
        post(
            &gw.url("/transfer"),
            "application/x-www-form-urlencoded",
            "to=110-234-567890&amount=1000000&memo=O%27Brien%20rent%20for%20March",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get_text(&gw.url("/search?q=select%20an%20account%20from%20the%20list")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(gw.events.count("injection.detected"), 0);
    gw.stop().await;
}

#[tokio::test]
async fn excluded_fields_may_carry_markup() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(
        up,
        "enforce",
        r#"exclude_fields = ["content_html"]"#,
    ))
    .await;
    let body = "content_html=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let r = send(
        &client(),
        post(
            &gw.url("/notice/edit"),
            "application/x-www-form-urlencoded",
            body,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &client(),
        post(
            &gw.url("/notice/edit"),
            "application/x-www-form-urlencoded",
            &body.replace("content_html", "title"),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "other fields are still inspected"
    );
    gw.stop().await;
}

#[tokio::test]
async fn monitor_mode_reports_the_attack_and_forwards_the_request() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "monitor", "")).await;
    let r = get_text(&gw.url("/accounts?id=1%20UNION%20SELECT%20password%20FROM%20users")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-backend"), Some("bank"));
    assert_eq!(gw.events.count("injection.detected"), 1);
    assert_eq!(
        gw.events.with_action("injection.respond")[0].labels["mode"],
        "monitor"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_higher_paranoia_level_catches_weaker_signals() {
    let up = spawn_backend("bank").await;
    // A lone SQL function call with a comment: two weak signals.
    let probe = "/x?q=concat(0x41)%20--%20";
    let gw = TestGateway::start(&policy(up, "enforce", "paranoia = 1")).await;
    assert_eq!(get_text(&gw.url(probe)).await.status, StatusCode::OK);
    gw.stop().await;
    let gw = TestGateway::start(&policy(up, "enforce", "paranoia = 2")).await;
    assert_eq!(get_text(&gw.url(probe)).await.status, StatusCode::FORBIDDEN);
    gw.stop().await;
}

#[tokio::test]
async fn a_long_hostile_body_is_inspected_within_the_default_budget() {
    let up = spawn_backend("bank").await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    // 60 KiB of near-misses in many fields: bounded per value and per request.
    let field = "%3Cscrip%20on%3D%27%20o%20%2F*".repeat(40);
    let body: String = (0..200)
        .map(|i| format!("f{i}={field}"))
        .collect::<Vec<_>>()
        .join("&");
    let r = send(
        &client(),
        post(&gw.url("/x"), "application/x-www-form-urlencoded", &body),
    )
    .await;
    assert_ne!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        gw.events.count("gateway.filter_failure"),
        0,
        "no budget overrun: {:?}",
        gw.events.actions()
    );
    gw.stop().await;
}
