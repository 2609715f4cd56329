//! Device templates with their parts (datastreams, events, metafields) and
//! the orgs they are enabled for: read, listed, replaced, deleted, disabled.

use crate::error::{StoreError, found};
use crate::rows::DeviceTemplateId;
use crate::tx::{BindReal as _, Tx, Write};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, TemplateFilter, writes};
use arbor_core::template::{
    CheckedTemplate, Datastream, Event, EventLevel, Metafield, MetafieldType, Scalar,
    TemplateContent, ValueType,
};
use arbor_core::{OrgId, OrgPath};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A device template as stored, with its parts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceTemplateRecord {
    pub id: DeviceTemplateId,
    /// The hierarchy (its root org) the template belongs to.
    pub hierarchy: OrgId,
    pub content: TemplateContent,
    pub created_at: i64,
    /// When the template was last edited (never: `None`).
    pub updated_at: Option<i64>,
    /// The orgs the template is enabled for, by id.
    pub enabled_for: Vec<OrgPath>,
}

/// A device template in a list: without its parts, with their counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceTemplateSummary {
    pub id: DeviceTemplateId,
    pub name: String,
    pub description: String,
    pub datastreams: i64,
    pub events: i64,
    pub metafields: i64,
    pub created_at: i64,
}

pub(crate) fn corrupt(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

pub(crate) fn datastream_from_row(row: &AnyRow) -> Result<Datastream, StoreError> {
    let value_type: String = row.try_get(2)?;
    let value_type = ValueType::parse(&value_type)
        .ok_or_else(|| corrupt(format!("datastream type {value_type:?}")))?;
    let pin: i64 = row.try_get(0)?;
    let enum_values: String = row.try_get(7)?;
    let enum_values: Vec<String> = serde_json::from_str(&enum_values)
        .map_err(|e| corrupt(format!("datastream enum values: {e}")))?;
    let default: Option<String> = row.try_get(6)?;
    let decimals: Option<i64> = row.try_get(8)?;
    Ok(Datastream {
        pin: u16::try_from(pin).map_err(|_| corrupt(format!("pin {pin}")))?,
        name: row.try_get(1)?,
        value_type,
        enum_values,
        min: row.try_get(3)?,
        max: row.try_get(4)?,
        units: row.try_get(5)?,
        default_value: default.map(|d| Scalar::from_stored(value_type, &d)),
        decimals: decimals.and_then(|d| u8::try_from(d).ok()),
    })
}

impl<M> Tx<M> {
    /// One template with its parts.
    pub async fn device_template(
        &mut self,
        id: DeviceTemplateId,
    ) -> Result<DeviceTemplateRecord, StoreError> {
        let row = sqlx::query(
            "SELECT hierarchy_id, name, description, created_at, updated_at, \
             history_retention_days FROM device_templates WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound {
            what: "device template",
        })?;
        let hierarchy = OrgId(row.try_get(0)?);
        let mut content = TemplateContent {
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            history_retention_days: row.try_get(5)?,
            ..TemplateContent::default()
        };
        let created_at = row.try_get(3)?;
        let updated_at = row.try_get(4)?;
        let rows = sqlx::query(
            "SELECT pin, name, value_type, min_value, max_value, units, default_value, \
             enum_values, decimals FROM template_datastreams WHERE template_id = $1 ORDER BY pin",
        )
        .bind(id.0)
        .fetch_all(self.conn())
        .await?;
        content.datastreams = rows
            .iter()
            .map(datastream_from_row)
            .collect::<Result<_, _>>()?;
        let rows = sqlx::query(
            "SELECT code, name, level FROM template_events WHERE template_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(self.conn())
        .await?;
        for row in rows {
            let level: String = row.try_get(2)?;
            content.events.push(Event {
                code: row.try_get(0)?,
                name: row.try_get(1)?,
                // Level `content` predates the API; shown as info.
                level: EventLevel::parse(&level).unwrap_or(EventLevel::Info),
            });
        }
        let rows = sqlx::query(
            "SELECT name, value_type, default_value FROM template_metafields \
             WHERE template_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(self.conn())
        .await?;
        for row in rows {
            let value_type: String = row.try_get(1)?;
            content.metafields.push(Metafield {
                name: row.try_get(0)?,
                value_type: MetafieldType::parse(&value_type).unwrap_or(MetafieldType::Text),
                default_value: row.try_get(2)?,
            });
        }
        let enabled_for = self.template_orgs(id).await?;
        Ok(DeviceTemplateRecord {
            id,
            hierarchy,
            content,
            created_at,
            updated_at,
            enabled_for,
        })
    }

    /// The templates `filter` shows, by id.
    pub async fn list_device_templates(
        &mut self,
        filter: &TemplateFilter,
    ) -> Result<Vec<DeviceTemplateSummary>, StoreError> {
        const COLUMNS: &str = "SELECT t.id, t.name, t.description, t.created_at, \
             (SELECT COUNT(*) FROM template_datastreams s WHERE s.template_id = t.id), \
             (SELECT COUNT(*) FROM template_events e WHERE e.template_id = t.id), \
             (SELECT COUNT(*) FROM template_metafields m WHERE m.template_id = t.id) \
             FROM device_templates t";
        let rows = match filter.enabled_for {
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} WHERE t.hierarchy_id = $1 ORDER BY t.id"
                )))
                .bind(filter.hierarchy.0)
                .fetch_all(self.conn())
                .await?
            }
            Some(org) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} JOIN org_templates ot ON ot.template_id = t.id \
                     WHERE t.hierarchy_id = $1 AND ot.org_id = $2 ORDER BY t.id"
                )))
                .bind(filter.hierarchy.0)
                .bind(org.0)
                .fetch_all(self.conn())
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(DeviceTemplateSummary {
                    id: DeviceTemplateId(row.try_get(0)?),
                    name: row.try_get(1)?,
                    description: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                    datastreams: row.try_get(4)?,
                    events: row.try_get(5)?,
                    metafields: row.try_get(6)?,
                })
            })
            .collect()
    }

    /// The orgs a template is enabled for, with their paths.
    pub async fn template_orgs(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<Vec<OrgPath>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.path FROM org_templates ot JOIN organizations o ON o.id = ot.org_id \
             WHERE ot.template_id = $1 ORDER BY o.id",
        )
        .bind(template.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| Ok(OrgPath::decode(&row.try_get::<String, _>(0)?)?))
            .collect()
    }

    /// How many devices use `template`, in `org` only when given.
    pub async fn template_device_count(
        &mut self,
        template: DeviceTemplateId,
        org: Option<OrgId>,
    ) -> Result<i64, StoreError> {
        let n: i64 = match org {
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE template_id = $1")
                    .bind(template.0)
                    .fetch_one(self.conn())
                    .await?
            }
            Some(org) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM devices WHERE template_id = $1 AND org_id = $2",
                )
                .bind(template.0)
                .bind(org.0)
                .fetch_one(self.conn())
                .await?
            }
        };
        Ok(n)
    }
}

