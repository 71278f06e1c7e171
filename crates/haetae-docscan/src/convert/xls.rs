//! Excel 97–2003 (`.xls`, BIFF8, MS-XLS) to a plain-text rendition: one block per
//! worksheet, its name on the first line, then its rows, the cells of a row separated by
//! tabs (an empty cell keeps its tab, so columns line up), a blank line between sheets.
//!
//! The `Workbook` stream's globals give the sheets (`BoundSheet8`: name, type, offset of
//! the sheet's BOF) and the shared strings (`SST`, whose strings may be split over
//! `Continue` records, a split inside the characters starting with a new flags byte). A
//! cell is a `LabelSst` (a shared string), `Label`, `Number`, `RK`, `MulRk`, `BoolErr` or
//! a `Formula`'s cached result (a number, a boolean, an error, or the `String` record
//! after it); the formula itself is not rendered. Numbers are written as Excel stores
//! them (a date is its serial number; no number formats are applied). Chart sheets and
//! Excel 4.0 macro sheets are not rendered and are listed as removed; so are the VBA
//! project and every other stream.
//!
//! A BIFF5/7 workbook (Excel 5 and 95: a `Book` stream, or a BOF of version 0x0500) is
//! read the same way with BIFF5's layouts: no SST, strings in `Label`/`RString`/`String`
//! records and sheet names as one byte a character in the workbook's code page (the
//! `CodePage` record; CP1251 and CP1252 are decoded, other code pages are read as CP1252
//! and the `removed` list says so).
//!
//! A workbook encrypted with a password (`FilePass`) answers [`ConvertError::Encrypted`];
//! older BIFF versions (2–4, before compound files) [`ConvertError::Unsupported`].
//! Failures are `CONVERT-XLS-*` with the record type and its offset in the `Workbook`
//! stream.

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size, check_time};
use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le16, le32, slice};
use crate::container::cfb::DirEntry;
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-XLS";
const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const FILEPASS: u16 = 0x002F;
const BOUNDSHEET: u16 = 0x0085;
const SST: u16 = 0x00FC;
const CONTINUE: u16 = 0x003C;
const LABELSST: u16 = 0x00FD;
const LABEL: u16 = 0x0204;
const NUMBER: u16 = 0x0203;
const RK: u16 = 0x027E;
const MULRK: u16 = 0x00BD;
const BOOLERR: u16 = 0x0205;
const FORMULA: u16 = 0x0006;
const STRING: u16 = 0x0207;
const RSTRING: u16 = 0x00D6;
const CODEPAGE: u16 = 0x0042;

fn fail(code: &str, at: impl Into<String>, message: impl Into<String>) -> ConvertError {
    ConvertError::at(code, at.into(), message.into())
}

/// One record: type, offset of its header, body.
struct Record<'a> {
    kind: u16,
    offset: usize,
    body: &'a [u8],
}

impl Record<'_> {
    fn at(&self) -> String {
        format!(
            "stream Workbook, record {:#06x} at offset {}",
            self.kind, self.offset
        )
    }
}

/// The record at `pos`, or a failure naming where the stream ends inside it.
fn record(wb: &[u8], pos: usize) -> Result<Record<'_>, ConvertError> {
    let (Some(kind), Some(len)) = (le16(wb, pos), le16(wb, pos + 2)) else {
        return Err(fail(
            "CONVERT-XLS-RECORD",
            format!("stream Workbook, offset {pos}"),
            "the stream ends inside a record header",
        ));
    };
    let body = slice(wb, pos + 4, usize::from(len)).ok_or_else(|| {
        fail(
            "CONVERT-XLS-RECORD",
            format!("stream Workbook, record {kind:#06x} at offset {pos}"),
            format!("a record of {len} bytes runs past the end of the stream"),
        )
    })?;
    Ok(Record {
        kind,
        offset: pos,
        body,
    })
}

/// The record layouts of the workbook's BIFF version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Biff {
    /// Excel 97 and later: SST, strings with a flags byte (UTF-16 or Latin-1).
    Eight,
    /// Excel 5 and 95: no SST, 8-bit strings in this code page.
    Five(u32),
}

/// A sheet of the workbook.
struct Sheet {
    name: String,
    offset: usize,
    kind: u8,
}

/// The text rendition of a BIFF8 workbook.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let (stream_name, wb) = match rendition::stream(data, &cfb, "Workbook", &mut ctx, PREFIX)? {
        Some(wb) => ("Workbook", wb),
        None => match rendition::stream(data, &cfb, "Book", &mut ctx, PREFIX)? {
            Some(wb) => ("Book", wb),
            None => {
                return Err(fail(
                    "CONVERT-XLS-WORKBOOK",
                    "file",
                    "the compound file has no Workbook (or BIFF5 Book) stream",
                ));
            }
        },
    };
    let first = record(&wb, 0)?;
    if first.kind != BOF || le16(first.body, 2) != Some(0x0005) {
        return Err(fail(
            "CONVERT-XLS-BOF",
            first.at(),
            "the stream does not start with the workbook globals' BOF",
        ));
    }
    let biff = match le16(first.body, 0) {
        Some(0x0600) => Biff::Eight,
        Some(0x0500) => Biff::Five(1252),
        _ => return Err(ConvertError::Unsupported(FileType::Xls)),
    };
    // The globals: sheets, shared strings, code page.
    let mut sheets = Vec::new();
    let mut sst: Vec<String> = Vec::new();
    let mut codepage = 1252u16;
    let mut bound = Vec::new();
    let mut pos = 4 + first.body.len();
    loop {
        let r = record(&wb, pos)?;
        check_time(&mut ctx, PREFIX, &r.at())?;
        pos += 4 + r.body.len();
        match r.kind {
            EOF => break,
            FILEPASS => return Err(ConvertError::Encrypted(FileType::Xls)),
            CODEPAGE => codepage = le16(r.body, 0).unwrap_or(1252),
            BOUNDSHEET => bound.push(r),
            SST => {
                let mut segments = vec![r.body];
                while let Ok(next) = record(&wb, pos) {
                    if next.kind != CONTINUE {
                        break;
                    }
                    segments.push(next.body);
                    pos += 4 + next.body.len();
                }
                sst = shared_strings(&segments, &r.at(), &ctx)?;
            }
            _ => {}
        }
    }
    let biff = match biff {
        Biff::Five(_) => Biff::Five(u32::from(codepage)),
        Biff::Eight => Biff::Eight,
    };
    for r in &bound {
        sheets.push(bound_sheet(r, biff)?);
    }
    let mut text = String::new();
    let mut removed = Vec::new();
    for sheet in &sheets {
        if sheet.kind != 0 {
            removed.push(Removed {
                what: match sheet.kind {
                    1 => "Excel 4.0 macro sheet (not rendered)".to_owned(),
                    2 => "chart sheet (not rendered)".to_owned(),
                    _ => "sheet of another type (not rendered)".to_owned(),
                },
                location: format!("sheet {}", sheet.name),
            });
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&sheet.name);
        text.push('\n');
        let cells = sheet_cells(&wb, sheet, &sst, biff, &mut ctx)?;
        push_rows(&mut text, cells);
        check_size(&text, &ctx, PREFIX, &format!("sheet {}", sheet.name))?;
    }
    let mut d = rendition::finish(text, &cfb, FileType::Xls, &[stream_name.to_owned()]);
    if matches!(biff, Biff::Five(_)) && !rendition::known_codepage(u32::from(codepage)) {
        d.removed.push(Removed {
            what: format!(
                "code page {codepage}: its characters above 0x7F are shown as CP1252 (no decoder for it)"
            ),
            location: "record CodePage".into(),
        });
    }
    d.removed.extend(removed);
    Ok(d)
}

