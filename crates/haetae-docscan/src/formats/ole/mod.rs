//! OLE2 compound files: the shared CFB reader verifies the container; this module names
//! the application (DOC, XLS, PPT, HWP, MSI, MSG) and reports active content: VBA projects,
//! `Equation Native` (CVE-2017-11882 / CVE-2018-0802), OLE links (CVE-2017-0199), packaged
//! files (`\x01Ole10Native`), `ObjectPool` objects, encryption. Embedded files are scanned
//! with the same engine. HWP files are handed to [`crate::formats::hwp`].

use haetae_core::Severity;

use crate::bytes::{le32, slice};
use crate::container::cfb::{Cfb, DirEntry, EntryKind, SIGNATURE};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::{Format, hwp};

pub mod office;
pub mod officeart;

/// OLE2 compound files and their applications.
#[derive(Debug, Clone, Copy)]
pub struct Ole;

/// MSI's root class id {000C1084-0000-0000-C000-000000000046}.
const MSI_CLSID: [u8; 16] = [
    0x84, 0x10, 0x0C, 0x00, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
];

impl Format for Ole {
    fn name(&self) -> &'static str {
        "ole"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        data.starts_with(&SIGNATURE).then_some(FileType::Cfb)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        let Some(cfb) = Cfb::parse(data, ctx) else {
            return FileType::Cfb;
        };
        let kind = classify(&cfb);
        if kind == FileType::Hwp {
            hwp::verify(data, &cfb, ctx);
        } else {
            office::verify(data, &cfb, kind, ctx);
        }
        check_streams(data, &cfb, kind, ctx);
        kind
    }
}

fn classify(cfb: &Cfb) -> FileType {
    let has = |p: &str| cfb.find(p).is_some();
    if has("EncryptionInfo") && has("EncryptedPackage") {
        FileType::EncryptedOoxml
    } else if has("FileHeader") && (has("DocInfo") || has("BodyText")) {
        FileType::Hwp
    } else if has("WordDocument") {
        FileType::Doc
    } else if has("Workbook") || has("Book") {
        FileType::Xls
    } else if has("PowerPoint Document") {
        FileType::Ppt
    } else if cfb.root_clsid() == MSI_CLSID {
        FileType::Msi
    } else if cfb
        .entries
        .iter()
        .any(|e| e.name.starts_with("__substg1.0_"))
    {
        FileType::Msg
    } else {
        FileType::Cfb
    }
}

fn loc(e: &DirEntry) -> Location {
    Location::part(e.path.clone())
}

fn check_streams(data: &[u8], cfb: &Cfb, kind: FileType, ctx: &mut ScanContext) {
    let mut vba_reported = false;
    for e in &cfb.entries {
        if !e.reachable || ctx.out_of_time() {
            continue;
        }
        let lname = e.name.to_ascii_lowercase();
        let lpath = e.path.to_ascii_lowercase();
        if !vba_reported
            && (lname == "_vba_project" || lname == "vba" && e.kind == EntryKind::Storage)
        {
            vba_reported = true;
            ctx.active(
                "OLE-VBA",
                Severity::Medium,
                loc(e),
                "the document carries a VBA macro project",
            );
        }
        if e.kind != EntryKind::Stream {
            if lname == "objectpool" {
                ctx.note(
                    "OLE-OBJECTPOOL",
                    loc(e),
                    "the document holds embedded OLE objects",
                );
            }
            if lname == "macros" && !vba_reported && kind == FileType::Doc {
                vba_reported = true;
                ctx.active(
                    "OLE-VBA",
                    Severity::Medium,
                    loc(e),
                    "the document carries a macro storage",
                );
            }
            continue;
        }
        match e.name.as_str() {
            "Equation Native" => ctx.report(
                Finding::new(
                    "OLE-EQUATION",
                    Severity::High,
                    FindingClass::ActiveContent,
                    loc(e),
                    "an Equation Editor 3.0 object, the target of stack-overflow exploits",
                )
                .cve(&["CVE-2017-11882", "CVE-2018-0802"]),
            ),
            "EncryptedPackage" => ctx.active(
                "OLE-ENCRYPTED",
                Severity::Medium,
                loc(e),
                "an encrypted OOXML package: its content cannot be verified",
            ),
            "\u{1}Ole" => check_ole_link(data, cfb, e, ctx),
            "\u{1}Ole10Native" => check_package(data, cfb, e, ctx),
            _ => {}
        }
        // Anything that starts like a file of its own is scanned as one.
        if e.size >= 64
            && (lpath.contains("objectpool/")
                || lname == "package"
                || lname == "contents"
                || lname.starts_with("mbd")
                || lpath.starts_with("mbd"))
            && let Some(content) = cfb.read_stream(data, e, ctx)
        {
            let len = content.len() as u64;
            if crate::formats::detect(&content).is_some() {
                ctx.scan_embedded(&content, &e.path);
            }
            ctx.release(len);
        }
    }
}

