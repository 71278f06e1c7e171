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
/// `PidTagAttachMethod`: 1 by value (the data in `PidTagAttachDataBinary`), 2–4 by
/// reference (a path), 5 an embedded message, 6 an OLE object, 7 a web reference.
const ATTACH_METHOD: u32 = 0x3705_0003;
const ATTACH_DATA: &str = "__substg1.0_37010102";
const ATTACH_EXTENSION: u16 = 0x3703;
const ATTACH_MIME: u16 = 0x370E;
/// `PidTagAttachRendering`: the attachment's icon, a metafile.
const ATTACH_RENDERING: &str = "__substg1.0_3709";
const PROPERTIES: &str = "__properties_version1.0";

/// What a message copy does with one attachment storage.
#[derive(Debug)]
enum Attachment {
    /// Left out, with why (no safe copy of it exists).
    Dropped,
    /// Kept: these of its streams (lower-case paths) get new content — the data its
    /// disarmed copy, its property stream the new sizes — the others are copied.
    Kept(std::collections::HashMap<String, Vec<u8>>),
}

/// Whether a property type keeps its value in a stream of its own.
fn in_stream(kind: u32) -> bool {
    matches!(
        kind,
        0x001F | 0x001E | 0x0102 | 0x000D | 0x1002
            ..=0x1007 | 0x1014 | 0x101E | 0x101F | 0x1040 | 0x1048 | 0x1102
    )
}

/// The property stream of an attachment (an 8-byte header, 16-byte entries) for the
/// streams the copy keeps: an entry whose value stream is dropped goes, a string or
/// binary whose stream gets new content gets its new size (strings count their terminator).
fn attachment_properties(
    props: &[u8],
    base: &str,
    kept: &dyn Fn(&str) -> bool,
    new: &std::collections::HashMap<String, Vec<u8>>,
) -> Vec<u8> {
    let mut out = props.get(..8).unwrap_or_default().to_vec();
    let mut at = 8;
    while let (Some(tag), Some(entry)) = (le32(props, at), props.get(at..at + 16)) {
        at += 16;
        let kind = tag & 0xFFFF;
        if !in_stream(kind) {
            out.extend_from_slice(entry);
            continue;
        }
        let stream = format!("{base}__substg1.0_{tag:08x}");
        if kind == 0x000D || !kept(&stream) {
            continue;
        }
        let mut entry = entry.to_vec();
        if let Some(content) = new.get(&stream) {
            let terminator = match kind {
                0x001F => 2,
                0x001E => 1,
                _ => 0,
            };
            let size = u32::try_from(content.len() + terminator).unwrap_or(u32::MAX);
            if let Some(at) = entry.get_mut(8..12) {
                at.copy_from_slice(&size.to_le_bytes());
            }
        }
        out.extend(entry);
    }
    out
}

/// Whether an attachment's stream (lower-case `path`) is carried: its properties and
/// value streams, not its icon (`PidTagAttachRendering`, a metafile) nor anything in a
/// storage of its own (an embedded message or OLE object).
fn attachment_stream_kept(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(_), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    name == PROPERTIES || (name.starts_with("__substg1.0_") && !name.starts_with(ATTACH_RENDERING))
}

