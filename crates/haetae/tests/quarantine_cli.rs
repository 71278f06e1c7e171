//! `haetae scan --on-vulnerable quarantine --report DIR` and `haetae quarantine
//! list|show|restore|purge|audit`, run as a user would: the real binary, a temporary data
//! folder, a JPEG whose COM segment length is 1 (CVE-2004-0200) built here.

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
