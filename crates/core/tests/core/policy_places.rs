//! Locations and tags against a naive reading of SPEC.md, on random actors
//! and targets: a location is visible as an org permission on an org in
//! scope (or to its owning user), the location list is exactly what the
//! single decision allows, setting a device's location is exactly a device
//! edit (plus a visible location of the device's hierarchy), and the tag
//! catalog rules (`tags.view` to see, `tags.manage` to change, 20 per org).

use arbor_core::policy::places::{LocationOwner, MAX_TAGS_PER_ORG};
use arbor_core::{
    Actor, DeviceAction, DeviceFacts, DeviceId, LocationId, Membership, OrgId, OrgPath, Permission,
    PermissionSet, Principal, RoleId, UserId, UserStatus,
};
use proptest::prelude::*;

/// Two hierarchies: 1 ─┬─ 2 ── 4, └─ 3; and 9 ── 10.
const ORGS: [&[i64]; 6] = [&[1], &[1, 2], &[1, 2, 4], &[1, 3], &[9], &[9, 10]];

const RELEVANT: [Permission; 12] = [
    Permission::OrganizationsSwitchToSuborgs,
    Permission::OrgLocationsView,
    Permission::OrgLocationsEdit,
    Permission::OwnLocationsView,
    Permission::OwnLocationsEdit,
    Permission::OrgDevicesView,
    Permission::OrgDevicesEdit,
    Permission::OwnDevicesView,
    Permission::OwnDevicesEdit,
    Permission::TagsView,
    Permission::TagsManage,
    Permission::UsersView,
];

fn path(i: usize) -> OrgPath {
    OrgPath::from_ids(ORGS[i].iter().copied().map(OrgId).collect()).unwrap()
}

fn set(mask: u16) -> PermissionSet {
    let mut set = PermissionSet::EMPTY;
    for (i, p) in RELEVANT.iter().enumerate() {
        if mask & (1 << i) != 0 {
            set = set.union(PermissionSet::from([*p]));
        }
    }
    set
}

fn actor(user: i64, home: usize, mask: u16) -> Actor {
    Principal {
        user: UserId(user),
        status: UserStatus::Active,
        session_revoked: false,
        memberships: vec![Membership {
            org: path(home),
            role: RoleId(1),
            permissions: set(mask),
            home: true,
        }],
    }
    .act_at_home()
    .unwrap()
}

/// The naive scope: home, plus its subtree with switch_to_suborgs.
fn in_scope(home: &OrgPath, switch: bool, org: &OrgPath) -> bool {
    org == home || (switch && org.ids().starts_with(home.ids()))
}

fn owners() -> Vec<LocationOwner> {
    let mut owners: Vec<LocationOwner> = (0..ORGS.len())
        .map(|i| LocationOwner::Org(path(i)))
        .collect();
    for user in [1, 2] {
        for hierarchy in [1, 9] {
            owners.push(LocationOwner::User {
                user: UserId(user),
                hierarchy: OrgId(hierarchy),
            });
        }
    }
    owners
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn location_decisions_follow_the_naive_reading(
        user in 1i64..=2, home in 0usize..ORGS.len(), mask in any::<u16>(),
        device_org in 0usize..ORGS.len(), device_owner in 0i64..=2,
    ) {
        let a = actor(user, home, mask);
        let p = set(mask);
        let home_path = path(home);
        let switch = p.contains(Permission::OrganizationsSwitchToSuborgs);
        let filter = a.list_locations();
        for owner in owners() {
            let naive = match &owner {
                LocationOwner::Org(org) => {
                    in_scope(&home_path, switch, org) && p.contains(Permission::OrgLocationsView)
                }
                LocationOwner::User { user: u, hierarchy } => {
                    *u == UserId(user) && *hierarchy == home_path.root_id()
                        && p.contains(Permission::OwnLocationsView)
                }
            };
            prop_assert_eq!(a.view_location(&owner).is_allowed(), naive, "{:?}", owner);
            // List equals get.
            prop_assert_eq!(filter.matches(&owner), naive, "{:?}", owner);
        }

        // A device's location: exactly a device edit, plus a visible location
        // of the device's hierarchy; and it decides nothing else.
        let org = path(device_org);
        let device = DeviceFacts {
            org: &org,
            owner: (device_owner > 0).then_some(UserId(device_owner)),
        };
        let before: Vec<_> = DeviceAction::ALL.iter().map(|k| a.decide_device(*k, &device)).collect();
        let edit = a.decide_device(DeviceAction::Edit, &device).is_allowed();
        prop_assert_eq!(a.set_device_location(DeviceId(1), &device, None).is_ok(), edit);
        prop_assert!(a.set_device_location(DeviceId(1), &device, Some((LocationId(1), None))).is_err());
        for owner in owners() {
            let allowed = a
                .set_device_location(DeviceId(1), &device, Some((LocationId(1), Some(&owner))))
                .is_ok();
            let naive = edit && a.view_location(&owner).is_allowed()
                && owner.hierarchy() == org.root_id();
            prop_assert_eq!(allowed, naive, "{:?}", owner);
        }
        let after: Vec<_> = DeviceAction::ALL.iter().map(|k| a.decide_device(*k, &device)).collect();
        prop_assert_eq!(before, after);
    }

    #[test]
    fn tag_decisions_follow_the_naive_reading(
        user in 1i64..=2, home in 0usize..ORGS.len(), mask in any::<u16>(),
        target in 0usize..ORGS.len(), existing in 0usize..=22, long in any::<bool>(),
    ) {
        let a = actor(user, home, mask);
        let p = set(mask);
        let home_path = path(home);
        let switch = p.contains(Permission::OrganizationsSwitchToSuborgs);
        let org = path(target);
        let visible = in_scope(&home_path, switch, &org) && p.contains(Permission::TagsView);
        prop_assert_eq!(a.view_tags(&org).is_allowed(), visible);
        let name = if long { "t".repeat(25) } else { "hall".to_owned() };
        let naive = visible && p.contains(Permission::TagsManage) && !long
            && existing < MAX_TAGS_PER_ORG;
        prop_assert_eq!(a.create_tag(&org, &name, existing).is_ok(), naive);
        prop_assert_eq!(
            a.delete_tag(arbor_core::TagId(1), &org).is_ok(),
            visible && p.contains(Permission::TagsManage)
        );
        // 404 unless the catalog is visible; 403 only where it is.
        if let Err(arbor_core::Refusal::Denied(d)) = a.delete_tag(arbor_core::TagId(1), &org) {
            prop_assert_eq!(d.outcome == arbor_core::Outcome::Hidden, !visible);
        }
    }
}
