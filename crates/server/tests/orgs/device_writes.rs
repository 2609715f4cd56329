//! Device writes and auth tokens over HTTP (issue 11, items 2 and 3):
//! create and provision, edit, delete, the token shown again and
//! regenerated; a permission matrix over the write and token routes × device
//! classes × roles (403 only where the device is visible, 404 otherwise,
//! every denial audited in the caller's own org); mass assignment refused;
//! cross-site cookie writes refused.

use crate::support::*;
use arbor_core::template::{Metafield, MetafieldType, TemplateContent};
use arbor_core::{BuiltinRole, DeviceId, OrgId, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(devices_are_created_provisioned_edited_and_deleted);
both_engines!(the_auth_token_is_shown_again_and_regeneration_ends_the_old_one);
both_engines!(every_write_and_token_route_answers_every_device_class_as_the_matrix_says);
both_engines!(mass_assignment_in_create_and_edit_bodies_is_refused_and_never_applied);
both_engines!(cross_site_cookie_writes_to_devices_are_refused_and_change_nothing);

/// A template with the metafield `Serial`, enabled for Child and Grandchild.
async fn metered(app: &TestApp, world: &World) -> i64 {
    let by = cli(world.root_admin);
    let content = TemplateContent {
        name: "Meter".into(),
        metafields: vec![Metafield {
            name: "Serial".into(),
            value_type: MetafieldType::Text,
            default_value: String::new(),
        }],
        ..TemplateContent::default()
    };
    let template = app.app().create_template(&by, content).await.unwrap().id;
    for org in [world.child, world.grandchild] {
        app.app()
            .enable_device_template(&by, org, template)
            .await
            .unwrap();
    }
    template.0
}

/// Replaces the set of `kind` in Child, as the root Admin.
async fn set_child_role(app: &TestApp, world: &World, kind: BuiltinRole, permissions: &[&str]) {
    let root = app.login("admin@root.test", PASSWORD).await;
    let saved = put(
        app,
        &format!(
            "/api/v1/orgs/{}/roles/{}/permissions",
            world.child.0,
            world.role(kind).0
        ),
        &root,
        json!({ "permissions": permissions }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
}

async fn device_ids(app: &TestApp, token: &str) -> Vec<i64> {
    let reply = get(app, "/api/v1/devices?limit=500", token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

async fn devices_are_created_provisioned_edited_and_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = metered(&app, &world).await;
    let admin = app.login("admin@root.test", PASSWORD).await;

    // The root Admin adds an unclaimed device to Child, with its token.
    let created = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "Meter 1", "template_id": template, "org_id": world.child.0,
                "metafields": { "Serial": "S-1" } }),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["org_id"], world.child.0);
    assert_eq!(created.body["owner_id"], Value::Null);
    assert_eq!(created.body["metafields"], json!({ "Serial": "S-1" }));
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    let found = app.app().device_by_token(&token).await.unwrap().unwrap();
    assert_eq!(found.id, DeviceId(id));
    let shown = get(&app, &format!("/api/v1/devices/{id}"), &admin).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["metafields"], json!({ "Serial": "S-1" }));
    assert_eq!(shown.body["name"], "Meter 1");

    // A provisioner (own_devices.provision, no auth_tokens.edit) in Child:
    // the org defaults to its own, the owner to itself, no token shown.
    set_child_role(
        &app,
        &world,
        BuiltinRole::User,
        &[
            "own_devices.view",
            "own_devices.provision",
            "own_devices.edit",
        ],
    )
    .await;
    let user = app
        .login(&email(BuiltinRole::User, "child"), PASSWORD)
        .await;
    let user_id = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let provisioned = post(
        &app,
        "/api/v1/devices",
        &user,
        json!({ "name": "My meter", "template_id": template }),
    )
    .await;
    assert_eq!(provisioned.status, 201, "{provisioned:?}");
    assert_eq!(provisioned.body["org_id"], world.child.0);
    assert_eq!(provisioned.body["owner_id"], user_id.0);
    assert!(provisioned.body.get("token").is_none(), "{provisioned:?}");
    let mine = provisioned.body["id"].as_i64().unwrap();
    // For someone else: refused (visible org, missing org_devices.add).
    let staff_id = user_id_of(&app, BuiltinRole::Staff, "child").await;
    let other = post(
        &app,
        "/api/v1/devices",
        &user,
        json!({ "name": "Theirs", "template_id": template, "owner_id": staff_id.0 }),
    )
    .await;
    assert_eq!(other.status, 403, "{other:?}");
    // An org outside its scope: 404.
    let outside = post(
        &app,
        "/api/v1/devices",
        &user,
        json!({ "name": "Far", "template_id": template, "org_id": world.sibling.0 }),
    )
    .await;
    assert_eq!(outside.status, 404, "{outside:?}");

    // A template not enabled for the org: 409; an unknown metafield: 400;
    // an owner who is no member: 409. Nothing is created.
    let before = device_ids(&app, &admin).await;
    let sibling_template = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "X", "template_id": template, "org_id": world.sibling.0 }),
    )
    .await;
    assert_eq!(sibling_template.status, 409, "{sibling_template:?}");
    let unknown = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "X", "template_id": template, "org_id": world.child.0,
                "metafields": { "Colour": "red" } }),
    )
    .await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert!(
        unknown.body["detail"].as_str().unwrap().contains("Colour"),
        "{unknown:?}"
    );
    let stranger = user_id_of(&app, BuiltinRole::User, "sibling").await;
    let not_member = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "X", "template_id": template, "org_id": world.child.0,
                "owner_id": stranger.0 }),
    )
    .await;
    assert_eq!(not_member.status, 409, "{not_member:?}");
    assert_eq!(device_ids(&app, &admin).await, before);

    // The owner edits its device (own_devices.edit).
    let edited = patch(
        &app,
        &format!("/api/v1/devices/{mine}"),
        &user,
        json!({ "name": "Kitchen meter", "metafields": { "Serial": "K-9" } }),
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(edited.body["name"], "Kitchen meter");
    assert_eq!(edited.body["metafields"], json!({ "Serial": "K-9" }));
    let bad = patch(
        &app,
        &format!("/api/v1/devices/{mine}"),
        &user,
        json!({ "metafields": { "Colour": "red" } }),
    )
    .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let empty_name = patch(
        &app,
        &format!("/api/v1/devices/{mine}"),
        &user,
        json!({ "name": "   " }),
    )
    .await;
    assert_eq!(empty_name.status, 400, "{empty_name:?}");
    let shown = get(&app, &format!("/api/v1/devices/{mine}"), &user).await;
    assert_eq!(shown.body["name"], "Kitchen meter");
    assert_eq!(shown.body["metafields"], json!({ "Serial": "K-9" }));
    // The owner may not delete it (no own_devices.delete exists): 403.
    let refused = delete(&app, &format!("/api/v1/devices/{mine}"), &user).await;
    assert_eq!(refused.status, 403, "{refused:?}");

    // The Admin deletes both; they answer 404 and leave the lists.
    for device in [id, mine] {
        let mark = audit_mark(&app).await;
        let gone = delete(&app, &format!("/api/v1/devices/{device}"), &admin).await;
        assert_eq!(gone.status, 204, "{gone:?}");
        let rows = audit_since(&app, mark).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].action.as_str(), rows[0].outcome.as_str()),
            ("device.delete", "allowed")
        );
        assert_eq!(rows[0].target, format!("device:{device}"));
        let reply = get(&app, &format!("/api/v1/devices/{device}"), &admin).await;
        assert_eq!(reply.status, 404);
        assert!(!device_ids(&app, &admin).await.contains(&device));
        let again = delete(&app, &format!("/api/v1/devices/{device}"), &admin).await;
        assert_eq!(again.status, 404);
    }
    assert!(app.app().device_by_token(&token).await.unwrap().is_none());
    assert!(
        audit(&app, &format!("device:{mine}"))
            .await
            .contains(&("device.edit".to_owned(), "allowed".to_owned()))
    );
    app.stop().await;
}

