//! User lifecycle flows beyond the authorization matrix.

use crate::support::{Client, World, json, problem, user_id};
use arbor_app::Caller;
use arbor_app::model::{ClientKind, NewDatastream, NewDevice};
use arbor_core::{DeviceId, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

async fn device(
    app: &TestApp,
    w: &World,
    org: arbor_core::OrgId,
    owner: UserId,
    name: &str,
) -> DeviceId {
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let a = app.app();
    let template = a
        .create_device_template(
            &root,
            w.root,
            &format!("T-{name}"),
            &[NewDatastream {
                pin: 0,
                name: "V0".into(),
                value_type: "integer".into(),
                min: None,
                max: None,
                units: String::new(),
            }],
        )
        .await
        .unwrap();
    if org != w.root {
        a.enable_device_template(&root, org, template)
            .await
            .unwrap();
    }
    let device = NewDevice {
        name: name.into(),
        template,
        owner: Some(owner),
        metafields: vec![],
    };
    a.create_device(&root, org, &device).await.unwrap()
}

async fn owner_of(app: &TestApp, device: DeviceId) -> Option<UserId> {
    let mut tx = app.db.store().read().await.unwrap();
    let record = tx.device(device).await.unwrap();
    tx.finish().await.unwrap();
    record.owner
}

async fn bulk_invitation_reports_each_row_and_half_creates_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let csv = format!(
        "email,name,role,org\n\
         ann@root.test,Ann,staff,{child}\n\
         root-admin@root.test,Dup,User,{child}\n\
         bob@root.test,Bob,Wizard,{child}\n\
         cy@root.test,Cy,User,{other}\n\
         dee@root.test,Dee,User,{sibling}\n",
        child = w.child.0,
        other = w.other.0,
        sibling = w.sibling.0,
    );
    let response = admin
        .request(reqwest::Method::POST, "/api/v1/users/invitations/bulk")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let report = json(response, 200).await;
    assert_eq!(report["invited"], 2);
    assert_eq!(report["failed"], 3);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows[0]["line"], 2);
    assert!(rows[0]["user_id"].is_i64());
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert!(rows[2]["error"].as_str().unwrap().contains("Wizard"));
    assert!(
        rows[3]["error"].as_str().unwrap().contains("not found"),
        "another hierarchy's org is invisible"
    );
    assert!(rows[4]["error"].is_null());
    // Failed rows left nothing behind; succeeded rows are pending with a mail each.
    let page = json(admin.get("/api/v1/users?limit=500").await, 200).await;
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"ann@root.test") && emails.contains(&"dee@root.test"));
    assert!(!emails.contains(&"bob@root.test") && !emails.contains(&"cy@root.test"));
    app.mailed_token("ann@root.test").await;
    let header = admin
        .request(reqwest::Method::POST, "/api/v1/users/invitations/bulk")
        .header("content-type", "text/csv")
        .body("mail,name\nx@y.z,X\n")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(header, 400).await["field"], "csv");
}

async fn deleting_a_user_hands_their_devices_to_the_earliest_admin(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let first_admin = w.member(a, w.child, w.admin, "first@root.test").await;
    let second_admin = w.member(a, w.child, w.admin, "second@root.test").await;
    let leaver = w.member(a, w.child, w.staff, "leaver@root.test").await;
    let d1 = device(&app, &w, w.child, leaver, "d1").await;
    let d2 = device(&app, &w, w.child, leaver, "d2").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    // A named heir must be an Admin of the device's org.
    let bad = admin
        .delete(&format!(
            "/api/v1/users/{}?heir={}",
            leaver.0, w.root_admin.0
        ))
        .await;
    assert_eq!(problem(bad, 400).await["field"], "heir");
    json(
        admin.delete(&format!("/api/v1/users/{}", leaver.0)).await,
        204,
    )
    .await;
    assert_eq!(owner_of(&app, d1).await, Some(first_admin));
    assert_eq!(owner_of(&app, d2).await, Some(first_admin));
    problem(admin.get(&format!("/api/v1/users/{}", leaver.0)).await, 404).await;
    // With a named heir.
    let leaver = w.member(a, w.child, w.staff, "leaver2@root.test").await;
    let d3 = device(&app, &w, w.child, leaver, "d3").await;
    json(
        admin
            .delete(&format!(
                "/api/v1/users/{}?heir={}",
                leaver.0, second_admin.0
            ))
            .await,
        204,
    )
    .await;
    assert_eq!(owner_of(&app, d3).await, Some(second_admin));
}

