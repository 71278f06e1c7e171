//! Where the gateway's policy comes from: the configuration file (its `[policy]` section,
//! reloaded on SIGHUP and when the file changes) and the last good policy kept on disk, used
//! at start when no other source has one. A reload that fails leaves the running policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use haetae_core::{Config, PolicySnapshot};
use tokio::sync::watch;

use crate::gateway::Gateway;

/// The last policy the gateway applied, kept as JSON on disk.
#[derive(Debug, Clone)]
pub struct LastGoodPolicy {
    path: PathBuf,
}

impl LastGoodPolicy {
    /// `<data_dir>/gateway/last-good-policy.json`.
    #[must_use]
    pub fn in_data_dir(data_dir: &Path) -> LastGoodPolicy {
        LastGoodPolicy {
            path: data_dir.join("gateway").join("last-good-policy.json"),
        }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored policy; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<PolicySnapshot>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        PolicySnapshot::from_json(&text).map(Some).map_err(|e| {
            format!(
                "{}: not a policy ({e}); delete it to start without one",
                self.path.display()
            )
        })
    }

    /// Stores a policy atomically (write a temporary file, then rename).
    pub fn save(&self, policy: &PolicySnapshot) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(policy).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Reads the `[policy]` section of a configuration file (with `HAETAE_*` overrides
/// applied as at start). `Ok(None)`: the file has no policy section.
pub fn read_policy_file(path: &Path) -> Result<Option<PolicySnapshot>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    Config::load(Some((&name, &text)), std::env::vars())
        .map(|loaded| loaded.config.policy)
        .map_err(|e| e.to_string())
}

/// Applies a policy and, when it is accepted, stores it as the last good one. Logs every
/// problem of a rejected policy.
pub fn apply_and_keep(
    gateway: &Gateway,
    policy: &PolicySnapshot,
    last_good: Option<&LastGoodPolicy>,
) -> bool {
    match gateway.apply_policy(policy) {
        Ok(()) => {
            tracing::info!(version = policy.version, "policy applied");
            if let Some(store) = last_good
                && let Err(e) = store.save(policy)
            {
                tracing::warn!(
                    "cannot store the last good policy in {}: {e}",
                    store.path().display()
                );
            }
            true
        }
        Err(errors) => {
            tracing::error!(
                version = policy.version,
                running = gateway.policy_version(),
                "policy rejected; the running policy stays. {errors}"
            );
            false
        }
    }
}

/// How a gateway takes Proxy-Wasm modules from the Control Center's store: the keys it
/// trusts to have signed them (`[wasm] trusted_keys`; empty: signatures are not required).
#[derive(Debug, Clone, Default)]
pub struct ModuleTrust {
    /// The trusted Ed25519 keys.
    pub trusted_keys: Vec<haetae_core::TrustedKey>,
}

impl ModuleTrust {
    /// From the `[wasm]` section; a malformed key is an error naming it.
    pub fn from_config(config: &haetae_core::WasmDeployConfig) -> Result<ModuleTrust, String> {
        Ok(ModuleTrust {
            trusted_keys: config.parsed_keys()?,
        })
    }
}

/// How often fetching a policy's store modules is tried before the policy is given up
/// (until a newer one comes), and the pause between tries.
const FETCH_ATTEMPTS: u32 = 20;
const FETCH_PAUSE: Duration = Duration::from_millis(250);

/// Makes a policy from the bus ready and applies it: fetches, checks and compiles the
/// store modules it names (off the request path, retrying while the bus has not got them),
/// then applies it on a blocking thread (filters start their first instance there) and
/// keeps it as the last good policy. The routing table is swapped in one step, so requests
/// in flight finish on the old chains and new ones get the new chains: none fail. Returns
/// whether the policy was applied.
pub async fn prepare_and_apply(
    gateway: &Arc<Gateway>,
    policy: Arc<PolicySnapshot>,
    kv: Option<&dyn haetae_bus::KvStore>,
    trust: &ModuleTrust,
    last_good: Option<&LastGoodPolicy>,
) -> bool {
    #[cfg(feature = "wasm")]
    let lease = {
        let mut attempt = 1;
        loop {
            match crate::wasm::fetch_store_modules(kv, &policy, &trust.trusted_keys).await {
                Ok(lease) => break lease,
                Err(e) if e.retry && attempt < FETCH_ATTEMPTS => {
                    tracing::warn!(
                        version = policy.version,
                        attempt,
                        "policy waits for its Wasm modules: {e}"
                    );
                    attempt += 1;
                    tokio::time::sleep(FETCH_PAUSE).await;
                }
                Err(e) => {
                    tracing::error!(
                        version = policy.version,
                        running = gateway.policy_version(),
                        "policy rejected; the running policy stays. {e}"
                    );
                    return false;
                }
            }
        }
    };
    #[cfg(not(feature = "wasm"))]
    let _ = (kv, trust);
    let gw = Arc::clone(gateway);
    let keep = last_good.cloned();
    let applied =
        tokio::task::spawn_blocking(move || apply_and_keep(&gw, &policy, keep.as_ref())).await;
    #[cfg(feature = "wasm")]
    drop(lease);
    applied.unwrap_or_else(|e| {
        tracing::error!("applying the policy failed: {e}");
        false
    })
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reloads the policy from `path` on SIGHUP and, when `poll` is not zero, whenever the
/// file's modification time or size changes. Ends when `shutdown` turns true.
pub async fn watch_policy_file(
    gateway: Arc<Gateway>,
    path: PathBuf,
    last_good: Option<LastGoodPolicy>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); reloading on file change only");
            None
        }
    };
    let mut stamp = file_stamp(&path);
    let poll_every = if poll.is_zero() {
        Duration::from_secs(3600)
    } else {
        poll
    };
    loop {
        let reason = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            () = tokio::time::sleep(poll_every) => {
                let now = file_stamp(&path);
                if poll.is_zero() || now == stamp { continue; }
                "file change"
            }
            _ = shutdown.changed() => return,
        };
        stamp = file_stamp(&path);
        tracing::info!("reloading the policy from {} ({reason})", path.display());
        match read_policy_file(&path) {
            Ok(Some(policy)) => {
                apply_and_keep(&gateway, &policy, last_good.as_ref());
            }
            Ok(None) => tracing::warn!(
                "{} has no [policy] section; the running policy stays",
                path.display()
            ),
            Err(e) => tracing::error!("{e}; the running policy stays"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_good_policy_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("haetae-gw-lastgood-{}", std::process::id()));
        let store = LastGoodPolicy::in_data_dir(&dir);
        assert_eq!(store.load(), Ok(None));
        let policy = PolicySnapshot::from_toml(
            "version = 9\n[[services]]\nid = \"a\"\nupstream = \"http://127.0.0.1:1\"\n",
        )
        .unwrap();
        store.save(&policy).unwrap();
        assert_eq!(store.load(), Ok(Some(policy)));
        std::fs::write(store.path(), "{").unwrap();
        let err = store.load().unwrap_err();
        assert!(err.contains("last-good-policy.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
