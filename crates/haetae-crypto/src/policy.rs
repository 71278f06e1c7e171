//! `CryptoPolicy`: decides whether an algorithm may be used for a purpose, by the registry's
//! strength and restrictions, a configurable minimum strength, the allowed families and an
//! as-of date (112-bit strength is valid until 2030-12-31, 128-bit after). A refusal says
//! why and what to use instead. [`DeploymentChoices`] is the file `haetae crypto check` reads.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use time::{Date, Month};

use crate::registry::{self, AlgorithmInfo, Family, Restriction};

/// The last day on which 112-bit strength is acceptable (KISA guide, NIST SP 800-131A).
pub const LAST_DAY_OF_112_BIT: Date = match Date::from_calendar_date(2030, Month::December, 31) {
    Ok(date) => date,
    Err(_) => panic!("2030-12-31 is a date"),
};

/// What an algorithm is being chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Encrypting data (block cipher and mode, or public-key encryption).
    Encryption,
    /// A plain message digest (file hashes, fingerprints).
    Digest,
    /// A digital signature (or the hash inside one).
    Signature,
    /// A message authentication code (or the hash inside an HMAC).
    Mac,
    /// Deriving keys (or the hash inside a KDF).
    KeyDerivation,
    /// Generating random bits (a DRBG or its primitive).
    RandomBits,
    /// Key agreement.
    KeyAgreement,
    /// Storing user passwords.
    PasswordStorage,
}

impl Purpose {
    /// The kebab-case name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Encryption => "encryption",
            Purpose::Digest => "digest",
            Purpose::Signature => "signature",
            Purpose::Mac => "mac",
            Purpose::KeyDerivation => "key-derivation",
            Purpose::RandomBits => "random-bits",
            Purpose::KeyAgreement => "key-agreement",
            Purpose::PasswordStorage => "password-storage",
        }
    }

    fn accepts(self, family: Family) -> bool {
        use Family as F;
        match self {
            Purpose::Encryption => matches!(
                family,
                F::BlockCipher | F::CipherMode | F::PublicKeyEncryption
            ),
            Purpose::Digest => family == F::Hash,
            Purpose::Signature => matches!(family, F::Signature | F::Hash),
            Purpose::Mac => matches!(family, F::Mac | F::Hash | F::BlockCipher),
            Purpose::KeyDerivation => matches!(family, F::Kdf | F::Hash | F::Mac),
            Purpose::RandomBits => matches!(family, F::Drbg | F::Hash | F::BlockCipher),
            Purpose::KeyAgreement => family == F::KeyAgreement,
            Purpose::PasswordStorage => matches!(family, F::PasswordHash | F::Kdf),
        }
    }

    /// Where a hash with [`Restriction::MacKdfRngOnly`] may still be used.
    fn allows_weak_collision_resistance(self) -> bool {
        matches!(
            self,
            Purpose::Mac | Purpose::KeyDerivation | Purpose::RandomBits
        )
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a choice was refused. Every message names the choice, the rule, and what to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not in the registry.
    #[error("unknown algorithm {name:?}: `haetae crypto algorithms` lists the ones haetae offers")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// Refused for every use.
    #[error("{name} is refused: {why}; use {instead}")]
    Refused {
        /// The algorithm.
        name: String,
        /// Why.
        why: &'static str,
        /// What to use instead.
        instead: &'static str,
    },
    /// A hash whose collision resistance is broken, chosen for a digest or a signature.
    #[error(
        "{name} is allowed only for HMAC, key derivation and random-bit generation (its collisions are practical), not for {purpose}; use {instead}"
    )]
    RestrictedUse {
        /// The algorithm.
        name: String,
        /// The purpose asked for.
        purpose: Purpose,
        /// What to use instead.
        instead: &'static str,
    },
    /// Below the minimum strength on the as-of date.
    #[error(
        "{name} gives {strength}-bit security, below the {minimum}-bit minimum in force on {as_of}{until}; use {instead}"
    )]
    TooWeak {
        /// The algorithm.
        name: String,
        /// Its strength.
        strength: u16,
        /// The minimum in force.
        minimum: u16,
        /// The date the policy judges for.
        as_of: Date,
        /// A note when the 2030 rule applies.
        until: &'static str,
        /// What to use instead.
        instead: &'static str,
    },
    /// The deployment's policy does not allow this family.
    #[error(
        "{name} is a {family} algorithm, and this policy allows only: {allowed}; add {family} to allowed_families or choose another algorithm"
    )]
    FamilyNotAllowed {
        /// The algorithm.
        name: String,
        /// Its family.
        family: Family,
        /// The allowed families, comma-separated.
        allowed: String,
    },
    /// The algorithm does not do what was asked.
    #[error("{name} is a {family} algorithm and cannot serve {purpose}; use {instead}")]
    WrongPurpose {
        /// The algorithm.
        name: String,
        /// Its family.
        family: Family,
        /// The purpose asked for.
        purpose: Purpose,
        /// What to use instead.
        instead: &'static str,
    },
    /// In the guide but not implemented by haetae.
    #[error("{name} is in the KISA guide but haetae does not implement it; use {instead}")]
    NotOffered {
        /// The algorithm.
        name: String,
        /// What to use instead.
        instead: &'static str,
    },
    /// GCM or CCM over a 64-bit block cipher.
    #[error(
        "{mode} needs a 128-bit block cipher and {cipher} has a 64-bit block; use {cipher}-CTR or {cipher}-CBC with an HMAC, or LEA-128-{mode}"
    )]
    ModeNeedsWideBlock {
        /// The cipher.
        cipher: &'static str,
        /// The mode.
        mode: &'static str,
    },
}

