//! Escalation attempts — granting a missing permission, editing a more
//! privileged user, acting in a sibling or ancestor org, injecting `org_id` /
//! `role` fields — are all refused, and nothing changes.

use crate::support::*;
use arbor_core::{BuiltinRole, OrgId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(
    escalation_attempts_are_refused_and_change_nothing,
    rule_6_guards_invitations_and_role_changes,
    who_can_shows_identities_only_to_holders_of_users_view,
    a_role_map_may_not_grant_what_the_deleting_actor_lacks,
);

/// Everything an attempt could have changed, read as the root Admin.
async fn snapshot(app: &TestApp, token: &str, w: &World) -> Vec<Value> {
    let mut seen = Vec::new();
    for org in [w.root, w.child, w.grandchild, w.sibling] {
        seen.push(
            get(app, &format!("/api/v1/orgs/{}", org.0), token)
                .await
                .body,
        );
        seen.push(
            get(app, &format!("/api/v1/orgs/{}/permissions", org.0), token)
                .await
                .body["sets"]
                .clone(),
        );
    }
    seen.push(get(app, "/api/v1/roles", token).await.body);
    seen.push(get(app, "/api/v1/permission-templates", token).await.body);
    seen.push(get(app, "/api/v1/users?limit=500", token).await.body);
    seen
}

/// What is tried, by whom, how, and the status it must get.
type Attempt<'a> = (
    &'static str,
    &'a String,
    Method,
    String,
    Option<OrgId>,
    Option<Value>,
    u16,
);

