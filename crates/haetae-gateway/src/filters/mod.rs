//! The filter kinds a policy can name, one file each, and the [`FilterRegistry`] that
//! builds a filter instance from its kind and typed configuration. Adding a kind is adding
//! a file here and one line in [`FilterRegistry::standard`].

use std::collections::BTreeMap;
use std::sync::Arc;

use haetae_core::{FilterInstance, ListKind, PolicySnapshot};
use serde::de::DeserializeOwned;

use crate::filter::SecurityFilter;

pub mod device_info;
pub mod e2e_fields;
pub mod fds;
pub mod injection;
pub mod restrict;
pub mod security_headers;
pub mod single_session;
pub mod upload_inspect;

pub use device_info::DeviceInfoFilter;
pub use e2e_fields::E2eFieldsFilter;
pub use fds::FdsFilter;
pub use injection::InjectionFilter;
pub use restrict::RestrictFilter;
pub use security_headers::SecurityHeadersFilter;
pub use single_session::SingleSessionFilter;
pub use upload_inspect::UploadInspectFilter;

/// One problem with a filter instance's configuration, at a path relative to the instance
/// (`config.notice_path`, `kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where, relative to the filter instance.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The result of building a filter instance.
pub type BuildResult = Result<Arc<dyn SecurityFilter>, Vec<ConfigProblem>>;

/// Builds a filter of one kind from its instance and the policy (for named lists).
pub type FilterFactory = Arc<dyn Fn(&FilterInstance, &PolicySnapshot) -> BuildResult + Send + Sync>;

/// The known filter kinds.
#[derive(Clone)]
pub struct FilterRegistry {
    kinds: BTreeMap<String, FilterFactory>,
}

impl std::fmt::Debug for FilterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl FilterRegistry {
    /// The standard filters shipped with haetae.
    #[must_use]
    pub fn standard() -> FilterRegistry {
        let mut r = FilterRegistry {
            kinds: BTreeMap::new(),
        };
        r.register(device_info::KIND, Arc::new(device_info::build));
        r.register(e2e_fields::KIND, Arc::new(e2e_fields::build));
        r.register(fds::KIND, Arc::new(fds::build));
        r.register(injection::KIND, Arc::new(injection::build));
        r.register(restrict::KIND, Arc::new(restrict::build));
        r.register(security_headers::KIND, Arc::new(security_headers::build));
        r.register(single_session::KIND, Arc::new(single_session::build));
        r.register(upload_inspect::KIND, Arc::new(upload_inspect::build));
        #[cfg(feature = "wasm")]
        r.register(crate::wasm::KIND, Arc::new(crate::wasm::build));
        r
    }

    /// Adds (or replaces) a kind.
    pub fn register(&mut self, kind: &str, factory: FilterFactory) {
        self.kinds.insert(kind.to_owned(), factory);
    }

    /// The kind names.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    /// Builds an instance, or says everything wrong with it.
    pub fn build(&self, instance: &FilterInstance, policy: &PolicySnapshot) -> BuildResult {
        match self.kinds.get(&instance.kind) {
            Some(factory) => factory(instance, policy),
            None => Err(vec![ConfigProblem::new(
                "kind",
                format!(
                    "unknown filter kind {:?}; known kinds: {}",
                    instance.kind,
                    self.kinds().collect::<Vec<_>>().join(", ")
                ),
            )]),
        }
    }
}

/// Reads an instance's `config` into the kind's typed form.
pub fn typed_config<T: DeserializeOwned>(
    instance: &FilterInstance,
) -> Result<T, Vec<ConfigProblem>> {
    let value = if instance.config.is_null() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        instance.config.clone()
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "config".to_owned()
        } else {
            format!("config.{path}")
        };
        vec![ConfigProblem::new(at, e.into_inner().to_string())]
    })
}

/// Collects the entries of the named lists (which must exist and be of `kind`) and the
/// inline entries, reporting problems at `field`.
pub(crate) fn list_entries(
    policy: &PolicySnapshot,
    lists: &[String],
    kind: ListKind,
    field: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in lists.iter().enumerate() {
        match policy.lists.get(name) {
            Some(list) if list.kind == kind => out.extend(list.entries.iter().cloned()),
            Some(list) => problems.push(ConfigProblem::new(
                format!("config.{field}[{i}]"),
                format!("list {name:?} holds {:?} entries, not {kind:?}", list.kind),
            )),
            None => problems.push(ConfigProblem::new(
                format!("config.{field}[{i}]"),
                format!(
                    "no list named {name:?} in the policy; define it under [policy.lists.{name}]"
                ),
            )),
        }
    }
    out
}
