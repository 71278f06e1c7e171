//! `injection`: SQL injection and cross-site scripting defence (first version). Every
//! query and form/JSON field value (and name), the path, the cookies and selected headers
//! are decoded the ways attackers encode them (URL, double URL, HTML entities, `\uXXXX` and
//! `%uXXXX` escapes, case, SQL comments, whitespace) and scored by two detectors of
//! weighted signals, one for SQL and one for HTML/JavaScript; a value whose score reaches
//! the threshold of the configured paranoia level is an attack. Actions: `block` (403 page
//! with an incident id) or report only (monitor mode). Fields that legitimately carry
//! markup are excluded per instance.
//!
//! Not yet: the libinjection-class SQL fingerprinter, `sanitize`, multipart field values.
//!
//! ```toml
//! [[policy.filters]]
//! id = "injection"
//! kind = "injection"
//! config = { paranoia = 1, exclude_fields = ["board.content_html"] }
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use haetae_core::{EventCategory, EventKind, FilterInstance, PolicySnapshot, Severity};
use http::StatusCode;
use regex::{Regex, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use crate::filter::{
    Decision, FilterContext, LocalResponse, PhaseResult, Phases, Reason, SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, typed_config};
use crate::request::percent_decode_form;

/// The kind name in policies.
pub const KIND: &str = "injection";

/// The most bytes of one value inspected; the rest is ignored (and counted as a signal
/// at paranoia 2 and above only when it is itself suspicious).
const MAX_VALUE: usize = 8 * 1024;

/// The most values inspected per request.
const MAX_VALUES: usize = 512;

/// `injection`'s configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// 1 (few false positives) to 3 (more detections, more false positives), as in the
    /// OWASP Core Rule Set.
    pub paranoia: u8,
    /// Overrides the paranoia level's score threshold.
    pub threshold: Option<u32>,
    /// Inspect for SQL injection.
    pub sqli: bool,
    /// Inspect for cross-site scripting.
    pub xss: bool,
    /// Field names (query, form or flattened JSON, e.g. `post.body_html`) not inspected.
    pub exclude_fields: Vec<String>,
    /// Request headers inspected besides the cookies.
    pub headers: Vec<String>,
    /// Inspect cookie values.
    pub cookies: bool,
    /// Body bytes buffered for form and JSON fields.
    pub max_body: usize,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            paranoia: 1,
            threshold: None,
            sqli: true,
            xss: true,
            exclude_fields: Vec::new(),
            headers: vec!["user-agent".into(), "referer".into()],
            cookies: true,
            max_body: 64 * 1024,
        }
    }
}

/// The `injection` filter.
#[derive(Debug)]
pub struct InjectionFilter {
    cfg: InjectionConfig,
    threshold: u32,
    exclude: HashSet<String>,
    headers: Vec<http::HeaderName>,
}

/// Builds the filter from its instance.
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: InjectionConfig = typed_config(instance)?;
    Ok(Arc::new(InjectionFilter::new(cfg)?))
}

