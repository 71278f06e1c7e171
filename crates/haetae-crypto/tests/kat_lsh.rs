//! LSH known answers. The `"abc"` digests are the examples published with the standard
//! (KS X 3262 / the KISA LSH specification, reproduced in the Wikipedia LSH article); the
//! empty-message digest is the one Crypto++'s LSH test data lists (generated with KISA's
//! reference code).

use haetae_crypto::lsh::{Lsh256, Lsh512};

fn lsh256(out: usize, msg: &[u8]) -> String {
    let mut h = Lsh256::with_output_len(out).unwrap();
    h.update(msg);
    hex::encode(h.finalize())
}

fn lsh512(out: usize, msg: &[u8]) -> String {
    let mut h = Lsh512::with_output_len(out).unwrap();
    h.update(msg);
    hex::encode(h.finalize())
}

#[test]
fn lsh_256_256_of_abc_matches_the_standard() {
    assert_eq!(
        lsh256(32, b"abc"),
        "5fbf365daea5446a7053c52b57404d77a07a5f48a1f7c1963a0898ba1b714741"
    );
}

#[test]
fn lsh_256_224_of_abc_matches_the_standard() {
    assert_eq!(
        lsh256(28, b"abc"),
        "f7c53ba4034e708e74fba42e55997ca5126bb7623688f85342f73732"
    );
}

#[test]
fn lsh_256_256_of_the_empty_message_matches_the_reference_data() {
    assert_eq!(
        lsh256(32, b""),
        "f3cd416a03818217726cb47f4e4d2881c9c29fd445c18b66fb19dea1a81007c1"
    );
}

#[test]
fn lsh_512_family_of_abc_matches_the_standard() {
    assert_eq!(
        lsh512(28, b"abc"),
        "d1683234513ec5698394571ead128a8cd5373e97661ba20dcf89e489"
    );
    assert_eq!(
        lsh512(32, b"abc"),
        "cd892310532602332b613f1ec11a6962fca61ea09ecffcd4bcf75858d802edec"
    );
    assert_eq!(
        lsh512(48, b"abc"),
        "5f344efaa0e43ccd2e5e194d6039794b4fb431f10fb4b65fd45e9da4ecde0f27\
         b66e8dbdfa47252e0d0b741bfd91f9fe"
    );
    assert_eq!(
        lsh512(64, b"abc"),
        "a3d93cfe60dc1aacdd3bd4bef0a6985381a396c7d49d9fd177795697c3535208\
         b5c57224bef21084d42083e95a4bd8eb33e869812b65031c428819a1e7ce596d"
    );
}
