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
use crate::tx::{BindReal as _, Tx, Write, placeholders};
use arbor_core::Allowed;
use arbor_core::device_data::PinValue;
use arbor_core::policy::{Action, Permits, writes};
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

    /// The same device, last seen at `at` (a cache of tokens keeps its
    /// entries' sightings current after writing them).
    pub fn seen(self, at: i64) -> Self {
        Self {
            last_seen_at: Some(at),
            ..self
        }
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

/// Timeline codes Arbor writes itself. A template's event codes hold only
/// `a-z`, `0-9` and `_`, so these (with a dot) never meet one.
pub const TIMELINE_ONLINE: &str = "arbor.online";
pub const TIMELINE_OFFLINE: &str = "arbor.offline";
pub const TIMELINE_OWNERSHIP: &str = "arbor.ownership";

/// A point of a datastream's history with its row id (the tie-breaker of
/// points at the same millisecond, and the cursor of the next page).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPoint {
    pub id: i64,
    pub value: StoredValue,
}

/// One time bucket of a datastream's history: `count` points from `at`
/// (inclusive) for the bucket's length; min/max/avg/sum of the numeric
/// ones (none for text datastreams).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryBucket {
    pub at: i64,
    pub count: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub sum: Option<f64>,
}

/// What deleting a device's data removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DataDeletion {
    pub history: u64,
    pub values: u64,
    pub events: u64,
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

    /// The devices whose auth tokens hash to `hashes` (those that name
    /// one), with the hash that found each: [`Tx::device_for_token`] for a
    /// group of requests, in one statement per 500.
    pub async fn devices_for_tokens(
        &mut self,
        hashes: &[&str],
    ) -> Result<Vec<(String, TokenDevice)>, StoreError> {
        let mut found = Vec::with_capacity(hashes.len());
        for chunk in statement_chunks(hashes) {
            let sql = format!(
                "SELECT id, template_id, last_seen_at, auth_token_hash FROM devices \
                 WHERE auth_token_hash IN ({})",
                placeholders(0, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for hash in chunk {
                query = query.bind(*hash);
            }
            for row in query.fetch_all(self.conn()).await? {
                found.push((
                    row.try_get(3)?,
                    TokenDevice {
                        id: DeviceId(row.try_get(0)?),
                        template: DeviceTemplateId(row.try_get(1)?),
                        last_seen_at: row.try_get(2)?,
                    },
                ));
            }
        }
        Ok(found)
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

/// Rows per multi-row statement at most. Kept small on purpose: SQLite
/// finds each `$N` parameter by a linear scan of the statement's names (sqlx
/// binds by name), so a statement's binding cost grows with the square of
/// its parameters — 500 rows of 6 took most of a group's time.
const HISTORY_ROWS_PER_STATEMENT: usize = 32;

/// Splits `rows` into chunks of [`HISTORY_ROWS_PER_STATEMENT`] and then of
/// powers of two, so that a few statement texts (each prepared once per
/// connection and cached) serve every group size.
fn statement_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let mut size = HISTORY_ROWS_PER_STATEMENT;
        while size > rest.len() {
            size /= 2;
        }
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

impl<M> Tx<M> {
    /// Writes `values` of `device`: every one into its pin's history, and
    /// the newest of each pin as the pin's current value unless a newer one
    /// is stored already (a batch of old points does not turn back the
    /// current value). Reached through a device's token
    /// ([`Tx::put_values`]) or a user's control proof
    /// ([`Tx::write_device_value`]).
    async fn insert_values(
        &mut self,
        device: DeviceId,
        values: &[ValueWrite],
    ) -> Result<(), StoreError> {
        let rows: Vec<(DeviceId, &ValueWrite)> = values.iter().map(|v| (device, v)).collect();
        self.insert_rows(&rows).await
    }

    /// [`Tx::insert_values`] for the values of several devices at once:
    /// one multi-row statement per 500 history rows, and one per 500
    /// current values.
    async fn insert_rows(&mut self, values: &[(DeviceId, &ValueWrite)]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(values.len());
        for (device, write) in values {
            rows.push((*device, *write, value_columns(&write.value)?));
        }
        for chunk in statement_chunks(&rows) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 6, 6)))
                .collect();
            let sql = format!(
                "INSERT INTO datastream_history (device_id, pin, at, num_value, text_value, multi) \
                 VALUES {}",
                tuples.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (device, write, (number, text, multi)) in chunk {
                query = query
                    .bind(device.0)
                    .bind(i64::from(write.pin))
                    .bind(write.at)
                    .bind_real(*number)
                    .bind(text.clone())
                    .bind(*multi);
            }
            query.execute(self.conn()).await?;
        }
        // The newest value of each (device, pin) (the later one of equal
        // times): one row per key, as one statement may not update a row twice.
        let mut newest: std::collections::BTreeMap<(i64, u16), usize> = Default::default();
        for (i, (device, write, _)) in rows.iter().enumerate() {
            let key = (device.0, write.pin);
            let keep = newest.get(&key).is_none_or(|&j| rows[j].1.at <= write.at);
            if keep {
                newest.insert(key, i);
            }
        }
        let newest: Vec<usize> = newest.into_values().collect();
        for chunk in statement_chunks(&newest) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 6, 6)))
                .collect();
            let sql = format!(
                "INSERT INTO datastream_values (device_id, pin, num_value, text_value, multi, \
                 updated_at) VALUES {} \
                 ON CONFLICT (device_id, pin) DO UPDATE SET num_value = excluded.num_value, \
                 text_value = excluded.text_value, multi = excluded.multi, \
                 updated_at = excluded.updated_at \
                 WHERE datastream_values.updated_at <= excluded.updated_at",
                tuples.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for &i in chunk {
                let (device, write, (number, text, multi)) = &rows[i];
                query = query
                    .bind(device.0)
                    .bind(i64::from(write.pin))
                    .bind_real(*number)
                    .bind(text.clone())
                    .bind(*multi)
                    .bind(write.at);
            }
            query.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Adds an entry to `device`'s timeline at `at`.
    async fn insert_timeline_entry(
        &mut self,
        device: DeviceId,
        at: i64,
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
        .bind(device.0)
        .bind(at)
        .bind(code)
        .bind(level.as_str())
        .bind(description)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }
}

