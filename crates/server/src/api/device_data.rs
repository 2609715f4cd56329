//! A device's data for its users (SPEC.md section 7, issue 12 item 2):
//! current values, history, control, timeline, CSV report, deleting data
//! and the service tab, under `/api/v1/devices/{id}/…`.
//!
//! Each route is one use case of `arbor_app::device_data`, decided by the
//! device rule with the matching action: a device you may not view answers
//! 404, one you may view but not act on 403 — audited in your own org.
//! Pins are written `V1`, `v1` or `1`.

use super::templates::DatastreamBody;
use crate::AppState;
use crate::api::users::neutralize;
use crate::auth::session::CurrentUser;
use crate::device_api::json_value;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use arbor_app::device_data::{History, HistoryShape, Range};
use arbor_core::DeviceId;
use arbor_core::device_data::{PinValue, format_number};
use arbor_core::template::Scalar;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A day, the default range of history, timeline and reports.
const DAY_MS: i64 = 86_400_000;

/// A pin as a path or query writes it: `V1`, `v1` or `1`.
fn pin(text: &str) -> Result<u16, ApiError> {
    let text = text.trim();
    let number = text.strip_prefix(['V', 'v']).unwrap_or(text);
    number
        .parse::<u16>()
        .ok()
        .filter(|p| *p <= arbor_core::template::bounds::MAX_PIN)
        .ok_or_else(|| ApiError::invalid("pin", "a virtual pin is V0–V255 (or 0–255)"))
}

/// The range of `from` and `to` (unix ms, `to` exclusive): by default the
/// last day up to now.
fn range(state: &AppState, from: Option<i64>, to: Option<i64>) -> Result<Range, ApiError> {
    let to = to.unwrap_or_else(|| state.app.store().now_ms().saturating_add(1));
    let from = from.unwrap_or(to.saturating_sub(DAY_MS));
    Ok(Range::new(from, to)?)
}

/// A cursor `at.id` of a history or timeline page.
fn cursor(text: Option<&str>) -> Result<Option<(i64, i64)>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("cursor", "not a cursor this API answered");
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(Some((
        at.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    )))
}

fn cursor_text((at, id): (i64, i64)) -> String {
    format!("{at}.{id}")
}

/// A datastream of the device with its current value.
#[derive(Serialize, ToSchema)]
pub struct DatastreamValue {
    #[serde(flatten)]
    pub datastream: DatastreamBody,
    /// The current value (number, text, or an array for a multi-part
    /// value); the datastream's default while none is stored; null without
    /// either.
    #[schema(value_type = Object)]
    pub value: Value,
    /// When the value was written (unix ms); null for a default.
    pub updated_at: Option<i64>,
    /// Widget properties the device set (`label`, `color`, …).
    pub properties: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct DatastreamValues {
    pub items: Vec<DatastreamValue>,
}

/// Every datastream of the device's template with its current value (device
/// view).
#[utoipa::path(get, path = "/api/v1/devices/{id}/datastreams", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device's datastreams", body = DatastreamValues),
        (status = 404, body = crate::error::Problem)))]
async fn datastreams(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<DatastreamValues>> {
    let readings = state
        .app
        .device_datastreams(&user.caller, DeviceId(id))
        .await?;
    let items = readings
        .into_iter()
        .map(|r| {
            let (value, updated_at) = match (&r.current, &r.datastream.default_value) {
                (Some(v), _) => (json_value(&v.value), Some(v.at)),
                (None, Some(d)) => (json_value(&PinValue::One(d.clone())), None),
                (None, None) => (Value::Null, None),
            };
            DatastreamValue {
                datastream: r.datastream.into(),
                value,
                updated_at,
                properties: r.properties.into_iter().collect(),
            }
        })
        .collect();
    Ok(axum::Json(DatastreamValues { items }))
}

/// How history is read.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Every point.
    Raw,
    Minute,
    Hour,
    Day,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Start, unix ms, inclusive (default: a day before `to`).
    pub from: Option<i64>,
    /// End, unix ms, exclusive (default: now).
    pub to: Option<i64>,
    /// `raw` (default), or buckets per `minute`, `hour` or `day` (UTC)
    /// with count, min, max, avg and sum.
    #[param(value_type = Option<String>)]
    pub granularity: Option<Granularity>,
    /// Raw only: the `next` of the previous page.
    pub cursor: Option<String>,
    /// Raw only: points per page, 1–10,000 (default 1,000).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryPointView {
    /// Unix ms.
    pub at: i64,
    #[schema(value_type = Object)]
    pub value: Value,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryBucketView {
    /// The bucket's start, unix ms.
    pub at: i64,
    pub count: i64,
    /// Numeric datastreams only.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub sum: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    pub pin: u16,
    pub from: i64,
    pub to: i64,
    /// Raw history: the points, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<HistoryPointView>>,
    /// Aggregated history: the non-empty buckets, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<HistoryBucketView>>,
    /// Raw history: pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The history of one datastream over a range, raw or aggregated (device
/// view).
#[utoipa::path(get, path = "/api/v1/devices/{id}/datastreams/{pin}/history", tag = "device data",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path), ("pin" = String, Path, description = "V0–V255"), HistoryParams),
    responses((status = 200, description = "The history", body = HistoryView),
        (status = 404, body = crate::error::Problem)))]
