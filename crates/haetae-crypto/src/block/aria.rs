//! ARIA, the Korean 128-bit block cipher (KS X 1213, RFC 5794), implemented here on 32-bit
//! words: 16 S-box lookups per round (four 256-byte tables, L1-resident), then the diffusion
//! matrix A as xors of byte-permuted words (see [`diffuse`]). RustCrypto's `aria` crate
//! computes A with 16 128-bit multiplications per round and runs at about a third of
//! OpenSSL's speed.
//!
//! Timing: like every table implementation of ARIA (and like OpenSSL's), the lookups are
//! indexed by key-dependent data, so it is not constant-time against a cache-timing
//! attacker sharing the core (docs/crypto.md).

use zeroize::Zeroize;

/// S-box S1 of RFC 5794 section 2.4.2 (the AES S-box).
const SB1: [u8; 256] = [
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
];

/// S-box S2 of RFC 5794 section 2.4.2.
const SB2: [u8; 256] = [
    0xe2, 0x4e, 0x54, 0xfc, 0x94, 0xc2, 0x4a, 0xcc, 0x62, 0x0d, 0x6a, 0x46, 0x3c, 0x4d, 0x8b, 0xd1,
    0x5e, 0xfa, 0x64, 0xcb, 0xb4, 0x97, 0xbe, 0x2b, 0xbc, 0x77, 0x2e, 0x03, 0xd3, 0x19, 0x59, 0xc1,
    0x1d, 0x06, 0x41, 0x6b, 0x55, 0xf0, 0x99, 0x69, 0xea, 0x9c, 0x18, 0xae, 0x63, 0xdf, 0xe7, 0xbb,
    0x00, 0x73, 0x66, 0xfb, 0x96, 0x4c, 0x85, 0xe4, 0x3a, 0x09, 0x45, 0xaa, 0x0f, 0xee, 0x10, 0xeb,
    0x2d, 0x7f, 0xf4, 0x29, 0xac, 0xcf, 0xad, 0x91, 0x8d, 0x78, 0xc8, 0x95, 0xf9, 0x2f, 0xce, 0xcd,
    0x08, 0x7a, 0x88, 0x38, 0x5c, 0x83, 0x2a, 0x28, 0x47, 0xdb, 0xb8, 0xc7, 0x93, 0xa4, 0x12, 0x53,
    0xff, 0x87, 0x0e, 0x31, 0x36, 0x21, 0x58, 0x48, 0x01, 0x8e, 0x37, 0x74, 0x32, 0xca, 0xe9, 0xb1,
    0xb7, 0xab, 0x0c, 0xd7, 0xc4, 0x56, 0x42, 0x26, 0x07, 0x98, 0x60, 0xd9, 0xb6, 0xb9, 0x11, 0x40,
    0xec, 0x20, 0x8c, 0xbd, 0xa0, 0xc9, 0x84, 0x04, 0x49, 0x23, 0xf1, 0x4f, 0x50, 0x1f, 0x13, 0xdc,
    0xd8, 0xc0, 0x9e, 0x57, 0xe3, 0xc3, 0x7b, 0x65, 0x3b, 0x02, 0x8f, 0x3e, 0xe8, 0x25, 0x92, 0xe5,
    0x15, 0xdd, 0xfd, 0x17, 0xa9, 0xbf, 0xd4, 0x9a, 0x7e, 0xc5, 0x39, 0x67, 0xfe, 0x76, 0x9d, 0x43,
    0xa7, 0xe1, 0xd0, 0xf5, 0x68, 0xf2, 0x1b, 0x34, 0x70, 0x05, 0xa3, 0x8a, 0xd5, 0x79, 0x86, 0xa8,
    0x30, 0xc6, 0x51, 0x4b, 0x1e, 0xa6, 0x27, 0xf6, 0x35, 0xd2, 0x6e, 0x24, 0x16, 0x82, 0x5f, 0xda,
    0xe6, 0x75, 0xa2, 0xef, 0x2c, 0xb2, 0x1c, 0x9f, 0x5d, 0x6f, 0x80, 0x0a, 0x72, 0x44, 0x9b, 0x6c,
    0x90, 0x0b, 0x5b, 0x33, 0x7d, 0x5a, 0x52, 0xf3, 0x61, 0xa1, 0xf7, 0xb0, 0xd6, 0x3f, 0x7c, 0x6d,
    0xed, 0x14, 0xe0, 0xa5, 0x3d, 0x22, 0xb3, 0xf8, 0x89, 0xde, 0x71, 0x1a, 0xaf, 0xba, 0xb5, 0x81,
];

