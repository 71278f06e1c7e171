//! `haetae scan --disarm OUTDIR`: a rebuilt copy of each scanned file without its active
//! content (`haetae_docscan::convert`), with a JSON sidecar of what was removed or why the
//! conversion failed. A plain-text rendition (OLE2 DOC/XLS/PPT, HWP 5.0) is written as
//! `<name>.txt` and its sidecar says `"kind": "text rendition"` (a rebuild says
//! `"same format"`). A same-format copy of a file whose name claims another type (a Word 97
//! document named `.docm`) is named by its content (`<stem>.doc`), and the sidecar's
//! `"renamed"` says so. Conversion is itself a test: a failed one is reported like a finding
//! and makes the command exit 1. When `LibreOffice` is on `PATH` (and `--soffice` is not
//! `off`), the original of a type it reads is also converted to PDF in a sandbox
//! (`convert::soffice`): the sidecar's `"libreoffice"` says converted, failed (a finding:
//! code and place, exit 1) or skipped and why.

use std::path::{Path, PathBuf};

use anyhow::Context;
use haetae_docscan::convert::soffice::{Outcome, Soffice};
use haetae_docscan::convert::{self, ConvertError};
use haetae_docscan::filetype::{Agreement, FileType, agreement};
use haetae_docscan::report_html::ConversionSummary;
use haetae_docscan::{Limits, Report};

/// The optional `LibreOffice` conversion test for `--disarm` (`--soffice auto|off`).
#[derive(Debug)]
pub(super) enum Converter {
    /// `--soffice off`.
    Off,
    /// Not found, or it cannot be sandboxed here: why.
    Absent(String),
    /// Runs on every file of a type `LibreOffice` reads.
    Found(Soffice),
}

impl Converter {
    /// The converter `--soffice` asks for: `off`, or `auto` (used when on `PATH`).
    pub(super) fn new(auto: bool) -> Converter {
        if !auto {
            return Converter::Off;
        }
        match Soffice::find() {
            Ok(s) => Converter::Found(s),
            Err(why) => Converter::Absent(why),
        }
    }
}

