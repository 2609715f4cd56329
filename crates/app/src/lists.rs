//! Reads: single gets and lists, both decided by the same actor so that a list
//! never disagrees with a get.

use crate::{App, AppError, Caller, resolve_actor};
use arbor_core::{Actor, DeviceAction, DeviceId, MemberFacts, OrgId, Permission, UserId};
use arbor_store::{DeviceRecord, OrgRecord, Page, PageRequest, ReadTx, UserFilter, UserRecord};

async fn actor_for_read(tx: &mut ReadTx, caller: &Caller) -> Result<Actor, AppError> {
    resolve_actor(tx, caller)
        .await?
        .map_err(|d| AppError::denied(&d, "organization"))
}

impl App {
    /// Devices the caller may view.
    pub async fn list_devices(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<DeviceRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let page = tx
            .list_devices(&actor.device_filter(DeviceAction::View), page)
            .await?;
        tx.finish().await?;
        Ok(page)
    }

    /// One device, if the caller may view it (else NotFound: existence does not leak).
    pub async fn get_device(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<DeviceRecord, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let record = tx.device(device).await?;
        tx.finish().await?;
        let decision = actor.decide_device(DeviceAction::View, &record.facts());
        if decision.is_allowed() {
            Ok(record)
        } else {
            Err(AppError::NotFound { what: "device" })
        }
    }

    /// Organizations in the caller's scope.
    pub async fn list_orgs(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<OrgRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let page = tx.list_orgs(Some(actor.scope()), page).await?;
        tx.finish().await?;
        Ok(page)
    }

    /// One organization, if in the caller's scope.
    pub async fn get_org(&self, caller: &Caller, org: OrgId) -> Result<OrgRecord, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let record = tx.org(org).await?;
        tx.finish().await?;
        if actor.home().same_hierarchy(&record.path) && actor.scope().contains(&record.path) {
            Ok(record)
        } else {
            Err(AppError::NotFound {
                what: "organization",
            })
        }
    }

    /// Users with a membership the caller may view (`users.view` in scope).
    pub async fn list_users(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let filter = UserFilter {
            scope: actor.org_filter(Permission::UsersView),
            ..Default::default()
        };
        let page = tx.list_users(&filter, page).await?;
        tx.finish().await?;
        Ok(page)
    }

    /// One user, if some membership of theirs is viewable by the caller.
    pub async fn get_user(&self, caller: &Caller, user: UserId) -> Result<UserRecord, AppError> {
        let mut tx = self.store.read().await?;
        let actor = actor_for_read(&mut tx, caller).await?;
        let target = tx
            .principal(user)
            .await?
            .ok_or(AppError::NotFound { what: "user" })?;
        let visible = target.memberships.iter().any(|m| {
            let facts = MemberFacts {
                user,
                org: &m.org,
                permissions: m.permissions,
            };
            actor
                .decide_user(Permission::UsersView, &facts)
                .is_allowed()
        });
        let record = tx.user(user).await?;
        tx.finish().await?;
        if visible {
            Ok(record)
        } else {
            Err(AppError::NotFound { what: "user" })
        }
    }
}
