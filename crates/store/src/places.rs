//! Locations (with their assigned users), the tag catalogs of orgs, the tags
//! of devices and users, and a device's location and last contact.

use crate::error::{StoreError, found};
use crate::list::{Binds, Page, PageRequest, decode_cursor, finish_page};
use crate::rows::DeviceRecord;
use crate::text::fold;
use crate::tx::{BindReal as _, Tx, Write, placeholders};
use arbor_core::policy::Permits;
use arbor_core::policy::places::{LocationFields, LocationFilter, LocationOwner, writes};
use arbor_core::{Allowed, DeviceId, LocationId, OrgId, OrgPath, TagId, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;

/// A location as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocationRecord {
    pub id: LocationId,
    #[serde(skip)]
    pub owner: LocationOwner,
    pub name: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The assigned users, by id.
    pub users: Vec<UserId>,
    pub created_at: i64,
}

impl LocationRecord {
    /// The owning org, for an org's location.
    pub fn org(&self) -> Option<OrgId> {
        match &self.owner {
            LocationOwner::Org(org) => Some(org.id()),
            LocationOwner::User { .. } => None,
        }
    }

    /// The owning user, for a user's own location.
    pub fn owner_user(&self) -> Option<UserId> {
        match &self.owner {
            LocationOwner::Org(_) => None,
            LocationOwner::User { user, .. } => Some(*user),
        }
    }
}

/// A tag of an org's catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagRecord {
    pub id: TagId,
    pub org: OrgId,
    #[serde(skip)]
    pub org_path: OrgPath,
    pub name: String,
}

const LOCATION_COLUMNS: &str = "l.id, o.path, l.owner_user_id, l.hierarchy_id, l.name, \
     l.address, l.lat, l.lon, l.created_at";
const LOCATION_FROM: &str = "locations l LEFT JOIN organizations o ON o.id = l.org_id";

fn location_from_row(row: &AnyRow) -> Result<LocationRecord, StoreError> {
    let path: Option<String> = row.try_get(1)?;
    let owner = match (path, row.try_get::<Option<i64>, _>(2)?) {
        (Some(path), _) => LocationOwner::Org(OrgPath::decode(&path)?),
        (None, Some(user)) => LocationOwner::User {
            user: UserId(user),
            // Own locations always get their hierarchy from the store; a
            // row without one matches no hierarchy (it stays hidden).
            hierarchy: OrgId(row.try_get::<Option<i64>, _>(3)?.unwrap_or(0)),
        },
        (None, None) => return Err(StoreError::invalid("location", "has no owner")),
    };
    Ok(LocationRecord {
        id: LocationId(row.try_get(0)?),
        owner,
        name: row.try_get(4)?,
        address: row.try_get(5)?,
        lat: row.try_get(6)?,
        lon: row.try_get(7)?,
        users: Vec::new(),
        created_at: row.try_get(8)?,
    })
}

fn tag_from_row(row: &AnyRow) -> Result<TagRecord, StoreError> {
    let path: String = row.try_get(2)?;
    Ok(TagRecord {
        id: TagId(row.try_get(0)?),
        org: OrgId(row.try_get(1)?),
        org_path: OrgPath::decode(&path)?,
        name: row.try_get(3)?,
    })
}

