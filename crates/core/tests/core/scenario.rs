//! SPEC.md section 9, the acceptance scenario of seed 001, as a readable test.

use crate::world::{ADMIN, STAFF, USER, World};
use arbor_core::{DeviceAction, Permission, Rule, who_can_device};

/// Heat Co with Admin A; Muller Boiler Group with Staff R and W and User U;
/// United Heaters Inc. with one sub-org per customer (M, H).
fn heat_co() -> World {
    let mut w = World::new();
    w.root("Heat Co")
        .member("A", "Heat Co", ADMIN)
        .device("Demo Unit", "Heat Co", Some("A"))
        .suborg("Heat Co", "Muller Boiler Group")
        .member("R", "Muller Boiler Group", STAFF)
        .member("W", "Muller Boiler Group", STAFF)
        .member("U", "Muller Boiler Group", USER)
        .set_permissions(
            "Muller Boiler Group",
            USER,
            [Permission::OwnDevicesView, Permission::OwnDevicesControl],
        )
        .device("Boiler", "Muller Boiler Group", Some("R"))
        .device("Thermostat W", "Muller Boiler Group", Some("W"))
        .device("Garage Heater", "Muller Boiler Group", Some("R"))
        .transfer("Garage Heater", "U")
        .suborg("Heat Co", "United Heaters Inc.")
        .suborg("United Heaters Inc.", "M's home")
        .member("M", "M's home", ADMIN)
        .device("Pool Heater", "M's home", Some("M"))
        .suborg("United Heaters Inc.", "H's home")
        .member("H", "H's home", ADMIN)
        .device("Thermostat H", "H's home", Some("H"));
    w
}

fn visible_devices(w: &World, user: &str) -> Vec<String> {
    let actor = w.principal(user).act_at_home().unwrap();
    w.device_names()
        .into_iter()
        .filter(|d| {
            actor
                .decide_device(DeviceAction::View, &w.device_facts(d))
                .is_allowed()
        })
        .map(String::from)
        .collect()
}

fn may_control(w: &World, user: &str, device: &str) -> bool {
    let actor = w.principal(user).act_at_home().unwrap();
    actor
        .decide_device(DeviceAction::Control, &w.device_facts(device))
        .is_allowed()
}

#[test]
fn staff_of_muller_boiler_group_see_and_control_each_others_devices() {
    let w = heat_co();
    for user in ["R", "W"] {
        assert_eq!(
            visible_devices(&w, user),
            ["Boiler", "Garage Heater", "Thermostat W"]
        );
        assert!(may_control(&w, user, "Boiler"));
        assert!(may_control(&w, user, "Thermostat W"));
    }
}

#[test]
fn a_user_with_own_device_permissions_sees_only_the_device_transferred_to_them() {
    let w = heat_co();
    assert_eq!(visible_devices(&w, "U"), ["Garage Heater"]);
    assert!(may_control(&w, "U", "Garage Heater"));
    let actor = w.principal("U").act_at_home().unwrap();
    let decision = actor.decide_device(DeviceAction::View, &w.device_facts("Garage Heater"));
    assert_eq!(decision.rule, Rule::DeviceOwned);
    // Not allowed to delete data: the User role was granted view and control only.
    assert!(
        !actor
            .decide_device(DeviceAction::DeleteData, &w.device_facts("Garage Heater"))
            .is_allowed()
    );
}

#[test]
fn a_default_user_role_sees_nothing_even_of_its_own_devices() {
    let mut w = heat_co();
    w.set_permissions("Muller Boiler Group", USER, []);
    assert!(visible_devices(&w, "U").is_empty());
}

#[test]
fn customers_in_sibling_sub_orgs_see_only_their_own_device() {
    let w = heat_co();
    assert_eq!(visible_devices(&w, "M"), ["Pool Heater"]);
    assert_eq!(visible_devices(&w, "H"), ["Thermostat H"]);
}

#[test]
fn the_root_admin_sees_every_device() {
    let w = heat_co();
    assert_eq!(visible_devices(&w, "A"), w.device_names());
    assert!(may_control(&w, "A", "Pool Heater"));
}

#[test]
fn nobody_in_a_sub_org_sees_heat_cos_own_devices() {
    let w = heat_co();
    for user in ["R", "W", "U", "M", "H"] {
        let actor = w.principal(user).act_at_home().unwrap();
        let decision = actor.decide_device(DeviceAction::View, &w.device_facts("Demo Unit"));
        assert!(!decision.is_allowed(), "{user}");
        assert_eq!(decision.rule, Rule::OutsideScope, "{user}");
    }
}

#[test]
fn who_can_control_the_boiler_names_the_granting_memberships() {
    let w = heat_co();
    let grants = who_can_device(
        DeviceAction::Control,
        &w.device_facts("Boiler"),
        &w.principals(),
    );
    let mut users: Vec<_> = grants.iter().map(|g| g.user).collect();
    users.sort();
    let mut expected = vec![w.user_id("A"), w.user_id("R"), w.user_id("W")];
    expected.sort();
    assert_eq!(users, expected);
    let a = grants.iter().find(|g| g.user == w.user_id("A")).unwrap();
    assert_eq!(a.via.org, w.org("Heat Co").id());
    assert_eq!(a.via.role, ADMIN);
    assert_eq!(a.permission, Some(Permission::OrgDevicesControl));
}

#[test]
fn staff_keep_their_switch_permission_but_muller_has_no_sub_orgs_to_reach() {
    let w = heat_co();
    // Staff default includes switch_to_suborgs; it never reaches upward or sideways.
    assert!(
        w.set("Muller Boiler Group", STAFF)
            .contains(Permission::OrganizationsSwitchToSuborgs)
    );
    let r = w.principal("R");
    assert!(r.act_in(&w.org("Heat Co")).is_err());
    assert!(r.act_in(&w.org("United Heaters Inc.")).is_err());
}
