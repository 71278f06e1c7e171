//! HAS-160 (TTAS.KO-12.0011/R2), the Korean 160-bit hash that KCDSA was designed around.
//!
//! Like SHA-1 its collision resistance is below 112 bits, so the KISA guide allows it only
//! where collisions do not matter: inside HMAC, key derivation and random-bit generation.
//! haetae therefore exposes it only through [`crate::mac::HmacHash::Has160`], for legacy
//! peers that still send HMAC-HAS-160; [`crate::hash::HashAlgorithm`] has no HAS-160, and
//! the policy refuses it for digests and signatures.
//!
//! The compression function: 80 steps in four rounds of 20 over five 32-bit words, with
//! the sixteen little-endian message words extended by four XOR sums per round.

use zeroize::Zeroize;

const IV: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];
const K: [u32; 4] = [0, 0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc];
/// Left rotation of `A` at each step of a round.
const S1: [u32; 20] = [
    5, 11, 7, 15, 6, 13, 8, 14, 7, 12, 9, 11, 8, 15, 6, 12, 9, 14, 5, 13,
];
/// Left rotation of `B` in each round.
const S2: [u32; 4] = [10, 17, 25, 30];
/// The message words (0..16) and their XOR sums (16..20) in the order each round reads them.
const ORDER: [[usize; 20]; 4] = [
    [
        18, 0, 1, 2, 3, 19, 4, 5, 6, 7, 16, 8, 9, 10, 11, 17, 12, 13, 14, 15,
    ],
    [
        18, 3, 6, 9, 12, 19, 15, 2, 5, 8, 16, 11, 14, 1, 4, 17, 7, 10, 13, 0,
    ],
    [
        18, 12, 5, 14, 7, 19, 0, 9, 2, 11, 16, 4, 13, 6, 15, 17, 8, 1, 10, 3,
    ],
    [
        18, 7, 2, 13, 8, 19, 3, 14, 9, 4, 16, 15, 10, 5, 0, 17, 11, 6, 1, 12,
    ],
];

/// A running HAS-160 computation. Its state is zeroized on drop (HMAC keys pass through it).
#[derive(Clone)]
pub struct Has160 {
    state: [u32; 5],
    buffer: [u8; 64],
    buffered: usize,
    length: u64,
}

impl Drop for Has160 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.buffer.zeroize();
    }
}

impl Default for Has160 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Has160 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Has160").finish_non_exhaustive()
    }
}

impl Has160 {
    /// Bytes per message block.
    pub const BLOCK_LEN: usize = 64;
    /// Bytes of output.
    pub const OUTPUT_LEN: usize = 20;

    /// A fresh computation.
    pub fn new() -> Self {
        Has160 {
            state: IV,
            buffer: [0; 64],
            buffered: 0,
            length: 0,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buffer;
            compress(&mut self.state, &block);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The 20-byte digest.
    pub fn finalize(mut self) -> [u8; 20] {
        let bits = self.length.wrapping_mul(8);
        let mut block = [0u8; 64];
        block[..self.buffered].copy_from_slice(&self.buffer[..self.buffered]);
        block[self.buffered] = 0x80;
        if self.buffered >= 56 {
            compress(&mut self.state, &block);
            block = [0; 64];
        }
        block[56..].copy_from_slice(&bits.to_le_bytes());
        compress(&mut self.state, &block);
        block.zeroize();
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 20] {
        let mut h = Has160::new();
        h.update(data);
        h.finalize()
    }
}

fn compress(state: &mut [u32; 5], block: &[u8]) {
    let mut x = [0u32; 20];
    for (word, bytes) in x.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for (round, order) in ORDER.iter().enumerate() {
        // The four extra words of this round: XOR sums of the words read at positions
        // 1-4, 6-9, 11-14 and 16-19 of the round's order.
        for (extra, start) in [(16, 1), (17, 6), (18, 11), (19, 16)] {
            x[extra] = order[start..start + 4].iter().fold(0, |acc, &i| acc ^ x[i]);
        }
        for (step, &word) in order.iter().enumerate() {
            let f = match round {
                0 => (b & c) | (!b & d),
                2 => c ^ (b | !d),
                _ => b ^ c ^ d,
            };
            let t = a
                .rotate_left(S1[step])
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(x[word])
                .wrapping_add(K[round]);
            e = d;
            d = c;
            c = b.rotate_left(S2[round]);
            b = a;
            a = t;
        }
    }
    x.zeroize();
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_updates_give_the_one_shot_digest() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let whole = Has160::digest(&data);
        for cut in [0, 1, 55, 56, 63, 64, 65, 128, 299] {
            let mut h = Has160::new();
            h.update(&data[..cut]);
            h.update(&data[cut..]);
            assert_eq!(h.finalize(), whole, "cut at {cut}");
        }
    }

    #[test]
    fn debug_shows_no_state() {
        let mut h = Has160::new();
        h.update(b"secret key");
        assert_eq!(format!("{h:?}"), "Has160 { .. }");
    }
}
