//! Conversion as a test, and disarm (issue 5): a rebuilt copy of a document that keeps its
//! content and drops what is dangerous, with every removal and every failure reported (a
//! failure has an error code and the place it happened, as the seed patent's table of
//! conversion errors does).
//!
//! Built so far:
//! - OOXML (`.docx/.docm/.xlsx/.xlsm/.pptx/.pptm`) and HWPX: the ZIP package rebuilt with
//!   only what the content needs — macros (`vbaProject.bin`, `vbaData.xml`), embedded
//!   objects and packages, `ActiveX` controls, ribbon customisations and binary toolbars
//!   dropped; relationships to active content or to a dropped part removed; external ones
//!   (`TargetMode="External"`: remote templates, CVE-2017-0199 OLE links, `mhtml:`/`ms-msdt:`
//!   targets) kept by id, so the document stays whole, but pointed at `about:blank` — all but
//!   hyperlinks to web and mail addresses; macro-enabled content types turned into their
//!   macro-free ones; DDE field instructions and DDE links blanked. A part that declares a
//!   DTD (entity expansion) fails the rebuild.
//! - ODF (ODT/ODS/ODP/ODG): the package rebuilt with `mimetype` first and stored, and
//!   only `content.xml`, `styles.xml`, `meta.xml`, `settings.xml`, `META-INF/manifest.xml`
//!   and the `Pictures/` the content or styles use; Basic macros (`Basic/`), `Scripts/`,
//!   embedded objects (`Object N/`, OLE `Object N`), `ObjectReplacements/` and every other
//!   entry dropped; `<office:scripts>`, event listeners, inline OLE data, and `xlink:href`
//!   targets that are `macro:`/`vnd.sun.star.script:`/`javascript:` links, embedded-object
//!   links or links to a dropped entry taken out (the links blanked); DDE declarations,
//!   links and fields, formulas calling `DDE`/`WEBSERVICE` or naming another file, applets
//!   and plug-ins removed; links leaving the package blanked (hyperlinks keep web and mail
//!   addresses); the manifest re-written without the dropped entries. A DTD fails the
//!   rebuild as in OOXML; an encrypted package answers `Encrypted`.
//! - RTF: `\object` groups (with their `\objdata`) and `\*\objdata` destinations removed.
//! - Text: UTF-16 (with a byte-order mark) and UTF-8 normalised to UTF-8 without a BOM; NUL
//!   bytes removed.
//! - PNG: decoded in full (inflate to the exact size, every row unfiltered, Adam7) and
//!   re-encoded with only the picture's chunks (no text, EXIF, ICC, private chunks).
//! - JPEG: rebuilt from the segments decoding needs (no comments, EXIF/XMP, ICC, Photoshop
//!   resources, data after EOI); the entropy-coded data is copied, not re-encoded.
//! - GIF: every frame's LZW stream decoded to exactly its pixels and re-encoded; screen,
//!   palettes, delays, disposal, transparency, interlace and the NETSCAPE loop kept;
//!   comment, plain-text and other application extensions (XMP, ICC, ...) dropped.
//! - BMP: 1/2/4/8/16/24/32-bit, bit fields and RLE4/RLE8 decoded and re-encoded as a plain
//!   `BI_RGB` bitmap (24-bit, 32 with alpha); V4/V5 colour-space/profile data, gaps and
//!   trailing bytes dropped.
//! - TIFF: baseline pages (strips; none/`PackBits`/LZW/Deflate; bilevel, grey, palette,
//!   RGB(A)) decoded and re-encoded uncompressed, one IFD per page with only the picture's
//!   tags (no EXIF/GPS/XMP/IPTC/ICC/private tags).
//! - PDF: every object (object streams included, the last definition winning) parsed and
//!   written anew with a classic cross-reference table, only what the catalog still
//!   reaches, without JavaScript, open/additional actions, launch/URI/submit/import
//!   actions, embedded files, XFA and `RichMedia`; Flate streams inflated under the budget
//!   and deflated anew, other filters copied. Encrypted files answer `Encrypted`.
//!
//! Legal variants a rebuild does not handle (BMP with an OS/2 2.x header, 64-bit pixels or
//! an embedded JPEG/PNG; `BigTIFF`, tiled, planar, JPEG/CCITT-compressed, CMYK/YCbCr TIFF)
//! answer [`ConvertError::Unsupported`], as a type without a rebuild does, so they are not
//! taken for broken files.
//!
//! OLE2 (DOC/XLS/PPT, MSG, other compound files) and HWP 5.0 get a same-format copy: the
//! compound file read with the crate's CFB reader and written anew by `cfb_write` (a
//! version-3 compound file: mini stream, FAT, DIFAT, balanced sibling trees, class ids,
//! state bits and times kept) with only the storages and streams the document needs, the
//! kept application streams edited only in place (same length, so no offset inside them
//! moves):
//! - DOC: `WordDocument`, `0Table`/`1Table`, `Data`, the two property streams and
//!   `\x01CompObj`; `Macros`, `_VBA_PROJECT_CUR`, `ObjectPool` and the rest dropped; the
//!   instructions of `DDE`, `DDEAUTO`, `INCLUDETEXT`, `INCLUDEPICTURE`, `INCLUDE` and
//!   `IMPORT` fields blanked to spaces through the piece table (their results kept). The
//!   FIB has no macro flag to clear (MS-DOC `FibBase`): macros are the `Macros` storage.
//! - XLS: `Workbook`/`Book`, property streams, `\x01CompObj`; VBA, `MBD…` objects,
//!   `_SX_DB…` pivot caches and the rest dropped; a `SupBook`'s path to another
//!   workbook, DDE source or OLE link blanked to spaces.
//! - PPT: `PowerPoint Document`, `Current User`, `Pictures`, property streams,
//!   `\x01CompObj`; `InteractiveInfoAtom` actions that run a macro, a program or an OLE verb
//!   set to none.
//! - MSG: the top-level properties, recipients and named-property map; attachments
//!   dropped (the attachment count, `PidTagHasAttachments` and `mfHasAttach` cleared), the
//!   HTML and RTF bodies dropped when a plain body exists.
//! - HWP 5.0: `FileHeader` (its "scripts saved" flag cleared), `DocInfo`, `BodyText`,
//!   `ViewText`, `PrvText`, `PrvImage`, `DocOptions`, the summary, `BinData` pictures
//!   (JPEG/PNG/BMP/GIF); `Scripts` dropped; other `BinData` items emptied under their names
//!   (an OLE item becomes an empty compound file) so `DocInfo` still finds them.
//! - other compound files: everything but macro projects, OLE object streams, `Equation
//!   Native` and `Package`.
//!
//! The text rendition is still made first (a failure there is the conversion's finding,
//! a protected document is refused), and is the copy ([`FileType::Text`], `removed`
//! saying why first) when no exact same-format copy can be made: a workbook with Excel 4.0
//! macro sheets, data connections or BIFF5 links; a presentation with an embedded or
//! linked object (`ExOleObjStg` also holds its VBA project); an HWP with PostScript
//! items; a Word 6/95 document; and any copy that would not scan clean (a structural flaw
//! of the original that the copied streams keep). What the renditions read:
//! - HWP 5.0 (`hwp`): the paragraph text (`HWPTAG_PARA_TEXT`) of every `BodyText/SectionN`,
//!   inflated under the caps, controls skipped whole, one paragraph a line; a distribution
//!   document's `ViewText/SectionN` decrypted first (AES-128, the key masked in the file).
//! - DOC (`doc`): the FIB and the CLX piece table, every story; Word's controls mapped,
//!   field instructions dropped (their results kept), so DDE/`INCLUDETEXT` do not survive.
//!   Word 6/95: the 8-bit text from `fcMin` or its own piece table.
//! - XLS (`xls`): BIFF8 sheets from the SST and the cell records (formula results cached),
//!   one block per worksheet, tab-separated rows; BIFF5/7 workbooks and BIFF3/4 worksheets
//!   (which the type detector leaves unknown) the same way with their string layouts.
//! - PPT (`ppt`): the text atoms of the `PowerPoint Document` stream, one block per slide.
//! - Outlook MSG (`msg`): subject, sender, recipients, date, attachment names (the
//!   attachments are not carried) and the plain-text body.
//! - Other compound files (`ole`): the text runs of every stream that is not a macro or an
//!   embedded object.
//!
//! A plain ZIP (`archive`) is rebuilt member by member through [`disarm`] (nested archives
//! to a bounded depth); a member without a safe copy is dropped and named. Netpbm images
//! (`pnm`) and Windows metafiles (`metafile`), which the detector leaves unknown, are
//! sniffed and rebuilt in their own formats.
//!
//! Protected documents (a password, DRM: DOC `fEncrypted`, XLS `FilePass`, encrypted PPT,
//! HWP password/DRM, encrypted OOXML/ODF/PDF, an archive whose every entry is encrypted)
//! answer [`ConvertError::Encrypted`]: no copy can be made without the key. Anything
//! unreadable fails with `CONVERT-{HWP,DOC,XLS,PPT,MSG,CFB}-*` naming the stream and the
//! record or offset.

