//! What administrators do with orgs, roles and templates, through the API.

use crate::support::*;
use arbor_core::{BuiltinRole, OrgId, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

both_engines!(
    org_settings_search_and_tree,
    creating_an_org_with_a_refused_invitation_creates_nothing,
    deleting_an_org_answers_409_with_counts_unless_contents_move_up,
    an_org_whose_invitations_were_accepted_stays_deletable,
    roles_are_capped_renamed_and_deleted_with_replacement,
    templates_apply_and_push_with_a_report,
    every_change_is_audited_with_home_and_target_org,
    deleting_an_org_moves_its_members_up_without_promoting_them,
    the_root_admin_set_always_holds_the_whole_catalog,
    an_org_whose_invitation_was_accepted_stays_deletable,
    search_text_is_literal_and_folds_case_alike_on_both_engines,
    device_templates_are_enabled_from_the_parent_within_the_hierarchy,
);

async fn org_settings_search_and_tree(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let c = w.child.0;
    let reply = patch(
        &app,
        &format!("/api/v1/orgs/{c}"),
        &root,
        json!({ "name": "Child GmbH", "timezone": "Europe/Vienna", "unit_system": "imperial",
                "contact": "ops@child.test", "description": "the first client" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let org = get(&app, &format!("/api/v1/orgs/{c}"), &root).await.body;
    assert_eq!(org["name"], "Child GmbH");
    assert_eq!(org["timezone"], "Europe/Vienna");
    assert_eq!(org["unit_system"], "imperial");
    assert_eq!(org["type"], "BUSINESS");
    let reply = patch(
        &app,
        &format!("/api/v1/orgs/{c}"),
        &root,
        json!({ "unit_system": "furlongs" }),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = patch(
        &app,
        &format!("/api/v1/orgs/{c}"),
        &root,
        json!({ "name": " " }),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        audit(&app, &format!("org:{c}"))
            .await
            .iter()
            .any(|(a, o)| a == "org.update" && o == "allowed")
    );

    // Search in scope by name, case-insensitively, page by page.
    let reply = get(&app, "/api/v1/orgs?q=CHILD&limit=1", &root).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["items"][0]["id"], c);
    let next = reply.body["next"].as_str().unwrap().to_owned();
    let reply = get(
        &app,
        &format!("/api/v1/orgs?q=child&limit=1&cursor={next}"),
        &root,
    )
    .await;
    assert_eq!(reply.body["items"][0]["id"], w.grandchild.0);
    assert!(reply.body["next"].is_null());
    // The sibling's Admin finds nothing of Child's.
    let sibling = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;
    let reply = get(&app, "/api/v1/orgs?q=child", &sibling).await;
    assert_eq!(reply.body["items"], json!([]));
    // Flat list of everything in scope.
    let reply = get(&app, "/api/v1/orgs", &root).await;
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 4);
    // The tree, from the home org and from a sub-org.
    let tree = get(&app, "/api/v1/orgs/tree", &root).await.body;
    assert_eq!(tree["root"]["id"], w.root.0);
    assert_eq!(tree["root"]["children"].as_array().unwrap().len(), 2);
    assert_eq!(
        tree["root"]["children"][0]["children"][0]["id"],
        w.grandchild.0
    );
    assert_eq!(tree["truncated"], false);
    let tree = get(&app, "/api/v1/orgs/tree?limit=2", &root).await.body;
    assert_eq!(tree["truncated"], true);
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let tree = get(&app, "/api/v1/orgs/tree", &child_admin).await.body;
    assert_eq!(tree["root"]["id"], c);
    let reply = get(
        &app,
        &format!("/api/v1/orgs/tree?root={}", w.root.0),
        &child_admin,
    )
    .await;
    assert_eq!(reply.status, 404);
    // A User (no switch_to_suborgs) sees only its home org, even as a tree.
    let user = app
        .login(&email(BuiltinRole::User, "child"), PASSWORD)
        .await;
    let tree = get(&app, "/api/v1/orgs/tree", &user).await.body;
    assert_eq!(tree["root"]["children"], json!([]));
}

async fn creating_an_org_with_a_refused_invitation_creates_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let count = async |app: &TestApp| {
        get(app, "/api/v1/orgs?limit=500", &root).await.body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count(&app).await;
    // One transaction (defect 9): a refused invitation leaves no org behind,
    // one audit row for the refusal, and no compensating "undo" rows.
    // (A malformed address is refused as input, 400, before any decision.)
    let refusal: &[(&str, &str)] = &[("org.create", "failed")];
    for (admin, status, audited) in [
        (
            json!({ "email": email(BuiltinRole::Staff, "sibling"), "name": "Dup" }),
            409,
            refusal,
        ),
        (
            json!({ "email": "not an address", "name": "Nobody" }),
            400,
            &[],
        ),
    ] {
        let mark = audit_mark(&app).await;
        let reply = post(
            &app,
            "/api/v1/orgs",
            &root,
            json!({ "parent_id": w.child.0, "name": "Taken", "admin": admin }),
        )
        .await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(count(&app).await, before);
        let rows = audit_since(&app, mark).await;
        let actions: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(actions, audited, "{reply:?}: {rows:?}");
    }
    let users = get(&app, "/api/v1/users?q=not%20an%20address", &root).await;
    assert_eq!(users.body["items"], json!([]), "{users:?}");
    // The type rule and depth limit answer 409 / 400.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.grandchild.0, "name": "Level 4" }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let level4 = reply.body["id"].as_i64().unwrap();
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": level4, "name": "Level 5" }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.root.0, "name": "Home", "type": "PERSONAL" }),
    )
    .await;
    assert_eq!(reply.status, 201);
    let personal = reply.body["id"].as_i64().unwrap();
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": personal, "name": "Shop", "type": "RESELLER" }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.root.0, "name": "X", "type": "ROOT" }),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    // With a fresh email the Admin is invited and holds the Admin role there.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.root.0, "name": "Client",
                "admin": { "email": "boss@client.test", "name": "Boss" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let org = reply.body["id"].as_i64().unwrap();
    let boss = reply.body["admin_user_id"].as_i64().unwrap();
    let reply = get(
        &app,
        &format!("/api/v1/access/effective-permissions?user_id={boss}&org_id={org}"),
        &root,
    )
    .await;
    // Pending until the invitation is accepted: denied by rule 1.
    assert_eq!(
        reply.body["denied"]["decision"]["rule"], "user_inactive",
        "{reply:?}"
    );
    assert_eq!(reply.body["permissions"], json!([]));
    let token = app.mailed_token("boss@client.test").await;
    let accepted = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({ "token": token, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let reply = get(
        &app,
        &format!("/api/v1/access/effective-permissions?user_id={boss}&org_id={org}"),
        &root,
    )
    .await;
    assert_eq!(
        reply.body["via_role_id"],
        w.role(BuiltinRole::Admin).0,
        "{reply:?}"
    );
    assert_eq!(reply.body["via_org_id"], org);
    assert!(reply.body.get("denied").is_none());
    let undone: Vec<AuditRow> = audit_since(&app, 0)
        .await
        .into_iter()
        .filter(|r| r.action.contains("undo"))
        .collect();
    assert!(undone.is_empty(), "{undone:?}");
}

async fn deleting_an_org_answers_409_with_counts_unless_contents_move_up(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let gc_user = user_id(&app, &email(BuiltinRole::User, "grandchild")).await;
    let device = w.device(&app, w.grandchild, Some(gc_user), "Meter").await;
    let c = w.child.0;
    let reply = delete(&app, &format!("/api/v1/orgs/{c}"), &root).await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(
        reply.body["extra"]["contents"],
        json!({ "suborgs": 1, "users": 3, "devices": 0 })
    );
    let reply = delete(&app, &format!("/api/v1/orgs/{}", w.root.0), &root).await;
    assert_eq!(reply.status, 409, "the root stays: {reply:?}");

    let reply = delete(
        &app,
        &format!(
            "/api/v1/orgs/{}?move_contents_to_parent=true",
            w.grandchild.0
        ),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["moved_to"], c);
    assert_eq!(
        reply.body["moved"],
        json!({ "suborgs": 0, "users": 3, "devices": 1 })
    );
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{}", w.grandchild.0), &root)
            .await
            .status,
        404
    );
    // The members and the device now live in Child.
    let reply = get(
        &app,
        &format!(
            "/api/v1/access/effective-permissions?user_id={}&org_id={c}",
            gc_user.0
        ),
        &root,
    )
    .await;
    assert_eq!(reply.body["via_org_id"], c, "{reply:?}");
    let owner = app
        .login(&email(BuiltinRole::User, "grandchild"), PASSWORD)
        .await;
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{c}"), &owner).await.status,
        200
    );
    let why = explain_device(
        &app,
        &root,
        user_id(&app, &email(BuiltinRole::Admin, "child")).await,
        "view",
        device,
    )
    .await;
    assert_eq!(why.body["decision"]["target_org"], c);

    // An empty org goes without moving anything.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.sibling.0, "name": "Empty" }),
    )
    .await;
    let empty = reply.body["id"].as_i64().unwrap();
    let reply = delete(&app, &format!("/api/v1/orgs/{empty}"), &root).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body["moved_to"].is_null());
    let rows = audit(&app, &format!("org:{empty}")).await;
    assert!(
        rows.iter()
            .any(|(a, o)| a == "org.delete" && o == "allowed"),
        "{rows:?}"
    );
    let rows = audit(&app, &format!("org:{c}")).await;
    assert!(
        rows.iter().any(|(a, o)| a == "org.delete" && o == "failed"),
        "{rows:?}"
    );
}

async fn an_org_whose_invitations_were_accepted_stays_deletable(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let staff = w.role(BuiltinRole::Staff).0;
    let sibling = w.sibling;
    let new_org = |name: &'static str| {
        let (app, root) = (&app, &root);
        async move {
            let reply = post(
                app,
                "/api/v1/orgs",
                root,
                json!({ "parent_id": sibling.0, "name": name }),
            )
            .await;
            assert_eq!(reply.status, 201, "{reply:?}");
            reply.body["id"].as_i64().unwrap()
        }
    };
    let transfer = |user: UserId| {
        let (app, root) = (&app, &root);
        async move {
            let reply = post(
                app,
                &format!("/api/v1/users/{}/transfer", user.0),
                root,
                json!({ "org_id": sibling.0, "role_id": staff }),
            )
            .await;
            assert_eq!(reply.status, 204, "{reply:?}");
        }
    };

    // Invited, accepted, transferred away: the org is empty and goes.
    let emptied = new_org("Emptied").await;
    let moved = invite_and_accept(&app, &root, "moved@root.test", OrgId(emptied), staff).await;
    transfer(moved).await;
    let reply = delete(&app, &format!("/api/v1/orgs/{emptied}"), &root).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body["moved_to"].is_null(), "{reply:?}");

    // Invited and accepted, deleted with its contents moved up.
    let folded = new_org("Folded").await;
    let member = invite_and_accept(&app, &root, "member@root.test", OrgId(folded), staff).await;
    let reply = delete(
        &app,
        &format!("/api/v1/orgs/{folded}?move_contents_to_parent=true"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["moved_to"], w.sibling.0);
    let me = app.login("member@root.test", PASSWORD).await;
    let body = get(&app, "/api/v1/me", &me).await.body;
    assert_eq!(body["memberships"][0]["org_id"], w.sibling.0, "{body:?}");
    assert_eq!(body["id"], member.0, "{body:?}");

    // Invited, not yet accepted, transferred away: the org goes, and the
    // link still activates the account, now in the org the user lives in.
    let left = new_org("Left").await;
    let reply = post(
        &app,
        "/api/v1/users/invitations",
        &root,
        json!({ "email": "pending@root.test", "name": "P", "org_id": left, "role_id": staff }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let pending = UserId(reply.body["user_id"].as_i64().unwrap());
    transfer(pending).await;
    let reply = delete(&app, &format!("/api/v1/orgs/{left}"), &root).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    accept(&app, "pending@root.test").await;
    let mut tx = app.db.store().read().await.unwrap();
    let rows = tx
        .audit_for_target(&format!("user:{}", pending.0))
        .await
        .unwrap();
    tx.finish().await.unwrap();
    let accepted = rows
        .iter()
        .find(|r| r.action == "user.accept_invitation")
        .unwrap();
    assert_eq!(accepted.target_org, Some(w.sibling));
}

async fn roles_are_capped_renamed_and_deleted_with_replacement(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let mut created = Vec::new();
    for i in 4..=9 {
        let reply = post(
            &app,
            "/api/v1/roles",
            &root,
            json!({ "name": format!("Role {i}") }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert!(reply.body["builtin"].is_null());
        created.push(reply.body["id"].as_i64().unwrap());
    }
    let reply = post(&app, "/api/v1/roles", &root, json!({ "name": "Tenth" })).await;
    assert_eq!(reply.status, 409, "{reply:?}");
    let reply = post(&app, "/api/v1/roles", &root, json!({ "name": " staff " })).await;
    assert_eq!(reply.status, 409, "{reply:?}");
    let installer = created[0];
    let reply = patch(
        &app,
        &format!("/api/v1/roles/{installer}"),
        &root,
        json!({ "name": "Installer" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["name"], "Installer");
    let reply = patch(
        &app,
        &format!("/api/v1/roles/{installer}"),
        &root,
        json!({ "name": "ADMIN" }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    // A new role starts empty everywhere; the matrix shows it grouped as the catalog.
    let matrix = get(
        &app,
        &format!("/api/v1/orgs/{}/permissions", w.child.0),
        &root,
    )
    .await
    .body;
    assert_eq!(matrix["roles"].as_array().unwrap().len(), 9);
    assert_eq!(matrix["sets"][installer.to_string()], json!([]));
    assert_eq!(matrix["groups"][0]["id"], "roles");
    let view = &matrix["groups"][3]["permissions"][0];
    assert_eq!(view["id"], "org_devices.view");
    assert_eq!(
        view["roles"],
        json!([w.role(BuiltinRole::Admin).0, w.role(BuiltinRole::Staff).0])
    );

    // Give two members the new role, then delete it in favour of User.
    let staff_child = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let staff_sibling = user_id(&app, &email(BuiltinRole::Staff, "sibling")).await;
    for user in [staff_child, staff_sibling] {
        let reply = patch(
            &app,
            &format!("/api/v1/users/{}", user.0),
            &root,
            json!({ "role_id": installer }),
        )
        .await;
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    let admin = w.role(BuiltinRole::Admin).0;
    let reply = delete(
        &app,
        &format!("/api/v1/roles/{admin}?replacement={installer}"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 409, "Admin stays: {reply:?}");
    let reply = delete(
        &app,
        &format!("/api/v1/roles/{installer}?replacement={installer}"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let user = w.role(BuiltinRole::User).0;
    let reply = delete(
        &app,
        &format!("/api/v1/roles/{installer}?replacement={user}"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut moved: Vec<i64> = reply.body["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    moved.sort_unstable();
    assert_eq!(moved, vec![staff_child.0, staff_sibling.0]);
    let roles = get(&app, "/api/v1/roles", &root).await.body;
    assert_eq!(roles.as_array().unwrap().len(), 8);
    let reply = get(
        &app,
        &format!(
            "/api/v1/access/effective-permissions?user_id={}&org_id={}",
            staff_child.0, w.child.0
        ),
        &root,
    )
    .await;
    assert_eq!(reply.body["via_role_id"], user);
    let reply = post(
        &app,
        "/api/v1/roles",
        &root,
        json!({ "name": "Ninth again" }),
    )
    .await;
    assert_eq!(reply.status, 201, "room for one again: {reply:?}");
    let rows = audit(&app, &format!("role:{installer}")).await;
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    assert!(
        actions.contains(&"role.rename") && actions.contains(&"role.delete"),
        "{actions:?}"
    );
}

async fn templates_apply_and_push_with_a_report(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let user = w.role(BuiltinRole::User).0;
    // Child's Users may see their own devices; save that as a template.
    let reply = put(
        &app,
        &format!("/api/v1/orgs/{}/roles/{user}/permissions", w.child.0),
        &root,
        json!({ "permissions": ["own_devices.view"] }),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = post(
        &app,
        "/api/v1/permission-templates",
        &root,
        json!({ "name": "owners see", "from_org_id": w.child.0 }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        reply.body["sets"][user.to_string()],
        json!(["own_devices.view"])
    );
    let template = reply.body["id"].as_i64().unwrap();
    let reply = post(
        &app,
        "/api/v1/permission-templates",
        &root,
        json!({ "name": "owners see", "from_org_id": w.root.0 }),
    )
    .await;
    assert_eq!(reply.status, 409, "names are unique: {reply:?}");
    let list = get(&app, "/api/v1/permission-templates", &root).await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/apply"),
        &root,
        json!({ "org_id": w.sibling.0 }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, json!({ "orgs": 1, "changed": [w.sibling.0] }));
    // Root, Child, Grandchild, Sibling: Child and Sibling have it already.
    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/push"),
        &root,
        json!({ "org_id": w.root.0 }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["orgs"], 4);
    let mut changed: Vec<i64> = reply.body["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    changed.sort_unstable();
    let mut want = vec![w.root.0, w.grandchild.0];
    want.sort_unstable();
    assert_eq!(changed, want);
    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/push"),
        &root,
        json!({ "org_id": w.root.0 }),
    )
    .await;
    assert_eq!(reply.body["changed"], json!([]));
    for org in [w.root, w.child, w.grandchild, w.sibling] {
        let matrix = get(&app, &format!("/api/v1/orgs/{}/permissions", org.0), &root)
            .await
            .body;
        assert_eq!(
            matrix["sets"][user.to_string()],
            json!(["own_devices.view"]),
            "org {org}"
        );
    }
    // A template of another hierarchy is not found.
    let other = app.login("admin@other.test", PASSWORD).await;
    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/apply"),
        &other,
        json!({ "org_id": w.other.0 }),
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let rows = audit(&app, &format!("template:{template}")).await;
    assert!(
        rows.iter()
            .filter(|(a, o)| a == "permission_template.push" && o == "allowed")
            .count()
            == 2,
        "{rows:?}"
    );
}

async fn every_change_is_audited_with_home_and_target_org(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let user = w.role(BuiltinRole::User).0;
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.child.0, "name": "Audited" }),
    )
    .await;
    let org = reply.body["id"].as_i64().unwrap();
    let steps = [
        patch(
            &app,
            &format!("/api/v1/orgs/{org}"),
            &root,
            json!({ "contact": "x" }),
        )
        .await,
        post(
            &app,
            &format!("/api/v1/orgs/{org}/transfer"),
            &root,
            json!({ "new_parent_id": w.sibling.0, "confirm": true }),
        )
        .await,
        put(
            &app,
            &format!("/api/v1/orgs/{org}/roles/{user}/permissions"),
            &root,
            json!({ "permissions": ["tags.view"] }),
        )
        .await,
        post(&app, "/api/v1/roles", &root, json!({ "name": "Auditor" })).await,
        post(
            &app,
            "/api/v1/permission-templates",
            &root,
            json!({ "name": "t", "from_org_id": org }),
        )
        .await,
    ];
    for step in &steps {
        assert!(step.status < 300, "{step:?}");
    }
    let role = steps[3].body["id"].as_i64().unwrap();
    let template = steps[4].body["id"].as_i64().unwrap();
    let more = [
        patch(
            &app,
            &format!("/api/v1/roles/{role}"),
            &root,
            json!({ "name": "Auditors" }),
        )
        .await,
        delete(
            &app,
            &format!("/api/v1/roles/{role}?replacement={user}"),
            &root,
        )
        .await,
        post(
            &app,
            &format!("/api/v1/permission-templates/{template}/apply"),
            &root,
            json!({ "org_id": w.child.0 }),
        )
        .await,
        post(
            &app,
            &format!("/api/v1/permission-templates/{template}/push"),
            &root,
            json!({ "org_id": w.sibling.0 }),
        )
        .await,
        delete(&app, &format!("/api/v1/orgs/{org}"), &root).await,
    ];
    for step in &more {
        assert!(step.status < 300, "{step:?}");
    }
    // Straight from the table: the actions log leaves out orgs that no longer exist.
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let rows: Vec<serde_json::Value> = sqlx::query(
        "SELECT action, outcome, actor_user_id, actor_home_org_id, target_org_id \
         FROM audit_events ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        use sqlx::Row as _;
        json!({
            "action": r.get::<String, _>(0),
            "outcome": r.get::<String, _>(1),
            "actor_user_id": r.get::<Option<i64>, _>(2),
            "actor_home_org_id": r.get::<Option<i64>, _>(3),
            "target_org_id": r.get::<Option<i64>, _>(4),
        })
    })
    .collect();
    for action in [
        "org.create",
        "org.update",
        "org.move",
        "org.delete",
        "role.permissions.set",
        "role.create",
        "role.rename",
        "role.delete",
        "permission_template.create",
        "permission_template.apply",
        "permission_template.push",
    ] {
        let row = rows
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no audit row for {action}"));
        assert_eq!(row["outcome"], "allowed", "{action}");
        assert_eq!(row["actor_user_id"], w.root_admin.0, "{action}");
        assert_eq!(row["actor_home_org_id"], w.root.0, "{action}");
        assert!(row["target_org_id"].is_i64(), "{action}: {row}");
    }
    let deleted = rows.iter().find(|r| r["action"] == "org.delete").unwrap();
    assert_eq!(deleted["target_org_id"], org);
}

/// The role of each membership `token`'s user holds, as (org, role name).
async fn memberships(app: &TestApp, token: &str) -> Vec<(i64, String)> {
    let me = get(app, "/api/v1/me", token).await;
    assert_eq!(me.status, 200, "{me:?}");
    me.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["org_id"].as_i64().unwrap(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The moves of a deletion as (user, old role, new role), sorted.
fn moves(members: &serde_json::Value, keys: [&str; 3]) -> Vec<(i64, i64, Option<i64>)> {
    let mut moves: Vec<_> = members
        .as_array()
        .unwrap_or_else(|| panic!("no member list: {members}"))
        .iter()
        .map(|m| {
            (
                m[keys[0]].as_i64().unwrap(),
                m[keys[1]].as_i64().unwrap(),
                m[keys[2]].as_i64(),
            )
        })
        .collect();
    moves.sort_unstable();
    moves
}

/// Defect 1: moving a deleted org's members up used to keep their roles, so
/// the Admin of a leaf org became an Admin of its parent and saw the parent's
/// other sub-orgs (seed 001: M, Admin of Customer M, would have seen Customer
/// H's devices once Customer M was deleted).
async fn deleting_an_org_moves_its_members_up_without_promoting_them(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let (c, gc) = (w.child.0, w.grandchild.0);
    let [admin, staff, user] = w.roles.map(|r| r.0);
    // Child's other sub-org, with a device of its own.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": c, "name": "Neighbour" }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let neighbour = arbor_core::OrgId(reply.body["id"].as_i64().unwrap());
    app.app()
        .enable_device_template(&cli(w.root_admin), neighbour, w.template)
        .await
        .unwrap();
    let device = w.device(&app, neighbour, None, "Neighbour's pump").await;
    let moved: Vec<i64> = {
        let mut ids = Vec::new();
        for kind in KINDS {
            ids.push(user_id(&app, &email(kind, "grandchild")).await.0);
        }
        ids
    };
    let gc_admin = app
        .login(&email(BuiltinRole::Admin, "grandchild"), PASSWORD)
        .await;
    assert_eq!(memberships(&app, &gc_admin).await, [(gc, "Admin".into())]);

    let mark = audit_mark(&app).await;
    let reply = delete(
        &app,
        &format!("/api/v1/orgs/{gc}?move_contents_to_parent=true"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Grandchild's Admin is now a User of Child (the least-privileged role
    // there: no permissions, and the built-in User on a tie), and sees
    // nothing of Child's other sub-orgs.
    assert_eq!(memberships(&app, &gc_admin).await, [(c, "User".into())]);
    let neighbour_path = format!("/api/v1/orgs/{}", neighbour.0);
    assert_eq!(get(&app, &neighbour_path, &gc_admin).await.status, 404);
    let listed = get(&app, "/api/v1/orgs", &gc_admin).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "{listed:?}"
    );
    let why = explain_device(&app, &root, UserId(moved[0]), "view", device).await;
    assert_eq!(why.body["allowed"], false, "{why:?}");
    assert_eq!(why.body["decision"]["outcome"], "hidden", "{why:?}");
    // The answer and the audit row list every move with its old and new role.
    let want = {
        let mut want = vec![
            (moved[0], admin, Some(user)),
            (moved[1], staff, Some(user)),
            (moved[2], user, Some(user)),
        ];
        want.sort_unstable();
        want
    };
    assert_eq!(
        moves(
            &reply.body["members"],
            ["user_id", "old_role_id", "new_role_id"]
        ),
        want
    );
    let rows = audit_since(&app, mark).await;
    let row = rows
        .iter()
        .find(|r| r.action == "org.delete" && r.target == format!("org:{gc}"))
        .unwrap_or_else(|| panic!("no org.delete row: {rows:?}"));
    assert_eq!(row.outcome, "allowed");
    assert_eq!(
        moves(&row.details["members"], ["user", "old_role", "new_role"]),
        want
    );

    // An explicit role map applies: Neighbour's members keep Admin and
    // Staff in Child, as the root Admin (who holds both) says.
    let by = cli(w.root_admin);
    let mut kept = Vec::new();
    for (name, role) in [("boss", admin), ("hand", staff)] {
        let id = app
            .app()
            .add_member(
                &by,
                neighbour,
                &arbor_app::NewMember {
                    user: new_user(&format!("{name}@neighbour.test")),
                    role: arbor_core::RoleId(role),
                },
            )
            .await
            .unwrap();
        kept.push(id.0);
    }
    // Were the least-privileged role able to switch to sub-orgs in Child,
    // moving members up without a map would open Child's subtree: refused.
    let saved = put(
        &app,
        &format!("/api/v1/orgs/{c}/roles/{user}/permissions"),
        &root,
        json!({ "permissions": ["organizations.switch_to_suborgs"] }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let reply = delete(
        &app,
        &format!("{neighbour_path}?move_contents_to_parent=true"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(get(&app, &neighbour_path, &root).await.status, 200);
    let reply = delete(
        &app,
        &format!(
            "{neighbour_path}?move_contents_to_parent=true&role_map={admin}:{admin},{staff}:{staff}"
        ),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        moves(
            &reply.body["members"],
            ["user_id", "old_role_id", "new_role_id"]
        ),
        [(kept[0], admin, Some(admin)), (kept[1], staff, Some(staff))]
    );
    let boss = app.login("boss@neighbour.test", PASSWORD).await;
    assert_eq!(memberships(&app, &boss).await, [(c, "Admin".into())]);
}

/// The sets of `org`'s permission matrix, by role id, as the root Admin reads them.
async fn sets(app: &TestApp, token: &str, org: i64) -> serde_json::Value {
    let matrix = get(app, &format!("/api/v1/orgs/{org}/permissions"), token).await;
    assert_eq!(matrix.status, 200, "{matrix:?}");
    matrix.body["sets"].clone()
}

/// Defect 2: the root org's Admin set could be edited down (or overwritten
/// by a template), locking the whole hierarchy out of its role management.
/// (`arbor admin recover`, the way out of an older lockout, is tested in
/// crates/cli/tests/recover.rs.)
async fn the_root_admin_set_always_holds_the_whole_catalog(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let r = w.root.0;
    let admin = w.role(BuiltinRole::Admin).0;
    let whole = sets(&app, &root, r).await[admin.to_string()].clone();
    let catalog = whole.as_array().unwrap().len();
    assert!(catalog > 60, "{whole}");
    let without_roles: Vec<&serde_json::Value> = whole
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p.as_str().unwrap().starts_with("roles."))
        .collect();
    let before = sets(&app, &root, r).await;
    let mark = audit_mark(&app).await;
    let reply = put(
        &app,
        &format!("/api/v1/orgs/{r}/roles/{admin}/permissions"),
        &root,
        json!({ "permissions": without_roles }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(sets(&app, &root, r).await, before, "nothing changed");
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("role.permissions.set", "failed")
    );
    // The whole catalog may be saved again; a sub-org's Admin set may shrink.
    let reply = put(
        &app,
        &format!("/api/v1/orgs/{r}/roles/{admin}/permissions"),
        &root,
        json!({ "permissions": whole }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = put(
        &app,
        &format!("/api/v1/orgs/{}/roles/{admin}/permissions", w.child.0),
        &root,
        json!({ "permissions": ["org_devices.view"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // A template whose Admin set is small, pushed over the whole hierarchy
    // and applied to the root: every org's Admin gets it but the root's.
    let reply = post(
        &app,
        "/api/v1/permission-templates",
        &root,
        json!({ "name": "small admins", "from_org_id": w.child.0 }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let template = reply.body["id"].as_i64().unwrap();
    let mark = audit_mark(&app).await;
    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/push"),
        &root,
        json!({ "org_id": r }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["orgs"], 4);
    let reply = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/apply"),
        &root,
        json!({ "org_id": r }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(sets(&app, &root, r).await[admin.to_string()], whole);
    for org in [w.grandchild, w.sibling] {
        assert_eq!(
            sets(&app, &root, org.0).await[admin.to_string()],
            json!(["org_devices.view"]),
            "org {org}"
        );
    }
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row.details["root_admin_skipped"], true, "{row:?}");
    }
    // And the root Admin still manages roles.
    let reply = post(&app, "/api/v1/roles", &root, json!({ "name": "Installer" })).await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

/// Defect 9: an accepted invitation kept a reference to its org, so the org
/// could no longer be deleted once the member had moved on.
async fn an_org_whose_invitation_was_accepted_stays_deletable(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let user = w.role(BuiltinRole::User).0;
    // An org created with its Admin invited; the Admin accepts.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.root.0, "name": "Client",
                "admin": { "email": "boss@client.test", "name": "Boss" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let client = reply.body["id"].as_i64().unwrap();
    accept(&app, "boss@client.test").await;
    let reply = delete(
        &app,
        &format!("/api/v1/orgs/{client}?move_contents_to_parent=true"),
        &root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let boss = app.login("boss@client.test", PASSWORD).await;
    assert_eq!(
        get(&app, "/api/v1/me", &boss).await.body["memberships"][0]["org_id"],
        w.root.0
    );
    // An org whose only member accepted an invitation and then moved to
    // another org is empty, and goes without moving anything.
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.root.0, "name": "Waypoint" }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let waypoint = reply.body["id"].as_i64().unwrap();
    let visitor = invite_and_accept(
        &app,
        &root,
        "visitor@waypoint.test",
        arbor_core::OrgId(waypoint),
        user,
    )
    .await;
    let moved = post(
        &app,
        &format!("/api/v1/users/{}/transfer", visitor.0),
        &root,
        json!({ "org_id": w.sibling.0, "role_id": user }),
    )
    .await;
    assert_eq!(moved.status, 204, "{moved:?}");
    let reply = delete(&app, &format!("/api/v1/orgs/{waypoint}"), &root).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body["moved_to"].is_null(), "{reply:?}");
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{waypoint}"), &root)
            .await
            .status,
        404
    );
}

/// Defect 9: `?q=` treated `%` and `_` as wildcards and folded case only for
/// ASCII on SQLite, so the two engines answered differently.
async fn search_text_is_literal_and_folds_case_alike_on_both_engines(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let mut orgs = Vec::new();
    for name in [
        "100% Solar",
        "Solar_Ost",
        "SolarXOst",
        "Éclair Öfen",
        "Ärzte",
    ] {
        let reply = post(
            &app,
            "/api/v1/orgs",
            &root,
            json!({ "parent_id": w.root.0, "name": name }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        orgs.push(reply.body["id"].as_i64().unwrap());
    }
    let found = async |path: &str| -> Vec<i64> {
        let reply = get(&app, path, &root).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect()
    };
    let mut failures = Vec::new();
    for (query, want) in [
        ("100%25", vec![orgs[0]]),
        ("%25", vec![orgs[0]]),
        ("r_o", vec![orgs[1]]),
        ("_", vec![orgs[1]]),
        ("éclair", vec![orgs[3]]),
        ("ÉCLAIR", vec![orgs[3]]),
        ("öfen", vec![orgs[3]]),
        ("ärzte", vec![orgs[4]]),
        ("ÄRZTE", vec![orgs[4]]),
    ] {
        let got = found(&format!("/api/v1/orgs?q={query}")).await;
        if got != want {
            failures.push(format!("orgs ?q={query}: got {got:?}, want {want:?}"));
        }
    }
    // Users: names and emails fold alike too (the wildcards of a user
    // search are pinned in the api suite's user-list test).
    let by = cli(w.root_admin);
    let mut users = Vec::new();
    for (address, name) in [("elodie@child.test", "Élodie"), ("jorg@child.test", "JÖRG")] {
        let mut new = new_user(address);
        new.name = name.into();
        users.push(
            app.app()
                .add_member(
                    &by,
                    w.child,
                    &arbor_app::NewMember {
                        user: new,
                        role: w.role(BuiltinRole::User),
                    },
                )
                .await
                .unwrap()
                .0,
        );
    }
    for (query, want) in [
        ("élodie", vec![users[0]]),
        ("ÉLODIE", vec![users[0]]),
        ("jörg", vec![users[1]]),
    ] {
        let got = found(&format!("/api/v1/users?q={query}")).await;
        if got != want {
            failures.push(format!("users ?q={query}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether `template` is enabled for `org`, straight from the store.
async fn enabled(
    app: &TestApp,
    org: arbor_core::OrgId,
    template: arbor_app::model::DeviceTemplateId,
) -> bool {
    let mut tx = app.db.store().read().await.unwrap();
    let enabled = tx.template_enabled(org, template).await.unwrap();
    tx.finish().await.unwrap();
    enabled
}

/// Enabling a device template (a use case without an HTTP route yet): a
/// template of another hierarchy is absent, and the decision is taken at the
/// org's parent, so a sub-org's Admin cannot enable templates for itself.
async fn device_templates_are_enabled_from_the_parent_within_the_hierarchy(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let core = app.app();
    let root_admin = cli(w.root_admin);
    let other_admin = cli(user_id(&app, "admin@other.test").await);
    let child_admin_id = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    let child_admin = cli(child_admin_id);
    let child_staff = cli(user_id(&app, &email(BuiltinRole::Staff, "child")).await);
    let alien = core
        .create_device_template(&other_admin, w.other, "Alien", &[])
        .await
        .unwrap();
    let meter = core
        .create_device_template(&root_admin, w.root, "Meter", &[])
        .await
        .unwrap();

    let mark = audit_mark(&app).await;
    let refused = core
        .enable_device_template(&root_admin, w.child, alien)
        .await;
    assert!(
        matches!(refused, Err(arbor_app::AppError::NotFound { .. })),
        "another hierarchy's template: {refused:?}"
    );
    let refused = core
        .enable_device_template(&child_admin, w.child, meter)
        .await;
    assert!(
        matches!(refused, Err(arbor_app::AppError::NotFound { .. })),
        "decided at Root, outside Child's Admin's scope: {refused:?}"
    );
    let refused = core
        .enable_device_template(&child_staff, w.grandchild, meter)
        .await;
    assert!(
        matches!(refused, Err(arbor_app::AppError::Forbidden { .. })),
        "Child's Staff lacks templates.edit: {refused:?}"
    );
    let rows = audit_since(&app, mark).await;
    let seen: Vec<(&str, Option<i64>, Option<i64>)> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.actor_home_org, r.target_org))
        .collect();
    let (root, c, gc) = (Some(w.root.0), Some(w.child.0), Some(w.grandchild.0));
    assert_eq!(
        seen,
        [
            ("hidden", root, root),
            ("hidden", c, c),
            ("forbidden", c, gc)
        ],
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.action == "template.enable"));
    assert!(!enabled(&app, w.child, alien).await && !enabled(&app, w.child, meter).await);
    // From the parent it works: Child's Admin for Grandchild, the root's for Child.
    core.enable_device_template(&child_admin, w.grandchild, meter)
        .await
        .unwrap();
    core.enable_device_template(&root_admin, w.child, meter)
        .await
        .unwrap();
    assert!(enabled(&app, w.grandchild, meter).await && enabled(&app, w.child, meter).await);
}
