//! Device templates over HTTP (issue 11, item 1): the root org's Admin
//! creates, reads, edits and deletes them with datastreams, events and
//! metafields; bad content is 400 and changes nothing; sub-org members see
//! only what is enabled for their org and change nothing (403 where they see
//! the template, 404 where not); enabling and disabling for an org is
//! decided at its parent; a used template is not deleted or disabled; other
//! hierarchies see nothing, and their denials are audited at home.

use crate::support::*;
use arbor_core::BuiltinRole;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(
    the_root_admin_creates_a_full_template_and_reads_it_back,
    invalid_templates_answer_400_naming_the_field_and_change_nothing,
    sub_org_members_list_only_enabled_templates_and_cannot_change_them,
    templates_are_enabled_and_disabled_for_an_org_by_its_parent,
    a_template_in_use_is_neither_deleted_nor_disabled,
    another_hierarchys_template_is_absent_and_denials_are_audited_at_home,
    a_cross_site_cookie_post_is_refused,
);

fn boiler() -> Value {
    json!({
        "name": "Boiler",
        "description": "A gas boiler",
        "datastreams": [
            { "pin": 0, "name": "Temperature", "value_type": "double", "min": -20.0,
              "max": 120.0, "units": "°C", "default_value": 20.5, "decimals": 1 },
            { "pin": 1, "name": "Power", "value_type": "integer", "min": 0, "max": 100,
              "default_value": 50 },
            { "pin": 2, "name": "Mode", "value_type": "enum",
              "enum_values": ["off", "eco", "comfort"], "default_value": "eco" },
            { "pin": 255, "name": "Label", "value_type": "string", "default_value": "boiler" },
        ],
        "events": [
            { "code": "overheat", "name": "Overheat", "level": "critical" },
            { "code": "service_due", "name": "Service due", "level": "warning" },
        ],
        "metafields": [
            { "name": "Serial", "value_type": "text" },
            { "name": "Capacity", "value_type": "number", "default_value": "24" },
        ],
    })
}

async fn login(app: &TestApp, kind: BuiltinRole, place: &str) -> String {
    app.login(&email(kind, place), PASSWORD).await
}

