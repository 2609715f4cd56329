//! Device transfer over HTTP (issue 11, items 4 and 5): seed 003's two ways
//! of sharing a garage door, transfer by id, by email and into an org, every
//! refusal with its status and audit row, the dry run against the real
//! transfer on generated worlds, and device ownership when users are deleted
//! or moved.

use crate::support::*;
use arbor_app::model::NewOrg;
use arbor_core::{BuiltinRole, DeviceId, OrgId, OrgType, UserId};
use arbor_testkit::{Engine, Rng, TestApp, both_engines};
use serde_json::{Value, json};
use std::collections::BTreeSet;

both_engines!(seed_003_the_garage_door_is_shared_by_ownership_then_through_a_family_sub_org);
both_engines!(devices_transfer_to_a_user_by_id_or_email_and_into_an_org);
both_engines!(refused_transfers_answer_their_status_change_nothing_and_are_audited_at_home);
both_engines!(the_dry_run_agrees_with_the_real_transfer_on_generated_worlds);
both_engines!(devices_follow_ownership_when_users_are_deleted_or_moved);
both_engines!(concurrent_transfers_of_one_device_queue_and_each_starts_from_the_last);

async fn transfer(app: &TestApp, token: &str, device: DeviceId, body: Value) -> Reply {
    post(
        app,
        &format!("/api/v1/devices/{}/transfer", device.0),
        token,
        body,
    )
    .await
}

async fn dry_run(app: &TestApp, token: &str, device: DeviceId, body: Value) -> Reply {
    post(
        app,
        &format!("/api/v1/devices/{}/transfer?dry_run=true", device.0),
        token,
        body,
    )
    .await
}

