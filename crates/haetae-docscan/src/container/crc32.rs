//! CRC-32 (IEEE 802.3, the polynomial of ZIP and PNG). Every ZIP entry and PNG chunk is
//! checksummed, so this is hot: `crc32fast` folds 64 bytes a step with the CPU's carry-less
//! multiply (PCLMULQDQ, chosen at run time) and falls back to slice-by-16 tables.

#[cfg(test)]
const POLY: u32 = 0xEDB8_8320;

/// A running CRC-32.
#[derive(Debug, Clone, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum so far.
    #[must_use]
    pub fn value(&self) -> u32 {
        self.0.clone().finalize()
    }
}

/// CRC-32 of one buffer.
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The bit-at-a-time definition, to check the implementation against.
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
