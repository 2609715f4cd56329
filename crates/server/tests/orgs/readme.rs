//! The README's "Devices, end to end" walkthrough, request by request (issue
//! 11, "done when"): create a template, enable it for a sub-org, provision a
//! device, see it in the combined list, preview a transfer, transfer it to
//! another user, let the device send and read a value with its token, and
//! watch access follow. The bodies are the README's; when
//! this test changes, the README must change with it.

use crate::support::*;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::{Value, json};

both_engines!(the_readme_device_walkthrough_works_as_written);

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

async fn the_readme_device_walkthrough_works_as_written(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (root, _) = setup_over_http(&app, "Heat Co", "admin@heatco.example").await;
    let admin = app.login("admin@heatco.example", PASSWORD).await;
    let staff = role_id(&app, &admin, "Staff").await;

    // A sub-org for a customer, and a member of it with the Staff role (its
    // devices, nothing above).
    let sub = post(
        &app,
        "/api/v1/orgs",
        &admin,
        json!({"parent_id": root.0, "name": "Muller Boiler Group"}),
    )
    .await;
    assert_eq!(sub.status, 201, "{sub:?}");
    let sub = arbor_core::OrgId(sub.body["id"].as_i64().unwrap());
    let lee = invite_and_accept(&app, &admin, "lee@muller.example", sub, staff).await;
    let lee_token = app.login("lee@muller.example", PASSWORD).await;

    // 1. A template (the root org's Admin holds templates.create).
    let template = post(
        &app,
        "/api/v1/device-templates",
        &admin,
        json!({
            "name": "Boiler",
            "datastreams": [{"pin": 1, "name": "Temperature", "value_type": "double",
                             "min": 0, "max": 120, "units": "°C", "decimals": 1}],
            "events": [{"code": "overheat", "name": "Overheating", "level": "critical"}],
            "metafields": [{"name": "Serial", "value_type": "text"}]
        }),
    )
    .await;
    assert_eq!(template.status, 201, "{template:?}");
    let template = template.body["id"].as_i64().unwrap();

    // 2. Enabled for the root org and for the sub-org.
    for org in [root.0, sub.0] {
        let enabled = call(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/device-templates/{template}/orgs/{org}"),
            &admin,
            None,
            None,
        )
        .await;
        assert!(
            matches!(enabled.status, 200 | 204),
            "enable for {org}: {enabled:?}"
        );
    }

    // 3. A device in the root org; the answer carries its auth token.
    let device = post(
        &app,
        "/api/v1/devices",
        &admin,
        json!({"name": "Boiler 1", "template_id": template, "org_id": root.0,
               "metafields": {"Serial": "B-0001"}}),
    )
    .await;
    assert_eq!(device.status, 201, "{device:?}");
    assert!(device.body["token"].as_str().is_some_and(|t| t.len() >= 22));
    let device_token = device.body["token"].as_str().unwrap().to_owned();
    let device = device.body["id"].as_i64().unwrap();

    // 4. The combined list shows it to the Admin; Lee sees nothing yet.
    let listed = get(&app, "/api/v1/devices", &admin).await;
    assert_eq!(listed.status, 200);
    assert!(ids(&listed.body).contains(&device));
    assert!(ids(&get(&app, "/api/v1/devices", &lee_token).await.body).is_empty());
    assert_eq!(
        get(&app, &format!("/api/v1/devices/{device}"), &lee_token)
            .await
            .status,
        404
    );

    // 5. The preview: Lee gains view and control, nothing changes yet.
    let preview = post(
        &app,
        &format!("/api/v1/devices/{device}/transfer?dry_run=true"),
        &admin,
        json!({"email": "lee@muller.example"}),
    )
    .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(preview.body["dry_run"], true, "{preview:?}");
    assert_eq!(preview.body["to"]["org_id"], sub.0);
    assert!(
        preview.body["gain"]["view"]
            .as_array()
            .unwrap()
            .contains(&json!(lee.0))
    );
    assert!(
        preview.body["gain"]["control"]
            .as_array()
            .unwrap()
            .contains(&json!(lee.0))
    );
    assert!(ids(&get(&app, "/api/v1/devices", &lee_token).await.body).is_empty());

    // 6. The transfer, and access follows: Lee sees and owns the device, the
    //    Admin still sees it.
    let moved = post(
        &app,
        &format!("/api/v1/devices/{device}/transfer"),
        &admin,
        json!({"email": "lee@muller.example"}),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["gain"], preview.body["gain"]);

    // The device sends and reads values with its token (README step 5).
    let device_api = async |path_and_query: String| {
        let response = app
            .http
            .get(app.url(&format!("/external/api/{path_and_query}")))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let t = &device_token;
    assert_eq!(
        device_api(format!("update?token={t}&V1=21.5")).await,
        (200, String::new())
    );
    assert_eq!(
        device_api(format!("get?token={t}&V1")).await,
        (200, "21.5".to_owned())
    );
    assert_eq!(
        device_api(format!("logEvent?token={t}&code=overheat")).await,
        (200, String::new())
    );
    let seen = get(&app, &format!("/api/v1/devices/{device}"), &lee_token).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.body["owner_id"], lee.0);
    assert_eq!(seen.body["org_id"], sub.0);
    assert_eq!(
        ids(&get(&app, "/api/v1/devices", &lee_token).await.body),
        vec![device]
    );
    assert!(ids(&get(&app, "/api/v1/devices", &admin).await.body).contains(&device));
    // The actions log records the transfer against the new owner, in the
    // sub-org.
    let log = get(&app, "/api/v1/audit?limit=20", &admin).await;
    assert_eq!(log.status, 200, "{log:?}");
    let lee_target = format!("user:{}", lee.0);
    assert!(
        log.body
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "device.transfer.owner"
                && e["target"] == lee_target.as_str()
                && e["target_org_id"] == sub.0),
        "{log:?}"
    );
}
