//! Programs and scripts: Windows PE, ELF, Mach-O, and scripts recognised by a shebang or
//! by content that only a script has. Nothing is verified inside them: their presence
//! where a document is expected is the finding (see the type-mismatch rule in the report).

use crate::bytes::{le32, slice};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::formats::Format;

/// Executables and scripts.
#[derive(Debug, Clone, Copy)]
pub struct Executable;

fn is_pe(data: &[u8]) -> bool {
    data.starts_with(b"MZ")
        && le32(data, 0x3C)
            .and_then(|off| slice(data, off as usize, 4))
            .is_some_and(|sig| sig == b"PE\0\0")
}

fn is_macho(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some([0xFE, 0xED, 0xFA, 0xCE | 0xCF] | [0xCE | 0xCF, 0xFA, 0xED, 0xFE])
    )
}

fn is_script(data: &[u8]) -> bool {
    if data.starts_with(b"#!/") || data.starts_with(b"#! /") {
        return true;
    }
    let head = data.get(..data.len().min(512)).unwrap_or_default();
    let lower = head.to_ascii_lowercase();
    let starts = |p: &[u8]| lower.trim_ascii_start().starts_with(p);
    starts(b"@echo off")
        || starts(b"<job")
        || starts(b"<hta:application")
        || (starts(b"<script")
            && crate::bytes::contains_ignore_case(head, b"language=\"vbscript\""))
        || crate::bytes::contains_ignore_case(head, b"createobject(\"wscript.shell\")")
        || crate::bytes::contains_ignore_case(head, b"new-object net.webclient")
}

impl Format for Executable {
    fn name(&self) -> &'static str {
        "executable"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        if is_pe(data) {
            Some(FileType::Pe)
        } else if data.starts_with(b"\x7fELF") {
            Some(FileType::Elf)
        } else if is_macho(data) {
            Some(FileType::MachO)
        } else if is_script(data) {
            Some(FileType::Script)
        } else {
            None
        }
    }

    fn verify(&self, data: &[u8], _ctx: &mut ScanContext) -> FileType {
        self.detect(data).unwrap_or(FileType::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shebang_is_a_script_and_mz_alone_is_not_a_program() {
        assert_eq!(
            Executable.detect(b"#!/bin/sh\necho"),
            Some(FileType::Script)
        );
        assert_eq!(Executable.detect(b"MZ not really"), None);
        assert_eq!(Executable.detect(b"\x7fELF\x02\x01"), Some(FileType::Elf));
    }
}
