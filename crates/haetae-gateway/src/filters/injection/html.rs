//! An HTML/JavaScript context tokenizer for cross-site scripting, written for haetae.
//!
//! A value is read the way a browser would read it in the places an application echoes
//! it: as HTML text (tags and their attributes, tokenized as the HTML parser does: a tag
//! name right after `<`, attributes separated by whitespace or `/`, quoted or unquoted
//! values), as the inside of an attribute value (a quote that closes it, then a new
//! attribute), as a URL attribute (a script scheme, with the tabs and newlines browsers
//! drop), and as the inside of a JavaScript string (a quote that closes it, then an
//! operator and a call). Each finding names the rule and carries a weight that the
//! filter adds to its anomaly score.
//!
//! The input is one decoded form of the value (lower case, see `decoded_forms`); this
//! module does no decoding of its own except inside attribute values (character
//! references and the whitespace browsers ignore in a scheme).

/// One finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XssFinding {
    pub rule: &'static str,
    pub weight: u32,
    /// The lowest paranoia level that counts it.
    pub paranoia: u8,
}

const fn finding(rule: &'static str, weight: u32, paranoia: u8) -> XssFinding {
    XssFinding {
        rule,
        weight,
        paranoia,
    }
}

/// The most tags examined in one value.
const MAX_TAGS: usize = 64;

/// Tags that run or load active content by themselves.
fn dangerous_tag(name: &str) -> bool {
    let name = name.rsplit(':').next().unwrap_or(name);
    matches!(
        name,
        "script"
            | "iframe"
            | "frame"
            | "frameset"
            | "object"
            | "embed"
            | "applet"
            | "base"
            | "meta"
            | "link"
            | "svg"
            | "math"
            | "isindex"
            | "xml"
            | "import"
            | "style"
            | "template"
            | "portal"
            | "xss"
            | "vmlframe"
            | "bgsound"
            | "layer"
            | "ilayer"
            | "animate"
            | "set"
            | "handler"
            | "listener"
    )
}

/// Tags an attacker uses as a carrier for an event handler or a source.
fn html_tag(name: &str) -> bool {
    dangerous_tag(name)
        || matches!(
            name,
            "a" | "img"
                | "image"
                | "body"
                | "input"
                | "button"
                | "form"
                | "textarea"
                | "select"
                | "video"
                | "audio"
                | "source"
                | "details"
                | "marquee"
                | "div"
                | "span"
                | "p"
                | "table"
                | "td"
                | "tr"
                | "th"
                | "keygen"
                | "option"
                | "html"
                | "head"
                | "title"
                | "br"
                | "b"
                | "i"
                | "u"
                | "h1"
                | "label"
                | "area"
                | "map"
                | "picture"
                | "track"
                | "canvas"
                | "noscript"
                | "isindex"
                | "output"
                | "dialog"
                | "menu"
                | "blink"
                | "font"
                | "center"
                | "plaintext"
                | "xmp"
                | "comment"
                | "noembed"
                | "noframes"
        )
}

/// Attributes whose value is a URL the browser may navigate to or load.
fn url_attribute(name: &str) -> bool {
    matches!(
        name,
        "href"
            | "src"
            | "action"
            | "formaction"
            | "data"
            | "xlink:href"
            | "background"
            | "lowsrc"
            | "dynsrc"
            | "poster"
            | "codebase"
            | "code"
            | "content"
            | "values"
            | "to"
            | "from"
            | "by"
            | "srcset"
            | "ping"
            | "cite"
            | "longdesc"
            | "usemap"
            | "manifest"
            | "icon"
            | "archive"
            | "classid"
            | "folder"
            | "xml:base"
            | "xmlns"
            | "datasrc"
    )
}

