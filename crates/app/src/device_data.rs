//! A device's data as its users see and control it (SPEC.md section 7, the
//! management API's side): current values, history (raw or aggregated),
//! control, the timeline, reports, deleting data, and the service tab.
//!
//! Every use case is decided by arbor-core's device rule (rule 5) with the
//! matching action — `view` for values and history, `control`,
//! `view_timeline`, `download_reports`, `delete_data`, `service_tab` — so a
//! device the caller may not view answers 404 and one it may view but not
//! act on answers 403, audited in the caller's own org. Reads write an
//! audit row only when refused; control and deleting data are audited
//! mutations.

use crate::run::{Decides, Found, Stop, read_case, write_case};
use crate::{App, AppError, Caller};
use arbor_core::device_data::PinValue;
use arbor_core::template::Datastream;
use arbor_core::{DeviceAction, DeviceId};
use arbor_store::{
    AuditEvent, DataDeletion, DeviceEventRecord, DeviceRecord, HistoryBucket, HistoryPoint,
    PinProperty, StoredValue, ValueWrite,
};

/// Most points of one raw history page.
pub const MAX_HISTORY_PAGE: u32 = 10_000;
/// Most buckets an aggregated history answers (a month by minute is 44,640).
pub const MAX_HISTORY_BUCKETS: i64 = 50_000;
/// Most rows of one CSV report.
pub const MAX_REPORT_ROWS: u32 = 200_000;
/// Most timeline entries of one page.
pub const MAX_TIMELINE_PAGE: u32 = 500;

/// One datastream of a device with its current value (or the template's
/// default while none is stored) and the widget properties the device set.
#[derive(Clone, Debug, PartialEq)]
pub struct DatastreamReading {
    pub datastream: Datastream,
    /// The stored value and when it was written; `None` before any.
    pub current: Option<StoredValue>,
    pub properties: Vec<(String, String)>,
}

/// How a history is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryShape {
    /// Every point, oldest first, `limit` at a time after `after` (at, id).
    Raw {
        after: Option<(i64, i64)>,
        limit: u32,
    },
    /// Buckets of `bucket_ms` with count, min, max, avg and sum.
    Buckets { bucket_ms: i64 },
}

/// A history as asked.
#[derive(Clone, Debug, PartialEq)]
pub enum History {
    Raw {
        points: Vec<HistoryPoint>,
        /// The cursor of the next page, when this one was full.
        next: Option<(i64, i64)>,
    },
    Buckets(Vec<HistoryBucket>),
}

/// A time range `[from, to)` in unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

impl Range {
    /// The range, refused when it ends before it starts.
    pub fn new(from: i64, to: i64) -> Result<Self, AppError> {
        if to < from {
            return Err(AppError::invalid("to", "the range ends before it starts"));
        }
        Ok(Self { from, to })
    }
}

/// The rows of a report: the datastreams asked for, and their points.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub device: DeviceRecord,
    pub datastreams: Vec<Datastream>,
    pub points: Vec<StoredValue>,
}

/// The service tab: how the device talks to Arbor.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceTab {
    pub device: DeviceRecord,
    /// The widget properties the device set, by pin and name.
    pub properties: Vec<PinProperty>,
    /// The device's latest device API requests seen by this node, newest
    /// first.
    pub requests: Vec<crate::device_api::DeviceRequestRecord>,
}

/// The datastream of `device`'s template on `pin`, or the refusal naming
/// the pin.
async fn datastream_on<M>(
    tx: &mut arbor_store::Tx<M>,
    device: &DeviceRecord,
    pin: u16,
) -> Result<Result<Datastream, AppError>, Stop> {
    Ok(tx
        .template_datastream(device.template, pin)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "pin",
                format!("the device's template has no datastream on V{pin}"),
            )
        }))
}

/// The device, if the actor may read its data by `action` (else the
/// audited 404 or 403 of the device rule).
async fn readable(
    step: &mut crate::run::ReadStep,
    device: DeviceId,
    action: DeviceAction,
) -> Result<DeviceRecord, Stop> {
    let record = step.tx.device(device).await.found(step, "device")?;
    let decision = step.actor.read_device_data(action, &record.facts());
    step.require(decision, "device")?;
    Ok(record)
}

