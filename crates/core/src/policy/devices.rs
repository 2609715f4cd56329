//! Decisions on devices (SPEC.md sections 1, 4 rule 5 and 5); device
//! templates are decided in `templates.rs`.

use super::{
    ControlDevice, CreateDevice, DeleteDevice, DeleteDeviceData, EditDevice, Refusal,
    RegenerateDeviceToken, TransferDevice, Verdict, check, verdict,
};
use crate::decision::{
    Actor, Decision, DeviceAction, DeviceFacts, DeviceFilter, Principal, Scope, UserStatus,
    who_can_device,
};
use crate::error::DomainError;
use crate::ids::{DeviceId, UserId};
use crate::org::OrgPath;
use crate::permission::Permission;
use std::collections::BTreeSet;

/// Where a transferred device goes: the receiver's org, and the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferTarget {
    pub org: OrgPath,
    pub owner: UserId,
}

/// Who gains and who loses `view` and `control` on a device when it moves
/// (user ids, ascending): who-can before and after, as the asker's who-can
/// shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccessChange {
    pub gain: ActionUsers,
    pub lose: ActionUsers,
}

/// User ids per device action.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ActionUsers {
    pub view: Vec<UserId>,
    pub control: Vec<UserId>,
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

    /// Writing a value to one of a device's datastreams (rule 5 with
    /// `control`: `org_devices.control` in scope, or `own_devices.control`
    /// for the owner).
    pub fn control_device(&self, id: DeviceId, device: &DeviceFacts<'_>) -> Verdict<ControlDevice> {
        verdict(self.decide_device(DeviceAction::Control, device), id)
    }

    /// Deleting a device's values, history and events (rule 5 with
    /// `delete_data`); the device itself stays.
    pub fn delete_device_data(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
    ) -> Verdict<DeleteDeviceData> {
        verdict(self.decide_device(DeviceAction::DeleteData, device), id)
    }

    /// Reading a device's data by `action`: `View` for its values and
    /// history, `ViewTimeline`, `DownloadReports` or `ServiceTab` (rule 5;
    /// hidden unless the device is visible).
    pub fn read_device_data(&self, action: DeviceAction, device: &DeviceFacts<'_>) -> Decision {
        self.decide_device(action, device)
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

    /// Transferring `device` into an org (SPEC.md section 5): the device
    /// action `transfer`, an org in the actor's scope and hierarchy (`None`:
    /// it does not exist; both answer 404 "organization"), and an owner who
    /// is an active member of that org — `named`, or else the first of
    /// `admins` (the org's active Admins, earliest membership first).
    /// `named` is `Some` when the request names an owner (`Some(None)`: no
    /// such user). Moving
    /// nothing (same org, same owner) is refused like a transfer to the
    /// same owner.
    pub fn transfer_device_to_org(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
        org: Option<&OrgPath>,
        named: Option<Option<&Principal>>,
        admins: &[UserId],
    ) -> Verdict<TransferDevice> {
        let decision = self.decide_device(DeviceAction::Transfer, device);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        let org = org.filter(|o| self.home().same_hierarchy(o) && self.scope().contains(o));
        let org = check(
            &decision,
            org.ok_or(DomainError::NotFound {
                what: "organization",
            }),
        )?;
        let owner = match named {
            Some(principal) => {
                // A named owner must be a member of the org; anyone else
                // answers like an unknown user.
                let member = principal.filter(|p| p.memberships.iter().any(|m| m.org == *org));
                let member = check(
                    &decision,
                    member.ok_or(DomainError::NotFound { what: "user" }),
                )?;
                if member.status != UserStatus::Active {
                    return Err(Refusal::Failed {
                        decision,
                        error: DomainError::conflict("the receiving user is not active"),
                    });
                }
                member.user
            }
            None => *check(
                &decision,
                admins.first().ok_or_else(|| {
                    DomainError::conflict("the organization has no active Admin to own the device")
                }),
            )?,
        };
        if device.org == org && device.owner == Some(owner) {
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
                    org: org.clone(),
                    owner,
                },
            ),
        )
    }

    /// Who gains and who loses `view` and `control` when a device moves from
    /// `before` to `after`: [`who_can_device`] on both, limited to what the
    /// actor's who-can shows ([`Actor::visible_grants`]). `principals` must
    /// hold everyone who-can would consider for either place (the members of
    /// both orgs and their ancestors, and both owners).
    pub fn transfer_access_change(
        &self,
        before: &DeviceFacts<'_>,
        after: &DeviceFacts<'_>,
        principals: &[Principal],
    ) -> AccessChange {
        let users = |action: DeviceAction, device: &DeviceFacts<'_>| -> BTreeSet<UserId> {
            self.visible_grants(who_can_device(action, device, principals), principals)
                .into_iter()
                .map(|g| g.user)
                .collect()
        };
        let mut change = AccessChange::default();
        for (action, gain, lose) in [
            (
                DeviceAction::View,
                &mut change.gain.view,
                &mut change.lose.view,
            ),
            (
                DeviceAction::Control,
                &mut change.gain.control,
                &mut change.lose.control,
            ),
        ] {
            let (was, will) = (users(action, before), users(action, after));
            *gain = will.difference(&was).copied().collect();
            *lose = was.difference(&will).copied().collect();
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Outcome;
    use crate::permission::PermissionSet;
    use crate::policy::testing::{actor, path};

    fn member(user: i64, org: &OrgPath, permissions: PermissionSet) -> Principal {
        Principal {
            user: UserId(user),
            status: UserStatus::Active,
            session_revoked: false,
            memberships: vec![crate::decision::Membership {
                org: org.clone(),
                role: crate::ids::RoleId(user),
                permissions,
                home: true,
            }],
        }
    }

    fn transfer_set() -> PermissionSet {
        PermissionSet::from([Permission::OrgDevicesView, Permission::TransfersDevices]).closed()
    }

    #[test]
    fn a_device_goes_to_the_named_member_or_the_earliest_admin_of_the_org() {
        let root = path(&[1]);
        let child = path(&[1, 2]);
        let admin = actor(&root, PermissionSet::all());
        let device = DeviceFacts {
            org: &root,
            owner: Some(UserId(1)),
        };
        let moved = admin
            .transfer_device_to_org(
                DeviceId(7),
                &device,
                Some(&child),
                None,
                &[UserId(5), UserId(6)],
            )
            .unwrap();
        assert_eq!(
            moved.target().1,
            TransferTarget {
                org: child.clone(),
                owner: UserId(5)
            }
        );
        let named = member(6, &child, PermissionSet::EMPTY);
        let moved = admin
            .transfer_device_to_org(
                DeviceId(7),
                &device,
                Some(&child),
                Some(Some(&named)),
                &[UserId(5)],
            )
            .unwrap();
        assert_eq!(moved.target().1.owner, UserId(6));
        // A named user who is no member of the org looks unknown.
        let outsider = member(8, &root, PermissionSet::EMPTY);
        for named in [Some(&outsider), None] {
            let refused = admin.transfer_device_to_org(
                DeviceId(7),
                &device,
                Some(&child),
                Some(named),
                &[UserId(5)],
            );
            assert!(matches!(
                refused,
                Err(Refusal::Failed {
                    error: DomainError::NotFound { what: "user" },
                    ..
                })
            ));
        }
        let mut suspended = member(6, &child, PermissionSet::EMPTY);
        suspended.status = UserStatus::Suspended;
        let refused = admin.transfer_device_to_org(
            DeviceId(7),
            &device,
            Some(&child),
            Some(Some(&suspended)),
            &[],
        );
        assert!(matches!(
            refused,
            Err(Refusal::Failed {
                error: DomainError::Conflict { .. },
                ..
            })
        ));
        // No Admin to default to.
        let refused = admin.transfer_device_to_org(DeviceId(7), &device, Some(&child), None, &[]);
        assert!(matches!(
            refused,
            Err(Refusal::Failed {
                error: DomainError::Conflict { .. },
                ..
            })
        ));
        // Nothing would change.
        let refused =
            admin.transfer_device_to_org(DeviceId(7), &device, Some(&root), None, &[UserId(1)]);
        assert!(matches!(
            refused,
            Err(Refusal::Failed {
                error: DomainError::Invalid { .. },
                ..
            })
        ));
    }

    #[test]
    fn an_org_outside_the_scope_or_hierarchy_is_not_found() {
        let child = path(&[1, 2]);
        let sibling = path(&[1, 3]);
        let other = path(&[9]);
        let child_admin = actor(&child, PermissionSet::all());
        let device = DeviceFacts {
            org: &child,
            owner: None,
        };
        for org in [Some(&sibling), Some(&other), Some(&path(&[1])), None] {
            let refused =
                child_admin.transfer_device_to_org(DeviceId(7), &device, org, None, &[UserId(5)]);
            assert!(
                matches!(
                    refused,
                    Err(Refusal::Failed {
                        error: DomainError::NotFound {
                            what: "organization"
                        },
                        ..
                    })
                ),
                "{org:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn an_org_transfer_needs_transfers_devices_and_a_visible_device() {
        let child = path(&[1, 2]);
        let sibling = path(&[1, 3]);
        let viewer = actor(
            &child,
            PermissionSet::from([Permission::OrgDevicesView]).closed(),
        );
        let device = DeviceFacts {
            org: &child,
            owner: None,
        };
        let refused =
            viewer.transfer_device_to_org(DeviceId(7), &device, Some(&child), None, &[UserId(5)]);
        assert!(matches!(refused, Err(Refusal::Denied(d)) if d.outcome == Outcome::Forbidden));
        let transferer = actor(&child, transfer_set());
        let hidden = DeviceFacts {
            org: &sibling,
            owner: None,
        };
        let refused = transferer.transfer_device_to_org(
            DeviceId(7),
            &hidden,
            Some(&child),
            None,
            &[UserId(5)],
        );
        assert!(matches!(refused, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
        assert!(
            transferer
                .transfer_device_to_org(DeviceId(7), &device, Some(&child), None, &[UserId(5)])
                .is_ok()
        );
    }

    #[test]
    fn the_access_change_is_who_can_after_minus_who_can_before() {
        let root = path(&[1]);
        let a = path(&[1, 2]);
        let b = path(&[1, 3]);
        let root_admin = actor(&root, PermissionSet::all());
        let view = PermissionSet::from([Permission::OrgDevicesView]).closed();
        let own = PermissionSet::from([Permission::OwnDevicesControl]).closed();
        let principals = vec![
            member(1, &root, PermissionSet::all()),
            member(2, &a, view),
            member(3, &a, own),
            member(
                4,
                &b,
                PermissionSet::from([Permission::OrgDevicesControl]).closed(),
            ),
            member(5, &b, own),
        ];
        let before = DeviceFacts {
            org: &a,
            owner: Some(UserId(3)),
        };
        let after = DeviceFacts {
            org: &b,
            owner: Some(UserId(5)),
        };
        let change = root_admin.transfer_access_change(&before, &after, &principals);
        let ids = |v: &[i64]| v.iter().copied().map(UserId).collect::<Vec<_>>();
        assert_eq!(change.gain.view, ids(&[4, 5]));
        assert_eq!(change.gain.control, ids(&[4, 5]));
        assert_eq!(change.lose.view, ids(&[2, 3]));
        assert_eq!(change.lose.control, ids(&[3]));
        // An asker in org a sees only grants through memberships in its scope.
        let asker = actor(&a, PermissionSet::all());
        let change = asker.transfer_access_change(&before, &after, &principals);
        assert!(change.gain.view.is_empty());
        assert_eq!(change.lose.view, ids(&[2, 3]));
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
