//! The typed configuration of a haetae deployment, read from one TOML file with `HAETAE_*`
//! environment overrides. Precedence, lowest first: built-in defaults, the file, the
//! environment, then command-line flags (applied by the binary). `docs/configuration.md`
//! documents every key.
//!
//! Environment variables name a key by its path with `__` between levels:
//! `HAETAE_DATA_DIR` sets `data_dir`, `HAETAE_GATEWAY__LISTEN` sets `gateway.listen`.
//! A value is read as a TOML value when it is one (`true`, `8080`, `["a", "b"]`) and as a
//! string otherwise. Only variables whose first part is a known top-level key are applied,
//! so unrelated `HAETAE_*` variables (such as `HAETAE_TEST_PG`) are left alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The prefix of every configuration variable.
pub const ENV_PREFIX: &str = "HAETAE_";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where haetae keeps its state (the SQLite database, the last good policy, spooled
    /// events, quarantine).
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The Control Center.
    pub control: ControlConfig,
    /// The gateway.
    pub gateway: GatewayConfig,
    /// The message bus.
    pub bus: BusConfig,
    /// Proxy-Wasm filter modules deployed through the Control Center.
    pub wasm: WasmDeployConfig,
    /// A policy given in the file itself (`[policy]`, `[[policy.services]]`, ...), as the
    /// standalone gateway uses it. The Control Center publishes the same model on the bus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::PolicySnapshot>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("haetae-data"),
            log: LogConfig::default(),
            control: ControlConfig::default(),
            gateway: GatewayConfig::default(),
            bus: BusConfig::default(),
            wasm: WasmDeployConfig::default(),
            policy: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, or `haetae_gateway=debug,info`.
    pub level: String,
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[control]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Where the Control Center (UI and API) listens.
    pub listen: SocketAddr,
    /// `postgres://...` for PostgreSQL; unset means one SQLite file in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// PEM certificate chain: the Center serves HTTPS (with `tls_key`). Unset: plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// The organisation's remote-support recording public key (P-256, 130 hex digits, from
    /// `haetae remote keygen`): agent consoles record every session encrypted to it. Unset:
    /// sessions are not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_key: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            database_url: None,
            tls_cert: None,
            tls_key: None,
            recording_key: None,
        }
    }
}

/// `[gateway]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where the gateway accepts client traffic.
    pub listen: SocketAddr,
    /// Where the gateway serves `/health` and Prometheus `/metrics`.
    pub admin_listen: SocketAddr,
    /// PEM certificate chain for TLS termination; with `tls_key`. Unset: plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// The name this gateway reports in events and heartbeats (`haetae.instance`).
    pub instance: String,
    /// Where requests that match no service go: an `http://`, `https://` or `h2c://` URL.
    /// Unset: answered with `default_status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_upstream: Option<String>,
    /// The status for requests that match no service when there is no `default_upstream`.
    pub default_status: u16,
    /// PEM file of the CA certificates `https://` upstreams are verified against, instead
    /// of the system's trusted roots (a private CA, or a self-signed upstream). Unset: the
    /// system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<PathBuf>,
    /// Connecting to an upstream, in milliseconds.
    pub upstream_connect_timeout_ms: u64,
    /// From sending a request upstream to its response headers, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// How long a client may take to send its request headers, in milliseconds.
    pub client_header_timeout_ms: u64,
    /// Idle upstream connections are closed after this, in milliseconds.
    pub upstream_idle_timeout_ms: u64,
    /// On shutdown, how long in-flight requests may take to finish, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// The most body bytes buffered for a filter that asks to see a body.
    pub max_body_buffer: usize,
    /// Peers whose `X-Forwarded-For` is believed (IP addresses or CIDR ranges). The client
    /// address is the last untrusted hop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Circuit breaker: this many failures of one filter within `breaker_window_ms` open it.
    pub breaker_failures: u32,
    /// Circuit breaker: the window failures are counted in, in milliseconds.
    pub breaker_window_ms: u64,
    /// Circuit breaker: how long an open breaker waits before one trial call, in ms.
    pub breaker_cooldown_ms: u64,
    /// How often the gateway reports its policy version and filter states, in ms.
    pub heartbeat_interval_ms: u64,
    /// How often the configuration file is checked for changes, in ms (0: only SIGHUP).
    pub policy_poll_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7409)),
            tls_cert: None,
            tls_key: None,
            instance: "gateway".into(),
            default_upstream: None,
            default_status: 404,
            upstream_ca: None,
            upstream_connect_timeout_ms: 3_000,
            upstream_timeout_ms: 30_000,
            client_header_timeout_ms: 10_000,
            upstream_idle_timeout_ms: 60_000,
            shutdown_grace_ms: 10_000,
            max_body_buffer: 1 << 20,
            trusted_proxies: Vec::new(),
            breaker_failures: 5,
            breaker_window_ms: 10_000,
            breaker_cooldown_ms: 30_000,
            heartbeat_interval_ms: 30_000,
            policy_poll_ms: 1_000,
        }
    }
}

