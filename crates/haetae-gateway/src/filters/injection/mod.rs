//! `injection`: SQL injection and cross-site scripting defence. Every
//! query and form/JSON field value (and name), the path, the cookies and selected headers
//! are decoded the ways attackers encode them (URL, double URL, HTML entities, `\uXXXX` and
//! `%uXXXX` escapes, case, SQL comments, whitespace) and scored by two detectors of
//! weighted signals, one for SQL and one for HTML/JavaScript; a value whose score reaches
//! the threshold of the configured paranoia level is an attack. Actions: `block` (403 page
//! with an incident id), `sanitize` (HTML-encode and forward) or `monitor`. Fields that carry
//! markup legitimately are excluded per instance. Besides the weighted patterns: a libinjection-class
//! SQL tokenizer and fingerprinter ([`sql`]), an HTML/JavaScript context scanner
//! ([`html`]), probes that are nothing but a SQL function call opener, an operator or a
//! literal tautology, and obfuscated markup (letters spaced out inside a tag name, `JSFuck`,
//! the high bit set on `<`/`>`).
//!
//! Not yet: multipart field values (uploads go to `upload-inspect`).
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

use haetae_core::{Event, EventCategory, EventKind, FilterInstance, PolicySnapshot, Severity};
use http::StatusCode;
use regex::{Regex, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use crate::filter::{
    Decision, FilterContext, LocalResponse, Modification, PhaseResult, Phases, Reason,
    SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, typed_config};
use crate::request::percent_decode_form;

pub mod html;
pub mod sanitize;
pub mod sql;

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
    /// What a detection does: `block` (403 page with the incident id), `sanitize`
    /// (HTML-encode the offending body fields, pass the request on; the originals stay in
    /// the shared KV for the application) or `monitor` (report only).
    pub action: Action,
    /// How long the originals of sanitized values stay in the shared KV.
    pub original_ttl_secs: u64,
}

/// What a detection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Answer 403 with a page naming the incident id.
    Block,
    /// HTML-encode the offending form/JSON body fields and forward; what cannot be
    /// neutralised that way (SQL, script URLs, values outside the body) is blocked.
    Sanitize,
    /// Report with an event and forward unchanged.
    Monitor,
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
            action: Action::Block,
            original_ttl_secs: 600,
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
    original_ttl: std::time::Duration,
    /// Verdicts on values that repeat from request to request (see [`VerdictCache`]).
    repeated: VerdictCache,
}

/// The verdicts on the values that repeat across requests — the path, the inspected headers
/// (a client sends the same `User-Agent` with every request), query, form and cookie
/// names — so each is
/// judged once, not on every request. Query, body and cookie values, which change from
/// request to request, are always judged afresh. The key is the whole value (no hash to
/// collide), at most [`VerdictCache::MAX_VALUE`] bytes; the cache starts over when it holds
/// [`VerdictCache::CAPACITY`] values, so its memory is bounded.
#[derive(Debug, Default)]
struct VerdictCache {
    map: std::sync::Mutex<std::collections::HashMap<Box<str>, Option<Detection>>>,
}

impl VerdictCache {
    const CAPACITY: usize = 4096;
    const MAX_VALUE: usize = 512;

