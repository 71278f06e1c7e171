//! `PowerPoint` 97–2003 (`.ppt`, MS-PPT) to a plain-text rendition: the text atoms of the
//! `PowerPoint Document` stream, one block per slide (blocks separated by a blank line).
//!
//! The stream's records (8-byte headers: version and instance, type, length; version 0xF
//! a container) are walked in order, containers recursively, each held inside its
//! parent. `TextCharsAtom` (UTF-16LE) and `TextBytesAtom` (one byte a character) give the
//! text: 13 and 11 become newlines. A block starts at each slide of the slide list
//! (`SlidePersistAtom` in the `SlideListWithText` of slides: its placeholder text), at
//! each `Slide` container (its own text boxes) and at each `Notes` container; master
//! slides (template prompts) and the master list are not rendered (a title master is a
//! `Slide` container, so its prompts do appear). The stream is read as
//! it is, not through the persist directory: after incremental saves it may hold
//! superseded copies of a slide, whose text then appears too — more text than the
//! current version, never less. The persist directory (the `Current User` atom's
//! `offsetToCurrentEdit`, then each `UserEditAtom`'s `PersistDirectoryAtom` and
//! `offsetLastEdit`) is read for one thing: where top-level records start. A top-level
//! record that runs past the stream is skipped to the next start it names — `PowerPoint`
//! leaves unreferenced padding between incremental saves, and reads top-level records only
//! through the directory. The `RoundTrip…12Atom`s (0x040E–0x0428) are atoms whatever their
//! version says (`PowerPoint` 2007 writes some with version 0xF, the container mark).
//!
//! An encrypted presentation (the `Current User` atom's encrypted header token, or an
//! `EncryptedSummary` stream) answers
//! [`ConvertError::Encrypted`]. Failures are `CONVERT-PPT-*` with the record type and
//! its offset in the stream.

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size, check_time, push_utf16, utf16_units};
use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le16, le32, slice};
use crate::container::cfb::DirEntry;
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-PPT";
const STREAM: &str = "PowerPoint Document";
const SLIDE: u16 = 0x03EE;
const NOTES: u16 = 0x03F0;
const MAIN_MASTER: u16 = 0x03F8;
const SLIDE_PERSIST_ATOM: u16 = 0x03F3;
const SLIDE_LIST_WITH_TEXT: u16 = 0x0FF0;
const TEXT_CHARS_ATOM: u16 = 0x0FA0;
const TEXT_BYTES_ATOM: u16 = 0x0FA8;
/// `CurrentUserAtom.headerToken` of an encrypted document.
const ENCRYPTED_TOKEN: u32 = 0xF3D1_C4DF;
/// Deepest container nesting followed.
const MAX_DEPTH: usize = 64;
const USER_EDIT_ATOM: u16 = 0x0FF5;
const PERSIST_DIRECTORY_ATOM: u16 = 0x1772;
/// The `RoundTrip…12Atom` record types (theme, colour mapping, content master, header and
/// footer defaults, custom table styles...): atoms holding `PowerPoint` 2007 data, ZIP
/// packages among them, whatever their version nibble says.
const ROUND_TRIP_ATOMS: std::ops::RangeInclusive<u16> = 0x040E..=0x0428;
/// Most incremental saves (user edits) followed back.
const MAX_EDITS: usize = 4096;

