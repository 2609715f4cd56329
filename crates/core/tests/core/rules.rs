//! One test (or a few) per rule of SPEC.md section 4.

use crate::world::{ADMIN, STAFF, USER, World, perms};
use arbor_core::policy::TargetMembership;
use arbor_core::{DeviceAction, MemberFacts, Outcome, Permission, PermissionSet, Rule, UserStatus};

/// root ─┬─ a ── a1
///       └─ b
/// plus a second hierarchy "other".
fn tree() -> World {
    let mut w = World::new();
    w.root("root")
        .suborg("root", "a")
        .suborg("a", "a1")
        .suborg("root", "b")
        .root("other")
        .member("root admin", "root", ADMIN)
        .member("root staff", "root", STAFF)
        .member("a admin", "a", ADMIN)
        .member("a staff", "a", STAFF)
        .member("a user", "a", USER)
        .member("a1 admin", "a1", ADMIN)
        .member("b admin", "b", ADMIN)
        .member("other admin", "other", ADMIN)
        .device("root dev", "root", Some("root admin"))
        .device("a dev", "a", Some("a admin"))
        .device("a user dev", "a", Some("a user"))
        .device("a1 dev", "a1", Some("a1 admin"))
        .device("b dev", "b", Some("b admin"))
        .device("other dev", "other", Some("other admin"));
    w
}

// Rule 1 ---------------------------------------------------------------------

#[test]
fn suspended_and_pending_users_are_denied_everything() {
    for status in [UserStatus::Suspended, UserStatus::Pending] {
        let mut w = tree();
        w.principal_mut("root admin").status = status;
        let denial = w.principal("root admin").act_at_home().unwrap_err();
        assert_eq!(denial.rule, Rule::UserInactive);
        assert_eq!(denial.outcome, Outcome::Hidden);
        assert!(w.principal("root admin").act_in(&w.org("a")).is_err());
    }
}

#[test]
fn a_revoked_session_is_denied_everything() {
    let mut w = tree();
    w.principal_mut("root admin").session_revoked = true;
    assert_eq!(
        w.principal("root admin").act_at_home().unwrap_err().rule,
        Rule::SessionRevoked
    );
}

// Rule 2 ---------------------------------------------------------------------

#[test]
fn switching_to_a_sub_org_needs_switch_to_suborgs() {
    let mut w = tree();
    assert!(w.principal("root admin").act_in(&w.org("a1")).is_ok());
    w.set_permissions(
        "root",
        ADMIN,
        PermissionSet::all().difference(PermissionSet::from([
            Permission::OrganizationsSwitchToSuborgs,
            Permission::UsersTransfer,
        ])),
    );
    let denial = w.principal("root admin").act_in(&w.org("a1")).unwrap_err();
    assert_eq!(denial.rule, Rule::ContextNeedsSwitch);
    assert_eq!(denial.outcome, Outcome::Hidden);
    assert!(w.principal("root admin").act_in(&w.org("root")).is_ok());
}

#[test]
fn no_one_switches_upward_sideways_or_into_another_hierarchy() {
    let w = tree();
    let a_admin = w.principal("a admin");
    for org in ["root", "b", "other"] {
        let denial = a_admin.act_in(&w.org(org)).unwrap_err();
        assert_eq!(denial.rule, Rule::NoMembership, "{org}");
    }
}

// Rules 3 and 4 --------------------------------------------------------------

#[test]
fn scope_is_home_plus_descendants_only_with_switch() {
    let mut w = tree();
    let actor = w.principal("a admin").act_at_home().unwrap();
    for (org, inside) in [
        ("root", false),
        ("a", true),
        ("a1", true),
        ("b", false),
        ("other", false),
    ] {
        assert_eq!(actor.scope().contains(&w.org(org)), inside, "{org}");
    }
    w.set_permissions("a", ADMIN, [Permission::UsersView]);
    let actor = w.principal("a admin").act_at_home().unwrap();
    assert!(actor.scope().contains(&w.org("a")));
    assert!(!actor.scope().contains(&w.org("a1")));
}

