//! `upload-inspect`: every file uploaded to the services it is mapped to — each file part of
//! a `multipart/form-data` body, or a raw body of any non-form type — is verified with
//! `haetae-docscan` before the upstream sees it. `vulnerable` and `suspicious` files are
//! rejected, let through, or replaced by docscan's disarmed copy (rebuilt without macros,
//! scripts, embedded objects, external links) per policy; the event names the file, its
//! SHA-256 and the findings. A body longer than the buffer, or a multipart body that cannot be parsed, is
//! never passed on unscanned unless the policy says so.
//!
//! ```toml
//! [[policy.filters]]
//! id = "uploads"
//! kind = "upload-inspect"
//! budget_ms = 3000            # the scan runs inside the filter's time budget
//! failure = "fail-closed"     # a scan that cannot finish refuses the upload
//! config = { on_vulnerable = "reject", on_suspicious = "reject", max_body = 16777216 }
//! ```

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use haetae_core::event::FileInfo;
use haetae_core::{EventCategory, EventKind, FilterInstance, PolicySnapshot, Severity, Verdict};
use haetae_docscan::{Limits, Report, scan_bytes};
use http::StatusCode;
use serde::Deserialize;

use crate::filter::{
    Decision, FilterContext, FilterError, LocalResponse, Modification, PhaseResult, Phases, Reason,
    SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, typed_config};

/// The kind name in policies.
pub const KIND: &str = "upload-inspect";

/// The most file parts scanned in one request; a request with more is refused.
pub const MAX_FILES: usize = 32;

/// The most parts (files and fields) read from one multipart body.
const MAX_PARTS: usize = 1024;

/// The longest header block of one multipart part.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// The longest file name kept for events.
const MAX_NAME: usize = 255;

/// The most finding codes listed in one event.
const MAX_FINDINGS_IN_EVENT: usize = 32;

/// What to do with a file of a given verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    /// Refuse the whole request with 403 (the upstream never sees it).
    Reject,
    /// Let it through and write the event.
    Log,
    /// Replace the file by `haetae-docscan`'s disarmed copy (the same format rebuilt
    /// without active content; for DOC/XLS/PPT/HWP a text rendition) and let the request
    /// through; refuse it (403) when no clean copy can be made.
    Disarm,
}

/// What to do with a body that could not be scanned completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnscannedAction {
    /// Refuse the request (413 for a body over the buffer, 400 for a broken multipart).
    Reject,
    /// Let it through unscanned and write the event.
    Log,
}

/// `upload-inspect`'s configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadInspectConfig {
    /// For `vulnerable` files (broken structure that can exploit a reader, disguised
    /// executables).
    pub on_vulnerable: FileAction,
    /// For `suspicious` files (macros, scripts, external links; or a scan limit reached).
    pub on_suspicious: FileAction,
    /// For bodies longer than the buffer (`max_body`, capped by the gateway's
    /// `max_body_buffer`).
    pub on_oversize: UnscannedAction,
    /// For multipart bodies that cannot be parsed (no boundary, no closing delimiter).
    pub on_malformed: UnscannedAction,
    /// The most body bytes buffered and scanned.
    pub max_body: usize,
    /// Scan raw bodies (a non-form, non-JSON, non-text `Content-Type`, e.g. a `PUT` of a
    /// PDF) as one file.
    pub raw_bodies: bool,
    /// Write an event for clean files too.
    pub log_clean: bool,
    /// Time per file; by default four fifths of the instance's `budget_ms`. A file whose
    /// scan runs out of time is `suspicious`.
    pub scan_time_ms: Option<u64>,
}

impl Default for UploadInspectConfig {
    fn default() -> Self {
        UploadInspectConfig {
            on_vulnerable: FileAction::Reject,
            on_suspicious: FileAction::Log,
            on_oversize: UnscannedAction::Reject,
            on_malformed: UnscannedAction::Reject,
            max_body: 16 << 20,
            raw_bodies: true,
            log_clean: false,
            scan_time_ms: None,
        }
    }
}

/// The `upload-inspect` filter.
#[derive(Debug)]
pub struct UploadInspectFilter {
    cfg: UploadInspectConfig,
    limits: Limits,
}

