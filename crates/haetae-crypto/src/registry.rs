//! The approved-algorithm registry: every algorithm haetae offers, with its family, security
//! strength, the standard that defines it and the uses it is limited to, plus the well-known
//! algorithms haetae refuses (so that a refusal can say why and what to use instead).
//!
//! Strengths follow NIST SP 800-57 Part 1 Rev. 5 Table 2/3 and the KISA "Cryptographic
//! algorithm and key length usage guide" (암호 알고리즘 및 키 길이 이용 안내서): 112-bit
//! strength is usable until the end of 2030, 128-bit and above after that.

use std::fmt;

/// What an algorithm is for, as a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// A block cipher (AES, ARIA, SEED, LEA, HIGHT).
    BlockCipher,
    /// A mode of operation over a block cipher (GCM, CCM, CTR, CBC).
    CipherMode,
    /// A hash function.
    Hash,
    /// A message authentication code.
    Mac,
    /// A key derivation function.
    Kdf,
    /// A password hash for stored passwords.
    PasswordHash,
    /// A deterministic random bit generator.
    Drbg,
    /// A digital signature scheme.
    Signature,
    /// Public-key encryption.
    PublicKeyEncryption,
    /// Key agreement.
    KeyAgreement,
}

impl Family {
    /// Every family, in table order.
    pub const ALL: [Family; 10] = [
        Family::BlockCipher,
        Family::CipherMode,
        Family::Hash,
        Family::Mac,
        Family::Kdf,
        Family::PasswordHash,
        Family::Drbg,
        Family::Signature,
        Family::PublicKeyEncryption,
        Family::KeyAgreement,
    ];

    /// The kebab-case name used in configuration files (`block-cipher`).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::BlockCipher => "block-cipher",
            Family::CipherMode => "cipher-mode",
            Family::Hash => "hash",
            Family::Mac => "mac",
            Family::Kdf => "kdf",
            Family::PasswordHash => "password-hash",
            Family::Drbg => "drbg",
            Family::Signature => "signature",
            Family::PublicKeyEncryption => "public-key-encryption",
            Family::KeyAgreement => "key-agreement",
        }
    }

    /// Parses the name used in configuration files.
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who standardised an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A Korean standard (KS/TTA) listed in the KISA guide.
    Korea,
    /// An international standard (NIST FIPS/SP, IETF RFC, ISO) also listed in the KISA guide.
    International,
}

/// What an algorithm may be used for beyond its family's ordinary use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// No restriction beyond the strength and date rules.
    None,
    /// Collision resistance is broken: only for HMAC, key derivation and random-bit
    /// generation, never for signatures or plain digests.
    MacKdfRngOnly,
    /// Refused for every use: `why` it is refused and what to use `instead`.
    Refused {
        /// Why the algorithm is refused.
        why: &'static str,
        /// What to use instead.
        instead: &'static str,
    },
}

/// One row of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmInfo {
    /// The canonical name (`ARIA-256`, `RSA-3072-PSS`, `SHA-256`).
    pub name: &'static str,
    /// Other spellings accepted when looking the algorithm up.
    pub aliases: &'static [&'static str],
    /// The family.
    pub family: Family,
    /// Security strength in bits (0 for modes, which take the strength of their cipher).
    pub strength_bits: u16,
    /// Korean or international standard.
    pub origin: Origin,
    /// The defining standard.
    pub standard: &'static str,
    /// Limits on its use.
    pub restriction: Restriction,
    /// Whether haetae implements it (`false` only for refused or not-yet-built entries).
    pub offered: bool,
}

impl AlgorithmInfo {
    /// Whether `name` names this algorithm (case-insensitive, `_` and `-` alike).
    pub fn is_named(&self, name: &str) -> bool {
        let wanted = normalise(name);
        normalise(self.name) == wanted || self.aliases.iter().any(|a| normalise(a) == wanted)
    }
}

pub(crate) fn normalise(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

const fn row(
    name: &'static str,
    aliases: &'static [&'static str],
    family: Family,
    strength_bits: u16,
    origin: Origin,
    standard: &'static str,
) -> AlgorithmInfo {
    AlgorithmInfo {
        name,
        aliases,
        family,
        strength_bits,
        origin,
        standard,
        restriction: Restriction::None,
        offered: true,
    }
}

