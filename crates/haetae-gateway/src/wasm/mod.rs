//! `wasm`: security filters as Proxy-Wasm (ABI v0.2.1) modules, run on wasmtime in a
//! sandbox. A module written for Envoy, Istio or Kong with a Proxy-Wasm SDK runs here
//! unchanged as long as it sticks to the HTTP hostcalls documented in
//! `docs/wasm-filters.md`.
//!
//! ```toml
//! [[policy.filters]]
//! id = "block-scanner"
//! kind = "wasm"
//! budget_ms = 10
//! failure = "fail-closed"
//! config = { module = "/etc/haetae/filters/block.wasm", configuration = "sqlmap" }
//! ```
//!
//! How it is isolated:
//! - **time**: every call into the module runs under an epoch deadline (a process-wide
//!   ticker thread advances the epoch every millisecond; the deadline is the instance's
//!   `budget_ms` in ticks), so an endless loop traps at its budget;
//! - **memory**: each instance's linear memory is capped (`memory_limit_mb`), growing past
//!   it traps;
//! - **crashes**: a trap (or an unimplemented hostcall, which traps naming the import)
//!   throws the instance away; the next call gets a fresh one, at most
//!   `max_restarts_per_minute` times a minute. The call that trapped fails, and the
//!   engine applies the filter's failure policy and circuit breaker like for any filter.
//! - **compilation** happens when the policy is loaded (never on the request path) and
//!   compiled modules are shared by SHA-256 of their bytes.
//!
//! A request is pinned to one instance of the pool for its lifetime (its stream context
//! lives in that instance's memory); the pin is kept in the request's attributes.

mod abi;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use haetae_core::{
    EventCategory, EventKind, FilterInstance, PolicySnapshot, Severity, TrustedKey, WasmModuleRef,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, Error, ExternType, Instance, InstancePre, Linker, Module, Store,
    StoreLimitsBuilder, Trap, TypedFunc,
};

use crate::filter::{
    Decision, FilterContext, FilterError, Modification, PhaseResult, Phases, Reason, SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, typed_config};
use abi::{Call, CallPhase, Host, Plugin, RequestSnapshot, ResponseSnapshot};

/// The kind name in policies.
pub const KIND: &str = "wasm";

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// The deadline for starting an instance (`_initialize`, `proxy_on_vm_start`,
/// `proxy_on_configure`): SDK start-up may do more work than a request callback.
const START_BUDGET_TICKS: u64 = 1_000;
/// Elements per table (function tables of SDK-built modules hold a few thousand).
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// The largest module file accepted.
const MAX_MODULE_BYTES: u64 = 64 * 1024 * 1024;
/// Stream contexts one instance may hold before stale ones (requests that never reached
/// the log phase) are deleted.
const MAX_LIVE_CONTEXTS: usize = 4_096;
const STALE_CONTEXT: Duration = Duration::from_secs(30);
/// The root (plugin) context id; stream contexts count up from the next one.
const ROOT_CONTEXT: i32 = 1;
/// The pin of a request whose context trapped.
const FAILED: &str = "failed";

/// `wasm`'s configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// The module file (`.wasm`, binary format), for a gateway run on its own.
    #[serde(default)]
    pub module: Option<String>,
    /// A module of the Control Center's store (pinned by SHA-256 when the policy is
    /// published); the gateway fetches it from the bus before applying the policy
    /// ([`fetch_store_modules`]). Exactly one of `module` and `stored`.
    #[serde(default)]
    pub stored: Option<WasmModuleRef>,
    /// The plugin configuration (`PLUGIN_CONFIGURATION`, read in `proxy_on_configure`).
    #[serde(default)]
    pub configuration: String,
    /// The VM configuration (`VM_CONFIGURATION`, read in `proxy_on_vm_start`).
    #[serde(default)]
    pub vm_configuration: String,
    /// `plugin_root_id`; empty by default.
    #[serde(default)]
    pub root_id: String,
    /// `plugin_vm_id`; empty by default.
    #[serde(default)]
    pub vm_id: String,
    /// The cap on each instance's linear memory, in MiB (1 to 4096).
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u32,
    /// Instances in the pool (1 to 64); by default one per CPU, at most 8.
    #[serde(default)]
    pub instances: Option<usize>,
    /// Request/response body bytes buffered for `proxy_on_request_body` and
    /// `proxy_on_response_body` (when the module exports them).
    #[serde(default = "default_body_bytes")]
    pub max_body_bytes: usize,
    /// Instance restarts (after traps) allowed per minute; past it the filter fails
    /// without running until the minute is over.
    #[serde(default = "default_max_restarts")]
    pub max_restarts_per_minute: u32,
}

fn default_memory_limit_mb() -> u32 {
    16
}
fn default_body_bytes() -> usize {
    64 * 1024
}
fn default_max_restarts() -> u32 {
    30
}

/// Counters of one `wasm` filter (by instance id, kept across policy reloads), on the
/// admin listener's `/metrics` ([`render_metrics`]). Call durations (p50/p99) are the
/// `haetae_filter_duration_seconds` histogram every filter has.
#[derive(Debug, Default)]
pub struct WasmStats {
    /// Phase runs (each one or more calls into the module).
    pub calls: AtomicU64,
    /// Calls into the module that trapped (including budget overruns).
    pub traps: AtomicU64,
    /// Of those, calls cut at their time budget.
    pub timeouts: AtomicU64,
    /// Instances created (the first ones and restarts).
    pub instantiations: AtomicU64,
    /// Restarts refused by `max_restarts_per_minute`.
    pub restarts_refused: AtomicU64,
}

// ---------------------------------------------------------------------------------------
// The process-wide runtime: engine, epoch ticker, linker and compiled-module cache.

struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
    cache: Mutex<HashMap<[u8; 32], Weak<Compiled>>>,
}

struct Compiled {
    pre: InstancePre<Host>,
    has: Exports,
}

/// Which optional callbacks a module exports.
#[derive(Debug, Clone, Copy, Default)]
struct Exports {
    request_body: bool,
    response_headers: bool,
    response_body: bool,
}

fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine =
                Engine::new(&config).map_err(|e| format!("cannot start the Wasm engine: {e}"))?;
            let mut linker = Linker::new(&engine);
            abi::define_host_functions(&mut linker)
                .map_err(|e| format!("cannot define the Proxy-Wasm host functions: {e}"))?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("haetae-wasm-epoch".into())
                .spawn(move || {
                    // The epoch follows the clock, not the number of wake-ups: on a busy
                    // machine a sleep overshoots, and the missed ticks are made up at once.
                    let start = Instant::now();
                    let mut ticks: u128 = 0;
                    loop {
                        std::thread::sleep(EPOCH_TICK);
                        let due = start.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                        while ticks < due {
                            ticker.increment_epoch();
                            ticks += 1;
                        }
                    }
                })
                .map_err(|e| format!("cannot start the Wasm epoch thread: {e}"))?;
            Ok(Runtime {
                engine,
                linker,
                cache: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Compiles `bytes` (or takes the compiled module from the cache), linking every import
/// the host does not implement to a function that traps naming it.
fn compile(rt: &Runtime, bytes: &[u8]) -> Result<Arc<Compiled>, String> {
    let hash: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(c) = rt
        .cache
        .lock()
        .ok()
        .and_then(|c| c.get(&hash).and_then(Weak::upgrade))
    {
        return Ok(c);
    }
    let module =
        Module::new(&rt.engine, bytes).map_err(|e| format!("the module does not compile: {e}"))?;
    let mut linker = rt.linker.clone();
    for import in module.imports() {
        let (m, n) = (import.module().to_owned(), import.name().to_owned());
        if abi::DEFINED.contains(&(m.as_str(), n.as_str())) {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!(
                "the module imports {m}.{n}, which is not a function; the Proxy-Wasm host \
                 provides only functions"
            ));
        };
        let (module_name, import_name) = (m.clone(), n.clone());
        linker
            .func_new(&module_name, &import_name, ty, move |caller, _, _| {
                tracing::error!(
                    target: "haetae::wasm",
                    filter = &*caller.data().plugin.name,
                    "Wasm filter called the unimplemented host function {m}.{n}"
                );
                Err(Error::msg(format!(
                    "called the unimplemented host function {m}.{n}"
                )))
            })
            .map_err(|e| format!("cannot link {}.{}: {e}", import.module(), import.name()))?;
    }
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| format!("the module's imports do not match the Proxy-Wasm ABI: {e:#}"))?;
    let exported = |name: &str| module.get_export(name).is_some();
    if !exported("proxy_abi_version_0_2_1") && !exported("proxy_abi_version_0_2_0") {
        return Err(
            "the module exports neither proxy_abi_version_0_2_1 nor proxy_abi_version_0_2_0; \
             build it with a Proxy-Wasm SDK for ABI 0.2"
                .into(),
        );
    }
    let has = Exports {
        request_body: exported("proxy_on_request_body"),
        response_headers: exported("proxy_on_response_headers"),
        response_body: exported("proxy_on_response_body"),
    };
    let compiled = Arc::new(Compiled { pre, has });
    if let Ok(mut cache) = rt.cache.lock() {
        cache.retain(|_, w| w.strong_count() > 0);
        cache.insert(hash, Arc::downgrade(&compiled));
    }
    Ok(compiled)
}

/// The compiled module with this SHA-256, if something still holds it.
fn cached(rt: &Runtime, digest: &[u8; 32]) -> Option<Arc<Compiled>> {
    rt.cache
        .lock()
        .ok()
        .and_then(|c| c.get(digest).and_then(Weak::upgrade))
}

/// How a store module is named in messages: `name v3 (sha256 1a2b3c4d…)`.
fn describe_ref(r: &WasmModuleRef) -> String {
    let mut out = format!("store module {:?}", r.name);
    if let Some(v) = r.version {
        out.push_str(&format!(" v{v}"));
    }
    if let Some(h) = &r.sha256 {
        out.push_str(&format!(" (sha256 {}…)", h.get(..12).unwrap_or(h)));
    }
    out
}

/// The store modules a policy needs, compiled and checked; hold it until the policy is
/// applied (the filters built then keep their own reference).
#[derive(Default)]
pub struct ModuleLease {
    held: Vec<Arc<Compiled>>,
}

impl std::fmt::Debug for ModuleLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleLease")
            .field("modules", &self.held.len())
            .finish()
    }
}

impl ModuleLease {
    /// How many modules it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// Why the store modules of a policy could not be made ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// What failed, naming the filter and the module.
    pub message: String,
    /// Whether trying again may help (the bus did not answer, or the module is not on it
    /// yet), as opposed to bytes that do not match or a signature that does not verify.
    pub retry: bool,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks a module's signature against the trusted keys: the key the reference names by
/// id when it names one, else any of them.
fn check_signature(r: &WasmModuleRef, bytes: &[u8], trusted: &[TrustedKey]) -> Result<(), String> {
    let Some(sig_hex) = &r.signature else {
        return Err("is not signed, and this gateway trusts only signed modules".into());
    };
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut sig)
        .map_err(|_| "has a signature that is not 128 hex digits".to_owned())?;
    let candidates: Vec<&TrustedKey> = match &r.key_id {
        Some(id) => trusted.iter().filter(|k| &k.id == id).collect(),
        None => trusted.iter().collect(),
    };
    if candidates
        .iter()
        .any(|k| haetae_crypto::pk::ed25519_verify(&k.key, bytes, &sig).is_ok())
    {
        Ok(())
    } else {
        Err(format!(
            "has a signature that no trusted key verifies (key id {})",
            r.key_id.as_deref().unwrap_or("not given")
        ))
    }
}

