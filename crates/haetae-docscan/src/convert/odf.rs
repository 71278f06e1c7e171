//! `OpenDocument` packages (ODT/ODS/ODP/ODG) rebuilt with only the parts the content needs:
//! no Basic macros, scripts, embedded (OLE) objects or their replacement images; script
//! blocks, event listeners and script links taken out of the XML; the manifest re-written.
//!
//! DDE and external links, ODF's forms of them: DDE connection declarations
//! (`text:dde-connection-decls`) and spreadsheet DDE links (`table:dde-links`, with their
//! `office:dde-source`) are removed; a DDE field (`text:dde-connection`) keeps its last
//! shown text without the field; a formula (`table:formula`) calling `DDE(` or
//! `WEBSERVICE(`, or naming another file (`'file:...'#`, `'http...'#`), is blanked (the
//! cell keeps its cached value); Java applets and plug-ins (`draw:applet`, `draw:plugin`)
//! are removed. An `xlink:href` that leaves the package — a URI scheme, an absolute path,
//! `../` — is blanked wherever a reader would fetch it by itself (a linked section or table,
//! a cell range from another file, an image, a floating frame, a sound, a background); on
//! a hyperlink a person clicks (`text:a`, `draw:a`) only `http:`/`https:`/`mailto:` stay.

use std::collections::HashSet;

use super::ooxml::{attr, elements, splice, xml_part};
use super::zip_write::{self, NewEntry};
use super::{ConvertError, Disarmed, Failure, Removed};
use crate::container::zip::{self, ZipArchive};
use crate::context::ScanContext;
use crate::filetype::FileType;

const MANIFEST: &str = "META-INF/manifest.xml";

/// The XML parts kept (when present).
const KEPT_XML: [&str; 5] = [
    "content.xml",
    "styles.xml",
    "meta.xml",
    "settings.xml",
    MANIFEST,
];

/// Link schemes that run code when followed.
const SCRIPT_SCHEMES: [&str; 3] = ["macro:", "vnd.sun.star.script:", "javascript:"];

const OFFICE_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
const SCRIPT_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:script:1.0";
const PRESENTATION_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0";
const DRAW_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const TEXT_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";
const TABLE_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:table:1.0";

/// Elements removed whole from the XML parts (namespace, usual prefix, local name), with
/// what they are.
const DROPPED_ELEMENTS: [(&str, &str, &str, &str); 8] = [
    (OFFICE_NS, "office", "scripts", "script block"),
    (OFFICE_NS, "office", "event-listeners", "event listeners"),
    (SCRIPT_NS, "script", "event-listener", "event listener"),
    (
        PRESENTATION_NS,
        "presentation",
        "event-listener",
        "event listener",
    ),
    (
        TEXT_NS,
        "text",
        "dde-connection-decls",
        "DDE connection declarations",
    ),
    (TABLE_NS, "table", "dde-links", "DDE links"),
    (DRAW_NS, "draw", "applet", "Java applet"),
    (DRAW_NS, "draw", "plugin", "plug-in"),
];

/// Formula functions and references that reach outside the document.
const EXTERNAL_FORMULA: [&str; 5] = ["dde(", "webservice(", "'file:", "'http:", "'https:"];