async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, pin_text)): Path<(i64, String)>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<axum::Json<HistoryView>> {
    let pin = pin(&pin_text)?;
    let range = range(&state, params.from, params.to)?;
    let shape = match params.granularity.unwrap_or(Granularity::Raw) {
        Granularity::Raw => HistoryShape::Raw {
            after: cursor(params.cursor.as_deref())?,
            limit: params.limit.unwrap_or(1000),
        },
        Granularity::Minute => HistoryShape::Buckets { bucket_ms: 60_000 },
        Granularity::Hour => HistoryShape::Buckets {
            bucket_ms: 3_600_000,
        },
        Granularity::Day => HistoryShape::Buckets { bucket_ms: DAY_MS },
    };
    let (_, history) = state
        .app
        .device_history(&user.caller, DeviceId(id), pin, range, shape)
        .await?;
    let mut view = HistoryView {
        pin,
        from: range.from,
        to: range.to,
        points: None,
        buckets: None,
        next: None,
    };
    match history {
        History::Raw { points, next } => {
            view.points = Some(
                points
                    .into_iter()
                    .map(|p| HistoryPointView {
                        at: p.value.at,
                        value: json_value(&p.value.value),
                    })
                    .collect(),
            );
            view.next = next.map(cursor_text);
        }
        History::Buckets(buckets) => {
            view.buckets = Some(
                buckets
                    .into_iter()
                    .map(|b| HistoryBucketView {
                        at: b.at,
                        count: b.count,
                        min: b.min,
                        max: b.max,
                        avg: b.avg,
                        sum: b.sum,
                    })
                    .collect(),
            );
        }
    }
    Ok(axum::Json(view))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// A number or text, parsed to the datastream's type and clamped to its
    /// min/max like a device's own write; an array for a multi-part value.
    #[schema(value_type = Object)]
    pub value: Value,
}

#[derive(Serialize, ToSchema)]
pub struct WrittenValue {
    pub pin: u16,
    #[schema(value_type = Object)]
    pub value: Value,
    /// Unix ms.
    pub at: i64,
}