use crate::container::zip;
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

mod archive;
mod bmp;
mod cfb_write;
mod doc;
mod gif;
mod hwp;
mod jpeg;
mod metafile;
mod msg;
mod odf;
mod ole;
mod ooxml;
mod pdf;
mod png;
mod pnm;
mod ppt;
mod rendition;
mod rtf;
pub mod soffice;
mod text;
mod tiff;
mod xls;
mod zip_write;

/// What a conversion removed and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    /// What (`macro project`, `external relationship`, `embedded object`, ...).
    pub what: String,
    /// Where (ZIP entry, relationship id and target, RTF byte offset).
    pub location: String,
}

/// A place where the conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Stable code (`CONVERT-ZIP-ENTRY`, `CONVERT-XML-DTD`, ...).
    pub code: String,
    /// Where.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// A rebuilt copy.
#[derive(Debug, Clone)]
pub struct Disarmed {
    /// The copy's bytes: the original's format for a rebuild, UTF-8 text for a rendition.
    pub bytes: Vec<u8>,
    /// The format of the copy: the original's for a rebuild, [`FileType::Text`] for a
    /// text rendition (an OLE2/HWP document without an exact same-format copy).
    pub file_type: FileType,
    /// What was removed.
    pub removed: Vec<Removed>,
}

