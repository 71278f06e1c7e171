//! RTF: group balance and depth, overlong control words and numeric parameters, `\bin`
//! lengths inside the file, and `\objdata` OLE 1.0 objects: their declared sizes, their class
//! (`Equation.3` CVE-2017-11882, `OLE2Link` CVE-2017-0199, `Package`), `\objupdate`. The
//! object data is scanned with the same engine.

use haetae_core::Severity;

use crate::bytes::{le32, slice, u8_at};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// The RTF format.
#[derive(Debug, Clone, Copy)]
pub struct Rtf;

impl Format for Rtf {
    fn name(&self) -> &'static str {
        "rtf"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        data.starts_with(b"{\\rt").then_some(FileType::Rtf)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Rtf
    }
}

const MAX_DEPTH: usize = 10_000;

fn verify(data: &[u8], ctx: &mut ScanContext) {
    let mut depth = 0usize;
    let mut p = 0usize;
    // Group depth at which an \objdata destination started, and its hex digits so far.
    let mut objdata: Option<(usize, usize, Vec<u8>)> = None;
    let mut objects = 0usize;
    let mut updates = false;
    while let Some(&b) = data.get(p) {
        if p & 0xFFFF == 0 && ctx.out_of_time() {
            return;
        }
        match b {
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    ctx.structure(
                        "RTF-DEPTH",
                        Severity::High,
                        Location::at(p),
                        format!("groups nest deeper than {MAX_DEPTH}"),
                    );
                    return;
                }
                p += 1;
            }
            b'}' => {
                if depth == 0 {
                    ctx.structure(
                        "RTF-GROUP-UNBALANCED",
                        Severity::High,
                        Location::at(p),
                        "a closing brace without an open group",
                    );
                    return;
                }
                if let Some((d, start, hex)) = objdata.take_if(|(d, _, _)| *d == depth) {
                    let _ = d;
                    objects += 1;
                    check_object(&hex, start, objects, ctx);
                }
                depth -= 1;
                p += 1;
            }
            b'\\' => {
                let start = p;
                p += 1;
                let word_start = p;
                while data.get(p).is_some_and(u8::is_ascii_alphabetic) {
                    p += 1;
                }
                let word = data.get(word_start..p).unwrap_or_default();
                if word.is_empty() {
                    p += 1; // a control symbol
                    continue;
                }
                if word.len() > 32 {
                    ctx.structure(
                        "RTF-CONTROL-WORD",
                        Severity::High,
                        Location::at(start),
                        format!("a control word of {} letters (at most 32)", word.len()),
                    );
                    return;
                }
                let num_start = p;
                if data.get(p) == Some(&b'-') {
                    p += 1;
                }
                while data.get(p).is_some_and(u8::is_ascii_digit) {
                    p += 1;
                }
                let digits = data.get(num_start..p).unwrap_or_default();
                if digits.len() > 11 {
                    ctx.structure(
                        "RTF-NUMBER",
                        Severity::High,
                        Location::at(start),
                        format!(
                            "a numeric parameter of {} characters (overflows 32 bits)",
                            digits.len()
                        ),
                    );
                    return;
                }
                if data.get(p) == Some(&b' ') {
                    p += 1;
                }
                let n: i64 = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                match word {
                    b"bin" => {
                        if n < 0 || p.saturating_add(n as usize) > data.len() {
                            ctx.structure(
                                "RTF-BIN-LENGTH",
                                Severity::High,
                                Location::at(start),
                                format!("\\bin{n} runs past the end of the file"),
                            );
                            return;
                        }
                        p += n as usize;
                    }
                    b"objdata" => objdata = Some((depth, start, Vec::new())),
                    b"objupdate" => updates = true,
                    _ => {}
                }
            }
            _ => {
                if let Some((_, _, hex)) = objdata.as_mut()
                    && b.is_ascii_hexdigit()
                    && hex.len() < 512 * 1024 * 1024
                {
                    hex.push(b);
                }
                p += 1;
            }
        }
    }
    if depth != 0 {
        ctx.structure(
            "RTF-GROUP-UNBALANCED",
            Severity::Medium,
            Location::at(data.len()),
            format!("{depth} groups are still open at the end of the file"),
        );
    }
    if updates && objects > 0 {
        ctx.active(
            "RTF-OBJUPDATE",
            Severity::Medium,
            Location::default(),
            "\\objupdate makes Word load the embedded object as soon as the file opens",
        );
    }
}

fn unhex(hex: &[u8]) -> Vec<u8> {
    let v = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    hex.chunks_exact(2)
        .map(|c| {
            (v(c.first().copied().unwrap_or(b'0')) << 4) | v(c.get(1).copied().unwrap_or(b'0'))
        })
        .collect()
}

