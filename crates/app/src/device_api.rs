//! The device data plane's use cases (SPEC.md section 7): what a device,
//! authenticated by its auth token, may read and write of its own data.
//!
//! A device is no actor: its token is looked up by hash in the same
//! transaction as the read or write it authorizes ([`arbor_store::TokenDevice`]),
//! so a regenerated or deleted device's token is refused at once on every
//! node, and one token reaches one device's data only. Writes commit in a
//! data transaction without an audit row and without touching the
//! authorization version; the answer comes after the commit, so a success
//! means the value is durable. A refusal changes nothing. A device's
//! requests are limited per device ([`DeviceApiLimits::requests_per_second`],
//! on each node), and each one marks the device seen — written at most once
//! a second per device ([`arbor_core::device_data::seen_due`]).

use crate::live::LiveChange;
use crate::{App, AppError};
use arbor_core::DeviceId;
use arbor_core::device_data::{
    self, PinPropertyName, PinValue, ValueRefusal, bounds, parse_pin, point_time_ok, seen_due,
};
use arbor_core::template::{Datastream, Metafield};
use arbor_store::{DataTx, StoredValue, TokenDevice, Tx, ValueWrite};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The device API's configurable limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceApiLimits {
    /// Requests per second one device may make (on one node); beyond it
    /// the device is answered [`DeviceApiError::RateLimited`].
    pub requests_per_second: u32,
    /// Bytes of one string value.
    pub string_value_bytes: usize,
    /// Days a device's values and events are kept when its template sets
    /// no retention of its own ([`App::prune_history`]).
    pub history_retention_days: i64,
    /// Most rows one write transaction of the history pruner deletes.
    pub prune_batch_rows: u32,
}

impl Default for DeviceApiLimits {
    fn default() -> Self {
        Self {
            requests_per_second: 50,
            string_value_bytes: bounds::STRING_VALUE,
            history_retention_days: bounds::HISTORY_RETENTION_DAYS,
            prune_batch_rows: crate::maintenance::PRUNE_BATCH_ROWS,
        }
    }
}

/// The per-device request limiter and the limits, shared by the app's clones.
pub(crate) struct DeviceApi {
    limits: DeviceApiLimits,
    pub(crate) journal: Journal,
    limiter: DefaultKeyedRateLimiter<DeviceId>,
}

impl std::fmt::Debug for DeviceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceApi")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DeviceApi {
    pub(crate) fn new(limits: DeviceApiLimits) -> Arc<Self> {
        let rate = NonZeroU32::new(limits.requests_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            limits,
            journal: Journal::default(),
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
        })
    }

    /// Whether `device` may make one more request now; drops the state of
    /// devices that have been quiet, so the limiter stays small.
    fn admit(&self, device: DeviceId) -> bool {
        let admitted = self.limiter.check_key(&device).is_ok();
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        admitted
    }
}

/// One device API request as the service tab shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRequestRecord {
    /// Unix milliseconds.
    pub at: i64,
    /// The endpoint, e.g. `update` (never the token).
    pub endpoint: &'static str,
    /// Why it was refused; `None` when it succeeded.
    pub error: Option<String>,
    /// The address it came from, when known.
    pub peer: Option<std::net::IpAddr>,
}

/// The latest device API requests per device, kept in this node's memory
/// (a device's requests go to whichever node serves them; nothing of this
/// is written to the database, so the data plane stays one write per
/// request). Bounded: [`JOURNAL_PER_DEVICE`] requests per device and
/// [`JOURNAL_DEVICES`] devices, the quietest-looking dropped first.
#[derive(Default)]
pub(crate) struct Journal {
    devices: std::sync::Mutex<
        std::collections::HashMap<DeviceId, std::collections::VecDeque<DeviceRequestRecord>>,
    >,
}

/// Requests kept per device.
pub const JOURNAL_PER_DEVICE: usize = 20;
/// Devices whose requests are kept (about 2 KiB each when full). With room
/// for 100,000, a soak over 100,000 devices grew the server by ~50 MiB in
/// 5 minutes (docs/benchmarks/data-plane.md).
pub const JOURNAL_DEVICES: usize = 10_000;