#[test]
fn an_org_action_needs_the_permission_and_the_org_in_scope() {
    let w = tree();
    let admin = w.principal("a admin").act_at_home().unwrap();
    let allowed = admin.decide_org(Permission::OrganizationsSettings, &w.org("a1"));
    assert_eq!(
        (allowed.outcome, allowed.rule),
        (Outcome::Allowed, Rule::OrgPermission)
    );
    let outside = admin.decide_org(Permission::OrganizationsSettings, &w.org("b"));
    assert_eq!(
        (outside.outcome, outside.rule),
        (Outcome::Hidden, Rule::OutsideScope)
    );
    let foreign = admin.decide_org(Permission::OrganizationsSettings, &w.org("other"));
    assert_eq!(
        (foreign.outcome, foreign.rule),
        (Outcome::Hidden, Rule::OtherHierarchy)
    );
    let staff = w.principal("a staff").act_at_home().unwrap();
    let missing = staff.decide_org(Permission::OrganizationsSettings, &w.org("a"));
    assert_eq!(
        (missing.outcome, missing.rule),
        (Outcome::Forbidden, Rule::MissingPermission)
    );
    assert_eq!(missing.permission, Some(Permission::OrganizationsSettings));
}

#[test]
fn permissions_come_from_the_home_org_table_never_the_target_orgs() {
    let mut w = tree();
    // a1's own Admin set is emptied; a's Admin acting in a1 is unaffected…
    w.set_permissions("a1", ADMIN, []);
    let a_admin = w.principal("a admin").act_in(&w.org("a1")).unwrap();
    assert!(
        a_admin
            .decide_org(Permission::UsersInvite, &w.org("a1"))
            .is_allowed()
    );
    // …while a1's own Admin has nothing left.
    let a1_admin = w.principal("a1 admin").act_at_home().unwrap();
    assert!(
        !a1_admin
            .decide_org(Permission::UsersInvite, &w.org("a1"))
            .is_allowed()
    );
}

#[test]
fn device_templates_change_only_in_the_root_org() {
    let w = tree();
    let root = w.principal("root admin").act_at_home().unwrap();
    assert!(
        root.decide_device_template(Permission::TemplatesCreate, &w.org("root"))
            .is_allowed()
    );
    let sub = root.decide_device_template(Permission::TemplatesEdit, &w.org("a"));
    assert_eq!(
        (sub.outcome, sub.rule),
        (Outcome::Forbidden, Rule::RootOrgOnly)
    );
    assert!(
        root.decide_device_template(Permission::TemplatesView, &w.org("a"))
            .is_allowed()
    );
}

// Rule 5 ---------------------------------------------------------------------

#[test]
fn org_device_permissions_cover_every_device_in_scope() {
    let w = tree();
    let actor = w.principal("a staff").act_at_home().unwrap();
    for (device, allowed) in [
        ("a dev", true),
        ("a1 dev", true),
        ("root dev", false),
        ("b dev", false),
        ("other dev", false),
    ] {
        let d = actor.decide_device(DeviceAction::Control, &w.device_facts(device));
        assert_eq!(d.is_allowed(), allowed, "{device}");
        if allowed {
            assert_eq!(d.rule, Rule::DeviceInScope);
        }
    }
}

