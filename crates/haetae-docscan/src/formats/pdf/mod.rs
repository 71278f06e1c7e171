//! PDF: header, `startxref`/`xref`/trailer, `obj`/`endobj` and `stream`/`endstream` balance,
//! each stream's `/Length` against the bytes up to `endstream`, filter chains and the
//! decompression ratio of `FlateDecode` streams, object streams (whose hidden objects are
//! searched too), `/Colors` above 2^24 (CVE-2009-3459), and active content as findings:
//! `/JavaScript`, `/JS`, `/OpenAction`, `/AA`, `/Launch`, `/EmbeddedFile`, `/RichMedia`,
//! `/XFA`, `/JBIG2Decode`, and names hidden with `#xx` escapes. Embedded files are scanned
//! with the same engine.

use haetae_core::Severity;

use crate::bytes::{find, slice, tail};
use crate::container::inflate::{Framing, InflateError, inflate_partial};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

pub mod xref;

/// The PDF format.
#[derive(Debug, Clone, Copy)]
pub struct Pdf;

impl Format for Pdf {
    fn name(&self) -> &'static str {
        "pdf"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        find(
            data.get(..data.len().min(1024)).unwrap_or(data),
            b"%PDF-",
            0,
        )
        .map(|_| FileType::Pdf)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Pdf
    }
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b)
}

/// Names that mark active content: (name, code, severity, message).
const ACTIVE: &[(&[u8], &str, Severity, &str)] = &[
    (
        b"JavaScript",
        "PDF-JAVASCRIPT",
        Severity::Medium,
        "JavaScript",
    ),
    (b"JS", "PDF-JAVASCRIPT", Severity::Medium, "JavaScript"),
    (
        b"Launch",
        "PDF-LAUNCH",
        Severity::High,
        "a Launch action that starts a program",
    ),
    (
        b"OpenAction",
        "PDF-OPENACTION",
        Severity::Low,
        "an action run when the document opens",
    ),
    (
        b"AA",
        "PDF-AA",
        Severity::Low,
        "additional actions run on page or field events",
    ),
    (
        b"EmbeddedFile",
        "PDF-EMBEDDED-FILE",
        Severity::Medium,
        "an embedded file",
    ),
    (
        b"RichMedia",
        "PDF-RICHMEDIA",
        Severity::Medium,
        "rich media (Flash/video)",
    ),
    (b"XFA", "PDF-XFA", Severity::Medium, "an XFA form"),
    (
        b"JBIG2Decode",
        "PDF-JBIG2",
        Severity::Low,
        "JBIG2 image data, a frequent exploit target",
    ),
];

/// Looks at every `/Name` in `s`: active content, and names hidden by `#xx` escapes.
fn scan_names(
    s: &[u8],
    base: usize,
    where_: &str,
    seen: &mut Vec<&'static str>,
    ctx: &mut ScanContext,
) {
    let mut p = 0usize;
    while let Some(slash) = s.get(p..).and_then(|t| t.iter().position(|&b| b == b'/')) {
        let start = p + slash + 1;
        let mut end = start;
        while s.get(end).is_some_and(|&b| !is_delim(b)) {
            end += 1;
        }
        p = end.max(start);
        let raw = s.get(start..end).unwrap_or_default();
        if raw.is_empty() || raw.len() > 127 {
            continue;
        }
        let escaped = raw.contains(&b'#');
        let name: Vec<u8> = if escaped {
            decode_name(raw)
        } else {
            raw.to_vec()
        };
        if let Some((_, code, sev, what)) = ACTIVE.iter().find(|(n, ..)| *n == name.as_slice()) {
            let mut loc = Location::at(base + start - 1);
            if !where_.is_empty() {
                loc = loc.with_part(where_.to_owned());
            }
            if escaped {
                ctx.report(Finding::new(
                    "PDF-NAME-OBFUSCATED",
                    Severity::High,
                    FindingClass::ActiveContent,
                    loc.clone(),
                    format!(
                        "/{} is written with #xx escapes to hide /{}",
                        String::from_utf8_lossy(raw),
                        String::from_utf8_lossy(&name)
                    ),
                ));
            }
            if !seen.contains(code) {
                seen.push(code);
                ctx.active(code, *sev, loc, format!("the document holds {what}"));
            }
        }
        if name == b"Colors" {
            let num: Vec<u8> = tail(s, end)
                .iter()
                .skip_while(|b| b.is_ascii_whitespace())
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .take(20)
                .collect();
            let n: u64 = std::str::from_utf8(&num)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if n > 1 << 24 {
                ctx.report(
                    Finding::new(
                        "PDF-COLORS",
                        Severity::High,
                        FindingClass::Structure,
                        Location::at(base + start - 1),
                        format!("/Colors {n} (a predictor with more than 2^24 colours overflows readers)"),
                    )
                    .cve(&["CVE-2009-3459"]),
                );
            }
        }
    }
}

fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'#'
            && let Some(h) = slice(raw, i + 1, 2)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn number(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A classic cross-reference section at `off`: every entry is `oooooooooo ggggg n|f` and
/// two end-of-line bytes, generations stay below 65536, and in-use entries point to their
/// object's `N G obj`.
fn check_xref(data: &[u8], off: usize, ctx: &mut ScanContext) {
    let mut p = off + 4;
    let skip_ws = |p: &mut usize| {
        while data.get(*p).is_some_and(u8::is_ascii_whitespace) {
            *p += 1;
        }
    };
    let read_num = |p: &mut usize| {
        let start = *p;
        while data.get(*p).is_some_and(u8::is_ascii_digit) && *p - start < 12 {
            *p += 1;
        }
        number(data.get(start..*p).unwrap_or_default())
    };
    let (mut bad_offsets, mut checked) = (0usize, 0usize);
    let mut first_bad: Option<(u64, u64)> = None;
    loop {
        skip_ws(&mut p);
        if data.get(p..p + 7) == Some(b"trailer") || ctx.out_of_time() {
            break;
        }
        let (Some(first), _, Some(count)) = (read_num(&mut p), skip_ws(&mut p), read_num(&mut p))
        else {
            ctx.structure(
                "PDF-XREF-ENTRY",
                Severity::Medium,
                Location::at(p).with_part("xref"),
                "a cross-reference subsection header is not two numbers",
            );
            return;
        };
        skip_ws(&mut p);
        for i in 0..count.min(100_000) {
            let at = p + 20 * i as usize;
            let Some(e) = slice(data, at, 20) else {
                ctx.structure(
                    "PDF-XREF-ENTRY",
                    Severity::Medium,
                    Location::at(at).with_part(format!("xref entry {}", first + i)),
                    "the cross-reference table runs past the end of the file",
                );
                return;
            };
            let ok = e
                .get(..10)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                && e.get(10) == Some(&b' ')
                && e.get(11..16)
                    .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                && e.get(16) == Some(&b' ')
                && matches!(e.get(17), Some(b'n' | b'f'));
            let generation = number(e.get(11..16).unwrap_or_default()).unwrap_or(0);
            if !ok || generation > 65535 {
                ctx.structure(
                    "PDF-XREF-ENTRY",
                    Severity::Medium,
                    Location::at(at).with_part(format!("xref entry {}", first + i)),
                    format!(
                        "malformed cross-reference entry {:?}",
                        String::from_utf8_lossy(e)
                    ),
                );
                return;
            }
            if e.get(17) == Some(&b'n') {
                checked += 1;
                let o = number(e.get(..10).unwrap_or_default()).unwrap_or(0) as usize;
                let target = data.get(o..).unwrap_or_default();
                let target = target.get(..target.len().min(40)).unwrap_or_default();
                let want = format!("{} {generation} obj", first + i);
                let text = String::from_utf8_lossy(target);
                let words: Vec<&str> = text.split_ascii_whitespace().take(3).collect();
                if words.join(" ") != want && !text.trim_start().starts_with(&want) {
                    bad_offsets += 1;
                    first_bad.get_or_insert((first + i, o as u64));
                }
            }
        }
        p += 20 * count.min(100_000) as usize;
    }
    if let Some((obj, o)) = first_bad {
        ctx.structure(
            "PDF-XREF-OFFSET",
            Severity::Medium,
            Location::at(off).with_part("xref"),
            format!("{bad_offsets} of {checked} in-use entries point elsewhere than their object (first: object {obj} at {o})"),
        );
    }
}

/// The integer after `/Key` in a dictionary, if it is a direct number.
fn dict_int(dict: &[u8], key: &[u8]) -> Option<u64> {
    let mut p = 0;
    while let Some(at) = find(dict, key, p) {
        p = at + key.len();
        if dict.get(p).is_some_and(|&b| !is_delim(b)) {
            continue;
        }
        let rest = tail(dict, p);
        let digits: Vec<u8> = rest
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .take(20)
            .collect();
        let n: u64 = std::str::from_utf8(&digits).ok()?.parse().ok()?;
        // `12 0 R` is a reference, not a length.
        let after: Vec<u8> = rest
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .skip(digits.len())
            .copied()
            .take(8)
            .collect();
        let after = String::from_utf8_lossy(&after);
        let mut words = after.split_ascii_whitespace();
        if words
            .next()
            .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()))
            && words.next().is_some_and(|w| w.starts_with('R'))
        {
            return None;
        }
        return Some(n);
    }
    None
}

