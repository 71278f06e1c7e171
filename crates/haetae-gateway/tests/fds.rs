//! `fds` through a real gateway and upstream on 127.0.0.1, with the default rule set and
//! custom CEL rules: step-up for a new device with a large daily total, hold for rapid
//! transfers, block for a fraud-list payee, an alert for a large night transfer, monitor
//! mode, unreadable amounts, and a missing shared store under each failure policy.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use haetae_bus::{Bus, KvStore};
use haetae_core::PolicySnapshot;
use haetae_core::config::GatewayConfig;
use haetae_gateway::{EventSink, Gateway, RunningGateway};
use http::{Request, StatusCode};

struct FdsGateway {
    running: RunningGateway,
    events: Arc<Collector>,
}

async fn memory_kv() -> Arc<dyn KvStore> {
    Bus::in_process()
        .kv("gateway", Duration::from_secs(24 * 3600))
        .await
        .unwrap()
}

impl FdsGateway {
    async fn start(kv: Option<Arc<dyn KvStore>>, filter: &str) -> FdsGateway {
        let backend = spawn_backend("bank").await;
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            instance: "gw-fds".into(),
            ..GatewayConfig::default()
        };
        let events = Arc::new(Collector::default());
        let gateway = Arc::new(
            Gateway::with_shared_state(
                &config,
                Arc::clone(&events) as Arc<dyn EventSink>,
                kv,
                registry(),
            )
            .unwrap(),
        );
        let policy = PolicySnapshot::from_toml(&format!(
            r#"
            [[services]]
            id = "bank"
            upstream = "http://{backend}"
            [lists.fraud-accounts]
            kind = "account"
            entries = ["333-44-555555"]
            [[filters]]
            id = "fds"
            kind = "fds"
            {filter}
            [[mappings]]
            service = "bank"
            filters = ["fds"]
            "#
        ))
        .unwrap();
        gateway.apply_policy(&policy).expect("the policy is valid");
        let running = gateway.start().await.unwrap();
        FdsGateway { running, events }
    }

    async fn transfer(&self, user: &str, device: &str, amount: &str, payee: &str) -> Answer {
        let req = Request::post(format!("http://{}/transfer", self.running.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", format!("BankApp/1.0 ({device})"))
            .body(ProxiedBody::Bytes(Some(Bytes::from(format!(
                "user_id={user}&amount={amount}&payee_account={payee}&account_number=110-1"
            )))))
            .unwrap();
        send(&client(), req).await
    }

    fn decision(&self) -> haetae_core::Event {
        self.events
            .with_action("fds.decision")
            .last()
            .cloned()
            .expect("an fds.decision event")
    }
}

/// A UTC offset (minutes) that makes the local hour now `hour`.
fn offset_for_local_hour(hour: i64) -> i64 {
    let now = time::OffsetDateTime::now_utc();
    let mut off = (hour - i64::from(now.hour())) * 60 - i64::from(now.minute()) + 30;
    if off > 12 * 60 {
        off -= 24 * 60;
    }
    if off < -12 * 60 {
        off += 24 * 60;
    }
    off
}

const DAYTIME: &str =
    "config = { fraud_lists = [\"fraud-accounts\"], utc_offset_minutes = OFFSET }";

fn daytime() -> String {
    DAYTIME.replace("OFFSET", &offset_for_local_hour(14).to_string())
}

#[tokio::test]
async fn a_new_device_with_a_large_daily_total_is_stepped_up_and_a_known_one_is_not() {
    let gw = FdsGateway::start(Some(memory_kv().await), &daytime()).await;
    // A small transfer from the phone: allowed, and the phone becomes known for lee.
    let r = gw
        .transfer("lee", "PHONE", "1,000,000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.starts_with("received="), "forwarded");
    assert_eq!(gw.events.count("fds.decision"), 0, "no rule fired");
    // From the phone again, 2,500,000 more: today 3,500,000, but the device is known.
    let r = gw
        .transfer("lee", "PHONE", "2500000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // From a new PC: today's total would be 3,600,000 -> step-up.
    let r = gw
        .transfer("lee", "NEW-PC", "100000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("/auth/step-up"));
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "step-up");
    assert_eq!(e.labels["rules"], "new-device-large-daily-total");
    assert_eq!(e.labels["risk_score"], "40");
    assert_eq!(e.labels["today_total"], "3600000");
    assert_eq!(e.labels["device_new"], "true");
    // Another user is not affected by lee's history.
    let r = gw
        .transfer("park", "NEW-PC", "100000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn more_than_five_transfers_in_ten_minutes_are_held_and_not_forwarded() {
    let gw = FdsGateway::start(Some(memory_kv().await), &daytime()).await;
    for i in 0..5 {
        let r = gw.transfer("choi", "PHONE", "10000", "110-22-333333").await;
        assert_eq!(r.status, StatusCode::OK, "transfer {i}");
    }
    let r = gw.transfer("choi", "PHONE", "10000", "110-22-333333").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.body.contains("보류"), "{}", r.body);
    assert!(!r.body.starts_with("received="), "not forwarded");
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "hold");
    assert_eq!(e.labels["recent_count"], "6");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_payee_on_the_fraud_list_is_blocked_whatever_its_formatting() {
    let gw = FdsGateway::start(Some(memory_kv().await), &daytime()).await;
    let r = gw.transfer("jung", "PHONE", "5000", "3334-4555555").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("차단"));
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "block");
    assert_eq!(e.labels["risk_score"], "100");
    assert_eq!(e.user.as_ref().unwrap().id, "jung");
    let responded = gw.events.with_action("fds.respond");
    assert_eq!(responded[0].rule.as_ref().unwrap().name, "fds-block");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_large_night_transfer_goes_through_with_a_call_back_alert() {
    let night = DAYTIME.replace("OFFSET", &offset_for_local_hour(23).to_string());
    let gw = FdsGateway::start(Some(memory_kv().await), &night).await;
    // A small one first, so the phone is a known device (else step-up would win).
    let r = gw.transfer("han", "PHONE", "1000", "110-22-333333").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = gw
        .transfer("han", "PHONE", "10000000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("received="), "forwarded");
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "alert");
    assert_eq!(e.labels["rules"], "night-large-transfer");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn custom_rules_and_monitor_mode() {
    let filter = r#"mode = "monitor"
            config = { rules = [ { name = "big-to-new-payee", expr = "amount > 1000 && payee.startsWith('999')", action = "block", score = 70 } ] }"#;
    let gw = FdsGateway::start(Some(memory_kv().await), filter).await;
    let r = gw.transfer("yoon", "PHONE", "5000", "999-1").await;
    assert_eq!(r.status, StatusCode::OK, "monitor mode forwards");
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "block");
    assert_eq!(e.labels["mode"], "monitor");
    assert_eq!(e.labels["risk_score"], "70");
    let r = gw.transfer("yoon", "PHONE", "500", "999-1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        gw.events.count("fds.decision"),
        1,
        "the second did not fire"
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_amount_is_refused_and_other_requests_pass() {
    let gw = FdsGateway::start(Some(memory_kv().await), &daytime()).await;
    let r = gw.transfer("kang", "PHONE", "1e7", "110-22-333333").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &client(),
        get(&format!("http://{}/transfer", gw.running.addr), &[]),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a GET of the form is no transaction"
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_policy_with_a_bad_rule_is_refused_with_its_place() {
    let config = GatewayConfig::default();
    let gateway = Gateway::with_shared_state(
        &config,
        Arc::new(Collector::default()) as Arc<dyn EventSink>,
        None,
        registry(),
    )
    .unwrap();
    let policy = PolicySnapshot::from_toml(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://127.0.0.1:9"
        [[filters]]
        id = "fds"
        kind = "fds"
        config = { rules = [ { name = "oops", expr = "amount >", action = "block" } ] }
        [[mappings]]
        service = "bank"
        filters = ["fds"]
        "#,
    )
    .unwrap();
    let err = gateway.apply_policy(&policy).unwrap_err().to_string();
    assert!(err.contains("rules[0].expr"), "{err}");
}

#[tokio::test]
async fn without_a_shared_store_the_failure_policy_decides() {
    let closed =
        FdsGateway::start(None, &format!("failure = \"fail-closed\"\n{}", daytime())).await;
    let r = closed
        .transfer("seo", "PHONE", "1000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(closed.events.count("gateway.filter_failure"), 1);
    closed.running.shutdown().await;
    let open = FdsGateway::start(None, &daytime()).await;
    let r = open.transfer("seo", "PHONE", "1000", "110-22-333333").await;
    assert_eq!(r.status, StatusCode::OK, "fail-open forwards");
    open.running.shutdown().await;
}
