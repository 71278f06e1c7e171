//! Plain text: UTF-8 (with or without BOM), UTF-16 with BOM, or CP949 (EUC-KR and its
//! Unified Hangul extension). A text file holding NUL bytes or long binary runs carries a
//! payload; a UTF-16 BOM on an odd number of bytes is broken.

use haetae_core::Severity;

use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::Location;
use crate::formats::Format;

/// Plain text.
#[derive(Debug, Clone, Copy)]
pub struct Text;

/// The encoding a text file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (ASCII included).
    Utf8,
    /// UTF-16 with a byte-order mark.
    Utf16,
    /// Korean CP949 / EUC-KR.
    Cp949,
}

fn is_cp949(data: &[u8]) -> bool {
    let mut i = 0;
    let mut pairs = 0;
    while let Some(&b) = data.get(i) {
        if b < 0x80 {
            if b < 0x09 || (0x0E..0x1B).contains(&b) {
                return false;
            }
            i += 1;
            continue;
        }
        let Some(&t) = data.get(i + 1) else {
            return false;
        };
        if !(0x81..=0xFE).contains(&b) || !(0x41..=0xFE).contains(&t) {
            return false;
        }
        pairs += 1;
        i += 2;
    }
    pairs > 0
}

fn is_plain(bytes: &[u8]) -> bool {
    !bytes
        .iter()
        .any(|&b| b < 0x09 || (0x0E..0x1B).contains(&b) || b == 0x7F)
}

/// The encoding, if `data` is text at all.
#[must_use]
pub fn encoding(data: &[u8]) -> Option<Encoding> {
    if data.starts_with(&[0xFF, 0xFE]) || data.starts_with(&[0xFE, 0xFF]) {
        return Some(Encoding::Utf16);
    }
    let body = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    if body.is_empty() {
        return None;
    }
    match std::str::from_utf8(body) {
        Ok(s) if is_plain(s.as_bytes()) => Some(Encoding::Utf8),
        // A text with a few stray NULs is still text (and the NULs are the finding).
        Ok(s) if s.bytes().filter(|&b| b == 0).count() * 100 < s.len() => Some(Encoding::Utf8),
        _ => is_cp949(body).then_some(Encoding::Cp949),
    }
}

impl Format for Text {
    fn name(&self) -> &'static str {
        "text"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        encoding(data).map(|_| FileType::Text)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        match encoding(data) {
            Some(Encoding::Utf16) if !data.len().is_multiple_of(2) => ctx.structure(
                "TXT-ENCODING",
                Severity::Medium,
                Location::at(data.len() - 1),
                "UTF-16 text with an odd number of bytes",
            ),
            Some(Encoding::Utf8 | Encoding::Cp949) => {
                if let Some(p) = data.iter().position(|&b| b == 0) {
                    ctx.structure(
                        "TXT-NUL",
                        Severity::Medium,
                        Location::at(p),
                        "a NUL byte inside text (a hidden binary payload or a broken encoding)",
                    );
                }
            }
            _ => {}
        }
        FileType::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_cp949_is_text() {
        // "안녕" in CP949.
        assert_eq!(encoding(&[0xBE, 0xC8, 0xB3, 0xE7]), Some(Encoding::Cp949));
    }

    #[test]
    fn utf8_with_a_bom_is_text_and_binary_is_not() {
        assert_eq!(encoding("\u{feff}hello".as_bytes()), Some(Encoding::Utf8));
        assert_eq!(encoding(&[0x00, 0x01, 0x02, 0x03]), None);
    }

    #[test]
    fn a_nul_inside_text_is_reported() {
        let mut t = b"hello world ".repeat(20);
        t[100] = 0;
        let f = crate::testing::findings_of(&t, "a.txt");
        assert_eq!(f, vec![("TXT-NUL".to_owned(), "@0x64".to_owned())]);
    }
}