/// A name in `dir` for `file_name` that does not exist yet (`a.docx`, `a-1.docx`, ...).
fn free_name(dir: &Path, file_name: &str) -> PathBuf {
    let candidate = dir.join(file_name);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (file_name, String::new()),
    };
    (1..)
        .map(|n| dir.join(format!("{stem}-{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(candidate)
}

/// The name a same-format copy of `file_type` gets when the original's name claims another
/// type (a Word 97 file named `.docm`: its copy would rescan as a type mismatch): the
/// claimed extension replaced by the type's own (`report.doc`); `None` when the name agrees
/// with the content or claims nothing.
fn typed_name(file_name: &str, file_type: FileType) -> Option<String> {
    let claimed = FileType::from_name(file_name)?;
    if agreement(claimed, file_type) == Agreement::Same {
        return None;
    }
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(s, _)| s)
        .trim_end_matches('.');
    let stem = if stem.is_empty() { "file" } else { stem };
    Some(format!("{stem}.{}", file_type.extension()))
}

/// Rebuilds one scanned file into `dir`; `None` for standard input and unreadable files.
///
/// # Errors
/// The output folder cannot be written.
pub(super) fn one(
    dir: &Path,
    r: &Report,
    limits: &Limits,
    soffice: &Converter,
) -> anyhow::Result<Option<ConversionSummary>> {
    let Some(path) = r.path.as_deref().filter(|p| *p != "-") else {
        return Ok(None);
    };
    if r.error.is_some() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = Path::new(path)
        .file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    let mut summary = ConversionSummary::default();
    // Why there is no copy: "encrypted" (no copy without the password), "unsupported"
    // (no rebuild for the type or variant), "failed" (the conversion failed: a finding).
    let mut refusal: Option<&str> = None;
    // Why a same-format copy's name is not the original's (the name claimed another type).
    let mut renamed: Option<String> = None;
    match std::fs::read(path) {
        Err(e) => summary.failures.push((
            "CONVERT-READ".into(),
            path.to_owned(),
            format!("cannot read it again: {e}"),
        )),
        Ok(data) => match convert::disarm(&data, r.detected_type, limits) {
            Ok(d) => {
                // A copy in another format (the plain-text rendition of an OLE2 or HWP
                // document) is named `<name>.txt`, so nothing opens it as the original type.
                let rendition = d.file_type != r.detected_type;
                let out_name = if rendition {
                    format!("{file_name}.txt")
                } else if let Some(name) = typed_name(&file_name, d.file_type) {
                    renamed = Some(format!(
                        "the name claims {} but the content is {}: the copy is named {name}, by \
                         its content, so that it opens (and rescans) as what it is",
                        FileType::from_name(&file_name).map_or("nothing", FileType::as_str),
                        d.file_type
                    ));
                    name
                } else {
                    file_name.clone()
                };
                let out = free_name(dir, &out_name);
                std::fs::write(&out, &d.bytes)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                summary.output = Some(out.display().to_string());
                summary.kind = if rendition {
                    summary.note = Some(format!(
                        "a plain-text rendition of the {:?} document, not a rebuild: its \
                         layout, pictures and objects are not in it",
                        r.detected_type
                    ));
                    "text rendition".into()
                } else {
                    "same format".into()
                };
                summary.removed = d
                    .removed
                    .into_iter()
                    .map(|x| (x.what, x.location))
                    .collect();
            }
            Err(ConvertError::Encrypted(t)) => {
                refusal = Some("encrypted");
                summary.note = Some(format!(
                    "the {t:?} document is encrypted (a password or DRM \
                     protection): its content cannot be read without the key, so there is no \
                     copy; the original was not copied"
                ));
            }
            Err(ConvertError::Unsupported(t)) => {
                refusal = Some("unsupported");
                summary.note = Some(format!(
                    "no safe rebuild for this {t:?} file (its type, or a variant of it, has \
                     none); the original was not copied"
                ));
            }
            Err(ConvertError::Failed(failures)) => {
                refusal = Some("failed");
                summary.failures = failures
                    .into_iter()
                    .map(|f| (f.code, f.location, f.message))
                    .collect();
            }
        },
    }
    // The LibreOffice conversion test of the original, when there is one to run.
    let libreoffice = match (soffice, std::fs::read(path)) {
        (Converter::Off, _) => serde_json::json!({"status": "skipped", "reason": "--soffice off"}),
        (Converter::Absent(why), _) => serde_json::json!({"status": "skipped", "reason": why}),
        (Converter::Found(_), Err(e)) => {
            serde_json::json!({"status": "skipped", "reason": format!("cannot read it again: {e}")})
        }
        (Converter::Found(s), Ok(data)) => match s.convert(&data, r.detected_type) {
            Outcome::Skipped(why) => serde_json::json!({"status": "skipped", "reason": why}),
            Outcome::Converted { bytes, elapsed_ms } => serde_json::json!({
                "status": "converted", "target": "pdf", "bytes": bytes, "elapsed_ms": elapsed_ms,
            }),
            Outcome::Failed(f) => {
                let json = serde_json::json!({
                    "status": "failed", "code": f.code, "location": f.location, "message": f.message,
                });
                summary.failures.push((f.code, f.location, f.message));
                json
            }
        },
    };
    let sidecar = free_name(dir, &format!("{file_name}.disarm.json"));
    let json = serde_json::json!({
        "source": path,
        "sha256": r.sha256,
        "detected_type": r.detected_type,
        "output": summary.output,
        // "same format" (a rebuild) or "text rendition" (the text only, as UTF-8).
        "kind": (summary.output.is_some()).then_some(&summary.kind),
        "refusal": refusal,
        "renamed": renamed,
        "removed": summary.removed.iter().map(|(what, location)| serde_json::json!({"what": what, "location": location})).collect::<Vec<_>>(),
        "failures": summary.failures.iter().map(|(code, location, message)| serde_json::json!({"code": code, "location": location, "message": message})).collect::<Vec<_>>(),
        "note": summary.note,
        // The optional LibreOffice conversion test: converted, failed (a finding), skipped.
        "libreoffice": libreoffice,
    });
    std::fs::write(&sidecar, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", sidecar.display()))?;
    for (code, location, message) in &summary.failures {
        eprintln!("haetae scan: {path}: conversion failed: {code} at {location}: {message}");
    }
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_named_by_its_content_when_the_name_claims_another_type() {
        assert_eq!(
            typed_name("report.docm", FileType::Doc).as_deref(),
            Some("report.doc")
        );
        assert_eq!(
            typed_name("photo.png", FileType::Jpeg).as_deref(),
            Some("photo.jpg")
        );
        assert_eq!(typed_name("report.doc", FileType::Doc), None);
        // A generic compound file agrees with any OLE2 name; no extension claims nothing.
        assert_eq!(typed_name("book.xls", FileType::Cfb), None);
        assert_eq!(typed_name("README", FileType::Text), None);
        assert_eq!(
            typed_name(".docm", FileType::Doc).as_deref(),
            Some("file.doc")
        );
    }
}
