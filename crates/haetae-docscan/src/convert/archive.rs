//! Plain ZIP archives (`FileType::Zip`: no document format the type detector knows) rebuilt
//! member by member: every file is read through the ZIP reader with its caps, its type
//! detected (and verified) as a file of its own would be, and disarmed with
//! [`super::disarm`] — a nested plain archive the same way, at most [`MAX_DEPTH`] deep. A
//! same-format copy keeps the member's name; a text rendition (an OLE2/HWP document, an
//! Outlook message) is written as `<name>.txt`. A member without a safe copy — a program,
//! a type without a rebuild, an encrypted member or document, one whose conversion fails, a
//! name that climbs out of the archive (`..`, an absolute or drive path), a second entry of
//! the same name — is dropped, and `removed` names it and says why. Directory entries and
//! the archive's comment and extra fields are not carried; the archive is written anew
//! (deflate, fixed times).
//!
//! An archive whose every file is encrypted answers [`ConvertError::Encrypted`]. Failures
//! are `CONVERT-ZIP` (no readable directory), `CONVERT-ZIP-DEPTH` (archives nested deeper
//! than [`MAX_DEPTH`]), `CONVERT-ZIP-TIME`, `CONVERT-ZIP-WRITE`; a member that cannot be
//! read is dropped and named (`removed`), as the scan's own findings already report it.

use std::collections::HashSet;

use super::zip_write::{self, NewEntry};
use super::{ConvertError, Disarmed, Removed};
use crate::container::zip;
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

use super::MAX_DEPTH;

fn climbs_out(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/')
        || n.split('/').any(|c| c == "..")
        || n.as_bytes().get(1) == Some(&b':')
        || n.chars().any(char::is_control)
}

