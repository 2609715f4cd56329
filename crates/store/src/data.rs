//! The device data plane (SPEC.md section 7): datastream values (current
//! and history), device events, pin properties, device-set metafields and
//! the device's last-seen time.
//!
//! A device authenticates with its token, not with an actor's decision, so
//! the proof a data write takes is a [`TokenDevice`]: only
//! [`Tx::device_for_token`] makes one, from the token's hash inside the
//! same transaction — a regenerated or deleted device's token finds nothing
//! at once, on every node. Data writes run in a [`DataTx`]: a write
//! transaction (SQLite: `BEGIN IMMEDIATE`) that offers none of the control
//! plane's mutations, and commits without an audit event and without
//! touching the authorization change feed — a value is not an
//! authorization fact (no trigger of 0002 fires on these tables), so
//! writing one never makes any node's decision cache start over. Its
//! commit is the durability point: a device is answered 200 only after it.

use crate::error::StoreError;
use crate::templates::{corrupt, datastream_from_row};
use crate::tx::{Tx, placeholders};
use arbor_core::device_data::PinValue;
use arbor_core::template::{Datastream, EventLevel, Metafield, MetafieldType, Scalar};
use arbor_core::{DeviceId, DeviceTemplateId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// Marker: a device data transaction (see the module docs).
#[derive(Debug)]
pub struct Data;

pub type DataTx = Tx<Data>;

/// A device that presented its valid token in this transaction. Only the
/// store makes one ([`Tx::device_for_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDevice {
    id: DeviceId,
    template: DeviceTemplateId,
    last_seen_at: Option<i64>,
}

impl TokenDevice {
    pub fn id(&self) -> DeviceId {
        self.id
    }

    pub fn template(&self) -> DeviceTemplateId {
        self.template
    }

    /// When the device last called the device API, before this request.
    pub fn last_seen_at(&self) -> Option<i64> {
        self.last_seen_at
    }
}

/// One value to write: `value` on `pin` at `at` (unix ms).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueWrite {
    pub pin: u16,
    pub at: i64,
    pub value: PinValue,
}

/// A stored value with its time (the current value of a pin, or one point
/// of its history).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredValue {
    pub pin: u16,
    pub at: i64,
    pub value: PinValue,
}

/// One event a device logged (its timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEventRecord {
    pub id: i64,
    pub at: i64,
    pub code: String,
    pub level: String,
    pub description: String,
}

/// A widget property a device set on one of its pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinProperty {
    pub pin: u16,
    pub name: String,
    pub value: String,
}

/// The columns a value is kept in: (num_value, text_value, multi).
fn value_columns(value: &PinValue) -> Result<(Option<f64>, Option<String>, i64), StoreError> {
    Ok(match value {
        PinValue::One(Scalar::Number(n)) => (Some(*n), None, 0),
        PinValue::One(Scalar::Text(t)) => {
            crate::text::refuse_nul("value", t)?;
            (None, Some(t.clone()), 0)
        }
        PinValue::Many(parts) => {
            let json = serde_json::to_string(parts)
                .map_err(|e| StoreError::invalid("value", e.to_string()))?;
            (None, Some(json), 1)
        }
    })
}

/// A value back from (num_value, text_value, multi) at `offset`.
fn value_from_row(row: &AnyRow, offset: usize) -> Result<PinValue, StoreError> {
    let number: Option<f64> = row.try_get(offset)?;
    let text: Option<String> = row.try_get(offset + 1)?;
    let multi: i64 = row.try_get(offset + 2)?;
    match (number, text, multi) {
        (_, Some(json), 1) => serde_json::from_str(&json)
            .map(PinValue::Many)
            .map_err(|e| corrupt(format!("multi-part value: {e}"))),
        (Some(n), _, _) => Ok(PinValue::One(Scalar::Number(n))),
        (None, Some(t), _) => Ok(PinValue::One(Scalar::Text(t))),
        (None, None, _) => Err(corrupt("a value without number or text".into())),
    }
}

/// A row of `pin, at, num_value, text_value, multi`.
fn stored_value_from_row(row: &AnyRow) -> Result<StoredValue, StoreError> {
    Ok(StoredValue {
        pin: pin_from(row, 0)?,
        at: row.try_get(1)?,
        value: value_from_row(row, 2)?,
    })
}

fn pin_from(row: &AnyRow, index: usize) -> Result<u16, StoreError> {
    let pin: i64 = row.try_get(index)?;
    u16::try_from(pin).map_err(|_| corrupt(format!("pin {pin}")))
}

const DATASTREAM_COLUMNS: &str = "pin, name, value_type, min_value, max_value, units, \
     default_value, enum_values, decimals";