impl<M> Tx<M> {
    /// Fills the tags of `devices` (one query for all).
    pub(crate) async fn with_tags(
        &mut self,
        devices: &mut [DeviceRecord],
    ) -> Result<(), StoreError> {
        if devices.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT dt.device_id, t.name FROM device_tags dt JOIN tags t ON t.id = dt.tag_id \
             WHERE dt.device_id IN ({}) ORDER BY t.name_folded, t.id",
            placeholders(0, devices.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for device in devices.iter() {
            query = query.bind(device.id.0);
        }
        let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for row in query.fetch_all(self.conn()).await? {
            tags.entry(row.try_get(0)?)
                .or_default()
                .push(row.try_get(1)?);
        }
        for device in devices {
            device.tags = tags.remove(&device.id.0).unwrap_or_default();
        }
        Ok(())
    }

    pub async fn location(&mut self, id: LocationId) -> Result<LocationRecord, StoreError> {
        let sql = format!("SELECT {LOCATION_COLUMNS} FROM {LOCATION_FROM} WHERE l.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound { what: "location" })?;
        let mut record = location_from_row(&row)?;
        record.users = self.location_users(id).await?;
        Ok(record)
    }

    async fn location_users(&mut self, id: LocationId) -> Result<Vec<UserId>, StoreError> {
        let users: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM location_users WHERE location_id = $1 ORDER BY user_id",
        )
        .bind(id.0)
        .fetch_all(self.conn())
        .await?;
        Ok(users.into_iter().map(UserId).collect())
    }

    /// Locations matching `filter` (from `Actor::list_locations`), by id.
    pub async fn list_locations(
        &mut self,
        filter: &LocationFilter,
        page: &PageRequest,
    ) -> Result<Page<LocationRecord>, StoreError> {
        let size = page.size()?;
        let after = decode_cursor("l", page.after.as_deref())?;
        if filter.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let mut binds = Binds::default();
        let limit = binds.int(i64::from(size) + 1);
        let after = binds.int(after);
        let mut halves = Vec::new();
        if let Some(scope) = &filter.scope {
            let in_scope = if scope.descendants {
                let (lo, hi) = scope.home.subtree_range();
                let (lo, hi) = (binds.text(lo), binds.text(hi));
                format!("o.path >= {lo} AND o.path < {hi}")
            } else {
                format!("o.id = {}", binds.int(scope.home.id().0))
            };
            halves.push(format!("(l.org_id IS NOT NULL AND {in_scope})"));
        }
        if let Some(owner) = filter.owner {
            let owner = binds.int(owner.0);
            let hierarchy = binds.int(filter.hierarchy.0);
            halves.push(format!(
                "(l.owner_user_id = {owner} AND l.hierarchy_id = {hierarchy})"
            ));
        }
        let sql = format!(
            "SELECT {LOCATION_COLUMNS} FROM {LOCATION_FROM} WHERE ({}) AND l.id > {after} \
             ORDER BY l.id LIMIT {limit}",
            halves.join(" OR ")
        );
        let rows = binds.query(sql).fetch_all(self.conn()).await?;
        let items = rows
            .iter()
            .map(location_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut page = finish_page(items, size, "l", |l| l.id.0);
        for item in &mut page.items {
            item.users = self.location_users(item.id).await?;
        }
        Ok(page)
    }

    /// An org's tag catalog, by name.
    pub async fn tags(&mut self, org: OrgId) -> Result<Vec<TagRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.org_id, o.path, t.name FROM tags t \
             JOIN organizations o ON o.id = t.org_id WHERE t.org_id = $1 \
             ORDER BY t.name_folded, t.id",
        )
        .bind(org.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(tag_from_row).collect()
    }

    pub async fn tag(&mut self, id: TagId) -> Result<TagRecord, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.org_id, o.path, t.name FROM tags t \
             JOIN organizations o ON o.id = t.org_id WHERE t.id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound { what: "tag" })?;
        tag_from_row(&row)
    }

    /// A user's tags' names, by name.
    pub async fn user_tags(&mut self, user: UserId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT t.name FROM user_tags ut JOIN tags t ON t.id = ut.tag_id \
             WHERE ut.user_id = $1 ORDER BY t.name_folded, t.id",
        )
        .bind(user.0)
        .fetch_all(self.conn())
        .await?)
    }
}

impl Tx<Write> {
    /// Locks a location's row: edits and deletions of it queue here.
    pub async fn lock_location(&mut self, id: LocationId) -> Result<(), StoreError> {
        self.lock("SELECT id FROM locations WHERE id = $1", id.0, "location")
            .await
    }

    /// Locks an org's tag catalog (its org row), so that the count of 20
    /// holds under concurrent creation.
    pub async fn lock_tag_catalog(&mut self, org: OrgId) -> Result<(), StoreError> {
        self.lock(
            "SELECT id FROM organizations WHERE id = $1",
            org.0,
            "organization",
        )
        .await
    }

