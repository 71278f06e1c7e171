//! Stored security events: batch ingest that is idempotent on the event id, search by the
//! fields the UI filters on, export pages, the dashboard's aggregates, and retention by age.

use haetae_core::Event;
use serde::Serialize;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use super::{Store, StoreError, ctx, micros, with_db};

/// The most rows one search returns.
pub const MAX_SEARCH_LIMIT: u32 = 1000;

/// Rows per multi-row `INSERT`: well below SQLite's and PostgreSQL's bind-parameter limits
/// (14 parameters a row).
const INSERT_CHUNK: usize = 500;

/// Which events to find. Every field that is set must match; text fields match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// At or after this time.
    pub from: Option<OffsetDateTime>,
    /// Before this time.
    pub to: Option<OffsetDateTime>,
    /// `gateway`, `docscan`, `remote`, `control`.
    pub component: Option<String>,
    /// `event.action`, e.g. `restrict.block`.
    pub action: Option<String>,
    /// `success`, `failure`, `unknown`.
    pub outcome: Option<String>,
    /// `user.id`.
    pub user: Option<String>,
    /// `device.id`.
    pub device: Option<String>,
    /// `service.id`.
    pub service: Option<String>,
    /// The most rows to return (1..=[`MAX_SEARCH_LIMIT`]).
    pub limit: u32,
    /// Only rows after this one in newest-first order: the previous page's last `(ts, id)`.
    pub before: Option<(i64, String)>,
}

/// One stored event: the indexed columns and the full ECS JSON.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// `event.id`.
    pub id: String,
    /// `@timestamp` in microseconds since the epoch.
    pub ts: i64,
    /// `haetae.component`.
    pub component: String,
    /// `event.action`.
    pub action: String,
    /// `event.outcome`.
    pub outcome: String,
    /// `event.severity` (ECS number).
    pub severity: i64,
    /// `user.id`.
    pub user_id: Option<String>,
    /// `device.id`.
    pub device_id: Option<String>,
    /// `service.id`.
    pub service_id: Option<String>,
    /// `source.ip`.
    pub source_ip: Option<String>,
    /// `haetae.filter`.
    pub filter_id: Option<String>,
    /// The event as received (ECS JSON).
    pub body: String,
}

/// Counts for one minute of the dashboard's time chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    /// The minute, as microseconds since the epoch of its start.
    pub minute: i64,
    /// Events in that minute.
    pub total: i64,
    /// Of them, with outcome `failure` (blocked or refused).
    pub failures: i64,
}

/// A value and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopEntry {
    /// The value (a user id, device id, filter id, service id).
    pub value: String,
    /// How many events carried it.
    pub count: i64,
}

fn outcome_name(event: &Event) -> &'static str {
    match event.event.outcome {
        haetae_core::Outcome::Success => "success",
        haetae_core::Outcome::Failure => "failure",
        haetae_core::Outcome::Unknown => "unknown",
    }
}

/// `event.kind` as its JSON name (without a serde round trip per event).
fn kind_name(event: &Event) -> &'static str {
    use haetae_core::EventKind;
    match event.event.kind {
        EventKind::Event => "event",
        EventKind::Alert => "alert",
        EventKind::Metric => "metric",
        EventKind::State => "state",
        EventKind::PipelineError => "pipeline_error",
    }
}

/// Events per PostgreSQL statement.
const PG_CHUNK: usize = 5000;

/// PostgreSQL: one `INSERT ... SELECT FROM UNNEST(arrays)` per chunk, so a batch is one
/// statement with 14 array parameters instead of thousands of scalar ones (prepared once
/// per connection by sqlx's statement cache). A batch of at most [`PG_CHUNK`] events is one
/// statement, atomic by itself, so it runs without `BEGIN`/`COMMIT` (two round trips
/// fewer); a larger one runs its chunks in a transaction.
async fn insert_events_postgres(pool: &sqlx::PgPool, events: &[Event]) -> Result<u64, StoreError> {
    if events.len() <= PG_CHUNK {
        return insert_chunk_postgres(pool, events).await;
    }
    let mut tx = pool.begin().await.map_err(ctx("starting an event batch"))?;
    let mut inserted = 0;
    for chunk in events.chunks(PG_CHUNK) {
        inserted += insert_chunk_postgres(&mut *tx, chunk).await?;
    }
    tx.commit()
        .await
        .map_err(ctx("committing an event batch"))?;
    Ok(inserted)
}

