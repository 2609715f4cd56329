//! Locations and tags: an org's or a user's locations with their assigned
//! users, a device's location, the tag catalog of an org, and the tags of
//! devices and users. A location never grants or limits access: these use
//! cases change no one's permissions, and no decision reads a location.

use crate::run::{Decides, Found, read_case, write_case};
use crate::{App, AppError, Caller};
use arbor_core::policy::places::{Assignee, LocationFields, resolve_tags};
use arbor_core::text::{self, limits};
use arbor_core::{DeviceId, LocationId, OrgId, OrgPath, TagId, UserId};
use arbor_store::{
    AuditEvent, DeviceRecord, LocationRecord, Page, PageRequest, StoreError, TagRecord,
};

/// A new location: an org's (`org`), or the caller's own (no `org`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewLocation {
    pub org: Option<OrgId>,
    pub name: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Assigned users (needs `assign_users` when not empty).
    pub users: Vec<UserId>,
}

/// Changes to a location; `None` leaves a field as it is. `lat`/`lon`
/// `Some(None)` clear the coordinates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationEdit {
    pub name: Option<String>,
    pub address: Option<String>,
    pub lat: Option<Option<f64>>,
    pub lon: Option<Option<f64>>,
    /// Replaces the assigned users (`assign_users`).
    pub users: Option<Vec<UserId>>,
}

impl LocationEdit {
    fn changes_fields(&self) -> bool {
        self.name.is_some() || self.address.is_some() || self.lat.is_some() || self.lon.is_some()
    }
}

/// The orgs of each user's memberships, for the assignee check.
async fn assignees<M>(
    tx: &mut arbor_store::Tx<M>,
    users: &[UserId],
) -> Result<Vec<(UserId, Vec<OrgPath>)>, StoreError> {
    let mut found = Vec::with_capacity(users.len());
    for user in users {
        let orgs = tx
            .memberships(*user)
            .await?
            .into_iter()
            .map(|m| m.path)
            .collect();
        found.push((*user, orgs));
    }
    Ok(found)
}

fn as_assignees(loaded: &[(UserId, Vec<OrgPath>)]) -> Vec<Assignee<'_>> {
    loaded
        .iter()
        .map(|(user, orgs)| Assignee {
            user: *user,
            orgs: orgs.iter().collect(),
        })
        .collect()
}

fn distinct(users: &[UserId]) -> Vec<UserId> {
    let mut users = users.to_vec();
    users.sort_unstable();
    users.dedup();
    users
}