/// Whether an `xlink:href` value leaves the package: a URI scheme (`http:`, `file:`,
/// `smb:`, a drive letter...), an absolute or network path, or `../`.
fn leaves_package(value: &str) -> bool {
    let v = value.trim();
    let scheme = v.find(':').is_some_and(|i| {
        i > 0
            && v[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    scheme || v.starts_with('/') || v.starts_with('\\') || v.split(['/', '\\']).any(|c| c == "..")
}

/// The qualified names `local` has in `xml` for namespace `ns`: under its usual prefix and
/// under every prefix (or the default namespace) the part binds to `ns`, so that a renamed
/// prefix (`xmlns:x="http://www.w3.org/1999/xlink" x:href=...`) does not hide a name.
fn qualified(xml: &str, ns: &str, usual: &str, local: &str) -> Vec<String> {
    let mut out = vec![format!("{usual}:{local}")];
    let mut from = 0;
    while let Some(i) = xml[from..].find("xmlns") {
        let at = from + i + "xmlns".len();
        from = at;
        let rest = &xml[at..];
        let (prefix, rest) = match rest.strip_prefix(':') {
            Some(r) => {
                let end = r
                    .find(|c: char| c == '=' || c.is_whitespace())
                    .unwrap_or(r.len());
                (&r[..end], &r[end..])
            }
            None => ("", rest),
        };
        let Some(v) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let v = v.trim_start();
        let Some(q) = v.chars().next().filter(|&q| q == '"' || q == '\'') else {
            continue;
        };
        let Some(value) = v[1..].find(q).map(|end| &v[1..=end]) else {
            break;
        };
        if unescape(value).trim() == ns {
            let name = if prefix.is_empty() {
                local.to_owned()
            } else {
                format!("{prefix}:{local}")
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Why an entry other than the kept XML parts and used pictures is dropped.
fn dropped_why(name: &str) -> &'static str {
    if name.starts_with("Basic/") {
        "macro library"
    } else if name.starts_with("Scripts/") {
        "script"
    } else if name.starts_with("ObjectReplacements/") {
        "embedded object replacement image"
    } else if name.starts_with("Object ") && !name.contains('/') {
        "embedded OLE object"
    } else if name.starts_with("Object ") {
        "embedded object"
    } else if name.starts_with("Pictures/") {
        "picture the content does not use"
    } else {
        "part the content does not need"
    }
}

/// `value` with the XML character and predefined entity references decoded, for comparing
/// (a scheme written as `&#109;acro:` is still `macro:`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let reference = &after[..semi];
        let decoded = match reference {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            r => r
                .strip_prefix("#x")
                .or_else(|| r.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| r.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        if let Some(c) = decoded {
            out.push(c);
            rest = &after[semi + 1..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The package path an `xlink:href` names (`./Object 1` -> `Object 1`), if it is inside
/// the package.
fn package_path(href: &str) -> String {
    let mut p = href.trim();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p.trim_end_matches('/').to_owned()
}

/// Every `name` (`xlink:href`) attribute of `xml`: the value's byte range, its decoded value and the
/// name of the element that carries it.
fn hrefs<'x>(xml: &'x str, name: &str) -> Vec<(usize, usize, String, &'x str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = xml[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        if !xml[..at].chars().last().is_some_and(char::is_whitespace) {
            continue;
        }
        let after = xml[from..].trim_start();
        let Some(v) = after.strip_prefix('=') else {
            continue;
        };
        let v = v.trim_start();
        let Some(q) = v.chars().next().filter(|&q| q == '"' || q == '\'') else {
            continue;
        };
        let start = xml.len() - v.len() + 1;
        let Some(len) = xml[start..].find(q) else {
            break;
        };
        let element = xml[..at].rfind('<').map_or("", |lt| {
            let tag = &xml[lt + 1..at];
            tag.split(|c: char| c.is_whitespace()).next().unwrap_or("")
        });
        out.push((
            start,
            start + len,
            unescape(&xml[start..start + len]),
            element,
        ));
        from = start + len;
    }
    out
}

/// Takes the script blocks, event listeners, script links and links to embedded objects or
/// removed parts out of one XML part.
fn clean_xml(
    name: &str,
    xml: &str,
    dropped: &HashSet<String>,
    removed: &mut Vec<Removed>,
) -> String {
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    for (ns, usual, local, what) in DROPPED_ELEMENTS {
        for element in qualified(xml, ns, usual, local) {
            for (s, e, tag) in elements(xml, &element) {
                edits.push((s, e, ""));
                // An empty block (`<office:scripts/>`, as every office suite writes) held nothing.
                let inner = xml.get(s + tag.len()..e).unwrap_or_default();
                let inner = inner
                    .strip_suffix(&format!("</{element}>"))
                    .unwrap_or(inner);
                let block = matches!(what, "script block" | "event listeners");
                if block && (tag.ends_with("/>") || inner.trim().is_empty()) {
                    continue;
                }
                removed.push(Removed {
                    what: what.into(),
                    location: format!("{name} <{element}> at byte {s}"),
                });
            }
        }
    }
    // Inline OLE data (`<draw:object-ole><office:binary-data>`).
    let binary_data = qualified(xml, OFFICE_NS, "office", "binary-data");
    for ole in qualified(xml, DRAW_NS, "draw", "object-ole") {
        for (s, e, _) in elements(xml, &ole) {
            for data in &binary_data {
                for (bs, be, _) in elements(xml.get(s..e).unwrap_or_default(), data) {
                    edits.push((s + bs, s + be, ""));
                    removed.push(Removed {
                        what: "inline OLE object data".into(),
                        location: format!("{name} <{ole}> at byte {s}"),
                    });
                }
            }
        }
    }
    // DDE fields: the field goes, its shown text stays.
    for field in qualified(xml, TEXT_NS, "text", "dde-connection") {
        for (s, e, tag) in elements(xml, &field) {
            let close = format!("</{field}>");
            if tag.ends_with("/>") || !xml[s..e].ends_with(&close) {
                edits.push((s, e, ""));
            } else {
                edits.push((s, s + tag.len(), ""));
                edits.push((e - close.len(), e, ""));
            }
            removed.push(Removed {
                what: "DDE field (its shown text kept)".into(),
                location: format!("{name} <{field}> at byte {s}"),
            });
        }
    }
    for formula in qualified(xml, TABLE_NS, "table", "formula") {
        for (s, e, value, element) in hrefs(xml, &formula) {
            let lower = value.to_ascii_lowercase().replace(char::is_whitespace, "");
            if EXTERNAL_FORMULA.iter().any(|f| lower.contains(f)) {
                edits.push((s, e, ""));
                removed.push(Removed {
                    what: "formula reaching outside the document (DDE, web service or another \
                           file; blanked, the cached value kept)"
                        .into(),
                    location: format!(
                        "{name} <{element}> {}",
                        value.chars().take(200).collect::<String>()
                    ),
                });
            }
        }
    }
    let links: Vec<_> = qualified(xml, XLINK_NS, "xlink", "href")
        .iter()
        .flat_map(|attr_name| hrefs(xml, attr_name))
        .collect();
    for (s, e, value, element) in links {
        if value.is_empty() {
            continue;
        }
        let lower = value.trim().to_ascii_lowercase();
        let why = if SCRIPT_SCHEMES.iter().any(|p| lower.starts_with(p)) {
            Some("script link (blanked)")
        } else if matches!(element.rsplit(':').next(), Some("object" | "object-ole")) {
            Some("embedded object link (blanked)")
        } else {
            let path = package_path(&value);
            let prefix = format!("{path}/");
            if !path.is_empty() && dropped.iter().any(|d| *d == path || d.starts_with(&prefix)) {
                Some("link to a removed part (blanked)")
            } else if leaves_package(&value) {
                let hyperlink = matches!(element.rsplit(':').next(), Some("a"));
                let plain = ["http://", "https://", "mailto:"]
                    .iter()
                    .any(|p| lower.starts_with(p));
                match (hyperlink, plain) {
                    (true, true) => None,
                    (true, false) => Some("hyperlink to a non-web target (blanked)"),
                    (false, _) => Some("external link fetched by a reader (blanked)"),
                }
            } else {
                None
            }
        };
        if let Some(why) = why {
            edits.push((s, e, ""));
            removed.push(Removed {
                what: why.into(),
                location: format!(
                    "{name} <{element}> -> {}",
                    value.chars().take(200).collect::<String>()
                ),
            });
        }
    }
    splice(xml, edits)
}

/// Re-writes `META-INF/manifest.xml` with only the kept entries (and the package root).
fn rewrite_manifest(xml: &str, kept: &HashSet<String>) -> String {
    let mut cut = Vec::new();
    for (s, e, tag) in elements(xml, "manifest:file-entry") {
        let path = attr(tag, "manifest:full-path").unwrap_or("");
        let path = unescape(path);
        if path != "/" && !kept.contains(&path) {
            cut.push((s, e, ""));
        }
    }
    splice(xml, cut)
}

/// Rebuilds the package.
pub(super) fn rebuild(
    data: &[u8],
    archive: &ZipArchive,
    ctx: &mut ScanContext,
) -> Result<Disarmed, ConvertError> {
    let mut failures = Vec::new();
    let files: Vec<_> = archive.entries.iter().filter(|e| !e.is_dir()).collect();
    if !files.iter().any(|e| e.name == "mimetype") {
        return Err(ConvertError::at(
            "CONVERT-ODF-MIMETYPE",
            "mimetype".into(),
            "the package has no mimetype entry".into(),
        ));
    }
    let mut read =
        |e: &zip::ZipEntry, failures: &mut Vec<Failure>| super::zip_entry(data, e, ctx, failures);
    // The XML parts first: they say which pictures are used.
    let mut texts: Vec<(String, String)> = Vec::new();
    for e in files.iter().filter(|e| KEPT_XML.contains(&e.name.as_str())) {
        let Some(content) = read(e, &mut failures) else {
            continue;
        };
        let text = match xml_part(&e.name, &content) {
            Ok(text) => text.to_owned(),
            Err(f) => {
                failures.push(f);
                continue;
            }
        };
        if e.name == MANIFEST && text.contains("manifest:encryption-data") {
            return Err(ConvertError::Encrypted(FileType::Odf));
        }
        texts.push((e.name.clone(), text));
    }
    let used_picture = |name: &str| {
        texts
            .iter()
            .filter(|(n, _)| n == "content.xml" || n == "styles.xml")
            .any(|(_, t)| t.contains(name))
    };
    let mut removed = Vec::new();
    let mut dropped: HashSet<String> = HashSet::new();
    let mut kept: HashSet<String> = HashSet::new();
    for e in &files {
        let name = e.name.as_str();
        let keep = name == "mimetype"
            || KEPT_XML.contains(&name)
            || (name.starts_with("Pictures/") && used_picture(name));
        if keep {
            kept.insert(e.name.clone());
        } else {
            dropped.insert(e.name.clone());
            removed.push(Removed {
                what: dropped_why(name).into(),
                location: e.name.clone(),
            });
        }
    }
    let mut parts: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (name, text) in &texts {
        let out = if name == MANIFEST {
            rewrite_manifest(text, &kept)
        } else {
            clean_xml(name, text, &dropped, &mut removed)
        };
        parts.push((name.clone(), out.into_bytes(), false));
    }
    for e in files
        .iter()
        .filter(|e| kept.contains(&e.name) && !KEPT_XML.contains(&e.name.as_str()))
    {
        if let Some(content) = read(e, &mut failures) {
            parts.push((e.name.clone(), content.into_owned(), e.name == "mimetype"));
        }
    }
    if !failures.is_empty() {
        return Err(ConvertError::Failed(failures));
    }
    // ODF: `mimetype` first and stored, then the rest in the original's order.
    let order = |n: &str| files.iter().position(|e| e.name == n).unwrap_or(usize::MAX);
    parts.sort_by_key(|(name, _, _)| (name != "mimetype", order(name)));
    let entries: Vec<NewEntry<'_>> = parts
        .iter()
        .map(|(name, data, stored)| NewEntry {
            name,
            data,
            stored: *stored,
        })
        .collect();
    let bytes = zip_write::write(&entries)
        .map_err(|message| ConvertError::at("CONVERT-ZIP-WRITE", "package".into(), message))?;
    Ok(Disarmed {
        bytes,
        file_type: FileType::Odf,
        removed,
    })
}