impl Journal {
    fn note(&self, device: DeviceId, record: DeviceRequestRecord) {
        let Ok(mut devices) = self.devices.lock() else {
            return;
        };
        if devices.len() >= JOURNAL_DEVICES && !devices.contains_key(&device) {
            // Drop the devices whose newest request is the oldest half.
            let mut newest: Vec<i64> = devices
                .values()
                .filter_map(|r| r.front().map(|r| r.at))
                .collect();
            newest.sort_unstable();
            let cut = newest.get(newest.len() / 2).copied().unwrap_or(i64::MAX);
            devices.retain(|_, r| r.front().is_some_and(|r| r.at > cut));
        }
        let requests = devices.entry(device).or_default();
        requests.push_front(record);
        requests.truncate(JOURNAL_PER_DEVICE);
    }

    /// `device`'s latest requests, newest first.
    pub(crate) fn requests(&self, device: DeviceId) -> Vec<DeviceRequestRecord> {
        self.devices
            .lock()
            .ok()
            .and_then(|d| d.get(&device).map(|r| r.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

/// A device API request as it arrives: its token, the endpoint it calls
/// and the address it comes from.
#[derive(Clone, Copy, Debug)]
pub struct DeviceCall<'a> {
    pub token: &'a str,
    pub endpoint: &'static str,
    pub peer: Option<std::net::IpAddr>,
}

/// One request on its way: the token's hash, whether the rate limit was
/// checked, and the device the token named (once looked up).
struct Visit<'c> {
    call: &'c DeviceCall<'c>,
    hash: String,
    admitted: AtomicBool,
    device: std::sync::OnceLock<DeviceId>,
}

impl<'c> Visit<'c> {
    fn new(call: &'c DeviceCall<'c>) -> Self {
        Self {
            call,
            hash: crate::hash_token(call.token),
            admitted: AtomicBool::new(false),
            device: std::sync::OnceLock::new(),
        }
    }
}

/// Why the device API refused a request. The server answers each with
/// Blynk's message (docs/device-api.md); none changed anything.
#[derive(Debug, thiserror::Error)]
pub enum DeviceApiError {
    #[error("invalid token")]
    InvalidToken,
    #[error("wrong pin format")]
    WrongPin,
    #[error("wrong dataStreamId format")]
    WrongDataStreamId,
    #[error("no datastream on that pin")]
    NoDatastream,
    #[error("the value does not match the datastream type")]
    ValueMismatch,
    #[error("the value is longer than {limit} bytes")]
    ValueTooLong { limit: usize },
    #[error("the pin has no value")]
    NoValue,
    #[error("a batch holds at most {limit} points")]
    TooManyPoints { limit: usize },
    #[error("a point's timestamp lies more than a month away")]
    PointOutOfWindow,
    #[error("the template defines no event with that code")]
    UnknownEvent,
    #[error("the event description is longer than {limit} characters")]
    DescriptionTooLong { limit: usize },
    #[error("unknown property")]
    WrongProperty,
    #[error("the property value does not fit the property")]
    WrongPropertyValue,
    #[error("wrong metaField format")]
    WrongMetaField,
    #[error("no such metafield")]
    NoMetaField,
    #[error("the value does not fit the metafield")]
    WrongMetaValue,
    #[error("request with incorrect parameters")]
    WrongParameters,
    #[error("too many requests from this device")]
    RateLimited,
    #[error(transparent)]
    Failed(#[from] AppError),
}

impl From<ValueRefusal> for DeviceApiError {
    fn from(refusal: ValueRefusal) -> Self {
        match refusal {
            ValueRefusal::Mismatch => Self::ValueMismatch,
            ValueRefusal::TooLong { limit } => Self::ValueTooLong { limit },
        }
    }
}

/// How a request names a datastream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinRef {
    /// A virtual pin, `V1` or `v1`.
    Pin(String),
    /// Blynk's `dataStreamId`: in Arbor a datastream's id is its pin
    /// number (`dataStreamId=1` is V1).
    DataStreamId(String),
}

/// Why a request's pin names no pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PinRefusal {
    WrongPin,
    WrongDataStreamId,
}

impl From<PinRefusal> for DeviceApiError {
    fn from(refusal: PinRefusal) -> Self {
        match refusal {
            PinRefusal::WrongPin => Self::WrongPin,
            PinRefusal::WrongDataStreamId => Self::WrongDataStreamId,
        }
    }
}

impl PinRef {
    fn pin(&self) -> Result<u16, PinRefusal> {
        match self {
            Self::Pin(text) => parse_pin(text).ok_or(PinRefusal::WrongPin),
            Self::DataStreamId(text) => text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|pin| *pin <= arbor_core::template::bounds::MAX_PIN)
                .ok_or(PinRefusal::WrongDataStreamId),
        }
    }
}