async fn insert_chunk_postgres<'c, E>(executor: E, chunk: &[Event]) -> Result<u64, StoreError>
where
    E: sqlx::PgExecutor<'c>,
{
    let n = chunk.len();
    let mut ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut component = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut outcome = Vec::with_capacity(n);
    let mut severity = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut user: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut device: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut service: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut ip: Vec<Option<String>> = Vec::with_capacity(n);
    let mut filter: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut instance: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    for e in chunk {
        ids.push(e.event.id.to_string());
        ts.push(micros(e.timestamp));
        component.push(e.haetae.component.as_str());
        action.push(e.event.action.as_str());
        outcome.push(outcome_name(e));
        severity.push(i64::from(e.event.severity.ecs_number()));
        kind.push(kind_name(e));
        user.push(e.user.as_ref().map(|u| u.id.as_str()));
        device.push(e.device.as_ref().map(|d| d.id.as_str()));
        service.push(e.service.as_ref().map(|s| s.id.as_str()));
        ip.push(e.source.as_ref().map(|s| s.ip.to_string()));
        filter.push(e.haetae.filter.as_deref());
        instance.push(e.haetae.instance.as_deref());
        body.push(e.to_json());
    }
    Ok(sqlx::query(
        "INSERT INTO events (id, ts, component, action, outcome, severity, kind, user_id, \
         device_id, service_id, source_ip, filter_id, instance, body) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
         $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::text[], $14::text[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(ts)
    .bind(component)
    .bind(action)
    .bind(outcome)
    .bind(severity)
    .bind(kind)
    .bind(user)
    .bind(device)
    .bind(service)
    .bind(ip)
    .bind(filter)
    .bind(instance)
    .bind(body)
    .execute(executor)
    .await
    .map_err(ctx("inserting events"))?
    .rows_affected())
}

impl Store {
    /// Stores events, in multi-row inserts inside one transaction. An event whose id is
    /// already stored is skipped, so redelivered events are harmless. Returns how many were
    /// new.
    pub async fn insert_events(&self, events: &[Event]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let pool = match &self.db {
            super::Db::Postgres(pool) => return insert_events_postgres(pool, events).await,
            super::Db::Sqlite(pool) => pool,
        };
        let mut tx = pool.begin().await.map_err(ctx("starting an event batch"))?;
        let mut inserted = 0;
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO events (id, ts, component, action, outcome, severity, kind, \
                 user_id, device_id, service_id, source_ip, filter_id, instance, body) ",
            );
            qb.push_values(chunk, |mut row, e| {
                row.push_bind(e.event.id.to_string())
                    .push_bind(micros(e.timestamp))
                    .push_bind(e.haetae.component.as_str())
                    .push_bind(e.event.action.clone())
                    .push_bind(outcome_name(e))
                    .push_bind(i64::from(e.event.severity.ecs_number()))
                    .push_bind(kind_name(e))
                    .push_bind(e.user.as_ref().map(|u| u.id.clone()))
                    .push_bind(e.device.as_ref().map(|d| d.id.clone()))
                    .push_bind(e.service.as_ref().map(|s| s.id.clone()))
                    .push_bind(e.source.as_ref().map(|s| s.ip.to_string()))
                    .push_bind(e.haetae.filter.clone())
                    .push_bind(e.haetae.instance.clone())
                    .push_bind(e.to_json());
            });
            qb.push(" ON CONFLICT (id) DO NOTHING");
            inserted += qb
                .build()
                .execute(&mut *tx)
                .await
                .map_err(ctx("inserting events"))?
                .rows_affected();
        }
        tx.commit()
            .await
            .map_err(ctx("committing an event batch"))?;
        Ok(inserted)
    }

    /// Finds events, newest first.
    pub async fn search_events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::from(q.limit.clamp(1, MAX_SEARCH_LIMIT));
        with_db!(&self.db, pool => {
            let mut qb = QueryBuilder::new(
                "SELECT id, ts, component, action, outcome, severity, user_id, device_id, \
                 service_id, source_ip, filter_id, body FROM events WHERE 1 = 1",
            );
            if let Some(from) = q.from {
                qb.push(" AND ts >= ").push_bind(micros(from));
            }
            if let Some(to) = q.to {
                qb.push(" AND ts < ").push_bind(micros(to));
            }
            if let Some((ts, id)) = &q.before {
                qb.push(" AND (ts < ").push_bind(*ts).push(" OR (ts = ").push_bind(*ts);
                qb.push(" AND id < ").push_bind(id.clone()).push("))");
            }
            for (column, value) in [
                ("component", &q.component),
                ("action", &q.action),
                ("outcome", &q.outcome),
                ("user_id", &q.user),
                ("device_id", &q.device),
                ("service_id", &q.service),
            ] {
                if let Some(v) = value {
                    qb.push(" AND ").push(column).push(" = ").push_bind(v.clone());
                }
            }
            qb.push(" ORDER BY ts DESC, id DESC LIMIT ").push_bind(limit);
            let rows = qb
                .build()
                .fetch_all(pool)
                .await
                .map_err(ctx("searching events"))?;
            rows.iter()
                .map(|r| {
                    Ok(StoredEvent {
                        id: r.try_get("id")?,
                        ts: r.try_get("ts")?,
                        component: r.try_get("component")?,
                        action: r.try_get("action")?,
                        outcome: r.try_get("outcome")?,
                        severity: r.try_get("severity")?,
                        user_id: r.try_get("user_id")?,
                        device_id: r.try_get("device_id")?,
                        service_id: r.try_get("service_id")?,
                        source_ip: r.try_get("source_ip")?,
                        filter_id: r.try_get("filter_id")?,
                        body: r.try_get("body")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading events"))
        })
    }

    /// Deletes events older than `cutoff`; returns how many.
    pub async fn delete_events_before(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query("DELETE FROM events WHERE ts < $1")
                .bind(micros(cutoff))
                .execute(pool)
                .await
                .map_err(ctx("deleting old events"))?
                .rows_affected())
        })
    }

    /// Events per minute since `since`, oldest first; minutes without events are absent.
    pub async fn events_per_minute(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT (ts / 60000000) * 60000000 AS minute, COUNT(*) AS total, \
                 SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS failures \
                 FROM events WHERE ts >= $1 GROUP BY 1 ORDER BY 1",
            )
            .bind(micros(since))
            .fetch_all(pool)
            .await
            .map_err(ctx("counting events per minute"))?;
            rows.iter()
                .map(|r| {
                    Ok(MinuteCount {
                        minute: r.try_get("minute")?,
                        total: r.try_get("total")?,
                        failures: r.try_get("failures")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading event counts"))
        })
    }

    /// The most frequent values of `column` among events since `since` with outcome
    /// `failure`, most frequent first. `column` is one of `user_id`, `device_id`,
    /// `service_id`, `filter_id`, `source_ip`.
    pub async fn top_failures(
        &self,
        column: TopColumn,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<TopEntry>, StoreError> {
        let col = column.as_str();
        let sql = format!(
            "SELECT {col} AS value, COUNT(*) AS n FROM events \
             WHERE ts >= $1 AND outcome = 'failure' AND {col} IS NOT NULL \
             GROUP BY {col} ORDER BY n DESC, value LIMIT $2"
        );
        with_db!(&self.db, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(micros(since))
                .bind(i64::from(limit.min(100)))
                .fetch_all(pool)
                .await
                .map_err(ctx("finding the most blocked values"))?;
            rows.iter()
                .map(|r| Ok(TopEntry { value: r.try_get("value")?, count: r.try_get("n")? }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading the most blocked values"))
        })
    }

    /// Groups the events of a period by one column: the most frequent values with their
    /// counts, first and last time and the users behind them, and a time series of those
    /// values per bucket. The analysis page and `GET /api/v1/analysis` (seed paper 001:
    /// "24-hour monitoring of restricted devices' attempts, with the user ids behind them").
    pub async fn aggregate_events(&self, q: &AggregateQuery) -> Result<Aggregate, StoreError> {
        let col = q.by.as_str();
        let limit = i64::from(q.limit.clamp(1, 100));
        let bucket = q.bucket_seconds.max(1).saturating_mul(1_000_000);
        with_db!(&self.db, pool => {
            let mut qb = QueryBuilder::new("SELECT ");
            qb.push(col).push(
                " AS value, COUNT(*) AS n, \
                 SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS failures, \
                 MIN(ts) AS first_ts, MAX(ts) AS last_ts FROM events",
            );
            push_aggregate_conditions(&mut qb, q);
            qb.push(" GROUP BY ")
                .push(col)
                .push(" ORDER BY n DESC, value LIMIT ")
                .push_bind(limit);
            let rows = qb
                .build()
                .fetch_all(pool)
                .await
                .map_err(ctx("aggregating events"))?;
            let mut out = rows
                .iter()
                .map(|r| {
                    Ok(AggregateRow {
                        value: r.try_get("value")?,
                        count: r.try_get("n")?,
                        failures: r.try_get("failures")?,
                        first_ts: r.try_get("first_ts")?,
                        last_ts: r.try_get("last_ts")?,
                        users: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading aggregated events"))?;
            if out.is_empty() {
                return Ok(Aggregate::default());
            }
            let values: Vec<String> = out.iter().map(|r| r.value.clone()).collect();

            let mut qb = QueryBuilder::new("SELECT (ts / ");
            qb.push(bucket)
                .push(") * ")
                .push(bucket)
                .push(" AS bucket, ")
                .push(col)
                .push(" AS value, COUNT(*) AS n FROM events");
            push_aggregate_conditions(&mut qb, q);
            qb.push(" AND ").push(col).push(" IN (");
            let mut sep = qb.separated(", ");
            for v in &values {
                sep.push_bind(v.clone());
            }
            qb.push(") GROUP BY 1, 2 ORDER BY 1, 2");
            let series = qb
                .build()
                .fetch_all(pool)
                .await
                .map_err(ctx("aggregating events over time"))?
                .iter()
                .map(|r| {
                    Ok(SeriesPoint {
                        bucket: r.try_get("bucket")?,
                        value: r.try_get("value")?,
                        count: r.try_get("n")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading the time series"))?;

            if q.by != TopColumn::User {
                let mut qb = QueryBuilder::new("SELECT ");
                qb.push(col).push(" AS value, user_id, COUNT(*) AS n FROM events");
                push_aggregate_conditions(&mut qb, q);
                qb.push(" AND user_id IS NOT NULL AND ").push(col).push(" IN (");
                let mut sep = qb.separated(", ");
                for v in &values {
                    sep.push_bind(v.clone());
                }
                qb.push(") GROUP BY 1, 2 ORDER BY 3 DESC, 2");
                for r in qb
                    .build()
                    .fetch_all(pool)
                    .await
                    .map_err(ctx("finding the users behind aggregated events"))?
                {
                    let value: String = r.try_get("value").map_err(ctx("reading users"))?;
                    let user: String = r.try_get("user_id").map_err(ctx("reading users"))?;
                    let n: i64 = r.try_get("n").map_err(ctx("reading users"))?;
                    if let Some(row) = out.iter_mut().find(|row| row.value == value)
                        && row.users.len() < USERS_PER_VALUE
                    {
                        row.users.push(TopEntry { value: user, count: n });
                    }
                }
            }
            Ok(Aggregate { rows: out, series })
        })
    }

    /// How many events are stored.
    pub async fn count_events(&self) -> Result<i64, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM events")
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(ctx("counting events"))
        })
    }
}

/// The event columns [`Store::top_failures`] can group by (a closed set, so no column name
/// ever comes from input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopColumn {
    /// `user.id`.
    User,
    /// `device.id`.
    Device,
    /// `service.id`.
    Service,
    /// `haetae.filter`.
    Filter,
    /// `source.ip`.
    SourceIp,
    /// `event.action`.
    Action,
}

impl TopColumn {
    fn as_str(self) -> &'static str {
        match self {
            TopColumn::User => "user_id",
            TopColumn::Device => "device_id",
            TopColumn::Service => "service_id",
            TopColumn::Filter => "filter_id",
            TopColumn::SourceIp => "source_ip",
            TopColumn::Action => "action",
        }
    }

    /// The column for a query parameter (`user`, `device`, `service`, `filter`, `ip`,
    /// `action`), or `None` for anything else.
    #[must_use]
    pub fn from_name(name: &str) -> Option<TopColumn> {
        Some(match name {
            "user" => TopColumn::User,
            "device" => TopColumn::Device,
            "service" => TopColumn::Service,
            "filter" => TopColumn::Filter,
            "ip" => TopColumn::SourceIp,
            "action" => TopColumn::Action,
            _ => return None,
        })
    }

    /// The query parameter naming this column (the inverse of [`TopColumn::from_name`]).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TopColumn::User => "user",
            TopColumn::Device => "device",
            TopColumn::Service => "service",
            TopColumn::Filter => "filter",
            TopColumn::SourceIp => "ip",
            TopColumn::Action => "action",
        }
    }
}

/// Which actions an aggregation counts: one action, or every action that starts with a
/// prefix (`restrict.*` in the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    /// Exactly this `event.action`.
    Exact(String),
    /// Every `event.action` starting with this text.
    Prefix(String),
}

impl ActionMatch {
    /// `restrict.*` is a prefix match on `restrict.`; anything else is exact.
    #[must_use]
    pub fn parse(text: &str) -> ActionMatch {
        match text.strip_suffix('*') {
            Some(prefix) => ActionMatch::Prefix(prefix.to_owned()),
            None => ActionMatch::Exact(text.to_owned()),
        }
    }

    /// As the API writes it.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            ActionMatch::Exact(a) => a.clone(),
            ActionMatch::Prefix(p) => format!("{p}*"),
        }
    }
}

/// An aggregation of events over time: the events in `[from, to)` grouped by one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    /// The column to group by.
    pub by: TopColumn,
    /// At or after this time.
    pub from: OffsetDateTime,
    /// Before this time.
    pub to: OffsetDateTime,
    /// The width of one time bucket of the series, in seconds (at least 1).
    pub bucket_seconds: i64,
    /// Only these actions.
    pub action: Option<ActionMatch>,
    /// Only this outcome (`success`, `failure`, `unknown`).
    pub outcome: Option<String>,
    /// How many values (most frequent first), 1..=100.
    pub limit: u32,
}