/// Disarms each attachment of the message as a file of its own (one level deeper) and
/// says what becomes of it: kept with its safe copy, or dropped (why in `removed`).
fn attachments(
    data: &[u8],
    cfb: &Cfb,
    ctx: &mut ScanContext,
    limits: &Limits,
    depth: u32,
    removed: &mut Vec<Removed>,
) -> Result<std::collections::HashMap<String, Attachment>, ConvertError> {
    let mut out = std::collections::HashMap::new();
    let storages: Vec<&DirEntry> = cfb
        .entries
        .iter()
        .filter(|e| {
            e.reachable
                && e.parent == Some(0)
                && e.kind == EntryKind::Storage
                && e.name
                    .to_ascii_lowercase()
                    .starts_with("__attach_version1.0_")
        })
        .collect();
    for e in storages {
        let base = format!("{}/", e.path.to_ascii_lowercase());
        let location = format!("storage {}", e.path);
        let mut refuse = |why: String, out: &mut std::collections::HashMap<String, Attachment>| {
            removed.push(Removed {
                what: format!("attachment dropped: {why}"),
                location: location.clone(),
            });
            out.insert(base.trim_end_matches('/').to_owned(), Attachment::Dropped);
        };
        let props_path = format!("{}/{PROPERTIES}", e.path);
        let Some(props) = rendition::stream(data, cfb, &props_path, ctx, PREFIX)? else {
            refuse("it has no property stream".into(), &mut out);
            continue;
        };
        let mut method = None;
        let mut at = 8;
        while let Some(tag) = le32(&props, at) {
            if tag == ATTACH_METHOD {
                method = le32(&props, at + 8);
            }
            at += 16;
        }
        let why = match method {
            Some(1) => None,
            Some(5) => Some("an embedded message (no copy of it is rebuilt on its own)"),
            Some(6) => Some("an embedded OLE object"),
            Some(2..=4) => Some("an attachment by reference (a path outside the message)"),
            Some(7) => Some("an attachment by web reference"),
            _ => Some("no attachment data (no by-value attach method)"),
        };
        if let Some(why) = why {
            refuse(why.into(), &mut out);
            continue;
        }
        if depth >= super::MAX_DEPTH {
            refuse(
                format!("files nested more than {} deep", super::MAX_DEPTH),
                &mut out,
            );
            continue;
        }
        let Some(content) =
            rendition::stream(data, cfb, &format!("{}/{ATTACH_DATA}", e.path), ctx, PREFIX)?
        else {
            refuse("it has no data stream".into(), &mut out);
            continue;
        };
        let (kind, result) = super::nested(&content, limits, depth + 1);
        let copy = match result {
            Ok(copy) => copy,
            Err(why) => {
                refuse(why, &mut out);
                continue;
            }
        };
        for r in copy.removed {
            removed.push(Removed {
                what: r.what,
                location: format!("{location}: {}", r.location),
            });
        }
        let mut new = std::collections::HashMap::new();
        if copy.file_type != kind {
            // A text rendition: named `<name>.txt`, typed text/plain.
            removed.push(Removed {
                what: format!("{kind:?} attachment replaced by its text rendition (named .txt)"),
                location: location.clone(),
            });
            for entry in cfb
                .entries
                .iter()
                .filter(|c| c.reachable && c.parent == Some(e.id))
            {
                let name = entry.name.to_ascii_lowercase();
                let Some(tag) = name
                    .strip_prefix("__substg1.0_")
                    .and_then(|t| u32::from_str_radix(t, 16).ok())
                else {
                    continue;
                };
                let (id, unicode) = ((tag >> 16) as u16, tag & 0xFFFF == 0x001F);
                if tag & 0xFFFF != 0x001F && tag & 0xFFFF != 0x001E {
                    continue;
                }
                let value = match id {
                    ATTACH_LONG_FILENAME | ATTACH_FILENAME | DISPLAY_NAME => {
                        let Some(old) = rendition::stream(data, cfb, &entry.path, ctx, PREFIX)?
                        else {
                            continue;
                        };
                        let mut s = if unicode {
                            let mut s = String::new();
                            rendition::push_utf16(&mut s, rendition::utf16_units(&old));
                            s
                        } else {
                            old.iter().copied().map(char::from).collect()
                        };
                        s = s.trim_end_matches('\0').to_owned();
                        s.push_str(".txt");
                        s
                    }
                    ATTACH_EXTENSION => ".txt".to_owned(),
                    ATTACH_MIME => "text/plain".to_owned(),
                    _ => continue,
                };
                let bytes = if unicode {
                    value.encode_utf16().flat_map(u16::to_le_bytes).collect()
                } else {
                    value
                        .chars()
                        .map(|c| u8::try_from(c).unwrap_or(b'?'))
                        .collect()
                };
                new.insert(format!("{base}{name}"), bytes);
            }
        }
        new.insert(
            format!("{base}{}", ATTACH_DATA.to_ascii_lowercase()),
            copy.bytes,
        );
        let props = attachment_properties(&props, &base, &attachment_stream_kept, &new);
        new.insert(format!("{base}{PROPERTIES}"), props);
        out.insert(base.trim_end_matches('/').to_owned(), Attachment::Kept(new));
    }
    Ok(out)
}