/// Fetches the Control Center's modules `policy` names (`config.stored` of `wasm` filters)
/// from the bus bucket [`haetae_bus::modules::MODULE_BUCKET`], checks that their bytes hash
/// to the pinned SHA-256 and, when `trusted` is not empty, that a trusted key signed them,
/// and compiles them on a blocking thread. A module compiled before (same SHA-256, still
/// running) is not compiled again (nor fetched, when no keys are trusted).
pub async fn fetch_store_modules(
    kv: Option<&dyn haetae_bus::KvStore>,
    policy: &PolicySnapshot,
    trusted: &[TrustedKey],
) -> Result<ModuleLease, FetchError> {
    let fail = |message: String, retry: bool| FetchError { message, retry };
    let mut lease = ModuleLease::default();
    for instance in &policy.filters {
        let Some(r) = instance.wasm_module_ref() else {
            continue;
        };
        let r = r.map_err(|m| fail(m, false))?;
        let what = format!("filter {:?}: {}", instance.id, describe_ref(&r));
        let digest = r.digest().ok_or_else(|| {
            fail(
                format!("{what}: no SHA-256 pinned (publish it through the Control Center)"),
                false,
            )
        })?;
        let rt = runtime().map_err(|m| fail(m, false))?;
        // With trusted keys the signature is checked on every policy, so the bytes are
        // fetched even when the compiled module is at hand (the cache then saves the
        // compilation only).
        if trusted.is_empty()
            && let Some(c) = cached(rt, &digest)
        {
            lease.held.push(c);
            continue;
        }
        let kv = kv.ok_or_else(|| {
            fail(
                format!("{what}: this gateway has no bus to fetch store modules from"),
                false,
            )
        })?;
        let hex_digest = hex::encode(digest);
        let bytes = haetae_bus::modules::get_module(kv, &hex_digest, MAX_MODULE_BYTES)
            .await
            .map_err(|e| fail(format!("{what}: cannot fetch it from the bus: {e}"), true))?
            .ok_or_else(|| fail(format!("{what}: not on the bus (yet)"), true))?;
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != digest {
            return Err(fail(
                format!(
                    "{what}: the bytes on the bus hash to {}, not the pinned SHA-256; refused",
                    hex::encode(actual)
                ),
                false,
            ));
        }
        if !trusted.is_empty() {
            check_signature(&r, &bytes, trusted)
                .map_err(|m| fail(format!("{what} {m}; refused"), false))?;
        }
        let compiled = tokio::task::spawn_blocking(move || compile(rt, &bytes))
            .await
            .map_err(|e| fail(format!("{what}: the compiler thread failed: {e}"), false))?
            .map_err(|m| fail(format!("{what}: {m}"), false))?;
        lease.held.push(compiled);
    }
    Ok(lease)
}

// ---------------------------------------------------------------------------------------
// One instance.

type Cb1 = TypedFunc<i32, ()>;
type Cb3 = TypedFunc<(i32, i32, i32), i32>;

struct Vm {
    store: Store<Host>,
    generation: u64,
    next_context: i32,
    live: HashMap<i32, Instant>,
    on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    on_request_headers: Option<Cb3>,
    on_request_body: Option<Cb3>,
    on_response_headers: Option<Cb3>,
    on_response_body: Option<Cb3>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_log: Option<Cb1>,
    on_delete: Option<Cb1>,
    on_tick: Option<Cb1>,
    last_tick: Instant,
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<Host>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, String> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| format!("the export {name} has the wrong signature: {e}")),
    }
}

/// A trap's one-line description (the Wasm backtrace goes to the debug log only), and
/// whether it was the time budget.
fn describe(e: &Error, budget_ms: u64) -> (String, bool) {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (format!("cut at its time budget of {budget_ms} ms"), true),
        Some(trap) => (trap.to_string(), false),
        None => (e.root_cause().to_string(), false),
    }
}

/// The plugin context, what the callback sees, and the filter's limits: all an instance
/// needs to start.
struct Spec {
    plugin: Arc<Plugin>,
    compiled: Arc<Compiled>,
    memory_bytes: usize,
}

impl Spec {
    fn start(&self, generation: u64) -> Result<Vm, String> {
        let rt = runtime()?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.memory_bytes)
            .instances(1)
            .memories(1)
            .tables(4)
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&rt.engine, Host::new(Arc::clone(&self.plugin), limits));
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(START_BUDGET_TICKS);
        let instance = self
            .compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("the module cannot be instantiated: {e:#}"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or("the module exports no memory named `memory`")?;
        let alloc = match typed::<i32, i32>(&instance, &mut store, "proxy_on_memory_allocate")? {
            Some(f) => f,
            None => typed::<i32, i32>(&instance, &mut store, "malloc")?
                .ok_or("the module exports neither proxy_on_memory_allocate nor malloc")?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let started = |store: &mut Store<Host>, what: &str, r: Result<i32, Error>| match r {
            Ok(0) => Err(format!(
                "{what} returned false (the configuration was refused)"
            )),
            Ok(_) => {
                store.set_epoch_deadline(START_BUDGET_TICKS);
                Ok(())
            }
            Err(e) => Err(format!("{what} trapped: {e:#}")),
        };
        if let Some(init) = typed::<(), ()>(&instance, &mut store, "_initialize")? {
            init.call(&mut store, ())
                .map_err(|e| format!("_initialize trapped: {e:#}"))?;
            if let Some(main) = typed::<(i32, i32), i32>(&instance, &mut store, "main")? {
                main.call(&mut store, (0, 0))
                    .map_err(|e| format!("main trapped: {e:#}"))?;
            }
        } else if let Some(start) = typed::<(), ()>(&instance, &mut store, "_start")? {
            start
                .call(&mut store, ())
                .map_err(|e| format!("_start trapped: {e:#}"))?;
        }
        let on_context_create = typed(&instance, &mut store, "proxy_on_context_create")?;
        if let Some(f) = &on_context_create {
            f.call(&mut store, (ROOT_CONTEXT, 0))
                .map_err(|e| format!("proxy_on_context_create (root) trapped: {e:#}"))?;
        }
        let vm_len = self.plugin.vm_configuration.len() as i32;
        if let Some(f) = typed::<(i32, i32), i32>(&instance, &mut store, "proxy_on_vm_start")? {
            let r = f.call(&mut store, (ROOT_CONTEXT, vm_len));
            started(&mut store, "proxy_on_vm_start", r)?;
        }
        let len = self.plugin.configuration.len() as i32;
        if let Some(f) = typed::<(i32, i32), i32>(&instance, &mut store, "proxy_on_configure")? {
            let r = f.call(&mut store, (ROOT_CONTEXT, len));
            started(&mut store, "proxy_on_configure", r)?;
        }
        Ok(Vm {
            on_context_create,
            on_request_headers: typed(&instance, &mut store, "proxy_on_request_headers")?,
            on_request_body: typed(&instance, &mut store, "proxy_on_request_body")?,
            on_response_headers: typed(&instance, &mut store, "proxy_on_response_headers")?,
            on_response_body: typed(&instance, &mut store, "proxy_on_response_body")?,
            on_done: typed(&instance, &mut store, "proxy_on_done")?,
            on_log: typed(&instance, &mut store, "proxy_on_log")?,
            on_delete: typed(&instance, &mut store, "proxy_on_delete")?,
            on_tick: typed(&instance, &mut store, "proxy_on_tick")?,
            store,
            generation,
            next_context: ROOT_CONTEXT + 1,
            live: HashMap::new(),
            last_tick: Instant::now(),
        })
    }
}