const fn invert(sbox: &[u8; 256]) -> [u8; 256] {
    let mut inverse = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        inverse[sbox[i] as usize] = i as u8;
        i += 1;
    }
    inverse
}

/// S1 inverse and S2 inverse.
const SB3: [u8; 256] = invert(&SB1);
const SB4: [u8; 256] = invert(&SB2);

/// The diffusion layer A (RFC 5794 section 2.4.3): output byte j is the xor of the seven
/// input bytes in row j (byte 0 is the most significant).
#[cfg(test)]
const A_ROWS: [[usize; 7]; 16] = [
    [3, 4, 6, 8, 9, 13, 14],
    [2, 5, 7, 8, 9, 12, 15],
    [1, 4, 6, 10, 11, 12, 15],
    [0, 5, 7, 10, 11, 13, 14],
    [0, 2, 5, 8, 11, 14, 15],
    [1, 3, 4, 9, 10, 14, 15],
    [0, 2, 7, 9, 10, 12, 13],
    [1, 3, 6, 8, 11, 12, 13],
    [0, 1, 4, 7, 10, 13, 15],
    [0, 1, 5, 6, 11, 12, 14],
    [2, 3, 5, 6, 8, 13, 15],
    [2, 3, 4, 7, 9, 12, 14],
    [1, 2, 6, 7, 9, 11, 12],
    [0, 3, 6, 7, 8, 10, 13],
    [0, 3, 4, 5, 9, 11, 14],
    [1, 2, 4, 5, 8, 10, 15],
];

/// The four S-boxes in SL1 order.
const SBOXES: [&[u8; 256]; 4] = [&SB1, &SB2, &SB3, &SB4];

/// Substitution: byte i of the block goes through S-box `(i + shift) mod 4` (shift 0 is SL1,
/// 2 is SL2); the result as four big-endian words.
#[inline(always)]
fn substitute(x: u128, shift: usize) -> [u32; 4] {
    let b = x.to_be_bytes();
    let mut z = [0u32; 4];
    for (k, word) in z.iter_mut().enumerate() {
        let s = |j: usize| SBOXES[(j + shift) % 4][b[4 * k + j] as usize];
        *word = u32::from_be_bytes([s(0), s(1), s(2), s(3)]);
    }
    z
}

/// Swaps the bytes within each 16-bit half: (a, b, c, d) -> (b, a, d, c).
#[inline(always)]
fn swap_pairs(w: u32) -> u32 {
    ((w & 0x00ff_00ff) << 8) | ((w >> 8) & 0x00ff_00ff)
}

/// The diffusion layer A on four words. Regrouping the sixteen row equations of A (listed
/// in `A_ROWS`) by input word gives, with B = byte reversal, H = halves swapped and
/// S = bytes swapped within halves:
/// `Y0 = B Z0 + (Z1 + H Z1) + (Z2 + S Z2) + (S Z3 + H Z3)`,
/// `Y1 = (Z0 + H Z0) + S Z1 + (Z2 + B Z2) + (H Z3 + B Z3)`,
/// `Y2 = (Z0 + S Z0) + (Z1 + B Z1) + H Z2 + (S Z3 + B Z3)`,
/// `Y3 = (S Z0 + H Z0) + (H Z1 + B Z1) + (S Z2 + B Z2) + Z3` (+ is xor).
#[inline(always)]
fn diffuse(z: [u32; 4]) -> u128 {
    let [z0, z1, z2, z3] = z;
    let (b0, b1, b2, b3) = (
        z0.swap_bytes(),
        z1.swap_bytes(),
        z2.swap_bytes(),
        z3.swap_bytes(),
    );
    let (h0, h1, h2, h3) = (
        z0.rotate_left(16),
        z1.rotate_left(16),
        z2.rotate_left(16),
        z3.rotate_left(16),
    );
    let (s0, s1, s2, s3) = (
        swap_pairs(z0),
        swap_pairs(z1),
        swap_pairs(z2),
        swap_pairs(z3),
    );
    let y0 = b0 ^ z1 ^ h1 ^ z2 ^ s2 ^ s3 ^ h3;
    let y1 = z0 ^ h0 ^ s1 ^ z2 ^ b2 ^ h3 ^ b3;
    let y2 = z0 ^ s0 ^ z1 ^ b1 ^ h2 ^ s3 ^ b3;
    let y3 = s0 ^ h0 ^ h1 ^ b1 ^ s2 ^ b2 ^ z3;
    (u128::from(y0) << 96) | (u128::from(y1) << 64) | (u128::from(y2) << 32) | u128::from(y3)
}