/// Rebuilds the plain archive `data` found at nesting `depth`.
pub(super) fn rebuild(data: &[u8], limits: &Limits, depth: u32) -> Result<Disarmed, ConvertError> {
    if depth > MAX_DEPTH {
        return Err(ConvertError::at(
            "CONVERT-ZIP-DEPTH",
            "file".into(),
            format!("archives nested more than {MAX_DEPTH} deep"),
        ));
    }
    let mut ctx = ScanContext::new(limits, data.len());
    let archive = super::zip_directory(data, &mut ctx)?;
    let files: Vec<&zip::ZipEntry> = archive.entries.iter().filter(|e| !e.is_dir()).collect();
    if !files.is_empty() && files.iter().all(|e| e.encrypted()) {
        return Err(ConvertError::Encrypted(FileType::Zip));
    }
    let mut removed = Vec::new();
    let drop = |removed: &mut Vec<Removed>, name: &str, why: String| {
        removed.push(Removed {
            what: format!("member dropped: {why}"),
            location: format!("entry {name}"),
        });
    };
    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    let mut names = HashSet::new();
    for e in files {
        if ctx.out_of_time() {
            return Err(ConvertError::at(
                "CONVERT-ZIP-TIME",
                format!("entry {}", e.name),
                format!("the time budget of {:?} ran out", limits.time),
            ));
        }
        if climbs_out(&e.name) {
            drop(
                &mut removed,
                &e.name,
                "its name leads out of the archive".into(),
            );
            continue;
        }
        if !names.insert(e.name.clone()) {
            drop(
                &mut removed,
                &e.name,
                "a second entry of the same name".into(),
            );
            continue;
        }
        if e.encrypted() {
            drop(
                &mut removed,
                &e.name,
                "encrypted (no copy without its password)".into(),
            );
            continue;
        }
        let Some(content) = zip::read(data, e, &mut ctx) else {
            drop(
                &mut removed,
                &e.name,
                "it cannot be read (broken, or over the ratio or memory caps)".into(),
            );
            continue;
        };
        let (kind, result) = super::nested(&content, limits, depth + 1);
        match result {
            Ok(d) => {
                let name = if d.file_type == kind {
                    e.name.clone()
                } else {
                    format!("{}.txt", e.name)
                };
                for r in d.removed {
                    removed.push(Removed {
                        what: r.what,
                        location: format!("entry {}: {}", e.name, r.location),
                    });
                }
                if name != e.name {
                    removed.push(Removed {
                        what: format!("{kind:?} member replaced by its text rendition {name}"),
                        location: format!("entry {}", e.name),
                    });
                    if !names.insert(name.clone()) {
                        drop(
                            &mut removed,
                            &e.name,
                            format!("its rendition's name {name} is taken"),
                        );
                        continue;
                    }
                }
                kept.push((name, d.bytes));
            }
            Err(why) => drop(&mut removed, &e.name, why),
        }
    }
    let entries: Vec<NewEntry<'_>> = kept
        .iter()
        .map(|(name, bytes)| NewEntry {
            name,
            data: bytes,
            stored: false,
        })
        .collect();
    let bytes = zip_write::write(&entries)
        .map_err(|m| ConvertError::at("CONVERT-ZIP-WRITE", "archive".into(), m))?;
    Ok(Disarmed {
        bytes,
        file_type: FileType::Zip,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::tests::png_with_metadata;
    use haetae_core::Verdict;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let e: Vec<NewEntry<'_>> = entries
            .iter()
            .map(|(name, data)| NewEntry {
                name,
                data,
                stored: false,
            })
            .collect();
        zip_write::write(&e).unwrap()
    }

    fn names(data: &[u8]) -> Vec<String> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, data.len());
        zip::parse(data, &mut ctx)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    #[test]
    fn members_are_disarmed_and_the_rest_dropped_and_named() {
        let png = png_with_metadata(0);
        let rtf = b"{\\rtf1 text{\\object\\objemb{\\*\\objdata 0102}}}";
        let inner = zip_of(&[
            ("deep.rtf", rtf),
            ("run.exe", b"MZ\x90\x00\x03\x00\x00\x00"),
        ]);
        let outer = zip_of(&[
            ("pic.png", &png),
            ("notes.rtf", rtf),
            ("readme.txt", b"plain words\n"),
            (
                "tool.exe",
                b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff",
            ),
            ("../escape.txt", b"x"),
            ("nested.zip", &inner),
        ]);
        let d = rebuild(&outer, &Limits::default(), 0).unwrap();
        assert_eq!(d.file_type, FileType::Zip);
        assert_eq!(
            names(&d.bytes),
            ["pic.png", "notes.rtf", "readme.txt", "nested.zip"]
        );
        let dropped: Vec<&str> = d
            .removed
            .iter()
            .filter(|r| r.what.starts_with("member dropped"))
            .map(|r| r.location.as_str())
            .collect();
        assert_eq!(
            dropped,
            [
                "entry tool.exe",
                "entry ../escape.txt",
                "entry nested.zip: entry run.exe"
            ]
        );
        // The RTF object went, in the member and in the nested archive's member.
        assert!(
            d.removed
                .iter()
                .any(|r| r.location.starts_with("entry notes.rtf: "))
        );
        assert!(
            d.removed
                .iter()
                .any(|r| r.location.starts_with("entry nested.zip: entry deep.rtf: "))
        );
        // And the copy scans as a ZIP whose members are all clean.
        let report = crate::report::scan_bytes(&d.bytes, Some("a.zip"), &Limits::default());
        assert_eq!(report.detected_type, FileType::Zip);
        assert_eq!(report.verdict, Verdict::Clean, "{:?}", report.findings);
    }

    #[test]
    fn nesting_is_bounded_and_encrypted_archives_are_refused() {
        let mut z = zip_of(&[("a.txt", b"words\n")]);
        for i in 0..=MAX_DEPTH {
            let name = format!("level{i}.zip");
            z = zip_of(&[(name.as_str(), &z)]);
        }
        let d = rebuild(&z, &Limits::default(), 0).unwrap();
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.contains("CONVERT-ZIP-DEPTH")),
            "{:?}",
            d.removed
        );
        let mut enc = zip_of(&[("secret.txt", b"words\n")]);
        // General-purpose flag bit 0 in the local header (offset 6) and the central one.
        enc[6] |= 1;
        let central = enc.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        enc[central + 8] |= 1;
        assert_eq!(
            rebuild(&enc, &Limits::default(), 0).unwrap_err(),
            ConvertError::Encrypted(FileType::Zip)
        );
    }
}
