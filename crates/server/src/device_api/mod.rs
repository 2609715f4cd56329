//! The Blynk-compatible device HTTP API under `/external/api/` (SPEC.md
//! section 7; docs/device-api.md): a device authenticates with `?token=`
//! and reads and writes its own datastreams, events, widget properties and
//! metafields, answered as Blynk's device API answers — an empty 200 on
//! success, `400 {"error":{"message":"Invalid token."}}` and its siblings
//! otherwise.
//!
//! Not in the OpenAPI document (it is Blynk's contract, not Arbor's JSON
//! API, and answers Blynk's error bodies rather than problem details).
//! Handlers only read the query (and a batch's body) into the use case's
//! terms; the token is never logged (the access log leaves device paths
//! out, the request span redacts `token=`).

use crate::AppState;
use arbor_app::AppError;
use arbor_app::device_api::{
    DeviceApiError, DeviceCall, DeviceMetafield, HistoryRead, MetafieldRef, PinReading, PinRef,
    PinWrite, Source, point_text,
};
use arbor_core::device_data::{PinValue, format_number};
use arbor_core::template::Scalar;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

/// Where the device API lives.
pub const PREFIX: &str = "/external/api/";

/// The device API's routes, each also with a trailing slash (Blynk's
/// documentation writes `update/?token=` too), reading bodies up to
/// `body_limit` bytes.
pub fn router(body_limit: usize) -> Router<AppState> {
    let routes: [(&str, axum::routing::MethodRouter<AppState>); 10] = [
        ("update", get(update)),
        ("batch/update", get(update).post(batch)),
        ("get", get(read)),
        ("getAll", get(read_all)),
        ("isHardwareConnected", get(connected)),
        ("logEvent", get(log_event)),
        ("update/property", get(set_property)),
        ("device/meta", get(metafield)),
        ("device/meta/update", get(set_metafield)),
        ("data/get", get(data_get)),
    ];
    let mut router = Router::new();
    for (path, route) in routes {
        router = router
            .route(&format!("{PREFIX}{path}"), route.clone())
            .route(&format!("{PREFIX}{path}/"), route);
    }
    router.layer(DefaultBodyLimit::max(body_limit))
}

/// A device API answer: Blynk's status and body.
pub struct Answer(Response);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        self.0
    }
}

/// Blynk's error body with `message`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": { "message": message } }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The body too large for the device API (also answered by the edge
/// before the handler when the length is announced).
pub fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is larger than the server accepts.",
    )
}

/// The message of each refusal: Blynk's where Blynk has one.
pub fn message(refusal: &DeviceApiError) -> String {
    match refusal {
        DeviceApiError::InvalidToken => "Invalid token.".into(),
        DeviceApiError::WrongPin => "Wrong pin format.".into(),
        DeviceApiError::WrongDataStreamId => "Wrong dataStreamId format.".into(),
        DeviceApiError::NoDatastream => "No datastream setup for that pin.".into(),
        DeviceApiError::ValueMismatch => "Value doesn't match the Datastream data type".into(),
        DeviceApiError::ValueTooLong { limit } => {
            format!("Value is longer than {limit} bytes.")
        }
        DeviceApiError::NoValue => "No value for that pin.".into(),
        DeviceApiError::TooManyPoints { limit } => {
            format!("Too many points in one batch (at most {limit}).")
        }
        DeviceApiError::PointOutOfWindow => {
            "Timestamp is more than a month in the past or the future.".into()
        }
        DeviceApiError::UnknownEvent => "Event with that code is not in the template.".into(),
        DeviceApiError::DescriptionTooLong { limit } => {
            format!("Description is longer than {limit} characters.")
        }
        DeviceApiError::WrongProperty => "Wrong property.".into(),
        DeviceApiError::WrongPropertyValue => "Wrong property value.".into(),
        DeviceApiError::WrongMetaField => "Wrong metaField format.".into(),
        DeviceApiError::NoMetaField => "MetaField doesn't exist.".into(),
        DeviceApiError::WrongMetaValue => "Wrong value.".into(),
        DeviceApiError::WrongParameters => "Request with incorrect parameters".into(),
        DeviceApiError::RateLimited => "Too many requests.".into(),
        DeviceApiError::Failed(_) => "Internal error.".into(),
    }
}

impl From<DeviceApiError> for Answer {
    fn from(refusal: DeviceApiError) -> Self {
        let text = message(&refusal);
        Answer(match &refusal {
            DeviceApiError::RateLimited => {
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, &text);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            DeviceApiError::Failed(AppError::Busy(_)) => {
                let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "Server is busy.");
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            DeviceApiError::Failed(e) => {
                tracing::error!(error = ?e, "device API request failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, &text)
            }
            _ => error(StatusCode::BAD_REQUEST, &text),
        })
    }
}

fn ok_empty() -> Answer {
    Answer(StatusCode::OK.into_response())
}

fn ok_json(value: Value) -> Answer {
    Answer(
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            value.to_string(),
        )
            .into_response(),
    )
}