/// The cells as rows: one line a row, tab-separated, an empty cell keeping its tab.
fn push_rows(text: &mut String, mut cells: Vec<(u16, u16, String)>) {
    cells.sort_by_key(|c| (c.0, c.1));
    let mut row: Option<u16> = None;
    let mut col = 0u16;
    for (r, c, value) in cells {
        if row != Some(r) {
            if row.is_some() {
                text.push('\n');
            }
            row = Some(r);
            col = 0;
        }
        while col < c {
            text.push('\t');
            col += 1;
        }
        text.push_str(&value);
    }
    if row.is_some() {
        text.push('\n');
    }
}

/// BOF record types of BIFF2, BIFF3, BIFF4 and BIFF5/8.
fn is_bof(kind: u16) -> bool {
    matches!(kind, 0x0009 | 0x0209 | 0x0409 | BOF)
}

/// Whether `data` is a BIFF3 or BIFF4 worksheet file (Excel 3 and 4, before compound
/// files: the BIFF stream is the file), which the type detector leaves unknown.
pub(super) fn sniff_old(data: &[u8]) -> bool {
    matches!(le16(data, 0), Some(0x0209 | 0x0409)) && le16(data, 2) == Some(6)
}

/// The text rendition of an Excel 3 or 4 worksheet (`BIFF3`/`BIFF4`, one sheet a file):
/// its rows, as a sheet of a BIFF5 workbook (the cell records are laid out the same);
/// an Excel 4 workbook (`BOF` type 0x0100) or a chart answers `Unsupported`.
pub(super) fn render_old(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let first = record(data, 0)?;
    if le16(first.body, 2) != Some(0x0010) {
        return Err(ConvertError::Unsupported(FileType::Unknown));
    }
    let version = if first.kind == 0x0209 {
        "BIFF3"
    } else {
        "BIFF4"
    };
    let mut codepage = 1252u32;
    let mut pos = 0;
    while let Ok(r) = record(data, pos) {
        if r.kind == CODEPAGE {
            codepage = u32::from(le16(r.body, 0).unwrap_or(1252));
            break;
        }
        if r.kind == EOF {
            break;
        }
        pos += 4 + r.body.len();
    }
    let sheet = Sheet {
        name: "Worksheet".into(),
        offset: 0,
        kind: 0,
    };
    let cells = sheet_cells(data, &sheet, &[], Biff::Five(codepage), &mut ctx)?;
    let mut text = String::new();
    push_rows(&mut text, cells);
    check_size(&text, &ctx, PREFIX, "worksheet")?;
    if text.is_empty() {
        text.push('\n');
    }
    let mut removed = vec![Removed {
        what: format!(
            "binary {version} worksheet format (the copy is a plain-text rendition, not a rebuild)"
        ),
        location: "file".into(),
    }];
    if !rendition::known_codepage(codepage) {
        removed.push(Removed {
            what: format!(
                "code page {codepage}: its characters above 0x7F are shown as CP1252 (no decoder for it)"
            ),
            location: "record CodePage".into(),
        });
    }
    Ok(Disarmed {
        bytes: text.into_bytes(),
        file_type: FileType::Text,
        removed,
    })
}

fn bound_sheet(r: &Record, biff: Biff) -> Result<Sheet, ConvertError> {
    if let Biff::Five(codepage) = biff {
        // lbPlyPos, visibility, type, then the name: a length byte and 8-bit characters.
        let (Some(offset), Some(&kind), Some(&cch)) =
            (le32(r.body, 0), r.body.get(5), r.body.get(6))
        else {
            return Err(fail(
                "CONVERT-XLS-BOUNDSHEET",
                r.at(),
                "a BoundSheet record too short for its fields",
            ));
        };
        let name = ansi(
            r.body.get(7..).unwrap_or_default(),
            usize::from(cch),
            codepage,
        )
        .ok_or_else(|| {
            fail(
                "CONVERT-XLS-BOUNDSHEET",
                r.at(),
                "the sheet name runs past the record",
            )
        })?;
        return Ok(Sheet {
            name,
            offset: offset as usize,
            kind,
        });
    }
    let (Some(offset), Some(&kind), Some(&cch), Some(&flags)) =
        (le32(r.body, 0), r.body.get(5), r.body.get(6), r.body.get(7))
    else {
        return Err(fail(
            "CONVERT-XLS-BOUNDSHEET",
            r.at(),
            "a BoundSheet8 record too short for its fields",
        ));
    };
    let name = chars(
        r.body.get(8..).unwrap_or_default(),
        usize::from(cch),
        flags & 1 != 0,
    )
    .map(|(s, _)| s)
    .ok_or_else(|| {
        fail(
            "CONVERT-XLS-BOUNDSHEET",
            r.at(),
            "the sheet name runs past the record",
        )
    })?;
    Ok(Sheet {
        name,
        offset: offset as usize,
        kind,
    })
}