/// One value of the grouped column over the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AggregateRow {
    /// The value (a device id, user id, address, ...).
    pub value: String,
    /// Events with it.
    pub count: i64,
    /// Of them, with outcome `failure` (blocked or refused).
    pub failures: i64,
    /// The first one, microseconds since the epoch.
    pub first_ts: i64,
    /// The last one.
    pub last_ts: i64,
    /// The users behind those events, most frequent first (at most 5; empty when grouping
    /// by user): who tried from a restricted device.
    pub users: Vec<TopEntry>,
}

/// The count of one value in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, microseconds since the epoch (a multiple of the bucket width).
    pub bucket: i64,
    /// The value.
    pub value: String,
    /// Events with it in the bucket.
    pub count: i64,
}

/// What [`Store::aggregate_events`] finds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Aggregate {
    /// The most frequent values, most frequent first.
    pub rows: Vec<AggregateRow>,
    /// Per time bucket, the counts of those values (buckets without events are absent),
    /// oldest first.
    pub series: Vec<SeriesPoint>,
}

/// The most users listed per aggregated value.
const USERS_PER_VALUE: usize = 5;

/// Appends the period, action and outcome conditions every aggregation query shares.
fn push_aggregate_conditions<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, q: &AggregateQuery)
where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(" WHERE ts >= ")
        .push_bind(micros(q.from))
        .push(" AND ts < ")
        .push_bind(micros(q.to))
        .push(" AND ")
        .push(q.by.as_str())
        .push(" IS NOT NULL");
    match &q.action {
        Some(ActionMatch::Exact(a)) => {
            qb.push(" AND action = ").push_bind(a.clone());
        }
        // A prefix compared with substr rather than LIKE: no wildcard to escape, and the
        // same meaning on both databases (LIKE ignores ASCII case on SQLite only).
        Some(ActionMatch::Prefix(p)) => {
            qb.push(" AND substr(action, 1, ")
                .push(p.chars().count())
                .push(") = ")
                .push_bind(p.clone());
        }
        None => {}
    }
    if let Some(o) = &q.outcome {
        qb.push(" AND outcome = ").push_bind(o.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;
    use haetae_core::{Component, Outcome};
    use time::Duration;

    fn blocked(user: &str, device: &str, minutes_ago: i64) -> Event {
        let mut e = Event::new(Component::Gateway, "restrict.block")
            .outcome(Outcome::Failure)
            .user_id(user)
            .device_id(device)
            .service_id("transfer")
            .filter("restrict-1");
        e.timestamp = OffsetDateTime::now_utc() - Duration::minutes(minutes_ago);
        e
    }

    fn query() -> EventQuery {
        EventQuery {
            limit: 100,
            ..EventQuery::default()
        }
    }

    both_backends!(inserting_the_same_event_twice_stores_it_once, |store| {
        let e = blocked("u1", "d1", 0);
        assert_eq!(
            store.insert_events(std::slice::from_ref(&e)).await.unwrap(),
            1
        );
        assert_eq!(store.insert_events(&[e.clone(), e]).await.unwrap(), 0);
        assert_eq!(store.count_events().await.unwrap(), 1);
    });

    both_backends!(
        a_batch_larger_than_one_insert_statement_is_stored_whole,
        |store| {
            let batch: Vec<Event> = (0..1234)
                .map(|i| blocked(&format!("u{i}"), "d", 0))
                .collect();
            assert_eq!(store.insert_events(&batch).await.unwrap(), 1234);
            assert_eq!(store.count_events().await.unwrap(), 1234);
        }
    );

    both_backends!(
        search_filters_by_every_field_and_returns_the_newest_first,
        |store| {
            let old = blocked("alice", "pc-1", 30);
            let new = blocked("alice", "pc-2", 1);
            let other = Event::new(Component::Control, "login")
                .outcome(Outcome::Success)
                .user_id("bob");
            store
                .insert_events(&[old.clone(), new.clone(), other])
                .await
                .unwrap();

            let found = store
                .search_events(&EventQuery {
                    user: Some("alice".into()),
                    ..query()
                })
                .await
                .unwrap();
            let ids: Vec<String> = found.iter().map(|e| e.id.clone()).collect();
            assert_eq!(ids, [new.id().to_string(), old.id().to_string()]);

            let by_device = store
                .search_events(&EventQuery {
                    device: Some("pc-1".into()),
                    ..query()
                })
                .await
                .unwrap();
            assert_eq!(by_device.len(), 1);
            assert_eq!(by_device[0].id, old.id().to_string());

            let recent = store
                .search_events(&EventQuery {
                    from: Some(OffsetDateTime::now_utc() - Duration::minutes(10)),
                    component: Some("gateway".into()),
                    outcome: Some("failure".into()),
                    service: Some("transfer".into()),
                    action: Some("restrict.block".into()),
                    ..query()
                })
                .await
                .unwrap();
            assert_eq!(recent.len(), 1);
            assert_eq!(recent[0].id, new.id().to_string());
            let body = Event::from_json(&recent[0].body).unwrap();
            assert_eq!(body, new);
        }
    );

    both_backends!(
        paging_continues_exactly_where_the_last_page_ended,
        |store| {
            // Five events in the same microsecond and two older ones: no row is skipped or
            // repeated across pages.
            let now = OffsetDateTime::now_utc();
            let mut events: Vec<Event> = (0..7).map(|_| blocked("u", "d", 0)).collect();
            for (i, e) in (0_i64..).zip(events.iter_mut()) {
                e.timestamp = if i < 5 {
                    now
                } else {
                    now - Duration::seconds(i)
                };
            }
            store.insert_events(&events).await.unwrap();
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let page = store
                    .search_events(&EventQuery {
                        limit: 2,
                        before: before.clone(),
                        ..query()
                    })
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                before = Some((last.ts, last.id.clone()));
                seen.extend(page.into_iter().map(|e| e.id));
            }
            assert_eq!(seen.len(), 7);
            let mut got = seen;
            got.sort();
            let mut expected: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
            expected.sort();
            assert_eq!(got, expected);
        }
    );

    both_backends!(
        retention_deletes_only_events_older_than_the_cutoff,
        |store| {
            store
                .insert_events(&[blocked("u", "d", 60 * 24 * 40), blocked("u", "d", 5)])
                .await
                .unwrap();
            let cutoff = OffsetDateTime::now_utc() - Duration::days(30);
            assert_eq!(store.delete_events_before(cutoff).await.unwrap(), 1);
            assert_eq!(store.count_events().await.unwrap(), 1);
        }
    );

    both_backends!(
        aggregates_count_failures_per_minute_and_rank_blocked_users,
        |store| {
            store
                .insert_events(&[
                    blocked("mallory", "d1", 2),
                    blocked("mallory", "d2", 2),
                    blocked("eve", "d1", 2),
                ])
                .await
                .unwrap();
            let since = OffsetDateTime::now_utc() - Duration::hours(1);
            let minutes = store.events_per_minute(since).await.unwrap();
            assert_eq!(minutes.iter().map(|m| m.total).sum::<i64>(), 3);
            assert_eq!(minutes.iter().map(|m| m.failures).sum::<i64>(), 3);
            let top = store
                .top_failures(TopColumn::User, since, 10)
                .await
                .unwrap();
            assert_eq!(
                top[0],
                TopEntry {
                    value: "mallory".into(),
                    count: 2
                }
            );
            assert_eq!(
                top[1],
                TopEntry {
                    value: "eve".into(),
                    count: 1
                }
            );
        }
    );

    fn at(action: &str, user: &str, device: &str, minutes_ago: i64) -> Event {
        let mut e = blocked(user, device, minutes_ago);
        e.event.action = action.into();
        e
    }

    fn day_by_device() -> AggregateQuery {
        let now = OffsetDateTime::now_utc();
        AggregateQuery {
            by: TopColumn::Device,
            from: now - Duration::hours(24),
            to: now + Duration::minutes(1),
            bucket_seconds: 3600,
            action: None,
            outcome: None,
            limit: 10,
        }
    }

    both_backends!(
        an_aggregation_by_device_names_the_users_behind_each_device,
        |store| {
            store
                .insert_events(&[
                    blocked("mallory", "lost-phone", 5),
                    blocked("mallory", "lost-phone", 70),
                    blocked("eve", "lost-phone", 70),
                    blocked("kim", "desk-7", 5),
                ])
                .await
                .unwrap();
            let a = store.aggregate_events(&day_by_device()).await.unwrap();
            assert_eq!(a.rows.len(), 2);
            let phone = &a.rows[0];
            assert_eq!(
                (phone.value.as_str(), phone.count, phone.failures),
                ("lost-phone", 3, 3)
            );
            assert!(phone.first_ts < phone.last_ts);
            assert_eq!(
                phone.users,
                vec![
                    TopEntry {
                        value: "mallory".into(),
                        count: 2
                    },
                    TopEntry {
                        value: "eve".into(),
                        count: 1
                    },
                ]
            );
            assert_eq!(a.rows[1].value, "desk-7");
            // Hourly buckets: the phone in two of them, 2 + 1 events.
            let phone_series: Vec<i64> = a
                .series
                .iter()
                .filter(|p| p.value == "lost-phone")
                .map(|p| p.count)
                .collect();
            assert_eq!(phone_series.iter().sum::<i64>(), 3);
            assert_eq!(phone_series.len(), 2);
            assert!(a.series.iter().all(|p| p.bucket % 3_600_000_000 == 0));
            assert!(a.series.windows(2).all(|w| w[0].bucket <= w[1].bucket));
        }
    );

    both_backends!(
        an_aggregation_counts_only_the_actions_and_period_asked_for,
        |store| {
            store
                .insert_events(&[
                    at("restrict.notice", "u1", "d1", 5),
                    at("restrict.respond", "u2", "d1", 5),
                    at("restricted.other", "u3", "d1", 5),
                    at("injection.block", "u4", "d1", 5),
                    at("restrict.notice", "u5", "d1", 60 * 30),
                ])
                .await
                .unwrap();
            let mut q = day_by_device();
            q.action = Some(ActionMatch::parse("restrict.*"));
            let a = store.aggregate_events(&q).await.unwrap();
            assert_eq!(a.rows.len(), 1);
            assert_eq!(
                a.rows[0].count, 2,
                "restrict.notice and restrict.respond of the last day"
            );
            q.action = Some(ActionMatch::parse("injection.block"));
            assert_eq!(store.aggregate_events(&q).await.unwrap().rows[0].count, 1);
            q.action = None;
            q.by = TopColumn::Action;
            let by_action = store.aggregate_events(&q).await.unwrap();
            assert_eq!(by_action.rows.len(), 4);
            assert!(by_action.rows.iter().all(|r| r.users.len() == 1));
            q.outcome = Some("success".into());
            assert!(store.aggregate_events(&q).await.unwrap().rows.is_empty());
        }
    );
}