/// What a message copy leaves out: the attachments without a safe copy (and, of the
/// others, their icons and object storages), and the HTML and compressed-RTF bodies when
/// `plain` (a plain-text body exists).
fn policy(
    e: &DirEntry,
    plain: bool,
    attached: &std::collections::HashMap<String, Attachment>,
) -> Keep {
    let p = e.path.to_ascii_lowercase();
    let first = p.split('/').next().unwrap_or_default();
    if first.starts_with("__attach_version1.0_") {
        return match attached.get(first) {
            Some(Attachment::Kept(_)) if cfb_write::top(&p) => Keep::Yes,
            Some(Attachment::Kept(_))
                if e.kind == EntryKind::Stream && attachment_stream_kept(&p) =>
            {
                Keep::Yes
            }
            Some(Attachment::Kept(_)) if p.matches('/').count() == 1 => {
                if e.kind == EntryKind::Storage {
                    Keep::Drop("storage in an attachment (an embedded message or object)")
                } else {
                    Keep::Drop("attachment icon (rendering metafile)")
                }
            }
            _ if cfb_write::top(&p) => Keep::Drop("attachment without a safe copy"),
            _ => Keep::Drop("stream of a dropped storage"),
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
    if p.starts_with("__substg1.0_") || p == PROPERTIES {
        Keep::Yes
    } else {
        Keep::Drop("stream the message does not need")
    }
}

/// The same-format copy of a message: the rendition first (a failure there is the
/// conversion's finding), then the compound file with the top-level properties, the
/// recipients, the named-property map and the attachments, each disarmed as a file of its
/// own at `depth + 1` (`super::disarm`'s machinery: a same-format copy, or a text rendition
/// named `.txt` and typed `text/plain`) and attached in its place, the attachment's
/// property sizes following. An attachment without a safe copy — an embedded message or
/// OLE object, a reference to a path, a program, an encrypted document, one whose
/// conversion fails, one nested too deep — is dropped and `removed` says why; the
/// top-level property stream then counts only the kept ones (attachment count,
/// `PidTagHasAttachments`, `mfHasAttach`, in place).
pub(super) fn rebuild(data: &[u8], limits: &Limits, depth: u32) -> Result<Disarmed, ConvertError> {
    let _ = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let plain = cfb.entries.iter().any(|e| {
        e.reachable && e.parent == Some(0) && {
            let n = e.name.to_ascii_lowercase();
            n == "__substg1.0_1000001f" || n == "__substg1.0_1000001e"
        }
    });
    let mut dropped = Vec::new();
    let attached = attachments(data, &cfb, &mut ctx, limits, depth, &mut dropped)?;
    let kept = u32::try_from(
        attached
            .values()
            .filter(|a| matches!(a, Attachment::Kept(_)))
            .count(),
    )
    .unwrap_or(u32::MAX);
    let keep = |e: &DirEntry| policy(e, plain, &attached);
    let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
        let lower = path.to_ascii_lowercase();
        if lower == PROPERTIES {
            removed.append(&mut dropped);
            if let Some(count) = bytes.get_mut(20..24) {
                count.copy_from_slice(&kept.to_le_bytes());
            }
            let mut at = 32;
            while at + 16 <= bytes.len() {
                let tag = le32(bytes, at);
                if let Some(value) = bytes.get_mut(at + 8) {
                    match tag {
                        Some(HAS_ATTACHMENTS) => *value = u8::from(kept > 0),
                        Some(MESSAGE_FLAGS) if kept == 0 => *value &= !0x10,
                        _ => {}
                    }
                }
                at += 16;
            }
        } else if let Some(Attachment::Kept(new)) =
            attached.get(lower.split('/').next().unwrap_or_default())
            && let Some(content) = new.get(&lower)
        {
            bytes.clone_from(content);
        }
        Ok(())
    };
    let mut copy = cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Msg,
        &keep,
        &mut edit,
    )?;
    // A message without top-level properties still says what became of its attachments.
    copy.removed.append(&mut dropped);
    Ok(copy)
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
        let d = rebuild(&msg, &Limits::default(), 0).unwrap();
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
                "attachment dropped: it has no property stream",
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

    #[test]
    fn attachments_are_disarmed_and_reattached_or_dropped_with_why() {
        let mut props = fixed(32, &[(0x0E1B, 0x000B, 1), (0x0E07, 0x0003, 0x13)]);
        props[20..24].copy_from_slice(&3u32.to_le_bytes());
        let rtf = b"{\\rtf1\\ansi Pay.{\\object\\objemb{\\*\\objdata 0105}}\\par}";
        let name = utf16("invoice.rtf");
        // By value (1): an RTF with an object; its data size, names in the properties.
        let mut by_value = fixed(8, &[(0x3705, 0x0003, 1)]);
        by_value.extend(fixed(
            0,
            &[
                (0x3701, 0x0102, rtf.len() as u64),
                (0x3707, 0x001F, name.len() as u64 + 2),
                (0x3709, 0x0102, 4),
            ],
        ));
        // An embedded message (5), and a program by value.
        let embedded = fixed(8, &[(0x3705, 0x0003, 5)]);
        let program = fixed(8, &[(0x3705, 0x0003, 1)]);
        let msg = cfb(&[
            ("__properties_version1.0", &props),
            ("__substg1.0_0037001F", &utf16("subject")),
            (
                "__attach_version1.0_#00000000/__properties_version1.0",
                &by_value,
            ),
            ("__attach_version1.0_#00000000/__substg1.0_37010102", rtf),
            ("__attach_version1.0_#00000000/__substg1.0_3707001F", &name),
            (
                "__attach_version1.0_#00000000/__substg1.0_37090102",
                b"\x01\x00\x09\x00",
            ),
            (
                "__attach_version1.0_#00000001/__properties_version1.0",
                &embedded,
            ),
            (
                "__attach_version1.0_#00000001/__substg1.0_3701000D/__properties_version1.0",
                &[0u8; 24],
            ),
            (
                "__attach_version1.0_#00000002/__properties_version1.0",
                &program,
            ),
            (
                "__attach_version1.0_#00000002/__substg1.0_37010102",
                b"MZ\x90\x00",
            ),
        ]);
        let d = rebuild(&msg, &Limits::default(), 0).unwrap();
        assert_eq!(d.file_type, FileType::Msg);
        let after = streams_of(&d.bytes);
        let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "__attach_version1.0_#00000000/__properties_version1.0",
                "__attach_version1.0_#00000000/__substg1.0_37010102",
                "__attach_version1.0_#00000000/__substg1.0_3707001F",
                "__properties_version1.0",
                "__substg1.0_0037001F",
            ]
        );
        // The attachment is the disarmed RTF, and its property sizes follow it.
        let data = &after[1].1;
        assert!(!data.windows(7).any(|w| w == b"\\object"), "{data:?}");
        assert!(data.windows(4).any(|w| w == b"Pay."));
        let attach_props = &after[0].1;
        assert_eq!(attach_props.len(), 8 + 3 * 16, "the icon's entry is gone");
        assert_eq!(
            le32(attach_props, 24 + 8),
            Some(u32::try_from(data.len()).unwrap())
        );
        // One attachment kept: the count says so, the flags stay set.
        let p = &after[3].1;
        assert_eq!(le32(p, 20), Some(1));
        assert_eq!((p[40], p[56]), (1, 0x13));
        let whats: Vec<(&str, &str)> = d
            .removed
            .iter()
            .map(|r| (r.what.as_str(), r.location.as_str()))
            .collect();
        for (what, location) in [
            (
                "attachment dropped: an embedded message (no copy of it is rebuilt on its own)",
                "storage __attach_version1.0_#00000001",
            ),
            (
                "attachment icon (rendering metafile)",
                "stream __attach_version1.0_#00000000/__substg1.0_37090102",
            ),
        ] {
            assert!(whats.contains(&(what, location)), "{what} {whats:?}");
        }
        assert!(
            whats.iter().any(
                |(w, l)| w.starts_with("attachment dropped: no safe rebuild for")
                    && *l == "storage __attach_version1.0_#00000002"
            ),
            "{whats:?}"
        );
        assert!(
            whats
                .iter()
                .any(|(_, l)| l.starts_with("storage __attach_version1.0_#00000000: ")),
            "the attachment's own removals: {whats:?}"
        );
        let report = crate::report::scan_bytes(&d.bytes, Some("copy.msg"), &Limits::default());
        assert_eq!(
            report.verdict,
            haetae_core::Verdict::Clean,
            "{:?}",
            report.findings
        );
    }
}