/// The ids of every device `token` lists (one page is enough here).
async fn listed(app: &TestApp, token: &str) -> Vec<i64> {
    let reply = get(app, "/api/v1/devices?limit=500", token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

/// `GET /devices/{id}` as `token`: (org, owner).
async fn placed(app: &TestApp, token: &str, device: DeviceId) -> (i64, Option<i64>) {
    let reply = get(app, &format!("/api/v1/devices/{}", device.0), token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    (
        reply.body["org_id"].as_i64().unwrap(),
        reply.body["owner_id"].as_i64(),
    )
}

fn ids(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn user_ids(users: &[UserId]) -> Vec<i64> {
    let mut ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    ids.sort_unstable();
    ids
}

async fn create_org(app: &TestApp, token: &str, parent: OrgId, name: &str) -> OrgId {
    let reply = post(
        app,
        "/api/v1/orgs",
        token,
        json!({ "parent_id": parent.0, "name": name }),
    )
    .await;
    assert_eq!(reply.status, 201, "{name}: {reply:?}");
    OrgId(reply.body["id"].as_i64().unwrap())
}

async fn set_role(app: &TestApp, token: &str, org: OrgId, role: i64, permissions: &[&str]) {
    let reply = put(
        app,
        &format!("/api/v1/orgs/{}/roles/{role}/permissions", org.0),
        token,
        json!({ "permissions": permissions }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn seed_003_the_garage_door_is_shared_by_ownership_then_through_a_family_sub_org(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    // Home: the husband A is its Admin and owns every device.
    let (home, a) = setup_over_http(&app, "Home", "a@home.example").await;
    let ta = app.login("a@home.example", PASSWORD).await;
    let user_role = role_id(&app, &ta, "User").await;
    let template = app
        .app()
        .create_device_template(&cli(a), home, "Door", &[])
        .await
        .unwrap();
    let device = |name: &'static str| {
        let app = &app;
        async move {
            let new = arbor_app::model::NewDevice {
                name: name.into(),
                template,
                owner: Some(a),
                metafields: Vec::new(),
            };
            app.app().create_device(&cli(a), home, &new).await.unwrap()
        }
    };
    let garage = device("Garage Door").await;
    let drinks = device("Drinking Machine").await;

    // 1. Sharing within the org: the wife W gets a role with View and
    // Control Own Devices, and the garage door's ownership.
    set_role(&app, &ta, home, user_role, &["own_devices.control"]).await;
    let w = invite_and_accept(&app, &ta, "w@home.example", home, user_role).await;
    let tw = app.login("w@home.example", PASSWORD).await;
    assert!(listed(&app, &tw).await.is_empty(), "nothing is hers yet");
    let moved = transfer(&app, &ta, garage, json!({ "email": "w@home.example" })).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["device"]["owner_id"], w.0);
    assert_eq!(moved.body["gain"]["view"], json!([w.0]));
    assert_eq!(moved.body["gain"]["control"], json!([w.0]));
    assert_eq!(moved.body["lose"]["view"], json!([]));

    // She sees and controls only the garage door; the Admin still sees all.
    assert_eq!(listed(&app, &tw).await, vec![garage.0]);
    assert_eq!(placed(&app, &tw, garage).await, (home.0, Some(w.0)));
    let hidden = get(&app, &format!("/api/v1/devices/{}", drinks.0), &tw).await;
    assert_eq!(hidden.status, 404, "{hidden:?}");
    for (d, allowed) in [(garage, true), (drinks, false)] {
        let why = explain_device(&app, &ta, w, "control", d).await;
        assert_eq!(why.body["allowed"], allowed, "{why:?}");
    }
    assert_eq!(listed(&app, &ta).await, vec![garage.0, drinks.0]);

    // 2. Sharing with the family: a sub-org whose members hold View (and
    // Control) Organization Devices. W moves there (her device passes back
    // to Home's Admin), two children join, and the garage door is
    // transferred by email to W, into the sub-org.
    let family = create_org(&app, &ta, home, "Family").await;
    app.app()
        .enable_device_template(&cli(a), family, template)
        .await
        .unwrap();
    set_role(
        &app,
        &ta,
        family,
        user_role,
        &["org_devices.view", "org_devices.control"],
    )
    .await;
    let moved_user = post(
        &app,
        &format!("/api/v1/users/{}/transfer", w.0),
        &ta,
        json!({ "org_id": family.0, "role_id": user_role }),
    )
    .await;
    assert_eq!(moved_user.status, 204, "{moved_user:?}");
    assert_eq!(placed(&app, &ta, garage).await, (home.0, Some(a.0)));
    let c1 = invite_and_accept(&app, &ta, "c1@home.example", family, user_role).await;
    let c2 = invite_and_accept(&app, &ta, "c2@home.example", family, user_role).await;

    let body = json!({ "email": "W@Home.Example" });
    let preview = dry_run(&app, &ta, garage, body.clone()).await;
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(preview.body["dry_run"], true);
    assert!(preview.body.get("device").is_none(), "{preview:?}");
    assert_eq!(
        preview.body["to"],
        json!({ "org_id": family.0, "owner_id": w.0 })
    );
    let family_ids = user_ids(&[w, c1, c2]);
    assert_eq!(ids(&preview.body["gain"]["view"]), family_ids);
    assert_eq!(ids(&preview.body["gain"]["control"]), family_ids);
    assert!(ids(&preview.body["lose"]["view"]).is_empty());
    assert_eq!(
        placed(&app, &ta, garage).await,
        (home.0, Some(a.0)),
        "unchanged"
    );
    let moved = transfer(&app, &ta, garage, body).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["gain"], preview.body["gain"]);
    assert_eq!(moved.body["lose"], preview.body["lose"]);

    // Every family member sees only the garage door, and nothing of Home.
    for email in ["w@home.example", "c1@home.example", "c2@home.example"] {
        let token = app.login(email, PASSWORD).await;
        assert_eq!(listed(&app, &token).await, vec![garage.0], "{email}");
        assert_eq!(placed(&app, &token, garage).await, (family.0, Some(w.0)));
        for path in [
            format!("/api/v1/devices/{}", drinks.0),
            format!("/api/v1/orgs/{}", home.0),
            format!("/api/v1/users/{}", a.0),
        ] {
            let reply = get(&app, &path, &token).await;
            assert_eq!(reply.status, 404, "{email} GET {path}: {reply:?}");
        }
        let users = get(&app, "/api/v1/users?limit=500", &token).await;
        if users.status == 200 {
            assert!(
                users.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|u| u["id"] != a.0),
                "{email} lists Home's Admin: {users:?}"
            );
        }
    }
    for (user, allowed) in [(c1, true), (c2, true), (w, true)] {
        let why = explain_device(&app, &ta, user, "control", garage).await;
        assert_eq!(why.body["allowed"], allowed, "{why:?}");
        let why = explain_device(&app, &ta, user, "view", drinks).await;
        assert_eq!(why.body["allowed"], false, "{why:?}");
    }
    // The Admin sees both, in one list, without switching.
    assert_eq!(listed(&app, &ta).await, vec![garage.0, drinks.0]);
    app.stop().await;
}

/// The `device.transfer.owner` timeline rows written since `mark`, as
/// (target, "as").
async fn timeline_since(app: &TestApp, mark: i64) -> BTreeSet<(String, String)> {
    audit_since(app, mark)
        .await
        .into_iter()
        .filter(|r| r.action == "device.transfer.owner")
        .map(|r| {
            assert_eq!(r.outcome, "allowed");
            (r.target, r.details["as"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn devices_transfer_to_a_user_by_id_or_email_and_into_an_org(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let child_staff = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let grandchild_user = user_id(&app, &email(BuiltinRole::User, "grandchild")).await;
    let sibling_admin = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await;
    let meter = w.device(&app, w.child, Some(child_user), "Meter").await;

    // By id, within the org: the owner changes, the org stays; both owners
    // get a timeline entry.
    let mark = audit_mark(&app).await;
    let moved = transfer(&app, &root, meter, json!({ "user_id": child_staff.0 })).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["dry_run"], false);
    assert_eq!(moved.body["device"]["id"], meter.0);
    assert_eq!(moved.body["device"]["owner_id"], child_staff.0);
    assert_eq!(moved.body["device"]["org_id"], w.child.0);
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.child.0, Some(child_staff.0))
    );
    assert_eq!(
        timeline_since(&app, mark).await,
        BTreeSet::from([
            (format!("user:{}", child_user.0), "previous_owner".into()),
            (format!("user:{}", child_staff.0), "new_owner".into()),
        ])
    );
    // The actions log shows both entries, in the owners' org.
    let log = get(&app, "/api/v1/audit?limit=20", &root).await;
    assert_eq!(log.status, 200, "{log:?}");
    let entries: BTreeSet<(String, i64)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "device.transfer.owner")
        .map(|e| {
            assert_eq!(e["details"]["device"], meter.0);
            (
                e["target"].as_str().unwrap().to_owned(),
                e["target_org_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        BTreeSet::from([
            (format!("user:{}", child_user.0), w.child.0),
            (format!("user:{}", child_staff.0), w.child.0),
        ])
    );
    let rows = audit(&app, &format!("device:{}", meter.0)).await;
    assert!(
        rows.contains(&("device.transfer".into(), "allowed".into())),
        "{rows:?}"
    );
    let old_owner = audit(&app, &format!("user:{}", child_user.0)).await;
    assert!(
        old_owner.contains(&("device.transfer.owner".into(), "allowed".into())),
        "the old owner's timeline: {old_owner:?}"
    );

    // By email (any case): the device moves to the receiver's org.
    let moved = transfer(
        &app,
        &root,
        meter,
        json!({ "email": "USER@Grandchild.test" }),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.grandchild.0, Some(grandchild_user.0))
    );

    // Into an org: its earliest Admin by default, or the named member.
    let moved = transfer(&app, &root, meter, json!({ "org_id": w.sibling.0 })).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.sibling.0, Some(sibling_admin.0))
    );
    let second_admin = app
        .app()
        .add_member(
            &cli(w.root_admin),
            w.child,
            &arbor_app::NewMember {
                user: new_user("admin2@child.test"),
                role: w.role(BuiltinRole::Admin),
            },
        )
        .await
        .unwrap();
    let child_admin = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    let moved = transfer(&app, &root, meter, json!({ "org_id": w.child.0 })).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.child.0, Some(child_admin.0)),
        "the earliest Admin, not {second_admin}"
    );
    let body = json!({ "org_id": w.child.0, "owner_id": child_staff.0 });
    let moved = transfer(&app, &root, meter, body.clone()).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.child.0, Some(child_staff.0))
    );

    // The same owner again: 400, by any form, nothing written but the refusal.
    for body in [
        body,
        json!({ "user_id": child_staff.0 }),
        json!({ "email": "staff@child.test" }),
    ] {
        for dry in [false, true] {
            let reply = if dry {
                dry_run(&app, &root, meter, body.clone()).await
            } else {
                transfer(&app, &root, meter, body.clone()).await
            };
            assert_eq!(reply.status, 400, "{body}: {reply:?}");
            assert_eq!(reply.body["detail"], "Can't transfer to the same owner");
        }
    }
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.child.0, Some(child_staff.0))
    );

    // A Staff member of Child (transfers.devices, org_devices.view) moves a
    // device of its org down to the grandchild.
    let staff = app.login("staff@child.test", PASSWORD).await;
    let moved = transfer(&app, &staff, meter, json!({ "org_id": w.grandchild.0 })).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let grandchild_admin = user_id(&app, &email(BuiltinRole::Admin, "grandchild")).await;
    assert_eq!(
        placed(&app, &root, meter).await,
        (w.grandchild.0, Some(grandchild_admin.0))
    );
    app.stop().await;
}