fn ok_text(text: String) -> Answer {
    Answer(
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
    )
}

/// The query's parameters in order, decoded (`+` is a space); a bare
/// `V1` reads as `("V1", "")`.
struct Query {
    pairs: Vec<(String, String)>,
}

/// A device request's query with its `token=`: without one the request is
/// answered "Invalid token." before anything else of it is looked at.
struct DeviceRequest {
    query: Query,
    token: String,
    endpoint: &'static str,
    peer: Option<std::net::IpAddr>,
}

/// The endpoints, as the service tab names them.
const ENDPOINTS: [&str; 10] = [
    "update",
    "batch/update",
    "get",
    "getAll",
    "isHardwareConnected",
    "logEvent",
    "update/property",
    "device/meta",
    "device/meta/update",
    "data/get",
];

impl DeviceRequest {
    /// The request in the use cases' terms.
    fn call(&self) -> DeviceCall<'_> {
        DeviceCall {
            token: &self.token,
            endpoint: self.endpoint,
            peer: self.peer,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DeviceRequest {
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Answer> {
        let query = Query::parse(parts.uri.query().map(str::to_owned));
        let token = query.token().map_err(Answer::from)?.to_owned();
        let path = parts.uri.path();
        let path = path
            .strip_prefix(PREFIX)
            .unwrap_or(path)
            .trim_end_matches('/');
        let endpoint = ENDPOINTS
            .iter()
            .find(|e| **e == path)
            .copied()
            .unwrap_or("other");
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self {
            query,
            token,
            endpoint,
            peer,
        })
    }
}

impl Query {
    fn parse(raw: Option<String>) -> Self {
        let raw = raw.unwrap_or_default();
        let pairs = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Self { pairs }
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The token, or the refusal of a request without one.
    fn token(&self) -> Result<&str, DeviceApiError> {
        self.first("token")
            .filter(|t| !t.is_empty())
            .ok_or(DeviceApiError::InvalidToken)
    }

    /// The datastream named by `dataStreamId=` or `pin=`, if either.
    fn named_pin(&self) -> Option<PinRef> {
        self.first("dataStreamId")
            .map(|id| PinRef::DataStreamId(id.to_owned()))
            .or_else(|| self.first("pin").map(|pin| PinRef::Pin(pin.to_owned())))
    }

    /// Every parameter but those in `reserved`, grouped by name in order of
    /// first appearance (a repeated name collects its values).
    fn grouped(&self, reserved: &[&str]) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in &self.pairs {
            if reserved.contains(&name.as_str()) {
                continue;
            }
            match groups.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(value.clone()),
                None => groups.push((name.clone(), vec![value.clone()])),
            }
        }
        groups
    }

    /// What `update` writes: `dataStreamId=`/`pin=` with `value=` (one or
    /// several), or `V1=42` pairs.
    fn writes(&self) -> Vec<PinWrite> {
        match self.named_pin() {
            Some(pin) => vec![PinWrite {
                pin,
                values: self.all("value"),
            }],
            None => self
                .grouped(&["token"])
                .into_iter()
                .map(|(pin, values)| PinWrite {
                    pin: PinRef::Pin(pin),
                    values,
                })
                .collect(),
        }
    }
}

async fn update(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    match state
        .app
        .device_update(&request.call(), &request.query.writes())
        .await
    {
        Ok(()) => ok_empty(),
        Err(refused) => refused.into(),
    }
}

/// The points of a timestamped batch body, `[[ts_ms, value], …]`.
fn points(body: &[u8]) -> Result<Vec<(i64, String)>, DeviceApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| DeviceApiError::ValueMismatch)?;
    let Value::Array(entries) = value else {
        return Err(DeviceApiError::ValueMismatch);
    };
    if entries.len() > arbor_core::device_data::bounds::BATCH_POINTS {
        return Err(DeviceApiError::TooManyPoints {
            limit: arbor_core::device_data::bounds::BATCH_POINTS,
        });
    }
    entries
        .iter()
        .map(|entry| match entry.as_array().map(Vec::as_slice) {
            Some([ts, value]) => {
                let ts = ts
                    .as_i64()
                    .or_else(|| ts.as_f64().filter(|t| t.fract() == 0.0).map(|t| t as i64))
                    .ok_or(DeviceApiError::PointOutOfWindow)?;
                let text = point_text(value).ok_or(DeviceApiError::ValueMismatch)?;
                Ok((ts, text))
            }
            _ => Err(DeviceApiError::ValueMismatch),
        })
        .collect()
}

