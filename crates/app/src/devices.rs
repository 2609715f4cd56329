//! Devices: creation, edits, deletion, auth tokens and transfer (SPEC.md
//! section 5; the token scheme is in [`crate::device_tokens`]).

use crate::run::{Decides, Found, Stop, read_case, write_case};
use crate::{App, AppError, Caller, hash_token};
use arbor_core::policy::{CreateDevice, RegenerateDeviceToken};
use arbor_core::{Allowed, DeviceFacts, DeviceId, OrgId, UserId};
use arbor_store::{AuditEvent, DeviceRecord, DeviceTemplateId, NewDevice, WriteTx};
use subtle::ConstantTimeEq as _;

/// A device with its metafield values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDetail {
    pub device: DeviceRecord,
    pub metafields: Vec<(String, String)>,
}

/// A device just created, with its auth token when the creator may see it
/// (`auth_tokens.edit` on the device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedDevice {
    pub device: DeviceDetail,
    pub token: Option<String>,
}

/// What an edit changes: the name if given, and the given metafield values
/// (others keep theirs). Org and owner change only by transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceEdit {
    pub name: Option<String>,
    pub metafields: Vec<(String, String)>,
}

/// Refuses metafield names the device's template does not define.
async fn check_metafields(
    tx: &mut WriteTx,
    template: DeviceTemplateId,
    metafields: &[(String, String)],
) -> Result<(), AppError> {
    if metafields.is_empty() {
        return Ok(());
    }
    let known = tx.template_metafield_names(template).await?;
    for (name, _) in metafields {
        if !known.iter().any(|k| k == name) {
            let defined = if known.is_empty() {
                "the device template defines no metafields".to_owned()
            } else {
                format!("the device template defines {}", known.join(", "))
            };
            return Err(AppError::invalid(
                "metafields",
                format!("unknown metafield {name:?}: {defined}"),
            ));
        }
    }
    Ok(())
}

impl App {
    /// Adds a device to `org`: `org_devices.add` on the org, or
    /// `own_devices.provision` for a device the caller will own.
    pub async fn create_device(
        &self,
        caller: &Caller,
        org: OrgId,
        device: &NewDevice,
    ) -> Result<DeviceId, AppError> {
        Ok(self
            .provision_device(caller, Some(org), device)
            .await?
            .device
            .device
            .id)
    }

    /// Adds a device from an enabled template to `org` (by default the
    /// caller's context org): `org_devices.add` there, or
    /// `own_devices.provision` for a device the caller owns — without a
    /// named owner, an adder's device is unclaimed and a provisioner's its
    /// own. The auth token is made in the same transaction and answered only
    /// to a caller holding `auth_tokens.edit` on the new device.
    pub async fn provision_device(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
        device: &NewDevice,
    ) -> Result<CreatedDevice, AppError> {
        let target = org.map_or_else(|| "org:context".to_owned(), |o| format!("org:{o}"));
        let mut event =
            AuditEvent::new(caller.client, "device.create", target).detail("name", &device.name);
        event.target_org = org;
        write_case!(self, caller, event, |step| {
            let org = org.unwrap_or(step.actor.context());
            step.event.target_org = Some(org);
            let record = step.locked_org(org).await?;
            let verdict = step.actor.create_device_for(&record.path, device.owner);
            let by: Allowed<CreateDevice> = step.allow(verdict, "organization")?;
            let (path, owner) = by.target().clone();
            if !step.tx.template_enabled(org, device.template).await? {
                return Err(step.fail(AppError::conflict(
                    "the device template is not enabled for this organization",
                )));
            }
            if let Err(e) =
                check_metafields(&mut step.tx, device.template, &device.metafields).await
            {
                return Err(step.fail(e));
            }
            if let Some(owner) = owner
                && step.tx.member_role(owner, org).await?.is_none()
            {
                return Err(step.fail(AppError::conflict(
                    "the device owner must be a member of the device's organization",
                )));
            }
            let new = NewDevice {
                owner,
                ..device.clone()
            };
            let nonce = crate::DeviceTokenKey::new_nonce();
            let id = step.tx.insert_device(&by, &path, &new, &nonce).await?;
            let token = self.device_tokens.token(id, &nonce);
            step.tx
                .set_device_token(&by, id, &nonce, &hash_token(&token))
                .await?;
            step.event.target = format!("device:{id}");
            step.note("owner", owner);
            let shown = step
                .actor
                .view_device_token(&DeviceFacts { org: &path, owner })
                .is_allowed();
            let device = step.tx.device(id).await?;
            let metafields = step.tx.device_metafields(id).await?;
            Ok(CreatedDevice {
                device: DeviceDetail { device, metafields },
                token: shown.then_some(token),
            })
        })
    }

