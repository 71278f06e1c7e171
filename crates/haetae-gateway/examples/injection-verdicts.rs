//! Prints what the `injection` filter's detectors make of every value of HTTP requests,
//! one line per request, without a gateway or a network: the verdicts of a set of
//! requests before and after a change to the detectors can then be compared with `diff`.
//!
//! Input, one JSON object per line on standard input: `{"test": "...", "kind": "...",
//! "request": "<raw HTTP/1.1 request, one character per byte>"}`, as `bench/waf-stages.py`
//! prints the stages of the CRS regression tests:
//!
//!     python3 bench/waf-stages.py ../shared/corpora/waf/crs-v3.3.4 \
//!       | cargo run -q --release -p haetae-gateway --example injection-verdicts > before.txt
//!
//! Each request is split the way the filter reads one (the path percent-decoded, query and
//! form/JSON body parameters, cookies, the `User-Agent` and `Referer` headers; a body
//! without a `Content-Type` read as a form) and every value and name, plus the raw query
//! string and raw body, goes through `InjectionFilter::inspect` at paranoia 1, 2 and 3.
//! A line: the test, its kind, the paranoia levels at which some value was detected
//! (`PL1,PL2`, or `-`), then every value with a detection at some level and its three
//! verdicts (family, score, signals, SQL fingerprint). A summary goes to standard error.

use std::io::{BufRead, Write};

use haetae_gateway::filters::injection::{InjectionConfig, InjectionFilter};
use haetae_gateway::request::{Params, percent_decode_form};

/// The values of one request: (where, name, value).
fn values(raw: &[u8]) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let (head, body) = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => (raw, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut uri = request_line.split(' ').nth(1).unwrap_or_default();
    for scheme in ["http://", "https://"] {
        if let Some(rest) = uri.strip_prefix(scheme) {
            uri = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = percent_decode_form(path.as_bytes());
    out.push((
        "path",
        String::new(),
        path.trim_start_matches('/').to_owned(),
    ));
    let mut pairs = |loc: &'static str, params: &Params| {
        for (n, v) in params.iter() {
            out.push((loc, n.to_owned(), v.to_owned()));
            out.push((loc, format!("{n} (name)"), n.to_owned()));
        }
    };
    pairs("query", &Params::from_urlencoded(query.as_bytes()));
    let headers: Vec<(String, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.to_ascii_lowercase());
    let body_params = match content_type.as_deref() {
        None => Params::from_urlencoded(body),
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {
            Params::from_urlencoded(body)
        }
        Some(ct)
            if ct.starts_with("application/json")
                || (ct.starts_with("application/") && ct.contains("+json")) =>
        {
            Params::from_json(body)
        }
        Some(_) => Params::default(),
    };
    pairs("body", &body_params);
    for (n, v) in &headers {
        match n.as_str() {
            "cookie" => {
                for piece in v.split(';') {
                    let piece = piece.trim();
                    if piece.is_empty() {
                        continue;
                    }
                    let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
                    let (n, v) = (n.trim(), v.trim().trim_matches('"'));
                    out.push(("cookie", n.to_owned(), v.to_owned()));
                    out.push(("cookie", format!("{n} (name)"), n.to_owned()));
                }
            }
            "user-agent" | "referer" => out.push(("header", n.clone(), (*v).to_owned())),
            _ => {}
        }
    }
    out.push(("raw", "query".into(), query.to_owned()));
    out.push((
        "raw",
        "body".into(),
        String::from_utf8_lossy(body).into_owned(),
    ));
    out
}

fn main() {
    let filters: Vec<InjectionFilter> = (1..=3)
        .map(|paranoia| {
            InjectionFilter::new(InjectionConfig {
                paranoia,
                ..InjectionConfig::default()
            })
            .unwrap_or_else(|problems| panic!("default configuration rejected: {problems:?}"))
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut requests, mut detected) = (0usize, [0usize; 3]);
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else { break };
        let stage: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("injection-verdicts: line {}: {e}", n + 1);
                std::process::exit(2);
            }
        };
        let text = |k: &str| stage[k].as_str().unwrap_or_default().to_owned();
        // One character per byte: every character is below U+0100.
        let raw: Vec<u8> = text("request")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect();
        let mut levels = [false; 3];
        let mut found = String::new();
        for (loc, name, value) in values(&raw) {
            let verdicts: Vec<String> = filters
                .iter()
                .map(|f| match f.inspect(&value) {
                    Some(d) => format!(
                        "{}:{}[{}]{}",
                        d.family,
                        d.score,
                        d.signals.join(","),
                        d.fingerprint.map(|f| format!("<{f}>")).unwrap_or_default()
                    ),
                    None => "-".to_owned(),
                })
                .collect();
            if verdicts.iter().all(|v| v == "-") {
                continue;
            }
            for (l, v) in levels.iter_mut().zip(&verdicts) {
                *l |= v != "-";
            }
            found.push_str(&format!("\t{loc}:{name}={value:?} {}", verdicts.join(" ")));
        }
        requests += 1;
        let mut summary = Vec::new();
        for (i, hit) in levels.iter().enumerate() {
            if *hit {
                detected[i] += 1;
                summary.push(format!("PL{}", i + 1));
            }
        }
        let summary = if summary.is_empty() {
            "-".to_owned()
        } else {
            summary.join(",")
        };
        if writeln!(out, "{}\t{}\t{summary}{found}", text("test"), text("kind")).is_err() {
            break;
        }
    }
    let _ = out.flush();
    eprintln!(
        "injection-verdicts: {requests} requests; some value detected at PL1 {}, PL2 {}, PL3 {}",
        detected[0], detected[1], detected[2]
    );
}
