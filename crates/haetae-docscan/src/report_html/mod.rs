//! Per-file analysis reports for analysts (seed 002 (d)): one self-contained HTML page (no
//! scripts, no external resources, every value escaped, a CSP that forbids loading anything)
//! and the same data as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;
use crate::report::Report;

/// What was done with a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTaken {
    /// `allow`, `log`, `quarantine`, `disarm`, `delete`.
    pub action: String,
    /// Where the result is (quarantine id, disarmed copy path), or why it failed.
    pub detail: String,
    /// Whether it succeeded.
    pub ok: bool,
}

/// How the conversion (disarm) went, as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversionSummary {
    /// Where the safe copy was written, if it was.
    pub output: Option<String>,
    /// What the copy is (`same format`, `text rendition`, ...).
    pub kind: String,
    /// What was removed: (what, where).
    pub removed: Vec<(String, String)>,
    /// Conversion failures: (error code, location, message).
    pub failures: Vec<(String, String, String)>,
    /// Anything the analyst should know (e.g. no faithful binary rebuild).
    pub note: Option<String>,
}

/// Everything one report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The scan.
    pub scan: Report,
    /// Inflow source.
    pub source: String,
    /// Similar known vulnerabilities.
    pub analysis: Option<Analysis>,
    /// Conversion result.
    pub conversion: Option<ConversionSummary>,
    /// Actions taken.
    pub actions: Vec<ActionTaken>,
    /// haetae version.
    pub version: String,
}

/// Escapes text for HTML element content and attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#x{:x};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A link only for `https://` URLs (and NVD-style known hosts); anything else is plain text.
fn link(url: &str) -> String {
    if url.starts_with("https://") && !url.contains(['"', '\'', '<', '>', ' ']) {
        format!(
            "<a href=\"{0}\" rel=\"noopener noreferrer\">{0}</a>",
            escape(url)
        )
    } else {
        escape(url)
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1f24;max-width:70em}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccd}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f1f3f6}.v{display:inline-block;padding:.1em .6em;border-radius:.3em;font-weight:600}\
.clean{background:#d9f2dc}.suspicious{background:#fff1c2}.vulnerable{background:#ffd2d2}\
code{font:12px ui-monospace,monospace;word-break:break-all}.muted{color:#57606a}";

/// The HTML page of one report.
#[must_use]
pub fn to_html(r: &FileReport) -> String {
    let s = &r.scan;
    let mut h = String::with_capacity(8192);
    let name = s.path.as_deref().unwrap_or("(stdin)");
    let verdict = s.verdict.as_str();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>haetae report: {}</title><style>{STYLE}</style></head><body>",
        escape(name)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<p><span class=\"v {verdict}\">{verdict}</span> \
         <span class=\"muted\">{} bytes &middot; claimed {} &middot; detected {} &middot; source {} &middot; {:.1} ms</span></p>\n\
         <p class=\"muted\">SHA-256 <code>{}</code></p>",
        escape(name),
        s.size,
        escape(s.claimed_type.map_or("?", |t| t.as_str())),
        escape(s.detected_type.as_str()),
        escape(&r.source),
        s.elapsed_ms,
        escape(&s.sha256),
    );
    if let Some(err) = &s.error {
        let _ = writeln!(h, "<p><strong>Not scanned:</strong> {}</p>", escape(err));
    }
    h.push_str("<h2>Findings</h2>\n");
    if s.findings.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table><tr><th>severity</th><th>code</th><th>location</th><th>message</th><th>CVE</th></tr>\n");
        for f in &s.findings {
            let cves: Vec<String> = f
                .cve
                .iter()
                .map(|c| {
                    format!(
                        "<a href=\"https://nvd.nist.gov/vuln/detail/{0}\" rel=\"noopener noreferrer\">{0}</a>",
                        escape(c)
                    )
                })
                .collect();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(f.severity.as_str()),
                escape(&f.code),
                escape(&f.location.to_string()),
                escape(&f.message),
                cves.join(", ")
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Similar known vulnerabilities</h2>\n");
    match &r.analysis {
        Some(a) if !a.matches.is_empty() => {
            h.push_str("<table><tr><th>score</th><th>vulnerability</th><th>CVE</th><th>status</th><th>references</th></tr>\n");
            for m in &a.matches {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}<br><span class=\"muted\">code {:.2}, location {:.2}, CVE {}, type {:.0}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    m.score,
                    escape(&m.name),
                    m.breakdown.code,
                    m.breakdown.location,
                    m.breakdown
                        .cve
                        .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.0}")),
                    m.breakdown.file_type,
                    escape(&m.cves.join(", ")),
                    escape(match m.status {
                        crate::kb::Status::Confirmed => "confirmed",
                        crate::kb::Status::Unconfirmed => "unconfirmed",
                    }),
                    m.links
                        .iter()
                        .map(|l| link(l))
                        .collect::<Vec<_>>()
                        .join("<br>")
                );
            }
            h.push_str("</table>\n");
            if let Some(l) = &a.learned {
                let _ = writeln!(
                    h,
                    "<p>Learned as new unconfirmed entry <code>{}</code>.</p>",
                    escape(&l.id)
                );
            }
        }
        Some(a) => {
            h.push_str("<p>No known vulnerability is similar.</p>\n");
            if let Some(l) = &a.learned {
                let _ = writeln!(
                    h,
                    "<p>Learned as new <strong>unconfirmed</strong> entry <code>{}</code> for an analyst to review.</p>",
                    escape(&l.id)
                );
            }
        }
        None => h.push_str("<p class=\"muted\">Not compared (no knowledge base).</p>\n"),
    }
    h.push_str("<h2>Conversion</h2>\n");
    match &r.conversion {
        Some(c) => {
            let _ = writeln!(
                h,
                "<p>{}{}</p>",
                escape(&c.kind),
                c.output
                    .as_deref()
                    .map(|o| format!(": <code>{}</code>", escape(o)))
                    .unwrap_or_default()
            );
            if let Some(n) = &c.note {
                let _ = writeln!(h, "<p class=\"muted\">{}</p>", escape(n));
            }
            if !c.removed.is_empty() {
                h.push_str("<table><tr><th>removed</th><th>where</th></tr>\n");
                for (what, at) in &c.removed {
                    let _ = writeln!(
                        h,
                        "<tr><td>{}</td><td><code>{}</code></td></tr>",
                        escape(what),
                        escape(at)
                    );
                }
                h.push_str("</table>\n");
            }
            if !c.failures.is_empty() {
                h.push_str(
                    "<table><tr><th>conversion error</th><th>where</th><th>message</th></tr>",
                );
                for (code, at, msg) in &c.failures {
                    let _ = writeln!(
                        h,
                        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                        escape(code),
                        escape(at),
                        escape(msg)
                    );
                }
                h.push_str("</table>\n");
            }
        }
        None => h.push_str("<p class=\"muted\">Not converted.</p>\n"),
    }
    h.push_str("<h2>Actions</h2>\n");
    if r.actions.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table><tr><th>action</th><th>result</th></tr>\n");
        for a in &r.actions {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}{}</td></tr>",
                escape(&a.action),
                if a.ok { "" } else { "failed: " },
                escape(&a.detail)
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">haetae {}</p>\n</body></html>",
        escape(&r.version)
    );
    h
}