/// The template names `token` lists.
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let reply = get(app, "/api/v1/device-templates", token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a template named `name` with one datastream as the root Admin.
async fn create(app: &TestApp, admin: &str, name: &str) -> i64 {
    let reply = post(
        app,
        "/api/v1/device-templates",
        admin,
        json!({ "name": name, "datastreams": [{ "pin": 5, "name": "Level", "value_type": "integer" }] }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["id"].as_i64().unwrap()
}

async fn the_root_admin_creates_a_full_template_and_reads_it_back(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let mark = audit_mark(&app).await;

    let created = post(&app, "/api/v1/device-templates", &admin, boiler()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_i64().unwrap();
    let read = get(&app, &format!("/api/v1/device-templates/{id}"), &admin).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body, created.body);
    let body = &read.body;
    assert_eq!(body["name"], "Boiler");
    assert_eq!(body["description"], "A gas boiler");
    let streams = body["datastreams"].as_array().unwrap();
    assert_eq!(streams.len(), 4);
    assert_eq!(streams[0]["units"], "°C");
    assert_eq!(streams[0]["default_value"], 20.5);
    assert_eq!(streams[0]["decimals"], 1);
    assert_eq!(streams[1]["default_value"], 50.0);
    assert_eq!(streams[2]["enum_values"], json!(["off", "eco", "comfort"]));
    assert_eq!(streams[2]["default_value"], "eco");
    assert_eq!(streams[3]["pin"], 255);
    assert_eq!(streams[3]["default_value"], "boiler");
    assert_eq!(body["events"][0]["level"], "critical");
    assert_eq!(body["events"][1]["code"], "service_due");
    assert_eq!(body["metafields"][1]["default_value"], "24");
    assert!(body["updated_at"].is_null());
    // No retention of its own: the server's default.
    assert!(body["history_retention_days"].is_null());
    assert_eq!(listed(&app, &admin).await, ["Sensor", "Boiler"]);

    // An edit replaces what it names and keeps the rest.
    let edited = patch(
        &app,
        &format!("/api/v1/device-templates/{id}"),
        &admin,
        json!({ "name": "Boiler 2", "events": [] }),
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(edited.body["name"], "Boiler 2");
    assert_eq!(edited.body["events"], json!([]));
    assert_eq!(edited.body["datastreams"], created.body["datastreams"]);
    assert!(edited.body["updated_at"].is_i64());

    // A retention of its own: set, kept by an edit that leaves it out,
    // shown on reading, and cleared back to the default with null.
    let path = format!("/api/v1/device-templates/{id}");
    let kept = patch(&app, &path, &admin, json!({ "history_retention_days": 90 })).await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["history_retention_days"], 90);
    let renamed = patch(&app, &path, &admin, json!({ "name": "Boiler 3" })).await;
    assert_eq!(renamed.body["history_retention_days"], 90, "{renamed:?}");
    assert_eq!(
        get(&app, &path, &admin).await.body["history_retention_days"],
        90
    );
    let cleared = patch(
        &app,
        &path,
        &admin,
        json!({ "history_retention_days": null }),
    )
    .await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert!(
        cleared.body["history_retention_days"].is_null(),
        "{cleared:?}"
    );
    let mut yearly = boiler();
    yearly["name"] = json!("Yearly boiler");
    yearly["history_retention_days"] = json!(365);
    let yearly = post(&app, "/api/v1/device-templates", &admin, yearly).await;
    assert_eq!(yearly.status, 201, "{yearly:?}");
    assert_eq!(yearly.body["history_retention_days"], 365);

    let rows = audit_since(&app, mark).await;
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert!(
        actions.contains(&("template.create", "allowed")),
        "{rows:#?}"
    );
    assert!(actions.contains(&("template.edit", "allowed")), "{rows:#?}");
    let create_row = rows.iter().find(|r| r.action == "template.create").unwrap();
    assert_eq!(create_row.target, format!("device_template:{id}"));
    assert_eq!(create_row.target_org, Some(world.root.0));
    app.stop().await;
}

async fn invalid_templates_answer_400_naming_the_field_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let _world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let id = create(&app, &admin, "Meter").await;
    let before = get(&app, &format!("/api/v1/device-templates/{id}"), &admin).await;

    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = boiler();
        change(&mut body);
        body
    };
    let cases: Vec<(Value, Option<&str>)> = vec![
        (
            with(&|b| b["datastreams"][1]["pin"] = json!(0)),
            Some("datastreams.pin"),
        ),
        (
            with(&|b| b["datastreams"][0]["pin"] = json!(256)),
            Some("datastreams.pin"),
        ),
        (
            with(&|b| b["datastreams"][0]["min"] = json!(200)),
            Some("datastreams.min"),
        ),
        (
            with(&|b| b["datastreams"][2]["enum_values"] = json!([])),
            Some("datastreams.enum_values"),
        ),
        (
            with(&|b| b["datastreams"][2]["default_value"] = json!("turbo")),
            Some("datastreams.default_value"),
        ),
        (
            with(&|b| b["datastreams"][1]["default_value"] = json!(101)),
            Some("datastreams.default_value"),
        ),
        (
            with(&|b| b["datastreams"][1]["decimals"] = json!(2)),
            Some("datastreams.decimals"),
        ),
        (
            with(&|b| b["events"][1]["code"] = json!("overheat")),
            Some("events.code"),
        ),
        (
            with(&|b| b["metafields"][1]["name"] = json!("serial")),
            Some("metafields.name"),
        ),
        (with(&|b| b["name"] = json!("x".repeat(65))), Some("name")),
        (
            with(&|b| b["datastreams"][0]["name"] = json!("")),
            Some("datastreams.name"),
        ),
        (
            with(&|b| b["history_retention_days"] = json!(0)),
            Some("history_retention_days"),
        ),
        (
            with(&|b| b["history_retention_days"] = json!(3651)),
            Some("history_retention_days"),
        ),
        (
            with(&|b| b["history_retention_days"] = json!(-30)),
            Some("history_retention_days"),
        ),
        (with(&|b| b["history_retention_days"] = json!("30")), None),
        // Mass assignment and unknown values are refused by the body's shape.
        (with(&|b| b["hierarchy_id"] = json!(1)), None),
        (with(&|b| b["events"][0]["level"] = json!("fatal")), None),
        (with(&|b| b["datastreams"][0]["pin"] = json!(-1)), None),
    ];
    for (body, field) in &cases {
        let reply = post(&app, "/api/v1/device-templates", &admin, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        if let Some(field) = field {
            assert_eq!(reply.body["field"], *field, "{reply:?}");
        }
        let reply = patch(
            &app,
            &format!("/api/v1/device-templates/{id}"),
            &admin,
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 400, "PATCH {body}: {reply:?}");
    }
    let hierarchy = patch(
        &app,
        &format!("/api/v1/device-templates/{id}"),
        &admin,
        json!({ "hierarchy_id": 99 }),
    )
    .await;
    assert_eq!(hierarchy.status, 400, "{hierarchy:?}");
    // The reason names the part at fault.
    let reply = post(
        &app,
        "/api/v1/device-templates",
        &admin,
        with(&|b| b["datastreams"][1]["pin"] = json!(0)),
    )
    .await;
    assert!(
        reply.body["detail"].as_str().unwrap().contains("V0"),
        "{reply:?}"
    );
    let reply = post(
        &app,
        "/api/v1/device-templates",
        &admin,
        with(&|b| b["history_retention_days"] = json!(5000)),
    )
    .await;
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains("1 to 3650 days"), "{reply:?}");
    // A duplicate name is a conflict.
    let twice = post(
        &app,
        "/api/v1/device-templates",
        &admin,
        json!({ "name": "Meter" }),
    )
    .await;
    assert_eq!(twice.status, 409, "{twice:?}");

    assert_eq!(listed(&app, &admin).await, ["Sensor", "Meter"]);
    let after = get(&app, &format!("/api/v1/device-templates/{id}"), &admin).await;
    assert_eq!(after.body, before.body);
    app.stop().await;
}

async fn sub_org_members_list_only_enabled_templates_and_cannot_change_them(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let meter = create(&app, &admin, "Meter").await;
    let sensor = world.template.0;
    let child_admin = login(&app, BuiltinRole::Admin, "child").await;
    let child_staff = login(&app, BuiltinRole::Staff, "child").await;
    let child_user = login(&app, BuiltinRole::User, "child").await;
    let root_staff = login(&app, BuiltinRole::Staff, "root").await;

    assert_eq!(listed(&app, &admin).await, ["Sensor", "Meter"]);
    assert_eq!(listed(&app, &root_staff).await, ["Sensor", "Meter"]);
    assert_eq!(listed(&app, &child_admin).await, ["Sensor"]);
    assert_eq!(listed(&app, &child_staff).await, ["Sensor"]);
    // The User role holds no templates.view.
    assert!(listed(&app, &child_user).await.is_empty());
    let path = |id: i64| format!("/api/v1/device-templates/{id}");
    assert_eq!(get(&app, &path(sensor), &child_staff).await.status, 200);
    assert_eq!(get(&app, &path(meter), &child_staff).await.status, 404);
    assert_eq!(get(&app, &path(sensor), &child_user).await.status, 404);
    // The root Admin acting in the child still sees the whole hierarchy.
    let in_child = call(
        &app,
        Method::GET,
        &path(meter),
        &admin,
        Some(world.child),
        None,
    )
    .await;
    assert_eq!(in_child.status, 200, "{in_child:?}");

    let mark = audit_mark(&app).await;
    let create = post(
        &app,
        "/api/v1/device-templates",
        &child_admin,
        json!({ "name": "Mine" }),
    )
    .await;
    assert_eq!(create.status, 403, "{create:?}");
    let edit = json!({ "name": "Renamed" });
    assert_eq!(
        patch(&app, &path(sensor), &child_admin, edit.clone())
            .await
            .status,
        403
    );
    assert_eq!(delete(&app, &path(sensor), &child_admin).await.status, 403);
    assert_eq!(
        patch(&app, &path(meter), &child_admin, edit.clone())
            .await
            .status,
        404
    );
    assert_eq!(delete(&app, &path(meter), &child_admin).await.status, 404);
    // Root Staff sees everything but may not edit.
    assert_eq!(
        patch(&app, &path(meter), &root_staff, edit).await.status,
        403
    );
    // Every denial is audited in the caller's own org.
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 6, "{rows:#?}");
    for row in &rows[..5] {
        assert_ne!(row.outcome, "allowed", "{row:?}");
        assert_eq!(row.actor_home_org, Some(world.child.0), "{row:?}");
        assert_eq!(row.target_org, Some(world.child.0), "{row:?}");
    }
    assert_eq!(rows[5].target_org, Some(world.root.0));
    assert_eq!(listed(&app, &admin).await, ["Sensor", "Meter"]);
    app.stop().await;
}