impl Tx<Data> {
    /// Writes `values` of the device that presented its token (see
    /// [`Tx::insert_values`]).
    pub async fn put_values(
        &mut self,
        device: &TokenDevice,
        values: &[ValueWrite],
    ) -> Result<(), StoreError> {
        self.insert_values(device.id, values).await
    }

    /// Writes the values of several devices that presented their tokens
    /// (in this transaction, or through a cache of tokens that this
    /// transaction checked against the authorization version: a
    /// regenerated token or a deleted device changes it).
    pub async fn put_many_values(
        &mut self,
        values: &[(TokenDevice, ValueWrite)],
    ) -> Result<(), StoreError> {
        let rows: Vec<(DeviceId, &ValueWrite)> = values.iter().map(|(d, v)| (d.id, v)).collect();
        self.insert_rows(&rows).await
    }

    /// The device's timeline entries for a connection that came back after
    /// the heartbeat: `offline` at `offline_at` (when it was last seen plus
    /// the heartbeat, if it was ever seen), and `online` now.
    pub async fn note_device_online(
        &mut self,
        device: &TokenDevice,
        offline_at: Option<i64>,
    ) -> Result<(), StoreError> {
        if let Some(at) = offline_at {
            self.insert_timeline_entry(device.id, at, TIMELINE_OFFLINE, EventLevel::Info, "")
                .await?;
        }
        let now = self.now();
        self.insert_timeline_entry(device.id, now, TIMELINE_ONLINE, EventLevel::Info, "")
            .await?;
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
        let now = self.now();
        self.insert_timeline_entry(device.id, now, code, level, description)
            .await
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

    /// Marks `devices` seen now, in a few statements for a whole group:
    /// those whose sighting says they were offline (last seen more than
    /// `heartbeat_ms` ago, or never) are marked only if the row agrees (so
    /// one of concurrent requests finds a device back), and get their
    /// `offline` and `online` timeline entries. The devices that came back.
    pub async fn mark_devices_seen(
        &mut self,
        devices: &[TokenDevice],
        heartbeat_ms: i64,
    ) -> Result<Vec<TokenDevice>, StoreError> {
        let now = self.now();
        let offline_since = now.saturating_sub(heartbeat_ms);
        let (maybe_back, online): (Vec<&TokenDevice>, Vec<&TokenDevice>) = devices
            .iter()
            .partition(|d| d.last_seen_at.is_none_or(|at| at < offline_since));
        for chunk in statement_chunks(&online) {
            let sql = format!(
                "UPDATE devices SET last_seen_at = $1 WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for d in chunk {
                query = query.bind(d.id.0);
            }
            query.execute(self.conn()).await?;
        }
        let mut back = Vec::new();
        for chunk in statement_chunks(&maybe_back) {
            let sql = format!(
                "UPDATE devices SET last_seen_at = $1 WHERE id IN ({}) \
                 AND (last_seen_at IS NULL OR last_seen_at < $2) RETURNING id",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .bind(offline_since);
            for d in chunk {
                query = query.bind(d.id.0);
            }
            let ids: Vec<i64> = query
                .fetch_all(self.conn())
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            back.extend(
                chunk
                    .iter()
                    .filter(|d| ids.contains(&d.id.0))
                    .map(|d| (*d).clone()),
            );
            // Devices the row said were online after all: seen now too.
            let rest: Vec<&&TokenDevice> =
                chunk.iter().filter(|d| !ids.contains(&d.id.0)).collect();
            if !rest.is_empty() {
                let sql = format!(
                    "UPDATE devices SET last_seen_at = $1 WHERE id IN ({})",
                    placeholders(1, rest.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
                for d in rest {
                    query = query.bind(d.id.0);
                }
                query.execute(self.conn()).await?;
            }
        }
        // Their timeline entries, in one statement per 500.
        let mut entries: Vec<(DeviceId, i64, &str)> = Vec::new();
        for d in &back {
            if let Some(at) = d.last_seen_at {
                entries.push((d.id, at.saturating_add(heartbeat_ms), TIMELINE_OFFLINE));
            }
            entries.push((d.id, now, TIMELINE_ONLINE));
        }
        for chunk in statement_chunks(&entries) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, 'info', '')", placeholders(i * 3, 3)))
                .collect();
            let sql = format!(
                "INSERT INTO device_events (device_id, at, code, level, description) VALUES {}",
                tuples.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (device, at, code) in chunk {
                query = query.bind(device.0).bind(*at).bind(*code);
            }
            query.execute(self.conn()).await?;
        }
        Ok(back)
    }

    /// Marks `device` seen now if it was last seen at or before
    /// `offline_since` (or never): a connection after the heartbeat. Only
    /// one of several concurrent requests finds it so (the row update
    /// decides), and that one writes the timeline's `offline` (at the last
    /// sighting plus `heartbeat_ms`) and `online` entries. Whether it came
    /// back online.
    pub async fn mark_device_back(
        &mut self,
        device: &TokenDevice,
        heartbeat_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let done = sqlx::query(
            "UPDATE devices SET last_seen_at = $1 WHERE id = $2 \
             AND (last_seen_at IS NULL OR last_seen_at < $3)",
        )
        .bind(now)
        .bind(device.id.0)
        .bind(now.saturating_sub(heartbeat_ms))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let offline_at = device
            .last_seen_at
            .map(|at| at.saturating_add(heartbeat_ms));
        self.note_device_online(device, offline_at).await?;
        Ok(true)
    }

    /// Commits the device data written in this transaction: durable once
    /// this returns. No audit row, no authorization change stamp (see the
    /// module docs).
    pub async fn commit_data(self) -> Result<(), StoreError> {
        self.commit_unaudited().await
    }
}

/// Pins as `IN` placeholders from `offset`, or nothing for every pin.
fn pin_filter(pins: &[u16], offset: usize) -> String {
    if pins.is_empty() {
        String::new()
    } else {
        format!(" AND pin IN ({})", placeholders(offset, pins.len()))
    }
}

fn event_from_row(row: &AnyRow) -> Result<DeviceEventRecord, StoreError> {
    Ok(DeviceEventRecord {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        code: row.try_get(2)?,
        level: row.try_get(3)?,
        description: row.try_get(4)?,
    })
}

/// Reads of a device's data for its users (the management API); the caller
/// decided that the actor may read them.
impl<M> Tx<M> {
    /// `device`'s history of `pin` in `[from, to)`, oldest first, after
    /// the point `after` (at, id) when given, at most `limit` points.
    pub async fn history_page(
        &mut self,
        device: DeviceId,
        pin: u16,
        from: i64,
        to: i64,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
        let rows = sqlx::query(
            "SELECT pin, at, num_value, text_value, multi, id FROM datastream_history \
             WHERE device_id = $1 AND pin = $2 AND at >= $3 AND at < $4 \
             AND (at > $5 OR (at = $5 AND id > $6)) ORDER BY at, id LIMIT $7",
        )
        .bind(device.0)
        .bind(i64::from(pin))
        .bind(from)
        .bind(to)
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryPoint {
                    id: row.try_get(5)?,
                    value: stored_value_from_row(row)?,
                })
            })
            .collect()
    }

