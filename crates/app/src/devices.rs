//! Devices: creation and transfer (SPEC.md section 5).

use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, refuse};
use arbor_core::{DeviceAction, DeviceId, OrgId, Permission, UserId, UserStatus};
use arbor_store::{AuditEvent, DeviceRecord, NewDevice};

impl App {
    /// Adds a device to `org`: `org_devices.add` on the org, or
    /// `own_devices.provision` for a device the caller will own.
    pub async fn create_device(
        &self,
        caller: &Caller,
        org: OrgId,
        device: &NewDevice,
    ) -> Result<DeviceId, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(caller.client, "device.create", format!("org:{org}"))
                .target_org(org);
            let actor = actor_or_deny!(tx, caller, event);
            let path = tx.org_path(org).await?;
            let mut decision = actor.decide_org(Permission::OrgDevicesAdd, &path);
            if !decision.is_allowed() && device.owner == Some(actor.user()) {
                let own = actor.decide_org(Permission::OwnDevicesProvision, &path);
                if own.is_allowed() {
                    decision = own;
                }
            }
            let by = allow_or_deny!(tx, event, decision, "organization");
            if !tx.template_enabled(org, device.template).await? {
                let error =
                    AppError::conflict("the device template is not enabled for this organization");
                return Err(refuse(tx, event.by(&by), error).await);
            }
            if let Some(owner) = device.owner
                && tx.member_role(owner, org).await?.is_none()
            {
                let error = AppError::conflict(
                    "the device owner must be a member of the device's organization",
                );
                return Err(refuse(tx, event.by(&by), error).await);
            }
            let id = tx.insert_device(&by, &path, device).await?;
            let event = AuditEvent {
                target: format!("device:{id}"),
                ..event.by(&by)
            }
            .detail("name", &device.name)
            .detail("owner", device.owner);
            tx.commit(event).await?;
            Ok(id)
        })
        .await
    }

    /// Transfers a device to user `to`: an active member within the caller's
    /// scope. The device moves to that member's org (the home membership if it
    /// is in scope) and `to` becomes the owner. History stays with the device.
    pub async fn transfer_device_to_user(
        &self,
        caller: &Caller,
        device: DeviceId,
        to: UserId,
    ) -> Result<DeviceRecord, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event =
                AuditEvent::new(caller.client, "device.transfer", format!("device:{device}"))
                    .detail("to_user", to);
            // Concurrent transfers of one device queue here and then re-read it.
            tx.lock_device(device).await?;
            let actor = actor_or_deny!(tx, caller, event);
            let record = tx.device(device).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_device(DeviceAction::Transfer, &record.facts()),
                "device"
            );
            let event = event.by(&by);
            let Some(target) = tx.principal(to).await? else {
                return Err(refuse(tx, event, AppError::NotFound { what: "user" }).await);
            };
            let mut in_scope: Vec<_> = target
                .memberships
                .iter()
                .filter(|m| actor.scope().contains(&m.org))
                .collect();
            in_scope.sort_by_key(|m| !m.home);
            let Some(membership) = in_scope.first() else {
                return Err(refuse(tx, event, AppError::NotFound { what: "user" }).await);
            };
            if target.status != UserStatus::Active {
                let error = AppError::conflict("the receiving user is not active");
                return Err(refuse(tx, event, error).await);
            }
            if record.owner == Some(to) {
                let error = AppError::invalid("user", "Can't transfer to the same owner");
                return Err(refuse(tx, event, error).await);
            }
            let new_org = membership.org.clone();
            if !tx.template_enabled(new_org.id(), record.template).await? {
                let error = AppError::conflict(
                    "the device template is not enabled for the receiving user's organization",
                );
                return Err(refuse(tx, event, error).await);
            }
            tx.move_device(&by, device, new_org.id(), Some(to)).await?;
            let event = event
                .detail("from_org", record.org.id())
                .detail("to_org", new_org.id())
                .detail("from_owner", record.owner);
            tx.commit(event).await?;
            Ok(DeviceRecord {
                org: new_org,
                owner: Some(to),
                ..record
            })
        })
        .await
    }
}