async fn templates_are_enabled_and_disabled_for_an_org_by_its_parent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let child_admin = login(&app, BuiltinRole::Admin, "child").await;
    let meter = create(&app, &admin, "Meter").await;
    let at =
        |id: i64, org: arbor_core::OrgId| format!("/api/v1/device-templates/{id}/orgs/{}", org.0);
    let enable = |path: String, token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move { call(app, Method::PUT, &path, &token, None, None).await }
    };

    // A sub-org's Admin cannot enable for its own org (decided at the root).
    let own = enable(at(meter, world.child), &child_admin).await;
    assert_eq!(own.status, 404, "{own:?}");
    // Nor for its sub-org a template it does not see.
    let unseen = enable(at(meter, world.grandchild), &child_admin).await;
    assert_eq!(unseen.status, 404, "{unseen:?}");
    // The parent enables for the child; then the child enables below.
    let mark = audit_mark(&app).await;
    let by_parent = enable(at(meter, world.child), &admin).await;
    assert_eq!(by_parent.status, 204, "{by_parent:?}");
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows[0].action, "template.enable");
    assert_eq!(rows[0].target_org, Some(world.child.0));
    assert_eq!(listed(&app, &child_admin).await, ["Sensor", "Meter"]);
    assert_eq!(
        enable(at(meter, world.grandchild), &child_admin)
            .await
            .status,
        204
    );
    let grandchild_admin = login(&app, BuiltinRole::Admin, "grandchild").await;
    assert_eq!(listed(&app, &grandchild_admin).await, ["Sensor", "Meter"]);
    // Each caller is shown where it is enabled, within its own scope.
    let enabled_at = |token: String| {
        let app = &app;
        async move {
            let reply = get(app, &format!("/api/v1/device-templates/{meter}"), &token).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body["enabled_org_ids"].clone()
        }
    };
    let (r, c, gc) = (world.root.0, world.child.0, world.grandchild.0);
    assert_eq!(enabled_at(admin.clone()).await, json!([r, c, gc]));
    assert_eq!(enabled_at(child_admin.clone()).await, json!([c, gc]));
    assert_eq!(enabled_at(grandchild_admin.clone()).await, json!([gc]));
    // Disabling follows the same rule.
    assert_eq!(
        delete(&app, &at(meter, world.child), &child_admin)
            .await
            .status,
        404
    );
    assert_eq!(
        delete(&app, &at(meter, world.grandchild), &child_admin)
            .await
            .status,
        204
    );
    assert_eq!(listed(&app, &grandchild_admin).await, ["Sensor"]);
    assert_eq!(
        delete(&app, &at(meter, world.child), &admin).await.status,
        204
    );
    assert_eq!(listed(&app, &child_admin).await, ["Sensor"]);
    // A sibling's org is not the child Admin's to touch.
    assert_eq!(
        enable(at(world.template.0, world.sibling), &child_admin)
            .await
            .status,
        404
    );
    app.stop().await;
}