/// Why no copy was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The type has no rebuild yet.
    #[error("no safe rebuild for {0:?} files yet")]
    Unsupported(FileType),
    /// The document is encrypted (password-protected, DRM): its content cannot be read, so
    /// no copy can be made without the password. A refusal, not a broken file.
    #[error("the {0:?} document is encrypted: no copy can be made without its password")]
    Encrypted(FileType),
    /// The conversion failed (the original is what a reader would choke on).
    #[error("conversion failed at {} places{}", .0.len(), .0.first().map(|f| format!(", first {}: {}", f.location, f.message)).unwrap_or_default())]
    Failed(Vec<Failure>),
}

impl ConvertError {
    /// A conversion that failed at one place.
    pub(crate) fn at(code: &str, location: String, message: String) -> ConvertError {
        ConvertError::Failed(vec![Failure {
            code: code.into(),
            location,
            message,
        }])
    }
}

/// Rebuilds `data` (of the detected `file_type`) without its active content.
///
/// # Errors
/// [`ConvertError::Unsupported`] for types without a rebuild, [`ConvertError::Encrypted`]
/// for a protected document (no copy without its password), [`ConvertError::Failed`]
/// with every failure (code and location) when the file cannot be rebuilt.
pub fn disarm(data: &[u8], file_type: FileType, limits: &Limits) -> Result<Disarmed, ConvertError> {
    disarm_at(data, file_type, limits, 0)
}

/// [`disarm`] for a file found `depth` containers deep (an archive member, a message
/// attachment: the outer file is depth 0).
fn disarm_at(
    data: &[u8],
    file_type: FileType,
    limits: &Limits,
    depth: u32,
) -> Result<Disarmed, ConvertError> {
    match file_type {
        FileType::Docx | FileType::Xlsx | FileType::Pptx | FileType::Hwpx => {
            let mut ctx = ScanContext::new(limits, data.len());
            let archive = zip_directory(data, &mut ctx)?;
            ooxml::rebuild(data, &archive, file_type, &mut ctx)
        }
        FileType::Odf => {
            let mut ctx = ScanContext::new(limits, data.len());
            let archive = zip_directory(data, &mut ctx)?;
            odf::rebuild(data, &archive, &mut ctx)
        }
        FileType::Rtf => rtf::rebuild(data),
        FileType::Png => png::rebuild(data, limits),
        FileType::Jpeg => jpeg::rebuild(data),
        FileType::Gif => gif::rebuild(data, limits),
        FileType::Bmp => bmp::rebuild(data, limits),
        FileType::Tiff => tiff::rebuild(data, limits),
        FileType::Pdf => pdf::rebuild(data, limits),
        FileType::Text => text::rebuild(data),
        FileType::Hwp
        | FileType::Doc
        | FileType::Xls
        | FileType::Ppt
        | FileType::Msg
        | FileType::Cfb => compound(data, file_type, limits, depth),
        FileType::Zip => archive::rebuild(data, limits, depth),
        // Formats the type detector leaves unknown but a rebuild can read.
        FileType::Unknown if pnm::sniff(data) => pnm::rebuild(data, limits),
        FileType::Unknown if xls::sniff_old(data) => xls::render_old(data, limits),
        FileType::Unknown if metafile::sniff(data) => metafile::rebuild(data, limits),
        // `EncryptionInfo` + `EncryptedPackage`: the whole OOXML package is ciphertext.
        FileType::EncryptedOoxml => Err(ConvertError::Encrypted(FileType::EncryptedOoxml)),
        other => Err(ConvertError::Unsupported(other)),
    }
}