    fn get_or(&self, value: &str, judge: impl FnOnce() -> Option<Detection>) -> Option<Detection> {
        if value.len() > Self::MAX_VALUE {
            return judge();
        }
        if let Ok(map) = self.map.lock()
            && let Some(hit) = map.get(value)
        {
            return hit.clone();
        }
        // Judged outside the lock: two requests may both judge a new value, never wait.
        let verdict = judge();
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= Self::CAPACITY {
                map.clear();
            }
            map.insert(value.into(), verdict.clone());
        }
        verdict
    }
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
        if cfg.original_ttl_secs == 0 || cfg.original_ttl_secs > 7 * 24 * 3600 {
            problems.push(ConfigProblem::new(
                "config.original_ttl_secs",
                format!(
                    "{} is out of range; use 1 to 604800 seconds",
                    cfg.original_ttl_secs
                ),
            ));
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
            original_ttl: std::time::Duration::from_secs(cfg.original_ttl_secs),
            repeated: VerdictCache::default(),
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
            // A quote glued to the operator needs one glued after it too (`'or'1'='1`):
            // `"sounds like 1` is the start of a quoted phrase, not a closed literal.
            r#"['"`] (?:or|and|xor|\|\||&&|div|like|rlike|regexp|sounds like) ?(?:not ?)?['"`\(]?[\w@'"`\(-]|\) ?(?:or|and|xor|\|\||&&) ?(?:not ?)?[\d@'"`\(-]|['"`](?:or|and|xor|\|\||&&|div|like|rlike|regexp)(?:not ?)?['"`\(]"#,
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
            // `set` only with what makes it an assignment (`;set @x=`, `;set x=`).
            r"; ?(?:select|insert|update|delete|truncate|exec|execute|declare|shutdown|grant|waitfor|begin)\b|; ?(?:drop|create|alter) ?(?:table|database|view|index|procedure|function|user|schema|trigger)\b|; ?set ?(?:@@?\w|\w+ ?=)",
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
            r"\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml|xp_cmdshell|sp_executesql|dbms_pipe\.receive_message|utl_http\.request)\b ?\(|\bwaitfor\b ?(?:delay|time)\b|\binto\b ?(?:out|dump)file\b|\bpg_sleep\b",
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
            r"\b(?:insert\b ?into|delete\b ?from|drop\b ?(?:table|database)|update\b ?\w+ ?set|alter\b ?table|truncate\b ?table|create\b ?(?:table|database|procedure))\b|\bdrop ?\w+ ?; ?(?:--|#|/\*)",
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
            r"\b(?:xp_\w+|sp_(?:oacreate|oamethod|password|makewebtask|executesql|addextendedproc|configure)|utl_(?:http|inaddr|file|smtp)|dbms_\w+|openrowset|opendatasource|msdasql|sqloledb|msdb|schema_name)\b|\bexecute ?immediate\b|\bprocedure ?analyse\b|\bexec(?:ute)? ?\( ?@",
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
            // `) 'x' from`, `as x from`; not `(maybe) switch from` or `(@x) from` in text.
            r#"\bas\b ?['"`]?\w*['"`]? ?from\b|\) ?['"`]\w*['"`] ?from\b"#,
        ),
        signal(
            // `and x!="`, `|| c == '`, `&&(e===`, `or (7319=8742)`: a boolean operator, an
            // operand and a comparison whose other side opens a literal or group, or is
            // missing (the rest of the statement is the application's).
            "sql-chained-condition",
            5,
            1,
            r#"(?:^|[^\w])(?:and|or|xor|&&|\|\|) ?\(? ?[\w@.'"`]+ ?(?:={1,3}|!={1,2}|<>|<=>) ?(?:['"`\(]|!?\d+ ?\)|$)"#,
        ),
        signal(
            "sql-subquery",
            5,
            1,
            r"(?:=|\bin|\bexists) ?\( ?select\b|\) ?when\b.{1,40}?\bthen\b|\bhaving ?\d+ ?(?:=|<|>)",
        ),
        signal(
            // `drop sampletable;--`: a DDL statement ended and the rest commented out.
            "sql-statement-comment",
            5,
            1,
            r"\b(?:drop|alter|create|truncate) ?(?:table ?)?\w+ ?; ?(?:--|#|/\*)",
        ),
        signal(
            "sql-quoted-identifiers",
            5,
            1,
            r"\bfrom ?`[^`]{1,64}`(?: ?\. ?`[^`]{1,64}`)? ?(?:where|limit|order|group|join|union)\b",
        ),
        signal(
            // MongoDB operators in a parameter (`user[$ne]=`): NoSQL injection.
            "nosql-operator",
            5,
            1,
            r"\[ ?\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|expr|elemmatch|size|all|type|mod|text)\b ?\]",
        ),
        signal(
            // A value that is nothing but a SQL operator: a probe of the query around it.
            "sql-operator-probe",
            5,
            1,
            r#"^(?:xor|regexp|rlike|sounds like|<=>|>>|<<|<>|!=|>=|<=|&&|\|\||(?:not ?)?like ?null|is ?(?:not ?)?null|(?:not ?)?in ?\(.*\))$|\blike ?['"`]$"#,
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
    // Bytes that may change something: upper-case ASCII, outside ASCII, whitespace and
    // control characters, `/` (a comment's start). Without any, the value is its own
    // normal form.
    const CHANGES: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0u8;
        loop {
            t[c as usize] = c.is_ascii_uppercase() || c <= 0x20 || c >= 0x7F || c == b'/';
            if c == u8::MAX {
                break;
            }
            c += 1;
        }
        t
    };
    if !value.bytes().any(|c| CHANGES[usize::from(c)]) {
        return value.to_owned();
    }
    let lower = lower_case(value);
    strip_comments_and_collapse(&lower)
}