async fn refused_transfers_answer_their_status_change_nothing_and_are_audited_at_home(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let child_admin = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    let sibling_user = user_id(&app, &email(BuiltinRole::User, "sibling")).await;
    let suspended = user_id(&app, &email(BuiltinRole::Staff, "grandchild")).await;
    app.app()
        .set_suspended(&cli(w.root_admin), suspended, true)
        .await
        .unwrap();
    let meter = w.device(&app, w.child, Some(child_user), "Meter").await;
    let sibling_device = w.device(&app, w.sibling, None, "Sibling Boiler").await;
    // A sub-org of Child that the template is not enabled for.
    let bare = app
        .app()
        .create_suborg(
            &cli(w.root_admin),
            w.child,
            &NewOrg::named("Bare", OrgType::Business),
        )
        .await
        .unwrap()
        .id;
    let bare_user = app
        .app()
        .add_member(
            &cli(w.root_admin),
            bare,
            &arbor_app::NewMember {
                user: new_user("user@bare.test"),
                role: w.role(BuiltinRole::User),
            },
        )
        .await
        .unwrap();
    let ca = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let unchanged = (w.child.0, Some(child_user.0));

    // Each refusal, as (caller, device, body, status, detail), for the real
    // transfer and the dry run alike.
    let cases: Vec<(&str, DeviceId, Value, u16, &str)> = vec![
        // The receiver is not active.
        (&ca, meter, json!({ "user_id": suspended.0 }), 409, ""),
        // The template is not enabled where the device would go.
        (
            &ca,
            meter,
            json!({ "user_id": bare_user.0 }),
            409,
            "template",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": bare.0, "owner_id": bare_user.0 }),
            409,
            "template",
        ),
        // The org has no Admin to own it.
        (&ca, meter, json!({ "org_id": bare.0 }), 409, "Admin"),
        // Outside the caller's scope, or absent: the same 404.
        (
            &ca,
            meter,
            json!({ "user_id": sibling_user.0 }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "user_id": w.root_admin.0 }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "user_id": 999_999 }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "email": "user@sibling.test" }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "email": "admin@other.test" }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "email": "nobody@nowhere.test" }),
            404,
            "user not found",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": w.sibling.0 }),
            404,
            "organization not found",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": w.root.0 }),
            404,
            "organization not found",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": w.other.0 }),
            404,
            "organization not found",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": 999_999 }),
            404,
            "organization not found",
        ),
        (
            &ca,
            meter,
            json!({ "org_id": w.child.0, "owner_id": sibling_user.0 }),
            404,
            "user not found",
        ),
        // A device outside the caller's scope.
        (
            &ca,
            sibling_device,
            json!({ "user_id": child_admin.0 }),
            404,
            "device not found",
        ),
        (
            &ca,
            DeviceId(999_999),
            json!({ "user_id": child_admin.0 }),
            404,
            "device not found",
        ),
        // Malformed bodies.
        (&ca, meter, json!({}), 400, ""),
        (
            &ca,
            meter,
            json!({ "user_id": child_admin.0, "email": "a@child.test" }),
            400,
            "",
        ),
        (&ca, meter, json!({ "owner_id": child_admin.0 }), 400, ""),
        (
            &ca,
            meter,
            json!({ "user_id": child_admin.0, "hierarchy_id": 1 }),
            400,
            "",
        ),
        (&ca, meter, json!({ "email": "not an email" }), 400, ""),
    ];
    for (token, device, body, status, detail) in &cases {
        for dry in [false, true] {
            let reply = if dry {
                dry_run(&app, token, *device, body.clone()).await
            } else {
                transfer(&app, token, *device, body.clone()).await
            };
            assert_eq!(reply.status, *status, "{body} (dry run {dry}): {reply:?}");
            assert!(
                reply.body["detail"].as_str().unwrap_or("").contains(detail),
                "{body}: {reply:?}"
            );
        }
    }
    assert_eq!(placed(&app, &root, meter).await, unchanged);
    assert_eq!(
        placed(&app, &root, sibling_device).await,
        (w.sibling.0, None)
    );

    // Visible, but no transfers.devices: 403, audited in Child.
    let user_role = w.role(BuiltinRole::User);
    set_role(&app, &root, w.child, user_role.0, &["org_devices.view"]).await;
    let cu = app.login("user@child.test", PASSWORD).await;
    let mark = audit_mark(&app).await;
    let reply = transfer(&app, &cu, meter, json!({ "user_id": child_admin.0 })).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].action, "device.transfer");
    assert_eq!(rows[0].outcome, "forbidden");
    assert_eq!(rows[0].actor, Some(child_user.0));
    assert_eq!(rows[0].target_org, Some(w.child.0));

    // A sibling org's Admin with Child's ids: 404, audited in Sibling only.
    let sa = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;
    let sibling_admin = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await;
    for path in [
        format!("/api/v1/devices/{}/transfer", meter.0),
        format!("/api/v1/devices/{}/transfer?dry_run=true", meter.0),
    ] {
        for body in [
            json!({ "user_id": sibling_admin.0 }),
            json!({ "org_id": w.sibling.0 }),
            json!({ "email": "admin@sibling.test" }),
        ] {
            let mark = audit_mark(&app).await;
            let reply = post(&app, &path, &sa, body.clone()).await;
            assert_eq!(reply.status, 404, "{path} {body}: {reply:?}");
            assert_eq!(reply.body["detail"], "device not found");
            let rows = audit_since(&app, mark).await;
            assert_eq!(rows.len(), 1, "{rows:#?}");
            assert_eq!(rows[0].actor, Some(sibling_admin.0));
            assert_eq!(rows[0].actor_home_org, Some(w.sibling.0));
            assert_eq!(
                rows[0].target_org,
                Some(w.sibling.0),
                "never in Child's log"
            );
            assert_ne!(rows[0].outcome, "allowed");
        }
    }

    // A forged cross-site POST with the session cookie: 403 before anything.
    let forged = app
        .http
        .post(app.url(&format!("/api/v1/devices/{}/transfer", meter.0)))
        .header("cookie", format!("arbor_session={root}"))
        .header("origin", "https://evil.example")
        .json(&json!({ "user_id": w.root_admin.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cross-site request refused"),
        "{body}"
    );
    assert_eq!(placed(&app, &root, meter).await, unchanged);
    app.stop().await;
}

/// Who-can for a device action, as `token`.
async fn who(app: &TestApp, token: &str, action: &str, device: DeviceId) -> BTreeSet<i64> {
    who_can(
        app,
        token,
        &format!("action={action}&device_id={}", device.0),
    )
    .await
    .into_iter()
    .collect()
}

const POOL: [&str; 8] = [
    "organizations.switch_to_suborgs",
    "org_devices.view",
    "org_devices.control",
    "own_devices.view",
    "own_devices.control",
    "transfers.devices",
    "roles.view",
    "users.view",
];

async fn the_dry_run_agrees_with_the_real_transfer_on_generated_worlds(engine: Engine) {
    let mut transferred = 0;
    let mut changed = 0;
    let mut refused = BTreeSet::new();
    for seed in [0x7A5_0001_u64, 0x7A5_0002, 0x7A5_0003] {
        let app = TestApp::spawn(engine).await;
        let w = World::build(&app).await;
        let core = app.app();
        let admin = cli(w.root_admin);
        let mut rng = Rng(seed);
        // A few generated orgs under the fixed tree, most with the template.
        let mut orgs = vec![w.root, w.child, w.grandchild, w.sibling];
        for i in 0..3 {
            let parent = rng.pick(&[w.root, w.child, w.sibling]);
            let org = core
                .create_suborg(
                    &admin,
                    parent,
                    &NewOrg::named(format!("Gen {i}"), OrgType::Business),
                )
                .await
                .unwrap()
                .id;
            if rng.chance(80) {
                core.enable_device_template(&admin, org, w.template)
                    .await
                    .unwrap();
            }
            orgs.push(org);
        }
        // Random sets for Staff and User (Admin keeps everything).
        for org in &orgs {
            for kind in [BuiltinRole::Staff, BuiltinRole::User] {
                if rng.chance(70) {
                    let set: Vec<arbor_core::Permission> = POOL
                        .iter()
                        .filter(|_| rng.chance(50))
                        .map(|id| id.parse().unwrap())
                        .collect();
                    core.set_role_permissions(
                        &admin,
                        *org,
                        w.role(kind),
                        set.into_iter().collect(),
                    )
                    .await
                    .unwrap();
                }
            }
        }
        // Members: the fixed ones and a few in the generated orgs.
        let mut users: Vec<(UserId, String)> = Vec::new();
        for (org, place) in w.places() {
            if org == w.other {
                continue;
            }
            for kind in KINDS {
                let email = email(kind, place);
                users.push((user_id(&app, &email).await, email));
            }
        }
        for (i, org) in orgs[4..].iter().enumerate() {
            for kind in [BuiltinRole::Admin, rng.pick(&KINDS)] {
                if kind != BuiltinRole::Admin && rng.chance(30) {
                    continue;
                }
                let email = format!("gen{i}-{}@gen.test", users.len());
                let id = core
                    .add_member(
                        &admin,
                        *org,
                        &arbor_app::NewMember {
                            user: new_user(&email),
                            role: w.role(kind),
                        },
                    )
                    .await
                    .unwrap();
                users.push((id, email));
            }
        }
        users.push((w.root_admin, "admin@root.test".into()));
        let root = app.login("admin@root.test", PASSWORD).await;
        // Devices in the fixed orgs, owned by a member or by nobody.
        let mut devices = Vec::new();
        for (i, org) in [w.root, w.child, w.child, w.grandchild, w.sibling]
            .into_iter()
            .enumerate()
        {
            let members = members_of(&app, &root, org).await;
            let owner = (!members.is_empty() && rng.chance(70))
                .then(|| UserId(members[rng.below(members.len())]));
            devices.push(w.device(&app, org, owner, &format!("Device {i}")).await);
        }
        let child_admin = app
            .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
            .await;

        for _ in 0..10 {
            let device = rng.pick(&devices);
            let (org, _) = placed(&app, &root, device).await;
            let in_child = [w.child.0, w.grandchild.0].contains(&org);
            // The child's Admin sees only grants inside its scope, and may
            // ask only about devices there.
            let token = if in_child && rng.chance(50) {
                &child_admin
            } else {
                &root
            };
            let body = match rng.below(4) {
                0 => json!({ "user_id": users[rng.below(users.len())].0.0 }),
                1 => json!({ "email": users[rng.below(users.len())].1 }),
                2 => json!({ "org_id": rng.pick(&orgs).0 }),
                _ => {
                    let org = rng.pick(&orgs);
                    let members = members_of(&app, &root, org).await;
                    match members.first() {
                        Some(_) => json!({
                            "org_id": org.0,
                            "owner_id": members[rng.below(members.len())],
                        }),
                        None => json!({ "org_id": org.0 }),
                    }
                }
            };
            let before = placed(&app, &root, device).await;
            let asks = get(
                &app,
                &format!("/api/v1/access/who-can?action=view&device_id={}", device.0),
                token,
            )
            .await
            .status
                == 200;
            let (view_before, control_before) = if asks {
                (
                    who(&app, token, "view", device).await,
                    who(&app, token, "control", device).await,
                )
            } else {
                Default::default()
            };

            let mark = audit_mark(&app).await;
            let preview = dry_run(&app, token, device, body.clone()).await;
            let written = audit_since(&app, mark).await;
            assert_eq!(
                placed(&app, &root, device).await,
                before,
                "the dry run changed it"
            );
            if preview.status == 200 {
                assert!(written.is_empty(), "an allowed dry run wrote {written:#?}");
            } else {
                assert!(
                    written
                        .iter()
                        .all(|r| r.action == "device.transfer_preview" && r.outcome != "allowed"),
                    "{written:#?}"
                );
            }

            let real = transfer(&app, token, device, body.clone()).await;
            assert_eq!(
                real.status, preview.status,
                "{body}: dry run {preview:?}, real {real:?}"
            );
            if real.status != 200 {
                assert_eq!(real.body["detail"], preview.body["detail"]);
                assert_eq!(placed(&app, &root, device).await, before);
                refused.insert(real.status);
                continue;
            }
            transferred += 1;
            assert!(asks, "a caller who may transfer a device may ask about it");
            assert_eq!(preview.body["to"], real.body["to"]);
            assert_eq!(
                placed(&app, &root, device).await,
                (
                    real.body["to"]["org_id"].as_i64().unwrap(),
                    real.body["to"]["owner_id"].as_i64()
                )
            );
            let (view_after, control_after) = (
                who(&app, token, "view", device).await,
                who(&app, token, "control", device).await,
            );
            for (action, was, is) in [
                ("view", &view_before, &view_after),
                ("control", &control_before, &control_after),
            ] {
                let gain: Vec<i64> = is.difference(was).copied().collect();
                let lose: Vec<i64> = was.difference(is).copied().collect();
                changed += usize::from(!gain.is_empty() || !lose.is_empty());
                for answer in [&preview, &real] {
                    assert_eq!(ids(&answer.body["gain"][action]), gain, "{body} {action}");
                    assert_eq!(ids(&answer.body["lose"][action]), lose, "{body} {action}");
                }
            }
        }
        app.stop().await;
    }
    assert!(
        transferred >= 5,
        "only {transferred} transfers went through"
    );
    assert!(changed >= 3, "the access changed only {changed} times");
    assert!(refused.len() >= 2, "refusals seen: {refused:?}");
}

/// The members of `org`, from `GET /users?org_id=` as `root` (the root Admin).
async fn members_of(app: &TestApp, root: &str, org: OrgId) -> Vec<i64> {
    let reply = get(
        app,
        &format!("/api/v1/users?org_id={}&limit=500", org.0),
        root,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

async fn devices_follow_ownership_when_users_are_deleted_or_moved(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let id = |kind, place| {
        let app = &app;
        async move { user_id(app, &email(kind, place)).await }
    };
    let child_user = id(BuiltinRole::User, "child").await;
    let child_staff = id(BuiltinRole::Staff, "child").await;
    let child_admin = id(BuiltinRole::Admin, "child").await;
    let grandchild_user = id(BuiltinRole::User, "grandchild").await;
    let grandchild_staff = id(BuiltinRole::Staff, "grandchild").await;
    let sibling_staff = id(BuiltinRole::Staff, "sibling").await;
    let sibling_admin = id(BuiltinRole::Admin, "sibling").await;
    let second_admin = app
        .app()
        .add_member(
            &cli(w.root_admin),
            w.child,
            &arbor_app::NewMember {
                user: new_user("admin2@child.test"),
                role: w.role(BuiltinRole::Admin),
            },
        )
        .await
        .unwrap();
    let d1 = w.device(&app, w.child, Some(child_user), "D1").await;
    let d2 = w.device(&app, w.child, Some(child_user), "D2").await;
    let d3 = w.device(&app, w.child, Some(child_staff), "D3").await;
    let d4 = w
        .device(&app, w.grandchild, Some(grandchild_user), "D4")
        .await;
    let d5 = w.device(&app, w.sibling, Some(sibling_staff), "D5").await;
    let user_role = w.role(BuiltinRole::User).0;

    // Deleting a device owner: the org's earliest Admin takes over.
    let reply = delete(&app, &format!("/api/v1/users/{}", child_user.0), &root).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    for d in [d1, d2] {
        assert_eq!(
            placed(&app, &root, d).await,
            (w.child.0, Some(child_admin.0))
        );
    }
    // … or the named heir, an Admin of the device's org.
    let not_an_admin = delete(
        &app,
        &format!(
            "/api/v1/users/{}?heir={}",
            child_staff.0, grandchild_staff.0
        ),
        &root,
    )
    .await;
    assert_eq!(not_an_admin.status, 400, "{not_an_admin:?}");
    assert_eq!(
        placed(&app, &root, d3).await,
        (w.child.0, Some(child_staff.0))
    );
    let reply = delete(
        &app,
        &format!("/api/v1/users/{}?heir={}", child_staff.0, second_admin.0),
        &root,
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        placed(&app, &root, d3).await,
        (w.child.0, Some(second_admin.0))
    );

    // Moving a user with their devices: the devices go along.
    let reply = post(
        &app,
        &format!("/api/v1/users/{}/transfer", grandchild_user.0),
        &root,
        json!({ "org_id": w.child.0, "role_id": user_role, "with_devices": true }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        placed(&app, &root, d4).await,
        (w.child.0, Some(grandchild_user.0))
    );
    // Without them: they stay and pass to the old org's earliest Admin.
    let reply = post(
        &app,
        &format!("/api/v1/users/{}/transfer", sibling_staff.0),
        &root,
        json!({ "org_id": w.grandchild.0, "role_id": user_role }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        placed(&app, &root, d5).await,
        (w.sibling.0, Some(sibling_admin.0))
    );
    // Moving a user who owns nothing changes no device.
    let reply = post(
        &app,
        &format!("/api/v1/users/{}/transfer", grandchild_staff.0),
        &root,
        json!({ "org_id": w.sibling.0, "role_id": user_role, "with_devices": true }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");

    // No device is ever left with an owner outside its org.
    let all = listed(&app, &root).await;
    assert_eq!(all.len(), 5);
    for d in all {
        let (org, owner) = placed(&app, &root, DeviceId(d)).await;
        let owner = owner.expect("every device here has an owner");
        assert!(
            members_of(&app, &root, OrgId(org)).await.contains(&owner),
            "device {d}: owner {owner} is no member of org {org}"
        );
    }
    app.stop().await;
}

async fn concurrent_transfers_of_one_device_queue_and_each_starts_from_the_last(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let meter = w.device(&app, w.child, Some(child_user), "Meter").await;
    let staff = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let mark = audit_mark(&app).await;
    let (a, b, c, d) = tokio::join!(
        transfer(&app, &root, meter, json!({ "user_id": staff.0 })),
        transfer(
            &app,
            &root,
            meter,
            json!({ "email": "user@grandchild.test" })
        ),
        transfer(&app, &root, meter, json!({ "org_id": w.sibling.0 })),
        transfer(
            &app,
            &root,
            meter,
            json!({ "org_id": w.child.0, "owner_id": staff.0 })
        ),
    );
    let mut done = 0;
    for reply in [a, b, c, d] {
        // Only "the same owner" may refuse, when another transfer got there first.
        match reply.status {
            200 => done += 1,
            400 => assert_eq!(reply.body["detail"], "Can't transfer to the same owner"),
            _ => panic!("{reply:?}"),
        }
    }
    assert!(done >= 3, "{done} transfers went through");
    // The transfers ran one after the other: each started where the last ended.
    let rows: Vec<AuditRow> = audit_since(&app, mark)
        .await
        .into_iter()
        .filter(|r| r.action == "device.transfer" && r.outcome == "allowed")
        .collect();
    assert_eq!(rows.len(), done);
    let mut owner = json!(child_user.0);
    let mut org = json!(w.child.0);
    for row in &rows {
        assert_eq!(row.details["from_owner"], owner, "{rows:#?}");
        assert_eq!(row.details["from_org"], org, "{rows:#?}");
        owner = row.details["to_owner"].clone();
        org = row.details["to_org"].clone();
    }
    let (now_org, now_owner) = placed(&app, &root, meter).await;
    assert_eq!((json!(now_org), json!(now_owner)), (org, owner));
    assert!(
        members_of(&app, &root, OrgId(now_org))
            .await
            .contains(&now_owner.unwrap())
    );
    app.stop().await;
}
