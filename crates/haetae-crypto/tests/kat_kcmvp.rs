//! Known answers from the KISA KCMVP test vector files ("암호알고리즘 검증기준 V3.0" 테스트
//! 벡터: KAT, MMT and MCT for the block ciphers and their modes, ShortMsg/LongMsg for LSH,
//! SGT/SVT for EC-KCDSA and KCDSA),
//! plus the official ARIA and HIGHT mode vectors where no KCMVP file for that mode could be
//! found. KISA publishes the files on seed.kisa.or.kr (KCMVP 검증대상 암호알고리즘); they are
//! not vendored here. A representative selection was written into this file by hand from the
//! copies in these public repositories (repository @ commit : path):
//!
//! - [LEA-K] `chearin/LEA` @ `27c73759430656f9738d1bd0a148b2d566157f5e` :
//!   `LEA128(ECB)KAT.txt`, `LEA128(ECB)MMT.txt`, `LEA128(ECB)MCT.txt`, `LEA128(CBC)MMT.txt`,
//!   `LEA128(CBC)MCT.txt`, `LEA128(CTR)KAT.txt`, `LEA128(CTR)MMT.txt`, `LEA128(CTR)MCT.txt`.
//! - [SEED-K] `totoku103/crypto-project` @ `1325bc77d48c5e2e283bde9f90e0c5dad0fd8cb2` :
//!   `lib/src/test/resources/testvectors/seedcbc/SEED-128_(CBC)_KAT.txt`, `.../SEED-128_(CBC)_MMT.txt`,
//!   `lib/src/test/resources/testvectors/seedgcm/GCM_SEED-128_AE.txt`; and @
//!   `3b2aef610a4b739a9ae968792fcd1434a260c4e9` : `.../seedcbc/SEED-128_(CBC)_MCT.txt`.
//! - [GO-K] `RyuaNerin/go-krypto` @ `6e7566c4c44e0af11b5f3811c4c15925a9955d31`, whose test
//!   tables reproduce the KCMVP files named in their comments: `seed/testcases_128_test.go`
//!   (`SEED128(ECB)KAT.txt`), `aria/testcases_{128,196,256}_test.go` (`ARIA{128,192,256}(ECB)KAT.txt`),
//!   `lea/test_{196,256}_test.go` (`LEA{192,256}(ECB)KAT.txt`), `hight/testcases_128_test.go`
//!   (`HIGHT(ECB)KAT.txt`), `lsh256/testcases_{224,256}_test.go` and
//!   `lsh512/testcases_{224,256,384,512}_test.go` (`LSH(n-m)ShortMsg.txt` / `LongMsg.txt`),
//!   `eckcdsa/testcases_p256_sha256_test.go` (`EC-KCDSA_(P-256)(SHA-256)_SGT.txt` / `_SVT.txt`),
//!   `kcdsa/testcases_2048_{224_SHA224,256_SHA256}_test.go` (`KCDSA_(2048)(224|256)(SHA-224|256)_SVT.txt`).
//! - [ARIA-N] NSRI "ARIA test vectors" (2004), CBC and CTR sections, as transcribed in
//!   `weidai11/cryptopp` @ `b5242667a24e3db8e4600e77b2e502ef204e5280` : `TestVectors/aria.txt`.
//! - [HIGHT-R] KISA's HIGHT reference code (`KISA_HIGHT_CBC.c`), as transcribed in the same
//!   Crypto++ commit : `TestVectors/hight.txt`.
//!
//! Block-cipher single-block and ECB vectors run on the raw cipher (haetae offers no ECB
//! mode); CBC and CTR messages go through `SymmetricCipher`, the interface the rest of haetae
//! uses (its CBC appends one PKCS#7 block, which KCMVP's unpadded CBC does not have, so the
//! published ciphertext is its prefix). The Monte-Carlo tests implement KCMVP's MCT loops
//! (the NIST AESAVS/MOVS algorithms; CTR advances the counter 1000 blocks per round) and
//! check the published rounds, the last one included, so every one of the 100 000 chained
//! encryptions is checked.

use cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use haetae_crypto::block::{Aria128, Aria192, Aria256, Hight, Lea128, Lea192, Lea256, Seed};
use haetae_crypto::kcdsa::ec_kcdsa_verify;
use haetae_crypto::kcdsa_prime::{KcdsaKeyPair, KcdsaParams, kcdsa_verify};
use haetae_crypto::lsh::{Lsh256, Lsh512};
use haetae_crypto::{CipherSuite, SymmetricCipher};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

