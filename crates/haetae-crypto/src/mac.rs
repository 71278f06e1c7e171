//! Message authentication: HMAC (RustCrypto `hmac` over SHA-1/SHA-2/SHA-3, and RFC 2104
//! over this crate's LSH), CMAC over any 128-bit block cipher (RustCrypto `cmac`), and GMAC
//! (GCM with an empty plaintext). Tags are checked in constant time.

use digest::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::has160::Has160;
use crate::lsh::{Lsh256, Lsh512};
use crate::symmetric::{BlockCipherKind, CipherSuite, Mode, SymmetricCipher};

/// The hash inside an HMAC. SHA-1 is allowed here (SP 800-107, KISA guide) and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacHash {
    /// HMAC-SHA-1 (legacy interoperability only).
    Sha1,
    /// HMAC-HAS-160 (TTAS.KO-12.0011; legacy interoperability only, like SHA-1).
    Has160,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
    /// HMAC-SHA3-256.
    Sha3_256,
    /// HMAC-LSH-256-256.
    Lsh256,
    /// HMAC-LSH-512-512.
    Lsh512,
}

fn rustcrypto_mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC accepts every key length")
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 2104 over a hash without a `digest` implementation (LSH, HAS-160).
fn rfc2104<H>(block_len: usize, hash: H, key: &[u8], data: &[u8]) -> Vec<u8>
where
    H: Fn(&[&[u8]]) -> Vec<u8>,
{
    let mut k0 = Zeroizing::new(if key.len() > block_len {
        hash(&[key])
    } else {
        key.to_vec()
    });
    k0.resize(block_len, 0);
    let ipad = Zeroizing::new(k0.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    let opad = Zeroizing::new(k0.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    let inner = hash(&[&ipad, data]);
    hash(&[&opad, &inner])
}

fn has160(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Has160::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().to_vec()
}

fn lsh256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Lsh256::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize()
}

fn lsh512(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Lsh512::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize()
}

/// HMAC of `data` under `key`.
pub fn hmac(hash: HmacHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        HmacHash::Sha1 => rustcrypto_mac::<hmac::Hmac<sha1::Sha1>>(key, data),
        HmacHash::Has160 => rfc2104(Has160::BLOCK_LEN, has160, key, data),
        HmacHash::Sha256 => rustcrypto_mac::<hmac::Hmac<sha2::Sha256>>(key, data),
        HmacHash::Sha384 => rustcrypto_mac::<hmac::Hmac<sha2::Sha384>>(key, data),
        HmacHash::Sha512 => rustcrypto_mac::<hmac::Hmac<sha2::Sha512>>(key, data),
        HmacHash::Sha3_256 => rustcrypto_mac::<hmac::SimpleHmac<sha3::Sha3_256>>(key, data),
        HmacHash::Lsh256 => rfc2104(Lsh256::BLOCK_LEN, lsh256, key, data),
        HmacHash::Lsh512 => rfc2104(Lsh512::BLOCK_LEN, lsh512, key, data),
    }
}

/// Checks `tag` against the HMAC of `data`, in constant time.
///
/// # Errors
/// [`CryptoError::DecryptionFailed`] when the tag differs (or has the wrong length).
pub fn hmac_verify(hash: HmacHash, key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    constant_time_check(&hmac(hash, key, data), tag)
}

/// Compares a computed tag with a received one in constant time.
///
/// # Errors
/// [`CryptoError::DecryptionFailed`] when they differ.
pub fn constant_time_check(expected: &[u8], received: &[u8]) -> Result<(), CryptoError> {
    if bool::from(expected.ct_eq(received)) {
        Ok(())
    } else {
        Err(CryptoError::DecryptionFailed)
    }
}

fn cmac_with<C>(key: &[u8], data: &[u8]) -> Vec<u8>
where
    C: cmac::block_api::CmacCipher,
    cmac::Cmac<C>: Mac + KeyInit,
{
    // The caller checked the key length.
    let Ok(mut mac) = <cmac::Cmac<C> as KeyInit>::new_from_slice(key) else {
        unreachable!("key length checked by cmac()")
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// CMAC (NIST SP 800-38B) of `data` under a 128-bit block cipher.
///
/// # Errors
/// [`CryptoError::KeyLength`], or [`CryptoError::Unsupported`] for HIGHT.
pub fn cmac(cipher: BlockCipherKind, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if key.len() != cipher.key_len() {
        return Err(CryptoError::KeyLength {
            algorithm: format!("{}-CMAC", cipher.name()),
            expected: cipher.key_len().to_string(),
            got: key.len(),
        });
    }
    Ok(match cipher {
        BlockCipherKind::Aes128 => cmac_with::<aes::Aes128>(key, data),
        BlockCipherKind::Aes192 => cmac_with::<aes::Aes192>(key, data),
        BlockCipherKind::Aes256 => cmac_with::<aes::Aes256>(key, data),
        BlockCipherKind::Aria128 => cmac_with::<crate::block::Aria128>(key, data),
        BlockCipherKind::Aria192 => cmac_with::<crate::block::Aria192>(key, data),
        BlockCipherKind::Aria256 => cmac_with::<crate::block::Aria256>(key, data),
        BlockCipherKind::Seed128 => cmac_with::<crate::block::Seed>(key, data),
        BlockCipherKind::Lea128 => cmac_with::<crate::block::Lea128>(key, data),
        BlockCipherKind::Lea192 => cmac_with::<crate::block::Lea192>(key, data),
        BlockCipherKind::Lea256 => cmac_with::<crate::block::Lea256>(key, data),
        BlockCipherKind::Hight => {
            return Err(CryptoError::Unsupported {
                name: "HIGHT-CMAC".to_owned(),
                why: "haetae offers CMAC over 128-bit block ciphers only; use LEA-128-CMAC or HMAC-SHA-256".to_owned(),
            });
        }
    })
}

/// GMAC (NIST SP 800-38D: GCM over an empty plaintext, `data` as associated data) under a
/// 128-bit block cipher and a 12-byte nonce that must never repeat under one key.
///
/// # Errors
/// Key or nonce length, or GCM over HIGHT.
pub fn gmac(
    cipher: BlockCipherKind,
    key: &[u8],
    nonce: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let suite = CipherSuite::new(cipher, Mode::Gcm)?;
    SymmetricCipher::new(suite, key)?.encrypt(nonce, data, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_verify_accepts_the_right_tag_and_rejects_a_changed_one() {
        let tag = hmac(HmacHash::Lsh256, b"key", b"message");
        assert!(hmac_verify(HmacHash::Lsh256, b"key", b"message", &tag).is_ok());
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(hmac_verify(HmacHash::Lsh256, b"key", b"message", &bad).is_err());
        assert!(hmac_verify(HmacHash::Lsh256, b"key", b"message", &tag[..16]).is_err());
    }

    #[test]
    fn lsh_hmac_hashes_keys_longer_than_a_block_first() {
        let long = [7u8; 300];
        let hashed = lsh256(&[&long]);
        assert_eq!(
            hmac(HmacHash::Lsh256, &long, b"m"),
            hmac(HmacHash::Lsh256, &hashed, b"m")
        );
    }

    #[test]
    fn cmac_refuses_hight_and_wrong_key_lengths() {
        assert!(cmac(BlockCipherKind::Hight, &[0; 16], b"x").is_err());
        assert!(matches!(
            cmac(BlockCipherKind::Aria256, &[0; 16], b"x"),
            Err(CryptoError::KeyLength { .. })
        ));
    }
}
