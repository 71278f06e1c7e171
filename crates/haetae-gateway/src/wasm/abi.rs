//! The host side of the Proxy-Wasm ABI v0.2.1: the per-instance [`Host`] state, the
//! per-call [`Call`] state the hostcalls read and write, and [`define_host_functions`],
//! which puts every implemented `env.proxy_*` and `wasi_snapshot_preview1.*` function into
//! a [`Linker`]. Imports a module declares that are not implemented here are linked to a
//! function that logs the import's name and traps (see `mod.rs`), so a module loads and
//! only fails if it really calls one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use wasmtime::{Caller, Error, Linker, Memory, StoreLimits, TypedFunc};

use crate::filter::{LocalResponse, Modification};
use crate::request::Attributes;

/// `proxy_status_t`.
pub(crate) mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const PARSE_FAILURE: i32 = 4;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// `wasi_errno_t`.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOTSUP: i32 = 58;
}

/// `proxy_map_type_t`.
const MAP_REQUEST_HEADERS: i32 = 0;
const MAP_REQUEST_TRAILERS: i32 = 1;
const MAP_RESPONSE_HEADERS: i32 = 2;
const MAP_RESPONSE_TRAILERS: i32 = 3;

/// `proxy_buffer_type_t`.
const BUFFER_REQUEST_BODY: i32 = 0;
const BUFFER_RESPONSE_BODY: i32 = 1;
const BUFFER_VM_CONFIGURATION: i32 = 6;
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

/// Bounds on what a module can make the host keep.
const MAX_SHARED_ENTRIES: usize = 10_000;
const MAX_SHARED_VALUE: usize = 64 * 1024;
const MAX_METRICS: usize = 1_000;
const MAX_RANDOM: usize = 64 * 1024;

/// Every import [`define_host_functions`] defines, as (module, name).
pub(crate) const DEFINED: &[(&str, &str)] = &[
    ("env", "proxy_log"),
    ("env", "proxy_get_log_level"),
    ("env", "proxy_get_current_time_nanoseconds"),
    ("env", "proxy_set_tick_period_milliseconds"),
    ("env", "proxy_get_buffer_bytes"),
    ("env", "proxy_get_buffer_status"),
    ("env", "proxy_set_buffer_bytes"),
    ("env", "proxy_get_header_map_size"),
    ("env", "proxy_get_header_map_pairs"),
    ("env", "proxy_set_header_map_pairs"),
    ("env", "proxy_get_header_map_value"),
    ("env", "proxy_add_header_map_value"),
    ("env", "proxy_replace_header_map_value"),
    ("env", "proxy_remove_header_map_value"),
    ("env", "proxy_get_property"),
    ("env", "proxy_set_property"),
    ("env", "proxy_send_local_response"),
    ("env", "proxy_continue_stream"),
    ("env", "proxy_get_shared_data"),
    ("env", "proxy_set_shared_data"),
    ("env", "proxy_done"),
    ("env", "proxy_set_effective_context"),
    ("env", "proxy_define_metric"),
    ("env", "proxy_record_metric"),
    ("env", "proxy_increment_metric"),
    ("env", "proxy_get_metric"),
    ("env", "abort"),
    ("wasi_snapshot_preview1", "fd_write"),
    ("wasi_snapshot_preview1", "fd_close"),
    ("wasi_snapshot_preview1", "fd_seek"),
    ("wasi_snapshot_preview1", "fd_fdstat_get"),
    ("wasi_snapshot_preview1", "clock_time_get"),
    ("wasi_snapshot_preview1", "random_get"),
    ("wasi_snapshot_preview1", "environ_sizes_get"),
    ("wasi_snapshot_preview1", "environ_get"),
    ("wasi_snapshot_preview1", "args_sizes_get"),
    ("wasi_snapshot_preview1", "args_get"),
    ("wasi_snapshot_preview1", "sched_yield"),
    ("wasi_snapshot_preview1", "proc_exit"),
];

/// What one loaded filter (all its instances) shares: its names, configurations, shared
/// data and metrics.
#[derive(Debug)]
pub(crate) struct Plugin {
    /// The filter instance id (`plugin_name`).
    pub name: Arc<str>,
    /// `plugin_root_id`.
    pub root_id: Arc<str>,
    /// `plugin_vm_id`.
    pub vm_id: Arc<str>,
    /// `PLUGIN_CONFIGURATION`.
    pub configuration: Bytes,
    /// `VM_CONFIGURATION`.
    pub vm_configuration: Bytes,
    /// `proxy_get/set_shared_data`: key → (value, cas).
    pub shared: Mutex<HashMap<Vec<u8>, (Bytes, u32)>>,
    /// `proxy_define_metric` and friends: (name, value).
    pub metrics: Mutex<Vec<(String, i64)>>,
}

