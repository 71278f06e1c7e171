//! A small, bounded XML scanner for Office/HWPX parts: a well-formedness check (tags
//! balanced, comments/CDATA/PIs closed, quotes closed) and lookups of elements and
//! attributes. It does not expand entities, so it cannot be made to explode by them.

use crate::bytes::find;

/// Where and why a part is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset in the part.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> Result<(), XmlError> {
    Err(XmlError {
        offset,
        message: message.into(),
    })
}

/// Position of `byte` at or after `from`. Office XML is dense (a tag every few bytes): a
/// short scalar look first, the SIMD search only for longer runs.
#[inline]
fn next_byte(s: &[u8], byte: u8, from: usize) -> Option<usize> {
    let rest = s.get(from..)?;
    let near = rest.get(..rest.len().min(24)).unwrap_or(rest);
    if let Some(i) = near.iter().position(|&b| b == byte) {
        return Some(from + i);
    }
    if near.len() == rest.len() {
        return None;
    }
    memchr::memchr(byte, rest.get(near.len()..)?).map(|i| from + near.len() + i)
}

/// End of a tag starting at `from` (the index of its `>`), skipping quoted values (a value
/// may hold '>').
fn tag_end(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        // Attribute names and spaces are short: scan them directly.
        let b = *s.get(i)?;
        match b {
            b'>' => return Some(i),
            b'"' | b'\'' => i = next_byte(s, b, i + 1)? + 1,
            _ => i += 1,
        }
    }
}

fn name_end(s: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(&b) = s.get(i) {
        if b.is_ascii_whitespace() || b == b'/' || b == b'>' {
            break;
        }
        i += 1;
    }
    i
}

/// Checks that tags balance and every construct is closed.
pub fn check_well_formed(s: &[u8]) -> Result<(), XmlError> {
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut pos = 0usize;
    while let Some(lt) = next_byte(s, b'<', pos) {
        let rest = s.get(lt..).unwrap_or_default();
        if rest.starts_with(b"<?") {
            match find(s, b"?>", lt + 2) {
                Some(e) => pos = e + 2,
                None => return err(lt, "a processing instruction is not closed"),
            }
        } else if rest.starts_with(b"<!--") {
            match find(s, b"-->", lt + 4) {
                Some(e) => pos = e + 3,
                None => return err(lt, "a comment is not closed"),
            }
        } else if rest.starts_with(b"<![CDATA[") {
            match find(s, b"]]>", lt + 9) {
                Some(e) => pos = e + 3,
                None => return err(lt, "a CDATA section is not closed"),
            }
        } else if rest.starts_with(b"<!") {
            // DOCTYPE with an optional internal subset in brackets.
            let mut depth = 0i32;
            let mut i = lt + 2;
            loop {
                match s.get(i) {
                    None => return err(lt, "a declaration is not closed"),
                    Some(b'[') => depth += 1,
                    Some(b']') => depth -= 1,
                    Some(b'>') if depth <= 0 => break,
                    _ => {}
                }
                i += 1;
            }
            pos = i + 1;
        } else if rest.starts_with(b"</") {
            let Some(gt) = tag_end(s, lt + 2) else {
                return err(lt, "an end tag is not closed");
            };
            let name = s.get(lt + 2..gt).unwrap_or_default().trim_ascii();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => {
                    return err(
                        lt,
                        format!(
                            "end tag </{}> closes <{}>",
                            String::from_utf8_lossy(name),
                            String::from_utf8_lossy(open)
                        ),
                    );
                }
                None => {
                    return err(
                        lt,
                        format!(
                            "end tag </{}> without a start tag",
                            String::from_utf8_lossy(name)
                        ),
                    );
                }
            }
            pos = gt + 1;
        } else {
            let ne = name_end(s, lt + 1);
            let name = s.get(lt + 1..ne).unwrap_or_default();
            if name.is_empty() {
                return err(lt, "a '<' that starts no tag");
            }
            let Some(gt) = tag_end(s, ne) else {
                return err(
                    lt,
                    format!(
                        "start tag <{}> is not closed",
                        String::from_utf8_lossy(name)
                    ),
                );
            };
            if s.get(gt.wrapping_sub(1)) != Some(&b'/') {
                if stack.len() >= 10_000 {
                    return err(lt, "elements nest deeper than 10000");
                }
                stack.push(name);
            }
            pos = gt + 1;
        }
    }
    if let Some(open) = stack.last() {
        return err(
            s.len(),
            format!(
                "element <{}> is never closed",
                String::from_utf8_lossy(open)
            ),
        );
    }
    Ok(())
}

