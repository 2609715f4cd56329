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

    /// Opens a data transaction and authenticates `token` in it; a refused
    /// token or a device over its rate is the use case's answer.
    async fn open_data(
        &self,
        hash: &str,
        admitted: &AtomicBool,
    ) -> Result<Result<(DataTx, TokenDevice), DeviceApiError>, AppError> {
        let mut tx = self.store().data().await?;
        let Some(device) = tx.device_for_token(hash).await? else {
            return Ok(Err(DeviceApiError::InvalidToken));
        };
        if !self.admitted(&device, admitted) {
            return Ok(Err(DeviceApiError::RateLimited));
        }
        Ok(Ok((tx, device)))
    }

    /// The rate limit, checked once per request (not again on a retry).
    fn admitted(&self, device: &TokenDevice, admitted: &AtomicBool) -> bool {
        admitted.swap(true, Ordering::Relaxed) || self.device_api.admit(device.id())
    }

    /// Marks the device seen (when due) and commits the data transaction.
    async fn finish_data(mut tx: DataTx, device: &TokenDevice) -> Result<(), AppError> {
        if seen_due(device.last_seen_at(), tx.now()) {
            tx.mark_device_seen(device).await?;
        }
        tx.commit_data().await?;
        Ok(())
    }

    /// Runs a read of a device's data: authenticates in a read transaction,
    /// and marks the device seen afterwards when due (`mark_seen`).
    async fn device_read<T, F, Fut>(
        &self,
        token: &str,
        mark_seen: bool,
        read: F,
    ) -> Result<T, DeviceApiError>
    where
        F: Fn(Tx<arbor_store::Read>, TokenDevice) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let seen = std::sync::Mutex::new(None);
        let answer = self
            .retrying(|| async {
                let mut tx = self.store().read().await?;
                let Some(device) = tx.device_for_token(&hash).await? else {
                    tx.finish().await?;
                    return Ok(Err(DeviceApiError::InvalidToken));
                };
                if !self.admitted(&device, &admitted) {
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
            self.retrying(|| async {
                let mut tx = self.store().data().await?;
                tx.mark_device_seen(&device).await?;
                tx.commit_data().await?;
                Ok(())
            })
            .await?;
        }
        answer
    }

    /// `update` and the GET form of `batch/update`: every datastream of
    /// `writes` gets its value now, all or none.
    pub async fn device_update(
        &self,
        token: &str,
        writes: &[PinWrite],
    ) -> Result<(), DeviceApiError> {
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let limit = self.device_api.limits.string_value_bytes;
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&hash, &admitted).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let pins = match pins_of(writes.iter().map(|w| &w.pin)) {
                    Ok(pins) => pins,
                    Err(refused) => return Ok(Err(refused.into())),
                };
                let streams = tx.template_datastreams(device.template()).await?;
                let now = tx.now();
                let mut values = Vec::with_capacity(writes.len());
                for (write, pin) in writes.iter().zip(&pins) {
                    let parsed = datastream(&streams, *pin).and_then(|ds| {
                        let parts: Vec<&str> = write.values.iter().map(String::as_str).collect();
                        Ok(ds.parse_value(&parts, limit)?)
                    });
                    match parsed {
                        Ok(value) => values.push(ValueWrite {
                            pin: *pin,
                            at: now,
                            value,
                        }),
                        Err(refused) => return Ok(Err(refused)),
                    }
                }
                tx.put_values(&device, &values).await?;
                Self::finish_data(tx, &device).await?;
                Ok(Ok(()))
            })
            .await?;
        answer
    }

    /// The POST form of `batch/update`: timestamped `points` (unix ms,
    /// value text) of one datastream, at most [`bounds::BATCH_POINTS`],
    /// none more than a month away; all or none.
    pub async fn device_batch(
        &self,
        token: &str,
        pin: &PinRef,
        points: &[(i64, String)],
    ) -> Result<(), DeviceApiError> {
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let limit = self.device_api.limits.string_value_bytes;
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&hash, &admitted).await? {
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
                Self::finish_data(tx, &device).await?;
                Ok(Ok(()))
            })
            .await?;
        answer
    }

    /// `get`: the current values of `pins` (a datastream without a stored
    /// value answers its default, if it has one), in the order asked; pins
    /// with neither are left out.
    pub async fn device_get(
        &self,
        token: &str,
        pins: &[PinRef],
    ) -> Result<Vec<PinReading>, DeviceApiError> {
        let pins = pins_of(pins.iter());
        self.device_read(token, true, |mut tx, device| {
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
    pub async fn device_get_all(&self, token: &str) -> Result<Vec<PinReading>, DeviceApiError> {
        self.device_read(token, true, |mut tx, device| async move {
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
    pub async fn device_connected(&self, token: &str) -> Result<bool, DeviceApiError> {
        let heartbeat = self.device_heartbeat_ms();
        self.device_read(token, false, |tx, device| async move {
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

    /// `logEvent`: an event of the template's `code` on the device's
    /// timeline, with an optional description.
    pub async fn device_log_event(
        &self,
        token: &str,
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
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&hash, &admitted).await? {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(Err(refused)),
                };
                let Some(level) = tx.template_event_level(device.template(), code).await? else {
                    return Ok(Err(DeviceApiError::UnknownEvent));
                };
                tx.insert_device_event(&device, code, level, description)
                    .await?;
                Self::finish_data(tx, &device).await?;
                Ok(Ok(()))
            })
            .await?;
        answer
    }

    /// `update/property`: widget properties of one of the device's
    /// datastreams, as (Blynk property name, values), all or none.
    pub async fn device_set_properties(
        &self,
        token: &str,
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
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&hash, &admitted).await? {
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
                Self::finish_data(tx, &device).await?;
                Ok(Ok(()))
            })
            .await?;
        answer
    }

    /// `device/meta`: one of the device's metafields with its value (the
    /// template's default while the device has none of its own).
    pub async fn device_metafield(
        &self,
        token: &str,
        field: &MetafieldRef,
    ) -> Result<DeviceMetafield, DeviceApiError> {
        let field = field.clone();
        self.device_read(token, true, |mut tx, device| {
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
        token: &str,
        field: &MetafieldRef,
        value: &str,
    ) -> Result<(), DeviceApiError> {
        let hash = crate::hash_token(token);
        let admitted = AtomicBool::new(false);
        let answer: Result<(), DeviceApiError> = self
            .retrying(|| async {
                let (mut tx, device) = match self.open_data(&hash, &admitted).await? {
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
                Self::finish_data(tx, &device).await?;
                Ok(Ok(()))
            })
            .await?;
        answer
    }
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
