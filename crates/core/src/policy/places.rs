//! Decisions on locations and tags (SPEC.md sections 1 and 3), with every
//! rule on their content: lengths, coordinates, and how many tags an org,
//! a device or a user may have.
//!
//! A location never grants or limits access: no device, org or user decision
//! consults one, and setting a device's location is an edit of the device
//! (rule 5 with `edit`). Locations are owned by an org (`org_locations.*`
//! on an org in the actor's scope) or by a user (`own_locations.*`, for the
//! owner alone). Tags are entries of an org's catalog (`tags.view`,
//! `tags.manage` on that org); putting catalog tags on a device is a device
//! edit, on a user an edit of the member (`users.edit`, rule 6).
//!
//! The actions and the writes their proofs permit are declared here (not in
//! the table of the parent module), next to the decisions that make them.

use super::users::{MemberAct, TargetMembership};
use super::{Action, Permits, Refusal, Verdict, check, verdict};
use crate::decision::{Actor, Decision, DeviceAction, DeviceFacts, Outcome, Rule, Scope};
use crate::error::DomainError;
use crate::ids::{DeviceId, LocationId, OrgId, TagId, UserId};
use crate::org::OrgPath;
use crate::permission::Permission;
use crate::text::{self, limits};

/// At most this many tags in one org's catalog.
pub const MAX_TAGS_PER_ORG: usize = 20;
/// At most this many tags on one device, and on one user.
pub const MAX_TAGS_PER_OBJECT: usize = 5;

/// Who a location belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocationOwner {
    /// An org's location (`org_locations.*`).
    Org(OrgPath),
    /// A user's own location (`own_locations.*`), in one hierarchy.
    User { user: UserId, hierarchy: OrgId },
}

impl LocationOwner {
    /// The hierarchy the location belongs to.
    pub fn hierarchy(&self) -> OrgId {
        match self {
            Self::Org(org) => org.root_id(),
            Self::User { hierarchy, .. } => *hierarchy,
        }
    }
}

/// What an action on a location needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationAction {
    View,
    Edit,
    Delete,
    AssignUsers,
}

impl LocationAction {
    fn permission(self, owned: bool) -> Permission {
        use Permission as P;
        match (self, owned) {
            (Self::View, false) => P::OrgLocationsView,
            (Self::Edit, false) => P::OrgLocationsEdit,
            (Self::Delete, false) => P::OrgLocationsDelete,
            (Self::AssignUsers, false) => P::OrgLocationsAssignUsers,
            (Self::View, true) => P::OwnLocationsView,
            (Self::Edit, true) => P::OwnLocationsEdit,
            (Self::Delete, true) => P::OwnLocationsDelete,
            (Self::AssignUsers, true) => P::OwnLocationsAssignUsers,
        }
    }
}

/// A location's content, checked: name 1–48 characters, an address of one
/// line, latitude in [-90, 90] and longitude in [-180, 180] (both or neither).
#[derive(Clone, Debug, PartialEq)]
pub struct LocationFields {
    pub name: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl LocationFields {
    pub fn checked(
        name: &str,
        address: &str,
        lat: Option<f64>,
        lon: Option<f64>,
    ) -> Result<Self, DomainError> {
        let name = text::name("name", name, limits::LOCATION_NAME)?;
        let address = text::line("address", address, limits::LOCATION_ADDRESS)?;
        if let Some(lat) = lat
            && !(lat.is_finite() && (-90.0..=90.0).contains(&lat))
        {
            return Err(DomainError::invalid("lat", "must lie in [-90, 90]"));
        }
        if let Some(lon) = lon
            && !(lon.is_finite() && (-180.0..=180.0).contains(&lon))
        {
            return Err(DomainError::invalid("lon", "must lie in [-180, 180]"));
        }
        if lat.is_some() != lon.is_some() {
            return Err(DomainError::invalid(
                "lat",
                "latitude and longitude go together (give both or neither)",
            ));
        }
        Ok(Self {
            name,
            address,
            lat,
            lon,
        })
    }
}

/// Which locations a list shows: the org locations in `scope` (with
/// `org_locations.view`) and the actor's own (with `own_locations.view`),
/// in the actor's hierarchy. [`LocationFilter::matches`] is the same
/// predicate in memory, and agrees with [`Actor::view_location`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationFilter {
    pub hierarchy: OrgId,
    pub scope: Option<Scope>,
    pub owner: Option<UserId>,
}