#[test]
fn own_device_permissions_cover_only_owned_devices() {
    let mut w = tree();
    w.set_permissions("a", USER, [Permission::OwnDevicesControl]);
    let actor = w.principal("a user").act_at_home().unwrap();
    let own = actor.decide_device(DeviceAction::Control, &w.device_facts("a user dev"));
    assert_eq!(
        (own.outcome, own.rule),
        (Outcome::Allowed, Rule::DeviceOwned)
    );
    assert_eq!(own.permission, Some(Permission::OwnDevicesControl));
    let other = actor.decide_device(DeviceAction::View, &w.device_facts("a dev"));
    assert_eq!(
        (other.outcome, other.rule),
        (Outcome::Hidden, Rule::NotVisible)
    );
    // Visible but not permitted: 403, naming the missing permission.
    let edit = actor.decide_device(DeviceAction::Edit, &w.device_facts("a user dev"));
    assert_eq!(
        (edit.outcome, edit.permission),
        (Outcome::Forbidden, Some(Permission::OwnDevicesEdit))
    );
    // Deleting a device is an org-devices permission only: every own_devices
    // permission is not enough.
    let all_own: PermissionSet = Permission::all()
        .filter(|p| p.group() == arbor_core::PermissionGroup::OwnDevices)
        .collect();
    w.set_permissions("a", USER, all_own);
    let actor = w.principal("a user").act_at_home().unwrap();
    assert!(
        actor
            .decide_device(DeviceAction::Edit, &w.device_facts("a user dev"))
            .is_allowed()
    );
    let delete = actor.decide_device(DeviceAction::Delete, &w.device_facts("a user dev"));
    assert_eq!(delete.outcome, Outcome::Forbidden);
}

#[test]
fn transfers_and_auth_tokens_need_their_own_permission_on_a_visible_device() {
    let mut w = tree();
    w.set_permissions("a", STAFF, [Permission::OrgDevicesView]);
    let staff = w.principal("a staff").act_at_home().unwrap();
    let d = staff.decide_device(DeviceAction::Transfer, &w.device_facts("a dev"));
    assert_eq!(
        (d.outcome, d.permission),
        (Outcome::Forbidden, Some(Permission::TransfersDevices))
    );
    w.set_permissions(
        "a",
        STAFF,
        [
            Permission::OrgDevicesView,
            Permission::TransfersDevices,
            Permission::AuthTokensEdit,
        ],
    );
    let staff = w.principal("a staff").act_at_home().unwrap();
    assert!(
        staff
            .decide_device(DeviceAction::Transfer, &w.device_facts("a dev"))
            .is_allowed()
    );
    assert!(
        staff
            .decide_device(DeviceAction::EditAuthToken, &w.device_facts("a dev"))
            .is_allowed()
    );
    // Without switch_to_suborgs, a1 is out of scope: hidden.
    let a1 = staff.decide_device(DeviceAction::EditAuthToken, &w.device_facts("a1 dev"));
    assert_eq!(a1.outcome, Outcome::Hidden);
    assert!(
        !staff
            .decide_device(DeviceAction::Transfer, &w.device_facts("b dev"))
            .is_allowed()
    );
}

#[test]
fn the_device_filter_agrees_with_single_decisions() {
    let mut w = tree();
    w.set_permissions("a", USER, [Permission::OwnDevicesView]);
    for user in ["root admin", "a staff", "a user", "b admin", "other admin"] {
        let actor = w.principal(user).act_at_home().unwrap();
        for action in DeviceAction::ALL {
            let filter = actor.device_filter(action);
            for device in w.device_names() {
                let facts = w.device_facts(device);
                assert_eq!(
                    filter.matches(&facts),
                    actor.decide_device(action, &facts).is_allowed(),
                    "{user} {action:?} {device}"
                );
            }
        }
    }
}

// Rule 6 ---------------------------------------------------------------------

#[test]
fn nobody_grants_a_permission_they_lack() {
    let mut w = tree();
    w.set_permissions("a", STAFF, staff_who_manage_users());
    let staff = w.principal("a staff").act_at_home().unwrap();
    let old = w.set("a", USER);
    let ok = staff.decide_set_permissions(&w.org("a"), old, perms([Permission::OwnDevicesControl]));
    assert!(ok.is_allowed());
    let escalation =
        staff.decide_set_permissions(&w.org("a"), old, perms([Permission::UsersInvite]));
    assert_eq!(
        (escalation.outcome, escalation.rule),
        (Outcome::Forbidden, Rule::Escalation)
    );
    assert_eq!(
        escalation.missing,
        PermissionSet::from([Permission::UsersInvite])
    );
    // Editing a set that already holds what the actor lacks is refused too.
    let admin_set = w.set("a", ADMIN);
    let trim = staff.decide_set_permissions(&w.org("a"), admin_set, PermissionSet::EMPTY);
    assert_eq!(trim.rule, Rule::Escalation);
    // Assigning a role whose set exceeds the actor's.
    let assign = staff.decide_assign_role(Permission::UsersEdit, &w.org("a"), admin_set);
    assert!(!assign.is_allowed());
}

