//! Locations and tags over HTTP (issue 11, item 6, and the tag, location and
//! online filters of item 2): CRUD with its bounds, the filters narrowing the
//! device list while "list equals get" still holds, a location never
//! changing who can see a device, and the attacker's view — another org's
//! ids answer 404 (audited in the caller's own org), a forged cross-site
//! cookie write 403.

use crate::support::*;
use arbor_app::model::Clock as _;
use arbor_core::{BuiltinRole, DeviceId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(locations_are_created_edited_and_deleted_within_their_bounds);
both_engines!(tag_catalogs_hold_twenty_and_objects_five);
both_engines!(tag_location_and_online_filters_narrow_and_list_equals_get);
both_engines!(a_location_never_changes_who_can_see_a_device);
both_engines!(other_orgs_ids_answer_404_audited_at_home_and_cross_site_writes_403);

async fn login(app: &TestApp, kind: BuiltinRole, place: &str) -> String {
    app.login(&email(kind, place), PASSWORD).await
}

/// The ids of a list of objects.
fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

/// Every device the list answers for `query` as `token`, following cursors.
async fn listed(app: &TestApp, token: &str, query: &str, limit: Option<u32>) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/devices?{query}");
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = get(app, &path, token).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        items.extend(reply.body["items"].as_array().unwrap().iter().cloned());
        match reply.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    items
}

/// Which devices of a full list a filter keeps.
type Keep = Box<dyn Fn(&Value) -> bool>;

/// Sets a device's last contact straight in the table (the device API that
/// records it is another issue's).
async fn seen_at(app: &TestApp, device: DeviceId, at: Option<i64>) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(at)
        .bind(device.0)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn create_location(app: &TestApp, token: &str, body: Value) -> Reply {
    post(app, "/api/v1/locations", token, body).await
}

