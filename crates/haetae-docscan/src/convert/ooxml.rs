//! OOXML and HWPX packages rebuilt without macros, embedded objects, `ActiveX`, external
//! relationships and DDE fields.

use std::collections::HashSet;

use super::zip_write::{self, NewEntry};
use super::{ConvertError, Disarmed, Failure, Removed};
use crate::container::zip::ZipArchive;
use crate::context::ScanContext;
use crate::filetype::FileType;

/// Relationship types (the last path segment of `Type`) that bring active or foreign content.
const DANGEROUS_REL_TYPES: [&str; 10] = [
    "vbaproject",
    "oleobject",
    "package",
    "control",
    "activexcontrol",
    "activexcontrolbinary",
    "attachedtemplate",
    "extensibility",
    "ddelink",
    "subdocument",
];

/// Macro-enabled content types and their macro-free equivalents.
const MACRO_TYPES: [(&str, &str); 6] = [
    (
        "application/vnd.ms-word.document.macroEnabled.main+xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    (
        "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    ),
    (
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ),
    (
        "application/vnd.ms-excel.template.macroEnabled.main+xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
    ),
    (
        "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
    (
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml",
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
    ),
];

/// Why a part is dropped, or `None` to keep it.
fn dropped_part(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.ends_with("vbaproject.bin") || n.ends_with("vbadata.xml") {
        Some("macro project")
    } else if n.contains("/embeddings/") || n.starts_with("embeddings/") {
        Some("embedded object")
    } else if n.contains("/activex/") {
        Some("ActiveX control")
    } else if n.starts_with("customui/") || n.ends_with("attachedtoolbars.bin") {
        Some("ribbon or toolbar customisation")
    } else if n.starts_with("scripts/") {
        Some("script")
    } else {
        None
    }
}

/// The part a `.rels` file describes: `word/_rels/document.xml.rels` -> `word/document.xml`.
fn rels_source(rels: &str) -> Option<String> {
    let (dir, file) = rels.rsplit_once("_rels/")?;
    Some(format!("{dir}{}", file.strip_suffix(".rels")?))
}

/// Resolves a relationship target against the folder of its source part.
fn resolve(source_dir: &str, target: &str) -> String {
    let joined = if let Some(abs) = target.strip_prefix('/') {
        abs.to_owned()
    } else {
        format!("{source_dir}{target}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The value of `name="..."` (or single quotes) in one tag.
pub(super) fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().last();
        let after = &rest[i + name.len()..];
        let after = after.trim_start();
        if before.is_some_and(char::is_whitespace)
            && let Some(v) = after.strip_prefix('=')
        {
            let v = v.trim_start();
            let q = v.chars().next()?;
            if q == '"' || q == '\'' {
                let body = &v[1..];
                return body.find(q).map(|end| &body[..end]);
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

/// The elements `<NAME .../>` or `<NAME ...>...</NAME>` of `xml`, as byte ranges with their
/// start tag.
pub(super) fn elements<'x>(xml: &'x str, name: &str) -> Vec<(usize, usize, &'x str)> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let start = from + i;
        let after_name = xml[start + open.len()..].chars().next();
        if !after_name.is_some_and(|c| c.is_whitespace() || c == '/' || c == '>') {
            from = start + open.len();
            continue;
        }
        let Some(gt) = xml[start..].find('>') else {
            break;
        };
        let tag_end = start + gt + 1;
        let tag = &xml[start..tag_end];
        let end = if tag.ends_with("/>") {
            tag_end
        } else if let Some(c) = xml[tag_end..].find(&close) {
            tag_end + c + close.len()
        } else {
            tag_end
        };
        out.push((start, end, tag));
        from = end;
    }
    out
}

/// `xml` with each byte range replaced by its text, in document order; a range that
/// overlaps an earlier one is skipped.
pub(super) fn splice(xml: &str, mut edits: Vec<(usize, usize, &str)>) -> String {
    edits.sort_unstable_by_key(|&(s, _, _)| s);
    let mut out = String::with_capacity(xml.len());
    let mut at = 0;
    for (s, e, with) in edits {
        if s < at {
            continue;
        }
        out.push_str(xml.get(at..s).unwrap_or_default());
        out.push_str(with);
        at = e;
    }
    out.push_str(xml.get(at..).unwrap_or_default());
    out
}

/// Where a neutralised external relationship points: nowhere a reader fetches from.
const NEUTRAL_TARGET: &str = "about:blank";

/// Whether an external target is a plain web or mail link a person follows by clicking.
fn plain_link(target: &str) -> bool {
    let t = target.trim().to_ascii_lowercase();
    t.starts_with("http://") || t.starts_with("https://") || t.starts_with("mailto:")
}

/// Rewrites one `.rels` part; returns the new text. Relationships to active content or to
/// removed parts go; external ones stay (the document refers to them by id) but point at
/// [`NEUTRAL_TARGET`], except hyperlinks to web or mail addresses.
fn rewrite_rels(
    name: &str,
    xml: &str,
    dropped: &HashSet<String>,
    removed: &mut Vec<Removed>,
) -> String {
    let source_dir = rels_source(name)
        .and_then(|s| s.rsplit_once('/').map(|(d, _)| format!("{d}/")))
        .unwrap_or_default();
    let mut cut = Vec::new();
    let mut retarget = Vec::new();
    for (s, e, tag) in elements(xml, "Relationship") {
        let id = attr(tag, "Id").unwrap_or("?");
        let target = attr(tag, "Target").unwrap_or("");
        let kind = attr(tag, "Type")
            .and_then(|t| t.rsplit('/').next())
            .unwrap_or("")
            .to_ascii_lowercase();
        let external = attr(tag, "TargetMode").is_some_and(|m| m.eq_ignore_ascii_case("external"));
        if external && !(kind == "hyperlink" && plain_link(target)) {
            if let Some(i) = xml
                .get(s..e)
                .and_then(|el| el.find(target))
                .filter(|_| !target.is_empty())
            {
                retarget.push((s + i, s + i + target.len()));
                removed.push(Removed {
                    what: "external relationship (target neutralised)".to_owned(),
                    location: format!(
                        "{name} {id} -> {}",
                        target.chars().take(200).collect::<String>()
                    ),
                });
            }
            continue;
        }
        let why = if external {
            None
        } else if DANGEROUS_REL_TYPES.contains(&kind.as_str()) {
            Some("relationship to active content")
        } else if dropped.contains(&resolve(&source_dir, target)) {
            Some("relationship to a removed part")
        } else {
            None
        };
        if let Some(why) = why {
            removed.push(Removed {
                what: why.to_owned(),
                location: format!(
                    "{name} {id} -> {}",
                    target.chars().take(200).collect::<String>()
                ),
            });
            cut.push((s, e));
        }
    }
    // Cut whole elements and rewrite targets in one pass, in document order.
    let mut edits: Vec<(usize, usize, &str)> = cut.iter().map(|&(s, e)| (s, e, "")).collect();
    edits.extend(retarget.iter().map(|&(s, e)| (s, e, NEUTRAL_TARGET)));
    splice(xml, edits)
}

/// Blanks the program and arguments of DDE links in a `SpreadsheetML` external-link part
/// (`<ddeLink ddeService="cmd" ddeTopic="/c calc">`).
fn blank_dde_links(name: &str, xml: &str, removed: &mut Vec<Removed>) -> String {
    let mut edits = Vec::new();
    for (s, _, tag) in elements(xml, "ddeLink") {
        for a in ["ddeService", "ddeTopic"] {
            if let Some(v) = attr(tag, a).filter(|v| !v.is_empty())
                && let Some(i) = tag
                    .find(&format!("{a}="))
                    .and_then(|j| tag.get(j..)?.find(v).map(|k| j + k))
            {
                edits.push((s + i, s + i + v.len()));
            }
        }
        removed.push(Removed {
            what: "DDE link".into(),
            location: name.to_owned(),
        });
    }
    splice(xml, edits.into_iter().map(|(s, e)| (s, e, "")).collect())
}

/// Rewrites `[Content_Types].xml`.
fn rewrite_content_types(
    xml: &str,
    dropped: &HashSet<String>,
    removed: &mut Vec<Removed>,
) -> String {
    let mut cut = Vec::new();
    for (s, e, tag) in elements(xml, "Override") {
        let part = attr(tag, "PartName").unwrap_or("").trim_start_matches('/');
        if dropped.contains(part) {
            cut.push((s, e));
        }
    }
    for (s, e, tag) in elements(xml, "Default") {
        if attr(tag, "ContentType")
            .is_some_and(|t| t.contains("vbaProject") || t.contains("oleObject"))
        {
            cut.push((s, e));
        }
    }
    let mut out = splice(xml, cut.into_iter().map(|(s, e)| (s, e, "")).collect());
    for (macro_type, plain) in MACRO_TYPES {
        if out.contains(macro_type) {
            out = out.replace(macro_type, plain);
            removed.push(Removed {
                what: "macro-enabled content type".into(),
                location: format!("[Content_Types].xml {macro_type}"),
            });
        }
    }
    out
}

/// Blanks DDE field instructions (`DDE`, `DDEAUTO`) in a `WordprocessingML` part.
fn blank_dde(name: &str, xml: &str, removed: &mut Vec<Removed>) -> String {
    let is_dde = |text: &str| {
        let t = text.trim_start().to_ascii_uppercase();
        t.starts_with("DDE ") || t.starts_with("DDEAUTO")
    };
    let mut out = xml.to_owned();
    // <w:instrText ...>DDEAUTO c:\\...</w:instrText>
    let mut edits: Vec<(usize, usize)> = Vec::new();
    for (_, e, tag) in elements(xml, "w:instrText") {
        let content_start = xml[..e].rfind(tag).map_or(e, |i| i + tag.len());
        let content_end = e.saturating_sub("</w:instrText>".len()).max(content_start);
        if is_dde(&xml[content_start..content_end]) {
            edits.push((content_start, content_end));
        }
    }
    for (s, e, tag) in elements(xml, "w:fldSimple") {
        if let Some(instr) = attr(tag, "w:instr")
            && is_dde(instr)
            && let Some(i) = xml[s..e].find(instr)
        {
            edits.push((s + i, s + i + instr.len()));
        }
    }
    edits.sort_unstable();
    for (i, &(s, e)) in edits.iter().enumerate().rev() {
        out.replace_range(s..e, "");
        removed.push(Removed {
            what: "DDE field".into(),
            location: format!("{name} field {}", i + 1),
        });
    }
    out
}

/// Rebuilds the package.
pub(super) fn rebuild(
    data: &[u8],
    archive: &ZipArchive,
    file_type: FileType,
    ctx: &mut ScanContext,
) -> Result<Disarmed, ConvertError> {
    let mut failures = Vec::new();
    let mut removed = Vec::new();
    let mut dropped: HashSet<String> = HashSet::new();
    for e in archive.entries.iter().filter(|e| !e.is_dir()) {
        if let Some(why) = dropped_part(&e.name) {
            dropped.insert(e.name.clone());
            removed.push(Removed {
                what: why.into(),
                location: e.name.clone(),
            });
        }
    }
    // The relationships of a dropped part go with it.
    for e in &archive.entries {
        if let Some(src) = rels_source(&e.name)
            && dropped.contains(&src)
        {
            dropped.insert(e.name.clone());
        }
    }
    let mut parts: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for e in archive.entries.iter().filter(|e| !e.is_dir()) {
        if dropped.contains(&e.name) {
            continue;
        }
        let Some(content) = super::zip_entry(data, e, ctx, &mut failures) else {
            continue;
        };
        let lower = e.name.to_ascii_lowercase();
        let is_xml = lower.ends_with(".xml") || lower.ends_with(".rels") || lower.ends_with(".hpf");
        let bytes = if is_xml {
            let text = match xml_part(&e.name, &content) {
                Ok(text) => text,
                Err(f) => {
                    failures.push(f);
                    continue;
                }
            };
            let rewritten = if lower.ends_with(".rels") {
                rewrite_rels(&e.name, text, &dropped, &mut removed)
            } else if lower == "[content_types].xml" {
                rewrite_content_types(text, &dropped, &mut removed)
            } else if text.contains("w:instrText") || text.contains("w:fldSimple") {
                blank_dde(&e.name, text, &mut removed)
            } else if text.contains("<ddeLink") {
                blank_dde_links(&e.name, text, &mut removed)
            } else {
                text.to_owned()
            };
            rewritten.into_bytes()
        } else {
            content.into_owned()
        };
        parts.push((e.name.clone(), bytes, e.name == "mimetype"));
    }
    if !failures.is_empty() {
        return Err(ConvertError::Failed(failures));
    }
    // HWPX/ODF: `mimetype` first and stored.
    parts.sort_by_key(|(name, _, _)| name != "mimetype");
    let entries: Vec<NewEntry<'_>> = parts
        .iter()
        .map(|(name, data, stored)| NewEntry {
            name,
            data,
            stored: *stored,
        })
        .collect();
    let bytes = zip_write::write(&entries).map_err(|message| {
        ConvertError::Failed(vec![Failure {
            code: "CONVERT-ZIP-WRITE".into(),
            location: "package".into(),
            message,
        }])
    })?;
    Ok(Disarmed {
        bytes,
        file_type,
        removed,
    })
}

/// An XML part's text, or why it cannot be rebuilt: not UTF-8, or it declares a DTD or
/// entities (entity expansion).
pub(super) fn xml_part<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, Failure> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(Failure {
            code: "CONVERT-XML-ENCODING".into(),
            location: name.to_owned(),
            message: "an XML part that is not UTF-8".into(),
        });
    };
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(Failure {
            code: "CONVERT-XML-DTD".into(),
            location: name.to_owned(),
            message: "the part declares a DTD or entities (entity expansion); it cannot be rebuilt safely".into(),
        });
    }
    Ok(text)
}
