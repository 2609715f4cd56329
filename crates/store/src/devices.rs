//! Devices, device templates (with their datastreams and the orgs they are
//! enabled for) and device metafields.

use crate::audit::AuditEvent;
use crate::error::{StoreError, found};
use crate::rows::{DeviceRecord, DeviceTemplateId, DeviceTokenRecord, NewDatastream, NewDevice};
use crate::text::{checked_name, refuse_nul};
use crate::tx::{BindReal as _, Tx, Write, placeholders};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, writes};
use arbor_core::text::{self, limits};
use arbor_core::{DeviceId, OrgId, OrgPath, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

pub(crate) const DEVICE_COLUMNS: &str =
    "d.id, o.path, d.template_id, d.owner_id, d.name, d.created_at, d.location_id, d.last_seen_at";

pub(crate) fn device_from_row(row: &AnyRow) -> Result<DeviceRecord, StoreError> {
    let path: String = row.try_get(1)?;
    Ok(DeviceRecord {
        id: DeviceId(row.try_get(0)?),
        org: OrgPath::decode(&path)?,
        template: DeviceTemplateId(row.try_get(2)?),
        owner: row.try_get::<Option<i64>, _>(3)?.map(UserId),
        name: row.try_get(4)?,
        created_at: row.try_get(5)?,
        location: row
            .try_get::<Option<i64>, _>(6)?
            .map(arbor_core::LocationId),
        last_seen_at: row.try_get(7)?,
        // Filled by `Tx::with_tags` where the record leaves the store.
        tags: Vec::new(),
    })
}

impl<M> Tx<M> {
    pub async fn device(&mut self, id: DeviceId) -> Result<DeviceRecord, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.id = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound { what: "device" })?;
        let mut record = [device_from_row(&row)?];
        self.with_tags(&mut record).await?;
        let [record] = record;
        Ok(record)
    }

    /// The devices of `ids` that exist, in one query.
    pub async fn devices(&mut self, ids: &[DeviceId]) -> Result<Vec<DeviceRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.id IN ({})",
            placeholders(0, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        let rows = query.fetch_all(self.conn()).await?;
        let mut records = rows
            .iter()
            .map(device_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_tags(&mut records).await?;
        Ok(records)
    }

    /// Every device, for tests and the reference model (small worlds only).
    pub async fn all_devices(&mut self) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             ORDER BY d.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// The devices a user owns.
    pub async fn owned_devices(
        &mut self,
        user: UserId,
    ) -> Result<Vec<(DeviceId, OrgId)>, StoreError> {
        let rows = sqlx::query("SELECT id, org_id FROM devices WHERE owner_id = $1 ORDER BY id")
            .bind(user.0)
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|row| Ok((DeviceId(row.try_get(0)?), OrgId(row.try_get(1)?))))
            .collect()
    }

    pub async fn device_metafields(
        &mut self,
        device: DeviceId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, value FROM device_metafields WHERE device_id = $1 ORDER BY name",
        )
        .bind(device.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The names of a device template's metafields.
    pub async fn template_metafield_names(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "SELECT name FROM template_metafields WHERE template_id = $1 ORDER BY name",
        )
        .bind(template.0)
        .fetch_all(self.conn())
        .await?;
        Ok(names)
    }

    /// What the store keeps of a device's auth token.
    pub async fn device_token(
        &mut self,
        device: DeviceId,
    ) -> Result<DeviceTokenRecord, StoreError> {
        let row =
            sqlx::query("SELECT auth_token_nonce, auth_token_hash FROM devices WHERE id = $1")
                .bind(device.0)
                .fetch_optional(self.conn())
                .await?
                .ok_or(StoreError::NotFound { what: "device" })?;
        Ok(DeviceTokenRecord {
            nonce: row.try_get(0)?,
            hash: row.try_get(1)?,
        })
    }

    /// The device whose auth token hashes to `hash` (the device API's
    /// lookup): a regenerated token's old hash finds nothing.
    pub async fn device_by_token_hash(
        &mut self,
        hash: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.auth_token_hash = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// The hierarchy a device template belongs to.
    pub async fn device_template_hierarchy(
        &mut self,
        template: DeviceTemplateId,
    ) -> Result<OrgId, StoreError> {
        let hierarchy: Option<i64> =
            sqlx::query_scalar("SELECT hierarchy_id FROM device_templates WHERE id = $1")
                .bind(template.0)
                .fetch_optional(self.conn())
                .await?;
        hierarchy.map(OrgId).ok_or(StoreError::NotFound {
            what: "device template",
        })
    }

    pub async fn template_enabled(
        &mut self,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM org_templates WHERE org_id = $1 AND template_id = $2",
        )
        .bind(org.0)
        .bind(template.0)
        .fetch_one(self.conn())
        .await?;
        Ok(n > 0)
    }
}

