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

/// `ExObjList`: the document's external objects.
const EX_OBJ_LIST: u16 = 0x0409;
/// `ExOleEmbedContainer`: an embedded OLE object.
const EX_OLE_EMBED: u16 = 0x0FCC;
/// `ExControlContainer`: an `ActiveX` control.
const EX_CONTROL: u16 = 0x0FEE;
/// `ExOleObjAtom`: an object's id (`exObjId` at 8) and its storage (`persistIdRef` at 16).
const EX_OLE_OBJ_ATOM: u16 = 0x0FC3;
/// `VBAInfoContainer`: where the VBA project's storage is.
const VBA_INFO: u16 = 0x03FF;
/// `ExObjRefAtom`: a shape's reference to an external object (`exObjId`).
const EX_OBJ_REF_ATOM: u16 = 0x0BC1;
/// `OfficeArtSpContainer`, `OfficeArtFSP` (flags at 4; `fOleShape` 0x10) and
/// `OfficeArtClientData`.
const OFFICEART_SP: u16 = 0xF004;
const OFFICEART_FSP: u16 = 0xF00A;
/// Most persist objects a presentation copy writes.
const MAX_PERSIST: usize = 1 << 20;

/// A `PowerPoint Document` stream written anew.
struct Compacted {
    stream: Vec<u8>,
    /// Offset of the new `UserEditAtom` (the `Current User` atom's `offsetToCurrentEdit`).
    current_edit: u32,
    removed: Vec<Removed>,
}

/// The live persist objects (id to record offset, the newest edit winning) and the offset
/// of the current `UserEditAtom`, read through the `Current User` atom and the chain of
/// user edits.
fn persist_objects(
    stream: &[u8],
    current_user: Option<&[u8]>,
) -> Result<(std::collections::BTreeMap<u32, usize>, usize), String> {
    let first = current_user
        .and_then(|c| le32(c, 16))
        .ok_or("the Current User stream names no current edit")? as usize;
    let mut objects = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut edit = Some(first);
    while let Some(at) = edit {
        if seen.len() >= MAX_EDITS || !seen.insert(at) {
            return Err(format!(
                "stream {STREAM}: the user edits loop at offset {at}"
            ));
        }
        if le16(stream, at + 2) != Some(USER_EDIT_ATOM) {
            return Err(format!("stream {STREAM}: no UserEditAtom at offset {at}"));
        }
        let body = at + 8;
        let dir = le32(stream, body + 12)
            .map(|d| d as usize)
            .filter(|&d| le16(stream, d + 2) == Some(PERSIST_DIRECTORY_ATOM))
            .ok_or_else(|| {
                format!("stream {STREAM}: the user edit at offset {at} names no persist directory")
            })?;
        let entries = le32(stream, dir + 4)
            .and_then(|len| slice(stream, dir + 8, len as usize))
            .ok_or_else(|| {
                format!(
                    "stream {STREAM}: the persist directory at offset {dir} runs past the stream"
                )
            })?;
        let mut pos = 0;
        while pos < entries.len() {
            let head = le32(entries, pos).ok_or_else(|| {
                format!(
                    "stream {STREAM}: a broken persist directory entry at offset {}",
                    dir + 8 + pos
                )
            })?;
            let (id, count) = (head & 0xF_FFFF, head >> 20);
            for k in 0..count {
                let offset = le32(entries, pos + 4 + k as usize * 4).ok_or_else(|| {
                    format!("stream {STREAM}: the persist directory at offset {dir} is cut short")
                })?;
                objects.entry(id + k).or_insert(offset as usize);
            }
            if objects.len() > MAX_PERSIST {
                return Err(format!(
                    "stream {STREAM}: more than {MAX_PERSIST} persist objects"
                ));
            }
            pos += 4 + count as usize * 4;
        }
        edit = le32(stream, body + 8)
            .filter(|&e| e != 0)
            .map(|e| e as usize);
    }
    Ok((objects, first))
}

/// The rewrite of the record trees: what it dropped and the object ids it let go.
struct Rewriter<'a, 'c> {
    ctx: &'a mut ScanContext<'c>,
    /// `exObjId`s of the dropped embedded objects, links and controls.
    objects: std::collections::HashSet<u32>,
    /// An `ExObjRefAtom` was dropped in the shape being rewritten.
    dropped_ref: bool,
    removed: Vec<Removed>,
}

