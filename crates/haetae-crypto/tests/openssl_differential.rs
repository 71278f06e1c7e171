//! Differential tests against the `openssl` command (OpenSSL 3, legacy provider for SEED):
//! 8 KiB encrypted by haetae and by OpenSSL under the same key and IV must be identical.
//! Ignored by default because they need the `openssl` binary; CI installs it (`.ci/apt-packages`)
//! and runs ignored tests.

use std::io::Write;
use std::process::{Command, Stdio};

use haetae_crypto::{CipherSuite, SymmetricCipher};

fn openssl_enc(cipher: &str, key: &[u8], iv: &[u8], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args([
            "enc",
            &format!("-{cipher}"),
            "-provider",
            "legacy",
            "-provider",
            "default",
        ])
        .args(["-K", &hex::encode(key), "-iv", &hex::encode(iv)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command is needed: install the `openssl` package");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl enc -{cipher} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sample() -> Vec<u8> {
    (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn agree(suite: &str, openssl_name: &str) {
    let suite = CipherSuite::parse(suite).unwrap();
    let key: Vec<u8> = (0..suite.cipher.key_len() as u8)
        .map(|i| i.wrapping_mul(37) ^ 0x5c)
        .collect();
    let iv: Vec<u8> = (0..suite.nonce_len() as u8)
        .map(|i| i.wrapping_mul(11) ^ 0xa3)
        .collect();
    let input = sample();
    let ours = SymmetricCipher::new(suite, &key)
        .unwrap()
        .encrypt(&iv, &[], &input)
        .unwrap();
    assert_eq!(
        ours,
        openssl_enc(openssl_name, &key, &iv, &input),
        "{suite} differs from OpenSSL"
    );
}

#[test]
#[ignore = "needs the openssl command"]
fn seed_cbc_agrees_with_openssl() {
    agree("SEED-128-CBC", "seed-cbc");
}

#[test]
#[ignore = "needs the openssl command"]
fn aria_cbc_and_ctr_agree_with_openssl() {
    agree("ARIA-128-CBC", "aria-128-cbc");
    agree("ARIA-256-CBC", "aria-256-cbc");
    agree("ARIA-256-CTR", "aria-256-ctr");
}

#[test]
#[ignore = "needs the openssl command"]
fn aes_cbc_and_ctr_agree_with_openssl() {
    agree("AES-192-CBC", "aes-192-cbc");
    agree("AES-256-CTR", "aes-256-ctr");
}
