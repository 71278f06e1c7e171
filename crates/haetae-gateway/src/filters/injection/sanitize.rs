//! The `sanitize` action's rewriting: HTML-encode the offending fields of a form or JSON
//! body and leave every other byte of the body as it was.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::request::percent_decode_form;

/// `&`, `<`, `>`, `"`, `'`, `` ` `` as character references: the value reads as text in
/// HTML element content and in quoted attribute values.
#[must_use]
pub fn html_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            c => out.push(c),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The form body with the values of the fields in `names` HTML-encoded; other pairs are
/// copied byte for byte.
#[must_use]
pub fn form_body(body: &[u8], names: &HashSet<&str>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(body.len() + 64);
    for (i, pair) in body.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(p) => (&pair[..p], Some(&pair[p + 1..])),
            None => (pair, None),
        };
        let name = percent_decode_form(raw_name);
        match raw_value {
            Some(v) if names.contains(name.as_str()) => {
                out.extend_from_slice(raw_name);
                out.push(b'=');
                let value = percent_decode_form(v);
                out.extend_from_slice(form_encode(&html_encode(&value)).as_bytes());
            }
            _ => out.extend_from_slice(pair),
        }
    }
    out
}

/// The JSON body with the strings at the flattened paths in `names` (`user.nick`,
/// `items[0].memo`, as `Params::from_json` names them) HTML-encoded; `None` when the body
/// is not JSON.
#[must_use]
pub fn json_body(body: &[u8], names: &HashSet<&str>) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    walk(&mut value, "", names, 0);
    serde_json::to_vec(&value).ok()
}

fn walk(value: &mut serde_json::Value, path: &str, names: &HashSet<&str>, depth: usize) {
    use serde_json::Value;
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, &p, names, depth + 1);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                walk(v, &format!("{path}[{i}]"), names, depth + 1);
            }
        }
        Value::String(s) if names.contains(path) => *s = html_encode(s),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_form_fields_change() {
        let names: HashSet<&str> = ["memo"].into_iter().collect();
        let out = form_body(b"to=110-234&memo=%3Cb%3Ehi%3C%2Fb%3E&x", &names);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "to=110-234&memo=%26lt%3Bb%26gt%3Bhi%26lt%3B%2Fb%26gt%3B&x"
        );
    }

    #[test]
    fn json_strings_at_the_paths_are_encoded() {
        let names: HashSet<&str> = ["user.nick", "tags[1]"].into_iter().collect();
        let out = json_body(
            br#"{"user":{"nick":"<svg onload=x>","age":3},"tags":["a","<i>"]}"#,
            &names,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["user"]["nick"], "&lt;svg onload=x&gt;");
        assert_eq!(v["user"]["age"], 3);
        assert_eq!(v["tags"][1], "&lt;i&gt;");
        assert_eq!(json_body(b"not json", &names), None);
    }
}
