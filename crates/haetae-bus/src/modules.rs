//! Proxy-Wasm module bytes on the bus, for gateways to fetch by SHA-256: the Control Center
//! writes a module before it publishes a policy that names it. A module is larger than one
//! NATS message may be (the server's `max_payload`, 1 MiB by default), so it is stored as
//! chunks of [`MODULE_CHUNK_BYTES`] under `<sha256>.<n>` and then a manifest under
//! `<sha256>` (`size chunks`, decimal ASCII). The manifest is written last, so a reader that
//! finds it finds every chunk. Entries never expire: they are content-addressed, so
//! rewriting one writes the same bytes.
//!
//! This module moves bytes only; the caller checks that they hash to the key (and any
//! signature).

use crate::{BusError, KvStore};

/// The bucket (see [`crate::Bus::kv`]) modules live in.
pub const MODULE_BUCKET: &str = "wasm_modules";
/// The size of one chunk: well under NATS' default `max_payload` with its headers.
pub const MODULE_CHUNK_BYTES: usize = 256 * 1024;

fn check_digest(sha256_hex: &str) -> Result<(), BusError> {
    if sha256_hex.len() == 64
        && sha256_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            what: "module digest",
            name: sha256_hex.to_owned(),
            rule: "64 lowercase hex digits (SHA-256)",
        })
    }
}

fn corrupt(sha256_hex: &str, message: String) -> BusError {
    BusError::Decode {
        what: "a Wasm module",
        location: format!("{MODULE_BUCKET}/{sha256_hex}"),
        message,
    }
}

/// Stores `bytes` under `sha256_hex` (which the caller computed), unless a complete copy
/// of the same size is already there.
pub async fn put_module(kv: &dyn KvStore, sha256_hex: &str, bytes: &[u8]) -> Result<(), BusError> {
    check_digest(sha256_hex)?;
    let chunks = bytes.len().div_ceil(MODULE_CHUNK_BYTES);
    let manifest = format!("{} {chunks}", bytes.len());
    if let Some(entry) = kv.get(sha256_hex).await?
        && entry.value == manifest.as_bytes()
    {
        return Ok(());
    }
    for (i, chunk) in bytes.chunks(MODULE_CHUNK_BYTES).enumerate() {
        kv.put(&format!("{sha256_hex}.{i}"), chunk, None).await?;
    }
    kv.put(sha256_hex, manifest.as_bytes(), None).await?;
    Ok(())
}

/// The bytes stored under `sha256_hex`; `Ok(None)` when there is no manifest. A module
/// larger than `max_bytes`, a missing chunk or a size that does not add up is an error.
pub async fn get_module(
    kv: &dyn KvStore,
    sha256_hex: &str,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, BusError> {
    check_digest(sha256_hex)?;
    let Some(entry) = kv.get(sha256_hex).await? else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&entry.value)
        .map_err(|_| corrupt(sha256_hex, "the manifest is not text".into()))?;
    let (size, chunks) = text
        .split_once(' ')
        .and_then(|(s, c)| Some((s.parse::<u64>().ok()?, c.parse::<usize>().ok()?)))
        .ok_or_else(|| {
            corrupt(
                sha256_hex,
                format!("the manifest {text:?} is not `size chunks`"),
            )
        })?;
    if size > max_bytes {
        return Err(corrupt(
            sha256_hex,
            format!("the module has {size} bytes, more than the {max_bytes} allowed"),
        ));
    }
    let size = usize::try_from(size).map_err(|_| corrupt(sha256_hex, "too large".into()))?;
    if chunks != size.div_ceil(MODULE_CHUNK_BYTES) {
        return Err(corrupt(
            sha256_hex,
            format!("{chunks} chunks cannot hold {size} bytes"),
        ));
    }
    let mut out = Vec::with_capacity(size);
    for i in 0..chunks {
        let chunk = kv
            .get(&format!("{sha256_hex}.{i}"))
            .await?
            .ok_or_else(|| corrupt(sha256_hex, format!("chunk {i} of {chunks} is missing")))?;
        if out.len() + chunk.value.len() > size {
            return Err(corrupt(
                sha256_hex,
                format!("chunk {i} overruns the size {size}"),
            ));
        }
        out.extend_from_slice(&chunk.value);
    }
    if out.len() != size {
        return Err(corrupt(
            sha256_hex,
            format!("the chunks hold {} bytes, not {size}", out.len()),
        ));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Bus;

    #[tokio::test]
    async fn a_module_larger_than_one_chunk_round_trips_and_is_checked() {
        let bus = Bus::in_process();
        let kv = bus.kv(MODULE_BUCKET, Duration::ZERO).await.unwrap();
        let digest = "ab".repeat(32);
        let bytes: Vec<u8> = (0..MODULE_CHUNK_BYTES * 2 + 17).map(|i| i as u8).collect();
        assert_eq!(get_module(&*kv, &digest, 1 << 30).await.unwrap(), None);
        put_module(&*kv, &digest, &bytes).await.unwrap();
        put_module(&*kv, &digest, &bytes).await.unwrap();
        assert_eq!(
            get_module(&*kv, &digest, 1 << 30).await.unwrap(),
            Some(bytes.clone())
        );
        let err = get_module(&*kv, &digest, 1000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 1000 allowed"), "{err}");
        kv.delete(&format!("{digest}.1")).await.unwrap();
        let err = get_module(&*kv, &digest, 1 << 30)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("chunk 1 of 3 is missing"), "{err}");
        kv.put(&digest, b"12 9", None).await.unwrap();
        let err = get_module(&*kv, &digest, 1 << 30)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("9 chunks cannot hold 12 bytes"), "{err}");
        assert!(get_module(&*kv, "../etc", 10).await.is_err());
    }
}