async fn escalation_attempts_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let staff_role = w.role(BuiltinRole::Staff);
    let user_role = w.role(BuiltinRole::User);
    let admin_role = w.role(BuiltinRole::Admin);
    // Child's Staff may edit roles and users, but holds no more than that.
    let mut staff_set = vec![
        "roles.view",
        "roles.edit",
        "roles.delete",
        "users.view",
        "users.edit",
        "org_devices.view",
    ];
    let saved = put(
        &app,
        &format!(
            "/api/v1/orgs/{}/roles/{}/permissions",
            w.child.0, staff_role.0
        ),
        &root,
        json!({ "permissions": staff_set }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    staff_set.sort_unstable();
    let staff = app
        .login(&email(BuiltinRole::Staff, "child"), PASSWORD)
        .await;
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let admin_of_child = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    let template = post(
        &app,
        "/api/v1/permission-templates",
        &root,
        json!({ "name": "everything", "from_org_id": w.root.0 }),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    let before = snapshot(&app, &root, &w).await;

    let c = w.child.0;
    let attempts: Vec<Attempt<'_>> = vec![
        (
            "grant a permission the actor lacks",
            &staff,
            Method::PUT,
            format!("/api/v1/orgs/{c}/roles/{}/permissions", user_role.0),
            None,
            Some(json!({ "permissions": ["users.delete"] })),
            403,
        ),
        (
            "grant oneself more",
            &staff,
            Method::PUT,
            format!("/api/v1/orgs/{c}/roles/{}/permissions", staff_role.0),
            None,
            Some(json!({ "permissions": ["roles.view", "roles.edit", "organizations.settings"] })),
            403,
        ),
        (
            "edit the set of a more privileged role",
            &staff,
            Method::PUT,
            format!("/api/v1/orgs/{c}/roles/{}/permissions", admin_role.0),
            None,
            Some(json!({ "permissions": [] })),
            403,
        ),
        (
            "apply a template granting more than the actor holds",
            &staff,
            Method::POST,
            format!("/api/v1/permission-templates/{template}/apply"),
            None,
            Some(json!({ "org_id": c })),
            403,
        ),
        (
            "push a template granting more than the actor holds",
            &staff,
            Method::POST,
            format!("/api/v1/permission-templates/{template}/push"),
            None,
            Some(json!({ "org_id": c })),
            403,
        ),
        (
            "edit a more privileged user of the same org",
            &staff,
            Method::PATCH,
            format!("/api/v1/users/{}", admin_of_child.0),
            None,
            Some(json!({ "name": "Demoted" })),
            403,
        ),
        (
            "edit the roles list from a sub-org",
            &child_admin,
            Method::PATCH,
            format!("/api/v1/roles/{}", staff_role.0),
            None,
            Some(json!({ "name": "Boss" })),
            404,
        ),
        (
            "act in the parent org by header",
            &child_admin,
            Method::PATCH,
            format!("/api/v1/orgs/{}", w.root.0),
            Some(w.root),
            Some(json!({ "name": "Mine now" })),
            404,
        ),
        (
            "act in a sibling org by header",
            &child_admin,
            Method::PATCH,
            format!("/api/v1/orgs/{}", w.sibling.0),
            Some(w.sibling),
            Some(json!({ "name": "Mine now" })),
            404,
        ),
        (
            "change a sibling org's sets",
            &child_admin,
            Method::PUT,
            format!(
                "/api/v1/orgs/{}/roles/{}/permissions",
                w.sibling.0, user_role.0
            ),
            None,
            Some(json!({ "permissions": ["org_devices.view"] })),
            404,
        ),
        (
            "read the parent org's matrix",
            &child_admin,
            Method::GET,
            format!("/api/v1/orgs/{}/permissions", w.root.0),
            None,
            None,
            404,
        ),
        (
            "delete one's own home org",
            &child_admin,
            Method::DELETE,
            format!("/api/v1/orgs/{c}?move_contents_to_parent=true"),
            None,
            None,
            404,
        ),
        (
            "move one's org under a sibling",
            &child_admin,
            Method::POST,
            format!("/api/v1/orgs/{c}/transfer"),
            None,
            Some(json!({ "new_parent_id": w.sibling.0, "confirm": true })),
            404,
        ),
        (
            "inject org_id into a settings update",
            &child_admin,
            Method::PATCH,
            format!("/api/v1/orgs/{c}"),
            None,
            Some(json!({ "name": "X", "org_id": w.root.0 })),
            400,
        ),
        (
            "inject parent_id into a settings update",
            &child_admin,
            Method::PATCH,
            format!("/api/v1/orgs/{c}"),
            None,
            Some(json!({ "parent_id": w.sibling.0 })),
            400,
        ),
        (
            "inject role into a set update",
            &staff,
            Method::PUT,
            format!("/api/v1/orgs/{c}/roles/{}/permissions", user_role.0),
            None,
            Some(json!({ "permissions": [], "role": admin_role.0 })),
            400,
        ),
        (
            "inject role_id into a role rename",
            &root,
            Method::PATCH,
            format!("/api/v1/roles/{}", staff_role.0),
            None,
            Some(json!({ "name": "Staff", "role_id": admin_role.0 })),
            400,
        ),
        (
            "inject org_id into an explain question",
            &staff,
            Method::POST,
            "/api/v1/access/explain".into(),
            None,
            Some(json!({ "user_id": 1, "permission": "roles.view", "org_id": c, "org": 1 })),
            400,
        ),
        (
            "ask explain about an ancestor's member",
            &child_admin,
            Method::POST,
            "/api/v1/access/explain".into(),
            None,
            Some(json!({ "user_id": w.root_admin.0, "permission": "roles.view", "org_id": c })),
            404,
        ),
    ];
    for (what, token, method, path, context, body, want) in attempts {
        let reply = call(&app, method, &path, token, context, body).await;
        assert_eq!(reply.status, want, "{what}: {reply:?}");
        if want == 403 {
            assert_eq!(reply.body["type"], "urn:arbor:problem:forbidden", "{what}");
        }
        // Rule 6 on a grant: forbidden, naming what the actor lacks.
        if want == 403
            && reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("rule 6"))
        {
            let missing = reply.body["extra"]["missing_permissions"].as_array();
            assert!(missing.is_some_and(|m| !m.is_empty()), "{what}: {reply:?}");
        }
    }
    assert_eq!(
        snapshot(&app, &root, &w).await,
        before,
        "a refused attempt changed something"
    );
    // The refusals are in the audit log with the actor's home org.
    let rows = audit(&app, &format!("role:{}", user_role.0)).await;
    assert!(
        rows.iter()
            .any(|(action, outcome)| action == "role.permissions.set" && outcome == "forbidden"),
        "{rows:?}"
    );
    // Granting only what one holds works, and reports the added dependency.
    let reply = put(
        &app,
        &format!("/api/v1/orgs/{c}/roles/{}/permissions", user_role.0),
        &staff,
        json!({ "permissions": ["users.edit"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["added"], json!(["users.view"]));
}

/// The missing permissions of a rule-6 refusal (asserting it is one).
fn missing(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.body["type"], "urn:arbor:problem:forbidden",
        "{reply:?}"
    );
    let missing: Vec<String> = reply.body["extra"]["missing_permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("no missing_permissions: {reply:?}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert!(!missing.is_empty(), "{reply:?}");
    missing
}

/// Defect 3: rule 6 did not guard a pending member's invitation (a Staff
/// member with users.invite could withdraw or re-send a pending Admin's) nor
/// renaming and deleting a role (the actor must hold every permission the
/// role holds in any org).
async fn rule_6_guards_invitations_and_role_changes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let [admin, staff, user] = w.roles.map(|r| r.0);
    let c = w.child.0;
    let staff_defaults: Vec<&str> = BuiltinRole::Staff.default_permissions().ids();
    let with = |extra: &[&'static str]| {
        let mut set = staff_defaults.clone();
        set.extend_from_slice(extra);
        json!({ "permissions": set })
    };
    for (org, extra) in [
        (c, &["users.invite"][..]),
        (w.root.0, &["roles.view", "roles.edit", "roles.delete"][..]),
    ] {
        let saved = put(
            &app,
            &format!("/api/v1/orgs/{org}/roles/{staff}/permissions"),
            &root,
            with(extra),
        )
        .await;
        assert_eq!(saved.status, 200, "{saved:?}");
    }
    let invite = async |email: &str, role: i64| {
        let reply = post(
            &app,
            "/api/v1/users/invitations",
            &root,
            json!({ "email": email, "name": "Pending", "org_id": c, "role_id": role }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["user_id"].as_i64().unwrap()
    };
    let pending_admin = invite("boss@child.test", admin).await;
    let pending_user = invite("newbie@child.test", user).await;
    let link = app.mailed_token("boss@child.test").await;
    let child_staff = app
        .login(&email(BuiltinRole::Staff, "child"), PASSWORD)
        .await;

    // The pending Admin's invitation is beyond the Staff member: 403.
    let mark = audit_mark(&app).await;
    let revoke = delete(
        &app,
        &format!("/api/v1/users/{pending_admin}/invitation"),
        &child_staff,
    )
    .await;
    assert!(missing(&revoke).contains(&"users.delete".to_owned()));
    let resend = post(
        &app,
        &format!("/api/v1/users/{pending_admin}/invitation/resend"),
        &child_staff,
        json!({}),
    )
    .await;
    missing(&resend);
    let rows = audit_since(&app, mark).await;
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.revoke_invitation", "forbidden"),
            ("user.resend_invitation", "forbidden")
        ]
    );
    // Nothing changed: still pending, and the first link is still the newest.
    let seen = get(&app, &format!("/api/v1/users/{pending_admin}"), &root).await;
    assert_eq!(seen.body["status"], "pending", "{seen:?}");
    assert_eq!(app.mailed_token("boss@child.test").await, link);
    // A pending User's invitation is the Staff member's to withdraw.
    let revoke = delete(
        &app,
        &format!("/api/v1/users/{pending_user}/invitation"),
        &child_staff,
    )
    .await;
    assert_eq!(revoke.status, 204, "{revoke:?}");

    // Roles: the root org's Staff may edit and delete roles, but not one
    // holding what it lacks anywhere.
    let root_staff = app
        .login(&email(BuiltinRole::Staff, "root"), PASSWORD)
        .await;
    let roles_before = get(&app, "/api/v1/roles", &root).await.body;
    let rename = patch(
        &app,
        &format!("/api/v1/roles/{admin}"),
        &root_staff,
        json!({ "name": "Boss" }),
    )
    .await;
    assert!(missing(&rename).contains(&"users.delete".to_owned()));
    let mut created = Vec::new();
    for (name, set) in [
        ("Installer", "users.delete"),
        ("Helper", "org_devices.view"),
    ] {
        let reply = post(&app, "/api/v1/roles", &root, json!({ "name": name })).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let role = reply.body["id"].as_i64().unwrap();
        // The set lives in Child only: rule 6 counts every org.
        let saved = put(
            &app,
            &format!("/api/v1/orgs/{c}/roles/{role}/permissions"),
            &root,
            json!({ "permissions": [set] }),
        )
        .await;
        assert_eq!(saved.status, 200, "{saved:?}");
        created.push(role);
    }
    let (installer, helper) = (created[0], created[1]);
    let rename = patch(
        &app,
        &format!("/api/v1/roles/{installer}"),
        &root_staff,
        json!({ "name": "Fitter" }),
    )
    .await;
    assert_eq!(missing(&rename), ["users.delete"]);
    let removal = delete(
        &app,
        &format!("/api/v1/roles/{installer}?replacement={user}"),
        &root_staff,
    )
    .await;
    assert_eq!(missing(&removal), ["users.delete"]);
    let roles = get(&app, "/api/v1/roles", &root).await.body;
    assert_eq!(roles.as_array().unwrap().len(), 5, "{roles}");
    assert_eq!(roles[0], roles_before[0], "Admin keeps its name");
    // A role within the Staff member's own permissions is its to change.
    let rename = patch(
        &app,
        &format!("/api/v1/roles/{helper}"),
        &root_staff,
        json!({ "name": "Assistant" }),
    )
    .await;
    assert_eq!(rename.status, 200, "{rename:?}");
    let removal = delete(
        &app,
        &format!("/api/v1/roles/{helper}?replacement={user}"),
        &root_staff,
    )
    .await;
    assert_eq!(removal.status, 200, "{removal:?}");
}

/// Defect 3: who-can named the users it listed (email, name) to callers who
/// may not view users.
async fn who_can_shows_identities_only_to_holders_of_users_view(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let user = w.role(BuiltinRole::User).0;
    let saved = put(
        &app,
        &format!("/api/v1/orgs/{}/roles/{user}/permissions", w.root.0),
        &root,
        json!({ "permissions": ["roles.view"] }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let root_user = app.login(&email(BuiltinRole::User, "root"), PASSWORD).await;
    let query = format!(
        "/api/v1/access/who-can?permission=organizations.settings&org_id={}",
        w.root.0
    );
    let without = get(&app, &query, &root_user).await;
    assert_eq!(without.status, 200, "{without:?}");
    let with = get(&app, &query, &root).await;
    assert_eq!(with.status, 200, "{with:?}");
    let grants = |reply: &Reply| reply.body["grants"].as_array().unwrap().clone();
    assert_eq!(grants(&without).len(), grants(&with).len());
    assert!(!grants(&without).is_empty());
    for (bare, named) in grants(&without).iter().zip(grants(&with)) {
        assert_eq!(bare["user_id"], named["user_id"]);
        assert!(
            bare.get("email").is_none() && bare.get("name").is_none(),
            "{bare}"
        );
        assert!(
            named["email"].is_string() && named["name"].is_string(),
            "{named}"
        );
    }
}

/// Rule 6 on a deletion's role map: moving members up may not hand out a
/// role the deleting actor could not grant; without a map they move as the
/// least-privileged role, which it can.
async fn a_role_map_may_not_grant_what_the_deleting_actor_lacks(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let [admin, staff, _] = w.roles.map(|r| r.0);
    let mut set: Vec<&str> = BuiltinRole::Staff.default_permissions().ids();
    set.push("organizations.create_suborgs");
    let saved = put(
        &app,
        &format!("/api/v1/orgs/{}/roles/{staff}/permissions", w.child.0),
        &root,
        json!({ "permissions": set }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let child_staff = app
        .login(&email(BuiltinRole::Staff, "child"), PASSWORD)
        .await;
    let gc = format!(
        "/api/v1/orgs/{}?move_contents_to_parent=true",
        w.grandchild.0
    );
    let mark = audit_mark(&app).await;
    let reply = delete(
        &app,
        &format!("{gc}&role_map={admin}:{admin}"),
        &child_staff,
    )
    .await;
    assert!(missing(&reply).contains(&"users.delete".to_owned()));
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("org.delete", "forbidden")
    );
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{}", w.grandchild.0), &root)
            .await
            .status,
        200
    );
    let reply = delete(&app, &gc, &child_staff).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}
