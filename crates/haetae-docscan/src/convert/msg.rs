//! Outlook messages (`.msg`, MS-OXMSG) to a plain-text rendition: the headers a reader
//! looks at (subject, sender, recipients, date), the names of the attachments, and the
//! plain-text body. Attachments are named, never carried: their data streams, embedded
//! messages and OLE objects are listed in `removed`, as are the HTML and compressed-RTF
//! bodies (which can hold scripts, remote images and objects) when a plain body exists,
//! and every other stream.
//!
//! A message is a compound file whose properties are streams named
//! `__substg1.0_IIIITTTT` (property id, type: `001F` UTF-16LE, `001E` 8-bit in the
//! message's code page, `0102` binary) and, for fixed-size values, 16-byte entries of
//! `__properties_version1.0` (after a 32-byte header at the root, 8 bytes in a recipient
//! or attachment storage). Recipients are `__recip_version1.0_#N` storages (display name
//! 0x3001, SMTP address 0x39FE or e-mail address 0x3003, type 0x0C15: to/cc/bcc), and
//! attachments `__attach_version1.0_#N` (long file name 0x3707, file name 0x3704, display
//! name 0x3001). 8-bit strings are decoded as the message code page (0x3FFD) says:
//! UTF-8 (65001), CP1251 or CP1252; any other code page is read as CP1252 and `removed`
//! says so.
//!
//! A message without a plain-text body (HTML or RTF only) gives its headers and the note
//! that the body was not carried. Failures are `CONVERT-MSG-*`: the compound file
//! (`-CFB`), a property stream that cannot be read (`-STREAM`), the text over the budget
//! (`-SIZE`).

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size};
use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le32, le64};
use crate::container::cfb::DirEntry;
use crate::container::cfb::{Cfb, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-MSG";
const SUBJECT: u16 = 0x0037;
const SENDER_NAME: u16 = 0x0C1A;
const SENDER_EMAIL: u16 = 0x0C1F;
const SENDER_SMTP: u16 = 0x5D01;
const DISPLAY_TO: u16 = 0x0E04;
const DISPLAY_CC: u16 = 0x0E03;
const BODY: u16 = 0x1000;
const RTF_COMPRESSED: u16 = 0x1009;
const HTML: u16 = 0x1013;
const CLIENT_SUBMIT_TIME: u16 = 0x0039;
const DELIVERY_TIME: u16 = 0x0E06;
const MESSAGE_CODEPAGE: u16 = 0x3FFD;
const DISPLAY_NAME: u16 = 0x3001;
const EMAIL_ADDRESS: u16 = 0x3003;
const SMTP_ADDRESS: u16 = 0x39FE;
const RECIPIENT_TYPE: u16 = 0x0C15;
const ATTACH_FILENAME: u16 = 0x3704;
const ATTACH_LONG_FILENAME: u16 = 0x3707;
const PT_SYSTIME: u16 = 0x0040;
const PT_LONG: u16 = 0x0003;
/// Most recipients and attachments named one by one; the rest are counted.
const MAX_LISTED: usize = 500;

/// The streams read so far, and how 8-bit strings decode.
struct Reader<'a, 'l> {
    data: &'a [u8],
    cfb: &'a Cfb,
    ctx: ScanContext<'l>,
    codepage: u32,
    read: Vec<String>,
}

impl Reader<'_, '_> {
    /// The string property `id` of the storage `base` (`""` the message itself), from
    /// its UTF-16 or its 8-bit stream; trailing NULs dropped.
    fn string(&mut self, base: &str, id: u16) -> Result<Option<String>, ConvertError> {
        for kind in ["001F", "001E"] {
            let path = format!("{base}__substg1.0_{id:04X}{kind}");
            let Some(bytes) = rendition::stream(self.data, self.cfb, &path, &mut self.ctx, PREFIX)?
            else {
                continue;
            };
            self.read.push(path);
            let mut s = String::new();
            if kind == "001F" {
                rendition::push_utf16(&mut s, rendition::utf16_units(&bytes));
            } else {
                s = rendition::decode_8bit(&bytes, self.codepage);
            }
            let s = s.trim_end_matches('\0').to_owned();
            return Ok(Some(s));
        }
        Ok(None)
    }

    /// The fixed-size property entries of the storage `base` (`header` bytes before them):
    /// (id, type, 8-byte value).
    fn fixed(&mut self, base: &str, header: usize) -> Result<Vec<(u16, u16, u64)>, ConvertError> {
        let path = format!("{base}__properties_version1.0");
        let Some(bytes) = rendition::stream(self.data, self.cfb, &path, &mut self.ctx, PREFIX)?
        else {
            return Ok(Vec::new());
        };
        self.read.push(path);
        let mut out = Vec::new();
        let mut pos = header;
        while let (Some(tag), Some(value)) = (le32(&bytes, pos), le64(&bytes, pos + 8)) {
            let kind = u16::try_from(tag & 0xFFFF).unwrap_or(0);
            let id = u16::try_from(tag >> 16).unwrap_or(0);
            out.push((id, kind, value));
            pos += 16;
        }
        Ok(out)
    }
}

/// Header values on one line: controls (line breaks included) become spaces.
fn one_line(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A FILETIME (100 ns since 1601) as `YYYY-MM-DD HH:MM:SS UTC`, when it is a real date.
fn filetime(v: u64) -> Option<String> {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = i64::try_from(v / 10_000_000).ok()? - EPOCH_DIFF;
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The text rendition of an Outlook message.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let mut r = Reader {
        data,
        cfb: &cfb,
        ctx,
        codepage: 1252,
        read: Vec::new(),
    };
    let props = r.fixed("", 32)?;
    let value = |id: u16, kind: u16| props.iter().find(|p| p.0 == id && p.1 == kind).map(|p| p.2);
    if let Some(cp) = value(MESSAGE_CODEPAGE, PT_LONG) {
        r.codepage = u32::try_from(cp & 0xFFFF_FFFF).unwrap_or(1252);
    }
    let date = value(CLIENT_SUBMIT_TIME, PT_SYSTIME)
        .or_else(|| value(DELIVERY_TIME, PT_SYSTIME))
        .and_then(filetime);
    let mut text = String::new();
    let mut header = |name: &str, v: &str| {
        let v = one_line(v);
        if !v.is_empty() {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(&v);
            text.push('\n');
        }
    };
    let subject = r.string("", SUBJECT)?.unwrap_or_default();
    header("Subject", &subject);
    let name = r.string("", SENDER_NAME)?.unwrap_or_default();
    let email = match r.string("", SENDER_SMTP)? {
        Some(e) if !e.is_empty() => e,
        _ => r.string("", SENDER_EMAIL)?.unwrap_or_default(),
    };
    let from = match (one_line(&name), one_line(&email)) {
        (n, e) if e.is_empty() || n == e => n,
        (n, e) if n.is_empty() => e,
        (n, e) => format!("{n} <{e}>"),
    };
    header("From", &from);
    // Recipients: from their storages, else the display lists.
    let (mut to, mut cc, mut bcc) = (Vec::new(), Vec::new(), Vec::new());
    let storages = |prefix: &str| -> Vec<String> {
        cfb.entries
            .iter()
            .filter(|e| e.reachable && e.kind == EntryKind::Storage)
            .filter(|e| !e.path.contains('/') && e.path.starts_with(prefix))
            .map(|e| format!("{}/", e.path))
            .collect()
    };
    for base in storages("__recip_version1.0_#") {
        let name = r.string(&base, DISPLAY_NAME)?.unwrap_or_default();
        let address = match r.string(&base, SMTP_ADDRESS)? {
            Some(a) if !a.is_empty() => a,
            _ => r.string(&base, EMAIL_ADDRESS)?.unwrap_or_default(),
        };
        let kind = r
            .fixed(&base, 8)?
            .iter()
            .find(|p| p.0 == RECIPIENT_TYPE && p.1 == PT_LONG)
            .map_or(1, |p| p.2 & 0xFF);
        let who = match (one_line(&name), one_line(&address)) {
            (n, a) if a.is_empty() || n == a => n,
            (n, a) if n.is_empty() => a,
            (n, a) => format!("{n} <{a}>"),
        };
        if who.is_empty() {
            continue;
        }
        match kind {
            2 => cc.push(who),
            3 => bcc.push(who),
            _ => to.push(who),
        }
    }
    if to.is_empty() {
        to.extend(r.string("", DISPLAY_TO)?);
    }
    if cc.is_empty() {
        cc.extend(r.string("", DISPLAY_CC)?);
    }
    header("To", &to.join(", "));
    header("Cc", &cc.join(", "));
    header("Bcc", &bcc.join(", "));
    if let Some(d) = &date {
        header("Date", d);
    }
    let mut attachments = Vec::new();
    for base in storages("__attach_version1.0_#") {
        let mut name = String::new();
        for id in [ATTACH_LONG_FILENAME, ATTACH_FILENAME, DISPLAY_NAME] {
            let n = one_line(&r.string(&base, id)?.unwrap_or_default());
            if !n.is_empty() {
                name = n;
                break;
            }
        }
        if name.is_empty() {
            name = format!("({})", base.trim_end_matches('/'));
        }
        attachments.push(name);
    }
    if !attachments.is_empty() {
        let shown: Vec<&str> = attachments
            .iter()
            .take(MAX_LISTED)
            .map(String::as_str)
            .collect();
        let more = attachments.len().saturating_sub(MAX_LISTED);
        let mut line = shown.join(", ");
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
        text.push_str("Attachments (named, not carried): ");
        text.push_str(&line);
        text.push('\n');
    }
    let body = r.string("", BODY)?;
    let mut removed = Vec::new();
    text.push('\n');
    match body {
        Some(b) => {
            for line in b.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
                text.extend(line.chars().filter(|&c| c == '\t' || !c.is_control()));
                text.push('\n');
            }
        }
        None => {
            let other = [HTML, RTF_COMPRESSED]
                .iter()
                .any(|id| cfb.find(&format!("__substg1.0_{id:04X}0102")).is_some());
            if other {
                removed.push(Removed {
                    what: "body: the message has only an HTML or RTF body, which the rendition \
                           does not carry"
                        .into(),
                    location: "message body".into(),
                });
            }
        }
    }
    check_size(&text, &r.ctx, PREFIX, "message")?;
    if !rendition::known_codepage(r.codepage)
        && cfb
            .entries
            .iter()
            .any(|e| e.reachable && e.kind == EntryKind::Stream && e.name.ends_with("001E"))
    {
        removed.push(Removed {
            what: format!(
                "code page {}: 8-bit strings' characters above 0x7F are shown as CP1252 (no \
                 decoder for it)",
                r.codepage
            ),
            location: "property 0x3FFD".into(),
        });
    }
    let mut d = rendition::finish(text, &cfb, FileType::Msg, &r.read);
    d.removed.extend(removed);
    Ok(d)
}

/// `PidTagHasAttachments` (boolean) and `PidTagMessageFlags` (`mfHasAttach` 0x10).
const HAS_ATTACHMENTS: u32 = 0x0E1B_000B;
const MESSAGE_FLAGS: u32 = 0x0E07_0003;

/// What a message copy leaves out: attachments (their data, embedded messages and OLE
/// objects), and the HTML and compressed-RTF bodies when `plain` (a plain-text body exists).
fn policy(e: &DirEntry, plain: bool) -> Keep {
    let p = e.path.to_ascii_lowercase();
    let first = p.split('/').next().unwrap_or_default();
    if first.starts_with("__attach_version1.0_") {
        return if cfb_write::top(&p) {
            Keep::Drop("attachment (not carried)")
        } else {
            Keep::Drop("stream of a dropped storage")
        };
    }
    if first.starts_with("__recip_version1.0_") || first == "__nameid_version1.0" {
        return Keep::Yes;
    }
    if !cfb_write::top(&p) {
        return Keep::Drop("stream of a dropped storage");
    }
    if e.kind != EntryKind::Stream {
        return Keep::Drop("storage the message does not need");
    }
    if plain && (p.starts_with("__substg1.0_1013") || p.starts_with("__substg1.0_1009")) {
        return Keep::Drop("HTML or RTF body (the plain-text body is kept)");
    }
    if p.starts_with("__substg1.0_") || p == "__properties_version1.0" {
        Keep::Yes
    } else {
        Keep::Drop("stream the message does not need")
    }
}

/// The same-format copy of a message: the rendition first (a failure there is the
/// conversion's finding), then the compound file with the top-level properties, the
/// recipients and the named-property map; the attachments are dropped (a disarmed copy of
/// each would be a second document of its own), and the top-level property stream says
/// so: attachment count 0, `PidTagHasAttachments` false, `mfHasAttach` cleared (in place).
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let _ = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let plain = cfb.entries.iter().any(|e| {
        e.reachable && e.parent == Some(0) && {
            let n = e.name.to_ascii_lowercase();
            n == "__substg1.0_1000001f" || n == "__substg1.0_1000001e"
        }
    });
    let keep = |e: &DirEntry| policy(e, plain);
    let mut edit = |path: &str, bytes: &mut Vec<u8>, _: &mut Vec<Removed>| {
        if path.eq_ignore_ascii_case("__properties_version1.0") {
            if let Some(count) = bytes.get_mut(20..24) {
                count.fill(0);
            }
            let mut at = 32;
            while at + 16 <= bytes.len() {
                let tag = le32(bytes, at);
                if let Some(value) = bytes.get_mut(at + 8) {
                    match tag {
                        Some(HAS_ATTACHMENTS) => *value = 0,
                        Some(MESSAGE_FLAGS) => *value &= !0x10,
                        _ => {}
                    }
                }
                at += 16;
            }
        }
        Ok(())
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Msg,
        &keep,
        &mut edit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::build::cfb;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn fixed(header: usize, props: &[(u16, u16, u64)]) -> Vec<u8> {
        let mut out = vec![0u8; header];
        for &(id, kind, v) in props {
            out.extend_from_slice(&((u32::from(id) << 16) | u32::from(kind)).to_le_bytes());
            out.extend_from_slice(&6u32.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn headers_recipients_attachments_and_body() {
        // 2021-03-04 05:06:07 UTC as a FILETIME.
        let date = (1_614_834_367u64 + 11_644_473_600) * 10_000_000;
        let props = fixed(32, &[(CLIENT_SUBMIT_TIME, PT_SYSTIME, date)]);
        let recip = fixed(8, &[(RECIPIENT_TYPE, PT_LONG, 2)]);
        let subject = utf16("송금 안내\r\nurgent\0");
        let name = utf16("Kim");
        let smtp = utf16("kim@example.com");
        let to = utf16("Lee");
        let rname = utf16("Park");
        let raddr = utf16("park@example.com");
        let attach_name = utf16("invoice.docm");
        let body = utf16("Hello,\r\nsee the file.\r\n");
        let msg = cfb(&[
            ("__properties_version1.0", &props),
            ("__substg1.0_0037001F", &subject),
            ("__substg1.0_0C1A001F", &name),
            ("__substg1.0_5D01001F", &smtp),
            ("__substg1.0_0E04001F", &to),
            ("__recip_version1.0_#00000000/__substg1.0_3001001F", &rname),
            ("__recip_version1.0_#00000000/__substg1.0_39FE001F", &raddr),
            (
                "__recip_version1.0_#00000000/__properties_version1.0",
                &recip,
            ),
            (
                "__attach_version1.0_#00000000/__substg1.0_3707001F",
                &attach_name,
            ),
            (
                "__attach_version1.0_#00000000/__substg1.0_37010102",
                b"PK\x03\x04 macro",
            ),
            ("__substg1.0_1000001F", &body),
            ("__substg1.0_10130102", b"<script>x</script>"),
        ]);
        let d = render(&msg, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "Subject: 송금 안내 urgent\nFrom: Kim <kim@example.com>\nTo: Lee\n\
             Cc: Park <park@example.com>\nDate: 2021-03-04 05:06:07 UTC\n\
             Attachments (named, not carried): invoice.docm\n\nHello,\nsee the file.\n\n"
        );
        for gone in [
            "stream __attach_version1.0_#00000000/__substg1.0_37010102",
            "stream __substg1.0_10130102",
        ] {
            assert!(d.removed.iter().any(|r| r.location == gone), "{gone}");
        }
    }

    #[test]
    fn eight_bit_strings_follow_the_code_page_and_html_only_is_said() {
        let props = fixed(32, &[(MESSAGE_CODEPAGE, PT_LONG, 65001)]);
        let msg = cfb(&[
            ("__properties_version1.0", &props),
            ("__substg1.0_0037001E", "Grüße\0".as_bytes()),
            ("__substg1.0_10130102", b"<p>hi</p>"),
        ]);
        let d = render(&msg, &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(d.bytes).unwrap(), "Subject: Grüße\n\n");
        assert!(d.removed.iter().any(|r| r.location == "message body"));
        let props = fixed(32, &[(MESSAGE_CODEPAGE, PT_LONG, 949)]);
        let msg = cfb(&[
            ("__properties_version1.0", &props),
            ("__substg1.0_0037001E", b"\xb0\xe8\xc1\xc2"),
        ]);
        let d = render(&msg, &Limits::default()).unwrap();
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.starts_with("code page 949"))
        );
        match render(b"\xd0\xcf\x11\xe0 not a compound file", &Limits::default()) {
            Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-MSG-CFB"),
            other => panic!("{other:?}"),
        }
    }

    /// The streams of a compound file, sorted by path.
    fn streams_of(file: &[u8]) -> Vec<(String, Vec<u8>)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = Cfb::parse(file, &mut ctx).unwrap();
        let mut out: Vec<(String, Vec<u8>)> = cfb
            .entries
            .iter()
            .filter(|e| e.reachable && e.kind == EntryKind::Stream)
            .map(|e| (e.path.clone(), cfb.read_stream(file, e, &mut ctx).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_message_copy_drops_attachments_and_says_so_in_its_properties() {
        let mut props = fixed(32, &[(0x0E1B, 0x000B, 1), (0x0E07, 0x0003, 0x13)]);
        props[20..24].copy_from_slice(&1u32.to_le_bytes()); // one attachment
        props[12..16].copy_from_slice(&1u32.to_le_bytes()); // next attachment id
        let body = utf16("Hello\r\n");
        let msg = cfb(&[
            ("__properties_version1.0", &props),
            ("__substg1.0_0037001F", &utf16("subject")),
            ("__substg1.0_1000001F", &body),
            ("__substg1.0_10130102", b"<script>x</script>"),
            (
                "__recip_version1.0_#00000000/__substg1.0_3001001F",
                &utf16("Park"),
            ),
            (
                "__attach_version1.0_#00000000/__substg1.0_37010102",
                b"MZ\x90\x00",
            ),
            ("__nameid_version1.0/__substg1.0_00020102", &[0u8; 16]),
        ]);
        let d = rebuild(&msg, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Msg);
        let after = streams_of(&d.bytes);
        let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "__nameid_version1.0/__substg1.0_00020102",
                "__properties_version1.0",
                "__recip_version1.0_#00000000/__substg1.0_3001001F",
                "__substg1.0_0037001F",
                "__substg1.0_1000001F",
            ]
        );
        let p = &after[1].1;
        assert_eq!(le32(p, 20), Some(0));
        assert_eq!(le32(p, 12), Some(1), "the next id stays");
        assert_eq!((p[40], p[56]), (0, 0x03));
        let whats: Vec<(&str, &str)> = d
            .removed
            .iter()
            .map(|r| (r.what.as_str(), r.location.as_str()))
            .collect();
        assert!(
            whats.contains(&(
                "attachment (not carried)",
                "storage __attach_version1.0_#00000000"
            )),
            "{whats:?}"
        );
        assert!(
            whats
                .iter()
                .any(|(_, l)| *l == "stream __substg1.0_10130102"),
            "{whats:?}"
        );
        let text = String::from_utf8(render(&d.bytes, &Limits::default()).unwrap().bytes).unwrap();
        assert!(
            text.contains("subject") && text.contains("Hello") && text.contains("Park"),
            "{text}"
        );
    }
}
