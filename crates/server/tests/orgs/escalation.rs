//! Escalation attempts — granting a missing permission, editing a more
//! privileged user, acting in a sibling or ancestor org, injecting `org_id` /
//! `role` fields — are all refused, and nothing changes.

use crate::support::*;
use arbor_core::{BuiltinRole, OrgId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(escalation_attempts_are_refused_and_change_nothing);

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
