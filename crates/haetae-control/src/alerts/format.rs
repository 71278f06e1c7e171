//! SIEM wire formats for events (alerts are sent as events with `event.kind = alert`):
//! syslog RFC 5424 with structured data, ArcSight CEF (inside an RFC 5424 header), ECS JSON
//! Lines, and Splunk HEC event objects.

use haetae_core::{Event, Severity};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

/// The SD-ID of our structured data: `haetae@32473` (32473 is the example enterprise
/// number of RFC 5612, as RFC 5424 allows for private SD-IDs in examples; operators who
/// need their own can map it in the SIEM).
pub const SD_ID: &str = "haetae@32473";

/// Syslog facility: 10, security/authorization (authpriv).
const FACILITY: u8 = 10;

/// The syslog severity (RFC 5424 table 2) of an event severity.
#[must_use]
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// The CEF severity (0-10) of an event severity.
#[must_use]
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 10,
        Severity::High => 8,
        Severity::Medium => 5,
        Severity::Low => 3,
        Severity::Info => 1,
    }
}

/// A header field of RFC 5424: printable US-ASCII without spaces, at most `max` bytes,
/// `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s.chars().filter(char::is_ascii_graphic).take(max).collect();
    if v.is_empty() { "-".into() } else { v }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3).
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn outcome(e: &Event) -> &'static str {
    match e.event.outcome {
        haetae_core::Outcome::Success => "success",
        haetae_core::Outcome::Failure => "failure",
        haetae_core::Outcome::Unknown => "unknown",
    }
}

fn header(e: &Event, hostname: &str, msgid: &str) -> String {
    let pri = u16::from(FACILITY) * 8 + u16::from(syslog_severity(e.event.severity));
    let ts = e
        .timestamp
        .format(&Rfc3339)
        .unwrap_or_else(|_| "-".to_owned());
    let host = e.haetae.instance.as_deref().unwrap_or(hostname);
    format!(
        "<{pri}>1 {ts} {} haetae-{} - {}",
        header_field(host, 255),
        e.haetae.component.as_str(),
        header_field(msgid, 32)
    )
}

/// The pairs carried in structured data and CEF extensions, in a fixed order.
fn fields(e: &Event) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("id", e.id().to_string()),
        ("action", e.event.action.clone()),
        ("outcome", outcome(e).to_owned()),
        ("severity", e.event.severity.as_str().to_owned()),
    ];
    let opt = [
        ("service", e.service.as_ref().map(|s| s.id.clone())),
        ("user", e.user.as_ref().map(|u| u.id.clone())),
        ("device", e.device.as_ref().map(|d| d.id.clone())),
        ("src", e.source.as_ref().map(|s| s.ip.to_string())),
        ("filter", e.haetae.filter.clone()),
        ("rule", e.rule.as_ref().map(|r| r.name.clone())),
        (
            "method",
            e.http.as_ref().and_then(|h| h.request_method.clone()),
        ),
        ("path", e.url.as_ref().map(|u| u.path.clone())),
    ];
    f.extend(opt.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    f
}

/// RFC 5424: header, `[haetae@32473 id=".." action=".." ...]`, then the message (when any).
#[must_use]
pub fn rfc5424(e: &Event, hostname: &str) -> String {
    let mut s = header(e, hostname, &e.event.action);
    s.push_str(" [");
    s.push_str(SD_ID);
    for (k, v) in fields(e) {
        s.push_str(&format!(" {k}=\"{}\"", sd_value(&v)));
    }
    s.push(']');
    if let Some(m) = &e.message {
        s.push(' ');
        s.push_str(m);
    }
    s
}