/// `n` characters from `bytes` (UTF-16LE when `high`, else one byte a character), and
/// the bytes they took; `None` when `bytes` is too short.
fn chars(bytes: &[u8], n: usize, high: bool) -> Option<(String, usize)> {
    if high {
        let raw = slice(bytes, 0, n.checked_mul(2)?)?;
        let mut s = String::new();
        rendition::push_utf16(&mut s, rendition::utf16_units(raw));
        Some((s, raw.len()))
    } else {
        let raw = slice(bytes, 0, n)?;
        Some((raw.iter().copied().map(char::from).collect(), n))
    }
}

/// `n` 8-bit characters of a BIFF5 string in `codepage`; `None` when `bytes` is too short.
fn ansi(bytes: &[u8], n: usize, codepage: u32) -> Option<String> {
    Some(rendition::decode_8bit(slice(bytes, 0, n)?, codepage))
}

/// A string cell's text: BIFF8 `XLUnicodeString` (length, flags, characters) or BIFF5
/// (length, 8-bit characters), the length 16 bits; at most what `b` holds when `clip`.
fn cell_string(b: &[u8], biff: Biff, clip: bool) -> Option<String> {
    let cch = usize::from(le16(b, 0)?);
    match biff {
        Biff::Five(codepage) => {
            let rest = b.get(2..)?;
            ansi(rest, if clip { cch.min(rest.len()) } else { cch }, codepage)
        }
        Biff::Eight => {
            let high = b.get(2)? & 1 != 0;
            let rest = b.get(3..)?;
            let n = if clip {
                cch.min(rest.len() / if high { 2 } else { 1 })
            } else {
                cch
            };
            chars(rest, n, high).map(|(s, _)| s)
        }
    }
}

/// A reader over the SST record and its `Continue` records.
struct Segments<'a, 'b> {
    segments: &'b [&'a [u8]],
    index: usize,
    pos: usize,
}

impl Segments<'_, '_> {
    fn current(&self) -> &[u8] {
        self.segments
            .get(self.index)
            .and_then(|s| s.get(self.pos..))
            .unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.current().is_empty()
            && self
                .segments
                .get(self.index + 1..)
                .unwrap_or_default()
                .iter()
                .all(|s| s.is_empty())
    }

    fn next_segment(&mut self) -> bool {
        if self.index + 1 >= self.segments.len() {
            return false;
        }
        self.index += 1;
        self.pos = 0;
        true
    }

    /// `n` bytes of fields (which may straddle a `Continue`).
    fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(1024));
        while out.len() < n {
            if self.current().is_empty() && !self.next_segment() {
                return None;
            }
            let take = (n - out.len()).min(self.current().len());
            out.extend_from_slice(self.current().get(..take)?);
            self.pos += take;
        }
        Some(out)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let mut left = n;
        while left > 0 {
            if self.current().is_empty() && !self.next_segment() {
                return None;
            }
            let take = left.min(self.current().len());
            self.pos += take;
            left -= take;
        }
        Some(())
    }

    /// `n` characters; a `Continue` inside them starts with a new flags byte.
    fn chars(&mut self, n: usize, mut high: bool) -> Option<String> {
        let mut out = String::new();
        let mut left = n;
        while left > 0 {
            if self.current().is_empty() {
                if !self.next_segment() {
                    return None;
                }
                high = self.bytes(1)?.first()? & 1 != 0;
                continue;
            }
            let width = if high { 2 } else { 1 };
            let fit = (self.current().len() / width).min(left);
            if fit == 0 {
                return None;
            }
            let (s, used) = chars(self.current(), fit, high)?;
            out.push_str(&s);
            self.pos += used;
            left -= fit;
        }
        Some(out)
    }
}

fn shared_strings(
    segments: &[&[u8]],
    at: &str,
    ctx: &ScanContext,
) -> Result<Vec<String>, ConvertError> {
    let unique = le32(segments.first().copied().unwrap_or_default(), 4).unwrap_or(0) as usize;
    let mut reader = Segments {
        segments,
        index: 0,
        pos: 8,
    };
    let mut out = Vec::with_capacity(unique.min(65_536));
    let mut total = 0usize;
    for i in 0..unique {
        let broken = || {
            fail(
                "CONVERT-XLS-SST",
                at.to_owned(),
                format!("shared string {i} of {unique} runs past the SST and its Continue records"),
            )
        };
        // Fewer strings than cstUnique says, ending at a string boundary: Excel reads
        // such files (a cell naming a missing string still fails, CONVERT-XLS-SST-INDEX).
        if reader.at_end() {
            break;
        }
        let head = reader.bytes(3).ok_or_else(broken)?;
        let cch = usize::from(le16(&head, 0).ok_or_else(broken)?);
        let flags = head.get(2).copied().ok_or_else(broken)?;
        let runs = if flags & 0x08 != 0 {
            let b = reader.bytes(2).ok_or_else(broken)?;
            usize::from(le16(&b, 0).ok_or_else(broken)?)
        } else {
            0
        };
        let ext = if flags & 0x04 != 0 {
            let b = reader.bytes(4).ok_or_else(broken)?;
            le32(&b, 0).ok_or_else(broken)? as usize
        } else {
            0
        };
        let s = reader.chars(cch, flags & 1 != 0).ok_or_else(broken)?;
        reader.skip(runs * 4 + ext).ok_or_else(broken)?;
        total += s.len();
        if total as u64 > ctx.limits().memory_bytes {
            return Err(fail(
                "CONVERT-XLS-SIZE",
                at.to_owned(),
                "the shared strings pass the memory budget",
            ));
        }
        out.push(s);
    }
    Ok(out)
}

