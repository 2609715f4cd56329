//! Devices: creation and transfer (SPEC.md section 5).

use crate::run::{Decides, Found, write_case};
use crate::{App, AppError, Caller};
use arbor_core::{DeviceId, OrgId, UserId};
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
        let event = AuditEvent::new(caller.client, "device.create", format!("org:{org}"))
            .target_org(org)
            .detail("name", &device.name);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let verdict = step.actor.create_device(&record.path, device.owner);
            let by = step.allow(verdict, "organization")?;
            if !step.tx.template_enabled(org, device.template).await? {
                return Err(step.fail(AppError::conflict(
                    "the device template is not enabled for this organization",
                )));
            }
            if let Some(owner) = device.owner
                && step.tx.member_role(owner, org).await?.is_none()
            {
                return Err(step.fail(AppError::conflict(
                    "the device owner must be a member of the device's organization",
                )));
            }
            let id = step.tx.insert_device(&by, &record.path, device).await?;
            step.event.target = format!("device:{id}");
            step.note("owner", device.owner);
            Ok(id)
        })
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
        let event = AuditEvent::new(caller.client, "device.transfer", format!("device:{device}"))
            .detail("to_user", to);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device(&seen.facts());
            step.require(decision, "device")?;
            // Concurrent transfers of one device queue here and then re-read it.
            step.tx.lock_device(device).await?;
            let record = step.tx.device(device).await.found(step, "device")?;
            step.note("device_name", &record.name);
            let receiver = step.tx.principal(to).await?;
            let verdict = step
                .actor
                .transfer_device(device, &record.facts(), receiver.as_ref());
            let by = step.allow(verdict, "device")?;
            let (_, target) = by.target().clone();
            if !step
                .tx
                .template_enabled(target.org.id(), record.template)
                .await?
            {
                return Err(step.fail(AppError::conflict(
                    "the device template is not enabled for the receiving user's organization",
                )));
            }
            step.tx
                .move_device(&by, device, target.org.id(), Some(target.owner))
                .await?;
            step.note("from_org", record.org.id());
            step.note("to_org", target.org.id());
            step.note("from_owner", record.owner);
            Ok(DeviceRecord {
                org: target.org,
                owner: Some(target.owner),
                ..record
            })
        })
    }
}
