//! Proxy-Wasm filter modules in the Control Center: what an upload must be (a Wasm binary
//! under the size cap, signed by a trusted key when keys are configured), and how publishing
//! pins the modules a policy names and hands their bytes to the gateways through the bus.

use std::sync::Arc;

use axum::http::StatusCode;
use haetae_core::policy::WASM_STORED_KEY;
use haetae_core::{PolicySnapshot, TrustedKey, WasmDeployConfig};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::wasm::WasmModuleInfo;

/// The module store's settings (`[wasm]` of the configuration).
#[derive(Debug, Clone)]
pub struct WasmSettings {
    /// Keys whose signatures are accepted; empty: signatures are optional (and kept).
    pub trusted: Vec<TrustedKey>,
    /// The largest module accepted, in bytes.
    pub max_module_bytes: u64,
}

impl Default for WasmSettings {
    fn default() -> Self {
        WasmSettings {
            trusted: Vec::new(),
            max_module_bytes: WasmDeployConfig::default().max_module_bytes,
        }
    }
}

impl WasmSettings {
    /// From the `[wasm]` section; a malformed key is an error naming it.
    pub fn from_config(config: &WasmDeployConfig) -> Result<WasmSettings, String> {
        Ok(WasmSettings {
            trusted: config.parsed_keys()?,
            max_module_bytes: config.max_module_bytes,
        })
    }
}

/// Module names: what policies and URLs carry.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.')
    {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            format!("{name:?}: a module name is 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'"),
        ))
    }
}

/// What an accepted upload is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// The signature, lowercase hex, when one was given.
    pub signature: Option<String>,
    /// The trusted key it verified against.
    pub key_id: Option<String>,
}

/// Checks an upload: size, the Wasm binary header, and the signature (128 hex digits) — required and verified when trusted keys are configured.
pub fn check_upload(
    settings: &WasmSettings,
    bytes: &[u8],
    signature: Option<&str>,
) -> Result<Checked, ApiError> {
    if bytes.len() as u64 > settings.max_module_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the module has {} bytes; the limit is {} (`[wasm] max_module_bytes`)",
                bytes.len(),
                settings.max_module_bytes
            ),
            Some("body"),
        ));
    }
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" || bytes[4..8] != [1, 0, 0, 0] {
        return Err(ApiError::invalid(
            "body",
            "not a WebAssembly module: the body must be the binary .wasm file (it starts \
             with \\0asm, version 1), sent as application/wasm",
        ));
    }
    let signature = match signature.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(decode_signature(text)?),
    };
    let key_id = match (&signature, settings.trusted.is_empty()) {
        (None, false) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsigned",
                "this Control Center accepts only modules signed by a trusted key \
                 (`[wasm] trusted_keys`): send the Ed25519 signature of the file in the \
                 X-Module-Signature header",
                Some("X-Module-Signature"),
            ));
        }
        (Some(sig), false) => Some(verify(&settings.trusted, bytes, sig).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_signature",
                "the signature does not verify against any trusted key (`[wasm] \
                 trusted_keys`): it must be the Ed25519 signature of the exact file bytes",
                Some("X-Module-Signature"),
            )
        })?),
        (_, true) => None,
    };
    Ok(Checked {
        sha256: hex::encode(Sha256::digest(bytes)),
        signature: signature.map(hex::encode),
        key_id,
    })
}

fn decode_signature(text: &str) -> Result<[u8; 64], ApiError> {
    let mut sig = [0u8; 64];
    hex::decode_to_slice(text, &mut sig).map_err(|_| {
        ApiError::invalid(
            "X-Module-Signature",
            "an Ed25519 signature is 64 bytes, sent as 128 hex digits",
        )
    })?;
    Ok(sig)
}

/// The id of the trusted key that verifies `sig` over `bytes`.
fn verify(trusted: &[TrustedKey], bytes: &[u8], sig: &[u8; 64]) -> Option<String> {
    trusted
        .iter()
        .find(|k| haetae_crypto::pk::ed25519_verify(&k.key, bytes, sig).is_ok())
        .map(|k| k.id.clone())
}

fn policy_error(field: &str, message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_policy",
        message,
        Some(field),
    )
}

/// Whether `policy` names this module version (by SHA-256 or by name and version).
#[must_use]
pub fn policy_uses(policy: &PolicySnapshot, module: &WasmModuleInfo) -> bool {
    policy.filters.iter().any(|f| match f.wasm_module_ref() {
        Some(Ok(r)) => {
            r.name == module.name
                && (r.sha256.as_deref() == Some(module.sha256.as_str())
                    || r.version.map(i64::from) == Some(module.version))
        }
        _ => false,
    })
}