async fn a_template_in_use_is_neither_deleted_nor_disabled(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    world.device(&app, world.child, None, "Boiler A").await;
    world.device(&app, world.grandchild, None, "Boiler B").await;
    let sensor = format!("/api/v1/device-templates/{}", world.template.0);

    let refused = delete(&app, &sensor, &admin).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(
        refused.body["detail"], "the template is used by 2 devices",
        "{refused:?}"
    );
    assert_eq!(refused.body["extra"]["devices"], 2);
    assert_eq!(get(&app, &sensor, &admin).await.status, 200);

    let in_child = format!("{sensor}/orgs/{}", world.child.0);
    let refused = delete(&app, &in_child, &admin).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(
        refused.body["detail"], "the template is used by 1 device in this organization",
        "{refused:?}"
    );
    let child_staff = login(&app, BuiltinRole::Staff, "child").await;
    assert_eq!(listed(&app, &child_staff).await, ["Sensor"]);
    // Disabling where no device of it lives works.
    let in_sibling = format!("{sensor}/orgs/{}", world.sibling.0);
    assert_eq!(delete(&app, &in_sibling, &admin).await.status, 204);

    // An unused template goes, with its parts.
    let meter = create(&app, &admin, "Meter").await;
    let mark = audit_mark(&app).await;
    let path = format!("/api/v1/device-templates/{meter}");
    assert_eq!(delete(&app, &path, &admin).await.status, 204);
    assert_eq!(get(&app, &path, &admin).await.status, 404);
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows[0].action, "template.delete");
    assert_eq!(rows[0].outcome, "allowed");
    assert_eq!(listed(&app, &admin).await, ["Sensor"]);
    app.stop().await;
}