/// The texts of a control body's value.
fn value_parts(value: &Value) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid("value", "a number, a text, or an array of them");
    let one = |v: &Value| arbor_app::device_api::point_text(v).ok_or_else(bad);
    match value {
        Value::Array(parts) => parts.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Writes a value to a datastream (control: `org_devices.control`, or
/// `own_devices.control` for the owner); the device reads it back with the
/// device API's `get`. Audited as `device.control`.
#[utoipa::path(post, path = "/api/v1/devices/{id}/datastreams/{pin}", tag = "device data",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path), ("pin" = String, Path, description = "V0–V255")),
    request_body = ControlBody,
    responses((status = 200, description = "The value as stored", body = WrittenValue),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn control(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, pin_text)): Path<(i64, String)>,
    Json(body): Json<ControlBody>,
) -> ApiResult<axum::Json<WrittenValue>> {
    let pin = pin(&pin_text)?;
    let parts = value_parts(&body.value)?;
    let written = state
        .app
        .control_device(&user.caller, DeviceId(id), pin, &parts)
        .await?;
    Ok(axum::Json(WrittenValue {
        pin,
        value: json_value(&written.value),
        at: written.at,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimelineParams {
    /// Start, unix ms, inclusive (default: the beginning).
    pub from: Option<i64>,
    /// End, unix ms, exclusive (default: now).
    pub to: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Entries per page, 1–500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TimelineEntry {
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// `event` (logged by the device), `ownership` (a transfer), `online`
    /// or `offline`.
    pub kind: &'static str,
    /// The template's event code, or `arbor.ownership`, `arbor.online`,
    /// `arbor.offline`.
    pub code: String,
    /// `info`, `warning` or `critical`.
    pub level: String,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    /// Newest first.
    pub items: Vec<TimelineEntry>,
    /// Pass as `cursor` for older entries; absent on the last page.
    pub next: Option<String>,
}

fn timeline_kind(code: &str) -> &'static str {
    match code {
        arbor_app::model::TIMELINE_OWNERSHIP => "ownership",
        arbor_app::model::TIMELINE_ONLINE => "online",
        arbor_app::model::TIMELINE_OFFLINE => "offline",
        _ => "event",
    }
}

/// The device's timeline, newest first: its events, ownership changes and
/// online/offline (`org_devices.view_timeline`, or
/// `own_devices.view_timeline` for the owner).
#[utoipa::path(get, path = "/api/v1/devices/{id}/timeline", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), TimelineParams),
    responses((status = 200, description = "One page of the timeline", body = TimelinePage),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn timeline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<TimelineParams>,
) -> ApiResult<axum::Json<TimelinePage>> {
    let to = params
        .to
        .unwrap_or_else(|| state.app.store().now_ms().saturating_add(1));
    let range = Range::new(params.from.unwrap_or(0), to)?;
    let limit = params.limit.unwrap_or(50);
    let entries = state
        .app
        .device_timeline(
            &user.caller,
            DeviceId(id),
            range,
            cursor(params.cursor.as_deref())?,
            limit,
        )
        .await?;
    let full = entries.len() == limit.clamp(1, arbor_app::device_data::MAX_TIMELINE_PAGE) as usize;
    let next = entries
        .last()
        .filter(|_| full)
        .map(|e| cursor_text((e.at, e.id)));
    Ok(axum::Json(TimelinePage {
        items: entries
            .into_iter()
            .map(|e| TimelineEntry {
                kind: timeline_kind(&e.code),
                id: e.id,
                at: e.at,
                code: e.code,
                level: e.level,
                description: e.description,
            })
            .collect(),
        next,
    }))
}

/// Pins of a query, comma-separated (`V1,V2` or `1,2`); empty for every
/// datastream.
fn pins(text: Option<&str>) -> Result<Vec<u16>, ApiError> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(pin)
        .collect()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Datastreams, comma-separated (`V1,V2`); default every one.
    pub pins: Option<String>,
    /// Start, unix ms, inclusive (default: a day before `to`).
    pub from: Option<i64>,
    /// End, unix ms, exclusive (default: now).
    pub to: Option<i64>,
}

/// A value as one CSV cell: numbers as the device API writes them, texts
/// neutralized against formulas, parts joined by `;`.
fn csv_value(value: &PinValue) -> String {
    let scalar = |s: &Scalar| match s {
        Scalar::Number(n) => format_number(*n),
        Scalar::Text(t) => neutralize(t),
    };
    match value {
        PinValue::One(s) => scalar(s),
        PinValue::Many(parts) => {
            neutralize(&parts.iter().map(scalar).collect::<Vec<_>>().join(";"))
        }
    }
}

/// Unix ms as RFC 3339 in UTC with milliseconds.
fn utc(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A CSV report of datastreams over a range, one row per point: `time`
/// (RFC 3339, UTC), `unix_ms`, `pin`, `datastream`, `value`, oldest first
/// (`org_devices.download_reports`, or `own_devices.download_reports` for
/// the owner). Every text cell is neutralized against spreadsheet formulas.
/// At most 200,000 rows (400 beyond: choose a shorter range).
#[utoipa::path(get, path = "/api/v1/devices/{id}/report.csv", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), ReportParams),
    responses((status = 200, description = "The report", content_type = "text/csv", body = String),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn report(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<ReportParams>,
) -> ApiResult<impl IntoResponse> {
    let pins = pins(params.pins.as_deref())?;
    let range = range(&state, params.from, params.to)?;
    let report = state
        .app
        .device_report(&user.caller, DeviceId(id), &pins, range)
        .await?;
    let names: BTreeMap<u16, String> = report
        .datastreams
        .iter()
        .map(|ds| (ds.pin, neutralize(&ds.name)))
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::internal(&e);
    writer
        .write_record(["time", "unix_ms", "pin", "datastream", "value"])
        .map_err(internal)?;
    for point in &report.points {
        writer
            .write_record([
                utc(point.at),
                point.at.to_string(),
                format!("V{}", point.pin),
                names.get(&point.pin).cloned().unwrap_or_default(),
                csv_value(&point.value),
            ])
            .map_err(internal)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(&e.into_error()))?;
    let disposition = format!("attachment; filename=\"device-{id}-report.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteDataParams {
    /// Datastreams, comma-separated (`V1,V2`); default every one.
    pub pins: Option<String>,
    /// With `to`: delete only the history in `[from, to)` (unix ms).
    pub from: Option<i64>,
    pub to: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DataDeleted {
    /// History points removed.
    pub history: u64,
    /// Current values removed.
    pub values: u64,
    /// Events removed (only when every datastream's data goes).
    pub events: u64,
}

/// Deletes a device's data (`org_devices.delete_data`, or
/// `own_devices.delete_data` for the owner): with `from` and `to`, the
/// history of `pins` in that range; without, all history, current values
/// and widget properties of `pins` — and, for every datastream, the
/// device's events. Ownership entries of the timeline stay, as does the
/// device. Audited with the counts.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/data", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), DeleteDataParams),
    responses((status = 200, description = "What was removed", body = DataDeleted),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn delete_data(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<DeleteDataParams>,
) -> ApiResult<axum::Json<DataDeleted>> {
    let pins = pins(params.pins.as_deref())?;
    let range = match (params.from, params.to) {
        (None, None) => None,
        (Some(from), Some(to)) => Some(Range::new(from, to)?),
        _ => {
            return Err(ApiError::invalid(
                "from",
                "give both `from` and `to`, or neither",
            ));
        }
    };
    let done = state
        .app
        .delete_device_data(&user.caller, DeviceId(id), &pins, range)
        .await?;
    Ok(axum::Json(DataDeleted {
        history: done.history,
        values: done.values,
        events: done.events,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceRequest {
    /// Unix ms.
    pub at: i64,
    /// The device API endpoint (`update`, `get`, …).
    pub endpoint: &'static str,
    /// Whether it succeeded.
    pub ok: bool,
    /// Why it was refused, if it was.
    pub error: Option<String>,
    /// The address it came from.
    pub address: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PinPropertyView {
    pub pin: u16,
    pub name: String,
    pub value: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceView {
    pub device_id: i64,
    /// When the device's token was last used (its last device API call,
    /// unix ms, to the second), if ever.
    pub token_last_used_at: Option<i64>,
    /// Whether it called within the heartbeat.
    pub online: bool,
    /// The address of its latest request this node saw.
    pub last_address: Option<String>,
    /// Its latest device API requests as this node saw them, newest first
    /// (kept in memory, at most 20).
    pub requests: Vec<ServiceRequest>,
    /// The widget properties the device set.
    pub properties: Vec<PinPropertyView>,
}

/// The service tab (`org_devices.service_tab`): the device's latest device
/// API requests with their outcome, when its token was last used, its last
/// address, and the widget properties it set.
#[utoipa::path(get, path = "/api/v1/devices/{id}/service", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The service tab", body = ServiceView),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn service(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ServiceView>> {
    let tab = state.app.device_service(&user.caller, DeviceId(id)).await?;
    let now = state.app.store().now_ms();
    let requests: Vec<ServiceRequest> = tab
        .requests
        .into_iter()
        .map(|r| ServiceRequest {
            at: r.at,
            endpoint: r.endpoint,
            ok: r.error.is_none(),
            error: r.error,
            address: r.peer.map(|p| p.to_string()),
        })
        .collect();
    Ok(axum::Json(ServiceView {
        device_id: id,
        token_last_used_at: tab.device.last_seen_at,
        online: arbor_core::device_data::online(
            tab.device.last_seen_at,
            now,
            state
                .app
                .device_heartbeat()
                .as_millis()
                .try_into()
                .unwrap_or(i64::MAX),
        ),
        last_address: requests.first().and_then(|r| r.address.clone()),
        requests,
        properties: tab
            .properties
            .into_iter()
            .map(|p| PinPropertyView {
                pin: p.pin,
                name: p.name,
                value: p.value,
            })
            .collect(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(datastreams))
        .routes(routes!(history))
        .routes(routes!(control))
        .routes(routes!(timeline))
        .routes(routes!(report))
        .routes(routes!(delete_data))
        .routes(routes!(service))
}