/// The odd round function FO = A(SL1(x)).
#[inline(always)]
fn fo(x: u128) -> u128 {
    diffuse(substitute(x, 0))
}

/// The even round function FE = A(SL2(x)).
#[inline(always)]
fn fe(x: u128) -> u128 {
    diffuse(substitute(x, 2))
}

/// SL2 without A, for the last round.
fn sl2(x: u128) -> u128 {
    let [z0, z1, z2, z3] = substitute(x, 2);
    (u128::from(z0) << 96) | (u128::from(z1) << 64) | (u128::from(z2) << 32) | u128::from(z3)
}

/// The diffusion layer alone (for the decryption keys).
fn a(x: u128) -> u128 {
    diffuse([
        (x >> 96) as u32,
        (x >> 64) as u32,
        (x >> 32) as u32,
        x as u32,
    ])
}

/// The key-schedule constants C1, C2, C3 (RFC 5794 section 2.2).
const C: [u128; 3] = [
    0x517c_c1b7_2722_0a94_fe13_abe8_fa9a_6ee0,
    0x6db1_4acc_9e21_c820_ff28_b1d5_ef5d_e2b0,
    0xdb92_371d_2126_e970_0324_9775_04e8_c90e,
];

/// ARIA with `R` round keys (13, 15 or 17); use [`Aria128`], [`Aria192`] or [`Aria256`].
#[derive(Clone)]
pub struct Aria<const R: usize> {
    encrypt_keys: [u128; R],
    decrypt_keys: [u128; R],
}

/// ARIA with a 128-bit key (12 rounds).
pub type Aria128 = Aria<13>;
/// ARIA with a 192-bit key (14 rounds).
pub type Aria192 = Aria<15>;
/// ARIA with a 256-bit key (16 rounds).
pub type Aria256 = Aria<17>;

impl<const R: usize> Aria<R> {
    fn schedule(key: &[u8]) -> Self {
        let mut kl = [0u8; 16];
        kl.copy_from_slice(&key[..16]);
        let mut kr = [0u8; 16];
        kr[..key.len() - 16].copy_from_slice(&key[16..]);
        // CK1..CK3 start at C1, C2 or C3 for 128-, 192- and 256-bit keys.
        let first = (key.len() - 16) / 8;
        let ck = |n: usize| C[(first + n) % 3];
        let w0 = u128::from_be_bytes(kl);
        let w1 = fo(w0 ^ ck(0)) ^ u128::from_be_bytes(kr);
        let w2 = fe(w1 ^ ck(1)) ^ w0;
        let w3 = fo(w2 ^ ck(2)) ^ w1;
        kl.zeroize();
        kr.zeroize();
        let w = [w0, w1, w2, w3];
        let mut encrypt_keys = [0u128; R];
        for (n, ek) in encrypt_keys.iter_mut().enumerate() {
            let (x, y) = (w[n % 4], w[(n + 1) % 4]);
            *ek = x ^ match n / 4 {
                0 => y.rotate_right(19),
                1 => y.rotate_right(31),
                2 => y.rotate_left(61),
                3 => y.rotate_left(31),
                _ => y.rotate_left(19),
            };
        }
        let mut decrypt_keys = [0u128; R];
        decrypt_keys[0] = encrypt_keys[R - 1];
        for n in 1..R - 1 {
            decrypt_keys[n] = a(encrypt_keys[R - 1 - n]);
        }
        decrypt_keys[R - 1] = encrypt_keys[0];
        Aria {
            encrypt_keys,
            decrypt_keys,
        }
    }

