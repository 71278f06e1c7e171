//! Block ciphers implemented here: SEED (RFC 4269), LEA (KS X 3246) and HIGHT
//! (TTAS.KO-12.0040), which no maintained RustCrypto crate offers, and ARIA (RFC 5794), whose
//! RustCrypto crate is too slow for haetae's throughput target. Each implements the `cipher`
//! 0.5 traits, so RustCrypto's GCM, CTR and CBC run over them unchanged, and each zeroizes
//! its key schedule on drop.
//!
//! Timing: LEA and HIGHT are ARX designs (addition, rotation, xor) and run in constant time
//! by construction. SEED's G function and ARIA's rounds are S-box lookups indexed by
//! key-dependent data; these implementations use tables, so they are not constant-time
//! against a cache-timing attacker on the same core (docs/crypto.md says where that matters).

mod aria;
mod hight;
mod lea;
mod seed;

pub use aria::{Aria, Aria128, Aria192, Aria256};
pub use hight::Hight;
pub use lea::{Lea, Lea128, Lea192, Lea256};
pub use seed::Seed;

/// Implements the `cipher` 0.5 block-cipher traits for a type with `fn encrypt(&self, &mut
/// [u8; N])`, `fn decrypt(&self, &mut [u8; N])` and `fn with_key(&[u8; K]) -> Self`. With
/// `par4` the type also has `encrypt4`/`decrypt4` over `[u128; 4]`, which CTR and GCM use to
/// keep four independent blocks in flight.
macro_rules! block_cipher_traits {
    ($ty:ty, $block:ty, $key:ty, $name:literal) => {
        impl cipher::ParBlocksSizeUser for $ty {
            type ParBlocksSize = cipher::consts::U1;
        }
        impl cipher::BlockCipherEncBackend for $ty {
            #[inline]
            fn encrypt_block(&self, mut block: cipher::inout::InOut<'_, '_, cipher::Block<Self>>) {
                let mut bytes = (*block.get_in()).into();
                self.encrypt(&mut bytes);
                *block.get_out() = bytes.into();
            }
        }
        impl cipher::BlockCipherDecBackend for $ty {
            #[inline]
            fn decrypt_block(&self, mut block: cipher::inout::InOut<'_, '_, cipher::Block<Self>>) {
                let mut bytes = (*block.get_in()).into();
                self.decrypt(&mut bytes);
                *block.get_out() = bytes.into();
            }
        }
        $crate::block::block_cipher_traits!(@common $ty, $block, $key, $name);
    };
    ($ty:ty, $block:ty, $key:ty, $name:literal, par4) => {
        impl cipher::ParBlocksSizeUser for $ty {
            type ParBlocksSize = cipher::consts::U4;
        }
        impl cipher::BlockCipherEncBackend for $ty {
            #[inline]
            fn encrypt_block(&self, mut block: cipher::inout::InOut<'_, '_, cipher::Block<Self>>) {
                let mut bytes = (*block.get_in()).into();
                self.encrypt(&mut bytes);
                *block.get_out() = bytes.into();
            }
            #[inline]
            fn encrypt_par_blocks(
                &self,
                mut blocks: cipher::inout::InOut<'_, '_, cipher::ParBlocks<Self>>,
            ) {
                let mut words = [0u128; 4];
                for (w, b) in words.iter_mut().zip(blocks.get_in().iter()) {
                    *w = u128::from_be_bytes((*b).into());
                }
                self.encrypt4(&mut words);
                for (o, w) in blocks.get_out().iter_mut().zip(words) {
                    *o = w.to_be_bytes().into();
                }
            }
        }
        impl cipher::BlockCipherDecBackend for $ty {
            #[inline]
            fn decrypt_block(&self, mut block: cipher::inout::InOut<'_, '_, cipher::Block<Self>>) {
                let mut bytes = (*block.get_in()).into();
                self.decrypt(&mut bytes);
                *block.get_out() = bytes.into();
            }
            #[inline]
            fn decrypt_par_blocks(
                &self,
                mut blocks: cipher::inout::InOut<'_, '_, cipher::ParBlocks<Self>>,
            ) {
                let mut words = [0u128; 4];
                for (w, b) in words.iter_mut().zip(blocks.get_in().iter()) {
                    *w = u128::from_be_bytes((*b).into());
                }
                self.decrypt4(&mut words);
                for (o, w) in blocks.get_out().iter_mut().zip(words) {
                    *o = w.to_be_bytes().into();
                }
            }
        }
        $crate::block::block_cipher_traits!(@common $ty, $block, $key, $name);
    };
    (@common $ty:ty, $block:ty, $key:ty, $name:literal) => {
        impl cipher::BlockSizeUser for $ty {
            type BlockSize = $block;
        }
        impl cipher::KeySizeUser for $ty {
            type KeySize = $key;
        }
        impl cipher::KeyInit for $ty {
            fn new(key: &cipher::Key<Self>) -> Self {
                Self::with_key(&(*key).into())
            }
        }
        impl cipher::BlockCipherEncrypt for $ty {
            fn encrypt_with_backend(
                &self,
                f: impl cipher::BlockCipherEncClosure<BlockSize = Self::BlockSize>,
            ) {
                f.call(self);
            }
        }
        impl cipher::BlockCipherDecrypt for $ty {
            fn decrypt_with_backend(
                &self,
                f: impl cipher::BlockCipherDecClosure<BlockSize = Self::BlockSize>,
            ) {
                f.call(self);
            }
        }
        impl cipher::AlgorithmName for $ty {
            fn write_alg_name(f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str($name)
            }
        }
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!($name, " { .. }"))
            }
        }
        impl zeroize::ZeroizeOnDrop for $ty {}
    };
}
pub(crate) use block_cipher_traits;