impl Rewriter<'_, '_> {
    /// The records of `data` (at `base` in the stream) without objects, VBA project
    /// references and shape references to dropped objects; containers get their new
    /// lengths, atoms are copied (an action that runs a macro, a program or an OLE verb
    /// set to none).
    fn records(
        &mut self,
        data: &[u8],
        base: usize,
        parent: u16,
        depth: usize,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(data.len());
        let mut pos = 0;
        while pos < data.len() {
            let at = base + pos;
            if self.ctx.out_of_time() {
                return Err(format!(
                    "stream {STREAM}, offset {at}: the time budget ran out"
                ));
            }
            let (Some(ver_inst), Some(kind), Some(len)) =
                (le16(data, pos), le16(data, pos + 2), le32(data, pos + 4))
            else {
                return Err(format!(
                    "stream {STREAM}, offset {at}: a record header is cut short"
                ));
            };
            let len = len as usize;
            let Some(body) = slice(data, pos + 8, len) else {
                return Err(format!(
                    "stream {STREAM}, record {kind:#06x} at offset {at}: runs past its container"
                ));
            };
            let location = format!("stream {STREAM}, record {kind:#06x} at offset {at}");
            let container = ver_inst & 0xF == 0xF && !ROUND_TRIP_ATOMS.contains(&kind);
            let whole = data.get(pos..pos + 8 + len).unwrap_or_default();
            pos += 8 + len;
            if container {
                if depth >= MAX_DEPTH {
                    return Err(format!(
                        "{location}: containers nested more than {MAX_DEPTH} deep"
                    ));
                }
                if parent == EX_OBJ_LIST && matches!(kind, EX_OLE_EMBED | EX_OLE_LINK | EX_CONTROL)
                {
                    if let Some(id) = find_atom(body, EX_OLE_OBJ_ATOM).and_then(|a| le32(a, 8)) {
                        self.objects.insert(id);
                    }
                    self.removed.push(Removed {
                        what: match kind {
                            EX_OLE_EMBED => "embedded OLE object (its picture kept)",
                            EX_OLE_LINK => "OLE object linked to a file (its picture kept)",
                            _ => "ActiveX control",
                        }
                        .into(),
                        location,
                    });
                    continue;
                }
                if kind == VBA_INFO {
                    self.removed.push(Removed {
                        what: "macro project reference (VBAInfoContainer)".into(),
                        location,
                    });
                    continue;
                }
                let outer = std::mem::replace(&mut self.dropped_ref, false);
                let mut children = self.records(body, at + 8, kind, depth + 1)?;
                if kind == OFFICEART_SP && self.dropped_ref {
                    clear_ole_shape(&mut children);
                }
                self.dropped_ref |= outer;
                let new_len = u32::try_from(children.len())
                    .map_err(|_| format!("{location}: a container over 4 GiB"))?;
                out.extend_from_slice(&ver_inst.to_le_bytes());
                out.extend_from_slice(&kind.to_le_bytes());
                out.extend_from_slice(&new_len.to_le_bytes());
                out.extend(children);
                continue;
            }
            if kind == EX_OBJ_REF_ATOM && le32(body, 0).is_some_and(|id| self.objects.contains(&id))
            {
                self.dropped_ref = true;
                self.removed.push(Removed {
                    what: "shape's reference to a dropped object (the shape keeps its picture)"
                        .into(),
                    location,
                });
                continue;
            }
            let start = out.len();
            out.extend_from_slice(whole);
            if kind == INTERACTIVE_INFO_ATOM
                && let Some(action) = out.get_mut(start + 16).filter(|a| matches!(**a, 1 | 2 | 5))
            {
                let what = match *action {
                    1 => "run-macro",
                    2 => "run-program",
                    _ => "OLE-verb",
                };
                *action = 0;
                self.removed.push(Removed {
                    what: format!("{what} action (set to no action)"),
                    location: format!("stream {STREAM}, InteractiveInfoAtom at offset {at}"),
                });
            }
        }
        Ok(out)
    }
}

/// The body of the first `kind` atom among the records of `data` (one level).
fn find_atom(data: &[u8], kind: u16) -> Option<&[u8]> {
    let mut pos = 0;
    while let (Some(k), Some(len)) = (le16(data, pos + 2), le32(data, pos + 4)) {
        let body = slice(data, pos + 8, len as usize)?;
        if k == kind {
            return Some(body);
        }
        pos += 8 + len as usize;
    }
    None
}

