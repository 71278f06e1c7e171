//! LSH, the Korean hash function family (KS X 3262, KISA/NSR 2014): a wide-pipe
//! Merkle–Damgård hash whose compression function runs 26 (LSH-256) or 28 (LSH-512) steps
//! of message addition, an add-rotate-xor mix and a fixed word permutation over a 16-word
//! chaining value. Implemented here because no maintained Rust crate offers it.
//!
//! The step constants are generated from the standard's first row (`SC_j = SC_{j-1} +
//! (SC_{j-1} <<< 8)`) and the initial values by the standard's IV procedure, so the only
//! tables in this file are the two first rows.

use zeroize::Zeroize;

/// The word permutation: new word `i` is old word `PERM[i]`.
const PERM: [usize; 16] = [6, 4, 5, 7, 12, 15, 14, 13, 2, 0, 1, 3, 8, 11, 10, 9];
/// The message expansion: `M_j[l] = M_{j-1}[l] + M_{j-2}[EXPAND[l]]`.
const EXPAND: [usize; 16] = [3, 2, 0, 1, 7, 4, 5, 6, 11, 10, 8, 9, 15, 12, 13, 14];

macro_rules! lsh_family {
    (
        $name:ident, $word:ty, $steps:expr, $block:expr, $max_out:expr,
        even: ($ea:expr, $eb:expr), odd: ($oa:expr, $ob:expr),
        gamma: $gamma:expr, sc0: $sc0:expr, doc: $doc:literal
    ) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $name {
            cv: [$word; 16],
            buffer: [u8; $block],
            buffered: usize,
            out_len: usize,
        }

        impl $name {
            const STEPS: usize = $steps;
            /// The message block length in bytes.
            pub const BLOCK_LEN: usize = $block;
            /// The longest output in bytes.
            pub const MAX_OUTPUT_LEN: usize = $max_out;

            const STEP_CONSTANTS: [[$word; 8]; $steps] = {
                let mut sc = [[0 as $word; 8]; $steps];
                sc[0] = $sc0;
                let mut j = 1;
                while j < $steps {
                    let mut l = 0;
                    while l < 8 {
                        sc[j][l] = sc[j - 1][l].wrapping_add(sc[j - 1][l].rotate_left(8));
                        l += 1;
                    }
                    j += 1;
                }
                sc
            };

            /// A hasher with the full output length.
            pub fn new() -> Self {
                Self::with_output_len($max_out).unwrap_or_else(|| unreachable!())
            }

            /// A hasher for `out_len` bytes of output (1..=the maximum); the standard names
            /// 28 and 32 bytes for LSH-256, 28, 32, 48 and 64 for LSH-512.
            pub fn with_output_len(out_len: usize) -> Option<Self> {
                if out_len == 0 || out_len > $max_out {
                    return None;
                }
                // The standard's IV procedure: (max bytes, output bits, 0, ...) through the
                // steps without message words.
                let mut cv = [0 as $word; 16];
                cv[0] = $max_out as $word;
                cv[1] = (out_len * 8) as $word;
                for j in 0..Self::STEPS {
                    Self::step(&mut cv, j);
                }
                Some($name {
                    cv,
                    buffer: [0; $block],
                    buffered: 0,
                    out_len,
                })
            }

            #[inline(always)]
            fn step(cv: &mut [$word; 16], j: usize) {
                let (alpha, beta) = if j % 2 == 0 { ($ea, $eb) } else { ($oa, $ob) };
                let sc = &Self::STEP_CONSTANTS[j];
                let gamma: [u32; 8] = $gamma;
                for l in 0..8 {
                    let mut x = cv[l].wrapping_add(cv[l + 8]);
                    x = x.rotate_left(alpha) ^ sc[l];
                    let mut y = cv[l + 8].wrapping_add(x).rotate_left(beta);
                    x = x.wrapping_add(y);
                    y = y.rotate_left(gamma[l]);
                    cv[l] = x;
                    cv[l + 8] = y;
                }
                let old = *cv;
                for (i, p) in PERM.iter().enumerate() {
                    cv[i] = old[*p];
                }
            }

            fn compress(cv: &mut [$word; 16], block: &[u8; $block]) {
                const W: usize = core::mem::size_of::<$word>();
                let mut even = [0 as $word; 16];
                let mut odd = [0 as $word; 16];
                for (i, chunk) in block.chunks_exact(W).enumerate() {
                    let mut bytes = [0u8; W];
                    bytes.copy_from_slice(chunk);
                    let word = <$word>::from_le_bytes(bytes);
                    if i < 16 {
                        even[i] = word;
                    } else {
                        odd[i - 16] = word;
                    }
                }
                for j in 0..Self::STEPS {
                    if j >= 2 {
                        // M_j = M_{j-1} + tau(M_{j-2}); M_{j-2} is the one overwritten.
                        let (newer, older) = if j % 2 == 0 {
                            (&odd, &mut even)
                        } else {
                            (&even, &mut odd)
                        };
                        let prev = *older;
                        for l in 0..16 {
                            older[l] = newer[l].wrapping_add(prev[EXPAND[l]]);
                        }
                    }
                    let m = if j % 2 == 0 { &even } else { &odd };
                    for l in 0..16 {
                        cv[l] ^= m[l];
                    }
                    Self::step(cv, j);
                }
                // The final message addition uses M_{steps}.
                let prev = even;
                for l in 0..16 {
                    even[l] = odd[l].wrapping_add(prev[EXPAND[l]]);
                    cv[l] ^= even[l];
                }
                even.zeroize();
                odd.zeroize();
            }

            /// Absorbs `data`.
            pub fn update(&mut self, mut data: &[u8]) {
                if self.buffered > 0 {
                    let take = ($block - self.buffered).min(data.len());
                    self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
                    self.buffered += take;
                    data = &data[take..];
                    if self.buffered < $block {
                        return;
                    }
                    let block = self.buffer;
                    Self::compress(&mut self.cv, &block);
                    self.buffered = 0;
                }
                let mut blocks = data.chunks_exact($block);
                for block in &mut blocks {
                    let mut b = [0u8; $block];
                    b.copy_from_slice(block);
                    Self::compress(&mut self.cv, &b);
                }
                let rest = blocks.remainder();
                self.buffer[..rest.len()].copy_from_slice(rest);
                self.buffered = rest.len();
            }

            /// Pads, compresses the last block and returns the digest.
            pub fn finalize(mut self) -> Vec<u8> {
                self.buffer[self.buffered] = 0x80;
                self.buffer[self.buffered + 1..].fill(0);
                let block = self.buffer;
                Self::compress(&mut self.cv, &block);
                let mut out = Vec::with_capacity($max_out);
                for l in 0..8 {
                    out.extend_from_slice(&(self.cv[l] ^ self.cv[l + 8]).to_le_bytes());
                }
                out.truncate(self.out_len);
                out
            }

            /// The digest of `data` in one call.
            pub fn digest(data: &[u8]) -> Vec<u8> {
                let mut hasher = Self::new();
                hasher.update(data);
                hasher.finalize()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.cv.zeroize();
                self.buffer.zeroize();
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} {{ out_len: {} }}", stringify!($name), self.out_len)
            }
        }
    };
}

