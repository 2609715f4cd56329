//! Decisions on device templates and devices (SPEC.md sections 1, 4 rule 5
//! and 5).

use super::{
    CreateDevice, CreateDeviceTemplate, DeleteDevice, EditDevice, EnableDeviceTemplate, Refusal,
    RegenerateDeviceToken, TransferDevice, Verdict, check, verdict,
};
use crate::decision::{
    Actor, Decision, DeviceAction, DeviceFacts, DeviceFilter, Principal, Scope, UserStatus,
};
use crate::error::DomainError;
use crate::ids::{DeviceId, OrgId, UserId};
use crate::org::OrgPath;
use crate::permission::Permission;

/// Where a transferred device goes: the receiver's org, and the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferTarget {
    pub org: OrgPath,
    pub owner: UserId,
}

impl Actor {
    /// A device template (`templates.create` in the hierarchy's root org).
    pub fn create_device_template(&self, root: &OrgPath) -> Verdict<CreateDeviceTemplate> {
        verdict(
            self.decide_device_template(Permission::TemplatesCreate, root),
            root.id(),
        )
    }

    /// Enabling a template of hierarchy `template_hierarchy` for `org`. A
    /// template of another hierarchy is absent; the org must be visible; and
    /// the decision is taken at the org's parent (`templates.edit` there; for
    /// the root org, at the root), so a sub-org's Admin cannot enable
    /// templates for its own org.
    pub fn enable_device_template(
        &self,
        org: &OrgPath,
        template_hierarchy: OrgId,
    ) -> Verdict<EnableDeviceTemplate> {
        if template_hierarchy != org.root_id() {
            return Err(Refusal::Denied(self.absent()));
        }
        let seen = self.view_org(org);
        if !seen.is_allowed() {
            return Err(Refusal::Denied(seen));
        }
        let at = match org.parent_id() {
            Some(_) => OrgPath::from_ids(org.ids()[..org.depth() - 1].to_vec()),
            None => Ok(org.clone()),
        };
        let at = check(&seen, at)?;
        let decision = self.decide_org(Permission::TemplatesEdit, &at);
        let decision = Decision {
            target_org: Some(org.id()),
            ..decision
        };
        verdict(decision, org.id())
    }

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

    /// A device created over the API, whose owner the request may leave
    /// out: then the device is unclaimed if the actor may add devices to
    /// `org` (`org_devices.add`), else the actor provisions it for itself
    /// (`own_devices.provision`). A named owner is decided as given.
    pub fn create_device_for(
        &self,
        org: &OrgPath,
        requested_owner: Option<UserId>,
    ) -> Verdict<CreateDevice> {
        match requested_owner {
            Some(owner) => self.create_device(org, Some(owner)),
            None => match self.create_device(org, None) {
                Ok(allowed) => Ok(allowed),
                Err(denied) => self
                    .create_device(org, Some(self.user()))
                    .map_err(|_| denied),
            },
        }
    }

    /// Editing a device's name and metafields (rule 5 with `edit`:
    /// `org_devices.edit` in scope, or `own_devices.edit` for the owner).
    pub fn edit_device(&self, id: DeviceId, device: &DeviceFacts<'_>) -> Verdict<EditDevice> {
        verdict(self.decide_device(DeviceAction::Edit, device), id)
    }

    /// Deleting a device: `org_devices.delete` with the device's org in
    /// scope (owners have no `own_devices.delete`).
    pub fn delete_device(&self, id: DeviceId, device: &DeviceFacts<'_>) -> Verdict<DeleteDevice> {
        verdict(self.decide_device(DeviceAction::Delete, device), id)
    }

    /// Seeing a device's auth token: device view plus `auth_tokens.edit`
    /// (SPEC.md section 5). Hidden unless the device is visible.
    pub fn view_device_token(&self, device: &DeviceFacts<'_>) -> Decision {
        self.decide_device(DeviceAction::EditAuthToken, device)
    }