/// The filter names of a stream dictionary, in order.
pub(super) fn filters(dict: &[u8]) -> Vec<Vec<u8>> {
    let Some(at) = find(dict, b"/Filter", 0) else {
        return Vec::new();
    };
    let rest = tail(dict, at + 7);
    let rest = rest.get(..rest.len().min(400)).unwrap_or_default();
    let trimmed = rest.trim_ascii_start();
    let region: &[u8] = if trimmed.starts_with(b"[") {
        let end = trimmed
            .iter()
            .position(|&b| b == b']')
            .unwrap_or(trimmed.len());
        trimmed.get(1..end).unwrap_or_default()
    } else {
        let end = trimmed
            .iter()
            .skip(1)
            .position(|&b| b == b'/' || b == b'>')
            .map_or(trimmed.len(), |e| e + 1);
        trimmed.get(..end).unwrap_or_default()
    };
    region
        .split(|&b| b == b'/')
        .skip(1)
        .map(|n| decode_name(n.split(|&b| is_delim(b)).next().unwrap_or_default()))
        .filter(|n| !n.is_empty())
        .collect()
}

const KNOWN_FILTERS: &[&[u8]] = &[
    b"FlateDecode",
    b"Fl",
    b"LZWDecode",
    b"LZW",
    b"ASCIIHexDecode",
    b"AHx",
    b"ASCII85Decode",
    b"A85",
    b"RunLengthDecode",
    b"RL",
    b"CCITTFaxDecode",
    b"CCF",
    b"DCTDecode",
    b"DCT",
    b"JBIG2Decode",
    b"JPXDecode",
    b"Crypt",
];