async fn locations_are_created_edited_and_deleted_within_their_bounds(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "child").await;

    // Bounds: name 1–48, coordinates in range and together, one-line address.
    let plant = json!({ "org_id": world.child.0, "name": "Plant", "address": "Main St 1",
        "lat": 48.2, "lon": 16.37 });
    for (field, value) in [
        ("name", json!("x".repeat(49))),
        ("name", json!("  ")),
        ("lat", json!(90.5)),
        ("lon", json!(-180.5)),
        ("address", json!("a\nb")),
        ("address", json!("a".repeat(257))),
        ("colour", json!("red")),
    ] {
        let mut body = plant.clone();
        body[field] = value;
        let reply = create_location(&app, &admin, body).await;
        assert_eq!(reply.status, 400, "{field}: {reply:?}");
        assert!(reply.body["detail"].is_string(), "{reply:?}");
    }
    let mut alone = plant.clone();
    alone.as_object_mut().unwrap().remove("lon");
    assert_eq!(create_location(&app, &admin, alone).await.status, 400);
    let listed = get(&app, "/api/v1/locations", &admin).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was created");

    let mut max = plant.clone();
    max["name"] = json!("x".repeat(48));
    let created = create_location(&app, &admin, max).await;
    assert_eq!(created.status, 201, "{created:?}");
    let created = create_location(&app, &admin, plant.clone()).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["org_id"], world.child.0);
    assert_eq!(created.body["lat"], 48.2);
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/locations/{id}");
    let reply = get(&app, &path, &admin).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["name"], "Plant");

    // PATCH changes only what it names; null clears the coordinates.
    let reply = patch(&app, &path, &admin, json!({ "name": "Plant 2" })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["name"], "Plant 2");
    assert_eq!(reply.body["address"], "Main St 1");
    let reply = patch(&app, &path, &admin, json!({ "lat": null, "lon": null })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body["lat"].is_null());
    let reply = patch(&app, &path, &admin, json!({ "name": "y".repeat(49) })).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(get(&app, &path, &admin).await.body["name"], "Plant 2");

    // Assigned users: members within the caller's scope.
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let sibling_user = user_id(&app, &email(BuiltinRole::User, "sibling")).await;
    let reply = patch(&app, &path, &admin, json!({ "user_ids": [child_user.0] })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["user_ids"], json!([child_user.0]));
    let reply = patch(&app, &path, &admin, json!({ "user_ids": [sibling_user.0] })).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = patch(&app, &path, &admin, json!({ "user_ids": [999999] })).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(
        get(&app, &path, &admin).await.body["user_ids"],
        json!([child_user.0])
    );

    // The root's Admin sees it (parent sees below); the Staff of the child
    // too (org_locations.view); the child's User holds nothing: 404.
    let root_admin = login(&app, BuiltinRole::Admin, "root").await;
    assert_eq!(get(&app, &path, &root_admin).await.status, 200);
    let staff = login(&app, BuiltinRole::Staff, "child").await;
    assert_eq!(get(&app, &path, &staff).await.status, 200);
    let user = login(&app, BuiltinRole::User, "child").await;
    assert_eq!(get(&app, &path, &user).await.status, 404);
    assert_eq!(
        get(&app, "/api/v1/locations", &user).await.body["items"],
        json!([])
    );
    // Creating needs the permission: visible org, so 403.
    let reply = create_location(&app, &user, plant.clone()).await;
    assert_eq!(reply.status, 403, "{reply:?}");

    // Own locations: only for their owner.
    let own = create_location(&app, &staff, json!({ "name": "Home" })).await;
    assert_eq!(own.status, 201, "{own:?}");
    assert!(own.body["org_id"].is_null());
    let own_path = format!("/api/v1/locations/{}", own.body["id"]);
    assert_eq!(get(&app, &own_path, &staff).await.status, 200);
    assert_eq!(get(&app, &own_path, &admin).await.status, 404);
    assert_eq!(get(&app, &own_path, &root_admin).await.status, 404);
    let staff_list = ids(&get(&app, "/api/v1/locations", &staff).await.body["items"]);
    assert!(staff_list.contains(&id) && staff_list.contains(&own.body["id"].as_i64().unwrap()));
    // List equals get for the admin at page size 1.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let reply = get(&app, &format!("/api/v1/locations?limit=1{cursor}"), &admin).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        paged.extend(ids(&reply.body["items"]));
        match reply.body["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        paged,
        ids(&get(&app, "/api/v1/locations", &admin).await.body["items"])
    );
    assert_eq!(paged.len(), 2);

    // A device at the location; deleting the location clears it, audited.
    let device = world.device(&app, world.child, None, "Meter").await;
    let device_path = format!("/api/v1/devices/{}/location", device.0);
    let reply = put(&app, &device_path, &admin, json!({ "location_id": id })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["location_id"], id);
    assert_eq!(
        get(&app, &format!("/api/v1/devices/{}", device.0), &admin)
            .await
            .body["location_id"],
        id
    );
    // Someone else's own location is not visible: 404.
    let reply = put(
        &app,
        &device_path,
        &admin,
        json!({ "location_id": own.body["id"] }),
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = delete(&app, &path, &admin).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["devices_cleared"], 1);
    assert_eq!(get(&app, &path, &admin).await.status, 404);
    assert!(
        get(&app, &format!("/api/v1/devices/{}", device.0), &admin)
            .await
            .body["location_id"]
            .is_null()
    );
    let rows = audit(&app, &format!("location:{id}")).await;
    assert!(
        rows.contains(&("location.delete".into(), "allowed".into())),
        "{rows:?}"
    );
    // Clearing a device's location.
    let reply = put(&app, &device_path, &admin, json!({ "location_id": null })).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // A user's own locations go with the account; devices there lose it.
    let reply = put(
        &app,
        &device_path,
        &staff,
        json!({ "location_id": own.body["id"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let staff_id = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let reply = delete(&app, &format!("/api/v1/users/{}", staff_id.0), &admin).await;
    assert!(reply.status < 300, "{reply:?}");
    assert_eq!(get(&app, &own_path, &root_admin).await.status, 404);
    assert!(
        get(&app, &format!("/api/v1/devices/{}", device.0), &admin)
            .await
            .body["location_id"]
            .is_null()
    );
    app.stop().await;
}

async fn tag_catalogs_hold_twenty_and_objects_five(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "child").await;
    let tag = |name: &str| json!({ "org_id": world.child.0, "name": name });
    for bad in ["", "   ", &"t".repeat(25)] {
        let reply = post(&app, "/api/v1/tags", &admin, tag(bad)).await;
        assert_eq!(reply.status, 400, "{bad:?}: {reply:?}");
    }
    let mut created = Vec::new();
    for i in 0..20 {
        let name = if i == 0 {
            "t".repeat(24)
        } else {
            format!("Tag{i}")
        };
        let reply = post(&app, "/api/v1/tags", &admin, tag(&name)).await;
        assert_eq!(reply.status, 201, "{i}: {reply:?}");
        assert_eq!(reply.body["org_id"], world.child.0);
        created.push(reply.body["id"].as_i64().unwrap());
    }
    let reply = post(&app, "/api/v1/tags", &admin, tag("Tag21")).await;
    assert_eq!(reply.status, 409, "the 21st tag: {reply:?}");
    let catalog = get(
        &app,
        &format!("/api/v1/tags?org_id={}", world.child.0),
        &admin,
    )
    .await;
    assert_eq!(catalog.status, 200);
    assert_eq!(catalog.body.as_array().unwrap().len(), 20);
    // Without org_id: the org the caller acts in.
    assert_eq!(
        get(&app, "/api/v1/tags", &admin)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        20
    );
    // A duplicate (ignoring case) is a conflict once there is room.
    let reply = delete(&app, &format!("/api/v1/tags/{}", created[19]), &admin).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let reply = post(&app, "/api/v1/tags", &admin, tag("TAG1")).await;
    assert_eq!(reply.status, 409, "{reply:?}");

    // A device carries at most five tags, from its org's catalog.
    let device = world.device(&app, world.child, None, "Meter").await;
    let path = format!("/api/v1/devices/{}/tags", device.0);
    let five: Vec<String> = (1..=5).map(|i| format!("tag{i}")).collect();
    let reply = put(&app, &path, &admin, json!({ "tags": five })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["tags"].as_array().unwrap().len(), 5);
    let six: Vec<String> = (1..=6).map(|i| format!("Tag{i}")).collect();
    let reply = put(&app, &path, &admin, json!({ "tags": six })).await;
    assert_eq!(reply.status, 400, "the 6th tag: {reply:?}");
    let reply = put(&app, &path, &admin, json!({ "tags": ["Cellar"] })).await;
    assert_eq!(reply.status, 400, "not in the catalog: {reply:?}");
    let reply = put(&app, &path, &admin, json!({ "tags": ["Tag1", "tag1"] })).await;
    assert_eq!(reply.status, 400, "twice: {reply:?}");
    let shown = get(&app, &format!("/api/v1/devices/{}", device.0), &admin).await;
    assert_eq!(shown.body["tags"].as_array().unwrap().len(), 5, "unchanged");
    // Deleting a tag takes it off the device.
    let reply = delete(&app, &format!("/api/v1/tags/{}", created[1]), &admin).await;
    assert_eq!(reply.status, 204);
    let shown = get(&app, &format!("/api/v1/devices/{}", device.0), &admin).await;
    assert_eq!(shown.body["tags"].as_array().unwrap().len(), 4, "{shown:?}");

    // Device tags are a device edit: the Staff (org_devices.edit) may, the
    // User (nothing) may not even see the device.
    let staff = login(&app, BuiltinRole::Staff, "child").await;
    let reply = put(&app, &path, &staff, json!({ "tags": ["Tag3"] })).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let user = login(&app, BuiltinRole::User, "child").await;
    let reply = put(&app, &path, &user, json!({ "tags": [] })).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    // Managing the catalog needs tags.manage: the User cannot see it.
    assert_eq!(get(&app, "/api/v1/tags", &user).await.status, 404);
    assert_eq!(
        post(&app, "/api/v1/tags", &user, tag("x")).await.status,
        404
    );

    // A user carries at most five tags, from the catalog of their org.
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let user_path = format!("/api/v1/users/{}/tags", child_user.0);
    let reply = put(
        &app,
        &user_path,
        &admin,
        json!({ "tags": ["Tag3", "Tag4"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["tags"], json!(["Tag3", "Tag4"]));
    let reply = put(&app, &user_path, &admin, json!({ "tags": six_names() })).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    // The user list filters by tag too, within what the caller may list.
    let tagged = get(&app, "/api/v1/users?tag=TAG3", &admin).await;
    assert_eq!(tagged.status, 200, "{tagged:?}");
    assert_eq!(ids(&tagged.body["items"]), vec![child_user.0]);
    let sibling_admin = login(&app, BuiltinRole::Admin, "sibling").await;
    let tagged = get(&app, "/api/v1/users?tag=TAG3", &sibling_admin).await;
    assert_eq!(tagged.body["items"], json!([]));
    assert_eq!(get(&app, "/api/v1/users?tag=", &admin).await.status, 400);
    app.stop().await;
}

fn six_names() -> Vec<String> {
    (1..=6).map(|i| format!("Tag{i}")).collect()
}

async fn tag_location_and_online_filters_narrow_and_list_equals_get(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let root_admin = login(&app, BuiltinRole::Admin, "root").await;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let mut devices = Vec::new();
    for (org, owner, name) in [
        (world.root, None, "Root Boiler"),
        (world.child, Some(child_user), "Child Thermostat"),
        (world.child, None, "Child Boiler"),
        (world.child, None, "Child Meter"),
        (world.grandchild, None, "Grandchild Heater"),
        (world.sibling, None, "Sibling Boiler"),
    ] {
        devices.push(world.device(&app, org, owner, name).await);
    }
    // A "hall" tag in each org's catalog; a location in the child.
    for org in [world.root, world.child, world.grandchild, world.sibling] {
        let reply = post(
            &app,
            "/api/v1/tags",
            &root_admin,
            json!({ "org_id": org.0, "name": "Hall" }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let location = create_location(
        &app,
        &root_admin,
        json!({ "org_id": world.child.0, "name": "Plant" }),
    )
    .await;
    assert_eq!(location.status, 201, "{location:?}");
    let location = location.body["id"].as_i64().unwrap();
    for i in [0, 1, 4, 5] {
        let path = format!("/api/v1/devices/{}/tags", devices[i].0);
        let reply = put(&app, &path, &root_admin, json!({ "tags": ["hall"] })).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["tags"], json!(["Hall"]));
    }
    for i in [1, 2] {
        let path = format!("/api/v1/devices/{}/location", devices[i].0);
        let reply = put(&app, &path, &root_admin, json!({ "location_id": location })).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    // Online: seen within the heartbeat (60 s) by the server's clock.
    let now = app.clock().now_ms();
    seen_at(&app, devices[0], Some(now - 1_000)).await;
    seen_at(&app, devices[1], Some(now - 59_000)).await;
    seen_at(&app, devices[2], Some(now - 61_000)).await;
    seen_at(&app, devices[4], Some(now)).await;

    let filters: Vec<(String, Keep)> = vec![
        (
            "tag=HALL".into(),
            Box::new(|d: &Value| d["tags"] == json!(["Hall"])),
        ),
        (
            format!("location_id={location}"),
            Box::new(move |d: &Value| d["location_id"] == location),
        ),
        (
            "online=true".into(),
            Box::new(move |d: &Value| {
                d["last_seen_at"]
                    .as_i64()
                    .is_some_and(|t| t >= now - 60_000)
            }),
        ),
        (
            "online=false".into(),
            Box::new(move |d: &Value| d["last_seen_at"].as_i64().is_none_or(|t| t < now - 60_000)),
        ),
        (
            format!(
                "tag=hall&online=true&org_id={}&include_suborgs=true",
                world.child.0
            ),
            Box::new(|d: &Value| {
                d["tags"] == json!(["Hall"]) && d["last_seen_at"].as_i64().is_some()
            }),
        ),
        ("tag=cellar".into(), Box::new(|_: &Value| false)),
    ];
    let mut narrowed_any = false;
    for (_, place) in world.places() {
        for kind in KINDS {
            let token = app.login(&email(kind, place), PASSWORD).await;
            let all = listed(&app, &token, "", None).await;
            // List equals get, and every view carries the new fields.
            for (device, _) in devices.iter().zip(0..) {
                let reply = get(&app, &format!("/api/v1/devices/{}", device.0), &token).await;
                let in_list = all.iter().find(|d| d["id"] == device.0);
                match in_list {
                    Some(view) => {
                        assert_eq!(reply.status, 200);
                        // The single view adds the device's metafields.
                        let mut single = reply.body.clone();
                        assert!(single["metafields"].is_object(), "{single}");
                        single.as_object_mut().unwrap().remove("metafields");
                        assert_eq!(&single, view, "{kind:?} of {place}");
                        assert!(view.get("tags").is_some() && view.get("location_id").is_some());
                    }
                    None => assert_eq!(reply.status, 404, "{kind:?} of {place}: {reply:?}"),
                }
            }
            for (query, keep) in &filters {
                // The child org filter is outside some callers' list scope.
                let child_in_scope =
                    place == "child" || (place == "root" && kind != BuiltinRole::User);
                if query.contains("org_id") && !child_in_scope {
                    continue;
                }
                let want: Vec<&Value> = all
                    .iter()
                    .filter(|d| keep(d))
                    .filter(|d| {
                        !query.contains("org_id")
                            || [world.child.0, world.grandchild.0]
                                .contains(&d["org_id"].as_i64().unwrap())
                    })
                    .collect();
                for limit in [None, Some(1), Some(2)] {
                    let got = listed(&app, &token, query, limit).await;
                    assert_eq!(
                        got.iter().collect::<Vec<_>>(),
                        want,
                        "{kind:?} of {place}, {query}, limit {limit:?}"
                    );
                }
                narrowed_any |= !want.is_empty() && want.len() < all.len();
            }
        }
    }
    assert!(narrowed_any);
    // The root Admin's exact answers.
    let id_list = |items: Vec<Value>| -> Vec<i64> {
        items.iter().map(|d| d["id"].as_i64().unwrap()).collect()
    };
    let d = |i: usize| devices[i].0;
    assert_eq!(
        id_list(listed(&app, &root_admin, "tag=hall", None).await),
        vec![d(0), d(1), d(4), d(5)]
    );
    assert_eq!(
        id_list(listed(&app, &root_admin, "online=true", None).await),
        vec![d(0), d(1), d(4)]
    );
    assert_eq!(
        id_list(
            listed(
                &app,
                &root_admin,
                &format!("location_id={location}&q=boiler"),
                None
            )
            .await
        ),
        vec![d(2)]
    );
    // Time passes: the clock decides, not the wall.
    app.clock().advance(30_000);
    assert_eq!(
        id_list(listed(&app, &root_admin, "online=true", None).await),
        vec![d(0), d(4)]
    );
    for bad in ["online=maybe", "location_id=x", "tag="] {
        let reply = get(&app, &format!("/api/v1/devices?{bad}"), &root_admin).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
    }
    app.stop().await;
}

/// What `GET /devices/{id}` answers each member of the world.
async fn device_statuses(app: &TestApp, world: &World, device: DeviceId) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (_, place) in world.places() {
        for kind in KINDS {
            let token = app.login(&email(kind, place), PASSWORD).await;
            let reply = get(app, &format!("/api/v1/devices/{}", device.0), &token).await;
            statuses.push(reply.status);
        }
    }
    statuses
}

async fn a_location_never_changes_who_can_see_a_device(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let root_admin = login(&app, BuiltinRole::Admin, "root").await;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let device = world
        .device(&app, world.child, Some(child_user), "Garage Door")
        .await;
    // A location in the sibling's hierarchy part, and one in the child with
    // every sibling member assigned: neither shares the device.
    let sibling_members: Vec<i64> = {
        let mut ids = Vec::new();
        for kind in KINDS {
            ids.push(user_id(&app, &email(kind, "sibling")).await.0);
        }
        ids
    };
    let here = create_location(
        &app,
        &root_admin,
        json!({ "org_id": world.child.0, "name": "Garage" }),
    )
    .await;
    assert_eq!(here.status, 201, "{here:?}");
    let reply = patch(
        &app,
        &format!("/api/v1/locations/{}", here.body["id"]),
        &root_admin,
        json!({ "user_ids": sibling_members }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let query = |action: &str| format!("action={action}&device_id={}", device.0);
    let before: Vec<Vec<i64>> = {
        let mut all = Vec::new();
        for action in ["view", "control", "edit"] {
            all.push(who_can(&app, &root_admin, &query(action)).await);
        }
        all
    };
    let seen_before = device_statuses(&app, &world, device).await;
    let reply = put(
        &app,
        &format!("/api/v1/devices/{}/location", device.0),
        &root_admin,
        json!({ "location_id": here.body["id"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for (i, action) in ["view", "control", "edit"].iter().enumerate() {
        assert_eq!(
            who_can(&app, &root_admin, &query(action)).await,
            before[i],
            "who can {action}"
        );
    }
    assert_eq!(device_statuses(&app, &world, device).await, seen_before);
    // Nor does a location someone owns: the child's User (the owner) has no
    // location permission, and a Staff's own location cannot be used by anyone else.
    let staff = login(&app, BuiltinRole::Staff, "child").await;
    let own = create_location(&app, &staff, json!({ "name": "Staff home" })).await;
    assert_eq!(own.status, 201);
    let reply = put(
        &app,
        &format!("/api/v1/devices/{}/location", device.0),
        &root_admin,
        json!({ "location_id": own.body["id"] }),
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    app.stop().await;
}

async fn other_orgs_ids_answer_404_audited_at_home_and_cross_site_writes_403(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let admin = login(&app, BuiltinRole::Admin, "child").await;
    let device = world.device(&app, world.child, None, "Meter").await;
    let location = create_location(
        &app,
        &admin,
        json!({ "org_id": world.child.0, "name": "Plant" }),
    )
    .await;
    assert_eq!(location.status, 201);
    let location = location.body["id"].as_i64().unwrap();
    let tag = post(
        &app,
        "/api/v1/tags",
        &admin,
        json!({ "org_id": world.child.0, "name": "Hall" }),
    )
    .await;
    assert_eq!(tag.status, 201);
    let tag = tag.body["id"].as_i64().unwrap();
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;

    // The sibling's Admin with the child's ids: 404 everywhere, each denial
    // audited in the sibling's own org.
    let sibling_admin = login(&app, BuiltinRole::Admin, "sibling").await;
    let sibling_admin_id = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/locations/{location}"), None),
        (
            Method::PATCH,
            format!("/api/v1/locations/{location}"),
            Some(json!({ "name": "Mine" })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/locations/{location}"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/locations".into(),
            Some(json!({ "org_id": world.child.0, "name": "Mine" })),
        ),
        (
            Method::PUT,
            format!("/api/v1/devices/{}/location", device.0),
            Some(json!({ "location_id": null })),
        ),
        (
            Method::PUT,
            format!("/api/v1/devices/{}/tags", device.0),
            Some(json!({ "tags": [] })),
        ),
        (
            Method::GET,
            format!("/api/v1/tags?org_id={}", world.child.0),
            None,
        ),
        (
            Method::POST,
            "/api/v1/tags".into(),
            Some(json!({ "org_id": world.child.0, "name": "Mine" })),
        ),
        (Method::DELETE, format!("/api/v1/tags/{tag}"), None),
        (
            Method::PUT,
            format!("/api/v1/users/{}/tags", child_user.0),
            Some(json!({ "tags": [] })),
        ),
    ];
    for (method, path, body) in &attempts {
        let mark = audit_mark(&app).await;
        let reply = call(
            &app,
            method.clone(),
            path,
            &sibling_admin,
            None,
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        let rows = audit_since(&app, mark).await;
        assert_eq!(rows.len(), 1, "{method} {path}: {rows:?}");
        assert_eq!(rows[0].actor, Some(sibling_admin_id.0));
        assert_eq!(rows[0].actor_home_org, Some(world.sibling.0), "{rows:?}");
        assert_eq!(
            rows[0].target_org,
            Some(world.sibling.0),
            "{method} {path}: {rows:?}"
        );
        assert_ne!(rows[0].outcome, "allowed");
    }
    // The other hierarchy's Admin, too.
    let other_admin = login(&app, BuiltinRole::Admin, "other").await;
    for (method, path, body) in &attempts {
        let reply = call(&app, method.clone(), path, &other_admin, None, body.clone()).await;
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
    }
    // A device of the sibling cannot be put at the child's location even by
    // someone who sees both (the root Admin): it is another org's, but the
    // same hierarchy, so that is allowed; a location of another hierarchy is
    // absent.
    let other_location = create_location(
        &app,
        &other_admin,
        json!({ "org_id": world.other.0, "name": "Far away" }),
    )
    .await;
    assert_eq!(other_location.status, 201);
    let root_admin = login(&app, BuiltinRole::Admin, "root").await;
    let reply = put(
        &app,
        &format!("/api/v1/devices/{}/location", device.0),
        &root_admin,
        json!({ "location_id": other_location.body["id"] }),
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");

    // A forged cross-site write with the session cookie: 403, nothing changes.
    let cookie = format!("arbor_session={admin}");
    let forged: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/v1/locations".into(),
            json!({ "org_id": world.child.0, "name": "Forged" }),
        ),
        (
            Method::PATCH,
            format!("/api/v1/locations/{location}"),
            json!({ "name": "Forged" }),
        ),
        (
            Method::PUT,
            format!("/api/v1/devices/{}/location", device.0),
            json!({ "location_id": location }),
        ),
        (
            Method::POST,
            "/api/v1/tags".into(),
            json!({ "org_id": world.child.0, "name": "Forged" }),
        ),
        (
            Method::PUT,
            format!("/api/v1/devices/{}/tags", device.0),
            json!({ "tags": ["Hall"] }),
        ),
    ];
    for (method, path, body) in forged {
        let response = app
            .http
            .request(method.clone(), app.url(&path))
            .header("cookie", &cookie)
            .header("origin", "https://evil.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    let shown = get(&app, &format!("/api/v1/devices/{}", device.0), &admin).await;
    assert!(shown.body["location_id"].is_null());
    assert_eq!(shown.body["tags"], json!([]));
    let locations = get(&app, "/api/v1/locations", &admin).await;
    assert_eq!(ids(&locations.body["items"]), vec![location]);
    assert_eq!(
        get(&app, &format!("/api/v1/locations/{location}"), &admin)
            .await
            .body["name"],
        "Plant"
    );
    let catalog = get(&app, "/api/v1/tags", &admin).await;
    assert_eq!(ids(&catalog.body), vec![tag]);
    // The same requests from this site (bearer token) work.
    let reply = put(
        &app,
        &format!("/api/v1/devices/{}/tags", device.0),
        &admin,
        json!({ "tags": ["Hall"] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    app.stop().await;
}
