//! Committed RSA-PSS and RSA-OAEP known answers (RSA-2048, SHA-256, MGF1-SHA-256), so these
//! run without `HAETAE_WYCHEPROOF_DIR`: verification of published signatures and decryption
//! of published ciphertexts with the published key. Both schemes are randomized, so the
//! checks go one way (verify / decrypt). Source, written here by hand:
//! C2SP Wycheproof @ `061657f12eed26eeab9b6548ce03f45219d0e7fe`,
//! `testvectors_v1/rsa_pss_2048_sha256_mgf1_32_test.json` (group 1, `publicKeyDer`; tcId 1,
//! 3, 7) and `testvectors_v1/rsa_oaep_2048_sha256_mgf1sha256_test.json` (group 1,
//! `privateKeyPkcs8`; tcId 1, 3, 7). Both files use the same 2048-bit key. (The RFC 8017 /
//! `pkcs-1v2-1` vectors use SHA-1 and 1024-bit keys, which haetae's policy refuses.)

use haetae_crypto::CryptoError;
use haetae_crypto::pk::{RsaKeyPair, RsaPublicKey};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

const PUBLIC_KEY_DER: &str = "30820122300d06092a864886f70d01010105000382010f003082010a0282010100\
     a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e6\
     37f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097\
     b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e\
     254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d981\
     4c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b\
     4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a19\
     69816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a4\
     5d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5\
     0203010001";

const PRIVATE_KEY_PKCS8: &str = "308204bd020100300d06092a864886f70d0101010500048204a7308204a302010002820101\
     00a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224\
     e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac88450\
     97b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c9\
     8e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d9\
     814c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece\
     6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a\
     1969816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1\
     a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9\
     d502030100010282010024cdc62317f5d72a6f6ba6cc9632899b01d1ff28867d\
     72f61688995bc855a4e420a8405250089bdb13cf8e09543827b748b9d27fbb2b\
     4d9e20af8c5a6a862796d1a4cc18ad16ea678bc1bd4a83bbbe9c5e57453b5ce7\
     388e41a3ba4ce2b77b4438a229e954f720dae0353dc088ac8a76b26dc276f8e1\
     b7851ddd6398ad16ff2e78195123b9b036e945c38c9d12434f6df76fe22359eb\
     3e1ac9c011678fc926fad3ae475a4fffff55feb2d147e9c894f4c0e29a599e76\
     2462482d968bf42780945fc0d2c31c573c4431b8f4fe8b8c67bec815abd44f7a\
     86edca1c2308737358d2c2ae5e2e0e2dadf730980262377e58b13b7d9992060a\
     0bc870ccfdb4a9319ee102818100dc431050f782e894fb5248247d98cb7d58b8\
     d1e24f3b55d041c56e4de086b0d5bb028bda42eeb5d234d5681e5809d415e6a2\
     89ad4cfbf78f978f6c35814f50eebff1c5b80a69f788e81e6bab5ddaa78369d6\
     59d143ec6f17e79813a575cfad9c569156b90113e2e9110ad9e7b48a1c9348a6\
     e653321191290ea36cfb3a5b18f102818100bd1a81e7977f9898122273ae3222\
     b598ea5fb19eb4eabc38308a5e32196603b2e500ffb79f5b886816611debc472\
     fac45544070beb057c941378a6868af3b7a03d3f9880ec47d5e089b94fbde542\
     aba9ae8d72c57088d7abf5b131f39098f7bc160f90536abc9492fd4e06f3ed72\
     99d4b97bb03677207d95669f140cfbc20f2502818100a94b528b28f291599121\
     d91952ffd1c7f21d7c1479d99d478885fb161870ee1218bf08472612dbe5497e\
     8d9c650688e09c786961ae3e2c354dc48ae34514759c4c23c4588488961dc06b\
     414e61c0e1e7fbbd2923d31532fe289f96da220711e58c14019808e004142769\
     33bb07e4efb9b4a9b37656917205209f33f09515d7c10281803af0e72a933aef\
     09ff2503df78bafed531c02ff1a2bc437c540cdcbd4ad35435cf511763596543\
     480629b114ca7f780ff7efa32ea0cb6e000d6d9ea1f2ef71fd9cf9948422a165\
     557e37e755edfe70d90b920502eb478bc98a63f788ce3a0f856d6ede7251a383\
     bfa8fa480a81a925af7b3cc538c4bab8c9f7597ffb68011d8d0281802640fbfb\
     cfefb163ee7a87b6483a66ee41f956d90fa8a7939bfc042ee0924b1b7993d044\
     5f758d51933e85179c0320b0c968b48a91c38b5be923e1097c0c562f88d42294\
     b6a2759bafa5428a74f1270874e45f6fcc60f21602de5eccd143cf31241f5921\
     b5ad3983fb54ef17be3b285367e50c999c67247b552fe4bfce945f7b";