async fn transferring_a_user_moves_the_membership_and_optionally_the_devices(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let child_admin = w.member(a, w.child, w.admin, "child-admin@root.test").await;
    let mover = w.member(a, w.child, w.staff, "mover@root.test").await;
    let stays = device(&app, &w, w.child, mover, "stays").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let path = format!("/api/v1/users/{}/transfer", mover.0);
    json(
        admin
            .post(&path, json!({"org_id": w.sibling.0, "role_id": w.user.0}))
            .await,
        204,
    )
    .await;
    assert_eq!(owner_of(&app, stays).await, Some(child_admin));
    let me = Client::login(&app, "mover@root.test").await;
    let body = json(me.get("/api/v1/me").await, 200).await;
    assert_eq!(body["memberships"][0]["org_id"], w.sibling.0);
    assert_eq!(body["memberships"][0]["role"], "User");
    // With devices: they move along (the template is enabled in the target).
    let goes = device(&app, &w, w.sibling, mover, "goes").await;
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let template = {
        let mut tx = app.db.store().read().await.unwrap();
        let t = tx.device(goes).await.unwrap().template;
        tx.finish().await.unwrap();
        t
    };
    a.enable_device_template(&root, w.grandchild, template)
        .await
        .unwrap();
    json(
        admin
            .post(
                &path,
                json!({"org_id": w.grandchild.0, "role_id": w.staff.0, "with_devices": true}),
            )
            .await,
        204,
    )
    .await;
    let mut tx = app.db.store().read().await.unwrap();
    let moved = tx.device(goes).await.unwrap();
    tx.finish().await.unwrap();
    assert_eq!((moved.org.id(), moved.owner), (w.grandchild, Some(mover)));
}

async fn staff_who_may_edit_users_cannot_touch_more_privileged_members(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let mut staff_set = arbor_core::BuiltinRole::Staff.default_permissions();
    staff_set.insert(arbor_core::Permission::UsersEdit);
    staff_set.insert(arbor_core::Permission::UsersSuspend);
    a.set_role_permissions(&root, w.child, w.staff, staff_set)
        .await
        .unwrap();
    let child_admin = w.member(a, w.child, w.admin, "child-admin@root.test").await;
    let colleague = w.member(a, w.child, w.user, "colleague@root.test").await;
    w.member(a, w.child, w.staff, "staff@root.test").await;
    let staff = Client::login(&app, "staff@root.test").await;
    // The Admin holds permissions the Staff member lacks: refused, nothing changes.
    let refused = problem(
        staff
            .post(
                &format!("/api/v1/users/{}/suspend", child_admin.0),
                json!({}),
            )
            .await,
        403,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("rule 6"),
        "{refused}"
    );
    // Promoting a colleague to Admin would grant what the Staff member lacks:
    // forbidden by the no-escalation rule, naming what is missing.
    let promote = staff
        .patch(
            &format!("/api/v1/users/{}", colleague.0),
            json!({"role_id": w.admin.0}),
        )
        .await;
    let conflict = problem(promote, 403).await;
    let missing = conflict["extra"]["missing_permissions"].as_array().unwrap();
    assert!(missing.contains(&json!("users.delete")), "{conflict}");
    // The same ids, as an array at the top level of the problem.
    assert_eq!(
        conflict["missing_permissions"],
        conflict["extra"]["missing_permissions"]
    );
    let admin = Client::login(&app, "child-admin@root.test").await;
    assert_eq!(
        json(admin.get("/api/v1/me").await, 200).await["status"],
        "active"
    );
    let body = json(
        Client::login(&app, "colleague@root.test")
            .await
            .get("/api/v1/me")
            .await,
        200,
    )
    .await;
    assert_eq!(body["memberships"][0]["role"], "User");
    // A less privileged member is fine.
    json(
        staff
            .patch(
                &format!("/api/v1/users/{}", colleague.0),
                json!({"name": "Col"}),
            )
            .await,
        204,
    )
    .await;
}