    /// Regenerating a device's auth token: as [`Actor::view_device_token`].
    pub fn regenerate_device_token(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
    ) -> Verdict<RegenerateDeviceToken> {
        verdict(self.view_device_token(device), id)
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
    use crate::decision::Outcome;
    use crate::permission::PermissionSet;
    use crate::policy::testing::{actor, path};

    #[test]
    fn templates_are_enabled_by_the_parent_within_the_hierarchy() {
        let child = path(&[1, 2]);
        let grandchild = path(&[1, 2, 3]);
        let child_admin = actor(&child, PermissionSet::all());
        // Its own org: decided at the root, outside its scope.
        let own = child_admin.enable_device_template(&child, OrgId(1));
        assert!(matches!(own, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
        assert!(
            child_admin
                .enable_device_template(&grandchild, OrgId(1))
                .is_ok()
        );
        // Another hierarchy's template.
        let other = child_admin.enable_device_template(&grandchild, OrgId(9));
        assert!(matches!(other, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
    }

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

    #[test]
    fn an_unnamed_owner_is_unclaimed_for_adders_and_the_provisioner_for_provisioners() {
        let org = path(&[1, 2]);
        let adder = actor(
            &org,
            PermissionSet::from([Permission::OrgDevicesAdd]).closed(),
        );
        let allowed = adder.create_device_for(&org, None).unwrap();
        assert_eq!(allowed.target().1, None);
        let provisioner = actor(
            &org,
            PermissionSet::from([Permission::OwnDevicesProvision]).closed(),
        );
        let allowed = provisioner.create_device_for(&org, None).unwrap();
        assert_eq!(allowed.target().1, Some(UserId(1)));
        assert!(
            provisioner
                .create_device_for(&org, Some(UserId(2)))
                .is_err()
        );
        let nobody = actor(&org, PermissionSet::EMPTY);
        let denied = nobody.create_device_for(&org, None);
        assert!(
            matches!(denied, Err(Refusal::Denied(d)) if d.permission == Some(Permission::OrgDevicesAdd))
        );
        // Outside the scope: hidden.
        let elsewhere = path(&[1, 3]);
        let hidden = adder.create_device_for(&elsewhere, None);
        assert!(matches!(hidden, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
    }

    fn facts(org: &OrgPath, owner: Option<u32>) -> DeviceFacts<'_> {
        DeviceFacts {
            org,
            owner: owner.map(|u| UserId(i64::from(u))),
        }
    }

    fn outcome<A: crate::policy::Action>(verdict: Verdict<A>) -> Outcome {
        match verdict {
            Ok(_) => Outcome::Allowed,
            Err(refusal) => refusal.decision().outcome,
        }
    }

    #[test]
    fn editing_needs_org_devices_edit_in_scope_or_own_devices_edit_as_owner() {
        let org = path(&[1, 2]);
        let staff = actor(
            &org,
            PermissionSet::from([Permission::OrgDevicesEdit]).closed(),
        );
        let owner = actor(
            &org,
            PermissionSet::from([Permission::OwnDevicesEdit]).closed(),
        );
        let viewer = actor(
            &org,
            PermissionSet::from([Permission::OrgDevicesView, Permission::OwnDevicesView]),
        );
        let id = DeviceId(7);
        let others = facts(&org, Some(2));
        let mine = facts(&org, Some(1));
        assert_eq!(outcome(staff.edit_device(id, &others)), Outcome::Allowed);
        assert_eq!(outcome(owner.edit_device(id, &mine)), Outcome::Allowed);
        assert_eq!(outcome(owner.edit_device(id, &others)), Outcome::Hidden);
        assert_eq!(outcome(viewer.edit_device(id, &others)), Outcome::Forbidden);
        assert_eq!(outcome(viewer.edit_device(id, &mine)), Outcome::Forbidden);
        let sibling = path(&[1, 3]);
        assert_eq!(
            outcome(staff.edit_device(id, &facts(&sibling, None))),
            Outcome::Hidden
        );
    }

    #[test]
    fn deleting_needs_org_devices_delete_and_owning_is_not_enough() {
        let org = path(&[1, 2]);
        let deleter = actor(
            &org,
            PermissionSet::from([Permission::OrgDevicesDelete]).closed(),
        );
        let owner = actor(
            &org,
            PermissionSet::all().difference(PermissionSet::from([
                Permission::OrgDevicesDelete,
                Permission::OrgDevicesView,
            ])),
        );
        let id = DeviceId(7);
        let mine = facts(&org, Some(1));
        assert_eq!(outcome(deleter.delete_device(id, &mine)), Outcome::Allowed);
        // The owner sees it (own_devices.view) but may not delete it.
        assert_eq!(outcome(owner.delete_device(id, &mine)), Outcome::Forbidden);
        let other_hierarchy = path(&[9]);
        assert_eq!(
            outcome(deleter.delete_device(id, &facts(&other_hierarchy, None))),
            Outcome::Hidden
        );
    }

    #[test]
    fn the_auth_token_needs_auth_tokens_edit_and_device_view() {
        let org = path(&[1, 2]);
        let id = DeviceId(7);
        let others = facts(&org, Some(2));
        let mine = facts(&org, Some(1));
        let holder = actor(
            &org,
            PermissionSet::from([Permission::AuthTokensEdit, Permission::OrgDevicesView]),
        );
        assert!(holder.view_device_token(&others).is_allowed());
        assert_eq!(
            outcome(holder.regenerate_device_token(id, &others)),
            Outcome::Allowed
        );
        let owner = actor(
            &org,
            PermissionSet::from([Permission::AuthTokensEdit, Permission::OwnDevicesView]),
        );
        assert!(owner.view_device_token(&mine).is_allowed());
        assert_eq!(owner.view_device_token(&others).outcome, Outcome::Hidden);
        let viewer = actor(&org, PermissionSet::from([Permission::OrgDevicesView]));
        let denied = viewer.view_device_token(&others);
        assert_eq!(denied.outcome, Outcome::Forbidden);
        assert_eq!(denied.permission, Some(Permission::AuthTokensEdit));
        // auth_tokens.edit alone shows nothing of a device one cannot see.
        let blind = actor(&org, PermissionSet::from([Permission::AuthTokensEdit]));
        assert_eq!(blind.view_device_token(&others).outcome, Outcome::Hidden);
        assert_eq!(
            outcome(blind.regenerate_device_token(id, &others)),
            Outcome::Hidden
        );
    }
}