    pub async fn insert_location<A: Permits<writes::InsertLocation>>(
        &mut self,
        _by: &Allowed<A>,
        owner: &LocationOwner,
        fields: &LocationFields,
    ) -> Result<LocationId, StoreError> {
        let (org, user) = match owner {
            LocationOwner::Org(org) => (Some(org.id().0), None),
            LocationOwner::User { user, .. } => (None, Some(user.0)),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO locations (org_id, owner_user_id, hierarchy_id, name, address, lat, \
             lon, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(org)
        .bind(user)
        .bind(owner.hierarchy().0)
        .bind(fields.name.clone())
        .bind(fields.address.clone())
        .bind_real(fields.lat)
        .bind_real(fields.lon)
        .bind(self.now())
        .fetch_one(self.conn())
        .await?;
        Ok(LocationId(id))
    }

    pub async fn update_location<A: Permits<writes::UpdateLocation>>(
        &mut self,
        _by: &Allowed<A>,
        id: LocationId,
        fields: &LocationFields,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE locations SET name = $1, address = $2, lat = $3, lon = $4 WHERE id = $5",
        )
        .bind(fields.name.clone())
        .bind(fields.address.clone())
        .bind_real(fields.lat)
        .bind_real(fields.lon)
        .bind(id.0)
        .execute(self.conn())
        .await?;
        found(&done, "location")
    }

    /// Replaces a location's assigned users.
    pub async fn set_location_users<A: Permits<writes::SetLocationUsers>>(
        &mut self,
        _by: &Allowed<A>,
        id: LocationId,
        users: &[UserId],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM location_users WHERE location_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?;
        for user in users {
            sqlx::query(
                "INSERT INTO location_users (location_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT (location_id, user_id) DO NOTHING",
            )
            .bind(id.0)
            .bind(user.0)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Deletes a location; its devices lose their location. Returns how many.
    pub async fn delete_location<A: Permits<writes::DeleteLocation>>(
        &mut self,
        _by: &Allowed<A>,
        id: LocationId,
    ) -> Result<u64, StoreError> {
        let cleared = sqlx::query("UPDATE devices SET location_id = NULL WHERE location_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM location_users WHERE location_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?;
        let done = sqlx::query("DELETE FROM locations WHERE id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await?;
        found(&done, "location")?;
        Ok(cleared)
    }

    pub async fn set_device_location<A: Permits<writes::SetDeviceLocation>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        location: Option<LocationId>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE devices SET location_id = $1 WHERE id = $2")
            .bind(location.map(|l| l.0))
            .bind(device.0)
            .execute(self.conn())
            .await?;
        found(&done, "device")
    }

    /// A tag in an org's catalog; a name the catalog has (ignoring case) is
    /// a conflict, found by the unique index.
    pub async fn insert_tag<A: Permits<writes::InsertTag>>(
        &mut self,
        _by: &Allowed<A>,
        org: OrgId,
        name: &str,
    ) -> Result<TagId, StoreError> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO tags (org_id, name, name_folded, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(org.0)
        .bind(name.to_owned())
        .bind(fold(name))
        .bind(self.now())
        .fetch_optional(self.conn())
        .await?;
        inserted.map(TagId).ok_or_else(|| {
            StoreError::conflict(format!("the organization already has a tag named {name:?}"))
        })
    }

    /// Deletes a tag; it comes off every device and user.
    pub async fn delete_tag<A: Permits<writes::DeleteTag>>(
        &mut self,
        _by: &Allowed<A>,
        tag: TagId,
    ) -> Result<(), StoreError> {
        let id = tag.0;
        for sql in [
            "DELETE FROM device_tags WHERE tag_id = $1",
            "DELETE FROM user_tags WHERE tag_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(self.conn()).await?;
        }
        let done = sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        found(&done, "tag")
    }

    /// Replaces a device's tags.
    pub async fn set_device_tags<A: Permits<writes::SetDeviceTags>>(
        &mut self,
        _by: &Allowed<A>,
        device: DeviceId,
        tags: &[TagId],
    ) -> Result<(), StoreError> {
        let device = device.0;
        sqlx::query("DELETE FROM device_tags WHERE device_id = $1")
            .bind(device)
            .execute(self.conn())
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO device_tags (device_id, tag_id) VALUES ($1, $2)")
                .bind(device)
                .bind(tag.0)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    /// Replaces a user's tags.
    pub async fn set_user_tags<A: Permits<writes::SetUserTags>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
        tags: &[TagId],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_tags WHERE user_id = $1")
            .bind(user.0)
            .execute(self.conn())
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO user_tags (user_id, tag_id) VALUES ($1, $2)")
                .bind(user.0)
                .bind(tag.0)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }
}
