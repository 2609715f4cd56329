//! The device list and the single device over HTTP (issue 11, item 2): the
//! combined list across a caller's scope equals what `GET /devices/{id}`
//! shows, at page sizes 1, 2 and the default; narrowing by org, subtree and
//! context never widens; filters; 404 outside scope, audited at home.

use crate::support::*;
use arbor_core::{BuiltinRole, DeviceId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use std::collections::BTreeSet;

both_engines!(the_device_list_equals_the_single_get_for_every_member);
both_engines!(device_lists_narrow_by_org_subtree_and_context_and_filter);

/// Every id the list answers for `query`, following cursors at page size `limit`.
async fn listed(app: &TestApp, token: &str, query: &str, limit: Option<u32>) -> Vec<i64> {
    let mut ids = Vec::new();
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
        let items = reply.body["items"].as_array().unwrap();
        if let Some(limit) = limit {
            assert!(items.len() <= limit as usize);
        }
        for item in items {
            for field in ["id", "name", "org_id", "template_id"] {
                assert!(!item[field].is_null(), "{field} in {item}");
            }
            assert!(item.get("owner_id").is_some());
            ids.push(item["id"].as_i64().unwrap());
        }
        match reply.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ids
}

struct Devices {
    all: Vec<(DeviceId, &'static str)>,
}

async fn devices(app: &TestApp, world: &World) -> Devices {
    let child_user = user_id(app, &email(BuiltinRole::User, "child")).await;
    let child_staff = user_id(app, &email(BuiltinRole::Staff, "child")).await;
    let mut all = Vec::new();
    for (org, owner, name) in [
        (world.root, None, "Root Boiler"),
        (world.child, Some(child_user), "Child Thermostat"),
        (world.child, Some(child_staff), "Child Boiler"),
        (world.child, None, "Child Meter"),
        (world.grandchild, None, "Grandchild Heater"),
        (world.sibling, None, "Sibling Boiler"),
    ] {
        all.push((world.device(app, org, owner, name).await, name));
    }
    Devices { all }
}

async fn the_device_list_equals_the_single_get_for_every_member(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let devices = devices(&app, &world).await;
    let mut seen_any = 0;
    for (_, place) in world.places() {
        for kind in KINDS {
            let token = app.login(&email(kind, place), PASSWORD).await;
            let full = listed(&app, &token, "", None).await;
            for limit in [1, 2] {
                assert_eq!(
                    listed(&app, &token, "", Some(limit)).await,
                    full,
                    "{kind:?} of {place} at page size {limit}"
                );
            }
            let mut shown = Vec::new();
            for (device, name) in &devices.all {
                let reply = get(&app, &format!("/api/v1/devices/{}", device.0), &token).await;
                match reply.status {
                    200 => {
                        assert_eq!(reply.body["name"], *name);
                        shown.push(device.0);
                    }
                    404 => assert_eq!(reply.body["status"], 404, "{reply:?}"),
                    other => panic!("{kind:?} of {place} GET {name}: {other} {reply:?}"),
                }
            }
            assert_eq!(full, shown, "{kind:?} of {place}: list equals get");
            seen_any += usize::from(!full.is_empty());
            // Nothing of another hierarchy, nothing beside or above home.
            if place == "sibling" {
                assert!(full.iter().all(|d| *d == devices.all[5].0.0));
            }
            if place == "other" {
                assert!(full.is_empty(), "{kind:?} of other sees {full:?}");
            }
        }
    }
    assert!(seen_any >= 4, "the lists are not all empty");
    // The root Admin sees every device of its hierarchy in one list.
    let admin = app
        .login(&email(BuiltinRole::Admin, "root"), PASSWORD)
        .await;
    let want: Vec<i64> = devices.all.iter().map(|(d, _)| d.0).collect();
    assert_eq!(listed(&app, &admin, "", None).await, want);
    // The child's Admin sees Child and Grandchild, not Root or Sibling.
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let want: Vec<i64> = devices.all[1..5].iter().map(|(d, _)| d.0).collect();
    assert_eq!(listed(&app, &child_admin, "", None).await, want);
    app.stop().await;
}

async fn device_lists_narrow_by_org_subtree_and_context_and_filter(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let devices = devices(&app, &world).await;
    let id = |i: usize| devices.all[i].0.0;
    let admin = app
        .login(&email(BuiltinRole::Admin, "root"), PASSWORD)
        .await;

    let only = |query: String| {
        let (app, admin) = (&app, &admin);
        async move { listed(app, admin, &query, None).await }
    };
    assert_eq!(
        only(format!("org_id={}", world.child.0)).await,
        vec![id(1), id(2), id(3)]
    );
    assert_eq!(
        only(format!("org_id={}&include_suborgs=true", world.child.0)).await,
        vec![id(1), id(2), id(3), id(4)]
    );
    assert_eq!(only(format!("org_id={}", world.root.0)).await, vec![id(0)]);
    assert_eq!(
        only(format!("org_id={}&include_suborgs=true", world.root.0))
            .await
            .len(),
        6
    );
    // Name search (case-insensitive), template, owner, combined.
    assert_eq!(only("q=BOILER".into()).await, vec![id(0), id(2), id(5)]);
    assert_eq!(
        only(format!("q=boiler&org_id={}", world.child.0)).await,
        vec![id(2)]
    );
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    assert_eq!(
        only(format!("owner_id={}", child_user.0)).await,
        vec![id(1)]
    );
    assert_eq!(
        only(format!("template_id={}", world.template.0))
            .await
            .len(),
        6
    );
    assert!(only("template_id=999999".into()).await.is_empty());
    // LIKE's wildcards match themselves.
    assert!(only("q=%25".into()).await.is_empty());

    // A context org narrows the default list to its subtree (rule 9).
    let reply = call(
        &app,
        Method::GET,
        "/api/v1/devices",
        &admin,
        Some(world.child),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let ids: BTreeSet<i64> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([id(1), id(2), id(3), id(4)]));

    // Narrowing to an org outside the list scope: 404, audited at home.
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let child_admin_id = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    for outside in [world.sibling, world.root, world.other] {
        let mark = audit_mark(&app).await;
        let reply = get(
            &app,
            &format!("/api/v1/devices?org_id={}", outside.0),
            &child_admin,
        )
        .await;
        assert_eq!(reply.status, 404, "{reply:?}");
        let rows = audit_since(&app, mark).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].actor, Some(child_admin_id.0));
        assert_eq!(rows[0].actor_home_org, Some(world.child.0));
        assert_eq!(rows[0].target_org, Some(world.child.0), "{rows:?}");
    }
    // A missing org answers the same.
    let reply = get(&app, "/api/v1/devices?org_id=999999", &child_admin).await;
    assert_eq!(reply.status, 404);
    // With the context of the grandchild, its parent is outside the list scope.
    let reply = call(
        &app,
        Method::GET,
        &format!("/api/v1/devices?org_id={}", world.child.0),
        &child_admin,
        Some(world.grandchild),
        None,
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    // A sibling's device by id: 404, audited in the caller's own org.
    let mark = audit_mark(&app).await;
    let reply = get(&app, &format!("/api/v1/devices/{}", id(5)), &child_admin).await;
    assert_eq!(reply.status, 404);
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].target_org, Some(world.child.0), "{rows:?}");
    // Bad input is a clear 400.
    for query in [
        "org_id=x",
        "include_suborgs=maybe",
        "limit=0",
        "cursor=zzz",
        "colour=red",
    ] {
        let reply = get(&app, &format!("/api/v1/devices?{query}"), &admin).await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
        assert!(reply.body["detail"].is_string(), "{reply:?}");
    }
    app.stop().await;
}