    /// `device`'s history of `pin` in `[from, to)` in buckets of
    /// `bucket_ms` (aligned to the unix epoch, so days are UTC days),
    /// oldest first; empty buckets are left out.
    pub async fn history_buckets(
        &mut self,
        device: DeviceId,
        pin: u16,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<HistoryBucket>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at / $5) * $5 AS bucket, COUNT(*), MIN(num_value), MAX(num_value), \
             AVG(num_value), SUM(num_value) FROM datastream_history \
             WHERE device_id = $1 AND pin = $2 AND at >= $3 AND at < $4 \
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(device.0)
        .bind(i64::from(pin))
        .bind(from)
        .bind(to)
        .bind(bucket_ms.max(1))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryBucket {
                    at: row.try_get(0)?,
                    count: row.try_get(1)?,
                    min: row.try_get(2)?,
                    max: row.try_get(3)?,
                    avg: row.try_get(4)?,
                    sum: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// The history of `device`'s `pins` (every pin when empty) in
    /// `[from, to)`, by time then pin, at most `limit` points.
    pub async fn report_values(
        &mut self,
        device: DeviceId,
        pins: &[u16],
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<StoredValue>, StoreError> {
        let filter = pin_filter(pins, 3);
        let sql = format!(
            "SELECT pin, at, num_value, text_value, multi FROM datastream_history \
             WHERE device_id = $1 AND at >= $2 AND at < $3{filter} \
             ORDER BY at, pin, id LIMIT ${}",
            4 + pins.len()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(device.0)
            .bind(from)
            .bind(to);
        for pin in pins {
            query = query.bind(i64::from(*pin));
        }
        let rows = query.bind(i64::from(limit)).fetch_all(self.conn()).await?;
        rows.iter().map(stored_value_from_row).collect()
    }

    /// `device`'s timeline in `[from, to)`, newest first, before the entry
    /// `before` (at, id) when given, at most `limit` entries.
    pub async fn timeline_page(
        &mut self,
        device: DeviceId,
        from: i64,
        to: i64,
        before: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<DeviceEventRecord>, StoreError> {
        let (before_at, before_id) = before.unwrap_or((i64::MAX, i64::MAX));
        let rows = sqlx::query(
            "SELECT id, at, code, level, description FROM device_events \
             WHERE device_id = $1 AND at >= $2 AND at < $3 \
             AND (at < $4 OR (at = $4 AND id < $5)) ORDER BY at DESC, id DESC LIMIT $6",
        )
        .bind(device.0)
        .bind(from)
        .bind(to)
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// A user's writes of device data, each with the decision's proof.
impl Tx<Write> {
    /// A value a user wrote to `device` (control): current value and
    /// history, as a device's own write (the device reads it with `get`).
    pub async fn write_device_value<A>(
        &mut self,
        by: &Allowed<A>,
        value: &ValueWrite,
    ) -> Result<(), StoreError>
    where
        A: Permits<writes::WriteDeviceValue> + Action<Target = DeviceId>,
    {
        let device = *by.target();
        self.insert_values(device, std::slice::from_ref(value))
            .await
    }

    /// Deletes `device`'s data: the history of `pins` (every pin when
    /// empty) in `range` when given, else all of it together with those
    /// pins' current values, widget properties and — for every pin — the
    /// device's events. The device itself, its metafields and its
    /// ownership entries on the timeline stay.
    pub async fn delete_device_data<A>(
        &mut self,
        by: &Allowed<A>,
        pins: &[u16],
        range: Option<(i64, i64)>,
    ) -> Result<DataDeletion, StoreError>
    where
        A: Permits<writes::DeleteDeviceData> + Action<Target = DeviceId>,
    {
        let device = *by.target();
        let bind_pins = |sql: String, offset_binds: Vec<i64>| {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(device.0);
            for b in offset_binds {
                query = query.bind(b);
            }
            for pin in pins {
                query = query.bind(i64::from(*pin));
            }
            query
        };
        let mut done = DataDeletion::default();
        if let Some((from, to)) = range {
            let sql = format!(
                "DELETE FROM datastream_history WHERE device_id = $1 AND at >= $2 AND at < $3{}",
                pin_filter(pins, 3)
            );
            done.history = bind_pins(sql, vec![from, to])
                .execute(self.conn())
                .await?
                .rows_affected();
            return Ok(done);
        }
        let filter = pin_filter(pins, 1);
        done.history = bind_pins(
            format!("DELETE FROM datastream_history WHERE device_id = $1{filter}"),
            Vec::new(),
        )
        .execute(self.conn())
        .await?
        .rows_affected();
        done.values = bind_pins(
            format!("DELETE FROM datastream_values WHERE device_id = $1{filter}"),
            Vec::new(),
        )
        .execute(self.conn())
        .await?
        .rows_affected();
        bind_pins(
            format!("DELETE FROM device_pin_properties WHERE device_id = $1{filter}"),
            Vec::new(),
        )
        .execute(self.conn())
        .await?;
        if pins.is_empty() {
            done.events =
                sqlx::query("DELETE FROM device_events WHERE device_id = $1 AND code <> $2")
                    .bind(device.0)
                    .bind(TIMELINE_OWNERSHIP)
                    .execute(self.conn())
                    .await?
                    .rows_affected();
        }
        Ok(done)
    }

    /// A transfer's entry on the device's own timeline, in the transfer's
    /// transaction.
    pub async fn ownership_timeline_entry<A: Permits<writes::MoveDevice>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        description: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.insert_timeline_entry(
            device,
            now,
            TIMELINE_OWNERSHIP,
            EventLevel::Info,
            description,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_chunks_cover_every_row_in_few_sizes() {
        for n in 0..200 {
            let rows: Vec<usize> = (0..n).collect();
            let chunks = statement_chunks(&rows);
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, rows);
            for chunk in &chunks {
                assert!(chunk.len().is_power_of_two() && chunk.len() <= HISTORY_ROWS_PER_STATEMENT);
            }
        }
    }
}