impl Vm {
    /// A new stream context id, deleting stale contexts when too many are alive.
    fn new_context(&mut self, ticks: u64) -> Result<i32, Error> {
        if self.live.len() >= MAX_LIVE_CONTEXTS {
            let now = Instant::now();
            let stale: Vec<i32> = self
                .live
                .iter()
                .filter(|(_, t)| now.duration_since(**t) > STALE_CONTEXT)
                .map(|(c, _)| *c)
                .collect();
            for c in stale {
                self.finish(c, false, ticks)?;
            }
        }
        let id = self.next_context;
        self.next_context = if self.next_context == i32::MAX {
            ROOT_CONTEXT + 1
        } else {
            self.next_context + 1
        };
        if let Some(f) = self.on_context_create.clone() {
            self.store.set_epoch_deadline(ticks);
            f.call(&mut self.store, (id, ROOT_CONTEXT))?;
        }
        self.live.insert(id, Instant::now());
        Ok(id)
    }

    /// `proxy_on_done`, then (`log`) `proxy_on_log`, then `proxy_on_delete`.
    fn finish(&mut self, id: i32, log: bool, ticks: u64) -> Result<(), Error> {
        self.live.remove(&id);
        if let Some(f) = self.on_done.clone() {
            self.store.set_epoch_deadline(ticks);
            f.call(&mut self.store, id)?;
        }
        if log && let Some(f) = self.on_log.clone() {
            self.store.set_epoch_deadline(ticks);
            f.call(&mut self.store, id)?;
        }
        if let Some(f) = self.on_delete.clone() {
            self.store.set_epoch_deadline(ticks);
            f.call(&mut self.store, id)?;
        }
        Ok(())
    }

    /// Runs `proxy_on_tick` when the module asked for a timer and its period is over.
    /// Ticks are driven by traffic: an idle filter is not woken.
    fn maybe_tick(&mut self, ticks: u64) -> Result<(), Error> {
        let period = self.store.data().tick_period_ms;
        if period == 0 {
            return Ok(());
        }
        let Some(f) = self.on_tick.clone() else {
            return Ok(());
        };
        if self.last_tick.elapsed() < Duration::from_millis(u64::from(period)) {
            return Ok(());
        }
        self.last_tick = Instant::now();
        // The tick runs in the root context: it sees no request; the request's snapshot
        // is put back for the callback that follows.
        let call = std::mem::take(&mut self.store.data_mut().call);
        self.store.set_epoch_deadline(ticks);
        let result = f.call(&mut self.store, ROOT_CONTEXT);
        self.store.data_mut().call = call;
        result
    }
}

// ---------------------------------------------------------------------------------------
// The filter.

struct Slot {
    vm: Option<Vm>,
}

/// The `wasm` filter: a pool of instances of one Proxy-Wasm module.
pub struct WasmFilter {
    spec: Spec,
    slots: Box<[Mutex<Slot>]>,
    next: AtomicUsize,
    generation: AtomicU64,
    phases: Phases,
    budget_ms: u64,
    ticks: u64,
    pin_key: String,
    max_restarts: u32,
    restarts: Mutex<(Instant, u32)>,
    stats: Arc<WasmStats>,
}

impl std::fmt::Debug for WasmFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFilter")
            .field("plugin", &self.spec.plugin.name)
            .field("instances", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Builds the filter from its instance: reads and compiles the module and starts one
/// instance, so a module that does not load or refuses its configuration is a policy
/// error, not a request failure.
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: WasmConfig = typed_config(instance)?;
    WasmFilter::new(instance, &cfg).map(|f| Arc::new(f) as Arc<dyn SecurityFilter>)
}