/// An accepted choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The canonical name (`ARIA-256-GCM`).
    pub name: String,
    /// Security strength in bits.
    pub strength_bits: u16,
    /// Set when the choice stops being acceptable at the end of 2030 (112-bit strength).
    pub valid_until: Option<Date>,
}

/// The deployment's cryptographic policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoPolicy {
    /// The minimum strength the deployment asks for (the date rule may raise it).
    pub min_strength: u16,
    /// The families allowed; `None` allows all.
    pub allowed_families: Option<BTreeSet<Family>>,
    /// The date the policy judges for (usually today).
    pub as_of: Date,
}

impl CryptoPolicy {
    /// The KISA/NIST default: 112-bit minimum until 2030, 128-bit after, every family.
    pub fn kisa(as_of: Date) -> Self {
        CryptoPolicy {
            min_strength: 112,
            allowed_families: None,
            as_of,
        }
    }

    /// The default policy judged for today's date (UTC).
    pub fn kisa_today() -> Self {
        Self::kisa(time::OffsetDateTime::now_utc().date())
    }

    /// The minimum strength in force on the as-of date.
    pub fn effective_minimum(&self) -> u16 {
        let by_date = if self.as_of > LAST_DAY_OF_112_BIT {
            128
        } else {
            112
        };
        self.min_strength.max(by_date)
    }

    /// Checks `name` (an algorithm, or a block cipher and mode such as `ARIA-256-GCM`) for
    /// `purpose`.
    ///
    /// # Errors
    /// A [`PolicyError`] that says why the choice is refused and what to use instead.
    pub fn check(&self, name: &str, purpose: Purpose) -> Result<Approval, PolicyError> {
        if let Some(info) = registry::lookup(name) {
            return self.check_one(info, purpose).map(|strength| Approval {
                name: info.name.to_owned(),
                strength_bits: strength,
                valid_until: (strength < 128).then_some(LAST_DAY_OF_112_BIT),
            });
        }
        let (cipher, mode) = split_cipher_mode(name).ok_or_else(|| PolicyError::Unknown {
            name: name.trim().to_owned(),
        })?;
        // The mode is judged first: ECB is refused whatever the cipher.
        self.check_one(mode, purpose)?;
        let strength = self.check_one(cipher, purpose)?;
        if matches!(mode.name, "GCM" | "CCM") && cipher.name == "HIGHT" {
            return Err(PolicyError::ModeNeedsWideBlock {
                cipher: cipher.name,
                mode: mode.name,
            });
        }
        if cipher.family != Family::BlockCipher {
            return Err(PolicyError::Unknown {
                name: name.trim().to_owned(),
            });
        }
        Ok(Approval {
            name: format!("{}-{}", cipher.name, mode.name),
            strength_bits: strength,
            valid_until: (strength < 128).then_some(LAST_DAY_OF_112_BIT),
        })
    }

