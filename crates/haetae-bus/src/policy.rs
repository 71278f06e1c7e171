//! Policy distribution: the Control Center publishes versioned [`PolicySnapshot`]s, every
//! gateway and relay watches for the newest. Only the newest matters, so a watcher that
//! falls behind skips straight to it; a watcher never sees a version go backwards.

use std::sync::Arc;

use haetae_core::PolicySnapshot;
use tokio::sync::watch;

use crate::{Backend, BusError};

/// What the backends share with watchers: the newest snapshot known, if any.
pub(crate) type PolicyCell = watch::Receiver<Option<Arc<PolicySnapshot>>>;

/// The writing end of a [`PolicyCell`].
pub(crate) type PolicySender = watch::Sender<Option<Arc<PolicySnapshot>>>;

/// Checks a snapshot before it is published: version 1 or more, and a valid policy.
pub(crate) fn check_publishable(snapshot: &PolicySnapshot) -> Result<(), BusError> {
    if snapshot.version == 0 {
        return Err(BusError::StaleVersion {
            current: 0,
            offered: 0,
        });
    }
    snapshot
        .validate()
        .map_err(|errors| BusError::InvalidPolicy {
            version: snapshot.version,
            errors,
        })
}

/// A subscription to policy updates, from [`crate::Bus::watch_policy`].
///
/// The first [`PolicyWatch::next`] returns the current snapshot at once if there is one
/// (a gateway that was offline gets the latest on reconnect); each later call waits for a
/// newer version.
///
/// A watch keeps its bus running (the NATS watcher task, the in-process cell) even when
/// every [`crate::Bus`] handle is dropped.
#[derive(Debug)]
pub struct PolicyWatch {
    cell: PolicyCell,
    delivered: Option<u64>,
    _bus: Arc<dyn Backend>,
}

impl PolicyWatch {
    pub(crate) fn new(cell: PolicyCell, bus: Arc<dyn Backend>) -> PolicyWatch {
        PolicyWatch {
            cell,
            delivered: None,
            _bus: bus,
        }
    }

    /// The next snapshot newer than the last one returned, waiting as long as it takes.
    /// `None` when the bus behind this watch has shut down.
    pub async fn next(&mut self) -> Option<Arc<PolicySnapshot>> {
        loop {
            let newest = self.cell.borrow_and_update().clone();
            if let Some(snapshot) = newest
                && self.delivered.is_none_or(|v| snapshot.version > v)
            {
                self.delivered = Some(snapshot.version);
                return Some(snapshot);
            }
            if self.cell.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The newest snapshot this watch knows of, without waiting (and without marking it as
    /// returned by [`PolicyWatch::next`]).
    #[must_use]
    pub fn current(&self) -> Option<Arc<PolicySnapshot>> {
        self.cell.borrow().clone()
    }
}

/// Replaces the cell's snapshot if `snapshot` is newer; returns whether it did.
pub(crate) fn offer(cell: &PolicySender, snapshot: Arc<PolicySnapshot>) -> bool {
    cell.send_if_modified(|current| {
        let newer = current
            .as_ref()
            .is_none_or(|c| snapshot.version > c.version);
        if newer {
            *current = Some(snapshot);
        }
        newer
    })
}