impl Tx<Write> {
    /// Locks a template's row: edits, deletions and disables queue on it.
    pub async fn lock_device_template(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<(), StoreError> {
        self.lock(
            "SELECT id FROM device_templates WHERE id = $1",
            template.0,
            "device template",
        )
        .await
    }

    /// Inserts a template with its parts into `hierarchy`.
    pub async fn insert_template<A: Permits<writes::InsertDeviceTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        hierarchy: OrgId,
        template: &CheckedTemplate,
    ) -> Result<DeviceTemplateId, StoreError> {
        let content = template.content();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO device_templates (hierarchy_id, name, description, created_at, \
             history_retention_days) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(content.name.clone())
        .bind(content.description.clone())
        .bind(self.now())
        .bind(content.history_retention_days)
        .fetch_one(self.conn())
        .await?;
        let id = DeviceTemplateId(id);
        self.insert_parts(id, content).await?;
        Ok(id)
    }

    /// Replaces a template's name, description, history retention and every
    /// part, in this transaction.
    pub async fn replace_template<A: Permits<writes::UpdateDeviceTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        id: DeviceTemplateId,
        template: &CheckedTemplate,
    ) -> Result<(), StoreError> {
        let content = template.content();
        let done = sqlx::query(
            "UPDATE device_templates SET name = $1, description = $2, updated_at = $3, \
             history_retention_days = $4 WHERE id = $5",
        )
        .bind(content.name.clone())
        .bind(content.description.clone())
        .bind(self.now())
        .bind(content.history_retention_days)
        .bind(id.0)
        .execute(self.conn())
        .await?;
        found(&done, "device template")?;
        for table in [
            "template_datastreams",
            "template_events",
            "template_metafields",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE template_id = $1"
            )))
            .bind(id.0)
            .execute(self.conn())
            .await?;
        }
        self.insert_parts(id, content).await
    }

    async fn insert_parts(
        &mut self,
        id: DeviceTemplateId,
        content: &TemplateContent,
    ) -> Result<(), StoreError> {
        for ds in &content.datastreams {
            let enum_values = serde_json::to_string(&ds.enum_values)
                .map_err(|e| corrupt(format!("enum values: {e}")))?;
            sqlx::query(
                "INSERT INTO template_datastreams (template_id, pin, name, value_type, \
                 min_value, max_value, units, default_value, enum_values, decimals) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id.0)
            .bind(i64::from(ds.pin))
            .bind(ds.name.clone())
            .bind(ds.value_type.as_str())
            .bind_real(ds.min)
            .bind_real(ds.max)
            .bind(ds.units.clone())
            .bind(ds.default_value.as_ref().map(Scalar::to_stored))
            .bind(enum_values)
            .bind(ds.decimals.map(i64::from))
            .execute(self.conn())
            .await?;
        }
        for event in &content.events {
            sqlx::query(
                "INSERT INTO template_events (template_id, code, name, level) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id.0)
            .bind(event.code.clone())
            .bind(event.name.clone())
            .bind(event.level.as_str())
            .execute(self.conn())
            .await?;
        }
        for field in &content.metafields {
            sqlx::query(
                "INSERT INTO template_metafields (template_id, name, value_type, default_value) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id.0)
            .bind(field.name.clone())
            .bind(field.value_type.as_str())
            .bind(field.default_value.clone())
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Deletes a template, its parts and where it is enabled. A device still
    /// using it makes the database refuse (a conflict); callers count first.
    pub async fn delete_template<A: Permits<writes::DeleteDeviceTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        id: DeviceTemplateId,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM org_templates WHERE template_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?;
        let done = sqlx::query("DELETE FROM device_templates WHERE id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?;
        found(&done, "device template")?;
        Ok(())
    }

    /// Disables a template for `org`. Devices of it in that org make the
    /// database refuse; callers count first. `false` if it was not enabled.
    pub async fn disable_template<A: Permits<writes::DisableTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM org_templates WHERE org_id = $1 AND template_id = $2")
            .bind(org.0)
            .bind(template.0)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