/// The text rendition of a `PowerPoint` 97–2003 presentation.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    // The Current User atom's headerToken says an encrypted document (MS-PPT 2.3.2).
    let current_user = rendition::stream(data, &cfb, "Current User", &mut ctx, PREFIX)?;
    let token = current_user.as_deref().and_then(|c| le32(c, 12));
    if cfb.find("EncryptedSummary").is_some() || token == Some(ENCRYPTED_TOKEN) {
        return Err(ConvertError::Encrypted(FileType::Ppt));
    }
    let Some(stream) = rendition::stream(data, &cfb, STREAM, &mut ctx, PREFIX)? else {
        return Err(ConvertError::at(
            "CONVERT-PPT-STREAM",
            "file".into(),
            "the compound file has no \"PowerPoint Document\" stream".into(),
        ));
    };
    let starts = record_starts(&stream, current_user.as_deref());
    let mut out = Blocks::default();
    let mut walker = Walker {
        data: &stream,
        starts: &starts,
        out: &mut out,
        ctx: &mut ctx,
    };
    walker.walk(0, stream.len(), 0, false)?;
    let mut text = out.text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(rendition::finish(
        text,
        &cfb,
        FileType::Ppt,
        &[STREAM.to_owned()],
    ))
}

/// The text so far, in blocks.
#[derive(Default)]
struct Blocks {
    text: String,
    /// The current block has text.
    open: bool,
}

impl Blocks {
    fn new_block(&mut self) {
        if self.open {
            if !self.text.ends_with('\n') {
                self.text.push('\n');
            }
            self.text.push('\n');
            self.open = false;
        }
    }

    fn push_text(&mut self, s: &str) {
        if self.open && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        for c in s.chars() {
            match c {
                '\r' | '\u{b}' => self.text.push('\n'),
                '\t' => self.text.push('\t'),
                c if u32::from(c) < 32 => {}
                c => self.text.push(c),
            }
        }
        self.open = true;
    }
}