async fn user_id_of(app: &TestApp, kind: BuiltinRole, place: &str) -> UserId {
    user_id(app, &email(kind, place)).await
}

async fn the_auth_token_is_shown_again_and_regeneration_ends_the_old_one(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = metered(&app, &world).await;
    let admin = app.login("admin@root.test", PASSWORD).await;
    let created = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "Meter", "template_id": template, "org_id": world.child.0 }),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_i64().unwrap();
    let first = created.body["token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/devices/{id}/auth-token");

    // Shown again, the same, on this node and another.
    let shown = app
        .http
        .get(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown, json!({ "token": first }));
    let node = app.second_node().await;
    let there: Value = app
        .http
        .get(node.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(there, json!({ "token": first }));

    // Nothing readable at rest: the row holds a nonce and a hash.
    {
        let mut tx = app.db.store().read().await.unwrap();
        let stored = tx.device_token(DeviceId(id)).await.unwrap();
        tx.finish().await.unwrap();
        assert_ne!(stored.hash, first);
        assert_eq!(stored.hash, arbor_app::hash_token(&first));
        assert!(stored.nonce.is_some_and(|n| !n.contains(&first)));
    }

    // Regenerated: a new token, audited; the old one finds nothing at once.
    let mark = audit_mark(&app).await;
    let renewed = post(&app, &path, &admin, json!({})).await;
    assert_eq!(renewed.status, 200, "{renewed:?}");
    let second = renewed.body["token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("device.token.regenerate", "allowed")
    );
    assert!(!rows[0].details.to_string().contains(&second), "{rows:?}");
    assert!(app.app().device_by_token(&first).await.unwrap().is_none());
    let found = app.app().device_by_token(&second).await.unwrap().unwrap();
    assert_eq!(found.id, DeviceId(id));
    assert!(app.app().device_by_token("").await.unwrap().is_none());
    for base in [app.url(&path), node.url(&path)] {
        let shown: Value = app
            .http
            .get(base)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown, json!({ "token": second }));
    }
    node.stop().await;

    // Only with auth_tokens.edit: Child's Staff without it sees the device
    // but not its token (403), and creating shows none.
    set_child_role(
        &app,
        &world,
        BuiltinRole::Staff,
        &["org_devices.view", "org_devices.add"],
    )
    .await;
    let staff = app
        .login(&email(BuiltinRole::Staff, "child"), PASSWORD)
        .await;
    assert_eq!(
        get(&app, &format!("/api/v1/devices/{id}"), &staff)
            .await
            .status,
        200
    );
    assert_eq!(get(&app, &path, &staff).await.status, 403);
    assert_eq!(post(&app, &path, &staff, json!({})).await.status, 403);
    let made = post(
        &app,
        "/api/v1/devices",
        &staff,
        json!({ "name": "No token", "template_id": template }),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert!(made.body.get("token").is_none(), "{made:?}");
    // The token did not change through the refusals.
    assert_eq!(
        get(&app, &path, &admin).await.body,
        json!({ "token": second })
    );

    // A device from before 0010 (no nonce) cannot show its token: 409 until
    // regenerated, after which the token shows and works.
    let legacy = world.device(&app, world.child, None, "Legacy").await;
    {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
        sqlx::query(
            "UPDATE devices SET auth_token_nonce = NULL, auth_token_hash = 'legacy' WHERE id = $1",
        )
        .bind(legacy.0)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let legacy_path = format!("/api/v1/devices/{}/auth-token", legacy.0);
    let unshowable = get(&app, &legacy_path, &admin).await;
    assert_eq!(unshowable.status, 409, "{unshowable:?}");
    assert!(
        unshowable.body["detail"]
            .as_str()
            .unwrap()
            .contains("regenerate"),
        "{unshowable:?}"
    );
    let renewed = post(&app, &legacy_path, &admin, json!({})).await;
    assert_eq!(renewed.status, 200, "{renewed:?}");
    let shown = get(&app, &legacy_path, &admin).await;
    assert_eq!(shown.body, renewed.body);
    let token = renewed.body["token"].as_str().unwrap();
    let found = app.app().device_by_token(token).await.unwrap().unwrap();
    assert_eq!(found.id, legacy);
    app.stop().await;
}

/// The routes of the matrix, in the order each actor runs them (DELETE
/// last: it removes the device).
const ROUTES: [(&str, &str); 4] = [
    ("GET", "auth-token"),
    ("POST", "auth-token"),
    ("PATCH", ""),
    ("DELETE", ""),
];

/// The audit action of each route of [`ROUTES`].
const ACTIONS: [&str; 4] = [
    "device.token.view",
    "device.token.regenerate",
    "device.edit",
    "device.delete",
];

/// Device classes, relative to the actor.
const CLASSES: [&str; 6] = ["own", "member", "suborg", "sibling", "other", "deleted"];

struct Actor {
    name: &'static str,
    email: String,
    home: OrgId,
    /// Expected status per class (as [`CLASSES`]) per route (as [`ROUTES`]).
    expected: [[u16; 4]; 6],
}

const ALLOWED: [u16; 4] = [200, 200, 200, 204];
const FORBIDDEN: [u16; 4] = [403; 4];
const HIDDEN: [u16; 4] = [404; 4];

async fn every_write_and_token_route_answers_every_device_class_as_the_matrix_says(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    // Child's Staff: sees Child's devices, may change none (and may not
    // switch to Grandchild). Child's User: owns a device, may edit it and
    // its token, never delete it, and sees nobody else's.
    set_child_role(&app, &world, BuiltinRole::Staff, &["org_devices.view"]).await;
    set_child_role(
        &app,
        &world,
        BuiltinRole::User,
        &["own_devices.view", "own_devices.edit", "auth_tokens.edit"],
    )
    .await;
    let actors = [
        Actor {
            name: "child staff without write permissions",
            email: email(BuiltinRole::Staff, "child"),
            home: world.child,
            expected: [FORBIDDEN, FORBIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN],
        },
        Actor {
            name: "child user owning a device",
            email: email(BuiltinRole::User, "child"),
            home: world.child,
            expected: [[200, 200, 200, 403], HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN],
        },
        Actor {
            name: "sibling admin using Child's ids",
            email: email(BuiltinRole::Admin, "sibling"),
            home: world.sibling,
            // The "sibling" device is in its own org.
            expected: [ALLOWED, HIDDEN, HIDDEN, ALLOWED, HIDDEN, HIDDEN],
        },
        Actor {
            name: "child admin",
            email: email(BuiltinRole::Admin, "child"),
            home: world.child,
            expected: [ALLOWED, ALLOWED, ALLOWED, HIDDEN, HIDDEN, HIDDEN],
        },
    ];

    // Shared devices: another member's in Child, Grandchild's, Sibling's,
    // another hierarchy's, and a deleted one.
    let peer_user = app
        .app()
        .add_member(
            &cli(world.root_admin),
            world.child,
            &arbor_app::NewMember {
                user: new_user("peer@child.test"),
                role: world.role(BuiltinRole::User),
            },
        )
        .await
        .unwrap();
    let member = world
        .device(&app, world.child, Some(peer_user), "Peer's")
        .await;
    let suborg = world
        .device(&app, world.grandchild, None, "Grandchild's")
        .await;
    let sibling = world.device(&app, world.sibling, None, "Sibling's").await;
    let other_admin = user_id(&app, "admin@other.test").await;
    let other_template = app
        .app()
        .create_device_template(&cli(other_admin), world.other, "Other", &[])
        .await
        .unwrap();
    let other = app
        .app()
        .create_device(
            &cli(other_admin),
            world.other,
            &arbor_app::model::NewDevice {
                name: "Other's".into(),
                template: other_template,
                owner: None,
                metafields: Vec::new(),
            },
        )
        .await
        .unwrap();
    let deleted = world.device(&app, world.child, None, "Deleted").await;
    app.app()
        .delete_device(&cli(world.root_admin), deleted)
        .await
        .unwrap();

    let mut cells = 0;
    for actor in &actors {
        let id = user_id(&app, &actor.email).await;
        let own = world.device(&app, actor.home, Some(id), "Own").await;
        let devices = [own, member, suborg, sibling, other, deleted];
        let token = app.login(&actor.email, PASSWORD).await;
        for (r, (method, tail)) in ROUTES.iter().enumerate() {
            for (c, device) in devices.iter().enumerate() {
                let want = actor.expected[c][r];
                let path = if tail.is_empty() {
                    format!("/api/v1/devices/{}", device.0)
                } else {
                    format!("/api/v1/devices/{}/{tail}", device.0)
                };
                let body = match *method {
                    "PATCH" => Some(json!({ "name": format!("Renamed {c}{r}") })),
                    "POST" => Some(json!({})),
                    _ => None,
                };
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let mark = audit_mark(&app).await;
                let reply = call(&app, method.clone(), &path, &token, None, body).await;
                let cell = format!("{} {method} {path} ({})", actor.name, CLASSES[c]);
                assert_eq!(reply.status, want, "{cell}: {reply:?}");
                cells += 1;
                let rows = audit_since(&app, mark).await;
                if r == 0 && want == 200 {
                    // Reading the token is a read: audited only when refused.
                    assert!(rows.is_empty(), "{cell}: {rows:?}");
                    continue;
                }
                assert_eq!(rows.len(), 1, "{cell}: one audit row {rows:?}");
                let row = &rows[0];
                assert_eq!(row.action, ACTIONS[r], "{cell}");
                assert_eq!(row.actor, Some(id.0), "{cell}");
                if want >= 400 {
                    let outcome = if want == 403 { "forbidden" } else { "hidden" };
                    assert_eq!(row.outcome, outcome, "{cell}: {row:?}");
                    // In the caller's own org, never the target's.
                    assert_eq!(row.actor_home_org, Some(actor.home.0), "{cell}");
                    assert_eq!(row.target_org, Some(actor.home.0), "{cell}: {row:?}");
                    assert!(reply.body["detail"].is_string(), "{cell}: {reply:?}");
                } else {
                    assert_eq!(row.outcome, "allowed", "{cell}");
                }
            }
        }
    }
    assert_eq!(cells, actors.len() * ROUTES.len() * CLASSES.len());
    app.stop().await;
}

async fn mass_assignment_in_create_and_edit_bodies_is_refused_and_never_applied(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = metered(&app, &world).await;
    let admin = app.login("admin@root.test", PASSWORD).await;
    let base = json!({ "name": "Meter", "template_id": template, "org_id": world.child.0 });
    let before = device_ids(&app, &admin).await;
    for (field, value) in [
        ("hierarchy_id", json!(world.other.0)),
        ("auth_token", json!("chosen-by-the-attacker-0123456789")),
        ("id", json!(1)),
        ("created_at", json!(0)),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let reply = post(&app, "/api/v1/devices", &admin, body).await;
        assert_eq!(reply.status, 400, "{field}: {reply:?}");
        assert!(
            reply.body["detail"].as_str().unwrap().contains(field),
            "{field}: {reply:?}"
        );
    }
    assert_eq!(device_ids(&app, &admin).await, before);
    assert!(
        app.app()
            .device_by_token("chosen-by-the-attacker-0123456789")
            .await
            .unwrap()
            .is_none()
    );

    let created = post(&app, "/api/v1/devices", &admin, base).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_i64().unwrap();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/devices/{id}");
    let original = get(&app, &path, &admin).await.body;
    let member = user_id_of(&app, BuiltinRole::User, "child").await;
    for (field, value) in [
        ("org_id", json!(world.grandchild.0)),
        ("owner_id", json!(member.0)),
        ("auth_token", json!("chosen-by-the-attacker-0123456789")),
        ("hierarchy_id", json!(world.other.0)),
    ] {
        let mut body = json!({ "name": "Moved" });
        body[field] = value;
        let reply = patch(&app, &path, &admin, body).await;
        assert_eq!(reply.status, 400, "{field}: {reply:?}");
    }
    assert_eq!(get(&app, &path, &admin).await.body, original);
    assert_eq!(
        get(&app, &format!("{path}/auth-token"), &admin).await.body,
        json!({ "token": token })
    );
    app.stop().await;
}

async fn cross_site_cookie_writes_to_devices_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = metered(&app, &world).await;
    let admin = app.login("admin@root.test", PASSWORD).await;
    let created = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({ "name": "Meter", "template_id": template, "org_id": world.child.0 }),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_i64().unwrap();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let original = get(&app, &format!("/api/v1/devices/{id}"), &admin)
        .await
        .body;
    let before = device_ids(&app, &admin).await;
    let writes = [
        (
            Method::POST,
            "/api/v1/devices".to_owned(),
            Some(json!({ "name": "Forged", "template_id": template, "org_id": world.child.0 })),
        ),
        (
            Method::POST,
            format!("/api/v1/devices/{id}/auth-token"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/devices/{id}"),
            Some(json!({ "name": "Forged" })),
        ),
        (Method::DELETE, format!("/api/v1/devices/{id}"), None),
    ];
    let mark = audit_mark(&app).await;
    for origin in ["https://evil.example", "null"] {
        for (method, path, body) in &writes {
            let mut request = app
                .http
                .request(method.clone(), app.url(path))
                .header("cookie", format!("arbor_session={admin}"))
                .header("origin", origin);
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = request.send().await.unwrap();
            assert_eq!(reply.status(), 403, "{method} {path} from {origin}");
        }
    }
    // Each refusal is audited once, against the cookie's user at home.
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 2 * writes.len(), "{rows:#?}");
    for row in &rows {
        assert_eq!(row.actor, Some(world.root_admin.0), "{row:?}");
        assert_eq!(row.actor_home_org, Some(world.root.0), "{row:?}");
        assert_ne!(row.outcome, "allowed", "{row:?}");
    }
    assert_eq!(device_ids(&app, &admin).await, before);
    assert_eq!(
        get(&app, &format!("/api/v1/devices/{id}"), &admin)
            .await
            .body,
        original
    );
    assert_eq!(
        get(&app, &format!("/api/v1/devices/{id}/auth-token"), &admin)
            .await
            .body,
        json!({ "token": token })
    );
    let found = app.app().device_by_token(&token).await.unwrap().unwrap();
    assert_eq!(found.id, DeviceId(id));
    app.stop().await;
}