async fn batch(
    State(state): State<AppState>,
    request: DeviceRequest,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Answer(too_large());
        }
        Err(_) => return DeviceApiError::ValueMismatch.into(),
    };
    let Some(pin) = request.query.named_pin() else {
        return DeviceApiError::WrongPin.into();
    };
    let points = match points(&body) {
        Ok(points) => points,
        Err(refused) => return refused.into(),
    };
    match state.app.device_batch(&request.call(), &pin, &points).await {
        Ok(()) => ok_empty(),
        Err(refused) => refused.into(),
    }
}

/// A value as JSON: numbers as numbers, texts as strings, parts as an array.
pub(crate) fn json_value(value: &PinValue) -> Value {
    let scalar = |s: &Scalar| match s {
        Scalar::Number(n) => serde_json::from_str(&format_number(*n)).unwrap_or(Value::Null),
        Scalar::Text(t) => Value::String(t.clone()),
    };
    match value {
        PinValue::One(s) => scalar(s),
        PinValue::Many(parts) => Value::Array(parts.iter().map(scalar).collect()),
    }
}

fn readings_json(readings: &[PinReading]) -> Value {
    let mut object = Map::new();
    for reading in readings {
        object.insert(format!("v{}", reading.pin), json_value(&reading.value));
    }
    Value::Object(object)
}

async fn read(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let pins: Vec<PinRef> = match request.query.first("dataStreamId") {
        Some(id) => vec![PinRef::DataStreamId(id.to_owned())],
        None => request
            .query
            .grouped(&["token"])
            .into_iter()
            .map(|(pin, _)| PinRef::Pin(pin))
            .collect(),
    };
    let single = pins.len() == 1;
    match state.app.device_get(&request.call(), &pins).await {
        Ok(readings) if single => match readings.first() {
            Some(reading) => ok_text(reading.value.display()),
            None => DeviceApiError::NoValue.into(),
        },
        Ok(readings) => ok_json(readings_json(&readings)),
        Err(refused) => refused.into(),
    }
}

async fn read_all(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    match state.app.device_get_all(&request.call()).await {
        Ok(readings) => ok_json(readings_json(&readings)),
        Err(refused) => refused.into(),
    }
}

async fn connected(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    match state.app.device_connected(&request.call()).await {
        Ok(online) => ok_json(Value::Bool(online)),
        Err(refused) => refused.into(),
    }
}

async fn log_event(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let code = request.query.first("code").unwrap_or_default();
    let description = request.query.first("description").unwrap_or_default();
    match state
        .app
        .device_log_event(&request.call(), code, description)
        .await
    {
        Ok(()) => ok_empty(),
        Err(refused) => refused.into(),
    }
}

async fn set_property(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let Some(pin) = request.query.named_pin() else {
        return DeviceApiError::WrongPin.into();
    };
    let properties = request.query.grouped(&["token", "pin", "dataStreamId"]);
    match state
        .app
        .device_set_properties(&request.call(), &pin, &properties)
        .await
    {
        Ok(()) => ok_empty(),
        Err(refused) => refused.into(),
    }
}

fn metafield_ref(query: &Query) -> Result<MetafieldRef, DeviceApiError> {
    query
        .first("metaFieldId")
        .map(|id| MetafieldRef::Id(id.to_owned()))
        .or_else(|| {
            query
                .first("metaFieldName")
                .map(|name| MetafieldRef::Name(name.to_owned()))
        })
        .ok_or(DeviceApiError::WrongMetaField)
}

async fn metafield(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let field = match metafield_ref(&request.query) {
        Ok(field) => field,
        Err(refused) => return refused.into(),
    };
    match state.app.device_metafield(&request.call(), &field).await {
        Ok(DeviceMetafield { field, value }) => {
            ok_json(json!({ "type": field.blynk_type(), "value": value }))
        }
        Err(refused) => refused.into(),
    }
}

async fn set_metafield(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let field = match metafield_ref(&request.query) {
        Ok(field) => field,
        Err(refused) => return refused.into(),
    };
    let Some(value) = request.query.first("value") else {
        return DeviceApiError::WrongMetaValue.into();
    };
    match state
        .app
        .device_set_metafield(&request.call(), &field, value)
        .await
    {
        Ok(()) => ok_empty(),
        Err(refused) => refused.into(),
    }
}

