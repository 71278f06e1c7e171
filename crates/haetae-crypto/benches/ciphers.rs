//! Criterion benchmarks: throughput of every cipher suite family over a 16 KiB message and
//! of the digests (SHA-256 beside LSH-256/512). `bench/crypto.sh` compares with OpenSSL.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haetae_crypto::hash::{HashAlgorithm, digest};
use haetae_crypto::{CipherSuite, SymmetricCipher};

const LEN: usize = 16 * 1024;

fn ciphers(c: &mut Criterion) {
    let mut group = c.benchmark_group("encrypt-16KiB");
    group.throughput(Throughput::Bytes(LEN as u64));
    let data = vec![0x5au8; LEN];
    for name in [
        "AES-256-GCM",
        "ARIA-256-GCM",
        "LEA-256-GCM",
        "SEED-128-GCM",
        "SEED-128-CBC",
        "LEA-128-CTR",
        "HIGHT-CTR",
    ] {
        let suite = CipherSuite::parse(name).unwrap();
        let cipher = SymmetricCipher::new(suite, &vec![1u8; suite.cipher.key_len()]).unwrap();
        let nonce = vec![2u8; suite.nonce_len()];
        group.bench_function(name, |b| {
            b.iter(|| {
                cipher
                    .encrypt(&nonce, &[], std::hint::black_box(&data))
                    .unwrap()
            });
        });
    }
    group.finish();
}

fn digests(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest-16KiB");
    group.throughput(Throughput::Bytes(LEN as u64));
    let data = vec![0x5au8; LEN];
    for alg in [
        HashAlgorithm::Sha256,
        HashAlgorithm::Lsh256,
        HashAlgorithm::Lsh512,
    ] {
        group.bench_function(alg.name(), |b| {
            b.iter(|| digest(alg, std::hint::black_box(&data)));
        });
    }
    group.finish();
}

criterion_group!(benches, ciphers, digests);
criterion_main!(benches);
