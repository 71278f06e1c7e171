//! The analysis page: events of a period grouped by user, device, service, filter, address
//! or action, drawn as a stacked time chart (SVG, on the server) and a table with the users
//! behind each value. Its first preset is the seed paper's 24-hour monitoring of restricted
//! devices' attempts with the user ids behind them.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use time::OffsetDateTime;

use super::pages::{Page, api_error_page, esc, layout, page, time_text, url_component};
use crate::http::AppState;
use crate::http::analysis_api::{AnalysisParams, RANGES, analyse};
use crate::store::events::{Aggregate, TopColumn};

/// The values the chart draws one colour each for (the rest of the table is not charted).
const CHARTED: usize = 5;
const CHART_W: f64 = 1200.0;
const CHART_H: f64 = 130.0;

/// Saved searches shown above the form: (label key, query string).
const PRESETS: &[(&str, &str)] = &[
    (
        "analysis.preset_restricted",
        "by=device&range=24h&action=restrict.*",
    ),
    (
        "analysis.preset_blocked_users",
        "by=user&range=24h&outcome=failure",
    ),
    (
        "analysis.preset_blocked_ips",
        "by=ip&range=7d&outcome=failure",
    ),
    (
        "analysis.preset_filters",
        "by=filter&range=24h&outcome=failure",
    ),
    ("analysis.preset_actions", "by=action&range=1h"),
];

fn select(p: &Page, name: &str, label: &str, current: &str, options: &[(&str, &str)]) -> String {
    let mut s = format!("<label>{}<select name=\"{name}\">", p.t(label));
    for (value, key) in options {
        let sel = if *value == current { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{value}\"{sel}>{}</option>", p.t(key));
    }
    s.push_str("</select></label>");
    s
}

fn form(p: &Page, q: &AnalysisParams) -> String {
    let mut s = String::from("<section class=\"card\"><p class=\"presets\">");
    for (i, (key, qs)) in PRESETS.iter().enumerate() {
        if i > 0 {
            s.push_str(" · ");
        }
        let _ = write!(s, "<a href=\"/analysis?{}\">{}</a>", esc(qs), p.t(key));
    }
    s.push_str("</p><form method=\"get\" action=\"/analysis\" class=\"filters-form\" id=\"analysis-form\">");
    s.push_str(&select(
        p,
        "by",
        "analysis.by",
        q.by.as_deref().unwrap_or("device"),
        &[
            ("device", "col.device"),
            ("user", "col.user"),
            ("service", "col.service"),
            ("filter", "col.filter"),
            ("ip", "col.source_ip"),
            ("action", "col.action"),
        ],
    ));
    let ranges: Vec<(&str, &str)> = RANGES
        .iter()
        .map(|(name, _, _)| (*name, range_key(name)))
        .collect();
    s.push_str(&select(
        p,
        "range",
        "analysis.range",
        q.range.as_deref().unwrap_or("24h"),
        &ranges,
    ));
    let _ = write!(
        s,
        "<label>{}<input name=\"action\" value=\"{}\" maxlength=\"256\" placeholder=\"restrict.*\"></label>",
        p.t("col.action"),
        esc(q.action.as_deref().unwrap_or(""))
    );
    s.push_str(&select(
        p,
        "outcome",
        "col.outcome",
        q.outcome.as_deref().unwrap_or(""),
        &[
            ("", "analysis.any"),
            ("failure", "analysis.failure"),
            ("success", "analysis.success"),
            ("unknown", "analysis.unknown"),
        ],
    ));
    let _ = write!(
        s,
        "<button type=\"submit\">{}</button></form></section>",
        p.t("form.search")
    );
    s
}

fn range_key(name: &str) -> &'static str {
    match name {
        "1h" => "analysis.range_1h",
        "7d" => "analysis.range_7d",
        "30d" => "analysis.range_30d",
        _ => "analysis.range_24h",
    }
}

