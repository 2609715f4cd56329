//! Devices: creation and transfer (SPEC.md section 5).

use crate::run::{Decides, write_case};
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
    /// The transfer use case with [`crate::TransferTo::User`].
    pub async fn transfer_device_to_user(
        &self,
        caller: &Caller,
        device: DeviceId,
        to: UserId,
    ) -> Result<DeviceRecord, AppError> {
        let to = crate::TransferTo::User(to);
        Ok(self
            .transfer_device(caller, device, &to, false)
            .await?
            .device)
    }
}