const fn refused(
    name: &'static str,
    aliases: &'static [&'static str],
    family: Family,
    strength_bits: u16,
    why: &'static str,
    instead: &'static str,
) -> AlgorithmInfo {
    AlgorithmInfo {
        name,
        aliases,
        family,
        strength_bits,
        origin: Origin::International,
        standard: "-",
        restriction: Restriction::Refused { why, instead },
        offered: false,
    }
}

use Family as F;
use Origin::{International as INTL, Korea as KR};

/// The registry, in table order.
pub static REGISTRY: &[AlgorithmInfo] = &[
    // Block ciphers.
    row("AES-128", &[], F::BlockCipher, 128, INTL, "FIPS 197"),
    row("AES-192", &[], F::BlockCipher, 192, INTL, "FIPS 197"),
    row("AES-256", &[], F::BlockCipher, 256, INTL, "FIPS 197"),
    row(
        "ARIA-128",
        &[],
        F::BlockCipher,
        128,
        KR,
        "KS X 1213, RFC 5794",
    ),
    row(
        "ARIA-192",
        &[],
        F::BlockCipher,
        192,
        KR,
        "KS X 1213, RFC 5794",
    ),
    row(
        "ARIA-256",
        &[],
        F::BlockCipher,
        256,
        KR,
        "KS X 1213, RFC 5794",
    ),
    row(
        "SEED-128",
        &["SEED"],
        F::BlockCipher,
        128,
        KR,
        "TTAS.KO-12.0004, RFC 4269",
    ),
    row(
        "LEA-128",
        &[],
        F::BlockCipher,
        128,
        KR,
        "KS X 3246, TTAK.KO-12.0223",
    ),
    row(
        "LEA-192",
        &[],
        F::BlockCipher,
        192,
        KR,
        "KS X 3246, TTAK.KO-12.0223",
    ),
    row(
        "LEA-256",
        &[],
        F::BlockCipher,
        256,
        KR,
        "KS X 3246, TTAK.KO-12.0223",
    ),
    row(
        "HIGHT",
        &["HIGHT-64", "HIGHT-128"],
        F::BlockCipher,
        128,
        KR,
        "TTAS.KO-12.0040, ISO/IEC 18033-3",
    ),
    // Modes.
    row("GCM", &[], F::CipherMode, 0, INTL, "NIST SP 800-38D"),
    row(
        "CCM",
        &[],
        F::CipherMode,
        0,
        INTL,
        "NIST SP 800-38C, RFC 3610",
    ),
    row("CTR", &[], F::CipherMode, 0, INTL, "NIST SP 800-38A"),
    row(
        "CBC",
        &["CBC-PKCS7"],
        F::CipherMode,
        0,
        INTL,
        "NIST SP 800-38A, PKCS#7 padding",
    ),
    // Hashes.
    row("SHA-224", &[], F::Hash, 112, INTL, "FIPS 180-4"),
    row("SHA-256", &[], F::Hash, 128, INTL, "FIPS 180-4"),
    row("SHA-384", &[], F::Hash, 192, INTL, "FIPS 180-4"),
    row("SHA-512", &[], F::Hash, 256, INTL, "FIPS 180-4"),
    row("SHA-512/256", &[], F::Hash, 128, INTL, "FIPS 180-4"),
    row("SHA3-224", &[], F::Hash, 112, INTL, "FIPS 202"),
    row("SHA3-256", &[], F::Hash, 128, INTL, "FIPS 202"),
    row("SHA3-384", &[], F::Hash, 192, INTL, "FIPS 202"),
    row("SHA3-512", &[], F::Hash, 256, INTL, "FIPS 202"),
    row("LSH-256", &["LSH-256-256"], F::Hash, 128, KR, "KS X 3262"),
    row("LSH-512", &["LSH-512-512"], F::Hash, 256, KR, "KS X 3262"),
    AlgorithmInfo {
        restriction: Restriction::MacKdfRngOnly,
        ..row("SHA-1", &[], F::Hash, 80, INTL, "FIPS 180-4")
    },
    AlgorithmInfo {
        restriction: Restriction::MacKdfRngOnly,
        ..row("HAS-160", &[], F::Hash, 80, KR, "TTAS.KO-12.0011/R2")
    },
    // MACs.
    row(
        "HMAC-SHA-256",
        &[],
        F::Mac,
        256,
        INTL,
        "FIPS 198-1, RFC 2104",
    ),
    row(
        "HMAC-SHA-384",
        &[],
        F::Mac,
        256,
        INTL,
        "FIPS 198-1, RFC 2104",
    ),
    row(
        "HMAC-SHA-512",
        &[],
        F::Mac,
        256,
        INTL,
        "FIPS 198-1, RFC 2104",
    ),
    row(
        "HMAC-SHA-1",
        &[],
        F::Mac,
        128,
        INTL,
        "FIPS 198-1 (SP 800-107: MAC use only)",
    ),
    row(
        "HMAC-HAS-160",
        &[],
        F::Mac,
        128,
        KR,
        "TTAS.KO-12.0011/R2, RFC 2104 (MAC use only)",
    ),
    row(
        "CMAC",
        &["AES-CMAC", "ARIA-CMAC", "SEED-CMAC", "LEA-CMAC"],
        F::Mac,
        128,
        INTL,
        "NIST SP 800-38B",
    ),
    row(
        "GMAC",
        &["AES-GMAC", "ARIA-GMAC", "LEA-GMAC"],
        F::Mac,
        128,
        INTL,
        "NIST SP 800-38D",
    ),
    // KDFs and password hashes.
    row(
        "HKDF",
        &["HKDF-SHA-256"],
        F::Kdf,
        256,
        INTL,
        "RFC 5869, SP 800-56C",
    ),
    row(
        "PBKDF2",
        &["PBKDF2-HMAC-SHA-256", "PBKDF2-SHA256"],
        F::Kdf,
        128,
        INTL,
        "RFC 8018, SP 800-132",
    ),
    row(
        "Argon2id",
        &["ARGON2"],
        F::PasswordHash,
        128,
        INTL,
        "RFC 9106",
    ),
    // DRBGs.
    row(
        "HMAC-DRBG",
        &[],
        F::Drbg,
        256,
        INTL,
        "NIST SP 800-90A Rev. 1",
    ),
    row(
        "CTR-DRBG",
        &[],
        F::Drbg,
        256,
        INTL,
        "NIST SP 800-90A Rev. 1",
    ),
    // Public key.
    row(
        "RSA-2048-PSS",
        &["RSA-2048"],
        F::Signature,
        112,
        INTL,
        "RFC 8017, FIPS 186-5",
    ),
    row(
        "RSA-3072-PSS",
        &["RSA-3072", "RSA-PSS"],
        F::Signature,
        128,
        INTL,
        "RFC 8017, FIPS 186-5",
    ),
    row(
        "RSA-4096-PSS",
        &["RSA-4096"],
        F::Signature,
        128,
        INTL,
        "RFC 8017, FIPS 186-5",
    ),
    row(
        "RSA-2048-OAEP",
        &[],
        F::PublicKeyEncryption,
        112,
        INTL,
        "RFC 8017",
    ),
    row(
        "RSA-3072-OAEP",
        &["RSA-OAEP"],
        F::PublicKeyEncryption,
        128,
        INTL,
        "RFC 8017",
    ),
    row(
        "RSA-4096-OAEP",
        &[],
        F::PublicKeyEncryption,
        128,
        INTL,
        "RFC 8017",
    ),
    row(
        "ECDSA-P256",
        &["P-256"],
        F::Signature,
        128,
        INTL,
        "FIPS 186-5",
    ),
    row(
        "ECDSA-P384",
        &["P-384"],
        F::Signature,
        192,
        INTL,
        "FIPS 186-5",
    ),
    row(
        "Ed25519",
        &[],
        F::Signature,
        128,
        INTL,
        "RFC 8032, FIPS 186-5",
    ),
    row(
        "ECDH-P256",
        &[],
        F::KeyAgreement,
        128,
        INTL,
        "NIST SP 800-56A",
    ),
    row("X25519", &[], F::KeyAgreement, 128, INTL, "RFC 7748"),
    row(
        "EC-KCDSA-P256",
        &["EC-KCDSA"],
        F::Signature,
        128,
        KR,
        "TTAK.KO-12.0015/R3 (P-256, SHA-256)",
    ),
    row(
        "KCDSA-2048",
        &["KCDSA"],
        F::Signature,
        112,
        KR,
        "TTAK.KO-12.0001/R4 (SHA-224/SHA-256)",
    ),
    row(
        "KCDSA-3072",
        &[],
        F::Signature,
        128,
        KR,
        "TTAK.KO-12.0001/R4 (SHA-256)",
    ),
    // Refused.
    refused(
        "RSA-1024",
        &["RSA-1024-PSS", "RSA-1024-OAEP", "RSA-1024-PKCS1"],
        F::Signature,
        80,
        "RSA-1024 gives only 80-bit strength, below the 112-bit minimum (KISA guide, NIST SP 800-131A)",
        "RSA-3072-PSS / RSA-3072-OAEP, or ECDSA-P256",
    ),
    refused(
        "KCDSA-1024",
        &["KCDSA-HAS-160"],
        F::Signature,
        80,
        "KCDSA with a 1024-bit p gives only 80-bit strength, and its HAS-160 hash is allowed only for HMAC, KDF and RNG",
        "KCDSA-2048 (SHA-224/SHA-256), EC-KCDSA-P256 or ECDSA-P256",
    ),
    refused(
        "SHA-1-signature",
        &["RSA-SHA1", "SHA1withRSA", "ECDSA-SHA1"],
        F::Signature,
        63,
        "SHA-1 collisions are practical (SHAttered, 2017): SHA-1 is allowed only in HMAC, KDF and RNG",
        "a signature over SHA-256 or stronger (RSA-3072-PSS, ECDSA-P256, Ed25519)",
    ),
    refused(
        "3DES",
        &[
            "TDEA",
            "DES-EDE3",
            "TRIPLE-DES",
            "DES3",
            "3DES-CBC",
            "DES-EDE3-CBC",
        ],
        F::BlockCipher,
        112,
        "3DES has a 64-bit block (Sweet32) and NIST SP 800-131A disallows it for encryption since 2024; it is not in the KISA guide",
        "AES-256-GCM or ARIA-256-GCM",
    ),
    refused(
        "DES",
        &["DES-CBC"],
        F::BlockCipher,
        56,
        "DES has a 56-bit key, exhaustively searchable",
        "AES-256-GCM or ARIA-256-GCM",
    ),
    refused(
        "ECB",
        &[],
        F::CipherMode,
        0,
        "ECB encrypts equal blocks to equal ciphertext and leaks the plaintext's structure",
        "GCM (authenticated), or CTR/CBC with a separate MAC",
    ),
    refused(
        "MD5",
        &["HMAC-MD5"],
        F::Hash,
        18,
        "MD5 collisions take seconds; it is not in the KISA guide",
        "SHA-256 or LSH-256 (HMAC-SHA-256 for a MAC)",
    ),
    refused(
        "RC4",
        &["ARC4", "ARCFOUR"],
        F::BlockCipher,
        0,
        "RC4's keystream is biased (RFC 7465 prohibits it in TLS)",
        "AES-256-GCM or ARIA-256-GCM",
    ),
];

/// Finds the registry row that `name` names.
pub fn lookup(name: &str) -> Option<&'static AlgorithmInfo> {
    REGISTRY.iter().find(|info| info.is_named(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for info in REGISTRY {
            for name in std::iter::once(&info.name).chain(info.aliases) {
                assert!(seen.insert(normalise(name)), "{name} appears twice");
            }
        }
    }

    #[test]
    fn lookup_ignores_case_and_separators() {
        assert_eq!(lookup("aria_256").map(|i| i.name), Some("ARIA-256"));
        assert_eq!(lookup("sha512/256").map(|i| i.name), Some("SHA-512/256"));
        assert!(lookup("ROT13").is_none());
    }

    #[test]
    fn family_names_round_trip() {
        for family in Family::ALL {
            assert_eq!(Family::from_name(family.as_str()), Some(family));
        }
    }
}
