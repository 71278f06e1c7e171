//! Known answers for HAS-160 (offered only inside HMAC, for legacy peers) and EC-KCDSA
//! verification, written here by hand from the cited KISA/TTA documents.

use haetae_crypto::has160::Has160;
use haetae_crypto::kcdsa::{EcKcdsaKeyPair, ec_kcdsa_verify};
use haetae_crypto::mac::{HmacHash, hmac};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

/// TTAS.KO-12.0011/R2 (HAS-160), the test messages of its appendix.
#[test]
fn has160_matches_the_tta_standard_examples() {
    for (message, digest) in [
        (&b""[..], "307964ef34151d37c8047adec7ab50f4ff89762d"),
        (b"a", "4872bcbc4cd0f0a9dc7c2f7045e5b43b6c830db8"),
        (b"abc", "975e810488cf2a3d49838478124afce4b1c78804"),
        (
            b"message digest",
            "2338dbc8638d31225f73086246ba529f96710bc6",
        ),
        (
            b"abcdefghijklmnopqrstuvwxyz",
            "596185c9ab6703d0d0dbb98702bc0f5729cd1d3c",
        ),
        (
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "cb5d7efbca2f02e0fb7167cabb123af5795764e5",
        ),
        (
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "07f05c8c0773c55ca3a5a695ce6aca4c438911b5",
        ),
    ] {
        assert_eq!(
            hex::encode(Has160::digest(message)),
            digest,
            "{:?}",
            String::from_utf8_lossy(message)
        );
    }
}

/// HMAC-HAS-160 is RFC 2104 over HAS-160 (64-byte block): checked against the definition
/// computed with the `Has160` type directly, for a short key and a key longer than a block.
#[test]
fn hmac_has160_is_rfc_2104_over_has160() {
    for key in [&b"key"[..], &[0xaa; 100][..]] {
        let mut k0 = if key.len() > 64 {
            Has160::digest(key).to_vec()
        } else {
            key.to_vec()
        };
        k0.resize(64, 0);
        let ipad: Vec<u8> = k0.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k0.iter().map(|b| b ^ 0x5c).collect();
        let mut inner = Has160::new();
        inner.update(&ipad);
        inner.update(b"The quick brown fox jumps over the lazy dog");
        let inner = inner.finalize();
        let mut outer = Has160::new();
        outer.update(&opad);
        outer.update(&inner);
        assert_eq!(
            hmac(
                HmacHash::Has160,
                key,
                b"The quick brown fox jumps over the lazy dog"
            ),
            outer.finalize()
        );
    }
}

const EC_KCDSA_MESSAGE: &[u8] = b"This is a sample message for EC-KCDSA implementation validation.";

/// KISA, EC-KCDSA source-code manual (P-256, SHA-256) and KISA-WP-2011-0022 (P-256,
/// SHA-256): the published public keys and signatures verify, through the public API only.
#[test]
fn ec_kcdsa_verifies_the_kisa_p256_signatures_and_rejects_altered_ones() {
    for (qx, qy, r, s) in [
        (
            "4829D795 FA134536 7B55BA09 CC6E10DA 20B42DD7 5F980E91 E5EE14EA 75701FF2",
            "63DB1BE5 9253C399 68CCFD61 22ACC8B7 31F3EACE 2EB005DE 711A1F5E 96ABD97F",
            "0055529A E29603F9 D7ACEC4A 2B7A6CC8 51D73155 5EBB8B58 DC7C0C02 CFB35AE6",
            "4D1BED4D BADB43A9 A179A708 3FD679E9 4BCF3E1B DFE5E009 792FA35F 65A9487D",
        ),
        (
            "61D4ECD0 385E17FC 300D45EC 7B2630C4 C45A8602 A9CAC191 BF5B1EC6 AA2C3344",
            "5E6D9361 1B1A6FF6 707269A1 2153313C 0269359D D71E3D20 8E6154D0 AC364C6E",
            "CB376EDE B670D86D 53120246 BA2F3CFE 10BF7EF3 97D3133C FC3C2483 022A308A",
            "17C6B60D 9CC5340E 89918742 83F94F06 FBD9B8CE 77F8BD93 F9B04A94 250BEF0A",
        ),
    ] {
        let public = unhex(&format!("04{qx}{qy}"));
        let signature = unhex(&format!("{r}{s}"));
        ec_kcdsa_verify(&public, EC_KCDSA_MESSAGE, &signature).unwrap();
        let mut altered = signature.clone();
        altered[63] ^= 1;
        assert!(ec_kcdsa_verify(&public, EC_KCDSA_MESSAGE, &altered).is_err());
        assert!(ec_kcdsa_verify(&public, b"another message", &signature).is_err());
    }
}

/// A key made from the manual's private scalar has the manual's public key.
#[test]
fn ec_kcdsa_public_key_is_the_inverse_scalar_times_g_as_in_the_kisa_manual() {
    let key = EcKcdsaKeyPair::from_scalar(&unhex(
        "45EC2DF3 E517515A 0C370E56 00C86A20 A851E0A6 5BFE114B F1743778 F0E96EA7",
    ))
    .unwrap();
    assert_eq!(
        hex::encode_upper(key.public_key_sec1()),
        "044829D795FA1345367B55BA09CC6E10DA20B42DD75F980E91E5EE14EA75701FF2\
         63DB1BE59253C39968CCFD6122ACC8B731F3EACE2EB005DE711A1F5E96ABD97F"
    );
    let signature = key.sign(EC_KCDSA_MESSAGE).unwrap();
    ec_kcdsa_verify(&key.public_key_sec1(), EC_KCDSA_MESSAGE, &signature).unwrap();
}