fn encrypt_blocks<C: KeyInit + BlockCipherEncrypt>(cipher: &C, data: &mut [u8]) {
    for chunk in data.chunks_exact_mut(C::block_size()) {
        let mut block = Block::<C>::try_from(&*chunk).expect("whole blocks");
        cipher.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
}

fn decrypt_blocks<C: KeyInit + BlockCipherDecrypt>(cipher: &C, data: &mut [u8]) {
    for chunk in data.chunks_exact_mut(C::block_size()) {
        let mut block = Block::<C>::try_from(&*chunk).expect("whole blocks");
        cipher.decrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
}

/// ECB over whole blocks (KAT and MMT files), both directions.
fn check_ecb<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
    source: &str,
    vectors: &[(&str, &str, &str)],
) {
    for (i, (key, pt, ct)) in vectors.iter().enumerate() {
        let cipher = C::new_from_slice(&unhex(key)).expect("key length");
        let mut data = unhex(pt);
        encrypt_blocks(&cipher, &mut data);
        assert_eq!(hex::encode(&data), *ct, "{source} #{i} encrypt");
        decrypt_blocks(&cipher, &mut data);
        assert_eq!(data, unhex(pt), "{source} #{i} decrypt");
    }
}

/// CBC without padding (the KCMVP files) through haetae's PKCS#7 CBC: the published
/// ciphertext is the prefix; the raw cipher decrypts the published ciphertext.
fn check_cbc<C: KeyInit + BlockCipherDecrypt>(
    suite: &str,
    source: &str,
    vectors: &[(&str, &str, &str, &str)],
) {
    let suite = CipherSuite::parse(suite).unwrap();
    for (i, (key, iv, pt, ct)) in vectors.iter().enumerate() {
        let cipher = SymmetricCipher::new(suite, &unhex(key)).unwrap();
        let (iv, pt, ct) = (unhex(iv), unhex(pt), unhex(ct));
        let out = cipher.encrypt(&iv, &[], &pt).unwrap();
        assert_eq!(
            out.len(),
            ct.len() + suite.cipher.block_len(),
            "{source} #{i}"
        );
        assert_eq!(
            hex::encode(&out[..ct.len()]),
            hex::encode(&ct),
            "{source} #{i} encrypt"
        );
        assert_eq!(
            cipher.decrypt(&iv, &[], &out).unwrap(),
            pt,
            "{source} #{i} round trip"
        );

        let raw = C::new_from_slice(&unhex(key)).unwrap();
        let mut data = ct.clone();
        decrypt_blocks(&raw, &mut data);
        let mut previous = iv.clone();
        for (block, ct_block) in data
            .chunks_exact_mut(iv.len())
            .zip(ct.chunks_exact(iv.len()))
        {
            block.iter_mut().zip(&previous).for_each(|(b, p)| *b ^= p);
            previous = ct_block.to_vec();
        }
        assert_eq!(data, pt, "{source} #{i} decrypt");
    }
}

/// CTR with the whole block as a big-endian counter, both directions.
fn check_ctr(suite: &str, source: &str, vectors: &[(&str, &str, &str, &str)]) {
    let suite = CipherSuite::parse(suite).unwrap();
    for (i, (key, ctr, pt, ct)) in vectors.iter().enumerate() {
        let cipher = SymmetricCipher::new(suite, &unhex(key)).unwrap();
        let out = cipher.encrypt(&unhex(ctr), &[], &unhex(pt)).unwrap();
        assert_eq!(
            hex::encode(&out),
            ct.replace(['\n', ' '], ""),
            "{source} #{i} encrypt"
        );
        let back = cipher.decrypt(&unhex(ctr), &[], &unhex(ct)).unwrap();
        assert_eq!(back, unhex(pt), "{source} #{i} decrypt");
    }
}

fn xor_into(target: &mut [u8; 16], other: &[u8; 16]) {
    target.iter_mut().zip(other).for_each(|(t, o)| *t ^= o);
}

fn arr(s: &str) -> [u8; 16] {
    unhex(s).try_into().expect("16 bytes")
}

fn encrypt16<C: BlockCipherEncrypt>(cipher: &C, data: &mut [u8; 16]) {
    let mut block = Block::<C>::try_from(&data[..]).expect("16-byte block");
    cipher.encrypt_block(&mut block);
    data.copy_from_slice(&block);
}

/// One published MCT round: its COUNT and the inputs/output the file lists for it.
struct MctRound {
    count: usize,
    key: &'static str,
    /// IV (CBC) or counter (CTR); empty for ECB.
    iv: &'static str,
    pt: &'static str,
    ct: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum MctMode {
    Ecb,
    Cbc,
    Ctr,
}

/// KCMVP's Monte-Carlo test for a 128-bit key and block, 100 rounds of 1000 encryptions:
/// - ECB: `CT[j] = E(K, PT[j])`, `PT[j+1] = CT[j]`;
/// - CBC: `CT[j] = E(K, PT[j] ^ CT[j-1])` (`CT[-1] = IV`), `PT[j+1] = CT[j-1]` (`PT[1] = IV`);
/// - CTR: `CT[j] = PT[j] ^ E(K, CTR + j)`, `PT[j+1] = CT[j]`;
///
/// the round's output is `CT[999]`; the next round uses `K ^ CT[999]`, and for ECB and CTR
/// `PT = CT[999]`, for CBC `IV = CT[999]` and `PT = CT[998]`, for CTR `CTR + 1000`.
fn run_mct<C: KeyInit + BlockCipherEncrypt>(mode: MctMode, source: &str, published: &[MctRound]) {
    let first = &published[0];
    assert_eq!(first.count, 0);
    let mut key = arr(first.key);
    let mut pt = arr(first.pt);
    let mut iv = if mode == MctMode::Ecb {
        [0; 16]
    } else {
        arr(first.iv)
    };
    let last = published.last().unwrap().count;
    for count in 0..=last {
        if let Some(round) = published.iter().find(|r| r.count == count) {
            assert_eq!(hex::encode(key), round.key, "{source} COUNT {count} KEY");
            assert_eq!(hex::encode(pt), round.pt, "{source} COUNT {count} PT");
            if mode != MctMode::Ecb {
                assert_eq!(hex::encode(iv), round.iv, "{source} COUNT {count} IV/CTR");
            }
        }
        let cipher = C::new_from_slice(&key).unwrap();
        let (mut ct, mut previous_ct) = ([0u8; 16], iv);
        match mode {
            MctMode::Ecb => {
                for _ in 0..1000 {
                    encrypt16(&cipher, &mut pt);
                }
                ct = pt;
            }
            MctMode::Cbc => {
                let mut chain = iv;
                for j in 0..1000 {
                    let mut block = pt;
                    xor_into(&mut block, &chain);
                    encrypt16(&cipher, &mut block);
                    pt = if j == 0 { iv } else { chain };
                    previous_ct = chain;
                    chain = block;
                    ct = block;
                }
            }
            MctMode::Ctr => {
                let mut counter = u128::from_be_bytes(iv);
                for _ in 0..1000 {
                    let mut stream = counter.to_be_bytes();
                    encrypt16(&cipher, &mut stream);
                    xor_into(&mut pt, &stream);
                    counter = counter.wrapping_add(1);
                }
                ct = pt;
                iv = counter.to_be_bytes();
            }
        }
        if let Some(round) = published.iter().find(|r| r.count == count) {
            assert_eq!(hex::encode(ct), round.ct, "{source} COUNT {count} CT");
        }
        xor_into(&mut key, &ct);
        match mode {
            MctMode::Ecb | MctMode::Ctr => pt = ct,
            MctMode::Cbc => {
                iv = ct;
                pt = previous_ct;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// LEA
// ---------------------------------------------------------------------------------------

/// [LEA-K] `LEA128(ECB)KAT.txt` (varying plaintext, varying key, random) and
/// `LEA128(ECB)MMT.txt` (1-3 blocks); [GO-K] `LEA192(ECB)KAT.txt` and `LEA256(ECB)KAT.txt`.
#[test]
fn lea_ecb_matches_kcmvp_kat_and_mmt() {
    check_ecb::<Lea128>(
        "LEA128(ECB)KAT/MMT",
        &[
            (
                "00000000000000000000000000000000",
                "80000000000000000000000000000000",
                "ce8dcf04dd60982b1d8f5035fd534de2",
            ),
            (
                "00000000000000000000000000000000",
                "c0000000000000000000000000000000",
                "196d7d801a91c862cb9fc739bb42efb7",
            ),
            (
                "ffffffffffffffffff80000000000000",
                "00000000000000000000000000000000",
                "362d69fb68427855c8928604e7cd9c65",
            ),
            (
                "00000000000000000000000000000000",
                "c1701d1c790374218ca92565f8f9bb59",
                "3b8e8acb7031747bb78e7d68379bfa8b",
            ),
            (
                "6e52ba79c8e46a76e58ea46586a4ba5b",
                "3c006e246ff712daa58ceeb601e4e227",
                "08ec64905e79d8452369288f7296c40e",
            ),
            (
                "0afa4d21af942db8877687ed5dd509c8",
                "eb0eeea7e69822d53b37a65e997337222f492a29b7209b36b3ffc69ff6fcb55b",
                "89bc18fb6f22a5663a3a8c91b396064e6dfd450155cd5483fd62a7b0263a51f8",
            ),
            (
                "67f81c5d028981201f389f84f7ed0dd8",
                "64a71b38e870fd19f1912b225b02073e3724c0efcbb277e5d9f5a1cf2538ad71\
                 317ce6f64b6d9a88c9947c1f94cd4796",
                "5e0ba007db121135ac0ca430be2e4c9e396dfcb6c7320a5c5106154cdece2f5c\
                 deaea79ecb6add64071acc9814fe6b99",
            ),
        ],
    );
    check_ecb::<Lea192>(
        "LEA192(ECB)KAT",
        &[
            (
                "000000000000000000000000000000000000000000000000",
                "f8000000000000000000000000000000",
                "d2c9fe08bdfe8c72f3e1036045be0c6f",
            ),
            (
                "000000000000000000000000000000000000000000000000",
                "54b90c7934750c27617f739f2fb24626",
                "f4b75c83491a2be33a9f2c722cda78e0",
            ),
            (
                "800000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000",
                "694b918eb7f7ddabf49311ceb83c5d53",
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffff",
                "00000000000000000000000000000000",
                "147ecd0c84ababb0b22f07c53b30fba2",
            ),
        ],
    );
    check_ecb::<Lea256>(
        "LEA256(ECB)KAT",
        &[
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "f8000000000000000000000000000000",
                "7f2020641a5f54240092cc609788236f",
            ),
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "e603fcd5eee6a32e3755c1da666bd1f3",
                "bc2637d1b2b3785a039e343e12484789",
            ),
            (
                "8000000000000000000000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000",
                "4f6156c0c35f9ddfd2a1774814ea76a2",
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "00000000000000000000000000000000",
                "611e921af6dfecd184c940e604be93d4",
            ),
        ],
    );
}

/// [LEA-K] `LEA128(CBC)MMT.txt`, the 1-, 2- and 3-block messages.
#[test]
fn lea_cbc_matches_kcmvp_mmt() {
    check_cbc::<Lea128>(
        "LEA-128-CBC",
        "LEA128(CBC)MMT",
        &[
            (
                "724f8279123b9307658a109101466a15",
                "fef995090770b941b0bf2b120a859bb8",
                "76718ff5b60510fb4a9aa28cf9a57a60",
                "d65a9ec458b768c4e9be62c6fe04a51d",
            ),
            (
                "ae38ecc785cc238f263d14285216b406",
                "bb0f694719d4bf967a085d4fd98a37e3",
                "f3f7057f5670f3e8bb9d9aaa95f12f71ea30fab7622f0a9f9edc2821ca7d0968",
                "d504ffc845ef447c516799ad8877f967628f49f15a8b64fa48ad215232884a52",
            ),
            (
                "763dc878a1e4931417e6a4dffe9f72c1",
                "abdd298cba9f58e05d1cea4cf40758b5",
                "de121dfc8fb169dbe3201910b2a7e7bea51dde1048ab121f60d28d167eaf8c94\
                 d47eec51485edf05c753e385dc91f52f",
                "c79ab2ec8975b8c21982d6f9233797bd52a1f9e174ad49b2bde90ecd05214892\
                 11cfc9d37fbc15c1e24b87ea79f232bb",
            ),
        ],
    );
}

/// [LEA-K] `LEA128(CTR)KAT.txt` (first vector) and `LEA128(CTR)MMT.txt` (1-3 blocks; the
/// counter is the whole 128-bit block).
#[test]
fn lea_ctr_matches_kcmvp_kat_and_mmt() {
    check_ctr(
        "LEA-128-CTR",
        "LEA128(CTR)KAT/MMT",
        &[
            (
                "00000000000000000000000000000000",
                "80000000000000000000000000000000",
                "00000000000000000000000000000000",
                "ce8dcf04dd60982b1d8f5035fd534de2",
            ),
            (
                "724f8279123b9307658a109101466a15",
                "fef995090770b941b0bf2b120a859bb8",
                "76718ff5b60510fb4a9aa28cf9a57a60",
                "a362d89d20d9d37303fb956a324eded6",
            ),
            (
                "ae38ecc785cc238f263d14285216b406",
                "bb0f694719d4bf967a085d4fd98a37e3",
                "f3f7057f5670f3e8bb9d9aaa95f12f71ea30fab7622f0a9f9edc2821ca7d0968",
                "967cecd0c2b8d338e9b5ddfd299dc77284e46ed68ed0c951243a9c383d6f15e9",
            ),
            (
                "763dc878a1e4931417e6a4dffe9f72c1",
                "abdd298cba9f58e05d1cea4cf40758b5",
                "de121dfc8fb169dbe3201910b2a7e7bea51dde1048ab121f60d28d167eaf8c94\
                 d47eec51485edf05c753e385dc91f52f",
                "5bc0227efd099d17feaa4f29d8c9746206cb545fde2bae35400288f7b70dfa3e\
                 05107229e84495d91cc6f37e2297062b",
            ),
        ],
    );
}

/// [LEA-K] `LEA128(ECB)MCT.txt`, `LEA128(CBC)MCT.txt`, `LEA128(CTR)MCT.txt`: COUNT 0, 1, 2
/// and 99 as published, the whole chain computed.
#[test]
fn lea_128_monte_carlo_matches_kcmvp_mct() {
    run_mct::<Lea128>(
        MctMode::Ecb,
        "LEA128(ECB)MCT",
        &[
            MctRound {
                count: 0,
                key: "6e52ba79c8e46a76e58ea46586a4ba5b",
                iv: "",
                pt: "3c006e246ff712daa58ceeb601e4e227",
                ct: "ca82a70b0e05aeadaca6df270c03bc06",
            },
            MctRound {
                count: 1,
                key: "a4d01d72c6e1c4db49287b428aa7065d",
                iv: "",
                pt: "ca82a70b0e05aeadaca6df270c03bc06",
                ct: "248d32d883f4f269912048cc3163aed4",
            },
            MctRound {
                count: 2,
                key: "805d2faa451536b2d808338ebbc4a889",
                iv: "",
                pt: "248d32d883f4f269912048cc3163aed4",
                ct: "3fdeb3add633f6f7dad87dd024741fa6",
            },
            MctRound {
                count: 99,
                key: "5c20fa18cbfb93ae1499c9f420749d2b",
                iv: "",
                pt: "ddeccf46054ef0ef7accfdbef8f81aec",
                ct: "7b1c09d176a901ffb7bedc6a1ad946fd",
            },
        ],
    );
    run_mct::<Lea128>(
        MctMode::Cbc,
        "LEA128(CBC)MCT",
        &[
            MctRound {
                count: 0,
                key: "724f8279123b9307658a109101466a15",
                iv: "fef995090770b941b0bf2b120a859bb8",
                pt: "76718ff5b60510fb4a9aa28cf9a57a60",
                ct: "92e58a0b613ca94d922f7e6a445a4ec7",
            },
            MctRound {
                count: 1,
                key: "e0aa087273073a4af7a56efb451c24d2",
                iv: "92e58a0b613ca94d922f7e6a445a4ec7",
                pt: "083b24e6d572e84a17930ce376b82da6",
                ct: "e594d858743b2a66f3a51ed6e3108ade",
            },
            MctRound {
                count: 2,
                key: "053ed02a073c102c0400702da60cae0c",
                iv: "e594d858743b2a66f3a51ed6e3108ade",
                pt: "85a243c034773f18739f97a694ec8d51",
                ct: "a6f73c96d5b767e568654e24a566ae4e",
            },
            MctRound {
                count: 99,
                key: "95af92737758059ceed56e1d5cfc8245",
                iv: "62922f3ff9ab55d5be9549fd5fc1d29a",
                pt: "6b482757ce9d7b1c5b5617eb6b083e63",
                ct: "32791359f4e207af11d33e4262990518",
            },
        ],
    );
    run_mct::<Lea128>(
        MctMode::Ctr,
        "LEA128(CTR)MCT",
        &[
            MctRound {
                count: 0,
                key: "724f8279123b9307658a109101466a15",
                iv: "fef995090770b941b0bf2b120a859bb8",
                pt: "76718ff5b60510fb4a9aa28cf9a57a60",
                ct: "66ddc4ba3e47ef5f2cffb1546578d4f8",
            },
            MctRound {
                count: 1,
                key: "149246c32c7c7c584975a1c5643ebeed",
                iv: "fef995090770b941b0bf2b120a859fa0",
                pt: "66ddc4ba3e47ef5f2cffb1546578d4f8",
                ct: "d848b6638008ca45f321cd140fca25df",
            },
            MctRound {
                count: 2,
                key: "ccdaf0a0ac74b61dba546cd16bf49b32",
                iv: "fef995090770b941b0bf2b120a85a388",
                pt: "d848b6638008ca45f321cd140fca25df",
                ct: "52cc84a87353bbd99314b6c6cd10adb5",
            },
            MctRound {
                count: 99,
                key: "34b3e6e0cb380dbf92b56adf611b5207",
                iv: "fef995090770b941b0bf2b120a871e70",
                pt: "9f64281c961d0586c5c3025b6f7dcd6c",
                ct: "99998c93da6a10dd51b015bdbef1ce4b",
            },
        ],
    );
}

// ---------------------------------------------------------------------------------------
// SEED
// ---------------------------------------------------------------------------------------

/// [GO-K] `SEED128(ECB)KAT.txt`: the first and last varying-key vectors and one from the
/// varying-plaintext part ([SEED-K] `SEED-128_(CBC)_KAT.txt` #150 with its zero IV).
#[test]
fn seed_ecb_matches_kcmvp_kat() {
    check_ecb::<Seed>(
        "SEED128(ECB)KAT",
        &[
            (
                "9f3879b964cb88490000000000000000",
                "00000000000000000000000000000000",
                "9b48304caaae2ab1c5303caa47069c4d",
            ),
            (
                "a33c7dbd68cf8c4d0000000000000000",
                "00000000000000000000000000000000",
                "d62612f69bd9177c71e9efbfd408078a",
            ),
            (
                "ffffffffffffffff0000ffff0000ffff",
                "00000000000000000000000000000000",
                "da8b0d7e841cdef38e8806c13ff63d8b",
            ),
            (
                "00000000000000000000000000000000",
                "00000000000000000000007fffffffff",
                "f02906ff88e1aaa6212e53e3f2f3f75a",
            ),
        ],
    );
}

/// [SEED-K] `SEED-128_(CBC)_KAT.txt` #0 and `SEED-128_(CBC)_MMT.txt` (1-3 blocks): SEED-CBC
/// is what Korean keypad clients use, so interoperability with KCMVP-validated modules
/// matters most here.
#[test]
fn seed_cbc_matches_kcmvp_kat_and_mmt() {
    check_cbc::<Seed>(
        "SEED-128-CBC",
        "SEED-128_(CBC)_KAT/MMT",
        &[
            (
                "9f3879b964cb88490000000000000000",
                "00000000000000000000000000000000",
                "00000000000000000000000000000000",
                "9b48304caaae2ab1c5303caa47069c4d",
            ),
            (
                "c85b0c2de072e77a9e8be9cae6434e3c",
                "f04a11adb10b017f968f1798789e07ad",
                "cd2815c01be42ae7b33727509b577982",
                "2a1471e0dcddd42318456150ee5d3198",
            ),
            (
                "ccb0eee59d87c68580dd0e13ec96292d",
                "9adab0def4bc7c69cb19004248c3dc5e",
                "25dfb0ac1c8c2ee4a0c6747fcc89980699398490534104874efb1daad5d0a158",
                "2973c1d8eed0409387bfeae864287ec6b64aa728714868864be009502f5298cb",
            ),
            (
                "63a0000b166361236011f1e500c07bc3",
                "300c3add20bcebc9a4a3258f29c3edf8",
                "eeb98609715586ca27882f4c6f83fbe9c91d79ce437558b735d9c1fa2ee7ebc7\
                 2ef2e9ae16a8c6615cf1d3bc031a4002",
                "8bffba5f6cbbf5d0a31ffd8909cf2b818c5ced21821800fe70cc38e9d15b3cb4\
                 bd2a46ca6f5e0b1c4f044a49f80898dd",
            ),
        ],
    );
}

/// [SEED-K] `SEED-128_(CBC)_MCT.txt`: COUNT 0, 1, 2 and 99, the whole chain computed.
#[test]
fn seed_cbc_monte_carlo_matches_kcmvp_mct() {
    run_mct::<Seed>(
        MctMode::Cbc,
        "SEED-128_(CBC)_MCT",
        &[
            MctRound {
                count: 0,
                key: "c55f442d961cbee91e8f7d9e6ca09e82",
                iv: "2e50eac919925a188b5cda3c6ffd4e1c",
                pt: "62b1d3ec137347a4f0120bb1ff8707ea",
                ct: "2445fad0a6c8f950262213d3d02d3bd6",
            },
            MctRound {
                count: 1,
                key: "e11abefd30d447b938ad6e4dbc8da554",
                iv: "2445fad0a6c8f950262213d3d02d3bd6",
                pt: "3a73b1fbfd969296bfecc49e45e52063",
                ct: "6197cf6fbf99b6268f032c6d1e9fae40",
            },
            MctRound {
                count: 2,
                key: "808d71928f4df19fb7ae4220a2120b14",
                iv: "6197cf6fbf99b6268f032c6d1e9fae40",
                pt: "11afacebb7358026ad916af1fe46bb0a",
                ct: "2830da6d1408ae59804fb7e416d178c9",
            },
            MctRound {
                count: 99,
                key: "892b22c3c4807a95858b67ccf3f05aec",
                iv: "417b78297b64ea5cad8f32ee37f6608e",
                pt: "ccef3e9bee9757bb58b067c6c18f42c1",
                ct: "3963929580fb731b466254dfddb9a9ae",
            },
        ],
    );
}

/// [SEED-K] `GCM_SEED-128_AE.txt` (`[IVLen = 96] [PTLen = 0] [AADLen = 0] [TagLen = 128]`,
/// COUNT 0, 4, 8 and 12; the copy holds only this group): the tag is `E(K, J0) ^ GHASH` of
/// nothing, so these check the counter block and hash key derivation of SEED-GCM.
#[test]
fn seed_gcm_matches_kcmvp_ae_vectors() {
    let suite = CipherSuite::parse("SEED-128-GCM").unwrap();
    for (key, iv, tag) in [
        (
            "572923931a32526e93e712c9eed4979b",
            "94c93b665375c369b936e416",
            "5059d6ea459eac7240266d4677f7cf54",
        ),
        (
            "b589977e8182d0a8c9970fb294bf3c79",
            "96ed5297579cac9292ab8052",
            "d37935f886120bc5d40df5e246a40e8d",
        ),
        (
            "a9f5767bc3121ec272bd376bd99d997d",
            "380225e7107806b7889d378c",
            "303d4b405e354a60668870f2862fa8df",
        ),
        (
            "b3f135250f55e3c56dbd60704cc0b691",
            "b84ceab16b3c39a3382da1fe",
            "c1d2607aea30a3f11ee74a21b05aa132",
        ),
    ] {
        let cipher = SymmetricCipher::new(suite, &unhex(key)).unwrap();
        let out = cipher.encrypt(&unhex(iv), &[], &[]).unwrap();
        assert_eq!(hex::encode(&out), tag, "GCM_SEED-128_AE key {key}");
        assert_eq!(
            cipher.decrypt(&unhex(iv), &[], &out).unwrap(),
            Vec::<u8>::new()
        );
        let mut bad = out.clone();
        bad[15] ^= 0x80;
        assert!(cipher.decrypt(&unhex(iv), &[], &bad).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// ARIA
// ---------------------------------------------------------------------------------------

/// [GO-K] `ARIA128(ECB)KAT.txt`, `ARIA192(ECB)KAT.txt`, `ARIA256(ECB)KAT.txt`: varying
/// plaintext, varying key and the last (random) vector of each.
#[test]
fn aria_ecb_matches_kcmvp_kat() {
    check_ecb::<Aria128>(
        "ARIA128(ECB)KAT",
        &[
            (
                "00000000000000000000000000000000",
                "f8000000000000000000000000000000",
                "a0a51301a065be26edb1df1273dd3a6b",
            ),
            (
                "00000000000000000000000000000000",
                "fffffffffffffff80000000000000000",
                "ee21e605f99bc00a783714f92a85f2e9",
            ),
            (
                "80000000000000000000000000000000",
                "00000000000000000000000000000000",
                "4aba3055788204d82f4539d81bc9384b",
            ),
            (
                "ffffffffffffffffffffffffffffffff",
                "00000000000000000000000000000000",
                "2e582a95a18cbb64f26cbe02e5e20944",
            ),
            (
                "00000000000000000000000000000000",
                "ba8c2b53f29b7fd6d3377fba2912217d",
                "ea727dca26305cb6887533954d3b919a",
            ),
        ],
    );
    check_ecb::<Aria192>(
        "ARIA192(ECB)KAT",
        &[
            (
                "000000000000000000000000000000000000000000000000",
                "f8000000000000000000000000000000",
                "73360c62dcb4df8ee231414c9e9ebb12",
            ),
            (
                "800000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000",
                "f9ba9c6e7e3c86fae4beb607f387548e",
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffff",
                "00000000000000000000000000000000",
                "c4dfd15fc41636060f97e617eb0d7dd7",
            ),
            (
                "000000000000000000000000000000000000000000000000",
                "a759154d0d4a56eaaffd36d1c650909d",
                "6cefc4aab805325ff774ccb95600b5f3",
            ),
        ],
    );
    check_ecb::<Aria256>(
        "ARIA256(ECB)KAT",
        &[
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "f8000000000000000000000000000000",
                "b799be721479a20b6067efd6228dfa3f",
            ),
            (
                "8000000000000000000000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000",
                "9250c9771f5a5a8612400aa917491263",
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "00000000000000000000000000000000",
                "999f70653ba1039731b63492d8463101",
            ),
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "009406d667b0337a048e5a21b6042070",
                "56b6d73d346d402e639a0d696c85b9ec",
            ),
        ],
    );
}

const ARIA_NSRI_PLAINTEXT: &str = "11111111aaaaaaaa11111111bbbbbbbb11111111cccccccc11111111dddddddd\
     22222222aaaaaaaa22222222bbbbbbbb22222222cccccccc22222222dddddddd\
     33333333aaaaaaaa33333333bbbbbbbb33333333cccccccc33333333dddddddd\
     44444444aaaaaaaa44444444bbbbbbbb44444444cccccccc44444444dddddddd\
     55555555aaaaaaaa55555555bbbbbbbb55555555cccccccc55555555dddddddd";

/// [ARIA-N] ARIA-CBC, 128/192/256-bit keys, ten blocks (no KCMVP ARIA CBC/CTR file copy
/// was found; these are the algorithm designers' published mode vectors).
#[test]
fn aria_cbc_matches_the_nsri_test_vectors() {
    let k = "00112233445566778899aabbccddeeff";
    check_cbc::<Aria128>(
        "ARIA-128-CBC",
        "ARIA test vectors CBC-128",
        &[(
            k,
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ARIA_NSRI_PLAINTEXT,
            "49d61860b14909109cef0d22a9268134fadf9fb23151e9645fba75018bdb1538\
             b53334634bbf7d4cd4b5377033060c155fe3948ca75de1031e1d85619e0ad61e\
             b419a866b3c2dbfd10a4ed18b22149f75897f0b8668b0c1c542c687778835fb7\
             cd46e45f85eaa7072437dd9fa6793d6f8d4ccefc4eb1ac641ac1bd30b18c6d64\
             c49bca137eb21c2e04da62712ca2b4f540c57112c38791852cfac7a5d19ed83a",
        )],
    );
    check_cbc::<Aria192>(
        "ARIA-192-CBC",
        "ARIA test vectors CBC-192",
        &[(
            "00112233445566778899aabbccddeeff0011223344556677",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ARIA_NSRI_PLAINTEXT,
            "afe6cf23974b533c672a826264ea785f4e4f7f780dc7f3f1e0962b80902386d5\
             14e9c3e77259de92dd1102ffab086c1ea52a71260db5920a83295c25320e4211\
             47ca45d532f327b856ea947cd2196ae2e040826548b4c891b0ed0ca6e714dbc4\
             631998d548110d666b3d54c2a091955c6f05beb4f62309368696c9791fc4c551\
             564a2637f194346ec45fbca6c72a5b4612e208d531d6c34cc5c64eac6bd0cf8c",
        )],
    );
    check_cbc::<Aria256>(
        "ARIA-256-CBC",
        "ARIA test vectors CBC-256",
        &[(
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ARIA_NSRI_PLAINTEXT,
            "523a8a806ae621f155fdd28dbc34e1ab7b9b42432ad8b2efb96e23b13f0a6e52\
             f36185d50ad002c5f601bee5493f118b243ee2e313642bffc3902e7b2efd9a12\
             fa682edd2d23c8b9c5f043c18b17c1ec4b5867918270fbec1027c19ed6af833d\
             a5d620994668ca22f599791d292dd6273b2959082aafb7a996167cce1eec5f0c\
             fd15f610d87e2dda9ba68ce1260ca54b222491418374294e7909b1e8551cd8de",
        )],
    );
}

/// [ARIA-N] ARIA-CTR, 128/192/256-bit keys, ten blocks from a zero counter.
#[test]
fn aria_ctr_matches_the_nsri_test_vectors() {
    let zero = "00000000000000000000000000000000";
    check_ctr(
        "ARIA-128-CTR",
        "ARIA test vectors CTR-128",
        &[(
            "00112233445566778899aabbccddeeff",
            zero,
            ARIA_NSRI_PLAINTEXT,
            "ac5d7de805a0bf1c57c854501af60fa11497e2a34519dea1569e91e5b5ccae2f\
             f3bfa1bf975f4571f48be191613546c3911163c085f871f0e7ae5f2a085b8185\
             1c2a3ddf20ecb8fa51901aec8ee4ba32a35dab67bb72cd9140ad188a967ac0fb\
             bdfa94ea6cce47dcf8525ab5a814cfeb2bb60ee2b126e2d9d847c1a9e96f9019\
             e3e6a7fe40d3829afb73db1cc245646addb62d9b907baaafbe46a73dbc131d3d",
        )],
    );
    check_ctr(
        "ARIA-192-CTR",
        "ARIA test vectors CTR-192",
        &[(
            "00112233445566778899aabbccddeeff0011223344556677",
            zero,
            ARIA_NSRI_PLAINTEXT,
            "08625ca8fe569c19ba7af3760a6ed1cef4d199263e999dde14082dbba7560b79\
             a4c6b456b8707dce751f9854f18893dfdb3f4e5afa539733e6f1e70b98ba3789\
             1f8f81e95df8efc26c7ce043504cb18958b865e4e316cd2aa1c97f31bf23dc04\
             6ef326b95a692a191ba0f2a41c5fe9ae070f236ff7078e703b42666caafbdd20\
             bad74ac4c20c0f46c7ca24c151716575c947da16c90cfe1bf217a41cfebe7531",
        )],
    );
    check_ctr(
        "ARIA-256-CTR",
        "ARIA test vectors CTR-256",
        &[(
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            zero,
            ARIA_NSRI_PLAINTEXT,
            "30026c329666141721178b99c0a1f1b2f06940253f7b3089e2a30ea86aa3c88f\
             5940f05ad7ee41d71347bb7261e348f18360473fdf7d4e7723bffb4411cc13f6\
             cdd89f3bc7b9c768145022c7a74f14d7c305cd012a10f16050c23f1ae5c23f45\
             998d13fbaa041e51619577e0772764896a5d4516d8ffceb3bf7e05f613edd9a6\
             0cdcedaff9cfcaf4e00d445a54334f73ab2cad944e51d266548e61c6eb0aa1cd",
        )],
    );
}

// ---------------------------------------------------------------------------------------
// HIGHT
// ---------------------------------------------------------------------------------------

/// [GO-K] `HIGHT(ECB)KAT.txt`: varying plaintext, varying key and the last (random) vector.
/// The KCMVP files and KISA's reference code write keys and blocks byte 0 first (`MK0`,
/// `P0`), the reverse of how TTAS.KO-12.0040 prints them; haetae's `Hight` takes this order.
#[test]
fn hight_ecb_matches_kcmvp_kat() {
    check_ecb::<Hight>(
        "HIGHT(ECB)KAT",
        &[
            (
                "00000000000000000000000000000000",
                "8000000000000000",
                "d2b366ee33648cce",
            ),
            (
                "00000000000000000000000000000000",
                "c000000000000000",
                "c6fb1015230cc831",
            ),
            (
                "00000000000000000000000000000000",
                "ffffffffffffff80",
                "2e5f875423a6d155",
            ),
            (
                "80000000000000000000000000000000",
                "0000000000000000",
                "689db471543ea251",
            ),
            (
                "c0000000000000000000000000000000",
                "0000000000000000",
                "ffc04d151996d7ae",
            ),
            (
                "ffffffffffffffffffffffffffffffff",
                "0000000000000000",
                "802395603c089eba",
            ),
            (
                "00000000000000000000000000000000",
                "c6b06462c479f812",
                "2207624a6b6a54cf",
            ),
        ],
    );
}

/// [HIGHT-R] HIGHT-CBC from KISA's reference code, 1 to 8 blocks.
#[test]
fn hight_cbc_matches_the_kisa_reference_code() {
    let key = "88e34f8f081779f1e9f394370ad40589";
    let iv = "268d66a735a81a81";
    let pt = "000102030405060708090a0b0c0d0e0f";
    let ct = "ce1595085a188c28c18d7708d9c125864b3daf2bf20d5247634a00012fa0e9f0\
              449de2bcc168516c0e2745ac37c1a6743a1ea51eb407d14ec8c4b435ca05cc62";
    let ct = ct.replace(['\n', ' '], "");
    let vectors: Vec<(String, String)> = (1..=8)
        .map(|blocks| {
            (
                pt.repeat(4)[..16 * blocks].to_owned(),
                ct[..16 * blocks].to_owned(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, &str)> = vectors
        .iter()
        .map(|(p, c)| (key, iv, p.as_str(), c.as_str()))
        .collect();
    check_cbc::<Hight>("HIGHT-CBC", "KISA_HIGHT_CBC.c", &refs);
}

// ---------------------------------------------------------------------------------------
// LSH
// ---------------------------------------------------------------------------------------

fn check_lsh(source: &str, vectors: &[(usize, &str, &str)]) {
    for (out_len, msg, md) in vectors {
        let msg = unhex(msg);
        let digest = if source.starts_with("LSH(256") {
            let mut h = Lsh256::with_output_len(*out_len).unwrap();
            h.update(&msg);
            h.finalize()
        } else {
            let mut h = Lsh512::with_output_len(*out_len).unwrap();
            // Fed in uneven pieces, to cross the 256-byte block boundary mid-update.
            for piece in msg.chunks(97) {
                h.update(piece);
            }
            h.finalize()
        };
        assert_eq!(
            hex::encode(digest),
            md.replace(['\n', ' '], ""),
            "{source}, {}-byte message",
            msg.len()
        );
    }
}

/// [GO-K] `LSH(256-224)` and `LSH(256-256)` `ShortMsg.txt` (messages one byte short of,
/// at, and past the 128-byte block) and `LongMsg.txt` (first, 227 bytes).
#[test]
fn lsh_256_matches_kcmvp_short_and_long_messages() {
    check_lsh(
        "LSH(256-224)ShortMsg/LongMsg",
        &[
            (
                28,
                "56",
                "6b3f5b095692af487964f51b3248fe88132ad3f428969102ab3c2cf3",
            ),
            (
                28,
                "a33351faa3adafba1487d94f5ae18173dbe04a0d6b50dafb068d310fc5a33957\
                 0bb49ea2ff9adf3f40cea608d48855a06128e1f89fd5e3180d64ec1ce37b197c\
                 48f6e891c6894a55fba7fa6b91a30c5f7016c92e3180ba09d6320356b96bf3f8\
                 c3c1d8d0dec21883addc7d7e7a7ad1387070abb70a998856cbbe1dc530baec",
                "c7cf1aeb9b0faddb75d50eba81fda7f7687c93656430d4615270fde3",
            ),
            (
                28,
                "51e3dc1666318d7052be33d84b7755cab4c9ff2e9c1068748853d2e3722eb22e\
                 110f11495ba6327a499675b3da717b1f5ae38bfbe42d34a726d534fd649c99e1\
                 bfb12619b824f860f09d6ab5314e35f9b226dcb997484749b8bbad12a363b82c\
                 e430e43084952947cf3cd9875af8cb8045fbb911be49e781c66c05ca38695738",
                "5a409d2c7b9cbc4e45db8e468184fbc57239706f9b9264c0b3dcb399",
            ),
            (
                28,
                LSH256_LONG_MSG_0,
                "7617289f423459cd2dea4e69ad71ba0ee17022b75f9f1532d3c4aaf5",
            ),
        ],
    );
    check_lsh(
        "LSH(256-256)ShortMsg/LongMsg",
        &[
            (
                32,
                "693c",
                "72c817828d19e733d76c48a6f09c4b398b82196a149e0850ad6b99d4c3fa945f",
            ),
            (
                32,
                "3bacb0c883ff7876af1a866cabcac6f95bf6d459dcd262870c56db524cef45b3\
                 84746c5e685b3d97fa2d704750376a4f9883611c5906c17bfc1bceaf8a308bc2\
                 b7bfdb182081e74ad1debf310aa74440430745176db7e8567b724caf21a96c40\
                 db77471f32d73e363b15bd5160821d75626cc9749f4da0be91439b7a98c0b0",
                "d82d16c7109a1c5b12f9ee1c4a4a92f6ea13a48c3259942460f0af6536801b97",
            ),
            (
                32,
                "d5f983f69a26c7090440bab0d0da30bd95009935587730b15b4776043777df1e\
                 2a18cb31b285b7125be8b5e1d50019ec492276d1ed7ec9e3d7a4f3cf0f476d80\
                 e740373f8fd5111fe43cee98895ba67239d2ebe45b3b7efed7b0a244298ed29c\
                 b479af6a58a13cf946434d1d13723d160c17e0b8ca37b8c906746cabaed7753a",
                "2049e9305ed6e0d9e0cfba6a267f7983fa4886cbe544499e8c21e8ffd7a08daa",
            ),
            (
                32,
                LSH256_LONG_MSG_0,
                "eac621cd6495672ef57f82d2fbe852db5ab7a7a8775188eeed5b39cec355044e",
            ),
        ],
    );
}

/// The first `LSH(256-*)LongMsg.txt` message (227 bytes), common to both output lengths.
const LSH256_LONG_MSG_0: &str = "cb8cde5afd7ac4d740ccc149ea0d80c4910de2b1cd92e91f3e4bd55ad1058cbf\
     40213fced8464b817f535ddcf598dac65a457e17f12243f223818455c77262ee\
     a035673127f569a78bb3b189f7805d8d13ef0300cdca971559048f7d76ef4437\
     f4af9caa73efe6f16dd20576772cd1c2c3f3ba93eaf0af2fe8ba3ef968e5fc42\
     43772761439b8a062c9aa1cbfd06fe0c7339ebf9cffe51e9d98dd8f225bd50b6\
     9575507f1f631c8fd0f1ccb11175ab142aa8de59045a46eb3364a78f33dd093c\
     f2915e2c8fae663362c1d0503ce1a282f02adadc126e55dcfe26f1f91cafef7b\
     63b39b";

/// The 255- and 256-byte `ShortMsg.txt` messages of `LSH(512-256)` and `LSH(512-384)`.
const LSH512_SHORT_MSG_255: &str = "db74e9bcdd193b43135a0d4ac336f75b651743e7b29ea12dfda31c5dc6784dfe\
     8d6ecf8de49bf367c8dab4e93112edd5e8bcc9f7999f7b0929de30d549354299\
     4c80afaf357dc96d15d22f4b9452fb43cd7c3d7e5f44a92cc0178cb4d519050d\
     c0b1716bfa47271fa14c66b8137b8b6fbb5f87c22b16915e6b54184291abfc22\
     9209fd0958827443154f417ad617041f5b6e900c269c9c67d29fbcc9a673909f\
     6a903bd179b517a218e4a8d806adce1c55b03ea3775e320e9cff608f3cf9294e\
     ef4f140b85687a0453128319cbc6512e502e7ad148e4bc1c727decdd79c630f5\
     ca4d6efea32304316de1ba864ce9f41cf4ee2ddcbeb7a05afb1f48fb88610b";
const LSH512_SHORT_MSG_256: &str = "5da39233f3fc6f1df00f593567b29e22b0eafa3d0d035e488de0ef5d318f5224\
     4e20274932b8d32d0ae183dc04246e40b0da5a94ac3f611a80c8f511c7b722e2\
     90ec139a03fed89c488a6698a4cbdfb7e56b141801994980fa5c384d042758ac\
     eaad5e0caef604d370b30a4f90cf7bef174632b3533a9ce1c244c0fa32087cec\
     250c11897acae2384a0378ea1157ca500e13bb4cec4ae5a5a12795fe97811609\
     09b033f8b19ff734a023b7526d8b53439179b8ca12f0a9335fadc0437bbbaf6b\
     5e42cc4099a0cd3038bacf6dec949e2e6a2030170e5472f5c47f48af28ddce7a\
     ec69e54b7af2eb92db71c925d89a337a5fb12b1a289fc7529745352ce510fc9e";

/// [GO-K] `LSH(512-224)`, `LSH(512-256)`, `LSH(512-384)` and `LSH(512-512)` `ShortMsg.txt`
/// (messages one byte short of and at the 256-byte block) and `LSH(512-512)LongMsg.txt`
/// (first, 355 bytes).
#[test]
fn lsh_512_matches_kcmvp_short_and_long_messages() {
    check_lsh(
        "LSH(512-224)ShortMsg",
        &[
            (
                28,
                "5a",
                "f3f387c330fb1a907076c48d63c37796a2d4659a0efe7cd2c2f1946c",
            ),
            (
                28,
                "2ac3bbb497386cb59b5cb21626ee9aba600b26b2ea5aaa0b678877ea3cf4b7dc\
                 93ab9867a696ade53af291926901cde3a5fffb19fa582c179318887080a334c5\
                 b7a6794e584d22b635b7252c91a786b7287c79c97063c7181fcb72a9ed199c2d\
                 9b9da59134c594d19391b80d25478fdef068e6ead4e242b611877fbc0abeb7be\
                 49796559c267cadd5c6a905cad4bae0105ad8ba3af3f669a7336f5d25ffb4c1e\
                 c82001ce8b998e839829f642b21aacc87031b01d88e1fb6c4cbf1d12753625f5\
                 207cc11716c4a66b50b632e7bb1c50da38de9d80e730c9d3a50a3fa5d3d808ec\
                 5a74ec5deb51db3c8cf98c7250b964e0659a99f35494977885ffa3b2024abe",
                "7e765add5d155f48bc899d624943b2c377cb702783a9d53b289e0659",
            ),
            (
                28,
                "aa7cefccc793a6f59e52da4c0bf959ae81004fed9e58752e03f486906288f30f\
                 d891d7a77e952dbc3bac41b9dc3f64f86610e4e2aa7a3b571bfb8750ddef3ac2\
                 1e9e13c6a9794df8b8a1161c0aa94208369d41be3f434ed868a0ea294abe89a1\
                 23ad8b7171c86d70c03941bdc0c05ba69ab04ec9843a177994ed9764d17e4772\
                 90c527f0fe09f7edf97daae4240a189c3a4ff34da2e7fc0444ea76489cb6dbfe\
                 0cefcf8a77c452370b7439d95e11dfb1bd851890c1d2663f229e701fd0eeaf0d\
                 40326b880482e6169f27d7e3975d19accc57a5db0784bef4d6116b2f98af2a67\
                 d496e332cfc91b525d9c6a4cf7742f560ecf82769f846ae9084b50c21a7fb4d3",
                "ab4d578b1ffab78f136b4a45081c4d4a7fdfc1964d1c6436c9e8cde4",
            ),
        ],
    );
    check_lsh(
        "LSH(512-256)ShortMsg",
        &[
            (
                32,
                "5d",
                "e5436c77880810a3dfeb27421e81651bfb30b29051cd641f8562ffd2185e8738",
            ),
            (
                32,
                LSH512_SHORT_MSG_255,
                "d3a18ac4c658d24f6f4ed292708da8999f62042ae83b9d2e275078db46bad39b",
            ),
            (
                32,
                LSH512_SHORT_MSG_256,
                "360c4b760050843b717114b6b832d43c85b039a6764817705d84a36342ed22b4",
            ),
        ],
    );
    check_lsh(
        "LSH(512-384)ShortMsg",
        &[
            (
                48,
                "ae0a1b",
                "32c06ff238b06f2f8484b30e3a574596ed83ea5a5e2c3c0f9a6b1b93131f06d1\
                 7f2274af3a20c116d5cbece4c1ddaafc",
            ),
            (
                48,
                LSH512_SHORT_MSG_255,
                "c121879e37a73267a15822d15635c1e80addfcec1a0b2b1553346061845d3c65\
                 83c959a90bca4bff2d1e0f5bd8ddeb82",
            ),
            (
                48,
                LSH512_SHORT_MSG_256,
                "f6fdeb46d0d625d808a3b59f7115a7d3831ce6e0af0103ac333be724b0f8a91f\
                 2ff048a9653eeb2b56aad09eb53071b9",
            ),
        ],
    );
    check_lsh(
        "LSH(512-512)ShortMsg/LongMsg",
        &[
            (
                64,
                "60",
                "2c24ff7aa74ee7a46898c2a1aeb6361e14c17fd1e2564762484c1e00766e88d4\
                 e6da439a2af97604c3675c705cfda315891ab0da6f23918d2c88664f8955b955",
            ),
            (
                64,
                "8d2516c424fa09d18b59697f617d54fc6a23601c79e3984f93bfc2d151fde420\
                 863206b322a038e956c1d740f9240dc72b7897d638e7cbfcbfa5d93913c8516d\
                 e15ae51113ac7125f5ee386996fd70d0727c02324d268b416262a6bebd186ded\
                 e6c43d46bfc9ba6daf07136400af8800865629998249e006c521b1c819974186\
                 dc9995baee9d1da9ce35f198ffe35a3db12f94749df8d233310883c0edebd421\
                 0d0076d568d0a1c1989f596d5b41f070392fcc2967da6ab0ec3fa30c02bc2ea7\
                 bf2267fff40b4e9d566ed34bdb705182677d5822a898af653eef991620b358fe\
                 3b26f0a05cf62d264fc9e79a491985598342c0c528d9aa3b7140ee450e7759",
                "9f9ec208d67e54f5d43fcc4d0134590fb40d0d39e196b974fa903ad02ac2932a\
                 d1cf43e2af220148ba2f5bb2b9c119088472e1eb0cf588b546f2df5a8e90427e",
            ),
            (
                64,
                "10c935992066384542cdd91ec26be395dfd5a58d7cae466118cc59290096b139\
                 c3b077ebe7db799fda16c5ff2b097788faa4cf46ae0487dee69663d2b17e0901\
                 013a136d5d826341d773b6133eed7c66943ae873c2f043298b188572bf8f26b8\
                 b1ad32a8ea259c351f2cd4e061de9b3794dd179c223b2248f19ae8909291b166\
                 bb52fb22f78acc839c8946f0fda37c04e2d6844a35adce45fe63b3b4924c5113\
                 06719765ea7a9c3134d235cb7b05c6d4666d5804630dec279cbd0f662788afc8\
                 7c522df92dbdb349d14ec8f741cc22b008e9bb53142527f7b2ee242fb90c738d\
                 043ce664261bbbd25a4628feb9c0379fb094d4beb0bb24bc273f1996b0a14468",
                "e025ff869583b28f0effe1e6e7fe8cede034743c53b15a784e5e88a98f2c7200\
                 8a9529b25e08f6336a2790fe5b3df6ea30724475c5e6d80cfaf309663d3499ad",
            ),
            (
                64,
                "d1856e59922814f83fc399a1e052e0381400307afc8436ec54b04e11e347fee0\
                 1610c375e8281107049c951a2e37bdf6df997a572f894566f88d60e839b75eb6\
                 b8c1e56dec5db36619c6dfe9bd9b619d2bedd54376977ca490cd84c8b3f88969\
                 00c15ba7676c02fec668ff745524d5174124c8a69753e58f649b42191bb387e3\
                 3638ad8d200006b553ab7e25bd7a204a6965dce95b67870dbc1d2344378f610a\
                 a24e6486e1bfc87407b6e363bf464a20ebd897728a7b6a07df7baeafd0351ec8\
                 8c2907f970514f242cb2b69521305c800ea684aaec36976616de6cc3ad4cc604\
                 3bf41e50965fa3ab08c68025acdf5d511bf728f948411510a96ee3e8987d62a6\
                 f8d532f21b91cdf3e31bc77a28fc557d5af20dc86843ecefe0529d875770f895\
                 0bf4ca47c78ed4e207d816fc5d2e4deb13c0ba7d12e525ea02b32206b3cc93bb\
                 bc7a6eb762ffc062bb26f213131e4b838e88b7820fcfc7e859b8f8cf743a38ff\
                 538fa6",
                "a44e15fbe202712ac2fdb0ba84d81e55bc89455d74379a742ca3861e68c9d3eb\
                 1322d8c61dfa5008835556cb4bbe24644065bd159f15c74d562fdbb18d38d931",
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// EC-KCDSA
// ---------------------------------------------------------------------------------------

struct EcKcdsaVector {
    source: &'static str,
    valid: bool,
    msg: &'static str,
    qx: &'static str,
    qy: &'static str,
    r: &'static str,
    s: &'static str,
}

/// [GO-K] `eckcdsa/testcases_p256_sha256_test.go`, reproducing KCMVP
/// `EC-KCDSA_(P-256)(SHA-256)_SGT.txt` (signatures that must verify) and `_SVT.txt` (the
/// verification test: valid signatures verify, the ones the file marks as failing do not).
#[test]
fn ec_kcdsa_p256_sha256_matches_kcmvp_sgt_and_svt() {
    for v in [
        EcKcdsaVector {
            source: "SGT #0",
            valid: true,
            msg: "93b38ece8aa1c0e5633b04676e0faced97b17f217521a782190720b537cd90ab\
                 e21de45b6acda867a3cb78651bf8721a899821760148ab8d2309cc5cf0766aa1\
                 63903a8b75435d91c71f4e30815025de9e5976f247a5d4d76a633f442dd089c4\
                 6955fb62dea52fab344892e886a457bd8c0e6e0e22f0375e387b887df5fcc7cb",
            qx: "7a010cce56d2cdf9ba5b8483f4641914650541feed4b41a056688f199204d4bf",
            qy: "bed08099040972e8372c3a63df73b3c8f3d94cb2242c258770ba5db031d0fadf",
            r: "a34d0b562dfefe0bbe71d465ad94a6abc40003b413eb9bb8bb079b89815dd313",
            s: "1fbc4cac222e8b9a70367cb4e5bc27f89a2378ebcadb458c5e879e32bfb18d05",
        },
        EcKcdsaVector {
            source: "SGT #1",
            valid: true,
            msg: "0f5b96cb21c2fb671701569257ab27a3d37bfc2aaf0b74859e5dbf039c4682d4\
                 3739879b028d22dd65abb71b6a4438e1b80b1e8d57fdb01b73c003b6bb1fa367\
                 8d304d8e8d238f8fda4fd75b7d75b6344bd2da69caf89a5359017a6234249b72\
                 8326724816c8b466fb9ee20f976d56be638c3dd4005368cdb82655b83115624e",
            qx: "fe70b944acc94d5a77082031f9bf9da5e942735eafe5c1510307281bbb29d8c5",
            qy: "6674f43b5b3016e0424e068584f2c0b2fdbbcdf46b403e23c063af528f83c19a",
            r: "e0e2321cf8b618aedafaec0e0629741f36e14ff93ff7bdb9a44c608a83e522a9",
            s: "5de51bd7ba26fbcc349e4d1202e8ef47dafe7b6d1c51e0bf36ed18d71672913e",
        },
        EcKcdsaVector {
            source: "SVT #0",
            valid: true,
            msg: "9e2e7f3d44e9d01e2c8ceb76f07f7558dec520ec3fb9a7225db2facf531f07eb\
                 65250c49013dcb880fe89f84b8f4c6144f61ce59836e986683d1c19233aaf928\
                 2c320cd79eb02893c1bf2b39066477c6a20f2156a3f3f7c233d932243ee44800\
                 0b54c35c02ce83a74a38548155a4466f135fa08ae7a7e7121907d727d1f8ba65",
            qx: "1200cfc0b312b25f6a4d40003625a043b31d533fd1d1a3a90dfdc8d4549350ac",
            qy: "e8ebd1a68ca3f201774500cda2c0b628fbca0298793bb13902165cf9f4514aab",
            r: "761b5c36706bd4148af7db729872c824a07987b0a4d0ae1fa2489787a93afc87",
            s: "6e35b838499497f970d6b8ebfef90b5d3f7adf4d7c0df19ba6708d8b6b3fa1da",
        },
        EcKcdsaVector {
            source: "SVT #1",
            valid: true,
            msg: "b2feb3dcca8114faa56ab2e531fcfa210e5c036592901a2ac1c2a511b81838ca\
                 9a111ea380d112697e4189bf31683897fded3af56424879f918e0de99c373f3e\
                 82d848967428c27763392ab47161e48737740e3c74dcec002e5c3a10c6f128f0\
                 0ab846bbd0422b4b1e38225b68c69f4bee98c4a4c1f9c51373d86c01002b895e",
            qx: "34983e6e19b8fd1e69a9c6bed5625767c4c110967da6ba845032993d89413698",
            qy: "88b51848a8ae9ecea4423efdd04bab8eadac5f1c539973377964ba4ad77838f1",
            r: "da62575f94e4b87106fdcfc83e546ef42553ba60ca3c38907ef7025e8a2f7049",
            s: "ff0f363c40e99506319b992125bd073ccaf9d505cf4971039a2d6c4189a0b26f",
        },
        EcKcdsaVector {
            source: "SVT #2",
            valid: true,
            msg: "9d91e269e53d559ead6818327ef4857e8a0c5ff4c576f165334c02bccedf4d3a\
                 fb0da1baded14efd8d5711967a551d6803fe695c914cf43127eb2012cf90cce7\
                 cf0456e603a6347b57b53800af1b4758431884f0b77bc02af8c32fc529ec2f3e\
                 9c2b2aba3165508011af46861e8a7b2011423c50971f40cf6fb5cc3fe02815a5",
            qx: "cdb2ca9a859a8d85796eb2b9a41a8371f93e7ba822538a8d2bc2136ca1a2e068",
            qy: "ca566ae0ce903139a9c50a6aefe7d03abf7d7434d196cacbcc7420ea2b6cc40a",
            r: "7874bee81f5031c1191176d7cad5a462fe42575592cfca63afec7367202ce9d1",
            s: "c594498417a1771f7ea8c10d0fd59957ae1d3e8b5931e687e2b746b7304308d3",
        },
        EcKcdsaVector {
            source: "SVT #3",
            valid: true,
            msg: "9b0aa94d9e319d49dabce6cfca7cb9bfcae2c49b3ba9c3df085c90fd6164aade\
                 d9aecd45c9b08b1733e286cfee54482468933a34bb75d221700c72969f490503\
                 cf93ec0e45ec2a171fc97337f15417a23a2f4cdb756af29904d146c5cf3b9483\
                 cf0270a55b4d82716b4a6225b316971fc864371324933f31466718adc6f65d8a",
            qx: "db5ca350ffcd24c21b4ea96b346f718ec5fefb171df25d9aa462fc17e4404755",
            qy: "0d87b5480c33405123fa0eaea4066d332bba4a04a28f61d4455c31e503b51d7f",
            r: "362e3b6eac12457c6bf51d768386436a3d6a4cf1395dc3a934042f5a14f9e303",
            s: "b1072b6a658918d10c7baec758397768d528106aabdae627223e95f9926f2f3e",
        },
        EcKcdsaVector {
            source: "SVT #4",
            valid: false,
            msg: "096d0f3b82c5d34c06b2c2007d640e01a2e5646b43fe5a1e53977a44818fcd47\
                 7e9e5bfd844a726065673c89b140653c26e35fd8179b10dfe21d5fef2a80896b\
                 01689ca193930fab9930cbe82416a537f26b9eddf2aad44028ad975387af80f7\
                 f8d5f10f3548ed9b9a61ad9f91f9d71bd05bc2d800e8b16304ef66e875c30146",
            qx: "7e5c2b5c91ef3f1faebb9ca339340b05b07c67732f9dfec72be900451ee73761",
            qy: "f10b19cf2c12b2be2ffb25b00fa37f52c1a42e8decc489d4d0243ae062351e27",
            r: "6366b11769b1404c62ac80d8b39140c789a69ee075f24641ce760422059e12d5",
            s: "80452846360a0316d49db3ecdff743abddf54ae8cad3d21d0eb59a16b0fdeabe",
        },
        EcKcdsaVector {
            source: "SVT #7",
            valid: false,
            msg: "5268cdcb70b5977ae6e037e1e71466a0b7a162f442558800e54a749c9d711d11\
                 7d5a0ca6997d1b6d4ba6e33100a73ff65cf30ce710629b280ca5d96368aace88\
                 ca9557a38a66cc2a680a71af09ef59641bc9b34f50b510990f4fa6eb0b041a27\
                 a221d88831e97f703e4376e4ac36150dd0d091b4a3a91016e3a80000622e3793",
            qx: "039836ebe248114d6058d1ebaa1c58152b02fd38f36a13525a875e975d76ea4b",
            qy: "bfa5766627e1d6f2f74afa39d094e22312d16f6bf10e2acda34d4f78b38159fa",
            r: "ae1c16ce132cdf77884f43beee7a07c93dc05658d93812c300d2ce9edc297f12",
            s: "b0ed66d25cb9ea1e3287333b35e4854bd48f7c194ef4162951262e361fd60c5e",
        },
    ] {
        let public = unhex(&format!("04{}{}", v.qx, v.qy));
        let signature = unhex(&format!("{}{}", v.r, v.s));
        let result = ec_kcdsa_verify(&public, &unhex(v.msg), &signature);
        assert_eq!(
            result.is_ok(),
            v.valid,
            "EC-KCDSA_(P-256)(SHA-256) {}: {result:?}",
            v.source
        );
    }
}

// ---------------------------------------------------------------------------------------
// KCDSA
// ---------------------------------------------------------------------------------------

struct KcdsaVector {
    source: &'static str,
    valid: bool,
    msg: &'static str,
    x: &'static str,
    y: &'static str,
    r: &'static str,
    s: &'static str,
}

fn check_kcdsa(set: &str, (p, q, g): (&str, &str, &str), vectors: &[KcdsaVector]) {
    let params = KcdsaParams::new(&unhex(p), &unhex(q), &unhex(g)).unwrap();
    for v in vectors {
        if v.valid {
            let key = KcdsaKeyPair::from_private(&params, &unhex(v.x)).unwrap();
            assert_eq!(
                hex::encode(key.public_key()),
                v.y,
                "{set} {} public key",
                v.source
            );
        }
        let signature = unhex(&format!("{}{}", v.r, v.s));
        let result = kcdsa_verify(&params, &unhex(v.y), &unhex(v.msg), &signature);
        assert_eq!(result.is_ok(), v.valid, "{set} {}: {result:?}", v.source);
    }
}

/// `KCDSA_(2048)(224)(SHA-224)_SVT.txt` domain parameters.
const KCDSA_2048_224_SHA224_P: &str = "8ebaf0658e1c4d432bfc2835fee088cc9e5edb8fd06aeb48177594f9b2dc31e3\
     7517ecedfb018f827380a24daba5d916aedeaa9d7dc767dc760e81e635bd7610\
     efab9c199c03f6a6ae2b1fc825e9824e08c756f69ae4356a0dcc7bc46c227b6f\
     abedcc1cd61d04720a1b790c254bfce0811bb657761a57d3764e438ce2c0b33d\
     04ba28ef043a575fe8a062727fa4bb122c2eadeb1eb30b81e36702a25a4aad20\
     a96a9ee28594b232385ed740d8291fd6cb97b25ac18207c1af33e2e86b16ddad\
     55bf4c49938f3f31b1dfd806dc9a637220f693005d33863655920eb5a0ff2e49\
     22c138d12ba99112f9312cceb2ee55dbc079e3d6a3c5d1cbdddec6b6e7bdd19f";
const KCDSA_2048_224_SHA224_Q: &str = "8d492391758cdfafdf2f1ded9c7c1a6b28a3faf259da6ff1878eee07";
const KCDSA_2048_224_SHA224_G: &str = "6ec9c5ea61cdaa4163dcc4da8c5fec6cc5469cdc3d86169a9e022da08dc218c2\
     757183db9f7e9b49cf9e860c528e92f771ef4ed6c2d796a903d588bc0514219b\
     239ab94084b7ab83f90abef19bc012347c0d2ecfd0ee80d65c08861d54272fb6\
     48759e1ade2d55bad3c050e4f066670b36468398be6cba75fd518b8dae123773\
     c95cc81d789776c62cbfba0a8cc7ce0a2ec1040d87320d0e91a851c36f4bd1d1\
     c23140b548f9d994b8e4ecc3c73356b709b47563f56cebbe1048be3fccf3e021\
     7b996a1c022ed9026131f00677a17387d884336d28bc0f386b07b30c3ea36118\
     d057299d24685e9be7b1652508ab3aba36d03e37c8f9ee0579bbaedb58aff7dc";

/// `KCDSA_(2048)(256)(SHA-256)_SVT.txt` domain parameters.
const KCDSA_2048_256_SHA256_P: &str = "d837ad8cb841c9b7632fa91c157ba723adcdfdfc97ed24eda2fefc7cb50a84a8\
     85628d851bdc2225adf6cb179cfcbc3e28ceee4531c1fefcd06e4908ab742929\
     8492c74d6fe3b7bfd56206487a4c4f2497b1175c30f7c5f3ec333f4d1cf07e1a\
     e09de590321035025562708060debcaa543cfc8e3937643f156c448ebb7cc710\
     b5c5de216752dcfaec0b5c342fa42a8b6be0e10e3fb49d758a76f2caca6a19f9\
     b506bc6bd7c7c92c5afb37a3f917c33ad5928f991de4c8bf88783f1507a80495\
     984019e9abe3fe255c6bff7ec895740be187e3cb06bdf29be3b41141d6a2bf76\
     38f17d049e185c852fbbe358913cbfb2eddf2e91f069b2d5c4908a390a3a5b5b";
const KCDSA_2048_256_SHA256_Q: &str =
    "c2fbf4f74b4217a5a6bdec4b4485d5d1f31976bcbe726bb2c276800d083bd341";
const KCDSA_2048_256_SHA256_G: &str = "90ae2720da48ab2b9c30ec6d05c3ebda7b044aa3fbd5bb1c750c246cf54125f4\
     9ebf4a45b3a50493f76c9a94dc7f8bccbc37b003ad914b5f5bb51428937fc116\
     edfae6641641f54e96f8de0027ca580821c5612f938d8a8a99d2e8d9c8f5b226\
     3c4076d9e0e664d751f49e0f3fbef889029c0448e1dd1f1a99fcc4051594f385\
     efac480ad66ddb920c3069f81f24f1191f0e256dc9a3095aca55081a1ca1f9b3\
     d6654b83cfcdefe83ae16d9e5562900f933f4258b1d48efe5e7ca77a0550003b\
     86d9023c641f9a80b97cd34c8f9cf3c2a350a27a74e7f438166c5dcb1c184e00\
     5c03e97ebd2494a1f849cd2a2b05ae9d3b793285e9b56aab7fb305fbd1f6f09a";

/// [GO-K] `kcdsa/testcases_2048_224_SHA224_test.go` and `kcdsa/testcases_2048_256_SHA256_test.go`,
/// reproducing KCMVP `KCDSA_(2048)(224)(SHA-224)_SVT.txt` and `KCDSA_(2048)(256)(SHA-256)_SVT.txt`:
/// COUNT 0 (valid: the private key gives the published public key and the signature
/// verifies) and COUNT 2 (marked failing: must not verify) of each.
#[test]
fn kcdsa_2048_matches_kcmvp_svt() {
    check_kcdsa(
        "KCDSA_(2048)(224)(SHA-224)_SVT",
        (
            KCDSA_2048_224_SHA224_P,
            KCDSA_2048_224_SHA224_Q,
            KCDSA_2048_224_SHA224_G,
        ),
        &[
            KcdsaVector {
                source: "SVT #0",
                valid: true,
                msg: "df7ed9ab6884f692a31752b549e8b3ad479a87b3f0b42869c307cdb20e4dc98b\
         724e4486a04a11e033fbd6b923ef1682a281611cdb443fb7751cfdfa42d01a73\
         fe615ce694ef5176c166533081cfbe1037857ef1f1079f82a8cd03c1f9cdedfe\
         27067c03e4d5d047b45cf5db63c637f471a818bcd553855107556e99b8f671dd\
         1ef1c3b83747f16efc4fae20d3f654f3425236ad336679d1c75894bf0ee11fe7\
         98401b8c3d755c2d12143a10e36d32f92456a49fbe6648daa3e095178f0fb61e\
         d27634acac7b03eff7ec1a62ac1d351b19ebf7133162076ae260572bd8e93ea9\
         958287ee445a2147327c9a754fe40794acb38b33504f14a74eb4892f8fbe08da\
         2eb956d0cdfd37eed4d4cc51f5859ecbf0b786d0e60c15e13b1ea20061c5aa29\
         73d7a87615350fc8756b8ba6d0ac344b7e69d463c65ef98d884ae11e03210537\
         c2024faff5bdbbde35217bcb19ed4dc879a02a0fccf4f44b964b4db833d740cc\
         03c6e4f04a369565bd3b06bf12c5b6218b9f059ddb6484e0549bb3a1b6d9ccd9\
         a31ac657fe2b3eb53d6a5e2b03978258e60eaa7edf2b703c351eac545a006076\
         985920a9fe0ea0526ec47f5e3eb00e9b45fe25ccc9b0c575351f96f4f308fbe3\
         6149e2534239ede690c92c4f1d43fb3eeae94c489740dacada51984e5f9ce68b\
         0516c46ccaeda0456a5fee9e006d38be9fafba5d",
                x: "6ee602b8815abe058e731ce10552fad89e07c623d1898f4b2cc7c316",
                y: "4bf94f782b0aca739d31830b798c589b62037eb3c216c9e0f795b9df044545b3\
       ac0871926bd4f707018a33584e1145f6bb596b3239562ea38e9dca7fcca5439d\
       1ebe7ae87316232e922ad4da792dc8540e6ed4d782051ae9c86acb587d915608\
       eb534b411266fccbeb3aacc6cb1a8d47d29b349df5680b4c32af6f4f97cb7109\
       ea0895f9f1737939e7f0dca6bf52888961a4cfced17e72508f7ac6d6d6ffb309\
       a9deeba3c7f7270cc32e926f339a2ea0847237d369f7ad329498051b9221e151\
       a272f0ea38d2f77bc2292b2604b7c646fb080dd11fbeb8590803a3a654bac52c\
       f4a82ce0496d0918958f95c567e31df1ff92171f7eff75b4520f3b9a7f79d23e",
                r: "3610cf67c006e65a449c298dea7be30dc199bdb7226ee60d4fb82be7",
                s: "4c42687e08185574fdcddf21854a51c56b5d98a5789b31e098351c09",
            },
            KcdsaVector {
                source: "SVT #2",
                valid: false,
                msg: "87a6a4aaef908433ccb36eecf9fabfd79fcc133d1229fc267f309e25b086973e\
         73a8212ee8bdc4de40e1994a3372759fbd75e5df548b6ecc4785e86c5a256ede\
         5a01c0d8c8277e8f41802a53d76f5b9ceecafae7dfa40714eff5b99bd9aa725a\
         8025634103af4db6c6ed45daabdcee961c55f7a20bac655f907279b955d5a6ed\
         71b1756cd7ddd4a80bb0971a3d4eb33c75c40ac6f87e30f78b171935c30c11bd\
         016ae8c049e5c0a3987753b7e5fe392872f1eb6f90a2180f8c2511e6dd5fc6d5\
         4b3b360f249fc2cd391837bbc2d213d9d3ddd7228443d4bf8309610a2687dd29\
         b43b6292fe8d97350492869aba55e0b79eaf95cd4b38230caa539249e9e17995\
         e6a5f6e933d901d0580c0c2e7cba451224b973c42800ccdd84c0b3b23877c2dd\
         d6dd031fe954cd7cdad41fba7fddef22fe7347c523bd9e06da315ebdeef8eaad\
         c17125a40d78cc0078619aea014193080a7e70f40c3f7241bdb1b247afba2a9a\
         28157e515266dc0a6751e1d10a12efca70a2d3df7dfb262f88735899e4bfc41f\
         d9a5b86836e8de2f266be1e96923c95ba1cfe07bd60fa25bddd18061c1ac00a0\
         e7260690fe6fbfee7b9e0f16b3f1ec91531f8d244040d436a44de2b641d3306a\
         aec521dcb71571ad720066a3499e2f2c88d257a1acfcb51c1193bf182629adb1\
         d2d64cc4359cf0ba63ce6b4350f66fd58650461d",
                x: "06606f6b5574a44de8d2a503428369351da551e715e593e40421087d",
                y: "13694fe8e67072fc43201818fa2761143b36c2344e26221f8909f44999bcc580\
       8ca51e369f48f22f285c4fd83a4681802887850a2f2e641be80bea22e814b954\
       633ab853c3796eafb435d38df988b06fc31cf1bac582bbb121eb2ed078bbf0fe\
       50e0b87adf842e37826e12ccadfb2f05009e9ca32ee0cd2abf24bbabeaf97550\
       3b394b62812e6d6b31201eb950ee4916acb4790e1c919dddf177553173b8c60f\
       e58c5b89288261db8f373e25ee96ecc2b3aa8f7169910a5d6dd1b8c9233b87f6\
       ac6a7927997fe43d41f3454adbf4037a946d1a4b5065e957afb9b6a7a4644b9a\
       97515efd30d6523f90f73e1789a8ed4cdb4dc9bb34b3cffd42cd37457fc135dc",
                r: "455a9631f86690bb4da3e9173bb11844d366b6790588b26d35b1f984",
                s: "3807b8b6a2a08eb6825dda6a30d412bdc413b18bae8388f8e7821a64",
            },
        ],
    );
    check_kcdsa(
        "KCDSA_(2048)(256)(SHA-256)_SVT",
        (
            KCDSA_2048_256_SHA256_P,
            KCDSA_2048_256_SHA256_Q,
            KCDSA_2048_256_SHA256_G,
        ),
        &[
            KcdsaVector {
                source: "SVT #0",
                valid: true,
                msg: "c0a2e1e6be81dbeac94c0e678809141e8921efccc67fd9585120aa401e6df5e6\
         381d81bc6ee154cec1bde5c8882fabe2b00faddc095d3971f1c36a635f2aad98\
         a704dd58e0bb2e315af08a8a07e07d6842b36e7cd5fe39e8b53ed8e64a9949af\
         b6a355d6047c5b7b9d08ce73fa848de1e949b9595e0532f92c286ba094d7b2b0\
         132a957851fc96bb9c13d06edaedaa275af9594b607e4087e900e4927b6998ca\
         76b58ca9c97a62aa6f04f292aa5468ba4fd0674f1fdb4c1d8b3049e6c63d74d2\
         9e4677fbf39d0aa539b7df1af35a23c58cc43e8e68f704f0b607ecebc2a78745\
         52c6d52adf74a0b621f08d6ac9080119dbb486548f16dfda19bd641a4765db48\
         620772162876008b5b5b3710c5cfee3011662c1a71e31c6068739014b39c3eab\
         a5c45ecceb82cb7c1f8d60c00a889f2c0987657c7070c1ad612f99a1ecd84ce1\
         fa9ff47dd2e06e89ae00d456427590d5a5adb0437b399e94c8e4eeb15f0f6309\
         4921d5840e3d1a5a521ba7d79f3d089dd258d25c052148916c67475e059eaee9\
         81bdec6555b2cb3d5b283670dcf3129f83ecdade0b7320c8227ba4e85a491ded\
         98cd6ac8eabd432a245b23753c10839bb2b81c0710e24b04c7c54cb7663f682b\
         9093c88193460dc20ed25b638774f9fb63f2383f2288b9b940d8d05db6131162\
         6e38c98ba29b7d4b828e11de1168d7d1a2b71113",
                x: "28b14ed806d64755ef9192f36aec7aadbb68666910a9bc039e532a322e7bfc91",
                y: "8a249e41d76190398b78b15b2affab64a433d692493063edb3bcaf9a27a91c3a\
       47f99e79ebd9ce5763ed898bbdb89d6013206a3cc16db2d88d935d59a55c5432\
       2782bd9957613f2a3704c1472ec34183e39d613497f20915fc959fb564af5ee3\
       d47ab1e31674b275a5178a638a72f5fc4d783901b20c8bb56e124391d6b7c455\
       1f32d41c0a39c2e8b5312bbec18e17df75a7f559eb3304ffc54d4fde1cdbfd2c\
       22dd5cb354f050e18691e91c12cc7b83e85af38d892e26491b01d9d0a8590d64\
       c290eea34331a9c8ad59c4bea966a89e54a25caf22499dfa01845566d210cdba\
       04f3596698d211331045cc921895d81fb74587340cb426dd9e6ed36186b26fc4",
                r: "7695e32661d5b59a0b6f193457d61c7b4ecf53e7dfa21c5166836eea26a8674f",
                s: "147da0dd0d162e933fedc4e784b7ac2c82bf9ecb2d9c313fed7e1af128243c9d",
            },
            KcdsaVector {
                source: "SVT #2",
                valid: false,
                msg: "f74befe3999c17c3ecd98b7cc7758cf6eb30410c62ab15081b26a7827d6529d7\
         16589f14fd74dd8d2e5cbef36ad65d2ad393dda9eada89ae1597c60e53dbb7e3\
         4c4f00e65fa68ac1db9cb9130578f27d17b0db75e7a2492f49fa305eefc58f1b\
         d7b9b5af00bac89a842c038cc70c79a4da64e2babb1d44f9abb6ee9626e8a4e9\
         bbc869ad625ecebb7e4729f62a69aabd0235a1ab108ff3e5f5da11c21430701d\
         c556d10755685730e8d2c1d1eb90c24c4350d161d7615630aa1db3d61bb1f6f2\
         8ae3a8c9efd7a66baa57668514ab883e138b2fde4b27f68214e1f6aee9a9c007\
         669bb0ec8dd28a48720ac062f4094ae9b563840ded9be2ea472b020f717bdf67\
         7f4db54bd5a75609b6c77aa12223de0a30fe9ebf879fb4df1dac08a3eeb5ef82\
         c1748aafb6cde65ab7124b60809aa3c5562955af2b3e8b403abb4300e50b1230\
         e1320bc364e29e4d7a15f0aa33367fa8c05b897e32ab10540758f3a22259f3b4\
         5d4f1b205dad6b5ecea52d6cade7e0a7ceb120b73f3f73cbb82a61ebb7a4c2b7\
         773ea542681cc2704b3dd180a5c7bd20a9ef0acc3b7f6cbb4881e02a02193b48\
         3f179d9092469ece4e01b1a61b1693d942843e1758143da37954c890a50ca1e2\
         879efe58316a842b00bcaa85573c6afd5186bcd911d0ac6bd6437b3c8dfabc66\
         ee3acbd0e3ee81a14de1a0aee8cacf2259b18b3e",
                x: "1180232bb85cf7149e8be4d15b61b02b5565b298276083aea6ad3dd41d60d5b4",
                y: "19a40b118ce05ee0acb0f98db0879590b76e0a86a53cc7ba3f1db39859bbd68c\
       3ad749b63fee4ff9cf13e652408fd53f547ceee435b95d9c41ebebc8adc206dc\
       f97a0bda7fe200f270fcfeca6b3c8a3de9beb2acd964a48ee442b4e422b5a07b\
       ca7cda14200465b787bc96d5609e1d5427a86717f4db4e3a6493f0d250f9f50d\
       b3eb83d519bf2fa9d8b4752985e5d720deedee39c7407a0b9607b5cace912abc\
       17600dd390af851c033c74b304585371708b0a1a79dd0cf9dfbca30827f44ce0\
       8d8d6697c8a8384fef5154011cb5ae12533cf8cdba1a2082a620708d85ec76f5\
       1e91cd4a6ffc98ec141bf443d400a0bfbaa1a42137b22118808898f0aa14eefa",
                r: "80713f78d3e493f9d127270910661d6189d6d075a853e14b72f3b35adfed96a9",
                s: "57f0e3cddf1157217f02e610277b144ded59ba68f4e8f5ae7ad586d848ac75a5",
            },
        ],
    );
}