fn check_ole_link(data: &[u8], cfb: &Cfb, e: &DirEntry, ctx: &mut ScanContext) {
    let Some(content) = cfb.read_stream(data, e, ctx) else {
        return;
    };
    ctx.release(content.len() as u64);
    // MS-OLEDS 2.3.3: OLEVersion, then Flags; bit 0 = linked object.
    if le32(&content, 4).is_some_and(|f| f & 1 != 0) {
        ctx.report(
            Finding::new(
                "OLE-LINK",
                Severity::High,
                FindingClass::ActiveContent,
                loc(e),
                "a linked OLE object that fetches its content from a moniker when opened",
            )
            .cve(&["CVE-2017-0199"]),
        );
    }
}

/// `\x01Ole10Native`: a packaged file (MS-OLEDS 2.3.6 native data, Packager layout).
fn check_package(data: &[u8], cfb: &Cfb, e: &DirEntry, ctx: &mut ScanContext) {
    let Some(content) = cfb.read_stream(data, e, ctx) else {
        return;
    };
    let len = content.len() as u64;
    let mut name = String::from("package");
    let mut payload: Option<&[u8]> = None;
    // u32 size, u16 type, label\0, path\0, u32 ?, u32 len, temp path, u32 size, data.
    let cstr_end = |from: usize| {
        content
            .get(from..)
            .and_then(|t| t.iter().position(|&b| b == 0))
            .map(|n| from + n + 1)
    };
    if let Some(after_label) = cstr_end(6)
        && let Some(after_path) = cstr_end(after_label)
    {
        name = String::from_utf8_lossy(content.get(6..after_label - 1).unwrap_or_default())
            .into_owned();
        let tlen = le32(&content, after_path + 4).unwrap_or(0) as usize;
        let size_at = after_path + 8 + tlen;
        if let Some(size) = le32(&content, size_at) {
            payload = slice(&content, size_at + 4, size as usize);
            if payload.is_none() {
                ctx.structure(
                    "OLE-PACKAGE-SIZE",
                    Severity::High,
                    Location::at(size_at).with_part(e.path.clone()),
                    format!("the packaged file declares {size} bytes, more than the stream holds"),
                );
            }
        }
    }
    ctx.active(
        "OLE-PACKAGE",
        Severity::Medium,
        loc(e),
        format!("a packaged file {name:?} that runs when the icon is opened"),
    );
    if let Some(p) = payload {
        let inner = format!("{} > {name}", e.path);
        ctx.scan_embedded(p, &inner);
        // A script by name is as dangerous as a program.
        let lname = name.to_ascii_lowercase();
        if [
            ".js", ".vbs", ".vbe", ".wsf", ".hta", ".bat", ".cmd", ".ps1", ".exe", ".scr", ".lnk",
        ]
        .iter()
        .any(|x| lname.ends_with(x))
        {
            ctx.active(
                "OLE-PACKAGE-EXECUTABLE",
                Severity::High,
                loc(e),
                format!("the packaged file {name:?} is a program or script"),
            );
        }
    }
    ctx.release(len);
}

#[cfg(test)]
mod tests {
    use crate::container::cfb::build::cfb;
    use crate::testing::findings_of;