/// One datastream a request writes, with the text of its value (several
/// parts for a multi-part value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinWrite {
    pub pin: PinRef,
    pub values: Vec<String>,
}

/// How a request names a metafield: Blynk's `metaFieldId` (its position in
/// the template's list, from 1) or `metaFieldName` (exact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetafieldRef {
    Id(String),
    Name(String),
}

/// A metafield as the device sees it: its definition and the device's value
/// (or the template's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceMetafield {
    pub field: Metafield,
    pub value: String,
}

/// One pin's value as `get` answers it.
#[derive(Clone, Debug, PartialEq)]
pub struct PinReading {
    pub pin: u16,
    pub value: PinValue,
}

/// How `data/get` reads history: Blynk's `granularityType` and, for
/// aggregates, `sourceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryRead {
    /// `RAW_DATA`: every point.
    Raw,
    /// `MINUTE`, `HOURLY`, `DAILY` buckets (UTC) of one aggregate.
    Buckets { bucket_ms: i64, source: Source },
}

/// Blynk's `sourceType`: the aggregate a bucket answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Avg,
    Min,
    Max,
    Sum,
    Count,
}

/// Most raw points `data/get` answers per datastream (the oldest are left
/// out beyond it; ask a shorter period or an aggregate).
pub const DATA_GET_RAW_POINTS: u32 = 100_000;

/// One datastream's history as `data/get` answers it: (unix ms, value).
#[derive(Clone, Debug, PartialEq)]
pub struct PinHistory {
    pub pin: u16,
    pub points: Vec<(i64, PinValue)>,
}

/// What one attempt of a device use case ends with: a store failure (the
/// outer error, retried when transient) or the use case's own answer.
type Attempt<T> = Result<Result<T, DeviceApiError>, AppError>;

/// The datastream `pin` names in `template`'s datastreams.
fn datastream(streams: &[Datastream], pin: u16) -> Result<&Datastream, DeviceApiError> {
    streams
        .iter()
        .find(|ds| ds.pin == pin)
        .ok_or(DeviceApiError::NoDatastream)
}

/// The default value of a datastream as a reading, if it has one.
fn default_reading(ds: &Datastream) -> Option<PinReading> {
    ds.default_value.clone().map(|value| PinReading {
        pin: ds.pin,
        value: PinValue::One(value),
    })
}

impl App {
    /// With these device API limits instead of the defaults.
    pub fn with_device_api_limits(mut self, limits: DeviceApiLimits) -> Self {
        self.device_api = DeviceApi::new(limits);
        self
    }

    pub fn device_api_limits(&self) -> DeviceApiLimits {
        self.device_api.limits
    }

    /// Opens a data transaction and authenticates the visit's token in it;
    /// a refused token or a device over its rate is the use case's answer.
    async fn open_data(
        &self,
        visit: &Visit<'_>,
    ) -> Result<Result<(DataTx, TokenDevice), DeviceApiError>, AppError> {
        let mut tx = self.store().data().await?;
        let Some(device) = tx.device_for_token(&visit.hash).await? else {
            return Ok(Err(DeviceApiError::InvalidToken));
        };
        let _ = visit.device.set(device.id());
        if !self.admitted(&device, &visit.admitted) {
            return Ok(Err(DeviceApiError::RateLimited));
        }
        Ok(Ok((tx, device)))
    }

