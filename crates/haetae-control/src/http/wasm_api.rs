//! `/api/v1/wasm-modules`: the Proxy-Wasm module store. Upload a module version (the raw
//! `.wasm` bytes, optionally signed), list names and versions, download one, delete a
//! version no policy uses. A `wasm` filter names a module with
//! `config.stored = { name, version }`; publishing pins its SHA-256 and hands the bytes to
//! the gateways (see [`crate::wasm::pin_modules`]).

// utoipa's path macro writes qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::error::{ApiError, ApiQuery, ErrorBody};
use super::session::Principal;
use super::state::AppState;
use crate::auth::Permission;
use crate::store::now_micros;
use crate::store::wasm::{NewWasmModule, WasmModuleInfo};
use crate::wasm::{check_name, check_upload, policy_uses};

type ApiResult<T> = Result<T, ApiError>;

/// The header an upload carries its signature in (128 hex digits).
pub const SIGNATURE_HEADER: &str = "x-module-signature";

/// Upload options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Free text kept with the version (at most 500 bytes).
    pub description: Option<String>,
}

fn parse_version(text: &str) -> ApiResult<i64> {
    text.parse::<i64>().ok().filter(|v| *v >= 1).ok_or_else(|| {
        ApiError::invalid(
            "version",
            format!("{text:?} is not a version number (1, 2, ...)"),
        )
    })
}

/// The newest version of every module.
#[utoipa::path(get, path = "/api/v1/wasm-modules", tag = "wasm",
    responses((status = 200, body = [WasmModuleInfo]), (status = 403, body = ErrorBody)))]
pub async fn list_modules(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<WasmModuleInfo>>> {
    p.require(Permission::Read, "read the Wasm modules")?;
    Ok(Json(state.store.wasm_modules().await?))
}

/// Stores a new version of module `name`: the body is the binary `.wasm` file
/// (`application/wasm`), at most `[wasm] max_module_bytes`. With trusted keys configured
/// the `X-Module-Signature` header (the Ed25519 signature of the file, 128 hex digits) is
/// required and must verify against one of them.
#[utoipa::path(post, path = "/api/v1/wasm-modules/{name}", tag = "wasm",
    params(("name" = String, Path), UploadQuery,
        ("X-Module-Signature" = Option<String>, Header, description = "Ed25519 signature of the file, 128 hex digits")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = WasmModuleInfo), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_module(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<WasmModuleInfo>)> {
    p.require(Permission::EditPolicy, "upload Wasm modules")?;
    let cap = state.wasm.max_module_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the module is larger than {cap} bytes (`[wasm] max_module_bytes`)"),
            Some("body"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > cap
    {
        return Err(too_large());
    }
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    let bytes = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::invalid("body", format!("cannot read the upload: {e}"))
            }
        })?
        .to_bytes();
    // Checked after the body is read (up to the cap), so the connection stays usable.
    check_name(&name)?;
    let description = q.description.unwrap_or_default();
    if description.len() > 500 {
        return Err(ApiError::invalid("description", "at most 500 bytes"));
    }
    let signature = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::invalid("X-Module-Signature", "not ASCII; send 128 hex digits")
        })?),
    };
    let checked = check_upload(&state.wasm, &bytes, signature)?;
    let stored = state
        .store
        .insert_wasm_module(&NewWasmModule {
            name: &name,
            sha256: &checked.sha256,
            bytes: &bytes,
            signature: checked.signature.as_deref(),
            key_id: checked.key_id.as_deref(),
            description: &description,
            uploaded_by: &p.actor,
            uploaded_at: now_micros(),
        })
        .await?;
    state
        .store
        .append_audit(
            &p.actor,
            "wasm.upload",
            &format!("wasm module {name} v{}", stored.version),
            &json!({
                "sha256": stored.sha256,
                "size": stored.size,
                "signed": stored.signature.is_some(),
                "key_id": stored.key_id,
            }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Every version of module `name`, newest first.
#[utoipa::path(get, path = "/api/v1/wasm-modules/{name}/versions", tag = "wasm",
    params(("name" = String, Path)),
    responses((status = 200, body = [WasmModuleInfo]), (status = 404, body = ErrorBody)))]
pub async fn list_versions(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<WasmModuleInfo>>> {
    p.require(Permission::Read, "read the Wasm modules")?;
    check_name(&name)?;
    let versions = state.store.wasm_module_versions(&name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no Wasm module {name:?}")));
    }
    Ok(Json(versions))
}

/// The bytes of one version (`application/wasm`); its SHA-256 in `X-Module-Sha256`.
#[utoipa::path(get, path = "/api/v1/wasm-modules/{name}/versions/{version}", tag = "wasm",
    params(("name" = String, Path), ("version" = i64, Path)),
    responses((status = 200, content_type = "application/wasm", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn get_module(
    State(state): State<AppState>,
    p: Principal,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    p.require(Permission::Read, "read the Wasm modules")?;
    check_name(&name)?;
    let version = parse_version(&version)?;
    let (info, bytes) = state
        .store
        .wasm_module(&name, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no Wasm module {name:?} v{version}")))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/wasm"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-v{}.wasm\"",
        info.name, info.version
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.sha256) {
        h.insert("x-module-sha256", v);
    }
    Ok(resp)
}

/// Deletes one version, unless the draft or the latest published policy names it (409).
#[utoipa::path(delete, path = "/api/v1/wasm-modules/{name}/versions/{version}", tag = "wasm",
    params(("name" = String, Path), ("version" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_module(
    State(state): State<AppState>,
    p: Principal,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    p.require(Permission::EditPolicy, "delete Wasm modules")?;
    check_name(&name)?;
    let version = parse_version(&version)?;
    // Under the publish lock: no policy naming it can be published meanwhile.
    let _guard = state.publish_lock.lock().await;
    let (info, _) = state
        .store
        .wasm_module(&name, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no Wasm module {name:?} v{version}")))?;
    let draft = state.store.draft().await?;
    let published = match state.store.latest_version_number().await? {
        Some(v) => state.store.version(v).await?,
        None => None,
    };
    for (which, policy) in [("draft", draft), ("published policy", published)] {
        if let Some(policy) = policy
            && policy_uses(&policy, &info)
        {
            return Err(ApiError::conflict(
                "version",
                format!(
                    "the {which} uses Wasm module {name:?} v{version}; remove it from the \
                     policy (and publish) first"
                ),
            ));
        }
    }
    state.store.delete_wasm_module(&name, version).await?;
    state
        .store
        .append_audit(
            &p.actor,
            "wasm.delete",
            &format!("wasm module {name} v{version}"),
            &json!({ "sha256": info.sha256 }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