    fn codes(data: &[u8], name: &str) -> Vec<String> {
        findings_of(data, name)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// A Word FIB with no offset pairs, naming the table stream `0Table`.
    fn fib(pairs: &[(u32, u32)]) -> Vec<u8> {
        let mut f = vec![0u8; 0x24];
        f[0..2].copy_from_slice(&0xA5ECu16.to_le_bytes());
        f.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
        for (fc, lcb) in pairs {
            f.extend_from_slice(&fc.to_le_bytes());
            f.extend_from_slice(&lcb.to_le_bytes());
        }
        f.resize(600, 0);
        f
    }

    #[test]
    fn a_plain_word_file_is_clean() {
        let f = cfb(&[("WordDocument", &fib(&[(0, 10)])), ("0Table", &[0u8; 100])]);
        assert_eq!(codes(&f, "a.doc"), Vec::<String>::new());
    }

    #[test]
    fn a_fib_range_outside_the_table_stream_is_reported() {
        let f = cfb(&[
            ("WordDocument", &fib(&[(0, 10), (90, 20)])),
            ("0Table", &[0u8; 100]),
        ]);
        assert_eq!(
            findings_of(&f, "a.doc"),
            vec![(
                "DOC-FIB-RANGE".to_owned(),
                "WordDocument > FIB pair 1 @0x2e".to_owned()
            )]
        );
    }

    #[test]
    fn a_biff_record_past_the_stream_end_is_reported() {
        let mut wb = vec![0x09, 0x08, 16, 0];
        wb.extend_from_slice(&[0u8; 16]);
        wb.extend_from_slice(&[0x0A, 0x00, 0x40, 0x00]); // claims 64 bytes, has none
        assert_eq!(
            codes(&cfb(&[("Workbook", &wb)]), "a.xls"),
            ["XLS-RECORD-TRUNCATED"]
        );
    }

    /// A BIFF8 workbook stream: BOF, one XF record with `xf` patched in, EOF.
    fn workbook_with_xf(patch: impl Fn(&mut [u8; 20])) -> Vec<u8> {
        let mut wb = vec![0x09, 0x08, 16, 0, 0x00, 0x06];
        wb.extend_from_slice(&[0u8; 14]);
        let mut xf = [0u8; 20];
        patch(&mut xf);
        wb.extend_from_slice(&[0xE0, 0x00, 20, 0]);
        wb.extend_from_slice(&xf);
        wb.extend_from_slice(&[0x0A, 0x00, 0, 0]);
        cfb(&[("Workbook", &wb)])
    }

    #[test]
    fn xf_records_with_legal_fields_are_clean() {
        let f = workbook_with_xf(|xf| {
            xf[10] = 0x21; // left thin, right medium
            xf[17] = 1 << 2; // solid fill
        });
        assert_eq!(codes(&f, "a.xls"), Vec::<String>::new());
    }

    #[test]
    fn an_xf_border_style_out_of_range_is_reported() {
        let f = workbook_with_xf(|xf| xf[10] = 0x2F);
        assert_eq!(
            findings_of(&f, "a.xls"),
            vec![(
                "XLS-XF-FIELD".to_owned(),
                "Workbook > record 1 (type 0x00e0) @0x14".to_owned()
            )]
        );
    }

    #[test]
    fn an_equation_object_is_reported_with_its_cves() {
        let f = cfb(&[("Equation Native", &[0u8; 100])]);
        let r = crate::scan_bytes(&f, Some("x.bin"), &crate::Limits::default());
        assert_eq!(r.findings[0].code, "OLE-EQUATION");
        assert_eq!(r.findings[0].cve, ["CVE-2017-11882", "CVE-2018-0802"]);
        assert_eq!(r.findings[0].location.to_string(), "Equation Native");
    }

    #[test]
    fn a_vba_project_stream_is_active_content() {
        let f = cfb(&[
            ("WordDocument", &fib(&[])),
            ("0Table", &[0u8; 10]),
            ("_VBA_PROJECT", &[0u8; 10]),
        ]);
        assert_eq!(codes(&f, "a.doc"), ["OLE-VBA"]);
    }
    const AGILE_KEY: &str = "saltSize=\"16\" blockSize=\"16\" keyBits=\"128\" hashSize=\"20\" cipherAlgorithm=\"AES\" cipherChaining=\"ChainingModeCBC\" hashAlgorithm=\"SHA1\" saltValue=\"6EHPTdNnvI5gogA7CKkDBQ==\"";

    /// An agile-encrypted package: `EncryptionInfo` 4.4 with `key_data` as the keyData
    /// attributes, and an `EncryptedPackage` declaring `declared` bytes.
    fn agile(key_data: &str, declared: u64) -> Vec<u8> {
        let mut info = vec![4, 0, 4, 0, 0x40, 0, 0, 0];
        info.extend_from_slice(
            format!(
                "<?xml version=\"1.0\"?><encryption><keyData {key_data}/><keyEncryptors><keyEncryptor><p:encryptedKey spinCount=\"100000\" {AGILE_KEY} encryptedVerifierHashInput=\"PDgrcJhMKPKzs34zKEFQRQ==\" encryptedVerifierHashValue=\"PDgrcJhMKPKzs34zKEFQRQ==\" encryptedKeyValue=\"PDgrcJhMKPKzs34zKEFQRQ==\"/></keyEncryptor></keyEncryptors></encryption>"
            )
            .as_bytes(),
        );
        let mut package = declared.to_le_bytes().to_vec();
        package.extend_from_slice(&[0u8; 32]);
        cfb(&[("EncryptionInfo", &info), ("EncryptedPackage", &package)])
    }

    #[test]
    fn a_well_formed_agile_package_is_only_encrypted() {
        assert_eq!(codes(&agile(AGILE_KEY, 30), "a.docx"), ["OLE-ENCRYPTED"]);
    }

    #[test]
    fn an_agile_key_without_its_block_size_is_reported() {
        let broken = AGILE_KEY.replace("blockSize", "blcSzoike");
        assert_eq!(
            findings_of(&agile(&broken, 30), "a.docx"),
            vec![
                (
                    "ENCRYPTION-INFO".to_owned(),
                    "EncryptionInfo > agile descriptor <keyData> @0x8".to_owned()
                ),
                ("OLE-ENCRYPTED".to_owned(), "EncryptedPackage".to_owned()),
            ]
        );
    }

    #[test]
    fn an_agile_salt_of_the_wrong_length_is_reported() {
        let broken = AGILE_KEY.replace("saltSize=\"16\"", "saltSize=\"64\"");
        assert!(codes(&agile(&broken, 30), "a.docx").contains(&"ENCRYPTION-INFO".to_owned()));
    }

    #[test]
    fn a_package_size_past_the_encrypted_bytes_is_reported() {
        assert_eq!(
            findings_of(&agile(AGILE_KEY, 1 << 40), "a.docx"),
            vec![
                (
                    "ENCRYPTED-PACKAGE-SIZE".to_owned(),
                    "EncryptedPackage > StreamSize @0x0".to_owned()
                ),
                ("OLE-ENCRYPTED".to_owned(), "EncryptedPackage".to_owned()),
            ]
        );
    }

    /// An Outlook message whose top-level property stream lists `tags` (with sizes).
    fn msg(tags: &[(u32, u32)], streams: &[(&str, &[u8])]) -> Vec<u8> {
        let mut props = vec![0u8; 32];
        for (tag, size) in tags {
            props.extend_from_slice(&tag.to_le_bytes());
            props.extend_from_slice(&6u32.to_le_bytes());
            props.extend_from_slice(&size.to_le_bytes());
            props.extend_from_slice(&0u32.to_le_bytes());
        }
        let mut all: Vec<(&str, &[u8])> = vec![("__properties_version1.0", &props)];
        all.extend_from_slice(streams);
        cfb(&all)
    }

    #[test]
    fn message_properties_and_their_streams_agree() {
        let subject = "Hi"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>();
        let f = msg(&[(0x0037_001F, 6)], &[("__substg1.0_0037001F", &subject)]);
        assert_eq!(codes(&f, "a.msg"), Vec::<String>::new());
    }

    #[test]
    fn a_message_property_without_its_stream_is_reported() {
        let f = msg(
            &[(0x0071_0102, 22)],
            &[("__substg1.0_00700102", &[1u8; 22])],
        );
        assert_eq!(
            findings_of(&f, "a.msg"),
            vec![(
                "MSG-PROPERTY-STREAM".to_owned(),
                "__properties_version1.0 > property 0 (0x00710102) @0x20".to_owned()
            )]
        );
    }

    #[test]
    fn a_message_property_size_that_disagrees_with_its_stream_is_reported() {
        let f = msg(
            &[(0x0037_001F, 40)],
            &[("__substg1.0_0037001F", &[0x41, 0])],
        );
        assert_eq!(codes(&f, "a.msg"), ["MSG-PROPERTY-SIZE"]);
    }
}