    /// Whether `device` may make one more request now (the rate limit).
    pub(crate) fn device_api_admit(&self, device: DeviceId) -> bool {
        self.device_api.admit(device)
    }

    /// The rate limit, checked once per request (not again on a retry).
    fn admitted(&self, device: &TokenDevice, admitted: &AtomicBool) -> bool {
        admitted.swap(true, Ordering::Relaxed) || self.device_api.admit(device.id())
    }

    /// Notes the visit's request in its device's journal (when its token
    /// named one) and passes its answer on.
    fn noted<T>(
        &self,
        visit: &Visit<'_>,
        answer: Result<T, DeviceApiError>,
    ) -> Result<T, DeviceApiError> {
        if let Some(device) = visit.device.get() {
            let outcome = answer.as_ref().err().map(ToString::to_string);
            self.device_api.journal.note(
                *device,
                DeviceRequestRecord {
                    at: self.store().now_ms(),
                    endpoint: visit.call.endpoint,
                    error: outcome,
                    peer: visit.call.peer,
                },
            );
        }
        answer
    }

    /// Marks the device seen (when due), commits the data transaction, and
    /// then — committed — publishes `changes` (and a return after the
    /// heartbeat) to this node's live subscribers.
    async fn finish_data(
        &self,
        mut tx: DataTx,
        device: &TokenDevice,
        changes: Vec<LiveChange>,
    ) -> Result<(), AppError> {
        let back = self.mark_seen(&mut tx, device).await?;
        tx.commit_data().await?;
        self.publish(device.id(), back.into_iter().chain(changes));
        Ok(())
    }

    /// Marks the device seen when due ([`seen_due`]); a device back after
    /// the heartbeat gets its `offline` and `online` timeline entries, and
    /// the change to publish once committed.
    pub(crate) async fn mark_seen(
        &self,
        tx: &mut DataTx,
        device: &TokenDevice,
    ) -> Result<Option<LiveChange>, AppError> {
        let now = tx.now();
        if !seen_due(device.last_seen_at(), now) {
            return Ok(None);
        }
        let heartbeat = self.device_heartbeat_ms();
        if !device_data::online(device.last_seen_at(), now, heartbeat)
            && tx.mark_device_back(device, heartbeat).await?
        {
            return Ok(Some(LiveChange::Online {
                offline_at: device.last_seen_at().map(|at| at.saturating_add(heartbeat)),
                at: now,
            }));
        }
        tx.mark_device_seen(device).await?;
        Ok(None)
    }

