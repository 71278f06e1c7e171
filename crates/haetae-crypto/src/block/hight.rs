//! HIGHT, the Korean 64-bit block cipher for constrained devices (TTAS.KO-12.0040, ISO/IEC
//! 18033-3): 32 rounds of 8-bit additions, rotations and xors with a 128-bit key. No
//! tables, so it runs in constant time. Its 64-bit block limits one key to far less data
//! than a 128-bit cipher (birthday bound 2^32 blocks): use it only where the standard asks.

use zeroize::Zeroize;

/// HIGHT with its whitening keys and 128 subkeys.
#[derive(Clone)]
pub struct Hight {
    whitening: [u8; 8],
    subkeys: [u8; 128],
}

#[inline(always)]
fn f0(x: u8) -> u8 {
    x.rotate_left(1) ^ x.rotate_left(2) ^ x.rotate_left(7)
}

#[inline(always)]
fn f1(x: u8) -> u8 {
    x.rotate_left(3) ^ x.rotate_left(4) ^ x.rotate_left(6)
}

/// The 128 constants `δ_i` from the 7-bit LFSR `s_{i+6} = s_{i+2} xor s_{i-1}`, `δ_0 = 0x5A`.
const DELTA: [u8; 128] = {
    let mut delta = [0u8; 128];
    let mut state = 0x5au8;
    let mut i = 0;
    while i < 128 {
        delta[i] = state;
        // Next: shift right by one; the new bit 6 is bit 3 xor bit 0 of the old state.
        let bit = ((state >> 3) ^ state) & 1;
        state = (state >> 1) | (bit << 6);
        i += 1;
    }
    delta
};

impl Hight {
    /// `key` is MK0..MK15 (byte `i` is `MK_i`), the order of KISA's reference code and the
    /// KCMVP test vector files; TTAS.KO-12.0040 prints keys and blocks the other way round
    /// (MK15 first), so its appendix values read here reversed.
    fn with_key(key: &[u8; 16]) -> Self {
        let mut mk = *key;
        let mut whitening = [0u8; 8];
        whitening[..4].copy_from_slice(&mk[12..]);
        whitening[4..].copy_from_slice(&mk[..4]);
        let mut subkeys = [0u8; 128];
        for i in 0..8 {
            for j in 0..8 {
                subkeys[16 * i + j] = mk[(j + 8 - i) % 8].wrapping_add(DELTA[16 * i + j]);
                subkeys[16 * i + j + 8] =
                    mk[(j + 8 - i) % 8 + 8].wrapping_add(DELTA[16 * i + j + 8]);
            }
        }
        mk.zeroize();
        Hight { whitening, subkeys }
    }

    /// Encrypts; block byte `i` is `P_i` (KISA reference code and KCMVP order).
    fn encrypt(&self, block: &mut [u8; 8]) {
        let wk = &self.whitening;
        let sk = &self.subkeys;
        let mut x = *block;
        x[0] = x[0].wrapping_add(wk[0]);
        x[2] ^= wk[1];
        x[4] = x[4].wrapping_add(wk[2]);
        x[6] ^= wk[3];
        for round in 0..32 {
            let k = &sk[4 * round..4 * round + 4];
            let n1 = x[1].wrapping_add(f1(x[0]) ^ k[0]);
            let n3 = x[3] ^ f0(x[2]).wrapping_add(k[1]);
            let n5 = x[5].wrapping_add(f1(x[4]) ^ k[2]);
            let n7 = x[7] ^ f0(x[6]).wrapping_add(k[3]);
            x = if round < 31 {
                // Rotate the bytes one place left.
                [n7, x[0], n1, x[2], n3, x[4], n5, x[6]]
            } else {
                [x[0], n1, x[2], n3, x[4], n5, x[6], n7]
            };
        }
        x[0] = x[0].wrapping_add(wk[4]);
        x[2] ^= wk[5];
        x[4] = x[4].wrapping_add(wk[6]);
        x[6] ^= wk[7];
        *block = x;
    }

    fn decrypt(&self, block: &mut [u8; 8]) {
        let wk = &self.whitening;
        let sk = &self.subkeys;
        let mut x = *block;
        x[0] = x[0].wrapping_sub(wk[4]);
        x[2] ^= wk[5];
        x[4] = x[4].wrapping_sub(wk[6]);
        x[6] ^= wk[7];
        for round in (0..32).rev() {
            let k = &sk[4 * round..4 * round + 4];
            // Undo the rotation first (the last round has none).
            let y = if round < 31 {
                [x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[0]]
            } else {
                x
            };
            x = [
                y[0],
                y[1].wrapping_sub(f1(y[0]) ^ k[0]),
                y[2],
                y[3] ^ f0(y[2]).wrapping_add(k[1]),
                y[4],
                y[5].wrapping_sub(f1(y[4]) ^ k[2]),
                y[6],
                y[7] ^ f0(y[6]).wrapping_add(k[3]),
            ];
        }
        x[0] = x[0].wrapping_sub(wk[0]);
        x[2] ^= wk[1];
        x[4] = x[4].wrapping_sub(wk[2]);
        x[6] ^= wk[3];
        *block = x;
    }
}

impl Drop for Hight {
    fn drop(&mut self) {
        self.whitening.zeroize();
        self.subkeys.zeroize();
    }
}

super::block_cipher_traits!(Hight, cipher::consts::U8, cipher::consts::U16, "HIGHT");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_constants_follow_the_standard_lfsr() {
        // TTAS.KO-12.0040: δ0 = 0x5A, δ1 = 0x6D, δ2 = 0x36, δ3 = 0x1B.
        assert_eq!(&DELTA[..4], &[0x5a, 0x6d, 0x36, 0x1b]);
    }
}
