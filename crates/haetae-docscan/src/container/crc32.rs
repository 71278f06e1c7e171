//! CRC-32 (IEEE 802.3, the polynomial of ZIP and PNG), table-driven slice-by-16: sixteen
//! bytes per step through sixteen 256-entry tables, several GB/s without `unsafe` or
//! platform intrinsics (every ZIP entry and PNG chunk is checksummed, so this is hot).

const POLY: u32 = 0xEDB8_8320;

#[allow(clippy::indexing_slicing)] // const fn: every index is bounded by its loop
const fn make_tables() -> [[u32; 256]; 16] {
    let mut t = [[0u32; 256]; 16];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][n] = c;
        n += 1;
    }
    let mut i = 1;
    while i < 16 {
        let mut n = 0;
        while n < 256 {
            let prev = t[i - 1][n];
            t[i][n] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            n += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 16] = make_tables();

/// A running CRC-32.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(0xFFFF_FFFF)
    }
}

#[inline]
fn t(table: usize, index: u32) -> u32 {
    // `index` is a byte and `table` < 16: the lookups cannot miss.
    TABLES
        .get(table)
        .and_then(|row| row.get((index & 0xFF) as usize))
        .copied()
        .unwrap_or(0)
}

impl Crc32 {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        let mut chunks = data.chunks_exact(16);
        for chunk in &mut chunks {
            let b: [u8; 16] = chunk.try_into().unwrap_or([0; 16]);
            let a = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) ^ c;
            let b1 = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let b2 = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
            let b3 = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
            c = t(15, a)
                ^ t(14, a >> 8)
                ^ t(13, a >> 16)
                ^ t(12, a >> 24)
                ^ t(11, b1)
                ^ t(10, b1 >> 8)
                ^ t(9, b1 >> 16)
                ^ t(8, b1 >> 24)
                ^ t(7, b2)
                ^ t(6, b2 >> 8)
                ^ t(5, b2 >> 16)
                ^ t(4, b2 >> 24)
                ^ t(3, b3)
                ^ t(2, b3 >> 8)
                ^ t(1, b3 >> 16)
                ^ t(0, b3 >> 24);
        }
        for &b in chunks.remainder() {
            c = t(0, c ^ u32::from(b)) ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum so far.
    #[must_use]
    pub fn value(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

/// CRC-32 of one buffer.
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::default();
    c.update(data);
    c.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The bit-at-a-time definition, to check the sliced tables against.
    fn reference(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn every_length_and_split_matches_the_bitwise_definition() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32(&data[..len]), reference(&data[..len]), "length {len}");
        }
        for split in [1, 5, 16, 17, 100] {
            let mut c = Crc32::default();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.value(), reference(&data), "split {split}");
        }
    }
}