/// Writes `<DIR>/<sha256-prefix>-<name>.html` and `.json`; returns the HTML path.
///
/// # Errors
/// I/O errors naming the file.
pub fn write(dir: &Path, r: &FileReport) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let base: String = r
        .scan
        .path
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("stdin")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let prefix = r.scan.sha256.get(..12).unwrap_or("unreadable");
    let stem = format!("{prefix}-{base}");
    let html = dir.join(format!("{stem}.html"));
    let json = dir.join(format!("{stem}.json"));
    std::fs::write(&html, to_html(r))?;
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(&json, text)?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Features, rank, tests::equation_rtf};
    use crate::kb::known_vulnerabilities;
    use crate::{Limits, scan_bytes};

    fn report_of(data: &[u8], name: &str) -> FileReport {
        let scan = scan_bytes(data, Some(name), &Limits::default());
        let matches = rank(&Features::of(&scan), &known_vulnerabilities().unwrap());
        FileReport {
            scan,
            source: "email".into(),
            analysis: Some(Analysis {
                matches,
                learned: None,
                record_id: Some(1),
            }),
            conversion: Some(ConversionSummary {
                output: Some("out/x.rtf".into()),
                kind: "same format".into(),
                removed: vec![("\\object group".into(), "@0x40".into())],
                failures: vec![],
                note: None,
            }),
            actions: vec![ActionTaken {
                action: "quarantine".into(),
                detail: "entry 0123".into(),
                ok: true,
            }],
            version: "test".into(),
        }
    }

    #[test]
    fn the_equation_rtf_report_names_cve_2017_11882_first() {
        let r = report_of(&equation_rtf(), "invoice.rtf");
        let html = to_html(&r);
        let table = html.split("Similar known vulnerabilities").nth(1).unwrap();
        let first_row = table.split("<tr><td>").nth(1).unwrap();
        assert!(first_row.contains("CVE-2017-11882"), "{first_row}");
        assert!(html.contains("https://nvd.nist.gov/vuln/detail/CVE-2017-11882"));
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(json["analysis"]["matches"][0]["cves"][0], "CVE-2017-11882");
    }

    #[test]
    fn everything_is_escaped_and_nothing_is_loaded() {
        let mut r = report_of(b"plain", "<script>alert(1)</script>.txt");
        r.actions[0].detail = "\"><img src=x onerror=alert(1)>".into();
        r.conversion.as_mut().unwrap().note = Some("<iframe src=//evil>".into());
        let html = to_html(&r);
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<iframe"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("default-src 'none'"));
        for external in ["<link", "@import", "url(", "<a href=\"http:"] {
            assert!(!html.contains(external), "{external}");
        }
        assert_eq!(link("javascript:alert(1)"), "javascript:alert(1)");
    }

    #[test]
    fn write_puts_html_and_json_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let r = report_of(b"plain", "../../etc/a b.txt");
        let html = write(dir.path(), &r).unwrap();
        assert!(html.starts_with(dir.path()));
        assert!(html.to_str().unwrap().ends_with("-a_b.txt.html"));
        assert!(html.with_extension("json").exists());
    }
}