/// Wycheproof `rsa_pss_2048_sha256_mgf1_32_test.json`, valid signatures tcId 1 (empty
/// message), 3 ("Test") and 7 (32 bytes e0..ff); each also fails on a flipped bit, on
/// another message, and when truncated.
#[test]
fn rsa_pss_2048_sha256_verifies_the_published_signatures() {
    let key = RsaPublicKey::from_spki_der(&unhex(PUBLIC_KEY_DER)).unwrap();
    for (tc_id, msg, sig) in [
        (
            1,
            "",
            "4f01e0c12b08625ecac89a69231906edf826380f37c959a96690d046316d68ff\
             ce9d5c471694fcebfc6b45534864689256e4fc81c78e583f675d0c94b4496474\
             51e81beff01a11a516d5e5ce3f1a910437cb8a3a5096b19fb15f4524a35b23d8\
             9cdba12cf5b71aac1047b28c562df7c5542c34ce23a182cf7e0e231934b17294\
             799d44877a1d68ef1b8f073619b7618e6b7c22db20030d98cf591ffc3d4da5f5\
             8613ecd5ecfc3b40a1d02f40891ca43695cd4c088b05a8054c89c595a47e2748\
             16f35384226f74459ee63e25a1bfc03c360490552ec38343f8ace502f065303b\
             00bc0ec320711b211fde92e57feb9013c3609342495ec0d7cabdec21e54acc38",
        ),
        (
            3,
            "54657374",
            "401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b3098\
             91d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f\
             5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9\
             f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea792569\
             0f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c\
             53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3\
             169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d772\
             77c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5",
        ),
        (
            7,
            "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
            "8bdd6db90323f3bf26a36a4ab5b92180c96881bd32b66317c4b48c2ba1421f84\
             34000c06adde4264c6ea2d5346468c6d5e97cb13d3cb932e523ac57b59c814fa\
             0397ca6dcc9bec4be1147d77abcd318a6aba1af46ede2f5640da06511a006fd1\
             bd5fb8e04be22789956adc47bbec7988be477150f9b24a07dff51530e8f0c14c\
             fef7d25ca141f512939987b7eb0825633d41a48742bd7f56d4db9733d92ac0f3\
             6b4041f51332695f551ec91076da2301120c438eb9ec197cbe318d4571b6b790\
             98d17eded0ca47747a143e34f882ad6e3f490f3a710ff7ec1bffce022027165d\
             96281e593180c67f44aeda9ce6605e6b8e5eac1347695dab211a965bb3d3f928",
        ),
    ] {
        let (msg, sig) = (unhex(msg), unhex(sig));
        assert_eq!(key.verify_pss(&msg, &sig), Ok(()), "tcId {tc_id}");
        let mut bad = sig.clone();
        bad[100] ^= 0x04;
        assert!(key.verify_pss(&msg, &bad).is_err(), "tcId {tc_id} altered");
        let mut other = msg.clone();
        other.push(0);
        assert!(
            key.verify_pss(&other, &sig).is_err(),
            "tcId {tc_id} other message"
        );
        assert!(
            key.verify_pss(&msg, &sig[1..]).is_err(),
            "tcId {tc_id} truncated"
        );
    }
}

