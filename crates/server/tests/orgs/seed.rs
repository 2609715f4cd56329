//! SPEC.md section 9 (seed 001), built through the API — setup, sub-orgs
//! (one with its Admin invited in the same request), invitations accepted by
//! link, the User role's set — and then checked through explain and who-can.
//! Devices are created through the device use case and listed over HTTP by
//! each user.

use crate::support::*;
use arbor_core::{DeviceId, OrgId, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

both_engines!(seed_001_is_built_through_the_api_and_explained);

async fn create_org(
    app: &TestApp,
    token: &str,
    parent: OrgId,
    name: &str,
    body: serde_json::Value,
) -> (OrgId, serde_json::Value) {
    let mut request = json!({ "parent_id": parent.0, "name": name });
    if let (Some(into), Some(extra)) = (request.as_object_mut(), body.as_object()) {
        into.extend(extra.clone());
    }
    let reply = post(app, "/api/v1/orgs", token, request).await;
    assert_eq!(reply.status, 201, "{name}: {reply:?}");
    (OrgId(reply.body["id"].as_i64().unwrap()), reply.body)
}

async fn seed_001_is_built_through_the_api_and_explained(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (heat, a) = setup_over_http(&app, "Heat Co", "a@heat.example").await;
    let ta = app.login("a@heat.example", PASSWORD).await;

    let (admin, staff, user) = (
        role_id(&app, &ta, "Admin").await,
        role_id(&app, &ta, "Staff").await,
        role_id(&app, &ta, "User").await,
    );

    let (muller, _) = create_org(&app, &ta, heat, "Muller Boiler Group", json!({})).await;
    let (united, _) = create_org(&app, &ta, heat, "United Heaters Inc.", json!({})).await;
    let (customer_m, created) = create_org(
        &app,
        &ta,
        united,
        "Customer M",
        json!({ "type": "PERSONAL", "timezone": "Europe/Berlin",
                "admin": { "email": "m@customer.example", "name": "M" } }),
    )
    .await;
    assert_eq!(created["type"], "PERSONAL");
    assert_eq!(created["path"], json!([heat.0, united.0, customer_m.0]));
    let m = UserId(created["admin_user_id"].as_i64().unwrap());
    accept(&app, "m@customer.example").await;
    let (customer_h, _) = create_org(&app, &ta, united, "Customer H", json!({})).await;
    let h = invite_and_accept(&app, &ta, "h@customer.example", customer_h, admin).await;
    let r = invite_and_accept(&app, &ta, "r@muller.example", muller, staff).await;
    let w = invite_and_accept(&app, &ta, "w@muller.example", muller, staff).await;
    let u = invite_and_accept(&app, &ta, "u@muller.example", muller, user).await;

    // U's role gets own_devices.control; its dependency view is added and reported.
    let saved = put(
        &app,
        &format!("/api/v1/orgs/{}/roles/{user}/permissions", muller.0),
        &ta,
        json!({ "permissions": ["own_devices.control"] }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(saved.body["added"], json!(["own_devices.view"]));

    let world_template = app
        .app()
        .create_device_template(&cli(a), heat, "Boiler", &[])
        .await
        .unwrap();
    for org in [muller, united, customer_m, customer_h] {
        app.app()
            .enable_device_template(&cli(a), org, world_template)
            .await
            .unwrap();
    }
    let device = |org: OrgId, owner: UserId, name: &'static str| {
        let app = &app;
        async move {
            let new = arbor_app::model::NewDevice {
                name: name.into(),
                template: world_template,
                owner: Some(owner),
                metafields: Vec::new(),
            };
            app.app().create_device(&cli(a), org, &new).await.unwrap()
        }
    };
    let hq = device(heat, a, "HQ Boiler").await;
    let boiler = device(muller, r, "Boiler").await;
    let thermostat = device(muller, w, "Thermostat").await;
    let pool = device(customer_m, m, "Pool Heater").await;
    let h_thermostat = device(customer_h, h, "Thermostat").await;
    let gift = device(muller, r, "Boiler 2").await;
    app.app()
        .transfer_device_to_user(&cli(r), gift, u)
        .await
        .unwrap();

    let everyone = [a, r, w, m, h, u];
    let devices = [hq, boiler, thermostat, pool, h_thermostat, gift];
    let expected_viewers = |d: DeviceId| -> Vec<UserId> {
        let mut v = vec![a];
        if [boiler, thermostat, gift].contains(&d) {
            v.extend([r, w]);
        }
        if d == pool {
            v.push(m);
        }
        if d == h_thermostat {
            v.push(h);
        }
        if d == gift {
            v.push(u);
        }
        v.sort();
        v
    };
    for d in devices {
        for action in ["view", "control"] {
            let got = who_can(&app, &ta, &format!("action={action}&device_id={}", d.0)).await;
            let want: Vec<i64> = expected_viewers(d).iter().map(|u| u.0).collect();
            assert_eq!(got, want, "who can {action} device {d}");
        }
        for user in everyone {
            let reply = explain_device(&app, &ta, user, "control", d).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let allowed = expected_viewers(d).contains(&user);
            assert_eq!(
                reply.body["allowed"], allowed,
                "{user} controls {d}: {}",
                reply.body["explanation"]
            );
        }
    }
    // Each user's device list, over HTTP as that user, is exactly the
    // devices who-can names them for (R sees Boiler, Thermostat and the
    // Boiler 2 R gave to U; M only the Pool Heater).
    let logins = [
        (a, "a@heat.example"),
        (r, "r@muller.example"),
        (w, "w@muller.example"),
        (m, "m@customer.example"),
        (h, "h@customer.example"),
        (u, "u@muller.example"),
    ];
    for (user, login) in logins {
        let token = app.login(login, PASSWORD).await;
        let reply = get(&app, "/api/v1/devices", &token).await;
        assert_eq!(reply.status, 200, "{login}: {reply:?}");
        let got: Vec<i64> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect();
        let want: Vec<i64> = devices
            .iter()
            .filter(|d| expected_viewers(**d).contains(&user))
            .map(|d| d.0)
            .collect();
        assert_eq!(got, want, "{login}'s devices");
        for d in devices {
            let one = get(&app, &format!("/api/v1/devices/{}", d.0), &token).await;
            let status = if want.contains(&d.0) { 200 } else { 404 };
            assert_eq!(one.status, status, "{login} GET device {d}");
        }
    }
    // Grants say who the user is and which membership grants it.
    let reply = get(
        &app,
        &format!("/api/v1/access/who-can?action=view&device_id={}", pool.0),
        &ta,
    )
    .await;
    let m_grant = reply.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["user_id"] == m.0)
        .unwrap()
        .clone();
    assert_eq!(m_grant["email"], "m@customer.example");
    assert_eq!(m_grant["via_org_id"], customer_m.0);
    assert_eq!(m_grant["rule"], "device_in_scope");
    // The explanations name what decided.
    let why = explain_device(&app, &ta, u, "control", gift).await.body;
    assert_eq!(why["decision"]["rule"], "device_owned");
    assert_eq!(why["decision"]["via"]["org"], muller.0);
    assert!(
        why["trace"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["passed"] == true)
    );
    let why = explain_device(&app, &ta, r, "view", hq).await.body;
    assert_eq!(why["decision"]["outcome"], "hidden");
    assert_eq!(why["decision"]["rule"], "outside_scope");
    let why = explain_device(&app, &ta, m, "view", h_thermostat)
        .await
        .body;
    assert_eq!(why["allowed"], false);
    let why = explain_device(&app, &ta, r, "control", thermostat)
        .await
        .body;
    assert_eq!(why["decision"]["rule"], "device_in_scope");
    assert!(
        why["explanation"]
            .as_str()
            .unwrap()
            .contains("org_devices.control")
    );
    // A may create sub-orgs anywhere below Heat Co; M only below Customer M.
    let who = who_can(
        &app,
        &ta,
        &format!(
            "permission=organizations.create_suborgs&org_id={}",
            customer_m.0
        ),
    )
    .await;
    assert_eq!(who, {
        let mut v = vec![a.0, m.0];
        v.sort();
        v
    });
    // Nobody in a sub-org sees anything of Heat Co: M's who-can on its own org
    // does not reveal A (an ancestor's member).
    let tm = app.login("m@customer.example", PASSWORD).await;
    let who = who_can(
        &app,
        &tm,
        &format!("permission=organizations.settings&org_id={}", customer_m.0),
    )
    .await;
    assert_eq!(who, vec![m.0]);
    let reply = explain_org(&app, &tm, a, "organizations.settings", heat).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    // Effective permissions: U in Muller holds exactly the two own_devices ones.
    let reply = get(
        &app,
        &format!(
            "/api/v1/access/effective-permissions?user_id={}&org_id={}",
            u.0, muller.0
        ),
        &ta,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["permissions"],
        json!(["own_devices.view", "own_devices.control"])
    );
    assert_eq!(reply.body["groups"][0]["id"], "own_devices");
    // The tree from Heat Co has the seed's shape.
    let tree = get(&app, "/api/v1/orgs/tree", &ta).await;
    assert_eq!(tree.status, 200);
    let children: Vec<&str> = tree.body["root"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["Muller Boiler Group", "United Heaters Inc."]);
    assert_eq!(
        tree.body["root"]["children"][1]["children"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Audit: the org creations are recorded under their parent.
    let rows = audit(&app, &format!("org:{}", heat.0)).await;
    assert!(
        rows.iter()
            .any(|(action, outcome)| action == "org.create" && outcome == "allowed")
    );
}