async fn another_hierarchys_template_is_absent_and_denials_are_audited_at_home(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let other_admin = login(&app, BuiltinRole::Admin, "other").await;
    let sibling_admin = login(&app, BuiltinRole::Admin, "sibling").await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let meter = create(&app, &admin, "Meter").await;
    let sensor = world.template.0;
    assert!(listed(&app, &other_admin).await.is_empty());

    let mark = audit_mark(&app).await;
    let path = |id: i64| format!("/api/v1/device-templates/{id}");
    for id in [sensor, meter] {
        assert_eq!(get(&app, &path(id), &other_admin).await.status, 404);
        let edit = patch(&app, &path(id), &other_admin, json!({ "name": "Mine" })).await;
        assert_eq!(edit.status, 404, "{edit:?}");
        assert_eq!(delete(&app, &path(id), &other_admin).await.status, 404);
        let in_other = format!("{}/orgs/{}", path(id), world.other.0);
        let enable = call(&app, Method::PUT, &in_other, &other_admin, None, None).await;
        assert_eq!(enable.status, 404, "{enable:?}");
    }
    // A sibling member does not see a template not enabled for it.
    assert_eq!(get(&app, &path(meter), &sibling_admin).await.status, 404);
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 9, "{rows:#?}");
    for row in &rows[..8] {
        assert_eq!(row.outcome, "hidden", "{row:?}");
        assert_eq!(row.actor_home_org, Some(world.other.0), "{row:?}");
        assert_eq!(row.target_org, Some(world.other.0), "{row:?}");
    }
    assert_eq!(rows[8].target_org, Some(world.sibling.0));
    // Nothing changed.
    assert_eq!(listed(&app, &admin).await, ["Sensor", "Meter"]);
    app.stop().await;
}

async fn a_cross_site_cookie_post_is_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let _world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "root").await;
    let mark = audit_mark(&app).await;
    let forged = app
        .http
        .post(app.url("/api/v1/device-templates"))
        .header("cookie", format!("arbor_session={admin}"))
        .header("origin", "https://evil.example")
        .json(&boiler())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["type"], "urn:arbor:problem:forbidden", "{body}");
    assert_eq!(listed(&app, &admin).await, ["Sensor"]);
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_ne!(rows[0].outcome, "allowed");
    app.stop().await;
}