/// Whether an attribute value, as the browser reads a URL, starts with a script scheme.
#[must_use]
pub fn script_url(value: &str) -> bool {
    // Browsers drop tabs and newlines anywhere in a URL and leading control characters
    // and spaces; entities in attribute values are already decoded by the caller's forms.
    // Every scheme ends in `:` and no character lower-cases to one.
    if !value.contains(':') {
        return false;
    }
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(40)
        .collect::<String>()
        .to_lowercase();
    let compact = compact.trim_start_matches(['"', '\'', '`']);
    compact.starts_with("javascript:")
        || compact.starts_with("vbscript:")
        || compact.starts_with("livescript:")
        || compact.starts_with("mocha:")
        || compact.starts_with("data:text/html")
        || compact.starts_with("data:image/svg")
        || compact.starts_with("data:application/x")
        || compact.starts_with("data:text/xml")
        || compact.starts_with("data:text/javascript")
        || compact.starts_with("data:application/javascript")
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// The findings in one decoded, lower-cased form of a value, strongest first.
#[must_use]
pub fn scan(value: &str) -> Vec<XssFinding> {
    let b = value.as_bytes();
    let mut out: Vec<XssFinding> = Vec::new();
    let mut push = |f: XssFinding| {
        if !out.iter().any(|o| o.rule == f.rule) {
            out.push(f);
        }
    };
    // Which of the characters the steps below need are there, in one pass: a step whose
    // character is absent can find nothing.
    let has = present(b);
    // The whole value as a URL (an href or src the application fills).
    if has & COLON != 0 && script_url(value) {
        push(finding("xss-script-url", 5, 1));
    }
    // The value as the rest of a tag: `onload=...` right at its start.
    let head = value.trim_start_matches(|c: char| c.is_whitespace() || "\"'`/".contains(c));
    if has & EQUALS != 0
        && let Some(eq) = head.find('=')
        && event_handler_name(head[..eq].trim_end())
    {
        push(finding("xss-handler-fragment", 3, 1));
    }
    // UTF-7 markup (`+ADw-script+AD4-`): `<` is `+ADw-`, read after a charset switch.
    if has & DASH != 0
        && let Some(p) = value.find("adw-")
        && value[p + 4..]
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .is_some_and(html_tag)
    {
        push(finding("xss-utf7-markup", 5, 1));
    }
    let mut i = if has & LESS != 0 { 0 } else { b.len() };
    let mut tags = 0usize;
    while let Some(p) = memchr_lt(b, i) {
        i = p + 1;
        if tags >= MAX_TAGS {
            break;
        }
        let rest = &b[i..];
        if rest.starts_with(b"!--") || rest.starts_with(b"![cdata[") {
            push(finding("xss-markup-comment", 2, 2));
            continue;
        }
        if rest.starts_with(b"!entity") {
            push(finding("xss-markup-declaration", 5, 1));
            continue;
        }
        if rest.starts_with(b"?import") {
            push(finding("xss-processing-instruction", 5, 1));
            continue;
        }
        if rest.starts_with(b"?xml") || rest.starts_with(b"%") {
            push(finding("xss-processing-instruction", 4, 1));
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let start = i + usize::from(closing);
        if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b':' | b'-' | b'_')) {
            j += 1;
        }
        let name = &value[start..j];
        // A tag name ends at whitespace, `/`, `>` or the end of the value.
        if j < b.len() && !(is_space(b[j]) || b[j] == b'/' || b[j] == b'>') {
            continue;
        }
        tags += 1;
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == "script" && !closing {
            push(finding("xss-script-tag", 5, 1));
        }
        if closing {
            if local == "script" || local == "title" || local == "textarea" || local == "style" {
                push(finding("xss-context-close-tag", 3, 1));
            }
            continue;
        }
        if dangerous_tag(local) {
            push(finding("xss-dangerous-tag", 3, 1));
        } else if html_tag(local) {
            push(finding("xss-html-tag", 2, 2));
        }
        // Attributes, up to `>`.
        let mut k = j;
        let mut attrs = 0;
        while k < b.len() && b[k] != b'>' && attrs < 64 {
            if is_space(b[k]) || b[k] == b'/' {
                k += 1;
                continue;
            }
            let a0 = k;
            while k < b.len() && !is_space(b[k]) && !matches!(b[k], b'/' | b'>' | b'=') {
                k += 1;
            }
            let aname = &value[a0..k];
            attrs += 1;
            while k < b.len() && is_space(b[k]) {
                k += 1;
            }
            let mut aval = "";
            let has_value = b.get(k) == Some(&b'=');
            if has_value {
                k += 1;
                while k < b.len() && is_space(b[k]) {
                    k += 1;
                }
                match b.get(k) {
                    Some(&q @ (b'"' | b'\'' | b'`')) => {
                        let v0 = k + 1;
                        let end = b[v0..]
                            .iter()
                            .position(|&c| c == q)
                            .map_or(b.len(), |p| v0 + p);
                        aval = &value[v0..end];
                        k = (end + 1).min(b.len());
                    }
                    _ => {
                        let v0 = k;
                        while k < b.len() && !is_space(b[k]) && b[k] != b'>' {
                            k += 1;
                        }
                        aval = &value[v0..k];
                    }
                }
            }
            judge_attribute(local, aname, has_value, aval, &mut push);
        }
    }
    // Outside tags: breaking out of an attribute value or a script string, which both
    // start at a quote.
    if has & QUOTE != 0 {
        attribute_breakout(value, &mut push);
        script_breakout(value, &mut push);
    }
    // Every pattern of obfuscated script has a `.`, `[`, `(` or a backquote; removing
    // comments and whitespace adds no character.
    if has & SCRIPT_PUNCT != 0 {
        obfuscated_script(value, &mut push);
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.weight));
    out
}

