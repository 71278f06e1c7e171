//! RTF rebuilt without embedded objects: `{\object ...}` groups (OLE objects with their
//! `\objdata`, e.g. the Equation Editor of CVE-2017-11882, `OLE2Link` of CVE-2017-0199) and
//! `{\*\objdata ...}` / `{\*\objclass ...}` destinations outside them.

use super::{ConvertError, Disarmed, Removed};
use crate::filetype::FileType;

/// Deepest group nesting followed.
const MAX_DEPTH: usize = 2_000;

/// Groups removed whole, by their first control word.
const OBJECT_WORDS: [&str; 4] = ["object", "objdata", "objclass", "objemb"];

/// The control word at `i` (just after a backslash): its letters, and the index after the
/// word and its numeric parameter (and one delimiting space).
fn control_word(data: &[u8], i: usize) -> (&[u8], Option<i64>, usize) {
    let at = |k: usize| data.get(k).copied();
    let mut j = i;
    while at(j).is_some_and(|b| b.is_ascii_alphabetic()) && j - i < 32 {
        j += 1;
    }
    let word = data.get(i..j).unwrap_or_default();
    let num_start = j;
    if at(j) == Some(b'-') {
        j += 1;
    }
    while at(j).is_some_and(|b| b.is_ascii_digit()) && j - num_start < 12 {
        j += 1;
    }
    let param = data
        .get(num_start..j)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|s| s.parse().ok());
    if at(j) == Some(b' ') {
        j += 1;
    }
    (word, param, j)
}

/// The first control word of the group opening at `open` (skipping `\*`).
fn group_word(data: &[u8], open: usize) -> Option<&[u8]> {
    let mut i = open + 1;
    while matches!(data.get(i), Some(b'\r' | b'\n')) {
        i += 1;
    }
    if data.get(i) == Some(&b'\\') && data.get(i + 1) == Some(&b'*') {
        i += 2;
        while matches!(data.get(i), Some(b' ' | b'\r' | b'\n')) {
            i += 1;
        }
    }
    if data.get(i) != Some(&b'\\') {
        return None;
    }
    Some(control_word(data, i + 1).0)
}

/// Index just after the `}` closing the group opening at `open`, or why there is none.
fn group_end(data: &[u8], open: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = open;
    while let Some(&b) = data.get(i) {
        match b {
            b'\\' => {
                if matches!(data.get(i + 1), Some(b'\\' | b'{' | b'}')) {
                    i += 2;
                    continue;
                }
                let (word, param, next) = control_word(data, i + 1);
                i = next.max(i + 1);
                if word == b"bin" {
                    let n = usize::try_from(param.unwrap_or(0)).unwrap_or(usize::MAX);
                    if n > data.len() - i.min(data.len()) {
                        return Err(format!("\\bin{n} at byte {open} runs past the end"));
                    }
                    i += n;
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("groups nest deeper than {MAX_DEPTH}"));
                }
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(format!("the group opened at byte {open} is never closed"))
}

pub(super) fn rebuild(data: &[u8]) -> Result<Disarmed, ConvertError> {
    let fail = |location: String, message: String| {
        ConvertError::at("CONVERT-RTF-GROUP", location, message)
    };
    // The whole document must be one balanced group, as readers expect.
    group_end(data, data.iter().position(|&b| b == b'{').unwrap_or(0))
        .map_err(|m| fail("document".into(), m))?;
    let mut out = Vec::with_capacity(data.len());
    let mut removed = Vec::new();
    let mut i = 0;
    while let Some(&byte) = data.get(i) {
        match byte {
            b'\\' => {
                if matches!(data.get(i + 1), Some(b'\\' | b'{' | b'}')) {
                    out.extend_from_slice(data.get(i..i + 2).unwrap_or_default());
                    i += 2;
                    continue;
                }
                let (word, param, next) = control_word(data, i + 1);
                let next = next.max(i + 1).min(data.len());
                out.extend_from_slice(data.get(i..next).unwrap_or_default());
                i = next;
                if word == b"bin" {
                    let n = usize::try_from(param.unwrap_or(0))
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    out.extend_from_slice(data.get(i..i + n).unwrap_or_default());
                    i += n;
                }
            }
            b'{' => {
                if let Some(word) = group_word(data, i)
                    && OBJECT_WORDS.iter().any(|w| w.as_bytes() == word)
                {
                    let end = group_end(data, i).map_err(|m| fail(format!("byte {i}"), m))?;
                    removed.push(Removed {
                        what: format!("embedded object (\\{})", String::from_utf8_lossy(word)),
                        location: format!("bytes {i}..{end}"),
                    });
                    i = end;
                } else {
                    out.push(b'{');
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Rtf,
        removed,
    })
}
