//! The format registry. Every format is a folder with one type implementing [`Format`]:
//! `detect` (does the content start like this format?) and `verify` (does it follow the
//! format's rules?). Adding a format is adding a folder and one line in [`FORMATS`].

use crate::context::ScanContext;
use crate::filetype::FileType;

pub mod bmp;
pub mod exec;
pub mod gif;
pub mod hwp;
pub mod jpeg;
pub mod ole;
pub mod pdf;
pub mod png;
pub mod rtf;
pub mod text;
pub mod tiff;
pub mod zip;

/// One file format: how to recognise it and how to verify it.
pub trait Format: Sync {
    /// Short name (`jpeg`).
    fn name(&self) -> &'static str;
    /// The type if `data` starts like this format (magic numbers, a few header bytes).
    /// Cheap: no parsing beyond the first bytes.
    fn detect(&self, data: &[u8]) -> Option<FileType>;
    /// Verifies the structure, reporting findings to `ctx`. Returns the type, refined where
    /// the container shows more (a CFB that is a DOC, a ZIP that is a DOCX).
    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType;
}

/// Every format, in detection order (most specific magic first; text last).
pub static FORMATS: &[&dyn Format] = &[
    &ole::Ole,
    &zip::Zip,
    &pdf::Pdf,
    &png::Png,
    &jpeg::Jpeg,
    &gif::Gif,
    &tiff::Tiff,
    &bmp::Bmp,
    &rtf::Rtf,
    &exec::Executable,
    &text::Text,
];

/// The first format whose magic matches, and the type it detected.
#[must_use]
pub fn detect(data: &[u8]) -> Option<(&'static dyn Format, FileType)> {
    FORMATS.iter().find_map(|f| f.detect(data).map(|t| (*f, t)))
}

/// Detects the format and runs its verifier; `Unknown` when nothing matches.
pub fn verify_any(data: &[u8], ctx: &mut ScanContext) -> FileType {
    match detect(data) {
        Some((format, _)) => format.verify(data, ctx),
        None => FileType::Unknown,
    }
}