/// `[bus]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `embedded` (in-process, one haetae process) or `nats` (a NATS JetStream cluster).
    pub backend: BusBackend,
    /// The NATS server URL when `backend = "nats"`.
    pub nats_url: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            backend: BusBackend::Embedded,
            nats_url: "nats://127.0.0.1:4222".into(),
        }
    }
}

/// `[wasm]`: who may sign the Proxy-Wasm modules the Control Center stores and gateways
/// run. Read by both: the Center refuses to store a module without a valid signature, a
/// gateway refuses to run one, as soon as `trusted_keys` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmDeployConfig {
    /// Ed25519 public keys (64 hex digits each) whose signatures over a module's bytes are
    /// trusted. Empty: modules need no signature.
    pub trusted_keys: Vec<String>,
    /// The largest module the Center accepts, in bytes.
    pub max_module_bytes: u64,
}

impl Default for WasmDeployConfig {
    fn default() -> Self {
        WasmDeployConfig {
            trusted_keys: Vec::new(),
            max_module_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One trusted module-signing key: its 32 bytes and its id (the first 16 hex digits of
/// the SHA-256 of the key), the id a stored module records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key id.
    pub id: String,
    /// The Ed25519 public key.
    pub key: [u8; 32],
}

impl TrustedKey {
    /// The id of a public key.
    #[must_use]
    pub fn id_of(key: &[u8; 32]) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(key)[..8])
    }
}

impl WasmDeployConfig {
    /// The trusted keys, parsed; an entry that is not 64 hex digits is an error naming it.
    pub fn parsed_keys(&self) -> Result<Vec<TrustedKey>, String> {
        self.trusted_keys
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
                    format!(
                        "wasm.trusted_keys[{i}]: {text:?} is not an Ed25519 public key                          (64 hex digits)"
                    )
                })?;
                Ok(TrustedKey {
                    id: TrustedKey::id_of(&key),
                    key,
                })
            })
            .collect()
    }
}

/// Which message bus carries policy, events and shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// In-process channels; everything runs in one process.
    #[default]
    Embedded,
    /// NATS JetStream (KV for policy and state, a stream for events).
    Nats,
}

/// Why a configuration could not be loaded: which source and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML or does not fit the model.
    #[error("{source_name}: {message}")]
    File {
        /// The file's name as given.
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An environment variable does not fit the model.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong.
        message: String,
    },
}

/// The result of loading: the configuration and warnings worth showing (e.g. a variable
/// that looks like a typo and was ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Human-readable warnings.
    pub warnings: Vec<String>,
}

impl Config {
    /// Builds the configuration from a file's text (or none) and environment variables
    /// (pass `std::env::vars()`). `source_name` names the file in error messages.
    pub fn load(
        file_text: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut table = match file_text {
            Some((source_name, text)) => {
                // Parse into the model first, so errors carry the file's line and column.
                toml::from_str::<Config>(text).map_err(|e| ConfigError::File {
                    source_name: source_name.to_owned(),
                    message: e.to_string(),
                })?;
                let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::File {
                    source_name: source_name.to_owned(),
                    message: e.to_string(),
                })?;
                table
            }
            None => toml::Table::new(),
        };
        let top_level = top_level_keys();
        let mut warnings = Vec::new();
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        vars.sort();
        for (var, raw) in vars {
            let path: Vec<String> = var[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if !top_level.contains(&path[0]) {
                if let Some(section) = top_level
                    .iter()
                    .find(|k| path[0].starts_with(&format!("{k}_")))
                {
                    warnings.push(format!(
                        "ignored {var}: to set a key of [{section}] use a double underscore, e.g. HAETAE_{}__KEY",
                        section.to_ascii_uppercase()
                    ));
                }
                continue;
            }
            apply_env(&mut table, &var, &path, &raw)?;
        }
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Env {
                var: "HAETAE_*".into(),
                message: e.to_string(),
            })?;
        Ok(Loaded { config, warnings })
    }
}