/// `/* ... */` comments removed (JavaScript and CSS read them as nothing).
fn strip_js_comments(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains("/*") {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find("*/") {
            Some(j) => rest = &rest[i + 2 + j + 2..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

const COLON: u8 = 1;
const EQUALS: u8 = 2;
const DASH: u8 = 4;
const LESS: u8 = 8;
const QUOTE: u8 = 16;
const SCRIPT_PUNCT: u8 = 32;

/// The classes of the bytes above present in `b`.
fn present(b: &[u8]) -> u8 {
    const CLASS: [u8; 256] = {
        let mut t = [0u8; 256];
        t[b':' as usize] = COLON;
        t[b'=' as usize] = EQUALS;
        t[b'-' as usize] = DASH;
        t[b'<' as usize] = LESS;
        t[b'"' as usize] = QUOTE;
        t[b'\'' as usize] = QUOTE;
        t[b'`' as usize] = QUOTE | SCRIPT_PUNCT;
        t[b'.' as usize] = SCRIPT_PUNCT;
        t[b'[' as usize] = SCRIPT_PUNCT;
        t[b'(' as usize] = SCRIPT_PUNCT;
        t
    };
    b.iter().fold(0, |m, &c| m | CLASS[usize::from(c)])
}

fn memchr_lt(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == b'<')
        .map(|p| from + p)
}

fn event_handler_name(aname: &str) -> bool {
    let name = aname.trim_start_matches(['"', '\'', '`']);
    name.len() > 4 && name.starts_with("on") && name[2..].bytes().all(|c| c.is_ascii_alphabetic())
}

fn judge_attribute(
    tag: &str,
    aname: &str,
    has_value: bool,
    aval: &str,
    push: &mut impl FnMut(XssFinding),
) {
    if event_handler_name(aname) && has_value {
        push(finding("xss-event-handler", 5, 1));
        return;
    }
    if !has_value {
        return;
    }
    if url_attribute(aname) && script_url(aval) {
        push(finding("xss-script-url", 5, 1));
    }
    match aname {
        "srcdoc" if aval.contains('<') => push(finding("xss-srcdoc", 5, 1)),
        "style" if css_script(aval) => push(finding("xss-style-script", 5, 1)),
        "http-equiv" if aval.trim_matches(['"', '\'']).starts_with("refresh") => {
            push(finding("xss-meta-refresh", 4, 1));
        }
        // A charset change (UTF-7) makes later bytes markup.
        "charset" if tag == "meta" => push(finding("xss-meta-charset", 4, 1)),
        "xmlns" | "xmlns:xlink" | "xlink:href" | "xmlns:html" | "xml:base" => {
            push(finding("xss-xml-namespace", 4, 1));
        }
        "formaction" | "action" if tag == "button" || tag == "input" || tag == "form" => {
            push(finding("xss-form-action", 3, 1));
        }
        "src" | "data" | "href" | "code" | "codebase" if dangerous_tag(tag) => {
            push(finding("xss-dangerous-source", 3, 1));
        }
        "attributename" if aval.trim_matches(['"', '\'']).starts_with("on") => {
            push(finding("xss-animated-handler", 5, 1));
        }
        _ => {}
    }
}

fn css_script(v: &str) -> bool {
    let compact: String = v
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\\')
        .take(512)
        .collect();
    compact.contains("expression(")
        || compact.contains("javascript:")
        || compact.contains("vbscript:")
        || compact.contains("-moz-binding")
        || compact.contains("behavior:")
        || compact.contains("@import")
}

/// `" onmouseover="alert(1)`, `' autofocus onfocus=...`: a quote that closes an attribute
/// value, then an event handler attribute.
fn attribute_breakout(value: &str, push: &mut impl FnMut(XssFinding)) {
    let b = value.as_bytes();
    for (q, _) in value.match_indices(['"', '\'', '`']).take(32) {
        let mut k = q + 1;
        while k < b.len() && (is_space(b[k]) || b[k] == b'/') {
            k += 1;
        }
        // `"onclick=` without a space is still a new attribute to the HTML parser.
        // Other attributes may come first: `" autofocus onfocus=`.
        let mut names = 0;
        while k < b.len() && names < 4 {
            let a0 = k;
            while k < b.len() && (b[k].is_ascii_alphabetic() || b[k] == b'-' || b[k] == b':') {
                k += 1;
            }
            let name = &value[a0..k];
            let mut e = k;
            while e < b.len() && is_space(b[e]) {
                e += 1;
            }
            if name.is_empty() {
                break;
            }
            if b.get(e) == Some(&b'=') {
                if event_handler_name(name) {
                    push(finding("xss-attribute-breakout", 5, 1));
                    return;
                }
                if name == "style" && css_script(&value[e + 1..]) {
                    push(finding("xss-style-script", 5, 1));
                    return;
                }
                if url_attribute(name) && script_url(&value[e + 1..]) {
                    push(finding("xss-script-url", 5, 1));
                    return;
                }
                break;
            }
            while k < b.len() && (is_space(b[k]) || b[k] == b'/') {
                k += 1;
            }
            names += 1;
        }
    }
}

/// Calls and property accesses that only script makes.
fn js_sink_at(s: &str) -> bool {
    const SINKS: [&str; 22] = [
        "alert",
        "prompt",
        "confirm",
        "eval",
        "settimeout",
        "setinterval",
        "function(",
        "fetch(",
        "import(",
        "atob(",
        "document.",
        "window.",
        "location",
        "top[",
        "self[",
        "parent[",
        "window[",
        "this[",
        "globalthis",
        "constructor",
        "new function",
        "xmlhttprequest",
    ];
    let s = s.trim_start();
    SINKS.iter().any(|k| {
        s.starts_with(k)
            && (k.ends_with(['(', '[', '.'])
                || k.len() > 8
                || s[k.len()..]
                    .trim_start()
                    .starts_with(['(', '`', '.', '[', '=']))
    })
}

/// `';alert(1)//`, `"-alert(1)-"`, `</script><script>`-less breakouts: a quote closing a
/// JavaScript string, an operator, then a script sink.
fn script_breakout(value: &str, push: &mut impl FnMut(XssFinding)) {
    for (q, _) in value.match_indices(['"', '\'', '`']).take(32) {
        let rest = value[q + 1..].trim_start();
        let Some(op) = rest.chars().next() else {
            continue;
        };
        if !matches!(
            op,
            ';' | '+'
                | '-'
                | '*'
                | '/'
                | ','
                | ')'
                | '}'
                | '|'
                | '&'
                | '^'
                | '%'
                | '?'
                | ':'
                | '<'
                | '>'
                | '='
                | '('
        ) {
            continue;
        }
        let after = rest[op.len_utf8()..].trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, ';' | ')' | '}' | '|' | '&' | '+' | '-' | '(' | '=')
        });
        if js_sink_at(after) {
            push(finding("xss-script-string-breakout", 5, 1));
            return;
        }
    }
}