/// A CEF header field: `\` and `|` escaped, line breaks as spaces.
fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A CEF extension value: `\`, `=` escaped, line breaks as `\n` / `\r`.
fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// ArcSight CEF inside an RFC 5424 header:
/// `CEF:0|haetae|haetae|<version>|<action>|<name>|<severity>|rt=.. act=.. ...`.
#[must_use]
pub fn cef(e: &Event, hostname: &str) -> String {
    let name = e.message.clone().unwrap_or_else(|| e.event.action.clone());
    let mut s = header(e, hostname, "CEF");
    s.push_str(&format!(
        " - CEF:0|haetae|haetae|{}|{}|{}|{}|",
        env!("CARGO_PKG_VERSION"),
        cef_header(&e.event.action),
        cef_header(&name),
        cef_severity(e.event.severity)
    ));
    let ms = e.timestamp.unix_timestamp_nanos() / 1_000_000;
    let mut ext = vec![
        ("rt".to_owned(), ms.to_string()),
        ("externalId".to_owned(), e.id().to_string()),
        ("act".to_owned(), e.event.action.clone()),
        ("outcome".to_owned(), outcome(e).to_owned()),
        ("cat".to_owned(), e.haetae.component.as_str().to_owned()),
    ];
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            ext.push((k.to_owned(), v));
        }
    };
    push("suser", e.user.as_ref().map(|u| u.id.clone()));
    push("src", e.source.as_ref().map(|s| s.ip.to_string()));
    push("deviceExternalId", e.device.as_ref().map(|d| d.id.clone()));
    push("dvchost", e.haetae.instance.clone());
    push(
        "requestMethod",
        e.http.as_ref().and_then(|h| h.request_method.clone()),
    );
    push("request", e.url.as_ref().map(|u| u.path.clone()));
    if let Some(svc) = &e.service {
        ext.push(("cs1Label".into(), "service".into()));
        ext.push(("cs1".into(), svc.id.clone()));
    }
    if let Some(f) = &e.haetae.filter {
        ext.push(("cs2Label".into(), "filter".into()));
        ext.push(("cs2".into(), f.clone()));
    }
    let parts: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", cef_value(v)))
        .collect();
    s.push_str(&parts.join(" "));
    s
}

/// ECS JSON, one line (the event exactly as stored).
#[must_use]
pub fn ecs(e: &Event) -> String {
    e.to_json()
}

/// A Splunk HTTP Event Collector object for one event.
#[must_use]
pub fn splunk_hec(e: &Event) -> String {
    #[allow(clippy::cast_precision_loss)]
    let time = e.timestamp.unix_timestamp_nanos() as f64 / 1e9;
    let body: serde_json::Value =
        serde_json::from_str(&e.to_json()).unwrap_or(serde_json::Value::Null);
    json!({
        "time": time,
        "host": e.haetae.instance.as_deref().unwrap_or("haetae"),
        "source": "haetae",
        "sourcetype": "haetae:ecs",
        "event": body,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_core::{Component, Outcome};
    use time::OffsetDateTime;

    fn event() -> Event {
        let mut e = Event::new(Component::Gateway, "restrict.block")
            .outcome(Outcome::Failure)
            .severity(Severity::High)
            .user_id("kim]\"x")
            .device_id("dev|1")
            .service_id("transfer")
            .filter("restrict-1")
            .instance("gw 1")
            .message("blocked = restricted\ndevice");
        e.timestamp = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        e
    }

    #[test]
    fn rfc5424_has_pri_version_header_and_escaped_structured_data() {
        let line = rfc5424(&event(), "host");
        // authpriv (10) * 8 + err (3) = 83
        assert!(
            line.starts_with(
                "<83>1 2023-11-14T22:13:20Z gw1 haetae-gateway - restrict.block [haetae@32473 id=\""
            ),
            "{line}"
        );
        assert!(line.contains(r#" user="kim\]\"x""#), "{line}");
        assert!(line.contains(r#" outcome="failure""#));
        assert!(line.ends_with("] blocked = restricted\ndevice"), "{line}");
    }

    #[test]
    fn cef_escapes_header_pipes_and_extension_equals_and_newlines() {
        let line = cef(&event(), "host");
        let cef_part = &line[line.find("CEF:0|").unwrap()..];
        assert!(cef_part.starts_with("CEF:0|haetae|haetae|"), "{cef_part}");
        assert!(
            cef_part.contains("|restrict.block|blocked = restricted device|8|rt=1700000000000 ")
        );
        assert!(cef_part.contains(" deviceExternalId=dev|1"), "{cef_part}");
        assert!(cef_part.contains(" suser=kim]\"x"));
        assert!(cef_part.contains(" cs1Label=service cs1=transfer cs2Label=filter cs2=restrict-1"));
        let with_eq = event().instance("a=b");
        assert!(cef(&with_eq, "h").contains("dvchost=a\\=b"));
    }

    #[test]
    fn ecs_and_hec_are_json() {
        let e = event();
        let v: serde_json::Value = serde_json::from_str(&ecs(&e)).unwrap();
        assert_eq!(v["event"]["action"], "restrict.block");
        let h: serde_json::Value = serde_json::from_str(&splunk_hec(&e)).unwrap();
        assert_eq!(h["sourcetype"], "haetae:ecs");
        assert_eq!(h["event"]["user"]["id"], "kim]\"x");
        assert!((h["time"].as_f64().unwrap() - 1_700_000_000.0).abs() < 1e-3);
    }
}
