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
use haetae_docscan::{Limits, Report};

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
    // Why there is no copy: "encrypted" (no copy without the password), "unsupported"
    // (no rebuild for the type or variant), "failed" (the conversion failed: a finding).
    let mut refusal: Option<&str> = None;
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
    let sidecar = free_name(dir, &format!("{file_name}.disarm.json"));
    let json = serde_json::json!({
        "source": path,
        "sha256": r.sha256,
        "detected_type": r.detected_type,
        "output": summary.output,
        // "same format" (a rebuild) or "text rendition" (the text only, as UTF-8).
        "kind": (summary.output.is_some()).then_some(&summary.kind),
        "refusal": refusal,
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
