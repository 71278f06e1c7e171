//! LEA, the Korean lightweight 128-bit block cipher (TTAK.KO-12.0223, KS X 3246, ISO/IEC
//! 29192-2): 24, 28 or 32 rounds of 32-bit additions, rotations and xors on four
//! little-endian words. No tables, so it runs in constant time.

use zeroize::Zeroize;

/// The key-schedule constants δ0..δ7 (TTAK.KO-12.0223 section 4.2).
const DELTA: [u32; 8] = [
    0xc3ef_e9db,
    0x4462_6b02,
    0x79e2_7c8a,
    0x78df_30ec,
    0x715e_a49e,
    0xc785_da0a,
    0xe04e_f22a,
    0xe5c4_0957,
];

/// LEA with `R` rounds and their 6-word round keys; use [`Lea128`], [`Lea192`] or
/// [`Lea256`].
#[derive(Clone)]
pub struct Lea<const R: usize> {
    round_keys: [[u32; 6]; R],
}

/// LEA with a 128-bit key (24 rounds).
pub type Lea128 = Lea<24>;
/// LEA with a 192-bit key (28 rounds).
pub type Lea192 = Lea<28>;
/// LEA with a 256-bit key (32 rounds).
pub type Lea256 = Lea<32>;

fn words<const N: usize>(key: &[u8]) -> [u32; N] {
    let mut t = [0u32; N];
    for (w, chunk) in t.iter_mut().zip(key.chunks_exact(4)) {
        *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    t
}

impl<const R: usize> Lea<R> {
    #[inline(always)]
    fn encrypt(&self, block: &mut [u8; 16]) {
        let [mut x0, mut x1, mut x2, mut x3] = words::<4>(block);
        for rk in &self.round_keys {
            let n0 = ((x0 ^ rk[0]).wrapping_add(x1 ^ rk[1])).rotate_left(9);
            let n1 = ((x1 ^ rk[2]).wrapping_add(x2 ^ rk[3])).rotate_right(5);
            let n2 = ((x2 ^ rk[4]).wrapping_add(x3 ^ rk[5])).rotate_right(3);
            (x0, x1, x2, x3) = (n0, n1, n2, x0);
        }
        store(block, [x0, x1, x2, x3]);
    }

    #[inline(always)]
    fn decrypt(&self, block: &mut [u8; 16]) {
        let [mut x0, mut x1, mut x2, mut x3] = words::<4>(block);
        for rk in self.round_keys.iter().rev() {
            let p0 = x3;
            let p1 = x0.rotate_right(9).wrapping_sub(p0 ^ rk[0]) ^ rk[1];
            let p2 = x1.rotate_left(5).wrapping_sub(p1 ^ rk[2]) ^ rk[3];
            let p3 = x2.rotate_left(3).wrapping_sub(p2 ^ rk[4]) ^ rk[5];
            (x0, x1, x2, x3) = (p0, p1, p2, p3);
        }
        store(block, [x0, x1, x2, x3]);
    }
}

fn store(block: &mut [u8; 16], x: [u32; 4]) {
    for (chunk, w) in block.chunks_exact_mut(4).zip(x) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
}

impl Lea128 {
    fn with_key(key: &[u8; 16]) -> Self {
        let mut t = words::<4>(key);
        let mut round_keys = [[0u32; 6]; 24];
        for (i, rk) in round_keys.iter_mut().enumerate() {
            let d = DELTA[i % 4];
            let i = i as u32;
            t[0] = t[0].wrapping_add(d.rotate_left(i)).rotate_left(1);
            t[1] = t[1].wrapping_add(d.rotate_left(i + 1)).rotate_left(3);
            t[2] = t[2].wrapping_add(d.rotate_left(i + 2)).rotate_left(6);
            t[3] = t[3].wrapping_add(d.rotate_left(i + 3)).rotate_left(11);
            *rk = [t[0], t[1], t[2], t[1], t[3], t[1]];
        }
        t.zeroize();
        Lea { round_keys }
    }
}

/// The rotation amounts of the 192- and 256-bit key schedules.
const ROT: [u32; 6] = [1, 3, 6, 11, 13, 17];

impl Lea192 {
    fn with_key(key: &[u8; 24]) -> Self {
        let mut t = words::<6>(key);
        let mut round_keys = [[0u32; 6]; 28];
        for (i, rk) in round_keys.iter_mut().enumerate() {
            let d = DELTA[i % 6];
            for (j, (tj, rot)) in t.iter_mut().zip(ROT).enumerate() {
                *tj = tj
                    .wrapping_add(d.rotate_left(i as u32 + j as u32))
                    .rotate_left(rot);
            }
            *rk = t;
        }
        t.zeroize();
        Lea { round_keys }
    }
}

impl Lea256 {
    fn with_key(key: &[u8; 32]) -> Self {
        let mut t = words::<8>(key);
        let mut round_keys = [[0u32; 6]; 32];
        for (i, rk) in round_keys.iter_mut().enumerate() {
            let d = DELTA[i % 8];
            for (j, rot) in ROT.into_iter().enumerate() {
                let k = (6 * i + j) % 8;
                t[k] = t[k]
                    .wrapping_add(d.rotate_left(i as u32 + j as u32))
                    .rotate_left(rot);
                rk[j] = t[k];
            }
        }
        t.zeroize();
        Lea { round_keys }
    }
}

impl<const R: usize> Drop for Lea<R> {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

super::block_cipher_traits!(Lea128, cipher::consts::U16, cipher::consts::U16, "LEA-128");
super::block_cipher_traits!(Lea192, cipher::consts::U16, cipher::consts::U24, "LEA-192");
super::block_cipher_traits!(Lea256, cipher::consts::U16, cipher::consts::U32, "LEA-256");
