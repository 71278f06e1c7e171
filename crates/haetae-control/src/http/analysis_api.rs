//! `/api/v1/analysis`: events of a period grouped by user, device, service, filter, source
//! address or action, with a time series per value and the users behind each value — what
//! the analysis page draws, and what a SIEM or a report script can read.

// utoipa's `params(...)` expansion writes fully qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::api::parse_time;
use super::error::{ApiError, ApiQuery, ErrorBody};
use super::session::Principal;
use super::state::AppState;
use crate::auth::Permission;
use crate::store::events::{ActionMatch, Aggregate, AggregateQuery, TopColumn};

type ApiResult<T> = Result<T, ApiError>;

/// The periods offered without explicit times, and their default bucket width.
pub const RANGES: [(&str, i64, i64); 4] = [
    ("1h", 3600, 60),
    ("24h", 86_400, 3600),
    ("7d", 7 * 86_400, 6 * 3600),
    ("30d", 30 * 86_400, 86_400),
];

/// The longest period one aggregation covers (the retention default).
const MAX_SPAN_SECONDS: i64 = 90 * 86_400;
/// The most buckets one series has.
const MAX_BUCKETS: i64 = 2000;

/// Aggregation parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct AnalysisParams {
    /// `user`, `device`, `service`, `filter`, `ip` or `action` (default `device`).
    pub by: Option<String>,
    /// `1h`, `24h` (default), `7d` or `30d` before `to`; ignored when `from` is given.
    pub range: Option<String>,
    /// RFC 3339 time: at or after.
    pub from: Option<String>,
    /// RFC 3339 time: before (default now).
    pub to: Option<String>,
    /// Width of a time bucket in seconds (default from the range: 60 for 1h, 3600 for 24h,
    /// 21600 for 7d, 86400 for 30d).
    pub bucket: Option<i64>,
    /// An `event.action`, or a prefix ending in `*` (`restrict.*`).
    pub action: Option<String>,
    /// `success`, `failure` or `unknown`.
    pub outcome: Option<String>,
    /// How many values, 1..=100 (default 10).
    pub limit: Option<u32>,
}

/// An aggregation and the parameters it ran with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Analysis {
    /// The grouping column's parameter name.
    pub by: String,
    /// Start of the period (RFC 3339).
    pub from: String,
    /// End of the period (RFC 3339).
    pub to: String,
    /// Bucket width of `series`, seconds.
    pub bucket_seconds: i64,
    /// The action filter, if any.
    pub action: Option<String>,
    /// The outcome filter, if any.
    pub outcome: Option<String>,
    /// The result.
    #[serde(flatten)]
    pub aggregate: Aggregate,
}

impl AnalysisParams {
    /// Checks the parameters and makes the store's query.
    pub fn to_query(&self, now: OffsetDateTime) -> ApiResult<AggregateQuery> {
        let by_name = self
            .by
            .as_deref()
            .filter(|b| !b.is_empty())
            .unwrap_or("device");
        let by = TopColumn::from_name(by_name).ok_or_else(|| {
            ApiError::invalid(
                "by",
                format!("{by_name:?} is not one of user, device, service, filter, ip, action"),
            )
        })?;
        let to = parse_time("to", self.to.as_deref())?.unwrap_or(now);
        let range_name = self
            .range
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("24h");
        let (_, range_seconds, default_bucket) = RANGES
            .iter()
            .copied()
            .find(|(name, _, _)| *name == range_name)
            .ok_or_else(|| {
                ApiError::invalid(
                    "range",
                    format!("{range_name:?} is not one of 1h, 24h, 7d, 30d"),
                )
            })?;
        let from = parse_time("from", self.from.as_deref())?
            .unwrap_or(to - time::Duration::seconds(range_seconds));
        let span = (to - from).whole_seconds();
        if span <= 0 {
            return Err(ApiError::invalid("from", "must be before to"));
        }
        if span > MAX_SPAN_SECONDS {
            return Err(ApiError::invalid("from", "the period is at most 90 days"));
        }
        let bucket_seconds = self.bucket.unwrap_or(default_bucket);
        if bucket_seconds < 60 {
            return Err(ApiError::invalid("bucket", "at least 60 seconds"));
        }
        if span / bucket_seconds > MAX_BUCKETS {
            return Err(ApiError::invalid(
                "bucket",
                format!(
                    "{bucket_seconds} s makes more than {MAX_BUCKETS} buckets over the period; choose a wider one"
                ),
            ));
        }
        let action = self.action.as_deref().filter(|a| !a.is_empty());
        if action.is_some_and(|a| a.len() > 256) {
            return Err(ApiError::invalid("action", "at most 256 bytes"));
        }
        let outcome = self.outcome.as_deref().filter(|o| !o.is_empty());
        if let Some(o) = outcome
            && !["success", "failure", "unknown"].contains(&o)
        {
            return Err(ApiError::invalid(
                "outcome",
                format!("{o:?} is not success, failure or unknown"),
            ));
        }
        let limit = self.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid("limit", "must be 1..=100"));
        }
        Ok(AggregateQuery {
            by,
            from,
            to,
            bucket_seconds,
            action: action.map(ActionMatch::parse),
            outcome: outcome.map(str::to_owned),
            limit,
        })
    }
}