impl App {
    /// Every datastream of a device's template with its current value and
    /// widget properties (device `view`).
    pub async fn device_datastreams(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<Vec<DatastreamReading>, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.datastreams.view",
            format!("device:{device}"),
        );
        read_case!(self, caller, event, |step| {
            let record = readable(step, device, DeviceAction::View).await?;
            let streams = step.tx.template_datastreams(record.template).await?;
            let values = step.tx.current_values(device, &[]).await?;
            let properties = step.tx.pin_properties(device).await?;
            Ok(streams
                .into_iter()
                .map(|ds| DatastreamReading {
                    current: values.iter().find(|v| v.pin == ds.pin).cloned(),
                    properties: properties
                        .iter()
                        .filter(|p| p.pin == ds.pin)
                        .map(|p| (p.name.clone(), p.value.clone()))
                        .collect(),
                    datastream: ds,
                })
                .collect())
        })
    }

    /// The history of one datastream of a device over `range`, raw or in
    /// buckets (device `view`).
    pub async fn device_history(
        &self,
        caller: &Caller,
        device: DeviceId,
        pin: u16,
        range: Range,
        shape: HistoryShape,
    ) -> Result<(Datastream, History), AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.history.view",
            format!("device:{device}"),
        )
        .detail("pin", pin);
        read_case!(self, caller, event, |step| {
            let record = readable(step, device, DeviceAction::View).await?;
            let ds = match datastream_on(&mut step.tx, &record, pin).await? {
                Ok(ds) => ds,
                Err(e) => return Err(step.fail(e)),
            };
            let history = match shape {
                HistoryShape::Raw { after, limit } => {
                    let limit = limit.clamp(1, MAX_HISTORY_PAGE);
                    let points = step
                        .tx
                        .history_page(device, pin, range.from, range.to, after, limit)
                        .await?;
                    let full = points.len() == limit as usize;
                    let next = points.last().filter(|_| full).map(|p| (p.value.at, p.id));
                    History::Raw { points, next }
                }
                HistoryShape::Buckets { bucket_ms } => {
                    let buckets = (range.to - range.from) / bucket_ms.max(1);
                    if buckets > MAX_HISTORY_BUCKETS {
                        return Err(step.fail(AppError::invalid(
                            "granularity",
                            format!(
                                "the range holds {buckets} buckets of this granularity, \
                                 more than {MAX_HISTORY_BUCKETS}; choose a coarser one"
                            ),
                        )));
                    }
                    History::Buckets(
                        step.tx
                            .history_buckets(device, pin, range.from, range.to, bucket_ms)
                            .await?,
                    )
                }
            };
            Ok((ds, history))
        })
    }

    /// Writes a value to one of a device's datastreams (control): parsed to
    /// the datastream's type and clamped like a device's own write, kept as
    /// the current value and in the history; the device reads it with
    /// `get`. `org_devices.control`, or `own_devices.control` for the
    /// owner; audited as `device.control`.
    pub async fn control_device(
        &self,
        caller: &Caller,
        device: DeviceId,
        pin: u16,
        parts: &[String],
    ) -> Result<StoredValue, AppError> {
        let event = AuditEvent::new(caller.client, "device.control", format!("device:{device}"))
            .detail("pin", pin);
        let limit = self.device_api_limits().string_value_bytes;
        let written = write_case!(self, caller, event, |step| {
            let record = crate::devices::locked_visible(step, device).await?;
            step.event.target_org = Some(record.org.id());
            let verdict = step.actor.control_device(device, &record.facts());
            let by = step.allow(verdict, "device")?;
            let ds = match datastream_on(&mut step.tx, &record, pin).await? {
                Ok(ds) => ds,
                Err(e) => return Err(step.fail(e)),
            };
            let texts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let value: PinValue = match ds.parse_value(&texts, limit) {
                Ok(value) => value,
                Err(refused) => {
                    let reason = match refused {
                        arbor_core::device_data::ValueRefusal::TooLong { limit } => {
                            format!("a string value holds at most {limit} bytes")
                        }
                        arbor_core::device_data::ValueRefusal::Mismatch => format!(
                            "the value does not match V{pin}'s type ({})",
                            ds.value_type.as_str()
                        ),
                    };
                    return Err(step.fail(AppError::invalid("value", reason)));
                }
            };
            let write = ValueWrite {
                pin,
                at: step.tx.now(),
                value,
            };
            step.tx.write_device_value(&by, &write).await?;
            Ok(StoredValue {
                pin,
                at: write.at,
                value: write.value,
            })
        })?;
        // Committed: the device's live subscribers see it.
        self.publish(
            device,
            [crate::live::LiveChange::Value {
                pin: written.pin,
                value: written.value.clone(),
                at: written.at,
            }],
        );
        Ok(written)
    }

    /// A device's timeline over `range`, newest first, `limit` entries
    /// before the entry `before` (at, id): its events, ownership changes
    /// and online/offline (`org_devices.view_timeline` or
    /// `own_devices.view_timeline`).
    pub async fn device_timeline(
        &self,
        caller: &Caller,
        device: DeviceId,
        range: Range,
        before: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<DeviceEventRecord>, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.timeline.view",
            format!("device:{device}"),
        );
        read_case!(self, caller, event, |step| {
            readable(step, device, DeviceAction::ViewTimeline).await?;
            let limit = limit.clamp(1, MAX_TIMELINE_PAGE);
            Ok(step
                .tx
                .timeline_page(device, range.from, range.to, before, limit)
                .await?)
        })
    }

    /// The points of a device's datastreams `pins` (every datastream when
    /// empty) over `range`, for a report (`org_devices.download_reports`
    /// or `own_devices.download_reports`); refused when it would hold more
    /// than [`MAX_REPORT_ROWS`] rows.
    pub async fn device_report(
        &self,
        caller: &Caller,
        device: DeviceId,
        pins: &[u16],
        range: Range,
    ) -> Result<Report, AppError> {
        let event = AuditEvent::new(caller.client, "device.report", format!("device:{device}"));
        read_case!(self, caller, event, |step| {
            let record = readable(step, device, DeviceAction::DownloadReports).await?;
            let all = step.tx.template_datastreams(record.template).await?;
            let mut datastreams = Vec::new();
            for pin in pins {
                match all.iter().find(|ds| ds.pin == *pin) {
                    Some(ds) => datastreams.push(ds.clone()),
                    None => {
                        return Err(step.fail(AppError::invalid(
                            "pins",
                            format!("the device's template has no datastream on V{pin}"),
                        )));
                    }
                }
            }
            if pins.is_empty() {
                datastreams = all;
            }
            let points = step
                .tx
                .report_values(device, pins, range.from, range.to, MAX_REPORT_ROWS + 1)
                .await?;
            if points.len() > MAX_REPORT_ROWS as usize {
                return Err(step.fail(AppError::invalid(
                    "to",
                    format!(
                        "the report would hold more than {MAX_REPORT_ROWS} rows; \
                         choose a shorter range or fewer datastreams"
                    ),
                )));
            }
            Ok(Report {
                device: record,
                datastreams,
                points,
            })
        })
    }

    /// Deletes a device's data (`org_devices.delete_data` or
    /// `own_devices.delete_data`): the history of `pins` (every pin when
    /// empty) within `range`, or — without a range — all of their history,
    /// current values and properties, and for every pin the device's events
    /// too. Ownership entries of the timeline stay. Audited with the counts.
    pub async fn delete_device_data(
        &self,
        caller: &Caller,
        device: DeviceId,
        pins: &[u16],
        range: Option<Range>,
    ) -> Result<DataDeletion, AppError> {
        let mut event = AuditEvent::new(
            caller.client,
            "device.data.delete",
            format!("device:{device}"),
        )
        .detail("pins", pins);
        if let Some(range) = range {
            event = event.detail("from", range.from).detail("to", range.to);
        }
        write_case!(self, caller, event, |step| {
            let record = crate::devices::locked_visible(step, device).await?;
            step.event.target_org = Some(record.org.id());
            let verdict = step.actor.delete_device_data(device, &record.facts());
            let by = step.allow(verdict, "device")?;
            let streams = step.tx.template_datastreams(record.template).await?;
            if let Some(pin) = pins
                .iter()
                .find(|p| !streams.iter().any(|ds| ds.pin == **p))
            {
                return Err(step.fail(AppError::invalid(
                    "pins",
                    format!("the device's template has no datastream on V{pin}"),
                )));
            }
            let done = step
                .tx
                .delete_device_data(&by, pins, range.map(|r| (r.from, r.to)))
                .await?;
            step.note("deleted", done);
            Ok(done)
        })
    }

    /// The service tab of a device (`org_devices.service_tab`): when it
    /// last called the device API, its widget properties, and its latest
    /// requests as this node saw them.
    pub async fn device_service(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<ServiceTab, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.service.view",
            format!("device:{device}"),
        );
        let tab = read_case!(self, caller, event, |step| {
            let record = readable(step, device, DeviceAction::ServiceTab).await?;
            let properties = step.tx.pin_properties(device).await?;
            Ok(ServiceTab {
                device: record,
                properties,
                requests: Vec::new(),
            })
        })?;
        Ok(ServiceTab {
            requests: self.device_api.journal.requests(device),
            ..tab
        })
    }
}