/// The start tags (`<name ...>`, without the brackets) of every element with this name.
#[must_use]
pub fn elements<'s>(s: &'s [u8], name: &[u8]) -> Vec<&'s [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut pat = b"<".to_vec();
    pat.extend_from_slice(name);
    while let Some(at) = find(s, &pat, pos) {
        let after = at + pat.len();
        pos = after;
        match s.get(after) {
            Some(b) if b.is_ascii_whitespace() || *b == b'/' || *b == b'>' => {}
            _ => continue,
        }
        let Some(gt) = tag_end(s, after) else { break };
        out.push(s.get(at + 1..gt).unwrap_or_default());
        pos = gt;
        if out.len() >= 100_000 {
            break;
        }
    }
    out
}

/// The value of attribute `name` in a start tag, with the five predefined entities decoded.
#[must_use]
pub fn attr(tag: &[u8], name: &[u8]) -> Option<String> {
    let mut pos = 0;
    while let Some(at) = find(tag, name, pos) {
        pos = at + 1;
        let before_ok = at == 0 || tag.get(at - 1).is_some_and(u8::is_ascii_whitespace);
        let mut i = at + name.len();
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if !before_ok || tag.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let q = *tag.get(i)?;
        if q != b'"' && q != b'\'' {
            return None;
        }
        let end = tag.get(i + 1..)?.iter().position(|&b| b == q)?;
        let raw = String::from_utf8_lossy(tag.get(i + 1..i + 1 + end)?).into_owned();
        return Some(
            raw.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
    }
    None
}

/// Every value of attribute `name` anywhere in the part.
#[must_use]
pub fn attr_values<'s>(s: &'s [u8], name: &[u8]) -> Vec<&'s [u8]> {
    let mut out = Vec::new();
    let mut pat = name.to_vec();
    pat.extend_from_slice(b"=\"");
    let mut pos = 0;
    while let Some(at) = find(s, &pat, pos) {
        let start = at + pat.len();
        let Some(len) = s
            .get(start..)
            .and_then(|t| t.iter().position(|&b| b == b'"'))
        else {
            break;
        };
        if at == 0 || s.get(at - 1).is_some_and(u8::is_ascii_whitespace) {
            out.push(s.get(start..start + len).unwrap_or_default());
        }
        pos = start + len;
    }
    out
}

/// The text content of every element with this name (up to its end tag).
#[must_use]
pub fn element_texts<'s>(s: &'s [u8], name: &[u8]) -> Vec<&'s [u8]> {
    let mut out = Vec::new();
    let mut open = b"<".to_vec();
    open.extend_from_slice(name);
    let mut close = b"</".to_vec();
    close.extend_from_slice(name);
    close.push(b'>');
    let mut pos = 0;
    while let Some(at) = find(s, &open, pos) {
        pos = at + open.len();
        match s.get(pos) {
            Some(b) if b.is_ascii_whitespace() || *b == b'>' => {}
            _ => continue,
        }
        let Some(gt) = tag_end(s, pos) else { break };
        let Some(end) = find(s, &close, gt) else {
            break;
        };
        out.push(s.get(gt + 1..end).unwrap_or_default());
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_parts_with_comments_cdata_and_quotes_are_well_formed() {
        let x = b"<?xml version=\"1.0\"?><!-- c --><a x=\"1>2\"><b/><![CDATA[<x>]]></a>";
        assert_eq!(check_well_formed(x), Ok(()));
    }

    #[test]
    fn a_crossed_end_tag_is_reported_at_its_offset() {
        let e = check_well_formed(b"<a><b></a></b>").unwrap_err();
        assert_eq!(e.offset, 6);
    }

    #[test]
    fn attributes_are_found_only_as_whole_names() {
        let tag = b"Relationship Id=\"r1\" TargetMode=\"External\" Target=\"a&amp;b\"";
        assert_eq!(attr(tag, b"Target").as_deref(), Some("a&b"));
        assert_eq!(attr(tag, b"Mode"), None);
    }
}