lsh_family!(
    Lsh256, u32, 26, 128, 32,
    even: (29, 1), odd: (5, 17),
    gamma: [0, 8, 16, 24, 24, 16, 8, 0],
    sc0: [
        0x917c_af90, 0x6c1b_10a2, 0x6f35_2943, 0xcf77_8243,
        0x2ceb_7472, 0x29e9_6ff2, 0x8a9b_a428, 0x2eeb_2642,
    ],
    doc: "LSH-256 (32-bit words, 128-byte blocks, up to 32 bytes of output)."
);

lsh_family!(
    Lsh512, u64, 28, 256, 64,
    even: (23, 59), odd: (7, 3),
    gamma: [0, 16, 32, 48, 8, 24, 40, 56],
    sc0: [
        0x9788_4283_c938_982a, 0xba1f_ca93_533e_2355, 0xc519_a2e8_7aeb_1c03, 0x9a0f_c954_62af_17b1,
        0xfc3d_da8a_b019_a82b, 0x0282_5d07_9a89_5407, 0x79f2_d0a7_ee06_a6f7, 0xd76d_15ee_d9fd_f5fe,
    ],
    doc: "LSH-512 (64-bit words, 256-byte blocks, up to 64 bytes of output)."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_step_constants_match_the_standard_table() {
        // KS X 3262 step-constant table, second and last rows' first words.
        assert_eq!(Lsh256::STEP_CONSTANTS[1][0], 0x0e2c_4021);
        assert_eq!(Lsh256::STEP_CONSTANTS[25][7], 0x823c_9ce1);
        assert_eq!(Lsh512::STEP_CONSTANTS[1][0], 0x1fca_c64d_01d0_c2c1);
        assert_eq!(Lsh512::STEP_CONSTANTS[27][7], 0xaa66_6ab9_7572_4a42);
    }

    #[test]
    fn generated_initial_values_match_the_standard_table() {
        // KS X 3262 IV tables, first and last words of LSH-256-256 and LSH-512-512.
        let iv = Lsh256::new().cv;
        assert_eq!((iv[0], iv[15]), (0x46a1_0f1f, 0xe01a_fb41));
        let iv = Lsh512::new().cv;
        assert_eq!(
            (iv[0], iv[15]),
            (0xadd5_0f3c_7f07_094e, 0x8940_85e2_edb2_d819)
        );
    }

    #[test]
    fn output_lengths_outside_the_family_are_refused() {
        assert!(Lsh256::with_output_len(0).is_none());
        assert!(Lsh256::with_output_len(33).is_none());
        assert!(Lsh512::with_output_len(65).is_none());
    }

    #[test]
    fn incremental_updates_equal_one_shot_at_every_split() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
        let whole = Lsh256::digest(&data);
        for split in [0, 1, 127, 128, 129, 256, 599] {
            let mut h = Lsh256::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finalize(), whole, "split at {split}");
        }
    }
}