/// The stacked bar chart of the first [`CHARTED`] values per bucket, with a legend.
#[allow(clippy::cast_precision_loss)]
fn chart(p: &Page, a: &Aggregate, from_us: i64, to_us: i64, bucket_us: i64) -> String {
    let charted: Vec<&str> = a
        .rows
        .iter()
        .take(CHARTED)
        .map(|r| r.value.as_str())
        .collect();
    let first = from_us.div_euclid(bucket_us) * bucket_us;
    let buckets = usize::try_from((to_us - first + bucket_us - 1) / bucket_us)
        .unwrap_or(1)
        .max(1);
    let mut stacks = vec![[0i64; CHARTED]; buckets];
    for point in &a.series {
        let Some(k) = charted.iter().position(|v| *v == point.value) else {
            continue;
        };
        let i = usize::try_from((point.bucket - first) / bucket_us).unwrap_or(usize::MAX);
        if let Some(stack) = stacks.get_mut(i) {
            stack[k] += point.count;
        }
    }
    let max = stacks
        .iter()
        .map(|s| s.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let w = CHART_W / buckets as f64;
    let mut svg = format!(
        "<svg id=\"analysis-chart\" viewBox=\"0 0 {CHART_W} 150\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"0\" y1=\"{CHART_H}\" x2=\"{CHART_W}\" y2=\"{CHART_H}\" class=\"axis\"/>",
        p.t("analysis.chart")
    );
    for (i, stack) in stacks.iter().enumerate() {
        let mut y = CHART_H;
        for (k, &n) in stack.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let h = n as f64 / max * CHART_H;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\" class=\"s{k}\" data-value=\"{}\"><title>{} {}: {n}</title></rect>",
                i as f64 * w + w * 0.1,
                (w * 0.8).max(0.5),
                esc(charted[k]),
                time_text(first + i64::try_from(i).unwrap_or(0) * bucket_us),
                esc(charted[k]),
            );
        }
    }
    for (x, anchor, us) in [(0.0, "start", first), (CHART_W, "end", to_us)] {
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"146\" text-anchor=\"{anchor}\">{}</text>",
            time_text(us)
        );
    }
    svg.push_str("</svg><ul class=\"legend\">");
    for (k, v) in charted.iter().enumerate() {
        let _ = write!(
            svg,
            "<li><span class=\"swatch s{k}\"></span>{}</li>",
            esc(v)
        );
    }
    svg.push_str("</ul>");
    svg
}

/// The events explorer's parameter for a grouped column, when it has one.
fn explorer_field(by: TopColumn) -> Option<&'static str> {
    match by {
        TopColumn::User => Some("user"),
        TopColumn::Device => Some("device"),
        TopColumn::Service => Some("service"),
        TopColumn::Action => Some("action"),
        TopColumn::Filter | TopColumn::SourceIp => None,
    }
}

/// GET /analysis: the form, the chart and the table.
pub async fn analysis(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AnalysisParams>,
) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut body = form(&p, &q);
    let query = match q.to_query(OffsetDateTime::now_utc()) {
        Ok(query) => query,
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\">{}</p>",
                esc(&e.body.error.message)
            );
            return layout(&p, "/analysis", &body);
        }
    };
    let result = match analyse(&state, &query).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e),
    };
    let from_us = crate::store::micros(query.from);
    let to_us = crate::store::micros(query.to);
    let bucket_us = query.bucket_seconds.saturating_mul(1_000_000).max(1);
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><p class=\"muted\">{} — {} · {} {} s</p>",
        p.t("analysis.chart"),
        time_text(from_us),
        time_text(to_us),
        p.t("analysis.bucket"),
        query.bucket_seconds
    );
    if result.aggregate.rows.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\" id=\"analysis-none\">{}</p></section>",
            p.t("events.none")
        );
        return layout(&p, "/analysis", &body);
    }
    body.push_str(&chart(&p, &result.aggregate, from_us, to_us, bucket_us));
    body.push_str("</section>");
    let users_col = query.by != TopColumn::User;
    let _ = write!(
        body,
        "<section class=\"card\"><table id=\"analysis\"><thead><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th>{}</tr></thead><tbody>",
        p.t("analysis.value"),
        p.t("col.count"),
        p.t("analysis.failure"),
        p.t("analysis.first"),
        p.t("analysis.last"),
        if users_col {
            format!("<th>{}</th>", p.t("analysis.users"))
        } else {
            String::new()
        },
    );
    let from_param = url_component(&result.from);
    let to_param = url_component(&result.to);
    for row in &result.aggregate.rows {
        let value = match explorer_field(query.by) {
            Some(field) => format!(
                "<a href=\"/events?{field}={}&amp;from={from_param}&amp;to={to_param}\">{}</a>",
                url_component(&row.value),
                esc(&row.value)
            ),
            None => esc(&row.value),
        };
        let _ = write!(
            body,
            "<tr data-value=\"{}\"><td>{value}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>",
            esc(&row.value),
            row.count,
            row.failures,
            time_text(row.first_ts),
            time_text(row.last_ts)
        );
        if users_col {
            let users: Vec<String> = row
                .users
                .iter()
                .map(|u| format!("{} ({})", esc(&u.value), u.count))
                .collect();
            let _ = write!(body, "<td class=\"users\">{}</td>", users.join(", "));
        }
        body.push_str("</tr>");
    }
    let qs = format!(
        "by={}&amp;from={from_param}&amp;to={to_param}&amp;bucket={}{}{}",
        query.by.name(),
        query.bucket_seconds,
        result
            .action
            .as_deref()
            .map(|a| format!("&amp;action={}", url_component(a)))
            .unwrap_or_default(),
        result
            .outcome
            .as_deref()
            .map(|o| format!("&amp;outcome={o}"))
            .unwrap_or_default(),
    );
    let _ = write!(
        body,
        "</tbody></table><p><a href=\"/api/v1/analysis?{qs}\">{}</a></p></section>",
        p.t("analysis.json")
    );
    layout(&p, "/analysis", &body)
}
