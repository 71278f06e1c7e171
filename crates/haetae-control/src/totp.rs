//! TOTP second factor (RFC 6238 over HOTP, RFC 4226): 6 digits, 30-second steps, HMAC-SHA1
//! (what authenticator apps implement), a 160-bit random secret shown once as Base32, and a
//! window of one step either side for clock drift. A code is accepted at most once (the
//! caller stores the last accepted step). Comparison is constant-time.

use hmac::digest::{KeyInit, Mac};
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 Base32 without padding.
#[must_use]
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 Base32 (case-insensitive, spaces and padding ignored); `None` when a
/// character is not Base32.
#[must_use]
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b' ' || c == b'=' || c == b'-' {
            continue;
        }
        let v = BASE32.iter().position(|x| *x == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// HOTP (RFC 4226) with HMAC-SHA1: the `digits`-digit code for `counter`.
#[must_use]
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret) else {
        return u32::MAX; // HMAC accepts any key length; never a valid code
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The time step of `unix_seconds`.
#[must_use]
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP)
}

/// The 6-digit code at `unix_seconds`, zero-padded.
#[must_use]
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    let step = u64::try_from(step_of(unix_seconds)).unwrap_or(0);
    format!("{:06}", hotp(secret, step, DIGITS))
}

/// Checks `code` against the steps around `unix_seconds` (±1). Returns the matching step,
/// which must be later than `last_used_step` (a code works once). Every candidate is
/// compared in constant time.
#[must_use]
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_seconds: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = format!("{:06}", hotp(secret, counter, DIGITS));
        let same: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if same && last_used_step.is_none_or(|last| step > last) {
            found = Some(step);
        }
    }
    found
}

/// A new random 160-bit secret.
pub fn new_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut s = vec![0u8; 20];
    getrandom::fill(&mut s)?;
    Ok(s)
}

/// The `otpauth://` URI authenticator apps import (issuer `haetae`).
#[must_use]
pub fn otpauth_uri(username: &str, secret: &[u8]) -> String {
    let label: String = username
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/haetae:{label}?secret={}&issuer=haetae&algorithm=SHA1&digits=6&period=30",
        base32_encode(secret)
    )
}

/// New recovery codes: 10 of `xxxxx-xxxxx` (50 bits each, lower-case Base32).
pub fn new_recovery_codes() -> Result<Vec<String>, getrandom::Error> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 7];
            getrandom::fill(&mut b)?;
            let s = base32_encode(&b).to_ascii_lowercase();
            Ok(format!("{}-{}", &s[..5], &s[5..10]))
        })
        .collect()
}

/// A recovery code as stored: lower-cased, without spaces and dashes.
#[must_use]
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits), secret "12345678901234567890".
    #[test]
    fn rfc6238_sha1_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, expected) in [
            (59_i64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            let step = u64::try_from(step_of(t)).unwrap();
            assert_eq!(hotp(secret, step, 8), expected, "T = {t}");
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0..9.
    #[test]
    fn rfc4226_hotp_test_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, e) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *e);
        }
    }

    #[test]
    fn codes_verify_within_one_step_and_only_once() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let code = code_at(secret, t);
        assert_eq!(code, "050471");
        let step = verify(secret, &code, t, None).unwrap();
        assert_eq!(verify(secret, &code, t + 29, None), Some(step));
        assert_eq!(
            verify(secret, &code, t + 30, None),
            Some(step),
            "one step late"
        );
        assert_eq!(
            verify(secret, &code, t + 90, None),
            None,
            "three steps late"
        );
        assert_eq!(verify(secret, &code, t, Some(step)), None, "replayed");
        assert_eq!(verify(secret, "05047", t, None), None);
        assert_eq!(verify(secret, "05047a", t, None), None);
        assert_eq!(verify(secret, "", t, None), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_decode("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZ1"), None);
        let s = new_secret().unwrap();
        assert_eq!(base32_decode(&base32_encode(&s)).unwrap(), s);
        let uri = otpauth_uri("kim lee", &s);
        assert!(
            uri.starts_with("otpauth://totp/haetae:kim%20lee?secret="),
            "{uri}"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(normalize_recovery_code(" ABCDE-fghij "), "abcdefghij");
    }
}