    /// Runs a read of a device's data: authenticates in a read transaction,
    /// and marks the device seen afterwards when due (`mark_seen`).
    async fn device_read<T, F, Fut>(
        &self,
        call: &DeviceCall<'_>,
        mark_seen: bool,
        read: F,
    ) -> Result<T, DeviceApiError>
    where
        F: Fn(Tx<arbor_store::Read>, TokenDevice) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let visit = Visit::new(call);
        let seen = std::sync::Mutex::new(None);
        let answer = self
            .retrying(|| async {
                let mut tx = self.store().read().await?;
                let Some(device) = tx.device_for_token(&visit.hash).await? else {
                    tx.finish().await?;
                    return Ok(Err(DeviceApiError::InvalidToken));
                };
                let _ = visit.device.set(device.id());
                if !self.admitted(&device, &visit.admitted) {
                    tx.finish().await?;
                    return Ok(Err(DeviceApiError::RateLimited));
                }
                if let Ok(mut seen) = seen.lock() {
                    *seen = Some(device.clone());
                }
                read(tx, device).await
            })
            .await?;
        let device = seen.lock().ok().and_then(|mut s| s.take());
        if let (true, Ok(_), Some(device)) = (mark_seen, &answer, device)
            && seen_due(device.last_seen_at(), self.store().now_ms())
        {
            // With the writer's next group (not a write transaction of its own).
            self.device_writer.seen(self, device).await;
        }
        self.noted(&visit, answer)
    }

    /// `update` and the GET form of `batch/update`: every datastream of
    /// `writes` gets its value now, all or none. Committed together with
    /// other devices' updates by this node's writer
    /// ([`crate::device_writer`]); answered after the commit.
    pub async fn device_update(
        &self,
        call: &DeviceCall<'_>,
        writes: &[PinWrite],
    ) -> Result<(), DeviceApiError> {
        let visit = Visit::new(call);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = crate::device_writer::Job::Update {
            hash: visit.hash.clone(),
            writes: writes.to_vec(),
            reply,
        };
        let closed = || DeviceApiError::Failed(AppError::internal("the device writer stopped"));
        if self.device_writer.submit(self, job).await.is_err() {
            return Err(closed());
        }
        let (device, answer) = answer.await.map_err(|_| closed())?;
        if let Some(device) = device {
            let _ = visit.device.set(device);
        }
        self.noted(&visit, answer)
    }

    /// The POST form of `batch/update`: timestamped `points` (unix ms,
    /// value text) of one datastream, at most [`bounds::BATCH_POINTS`],
    /// none more than a month away; all or none.
    pub async fn device_batch(
        &self,
        call: &DeviceCall<'_>,
        pin: &PinRef,
        points: &[(i64, String)],
    ) -> Result<(), DeviceApiError> {
        let visit = Visit::new(call);
        let limit = self.device_api.limits.string_value_bytes;
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&visit).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let pin = match pin.pin() {
                    Ok(pin) => pin,
                    Err(refused) => return Ok(Err(refused.into())),
                };
                if points.len() > bounds::BATCH_POINTS {
                    return Ok(Err(DeviceApiError::TooManyPoints {
                        limit: bounds::BATCH_POINTS,
                    }));
                }
                let Some(ds) = tx.template_datastream(device.template(), pin).await? else {
                    return Ok(Err(DeviceApiError::NoDatastream));
                };
                let now = tx.now();
                let mut values = Vec::with_capacity(points.len());
                for (at, text) in points {
                    if !point_time_ok(now, *at) {
                        return Ok(Err(DeviceApiError::PointOutOfWindow));
                    }
                    match ds.parse_value(&[text.as_str()], limit) {
                        Ok(value) => values.push(ValueWrite {
                            pin,
                            at: *at,
                            value,
                        }),
                        Err(refused) => return Ok(Err(refused.into())),
                    }
                }
                tx.put_values(&device, &values).await?;
                // The newest point of the batch (not each of up to 10,000).
                let newest = values
                    .iter()
                    .max_by_key(|v| v.at)
                    .map(|v| LiveChange::Value {
                        pin: v.pin,
                        value: v.value.clone(),
                        at: v.at,
                    });
                self.finish_data(tx, &device, newest.into_iter().collect())
                    .await?;
                Ok(Ok(()))
            })
            .await?;
        self.noted(&visit, answer)
    }

    /// `get`: the current values of `pins` (a datastream without a stored
    /// value answers its default, if it has one), in the order asked; pins
    /// with neither are left out.
    pub async fn device_get(
        &self,
        call: &DeviceCall<'_>,
        pins: &[PinRef],
    ) -> Result<Vec<PinReading>, DeviceApiError> {
        let pins = pins_of(pins.iter());
        self.device_read(call, true, |mut tx, device| {
            let pins = pins.clone();
            async move {
                let pins = match pins {
                    Ok(pins) => pins,
                    Err(refused) => {
                        tx.finish().await?;
                        return Ok(Err(refused.into()));
                    }
                };
                let streams = tx.template_datastreams(device.template()).await?;
                let mut asked = Vec::with_capacity(pins.len());
                for pin in &pins {
                    match datastream(&streams, *pin) {
                        Ok(ds) => asked.push(ds),
                        Err(refused) => {
                            tx.finish().await?;
                            return Ok(Err(refused));
                        }
                    }
                }
                let stored = tx.current_values(device.id(), &pins).await?;
                tx.finish().await?;
                Ok(Ok(readings(&asked, &stored)))
            }
        })
        .await
    }

    /// `getAll`: the current value (or default) of every datastream of the
    /// device's template that has one, by pin.
    pub async fn device_get_all(
        &self,
        call: &DeviceCall<'_>,
    ) -> Result<Vec<PinReading>, DeviceApiError> {
        self.device_read(call, true, |mut tx, device| async move {
            let streams = tx.template_datastreams(device.template()).await?;
            let stored = tx.current_values(device.id(), &[]).await?;
            tx.finish().await?;
            let all: Vec<&Datastream> = streams.iter().collect();
            Ok(Ok(readings(&all, &stored)))
        })
        .await
    }

    /// `isHardwareConnected`: whether the device called the device API
    /// within the heartbeat. Asking does not make it so: this request does
    /// not mark the device seen.
    pub async fn device_connected(&self, call: &DeviceCall<'_>) -> Result<bool, DeviceApiError> {
        let heartbeat = self.device_heartbeat_ms();
        self.device_read(call, false, |tx, device| async move {
            let now = tx.now();
            tx.finish().await?;
            Ok(Ok(device_data::online(
                device.last_seen_at(),
                now,
                heartbeat,
            )))
        })
        .await
    }

    /// `data/get`: the history of one datastream (or of every one) over
    /// the last `period_ms`, raw or in buckets of one aggregate. A read:
    /// it marks the device seen, like `get`.
    pub async fn device_data_get(
        &self,
        call: &DeviceCall<'_>,
        pin: Option<&PinRef>,
        period_ms: i64,
        read: HistoryRead,
    ) -> Result<Vec<PinHistory>, DeviceApiError> {
        let pin = pin.map(PinRef::pin).transpose();
        self.device_read(call, true, |mut tx, device| async move {
            let streams = tx.template_datastreams(device.template()).await?;
            let pins: Vec<u16> = match pin {
                Err(refused) => {
                    tx.finish().await?;
                    return Ok(Err(refused.into()));
                }
                Ok(Some(pin)) => match datastream(&streams, pin) {
                    Ok(ds) => vec![ds.pin],
                    Err(refused) => {
                        tx.finish().await?;
                        return Ok(Err(refused));
                    }
                },
                Ok(None) => streams.iter().map(|ds| ds.pin).collect(),
            };
            let to = tx.now().saturating_add(1);
            let from = to.saturating_sub(period_ms);
            let mut answer = Vec::with_capacity(pins.len());
            for pin in pins {
                let points = match read {
                    HistoryRead::Raw => tx
                        .history_page(device.id(), pin, from, to, None, DATA_GET_RAW_POINTS)
                        .await?
                        .into_iter()
                        .map(|p| (p.value.at, p.value.value))
                        .collect(),
                    HistoryRead::Buckets { bucket_ms, source } => tx
                        .history_buckets(device.id(), pin, from, to, bucket_ms)
                        .await?
                        .into_iter()
                        .filter_map(|b| {
                            let n = match source {
                                Source::Avg => b.avg,
                                Source::Min => b.min,
                                Source::Max => b.max,
                                Source::Sum => b.sum,
                                Source::Count => Some(b.count as f64),
                            }?;
                            Some((b.at, PinValue::One(arbor_core::template::Scalar::Number(n))))
                        })
                        .collect(),
                };
                answer.push(PinHistory { pin, points });
            }
            tx.finish().await?;
            Ok(Ok(answer))
        })
        .await
    }

    /// `logEvent`: an event of the template's `code` on the device's
    /// timeline, with an optional description.
    pub async fn device_log_event(
        &self,
        call: &DeviceCall<'_>,
        code: &str,
        description: &str,
    ) -> Result<(), DeviceApiError> {
        let description = description.trim();
        if description.chars().count() > bounds::EVENT_DESCRIPTION {
            return Err(DeviceApiError::DescriptionTooLong {
                limit: bounds::EVENT_DESCRIPTION,
            });
        }
        if description.contains('\0') {
            return Err(DeviceApiError::WrongPropertyValue);
        }
        let code = code.trim();
        let visit = Visit::new(call);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&visit).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let Some(level) = tx.template_event_level(device.template(), code).await? else {
                    return Ok(Err(DeviceApiError::UnknownEvent));
                };
                tx.insert_device_event(&device, code, level, description)
                    .await?;
                let event = LiveChange::Event {
                    code: code.to_owned(),
                    level: level.as_str().to_owned(),
                    description: description.to_owned(),
                    at: tx.now(),
                };
                self.finish_data(tx, &device, vec![event]).await?;
                Ok(Ok(()))
            })
            .await?;
        self.noted(&visit, answer)
    }

    /// `update/property`: widget properties of one of the device's
    /// datastreams, as (Blynk property name, values), all or none.
    pub async fn device_set_properties(
        &self,
        call: &DeviceCall<'_>,
        pin: &PinRef,
        properties: &[(String, Vec<String>)],
    ) -> Result<(), DeviceApiError> {
        let limit = self.device_api.limits.string_value_bytes;
        let checked = || -> Result<(u16, Vec<(PinPropertyName, String)>), DeviceApiError> {
            let pin = pin.pin()?;
            if properties.is_empty() {
                return Err(DeviceApiError::WrongProperty);
            }
            let mut checked = Vec::with_capacity(properties.len());
            for (name, values) in properties {
                let property = PinPropertyName::parse(name).ok_or(DeviceApiError::WrongProperty)?;
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                let value = property
                    .checked(&values, limit)
                    .ok_or(DeviceApiError::WrongPropertyValue)?;
                checked.push((property, value));
            }
            Ok((pin, checked))
        };
        let visit = Visit::new(call);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&visit).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let (pin, checked) = match checked() {
                    Ok(checked) => checked,
                    Err(refused) => return Ok(Err(refused)),
                };
                if tx
                    .template_datastream(device.template(), pin)
                    .await?
                    .is_none()
                {
                    return Ok(Err(DeviceApiError::NoDatastream));
                }
                for (property, value) in &checked {
                    tx.set_pin_property(&device, pin, property.as_str(), value)
                        .await?;
                }
                self.finish_data(tx, &device, Vec::new()).await?;
                Ok(Ok(()))
            })
            .await?;
        self.noted(&visit, answer)
    }

    /// `device/meta`: one of the device's metafields with its value (the
    /// template's default while the device has none of its own).
    pub async fn device_metafield(
        &self,
        call: &DeviceCall<'_>,
        field: &MetafieldRef,
    ) -> Result<DeviceMetafield, DeviceApiError> {
        let field = field.clone();
        self.device_read(call, true, |mut tx, device| {
            let field = field.clone();
            async move {
                let fields = tx.template_metafields(device.template()).await?;
                let found = match find_metafield(&fields, &field) {
                    Ok(found) => found.clone(),
                    Err(refused) => {
                        tx.finish().await?;
                        return Ok(Err(refused));
                    }
                };
                let own = tx.device_metafield(device.id(), &found.name).await?;
                tx.finish().await?;
                let value = own.unwrap_or_else(|| found.default_value.clone());
                Ok(Ok(DeviceMetafield {
                    field: found,
                    value,
                }))
            }
        })
        .await
    }

    /// `device/meta/update`: the device's value of one of its metafields,
    /// checked against the metafield's type. Device data like its values:
    /// not an audit event.
    pub async fn device_set_metafield(
        &self,
        call: &DeviceCall<'_>,
        field: &MetafieldRef,
        value: &str,
    ) -> Result<(), DeviceApiError> {
        let visit = Visit::new(call);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&visit).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let fields = tx.template_metafields(device.template()).await?;
                let found = match find_metafield(&fields, field) {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                let Some(value) = found.checked_value(value) else {
                    return Ok(Err(DeviceApiError::WrongMetaValue));
                };
                tx.set_device_metafield(&device, &found.name, &value)
                    .await?;
                self.finish_data(tx, &device, Vec::new()).await?;
                Ok(Ok(()))
            })
            .await?;
        self.noted(&visit, answer)
    }
}

