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
    let reply = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": w.child.0, "name": "Taken",
                "admin": { "email": email(BuiltinRole::Staff, "sibling"), "name": "Dup" } }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(count(&app).await, before);
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
