//! Event ingest: reads the bus's event stream as the durable consumer `control-center`,
//! stores each batch (idempotent on `event.id`), records gateway heartbeats, acknowledges,
//! and feeds the dashboard's live view.

use std::sync::Arc;
use std::time::Duration;

use haetae_bus::Bus;
use haetae_core::Event;
use tokio::sync::watch;

use crate::alerts::Alert;
use crate::http::state::{AppState, LiveEvent};
use crate::store::gateways::GatewayStatus;
use crate::store::micros;

/// The durable consumer name the Control Center reads events as.
pub const DURABLE: &str = "control-center";
/// The action gateways send their heartbeat with.
pub const HEARTBEAT_ACTION: &str = "gateway.heartbeat";
/// The action of a gateway's report that it runs a new policy version.
pub const POLICY_APPLIED_ACTION: &str = "gateway.policy_applied";
/// Events per stored batch.
pub const BATCH: usize = 1000;

fn live(e: &Event) -> LiveEvent {
    LiveEvent {
        id: e.id().to_string(),
        ts: micros(e.timestamp),
        action: e.event.action.clone(),
        outcome: serde_json::to_value(e.event.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        service: e.service.as_ref().map(|s| s.id.clone()),
        user: e.user.as_ref().map(|u| u.id.clone()),
        device: e.device.as_ref().map(|d| d.id.clone()),
        filter: e.haetae.filter.clone(),
        severity: e.event.severity.as_str().to_owned(),
    }
}

/// Stores one batch of events: heartbeats update the gateway table, everything else goes to
/// the events table; the new events go to the live feed.
pub async fn store_batch(state: &AppState, events: Vec<Event>) -> Result<(), crate::StoreError> {
    let (beats, rest): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| e.event.action == HEARTBEAT_ACTION);
    for b in &beats {
        let Some(instance) = b.haetae.instance.clone() else {
            continue;
        };
        state
            .store
            .record_heartbeat(&GatewayStatus {
                instance,
                last_seen: micros(b.timestamp),
                policy_version: b.haetae.policy_version.and_then(|v| i64::try_from(v).ok()),
                detail: serde_json::to_string(&b.labels).unwrap_or_else(|_| "{}".into()),
            })
            .await?;
    }
    for e in rest
        .iter()
        .filter(|e| e.event.action == POLICY_APPLIED_ACTION)
    {
        if let (Some(instance), Some(version)) = (
            e.haetae.instance.as_deref(),
            e.haetae.policy_version.and_then(|v| i64::try_from(v).ok()),
        ) {
            state
                .store
                .record_policy_applied(instance, micros(e.timestamp), version)
                .await?;
        }
    }
    if !rest.is_empty() {
        state.store.insert_events(&rest).await?;
        // Nobody listening is fine.
        let _ = state.live.send(Arc::new(rest.iter().map(live).collect()));
        state.alerts.dispatcher.events(&rest);
    }
    let raised = {
        let mut engine = state
            .alerts
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if engine.is_empty() {
            Vec::new()
        } else {
            beats
                .iter()
                .chain(rest.iter())
                .flat_map(|e| engine.observe(e))
                .collect()
        }
    };
    raise_alerts(state, raised).await;
    Ok(())
}

/// Stores alerts, pushes them to the dashboard and queues them for their notifiers. A
/// failure to store is logged, not returned: the events are stored already, and
/// redelivering them would count them twice.
pub async fn raise_alerts(state: &AppState, alerts: Vec<Alert>) {
    if alerts.is_empty() {
        return;
    }
    if let Err(e) = state.store.insert_alerts(&alerts).await {
        tracing::error!(error = %e, count = alerts.len(), "cannot store alerts");
    }
    for a in &alerts {
        tracing::warn!(rule = %a.rule_id, severity = %a.severity, summary = %a.summary, "alert");
        let notify = state
            .alerts
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .notify_of(&a.rule_id);
        state.alerts.dispatcher.alert(a, &notify);
    }
    let _ = state.alerts.live.send(Arc::new(alerts));
}

/// Every 15 s: reloads rules and notifiers (changes by another Center on the same
/// database) and checks `gateway-silent` rules, until `stop` turns true.
pub async fn alert_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = state.alerts.reload(&state.store).await {
            tracing::warn!(error = %e, "cannot load alert rules");
        }
        match state.store.gateways().await {
            Ok(gateways) => {
                let raised = state
                    .alerts
                    .engine
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .check_gateways(&gateways, crate::store::now_micros());
                raise_alerts(&state, raised).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read gateways for alert rules"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs until `stop` turns true: fetch, store, acknowledge. A batch that cannot be stored is
/// not acknowledged, so the bus delivers it again.
pub async fn run(state: AppState, bus: Bus, mut stop: watch::Receiver<bool>) {
    let mut subscription = loop {
        match bus.subscribe_events(DURABLE).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to events; retrying in 5 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = tokio::select! {
            b = subscription.next_batch(BATCH, Duration::from_millis(500)) => b,
            _ = stop.changed() => return,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "event fetch failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for r in &batch.rejected {
            tracing::warn!(error = %r, "a message on the event stream is not a haetae event");
        }
        if batch.is_empty() {
            continue;
        }
        let events: Vec<Event> = batch.events.iter().map(|r| r.event.clone()).collect();
        match store_batch(&state, events).await {
            Ok(()) => {
                if let Err(e) = batch.ack().await {
                    tracing::warn!(error = %e, "cannot acknowledge a stored batch; it will come again (harmless)");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store an event batch; the bus will deliver it again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