/// Script written to dodge keyword filters: bracket access to a global (`self["al"+"ert"]`),
/// six-character script (`[][(![]+[])[+[]]...]`), template-literal calls (``alert`1` ``), and sinks
/// reached through `constructor`.
fn obfuscated_script(value: &str, push: &mut impl FnMut(XssFinding)) {
    let compact: String = strip_js_comments(value)
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(4096)
        .collect();
    for dom in [
        "document.cookie",
        "document.domain",
        "document.write",
        "document.location",
        "window.location",
        "location.href",
        "document)[",
        "document[\"cookie",
        "document['cookie",
        ".innerhtml=",
        ".outerhtml=",
        "localstorage.",
        "sessionstorage.",
        "document.body.append",
        "createelement(",
    ] {
        if compact.contains(dom) {
            push(finding("xss-dom-access", 5, 1));
            break;
        }
    }
    for g in [
        "self[",
        "top[",
        "window[",
        "parent[",
        "frames[",
        "globalthis[",
        "this[",
        "content[",
        "document[",
    ] {
        if let Some(p) = compact.find(g)
            && compact[..p]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '.')
        {
            let inner = &compact[p + g.len()..];
            if inner.starts_with(['"', '\'', '`', '/', '(']) || inner.contains("](") {
                push(finding("xss-global-bracket-access", 5, 1));
                break;
            }
        }
    }
    // JSFuck: a long run of only these six characters.
    let mut run = 0;
    let mut longest = 0;
    for c in compact.chars() {
        if matches!(c, '[' | ']' | '(' | ')' | '!' | '+') {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    if longest >= 10 && compact.contains("[]") && compact.contains("![]") {
        push(finding("xss-jsfuck", 5, 1));
    }
    for sink in ["alert`", "prompt`", "confirm`", "eval`", "settimeout`"] {
        if compact.contains(sink) {
            push(finding("xss-template-call", 5, 1));
            break;
        }
    }
    if compact.contains(".constructor(") || compact.contains("constructor.constructor") {
        push(finding("xss-constructor-call", 4, 1));
    }
    // A JavaScript URL-like sink call: `alert(...)` alone is common in attacks but also in
    // prose; count it at paranoia 2.
    for sink in [
        "alert(",
        "prompt(",
        "confirm(",
        "eval(",
        "settimeout(",
        "setinterval(",
    ] {
        if let Some(p) = compact.find(sink)
            && compact[..p]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        {
            push(finding("xss-sink-call", 3, 2));
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: &str) -> Vec<&'static str> {
        scan(&v.to_lowercase()).iter().map(|f| f.rule).collect()
    }

    #[test]
    fn tags_attributes_and_contexts() {
        assert!(rules("<script>alert(1)</script>").contains(&"xss-script-tag"));
        assert!(rules("<img src=x onerror=alert(1)>").contains(&"xss-event-handler"));
        assert!(rules("<svg/onload=alert(1)>").contains(&"xss-event-handler"));
        assert!(rules("<a href=\"java\tscript:alert(1)\">x</a>").contains(&"xss-script-url"));
        assert!(rules("javascript:alert(1)").contains(&"xss-script-url"));
        assert!(rules("\" onmouseover=\"alert(1)").contains(&"xss-attribute-breakout"));
        assert!(rules("\" autofocus onfocus=alert(1) x=\"").contains(&"xss-attribute-breakout"));
        assert!(rules("';alert(1)//").contains(&"xss-script-string-breakout"));
        assert!(rules("\"-alert(1)-\"").contains(&"xss-script-string-breakout"));
        assert!(rules("self[\"al\"+\"ert\"](1)").contains(&"xss-global-bracket-access"));
        assert!(rules("<div style=\"width:expression(alert(1))\">").contains(&"xss-style-script"));
        assert!(rules("<iframe srcdoc=\"<script>x</script>\">").contains(&"xss-srcdoc"));
        assert!(rules("alert`1`").contains(&"xss-template-call"));
        assert!(rules("[][(![]+[])[+[]]+(![]+[])[!+[]+!+[]]]").contains(&"xss-jsfuck"));
    }

    #[test]
    fn text_is_not_script() {
        for v in [
            "a < b and c > d",
            "I <3 my bank",
            "O'Brien's \"quote\" - fine",
            "price: 3 < 4",
            "https://bank.example/a?b=1",
            "don't; do it",
            "x = y + z",
            "<<< back",
            "my email <kim@example.com>",
        ] {
            let r = scan(&v.to_lowercase());
            assert!(r.iter().all(|f| f.weight < 5), "{v}: {r:?}");
        }
    }

    #[test]
    fn scanning_survives_anything() {
        for v in [
            "<", "</", "<a", "<a b", "<a b=", "<a b='", "\"", "' ", "<!--", "<!", "<?",
        ] {
            let _ = scan(v);
        }
    }
}