impl WasmFilter {
    /// A filter for this instance and configuration.
    pub fn new(
        instance: &FilterInstance,
        cfg: &WasmConfig,
    ) -> Result<WasmFilter, Vec<ConfigProblem>> {
        let problem = |path: &str, msg: String| vec![ConfigProblem::new(path, msg)];
        if !(1..=4096).contains(&cfg.memory_limit_mb) {
            return Err(problem(
                "config.memory_limit_mb",
                "must be between 1 and 4096".into(),
            ));
        }
        let instances = match cfg.instances {
            Some(n) if (1..=64).contains(&n) => n,
            Some(_) => {
                return Err(problem(
                    "config.instances",
                    "must be between 1 and 64".into(),
                ));
            }
            None => std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        };
        let rt = runtime().map_err(|m| problem("kind", m))?;
        let (field, source, compiled) = match (&cfg.module, &cfg.stored) {
            (Some(path), None) => {
                let bytes = read_module(path).map_err(|m| problem("config.module", m))?;
                let compiled = compile(rt, &bytes)
                    .map_err(|m| problem("config.module", format!("{path}: {m}")))?;
                ("config.module", path.clone(), compiled)
            }
            (None, Some(stored)) => {
                let source = describe_ref(stored);
                let digest = stored.digest().ok_or_else(|| {
                    problem(
                        "config.stored.sha256",
                        format!(
                            "{source}: no SHA-256 pinned; publish the policy through the \
                             Control Center, which pins the module's bytes"
                        ),
                    )
                })?;
                let compiled = cached(rt, &digest).ok_or_else(|| {
                    problem(
                        "config.stored",
                        format!(
                            "{source} has not been fetched from the bus and checked; the \
                             gateway applies policies naming store modules only after \
                             fetching them"
                        ),
                    )
                })?;
                ("config.stored", source, compiled)
            }
            (Some(_), Some(_)) => {
                return Err(problem(
                    "config",
                    "give either `module` (a file) or `stored` (a module of the Control \
                     Center's store), not both"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(problem(
                    "config.module",
                    "missing: give `module` (a .wasm file) or `stored` (a module of the \
                     Control Center's store)"
                        .into(),
                ));
            }
        };
        let plugin = Arc::new(Plugin {
            name: Arc::from(instance.id.as_str()),
            root_id: Arc::from(cfg.root_id.as_str()),
            vm_id: Arc::from(cfg.vm_id.as_str()),
            configuration: Bytes::from(cfg.configuration.clone().into_bytes()),
            vm_configuration: Bytes::from(cfg.vm_configuration.clone().into_bytes()),
            shared: Mutex::new(HashMap::new()),
            metrics: Mutex::new(Vec::new()),
        });
        let has = compiled.has;
        let spec = Spec {
            plugin,
            compiled,
            memory_bytes: cfg.memory_limit_mb as usize * 1024 * 1024,
        };
        let first = spec
            .start(1)
            .map_err(|m| problem(field, format!("{source}: {m}")))?;
        let stats = stats_of(&instance.id);
        stats.instantiations.fetch_add(1, Ordering::Relaxed);
        let mut slots = Vec::with_capacity(instances);
        slots.push(Mutex::new(Slot { vm: Some(first) }));
        for _ in 1..instances {
            slots.push(Mutex::new(Slot { vm: None }));
        }
        // Several ticks so a call is never cut early by a tick that came right after it
        // started; the budget is still the instance's `budget_ms`.
        let ticks = instance.budget_ms.max(2);
        Ok(WasmFilter {
            spec,
            slots: slots.into_boxed_slice(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(1),
            phases: Phases {
                request_headers: true,
                request_body: has.request_body.then_some(cfg.max_body_bytes),
                response_headers: has.response_headers,
                response_body: has.response_body.then_some(cfg.max_body_bytes),
                log: true,
            },
            budget_ms: instance.budget_ms,
            ticks,
            pin_key: format!("wasm.ctx.{}", instance.id),
            max_restarts: cfg.max_restarts_per_minute,
            restarts: Mutex::new((Instant::now(), 0)),
            stats,
        })
    }

    /// The filter's counters.
    #[must_use]
    pub fn stats(&self) -> Arc<WasmStats> {
        Arc::clone(&self.stats)
    }

    /// A fresh instance for a slot, unless restarts are over their rate.
    fn restart(&self, ctx: &FilterContext<'_>) -> Result<Vm, FilterError> {
        {
            let mut r = self
                .restarts
                .lock()
                .map_err(|_| FilterError::new("wasm restart counter poisoned"))?;
            if r.0.elapsed() > Duration::from_secs(60) {
                *r = (Instant::now(), 0);
            }
            if r.1 >= self.max_restarts {
                self.stats.restarts_refused.fetch_add(1, Ordering::Relaxed);
                return Err(FilterError::new(format!(
                    "the module keeps crashing: {} restarts in the last minute, the most \
                     allowed (max_restarts_per_minute); not restarted until the minute is over",
                    r.1
                )));
            }
            r.1 += 1;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let vm = self
            .spec
            .start(generation)
            .map_err(|m| FilterError::new(format!("the module could not be restarted: {m}")))?;
        self.stats.instantiations.fetch_add(1, Ordering::Relaxed);
        if generation > self.slots.len() as u64 {
            let _ = ctx.emit(
                ctx.event("gateway.wasm_restart")
                    .kind(EventKind::PipelineError)
                    .category(EventCategory::Host)
                    .severity(Severity::Low)
                    .message(format!(
                        "Wasm filter {} started a fresh instance after a crash",
                        ctx.filter_id()
                    )),
            );
        }
        Ok(vm)
    }

    /// Runs one phase: picks the request's instance (or one for a new request), makes or
    /// finds its stream context, runs the callback under the deadline and turns what the
    /// callback asked for into a decision. A trap drops the instance.
    fn run(&self, ctx: &mut FilterContext<'_>, phase: CallPhase) -> PhaseResult {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let pinned = ctx.attributes.get(&self.pin_key);
        // The request's own context trapped: its later phases (the response phases of the
        // failure's local answer, the log) do not run the module again.
        if pinned == Some(FAILED) {
            return Ok(Decision::Continue);
        }
        let pin = pinned.and_then(parse_pin);
        if phase == CallPhase::Log && pin.is_none() {
            return Ok(Decision::Continue);
        }
        let index = match pin {
            Some((slot, _, _)) if slot < self.slots.len() => slot,
            _ => self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len(),
        };
        let mut slot = self.slots[index].lock().unwrap_or_else(|poisoned| {
            // A panic while the instance was in use: its state is unknown, start afresh.
            let mut slot = poisoned.into_inner();
            slot.vm = None;
            slot
        });
        if slot.vm.is_none() {
            slot.vm = Some(self.restart(ctx)?);
        }
        let Some(vm) = slot.vm.as_mut() else {
            return Err(FilterError::new("no wasm instance"));
        };
        vm.store.data_mut().call = snapshot(ctx, phase);
        let result = self.call(vm, ctx, phase, index, pin);
        vm.store.data_mut().call.request = None;
        match result {
            Ok(decision) => Ok(decision),
            Err((callback, e)) => {
                slot.vm = None;
                drop(slot);
                let (text, timeout) = describe(&e, self.budget_ms);
                self.stats.traps.fetch_add(1, Ordering::Relaxed);
                if timeout {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                ctx.attributes.set(self.pin_key.clone(), FAILED);
                tracing::warn!(
                    target: "haetae::wasm",
                    filter = ctx.filter_id(),
                    callback,
                    "Wasm filter trapped, instance discarded: {text}"
                );
                tracing::debug!(target: "haetae::wasm", filter = ctx.filter_id(), "{e:?}");
                Err(FilterError::new(format!(
                    "wasm module trapped in {callback}: {text}; the instance was discarded"
                )))
            }
        }
    }

    fn call(
        &self,
        vm: &mut Vm,
        ctx: &mut FilterContext<'_>,
        phase: CallPhase,
        index: usize,
        pin: Option<(usize, u64, i32)>,
    ) -> Result<Decision, (&'static str, Error)> {
        vm.maybe_tick(self.ticks)
            .map_err(|e| ("proxy_on_tick", e))?;
        let context = match pin {
            Some((slot, generation, id)) if slot == index && generation == vm.generation => id,
            // The request's context died with an instance another request crashed: there
            // is nothing to log.
            Some(_) if phase == CallPhase::Log => return Ok(Decision::Continue),
            // A new request, or its instance crashed since: a new context.
            _ => {
                let id = vm
                    .new_context(self.ticks)
                    .map_err(|e| ("proxy_on_context_create", e))?;
                ctx.attributes.set(
                    self.pin_key.clone(),
                    format!("{index}:{}:{id}", vm.generation),
                );
                id
            }
        };
        if phase == CallPhase::Log {
            vm.finish(context, true, self.ticks)
                .map_err(|e| ("proxy_on_done/proxy_on_log/proxy_on_delete", e))?;
            return Ok(Decision::Continue);
        }
        let (name, f, args) = {
            let call = &vm.store.data().call;
            match phase {
                CallPhase::RequestHeaders => (
                    "proxy_on_request_headers",
                    vm.on_request_headers.clone(),
                    call.request.as_ref().map_or((0, 1), |r| {
                        (
                            header_count(&r.headers, 4),
                            i32::from(r.body.is_none() && no_body(&r.headers)),
                        )
                    }),
                ),
                CallPhase::RequestBody => (
                    "proxy_on_request_body",
                    vm.on_request_body.clone(),
                    (
                        call.request
                            .as_ref()
                            .and_then(|r| r.body.as_ref())
                            .map_or(0, |b| b.len() as i32),
                        1,
                    ),
                ),
                CallPhase::ResponseHeaders => (
                    "proxy_on_response_headers",
                    vm.on_response_headers.clone(),
                    call.response
                        .as_ref()
                        .map_or((0, 0), |r| (header_count(&r.headers, 1), 0)),
                ),
                CallPhase::ResponseBody => (
                    "proxy_on_response_body",
                    vm.on_response_body.clone(),
                    (
                        call.response
                            .as_ref()
                            .and_then(|r| r.body.as_ref())
                            .map_or(0, |b| b.len() as i32),
                        1,
                    ),
                ),
                CallPhase::Log | CallPhase::Other => return Ok(Decision::Continue),
            }
        };
        let Some(f) = f else {
            return Ok(Decision::Continue);
        };
        vm.store.set_epoch_deadline(self.ticks);
        let action = f
            .call(&mut vm.store, (context, args.0, args.1))
            .map_err(|e| (name, e))?;
        let call = std::mem::take(&mut vm.store.data_mut().call);
        for (k, v) in call.set_attributes {
            ctx.attributes.set(k, v);
        }
        if let Some(reply) = call.local_reply {
            let rule = if reply.details.is_empty() {
                format!("wasm:{}", ctx.filter_id())
            } else {
                reply.details.clone()
            };
            let message = format!(
                "Wasm filter {} answered {} in {name}",
                ctx.filter_id(),
                reply.response.status.as_u16()
            );
            return Ok(Decision::Respond(
                reply.response,
                Reason::new(rule, Severity::High, message),
            ));
        }
        if action != 0 && !call.continued {
            return Err((
                name,
                Error::msg(
                    "the callback paused the stream (Action::Pause) without a local response; \
                     haetae cannot resume streams (no proxy_http_call)",
                ),
            ));
        }
        let mut mods = call.modifications;
        if let Some(body) = call.new_body {
            mods.push(Modification::ReplaceBody(body));
        }
        Ok(if mods.is_empty() {
            Decision::Continue
        } else {
            Decision::Modify(mods)
        })
    }
}

fn header_count(h: &http::HeaderMap, pseudo: usize) -> i32 {
    i32::try_from(h.len() + pseudo).unwrap_or(i32::MAX)
}

/// No body follows the request headers.
fn no_body(h: &http::HeaderMap) -> bool {
    !h.contains_key(http::header::TRANSFER_ENCODING)
        && h.get(http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
}

fn parse_pin(s: &str) -> Option<(usize, u64, i32)> {
    let mut it = s.splitn(3, ':');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

fn snapshot(ctx: &FilterContext<'_>, phase: CallPhase) -> Call {
    let r = ctx.request;
    Call {
        phase,
        request: Some(RequestSnapshot {
            method: r.method().clone(),
            uri: r.uri().clone(),
            headers: r.headers().clone(),
            body: r.body().map(|b| b.bytes.clone()),
            peer: r.peer(),
            client_ip: r.client_ip(),
            tls: r.tls().is_some(),
            service: r.service().map(str::to_owned),
        }),
        response: ctx.response.map(|r| ResponseSnapshot {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.body().map(|b| b.bytes.clone()),
        }),
        attributes: ctx.attributes.clone(),
        ..Call::default()
    }
}

/// The process-wide counters of every `wasm` filter id seen.
fn stats_registry() -> &'static Mutex<std::collections::BTreeMap<String, Arc<WasmStats>>> {
    static STATS: OnceLock<Mutex<std::collections::BTreeMap<String, Arc<WasmStats>>>> =
        OnceLock::new();
    STATS.get_or_init(Mutex::default)
}

/// The counters of filter `id`, created on first use and kept when the policy is reloaded
/// (so they count up like every Prometheus counter).
fn stats_of(id: &str) -> Arc<WasmStats> {
    let mut map = stats_registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(map.entry(id.to_owned()).or_default())
}

/// Writes every `wasm` filter's counters in the Prometheus text format: calls, traps,
/// calls cut at their time budget, instances started, restarts refused.
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write as _;
    let map = stats_registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.is_empty() {
        return;
    }
    type Counter = fn(&WasmStats) -> &AtomicU64;
    let series: [(&str, &str, Counter); 5] = [
        (
            "haetae_wasm_calls_total",
            "Phase runs of a Wasm filter.",
            |s| &s.calls,
        ),
        (
            "haetae_wasm_traps_total",
            "Calls into a Wasm filter that trapped (budget overruns included); each discards its instance.",
            |s| &s.traps,
        ),
        (
            "haetae_wasm_deadline_cuts_total",
            "Calls into a Wasm filter cut at their time budget.",
            |s| &s.timeouts,
        ),
        (
            "haetae_wasm_instances_started_total",
            "Wasm filter instances started (first ones and restarts after traps).",
            |s| &s.instantiations,
        ),
        (
            "haetae_wasm_restarts_refused_total",
            "Restarts refused by max_restarts_per_minute.",
            |s| &s.restarts_refused,
        ),
    ];
    for (name, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (id, stats) in map.iter() {
            let _ = writeln!(
                out,
                "{name}{{filter=\"{id}\"}} {}",
                get(stats).load(Ordering::Relaxed)
            );
        }
    }
}

fn read_module(path: &str) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if meta.len() > MAX_MODULE_BYTES {
        return Err(format!(
            "{path} is {} bytes; modules larger than {MAX_MODULE_BYTES} bytes are refused",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

#[async_trait::async_trait]
impl SecurityFilter for WasmFilter {
    fn phases(&self) -> Phases {
        self.phases
    }

    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        self.run(ctx, CallPhase::RequestHeaders)
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        self.run(ctx, CallPhase::RequestBody)
    }

    async fn on_response_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        self.run(ctx, CallPhase::ResponseHeaders)
    }

    async fn on_response_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        self.run(ctx, CallPhase::ResponseBody)
    }

    async fn on_log(&self, ctx: &mut FilterContext<'_>) -> Result<(), FilterError> {
        self.run(ctx, CallPhase::Log).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use haetae_core::FilterMode;

    use super::*;
    use crate::bus::LogEventSink;
    use crate::filter::{FilterServices, SystemClock};
    use crate::request::{Attributes, RequestView, ResponseView};

    fn block_filter(dir: &std::path::Path) -> (FilterInstance, WasmFilter) {
        let wat = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/wasm/wat/block.wat"
        );
        let path = dir.join("block.wasm");
        std::fs::write(&path, wat::parse_file(wat).unwrap()).unwrap();
        let mut instance = FilterInstance::new("block", KIND);
        instance.config = serde_json::json!({
            "module": path.to_str().unwrap(),
            "configuration": "x-scanner",
            "instances": 1,
        });
        let cfg: WasmConfig = typed_config(&instance).unwrap();
        let filter = WasmFilter::new(&instance, &cfg).unwrap();
        (instance, filter)
    }

    fn stored_policy(bytes: &[u8], signature: Option<String>) -> PolicySnapshot {
        let mut instance = FilterInstance::new("stored-block", KIND);
        let r = WasmModuleRef {
            name: "block".into(),
            version: Some(1),
            sha256: Some(hex::encode(Sha256::digest(bytes))),
            size: Some(bytes.len() as u64),
            signature,
            key_id: None,
        };
        instance.config = serde_json::json!({ "stored": r, "configuration": "x-scanner" });
        let mut policy = PolicySnapshot::default();
        policy.filters.push(instance);
        policy
    }

    #[tokio::test]
    async fn store_modules_are_fetched_checked_and_then_build() {
        let wat = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/wasm/wat/block.wat"
        );
        // A variant of the fixture of its own (a trailing custom section), so no other
        // test has it compiled already.
        let mut bytes = wat::parse_file(wat).unwrap();
        bytes.extend_from_slice(b"\x00\x0a\x09fetchtest");
        let bus = haetae_bus::Bus::in_process();
        let kv = bus
            .kv(haetae_bus::modules::MODULE_BUCKET, Duration::ZERO)
            .await
            .unwrap();
        let policy = stored_policy(&bytes, None);
        let instance = &policy.filters[0];
        let cfg: WasmConfig = typed_config(instance).unwrap();

        // Not fetched: the policy does not build, and the bus does not have it yet.
        let err = WasmFilter::new(instance, &cfg).unwrap_err();
        assert!(err[0].message.contains("has not been fetched"), "{err:?}");
        let err = fetch_store_modules(Some(&*kv), &policy, &[])
            .await
            .unwrap_err();
        assert!(err.retry, "{err}");
        assert!(err.message.contains("not on the bus"), "{err}");

        // Other bytes under its digest: refused for good.
        let digest = hex::encode(Sha256::digest(&bytes));
        haetae_bus::modules::put_module(&*kv, &digest, b"\0asm\x01\0\0\0")
            .await
            .unwrap();
        let err = fetch_store_modules(Some(&*kv), &policy, &[])
            .await
            .unwrap_err();
        assert!(
            !err.retry && err.message.contains("not the pinned SHA-256"),
            "{err}"
        );

        // The right bytes: fetched, compiled, and the filter builds while the lease lives.
        kv.delete(&digest).await.unwrap();
        haetae_bus::modules::put_module(&*kv, &digest, &bytes)
            .await
            .unwrap();
        let lease = fetch_store_modules(Some(&*kv), &policy, &[]).await.unwrap();
        assert_eq!(lease.len(), 1);
        let filter = WasmFilter::new(instance, &cfg).unwrap();
        drop(lease);
        let req = request(&[("x-scanner", "1")]);
        let resp = response();
        let (first, _, _) = lifecycle(&filter, &services(), &req, &resp);
        assert!(matches!(first, Decision::Respond(..)), "{first:?}");

        // Trusted keys: unsigned and wrongly signed are refused even though it is compiled.
        let signer = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[3; 32]);
        let other = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[4; 32]);
        let key = signer.public_key();
        let trusted = [TrustedKey {
            id: TrustedKey::id_of(&key),
            key,
        }];
        let err = fetch_store_modules(Some(&*kv), &policy, &trusted)
            .await
            .unwrap_err();
        assert!(!err.retry && err.message.contains("is not signed"), "{err}");
        let forged = stored_policy(&bytes, Some(hex::encode(other.sign(&bytes))));
        let err = fetch_store_modules(Some(&*kv), &forged, &trusted)
            .await
            .unwrap_err();
        assert!(err.message.contains("no trusted key verifies"), "{err}");
        let signed = stored_policy(&bytes, Some(hex::encode(signer.sign(&bytes))));
        assert_eq!(
            fetch_store_modules(Some(&*kv), &signed, &trusted)
                .await
                .unwrap()
                .len(),
            1
        );

        // Its counters are on /metrics.
        let mut out = String::new();
        render_metrics(&mut out);
        assert!(
            out.contains("haetae_wasm_calls_total{filter=\"stored-block\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE haetae_wasm_traps_total counter"),
            "{out}"
        );
    }

    fn request(headers: &[(&str, &str)]) -> RequestView {
        let mut b = http::Request::builder().uri("/account/transfer?from=1&to=2");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        let peer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        RequestView::new(parts, peer, peer.ip(), None, Some(Arc::from("bank")))
    }

    fn services() -> FilterServices {
        FilterServices {
            events: Arc::new(LogEventSink::default()),
            kv: None,
            clock: Arc::new(SystemClock),
            instance: Arc::from("test"),
        }
    }

    /// Runs the whole lifecycle of one request through the filter: request headers,
    /// response headers, log. Returns the request-headers decision.
    fn lifecycle(
        filter: &WasmFilter,
        services: &FilterServices,
        req: &RequestView,
        resp: &ResponseView,
    ) -> (Decision, Decision, Attributes) {
        let mut attributes = Attributes::default();
        let mut ctx = FilterContext {
            request: req,
            response: None,
            attributes: &mut attributes,
            services,
            filter_id: "block",
            mode: FilterMode::Enforce,
            policy_version: 1,
        };
        let first = filter.run(&mut ctx, CallPhase::RequestHeaders).unwrap();
        ctx.response = Some(resp);
        let second = filter.run(&mut ctx, CallPhase::ResponseHeaders).unwrap();
        filter.run(&mut ctx, CallPhase::Log).unwrap();
        (first, second, attributes)
    }

    fn response() -> ResponseView {
        let (parts, ()) = http::Response::builder()
            .header("content-type", "text/html")
            .body(())
            .unwrap()
            .into_parts();
        ResponseView { parts, body: None }
    }

    #[test]
    fn a_request_gets_one_context_that_is_deleted_in_the_log_phase() {
        let dir = tempfile::tempdir().unwrap();
        let (_, filter) = block_filter(dir.path());
        let services = services();
        let resp = response();
        let req = request(&[("host", "bank.example"), ("user-agent", "app")]);
        for _ in 0..3 {
            let (first, second, attributes) = lifecycle(&filter, &services, &req, &resp);
            assert!(
                matches!(&first, Decision::Modify(m) if m.len() == 1),
                "{first:?}"
            );
            assert!(
                matches!(&second, Decision::Modify(m) if m.len() == 1),
                "{second:?}"
            );
            assert!(attributes.get("wasm.ctx.block").is_some());
        }
        let slot = filter.slots[0].lock().unwrap();
        let vm = slot.vm.as_ref().unwrap();
        assert!(vm.live.is_empty(), "contexts left: {:?}", vm.live);
        assert_eq!(vm.next_context, ROOT_CONTEXT + 4);
        drop(slot);

        let blocked = request(&[("x-scanner", "1")]);
        let (first, _, _) = lifecycle(&filter, &services, &blocked, &resp);
        let Decision::Respond(r, reason) = first else {
            panic!("{first:?}")
        };
        assert_eq!(r.status, http::StatusCode::FORBIDDEN);
        assert_eq!(reason.rule, "wasm-block");
    }

    /// A module with a timer: `proxy_on_tick` runs (driven by traffic) and the callback
    /// after it still sees its request.
    #[test]
    fn ticks_run_before_a_callback_and_leave_its_request_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tick.wasm");
        let module = wat::parse_str(
            r#"(module
              (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
              (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
              (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 2)
              (data (i32.const 16) "request\00path")
              (data (i32.const 32) "x-tickedyn")
              (global $ticks (mut i32) (i32.const 0))
              (global $heap (mut i32) (i32.const 65536))
              (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
                (local $p i32)
                (local.set $p (global.get $heap))
                (global.set $heap (i32.add (global.get $heap) (i32.add (local.get $n) (i32.const 8))))
                (local.get $p))
              (func (export "proxy_abi_version_0_2_1"))
              (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
                (drop (call $period (i32.const 1))) (i32.const 1))
              (func (export "proxy_on_tick") (param i32)
                (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))))
              (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
                (global.set $heap (i32.const 65536))
                (if (call $prop (i32.const 16) (i32.const 12) (i32.const 200) (i32.const 204))
                  (then unreachable))
                (drop (call $add (i32.const 0) (i32.const 32) (i32.const 8)
                  (select (i32.const 40) (i32.const 41) (global.get $ticks)) (i32.const 1)))
                (i32.const 0)))"#,
        )
        .unwrap();
        std::fs::write(&path, module).unwrap();
        let mut instance = FilterInstance::new("tick", KIND);
        instance.config = serde_json::json!({ "module": path.to_str().unwrap(), "instances": 1 });
        let cfg: WasmConfig = typed_config(&instance).unwrap();
        let filter = WasmFilter::new(&instance, &cfg).unwrap();
        let services = services();
        let resp = response();
        let req = request(&[("host", "bank.example")]);
        let ticked = |d: &Decision| match d {
            Decision::Modify(m) => match &m[0] {
                Modification::AppendHeader(n, v) if n == "x-ticked" => v.as_bytes() == b"y",
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        std::thread::sleep(Duration::from_millis(3));
        let (first, _, _) = lifecycle(&filter, &services, &req, &resp);
        assert!(ticked(&first), "the tick ran before the request callback");
    }

    /// The cost of the Wasm filter per request (request headers, response headers, log:
    /// one context created and deleted, two header lookups, two header changes).
    /// `cargo test -p haetae-gateway --release --lib wasm::tests::cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement: run it in release, see the doc comment"]
    fn cost_per_request() {
        let dir = tempfile::tempdir().unwrap();
        let (_, filter) = block_filter(dir.path());
        let services = services();
        let resp = response();
        let req = request(&[
            ("host", "bank.example"),
            ("user-agent", "Mozilla/5.0 (Linux; Android 14) bank-app/3.1"),
            ("accept", "text/html,application/xhtml+xml"),
            ("accept-language", "ko-KR,ko;q=0.9"),
            ("cookie", "JSESSIONID=0123456789abcdef; lang=ko"),
        ]);
        for _ in 0..1_000 {
            lifecycle(&filter, &services, &req, &resp);
        }
        let mut times: Vec<Duration> = (0..20_000)
            .map(|_| {
                let start = Instant::now();
                lifecycle(&filter, &services, &req, &resp);
                start.elapsed()
            })
            .collect();
        times.sort();
        let p50 = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];
        println!("wasm filter per request lifecycle: p50 {p50:?}, p99 {p99:?}");
        assert!(p50 < Duration::from_micros(50), "p50 {p50:?}");
    }
}
