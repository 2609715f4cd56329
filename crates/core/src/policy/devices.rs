//! Decisions on devices (SPEC.md sections 1, 4 rule 5 and 5); device
//! templates are decided in `templates.rs`.

use super::{CreateDevice, Refusal, TransferDevice, Verdict, check, verdict};
use crate::decision::{
    Actor, Decision, DeviceAction, DeviceFacts, DeviceFilter, Principal, Scope, UserStatus,
};
use crate::error::DomainError;
use crate::ids::{DeviceId, UserId};
use crate::org::OrgPath;
use crate::permission::Permission;

/// Where a transferred device goes: the receiver's org, and the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferTarget {
    pub org: OrgPath,
    pub owner: UserId,
}

impl Actor {
    /// A device in `org` owned by `owner`: `org_devices.add` on the org, or
    /// `own_devices.provision` there for a device the actor will own.
    pub fn create_device(&self, org: &OrgPath, owner: Option<UserId>) -> Verdict<CreateDevice> {
        let add = self.decide_org(Permission::OrgDevicesAdd, org);
        if add.is_allowed() {
            return verdict(add, (org.clone(), owner));
        }
        if owner == Some(self.user()) {
            let provision = self.decide_org(Permission::OwnDevicesProvision, org);
            if provision.is_allowed() {
                return verdict(provision, (org.clone(), owner));
            }
        }
        Err(Refusal::Denied(add))
    }

    /// The devices a list shows (rule 9): by default everything the actor
    /// may view across its scope, in one list; with a context org `C`, only
    /// devices in `C`'s subtree; with `org` (one org, or its subtree with
    /// `include_suborgs`), only there — and `org` must lie in the list scope,
    /// else the list is refused as hidden. A narrowing never widens: the
    /// filter always implies [`Actor::view_device`].
    pub fn list_devices(
        &self,
        org: Option<&OrgPath>,
        include_suborgs: bool,
    ) -> Result<DeviceFilter, Decision> {
        let mut filter = self.device_filter(DeviceAction::View);
        if let Some(org) = org {
            let seen = self.view_in_list(org);
            if !seen.is_allowed() {
                return Err(seen);
            }
            filter.within = Some(Scope {
                home: org.clone(),
                descendants: include_suborgs,
            });
        } else if self.context_path().id() != self.home().id() {
            filter.within = Some(self.list_scope());
        }
        Ok(filter)
    }

    /// Seeing a device (rule 5 with `view`).
    pub fn view_device(&self, device: &DeviceFacts<'_>) -> Decision {
        self.decide_device(DeviceAction::View, device)
    }

    /// Transferring `device` to `receiver` (SPEC.md section 5): the device
    /// action `transfer` (device view and `transfers.devices`), a receiver
    /// with a membership in the actor's scope (the home one first), active,
    /// and not the current owner. The device goes to that membership's org.
    pub fn transfer_device(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
        receiver: Option<&Principal>,
    ) -> Verdict<TransferDevice> {
        let decision = self.decide_device(DeviceAction::Transfer, device);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        let not_found = || DomainError::NotFound { what: "user" };
        let receiver = check(&decision, receiver.ok_or_else(not_found))?;
        let mut in_scope: Vec<_> = receiver
            .memberships
            .iter()
            .filter(|m| self.home().same_hierarchy(&m.org) && self.scope().contains(&m.org))
            .collect();
        in_scope.sort_by_key(|m| (!m.home, m.org.id()));
        let membership = check(&decision, in_scope.first().ok_or_else(not_found))?;
        if receiver.status != UserStatus::Active {
            return Err(Refusal::Failed {
                decision,
                error: DomainError::conflict("the receiving user is not active"),
            });
        }
        if device.owner == Some(receiver.user) {
            return Err(Refusal::Failed {
                decision,
                error: DomainError::invalid("user", "Can't transfer to the same owner"),
            });
        }
        verdict(
            decision,
            (
                id,
                TransferTarget {
                    org: membership.org.clone(),
                    owner: receiver.user,
                },
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::PermissionSet;
    use crate::policy::testing::{actor, path};

    #[test]
    fn provisioning_needs_to_own_the_new_device() {
        let org = path(&[1, 2]);
        let provisioner = actor(
            &org,
            PermissionSet::from([Permission::OwnDevicesProvision]).closed(),
        );
        assert!(provisioner.create_device(&org, Some(UserId(1))).is_ok());
        assert!(provisioner.create_device(&org, Some(UserId(2))).is_err());
        assert!(provisioner.create_device(&org, None).is_err());
    }
}
