//! Device transfer (SPEC.md section 5): to a user by id or email, or into an
//! org, with a dry run that answers who gains and who loses access.
//!
//! Both runs share one plan: load the device and the receiver, let
//! arbor-core decide (`transfer_device` / `transfer_device_to_org`), check
//! that the template is enabled where the device goes, and compute the
//! access change with the who-can of the access endpoints on the device as
//! it is and as it would be. The dry run stops there, in a read transaction
//! (nothing written; a refusal is audited like any refused read). The real
//! transfer locks the device first, moves it, and writes — in the same
//! transaction as its `device.transfer` audit row — one timeline entry per
//! owner: an audit row `device.transfer.owner` with target `user:{id}` for
//! the old owner and for the new one. History (datastreams, events) stays
//! with the device.

// A stop carries its decision for the audit row; plans stop once.
#![allow(clippy::result_large_err)]

use crate::run::{Decides, Stop, read_case, refused, write_case};
use crate::{App, AppError, Caller};
use arbor_core::policy::{AccessChange, TransferDevice};
use arbor_core::{Actor, Allowed, DeviceId, OrgId, Principal, UserId};
use arbor_store::{AuditEvent, DeviceRecord, StoreError, Tx};

/// Where a device goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTo {
    /// An active member in the caller's scope; the device moves to that
    /// member's org.
    User(UserId),
    /// The same, named by email (unknown and out-of-scope both answer 404
    /// "user").
    Email(String),
    /// An org in the caller's scope; owner the named member of that org, or
    /// its earliest Admin.
    Org { org: OrgId, owner: Option<UserId> },
}

impl TransferTo {
    fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Email(_) => "email",
            Self::Org { .. } => "org",
        }
    }
}

/// A transfer, done or previewed: the device as it is after it (or would
/// be), and who gains and who loses `view` and `control`.
#[derive(Clone, Debug)]
pub struct DeviceTransfer {
    pub device: DeviceRecord,
    pub change: AccessChange,
}

/// What a plan found: the device as it is, the proof, and the change.
struct Plan {
    record: DeviceRecord,
    by: Allowed<TransferDevice>,
    change: AccessChange,
}

impl Plan {
    fn after(&self) -> DeviceRecord {
        let (_, target) = self.by.target();
        DeviceRecord {
            org: target.org.clone(),
            owner: Some(target.owner),
            ..self.record.clone()
        }
    }
}

fn absent(actor: &Actor, what: &'static str) -> Stop {
    Stop::Denied {
        decision: actor.absent(),
        what,
    }
}