impl LocationFilter {
    pub fn is_empty(&self) -> bool {
        self.scope.is_none() && self.owner.is_none()
    }

    pub fn matches(&self, owner: &LocationOwner) -> bool {
        match owner {
            LocationOwner::Org(org) => {
                org.root_id() == self.hierarchy
                    && self.scope.as_ref().is_some_and(|s| s.contains(org))
            }
            LocationOwner::User { user, hierarchy } => {
                *hierarchy == self.hierarchy && self.owner == Some(*user)
            }
        }
    }
}

/// One member a location is to be assigned to, with the orgs of their
/// memberships (absent users have none).
#[derive(Clone, Debug)]
pub struct Assignee<'a> {
    pub user: UserId,
    pub orgs: Vec<&'a OrgPath>,
}

/// Checks a request's tag names: each 1–24 characters, at most five, and
/// no name twice (ignoring case). The names come back trimmed, in order.
pub fn tag_names(names: &[String]) -> Result<Vec<String>, DomainError> {
    let mut checked: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = text::name("tags", name, limits::TAG_NAME)?;
        if checked.iter().any(|c| fold(c) == fold(&name)) {
            return Err(DomainError::invalid(
                "tags",
                format!("{name:?} is named twice"),
            ));
        }
        checked.push(name);
    }
    if checked.len() > MAX_TAGS_PER_OBJECT {
        return Err(DomainError::invalid(
            "tags",
            format!("at most {MAX_TAGS_PER_OBJECT} tags (has {})", checked.len()),
        ));
    }
    Ok(checked)
}

/// The catalog tags (`catalog`: id and name) that `names` name, ignoring
/// case, after [`tag_names`]'s checks. A name not in the catalog is refused:
/// catalog entries are made with `tags.manage` (`POST /api/v1/tags`).
pub fn resolve_tags(
    names: &[String],
    catalog: &[(TagId, String)],
) -> Result<Vec<TagId>, DomainError> {
    tag_names(names)?
        .iter()
        .map(|name| {
            catalog
                .iter()
                .find(|(_, c)| fold(c) == fold(name))
                .map(|(id, _)| *id)
                .ok_or_else(|| {
                    DomainError::invalid(
                        "tags",
                        format!("no tag named {name:?} in the organization's catalog"),
                    )
                })
        })
        .collect()
}

fn fold(name: &str) -> String {
    name.to_lowercase()
}

impl Actor {
    /// An action on a location: an org's location with the `org_locations`
    /// permission on an org in the actor's scope; a user's own location only
    /// for that user, with the `own_locations` permission. Without the view
    /// permission the location is hidden (404), with it a missing permission
    /// is a 403.
    pub fn decide_location(&self, action: LocationAction, owner: &LocationOwner) -> Decision {
        let p = self.permissions();
        match owner {
            LocationOwner::Org(org) => {
                if let Some(hidden) = self.hidden_unless_in_scope(org) {
                    return Decision {
                        permission: Some(action.permission(false)),
                        ..hidden
                    };
                }
                self.location_decision(action, false, org, p.contains(Permission::OrgLocationsView))
            }
            LocationOwner::User { user, hierarchy } => {
                let home = self.home().clone();
                if *hierarchy != self.hierarchy() {
                    return self.decision(Outcome::Hidden, Rule::OtherHierarchy, &home, None);
                }
                if *user != self.user() {
                    return self.decision(
                        Outcome::Hidden,
                        Rule::NotVisible,
                        &home,
                        Some(action.permission(true)),
                    );
                }
                self.location_decision(
                    action,
                    true,
                    &home,
                    p.contains(Permission::OwnLocationsView),
                )
            }
        }
    }