fn checked_metafields(
    metafields: &[(String, String)],
) -> Result<Vec<(String, String)>, StoreError> {
    metafields
        .iter()
        .map(|(key, value)| {
            Ok((
                text::name("metafields.name", key, limits::METAFIELD_NAME)?,
                text::line("metafields.value", value, limits::METAFIELD_VALUE)?,
            ))
        })
        .collect()
}

impl Tx<Write> {
    /// Locks a device's row: transfers and edits of that device queue on it.
    pub async fn lock_device(&mut self, device: DeviceId) -> Result<(), StoreError> {
        self.lock("SELECT id FROM devices WHERE id = $1", device.0, "device")
            .await
    }

    /// Inserts a device template with its datastreams.
    pub async fn insert_device_template<A: Permits<writes::InsertDeviceTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        hierarchy: OrgId,
        name: &str,
        datastreams: &[NewDatastream],
    ) -> Result<DeviceTemplateId, StoreError> {
        let name = checked_name(name, limits::DEVICE_TEMPLATE_NAME)?;
        let mut checked = Vec::with_capacity(datastreams.len());
        for ds in datastreams {
            refuse_nul("datastreams", &ds.value_type)?;
            checked.push((
                text::name("datastreams.name", &ds.name, limits::DATASTREAM_NAME)?,
                text::line("datastreams.units", &ds.units, limits::DATASTREAM_UNITS)?,
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO device_templates (hierarchy_id, name, created_at) VALUES ($1, $2, $3) \
             RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name)
        .bind(self.now())
        .fetch_one(self.conn())
        .await?;
        for (ds, (ds_name, units)) in datastreams.iter().zip(checked) {
            sqlx::query(
                "INSERT INTO template_datastreams (template_id, pin, name, value_type, min_value, \
                 max_value, units) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(i64::from(ds.pin))
            .bind(ds_name)
            .bind(ds.value_type.clone())
            .bind_real(ds.min)
            .bind_real(ds.max)
            .bind(units)
            .execute(self.conn())
            .await?;
        }
        Ok(DeviceTemplateId(id))
    }

    pub async fn enable_template<A: Permits<writes::EnableTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO org_templates (org_id, template_id) VALUES ($1, $2) \
             ON CONFLICT (org_id, template_id) DO NOTHING",
        )
        .bind(org.0)
        .bind(template.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Inserts a device with its metafields into `org`, with `nonce` for its
    /// auth token. The token hash is a placeholder that no token hashes to
    /// until [`Tx::set_device_token`] sets it (the token depends on the id
    /// the insert assigns); the caller does so in the same transaction.
    pub async fn insert_device<A: Permits<writes::InsertDevice>>(
        &mut self,
        _by: &Allowed<A>,
        org: &OrgPath,
        device: &NewDevice,
        nonce: &str,
    ) -> Result<DeviceId, StoreError> {
        let name = checked_name(&device.name, limits::DEVICE_NAME)?;
        let metafields = checked_metafields(&device.metafields)?;
        refuse_nul("auth_token", nonce)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (hierarchy_id, org_id, template_id, owner_id, name, \
             name_folded, auth_token_hash, auth_token_nonce, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(org.root_id().0)
        .bind(org.id().0)
        .bind(device.template.0)
        .bind(device.owner.map(|u| u.0))
        .bind(name.clone())
        .bind(crate::text::fold(&name))
        .bind(format!("unissued:{nonce}"))
        .bind(nonce.to_owned())
        .bind(self.now())
        .fetch_one(self.conn())
        .await?;
        self.put_metafields(DeviceId(id), metafields).await?;
        self.put_device_scopes(DeviceId(id), org).await?;
        Ok(DeviceId(id))
    }

    /// Sets a device's auth token: the nonce it derives from and its hash.
    /// The old token's hash is gone at once, for every node.
    pub async fn set_device_token<A: Permits<writes::SetDeviceToken>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        nonce: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        refuse_nul("auth_token", nonce)?;
        refuse_nul("auth_token", hash)?;
        let done = sqlx::query(
            "UPDATE devices SET auth_token_nonce = $1, auth_token_hash = $2 WHERE id = $3",
        )
        .bind(nonce.to_owned())
        .bind(hash.to_owned())
        .bind(device.0)
        .execute(self.conn())
        .await?;
        found(&done, "device")?;
        Ok(())
    }

    /// Renames a device and sets the given metafield values (others keep
    /// theirs).
    pub async fn update_device<A: Permits<writes::UpdateDevice>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        name: Option<&str>,
        metafields: &[(String, String)],
    ) -> Result<(), StoreError> {
        let metafields = checked_metafields(metafields)?;
        if let Some(name) = name {
            let name = checked_name(name, limits::DEVICE_NAME)?;
            let done = sqlx::query("UPDATE devices SET name = $1, name_folded = $2 WHERE id = $3")
                .bind(name.clone())
                .bind(crate::text::fold(&name))
                .bind(device.0)
                .execute(self.conn())
                .await?;
            found(&done, "device")?;
        }
        for (key, _) in &metafields {
            sqlx::query("DELETE FROM device_metafields WHERE device_id = $1 AND name = $2")
                .bind(device.0)
                .bind(key.clone())
                .execute(self.conn())
                .await?;
        }
        self.put_metafields(device, metafields).await
    }

    /// Deletes a device; its metafields, values, history, events and tags
    /// go with it (ON DELETE CASCADE), its audit trail stays.
    pub async fn delete_device<A: Permits<writes::DeleteDevice>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(device.0)
            .execute(self.conn())
            .await?;
        found(&done, "device")?;
        Ok(())
    }

    async fn put_metafields(
        &mut self,
        device: DeviceId,
        metafields: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        for (key, value) in metafields {
            sqlx::query(
                "INSERT INTO device_metafields (device_id, name, value) VALUES ($1, $2, $3)",
            )
            .bind(device.0)
            .bind(key)
            .bind(value)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Moves a device to `org` with `owner`. History stays with the device.
    pub async fn move_device<A: Permits<writes::MoveDevice>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        org: OrgId,
        owner: Option<UserId>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE devices SET org_id = $1, owner_id = $2 WHERE id = $3")
            .bind(org.0)
            .bind(owner.map(|u| u.0))
            .bind(device.0)
            .execute(self.conn())
            .await?;
        found(&done, "device")?;
        let path = self.org_path(org).await?;
        self.put_device_scopes(device, &path).await?;
        Ok(())
    }

    /// A device transfer's entry in one owner's timeline: an audit row with
    /// target `user:{id}` (the old or the new owner), written in this
    /// transaction beside the transfer's own `device:{id}` row, so it is
    /// durable exactly when the transfer is.
    pub async fn owner_timeline_entry<A: Permits<writes::MoveDevice>>(
        &mut self,
        _by: &Allowed<A>,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        self.insert_audit_row(event).await
    }

    /// Gives a device a new owner within its org.
    pub async fn set_device_owner<A: Permits<writes::SetDeviceOwner>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        owner: Option<UserId>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET owner_id = $1 WHERE id = $2")
            .bind(owner.map(|u| u.0))
            .bind(device.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
