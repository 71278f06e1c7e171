//! Known-answer tests for the public-key algorithms with deterministic outputs. RSA-OAEP and
//! RSA-PSS are randomized; their official-vector coverage is the Wycheproof run in
//! `tests/wycheproof.rs` (data not vendored), besides the round-trip and rejection tests in
//! `src/pk.rs` (see docs/crypto.md).

use haetae_crypto::pk::{
    EcdhP256Secret, EcdsaCurve, EcdsaKeyPair, Ed25519KeyPair, X25519Secret, ecdsa_verify,
    ed25519_verify,
};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

/// RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
#[test]
fn ed25519_matches_rfc_8032() {
    for (seed, public, message, signature) in [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ] {
        let seed: [u8; 32] = unhex(seed).try_into().unwrap();
        let key = Ed25519KeyPair::from_seed(&seed);
        assert_eq!(hex::encode(key.public_key()), public);
        let sig = key.sign(&unhex(message));
        assert_eq!(hex::encode(sig), signature);
        assert!(ed25519_verify(&unhex(public), &unhex(message), &sig).is_ok());
    }
}

/// RFC 7748 section 6.1 (X25519 Diffie-Hellman between Alice and Bob).
#[test]
fn x25519_matches_rfc_7748() {
    let alice: [u8; 32] = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        .try_into()
        .unwrap();
    let bob: [u8; 32] = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        .try_into()
        .unwrap();
    let alice = X25519Secret::from_bytes(alice);
    let bob = X25519Secret::from_bytes(bob);
    assert_eq!(
        hex::encode(alice.public_key()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        hex::encode(bob.public_key()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert_eq!(
        hex::encode(*alice.agree(&bob.public_key()).unwrap()),
        shared
    );
    assert_eq!(
        hex::encode(*bob.agree(&alice.public_key()).unwrap()),
        shared
    );
}

/// RFC 6979 Appendix A.2.5 (ECDSA, P-256, SHA-256, message "sample"): deterministic k.
#[test]
fn ecdsa_p256_matches_rfc_6979() {
    let key = EcdsaKeyPair::from_scalar(
        EcdsaCurve::P256,
        &unhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"),
    )
    .unwrap();
    let sig = key.sign(b"sample");
    assert_eq!(
        hex::encode_upper(&sig),
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
         F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    );
    assert!(ecdsa_verify(EcdsaCurve::P256, &key.public_key_sec1(), b"sample", &sig).is_ok());
}

/// RFC 6979 Appendix A.2.6 (ECDSA, P-384, SHA-384, message "sample").
#[test]
fn ecdsa_p384_matches_rfc_6979() {
    let key = EcdsaKeyPair::from_scalar(
        EcdsaCurve::P384,
        &unhex(
            "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8\
             96D5724E4C70A825F872C9EA60D2EDF5",
        ),
    )
    .unwrap();
    let sig = key.sign(b"sample");
    assert_eq!(
        hex::encode_upper(&sig),
        "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C\
         81A648152E44ACF96E36DD1E80FABE46\
         99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F\
         A329C145786E679E7B82C71A38628AC8"
    );
}

/// RFC 5903 section 8.1 (256-bit random ECP group): both sides' keys and the shared x.
#[test]
fn ecdh_p256_matches_rfc_5903() {
    let i = EcdhP256Secret::from_scalar(&unhex(
        "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
    ))
    .unwrap();
    let r = EcdhP256Secret::from_scalar(&unhex(
        "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
    ))
    .unwrap();
    let gi = unhex(
        "04 DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180
            5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
    );
    let gr = unhex(
        "04 D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63
            56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
    );
    assert_eq!(i.public_key_sec1(), gi);
    assert_eq!(r.public_key_sec1(), gr);
    let girx = "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de";
    assert_eq!(hex::encode(i.agree(&gr).unwrap().as_slice()), girx);
    assert_eq!(hex::encode(r.agree(&gi).unwrap().as_slice()), girx);
    // A point off the curve is refused, not multiplied.
    let mut off_curve = gr.clone();
    off_curve[64] ^= 1;
    assert!(i.agree(&off_curve).is_err());
}

/// NIST CAVS 14.1 ECC CDH primitive test vectors (SP 800-56A), P-256, COUNT = 0.
#[test]
fn ecdh_p256_matches_nist_cavs_ecc_cdh_count_0() {
    let ours = EcdhP256Secret::from_scalar(&unhex(
        "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534",
    ))
    .unwrap();
    let peer = unhex(
        "04 700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287
            db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac",
    );
    assert_eq!(
        hex::encode(ours.agree(&peer).unwrap().as_slice()),
        "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b"
    );
}
