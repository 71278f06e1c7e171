//! Known-answer tests for digests, MACs, KDFs and DRBGs, each set from its official source
//! (cited per test).

use haetae_crypto::BlockCipherKind;
use haetae_crypto::drbg::{CtrDrbg, HmacDrbg};
use haetae_crypto::hash::{HashAlgorithm, digest};
use haetae_crypto::kdf::{KdfHash, hkdf, pbkdf2_unchecked};
use haetae_crypto::mac::{HmacHash, cmac, gmac, hmac};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

/// FIPS 180-4 and FIPS 202 "abc" examples (NIST "Examples with Intermediate Values").
#[test]
fn sha2_and_sha3_of_abc_match_the_nist_examples() {
    for (alg, expected) in [
        (
            HashAlgorithm::Sha224,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
        ),
        (
            HashAlgorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            HashAlgorithm::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlgorithm::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        (
            HashAlgorithm::Sha512_256,
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
        ),
        (
            HashAlgorithm::Sha3_256,
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
        ),
        (
            HashAlgorithm::Lsh256,
            "5fbf365daea5446a7053c52b57404d77a07a5f48a1f7c1963a0898ba1b714741",
        ),
    ] {
        assert_eq!(hex::encode(digest(alg, b"abc")), expected, "{}", alg.name());
    }
}

/// RFC 4231 test cases 1 and 2 (HMAC-SHA-256/384/512) and RFC 2202 test case 1 (HMAC-SHA-1).
#[test]
fn hmac_matches_rfc_4231_and_rfc_2202() {
    let key1 = [0x0b; 20];
    assert_eq!(
        hex::encode(hmac(HmacHash::Sha256, &key1, b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hex::encode(hmac(HmacHash::Sha384, &key1, b"Hi There")),
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"
    );
    assert_eq!(
        hex::encode(hmac(HmacHash::Sha512, &key1, b"Hi There")),
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
    );
    assert_eq!(
        hex::encode(hmac(
            HmacHash::Sha256,
            b"Jefe",
            b"what do ya want for nothing?"
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex::encode(hmac(HmacHash::Sha1, &key1, b"Hi There")),
        "b617318655057264e28bc0b6fb378c8ef146be00"
    );
}

/// RFC 4493 section 4 (AES-128-CMAC), examples 1-4.
#[test]
fn aes_cmac_matches_rfc_4493() {
    let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
    let m = unhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
    );
    for (len, tag) in [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ] {
        let got = cmac(BlockCipherKind::Aes128, &key, &m[..len]).unwrap();
        assert_eq!(hex::encode(got), tag, "{len}-byte message");
    }
}

/// NIST CAVP `gcmEncryptExtIV128.rsp`, a vector with empty plaintext and 128-bit AAD: the
/// tag is the GMAC of the AAD.
#[test]
fn aes_gmac_matches_a_nist_cavp_gcm_vector_with_empty_plaintext() {
    let tag = gmac(
        BlockCipherKind::Aes128,
        &unhex("77be63708971c4e240d1cb79e8d77feb"),
        &unhex("e0e00f19fed7ba0136a797f3"),
        &unhex("7a43ec1d9c0a5a78a0b16533a6213cab"),
    )
    .unwrap();
    assert_eq!(hex::encode(tag), "209fcc8d3675ed938e9c7166709dd946");
}

/// RFC 5869 Appendix A, test cases 1 and 3 (HKDF-SHA-256).
#[test]
fn hkdf_matches_rfc_5869() {
    let okm = hkdf(
        KdfHash::Sha256,
        Some(&unhex("000102030405060708090a0b0c")),
        &[0x0b; 22],
        &unhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    .unwrap();
    assert_eq!(
        hex::encode(okm.as_slice()),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    let okm = hkdf(KdfHash::Sha256, None, &[0x0b; 22], &[], 42).unwrap();
    assert_eq!(
        hex::encode(okm.as_slice()),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
}

/// RFC 7914 section 11 (PBKDF2-HMAC-SHA-256), both vectors.
#[test]
fn pbkdf2_matches_rfc_7914() {
    assert_eq!(
        hex::encode(pbkdf2_unchecked(KdfHash::Sha256, b"passwd", b"salt", 1, 64).as_slice()),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
         49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    );
    assert_eq!(
        hex::encode(pbkdf2_unchecked(KdfHash::Sha256, b"Password", b"NaCl", 80_000, 64).as_slice()),
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
         a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
    );
}

/// RFC 9106 section 5.3 (Argon2id test vector: secret and associated data, m=32, t=3, p=4).
#[test]
fn argon2id_matches_rfc_9106() {
    let params = argon2::ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap())
        .output_len(32)
        .build()
        .unwrap();
    let argon = argon2::Argon2::new_with_secret(
        &[0x03; 8],
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    )
    .unwrap();
    let mut tag = [0u8; 32];
    argon
        .hash_password_into(&[0x01; 32], &[0x02; 16], &mut tag)
        .unwrap();
    assert_eq!(
        hex::encode(tag),
        "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    );
}

/// NIST CAVP `drbgvectors_no_reseed/HMAC_DRBG.rsp`, [SHA-256], no prediction resistance,
/// empty personalization and additional input, COUNT 0 and 1: instantiate, generate 1024
/// bits twice, the second output is `ReturnedBits`.
#[test]
fn hmac_drbg_matches_nist_cavp() {
    for (entropy, nonce, returned) in [
        (
            "ca851911349384bffe89de1cbdc46e6831e44d34a4fb935ee285dd14b71a7488",
            "659ba96c601dc69fc902940805ec0ca8",
            "e528e9abf2dece54d47c7e75e5fe302149f817ea9fb4bee6f4199697d04d5b89\
             d54fbb978a15b5c443c9ec21036d2460b6f73ebad0dc2aba6e624abf07745bc1\
             07694bb7547bb0995f70de25d6b29e2d3011bb19d27676c07162c8b5ccde0668\
             961df86803482cb37ed6d5c0bb8d50cf1f50d476aa0458bdaba806f48be9dcb8",
        ),
        (
            "79737479ba4e7642a221fcfd1b820b134e9e3540a35bb48ffae29c20f5418ea3",
            "3593259c092bef4129bc2c6c9e19f343",
            "cf5ad5984f9e43917aa9087380dac46e410ddc8a7731859c84e9d0f31bd43655\
             b924159413e2293b17610f211e09f770f172b8fb693a35b85d3b9e5e63b1dc25\
             2ac0e115002e9bedfb4b5b6fd43f33b8e0eafb2d072e1a6fee1f159df9b51e6c\
             8da737e60d5032dd30544ec51558c6f080bdbdab1de8a939e961e06b5f1aca37",
        ),
    ] {
        let mut drbg = HmacDrbg::instantiate(&unhex(entropy), &unhex(nonce), &[]);
        let mut out = [0u8; 128];
        drbg.generate(&mut out, &[]).unwrap();
        drbg.generate(&mut out, &[]).unwrap();
        assert_eq!(hex::encode(out), returned.replace(' ', ""));
    }
}

/// NIST CAVP `drbgvectors_no_reseed/CTR_DRBG.rsp`, [AES-256 no df], no prediction
/// resistance, empty personalization and additional input, COUNT 0 and 1.
#[test]
fn ctr_drbg_matches_nist_cavp() {
    for (entropy, returned) in [
        (
            "df5d73faa468649edda33b5cca79b0b05600419ccb7a879ddfec9db32ee494e5531b51de16a30f769262474c73bec010",
            "d1c07cd95af8a7f11012c84ce48bb8cb87189e99d40fccb1771c619bdf82ab22\
             80b1dc2f2581f39164f7ac0c510494b3a43c41b7db17514c87b107ae793e01c5",
        ),
        (
            "3b6fb634d35bb386927374f991c1cbc9fafba3a43c432dc411b7b2fa96cfcce8d305e135ff9bc460dbc7ba3990bf8060",
            "083a836fe1cde053164555529409337dc4fec6844594fdf15083ba9d1001eb94\
             5c3b96a1bcee3990e1e51f85c80e9f4e04de34e57b640f6cae8ed68e99624712",
        ),
    ] {
        let mut drbg = CtrDrbg::instantiate(&unhex(entropy), &[]).unwrap();
        let mut out = [0u8; 64];
        drbg.generate(&mut out, &[]).unwrap();
        drbg.generate(&mut out, &[]).unwrap();
        assert_eq!(hex::encode(out), returned.replace(' ', ""));
    }
}