/// The values an `update` writes at `now`: each named datastream of
/// `streams` gets its value parsed and clamped; the first refusal refuses
/// them all.
pub(crate) fn parse_writes(
    streams: &[Datastream],
    writes: &[PinWrite],
    limit: usize,
    now: i64,
) -> Result<Vec<ValueWrite>, DeviceApiError> {
    let pins = pins_of(writes.iter().map(|w| &w.pin))?;
    let mut values = Vec::with_capacity(writes.len());
    for (write, pin) in writes.iter().zip(&pins) {
        let ds = datastream(streams, *pin)?;
        let parts: Vec<&str> = write.values.iter().map(String::as_str).collect();
        values.push(ValueWrite {
            pin: *pin,
            at: now,
            value: ds.parse_value(&parts, limit)?,
        });
    }
    Ok(values)
}

/// The pins `refs` name (at least one), or the first refusal.
fn pins_of<'r>(refs: impl Iterator<Item = &'r PinRef>) -> Result<Vec<u16>, PinRefusal> {
    let pins = refs.map(PinRef::pin).collect::<Result<Vec<_>, _>>()?;
    if pins.is_empty() {
        return Err(PinRefusal::WrongPin);
    }
    Ok(pins)
}

/// The metafield `field` names among the template's `fields`.
fn find_metafield<'f>(
    fields: &'f [Metafield],
    field: &MetafieldRef,
) -> Result<&'f Metafield, DeviceApiError> {
    match field {
        MetafieldRef::Id(text) => {
            let id: usize = text
                .trim()
                .parse()
                .map_err(|_| DeviceApiError::WrongMetaField)?;
            id.checked_sub(1)
                .and_then(|i| fields.get(i))
                .ok_or(DeviceApiError::NoMetaField)
        }
        MetafieldRef::Name(name) => fields
            .iter()
            .find(|f| f.name == *name)
            .ok_or(DeviceApiError::NoMetaField),
    }
}