/// The per-instance store data.
pub(crate) struct Host {
    pub plugin: Arc<Plugin>,
    pub limits: StoreLimits,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub tick_period_ms: u32,
    pub call: Call,
}

impl Host {
    pub(crate) fn new(plugin: Arc<Plugin>, limits: StoreLimits) -> Host {
        Host {
            plugin,
            limits,
            memory: None,
            alloc: None,
            tick_period_ms: 0,
            call: Call::default(),
        }
    }
}

/// Which callback is running (decides which maps are writable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CallPhase {
    #[default]
    Other,
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    Log,
}

/// The request as a callback sees it (a cheap copy: header values and the URI share
/// their bytes with the gateway's).
#[derive(Debug)]
pub(crate) struct RequestSnapshot {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub peer: SocketAddr,
    pub client_ip: IpAddr,
    pub tls: bool,
    pub service: Option<String>,
}

/// The response as a callback sees it.
#[derive(Debug)]
pub(crate) struct ResponseSnapshot {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

/// A `proxy_send_local_response`.
#[derive(Debug)]
pub(crate) struct LocalReply {
    pub response: LocalResponse,
    pub details: String,
}

/// What one callback sees and what it asked for.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub phase: CallPhase,
    pub request: Option<RequestSnapshot>,
    pub response: Option<ResponseSnapshot>,
    pub attributes: Attributes,
    pub local_reply: Option<LocalReply>,
    pub modifications: Vec<Modification>,
    pub new_body: Option<Bytes>,
    pub continued: bool,
    pub set_attributes: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------
// Memory helpers.

fn read(caller: &Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let data = memory.data(caller);
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else {
        return false;
    };
    memory.write(caller, ptr as u32 as usize, bytes).is_ok()
}

fn write_u32(caller: &mut Caller<'_, Host>, ptr: i32, v: u32) -> bool {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates (`proxy_on_memory_allocate` or
/// `malloc`) and writes its address and length to `ret_ptr` and `ret_len`.
fn give(
    caller: &mut Caller<'_, Host>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> Result<i32, Error> {
    let Some(alloc) = caller.data().alloc.clone() else {
        return Ok(status::INTERNAL_FAILURE);
    };
    let Ok(len) = i32::try_from(bytes.len()) else {
        return Ok(status::BAD_ARGUMENT);
    };
    // Never a null pointer, even for an empty value: SDKs read null as "absent".
    let ptr = alloc.call(&mut *caller, len.max(1))?;
    if ptr == 0 {
        return Ok(status::INTERNAL_FAILURE);
    }
    if !write(caller, ptr, bytes)
        || !write_u32(caller, ret_ptr, ptr as u32)
        || !write_u32(caller, ret_len, len as u32)
    {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    Ok(status::OK)
}

// ---------------------------------------------------------------------------------------
// Header maps.

/// The pseudo-headers SDKs expect in front of a map.
fn pseudo_headers(call: &Call, map: i32) -> Vec<(&'static str, Bytes)> {
    match map {
        MAP_REQUEST_HEADERS => call.request.as_ref().map_or_else(Vec::new, |r| {
            let authority = r
                .uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .or_else(|| {
                    r.headers
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let path = r
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
            vec![
                (":authority", Bytes::from(authority)),
                (":path", Bytes::from(path)),
                (
                    ":method",
                    Bytes::copy_from_slice(r.method.as_str().as_bytes()),
                ),
                (
                    ":scheme",
                    Bytes::from_static(if r.tls { b"https" } else { b"http" }),
                ),
            ]
        }),
        MAP_RESPONSE_HEADERS => call.response.as_ref().map_or_else(Vec::new, |r| {
            vec![(
                ":status",
                Bytes::copy_from_slice(r.status.as_str().as_bytes()),
            )]
        }),
        _ => Vec::new(),
    }
}

/// The map's headers (without pseudo-headers), or `None` for an unknown map.
fn headers(call: &Call, map: i32) -> Option<Option<&HeaderMap>> {
    match map {
        MAP_REQUEST_HEADERS => Some(call.request.as_ref().map(|r| &r.headers)),
        MAP_RESPONSE_HEADERS => Some(call.response.as_ref().map(|r| &r.headers)),
        MAP_REQUEST_TRAILERS | MAP_RESPONSE_TRAILERS => Some(None),
        _ => None,
    }
}

/// All pairs of a map, pseudo-headers first.
fn pairs(call: &Call, map: i32) -> Option<Vec<(Bytes, Bytes)>> {
    let h = headers(call, map)?;
    let mut out: Vec<(Bytes, Bytes)> = pseudo_headers(call, map)
        .into_iter()
        .map(|(k, v)| (Bytes::from_static(k.as_bytes()), v))
        .collect();
    if let Some(h) = h {
        for (k, v) in h {
            out.push((
                Bytes::copy_from_slice(k.as_str().as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            ));
        }
    }
    Some(out)
}

/// The Proxy-Wasm map serialization: count, (key length, value length)*, then each key
/// and value followed by a NUL.
pub(crate) fn serialize_pairs(pairs: &[(Bytes, Bytes)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parses a serialized map; `None` when it is malformed.
pub(crate) fn deserialize_pairs(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if data.is_empty() || data == [0] {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = u32_at(0)?;
    // Each pair takes at least 10 bytes; refuse counts the data cannot hold.
    if n > data.len() / 10 {
        return None;
    }
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut at = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for (kl, vl) in sizes {
        let key = data.get(at..at.checked_add(kl)?)?.to_vec();
        at = at.checked_add(kl + 1)?;
        let value = data.get(at..at.checked_add(vl)?)?.to_vec();
        at = at.checked_add(vl + 1)?;
        out.push((key, value));
    }
    (at <= data.len()).then_some(out)
}

/// The writable header map of this call for `map`, or the status to return.
fn writable(call: &mut Call, map: i32) -> Result<&mut HeaderMap, i32> {
    let phase = call.phase;
    match map {
        MAP_REQUEST_HEADERS
            if matches!(phase, CallPhase::RequestHeaders | CallPhase::RequestBody) =>
        {
            call.request
                .as_mut()
                .map(|r| &mut r.headers)
                .ok_or(status::NOT_FOUND)
        }
        MAP_RESPONSE_HEADERS
            if matches!(phase, CallPhase::ResponseHeaders | CallPhase::ResponseBody) =>
        {
            call.response
                .as_mut()
                .map(|r| &mut r.headers)
                .ok_or(status::NOT_FOUND)
        }
        // Headers outside their phases, unknown maps.
        MAP_REQUEST_TRAILERS | MAP_RESPONSE_TRAILERS => Err(status::UNIMPLEMENTED),
        _ => Err(status::BAD_ARGUMENT),
    }
}

/// Applies one header change to the call's copy and records it for the engine.
/// Pseudo-headers cannot be changed (the request line is not the filter's to rewrite).
fn modify(call: &mut Call, map: i32, m: Modification) -> i32 {
    if matches!(m, Modification::ReplaceBody(_)) {
        return status::BAD_ARGUMENT;
    }
    let headers = match writable(call, map) {
        Ok(h) => h,
        Err(s) => return s,
    };
    crate::proxy::apply_modification(headers, m.clone());
    call.modifications.push(m);
    status::OK
}

fn header_name(key: &[u8]) -> Option<HeaderName> {
    HeaderName::from_bytes(key).ok()
}

// ---------------------------------------------------------------------------------------
// Properties.

/// A property's value, from a path whose segments are separated by NUL (`request\0path`)
/// or, leniently, by dots (`request.path`).
fn property(caller: &Caller<'_, Host>, path: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(path).ok()?;
    let parts: Vec<&str> = if text.contains('\0') {
        text.split('\0').filter(|s| !s.is_empty()).collect()
    } else {
        text.splitn(3, '.').collect()
    };
    let host = caller.data();
    let call = &host.call;
    let owned = |s: &str| Some(Bytes::copy_from_slice(s.as_bytes()));
    match parts.as_slice() {
        ["plugin_name"] => owned(&host.plugin.name),
        ["plugin_root_id"] => owned(&host.plugin.root_id),
        ["plugin_vm_id"] => owned(&host.plugin.vm_id),
        ["request", rest @ ..] => {
            let r = call.request.as_ref()?;
            match rest {
                ["path"] => owned(r.uri.path_and_query().map_or("/", |p| p.as_str())),
                ["url_path"] => owned(r.uri.path()),
                ["query"] => owned(r.uri.query().unwrap_or("")),
                ["method"] => owned(r.method.as_str()),
                ["scheme"] => owned(if r.tls { "https" } else { "http" }),
                ["host"] => owned(
                    r.uri
                        .host()
                        .or_else(|| r.headers.get("host").and_then(|h| h.to_str().ok()))?,
                ),
                ["headers", name] => Some(Bytes::copy_from_slice(r.headers.get(*name)?.as_bytes())),
                ["headers"] => Some(Bytes::from(serialize_pairs(&pairs(
                    call,
                    MAP_REQUEST_HEADERS,
                )?))),
                _ => None,
            }
        }
        ["response", rest @ ..] => {
            let r = call.response.as_ref()?;
            match rest {
                ["code"] => owned(r.status.as_str()),
                ["headers", name] => Some(Bytes::copy_from_slice(r.headers.get(*name)?.as_bytes())),
                _ => None,
            }
        }
        ["source", rest @ ..] => {
            let r = call.request.as_ref()?;
            match rest {
                ["address"] => owned(&SocketAddr::new(r.client_ip, r.peer.port()).to_string()),
                ["port"] => owned(&r.peer.port().to_string()),
                _ => None,
            }
        }
        ["haetae", rest @ ..] => match rest {
            ["device_id"] => owned(call.attributes.device_id()?),
            ["user_id"] => owned(call.attributes.user_id.as_deref()?),
            ["service"] => owned(call.request.as_ref()?.service.as_deref()?),
            ["client_ip"] => owned(&call.request.as_ref()?.client_ip.to_string()),
            ["attributes", name] | [name] => owned(call.attributes.get(name)?),
            _ => None,
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The linker.

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn log_at(plugin: &str, level: i32, message: &str) {
    match level {
        0 => tracing::trace!(target: "haetae::wasm", filter = plugin, "{message}"),
        1 => tracing::debug!(target: "haetae::wasm", filter = plugin, "{message}"),
        2 => tracing::info!(target: "haetae::wasm", filter = plugin, "{message}"),
        3 => tracing::warn!(target: "haetae::wasm", filter = plugin, "{message}"),
        _ => tracing::error!(target: "haetae::wasm", filter = plugin, "{message}"),
    }
}

/// Defines every host function of [`DEFINED`] in `linker`.
#[allow(clippy::too_many_lines)]
pub(crate) fn define_host_functions(linker: &mut Linker<Host>) -> Result<(), Error> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32| -> i32 {
            if !(0..=5).contains(&level) {
                return status::BAD_ARGUMENT;
            }
            let Some(msg) = read(&caller, ptr, len) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            log_at(
                &caller.data().plugin.name,
                level,
                &String::from_utf8_lossy(&msg),
            );
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Caller<'_, Host>, ret: i32| -> i32 {
            let level = match tracing::level_filters::LevelFilter::current()
                .into_level()
                .unwrap_or(tracing::Level::ERROR)
            {
                tracing::Level::TRACE => 0,
                tracing::Level::DEBUG => 1,
                tracing::Level::INFO => 2,
                tracing::Level::WARN => 3,
                tracing::Level::ERROR => 4,
            };
            if write_u32(&mut caller, ret, level) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, Host>, ret: i32| -> i32 {
            if write(&mut caller, ret, &now_nanos().to_le_bytes()) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, Host>, period: i32| -> i32 {
            caller.data_mut().tick_period_ms = period as u32;
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, Host>,
         buffer: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> Result<i32, Error> {
            let bytes = match buffer_of(caller.data(), buffer) {
                Ok(b) => b,
                Err(s) => return Ok(s),
            };
            let start = start as u32 as usize;
            let max = max as u32 as usize;
            if start > bytes.len() {
                return Ok(status::BAD_ARGUMENT);
            }
            let end = start.saturating_add(max).min(bytes.len());
            give(&mut caller, &bytes[start..end], ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut caller: Caller<'_, Host>, buffer: i32, ret_len: i32, ret_flags: i32| -> i32 {
            let len = match buffer_of(caller.data(), buffer) {
                Ok(b) => b.len(),
                Err(s) => return s,
            };
            if write_u32(&mut caller, ret_len, len as u32) && write_u32(&mut caller, ret_flags, 0) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, Host>,
         buffer: i32,
         start: i32,
         size: i32,
         ptr: i32,
         len: i32|
         -> i32 {
            let Some(value) = read(&caller, ptr, len) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let call = &mut caller.data_mut().call;
            if buffer != BUFFER_REQUEST_BODY {
                return if buffer == BUFFER_RESPONSE_BODY {
                    // The engine does not rewrite response bodies (documented).
                    status::UNIMPLEMENTED
                } else {
                    status::BAD_ARGUMENT
                };
            }
            if call.phase != CallPhase::RequestBody {
                return status::NOT_FOUND;
            }
            let current = call
                .new_body
                .clone()
                .or_else(|| call.request.as_ref().and_then(|r| r.body.clone()))
                .unwrap_or_default();
            let start = (start as u32 as usize).min(current.len());
            let end = start
                .saturating_add(size as u32 as usize)
                .min(current.len());
            let mut body = Vec::with_capacity(current.len() - (end - start) + value.len());
            body.extend_from_slice(&current[..start]);
            body.extend_from_slice(&value);
            body.extend_from_slice(&current[end..]);
            call.new_body = Some(Bytes::from(body));
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut caller: Caller<'_, Host>, map: i32, ret: i32| -> i32 {
            let Some(p) = pairs(&caller.data().call, map) else {
                return status::BAD_ARGUMENT;
            };
            let size = serialize_pairs(&p).len();
            if write_u32(&mut caller, ret, size as u32) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, Host>,
         map: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> Result<i32, Error> {
            let Some(p) = pairs(&caller.data().call, map) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let data = serialize_pairs(&p);
            give(&mut caller, &data, ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, Host>, map: i32, ptr: i32, len: i32| -> i32 {
            let Some(data) = read(&caller, ptr, len) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let Some(new) = deserialize_pairs(&data) else {
                return status::PARSE_FAILURE;
            };
            let call = &mut caller.data_mut().call;
            let old: Vec<HeaderName> = match writable(call, map) {
                Ok(h) => h.keys().cloned().collect(),
                Err(s) => return s,
            };
            for name in old {
                modify(call, map, Modification::RemoveHeader(name));
            }
            for (k, v) in new {
                if k.first() == Some(&b':') {
                    continue;
                }
                let (Some(name), Ok(value)) = (header_name(&k), HeaderValue::from_bytes(&v)) else {
                    return status::BAD_ARGUMENT;
                };
                modify(call, map, Modification::AppendHeader(name, value));
            }
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, Host>,
         map: i32,
         kptr: i32,
         klen: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> Result<i32, Error> {
            let Some(key) = read(&caller, kptr, klen) else {
                return Ok(status::INVALID_MEMORY_ACCESS);
            };
            let call = &caller.data().call;
            let value = if key.first() == Some(&b':') {
                pseudo_headers(call, map)
                    .into_iter()
                    .find(|(k, _)| k.as_bytes() == key.as_slice())
                    .map(|(_, v)| v)
            } else {
                let Some(h) = headers(call, map) else {
                    return Ok(status::BAD_ARGUMENT);
                };
                let lower = key.to_ascii_lowercase();
                let name = std::str::from_utf8(&lower).unwrap_or("");
                h.and_then(|h| h.get(name))
                    .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            };
            match value {
                Some(v) => give(&mut caller, &v, ret_ptr, ret_len),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    for (import, replace) in [
        ("proxy_add_header_map_value", false),
        ("proxy_replace_header_map_value", true),
    ] {
        linker.func_wrap(
            "env",
            import,
            move |mut caller: Caller<'_, Host>,
                  map: i32,
                  kptr: i32,
                  klen: i32,
                  vptr: i32,
                  vlen: i32|
                  -> i32 {
                let (Some(key), Some(value)) =
                    (read(&caller, kptr, klen), read(&caller, vptr, vlen))
                else {
                    return status::INVALID_MEMORY_ACCESS;
                };
                if key.first() == Some(&b':') {
                    return status::BAD_ARGUMENT;
                }
                let (Some(name), Ok(value)) = (header_name(&key), HeaderValue::from_bytes(&value))
                else {
                    return status::BAD_ARGUMENT;
                };
                let m = if replace {
                    Modification::SetHeader(name, value)
                } else {
                    Modification::AppendHeader(name, value)
                };
                modify(&mut caller.data_mut().call, map, m)
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, Host>, map: i32, kptr: i32, klen: i32| -> i32 {
            let Some(key) = read(&caller, kptr, klen) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            if key.first() == Some(&b':') {
                return status::BAD_ARGUMENT;
            }
            let Some(name) = header_name(&key) else {
                return status::BAD_ARGUMENT;
            };
            modify(
                &mut caller.data_mut().call,
                map,
                Modification::RemoveHeader(name),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, Host>,
         ptr: i32,
         len: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> Result<i32, Error> {
            let Some(path) = read(&caller, ptr, len) else {
                return Ok(status::INVALID_MEMORY_ACCESS);
            };
            match property(&caller, &path) {
                Some(v) => give(&mut caller, &v, ret_ptr, ret_len),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32, vptr: i32, vlen: i32| -> i32 {
            let (Some(path), Some(value)) = (read(&caller, ptr, len), read(&caller, vptr, vlen))
            else {
                return status::INVALID_MEMORY_ACCESS;
            };
            // Only haetae attributes can be set: `haetae.attributes.<name>`.
            let path = String::from_utf8_lossy(&path).replace('\0', ".");
            let Some(name) = path.strip_prefix("haetae.attributes.") else {
                return status::NOT_FOUND;
            };
            if name.is_empty() || name.len() > 128 || value.len() > 4096 {
                return status::BAD_ARGUMENT;
            }
            let value = String::from_utf8_lossy(&value).into_owned();
            let call = &mut caller.data_mut().call;
            call.attributes.set(name, value.clone());
            call.set_attributes.push((name.to_owned(), value));
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, Host>,
         code: i32,
         dptr: i32,
         dlen: i32,
         bptr: i32,
         blen: i32,
         hptr: i32,
         hlen: i32,
         _grpc: i32|
         -> i32 {
            let (Some(details), Some(body), Some(headers)) = (
                read(&caller, dptr, dlen),
                read(&caller, bptr, blen),
                read(&caller, hptr, hlen),
            ) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let Ok(status_code) = u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or(())
            else {
                return status::BAD_ARGUMENT;
            };
            let Some(pairs) = deserialize_pairs(&headers) else {
                return status::PARSE_FAILURE;
            };
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                if k.first() == Some(&b':') {
                    continue;
                }
                let (Some(name), Ok(value)) = (header_name(&k), HeaderValue::from_bytes(&v)) else {
                    return status::BAD_ARGUMENT;
                };
                out.push((name, value));
            }
            let call = &mut caller.data_mut().call;
            if call.phase == CallPhase::Log || call.phase == CallPhase::Other {
                return status::BAD_ARGUMENT;
            }
            if !out.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) && !body.is_empty() {
                out.push((
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ));
            }
            call.local_reply = Some(LocalReply {
                response: LocalResponse {
                    status: status_code,
                    headers: out,
                    body: Bytes::from(body),
                },
                details: String::from_utf8_lossy(&details).into_owned(),
            });
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut caller: Caller<'_, Host>, stream: i32| -> i32 {
            if !(0..=1).contains(&stream) {
                return status::BAD_ARGUMENT;
            }
            caller.data_mut().call.continued = true;
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, Host>,
         kptr: i32,
         klen: i32,
         ret_ptr: i32,
         ret_len: i32,
         ret_cas: i32|
         -> Result<i32, Error> {
            let Some(key) = read(&caller, kptr, klen) else {
                return Ok(status::INVALID_MEMORY_ACCESS);
            };
            let found = caller
                .data()
                .plugin
                .shared
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            let Some((value, cas)) = found else {
                return Ok(status::NOT_FOUND);
            };
            let s = give(&mut caller, &value, ret_ptr, ret_len)?;
            if s != status::OK {
                return Ok(s);
            }
            Ok(if write_u32(&mut caller, ret_cas, cas) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |caller: Caller<'_, Host>, kptr: i32, klen: i32, vptr: i32, vlen: i32, cas: i32| -> i32 {
            let (Some(key), Some(value)) = (read(&caller, kptr, klen), read(&caller, vptr, vlen))
            else {
                return status::INVALID_MEMORY_ACCESS;
            };
            if value.len() > MAX_SHARED_VALUE || key.len() > 1024 {
                return status::BAD_ARGUMENT;
            }
            let Ok(mut map) = caller.data().plugin.shared.lock() else {
                return status::INTERNAL_FAILURE;
            };
            let cas = cas as u32;
            let current = map.get(&key).map(|(_, c)| *c);
            if cas != 0 && current.is_some_and(|c| c != cas) {
                return status::CAS_MISMATCH;
            }
            if current.is_none() && map.len() >= MAX_SHARED_ENTRIES {
                return status::INTERNAL_FAILURE;
            }
            let next = current.unwrap_or(0).wrapping_add(1).max(1);
            map.insert(key, (Bytes::from(value), next));
            status::OK
        },
    )?;
    linker.func_wrap("env", "proxy_done", |_: Caller<'_, Host>| -> i32 {
        // Contexts always finish at once (`proxy_on_done` is never answered later).
        status::NOT_FOUND
    })?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |_: Caller<'_, Host>, _ctx: i32| -> i32 { status::OK },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, Host>, kind: i32, ptr: i32, len: i32, ret: i32| -> i32 {
            if !(0..=2).contains(&kind) {
                return status::BAD_ARGUMENT;
            }
            let Some(name) = read(&caller, ptr, len) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let name = String::from_utf8_lossy(&name).into_owned();
            let id = {
                let Ok(mut m) = caller.data().plugin.metrics.lock() else {
                    return status::INTERNAL_FAILURE;
                };
                if let Some(i) = m.iter().position(|(n, _)| *n == name) {
                    i
                } else {
                    if m.len() >= MAX_METRICS {
                        return status::INTERNAL_FAILURE;
                    }
                    m.push((name, 0));
                    m.len() - 1
                }
            };
            if write_u32(&mut caller, ret, id as u32) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    for (import, add) in [
        ("proxy_record_metric", false),
        ("proxy_increment_metric", true),
    ] {
        linker.func_wrap(
            "env",
            import,
            move |caller: Caller<'_, Host>, id: i32, value: i64| -> i32 {
                let Ok(mut m) = caller.data().plugin.metrics.lock() else {
                    return status::INTERNAL_FAILURE;
                };
                match m.get_mut(id as u32 as usize) {
                    Some((_, v)) if add => {
                        *v = v.saturating_add(value);
                        status::OK
                    }
                    Some((_, v)) => {
                        *v = value;
                        status::OK
                    }
                    None => status::NOT_FOUND,
                }
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, Host>, id: i32, ret: i32| -> i32 {
            let value = {
                let Ok(m) = caller.data().plugin.metrics.lock() else {
                    return status::INTERNAL_FAILURE;
                };
                match m.get(id as u32 as usize) {
                    Some((_, v)) => *v,
                    None => return status::NOT_FOUND,
                }
            };
            if write(&mut caller, ret, &value.to_le_bytes()) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            }
        },
    )?;
    // AssemblyScript's `abort(message, file, line, column)`: a trap naming where.
    linker.func_wrap(
        "env",
        "abort",
        |caller: Caller<'_, Host>, _msg: i32, _file: i32, line: i32, col: i32| -> Result<(), Error> {
            let name = caller.data().plugin.name.clone();
            tracing::error!(target: "haetae::wasm", filter = &*name, line, col, "Wasm filter aborted");
            Err(Error::msg(format!("the module aborted (env.abort at line {line}, column {col})")))
        },
    )?;
    define_wasi(linker)
}

fn buffer_of(host: &Host, buffer: i32) -> Result<Bytes, i32> {
    let call = &host.call;
    match buffer {
        BUFFER_REQUEST_BODY => call
            .new_body
            .clone()
            .or_else(|| call.request.as_ref().and_then(|r| r.body.clone()))
            .ok_or(status::NOT_FOUND),
        BUFFER_RESPONSE_BODY => call
            .response
            .as_ref()
            .and_then(|r| r.body.clone())
            .ok_or(status::NOT_FOUND),
        BUFFER_VM_CONFIGURATION => Ok(host.plugin.vm_configuration.clone()),
        BUFFER_PLUGIN_CONFIGURATION => Ok(host.plugin.configuration.clone()),
        2..=5 | 8 => Err(status::NOT_FOUND),
        _ => Err(status::BAD_ARGUMENT),
    }
}

/// The minimal WASI (`wasi_snapshot_preview1`) SDKs built for `wasm32-wasi` import:
/// stdout/stderr go to the log, clocks, randomness, an empty environment and argument list;
/// no files.
#[allow(clippy::too_many_lines)]
fn define_wasi(linker: &mut Linker<Host>) -> Result<(), Error> {
    const W: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        W,
        "fd_write",
        |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, ret: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return errno::BADF;
            }
            if !(0..=1024).contains(&n) {
                return errno::INVAL;
            }
            let mut text = Vec::new();
            for i in 0..n {
                let Some(iov) = read(&caller, iovs.wrapping_add(i * 8), 8) else {
                    return errno::FAULT;
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Some(bytes) = read(&caller, ptr, len) else {
                    return errno::FAULT;
                };
                if text.len() < 64 * 1024 {
                    text.extend_from_slice(&bytes);
                }
            }
            let written = u32::try_from(
                (0..n)
                    .filter_map(|i| read(&caller, iovs.wrapping_add(i * 8 + 4), 4))
                    .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .sum::<u64>(),
            )
            .unwrap_or(u32::MAX);
            let message = String::from_utf8_lossy(&text);
            let message = message.trim_end_matches('\n');
            if !message.is_empty() {
                log_at(
                    &caller.data().plugin.name,
                    if fd == 1 { 2 } else { 4 },
                    message,
                );
            }
            if write_u32(&mut caller, ret, written) {
                errno::SUCCESS
            } else {
                errno::FAULT
            }
        },
    )?;
    linker.func_wrap(W, "fd_close", |_: Caller<'_, Host>, _fd: i32| -> i32 {
        errno::BADF
    })?;
    linker.func_wrap(
        W,
        "fd_seek",
        |_: Caller<'_, Host>, _fd: i32, _off: i64, _whence: i32, _ret: i32| -> i32 { errno::BADF },
    )?;
    linker.func_wrap(
        W,
        "fd_fdstat_get",
        |mut caller: Caller<'_, Host>, fd: i32, ret: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return errno::BADF;
            }
            // filetype character device (2), no flags, rights fd_write (1 << 6).
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&(1u64 << 6).to_le_bytes());
            if write(&mut caller, ret, &stat) {
                errno::SUCCESS
            } else {
                errno::FAULT
            }
        },
    )?;
    linker.func_wrap(
        W,
        "clock_time_get",
        |mut caller: Caller<'_, Host>, clock: i32, _precision: i64, ret: i32| -> i32 {
            let t = match clock {
                0 => now_nanos(),
                1 => monotonic_nanos(),
                _ => return errno::NOTSUP,
            };
            if write(&mut caller, ret, &t.to_le_bytes()) {
                errno::SUCCESS
            } else {
                errno::FAULT
            }
        },
    )?;
    linker.func_wrap(
        W,
        "random_get",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> i32 {
            let len = len as u32 as usize;
            if len > MAX_RANDOM {
                return errno::INVAL;
            }
            let mut buf = vec![0u8; len];
            if getrandom::fill(&mut buf).is_err() {
                return errno::INVAL;
            }
            if write(&mut caller, ptr, &buf) {
                errno::SUCCESS
            } else {
                errno::FAULT
            }
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            W,
            name,
            |mut caller: Caller<'_, Host>, count: i32, size: i32| -> i32 {
                if write_u32(&mut caller, count, 0) && write_u32(&mut caller, size, 0) {
                    errno::SUCCESS
                } else {
                    errno::FAULT
                }
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(W, name, |_: Caller<'_, Host>, _a: i32, _b: i32| -> i32 {
            errno::SUCCESS
        })?;
    }
    linker.func_wrap(W, "sched_yield", |_: Caller<'_, Host>| -> i32 {
        errno::SUCCESS
    })?;
    linker.func_wrap(
        W,
        "proc_exit",
        |caller: Caller<'_, Host>, code: i32| -> Result<(), Error> {
            let name = caller.data().plugin.name.clone();
            tracing::error!(target: "haetae::wasm", filter = &*name, code, "Wasm filter called proc_exit");
            Err(Error::msg(format!(
                "the module called wasi proc_exit({code})"
            )))
        },
    )?;
    Ok(())
}

fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip_through_the_abi_serialization() {
        let pairs = vec![
            (Bytes::from_static(b"a"), Bytes::from_static(b"1")),
            (Bytes::from_static(b"b"), Bytes::from_static(b"22")),
        ];
        let data = serialize_pairs(&pairs);
        // The spec's example: {{"a": "1"}, {"b": "22"}}.
        assert_eq!(
            data,
            [
                2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b',
                0, b'2', b'2', 0
            ]
        );
        let back = deserialize_pairs(&data).unwrap();
        assert_eq!(
            back,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"22".to_vec())
            ]
        );
        assert_eq!(deserialize_pairs(&[]), Some(vec![]));
        assert_eq!(deserialize_pairs(&[0]), Some(vec![]));
    }

    #[test]
    fn malformed_maps_are_refused_without_panicking() {
        assert_eq!(deserialize_pairs(&[1, 0, 0, 0]), None);
        assert_eq!(deserialize_pairs(&[255, 255, 255, 255, 0, 0]), None);
        let mut data = serialize_pairs(&[(Bytes::from_static(b"k"), Bytes::from_static(b"v"))]);
        data.truncate(data.len() - 2);
        assert_eq!(deserialize_pairs(&data), None);
        // Lengths past the end.
        let bad = [1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, b'a', 0];
        assert_eq!(deserialize_pairs(&bad), None);
    }
}