async fn the_user_list_pages_and_the_csv_is_safe_for_spreadsheets(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let mut ids = vec![w.root_admin.0];
    for i in 0..4 {
        ids.push(
            w.member(a, w.child, w.user, &format!("u{i}@root.test"))
                .await
                .0,
        );
    }
    let sneaky = w.member(a, w.child, w.user, "sneaky@root.test").await;
    ids.push(sneaky.0);
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let edit = arbor_app::users::UserEdit {
        name: Some("=HYPERLINK(\"http://evil\")".into()),
        ..Default::default()
    };
    a.edit_user(&root, sneaky, &edit).await.unwrap();
    let admin = Client::login(&app, "root-admin@root.test").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".into(),
        };
        let page = json(admin.get(&path).await, 200).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    problem(admin.get("/api/v1/users?cursor=garbage").await, 400).await;
    let csv = admin.get("/api/v1/users.csv").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("id,email,name,status,locale,created_at\n"));
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert_eq!(text.lines().count(), ids.len() + 1);
}

async fn the_actions_log_shows_changes_and_denials_within_scope(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    w.member(a, w.child, w.admin, "child-admin@root.test").await;
    w.member(a, w.sibling, w.admin, "sibling-admin@root.test")
        .await;
    let child_admin = Client::login(&app, "child-admin@root.test").await;
    let invited = child_admin
        .post("/api/v1/users/invitations", json!({"email": "new@root.test", "name": "New", "org_id": w.child.0, "role_id": w.user.0}))
        .await;
    json(invited, 201).await;
    let ids = |log: &serde_json::Value| -> Vec<i64> {
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let child_log = json(child_admin.get("/api/v1/audit?limit=500").await, 200).await;
    // Denied attempts from the sibling org on Child (a write and a read) are
    // logged in the sibling's own org (defect 6: they used to land in
    // Child's), and Child's log gains nothing.
    let sibling = Client::login(&app, "sibling-admin@root.test").await;
    let denied = sibling
        .post(
            "/api/v1/users/invitations",
            json!({"email": "x@root.test", "name": "X", "org_id": w.child.0, "role_id": w.user.0}),
        )
        .await;
    problem(denied, 404).await;
    problem(
        sibling.get(&format!("/api/v1/orgs/{}", w.child.0)).await,
        404,
    )
    .await;
    let child_log_after = json(child_admin.get("/api/v1/audit?limit=500").await, 200).await;
    assert_eq!(ids(&child_log_after), ids(&child_log), "{child_log_after}");
    let root_admin = Client::login(&app, "root-admin@root.test").await;
    let log = json(root_admin.get("/api/v1/audit?limit=500").await, 200).await;
    let events = log.as_array().unwrap();
    let invite = events
        .iter()
        .find(|e| e["action"] == "user.invite" && e["outcome"] == "allowed")
        .unwrap();
    assert_eq!(invite["target_org_id"], w.child.0);
    assert_eq!(invite["actor_home_org_id"], w.child.0);
    let sibling_admin = user_id(&app, "sibling-admin@root.test").await;
    for action in ["user.invite", "org.view"] {
        let hidden: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == "hidden")
            .collect();
        assert_eq!(hidden.len(), 1, "{action}: {hidden:?}");
        assert_eq!(hidden[0]["actor_user_id"], sibling_admin.0);
        assert_eq!(hidden[0]["actor_home_org_id"], w.sibling.0);
        assert_eq!(hidden[0]["target_org_id"], w.sibling.0, "{}", hidden[0]);
    }
    // The sibling Admin's log shows nothing of Child, and its own denials.
    let theirs = json(sibling.get("/api/v1/audit?limit=500").await, 200).await;
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target_org_id"] == w.sibling.0)
    );
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user.invite" && e["outcome"] == "hidden"),
        "{theirs}"
    );
    // The other hierarchy sees none of it.
    let other = Client::login(&app, "other-admin@other.test").await;
    let theirs = json(other.get("/api/v1/audit?limit=500").await, 200).await;
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target_org_id"] == w.other.0)
    );
}

