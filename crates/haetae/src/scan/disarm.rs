//! `haetae scan --disarm OUTDIR`: a rebuilt copy of each scanned file without its active
//! content (`haetae_docscan::convert`), with a JSON sidecar of what was removed or why the
//! conversion failed. A plain-text rendition (OLE2 DOC/XLS/PPT, HWP 5.0) is written as
//! `<name>.txt` and its sidecar says `"kind": "text rendition"` (a rebuild says
//! `"same format"`). Conversion is itself a test: a failed one is reported like a finding
//! and makes the command exit 1.

use std::path::{Path, PathBuf};

use anyhow::Context;
use haetae_docscan::convert::{self, ConvertError};
use haetae_docscan::report_html::ConversionSummary;
use haetae_docscan::{FileType, Limits, Report};

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

/// Rebuilds one scanned file into `dir`; `None` for standard input and unreadable files.
///
/// # Errors
/// The output folder cannot be written.
pub(super) fn one(
    dir: &Path,
    r: &Report,
    limits: &Limits,
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
            Err(ConvertError::Unsupported(t)) => {
                summary.note = Some(match t {
                    // These have a text rendition; it answers Unsupported only for a
                    // protected (encrypted) document, a DOC from Word 6/95, an XLS before BIFF8.
                    FileType::Hwp => "the HWP document is password-, DRM- or \
                                      distribution-protected (its text is encrypted): no text \
                                      rendition; the original was not copied"
                        .to_owned(),
                    FileType::Doc => "the Word document is encrypted, or from Word 6/95 (whose \
                                      layout the rendition does not read): no text rendition; \
                                      the original was not copied"
                        .to_owned(),
                    FileType::Xls => "the workbook is encrypted (FilePass), or a BIFF5/7 \
                                      workbook from Excel 95 or older: no text rendition; the \
                                      original was not copied"
                        .to_owned(),
                    FileType::Ppt => "the presentation is encrypted: no text rendition; the \
                                      original was not copied"
                        .to_owned(),
                    _ => {
                        format!("no safe rebuild for {t:?} files yet; the original was not copied")
                    }
                });
            }
            Err(ConvertError::Failed(failures)) => {
                summary.failures = failures
                    .into_iter()
                    .map(|f| (f.code, f.location, f.message))
                    .collect();
            }
        },
    }
    let sidecar = free_name(dir, &format!("{file_name}.disarm.json"));
    let json = serde_json::json!({
        "source": path,
        "sha256": r.sha256,
        "detected_type": r.detected_type,
        "output": summary.output,
        // "same format" (a rebuild) or "text rendition" (the text only, as UTF-8).
        "kind": (summary.output.is_some()).then_some(&summary.kind),
        "removed": summary.removed.iter().map(|(what, location)| serde_json::json!({"what": what, "location": location})).collect::<Vec<_>>(),
        "failures": summary.failures.iter().map(|(code, location, message)| serde_json::json!({"code": code, "location": location, "message": message})).collect::<Vec<_>>(),
        "note": summary.note,
    });
    std::fs::write(&sidecar, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", sidecar.display()))?;
    for (code, location, message) in &summary.failures {
        eprintln!("haetae scan: {path}: conversion failed: {code} at {location}: {message}");
    }
    Ok(Some(summary))
}