fn staff_who_manage_users() -> PermissionSet {
    arbor_core::BuiltinRole::Staff
        .default_permissions()
        .union(perms([
            Permission::RolesEdit,
            Permission::UsersEdit,
            Permission::UsersSuspend,
        ]))
}

#[test]
fn a_member_cannot_manage_a_more_privileged_member_of_the_same_org() {
    let mut w = tree();
    w.set_permissions("a", STAFF, staff_who_manage_users());
    let staff = w.principal("a staff").act_at_home().unwrap();
    let a = w.org("a");
    let target_admin = MemberFacts {
        user: w.user_id("a admin"),
        org: &a,
        permissions: w.set("a", ADMIN),
    };
    let d = staff.decide_user(Permission::UsersSuspend, &target_admin);
    assert_eq!(
        (d.outcome, d.rule),
        (Outcome::Forbidden, Rule::TargetMorePrivileged)
    );
    assert!(!d.missing.is_empty());
    let target_user = MemberFacts {
        user: w.user_id("a user"),
        org: &a,
        permissions: w.set("a", USER),
    };
    assert!(
        staff
            .decide_user(Permission::UsersSuspend, &target_user)
            .is_allowed()
    );
}

#[test]
fn actors_of_a_strict_ancestor_org_are_exempt_from_the_subset_rule() {
    let mut w = tree();
    // root staff may edit users but holds less than a's Admin.
    w.set_permissions("root", STAFF, staff_who_manage_users());
    let root_staff = w.principal("root staff").act_at_home().unwrap();
    let a = w.org("a");
    let target = MemberFacts {
        user: w.user_id("a admin"),
        org: &a,
        permissions: w.set("a", ADMIN),
    };
    assert!(
        root_staff
            .decide_user(Permission::UsersEdit, &target)
            .is_allowed()
    );
}

#[test]
fn members_are_invisible_without_users_view() {
    let w = tree();
    let user = w.principal("a user").act_at_home().unwrap();
    let a = w.org("a");
    let target = MemberFacts {
        user: w.user_id("a staff"),
        org: &a,
        permissions: w.set("a", STAFF),
    };
    assert_eq!(
        user.decide_user(Permission::UsersEdit, &target).outcome,
        Outcome::Hidden
    );
}

#[test]
fn a_member_without_users_view_still_sees_itself_and_lists_itself() {
    let w = tree();
    // The default User role holds nothing.
    let user = w.principal("a user").act_at_home().unwrap();
    let a = w.org("a");
    let membership = |role| TargetMembership {
        org: &a,
        role,
        permissions: w.set("a", role),
        home: true,
    };
    let me = w.user_id("a user");
    assert!(user.view_user(me, &[membership(USER)]).is_allowed());
    assert!(user.user_list().matches(me, &[&a]));
    let staff = w.user_id("a staff");
    assert_eq!(
        user.view_user(staff, &[membership(STAFF)]).outcome,
        Outcome::Hidden
    );
    assert!(!user.user_list().matches(staff, &[&a]));
}

// Rule 7 ---------------------------------------------------------------------

