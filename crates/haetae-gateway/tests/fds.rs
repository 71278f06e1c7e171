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

/// A writer of small `MaxMind` DB (format 2.0) files, IPv4 only, 24-bit records, so the
/// country/ASN tests need no third-party database.
mod mmdb {
    use std::net::Ipv4Addr;

    pub enum V {
        Str(String),
        U16(u16),
        U32(u32),
        U64(u64),
        Map(Vec<(&'static str, V)>),
        Arr(Vec<V>),
    }

    pub fn s(text: &str) -> V {
        V::Str(text.to_owned())
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        let (first, extended) = if kind <= 7 {
            (kind << 5, None)
        } else {
            (0, Some(kind - 7))
        };
        let push_ext = |out: &mut Vec<u8>| {
            if let Some(e) = extended {
                out.push(e);
            }
        };
        if size < 29 {
            out.push(first | u8::try_from(size).unwrap());
            push_ext(out);
        } else if size < 285 {
            out.push(first | 29);
            push_ext(out);
            out.push(u8::try_from(size - 29).unwrap());
        } else {
            out.push(first | 30);
            push_ext(out);
            out.extend(u16::try_from(size - 285).unwrap().to_be_bytes());
        }
    }

    fn uint(out: &mut Vec<u8>, kind: u8, n: u64) {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(out, kind, 8 - skip);
        out.extend(&bytes[skip..]);
    }

    pub fn encode(v: &V, out: &mut Vec<u8>) {
        match v {
            V::Str(t) => {
                control(out, 2, t.len());
                out.extend(t.as_bytes());
            }
            V::U16(n) => uint(out, 5, u64::from(*n)),
            V::U32(n) => uint(out, 6, u64::from(*n)),
            V::U64(n) => uint(out, 9, *n),
            V::Map(pairs) => {
                control(out, 7, pairs.len());
                for (k, v) in pairs {
                    encode(&s(k), out);
                    encode(v, out);
                }
            }
            V::Arr(items) => {
                control(out, 11, items.len());
                for v in items {
                    encode(v, out);
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// A database mapping non-overlapping IPv4 networks to records.
    pub fn ipv4(database_type: &str, networks: &[(Ipv4Addr, u8, V)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        for (addr, len, record) in networks {
            let offset = data.len();
            encode(record, &mut data);
            let bits = u32::from(*addr);
            let mut node = 0;
            for i in 0..*len {
                let bit = usize::from((bits >> (31 - i)) & 1 == 1);
                if i + 1 == *len {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(n) => n,
                        _ => {
                            nodes.push([Rec::Empty, Rec::Empty]);
                            let n = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(n);
                            n
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let value = match *rec {
                    Rec::Empty => count,
                    Rec::Node(n) => n,
                    Rec::Data(off) => count + 16 + off,
                };
                out.extend(&u32::try_from(value).unwrap().to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = V::Map(vec![
            ("node_count", V::U32(u32::try_from(count).unwrap())),
            ("record_size", V::U16(24)),
            ("ip_version", V::U16(4)),
            ("database_type", s(database_type)),
            ("languages", V::Arr(vec![s("en")])),
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_790_000_000)),
            (
                "description",
                V::Map(vec![("en", s("haetae test database"))]),
            ),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

#[tokio::test]
async fn country_and_asn_from_maxmind_databases_reach_the_rules_and_the_event() {
    use mmdb::{V, s};
    let dir = tempfile::tempdir().unwrap();
    let country = dir.path().join("country.mmdb");
    let asn = dir.path().join("asn.mmdb");
    // The test client comes from 127.0.0.1: "abroad" (US) on a hosting network.
    std::fs::write(
        &country,
        mmdb::ipv4(
            "GeoLite2-Country",
            &[
                (
                    "127.0.0.0".parse().unwrap(),
                    8,
                    V::Map(vec![("country", V::Map(vec![("iso_code", s("US"))]))]),
                ),
                (
                    "10.0.0.0".parse().unwrap(),
                    8,
                    V::Map(vec![("country", V::Map(vec![("iso_code", s("KR"))]))]),
                ),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        &asn,
        mmdb::ipv4(
            "GeoLite2-ASN",
            &[(
                "127.0.0.0".parse().unwrap(),
                8,
                V::Map(vec![
                    ("autonomous_system_number", V::U32(64500)),
                    ("autonomous_system_organization", s("Example Hosting")),
                ]),
            )],
        ),
    )
    .unwrap();
    let filter = format!(
        r#"config = {{ geoip_country_db = "{}", geoip_asn_db = "{}", utc_offset_minutes = {}, rules = [
            {{ name = "abroad-large", expr = "country != '' && country != 'KR' && amount >= 1000000", action = "step-up", score = 60 }},
            {{ name = "hosting-network", expr = "asn == 64500 && as_org.startsWith('Example')", action = "alert", score = 10 }},
        ] }}"#,
        country.display(),
        asn.display(),
        offset_for_local_hour(14)
    );
    let gw = FdsGateway::start(Some(memory_kv().await), &filter).await;

    let r = gw
        .transfer("park", "PHONE", "2,000,000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let e = gw.decision();
    assert_eq!(e.labels["fds_action"], "step-up");
    assert_eq!(e.labels["rules"], "abroad-large,hosting-network");
    assert_eq!(e.labels["country"], "US");
    assert_eq!(e.labels["asn"], "64500");

    let r = gw
        .transfer("park", "PHONE", "50,000", "110-22-333333")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(gw.decision().labels["rules"], "hosting-network");
}

#[test]
fn a_missing_or_damaged_geoip_database_fails_the_policy_naming_the_field() {
    use haetae_gateway::filters::FdsFilter;
    use haetae_gateway::filters::fds::FdsConfig;
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged.mmdb");
    let mut bytes = mmdb::ipv4(
        "GeoLite2-Country",
        &[(
            "127.0.0.0".parse().unwrap(),
            8,
            mmdb::V::Map(vec![("country", mmdb::s("US"))]),
        )],
    );
    // Point the first record far past the data section.
    bytes[0..3].copy_from_slice(&[0xFF, 0xFF, 0xF0]);
    std::fs::write(&damaged, bytes).unwrap();
    let problems = FdsFilter::new(
        FdsConfig {
            geoip_country_db: Some(damaged.clone()),
            geoip_asn_db: Some(dir.path().join("absent.mmdb")),
            ..FdsConfig::default()
        },
        &[],
    )
    .unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(fields, ["config.geoip_country_db", "config.geoip_asn_db"]);
    assert!(problems[0].message.contains("damaged.mmdb"), "{problems:?}");
}
