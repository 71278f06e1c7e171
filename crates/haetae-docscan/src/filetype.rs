//! The file types the inspector knows, the type a file name claims (from its extension),
//! and whether a claimed and a detected type agree.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A file type as detected from content (or claimed by a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum FileType {
    Jpeg,
    Png,
    Gif,
    Bmp,
    Tiff,
    Pdf,
    Rtf,
    /// OLE2 compound file without a more specific application.
    Cfb,
    Doc,
    Xls,
    Ppt,
    Hwp,
    Msi,
    Msg,
    /// A password-encrypted OOXML package (`EncryptionInfo` + `EncryptedPackage` in a CFB),
    /// what Office writes for a protected `.docx`/`.xlsx`/`.pptx`.
    #[serde(rename = "encrypted-ooxml")]
    EncryptedOoxml,
    /// ZIP without a more specific application.
    Zip,
    Docx,
    Xlsx,
    Pptx,
    Hwpx,
    Odf,
    Jar,
    Apk,
    Text,
    PostScript,
    Pe,
    Elf,
    MachO,
    Script,
    Unknown,
}

/// Groups of types that share a container, for judging how far a mismatch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OLE2/CFB documents.
    Ole,
    /// ZIP-based documents and archives.
    Zip,
    /// Raster images.
    Image,
    /// Page descriptions (PDF, PostScript).
    Page,
    /// Text and RTF.
    Text,
    /// Programs and scripts.
    Executable,
    /// Anything else.
    Other,
}

impl FileType {
    /// The lowercase name used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FileType::Jpeg => "jpeg",
            FileType::Png => "png",
            FileType::Gif => "gif",
            FileType::Bmp => "bmp",
            FileType::Tiff => "tiff",
            FileType::Pdf => "pdf",
            FileType::Rtf => "rtf",
            FileType::Cfb => "cfb",
            FileType::Doc => "doc",
            FileType::Xls => "xls",
            FileType::Ppt => "ppt",
            FileType::Hwp => "hwp",
            FileType::Msi => "msi",
            FileType::Msg => "msg",
            FileType::EncryptedOoxml => "encrypted-ooxml",
            FileType::Zip => "zip",
            FileType::Docx => "docx",
            FileType::Xlsx => "xlsx",
            FileType::Pptx => "pptx",
            FileType::Hwpx => "hwpx",
            FileType::Odf => "odf",
            FileType::Jar => "jar",
            FileType::Apk => "apk",
            FileType::Text => "text",
            FileType::PostScript => "postscript",
            FileType::Pe => "pe",
            FileType::Elf => "elf",
            FileType::MachO => "macho",
            FileType::Script => "script",
            FileType::Unknown => "unknown",
        }
    }

    /// The family the type belongs to.
    #[must_use]
    pub const fn family(self) -> Family {
        match self {
            FileType::Cfb
            | FileType::Doc
            | FileType::Xls
            | FileType::Ppt
            | FileType::Hwp
            | FileType::Msi
            | FileType::Msg
            | FileType::EncryptedOoxml => Family::Ole,
            FileType::Zip
            | FileType::Docx
            | FileType::Xlsx
            | FileType::Pptx
            | FileType::Hwpx
            | FileType::Odf
            | FileType::Jar
            | FileType::Apk => Family::Zip,
            FileType::Jpeg | FileType::Png | FileType::Gif | FileType::Bmp | FileType::Tiff => {
                Family::Image
            }
            FileType::Pdf | FileType::PostScript => Family::Page,
            FileType::Rtf | FileType::Text => Family::Text,
            FileType::Pe | FileType::Elf | FileType::MachO | FileType::Script => Family::Executable,
            FileType::Unknown => Family::Other,
        }
    }

    /// Whether the type runs as a program (native executable or script).
    #[must_use]
    pub const fn is_executable(self) -> bool {
        matches!(self.family(), Family::Executable)
    }

    /// The extension a file of this type is given (`doc`, `jpg`, `txt`...): one
    /// [`FileType::from_name`] maps back to the type, or, for a type no extension claims
    /// (a generic compound file, ODF, unknown content), its report name, which claims
    /// nothing.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            FileType::Jpeg => "jpg",
            FileType::Tiff => "tif",
            FileType::Text => "txt",
            FileType::Odf => "odt",
            FileType::PostScript => "ps",
            FileType::Pe => "exe",
            FileType::Elf => "elf",
            FileType::Script => "script",
            other => other.as_str(),
        }
    }

    /// The type a file name claims by its extension, if the extension is one we know.
    #[must_use]
    pub fn from_name(name: &str) -> Option<FileType> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => FileType::Jpeg,
            "png" => FileType::Png,
            "gif" => FileType::Gif,
            "bmp" | "dib" => FileType::Bmp,
            "tif" | "tiff" => FileType::Tiff,
            "pdf" => FileType::Pdf,
            "rtf" => FileType::Rtf,
            "doc" | "dot" => FileType::Doc,
            "xls" | "xlt" => FileType::Xls,
            "ppt" | "pps" | "pot" => FileType::Ppt,
            "hwp" => FileType::Hwp,
            "msi" => FileType::Msi,
            "msg" => FileType::Msg,
            "zip" => FileType::Zip,
            "docx" | "docm" | "dotx" | "dotm" => FileType::Docx,
            "xlsx" | "xlsm" | "xltx" | "xltm" | "xlsb" => FileType::Xlsx,
            "pptx" | "pptm" | "ppsx" | "ppsm" | "potx" => FileType::Pptx,
            "hwpx" => FileType::Hwpx,
            "odt" | "ods" | "odp" | "odg" => FileType::Odf,
            "jar" => FileType::Jar,
            "apk" => FileType::Apk,
            "txt" | "csv" | "log" | "md" => FileType::Text,
            "ps" | "eps" => FileType::PostScript,
            "exe" | "dll" | "scr" | "sys" | "com" | "cpl" => FileType::Pe,
            "so" | "elf" => FileType::Elf,
            "sh" | "bash" | "js" | "vbs" | "vbe" | "ps1" | "bat" | "cmd" | "py" | "hta" => {
                FileType::Script
            }
            _ => return None,
        })
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a claimed type is from the detected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// The same type, or a generic container of the claimed one.
    Same,
    /// Different types of the same family (a `.doc` that is an `.xls`).
    SameFamily,
    /// Different families (a `.pdf` that is a JPEG).
    Different,
    /// A document name on an executable.
    DisguisedExecutable,
}