/// An OLE 1.0 object (MS-OLEDS 2.2.4): version, format id, class name, topic, item, native
/// data size, data.
fn check_object(hex: &[u8], at: usize, n: usize, ctx: &mut ScanContext) {
    let obj = unhex(hex);
    let loc = || Location::at(at).with_part(format!("object {n}"));
    let Some(class_len) = le32(&obj, 8) else {
        return;
    };
    let class_len = class_len as usize;
    let Some(class) = slice(&obj, 12, class_len) else {
        ctx.structure(
            "RTF-OBJDATA-SIZE",
            Severity::High,
            loc(),
            format!("class name of {class_len} bytes runs past the object data"),
        );
        return;
    };
    let class =
        String::from_utf8_lossy(class.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
    let mut p = 12 + class_len;
    for _ in 0..2 {
        let len = le32(&obj, p).unwrap_or(0) as usize;
        p = p.saturating_add(4 + len);
    }
    let size = le32(&obj, p).map(|s| s as usize);
    let payload = size.and_then(|s| slice(&obj, p + 4, s));
    let lower = class.to_ascii_lowercase();
    if lower.starts_with("equation") {
        ctx.report(
            Finding::new(
                "RTF-EQUATION",
                Severity::High,
                FindingClass::ActiveContent,
                loc(),
                format!("an {class} object, the target of Equation Editor exploits"),
            )
            .cve(&["CVE-2017-11882", "CVE-2018-0802"]),
        );
    } else if lower == "ole2link" {
        ctx.report(
            Finding::new(
                "RTF-OLE2LINK",
                Severity::High,
                FindingClass::ActiveContent,
                loc(),
                "an OLE2Link object that fetches content from a URL moniker when opened",
            )
            .cve(&["CVE-2017-0199"]),
        );
    } else if lower == "package" {
        ctx.active(
            "RTF-PACKAGE",
            Severity::Medium,
            loc(),
            "a packaged file that runs when its icon is opened",
        );
    } else {
        ctx.active(
            "RTF-OBJECT",
            Severity::Low,
            loc(),
            format!("an embedded {class:?} object"),
        );
    }
    match (size, payload) {
        (Some(s), None) => ctx.structure(
            "RTF-OBJDATA-SIZE",
            Severity::High,
            loc(),
            format!("native data declares {s} bytes, more than the object holds"),
        ),
        (_, Some(data)) if u8_at(data, 0).is_some() => {
            ctx.scan_embedded(data, &format!("object {n} ({class})"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::findings_of;

    fn codes(data: &[u8]) -> Vec<String> {
        findings_of(data, "a.rtf")
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    fn object(class: &str, data: &[u8], declared: u32) -> String {
        let mut o = Vec::new();
        o.extend_from_slice(&0x0501u32.to_le_bytes());
        o.extend_from_slice(&2u32.to_le_bytes());
        o.extend_from_slice(&(class.len() as u32 + 1).to_le_bytes());
        o.extend_from_slice(class.as_bytes());
        o.push(0);
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&declared.to_le_bytes());
        o.extend_from_slice(data);
        o.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_plain_document_is_clean() {
        assert!(codes(b"{\\rtf1\\ansi {\\b bold} text\\par }").is_empty());
    }

    #[test]
    fn an_equation_object_is_reported() {
        let rtf = format!(
            "{{\\rtf1{{\\object\\objemb{{\\*\\objdata {}}}}}}}",
            object("Equation.3", b"abc", 3)
        );
        assert_eq!(codes(rtf.as_bytes()), ["RTF-EQUATION"]);
    }

    #[test]
    fn an_object_declaring_more_data_than_it_holds_is_reported() {
        let rtf = format!(
            "{{\\rtf1{{\\object{{\\*\\objdata {}}}}}}}",
            object("Package", b"abc", 999)
        );
        assert_eq!(codes(rtf.as_bytes()), ["RTF-PACKAGE", "RTF-OBJDATA-SIZE"]);
    }

    #[test]
    fn a_bin_past_the_end_is_reported() {
        assert_eq!(codes(b"{\\rtf1 \\bin99999 ab}"), ["RTF-BIN-LENGTH"]);
    }

    #[test]
    fn an_overlong_control_word_is_reported() {
        let rtf = format!("{{\\rtf1 \\{} }}", "a".repeat(40));
        assert_eq!(codes(rtf.as_bytes()), ["RTF-CONTROL-WORD"]);
    }

    #[test]
    fn an_extra_closing_brace_is_reported() {
        assert_eq!(codes(b"{\\rtf1 a}}"), ["RTF-GROUP-UNBALANCED"]);
    }
}