#[allow(clippy::too_many_lines)]
fn verify(data: &[u8], ctx: &mut ScanContext) {
    let head = find(data, b"%PDF-", 0).unwrap_or(0);
    if head > 0 {
        ctx.structure(
            "PDF-HEADER",
            Severity::Low,
            Location::at(head),
            format!("{head} bytes precede the %PDF- header (a polyglot file)"),
        );
    }
    let last_kib = data.len().saturating_sub(1024);
    if find(data, b"%%EOF", last_kib).is_none() {
        ctx.structure(
            "PDF-EOF",
            Severity::Low,
            Location::at(data.len()),
            "no %%EOF marker near the end (a truncated file)",
        );
    }
    // startxref: the last one wins.
    let mut sx = None;
    let mut p = 0;
    while let Some(at) = find(data, b"startxref", p) {
        sx = Some(at);
        p = at + 9;
    }
    match sx {
        None => ctx.structure(
            "PDF-STARTXREF",
            Severity::Low,
            Location::at(data.len()),
            "no startxref: readers must rebuild the cross-reference table",
        ),
        Some(at) => {
            let digits: Vec<u8> = tail(data, at + 9)
                .iter()
                .skip_while(|b| b.is_ascii_whitespace())
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .take(20)
                .collect();
            let off: usize = std::str::from_utf8(&digits)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            let target = data.get(off..).unwrap_or_default();
            let points_at_xref = target.starts_with(b"xref")
                || target
                    .iter()
                    .take(32)
                    .position(|&b| b == b'o')
                    .is_some_and(|o| target.get(o..o + 3) == Some(b"obj"));
            if target.starts_with(b"xref") {
                check_xref(data, off, ctx);
            }
            if points_at_xref {
                let trailers = xref::check_chain(data, off, ctx);
                xref::check_page_tree(data, &trailers, ctx);
            }
            if !points_at_xref {
                ctx.structure(
                    "PDF-STARTXREF",
                    Severity::Medium,
                    Location::at(at),
                    format!(
                        "startxref points to offset {}, where there is no cross-reference section",
                        String::from_utf8_lossy(&digits)
                    ),
                );
            }
        }
    }
    let mut seen: Vec<&'static str> = Vec::new();
    scan_names(data, 0, "", &mut seen, ctx);
    if find(data, b"/Encrypt", 0).is_some() {
        ctx.note(
            "PDF-ENCRYPTED",
            Location::default(),
            "the document is encrypted: stream contents cannot be verified",
        );
    }
    // Objects and streams.
    let (mut objs, mut endobjs) = (0usize, 0usize);
    let mut p = 0;
    while let Some(at) = find(data, b"obj", p) {
        p = at + 3;
        let before = at
            .checked_sub(1)
            .and_then(|i| data.get(i))
            .copied()
            .unwrap_or(b' ');
        let after = data.get(at + 3).copied().unwrap_or(b' ');
        if !is_delim(after) {
            continue;
        }
        if before == b'd' && at >= 3 && data.get(at - 3..at) == Some(b"end") {
            endobjs += 1;
        } else if before.is_ascii_whitespace() {
            objs += 1;
            if !ctx.count_entry() {
                return;
            }
        }
    }
    if objs != endobjs {
        ctx.structure(
            "PDF-OBJ-BALANCE",
            Severity::Low,
            Location::default(),
            format!("{objs} obj keywords but {endobjs} endobj"),
        );
    }
    let encrypted = seen.is_empty() && find(data, b"/Encrypt", 0).is_some();
    let mut p = 0;
    let mut index = 0usize;
    while let Some(at) = find(data, b"stream", p) {
        p = at + 6;
        if ctx.out_of_time() {
            return;
        }
        if at >= 3 && data.get(at - 3..at) == Some(b"end") {
            continue;
        }
        let data_start = match (data.get(at + 6), data.get(at + 7)) {
            (Some(b'\r'), Some(b'\n')) => at + 8,
            (Some(b'\n' | b'\r'), _) => at + 7,
            _ => continue,
        };
        index += 1;
        // The dictionary: from the nearest preceding "obj" to the keyword.
        let dict_from = data.get(at.saturating_sub(4096)..at).and_then(|w| {
            let mut q = 0;
            let mut last = None;
            while let Some(o) = find(w, b"obj", q) {
                last = Some(o);
                q = o + 3;
            }
            last.map(|o| at.saturating_sub(4096) + o)
        });
        let dict = data
            .get(dict_from.unwrap_or(at.saturating_sub(512))..at)
            .unwrap_or_default();
        let Some(end) = find(data, b"endstream", data_start) else {
            ctx.structure(
                "PDF-STREAM-UNTERMINATED",
                Severity::Medium,
                Location::at(at).with_part(format!("stream {index}")),
                "a stream without endstream",
            );
            break;
        };
        let loc = || Location::at(at).with_part(format!("stream {index}"));
        let mut body = data.get(data_start..end).unwrap_or_default();
        if let Some(len) = dict_int(dict, b"/Length") {
            let declared_end = (data_start as u64).saturating_add(len);
            let gap = (end as u64).saturating_sub(declared_end);
            if declared_end > end as u64 || gap > 2 {
                ctx.structure(
                    "PDF-STREAM-LENGTH",
                    Severity::Low,
                    loc(),
                    format!(
                        "/Length {len} but {} bytes lie before endstream",
                        end - data_start
                    ),
                );
            } else {
                body = data.get(data_start..declared_end as usize).unwrap_or(body);
            }
        }
        p = end + 9;
        let chain = filters(dict);
        if chain.len() > 4 {
            ctx.structure(
                "PDF-FILTER-CHAIN",
                Severity::Medium,
                loc(),
                format!(
                    "{} filters chained on one stream (an evasion technique)",
                    chain.len()
                ),
            );
        }
        if let Some(unknown) = chain
            .iter()
            .find(|f| !KNOWN_FILTERS.contains(&f.as_slice()))
        {
            ctx.structure(
                "PDF-FILTER",
                Severity::Medium,
                loc(),
                format!("unknown filter /{}", String::from_utf8_lossy(unknown)),
            );
            continue;
        }
        let flate_first = chain
            .first()
            .is_some_and(|f| f == b"FlateDecode" || f == b"Fl");
        if !flate_first || encrypted {
            continue;
        }
        let cap = ctx.inflate_cap(body.len()) as u64;
        let (out, result) = inflate_partial(body, Framing::Zlib, cap);
        match result {
            Err(InflateError::OverCap { .. }) => {
                // Medium: blank pages and images legitimately compress this well.
                ctx.structure(
                    "PDF-RATIO",
                    Severity::Medium,
                    loc(),
                    format!(
                        "a {}-byte stream inflates past {cap} bytes (ratio above {})",
                        body.len(),
                        ctx.limits().max_ratio
                    ),
                );
                continue;
            }
            Err(InflateError::Corrupt { .. }) if out.is_empty() => {
                ctx.structure(
                    "PDF-FLATE",
                    Severity::Low,
                    loc(),
                    "FlateDecode data is broken from its first byte",
                );
                continue;
            }
            _ => {}
        }
        if chain.len() == 1 && find(dict, b"/ObjStm", 0).is_some() {
            scan_names(&out, at, &format!("object stream {index}"), &mut seen, ctx);
        } else if find(dict, b"/EmbeddedFile", 0).is_some() && chain.len() == 1 {
            ctx.scan_embedded(&out, &format!("embedded file (stream {index})"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::findings_of;

    fn pdf(body: &str) -> Vec<u8> {
        let mut s = format!("%PDF-1.4\n{body}\n");
        let xref = s.len();
        s.push_str(&format!(
            "xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 >>\nstartxref\n{xref}\n%%EOF\n"
        ));
        s.into_bytes()
    }

    fn codes(data: &[u8]) -> Vec<String> {
        findings_of(data, "a.pdf")
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    #[test]
    fn a_simple_document_is_clean() {
        let f = pdf(
            "1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj\n<< /Length 5 >>\nstream\nhello\nendstream\nendobj",
        );
        assert_eq!(codes(&f), Vec::<String>::new());
    }

    #[test]
    fn javascript_is_active_content() {
        let f = pdf("1 0 obj\n<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj");
        assert_eq!(codes(&f), ["PDF-OPENACTION", "PDF-JAVASCRIPT"]);
    }

    #[test]
    fn a_hex_escaped_name_is_obfuscation() {
        let f = pdf("1 0 obj\n<< /S /Java#53cript >>\nendobj");
        assert_eq!(codes(&f), ["PDF-NAME-OBFUSCATED", "PDF-JAVASCRIPT"]);
    }

    #[test]
    fn huge_colors_is_cve_2009_3459() {
        let f = pdf("1 0 obj\n<< /DecodeParms << /Predictor 12 /Colors 1073741838 >> >>\nendobj");
        assert_eq!(codes(&f), ["PDF-COLORS"]);
    }

    #[test]
    fn a_flate_bomb_is_reported() {
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 4 << 20], 9);
        let mut f = format!(
            "%PDF-1.4\n1 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
            packed.len()
        )
        .into_bytes();
        f.extend_from_slice(&packed);
        f.extend_from_slice(b"\nendstream\nendobj\nstartxref\n9\n%%EOF\n");
        assert_eq!(codes(&f), ["PDF-RATIO"]);
    }

    #[test]
    fn a_wrong_stream_length_is_reported() {
        let f = pdf("1 0 obj\n<< /Length 500 >>\nstream\nhello\nendstream\nendobj");
        assert_eq!(codes(&f), ["PDF-STREAM-LENGTH"]);
    }
}