    /// A short verdict on a registry row under this policy, for the algorithm table:
    /// `approved`, `approved until 2030-12-31`, `HMAC/KDF/RNG only`, `refused`, ...
    pub fn status(&self, info: &AlgorithmInfo) -> String {
        match info.restriction {
            Restriction::Refused { .. } => return "refused".to_owned(),
            Restriction::MacKdfRngOnly if !info.offered => {
                return "HMAC/KDF/RNG only; not implemented".to_owned();
            }
            Restriction::MacKdfRngOnly => return "HMAC/KDF/RNG only".to_owned(),
            Restriction::None => {}
        }
        if !info.offered {
            return "not implemented".to_owned();
        }
        if let Some(allowed) = &self.allowed_families
            && !allowed.contains(&info.family)
        {
            return "family not allowed".to_owned();
        }
        if info.family == Family::CipherMode {
            return "approved".to_owned();
        }
        let minimum = self.effective_minimum();
        if info.strength_bits < minimum {
            format!("too weak (< {minimum} bits)")
        } else if info.strength_bits < 128 {
            format!("approved until {LAST_DAY_OF_112_BIT}")
        } else {
            "approved".to_owned()
        }
    }

    fn check_one(&self, info: &AlgorithmInfo, purpose: Purpose) -> Result<u16, PolicyError> {
        let name = info.name.to_owned();
        if let Restriction::Refused { why, instead } = info.restriction {
            return Err(PolicyError::Refused { name, why, instead });
        }
        if !purpose.accepts(info.family) {
            return Err(PolicyError::WrongPurpose {
                name,
                family: info.family,
                purpose,
                instead: suggestion_for_purpose(purpose),
            });
        }
        if let Some(allowed) = &self.allowed_families
            && !allowed.contains(&info.family)
        {
            return Err(PolicyError::FamilyNotAllowed {
                name,
                family: info.family,
                allowed: allowed
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let weak_hash_ok = info.restriction == Restriction::MacKdfRngOnly
            && purpose.allows_weak_collision_resistance();
        if info.restriction == Restriction::MacKdfRngOnly && !weak_hash_ok {
            return Err(PolicyError::RestrictedUse {
                name,
                purpose,
                instead: "SHA-256, SHA-384 or LSH-256",
            });
        }
        if !info.offered {
            return Err(PolicyError::NotOffered {
                name,
                instead: suggestion_for_family(info.family),
            });
        }
        let minimum = self.effective_minimum();
        // HMAC, KDF and DRBG security rests on preimage resistance (SP 800-107), so a hash
        // with weak collision resistance keeps a 128-bit strength there.
        let strength = if weak_hash_ok {
            128
        } else {
            info.strength_bits
        };
        if info.family != Family::CipherMode && strength < minimum {
            return Err(PolicyError::TooWeak {
                name,
                strength,
                minimum,
                as_of: self.as_of,
                until: if strength >= 112 {
                    " (112-bit strength was accepted only until 2030-12-31)"
                } else {
                    ""
                },
                instead: suggestion_for_family(info.family),
            });
        }
        Ok(strength)
    }
}

fn split_cipher_mode(name: &str) -> Option<(&'static AlgorithmInfo, &'static AlgorithmInfo)> {
    let name = name.trim();
    let (cipher, mode) = name.rsplit_once(['-', '_', ' '])?;
    let mode = registry::lookup(mode).filter(|m| m.family == Family::CipherMode)?;
    let cipher = registry::lookup(cipher)?;
    Some((cipher, mode))
}

fn suggestion_for_family(family: Family) -> &'static str {
    match family {
        Family::BlockCipher | Family::CipherMode => "AES-256-GCM or ARIA-256-GCM",
        Family::Hash => "SHA-256, SHA-384 or LSH-256",
        Family::Mac => "HMAC-SHA-256",
        Family::Kdf => "HKDF (SHA-256)",
        Family::PasswordHash => "Argon2id",
        Family::Drbg => "HMAC-DRBG",
        Family::Signature => "RSA-3072-PSS, ECDSA-P256 or Ed25519",
        Family::PublicKeyEncryption => "RSA-3072-OAEP",
        Family::KeyAgreement => "X25519 or ECDH-P256",
    }
}

fn suggestion_for_purpose(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Encryption => "AES-256-GCM or ARIA-256-GCM",
        Purpose::Digest => "SHA-256, SHA-384 or LSH-256",
        Purpose::Signature => "RSA-3072-PSS, ECDSA-P256 or Ed25519",
        Purpose::Mac => "HMAC-SHA-256",
        Purpose::KeyDerivation => "HKDF (SHA-256)",
        Purpose::RandomBits => "HMAC-DRBG",
        Purpose::KeyAgreement => "X25519 or ECDH-P256",
        Purpose::PasswordStorage => "Argon2id",
    }
}

/// A deployment's cryptographic choices, as `haetae crypto check` reads them:
///
/// ```toml
/// [policy]
/// min_strength = 128                       # optional, default 112 (128 after 2030)
/// as_of = "2031-01-01"                     # optional, default today
/// allowed_families = ["block-cipher", "cipher-mode", "mac"]   # optional, default all
///
/// [[choice]]
/// use = "quarantine at rest"               # free text, shown in the report
/// purpose = "encryption"
/// algorithm = "ARIA-256-GCM"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentChoices {
    /// The policy; defaults to the KISA policy for today.
    #[serde(default)]
    pub policy: PolicySection,
    /// The choices to check.
    #[serde(default)]
    pub choice: Vec<Choice>,
}