/// Pins every store module `snapshot` names (`config.stored` of `wasm` filters): resolves
/// name and version (or SHA-256; neither: the newest version), fills in SHA-256, size and
/// signature, checks the signature again against the trusted keys, and writes the bytes to
/// the bus bucket gateways fetch them from. Returns the policy to publish.
pub async fn pin_modules(
    state: &AppState,
    snapshot: &PolicySnapshot,
) -> Result<PolicySnapshot, ApiError> {
    let mut out = snapshot.clone();
    let mut kv = None;
    for filter in &mut out.filters {
        let Some(r) = filter.wasm_module_ref() else {
            continue;
        };
        let field = format!("filters.{}.config.stored", filter.id);
        let mut r = r.map_err(|m| policy_error(&field, m))?;
        let found = match (&r.sha256, r.version) {
            (Some(sha), _) => state.store.wasm_module_by_digest(&r.name, sha).await?,
            (None, Some(v)) => state
                .store
                .wasm_module(&r.name, i64::from(v))
                .await?
                .map(|(m, _)| m),
            (None, None) => state
                .store
                .wasm_module_versions(&r.name)
                .await?
                .into_iter()
                .next(),
        };
        let Some(info) = found.filter(|m| r.version.is_none_or(|v| i64::from(v) == m.version))
        else {
            return Err(policy_error(
                &field,
                format!(
                    "filter {:?} names the Wasm module {:?}{}{}, which is not in the module \
                     store; upload it first (Wasm modules page or POST /api/v1/wasm-modules/{})",
                    filter.id,
                    r.name,
                    r.version.map(|v| format!(" v{v}")).unwrap_or_default(),
                    r.sha256
                        .as_deref()
                        .map(|h| format!(" sha256 {h}"))
                        .unwrap_or_default(),
                    r.name
                ),
            ));
        };
        let (_, bytes) = state
            .store
            .wasm_module(&info.name, info.version)
            .await?
            .ok_or_else(|| policy_error(&field, "the module was deleted meanwhile".into()))?;
        if !state.wasm.trusted.is_empty() {
            let sig = info
                .signature
                .as_deref()
                .and_then(|s| decode_signature(s).ok());
            if sig
                .and_then(|s| verify(&state.wasm.trusted, &bytes, &s))
                .is_none()
            {
                return Err(policy_error(
                    &field,
                    format!(
                        "the Wasm module {:?} v{} is not signed by a trusted key; upload a \
                         signed version",
                        info.name, info.version
                    ),
                ));
            }
        }
        r.version = u32::try_from(info.version).ok();
        r.sha256 = Some(info.sha256.clone());
        r.size = u64::try_from(info.size).ok();
        r.signature = info.signature.clone();
        r.key_id = info.key_id.clone();
        let value = serde_json::to_value(&r)
            .map_err(|e| policy_error(&field, format!("cannot write the reference: {e}")))?;
        if let Some(config) = filter.config.as_object_mut() {
            config.insert(WASM_STORED_KEY.to_owned(), value);
        }
        if kv.is_none() {
            kv = Some(modules_bucket(state).await?);
        }
        if let Some(kv) = &kv {
            haetae_bus::modules::put_module(&**kv, &info.sha256, &bytes)
                .await
                .map_err(|e| {
                    ApiError::bus(format!(
                        "cannot hand the Wasm module {:?} v{} to the gateways: {e}",
                        info.name, info.version
                    ))
                })?;
        }
    }
    Ok(out)
}

async fn modules_bucket(state: &AppState) -> Result<Arc<dyn haetae_bus::KvStore>, ApiError> {
    state
        .bus
        .kv(
            haetae_bus::modules::MODULE_BUCKET,
            std::time::Duration::ZERO,
        )
        .await
        .map_err(|e| ApiError::bus(format!("cannot open the bus bucket of Wasm modules: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(b"\x00\x04name");
        m
    }

    #[test]
    fn uploads_must_be_wasm_under_the_cap() {
        let s = WasmSettings {
            trusted: Vec::new(),
            max_module_bytes: 14,
        };
        assert!(check_upload(&s, &module(), None).is_ok());
        let e = check_upload(&s, b"\0asm\x01\0\0\x001234567", None).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = check_upload(&s, b"MZ\x90\0\0\0\0\0", None).unwrap_err();
        assert!(e.body.error.message.contains("not a WebAssembly module"));
        let e = check_upload(&s, &module(), Some("abc")).unwrap_err();
        assert_eq!(e.body.error.field.as_deref(), Some("X-Module-Signature"));
    }

    #[test]
    fn with_trusted_keys_only_their_signatures_pass() {
        let key = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[7; 32]);
        let other = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[8; 32]);
        let public = key.public_key();
        let s = WasmSettings {
            trusted: vec![TrustedKey {
                id: TrustedKey::id_of(&public),
                key: public,
            }],
            max_module_bytes: 1 << 20,
        };
        let bytes = module();
        let e = check_upload(&s, &bytes, None).unwrap_err();
        assert_eq!(e.body.error.code, "unsigned");
        let forged = hex::encode(other.sign(&bytes));
        let e = check_upload(&s, &bytes, Some(&forged)).unwrap_err();
        assert_eq!(e.body.error.code, "bad_signature");
        let mut changed = bytes.clone();
        changed.push(0);
        let sig = key.sign(&bytes);
        let e = check_upload(&s, &changed, Some(&hex::encode(sig))).unwrap_err();
        assert_eq!(e.body.error.code, "bad_signature");
        let upper = hex::encode_upper(sig);
        let ok = check_upload(&s, &bytes, Some(&upper)).unwrap();
        assert_eq!(ok.key_id, Some(TrustedKey::id_of(&public)));
        assert_eq!(ok.signature, Some(hex::encode(sig)));
        assert_eq!(ok.sha256, hex::encode(Sha256::digest(&bytes)));
    }
}