/// An RK number.
fn rk(v: u32) -> f64 {
    let n = if v & 2 != 0 {
        f64::from(i32::from_le_bytes(v.to_le_bytes()) >> 2)
    } else {
        f64::from_bits(u64::from(v & 0xFFFF_FFFC) << 32)
    };
    if v & 1 != 0 { n / 100.0 } else { n }
}

fn number(n: f64) -> String {
    format!("{n}")
}

fn bool_err(value: u8, error: bool) -> String {
    if !error {
        return if value == 0 { "FALSE" } else { "TRUE" }.to_owned();
    }
    match value {
        0x00 => "#NULL!",
        0x07 => "#DIV/0!",
        0x0F => "#VALUE!",
        0x17 => "#REF!",
        0x1D => "#NAME?",
        0x24 => "#NUM!",
        0x2A => "#N/A",
        _ => "#ERROR",
    }
    .to_owned()
}

/// The cells of one worksheet: (row, column, text).
fn sheet_cells(
    wb: &[u8],
    sheet: &Sheet,
    sst: &[String],
    biff: Biff,
    ctx: &mut ScanContext,
) -> Result<Vec<(u16, u16, String)>, ConvertError> {
    let bof = record(wb, sheet.offset).map_err(|_| {
        fail(
            "CONVERT-XLS-BOUNDSHEET",
            format!("sheet {}", sheet.name),
            format!(
                "its BOF offset {} is past the end of the Workbook stream",
                sheet.offset
            ),
        )
    })?;
    if !is_bof(bof.kind) {
        return Err(fail(
            "CONVERT-XLS-BOUNDSHEET",
            format!("sheet {}", sheet.name),
            format!("no BOF record at its offset {}", sheet.offset),
        ));
    }
    let mut cells = Vec::new();
    let mut bytes = 0usize;
    let mut pos = sheet.offset + 4 + bof.body.len();
    // The cell of a string-valued formula, waiting for its String record.
    let mut pending: Option<(u16, u16)> = None;
    let mut nested = 0u32;
    loop {
        let r = record(wb, pos)?;
        let at = r.at();
        check_time(ctx, PREFIX, &at)?;
        pos += 4 + r.body.len();
        let b = r.body;
        let short = || {
            fail(
                "CONVERT-XLS-CELL",
                at.clone(),
                "a cell record too short for its fields",
            )
        };
        let rc = || Some((le16(b, 0)?, le16(b, 2)?));
        let cell: Option<(u16, u16, String)> = match r.kind {
            EOF if nested == 0 => break,
            EOF => {
                nested -= 1;
                None
            }
            // An embedded chart's substream (BOF .. EOF) inside the sheet: not rendered.
            k if is_bof(k) => {
                nested += 1;
                if nested > 16 {
                    return Err(fail(
                        "CONVERT-XLS-RECORD",
                        at,
                        "substreams nested more than 16 deep in a sheet",
                    ));
                }
                None
            }
            _ if nested > 0 => None,
            LABELSST => {
                let (row, col) = rc().ok_or_else(short)?;
                let i = le32(b, 6).ok_or_else(short)?;
                let s = sst.get(i as usize).ok_or_else(|| {
                    fail(
                        "CONVERT-XLS-SST-INDEX",
                        at.clone(),
                        format!("shared string {i} of {}", sst.len()),
                    )
                })?;
                Some((row, col, s.clone()))
            }
            // RString: a Label with formatting runs after the text.
            LABEL | RSTRING => {
                let (row, col) = rc().ok_or_else(short)?;
                let s =
                    cell_string(b.get(6..).unwrap_or_default(), biff, false).ok_or_else(short)?;
                Some((row, col, s))
            }
            NUMBER => {
                let (row, col) = rc().ok_or_else(short)?;
                let v = slice(b, 6, 8).ok_or_else(short)?;
                Some((
                    row,
                    col,
                    number(f64::from_le_bytes(v.try_into().unwrap_or_default())),
                ))
            }
            RK => {
                let (row, col) = rc().ok_or_else(short)?;
                Some((row, col, number(rk(le32(b, 6).ok_or_else(short)?))))
            }
            MULRK => {
                let (row, first) = rc().ok_or_else(short)?;
                let n = b.len().saturating_sub(6) / 6;
                for k in 0..n {
                    let v = le32(b, 4 + k * 6 + 2).ok_or_else(short)?;
                    let col = first.saturating_add(u16::try_from(k).unwrap_or(u16::MAX));
                    cells.push((row, col, number(rk(v))));
                }
                None
            }
            BOOLERR => {
                let (row, col) = rc().ok_or_else(short)?;
                let (Some(&v), Some(&e)) = (b.get(6), b.get(7)) else {
                    return Err(short());
                };
                Some((row, col, bool_err(v, e != 0)))
            }
            // BIFF5/8, BIFF3 and BIFF4 formula records (the same cached-result layout).
            FORMULA | 0x0206 | 0x0406 => {
                let (row, col) = rc().ok_or_else(short)?;
                let v = slice(b, 6, 8).ok_or_else(short)?;
                if v.get(6..8) == Some(&[0xFF, 0xFF]) {
                    match v.first() {
                        Some(0) => {
                            pending = Some((row, col));
                            None
                        }
                        Some(1) => {
                            Some((row, col, bool_err(v.get(2).copied().unwrap_or(0), false)))
                        }
                        Some(2) => Some((row, col, bool_err(v.get(2).copied().unwrap_or(0), true))),
                        _ => None,
                    }
                } else {
                    Some((
                        row,
                        col,
                        number(f64::from_le_bytes(v.try_into().unwrap_or_default())),
                    ))
                }
            }
            STRING => {
                if let Some((row, col)) = pending.take() {
                    // A long result continues in Continue records; its first part is kept.
                    let s = cell_string(b, biff, true).ok_or_else(short)?;
                    Some((row, col, s))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(c) = cell {
            bytes += c.2.len() + 8;
            cells.push(c);
        }
        if bytes as u64 > ctx.limits().memory_bytes {
            return Err(fail(
                "CONVERT-XLS-SIZE",
                at,
                "the sheet's cells pass the memory budget",
            ));
        }
    }
    Ok(cells)
}

/// Top-level streams a workbook copy keeps.
const KEPT: [&str; 5] = [
    "Workbook",
    "Book",
    "\u{5}SummaryInformation",
    "\u{5}DocumentSummaryInformation",
    "\u{1}CompObj",
];
const SUPBOOK: u16 = 0x01AE;
const EXTERNNAME: u16 = 0x0023;
const DCONN: u16 = 0x0876;
const DBQUERYEXT: u16 = 0x0803;
const EXTERNSHEET: u16 = 0x0017;

/// What a workbook copy leaves out.
fn policy(e: &DirEntry) -> Keep {
    if let Some(keep) = cfb_write::kept_top(e, &KEPT) {
        return keep;
    }
    let p = e.path.as_str();
    let upper = p.to_ascii_uppercase();
    if upper == "_VBA_PROJECT_CUR" || upper == "_VBA_PROJECT" {
        Keep::Drop("macro project (VBA)")
    } else if upper.starts_with("MBD") {
        Keep::Drop("embedded OLE object")
    } else if upper.starts_with("_SX_DB") {
        Keep::Drop("pivot-table cache")
    } else {
        Keep::Drop("storage or stream the workbook does not need")
    }
}

/// What the record walk of a workbook stream found.
#[derive(Debug, Default)]
struct Active {
    /// `SupBook` paths to blank in place: offset and width (1 or 2) of each character,
    /// with the path as read.
    paths: Vec<(Vec<(usize, usize)>, String)>,
    /// Why the stream holds active content that a same-length rewrite cannot take out.
    blocker: Option<String>,
}

/// Walks every record of the workbook stream. Excel 4.0 macro sheets and VB module sheets
/// (`BoundSheet8.dt` 1 and 6), external data connections (`DConn`, `DbQueryExt`), a
/// BIFF5 `ExternSheet` naming another file, and an `ExternName` not under a `SupBook`
/// this walk neutralises are blockers. A BIFF8 `SupBook` naming another workbook, a DDE
/// source (`app\x03topic`) or an OLE link gets its path blanked (spaces, the same
/// length): the formulas keep their cached values, the links lead nowhere. Zero padding
/// at the end of the stream is not a record.
fn active_records(wb: &[u8], biff5: bool) -> Active {
    let mut out = Active::default();
    let mut pos = 0usize;
    // Whether the last SupBook was neutralised or internal (its ExternNames are harmless).
    let mut supbook_ok = false;
    while pos < wb.len() {
        let Ok(r) = record(wb, pos) else {
            if wb
                .get(pos..)
                .is_some_and(|rest| rest.iter().all(|&b| b == 0))
            {
                break;
            }
            out.blocker = Some(format!("the record at offset {pos} cannot be read"));
            return out;
        };
        let at = r.at();
        let blocker = match r.kind {
            BOUNDSHEET if matches!(r.body.get(5), Some(1 | 6)) => {
                Some(format!("{at}: an Excel 4.0 macro sheet or VB module sheet"))
            }
            SUPBOOK => {
                let cch = usize::from(le16(r.body, 2).unwrap_or(0));
                if cch == 0x0401 || cch == 0x3A01 {
                    supbook_ok = true;
                    None
                } else {
                    let wide = r.body.get(4).is_some_and(|f| f & 1 != 0);
                    let width = if wide { 2 } else { 1 };
                    let start = pos + 4 + 5;
                    if cch == 0 || 5 + cch * width > r.body.len() {
                        supbook_ok = false;
                        Some(format!(
                            "{at}: a link whose path runs into a Continue record"
                        ))
                    } else {
                        let chars: Vec<(usize, usize)> =
                            (0..cch).map(|k| (start + k * width, width)).collect();
                        let path: String = chars
                            .iter()
                            .map(|&(o, w)| {
                                let u = if w == 2 {
                                    le16(wb, o).unwrap_or(0)
                                } else {
                                    u16::from(wb.get(o).copied().unwrap_or(0))
                                };
                                char::from_u32(u32::from(u))
                                    .filter(|c| !c.is_control())
                                    .unwrap_or('|')
                            })
                            .collect();
                        out.paths.push((chars, path));
                        supbook_ok = true;
                        None
                    }
                }
            }
            EXTERNNAME if !supbook_ok || biff5 => Some(format!("{at}: an external (DDE/OLE) name")),
            EXTERNSHEET if biff5 && r.body.get(1) == Some(&1) => {
                Some(format!("{at}: a link to another workbook"))
            }
            DCONN | DBQUERYEXT => Some(format!("{at}: an external data connection")),
            _ => None,
        };
        if blocker.is_some() {
            out.blocker = blocker;
            return out;
        }
        pos += 4 + r.body.len();
    }
    out
}

/// The same-format copy of a workbook: the rendition first (a failure there is the
/// conversion's finding), then the compound file with only [`KEPT`] streams — no VBA
/// project, embedded objects (`MBD…`) or pivot caches. A workbook stream with macro
/// sheets, external links, DDE or data connections keeps the text rendition instead
/// (a record-level rewrite of those is not exact), and `removed` says why.
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut rendition = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let (name, wb) = match rendition::stream(data, &cfb, "Workbook", &mut ctx, PREFIX)? {
        Some(wb) => ("Workbook", wb),
        None => (
            "Book",
            rendition::stream(data, &cfb, "Book", &mut ctx, PREFIX)?.unwrap_or_default(),
        ),
    };
    let biff5 = name == "Book" || record(&wb, 0).is_ok_and(|r| le16(r.body, 0) == Some(0x0500));
    let active = active_records(&wb, biff5);
    if let Some(why) = active.blocker {
        rendition.removed.insert(
            0,
            Removed {
                what: "no same-format copy: the workbook stream holds active content (text rendition instead)".into(),
                location: why.replace("stream Workbook", &format!("stream {name}")),
            },
        );
        return Ok(rendition);
    }
    let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
        if path.eq_ignore_ascii_case(name) {
            for (chars, link) in &active.paths {
                for &(at, width) in chars {
                    if let Some(c) = bytes.get_mut(at..at + width) {
                        for (k, b) in c.iter_mut().enumerate() {
                            *b = if k == 0 { b' ' } else { 0 };
                        }
                    }
                }
                removed.push(Removed {
                    what:
                        "link to another workbook, DDE source or OLE link (path blanked in place)"
                            .into(),
                    location: format!(
                        "stream {name}, SupBook at offset {}: {link}",
                        chars.first().map_or(0, |c| c.0.saturating_sub(9))
                    ),
                });
            }
        }
        Ok(())
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Xls,
        &policy,
        &mut edit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::EntryKind;
    use crate::container::cfb::build::cfb;

    fn rec(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn bof(dt: u16) -> Vec<u8> {
        let mut b = 0x0600u16.to_le_bytes().to_vec();
        b.extend_from_slice(&dt.to_le_bytes());
        b.extend_from_slice(&[0; 12]);
        rec(BOF, &b)
    }

    fn cell(row: u16, col: u16) -> Vec<u8> {
        let mut b = row.to_le_bytes().to_vec();
        b.extend_from_slice(&col.to_le_bytes());
        b.extend_from_slice(&15u16.to_le_bytes());
        b
    }

    /// An SST whose first string is split over a Continue inside its characters (the
    /// Continue switching from one byte a character to UTF-16), its second rich.
    fn sst() -> Vec<u8> {
        // cstUnique says 4; the records hold 3 (Excel reads that).
        let mut body = 3u32.to_le_bytes().to_vec();
        body.extend_from_slice(&4u32.to_le_bytes());
        body.extend_from_slice(&5u16.to_le_bytes());
        body.push(0);
        body.extend_from_slice(b"Acc");
        let mut out = rec(SST, &body);
        let mut cont = vec![1u8];
        cont.extend("ou".encode_utf16().flat_map(u16::to_le_bytes));
        // "계좌", UTF-16, rich (1 run), with 4 bytes of extended data.
        cont.extend_from_slice(&2u16.to_le_bytes());
        cont.push(0x01 | 0x08 | 0x04);
        cont.extend_from_slice(&1u16.to_le_bytes());
        cont.extend_from_slice(&4u32.to_le_bytes());
        cont.extend("계좌".encode_utf16().flat_map(u16::to_le_bytes));
        cont.extend_from_slice(&[0; 4 + 4]);
        cont.extend_from_slice(&1u16.to_le_bytes());
        cont.push(0);
        cont.push(b'z');
        out.extend(rec(CONTINUE, &cont));
        out
    }

    fn workbook(filepass: bool) -> Vec<u8> {
        let sheet_records = |cells: &[Vec<u8>]| {
            let mut s = bof(0x10);
            for c in cells {
                s.extend_from_slice(c);
            }
            s.extend(rec(EOF, &[]));
            s
        };
        let mut labelsst = cell(0, 0);
        labelsst.extend_from_slice(&0u32.to_le_bytes());
        let mut label = cell(0, 2);
        label.extend_from_slice(&3u16.to_le_bytes());
        label.push(0);
        label.extend_from_slice(b"abc");
        let mut num = cell(1, 0);
        num.extend_from_slice(&1.5f64.to_le_bytes());
        let mut rk_cell = cell(1, 1);
        rk_cell.extend_from_slice(&((12_345u32 << 2) | 2 | 1).to_le_bytes()); // 123.45
        let mut mulrk = 2u16.to_le_bytes().to_vec();
        mulrk.extend_from_slice(&1u16.to_le_bytes());
        for v in [7u32, 8] {
            mulrk.extend_from_slice(&15u16.to_le_bytes());
            mulrk.extend_from_slice(&((v << 2) | 2).to_le_bytes());
        }
        mulrk.extend_from_slice(&2u16.to_le_bytes());
        let mut formula = cell(3, 0);
        formula.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        formula.extend_from_slice(&[0; 6]);
        let mut string = 4u16.to_le_bytes().to_vec();
        string.push(0);
        string.extend_from_slice(b"=str");
        let mut boolean = cell(3, 1);
        boolean.extend_from_slice(&[1, 0]);
        let first = sheet_records(&[
            rec(LABELSST, &labelsst),
            rec(LABEL, &label),
            rec(NUMBER, &num),
            rec(RK, &rk_cell),
            rec(MULRK, &mulrk),
            rec(FORMULA, &formula),
            rec(STRING, &string),
            rec(BOOLERR, &boolean),
        ]);
        // An embedded chart inside the second sheet, with a label of its own.
        let mut chart = bof(0x20);
        let mut chart_label = cell(9, 9);
        chart_label.extend_from_slice(&5u16.to_le_bytes());
        chart_label.push(0);
        chart_label.extend_from_slice(b"chart");
        chart.extend(rec(LABEL, &chart_label));
        chart.extend(rec(EOF, &[]));
        let mut second_cell = cell(0, 0);
        second_cell.extend_from_slice(&1u32.to_le_bytes());
        let mut third = cell(1, 0);
        third.extend_from_slice(&2u32.to_le_bytes());
        let second = sheet_records(&[rec(LABELSST, &second_cell), chart, rec(LABELSST, &third)]);
        let macro_sheet = sheet_records(&[]);
        let boundsheet = |offset: u32, kind: u8, name: &str| {
            let mut b = offset.to_le_bytes().to_vec();
            b.push(0);
            b.push(kind);
            b.push(u8::try_from(name.len()).unwrap());
            b.push(0);
            b.extend_from_slice(name.as_bytes());
            rec(BOUNDSHEET, &b)
        };
        // The globals' length does not depend on the offsets: build twice.
        let globals = |offsets: [u32; 3]| {
            let mut g = bof(0x05);
            if filepass {
                g.extend(rec(FILEPASS, &[0; 6]));
            }
            g.extend(boundsheet(offsets[0], 0, "Sheet1"));
            g.extend(boundsheet(offsets[1], 1, "Macro1"));
            g.extend(boundsheet(offsets[2], 0, "Second"));
            g.extend(sst());
            g.extend(rec(EOF, &[]));
            g
        };
        let len = u32::try_from(globals([0; 3]).len()).unwrap();
        let first_len = u32::try_from(first.len()).unwrap();
        let macro_len = u32::try_from(macro_sheet.len()).unwrap();
        let mut wb = globals([len, len + first_len, len + first_len + macro_len]);
        wb.extend(first);
        wb.extend(macro_sheet);
        wb.extend(second);
        cfb(&[("Workbook", &wb), ("_VBA_PROJECT_CUR/VBA", b"x")])
    }

    #[test]
    fn sheets_rows_and_every_cell_kind() {
        let d = render(&workbook(false), &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "Sheet1\nAccou\t\tabc\n1.5\t123.45\n\t7\t8\n=str\tTRUE\n\nSecond\n계좌\nz\n"
        );
        assert!(d.removed.iter().any(|r| r.location == "sheet Macro1"));
        assert!(
            d.removed
                .iter()
                .any(|r| r.location == "stream _VBA_PROJECT_CUR/VBA")
        );
    }

    #[test]
    fn encrypted_is_unsupported() {
        assert_eq!(
            render(&workbook(true), &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Xls)
        );
    }

    #[test]
    fn broken_workbooks_name_the_record() {
        let failure = |data: &[u8]| match render(data, &Limits::default()) {
            Err(ConvertError::Failed(f)) => (f[0].code.clone(), f[0].location.clone()),
            other => panic!("{other:?}"),
        };
        // A LabelSst past the SST.
        let mut wb = bof(0x05);
        let sheet_at = u32::try_from(wb.len() + 4 + 9 + 4).unwrap();
        let mut b = sheet_at.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0, 1, 0, b'S']);
        wb.extend(rec(BOUNDSHEET, &b));
        wb.extend(rec(EOF, &[]));
        assert_eq!(wb.len(), sheet_at as usize);
        wb.extend(bof(0x10));
        let mut c = cell(0, 0);
        c.extend_from_slice(&9u32.to_le_bytes());
        let at = wb.len();
        wb.extend(rec(LABELSST, &c));
        wb.extend(rec(EOF, &[]));
        let (code, location) = failure(&cfb(&[("Workbook", &wb)]));
        assert_eq!(code, "CONVERT-XLS-SST-INDEX");
        assert_eq!(
            location,
            format!("stream Workbook, record 0x00fd at offset {at}")
        );
        // Cut inside that record.
        wb.truncate(at + 6);
        assert_eq!(failure(&cfb(&[("Workbook", &wb)])).0, "CONVERT-XLS-RECORD");
        // An SST string running past its records.
        let mut bad = bof(0x05);
        let mut s = 1u32.to_le_bytes().to_vec();
        s.extend_from_slice(&1u32.to_le_bytes());
        s.extend_from_slice(&[50, 0, 0, b'x']);
        bad.extend(rec(SST, &s));
        bad.extend(rec(EOF, &[]));
        assert_eq!(failure(&cfb(&[("Workbook", &bad)])).0, "CONVERT-XLS-SST");
        assert_eq!(failure(&cfb(&[("Other", b"x")])).0, "CONVERT-XLS-WORKBOOK");
        assert_eq!(failure(&cfb(&[("Book", b"x")])).0, "CONVERT-XLS-RECORD");
        // BIFF4 and older (before compound files; here inside one): no rendition.
        let mut old = rec(BOF, &[0, 4, 5, 0, 0, 0, 0, 0]);
        old.extend(rec(EOF, &[]));
        assert_eq!(
            render(&cfb(&[("Workbook", &old)]), &Limits::default()).unwrap_err(),
            ConvertError::Unsupported(FileType::Xls)
        );
    }

    /// A BIFF5 (Excel 5/95) workbook: `Book` stream, 8-bit strings in CP1252.
    fn biff5(codepage: u16) -> Vec<u8> {
        let bof5 = |dt: u16| {
            let mut b = 0x0500u16.to_le_bytes().to_vec();
            b.extend_from_slice(&dt.to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            rec(BOF, &b)
        };
        let label = |row: u16, col: u16, kind: u16, text: &[u8]| {
            let mut b = cell(row, col);
            b.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
            b.extend_from_slice(text);
            if kind == RSTRING {
                b.extend_from_slice(&[1, 0, 0, 0]);
            }
            rec(kind, &b)
        };
        let mut sheet = bof5(0x10);
        sheet.extend(label(0, 0, LABEL, b"Gr\xf6\xdfe \x80"));
        sheet.extend(label(0, 1, RSTRING, b"rich"));
        let mut num = cell(1, 0);
        num.extend_from_slice(&2.25f64.to_le_bytes());
        sheet.extend(rec(NUMBER, &num));
        let mut formula = cell(1, 1);
        formula.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        formula.extend_from_slice(&[0; 6]);
        sheet.extend(rec(FORMULA, &formula));
        sheet.extend(rec(STRING, b"\x03\x00out"));
        sheet.extend(rec(EOF, &[]));
        let globals = |offset: u32| {
            let mut g = bof5(0x05);
            g.extend(rec(CODEPAGE, &codepage.to_le_bytes()));
            let mut b = offset.to_le_bytes().to_vec();
            b.extend_from_slice(&[0, 0, 6]);
            b.extend_from_slice(b"Blatt\xe4");
            g.extend(rec(BOUNDSHEET, &b));
            g.extend(rec(EOF, &[]));
            g
        };
        let len = u32::try_from(globals(0).len()).unwrap();
        let mut book = globals(len);
        book.extend(sheet);
        cfb(&[("Book", &book)])
    }

    #[test]
    fn biff3_worksheets_are_rendered() {
        let mut f = rec(0x0209, &[0, 0, 0x10, 0, 0, 0]);
        let mut label = cell(0, 1);
        label.extend_from_slice(&4u16.to_le_bytes());
        label.extend_from_slice(b"Name");
        f.extend(rec(LABEL, &label));
        let mut formula = cell(1, 0);
        formula.extend_from_slice(&42.0f64.to_le_bytes());
        formula.extend_from_slice(&[0; 4]);
        f.extend(rec(0x0206, &formula));
        f.extend(rec(EOF, &[]));
        assert!(sniff_old(&f));
        let d = render_old(&f, &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(d.bytes).unwrap(), "\tName\n42\n");
        assert_eq!(d.file_type, FileType::Text);
        // Through `disarm`, as the type detector leaves it unknown.
        let d = crate::convert::disarm(&f, FileType::Unknown, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        // An Excel 4 workbook: no rendition.
        let book = rec(0x0409, &[0, 0, 0, 1, 0, 0]);
        assert_eq!(
            render_old(&book, &Limits::default()).unwrap_err(),
            ConvertError::Unsupported(FileType::Unknown)
        );
    }

    #[test]
    fn biff5_workbooks_are_rendered() {
        let d = render(&biff5(1252), &Limits::default()).unwrap();
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "Blattä\nGröße €\trich\n2.25\tout\n"
        );
        assert!(!d.removed.iter().any(|r| r.what.starts_with("code page")));
        // Another code page is read as CP1252, and the removed list says so.
        let d = render(&biff5(949), &Limits::default()).unwrap();
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.starts_with("code page 949"))
        );
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
    fn a_workbook_copy_keeps_its_workbook_and_drops_vba_and_objects() {
        let original = streams_of(&workbook(false));
        let mut wb = original
            .iter()
            .find(|(p, _)| p == "Workbook")
            .unwrap()
            .1
            .clone();
        // Macro1 turned into a worksheet: no macro sheet left.
        let name = wb.windows(6).position(|w| w == b"Macro1").unwrap();
        assert_eq!(wb[name - 3], 1);
        wb[name - 3] = 0;
        let file = cfb(&[
            ("Workbook", &wb),
            ("\u{5}SummaryInformation", &[1u8; 300]),
            ("_VBA_PROJECT_CUR/VBA", b"Sub Auto_Open()"),
            ("MBD00000001/\u{1}Ole10Native", &[7u8; 100]),
            ("_SX_DB_CUR/0001", &[1u8; 10]),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Xls);
        assert_eq!(
            streams_of(&d.bytes),
            vec![
                ("\u{5}SummaryInformation".to_owned(), vec![1u8; 300]),
                ("Workbook".to_owned(), wb.clone()),
            ]
        );
        let gone: Vec<(&str, &str)> = d
            .removed
            .iter()
            .map(|r| (r.what.as_str(), r.location.as_str()))
            .collect();
        for want in [
            ("macro project (VBA)", "storage _VBA_PROJECT_CUR"),
            ("embedded OLE object", "storage MBD00000001"),
            ("pivot-table cache", "storage _SX_DB_CUR"),
        ] {
            assert!(gone.contains(&want), "{want:?} not in {gone:?}");
        }
        // The copy renders to the same text, and scans without macro or object findings.
        let text = |f: &[u8]| render(f, &Limits::default()).unwrap().bytes;
        assert_eq!(text(&d.bytes), text(&file));
        let r = crate::scan_bytes(&d.bytes, Some("book.xls"), &Limits::default());
        assert_eq!(r.detected_type, FileType::Xls);
        assert!(
            r.findings.iter().all(|f| !f.code.starts_with("OLE-")),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn a_workbook_with_a_macro_sheet_or_an_external_link_keeps_its_rendition() {
        let d = rebuild(&workbook(false), &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert!(
            d.removed[0].what.starts_with("no same-format copy"),
            "{:?}",
            d.removed[0]
        );
        assert!(
            d.removed[0].location.contains("macro sheet"),
            "{:?}",
            d.removed[0]
        );
        // A SupBook naming another file (not the self-reference 0x0401).
        let mut wb = bof(0x05);
        let mut supbook = 1u16.to_le_bytes().to_vec();
        supbook.extend_from_slice(&3u16.to_le_bytes());
        supbook.push(0);
        supbook.extend_from_slice(b"cmd");
        wb.extend(rec(SUPBOOK, &supbook));
        wb.extend(rec(
            EXTERNNAME,
            &[0, 0, 0, 0, 0, 0, 4, 0, b'c', b'a', b'l', b'c'],
        ));
        wb.extend(rec(EOF, &[]));
        wb.extend([0, 0, 0]); // zero padding
        let found = active_records(&wb, false);
        assert_eq!(found.blocker, None);
        assert_eq!(found.paths.len(), 1);
        assert_eq!(found.paths[0].1, "cmd");
        // An ExternName with no SupBook before it, and a data connection, are blockers.
        let mut lone = bof(0x05);
        lone.extend(rec(EXTERNNAME, &[0; 8]));
        assert!(
            active_records(&lone, false)
                .blocker
                .unwrap()
                .contains("external")
        );
        let mut conn = bof(0x05);
        conn.extend(rec(DCONN, &[0; 8]));
        assert!(
            active_records(&conn, false)
                .blocker
                .unwrap()
                .contains("connection")
        );
        // The copy of a workbook with the DDE link: the path is blanked, the rest stays.
        let mut globals = bof(0x05);
        globals.extend(rec(SUPBOOK, &supbook));
        globals.extend(rec(
            EXTERNNAME,
            &[0, 0, 0, 0, 0, 0, 4, 0, b'c', b'a', b'l', b'c'],
        ));
        globals.extend(rec(EOF, &[]));
        let file = cfb(&[("Workbook", &globals)]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Xls);
        let after = streams_of(&d.bytes);
        let blanked = &after[0].1;
        assert_eq!(blanked.len(), globals.len());
        let at = globals.windows(3).position(|w| w == b"cmd").unwrap();
        assert_eq!(&blanked[at..at + 3], b"   ");
        assert_eq!(&blanked[..at], &globals[..at]);
        assert_eq!(&blanked[at + 3..], &globals[at + 3..]);
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.starts_with("link to another workbook")
                    && r.location.ends_with(": cmd")),
            "{:?}",
            d.removed
        );
        assert!(rebuild(&workbook(true), &Limits::default()).is_err());
    }
}