    fn location_decision(
        &self,
        action: LocationAction,
        owned: bool,
        org: &OrgPath,
        visible: bool,
    ) -> Decision {
        let permission = action.permission(owned);
        if !visible {
            self.decision(Outcome::Hidden, Rule::NotVisible, org, Some(permission))
        } else if self.permissions().contains(permission) {
            self.decision(Outcome::Allowed, Rule::OrgPermission, org, Some(permission))
        } else {
            self.decision(
                Outcome::Forbidden,
                Rule::MissingPermission,
                org,
                Some(permission),
            )
        }
    }

    /// Seeing a location.
    pub fn view_location(&self, owner: &LocationOwner) -> Decision {
        self.decide_location(LocationAction::View, owner)
    }

    /// The locations a list shows (exactly those [`Actor::view_location`]
    /// allows, narrowed to the context org's subtree when the actor switched,
    /// rule 9).
    pub fn list_locations(&self) -> LocationFilter {
        let p = self.permissions();
        LocationFilter {
            hierarchy: self.hierarchy(),
            scope: p
                .contains(Permission::OrgLocationsView)
                .then(|| self.list_scope()),
            owner: p
                .contains(Permission::OwnLocationsView)
                .then_some(self.user()),
        }
    }

    /// A new location: an org's (`org_locations.create` on it) or, with no
    /// org, the actor's own (`own_locations.create`). The fields were checked
    /// with [`LocationFields::checked`]; `assignees` are checked as for
    /// [`Actor::assign_location_users`] (`assign_users` too when not empty).
    pub fn create_location(
        &self,
        org: Option<&OrgPath>,
        assignees: &[Assignee<'_>],
    ) -> Verdict<CreateLocation> {
        let (decision, owner) = match org {
            Some(org) => (
                self.decide_org(Permission::OrgLocationsCreate, org),
                LocationOwner::Org(org.clone()),
            ),
            None => (
                self.decide_org(Permission::OwnLocationsCreate, self.home()),
                LocationOwner::User {
                    user: self.user(),
                    hierarchy: self.hierarchy(),
                },
            ),
        };
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        if !assignees.is_empty() {
            let owned = org.is_none();
            let assign = LocationAction::AssignUsers.permission(owned);
            if !self.permissions().contains(assign) {
                let target = org.unwrap_or(self.home());
                return Err(Refusal::Denied(self.decision(
                    Outcome::Forbidden,
                    Rule::MissingPermission,
                    target,
                    Some(assign),
                )));
            }
            check(&decision, self.check_assignees(assignees))?;
        }
        verdict(decision, owner)
    }

    /// Editing a location's fields.
    pub fn edit_location(&self, id: LocationId, owner: &LocationOwner) -> Verdict<EditLocation> {
        verdict(self.decide_location(LocationAction::Edit, owner), id)
    }

    /// Deleting a location; the devices there lose their location.
    pub fn delete_location(
        &self,
        id: LocationId,
        owner: &LocationOwner,
    ) -> Verdict<DeleteLocation> {
        verdict(self.decide_location(LocationAction::Delete, owner), id)
    }

    /// Replacing a location's assigned users (`assign_users`): each must be a
    /// member within the actor's scope (anyone else answers 404 "user").
    pub fn assign_location_users(
        &self,
        id: LocationId,
        owner: &LocationOwner,
        assignees: &[Assignee<'_>],
    ) -> Verdict<AssignLocationUsers> {
        let decision = self.decide_location(LocationAction::AssignUsers, owner);
        let allowed = verdict(decision, id)?;
        check(&decision, self.check_assignees(assignees))?;
        Ok(allowed)
    }

    fn check_assignees(&self, assignees: &[Assignee<'_>]) -> Result<(), DomainError> {
        for assignee in assignees {
            let reachable = assignee
                .orgs
                .iter()
                .any(|org| self.home().same_hierarchy(org) && self.scope().contains(org));
            if !reachable {
                return Err(DomainError::NotFound { what: "user" });
            }
        }
        Ok(())
    }

    /// Setting (or, with `None`, clearing) a device's location: a device edit
    /// (rule 5: `org_devices.edit` in scope, or `own_devices.edit` for the
    /// owner). The location (its owner; `None` if it does not exist) must be
    /// visible to the actor and belong to the device's hierarchy; otherwise
    /// it answers as absent. The location only describes the device: it
    /// changes no one's access.
    pub fn set_device_location(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
        location: Option<(LocationId, Option<&LocationOwner>)>,
    ) -> Verdict<SetDeviceLocation> {
        let decision = self.decide_device(DeviceAction::Edit, device);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        if let Some((_, owner)) = location {
            let seen = owner.is_some_and(|owner| {
                self.view_location(owner).is_allowed() && owner.hierarchy() == device.org.root_id()
            });
            if !seen {
                return Err(Refusal::Failed {
                    decision,
                    error: DomainError::NotFound { what: "location" },
                });
            }
        }
        verdict(decision, (id, location.map(|(l, _)| l)))
    }

    /// A tag decision on org `org`'s catalog: the org in scope, and
    /// `tags.view` to see the catalog at all (else hidden); `permission`
    /// (`tags.view` or `tags.manage`) decides.
    pub fn decide_tags(&self, permission: Permission, org: &OrgPath) -> Decision {
        if let Some(hidden) = self.hidden_unless_in_scope(org) {
            return Decision {
                permission: Some(permission),
                ..hidden
            };
        }
        if !self.permissions().contains(Permission::TagsView) {
            return self.decision(Outcome::Hidden, Rule::NotVisible, org, Some(permission));
        }
        self.decide_org(permission, org)
    }

    /// Reading an org's tag catalog.
    pub fn view_tags(&self, org: &OrgPath) -> Decision {
        self.decide_tags(Permission::TagsView, org)
    }

    /// A new tag in `org`'s catalog (`tags.manage`), which holds `existing`
    /// tags: a checked name, and at most twenty per org (409 beyond).
    pub fn create_tag(&self, org: &OrgPath, name: &str, existing: usize) -> Verdict<CreateTag> {
        let decision = self.decide_tags(Permission::TagsManage, org);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        let name = check(&decision, text::name("name", name, limits::TAG_NAME))?;
        if existing >= MAX_TAGS_PER_ORG {
            return Err(Refusal::Failed {
                decision,
                error: DomainError::conflict(format!(
                    "an organization has at most {MAX_TAGS_PER_ORG} tags"
                )),
            });
        }
        verdict(decision, (org.id(), name))
    }

    /// Deleting a tag of `org`'s catalog (`tags.manage`); it comes off every
    /// device and user.
    pub fn delete_tag(&self, id: TagId, org: &OrgPath) -> Verdict<DeleteTag> {
        verdict(self.decide_tags(Permission::TagsManage, org), id)
    }

    /// Replacing a device's tags: a device edit (rule 5, like its name and
    /// location); `tags.manage` is not needed, since only tags already in the
    /// catalog of the device's org can be put on it ([`resolve_tags`]).
    pub fn set_device_tags(
        &self,
        id: DeviceId,
        device: &DeviceFacts<'_>,
    ) -> Verdict<SetDeviceTags> {
        verdict(self.decide_device(DeviceAction::Edit, device), id)
    }

    /// Replacing a member's tags: an edit of the member (`users.edit` on the
    /// membership acted on, rule 6), with tags of that membership's org.
    pub fn set_user_tags(
        &self,
        user: UserId,
        memberships: &[TargetMembership<'_>],
    ) -> Verdict<SetUserTags> {
        self.manage_member::<SetUserTags>(user, memberships)
    }
}

macro_rules! place_actions {
    ($($(#[$doc:meta])* $name:ident => $target:ty: [$($write:ident),*];)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Action for $name {
                type Target = $target;
            }
            $( impl Permits<writes::$write> for $name {} )*
        )*
    };
}

/// Markers for the store's location and tag mutations.
pub mod writes {
    macro_rules! markers {
        ($($name:ident),* $(,)?) => { $( #[derive(Debug)] pub struct $name; )* };
    }
    markers!(
        InsertLocation,
        UpdateLocation,
        SetLocationUsers,
        DeleteLocation,
        SetDeviceLocation,
        InsertTag,
        DeleteTag,
        SetDeviceTags,
        SetUserTags,
    );
}

place_actions! {
    /// A location with its owner (and assigned users).
    CreateLocation => LocationOwner: [InsertLocation, SetLocationUsers];
    /// A location's fields.
    EditLocation => LocationId: [UpdateLocation];
    /// A location's assigned users.
    AssignLocationUsers => LocationId: [SetLocationUsers];
    /// Deleting a location, clearing it from its devices.
    DeleteLocation => LocationId: [DeleteLocation];
    /// A device's location (or none).
    SetDeviceLocation => (DeviceId, Option<LocationId>): [SetDeviceLocation];
    /// A tag in an org's catalog, under a checked name.
    CreateTag => (OrgId, String): [InsertTag];
    /// Deleting a tag of a catalog.
    DeleteTag => TagId: [DeleteTag];
    /// A device's tags.
    SetDeviceTags => DeviceId: [SetDeviceTags];
    /// A member's tags.
    SetUserTags => super::users::TargetMember: [SetUserTags];
}

impl MemberAct for SetUserTags {
    const PERMISSION: Permission = Permission::UsersEdit;
    const USER_WIDE: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::PermissionSet;
    use crate::policy::testing::{actor, path};

    fn set(permissions: &[Permission]) -> PermissionSet {
        let mut set = PermissionSet::EMPTY;
        for p in permissions {
            set = set.union(PermissionSet::from([*p]));
        }
        set.closed()
    }

    #[test]
    fn location_fields_are_bounded() {
        assert!(LocationFields::checked("Plant", "", Some(90.0), Some(-180.0)).is_ok());
        assert!(LocationFields::checked("Plant", "Main St 1", None, None).is_ok());
        assert!(LocationFields::checked(&"x".repeat(48), "", None, None).is_ok());
        assert!(LocationFields::checked(&"x".repeat(49), "", None, None).is_err());
        assert!(LocationFields::checked("  ", "", None, None).is_err());
        assert!(LocationFields::checked("P", &"a".repeat(257), None, None).is_err());
        assert!(LocationFields::checked("P", "a\nb", None, None).is_err());
        assert!(LocationFields::checked("P", "", Some(90.5), Some(0.0)).is_err());
        assert!(LocationFields::checked("P", "", Some(0.0), Some(180.1)).is_err());
        assert!(LocationFields::checked("P", "", Some(f64::NAN), Some(0.0)).is_err());
        assert!(LocationFields::checked("P", "", Some(1.0), None).is_err());
    }

    #[test]
    fn org_locations_follow_scope_and_own_locations_their_owner() {
        let child = path(&[1, 2]);
        let sibling = path(&[1, 3]);
        let viewer = actor(&child, set(&[Permission::OrgLocationsView]));
        let at_child = LocationOwner::Org(child.clone());
        let at_sibling = LocationOwner::Org(sibling.clone());
        assert!(viewer.view_location(&at_child).is_allowed());
        assert_eq!(viewer.view_location(&at_sibling).outcome, Outcome::Hidden);
        // Visible, not editable: 403.
        assert_eq!(
            viewer
                .decide_location(LocationAction::Edit, &at_child)
                .outcome,
            Outcome::Forbidden
        );
        // Without the view permission the location is hidden.
        let blind = actor(&child, set(&[Permission::OwnLocationsView]));
        assert_eq!(blind.view_location(&at_child).outcome, Outcome::Hidden);
        let mine = LocationOwner::User {
            user: UserId(1),
            hierarchy: OrgId(1),
        };
        let theirs = LocationOwner::User {
            user: UserId(2),
            hierarchy: OrgId(1),
        };
        assert!(blind.view_location(&mine).is_allowed());
        assert_eq!(blind.view_location(&theirs).outcome, Outcome::Hidden);
        assert_eq!(viewer.view_location(&mine).outcome, Outcome::Hidden);
        // The list is the same predicate.
        for who in [&viewer, &blind] {
            let filter = who.list_locations();
            for owner in [&at_child, &at_sibling, &mine, &theirs] {
                assert_eq!(filter.matches(owner), who.view_location(owner).is_allowed());
            }
        }
    }

    #[test]
    fn creating_a_location_needs_create_and_assignees_in_scope() {
        let child = path(&[1, 2]);
        let grandchild = path(&[1, 2, 4]);
        let sibling = path(&[1, 3]);
        let creator = actor(
            &child,
            set(&[
                Permission::OrgLocationsCreate,
                Permission::OwnLocationsCreate,
                Permission::OrganizationsSwitchToSuborgs,
            ]),
        );
        assert!(creator.create_location(Some(&child), &[]).is_ok());
        assert!(creator.create_location(Some(&grandchild), &[]).is_ok());
        let own = creator.create_location(None, &[]).unwrap();
        assert!(matches!(
            own.target(),
            LocationOwner::User {
                user: UserId(1),
                ..
            }
        ));
        let hidden = creator.create_location(Some(&sibling), &[]);
        assert!(matches!(hidden, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
        // Assigning needs assign_users.
        let member = [Assignee {
            user: UserId(5),
            orgs: vec![&grandchild],
        }];
        assert!(matches!(
            creator.create_location(Some(&child), &member),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Forbidden
        ));
        let assigner = actor(
            &child,
            set(&[
                Permission::OrgLocationsCreate,
                Permission::OrgLocationsAssignUsers,
            ]),
        );
        assert!(
            assigner
                .create_location(
                    Some(&child),
                    &[Assignee {
                        user: UserId(5),
                        orgs: vec![&child],
                    }]
                )
                .is_ok()
        );
        let outsider = [Assignee {
            user: UserId(6),
            orgs: vec![&sibling],
        }];
        assert!(matches!(
            assigner.create_location(Some(&child), &outsider),
            Err(Refusal::Failed {
                error: DomainError::NotFound { what: "user" },
                ..
            })
        ));
    }

    #[test]
    fn a_device_location_is_a_device_edit_with_a_visible_location() {
        let child = path(&[1, 2]);
        let editor = actor(
            &child,
            set(&[Permission::OrgDevicesEdit, Permission::OrgLocationsView]),
        );
        let device = DeviceFacts {
            org: &child,
            owner: None,
        };
        let here = LocationOwner::Org(child.clone());
        let there = LocationOwner::Org(path(&[1, 3]));
        let elsewhere = LocationOwner::Org(path(&[9]));
        let id = DeviceId(7);
        assert!(
            editor
                .set_device_location(id, &device, Some((LocationId(1), Some(&here))))
                .is_ok()
        );
        assert!(editor.set_device_location(id, &device, None).is_ok());
        for hidden in [Some(&there), Some(&elsewhere), None] {
            assert!(matches!(
                editor.set_device_location(id, &device, Some((LocationId(2), hidden))),
                Err(Refusal::Failed {
                    error: DomainError::NotFound { what: "location" },
                    ..
                })
            ));
        }
        // Only viewing the device: 403; not seeing it: 404.
        let viewer = actor(&child, set(&[Permission::OrgDevicesView]));
        assert!(matches!(
            viewer.set_device_location(id, &device, None),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Forbidden
        ));
        let stranger = actor(&path(&[1, 3]), PermissionSet::all());
        assert!(matches!(
            stranger.set_device_location(id, &device, None),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden
        ));
        // The owner edits with own_devices.edit.
        let owner = actor(&child, set(&[Permission::OwnDevicesEdit]));
        let owned = DeviceFacts {
            org: &child,
            owner: Some(UserId(1)),
        };
        assert!(owner.set_device_location(id, &owned, None).is_ok());
    }

    #[test]
    fn a_location_never_changes_a_device_decision() {
        // The device decision takes no location at all: the same facts give
        // the same answers whatever the device's location is.
        let child = path(&[1, 2]);
        let device = DeviceFacts {
            org: &child,
            owner: Some(UserId(1)),
        };
        for permissions in [
            PermissionSet::EMPTY,
            set(&[Permission::OwnDevicesView]),
            set(&[Permission::OrgLocationsView, Permission::OwnLocationsView]),
            PermissionSet::all(),
        ] {
            let a = actor(&child, permissions);
            for action in DeviceAction::ALL {
                let before = a.decide_device(action, &device);
                let _ = a.set_device_location(DeviceId(1), &device, None);
                assert_eq!(a.decide_device(action, &device), before);
            }
        }
    }

    #[test]
    fn tag_catalogs_are_bounded_and_need_manage() {
        let child = path(&[1, 2]);
        let manager = actor(&child, set(&[Permission::TagsManage]));
        assert!(manager.create_tag(&child, "hall", 0).is_ok());
        assert!(manager.create_tag(&child, "hall", 19).is_ok());
        assert!(matches!(
            manager.create_tag(&child, "hall", 20),
            Err(Refusal::Failed {
                error: DomainError::Conflict { .. },
                ..
            })
        ));
        assert!(matches!(
            manager.create_tag(&child, &"t".repeat(25), 0),
            Err(Refusal::Failed {
                error: DomainError::Invalid { .. },
                ..
            })
        ));
        assert!(manager.create_tag(&child, &"t".repeat(24), 0).is_ok());
        let viewer = actor(&child, set(&[Permission::TagsView]));
        assert!(viewer.view_tags(&child).is_allowed());
        assert!(matches!(
            viewer.create_tag(&child, "hall", 0),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Forbidden
        ));
        let blind = actor(&child, PermissionSet::EMPTY);
        assert_eq!(blind.view_tags(&child).outcome, Outcome::Hidden);
        assert_eq!(manager.view_tags(&path(&[1, 3])).outcome, Outcome::Hidden);
        assert!(matches!(
            manager.delete_tag(TagId(1), &path(&[1, 3])),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden
        ));
    }

    #[test]
    fn an_object_carries_at_most_five_known_tags() {
        let names = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
        assert_eq!(tag_names(&names(5)).unwrap().len(), 5);
        assert!(tag_names(&names(6)).is_err());
        assert!(tag_names(&["a".into(), "A".into()]).is_err());
        assert!(tag_names(&["".into()]).is_err());
        let catalog = vec![(TagId(1), "Hall".to_owned()), (TagId(2), "roof".to_owned())];
        assert_eq!(
            resolve_tags(&["hall".into(), "ROOF".into()], &catalog).unwrap(),
            vec![TagId(1), TagId(2)]
        );
        assert!(resolve_tags(&["cellar".into()], &catalog).is_err());
        assert!(resolve_tags(&[], &catalog).unwrap().is_empty());
    }

    #[test]
    fn device_tags_are_a_device_edit_and_user_tags_a_member_edit() {
        let child = path(&[1, 2]);
        let device = DeviceFacts {
            org: &child,
            owner: None,
        };
        let editor = actor(&child, set(&[Permission::OrgDevicesEdit]));
        assert!(editor.set_device_tags(DeviceId(1), &device).is_ok());
        let viewer = actor(
            &child,
            set(&[Permission::OrgDevicesView, Permission::TagsManage]),
        );
        assert!(viewer.set_device_tags(DeviceId(1), &device).is_err());
        let member = [TargetMembership {
            org: &child,
            role: crate::RoleId(3),
            permissions: PermissionSet::EMPTY,
            home: true,
        }];
        let users = actor(&child, set(&[Permission::UsersEdit]));
        assert!(users.set_user_tags(UserId(9), &member).is_ok());
        let none = actor(&child, set(&[Permission::UsersView]));
        assert!(none.set_user_tags(UserId(9), &member).is_err());
    }
}