/// The same-format rebuild of an OLE2 or HWP 5.0 document, delivered only when it scans
/// clean: a copy keeps the original's application streams as they are, so a structural
/// flaw of the original (a record running past its container...) would stay in it; such a
/// document gets its text rendition instead, and `removed` names the finding.
fn compound(
    data: &[u8],
    file_type: FileType,
    limits: &Limits,
    depth: u32,
) -> Result<Disarmed, ConvertError> {
    let copy = match file_type {
        FileType::Hwp => hwp::rebuild(data, limits)?,
        FileType::Doc => doc::rebuild(data, limits)?,
        FileType::Xls => xls::rebuild(data, limits)?,
        FileType::Ppt => ppt::rebuild(data, limits)?,
        // Its attachments are disarmed one level deeper.
        FileType::Msg => msg::rebuild(data, limits, depth)?,
        _ => ole::rebuild(data, limits)?,
    };
    let render: Convert = match file_type {
        FileType::Hwp => hwp::render,
        FileType::Doc => doc::render,
        FileType::Xls => xls::render,
        FileType::Ppt => ppt::render,
        FileType::Msg => msg::render,
        _ => ole::render,
    };
    if copy.file_type != file_type {
        return Ok(copy);
    }
    let report = crate::report::scan_bytes(&copy.bytes, None, limits);
    if report.verdict == haetae_core::Verdict::Clean {
        return Ok(copy);
    }
    let mut rendition = render(data, limits)?;
    let first = report
        .findings
        .iter()
        .find(|f| crate::finding::verdict_for(f.class, f.severity) != haetae_core::Verdict::Clean);
    rendition.removed.insert(
        0,
        Removed {
            what: format!(
                "no same-format copy: the rebuilt copy would still scan {:?} (text rendition instead)",
                report.verdict
            )
            .to_lowercase(),
            location: first.map_or_else(
                || "file".to_owned(),
                |f| format!("{} at {}: {}", f.code, f.location, f.message),
            ),
        },
    );
    Ok(rendition)
}

/// The ZIP directory of a package or archive, `CONVERT-ZIP` when there is none to read.
fn zip_directory(data: &[u8], ctx: &mut ScanContext) -> Result<zip::ZipArchive, ConvertError> {
    zip::parse(data, ctx).ok_or_else(|| {
        ConvertError::at(
            "CONVERT-ZIP",
            "file".into(),
            "no readable ZIP directory".into(),
        )
    })
}

/// A package entry's content, or `None` with a `CONVERT-ZIP-ENTRY` failure naming the
/// entry and what the reader found (broken, over the ratio or memory caps).
fn zip_entry<'d>(
    data: &'d [u8],
    e: &zip::ZipEntry,
    ctx: &mut ScanContext,
    failures: &mut Vec<Failure>,
) -> Option<std::borrow::Cow<'d, [u8]>> {
    let before = ctx.findings().len();
    let content = zip::read(data, e, ctx);
    if content.is_none() {
        let message = ctx
            .findings()
            .get(before..)
            .and_then(|f| f.last())
            .map_or_else(
                || "the entry cannot be read".to_owned(),
                |f| f.message.clone(),
            );
        failures.push(Failure {
            code: "CONVERT-ZIP-ENTRY".into(),
            location: e.name.clone(),
            message,
        });
    }
    content
}

/// Deepest nesting of files inside files (archive members, message attachments) disarmed;
/// the outer file is depth 0.
const MAX_DEPTH: u32 = 3;

/// A file found inside another (an archive member, a message attachment) at nesting
/// `depth` (its container's depth + 1), disarmed as a file of its own: its type detected
/// and verified, then its copy, or why it has none (a sentence for `removed`).
fn nested(content: &[u8], limits: &Limits, depth: u32) -> (FileType, Result<Disarmed, String>) {
    let mut ctx = ScanContext::new(limits, content.len());
    let kind = crate::formats::verify_any(content, &mut ctx);
    let result = disarm_at(content, kind, limits, depth).map_err(|e| match e {
        ConvertError::Encrypted(t) => format!("an encrypted {t:?} document"),
        ConvertError::Unsupported(t) => format!("no safe rebuild for {t:?} files"),
        ConvertError::Failed(f) => {
            let first = f
                .first()
                .map(|f| format!("{} at {}: {}", f.code, f.location, f.message))
                .unwrap_or_default();
            format!("its {kind:?} conversion failed ({first})")
        }
    });
    (kind, result)
}

/// A conversion function.
type Convert = fn(&[u8], &Limits) -> Result<Disarmed, ConvertError>;

#[cfg(test)]
mod tests;