/// `data/get`'s parameters in the use case's terms: `period` (HOUR, DAY,
/// WEEK, MONTH — the default — or THREE_MONTHS), `granularityType`
/// (RAW_DATA — the default — MINUTE, HOURLY, DAILY), `sourceType` (AVG —
/// the default — MIN, MAX, SUM, COUNT), `tzName` (UTC only), `format` (TS
/// only), `output` (JSON; FILE is answered as JSON too: Arbor makes no
/// download files).
fn history_read(query: &Query) -> Result<(i64, HistoryRead), DeviceApiError> {
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    let wrong = DeviceApiError::WrongParameters;
    let period = match query.first("period").unwrap_or("MONTH") {
        "HOUR" => HOUR,
        "DAY" => DAY,
        "WEEK" => 7 * DAY,
        "MONTH" => 30 * DAY,
        "THREE_MONTHS" => 90 * DAY,
        _ => return Err(wrong),
    };
    let bucket_ms = match query.first("granularityType").unwrap_or("RAW_DATA") {
        "RAW_DATA" if period > 30 * DAY => return Err(wrong),
        "RAW_DATA" => None,
        "MINUTE" => Some(60_000),
        "HOURLY" => Some(HOUR),
        "DAILY" => Some(DAY),
        _ => return Err(wrong),
    };
    let source = match query.first("sourceType").unwrap_or("AVG") {
        "AVG" => Source::Avg,
        "MIN" => Source::Min,
        "MAX" => Source::Max,
        "SUM" => Source::Sum,
        "COUNT" => Source::Count,
        _ => return Err(wrong),
    };
    let utc = matches!(query.first("tzName"), None | Some("UTC" | "Etc/UTC" | "Z"));
    let ts = matches!(query.first("format"), None | Some("TS"));
    let output = matches!(query.first("output"), None | Some("JSON" | "FILE"));
    if !(utc && ts && output) {
        return Err(wrong);
    }
    Ok((
        period,
        match bucket_ms {
            None => HistoryRead::Raw,
            Some(bucket_ms) => HistoryRead::Buckets { bucket_ms, source },
        },
    ))
}

async fn data_get(State(state): State<AppState>, request: DeviceRequest) -> Answer {
    let (period, read) = match history_read(&request.query) {
        Ok(read) => read,
        Err(refused) => return refused.into(),
    };
    let pin = request.query.named_pin();
    let single = pin.is_some();
    match state
        .app
        .device_data_get(&request.call(), pin.as_ref(), period, read)
        .await
    {
        Ok(histories) => {
            let points = |points: &[(i64, PinValue)]| {
                Value::Array(
                    points
                        .iter()
                        .map(|(ts, value)| json!({ "ts": ts, "value": json_value(value) }))
                        .collect(),
                )
            };
            if single {
                ok_json(
                    histories
                        .first()
                        .map_or(Value::Array(Vec::new()), |h| points(&h.points)),
                )
            } else {
                let mut object = Map::new();
                for history in &histories {
                    object.insert(format!("v{}", history.pin), points(&history.points));
                }
                ok_json(Value::Object(object))
            }
        }
        Err(refused) => refused.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_read_as_blynk_writes_them() {
        let query = Query::parse(Some("token=t&V1=42&v2=&V1=43&pin=V5".into()));
        assert_eq!(query.token().unwrap(), "t");
        assert_eq!(
            query.writes(),
            vec![PinWrite {
                pin: PinRef::Pin("V5".into()),
                values: Vec::new(),
            }]
        );
        let query = Query::parse(Some("token=t&V1=42&v2=a+b&V1=43".into()));
        assert_eq!(
            query.writes(),
            vec![
                PinWrite {
                    pin: PinRef::Pin("V1".into()),
                    values: vec!["42".into(), "43".into()],
                },
                PinWrite {
                    pin: PinRef::Pin("v2".into()),
                    values: vec!["a b".into()],
                },
            ]
        );
        assert!(matches!(
            Query::parse(None).token(),
            Err(DeviceApiError::InvalidToken)
        ));
    }

    #[test]
    fn batch_bodies_are_pairs_of_time_and_value() {
        assert_eq!(
            points(br#"[[1648054765458,1.5],[1648054825459,"on"]]"#).unwrap(),
            vec![(1648054765458, "1.5".into()), (1648054825459, "on".into())]
        );
        assert!(matches!(
            points(br#"[[1648054765458]]"#),
            Err(DeviceApiError::ValueMismatch)
        ));
        assert!(matches!(points(b"{}"), Err(DeviceApiError::ValueMismatch)));
        assert!(matches!(
            points(br#"[["soon",1]]"#),
            Err(DeviceApiError::PointOutOfWindow)
        ));
    }

    #[test]
    fn every_refusal_has_blynk_s_body() {
        let body = json!({ "error": { "message": message(&DeviceApiError::InvalidToken) } });
        assert_eq!(
            body.to_string(),
            r#"{"error":{"message":"Invalid token."}}"#
        );
        assert_eq!(
            message(&DeviceApiError::ValueMismatch),
            "Value doesn't match the Datastream data type"
        );
    }
}