/// Wycheproof `rsa_oaep_2048_sha256_mgf1sha256_test.json`, valid ciphertexts tcId 1 (empty
/// message), 3 ("Test") and 7 (32 bytes e0..ff), decrypted with the published PKCS#8 key;
/// an altered ciphertext fails with the one undistinguished error.
#[test]
fn rsa_oaep_2048_sha256_decrypts_the_published_ciphertexts() {
    let key = RsaKeyPair::from_pkcs8_der(&unhex(PRIVATE_KEY_PKCS8)).unwrap();
    assert_eq!(
        key.public_key(),
        RsaPublicKey::from_spki_der(&unhex(PUBLIC_KEY_DER)).unwrap()
    );
    for (tc_id, msg, ct) in [
        (
            1,
            "",
            "6e62bf24d95aff6868afec2a92a445b6458f16f688c19fe1212f66a631378316\
             53cedd359d8cff4dd485d77dfd55812c181373201f54aafd65730d2a304e6234\
             55d51125d891e65d97fce52341cae45fb64c38a384a1c621e2713ee6794633f0\
             29a9fd4d774f56551eac2176162e162640f25eab873a3451c475570f19228bce\
             de4c67c370a75ed7fabccd538c9819eff182481b10d42f1a9f6a05373b8cf9b7\
             1818d467bd3b8ebacb619e8ad42916e600c043effceb3855bc48a629e60ae886\
             f51b2a7876b0e623fb2ce68af4b039242f963adb0e4240aed0ed07f65f1ee7c0\
             cc77d210d0c2d1dc10c81b881aa0c9c9e9499665cf2970d2ccfeeb3191531765",
        ),
        (
            3,
            "54657374",
            "5eab3f0741e63986ed647d53e1cd71df041986900803d0f99c68355d249a15a4\
             7dc5b4f70a191477654299e5a2731f3b4eec76dea18262fc696ac794e5f66cbf\
             cddac4472c578e246c26707598055584540b839836b1404c5611ae558a984cee\
             8fd036cea924e0be2474a940f61e0acc14fcae95ebdc59942a9ce9af9a9c8199\
             9f7f6815f057ffdc2533cb15d6391d1e2d95f16f9c04209c889a4c359c7d2926\
             d28a66e2b030a416b928d2825627998e5191fb4983a6e65024262d94fc09187a\
             2d78162122433251d1bfcc8e507d06eba2d229c10031261da32ab8ccd15f1c5f\
             9fbf07ed158483d736a110af4b44d6a4da60d6cb519b4454213cf9f0dc560f2b",
        ),
        (
            7,
            "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
            "096958786ee7972050d67a9e4b69d6c6af7db7cc674386df725770dd29129b82\
             6e39552330104c8d71e6cc3a3014dd2f61b54153af51b0438d447ee939f9e3c1\
             3bb8b00a37dea6a068f6c9d27e848b1be7a1eeeb3ee50b78036fba95ae46948c\
             a5b13f356ea24db10f60dc09e4b8bad8f766b668ef72524432080a0ce00ed676\
             d6d5e354984b1078520412525848156d06f0652469f95791baa3d9a798ae5370\
             94f76f976faecd5c9ce0c930a75910c63dacf63485cb4b5e7bdbcf4d80e74037\
             eaa1a8fe4b52930bec6be99cf6ac88cf5878dbf6859d456a95dbc34654eec425\
             de84ca2a535d517403a9aada827e7d0093ecfc97ed056a7652825e9a45cb2dcb",
        ),
    ] {
        let ct = unhex(ct);
        let pt = key.decrypt_oaep(&ct).unwrap();
        assert_eq!(hex::encode(&*pt), msg, "tcId {tc_id}");
        let mut bad = ct.clone();
        bad[200] ^= 0x01;
        assert!(
            matches!(key.decrypt_oaep(&bad), Err(CryptoError::DecryptionFailed)),
            "tcId {tc_id} altered"
        );
    }
}
