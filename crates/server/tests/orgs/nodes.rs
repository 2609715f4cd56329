//! Two server nodes over one database, each with its own pool and decision
//! cache: a write committed through node B is seen by the very next request
//! on node A — no stale allow, no stale session.

use crate::support::*;
use arbor_app::model::NewDevice;
use arbor_core::OrgId;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(a_write_on_one_node_is_seen_by_the_next_request_on_another);

/// One request to the node at `base` (node A is `app.base`, node B a `TestNode`'s).
async fn send(
    app: &TestApp,
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body }
}

/// The answers of `POST /api/v1/access/check` on `base`, as (allowed, rule).
async fn check(
    app: &TestApp,
    base: &str,
    token: &str,
    questions: &[&Value],
) -> Vec<(bool, String)> {
    let body = json!({ "questions": questions });
    let reply = send(
        app,
        base,
        Method::POST,
        "/api/v1/access/check",
        token,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert!(a.get("error").is_none(), "{a}");
            (
                a["allowed"].as_bool().unwrap(),
                a["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn status(app: &TestApp, base: &str, method: Method, path: &str, token: &str) -> u16 {
    send(app, base, method, path, token, None).await.status
}

async fn org(app: &TestApp, token: &str, parent: OrgId, name: &str) -> OrgId {
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

async fn a_write_on_one_node_is_seen_by_the_next_request_on_another(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let node_b = app.second_node().await;
    let (a, b) = (app.base.as_str(), node_b.base.as_str());

    // Heat ─┬─ East ── Site (U: Staff; device D owned by U)
    //       └─ West
    // with E the Admin of East and W the Admin of West; built through node A.
    let (heat, admin) = setup_over_http(&app, "Heat", "a@heat.test").await;
    let ta = app.login("a@heat.test", PASSWORD).await;
    let (admin_role, staff) = (
        role_id(&app, &ta, "Admin").await,
        role_id(&app, &ta, "Staff").await,
    );
    let east = org(&app, &ta, heat, "East").await;
    let west = org(&app, &ta, heat, "West").await;
    let site = org(&app, &ta, east, "Site").await;
    let u = invite_and_accept(&app, &ta, "u@site.test", site, staff).await;
    let e = invite_and_accept(&app, &ta, "e@east.test", east, admin_role).await;
    let w = invite_and_accept(&app, &ta, "w@west.test", west, admin_role).await;
    let by = cli(admin);
    let template = app
        .app()
        .create_device_template(&by, heat, "Sensor", &[])
        .await
        .unwrap();
    app.app()
        .enable_device_template(&by, site, template)
        .await
        .unwrap();
    let device = NewDevice {
        name: "Meter".into(),
        template,
        owner: Some(u),
        metafields: Vec::new(),
    };
    let d = app.app().create_device(&by, site, &device).await.unwrap();

    let u_views_d = json!({ "user_id": u.0, "action": "view", "device_id": d.0 });
    let u_users_in_site = json!({ "user_id": u.0, "permission": "users.view", "org_id": site.0 });
    let e_views_d = json!({ "user_id": e.0, "action": "view", "device_id": d.0 });
    let w_views_d = json!({ "user_id": w.0, "action": "view", "device_id": d.0 });
    let e_settings_of_site =
        json!({ "user_id": e.0, "permission": "organizations.settings", "org_id": site.0 });
    let questions = [
        &u_views_d,
        &u_users_in_site,
        &e_views_d,
        &w_views_d,
        &e_settings_of_site,
    ];
    let allowed = |answers: &[(bool, String)]| answers.iter().map(|a| a.0).collect::<Vec<_>>();

    // Warm node A: the admin's sessions, U's session, and every fact the
    // questions read; asked twice, the second time from the cache.
    let ta2 = app.login("a@heat.test", PASSWORD).await;
    let tu = app.login("u@site.test", PASSWORD).await;
    for token in [&ta, &ta2, &tu] {
        assert_eq!(status(&app, a, Method::GET, "/api/v1/me", token).await, 200);
    }
    let warm = check(&app, a, &ta, &questions).await;
    assert_eq!(allowed(&warm), [true, true, true, false, true], "{warm:?}");
    assert_eq!(warm[0].1, "device_in_scope");
    assert_eq!(check(&app, a, &ta, &questions).await, warm);

    // 1. Staff's set in Site loses org_devices.view on node B: U no longer
    //    sees D on node A; the old set back, and U sees it again.
    let set_path = format!("/api/v1/orgs/{}/roles/{staff}/permissions", site.0);
    let matrix = send(
        &app,
        b,
        Method::GET,
        &format!("/api/v1/orgs/{}/permissions", site.0),
        &ta,
        None,
    )
    .await;
    assert_eq!(matrix.status, 200, "{matrix:?}");
    let staff_set = matrix.body["sets"][staff.to_string()].clone();
    assert!(
        staff_set
            .as_array()
            .unwrap()
            .contains(&json!("org_devices.view")),
        "{staff_set}"
    );
    let saved = send(
        &app,
        b,
        Method::PUT,
        &set_path,
        &ta,
        Some(json!({ "permissions": ["users.view"] })),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let answers = check(&app, a, &ta, &questions).await;
    assert_eq!(
        allowed(&answers),
        [false, true, true, false, true],
        "{answers:?}"
    );
    let saved = send(
        &app,
        b,
        Method::PUT,
        &set_path,
        &ta,
        Some(json!({ "permissions": staff_set })),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(check(&app, a, &ta, &questions).await, warm);

    // 2. Site moves under West on node B: on node A, E loses D and Site's
    //    settings, W gains D, and U keeps what its own org gives it.
    let moved = send(
        &app,
        b,
        Method::POST,
        &format!("/api/v1/orgs/{}/transfer", site.0),
        &ta,
        Some(json!({ "new_parent_id": west.0, "confirm": true })),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let answers = check(&app, a, &ta, &questions).await;
    assert_eq!(
        allowed(&answers),
        [true, true, false, true, false],
        "{answers:?}"
    );

    // 3. The admin's second session logs out on node B: node A refuses it at
    //    once, and still accepts the first.
    let out = send(&app, b, Method::POST, "/api/v1/auth/logout", &ta2, None).await;
    assert_eq!(out.status, 204, "{out:?}");
    assert_eq!(status(&app, a, Method::GET, "/api/v1/me", &ta2).await, 401);
    assert_eq!(status(&app, a, Method::GET, "/api/v1/me", &ta).await, 200);

    // 4. U is suspended on node B: node A denies U by rule 1 (status) and
    //    refuses U's token.
    let suspend = format!("/api/v1/users/{}/suspend", u.0);
    assert_eq!(status(&app, b, Method::POST, &suspend, &ta).await, 204);
    let answers = check(&app, a, &ta, &[&u_views_d, &u_users_in_site]).await;
    let inactive = (false, "user_inactive".to_owned());
    assert_eq!(answers, [inactive.clone(), inactive], "{answers:?}");
    assert_eq!(status(&app, a, Method::GET, "/api/v1/me", &tu).await, 401);

    // Unsuspended on node B, U is allowed again on node A; a new session of
    // U, used on node A, is refused on node A right after a second suspension.
    let unsuspend = format!("/api/v1/users/{}/unsuspend", u.0);
    assert_eq!(status(&app, b, Method::POST, &unsuspend, &ta).await, 204);
    let answers = check(&app, a, &ta, &[&u_views_d, &u_users_in_site]).await;
    assert_eq!(allowed(&answers), [true, true], "{answers:?}");
    let tu = app.login("u@site.test", PASSWORD).await;
    assert_eq!(status(&app, a, Method::GET, "/api/v1/me", &tu).await, 200);
    assert_eq!(status(&app, b, Method::POST, &suspend, &ta).await, 204);
    assert_eq!(status(&app, a, Method::GET, "/api/v1/me", &tu).await, 401);

    node_b.stop().await;
}