/// Builds the filter from its instance (whose `budget_ms` bounds the scan time).
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: UploadInspectConfig = typed_config(instance)?;
    Ok(Arc::new(UploadInspectFilter::new(cfg, instance.budget_ms)?))
}

impl UploadInspectFilter {
    /// The filter with this configuration inside a phase budget of `budget_ms`, or every
    /// problem with it.
    pub fn new(
        cfg: UploadInspectConfig,
        budget_ms: u64,
    ) -> Result<UploadInspectFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let room = budget_ms.saturating_mul(4) / 5;
        let scan_ms = cfg.scan_time_ms.unwrap_or(room);
        if scan_ms > room {
            problems.push(ConfigProblem::new(
                "config.scan_time_ms",
                format!(
                    "{scan_ms} ms does not fit in the instance's budget_ms of {budget_ms} \
                     (at most four fifths of it, {room} ms); raise budget_ms"
                ),
            ));
        }
        if cfg.max_body == 0 {
            problems.push(ConfigProblem::new(
                "config.max_body",
                "0 bytes leaves nothing to scan; use e.g. 16777216 (16 MiB)",
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let limits = Limits {
            time: Duration::from_millis(scan_ms.max(1)),
            ..Limits::default()
        };
        Ok(UploadInspectFilter { cfg, limits })
    }
}

/// One file found in a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field's name (`None` for a raw body).
    pub field: Option<String>,
    /// The file name the client gave, if any, cleaned for logs.
    pub name: Option<String>,
    /// Where the content is in the body.
    pub range: Range<usize>,
    /// Where the part's header lines are in a multipart body (each ending in CRLF; empty
    /// for a raw body).
    pub headers: Range<usize>,
}

/// Why a body's files could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The `Content-Type` has no usable `boundary` parameter.
    #[error("multipart body without a valid boundary parameter")]
    NoBoundary,
    /// No opening delimiter.
    #[error("multipart body without an opening delimiter")]
    NoOpening,
    /// A part's headers did not end within the limit.
    #[error("part {0}: headers not terminated within {MAX_PART_HEADERS} bytes")]
    PartHeaders(usize),
    /// A part is not followed by a delimiter.
    #[error("part {0}: no closing delimiter")]
    Unterminated(usize),
    /// More parts than the gateway reads.
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// The `boundary` parameter of a `multipart/*` content type, if it is valid (RFC 2046:
/// 1 to 70 characters).
#[must_use]
pub fn multipart_boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (1..=70).contains(&v.len()).then_some(v)
    })
}

/// The file parts of a `multipart/form-data` body: parts whose `Content-Disposition` has
/// a `filename` parameter. Bounded: at most [`MAX_PARTS`] parts are read.
///
/// # Errors
/// When the body does not follow the multipart syntax (see [`MultipartError`]).
pub fn multipart_files(body: &[u8], boundary: &str) -> Result<Vec<UploadedFile>, MultipartError> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let finder = regex::bytes::Regex::new(&regex::escape(&delimiter))
        .map_err(|_| MultipartError::NoBoundary)?;
    // The opening delimiter is at the start or after a CRLF ending the preamble.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        finder
            .find(body)
            .map(|m| m.end())
            .ok_or(MultipartError::NoOpening)?
    };
    let mut files = Vec::new();
    let mut index = 0;
    loop {
        if index == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(files); // the closing delimiter; the epilogue is ignored
        }
        // Transport padding (spaces, tabs) then CRLF.
        let pad = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if rest.get(pad..pad + 2) != Some(b"\r\n") {
            return Err(MultipartError::Unterminated(index));
        }
        let headers_start = pos + pad + 2;
        let window_end = body.len().min(headers_start + MAX_PART_HEADERS);
        let window = body.get(headers_start..window_end).unwrap_or_default();
        let headers_len = if window.starts_with(b"\r\n") {
            0
        } else {
            window
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 2)
                .ok_or(MultipartError::PartHeaders(index))?
        };
        let headers = body
            .get(headers_start..headers_start + headers_len)
            .unwrap_or_default();
        let content_start = headers_start + headers_len + 2;
        let tail = body.get(content_start..).unwrap_or_default();
        let m = finder
            .find(tail)
            .ok_or(MultipartError::Unterminated(index))?;
        let content = content_start..content_start + m.start();
        if let Some((field, name)) = file_disposition(headers) {
            files.push(UploadedFile {
                field,
                name: Some(name),
                range: content,
                headers: headers_start..headers_start + headers_len,
            });
        }
        pos = content_start + m.end();
        index += 1;
    }
}