/// Runs an aggregation.
pub async fn analyse(state: &AppState, q: &AggregateQuery) -> ApiResult<Analysis> {
    let aggregate = state.store.aggregate_events(q).await?;
    Ok(Analysis {
        by: q.by.name().to_owned(),
        from: q.from.format(&Rfc3339).unwrap_or_default(),
        to: q.to.format(&Rfc3339).unwrap_or_default(),
        bucket_seconds: q.bucket_seconds,
        action: q.action.as_ref().map(ActionMatch::text),
        outcome: q.outcome.clone(),
        aggregate,
    })
}

/// Events of a period grouped by one field, with a time series and the users behind each
/// value (e.g. `by=device&action=restrict.*`: which restricted devices tried, when, as whom).
#[utoipa::path(get, path = "/api/v1/analysis", tag = "events", params(AnalysisParams),
    responses((status = 200, body = Analysis), (status = 400, body = ErrorBody)))]
pub async fn analysis(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(params): ApiQuery<AnalysisParams>,
) -> ApiResult<Json<Analysis>> {
    p.require(Permission::Read, "analyse events")?;
    let q = params.to_query(OffsetDateTime::now_utc())?;
    Ok(Json(analyse(&state, &q).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn the_defaults_are_the_last_day_by_device_in_hours() {
        let q = AnalysisParams::default().to_query(now()).unwrap();
        assert_eq!(q.by, TopColumn::Device);
        assert_eq!(q.to, now());
        assert_eq!((q.to - q.from).whole_hours(), 24);
        assert_eq!(q.bucket_seconds, 3600);
        assert_eq!(q.limit, 10);
    }

    #[test]
    fn an_action_ending_in_a_star_is_a_prefix() {
        let params = AnalysisParams {
            action: Some("restrict.*".into()),
            ..AnalysisParams::default()
        };
        let q = params.to_query(now()).unwrap();
        assert_eq!(q.action, Some(ActionMatch::Prefix("restrict.".into())));
    }

    #[test]
    fn bad_parameters_are_refused_naming_the_field() {
        for (params, field) in [
            (
                AnalysisParams {
                    by: Some("password".into()),
                    ..AnalysisParams::default()
                },
                "by",
            ),
            (
                AnalysisParams {
                    range: Some("1y".into()),
                    ..AnalysisParams::default()
                },
                "range",
            ),
            (
                AnalysisParams {
                    bucket: Some(1),
                    ..AnalysisParams::default()
                },
                "bucket",
            ),
            (
                AnalysisParams {
                    range: Some("30d".into()),
                    bucket: Some(60),
                    ..AnalysisParams::default()
                },
                "bucket",
            ),
            (
                AnalysisParams {
                    outcome: Some("maybe".into()),
                    ..AnalysisParams::default()
                },
                "outcome",
            ),
            (
                AnalysisParams {
                    limit: Some(0),
                    ..AnalysisParams::default()
                },
                "limit",
            ),
            (
                AnalysisParams {
                    from: Some("2027-01-01T00:00:00Z".into()),
                    to: Some("2026-01-01T00:00:00Z".into()),
                    ..AnalysisParams::default()
                },
                "from",
            ),
            (
                AnalysisParams {
                    from: Some("yesterday".into()),
                    ..AnalysisParams::default()
                },
                "from",
            ),
        ] {
            let err = params.to_query(now()).unwrap_err();
            assert_eq!(err.body.error.field.as_deref(), Some(field), "{params:?}");
        }
    }
}