    /// One device with its metafields, if the caller may view it (else
    /// NotFound: existence does not leak).
    pub async fn device_detail(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<DeviceDetail, AppError> {
        let event = AuditEvent::new(caller.client, "device.view", format!("device:{device}"));
        read_case!(self, caller, event, |step| {
            let record = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device(&record.facts());
            step.require(decision, "device")?;
            let metafields = step.tx.device_metafields(device).await?;
            Ok(DeviceDetail {
                device: record,
                metafields,
            })
        })
    }

    /// Renames a device and sets metafield values: `org_devices.edit`, or
    /// `own_devices.edit` for its owner.
    pub async fn edit_device(
        &self,
        caller: &Caller,
        device: DeviceId,
        edit: &DeviceEdit,
    ) -> Result<DeviceDetail, AppError> {
        let mut event = AuditEvent::new(caller.client, "device.edit", format!("device:{device}"));
        if let Some(name) = &edit.name {
            event = event.detail("name", name);
        }
        write_case!(self, caller, event, |step| {
            let record = locked_visible(step, device).await?;
            let verdict = step.actor.edit_device(device, &record.facts());
            let by = step.allow(verdict, "device")?;
            if let Err(e) = check_metafields(&mut step.tx, record.template, &edit.metafields).await
            {
                return Err(step.fail(e));
            }
            step.tx
                .update_device(&by, device, edit.name.as_deref(), &edit.metafields)
                .await?;
            let names: Vec<&str> = edit.metafields.iter().map(|(k, _)| k.as_str()).collect();
            step.note("metafields", names);
            let device = step.tx.device(device).await?;
            let metafields = step.tx.device_metafields(device.id).await?;
            Ok(DeviceDetail { device, metafields })
        })
    }

    /// Deletes a device (`org_devices.delete`); it answers 404 afterwards.
    pub async fn delete_device(&self, caller: &Caller, device: DeviceId) -> Result<(), AppError> {
        let event = AuditEvent::new(caller.client, "device.delete", format!("device:{device}"));
        write_case!(self, caller, event, |step| {
            let record = locked_visible(step, device).await?;
            let verdict = step.actor.delete_device(device, &record.facts());
            let by = step.allow(verdict, "device")?;
            step.note("device_name", &record.name);
            step.note("owner", record.owner);
            step.tx.delete_device(&by, device).await?;
            Ok(())
        })
    }

    /// A device's auth token (`auth_tokens.edit` and device view), derived
    /// again from the stored nonce. A token issued before tokens were derived,
    /// or under another server key, cannot be shown: regenerate it.
    pub async fn device_token(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<String, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.token.view",
            format!("device:{device}"),
        );
        read_case!(self, caller, event, |step| {
            let record = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device_token(&record.facts());
            step.require(decision, "device")?;
            let stored = step.tx.device_token(device).await?;
            let unshowable = || {
                AppError::conflict(
                    "this device's auth token was issued before tokens could be shown again, \
                     or under another server key; regenerate it (POST) to get one",
                )
            };
            let Some(nonce) = stored.nonce else {
                return Err(Stop::Error(unshowable()));
            };
            let token = self.device_tokens.token(device, &nonce);
            let matches: bool = hash_token(&token)
                .as_bytes()
                .ct_eq(stored.hash.as_bytes())
                .into();
            if !matches {
                return Err(Stop::Error(unshowable()));
            }
            Ok(token)
        })
    }

    /// A new auth token for a device (`auth_tokens.edit` and device view):
    /// new nonce and hash in one transaction with the audit event; the old
    /// token stops working at once, on every node.
    pub async fn regenerate_device_token(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<String, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "device.token.regenerate",
            format!("device:{device}"),
        );
        write_case!(self, caller, event, |step| {
            let record = locked_visible(step, device).await?;
            let verdict = step.actor.regenerate_device_token(device, &record.facts());
            let by: Allowed<RegenerateDeviceToken> = step.allow(verdict, "device")?;
            let nonce = crate::DeviceTokenKey::new_nonce();
            let token = self.device_tokens.token(device, &nonce);
            step.tx
                .set_device_token(&by, device, &nonce, &hash_token(&token))
                .await?;
            Ok(token)
        })
    }

    /// The device an auth token belongs to, for the device API: looked up by
    /// the token's hash, so a regenerated token's predecessor finds nothing.
    pub async fn device_by_token(&self, token: &str) -> Result<Option<DeviceRecord>, AppError> {
        let hash = hash_token(token);
        self.retrying(|| async {
            let mut tx = self.store.read().await?;
            let found = tx.device_by_token_hash(&hash).await?;
            tx.finish().await?;
            Ok(found)
        })
        .await
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

/// Loads a device the actor may view (else the audited 404), locks its row
/// and reads it again: decisions are taken on the locked state, and no one
/// locks a device outside its view.
pub(crate) async fn locked_visible(
    step: &mut crate::run::Step,
    device: DeviceId,
) -> Result<DeviceRecord, Stop> {
    let seen = step.tx.device(device).await.found(step, "device")?;
    let decision = step.actor.view_device(&seen.facts());
    step.require(decision, "device")?;
    step.tx.lock_device(device).await?;
    step.tx.device(device).await.found(step, "device")
}