async fn the_user_list_filters_by_status_org_and_text(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let ann = w.member(a, w.child, w.user, "ann.smith@root.test").await;
    let bob = w.member(a, w.sibling, w.user, "bob@root.test").await;
    let cy = w.member(a, w.child, w.user, "cy_100%@root.test").await;
    a.set_suspended(&root, bob, true).await.unwrap();
    let admin = Client::login(&app, "root-admin@root.test").await;
    let ids = |page: serde_json::Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect()
    };
    let suspended = json(admin.get("/api/v1/users?status=suspended").await, 200).await;
    assert_eq!(ids(suspended), vec![bob.0]);
    let in_child = json(
        admin
            .get(&format!("/api/v1/users?org_id={}", w.child.0))
            .await,
        200,
    )
    .await;
    assert_eq!(ids(in_child), vec![ann.0, cy.0]);
    let text = json(admin.get("/api/v1/users?q=SMITH").await, 200).await;
    assert_eq!(ids(text), vec![ann.0]);
    // Wildcards in the search text are literal.
    let literal = json(admin.get("/api/v1/users?q=100%25").await, 200).await;
    assert_eq!(ids(literal), vec![cy.0]);
    let underscore = json(admin.get("/api/v1/users?q=_").await, 200).await;
    assert_eq!(ids(underscore), vec![cy.0]);
    assert_eq!(
        problem(admin.get("/api/v1/users?status=gone").await, 400).await["field"],
        "status"
    );
    // Another hierarchy's org looks absent.
    problem(
        admin
            .get(&format!("/api/v1/users?org_id={}", w.other.0))
            .await,
        404,
    )
    .await;
}

/// Defect 9: the user list and the single read disagreed about a member
/// without users.view looking at itself.
async fn a_member_without_users_view_sees_itself_alike_in_the_list_and_by_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let solo = w.member(a, w.child, w.user, "solo@root.test").await;
    let colleague = w.member(a, w.child, w.user, "colleague@root.test").await;
    let me = Client::login(&app, "solo@root.test").await;
    let list = json(me.get("/api/v1/users?limit=500").await, 200).await;
    let single = json(me.get(&format!("/api/v1/users/{}", solo.0)).await, 200).await;
    assert_eq!(list["items"], json!([single]), "{list}");
    let found = json(me.get("/api/v1/users?q=solo").await, 200).await;
    assert_eq!(found["items"], json!([single]), "{found}");
    // Others stay out of sight, in the list and by id.
    let none = json(me.get("/api/v1/users?q=colleague").await, 200).await;
    assert_eq!(none["items"], json!([]), "{none}");
    problem(me.get(&format!("/api/v1/users/{}", colleague.0)).await, 404).await;
}

both_engines!(
    the_user_list_filters_by_status_org_and_text,
    a_member_without_users_view_sees_itself_alike_in_the_list_and_by_id,
    bulk_invitation_reports_each_row_and_half_creates_nothing,
    deleting_a_user_hands_their_devices_to_the_earliest_admin,
    transferring_a_user_moves_the_membership_and_optionally_the_devices,
    staff_who_may_edit_users_cannot_touch_more_privileged_members,
    the_user_list_pages_and_the_csv_is_safe_for_spreadsheets,
    the_actions_log_shows_changes_and_denials_within_scope,
);