impl InjectionFilter {
    /// The filter with this configuration, or every problem with it.
    pub fn new(cfg: InjectionConfig) -> Result<InjectionFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if !(1..=3).contains(&cfg.paranoia) {
            problems.push(ConfigProblem::new(
                "config.paranoia",
                format!("{} is not a paranoia level; use 1, 2 or 3", cfg.paranoia),
            ));
        }
        if cfg.threshold == Some(0) {
            problems.push(ConfigProblem::new(
                "config.threshold",
                "0 would flag every value; use e.g. 5",
            ));
        }
        let mut headers = Vec::new();
        for (i, h) in cfg.headers.iter().enumerate() {
            match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => headers.push(n),
                Err(_) => problems.push(ConfigProblem::new(
                    format!("config.headers[{i}]"),
                    format!("{h:?} is not a header name"),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Compile the detectors now, when the policy is applied, not in a request's budget.
        LazyLock::force(&SQL_SET);
        LazyLock::force(&XSS_SET);
        LazyLock::force(&JS_URI_COMPACT);
        let threshold = cfg.threshold.unwrap_or(match cfg.paranoia {
            1 => 5,
            2 => 4,
            _ => 3,
        });
        Ok(InjectionFilter {
            exclude: cfg.exclude_fields.iter().cloned().collect(),
            threshold,
            headers,
            cfg,
        })
    }
}

/// One weighted signal of a detector.
struct Signal {
    name: &'static str,
    weight: u32,
    /// The lowest paranoia level that uses it.
    paranoia: u8,
    pattern: Regex,
}

fn signal(name: &'static str, weight: u32, paranoia: u8, pattern: &str) -> Signal {
    Signal {
        name,
        weight,
        paranoia,
        // The patterns are constants of this file, checked by the tests.
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("signal {name}: {e}")),
    }
}

/// SQL signals over the normalised value (lower case, comments and whitespace runs
/// collapsed to one space).
static SQL_SIGNALS: LazyLock<Vec<Signal>> = LazyLock::new(|| {
    vec![
        signal(
            "sql-union-select",
            5,
            1,
            r"\bunion\b(?: (?:all|distinct))? ?\(? ?select\b",
        ),
        signal(
            "sql-quote-boolean",
            5,
            1,
            r#"['"`\)] ?(?:or|and|xor|\|\||&&|div|like|rlike|regexp|sounds like) ?(?:not ?)?['"`\(]?[\w@'"`\(-]"#,
        ),
        signal(
            "sql-tautology",
            4,
            1,
            r#"\b(?:or|and|xor|\|\||&&) ?['"`]?(\w+)['"`]? ?(?:=|<=>|like|is) ?['"`]?(\w+)['"`]?"#,
        ),
        signal(
            "sql-stacked-query",
            5,
            1,
            r"; ?(?:select|insert|update|delete|drop|truncate|exec|execute|declare|shutdown|create|alter|grant|waitfor|begin|set)\b",
        ),
        signal("sql-quote-comment", 5, 1, r#"['"`] ?(?:--|#|/\*)"#),
        signal(
            "sql-close-terminate",
            4,
            1,
            r#"['"`\)] ?;|\) ?(?:--|#|/\*)"#,
        ),
        signal("sql-select-from", 4, 1, r"\bselect\b.{1,100}?\bfrom\b"),
        signal(
            "sql-time-or-file-function",
            5,
            1,
            r"\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml|xp_cmdshell|sp_executesql|dbms_pipe\.receive_message|utl_http\.request)\b ?\(|\bwaitfor\b ?(?:delay|time)\b|\binto\b ?(?:out|dump)file\b",
        ),
        signal(
            "sql-schema-probe",
            4,
            1,
            r"\b(?:information_schema|mysql\.user|sysobjects|syscolumns|pg_catalog|sqlite_master|all_tables|@@version|version ?\( ?\))",
        ),
        signal(
            "sql-dml",
            4,
            1,
            r"\b(?:insert\b ?into|delete\b ?from|drop\b ?(?:table|database)|update\b ?\w+ ?set|alter\b ?table|truncate\b ?table)\b",
        ),
        signal(
            "sql-order-group-by",
            3,
            1,
            r#"['"`\)] ?(?:order|group) ?by\b"#,
        ),
        signal(
            "sql-numeric-comparison",
            5,
            1,
            r#"\b(?:or|and|xor|\|\||&&) ?['"`]?-?\d+['"`]? ?(?:=|<=>|>=|<=|<|>|!=|<>) ?['"`]?-?\d"#,
        ),
        signal(
            "sql-system-catalog",
            5,
            1,
            r"\b(?:information_schema|pg_catalog|pg_toast|sqlite_master|sqlite_temp_master|msysobjects|msysaccessobjects|msysqueries|msysrelationships|sysdatabases|sysfilegroups|northwind|tempdb)\b|\bmysql\.(?:db|user)\b|\b(?:database|db_name|schema|schema_name) ?\(",
        ),
        signal(
            "sql-server-procedure",
            5,
            1,
            r"\b(?:xp_\w+|sp_(?:oacreate|oamethod|password|makewebtask|executesql|addextendedproc|configure)|utl_(?:http|inaddr|file|smtp)|dbms_\w+|openrowset|opendatasource)\b",
        ),
        signal("sql-quote-union", 5, 1, r#"['"`\)] ?union\b"#),
        signal(
            "sql-select-expression",
            5,
            1,
            r"\bselect ?(?:(?:char|chr|concat|count|substring|substr|cast|convert|ascii|user|version|database|load_file|sleep|benchmark|if|case|md5|sha1|hex|unhex) ?\(|\*|0x[0-9a-f]|@@|distinct\b|top ?\d)",
        ),
        signal(
            "sql-alias-from",
            5,
            1,
            r#"(?:\)|\bas) ?(?:\bas )?['"`]?\w+['"`]? ?from\b"#,
        ),
        signal(
            "sql-quote-ddl",
            4,
            2,
            r#"['"`] ?(?:alter|drop|create|rename|truncate|shutdown|select|insert|delete|update|exec|execute|declare|having|where)\b ?[\w\(@]"#,
        ),
        signal(
            "sql-boolean-comparison",
            4,
            2,
            r#"(?:^|[^\w])(?:and|or|xor|&&|\|\|) ?[\w@'"`\(\.]+ ?(?:=|!=|<>|<=>|>=|<=|like|regexp|rlike) ?['"`\(\w@]"#,
        ),
        signal(
            "sql-table-clause",
            4,
            2,
            r#"\bfrom ?[`"]?\w+[`"]?(?:\.[`"]?\w+[`"]?)? ?(?:limit|where|order|group|union|join|into|procedure)\b|^order ?by\b|\balter ?table\b|\bprocedure ?analyse\b"#,
        ),
        signal(
            "sql-bare-operator",
            4,
            2,
            r#"^(?:xor|regexp|rlike|sounds like|<=>|>>|<<)$|\b(?:like|is|is not) ?null\b|\bin ?\( ?[\d'"-]+ ?(?:, ?[\d'"-]+ ?)+\)"#,
        ),
        signal(
            "sql-type-keyword",
            4,
            2,
            r"\b(?:nvarchar|varchar2?|nchar|varbinary)\b|\bdeclare ?@|\bexec ?\( ?@",
        ),
        signal(
            "sql-function-call",
            2,
            2,
            r"\b(?:char|chr|concat|concat_ws|group_concat|substring|substr|mid|ascii|hex|unhex|cast|convert|count|user|database|schema|current_user|system_user)\b ?\(",
        ),
        signal(
            "sql-quote-then-keyword",
            2,
            2,
            r#"['"`] ?\b(?:select|union|having|where|from|and|or|exec)\b"#,
        ),
        signal("sql-comment", 2, 2, r"/\*|\*/|--$|-- |#$"),
        signal("sql-numeric-boolean", 2, 3, r"^\d+ ?(?:or|and) ?\d"),
    ]
});

/// HTML/JavaScript signals over the normalised value (lower case, whitespace collapsed).
static XSS_SIGNALS: LazyLock<Vec<Signal>> = LazyLock::new(|| {
    vec![
        signal("xss-script-tag", 5, 1, r"<script\b|</script\b|<script>"),
        signal(
            "xss-event-handler",
            5,
            1,
            r#"<[a-z!/?][^>]*?[\s/"'`]on[a-z]{3,30} ?="#,
        ),
        signal(
            "xss-js-uri",
            5,
            1,
            r"(?:javascript|vbscript|livescript) ?:|data ?: ?text/html|data ?: ?image/svg",
        ),
        signal(
            "xss-dangerous-tag",
            3,
            1,
            r"<(?:iframe|frame|frameset|object|embed|applet|svg|math|base|meta|link|style|form|isindex|marquee|xml|import|details|video|audio|img|image|body|input|button|textarea|select|keygen|template|animate|set|handler)\b",
        ),
        signal(
            "xss-handler-attribute",
            3,
            1,
            r#"(?:^|[\s"'`;/])on(?:error|load|mouse\w+|focus\w*|blur|click|dblclick|key\w+|submit|change|input|toggle|begin|end|animation\w+|transition\w+|pointer\w+|drag\w*|drop|scroll|wheel|resize|hashchange|message|pageshow|show|start|finish|copy|cut|paste|select|abort|invalid|reset|search|unload|beforeunload|readystatechange) ?="#,
        ),
        signal(
            "xss-js-sink",
            3,
            1,
            r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval|fromcharcode|atob)\b ?(?:\(|`)|\bdocument ?\. ?(?:cookie|domain|write|location)|\bwindow ?\. ?location|\binnerhtml\b|\bsrcdoc ?=",
        ),
        signal(
            "xss-css-expression",
            4,
            1,
            r"expression ?\(|-moz-binding|behavior ?:|@import\b",
        ),
        signal(
            "xss-tag-with-source",
            5,
            1,
            r"<(?:[a-z]+:)?(?:script|iframe|frame|object|embed|applet|svg|base|meta|link|style|form|isindex|import|vmlframe|img|image|video|audio|input|button|body|animate|set|handler|bgsound|layer|ilayer|xss)\b[^>]*?(?:src|href|data|action|formaction|content|http-equiv|code|codebase|background|dynsrc|lowsrc|style|values|to|from|by) ?=",
        ),
        signal(
            "xss-attribute-vector",
            5,
            1,
            r"\b(?:xmlns(?::[a-z]+)?|xlink:href|formaction|xi:include) ?=|<!entity\b|<\?import\b|\bxmlns:|<[a-z]+:script\b",
        ),
        signal(
            "xss-dom-keyword",
            5,
            1,
            r"\bdocument ?\. ?(?:cookie|write|domain)\b|\bwindow ?\. ?location\b|\.(?:parentnode|innerhtml|outerhtml)\b|-moz-binding|<!\[cdata\[",
        ),
        signal("xss-tag-breakout", 2, 2, r#"['"`] ?> ?<|-->|<!\[cdata\["#),
        signal("xss-any-tag", 2, 2, r"<[a-z][a-z0-9-]* ?[\s/>]"),
        signal("xss-html-entity-obfuscation", 2, 3, r"&#x?0*[0-9a-f]+;?"),
    ]
});

/// A script URL scheme with every whitespace removed.
static JS_URI_COMPACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:javascript|vbscript|livescript):").unwrap_or_else(|e| panic!("{e}"))
});

/// Decodes `%XX` (and `%uXXXX`) escapes once; `None` when nothing changed.
fn url_decode_once(value: &str) -> Option<String> {
    if !value.contains('%') {
        return None;
    }
    let with_u = decode_percent_u(value);
    let decoded = percent_decode_form(with_u.as_bytes());
    (decoded != value).then_some(decoded)
}

/// `%uXXXX` (IIS) escapes to characters.
fn decode_percent_u(value: &str) -> Cow<'_, str> {
    if !value.contains("%u") && !value.contains("%U") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(['%']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let hex = tail.get(2..6);
        if matches!(tail.as_bytes().get(1), Some(b'u' | b'U'))
            && let Some(h) = hex
            && let Ok(n) = u32::from_str_radix(h, 16)
            && let Some(c) = char::from_u32(n)
        {
            out.push(c);
            rest = &tail[6..];
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// HTML character references (`&#60;`, `&#x3c;`, the usual named ones) to characters;
/// `None` when there are none.
fn html_entity_decode(value: &str) -> Option<String> {
    if !value.contains('&') {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail
            .char_indices()
            .take(10)
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
            .map_or(tail.len().min(10), |(j, _)| j);
        let name = &tail[..end];
        let decoded = if let Some(num) = name.strip_prefix('#') {
            let n = if let Some(h) = num.strip_prefix(['x', 'X']) {
                u32::from_str_radix(h, 16).ok()
            } else {
                num.parse().ok()
            };
            n.and_then(char::from_u32)
        } else {
            match name.to_ascii_lowercase().as_str() {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "amp" => Some('&'),
                "colon" => Some(':'),
                "lpar" => Some('('),
                "rpar" => Some(')'),
                "tab" => Some('\t'),
                "newline" => Some('\n'),
                "sol" => Some('/'),
                _ => None,
            }
        };
        match decoded {
            Some(c) if !name.is_empty() => {
                out.push(c);
                changed = true;
                let after = &tail[end..];
                rest = after.strip_prefix(';').unwrap_or(after);
            }
            _ => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `\uXXXX`, `\xXX` and `\XX` (CSS) escapes to characters; `None` when there are none.
fn backslash_decode(value: &str) -> Option<String> {
    if !value.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.char_indices().peekable();
    let mut changed = false;
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let tail = &value[i + 1..];
        let (len, radix_digits) = if tail.starts_with(['u', 'U']) {
            (1, 4)
        } else if tail.starts_with(['x', 'X']) {
            (1, 2)
        } else {
            (0, 0)
        };
        if radix_digits > 0
            && let Some(h) = tail.get(len..len + radix_digits)
            && let Ok(n) = u32::from_str_radix(h, 16)
            && let Some(ch) = char::from_u32(n)
        {
            out.push(ch);
            changed = true;
            for _ in 0..len + radix_digits {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    changed.then_some(out)
}

/// Lower case; SQL comments (`/* */`, `/*! */`) and control characters become a space;
/// whitespace runs become one space.
fn normalise(value: &str) -> String {
    // Full-width forms (U+FF01..U+FF5E) are read as the ASCII they look like.
    let ascii: String = value
        .chars()
        .map(|c| match u32::from(c) {
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect();
    let lower = ascii.to_lowercase();
    let mut no_comments = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("/*") {
        no_comments.push_str(&rest[..i]);
        no_comments.push(' ');
        match rest[i + 2..].find("*/") {
            Some(j) => rest = &rest[i + 2 + j + 2..],
            None => {
                rest = "";
            }
        }
    }
    no_comments.push_str(rest);
    collapse_whitespace(&no_comments)
}

/// Whitespace and control character runs become one space; trimmed.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out.trim().to_owned()
}

/// What a detector found in one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// `sqli` or `xss`.
    pub family: &'static str,
    /// The summed weight of the signals that matched.
    pub score: u32,
    /// Their names.
    pub signals: Vec<&'static str>,
}

/// Every decoded form of a value worth inspecting (at most 7, each at most
/// [`MAX_VALUE`] bytes), normalised.
#[must_use]
pub fn decoded_forms(value: &str) -> Vec<String> {
    let value = truncate(value, MAX_VALUE);
    let mut forms: Vec<String> = vec![value.to_owned()];
    // URL (twice: double encoding), then entities and backslash escapes on each.
    let mut current = value.to_owned();
    for _ in 0..2 {
        match url_decode_once(&current) {
            Some(d) => {
                forms.push(d.clone());
                current = d;
            }
            None => break,
        }
    }
    let bases = forms.clone();
    for f in &bases {
        if let Some(d) = html_entity_decode(f) {
            forms.push(d);
        }
        if let Some(d) = backslash_decode(f) {
            forms.push(d);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for f in forms.into_iter().take(6) {
        let n = normalise(truncate(&f, MAX_VALUE));
        if !out.contains(&n) {
            out.push(n);
        }
    }
    // The comments themselves are a signal: keep one form with them.
    if value.contains("/*") {
        out.push(collapse_whitespace(
            &truncate(value, MAX_VALUE).to_lowercase(),
        ));
    }
    out
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// All of a family's patterns in one set, so a value is scanned once per family.
fn signal_set(signals: &[Signal]) -> RegexSet {
    RegexSetBuilder::new(signals.iter().map(|s| s.pattern.as_str()))
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
        .unwrap_or_else(|e| panic!("signal set: {e}"))
}

static SQL_SET: LazyLock<RegexSet> = LazyLock::new(|| signal_set(&SQL_SIGNALS));
static XSS_SET: LazyLock<RegexSet> = LazyLock::new(|| signal_set(&XSS_SIGNALS));

fn score(
    forms: &[String],
    set: &RegexSet,
    signals: &[Signal],
    paranoia: u8,
    family: &'static str,
) -> Detection {
    let mut best = Detection {
        family,
        score: 0,
        signals: Vec::new(),
    };
    for f in forms {
        let mut d = Detection {
            family,
            score: 0,
            signals: Vec::new(),
        };
        for i in &set.matches(f) {
            if let Some(s) = signals.get(i)
                && s.paranoia <= paranoia
            {
                d.score += s.weight;
                d.signals.push(s.name);
            }
        }
        if d.score > best.score {
            best = d;
        }
    }
    best
}

impl InjectionFilter {
    /// The strongest detection in one value, if it reaches the threshold.
    #[must_use]
    pub fn inspect(&self, value: &str) -> Option<Detection> {
        if value.len() < 2 {
            return None;
        }
        let forms = decoded_forms(value);
        let mut found: Option<Detection> = None;
        if self.cfg.sqli {
            let d = score(&forms, &SQL_SET, &SQL_SIGNALS, self.cfg.paranoia, "sqli");
            if d.score >= self.threshold {
                found = Some(d);
            }
        }
        if self.cfg.xss {
            let mut d = score(&forms, &XSS_SET, &XSS_SIGNALS, self.cfg.paranoia, "xss");
            // Browsers drop tabs and newlines inside a URL scheme: `ja\tvascript:`.
            if !d.signals.contains(&"xss-js-uri")
                && forms.iter().any(|f| {
                    let compact: String = f.chars().filter(|c| !c.is_whitespace()).collect();
                    JS_URI_COMPACT.is_match(&compact)
                })
            {
                d.score += 5;
                d.signals.push("xss-js-uri-split");
            }
            if d.score >= self.threshold && found.as_ref().is_none_or(|f| d.score > f.score) {
                found = Some(d);
            }
        }
        found
    }

    fn check_all(&self, ctx: &FilterContext<'_>, with_body: bool) -> Option<(String, Detection)> {
        let mut seen = 0usize;
        let mut check = |location: String, value: &str| -> Option<(String, Detection)> {
            seen += 1;
            if seen > MAX_VALUES {
                return None;
            }
            self.inspect(value).map(|d| (location, d))
        };
        if with_body {
            // A body without a Content-Type is read as a form, as most frameworks do.
            let untyped;
            let params = if ctx.request.header("content-type").is_none()
                && let Some(body) = ctx.request.body()
            {
                untyped = crate::request::Params::from_urlencoded(&body.bytes);
                &untyped
            } else {
                ctx.request.body_params()
            };
            for (name, value) in params.iter() {
                if self.exclude.contains(name) {
                    continue;
                }
                if let Some(hit) = check(format!("body:{name}"), value) {
                    return Some(hit);
                }
                if let Some(hit) = check(format!("body-name:{name}"), name) {
                    return Some(hit);
                }
            }
            return None;
        }
        let path = ctx.request.path();
        if let Some(hit) = check("path".into(), &percent_decode_form(path.as_bytes())) {
            return Some(hit);
        }
        for (name, value) in ctx.request.query().iter() {
            if self.exclude.contains(name) {
                continue;
            }
            if let Some(hit) = check(format!("query:{name}"), value) {
                return Some(hit);
            }
            if let Some(hit) = check(format!("query-name:{name}"), name) {
                return Some(hit);
            }
        }
        if self.cfg.cookies {
            for (name, value) in ctx.request.cookies() {
                if self.exclude.contains(name) {
                    continue;
                }
                if let Some(hit) = check(format!("cookie:{name}"), value) {
                    return Some(hit);
                }
                if let Some(hit) = check(format!("cookie-name:{name}"), name) {
                    return Some(hit);
                }
            }
        }
        for h in &self.headers {
            for v in ctx.request.headers().get_all(h) {
                let text = String::from_utf8_lossy(v.as_bytes());
                if let Some(hit) = check(format!("header:{h}"), &text) {
                    return Some(hit);
                }
            }
        }
        None
    }

    fn decide(&self, ctx: &FilterContext<'_>, location: &str, d: &Detection) -> Decision {
        let event = ctx
            .event("injection.detected")
            .category(EventCategory::IntrusionDetection)
            .kind(EventKind::Alert)
            .severity(Severity::High)
            .rule(if d.family == "sqli" {
                "sql-injection"
            } else {
                "cross-site-scripting"
            })
            .label("location", location.chars().take(128).collect::<String>())
            .label("family", d.family)
            .label("score", d.score.to_string())
            .label("threshold", self.threshold.to_string())
            .label("signals", d.signals.join(","))
            .label("paranoia", self.cfg.paranoia.to_string());
        let incident = event.id().to_string();
        ctx.emit(event);
        let page = format!(
            "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>요청 차단</title></head>\n<body><h1>보안 정책에 의해 요청이 차단되었습니다</h1><p>The request was blocked by a security rule. Incident id: <code>{incident}</code></p></body></html>\n"
        );
        let mut resp = LocalResponse::html(StatusCode::FORBIDDEN, page);
        if let Ok(v) = http::HeaderValue::from_str(&incident) {
            resp.headers
                .push((http::HeaderName::from_static("x-haetae-incident"), v));
        }
        Decision::Respond(
            resp,
            Reason::new(
                if d.family == "sqli" {
                    "sql-injection"
                } else {
                    "cross-site-scripting"
                },
                Severity::High,
                format!(
                    "{} in {location} (score {} >= {}: {}); incident {incident}",
                    d.family,
                    d.score,
                    self.threshold,
                    d.signals.join(",")
                ),
            ),
        )
    }
}

#[async_trait::async_trait]
impl SecurityFilter for InjectionFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            request_body: Some(self.cfg.max_body),
            ..Phases::default()
        }
    }

    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(match self.check_all(ctx, false) {
            Some((location, d)) => self.decide(ctx, &location, &d),
            None => Decision::Continue,
        })
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(match self.check_all(ctx, true) {
            Some((location, d)) => self.decide(ctx, &location, &d),
            None => Decision::Continue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(paranoia: u8) -> InjectionFilter {
        InjectionFilter::new(InjectionConfig {
            paranoia,
            ..InjectionConfig::default()
        })
        .unwrap()
    }

    fn family(f: &InjectionFilter, v: &str) -> Option<&'static str> {
        f.inspect(v).map(|d| d.family)
    }

    #[test]
    fn every_signal_pattern_compiles() {
        assert!(SQL_SIGNALS.len() > 10);
        assert!(XSS_SIGNALS.len() > 8);
    }

    #[test]
    fn classic_sql_injections_are_found_at_paranoia_1() {
        let f = filter(1);
        for v in [
            "' or '1'='1",
            "1' OR 1=1-- ",
            "admin'--",
            "1 UNION SELECT username, password FROM users",
            "1; DROP TABLE accounts",
            "1' AND SLEEP(5)#",
            "x' UnIoN/**/SeLeCt/**/1,2,3-- -",
            "%27%20or%201%3D1--",
            "%2527%2520or%25201%253D1--",
            "1' and extractvalue(1,concat(0x7e,version()))-- ",
        ] {
            assert_eq!(family(&f, v), Some("sqli"), "{v}");
        }
    }

    #[test]
    fn classic_xss_is_found_through_encodings() {
        let f = filter(1);
        for v in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "javascript:alert(document.cookie)",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "\\u003cscript\\u003ealert(1)",
            "<a href=\"jav&#x61;script:alert(1)\">x</a>",
            "\"><body onload=alert(1)>",
        ] {
            assert_eq!(family(&f, v), Some("xss"), "{v}");
        }
    }

    #[test]
    fn ordinary_banking_values_pass() {
        let f = filter(1);
        for v in [
            "김철수",
            "O'Brien",
            "1,000,000",
            "Please select an account from the list",
            "Transfer for rent and utilities",
            "user@example.com",
            "2026-11-23T10:00:00+09:00",
            "a < b and c > d",
            "I'd like to update my address; thanks",
            "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko)",
            "https://bank.example/accounts?tab=1",
        ] {
            assert_eq!(f.inspect(v), None, "{v}");
        }
    }

    #[test]
    fn decoding_is_bounded_and_never_panics() {
        let f = filter(3);
        for v in [
            "%",
            "%u",
            "%u12",
            "&#",
            "&#x;",
            "&#99999999999;",
            "\\u",
            "\\ud800",
            "/*",
            "*/",
            "é%C3",
            "%uD800",
        ] {
            let _ = f.inspect(v);
        }
        let long = "' or 1=1 ".repeat(10_000);
        assert!(decoded_forms(&long).iter().all(|s| s.len() <= MAX_VALUE));
    }

    #[test]
    fn an_invalid_paranoia_level_is_a_config_error() {
        let err = InjectionFilter::new(InjectionConfig {
            paranoia: 4,
            ..InjectionConfig::default()
        })
        .unwrap_err();
        assert_eq!(err[0].path, "config.paranoia");
    }
}