fn top_level_keys() -> Vec<String> {
    match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Sets `path` in `table` to the variable's value: first as a TOML value, and if the model
/// rejects that (a numeric-looking password, say), as a string.
fn apply_env(
    table: &mut toml::Table,
    var: &str,
    path: &[String],
    raw: &str,
) -> Result<(), ConfigError> {
    let typed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let mut last_error = String::new();
    for value in typed
        .into_iter()
        .chain([toml::Value::String(raw.to_owned())])
    {
        let mut candidate = table.clone();
        set_path(&mut candidate, path, value).map_err(|message| ConfigError::Env {
            var: var.to_owned(),
            message,
        })?;
        match Config::deserialize(toml::Value::Table(candidate.clone())) {
            Ok(_) => {
                *table = candidate;
                return Ok(());
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(ConfigError::Env {
        var: var.to_owned(),
        message: last_error.trim().to_owned(),
    })
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("names no key".into());
    };
    let mut cur = table;
    for key in parents {
        let entry = cur
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{key} is not a section")),
        };
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let loaded = Config::load(None, env(&[])).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.config.gateway.listen.port(), 7480);
        assert_eq!(loaded.config.control.listen.port(), 7400);
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let file = r#"
            data_dir = "/var/lib/haetae"
            [gateway]
            listen = "0.0.0.0:8080"
            admin_listen = "127.0.0.1:9901"
            [log]
            format = "json"
        "#;
        let loaded = Config::load(
            Some(("haetae.toml", file)),
            env(&[
                ("HAETAE_GATEWAY__LISTEN", "127.0.0.1:9090"),
                ("HAETAE_BUS__BACKEND", "nats"),
                (
                    "HAETAE_CONTROL__DATABASE_URL",
                    "postgres://postgres@127.0.0.1/test",
                ),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(
            c.gateway.listen,
            "127.0.0.1:9090".parse().unwrap(),
            "env beats file"
        );
        assert_eq!(
            c.gateway.admin_listen,
            "127.0.0.1:9901".parse().unwrap(),
            "file beats default"
        );
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/haetae"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.bus.backend, BusBackend::Nats);
        assert_eq!(
            c.control.database_url.as_deref(),
            Some("postgres://postgres@127.0.0.1/test")
        );
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn a_value_that_looks_numeric_is_kept_as_a_string_where_the_model_wants_one() {
        let loaded = Config::load(None, env(&[("HAETAE_LOG__LEVEL", "1234")])).unwrap();
        assert_eq!(loaded.config.log.level, "1234");
    }

    #[test]
    fn unrelated_haetae_variables_are_ignored_and_likely_typos_warned_about() {
        let loaded = Config::load(
            None,
            env(&[
                ("HAETAE_TEST_PG", "postgres://x"),
                ("HAETAE_GATEWAY_LISTEN", "127.0.0.1:1"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("HAETAE_GATEWAY__KEY"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let err = Config::load(None, env(&[("HAETAE_GATEWAY__LISTEN", "not-an-address")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable HAETAE_GATEWAY__LISTEN:"),
            "{err}"
        );
        let err = Config::load(None, env(&[("HAETAE_GATEWAY__LISTN", "127.0.0.1:1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HAETAE_GATEWAY__LISTN") && err.contains("listn"),
            "{err}"
        );
    }

    #[test]
    fn a_file_may_carry_the_gateway_policy_in_its_policy_section() {
        let file = r#"
            [gateway]
            listen = "127.0.0.1:8080"
            tls_cert = "cert.pem"
            [policy]
            version = 7
            [[policy.services]]
            id = "all"
            upstream = "http://127.0.0.1:9000"
        "#;
        let c = Config::load(Some(("gw.toml", file)), env(&[]))
            .unwrap()
            .config;
        assert_eq!(c.gateway.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(c.gateway.default_status, 404);
        let policy = c.policy.expect("the policy section is read");
        assert_eq!(policy.version, 7);
        assert_eq!(policy.services[0].id, "all");
    }

    #[test]
    fn a_bad_file_is_named_with_line_and_key() {
        let err = Config::load(Some(("site.toml", "[gateway]\nlisten = 5\n")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("site.toml:"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = Config::load(Some(("site.toml", "[gatway]\n")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gatway"), "{err}");
    }
}