/// `(field name, file name)` from a part's `Content-Disposition`, when it names a file.
fn file_disposition(headers: &[u8]) -> Option<(Option<String>, String)> {
    let text = String::from_utf8_lossy(headers);
    let line = text.split("\r\n").find(|l| {
        l.get(..20)
            .is_some_and(|p| p.eq_ignore_ascii_case("content-disposition:"))
    })?;
    let value = line.get(20..)?;
    let field = disposition_param(value, "name");
    let file = disposition_param(value, "filename")?;
    Some((field, clean_name(&file)))
}

/// A parameter of a `Content-Disposition` value, quoted or not.
fn disposition_param(value: &str, name: &str) -> Option<String> {
    let mut rest = value;
    while let Some(i) = rest.find(';') {
        rest = rest.get(i + 1..)?.trim_start();
        let (k, after) = rest.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let after = after.trim_start();
        return Some(if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            q.get(..end)?.to_owned()
        } else {
            after
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
    }
    None
}

/// A file name fit for an event: the last path component, no control characters, at most
/// [`MAX_NAME`] characters.
#[must_use]
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    last.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect()
}

/// Whether a raw body of this content type is an upload (not a form, JSON or text).
fn is_raw_upload(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    !(essence.is_empty()
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence.starts_with("text/")
        || essence.starts_with("multipart/"))
}

const REFUSED_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>파일 업로드 거부</title></head>\n<body><h1>업로드한 파일이 보안 검사를 통과하지 못했습니다</h1><p>The uploaded file did not pass the security check and was not accepted.</p></body></html>\n";

impl UploadInspectFilter {
    fn refuse(status: StatusCode, reason: Reason) -> Decision {
        Decision::Respond(LocalResponse::html(status, REFUSED_HTML), reason)
    }

    fn unscanned(&self, action: UnscannedAction, status: StatusCode, reason: Reason) -> Decision {
        match action {
            UnscannedAction::Reject => Self::refuse(status, reason),
            UnscannedAction::Log => Decision::Continue,
        }
    }

    fn file_event(
        ctx: &FilterContext<'_>,
        file: &UploadedFile,
        report: &Report,
        action: &str,
    ) -> haetae_core::Event {
        let severity = match report.verdict {
            Verdict::Vulnerable => Severity::High,
            Verdict::Suspicious => Severity::Medium,
            Verdict::Clean => Severity::Info,
        };
        let codes: Vec<&str> = report
            .findings
            .iter()
            .take(MAX_FINDINGS_IN_EVENT)
            .map(|f| f.code.as_str())
            .collect();
        let mut event = ctx
            .event("upload-inspect.file")
            .category(EventCategory::File)
            .kind(if report.verdict == Verdict::Clean {
                EventKind::Event
            } else {
                EventKind::Alert
            })
            .severity(severity)
            .file(FileInfo {
                name: file.name.clone(),
                size: Some(report.size),
                sha256: Some(report.sha256.clone()),
            })
            .label("verdict", report.verdict.as_str())
            .label("detected_type", format!("{:?}", report.detected_type))
            .label("action", action)
            .label("findings", codes.join(","));
        if let Some(field) = &file.field {
            event = event.label("field", field.chars().take(MAX_NAME).collect::<String>());
        }
        if let Some(first) = report.findings.first() {
            event = event.message(first.message.chars().take(512).collect::<String>());
        }
        event
    }
}