    #[inline(always)]
    fn crypt(keys: &[u128; R], block: &mut [u8; 16]) {
        let mut x = u128::from_be_bytes(*block);
        let mut n = 0;
        while n + 3 < R {
            x = fo(x ^ keys[n]);
            x = fe(x ^ keys[n + 1]);
            n += 2;
        }
        x = fo(x ^ keys[R - 3]);
        x = sl2(x ^ keys[R - 2]) ^ keys[R - 1];
        *block = x.to_be_bytes();
    }

    /// Four independent blocks round by round, so their lookups overlap.
    #[inline(always)]
    fn crypt4(keys: &[u128; R], x: &mut [u128; 4]) {
        let mut n = 0;
        while n + 3 < R {
            for v in x.iter_mut() {
                *v = fo(*v ^ keys[n]);
            }
            for v in x.iter_mut() {
                *v = fe(*v ^ keys[n + 1]);
            }
            n += 2;
        }
        for v in x.iter_mut() {
            *v = sl2(fo(*v ^ keys[R - 3]) ^ keys[R - 2]) ^ keys[R - 1];
        }
    }

    fn encrypt4(&self, x: &mut [u128; 4]) {
        Self::crypt4(&self.encrypt_keys, x);
    }

    fn decrypt4(&self, x: &mut [u128; 4]) {
        Self::crypt4(&self.decrypt_keys, x);
    }

    fn encrypt(&self, block: &mut [u8; 16]) {
        Self::crypt(&self.encrypt_keys, block);
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        Self::crypt(&self.decrypt_keys, block);
    }
}

impl Aria128 {
    fn with_key(key: &[u8; 16]) -> Self {
        Self::schedule(key)
    }
}

impl Aria192 {
    fn with_key(key: &[u8; 24]) -> Self {
        Self::schedule(key)
    }
}

impl Aria256 {
    fn with_key(key: &[u8; 32]) -> Self {
        Self::schedule(key)
    }
}

impl<const R: usize> Drop for Aria<R> {
    fn drop(&mut self) {
        self.encrypt_keys.zeroize();
        self.decrypt_keys.zeroize();
    }
}

super::block_cipher_traits!(
    Aria128,
    cipher::consts::U16,
    cipher::consts::U16,
    "ARIA-128",
    par4
);
super::block_cipher_traits!(
    Aria192,
    cipher::consts::U16,
    cipher::consts::U24,
    "ARIA-192",
    par4
);
super::block_cipher_traits!(
    Aria256,
    cipher::consts::U16,
    cipher::consts::U32,
    "ARIA-256",
    par4
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_s_boxes_invert() {
        for x in 0..=255u8 {
            assert_eq!(SB3[usize::from(SB1[usize::from(x)])], x);
            assert_eq!(SB4[usize::from(SB2[usize::from(x)])], x);
        }
    }

    #[test]
    fn the_diffusion_layer_is_an_involution() {
        // RFC 5794: A is its own inverse.
        let mut x = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        for _ in 0..100 {
            assert_eq!(a(a(x)), x);
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7) ^ 1;
        }
    }

    /// A written out from `A_ROWS`, byte by byte, as the RFC states it.
    fn a_by_rows(x: u128) -> u128 {
        let b = x.to_be_bytes();
        let mut y = [0u8; 16];
        for (j, row) in A_ROWS.iter().enumerate() {
            y[j] = row.iter().fold(0, |acc, &i| acc ^ b[i]);
        }
        u128::from_be_bytes(y)
    }

    #[test]
    fn the_word_form_of_a_equals_the_rfc_row_equations() {
        let mut x = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        for _ in 0..1000 {
            assert_eq!(a(x), a_by_rows(x), "{x:032x}");
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7) ^ 1;
        }
        for i in 0..128 {
            assert_eq!(a(1 << i), a_by_rows(1 << i));
        }
    }
}
