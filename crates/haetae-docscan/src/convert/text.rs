//! Plain text normalised to UTF-8: a UTF-16 byte-order mark decoded, a UTF-8 one dropped,
//! NUL bytes (binary payloads hidden in text) removed.

use super::{ConvertError, Disarmed, Failure, Removed};
use crate::filetype::FileType;

fn utf16(data: &[u8], little: bool) -> Result<String, Failure> {
    if !data.len().is_multiple_of(2) {
        return Err(Failure {
            code: "CONVERT-TEXT-ENCODING".into(),
            location: format!("byte {}", data.len() - 1),
            message: "UTF-16 text with an odd number of bytes".into(),
        });
    }
    let units = data.chunks_exact(2).map(|c| {
        let pair = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    char::decode_utf16(units)
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|_| Failure {
                code: "CONVERT-TEXT-ENCODING".into(),
                location: format!("byte {}", 2 + 2 * i),
                message: "an unpaired UTF-16 surrogate".into(),
            })
        })
        .collect()
}

pub(super) fn rebuild(data: &[u8]) -> Result<Disarmed, ConvertError> {
    let mut removed = Vec::new();
    let text = if let Some(rest) = data.strip_prefix(b"\xEF\xBB\xBF") {
        removed.push(Removed {
            what: "UTF-8 byte-order mark".into(),
            location: "byte 0".into(),
        });
        std::str::from_utf8(rest).map(str::to_owned).map_err(|e| Failure {
            code: "CONVERT-TEXT-ENCODING".into(),
            location: format!("byte {}", 3 + e.valid_up_to()),
            message: "not UTF-8 after a UTF-8 byte-order mark".into(),
        })
    } else if let Some(rest) = data.strip_prefix(b"\xFF\xFE") {
        utf16(rest, true)
    } else if let Some(rest) = data.strip_prefix(b"\xFE\xFF") {
        utf16(rest, false)
    } else {
        std::str::from_utf8(data).map(str::to_owned).map_err(|e| Failure {
            code: "CONVERT-TEXT-ENCODING".into(),
            location: format!("byte {}", e.valid_up_to()),
            message: "neither UTF-8 nor UTF-16 with a byte-order mark (legacy encodings such as CP949 are not converted yet)".into(),
        })
    }
    .map_err(|f| ConvertError::Failed(vec![f]))?;
    let nuls = text.bytes().filter(|&b| b == 0).count();
    let clean: String = if nuls > 0 {
        removed.push(Removed {
            what: format!("{nuls} NUL characters"),
            location: "text".into(),
        });
        text.chars().filter(|&c| c != '\0').collect()
    } else {
        text
    };
    Ok(Disarmed {
        bytes: clean.into_bytes(),
        file_type: FileType::Text,
        removed,
    })
}