/// Full-width forms (U+FF01..U+FF5E) read as the ASCII they look like, then lower case
/// (as `str::to_lowercase`), without a copy per step: ASCII and Hangul are copied in runs.
fn lower_case(value: &str) -> Cow<'_, str> {
    let b = value.as_bytes();
    // Nothing to change: no upper-case ASCII letter, nothing outside ASCII but Hangul.
    let mut i = 0;
    let mut unchanged = true;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_uppercase() {
            unchanged = false;
            break;
        }
        if c < 0x80 {
            i += 1;
        } else if hangul_at(b, i) {
            i += 3;
        } else {
            unchanged = false;
            break;
        }
    }
    if unchanged {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    out.push_str(&value[..i]);
    let rest = &value[i..];
    for c in rest.chars() {
        let c = match u32::from(c) {
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c == '\u{3a3}' {
            // Σ: its lower case depends on the letters around it; `str::to_lowercase` knows
            // the rule.
            return Cow::Owned(slow_lower_case(value));
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    Cow::Owned(out)
}

/// [`lower_case`] the straightforward way (the reference for it).
fn slow_lower_case(value: &str) -> String {
    let ascii: String = value
        .chars()
        .map(|c| match u32::from(c) {
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect();
    ascii.to_lowercase()
}

/// A Hangul syllable (U+AC00..U+D7A3, no case, not whitespace, no control) at byte `i`.
fn hangul_at(b: &[u8], i: usize) -> bool {
    // U+AC00 is EA B0 80, U+D7A3 is ED 9E A3.
    let (Some(&b0), Some(&b1), Some(&b2)) = (b.get(i), b.get(i + 1), b.get(i + 2)) else {
        return false;
    };
    if !(0x80..=0xBF).contains(&b1) || !(0x80..=0xBF).contains(&b2) {
        return false;
    }
    match b0 {
        0xEA => b1 >= 0xB0,
        0xEB | 0xEC => true,
        0xED => b1 < 0x9E || (b1 == 0x9E && b2 <= 0xA3),
        _ => false,
    }
}

/// SQL comments (`/* ... */`, an unclosed one to the end) become a space, then whitespace
/// and control character runs become one space, trimmed: in one pass.
fn strip_comments_and_collapse(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    // The last character written is a space (or nothing is written yet: no leading space).
    let mut space = true;
    let mut run = 0; // start of the current run of characters copied as they are
    let mut i = 0;
    while i < b.len() {
        // Skip the printable ASCII characters other than `/` in one go.
        i += b[i..]
            .iter()
            .position(|&c| !(0x21..0x7F).contains(&c) || c == b'/')
            .unwrap_or(b.len() - i);
        let Some(&c) = b.get(i) else {
            break;
        };
        if c >= 0x80 {
            if hangul_at(b, i) {
                i += 3;
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or(' ');
            if !(ch.is_whitespace() || ch.is_control()) {
                i += ch.len_utf8();
                continue;
            }
        }
        if c == b'/' && b.get(i + 1) != Some(&b'*') {
            i += 1;
            continue;
        }
        // A space, a control character or a comment: copy the run before it.
        if run < i {
            out.push_str(&text[run..i]);
            space = false;
        }
        let len = if c == b'/' {
            match text[i + 2..].find("*/") {
                Some(j) => 2 + j + 2,
                None => b.len() - i,
            }
        } else if c < 0x80 {
            1
        } else {
            text[i..].chars().next().map_or(1, char::len_utf8)
        };
        if !space {
            out.push(' ');
            space = true;
        }
        i += len;
        run = i;
    }
    if run < b.len() {
        out.push_str(&text[run..]);
    } else if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// [`normalise`] the straightforward way, a step at a time (the reference for it).
#[cfg(test)]
fn slow_normalise(value: &str) -> String {
    let lower = slow_lower_case(value);
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
    /// The SQL fingerprint (first five folded token types) when the SQL tokenizer matched.
    pub fingerprint: Option<String>,
}

/// Every decoded form of a value worth inspecting (at most 7, each at most
/// [`MAX_VALUE`] bytes), normalised.
#[must_use]
pub fn decoded_forms(value: &str) -> Vec<String> {
    let value = truncate(value, MAX_VALUE);
    let mut forms: Vec<Cow<'_, str>> = vec![Cow::Borrowed(value)];
    // URL (twice: double encoding), then entities and backslash escapes on each.
    for _ in 0..2 {
        match forms.last().and_then(|f| url_decode_once(f)) {
            Some(d) => forms.push(Cow::Owned(d)),
            None => break,
        }
    }
    for i in 0..forms.len() {
        if let Some(d) = html_entity_decode(&forms[i]) {
            forms.push(Cow::Owned(d));
        }
        if let Some(d) = backslash_decode(&forms[i]) {
            forms.push(Cow::Owned(d));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for f in forms.iter().take(6) {
        let n = normalise(truncate(f, MAX_VALUE));
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

/// The value with U+0080..U+00FF read as the ASCII character below them (the high bit
/// cleared), UTF-8 lead bytes misread as Latin-1 (`Â¼`, `â¼` once lower-cased) dropped; `None` when the value
/// has no such character that becomes markup.
fn high_bit_stripped(value: &str) -> Option<String> {
    let markup = |c: char| matches!(u32::from(c), 0xBC | 0xBE | 0xA2 | 0xA7 | 0xBB | 0xA8 | 0xA9);
    // Those characters are C2 A2..C2 BE in UTF-8: no C2 byte, none of them.
    if !value.as_bytes().contains(&0xC2) || !value.chars().any(markup) {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let n = u32::from(c);
        if matches!(n, 0xC2 | 0xC3 | 0xE2 | 0xE3)
            && chars
                .peek()
                .is_some_and(|&d| (0x80..=0xBF).contains(&u32::from(d)))
        {
            continue;
        }
        if (0x80..=0xFF).contains(&n) {
            out.push(char::from_u32(n & 0x7F).unwrap_or(c));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Tags whose letters are spaced out to slip past pattern matching (`<f o r m`,
/// `< x: script`): what follows `<` reads as a dangerous tag once the spaces go, and there
/// were spaces inside the name.
fn spaced_tag(form: &str) -> bool {
    const TAGS: [&str; 22] = [
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
        "base", "meta", "link", "style", "form", "isindex", "xml", "import", "img", "image",
        "body", "input", "video",
    ];
    let mut rest = form;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let mut name = String::new();
        let mut spaced = false;
        for c in rest.chars().take(40) {
            if c.is_ascii_alphabetic() || c == ':' {
                name.push(c);
            } else if c == ' ' {
                if !name.is_empty() {
                    spaced = true;
                }
            } else {
                break;
            }
            if name.len() > 16 {
                break;
            }
        }
        if !spaced {
            continue;
        }
        let local = name.rsplit(':').next().unwrap_or(&name);
        if TAGS.contains(&local) {
            return true;
        }
    }
    false
}

/// `JSFuck` and its relatives: JavaScript written with `[]()!+` only (`!![]`, `+[]`, `[][`).
/// A value that is nothing else and has one of their atoms.
fn jsfuck(form: &str) -> bool {
    // Without allocating: the value's non-space characters, checked as they come.
    let mut count = 0usize;
    let mut atom = false;
    let mut last = [' '; 2];
    for c in form.chars().filter(|c| !c.is_whitespace()) {
        if !matches!(c, '[' | ']' | '(' | ')' | '!' | '+') {
            return false;
        }
        let window = [last[0], last[1], c];
        atom |= matches!(window, ['!' | '+', '[', ']'] | ['[', ']', '[']);
        last = [last[1], c];
        count += 1;
    }
    count >= 4 && atom
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

/// All of a family's patterns in one set, so a value is scanned once per family; and the
/// same patterns anchored at the start, for a form that is one word (see [`one_word`]).
struct SignalSet {
    anywhere: RegexSet,
    at_start: RegexSet,
}

fn signal_set(signals: &[Signal]) -> SignalSet {
    let build = |patterns: Vec<String>| {
        RegexSetBuilder::new(patterns)
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .unwrap_or_else(|e| panic!("signal set: {e}"))
    };
    SignalSet {
        anywhere: build(
            signals
                .iter()
                .map(|s| s.pattern.as_str().to_owned())
                .collect(),
        ),
        at_start: build(
            signals
                .iter()
                .map(|s| format!("^(?:{})", s.pattern.as_str()))
                .collect(),
        ),
    }
}

/// Whether a form (its [`pattern_view`]) is one word: ASCII letters, digits and `_` only
/// (Hangul syllables are `Q` in the view). In such a form `\b` holds only at the start and
/// the end, and every signal pattern that can match there at all starts with `\b` or `^`
/// before a word character, so it can only match from the start: the patterns anchored at
/// the start find exactly the same signals, and the regex engine stops after the first
/// bytes that no pattern can begin with instead of reading the whole value
/// (`test::one_word_forms_match_the_same_signals_anchored` checks every pattern).
fn one_word(view: &str) -> bool {
    const WORD: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0u8;
        loop {
            t[c as usize] = c.is_ascii_alphanumeric() || c == b'_';
            if c == u8::MAX {
                break;
            }
            c += 1;
        }
        t
    };
    view.bytes().all(|c| WORD[usize::from(c)])
}

/// The form as the signal patterns read it, in ASCII: every Hangul syllable becomes `Q`;
/// `None` when it has another character outside ASCII (the patterns then read the form
/// itself). The same patterns match: a syllable is one word character (`\w`, not `\d` nor
/// `\s`) and so is `Q`, which no pattern names (they are lower case, checked by the tests),
/// so every `\b`, class, literal and counted repetition reads the two alike. It matters
/// for speed only: Unicode word boundaries keep the regex engine off its fast automaton on
/// text outside ASCII.
fn pattern_view(form: &str) -> Option<Cow<'_, str>> {
    if form.is_ascii() {
        return Some(Cow::Borrowed(form));
    }
    let b = form.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut run = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] < 0x80 {
            i += 1;
        } else if hangul_at(b, i) {
            out.push_str(&form[run..i]);
            out.push('Q');
            i += 3;
            run = i;
        } else {
            return None;
        }
    }
    out.push_str(&form[run..]);
    Some(Cow::Owned(out))
}

static SQL_SET: LazyLock<SignalSet> = LazyLock::new(|| signal_set(&SQL_SIGNALS));
static XSS_SET: LazyLock<SignalSet> = LazyLock::new(|| signal_set(&XSS_SIGNALS));

fn score(
    forms: &[String],
    set: &SignalSet,
    signals: &[Signal],
    paranoia: u8,
    family: &'static str,
) -> Detection {
    let mut best = Detection {
        family,
        score: 0,
        signals: Vec::new(),
        fingerprint: None,
    };
    for f in forms {
        let mut d = Detection {
            family,
            score: 0,
            signals: Vec::new(),
            fingerprint: None,
        };
        let matches = match pattern_view(f) {
            Some(view) if one_word(&view) => set.at_start.matches(&view),
            Some(view) => set.anywhere.matches(&view),
            None => set.anywhere.matches(f),
        };
        for i in &matches {
            if let Some(s) = signals.get(i)
                && s.paranoia <= paranoia
            {
                d.score += s.weight;
                d.signals.push(s.name);
            }
        }
        if family == "sqli" {
            // The tokenizer's verdict counts as much as CRS's libinjection rule (942100):
            // a critical, paranoia-1 finding.
            let (detected, fragments) = sql::analyse(f);
            if let Some(m) = detected {
                d.score += 5;
                d.signals.push(m.rule);
                d.fingerprint = Some(m.fingerprint);
            }
            for (rule, weight, level) in fragments {
                if level <= paranoia {
                    d.score += weight;
                    d.signals.push(rule);
                }
            }
        } else {
            for x in html::scan(f) {
                if x.paranoia <= paranoia {
                    d.score += x.weight;
                    d.signals.push(x.rule);
                }
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
            // Bytes with the high bit set read as the ASCII below them to readers that drop
            // it (`\xbcscript\xbe` is `<script>` to them): one more form, for markup only.
            let stripped = forms.iter().find_map(|f| high_bit_stripped(f)).map(|f| {
                let mut all = forms.clone();
                all.push(normalise(&f));
                all
            });
            let forms = stripped.as_ref().unwrap_or(&forms);
            let mut d = score(forms, &XSS_SET, &XSS_SIGNALS, self.cfg.paranoia, "xss");
            // Browsers drop tabs and newlines inside a URL scheme: `ja\tvascript:`.
            if !d.signals.contains(&"xss-js-uri")
                && forms.iter().any(|f| {
                    // The schemes end in `:`; without one there is nothing to compact.
                    if !f.contains(':') {
                        return false;
                    }
                    let compact: String = f.chars().filter(|c| !c.is_whitespace()).collect();
                    JS_URI_COMPACT.is_match(&compact)
                })
            {
                d.score += 5;
                d.signals.push("xss-js-uri-split");
            }
            if forms.iter().any(|f| spaced_tag(f)) {
                d.score += 5;
                d.signals.push("xss-spaced-tag");
            }
            if forms.iter().any(|f| jsfuck(f)) {
                d.score += 5;
                d.signals.push("xss-jsfuck");
            }
            if d.score >= self.threshold && found.as_ref().is_none_or(|f| d.score > f.score) {
                found = Some(d);
            }
        }
        found
    }

    /// Every value of the request with a detection (the first only unless `all`), as
    /// (location, field name, detection). Query, path, cookies and headers in the headers
    /// phase; form/JSON fields in the body phase.
    fn findings(&self, ctx: &FilterContext<'_>, with_body: bool, all: bool) -> Vec<Finding> {
        let mut seen = 0usize;
        let mut out: Vec<Finding> = Vec::new();
        let mut check = |location: Location, name: &str, value: &str| -> bool {
            seen += 1;
            if seen > MAX_VALUES {
                return true;
            }
            let repeats = matches!(
                location,
                Location::Path
                    | Location::Header
                    | Location::CookieName
                    | Location::QueryName
                    | Location::BodyName
            );
            let verdict = if repeats {
                self.repeated.get_or(value, || self.inspect(value))
            } else {
                self.inspect(value)
            };
            if let Some(d) = verdict {
                out.push(Finding {
                    location,
                    name: name.to_owned(),
                    detection: d,
                });
                return !all;
            }
            false
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
                if check(Location::Body, name, value) || check(Location::BodyName, name, name) {
                    break;
                }
            }
            return out;
        }
        let path = percent_decode_form(ctx.request.path().as_bytes());
        if check(Location::Path, "", path.trim_start_matches('/')) {
            return out;
        }
        for (name, value) in ctx.request.query().iter() {
            if self.exclude.contains(name) {
                continue;
            }
            if check(Location::Query, name, value) || check(Location::QueryName, name, name) {
                return out;
            }
        }
        if self.cfg.cookies {
            for (name, value) in ctx.request.cookies() {
                if self.exclude.contains(name) {
                    continue;
                }
                if check(Location::Cookie, name, value) || check(Location::CookieName, name, name) {
                    return out;
                }
            }
        }
        for h in &self.headers {
            for v in ctx.request.headers().get_all(h) {
                let text = String::from_utf8_lossy(v.as_bytes());
                if check(Location::Header, h.as_str(), &text) {
                    return out;
                }
            }
        }
        out
    }

    /// The `injection.detected` event for a finding; its id is the incident id.
    fn detected_event(&self, ctx: &FilterContext<'_>, f: &Finding, action: &str) -> Event {
        let d = &f.detection;
        let mut event = ctx
            .event("injection.detected")
            .category(EventCategory::IntrusionDetection)
            .kind(EventKind::Alert)
            .severity(Severity::High)
            .rule(d.rule())
            .label("location", f.label().chars().take(128).collect::<String>())
            .label("family", d.family)
            .label("score", d.score.to_string())
            .label("threshold", self.threshold.to_string())
            .label("signals", d.signals.join(","))
            .label("paranoia", self.cfg.paranoia.to_string())
            .label("action", action);
        if let Some(fp) = &d.fingerprint {
            event = event.label("fingerprint", fp.clone());
        }
        event
    }

    fn block(&self, ctx: &FilterContext<'_>, f: &Finding, why: &str) -> Decision {
        let event = self.detected_event(ctx, f, "block");
        let incident = event.id().to_string();
        ctx.emit(event);
        let d = &f.detection;
        let page = format!(
            "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>요청 차단</title></head>\n<body><h1>보안 정책에 의해 요청이 차단되었습니다</h1><p>The request was blocked by a security rule. Incident id: <code>{incident}</code></p></body></html>\n"
        );
        let mut resp = LocalResponse::html(StatusCode::FORBIDDEN, page);
        if let Ok(v) = http::HeaderValue::from_str(&incident) {
            resp.headers.push((INCIDENT_HEADER.clone(), v));
        }
        Decision::Respond(
            resp,
            Reason::new(
                d.rule(),
                Severity::High,
                format!(
                    "{} in {} (score {} >= {}: {}){why}; incident {incident}",
                    d.family,
                    f.label(),
                    d.score,
                    self.threshold,
                    d.signals.join(",")
                ),
            ),
        )
    }

    /// What to do with the findings of one phase.
    async fn act(&self, ctx: &FilterContext<'_>, found: &[Finding]) -> Decision {
        let Some(first) = found.first() else {
            return Decision::Continue;
        };
        match self.cfg.action {
            Action::Block => self.block(ctx, first, ""),
            Action::Monitor => {
                for f in found {
                    ctx.emit(self.detected_event(ctx, f, "monitor"));
                }
                Decision::Continue
            }
            Action::Sanitize => {
                // HTML encoding neutralises markup in a body field; it does nothing against
                // SQL, a script URL (entities are decoded inside attributes) or a value in
                // the query, path, cookies or headers (not rewritten): those are blocked.
                if let Some(f) = found.iter().find(|f| {
                    f.detection.family != "xss"
                        || f.location != Location::Body
                        || f.detection.signals.iter().any(|s| s.contains("script-url"))
                }) {
                    let why = if f.detection.family != "xss" {
                        ", not sanitizable: SQL"
                    } else if f.location != Location::Body {
                        ", not sanitizable: only body fields are rewritten"
                    } else {
                        ", not sanitizable: a script URL"
                    };
                    return self.block(ctx, f, why);
                }
                self.sanitize(ctx, found).await
            }
        }
    }

    /// Rewrites the body with every offending field HTML-encoded, keeps the originals in
    /// the shared KV under `injection/original/<incident>` and tells the application with
    /// `X-Haetae-Incident` and `X-Haetae-Sanitized`.
    async fn sanitize(&self, ctx: &FilterContext<'_>, found: &[Finding]) -> Decision {
        let Some(body) = ctx.request.body() else {
            return self.block(ctx, &found[0], ", not sanitizable: no body");
        };
        if !body.complete {
            return self.block(ctx, &found[0], ", not sanitizable: body not buffered whole");
        }
        let names: HashSet<&str> = found.iter().map(|f| f.name.as_str()).collect();
        let content_type = ctx
            .request
            .header("content-type")
            .unwrap_or("application/x-www-form-urlencoded")
            .to_ascii_lowercase();
        let rewritten = if content_type.contains("json") {
            sanitize::json_body(&body.bytes, &names)
        } else {
            Some(sanitize::form_body(&body.bytes, &names))
        };
        let Some(new_body) = rewritten else {
            return self.block(
                ctx,
                &found[0],
                ", not sanitizable: body could not be rewritten",
            );
        };
        let mut events: Vec<Event> = found
            .iter()
            .map(|f| self.detected_event(ctx, f, "sanitize"))
            .collect();
        let incident = events[0].id().to_string();
        // The originals, for the application that asks (by incident id).
        let originals: serde_json::Map<String, serde_json::Value> = found
            .iter()
            .map(|f| {
                let params = ctx.request.body_params();
                let value = params.get(&f.name).map_or_else(
                    || {
                        crate::request::Params::from_urlencoded(&body.bytes)
                            .get(&f.name)
                            .unwrap_or_default()
                            .to_owned()
                    },
                    str::to_owned,
                );
                (f.label(), serde_json::Value::String(value))
            })
            .collect();
        let stored = match ctx.kv() {
            Some(kv) => {
                let key = format!("injection/original/{incident}");
                let doc = serde_json::json!({ "incident": incident, "fields": originals });
                match kv
                    .put(&key, doc.to_string().as_bytes(), Some(self.original_ttl))
                    .await
                {
                    Ok(_) => "stored",
                    Err(e) => {
                        tracing::warn!(error = %e, "injection: could not keep the original values");
                        "kv-error"
                    }
                }
            }
            None => "no-kv",
        };
        for (i, e) in events.drain(..).enumerate() {
            let e = if i == 0 {
                e.label("original", stored)
            } else {
                e.label("incident", incident.clone())
            };
            ctx.emit(e);
        }
        let mut mods = vec![Modification::ReplaceBody(new_body.into())];
        if let Ok(v) = http::HeaderValue::from_str(&incident) {
            mods.push(Modification::SetHeader(INCIDENT_HEADER.clone(), v));
        }
        let fields: Vec<String> = found.iter().map(Finding::label).collect();
        if let Ok(v) = http::HeaderValue::from_str(&fields.join(",")) {
            mods.push(Modification::SetHeader(SANITIZED_HEADER.clone(), v));
        }
        Decision::Modify(mods)
    }
}

/// Carries the incident id: on the 403 page's response, and on a sanitized request to the
/// application.
static INCIDENT_HEADER: http::HeaderName = http::HeaderName::from_static("x-haetae-incident");
/// Names the sanitized fields on a request to the application.
static SANITIZED_HEADER: http::HeaderName = http::HeaderName::from_static("x-haetae-sanitized");

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    QueryName,
    Cookie,
    CookieName,
    Header,
    Body,
    BodyName,
}

/// One value with a detection.
#[derive(Debug)]
struct Finding {
    location: Location,
    name: String,
    detection: Detection,
}

impl Finding {
    /// `query:id`, `body:user.nick`, `cookie:theme`, `header:referer`, `path`.
    fn label(&self) -> String {
        let prefix = match self.location {
            Location::Path => return "path".into(),
            Location::Query => "query",
            Location::QueryName => "query-name",
            Location::Cookie => "cookie",
            Location::CookieName => "cookie-name",
            Location::Header => "header",
            Location::Body => "body",
            Location::BodyName => "body-name",
        };
        format!("{prefix}:{}", self.name)
    }
}

impl Detection {
    /// The event rule: `sql-injection` or `cross-site-scripting`.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        if self.family == "sqli" {
            "sql-injection"
        } else {
            "cross-site-scripting"
        }
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
        let found = self.findings(ctx, false, self.cfg.action != Action::Block);
        let decision = self.act(ctx, &found).await;
        // The application trusts these headers only from us: drop what a client sent.
        if matches!(decision, Decision::Continue)
            && (ctx.request.headers().contains_key(&INCIDENT_HEADER)
                || ctx.request.headers().contains_key(&SANITIZED_HEADER))
        {
            return Ok(Decision::Modify(vec![
                Modification::RemoveHeader(INCIDENT_HEADER.clone()),
                Modification::RemoveHeader(SANITIZED_HEADER.clone()),
            ]));
        }
        Ok(decision)
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let found = self.findings(ctx, true, self.cfg.action != Action::Block);
        Ok(self.act(ctx, &found).await)
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
    fn sql_probes_and_fragments_are_found_at_paranoia_1() {
        let f = filter(1);
        for v in [
            // a function name and its opening parenthesis, nothing else
            "ABS(",
            "unhex (",
            "length||!!$(",
            "year]=(",
            // chained conditions whose other side is the application's
            "and 1!=\"",
            "|| langCode == '",
            "&&(e===",
            "OR (7319=8742)",
            "AND uid!=(",
            // literal tautologies
            "1=1",
            "b,1=1",
            "11!=1",
            "'a'='a'",
            // operators alone, subqueries, NoSQL operators, DDL then a comment
            "<=>",
            "IS NULL",
            "in (0,1)",
            "@example.com&name=(select",
            ") when 234 then",
            "HAVING 1=",
            "from `db`.`t` limit",
            "u_id[$ne]",
            "DROP sampletable;--",
            "select pg_sleep",
            "EXECUTE IMMEDIATE \"",
        ] {
            assert_eq!(family(&f, v), Some("sqli"), "{v}");
        }
        // The near misses of the same shapes stay text.
        for v in [
            "time (3pm) works for me",
            "meet at the usual time (",
            "11=1",
            "1!=1",
            "11!=11",
            "\"1\" sSOUNDS LIKE \"SOUNDS LIKE 1",
            ";set @",
            ", aside from",
            "/Business and",
            "in Seoul (Gangnam)",
            "price!=cost",
            "drop off the documents",
        ] {
            assert_eq!(f.inspect(v), None, "{v}");
        }
    }

    #[test]
    fn obfuscated_markup_is_found_at_paranoia_1() {
        let f = filter(1);
        for v in [
            "1234<f o r m",
            "< x: script",
            "+!![]",
            "[][(![]+[])[+[]]]",
            "\\xbcscript\\xbealert(1)\\xbc/script\\xbe",
            "\\xc2\\xbcscript\\xc2\\xbealert(1)\\xc2\\xbc/script\\xc2\\xbe",
        ] {
            assert_eq!(family(&f, v), Some("xss"), "{v}");
        }
        for v in ["\\xbc\\xbc", "a < b or m", "(!)", "[1] + [2]", "3/4 ¼ ½ ¾"] {
            assert_eq!(f.inspect(v), None, "{v}");
        }
    }

    #[test]
    fn repeated_values_are_judged_once_and_the_cache_stays_bounded() {
        let f = filter(1);
        let ua = "Mozilla/5.0 <script>alert(1)</script>";
        let mut judged = 0;
        for _ in 0..3 {
            let d = f.repeated.get_or(ua, || {
                judged += 1;
                f.inspect(ua)
            });
            assert_eq!(
                d.map(|d| d.family),
                Some("xss"),
                "every request is still blocked"
            );
        }
        assert_eq!(judged, 1);
        for i in 0..(VerdictCache::CAPACITY + 10) {
            let _ = f.repeated.get_or(&format!("agent {i}"), || None);
        }
        assert!(f.repeated.map.lock().unwrap().len() <= VerdictCache::CAPACITY);
        // Long values are never kept.
        let long = "x".repeat(VerdictCache::MAX_VALUE + 1);
        let _ = f.repeated.get_or(&long, || None);
        assert!(!f.repeated.map.lock().unwrap().contains_key(long.as_str()));
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

    /// Deterministic pseudo-random values built from pieces that matter to the
    /// normalisation and the detectors: quotes, comments, every kind of whitespace and
    /// control character, escapes, upper case, full-width forms, Σ (whose lower case depends
    /// on its neighbours), Hangul, letters whose lower case is ASCII (K, İ).
    pub(super) fn tricky_values(n: usize) -> Vec<String> {
        const PIECES: [&str; 64] = [
            "'",
            "\"",
            "`",
            " ",
            "  ",
            "\t",
            "\n",
            "\x0b",
            "\x0c",
            "\r",
            "\x01",
            "\x7f",
            "\u{a0}",
            "\u{2003}",
            "\u{85}",
            "/*",
            "*/",
            "/*!",
            "/",
            "*",
            "--",
            "#",
            ";",
            "(",
            "<",
            ">",
            "=",
            "%27",
            "%3C",
            "%253C",
            "%u003c",
            "&lt;",
            "&#60;",
            "\\u003c",
            "\\x3c",
            "+",
            "OR",
            "1=1",
            "UNION",
            "SeLeCt",
            "from",
            "sleep(5)",
            "script",
            "alert(1)",
            "javascript:",
            "img src=x onerror=",
            "document.cookie",
            "김철수",
            "송금 ",
            "Ａ",
            "ｓｅｌｅｃｔ",
            "＜",
            "\u{3a3}",
            "\u{3a3}\u{391}\u{3a3}",
            "\u{130}",
            "\u{212a}",
            "\u{1c5}",
            "é",
            "¼",
            "Â¾",
            "xxxxxxxx",
            "110-234-567890",
            "\u{d7a3}\u{ac00}",
            "\u{d7a4}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|_| {
                let len = 1 + next() % 10;
                (0..len)
                    .map(|_| PIECES[usize::try_from(next() % 64).unwrap_or(0)])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn normalisation_in_one_pass_equals_the_step_by_step_one() {
        let mut values = tricky_values(20_000);
        values.extend(
            [
                "",
                " ",
                "  a  ",
                "/*",
                "/**/",
                "/*/",
                "//*x*/y",
                "a/*b*/c",
                "a /* b */ c",
                "*/",
                "x/",
                "/",
                "\u{3a3}",
                "a\u{3a3}",
                "\u{3a3}a",
                "a\u{3a3} b",
                "ＡＢＣ",
                "\u{ff01}\u{ff5e}\u{ff5f}",
                "\u{1100}\u{3131}",
                "\u{ac00}\u{d7a3}",
                "\x00\x1f\x7f\u{80}\u{9f}",
                "tab\there",
                "x\u{2028}y\u{2029}",
            ]
            .map(str::to_owned),
        );
        for v in &values {
            assert_eq!(normalise(v), slow_normalise(v), "{v:?}");
            assert_eq!(lower_case(v), slow_lower_case(v), "{v:?}");
        }
        // Every Hangul syllable passes through as it is; the code points on either side of
        // the range go the general way.
        let all: String = ('\u{ac00}'..='\u{d7a3}').collect();
        assert!(matches!(lower_case(&all), Cow::Borrowed(_)));
        assert_eq!(normalise(&all), all.to_lowercase());
        for c in ['\u{abff}', '\u{d7a4}', '\u{e000}'] {
            let b = c.to_string();
            assert!(!hangul_at(b.as_bytes(), 0), "{c:?}");
        }
    }

    #[test]
    fn the_patterns_read_hangul_as_they_read_its_ascii_view() {
        // What makes the view exact: a syllable is a word character and nothing else the
        // patterns can tell apart, and `Q` is named by no pattern (no upper-case letter and
        // no upper-case class escape such as `\W`, no case-insensitive flag).
        let word = Regex::new(r"^\w$").unwrap();
        let digit = Regex::new(r"^\d$").unwrap();
        let space = Regex::new(r"^\s$").unwrap();
        for c in ('\u{ac00}'..='\u{d7a3}').chain(['Q']) {
            let c = c.to_string();
            assert!(
                word.is_match(&c) && !digit.is_match(&c) && !space.is_match(&c),
                "{c}"
            );
        }
        for s in SQL_SIGNALS.iter().chain(XSS_SIGNALS.iter()) {
            let p = s.pattern.as_str();
            assert!(
                p.is_ascii() && !p.contains("(?i") && !p.contains("\\p") && !p.contains("\\P"),
                "{}",
                s.name
            );
            // Not even in an escape: `\W`, `\D`, `\S`, `\B` would tell `Q` from a syllable.
            assert!(
                !p.chars().any(|c| c.is_ascii_uppercase()),
                "{}: {p}",
                s.name
            );
        }
        // And on values: the same signals either way.
        let mut values = tricky_values(3_000);
        values.extend(
            [
                "김철수' or '1'='1",
                "김union select 1",
                "union김 select 1",
                "select 김 from 철수",
                "김 ' or 김=김",
                "<img 김 onerror=alert(1)>",
                "on김=",
                "1 and 김철수 = '",
                "김or 1=1",
            ]
            .map(str::to_owned),
        );
        for v in values {
            for f in decoded_forms(&v) {
                if let Some(view) = pattern_view(&f) {
                    assert_eq!(
                        SQL_SET
                            .anywhere
                            .matches(&view)
                            .into_iter()
                            .collect::<Vec<_>>(),
                        SQL_SET.anywhere.matches(&f).into_iter().collect::<Vec<_>>(),
                        "{f:?}"
                    );
                    assert_eq!(
                        XSS_SET
                            .anywhere
                            .matches(&view)
                            .into_iter()
                            .collect::<Vec<_>>(),
                        XSS_SET.anywhere.matches(&f).into_iter().collect::<Vec<_>>(),
                        "{f:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_word_forms_match_the_same_signals_anchored() {
        // The words the patterns name (runs of letters, digits and `_` in their source,
        // escapes left out), glued to each other and to filler at every position.
        let mut words: Vec<String> = Vec::new();
        for s in SQL_SIGNALS.iter().chain(XSS_SIGNALS.iter()) {
            let mut word = String::new();
            let mut escaped = false;
            for c in s.pattern.as_str().chars() {
                if !escaped && (c.is_ascii_alphanumeric() || c == '_') {
                    word.push(c);
                } else if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                escaped = !escaped && c == '\\';
            }
            words.push(word);
        }
        words.retain(|w| !w.is_empty());
        words.sort();
        words.dedup();
        let filler = ["", "x", "1", "0", "_", "Q", "xx", "12", "a", "0x1f", "b"];
        let mut state = 0x1234_5678_9abc_def1_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap_or(0)
        };
        let mut forms: Vec<String> = [
            "organisation",
            "orxisy",
            "1or2",
            "12and3",
            "xor",
            "isnull",
            "isnotnull",
            "notlikenull",
            "likenull",
            "selecttop1",
            "select0x1f",
            "selectdistinct",
            "executeimmediate",
            "procedureanalyse",
            "sysobjectsx",
            "xsysobjects",
            "innerhtml",
            "xinnerhtml",
            "innerhtmlx",
            "pg_sleep",
            "xp_cmdshell",
            "dbms_x",
            "orderby",
            "altertable",
            "fromxwhere",
            "nvarchar",
            "varchar2",
            "tempdb",
            "msdb",
            "",
            "Q",
        ]
        .map(str::to_owned)
        .to_vec();
        for w in &words {
            for f in filler {
                forms.push(format!("{w}{f}"));
                forms.push(format!("{f}{w}"));
            }
        }
        for _ in 0..20_000 {
            let mut f = String::new();
            for _ in 0..1 + next(4) {
                if next(2) == 0 {
                    f.push_str(filler[next(filler.len())]);
                }
                f.push_str(&words[next(words.len())]);
            }
            forms.push(f);
        }
        for f in forms.iter().filter(|f| one_word(f)) {
            for set in [&*SQL_SET, &*XSS_SET] {
                assert_eq!(
                    set.at_start.matches(f).into_iter().collect::<Vec<_>>(),
                    set.anywhere.matches(f).into_iter().collect::<Vec<_>>(),
                    "{f:?}"
                );
            }
        }
        assert!(one_word("abc_123Q") && !one_word("a b") && !one_word("a-b") && !one_word("김"));
    }

    #[test]
    fn the_sql_analysis_reads_the_bare_context_once_with_the_same_result() {
        for v in tricky_values(5_000) {
            let f = normalise(&v);
            assert_eq!(
                sql::analyse(&f),
                (sql::detect(&f), sql::fragments(&f)),
                "{f:?}"
            );
        }
    }

    #[test]
    fn values_just_past_each_shortcut_are_still_detected() {
        let f = filter(1);
        // Script URLs are judged only when there is a `:` (the scheme's end) ...
        assert_eq!(family(&f, "java\tscript:alert(1)"), Some("xss"));
        assert_eq!(f.inspect("java\tscript alert(1)"), None);
        // ... markup read with the high bit cleared only with a C2 byte (U+0080..U+00BF).
        assert_eq!(family(&f, "\u{bc}script\u{be}x"), Some("xss"));
        // Comments inside a value that is otherwise ASCII and lower case.
        assert_eq!(family(&f, "1/**/union/**/select/**/1,2"), Some("sqli"));
        // Upper case and full-width letters after Hangul are still lower-cased.
        assert_eq!(family(&f, "김철수' OR '1'='1"), Some("sqli"));
        assert_eq!(family(&f, "김철수 ＜script＞alert(1)"), Some("xss"));
        // Obfuscated script needs `.`, `[`, `(` or a backquote: each alone still counts.
        let f2 = filter(2);
        assert_eq!(family(&f, "document . cookie"), Some("xss"));
        assert_eq!(family(&f, "self [ 'al'+'ert' ] ( 1 )"), Some("xss"));
        assert_eq!(family(&f, "alert`1`"), Some("xss"));
        assert!(
            f2.inspect("x; alert (1)")
                .is_some_and(|d| d.signals.contains(&"xss-sink-call"))
        );
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