/// The readings of the datastreams `asked`: the stored value, else the
/// default; a datastream with neither is left out.
fn readings(asked: &[&Datastream], stored: &[StoredValue]) -> Vec<PinReading> {
    asked
        .iter()
        .filter_map(|ds| {
            stored
                .iter()
                .find(|v| v.pin == ds.pin)
                .map(|v| PinReading {
                    pin: v.pin,
                    value: v.value.clone(),
                })
                .or_else(|| default_reading(ds))
        })
        .collect()
}

/// The value text of a JSON point of a timestamped batch: a number as
/// written, a string as is; `None` for anything else.
pub fn point_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastream_ids_are_pin_numbers() {
        assert_eq!(PinRef::DataStreamId("7".into()).pin().unwrap(), 7);
        assert_eq!(
            PinRef::DataStreamId("V7".into()).pin(),
            Err(PinRefusal::WrongDataStreamId)
        );
        assert_eq!(
            PinRef::DataStreamId("256".into()).pin(),
            Err(PinRefusal::WrongDataStreamId)
        );
        assert_eq!(PinRef::Pin("D7".into()).pin(), Err(PinRefusal::WrongPin));
    }

    #[test]
    fn metafields_are_found_by_position_or_exact_name() {
        let field = |name: &str| Metafield {
            name: name.into(),
            value_type: arbor_core::template::MetafieldType::Text,
            default_value: String::new(),
        };
        let fields = vec![field("Serial"), field("Model")];
        let by_id = |id: &str| find_metafield(&fields, &MetafieldRef::Id(id.into()));
        assert_eq!(by_id("2").unwrap().name, "Model");
        assert!(matches!(by_id("0"), Err(DeviceApiError::NoMetaField)));
        assert!(matches!(by_id("3"), Err(DeviceApiError::NoMetaField)));
        assert!(matches!(by_id("x"), Err(DeviceApiError::WrongMetaField)));
        let by_name = |n: &str| find_metafield(&fields, &MetafieldRef::Name(n.into()));
        assert_eq!(by_name("Serial").unwrap().name, "Serial");
        assert!(matches!(
            by_name("serial"),
            Err(DeviceApiError::NoMetaField)
        ));
    }

    #[test]
    fn batch_points_take_numbers_and_strings() {
        assert_eq!(point_text(&serde_json::json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(point_text(&serde_json::json!("on")).as_deref(), Some("on"));
        assert_eq!(point_text(&serde_json::json!(null)), None);
    }
}