/// Where the persist directory says top-level records start (persist objects, user edits
/// and the directories themselves), sorted; empty when there is no readable directory.
fn record_starts(stream: &[u8], current_user: Option<&[u8]>) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut edit = current_user.and_then(|c| le32(c, 16));
    let mut seen = std::collections::HashSet::new();
    while let Some(at) = edit.map(|e| e as usize) {
        if seen.len() >= MAX_EDITS
            || !seen.insert(at)
            || le16(stream, at + 2) != Some(USER_EDIT_ATOM)
        {
            break;
        }
        starts.push(at);
        let body = at + 8;
        if let Some(dir) = le32(stream, body + 12)
            .map(|d| d as usize)
            .filter(|&d| le16(stream, d + 2) == Some(PERSIST_DIRECTORY_ATOM))
        {
            starts.push(dir);
            let len = le32(stream, dir + 4).unwrap_or(0) as usize;
            let entries = slice(stream, dir + 8, len).unwrap_or_default();
            let mut pos = 0;
            while let Some(head) = le32(entries, pos) {
                let count = (head >> 20) as usize;
                for k in 0..count {
                    if let Some(offset) = le32(entries, pos + 4 + k * 4) {
                        starts.push(offset as usize);
                    }
                }
                pos += 4 + count * 4;
            }
        }
        edit = le32(stream, body + 8).filter(|&e| e != 0);
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// The record walk over the `PowerPoint Document` stream.
struct Walker<'a, 'c> {
    data: &'a [u8],
    /// Top-level record starts from the persist directory ([`record_starts`]).
    starts: &'a [usize],
    out: &'a mut Blocks,
    ctx: &'a mut ScanContext<'c>,
}

impl Walker<'_, '_> {
    /// Walks the records in `data[start..end]`; `in_master` while inside a master slide or
    /// the master slide list (not rendered).
    fn walk(
        &mut self,
        start: usize,
        end: usize,
        depth: usize,
        in_master: bool,
    ) -> Result<(), ConvertError> {
        let data = self.data;
        let mut pos = start;
        while pos < end {
            let at = format!("stream {STREAM}, offset {pos}");
            check_time(self.ctx, PREFIX, &at)?;
            let header = (le16(data, pos), le16(data, pos + 2), le32(data, pos + 4));
            let body_at = pos + 8;
            let fits = match header {
                (Some(_), Some(_), Some(len)) => body_at <= end && len as usize <= end - body_at,
                _ => false,
            };
            if !fits && depth == 0 {
                // Unreferenced bytes between saves: on to the next record the directory names.
                if let Some(&next) = self.starts.iter().find(|&&s| s > pos && s < end) {
                    pos = next;
                    continue;
                }
            }
            let (Some(ver_inst), Some(kind), Some(len)) = header else {
                return Err(ConvertError::at(
                    "CONVERT-PPT-RECORD",
                    at,
                    "the stream ends inside a record header".into(),
                ));
            };
            let len = len as usize;
            let at = format!("stream {STREAM}, record {kind:#06x} at offset {pos}");
            if !fits {
                return Err(ConvertError::at(
                    "CONVERT-PPT-RECORD",
                    at,
                    format!(
                        "a record of {len} bytes runs past its container ({} bytes left)",
                        end.saturating_sub(body_at)
                    ),
                ));
            }
            let body = slice(data, body_at, len).unwrap_or_default();
            let instance = ver_inst >> 4;
            if ver_inst & 0xF == 0xF && !ROUND_TRIP_ATOMS.contains(&kind) {
                if depth >= MAX_DEPTH {
                    return Err(ConvertError::at(
                        "CONVERT-PPT-DEPTH",
                        at,
                        format!("containers nested more than {MAX_DEPTH} deep"),
                    ));
                }
                let master = in_master
                    || kind == MAIN_MASTER
                    || (kind == SLIDE_LIST_WITH_TEXT && instance == 1);
                if matches!(kind, SLIDE | NOTES) && !master {
                    self.out.new_block();
                }
                self.walk(body_at, body_at + len, depth + 1, master)?;
            } else if !in_master {
                match kind {
                    SLIDE_PERSIST_ATOM => self.out.new_block(),
                    TEXT_CHARS_ATOM => {
                        let mut s = String::new();
                        push_utf16(&mut s, utf16_units(body));
                        self.out.push_text(&s);
                    }
                    TEXT_BYTES_ATOM => {
                        let s: String = body.iter().copied().map(char::from).collect();
                        self.out.push_text(&s);
                    }
                    _ => {}
                }
                check_size(&self.out.text, self.ctx, PREFIX, &at)?;
            }
            pos = body_at + len;
        }
        Ok(())
    }
}

/// Top-level streams a presentation copy keeps.
const KEPT: [&str; 6] = [
    STREAM,
    "Current User",
    "Pictures",
    "\u{5}SummaryInformation",
    "\u{5}DocumentSummaryInformation",
    "\u{1}CompObj",
];
/// `ExOleObjStg`: an embedded OLE object's or the VBA project's storage, compressed.
const EX_OLE_OBJ_STG: u16 = 0x1011;
/// `ExOleLinkContainer`: an object linked to a file.
const EX_OLE_LINK: u16 = 0x0FCE;
/// `InteractiveInfoAtom`: what a click or mouse-over does.
const INTERACTIVE_INFO_ATOM: u16 = 0x0FF3;

/// What a presentation copy leaves out.
fn policy(e: &DirEntry) -> Keep {
    if let Some(keep) = cfb_write::kept_top(e, &KEPT) {
        return keep;
    }
    let p = e.path.as_str();
    if p.eq_ignore_ascii_case("VBA") || p.eq_ignore_ascii_case("_VBA_PROJECT_CUR") {
        Keep::Drop("macro project (VBA)")
    } else if p.eq_ignore_ascii_case("ObjectPool") {
        Keep::Drop("embedded OLE objects")
    } else {
        Keep::Drop("storage or stream the presentation does not need")
    }
}

/// What the record walk of the `PowerPoint Document` stream found.
struct Active {
    /// Offsets of `InteractiveInfoAtom` actions that run a macro, a program or an OLE verb.
    actions: Vec<(usize, u8)>,
    /// Why no exact copy can be made (an embedded or linked object, an unreadable record).
    blocker: Option<String>,
}

/// Walks every record (containers entered, atoms skipped; top-level gaps skipped to the
/// next start the persist directory names).
fn active_records(stream: &[u8], current_user: Option<&[u8]>) -> Active {
    let starts = record_starts(stream, current_user);
    let mut out = Active {
        actions: Vec::new(),
        blocker: None,
    };
    let mut pos = 0usize;
    while pos < stream.len() {
        let (Some(ver_inst), Some(kind), Some(len)) = (
            le16(stream, pos),
            le16(stream, pos + 2),
            le32(stream, pos + 4),
        ) else {
            if let Some(&next) = starts.iter().find(|&&s| s > pos) {
                pos = next;
                continue;
            }
            // Trailing bytes shorter than a record header.
            break;
        };
        let body = pos + 8;
        let len = len as usize;
        if len > stream.len().saturating_sub(body) {
            if let Some(&next) = starts.iter().find(|&&s| s > pos) {
                pos = next;
                continue;
            }
            out.blocker = Some(format!(
                "stream {STREAM}, record {kind:#06x} at offset {pos}: runs past the stream"
            ));
            return out;
        }
        match kind {
            EX_OLE_OBJ_STG => {
                out.blocker = Some(format!(
                    "stream {STREAM}, record {kind:#06x} at offset {pos}: an embedded OLE object or the VBA project (ExOleObjStg)"
                ));
                return out;
            }
            EX_OLE_LINK => {
                out.blocker = Some(format!(
                    "stream {STREAM}, record {kind:#06x} at offset {pos}: an OLE object linked to a file"
                ));
                return out;
            }
            INTERACTIVE_INFO_ATOM => {
                if let Some(&action) = stream.get(body + 8).filter(|_| len >= 9) {
                    // 1: run a macro, 2: run a program, 5: an OLE verb.
                    if matches!(action, 1 | 2 | 5) {
                        out.actions.push((body + 8, action));
                    }
                }
            }
            _ => {}
        }
        if ver_inst & 0xF == 0xF && !ROUND_TRIP_ATOMS.contains(&kind) {
            pos = body;
        } else {
            pos = body + len;
        }
    }
    out
}

/// The same-format copy of a presentation: the rendition first (a failure there is the
/// conversion's finding), then the compound file with only [`KEPT`] streams, and in the
/// `PowerPoint Document` stream every click or mouse-over action that runs a macro, a
/// program or an OLE verb set to "no action" in place (one byte, the record's length kept).
/// A presentation with an embedded or linked object (`ExOleObjStg`, which also holds a
/// VBA project, or `ExOleLinkContainer`) keeps the text rendition: replacing a record's
/// payload would move every persist offset after it.
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut rendition = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let stream = rendition::stream(data, &cfb, STREAM, &mut ctx, PREFIX)?.unwrap_or_default();
    let current = rendition::stream(data, &cfb, "Current User", &mut ctx, PREFIX)?;
    let active = active_records(&stream, current.as_deref());
    if let Some(why) = active.blocker {
        rendition.removed.insert(
            0,
            Removed {
                what:
                    "no same-format copy: the presentation holds an object (text rendition instead)"
                        .into(),
                location: why,
            },
        );
        return Ok(rendition);
    }
    let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
        if path.eq_ignore_ascii_case(STREAM) {
            for &(at, action) in &active.actions {
                if let Some(b) = bytes.get_mut(at) {
                    *b = 0;
                    removed.push(Removed {
                        what: format!(
                            "{} action (set to no action)",
                            match action {
                                1 => "run-macro",
                                2 => "run-program",
                                _ => "OLE-verb",
                            }
                        ),
                        location: format!(
                            "stream {STREAM}, InteractiveInfoAtom action at offset {at}"
                        ),
                    });
                }
            }
        }
        Ok(())
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Ppt,
        &policy,
        &mut edit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::EntryKind;
    use crate::container::cfb::build::cfb;

    fn atom(kind: u16, instance: u16, body: &[u8]) -> Vec<u8> {
        let mut out = (instance << 4).to_le_bytes().to_vec();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn container(kind: u16, instance: u16, children: &[Vec<u8>]) -> Vec<u8> {
        let body = children.concat();
        let mut out = ((instance << 4) | 0xF).to_le_bytes().to_vec();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        out.extend(body);
        out
    }

    fn chars(s: &str) -> Vec<u8> {
        atom(
            TEXT_CHARS_ATOM,
            0,
            &s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>(),
        )
    }

    fn bytes(s: &str) -> Vec<u8> {
        atom(TEXT_BYTES_ATOM, 0, s.as_bytes())
    }

    fn presentation() -> Vec<u8> {
        let persist = atom(SLIDE_PERSIST_ATOM, 0, &[0; 20]);
        let document = container(
            0x03E8,
            0,
            &[
                container(
                    SLIDE_LIST_WITH_TEXT,
                    1,
                    &[persist.clone(), chars("Click to edit Master title style")],
                ),
                container(
                    SLIDE_LIST_WITH_TEXT,
                    0,
                    &[
                        persist.clone(),
                        chars("송금 안내"),
                        bytes("Line one\rLine two"),
                        persist,
                        chars("Second slide"),
                    ],
                ),
            ],
        );
        let master = container(MAIN_MASTER, 0, &[chars("Master footer")]);
        // A slide whose drawing holds a text box (OfficeArt containers, version 0xF).
        let slide = container(
            SLIDE,
            0,
            &[container(
                0xF002,
                0,
                &[container(0xF00D, 0, &[chars("A text box")])],
            )],
        );
        let stream = [document, master, slide].concat();
        cfb(&[
            (STREAM, &stream),
            ("Current User", &[0; 20]),
            ("VBA/dir", b"x"),
        ])
    }

    #[test]
    fn slides_give_blocks_and_masters_are_left_out() {
        let d = render(&presentation(), &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "송금 안내\nLine one\nLine two\n\nSecond slide\n\nA text box\n"
        );
        assert!(d.removed.iter().any(|r| r.location == "stream VBA/dir"));
    }

    #[test]
    fn round_trip_atoms_marked_as_containers_are_atoms() {
        // PowerPoint 2007 writes RoundTripCustomTableStyles12Atom (0x0428) with version
        // 0xF; its body is a ZIP package, not records.
        let mut styles = container(0x0428, 0, &[]);
        let zip = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00V";
        styles[4..8].copy_from_slice(&u32::try_from(zip.len()).unwrap().to_le_bytes());
        styles.extend_from_slice(zip);
        let document = container(0x03E8, 0, &[styles, chars("after the styles")]);
        let d = render(&cfb(&[(STREAM, &document)]), &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(d.bytes).unwrap(), "after the styles\n");
    }

    #[test]
    fn padding_between_saves_is_skipped_to_the_next_directory_entry() {
        // First save: a slide; then 13 zero bytes (not a whole record header); then the
        // second save's slide, its persist directory and user edit, which the Current User
        // atom points at.
        let first = container(SLIDE, 0, &[chars("first save")]);
        let mut stream = first.clone();
        stream.extend_from_slice(&[0; 13]);
        let second_at = u32::try_from(stream.len()).unwrap();
        stream.extend(container(SLIDE, 0, &[chars("second save")]));
        let dir_at = u32::try_from(stream.len()).unwrap();
        let mut entries = (1u32 | (2 << 20)).to_le_bytes().to_vec();
        entries.extend_from_slice(&0u32.to_le_bytes());
        entries.extend_from_slice(&second_at.to_le_bytes());
        stream.extend(atom(PERSIST_DIRECTORY_ATOM, 0, &entries));
        let edit_at = u32::try_from(stream.len()).unwrap();
        let mut edit = vec![0u8; 28];
        edit[12..16].copy_from_slice(&dir_at.to_le_bytes());
        stream.extend(atom(USER_EDIT_ATOM, 0, &edit));
        let mut user = atom(0x0FF6, 0, &[0; 20]);
        user[16..20].copy_from_slice(&edit_at.to_le_bytes());
        let d = render(
            &cfb(&[(STREAM, &stream), ("Current User", &user)]),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "first save\n\nsecond save\n"
        );
        // Without a directory naming what follows, the same bytes are a broken record.
        match render(&cfb(&[(STREAM, &stream)]), &Limits::default()) {
            Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-PPT-RECORD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encrypted_is_refused_and_broken_records_fail() {
        let enc = cfb(&[(STREAM, &chars("x")), ("EncryptedSummary", b"x")]);
        assert_eq!(
            render(&enc, &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Ppt)
        );
        let mut user = atom(0x0FF6, 0, &[0; 20]);
        user[12..16].copy_from_slice(&ENCRYPTED_TOKEN.to_le_bytes());
        let enc = cfb(&[(STREAM, &[0xFF; 16]), ("Current User", &user)]);
        assert_eq!(
            render(&enc, &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Ppt)
        );
        // A child longer than its container.
        let mut inner = chars("abc");
        inner[4] = 200;
        let bad = container(SLIDE, 0, &[inner]);
        match render(&cfb(&[(STREAM, &bad)]), &Limits::default()) {
            Err(ConvertError::Failed(f)) => {
                assert_eq!(f[0].code, "CONVERT-PPT-RECORD");
                assert_eq!(
                    f[0].location,
                    "stream PowerPoint Document, record 0x0fa0 at offset 8"
                );
            }
            other => panic!("{other:?}"),
        }
        match render(&cfb(&[("Other", b"x")]), &Limits::default()) {
            Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-PPT-STREAM"),
            other => panic!("{other:?}"),
        }
    }

    /// The streams of a compound file, sorted by path.
    fn streams_of(file: &[u8]) -> Vec<(String, Vec<u8>)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = crate::container::cfb::Cfb::parse(file, &mut ctx).unwrap();
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
    fn a_presentation_copy_loses_vba_and_program_actions() {
        let mut info = vec![0u8; 16];
        info[8] = 2; // run a program
        let mut hyperlink = vec![0u8; 16];
        hyperlink[8] = 4; // a hyperlink stays
        let slide = container(
            SLIDE,
            0,
            &[
                chars("Click me"),
                container(0x0FF2, 0, &[atom(INTERACTIVE_INFO_ATOM, 0, &info)]),
                container(0x0FF2, 0, &[atom(INTERACTIVE_INFO_ATOM, 0, &hyperlink)]),
            ],
        );
        let file = cfb(&[
            (STREAM, &slide),
            ("Current User", &[0; 20]),
            ("Pictures", &[5u8; 5000]),
            ("VBA/dir", b"x"),
            ("ObjectPool/_1/\u{1}Ole10Native", b"y"),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Ppt);
        let after = streams_of(&d.bytes);
        let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["Current User", "Pictures", STREAM]);
        let stream = &after[2].1;
        assert_eq!(stream.len(), slide.len());
        let diff: Vec<usize> = (0..slide.len())
            .filter(|&i| slide[i] != stream[i])
            .collect();
        assert_eq!(diff.len(), 1);
        assert_eq!((slide[diff[0]], stream[diff[0]]), (2, 0));
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        assert!(whats.contains(&"macro project (VBA)"), "{whats:?}");
        assert!(
            whats.contains(&"run-program action (set to no action)"),
            "{whats:?}"
        );
        assert_eq!(
            render(&d.bytes, &Limits::default()).unwrap().bytes,
            render(&file, &Limits::default()).unwrap().bytes
        );
    }

    #[test]
    fn a_presentation_with_an_embedded_object_keeps_its_rendition() {
        let slide = container(SLIDE, 0, &[chars("Hi"), atom(EX_OLE_OBJ_STG, 1, &[0; 12])]);
        let file = cfb(&[(STREAM, &slide), ("Current User", &[0; 20])]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert!(
            d.removed[0].location.contains("ExOleObjStg"),
            "{:?}",
            d.removed[0]
        );
    }
}