/// Clears `fOleShape` in the `OfficeArtFSP` among a shape container's (rewritten) records.
fn clear_ole_shape(records: &mut [u8]) {
    let mut pos = 0;
    while let (Some(k), Some(len)) = (le16(records, pos + 2), le32(records, pos + 4)) {
        if k == OFFICEART_FSP {
            if let Some(flags) = records.get_mut(pos + 12) {
                *flags &= !0x10;
            }
            return;
        }
        pos += 8 + len as usize;
    }
}

/// The `PowerPoint Document` stream written anew as one full save: the live persist
/// objects (the newest edit's, as the persist directory chain names them) in their order,
/// without the `ExOleObjStg` storages (embedded objects, `ActiveX` controls, the VBA
/// project), the `ExObjList` entries of embedded objects, links and controls, the
/// `VBAInfoContainer`, and the shapes' references to the dropped objects (each such shape
/// keeps its picture, `fOleShape` cleared); then one persist directory and the current
/// `UserEditAtom` pointing at it (no earlier edit). Records only reference each other by
/// persist id, so nothing else moves with them. Superseded copies of records from earlier
/// incremental saves are not carried.
fn compact(
    stream: &[u8],
    current_user: Option<&[u8]>,
    ctx: &mut ScanContext,
) -> Result<Compacted, String> {
    let (objects, edit_at) = persist_objects(stream, current_user)?;
    let edit_len = le32(stream, edit_at + 4).unwrap_or(0) as usize;
    let edit = slice(stream, edit_at, 8 + edit_len)
        .filter(|_| edit_len >= 28)
        .ok_or_else(|| {
            format!("stream {STREAM}: the UserEditAtom at offset {edit_at} is cut short")
        })?;
    let doc_id = le32(edit, 8 + 16).unwrap_or(0);
    let mut order: Vec<(usize, u32)> = objects.iter().map(|(&id, &at)| (at, id)).collect();
    order.sort_unstable();
    let record = |at: usize| -> Result<&[u8], String> {
        le32(stream, at + 4)
            .and_then(|len| slice(stream, at, 8 + len as usize))
            .ok_or_else(|| {
                format!("stream {STREAM}: the persist object at offset {at} runs past the stream")
            })
    };
    let mut rw = Rewriter {
        ctx,
        objects: std::collections::HashSet::new(),
        dropped_ref: false,
        removed: Vec::new(),
    };
    // The document first: its object list says which object ids go.
    let mut written: std::collections::HashMap<u32, Vec<u8>> = std::collections::HashMap::new();
    if let Some(&at) = objects.get(&doc_id) {
        written.insert(doc_id, rw.records(record(at)?, at, 0, 0)?);
    }
    let mut out = Vec::with_capacity(stream.len());
    let mut directory: Vec<(u32, u32)> = Vec::new();
    for (at, id) in order {
        let rec = record(at)?;
        if le16(rec, 2) == Some(EX_OLE_OBJ_STG) {
            rw.removed.push(Removed {
                what: "embedded OLE object, ActiveX control or VBA project storage (ExOleObjStg)"
                    .into(),
                location: format!("stream {STREAM}, persist object {id} at offset {at}"),
            });
            continue;
        }
        let bytes = match written.remove(&id) {
            Some(b) => b,
            None => rw.records(rec, at, 0, 0)?,
        };
        let offset = u32::try_from(out.len())
            .map_err(|_| format!("stream {STREAM}: the copy would be over 4 GiB"))?;
        directory.push((id, offset));
        out.extend(bytes);
    }
    // One directory: runs of consecutive ids, at most 4095 each.
    directory.sort_unstable();
    let mut entries: Vec<u8> = Vec::new();
    let mut run: Vec<u32> = Vec::new();
    let mut run_first = 0u32;
    for (id, offset) in directory {
        if run.is_empty() || id != run_first + run.len() as u32 || run.len() >= 0xFFF {
            if !run.is_empty() {
                entries.extend_from_slice(&(run_first | ((run.len() as u32) << 20)).to_le_bytes());
                entries.extend(run.drain(..).flat_map(u32::to_le_bytes));
            }
            run_first = id;
        }
        run.push(offset);
    }
    if !run.is_empty() {
        entries.extend_from_slice(&(run_first | ((run.len() as u32) << 20)).to_le_bytes());
        entries.extend(run.drain(..).flat_map(u32::to_le_bytes));
    }
    let too_large = || format!("stream {STREAM}: the copy would be over 4 GiB");
    let dir_at = u32::try_from(out.len()).map_err(|_| too_large())?;
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&PERSIST_DIRECTORY_ATOM.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .map_err(|_| too_large())?
            .to_le_bytes(),
    );
    out.extend(entries);
    let current_edit = u32::try_from(out.len()).map_err(|_| too_large())?;
    // The current edit, its offsetLastEdit 0 (no earlier edit) and offsetPersistDirectory
    // the new directory.
    out.extend_from_slice(edit.get(..16).unwrap_or_default());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&dir_at.to_le_bytes());
    out.extend_from_slice(edit.get(24..).unwrap_or_default());
    u32::try_from(out.len()).map_err(|_| too_large())?;
    Ok(Compacted {
        stream: out,
        current_edit,
        removed: rw.removed,
    })
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
    if active.blocker.is_some() {
        // An object or a VBA project: the stream is written anew without them.
        let compact = match compact(&stream, current.as_deref(), &mut ctx) {
            Ok(c) => c,
            Err(why) => {
                rendition.removed.insert(
                    0,
                    Removed {
                        what: "no same-format copy: the presentation holds an object and its \
                               record stream cannot be rewritten (text rendition instead)"
                            .into(),
                        location: why,
                    },
                );
                return Ok(rendition);
            }
        };
        let Compacted {
            stream: new_stream,
            current_edit,
            removed: found,
        } = compact;
        let mut found = Some(found);
        let mut new_stream = Some(new_stream);
        let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
            if path.eq_ignore_ascii_case(STREAM) {
                if let Some(s) = new_stream.take() {
                    *bytes = s;
                }
                removed.extend(found.take().unwrap_or_default());
            } else if path.eq_ignore_ascii_case("Current User")
                && let Some(at) = bytes.get_mut(16..20)
            {
                at.copy_from_slice(&current_edit.to_le_bytes());
            }
            Ok(())
        };
        return cfb_write::copy_as(
            data,
            &cfb,
            &mut ctx,
            PREFIX,
            FileType::Ppt,
            &policy,
            &mut edit,
        );
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
    fn a_presentation_with_an_object_and_no_persist_directory_keeps_its_rendition() {
        let slide = container(SLIDE, 0, &[chars("Hi"), atom(EX_OLE_OBJ_STG, 1, &[0; 12])]);
        let file = cfb(&[(STREAM, &slide), ("Current User", &[0; 20])]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert!(
            d.removed[0].location.contains("UserEditAtom"),
            "{:?}",
            d.removed[0]
        );
    }

    /// A stream of persist objects (id, record) saved once: the records, a persist
    /// directory, a user edit (document persist id 1); and its `Current User` atom.
    fn saved(objects: &[(u32, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
        let mut stream = Vec::new();
        let mut entries = Vec::new();
        for (id, rec) in objects {
            entries.extend_from_slice(&(id | (1 << 20)).to_le_bytes());
            entries.extend_from_slice(&u32::try_from(stream.len()).unwrap().to_le_bytes());
            stream.extend_from_slice(rec);
        }
        let dir_at = u32::try_from(stream.len()).unwrap();
        stream.extend(atom(PERSIST_DIRECTORY_ATOM, 0, &entries));
        let edit_at = u32::try_from(stream.len()).unwrap();
        let mut edit = vec![0u8; 28];
        edit[12..16].copy_from_slice(&dir_at.to_le_bytes());
        edit[16..20].copy_from_slice(&1u32.to_le_bytes());
        stream.extend(atom(USER_EDIT_ATOM, 0, &edit));
        let mut user = atom(0x0FF6, 0, &[0; 20]);
        user[16..20].copy_from_slice(&edit_at.to_le_bytes());
        (stream, user)
    }

    /// Every record type of a stream (containers entered).
    fn kinds(stream: &[u8]) -> Vec<u16> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let (Some(v), Some(k), Some(len)) = (
            le16(stream, pos),
            le16(stream, pos + 2),
            le32(stream, pos + 4),
        ) {
            out.push(k);
            pos += if v & 0xF == 0xF { 8 } else { 8 + len as usize };
        }
        out
    }

    #[test]
    fn a_presentation_with_an_embedded_object_and_vba_is_written_anew_without_them() {
        let mut ole_atom = vec![0u8; 24];
        ole_atom[8..12].copy_from_slice(&7u32.to_le_bytes()); // exObjId
        ole_atom[16..20].copy_from_slice(&3u32.to_le_bytes()); // persistIdRef
        let mut vba_atom = vec![0u8; 12];
        vba_atom[0..4].copy_from_slice(&4u32.to_le_bytes());
        vba_atom[4] = 1;
        let document = container(
            0x03E8,
            0,
            &[
                container(
                    EX_OBJ_LIST,
                    0,
                    &[
                        atom(0x040A, 0, &[0; 8]),
                        container(EX_OLE_EMBED, 0, &[atom(EX_OLE_OBJ_ATOM, 1, &ole_atom)]),
                    ],
                ),
                container(
                    0x07D0,
                    0,
                    &[container(VBA_INFO, 1, &[atom(0x0400, 2, &vba_atom)])],
                ),
            ],
        );
        // The object's shape: fOleShape set, its client data naming object 7.
        let mut fsp = vec![0u8; 8];
        fsp[4] = 0x10 | 0x02;
        let shape = container(
            OFFICEART_SP,
            0,
            &[
                atom(OFFICEART_FSP, 2, &fsp),
                container(0xF011, 0, &[atom(EX_OBJ_REF_ATOM, 0, &7u32.to_le_bytes())]),
            ],
        );
        let slide = container(
            SLIDE,
            0,
            &[chars("Object slide"), container(0x040C, 0, &[shape])],
        );
        let storage = atom(EX_OLE_OBJ_STG, 1, &[9; 40]);
        let vba = atom(EX_OLE_OBJ_STG, 1, &[8; 30]);
        let (stream, user) = saved(&[(1, document), (2, slide), (3, storage), (4, vba)]);
        let file = cfb(&[
            (STREAM, &stream),
            ("Current User", &user),
            ("VBA/dir", b"x"),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Ppt, "{:?}", d.removed);
        let after = streams_of(&d.bytes);
        let new_user = &after[0].1;
        let new_stream = &after[1].1;
        assert_eq!(after.len(), 2, "no VBA storage");
        let found = kinds(new_stream);
        for gone in [
            EX_OLE_OBJ_STG,
            EX_OLE_EMBED,
            EX_OLE_OBJ_ATOM,
            VBA_INFO,
            EX_OBJ_REF_ATOM,
        ] {
            assert!(!found.contains(&gone), "{gone:#06x} in {found:x?}");
        }
        // fOleShape cleared, the other flags kept.
        let fsp_at = (0..new_stream.len() - 4)
            .find(|&i| le16(new_stream, i + 2) == Some(OFFICEART_FSP))
            .unwrap();
        assert_eq!(new_stream[fsp_at + 12], 0x02);
        // The persist directory leads to the document and the slide, and nothing else.
        let (objects, edit) = persist_objects(new_stream, Some(new_user)).unwrap();
        assert_eq!(objects.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(le16(new_stream, objects[&1] + 2), Some(0x03E8));
        assert_eq!(le16(new_stream, objects[&2] + 2), Some(SLIDE));
        assert_eq!(le32(new_stream, edit + 8 + 8), Some(0), "no earlier edit");
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        for what in [
            "embedded OLE object (its picture kept)",
            "macro project reference (VBAInfoContainer)",
            "shape's reference to a dropped object (the shape keeps its picture)",
        ] {
            assert!(whats.contains(&what), "{whats:?}");
        }
        assert_eq!(
            whats.iter().filter(|w| w.contains("(ExOleObjStg)")).count(),
            2
        );
        // The text is all there, and the copy scans clean.
        assert_eq!(
            render(&d.bytes, &Limits::default()).unwrap().bytes,
            render(&file, &Limits::default()).unwrap().bytes
        );
        let report = crate::report::scan_bytes(&d.bytes, Some("copy.ppt"), &Limits::default());
        assert_eq!(
            report.verdict,
            haetae_core::Verdict::Clean,
            "{:?}",
            report.findings
        );
    }
}