/// `[policy]` of a [`DeploymentChoices`] file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Minimum strength in bits.
    pub min_strength: Option<u16>,
    /// `YYYY-MM-DD`.
    pub as_of: Option<String>,
    /// Family names (`block-cipher`, `hash`, ...).
    pub allowed_families: Option<Vec<String>>,
}

/// One `[[choice]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What the algorithm is used for in the deployment (free text).
    #[serde(rename = "use", default)]
    pub used_for: String,
    /// The purpose.
    pub purpose: Purpose,
    /// The algorithm name.
    pub algorithm: String,
}

/// The verdict on one choice.
#[derive(Debug, Clone)]
pub struct ChoiceVerdict {
    /// The choice.
    pub choice: Choice,
    /// Approved or refused.
    pub result: Result<Approval, PolicyError>,
}

/// A malformed [`DeploymentChoices`] file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoicesError {
    /// Not TOML of the expected shape.
    #[error("{source_name}: {message}")]
    Syntax {
        /// The file name.
        source_name: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A field has a bad value.
    #[error("{source_name}: [policy] {field}: {message}")]
    Field {
        /// The file name.
        source_name: String,
        /// The field.
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl DeploymentChoices {
    /// Parses a choices file; `source_name` is used in error messages.
    ///
    /// # Errors
    /// [`ChoicesError`] naming the file and the line or field at fault.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, ChoicesError> {
        toml::from_str(text).map_err(|e| ChoicesError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })
    }

    /// The policy the file asks for; `today` is the default as-of date.
    ///
    /// # Errors
    /// [`ChoicesError::Field`] for a bad date or family name.
    pub fn policy(&self, source_name: &str, today: Date) -> Result<CryptoPolicy, ChoicesError> {
        let field = |field, message: String| ChoicesError::Field {
            source_name: source_name.to_owned(),
            field,
            message,
        };
        let mut policy = CryptoPolicy::kisa(today);
        if let Some(min) = self.policy.min_strength {
            policy.min_strength = min;
        }
        if let Some(text) = &self.policy.as_of {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            policy.as_of = Date::parse(text, &format)
                .map_err(|e| field("as_of", format!("{text:?} is not a YYYY-MM-DD date ({e})")))?;
        }
        if let Some(names) = &self.policy.allowed_families {
            let mut set = BTreeSet::new();
            for name in names {
                let family = Family::from_name(name).ok_or_else(|| {
                    let known: Vec<_> = Family::ALL.iter().map(|f| f.as_str()).collect();
                    field(
                        "allowed_families",
                        format!("unknown family {name:?}; known: {}", known.join(", ")),
                    )
                })?;
                set.insert(family);
            }
            policy.allowed_families = Some(set);
        }
        Ok(policy)
    }

    /// Checks every choice against `policy`.
    pub fn check(&self, policy: &CryptoPolicy) -> Vec<ChoiceVerdict> {
        self.choice
            .iter()
            .map(|choice| ChoiceVerdict {
                result: policy.check(&choice.algorithm, choice.purpose),
                choice: choice.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn now() -> CryptoPolicy {
        CryptoPolicy::kisa(date!(2026 - 11 - 23))
    }

    fn after_2030() -> CryptoPolicy {
        CryptoPolicy::kisa(date!(2031 - 01 - 01))
    }

    #[test]
    fn rsa_1024_is_refused_with_the_reason_and_an_alternative() {
        let err = now().check("RSA-1024", Purpose::Signature).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PolicyError::Refused { .. }));
        assert!(text.contains("80-bit"), "{text}");
        assert!(text.contains("RSA-3072"), "{text}");
    }

    #[test]
    fn sha1_is_refused_for_signatures() {
        let err = now().check("SHA-1", Purpose::Signature).unwrap_err();
        assert!(matches!(err, PolicyError::RestrictedUse { .. }), "{err}");
        assert!(err.to_string().contains("SHA-256"));
        let err = now().check("SHA1withRSA", Purpose::Signature).unwrap_err();
        assert!(matches!(err, PolicyError::Refused { .. }), "{err}");
    }

    #[test]
    fn sha1_is_refused_for_plain_digests() {
        let err = now().check("SHA-1", Purpose::Digest).unwrap_err();
        assert!(matches!(err, PolicyError::RestrictedUse { .. }), "{err}");
    }

    #[test]
    fn sha1_is_accepted_inside_hmac_kdf_and_rng() {
        for purpose in [Purpose::Mac, Purpose::KeyDerivation, Purpose::RandomBits] {
            assert!(now().check("SHA-1", purpose).is_ok(), "{purpose}");
        }
        assert!(after_2030().check("HMAC-SHA-1", Purpose::Mac).is_ok());
    }

    #[test]
    fn has160_is_restricted_like_sha1_to_mac_kdf_and_rng() {
        let err = now().check("HAS-160", Purpose::Signature).unwrap_err();
        assert!(matches!(err, PolicyError::RestrictedUse { .. }), "{err}");
        let err = now().check("HAS-160", Purpose::Digest).unwrap_err();
        assert!(matches!(err, PolicyError::RestrictedUse { .. }), "{err}");
        assert!(now().check("HAS-160", Purpose::Mac).is_ok());
        assert!(now().check("HMAC-HAS-160", Purpose::Mac).is_ok());
    }

    #[test]
    fn korean_signatures_follow_the_strength_rules() {
        assert!(now().check("EC-KCDSA", Purpose::Signature).is_ok());
        let kcdsa = now().check("KCDSA", Purpose::Signature).unwrap();
        assert_eq!(kcdsa.name, "KCDSA-2048");
        assert!(kcdsa.valid_until.is_some(), "112-bit: until 2030");
        let err = now().check("KCDSA-1024", Purpose::Signature).unwrap_err();
        assert!(err.to_string().contains("KCDSA-2048"), "{err}");
    }

    #[test]
    fn triple_des_is_refused() {
        for name in ["3DES", "DES-EDE3-CBC", "TDEA"] {
            let err = now().check(name, Purpose::Encryption).unwrap_err();
            assert!(matches!(err, PolicyError::Refused { .. }), "{name}: {err}");
            assert!(err.to_string().contains("AES-256-GCM"));
        }
    }

    #[test]
    fn ecb_is_refused_over_any_cipher() {
        for name in ["AES-256-ECB", "ARIA-128-ECB", "SEED-ECB", "ECB"] {
            let err = now().check(name, Purpose::Encryption).unwrap_err();
            assert!(matches!(err, PolicyError::Refused { .. }), "{name}: {err}");
            assert!(err.to_string().contains("GCM"), "{err}");
        }
    }

    #[test]
    fn cipher_and_mode_names_are_accepted_with_the_cipher_strength() {
        let ok = now().check("aria-256-gcm", Purpose::Encryption).unwrap();
        assert_eq!(ok.name, "ARIA-256-GCM");
        assert_eq!(ok.strength_bits, 256);
        assert_eq!(ok.valid_until, None);
        assert_eq!(
            now().check("SEED-CBC", Purpose::Encryption).unwrap().name,
            "SEED-128-CBC"
        );
    }

    #[test]
    fn gcm_over_hight_is_refused_for_its_64_bit_block() {
        let err = now().check("HIGHT-GCM", Purpose::Encryption).unwrap_err();
        assert!(
            matches!(err, PolicyError::ModeNeedsWideBlock { .. }),
            "{err}"
        );
        assert!(now().check("HIGHT-CTR", Purpose::Encryption).is_ok());
        let err = now().check("HIGHT-CCM", Purpose::Encryption).unwrap_err();
        assert!(err.to_string().contains("LEA-128-CCM"), "{err}");
        assert_eq!(
            now()
                .check("lea-256-ccm", Purpose::Encryption)
                .unwrap()
                .name,
            "LEA-256-CCM"
        );
    }

    #[test]
    fn strength_112_is_accepted_until_2030_with_an_end_date() {
        let ok = now().check("RSA-2048-PSS", Purpose::Signature).unwrap();
        assert_eq!(ok.strength_bits, 112);
        assert_eq!(ok.valid_until, Some(LAST_DAY_OF_112_BIT));
    }

    #[test]
    fn strength_112_is_refused_after_2030() {
        let err = after_2030()
            .check("RSA-2048-OAEP", Purpose::Encryption)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PolicyError::TooWeak { minimum: 128, .. }),
            "{text}"
        );
        assert!(text.contains("2030-12-31"), "{text}");
        assert!(after_2030().check("SHA-224", Purpose::Digest).is_err());
        assert!(
            after_2030()
                .check("RSA-3072-OAEP", Purpose::Encryption)
                .is_ok()
        );
    }

    #[test]
    fn a_configured_minimum_above_the_date_rule_wins() {
        let mut policy = now();
        policy.min_strength = 192;
        assert!(policy.check("AES-128-GCM", Purpose::Encryption).is_err());
        assert!(policy.check("AES-256-GCM", Purpose::Encryption).is_ok());
    }

    #[test]
    fn families_outside_the_allowed_set_are_refused() {
        let mut policy = now();
        policy.allowed_families = Some([Family::BlockCipher, Family::CipherMode].into());
        let err = policy.check("Ed25519", Purpose::Signature).unwrap_err();
        assert!(matches!(err, PolicyError::FamilyNotAllowed { .. }), "{err}");
        assert!(policy.check("LEA-256-GCM", Purpose::Encryption).is_ok());
    }

    #[test]
    fn an_algorithm_chosen_for_the_wrong_purpose_is_refused() {
        let err = now().check("X25519", Purpose::Signature).unwrap_err();
        assert!(matches!(err, PolicyError::WrongPurpose { .. }), "{err}");
    }

    #[test]
    fn unknown_names_point_to_the_algorithm_list() {
        let err = now().check("ROT13", Purpose::Encryption).unwrap_err();
        assert!(err.to_string().contains("haetae crypto algorithms"));
    }

    #[test]
    fn a_choices_file_is_checked_choice_by_choice() {
        let text = r#"
            [policy]
            as_of = "2031-06-01"
            [[choice]]
            use = "quarantine at rest"
            purpose = "encryption"
            algorithm = "ARIA-256-GCM"
            [[choice]]
            use = "legacy signatures"
            purpose = "signature"
            algorithm = "RSA-2048-PSS"
        "#;
        let choices = DeploymentChoices::parse("choices.toml", text).unwrap();
        let policy = choices
            .policy("choices.toml", date!(2026 - 01 - 01))
            .unwrap();
        assert_eq!(policy.effective_minimum(), 128);
        let verdicts = choices.check(&policy);
        assert!(verdicts[0].result.is_ok());
        assert!(verdicts[1].result.is_err());
    }

    #[test]
    fn a_bad_date_in_a_choices_file_names_the_field() {
        let choices =
            DeploymentChoices::parse("c.toml", "[policy]\nas_of = \"tomorrow\"\n").unwrap();
        let err = choices.policy("c.toml", date!(2026 - 01 - 01)).unwrap_err();
        assert!(
            err.to_string().starts_with("c.toml: [policy] as_of:"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_in_a_choices_file_is_a_syntax_error_with_the_file_name() {
        let err = DeploymentChoices::parse("c.toml", "[policy]\nminimum = 3\n").unwrap_err();
        assert!(err.to_string().starts_with("c.toml:"), "{err}");
    }
}