/// Compares the type a name claims with the one the content shows.
#[must_use]
pub fn agreement(claimed: FileType, detected: FileType) -> Agreement {
    if claimed == detected {
        return Agreement::Same;
    }
    if detected.is_executable() && !claimed.is_executable() {
        return Agreement::DisguisedExecutable;
    }
    // A generic container we could not refine, or a text-like file, counts as the same;
    // so does a protected OOXML document, which Office stores encrypted inside a CFB.
    if matches!(
        (claimed.family(), detected),
        (Family::Ole | Family::Zip, FileType::EncryptedOoxml)
            | (Family::Ole, FileType::Cfb)
            | (Family::Zip, FileType::Zip)
            | (Family::Text, FileType::Text)
    ) {
        return Agreement::Same;
    }
    if claimed.family() == detected.family() {
        Agreement::SameFamily
    } else {
        Agreement::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_claimed_types_case_insensitively() {
        assert_eq!(FileType::from_name("Invoice.PDF"), Some(FileType::Pdf));
        assert_eq!(FileType::from_name("report.docm"), Some(FileType::Docx));
        assert_eq!(FileType::from_name("noext"), None);
    }

    #[test]
    fn a_type_s_extension_claims_the_type_or_nothing() {
        use FileType::*;
        for t in [
            Jpeg,
            Png,
            Gif,
            Bmp,
            Tiff,
            Pdf,
            Rtf,
            Cfb,
            Doc,
            Xls,
            Ppt,
            Hwp,
            Msi,
            Msg,
            EncryptedOoxml,
            Zip,
            Docx,
            Xlsx,
            Pptx,
            Hwpx,
            Odf,
            Jar,
            Apk,
            Text,
            PostScript,
            Pe,
            Elf,
            MachO,
            Script,
            Unknown,
        ] {
            let name = format!("copy.{}", t.extension());
            if let Some(claimed) = FileType::from_name(&name) {
                assert_eq!(claimed, t, "{name}");
            }
        }
        assert_eq!(Doc.extension(), "doc");
        assert_eq!(Jpeg.extension(), "jpg");
        assert_eq!(FileType::from_name(&format!("a.{}", Cfb.extension())), None);
    }

    #[test]
    fn a_protected_ooxml_document_agrees_with_its_name() {
        assert_eq!(
            agreement(FileType::Docx, FileType::EncryptedOoxml),
            Agreement::Same
        );
        assert_eq!(
            agreement(FileType::Pdf, FileType::EncryptedOoxml),
            Agreement::Different
        );
    }

    #[test]
    fn an_executable_under_a_document_name_is_disguised() {
        assert_eq!(
            agreement(FileType::Pdf, FileType::Pe),
            Agreement::DisguisedExecutable
        );
    }

    #[test]
    fn a_generic_container_agrees_with_its_applications() {
        assert_eq!(agreement(FileType::Doc, FileType::Cfb), Agreement::Same);
        assert_eq!(
            agreement(FileType::Doc, FileType::Xls),
            Agreement::SameFamily
        );
        assert_eq!(
            agreement(FileType::Pdf, FileType::Jpeg),
            Agreement::Different
        );
    }
}