/// Validates the transfer and computes its access change, in `tx`.
async fn plan<M>(
    tx: &mut Tx<M>,
    actor: &Actor,
    device: DeviceId,
    to: &TransferTo,
) -> Result<Plan, Stop> {
    let record = match tx.device(device).await {
        Ok(record) => record,
        Err(StoreError::NotFound { .. }) => return Err(absent(actor, "device")),
        Err(e) => return Err(e.into()),
    };
    let facts = record.facts();
    let verdict = match to {
        TransferTo::User(user) => {
            let receiver = tx.principal(*user).await?;
            actor.transfer_device(device, &facts, receiver.as_ref())
        }
        TransferTo::Email(email) => {
            let receiver = match tx.user_by_email(email).await? {
                Some(user) => tx.principal(user.id).await?,
                None => None,
            };
            actor.transfer_device(device, &facts, receiver.as_ref())
        }
        TransferTo::Org { org, owner } => {
            let path = match tx.org_path(*org).await {
                Ok(path) => Some(path),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let named = match owner {
                Some(owner) => Some(tx.principal(*owner).await?),
                None => None,
            };
            // Only an org the actor may transfer into is asked for its Admins.
            let admins = match &path {
                Some(path) if owner.is_none() && actor.scope().contains(path) => {
                    tx.admins(path.id()).await?
                }
                _ => Vec::new(),
            };
            actor.transfer_device_to_org(
                device,
                &facts,
                path.as_ref(),
                named.as_ref().map(Option::as_ref),
                &admins,
            )
        }
    };
    let by = verdict.map_err(|refusal| refused(refusal, "device"))?;
    let (_, target) = by.target();
    if !tx
        .template_enabled(target.org.id(), record.template)
        .await?
    {
        return Err(Stop::Failed {
            decision: by.decision().copied(),
            error: AppError::conflict(
                "the device template is not enabled for the receiving organization",
            ),
        });
    }
    let mut principals = tx.principals_above(&record.org, record.owner).await?;
    for p in tx.principals_above(&target.org, Some(target.owner)).await? {
        if !principals.iter().any(|q: &Principal| q.user == p.user) {
            principals.push(p);
        }
    }
    let after = arbor_core::DeviceFacts {
        org: &target.org,
        owner: Some(target.owner),
    };
    let change = actor.transfer_access_change(&facts, &after, &principals);
    Ok(Plan { record, by, change })
}

impl App {
    /// Transfers a device (see the module docs); with `dry_run`, answers the
    /// same without changing anything.
    pub async fn transfer_device(
        &self,
        caller: &Caller,
        device: DeviceId,
        to: &TransferTo,
        dry_run: bool,
    ) -> Result<DeviceTransfer, AppError> {
        if dry_run {
            let event = AuditEvent::new(
                caller.client,
                "device.transfer_preview",
                format!("device:{device}"),
            )
            .detail("to", to.kind());
            return read_case!(self, caller, event, |step| {
                let plan = plan(&mut step.tx, &step.actor, device, to).await?;
                Ok(DeviceTransfer {
                    device: plan.after(),
                    change: plan.change,
                })
            });
        }
        let event = AuditEvent::new(caller.client, "device.transfer", format!("device:{device}"))
            .detail("to", to.kind());
        write_case!(self, caller, event, |step| {
            let seen = step.tx.device(device).await;
            let seen = match seen {
                Ok(seen) => seen,
                Err(StoreError::NotFound { .. }) => return Err(step.absent("device")),
                Err(e) => return Err(e.into()),
            };
            let decision = step.actor.view_device(&seen.facts());
            step.require(decision, "device")?;
            // Concurrent transfers of one device queue here; the plan re-reads it.
            step.tx.lock_device(device).await?;
            let plan = plan(&mut step.tx, &step.actor, device, to).await?;
            if let Some(decision) = plan.by.decision() {
                step.allowed(decision);
            }
            let after = plan.after();
            step.tx
                .move_device(&plan.by, device, after.org.id(), after.owner)
                .await?;
            let from = &plan.record;
            step.note("device_name", &from.name);
            step.note("from_org", from.org.id());
            step.note("to_org", after.org.id());
            step.note("from_owner", from.owner);
            step.note("to_owner", after.owner);
            step.note("change", &plan.change);
            // One timeline entry per owner (the old one, if any, and the new).
            let mut owners = Vec::new();
            if let Some(old) = from.owner {
                owners.push((old, "previous_owner", from.org.id()));
            }
            if let Some(new) = after.owner
                && Some(new) != from.owner
            {
                owners.push((new, "new_owner", after.org.id()));
            }
            // And one on the device's own timeline.
            let describe = |owner: Option<arbor_core::UserId>| {
                owner.map_or_else(|| "unclaimed".to_owned(), |u| format!("user {u}"))
            };
            let description = format!(
                "owner {} → {}, organization {} → {}",
                describe(from.owner),
                describe(after.owner),
                from.org.id(),
                after.org.id()
            );
            step.tx
                .ownership_timeline_entry(&plan.by, device, &description)
                .await?;
            for (owner, role, org) in owners {
                let mut entry = AuditEvent::new(
                    caller.client,
                    "device.transfer.owner",
                    format!("user:{owner}"),
                )
                .detail("device", device)
                .detail("device_name", &from.name)
                .detail("as", role)
                .detail("from_org", from.org.id())
                .detail("to_org", after.org.id())
                .detail("from_owner", from.owner)
                .detail("to_owner", after.owner);
                if let Some(decision) = plan.by.decision() {
                    entry = entry.decided(decision);
                }
                entry.target_org = Some(org);
                step.tx.owner_timeline_entry(&plan.by, entry).await?;
            }
            Ok(DeviceTransfer {
                device: after,
                change: plan.change,
            })
        })
    }
}