impl App {
    /// The locations the caller may view: its orgs' (with
    /// `org_locations.view`) and its own (with `own_locations.view`).
    pub async fn list_locations(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<LocationRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "location.list", "location:*");
        read_case!(self, caller, event, |step| {
            let filter = step.actor.list_locations();
            Ok(step.tx.list_locations(&filter, page).await?)
        })
    }

    /// One location, if the caller may view it (else NotFound).
    pub async fn get_location(
        &self,
        caller: &Caller,
        id: LocationId,
    ) -> Result<LocationRecord, AppError> {
        let event = AuditEvent::new(caller.client, "location.view", format!("location:{id}"));
        read_case!(self, caller, event, |step| {
            let record = step.tx.location(id).await.found(step, "location")?;
            let decision = step.actor.view_location(&record.owner);
            step.require(decision, "location")?;
            Ok(record)
        })
    }

    /// Creates a location (an org's with `org_locations.create`, or the
    /// caller's own with `own_locations.create`), with its assigned users.
    pub async fn create_location(
        &self,
        caller: &Caller,
        new: &NewLocation,
    ) -> Result<LocationRecord, AppError> {
        let mut event = AuditEvent::new(caller.client, "location.create", "location:*")
            .detail("name", &new.name);
        if let Some(org) = new.org {
            event = event.target_org(org);
        }
        let id = write_case!(self, caller, event, |step| {
            let org = match new.org {
                Some(org) => Some(step.tx.org(org).await.found(step, "organization")?.path),
                None => None,
            };
            let users = distinct(&new.users);
            let loaded = assignees(&mut step.tx, &users).await?;
            let verdict = step
                .actor
                .create_location(org.as_ref(), &as_assignees(&loaded));
            let by = step.allow(verdict, "organization")?;
            let fields = LocationFields::checked(&new.name, &new.address, new.lat, new.lon)
                .map_err(|e| step.fail(e.into()))?;
            let id = step.tx.insert_location(&by, by.target(), &fields).await?;
            if !users.is_empty() {
                step.tx.set_location_users(&by, id, &users).await?;
            }
            step.event.target = format!("location:{id}");
            step.note("users", &users);
            Ok(id)
        })?;
        self.get_location(caller, id).await
    }

    /// Edits a location's fields (`edit`) and/or replaces its assigned users
    /// (`assign_users`).
    pub async fn edit_location(
        &self,
        caller: &Caller,
        id: LocationId,
        edit: &LocationEdit,
    ) -> Result<LocationRecord, AppError> {
        let event = AuditEvent::new(caller.client, "location.edit", format!("location:{id}"));
        write_case!(self, caller, event, |step| {
            let seen = step.tx.location(id).await.found(step, "location")?;
            let decision = step.actor.view_location(&seen.owner);
            step.require(decision, "location")?;
            step.tx.lock_location(id).await?;
            let record = step.tx.location(id).await.found(step, "location")?;
            if edit.changes_fields() || edit.users.is_none() {
                let verdict = step.actor.edit_location(id, &record.owner);
                let by = step.allow(verdict, "location")?;
                let fields = LocationFields::checked(
                    edit.name.as_deref().unwrap_or(&record.name),
                    edit.address.as_deref().unwrap_or(&record.address),
                    edit.lat.unwrap_or(record.lat),
                    edit.lon.unwrap_or(record.lon),
                )
                .map_err(|e| step.fail(e.into()))?;
                step.tx.update_location(&by, id, &fields).await?;
                step.note("name", &fields.name);
            }
            if let Some(users) = &edit.users {
                let users = distinct(users);
                let loaded = assignees(&mut step.tx, &users).await?;
                let verdict =
                    step.actor
                        .assign_location_users(id, &record.owner, &as_assignees(&loaded));
                let by = step.allow(verdict, "location")?;
                step.tx.set_location_users(&by, id, &users).await?;
                step.note("users", &users);
            }
            Ok(())
        })?;
        self.get_location(caller, id).await
    }

    /// Deletes a location; the devices there lose their location, in the
    /// same transaction (the count is audited).
    pub async fn delete_location(&self, caller: &Caller, id: LocationId) -> Result<u64, AppError> {
        let event = AuditEvent::new(caller.client, "location.delete", format!("location:{id}"));
        write_case!(self, caller, event, |step| {
            let seen = step.tx.location(id).await.found(step, "location")?;
            let decision = step.actor.view_location(&seen.owner);
            step.require(decision, "location")?;
            step.tx.lock_location(id).await?;
            let record = step.tx.location(id).await.found(step, "location")?;
            let verdict = step.actor.delete_location(id, &record.owner);
            let by = step.allow(verdict, "location")?;
            let cleared = step.tx.delete_location(&by, id).await?;
            step.note("name", &record.name);
            step.note("devices_cleared", cleared);
            Ok(cleared)
        })
    }

    /// Sets or clears a device's location: a device edit; the location must
    /// be visible to the caller and of the device's hierarchy.
    pub async fn set_device_location(
        &self,
        caller: &Caller,
        device: DeviceId,
        location: Option<LocationId>,
    ) -> Result<DeviceRecord, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.set_location",
            format!("device:{device}"),
        )
        .detail("location_id", location);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device(&seen.facts());
            step.require(decision, "device")?;
            step.tx.lock_device(device).await?;
            let record = step.tx.device(device).await.found(step, "device")?;
            let place = match location {
                Some(id) => match step.tx.location(id).await {
                    Ok(place) => Some(place),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            let target = location.map(|id| (id, place.as_ref().map(|p| &p.owner)));
            let verdict = step
                .actor
                .set_device_location(device, &record.facts(), target);
            let by = step.allow(verdict, "device")?;
            step.tx.set_device_location(&by, device, location).await?;
            step.note("from_location", record.location);
            Ok(DeviceRecord { location, ..record })
        })
    }

    /// An org's tag catalog (`tags.view`); by default the context org's.
    pub async fn list_tags(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
    ) -> Result<Vec<TagRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "tag.list", "tag:*");
        read_case!(self, caller, event, |step| {
            let path = match org {
                Some(org) => step.tx.org(org).await.found(step, "organization")?.path,
                None => step.actor.context_path().clone(),
            };
            let decision = step.actor.view_tags(&path);
            step.require(decision, "organization")?;
            Ok(step.tx.tags(path.id()).await?)
        })
    }

    /// A new tag in an org's catalog (`tags.manage`; at most 20 per org, a
    /// name 1–24 characters, unique ignoring case); by default the context
    /// org's catalog.
    pub async fn create_tag(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
        name: &str,
    ) -> Result<TagRecord, AppError> {
        let mut event = AuditEvent::new(caller.client, "tag.create", "tag:*").detail("name", name);
        if let Some(org) = org {
            event = event.target_org(org);
        }
        write_case!(self, caller, event, |step| {
            let path = match org {
                Some(org) => step.tx.org(org).await.found(step, "organization")?.path,
                None => step.actor.context_path().clone(),
            };
            let seen = step.actor.view_tags(&path);
            step.require(seen, "organization")?;
            step.tx.lock_tag_catalog(path.id()).await?;
            let existing = step.tx.tags(path.id()).await?.len();
            let verdict = step.actor.create_tag(&path, name, existing);
            let by = step.allow(verdict, "organization")?;
            let (org, name) = by.target().clone();
            let id = step
                .tx
                .insert_tag(&by, org, &name)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { what } => step.fail(AppError::Conflict { what }),
                    other => other.into(),
                })?;
            step.event.target = format!("tag:{id}");
            step.event.target_org = Some(org);
            Ok(TagRecord {
                id,
                org,
                org_path: path,
                name,
            })
        })
    }

    /// Deletes a tag (`tags.manage` on its org); it comes off every device
    /// and user.
    pub async fn delete_tag(&self, caller: &Caller, id: TagId) -> Result<(), AppError> {
        let event = AuditEvent::new(caller.client, "tag.delete", format!("tag:{id}"));
        write_case!(self, caller, event, |step| {
            let tag = step.tx.tag(id).await.found(step, "tag")?;
            let seen = step.actor.view_tags(&tag.org_path);
            step.require(seen, "tag")?;
            step.tx.lock_tag_catalog(tag.org).await?;
            let verdict = step.actor.delete_tag(id, &tag.org_path);
            let by = step.allow(verdict, "tag")?;
            step.tx.delete_tag(&by, id).await?;
            step.note("name", &tag.name);
            Ok(())
        })
    }

    /// Replaces a device's tags with `names` (at most five, from the
    /// catalog of the device's org): a device edit.
    pub async fn set_device_tags(
        &self,
        caller: &Caller,
        device: DeviceId,
        names: &[String],
    ) -> Result<DeviceRecord, AppError> {
        let event = AuditEvent::new(caller.client, "device.set_tags", format!("device:{device}"))
            .detail("tags", names);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device(&seen.facts());
            step.require(decision, "device")?;
            step.tx.lock_device(device).await?;
            let record = step.tx.device(device).await.found(step, "device")?;
            let verdict = step.actor.set_device_tags(device, &record.facts());
            let by = step.allow(verdict, "device")?;
            let catalog: Vec<(TagId, String)> = step
                .tx
                .tags(record.org.id())
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let tags = resolve_tags(names, &catalog).map_err(|e| step.fail(e.into()))?;
            step.tx.set_device_tags(&by, device, &tags).await?;
            step.note("from_tags", &record.tags);
            Ok(step.tx.device(device).await?)
        })
    }

    /// Replaces a member's tags with `names` (at most five, from the catalog
    /// of the org of the membership acted on): `users.edit` on the member.
    pub async fn set_user_tags(
        &self,
        caller: &Caller,
        user: UserId,
        names: &[String],
    ) -> Result<Vec<String>, AppError> {
        let event = AuditEvent::new(caller.client, "user.set_tags", format!("user:{user}"))
            .detail("tags", names);
        write_case!(self, caller, event, |step| {
            let member = step.locked_member(user).await?;
            let verdict = step.actor.set_user_tags(user, &member.targets());
            let by = step.allow(verdict, "user")?;
            let org = by.target().org.id();
            let catalog: Vec<(TagId, String)> = step
                .tx
                .tags(org)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let tags = resolve_tags(names, &catalog).map_err(|e| step.fail(e.into()))?;
            let before = step.tx.user_tags(user).await?;
            step.tx.set_user_tags(&by, user, &tags).await?;
            step.note("from_tags", before);
            Ok(step.tx.user_tags(user).await?)
        })
    }
}

/// A `tag=` filter value: a tag name (1–24 characters).
pub(crate) fn tag_filter(tag: &str) -> Result<String, AppError> {
    Ok(text::name("tag", tag, limits::TAG_NAME)?)
}