#[async_trait::async_trait]
impl SecurityFilter for UploadInspectFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_body: Some(self.cfg.max_body),
            ..Phases::default()
        }
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let Some(body) = ctx.request.body() else {
            return Ok(Decision::Continue);
        };
        if body.bytes.is_empty() {
            return Ok(Decision::Continue);
        }
        let content_type = ctx.request.header("content-type").unwrap_or_default();
        let is_multipart = content_type
            .get(..19)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/form-data"));
        let raw = !is_multipart && self.cfg.raw_bodies && is_raw_upload(content_type);
        if !is_multipart && !raw {
            return Ok(Decision::Continue);
        }
        if !body.complete {
            let reason = Reason::new(
                "upload-too-large",
                Severity::Medium,
                format!(
                    "upload body longer than the {} bytes that can be scanned",
                    body.bytes.len()
                ),
            );
            ctx.emit(
                ctx.event("upload-inspect.unscanned")
                    .category(EventCategory::File)
                    .kind(EventKind::Alert)
                    .severity(Severity::Medium)
                    .rule("upload-too-large")
                    .message(reason.message.clone()),
            );
            return Ok(self.unscanned(self.cfg.on_oversize, StatusCode::PAYLOAD_TOO_LARGE, reason));
        }
        let bytes: Bytes = body.bytes.clone();
        let files = if is_multipart {
            let parsed = multipart_boundary(content_type)
                .ok_or(MultipartError::NoBoundary)
                .and_then(|b| multipart_files(&bytes, b));
            match parsed {
                Ok(files) => files,
                Err(e) => {
                    let reason = Reason::new(
                        "upload-malformed",
                        Severity::Medium,
                        format!("multipart upload could not be parsed: {e}"),
                    );
                    ctx.emit(
                        ctx.event("upload-inspect.unscanned")
                            .category(EventCategory::File)
                            .kind(EventKind::Alert)
                            .severity(Severity::Medium)
                            .rule("upload-malformed")
                            .message(reason.message.clone()),
                    );
                    return Ok(self.unscanned(
                        self.cfg.on_malformed,
                        StatusCode::BAD_REQUEST,
                        reason,
                    ));
                }
            }
        } else {
            let name = ctx
                .request
                .header("content-disposition")
                .and_then(|v| disposition_param(v, "filename"))
                .map(|n| clean_name(&n));
            vec![UploadedFile {
                field: None,
                name,
                range: 0..bytes.len(),
                headers: 0..0,
            }]
        };
        if files.is_empty() {
            return Ok(Decision::Continue);
        }
        if files.len() > MAX_FILES {
            return Ok(Self::refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                Reason::new(
                    "upload-too-many-files",
                    Severity::Medium,
                    format!("{} files in one request; at most {MAX_FILES}", files.len()),
                ),
            ));
        }
        let limits = self.limits.clone();
        let to_scan: Vec<(Bytes, Option<String>)> = files
            .iter()
            .map(|f| (bytes.slice(f.range.clone()), f.name.clone()))
            .collect();
        // The verifiers are CPU-bound: run them off the async workers. Each scan is bounded
        // by `limits`, so the blocking task ends even when the phase budget cut us off.
        let reports = tokio::task::spawn_blocking(move || {
            to_scan
                .iter()
                .map(|(data, name)| scan_bytes(data, name.as_deref(), &limits))
                .collect::<Vec<Report>>()
        })
        .await
        .map_err(|e| FilterError::new(format!("the document scan did not finish: {e}")))?;

        let actions: Vec<Option<FileAction>> = reports
            .iter()
            .map(|report| match report.verdict {
                Verdict::Vulnerable => Some(self.cfg.on_vulnerable),
                Verdict::Suspicious => Some(self.cfg.on_suspicious),
                Verdict::Clean => None,
            })
            .collect();
        let disarmed = if actions.contains(&Some(FileAction::Disarm))
            && !actions.contains(&Some(FileAction::Reject))
        {
            let jobs: Vec<Option<(Bytes, haetae_docscan::FileType)>> = files
                .iter()
                .zip(&reports)
                .zip(&actions)
                .map(|((f, r), a)| {
                    (*a == Some(FileAction::Disarm))
                        .then(|| (bytes.slice(f.range.clone()), r.detected_type))
                })
                .collect();
            let limits = self.limits.clone();
            tokio::task::spawn_blocking(move || {
                jobs.into_iter()
                    .map(|job| {
                        job.map(|(data, file_type)| disarm_checked(&data, file_type, &limits))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| FilterError::new(format!("the disarm did not finish: {e}")))?
        } else {
            Vec::new()
        };

        let mut refusal: Option<Reason> = None;
        for (i, (file, report)) in files.iter().zip(&reports).enumerate() {
            let action = actions[i];
            let copy = disarmed.get(i).and_then(Option::as_ref);
            let word = match (action, copy) {
                (Some(FileAction::Disarm), Some(Ok(_))) => "disarm",
                (Some(FileAction::Reject | FileAction::Disarm), _) => "reject",
                _ => "pass",
            };
            let rejected = word == "reject";
            if action.is_some() || self.cfg.log_clean {
                let mut event = Self::file_event(ctx, file, report, word);
                match copy {
                    Some(Ok(d)) => {
                        event = event
                            .label("removed", d.removed.len().to_string())
                            .label("disarmed_type", format!("{:?}", d.file_type))
                            .label("disarmed_size", d.bytes.len().to_string());
                    }
                    Some(Err(why)) => {
                        event =
                            event.label("disarm_error", why.chars().take(512).collect::<String>());
                    }
                    None => {}
                }
                ctx.emit(event);
            }
            if let (true, Some(Err(why)), None) = (rejected, copy, &refusal) {
                refusal = Some(Reason::new(
                    "upload-disarm-failed",
                    Severity::High,
                    format!(
                        "{} file {:?} (sha256 {}) could not be disarmed: {why}",
                        report.verdict.as_str(),
                        file.name.as_deref().unwrap_or("(unnamed)"),
                        report.sha256,
                    ),
                ));
            }
            if rejected && refusal.is_none() {
                let verdict = report.verdict.as_str();
                refusal = Some(Reason::new(
                    format!("upload-{verdict}"),
                    if report.verdict == Verdict::Vulnerable {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    format!(
                        "{verdict} file {:?} (sha256 {}): {}",
                        file.name.as_deref().unwrap_or("(unnamed)"),
                        report.sha256,
                        report
                            .findings
                            .iter()
                            .take(8)
                            .map(|f| f.code.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                ));
            }
        }
        if let Some(reason) = refusal {
            return Ok(Self::refuse(StatusCode::FORBIDDEN, reason));
        }
        if disarmed.iter().all(Option::is_none) {
            return Ok(Decision::Continue);
        }
        let copies: Vec<Option<&haetae_docscan::convert::Disarmed>> = disarmed
            .iter()
            .map(|d| d.as_ref().and_then(|r| r.as_ref().ok()))
            .collect();
        let mut mods = Vec::new();
        if is_multipart {
            let types: Vec<haetae_docscan::FileType> =
                reports.iter().map(|r| r.detected_type).collect();
            mods.push(Modification::ReplaceBody(replace_parts(
                &bytes, &files, &types, &copies,
            )));
        } else if let Some(Some(copy)) = copies.first() {
            if copy.file_type != reports[0].detected_type {
                // A text rendition: say so in the headers the application reads.
                mods.push(Modification::SetHeader(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                ));
                if let Some(value) = files[0].name.as_deref().and_then(|n| {
                    http::HeaderValue::try_from(format!(
                        "attachment; filename=\"{}.txt\"",
                        quoted(n)
                    ))
                    .ok()
                }) {
                    mods.push(Modification::SetHeader(
                        http::header::CONTENT_DISPOSITION,
                        value,
                    ));
                }
            }
            mods.push(Modification::ReplaceBody(Bytes::from(copy.bytes.clone())));
        }
        Ok(Decision::Modify(mods))
    }
}

/// A disarmed copy of `data`, checked: the copy must scan `clean`, or it is no safer than
/// the original. The error says why no copy is offered.
fn disarm_checked(
    data: &[u8],
    file_type: haetae_docscan::FileType,
    limits: &Limits,
) -> Result<haetae_docscan::convert::Disarmed, String> {
    let copy =
        haetae_docscan::convert::disarm(data, file_type, limits).map_err(|e| e.to_string())?;
    let check = scan_bytes(&copy.bytes, None, limits);
    if check.verdict == Verdict::Clean {
        Ok(copy)
    } else {
        Err(format!(
            "the rebuilt copy is still {} ({})",
            check.verdict.as_str(),
            check
                .findings
                .iter()
                .take(4)
                .map(|f| f.code.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

/// `name` fit inside a quoted header parameter (no quotes, backslashes or non-ASCII).
fn quoted(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !c.is_ascii() || c.is_ascii_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The multipart `body` with each file that has a copy replaced by it. A copy of another
/// type (a text rendition) also gets new part headers naming it `<name>.txt`, `text/plain`.
fn replace_parts(
    body: &[u8],
    files: &[UploadedFile],
    types: &[haetae_docscan::FileType],
    copies: &[Option<&haetae_docscan::convert::Disarmed>],
) -> Bytes {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for ((file, original_type), copy) in files.iter().zip(types).zip(copies) {
        let Some(copy) = copy else { continue };
        if copy.file_type == *original_type {
            out.extend_from_slice(body.get(at..file.range.start).unwrap_or_default());
        } else {
            out.extend_from_slice(body.get(at..file.headers.start).unwrap_or_default());
            let field = quoted(file.field.as_deref().unwrap_or("file"));
            let name = quoted(file.name.as_deref().unwrap_or("file"));
            out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}.txt\"\r\n\
                     Content-Type: text/plain; charset=utf-8\r\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(
                body.get(file.headers.end..file.range.start)
                    .unwrap_or_default(),
            );
        }
        out.extend_from_slice(&copy.bytes);
        at = file.range.end;
    }
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"memo\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"C:\\\\docs\\\\a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1\r\n--XyZ--\r\n";

    #[test]
    fn file_parts_are_found_with_their_field_and_clean_name() {
        let files = multipart_files(BODY, "XyZ").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].field.as_deref(), Some("doc"));
        assert_eq!(files[0].name.as_deref(), Some("a.pdf"));
        assert_eq!(&BODY[files[0].range.clone()], b"%PDF-1");
    }

    #[test]
    fn a_body_without_the_closing_delimiter_is_malformed() {
        let cut = &BODY[..BODY.len() - 12];
        assert_eq!(
            multipart_files(cut, "XyZ"),
            Err(MultipartError::Unterminated(1))
        );
        assert_eq!(
            multipart_files(b"no delimiter", "XyZ"),
            Err(MultipartError::NoOpening)
        );
    }

    #[test]
    fn the_boundary_is_read_quoted_or_not_and_must_be_short() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(
            multipart_boundary("multipart/form-data; charset=utf-8; BOUNDARY=x"),
            Some("x")
        );
        assert_eq!(
            multipart_boundary(&format!("multipart/form-data; boundary={}", "b".repeat(71))),
            None
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
    }

    #[test]
    fn no_byte_string_makes_the_parser_panic() {
        // Every prefix of a valid body, and a few hostile shapes.
        for n in 0..=BODY.len() {
            let _ = multipart_files(&BODY[..n], "XyZ");
        }
        let _ = multipart_files(b"--XyZ", "XyZ");
        let _ = multipart_files(b"--XyZ  \r\n", "XyZ");
        let _ = multipart_files(b"--XyZ\r\n\r\n\r\n--XyZ--", "XyZ");
        let many = "--b\r\n\r\nx\r\n".repeat(MAX_PARTS + 1);
        assert_eq!(
            multipart_files(many.as_bytes(), "b"),
            Err(MultipartError::TooManyParts)
        );
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/pass\nwd"), "passwd");
        assert_eq!(clean_name(&"x".repeat(300)).len(), MAX_NAME);
    }

    #[test]
    fn the_scan_time_must_fit_in_the_budget() {
        let err = UploadInspectFilter::new(
            UploadInspectConfig {
                scan_time_ms: Some(1000),
                ..UploadInspectConfig::default()
            },
            50,
        )
        .unwrap_err();
        assert_eq!(err[0].path, "config.scan_time_ms");
        let f = UploadInspectFilter::new(UploadInspectConfig::default(), 3000).unwrap();
        assert_eq!(f.limits.time, Duration::from_millis(2400));
    }

    #[test]
    fn only_non_form_bodies_are_raw_uploads() {
        assert!(is_raw_upload("application/pdf"));
        assert!(is_raw_upload("application/octet-stream"));
        assert!(!is_raw_upload("application/json; charset=utf-8"));
        assert!(!is_raw_upload("text/plain"));
        assert!(!is_raw_upload(""));
    }
}