#[test]
fn objects_outside_scope_are_hidden_not_forbidden() {
    let w = tree();
    let b_admin = w.principal("b admin").act_at_home().unwrap();
    for device in ["a dev", "root dev", "other dev"] {
        assert_eq!(
            b_admin
                .decide_device(DeviceAction::View, &w.device_facts(device))
                .outcome,
            Outcome::Hidden
        );
    }
    let a = w.org("a");
    let member = MemberFacts {
        user: w.user_id("a user"),
        org: &a,
        permissions: PermissionSet::EMPTY,
    };
    assert_eq!(
        b_admin.decide_user(Permission::UsersView, &member).outcome,
        Outcome::Hidden
    );
}

// Rule 8 ---------------------------------------------------------------------

#[test]
fn with_several_memberships_the_nearest_one_at_or_above_the_context_is_used() {
    let mut w = tree();
    w.member("multi", "root", USER).member("multi", "a", ADMIN);
    w.set_permissions("root", USER, [Permission::OrganizationsSwitchToSuborgs]);
    let multi = w.principal("multi");
    let in_a1 = multi.act_in(&w.org("a1")).unwrap();
    assert_eq!(in_a1.via().org, w.org("a").id());
    assert_eq!(in_a1.via().role, ADMIN);
    let in_b = multi.act_in(&w.org("b")).unwrap();
    assert_eq!(in_b.via().org, w.org("root").id());
    assert!(
        !in_b
            .decide_device(DeviceAction::View, &w.device_facts("b dev"))
            .is_allowed()
    );
    let at_home = multi.act_at_home().unwrap();
    assert_eq!(at_home.via().org, w.org("root").id());
}

// Explanations ---------------------------------------------------------------

#[test]
fn every_decision_explains_membership_role_org_and_rule() {
    let w = tree();
    let actor = w.principal("a staff").act_at_home().unwrap();
    let allowed = actor.decide_device(DeviceAction::Control, &w.device_facts("a1 dev"));
    let text = allowed.explain();
    let a = w.org("a").id();
    let a1 = w.org("a1").id();
    assert!(text.starts_with("allowed by rule 5"), "{text}");
    assert!(
        text.contains(&format!("membership in org {a} with role {STAFF}")),
        "{text}"
    );
    assert!(text.contains("org_devices.control"), "{text}");
    assert!(text.contains(&format!("org {a1}")), "{text}");
    let denied = actor.decide_org(Permission::OrganizationsTransfer, &w.org("a"));
    assert!(
        denied.explain().starts_with("denied by rule 4"),
        "{}",
        denied.explain()
    );
    assert!(denied.explain().contains("lacks organizations.transfer"));
    let json = serde_json::to_value(allowed).unwrap();
    assert_eq!(json["outcome"], "allowed");
    assert_eq!(json["rule"], "device_in_scope");
    assert_eq!(json["permission"], "org_devices.control");
    assert_eq!(json["via"]["org"], a.0);
}

#[test]
fn the_trace_lists_the_checks_up_to_the_deciding_one() {
    let w = tree();
    let actor = w.principal("a staff").act_at_home().unwrap();
    let allowed = actor.decide_device(DeviceAction::Control, &w.device_facts("a1 dev"));
    let trace = allowed.trace();
    assert_eq!(trace.len(), 7);
    assert!(trace.iter().all(|s| s.passed));
    assert_eq!(trace.last().unwrap().rule, 5);
    let denied = actor.decide_org(Permission::OrganizationsTransfer, &w.org("a"));
    let trace = denied.trace();
    assert_eq!(trace.len(), 7);
    assert_eq!(trace.last().unwrap().rule, 4);
    assert!(!trace.last().unwrap().passed);
    assert!(trace[..6].iter().all(|s| s.passed));
    let hidden = actor.decide_org(Permission::UsersView, &w.org("b"));
    let trace = hidden.trace();
    assert_eq!((trace.len(), trace[5].rule, trace[5].passed), (6, 3, false));
    let mut suspended = w.principal("a staff");
    suspended.status = UserStatus::Suspended;
    let denied = suspended.act_at_home().unwrap_err();
    assert_eq!(denied.trace().len(), 1);
    assert!(!denied.trace()[0].passed);
}