impl<M> Tx<M> {
    /// The device whose auth token hashes to `hash`, as the proof its data
    /// writes take; a regenerated token's old hash finds nothing.
    pub async fn device_for_token(
        &mut self,
        hash: &str,
    ) -> Result<Option<TokenDevice>, StoreError> {
        let row = sqlx::query(
            "SELECT id, template_id, last_seen_at FROM devices WHERE auth_token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(self.conn())
        .await?;
        row.map(|row| {
            Ok(TokenDevice {
                id: DeviceId(row.try_get(0)?),
                template: DeviceTemplateId(row.try_get(1)?),
                last_seen_at: row.try_get(2)?,
            })
        })
        .transpose()
    }

    /// The datastream of `template` on `pin`, if it has one.
    pub async fn template_datastream(
        &mut self,
        template: DeviceTemplateId,
        pin: u16,
    ) -> Result<Option<Datastream>, StoreError> {
        let sql = format!(
            "SELECT {DATASTREAM_COLUMNS} FROM template_datastreams \
             WHERE template_id = $1 AND pin = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(template.0)
            .bind(i64::from(pin))
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(datastream_from_row).transpose()
    }

    /// Every datastream of `template`, by pin.
    pub async fn template_datastreams(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<Vec<Datastream>, StoreError> {
        let sql = format!(
            "SELECT {DATASTREAM_COLUMNS} FROM template_datastreams \
             WHERE template_id = $1 ORDER BY pin"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(template.0)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(datastream_from_row).collect()
    }

    /// The level of `template`'s event `code`, if it defines one.
    pub async fn template_event_level(
        &mut self,
        template: DeviceTemplateId,
        code: &str,
    ) -> Result<Option<EventLevel>, StoreError> {
        let level: Option<String> = sqlx::query_scalar(
            "SELECT level FROM template_events WHERE template_id = $1 AND code = $2",
        )
        .bind(template.0)
        .bind(code)
        .fetch_optional(self.conn())
        .await?;
        // Level `content` predates the API; it counts as info.
        Ok(level.map(|l| EventLevel::parse(&l).unwrap_or(EventLevel::Info)))
    }

    /// `template`'s metafields in the order the template lists them.
    pub async fn template_metafields(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<Vec<Metafield>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, value_type, default_value FROM template_metafields \
             WHERE template_id = $1 ORDER BY id",
        )
        .bind(template.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                let value_type: String = row.try_get(1)?;
                Ok(Metafield {
                    name: row.try_get(0)?,
                    value_type: MetafieldType::parse(&value_type).unwrap_or(MetafieldType::Text),
                    default_value: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// A device's value of metafield `name`, if it has one of its own.
    pub async fn device_metafield(
        &mut self,
        device: DeviceId,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM device_metafields WHERE device_id = $1 AND name = $2",
        )
        .bind(device.0)
        .bind(name)
        .fetch_optional(self.conn())
        .await?)
    }

    /// The current values of `device` on `pins` (every pin with a value
    /// when `pins` is empty), by pin.
    pub async fn current_values(
        &mut self,
        device: DeviceId,
        pins: &[u16],
    ) -> Result<Vec<StoredValue>, StoreError> {
        let filter = if pins.is_empty() {
            String::new()
        } else {
            format!(" AND pin IN ({})", placeholders(1, pins.len()))
        };
        let sql = format!(
            "SELECT pin, updated_at, num_value, text_value, multi FROM datastream_values \
             WHERE device_id = $1{filter} ORDER BY pin"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(device.0);
        for pin in pins {
            query = query.bind(i64::from(*pin));
        }
        let rows = query.fetch_all(self.conn()).await?;
        rows.iter().map(stored_value_from_row).collect()
    }

    /// The history of `device`'s `pin` from `from` (inclusive) to `to`
    /// (exclusive), oldest first, at most `limit` points.
    pub async fn value_history(
        &mut self,
        device: DeviceId,
        pin: u16,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<StoredValue>, StoreError> {
        let rows = sqlx::query(
            "SELECT pin, at, num_value, text_value, multi FROM datastream_history \
             WHERE device_id = $1 AND pin = $2 AND at >= $3 AND at < $4 \
             ORDER BY at, id LIMIT $5",
        )
        .bind(device.0)
        .bind(i64::from(pin))
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(stored_value_from_row).collect()
    }

    /// The newest `limit` events of `device`, newest first.
    pub async fn device_events(
        &mut self,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<DeviceEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, code, level, description FROM device_events \
             WHERE device_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(device.0)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeviceEventRecord {
                    id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    code: row.try_get(2)?,
                    level: row.try_get(3)?,
                    description: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// The widget properties `device` set, by pin and name.
    pub async fn pin_properties(
        &mut self,
        device: DeviceId,
    ) -> Result<Vec<PinProperty>, StoreError> {
        let rows = sqlx::query(
            "SELECT pin, name, value FROM device_pin_properties WHERE device_id = $1 \
             ORDER BY pin, name",
        )
        .bind(device.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PinProperty {
                    pin: pin_from(row, 0)?,
                    name: row.try_get(1)?,
                    value: row.try_get(2)?,
                })
            })
            .collect()
    }
}

/// History rows per INSERT statement (7 parameters each, well within both
/// engines' limits).
const HISTORY_ROWS_PER_STATEMENT: usize = 500;

impl Tx<Data> {
    /// Writes `values` of `device`: every one into its pin's history, and
    /// the newest of each pin as the pin's current value unless a newer one
    /// is stored already (a batch of old points does not turn back the
    /// current value).
    pub async fn put_values(
        &mut self,
        device: &TokenDevice,
        values: &[ValueWrite],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(values.len());
        for write in values {
            rows.push((write, value_columns(&write.value)?));
        }
        for chunk in rows.chunks(HISTORY_ROWS_PER_STATEMENT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 6, 6)))
                .collect();
            let sql = format!(
                "INSERT INTO datastream_history (device_id, pin, at, num_value, text_value, multi) \
                 VALUES {}",
                tuples.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (write, (number, text, multi)) in chunk {
                query = query
                    .bind(device.id.0)
                    .bind(i64::from(write.pin))
                    .bind(write.at)
                    .bind(*number)
                    .bind(text.clone())
                    .bind(*multi);
            }
            query.execute(self.conn()).await?;
        }
        // The newest value of each pin (the later one of equal times).
        let mut newest: std::collections::BTreeMap<u16, usize> = Default::default();
        for (i, (write, _)) in rows.iter().enumerate() {
            let keep = newest
                .get(&write.pin)
                .is_none_or(|&j| rows[j].0.at <= write.at);
            if keep {
                newest.insert(write.pin, i);
            }
        }
        for i in newest.into_values() {
            let (write, (number, text, multi)) = &rows[i];
            sqlx::query(
                "INSERT INTO datastream_values (device_id, pin, num_value, text_value, multi, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (device_id, pin) DO UPDATE SET num_value = excluded.num_value, \
                 text_value = excluded.text_value, multi = excluded.multi, \
                 updated_at = excluded.updated_at \
                 WHERE datastream_values.updated_at <= excluded.updated_at",
            )
            .bind(device.id.0)
            .bind(i64::from(write.pin))
            .bind(*number)
            .bind(text.clone())
            .bind(*multi)
            .bind(write.at)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Adds an event to `device`'s timeline, now.
    pub async fn insert_device_event(
        &mut self,
        device: &TokenDevice,
        code: &str,
        level: EventLevel,
        description: &str,
    ) -> Result<i64, StoreError> {
        crate::text::refuse_nul("code", code)?;
        crate::text::refuse_nul("description", description)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO device_events (device_id, at, code, level, description) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(device.id.0)
        .bind(self.now())
        .bind(code)
        .bind(level.as_str())
        .bind(description)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    /// Sets widget property `name` of `device`'s `pin` to `value`.
    pub async fn set_pin_property(
        &mut self,
        device: &TokenDevice,
        pin: u16,
        name: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        crate::text::refuse_nul("property", name)?;
        crate::text::refuse_nul("value", value)?;
        sqlx::query(
            "INSERT INTO device_pin_properties (device_id, pin, name, value, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id, pin, name) \
             DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(device.id.0)
        .bind(i64::from(pin))
        .bind(name)
        .bind(value)
        .bind(self.now())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Sets `device`'s value of its template's metafield `name` (checked by
    /// the caller against the template).
    pub async fn set_device_metafield(
        &mut self,
        device: &TokenDevice,
        name: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        crate::text::refuse_nul("metafield", name)?;
        crate::text::refuse_nul("value", value)?;
        sqlx::query(
            "INSERT INTO device_metafields (device_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(device.id.0)
        .bind(name)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records that `device` called the device API now (`last_seen_at`,
    /// which no authorization trigger watches).
    pub async fn mark_device_seen(&mut self, device: &TokenDevice) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
            .bind(self.now())
            .bind(device.id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Commits the device data written in this transaction: durable once
    /// this returns. No audit row, no authorization change stamp (see the
    /// module docs).
    pub async fn commit_data(self) -> Result<(), StoreError> {
        self.commit_unaudited().await
    }
}
