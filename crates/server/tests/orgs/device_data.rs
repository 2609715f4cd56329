//! A device's data for its users over HTTP (issue 12, item 2), on both
//! engines: current values, history raw and aggregated, control read back
//! by the device, the timeline (events, ownership, online/offline), the CSV
//! report (formula-safe), deleting data and the service tab; the
//! device-permission matrix of issue 11 over these routes (403 only where
//! the device is visible, 404 otherwise, every denial audited in the
//! caller's own org); cross-site cookie writes refused.

use crate::support::*;
use arbor_core::template::{Event, EventLevel, Scalar, TemplateContent, ValueType};
use arbor_core::{BuiltinRole, DeviceId, DeviceTemplateId, OrgId, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(users_read_values_history_timeline_report_and_service_and_control_the_device);
both_engines!(deleting_data_removes_what_it_says_and_keeps_the_device_and_its_ownership_history);
both_engines!(the_timeline_shows_transfers_and_a_device_coming_back_online);
both_engines!(every_data_route_answers_every_device_class_as_the_rule_says);
both_engines!(cross_site_cookie_writes_to_device_data_are_refused_and_change_nothing);
both_engines!(live_updates_reach_only_who_may_view_and_stop_at_once);

/// "Tank": V1 integer 0–100 (Level), V2 double (Temperature), V3 string
/// (Note, default "idle"); event `overheat`. Enabled for Child, Grandchild
/// and Sibling.
async fn tank(app: &TestApp, world: &World) -> DeviceTemplateId {
    let by = cli(world.root_admin);
    let mut level = stream(1, "Level", ValueType::Integer);
    level.min = Some(0.0);
    level.max = Some(100.0);
    let mut note = stream(3, "=Note", ValueType::String);
    note.default_value = Some(Scalar::Text("idle".into()));
    let content = TemplateContent {
        name: "Tank".into(),
        datastreams: vec![level, stream(2, "Temperature", ValueType::Double), note],
        events: vec![Event {
            code: "overheat".into(),
            name: "Overheat".into(),
            level: EventLevel::Critical,
        }],
        ..TemplateContent::default()
    };
    let template = app.app().create_template(&by, content).await.unwrap().id;
    for org in [world.child, world.grandchild, world.sibling] {
        app.app()
            .enable_device_template(&by, org, template)
            .await
            .unwrap();
    }
    template
}

/// A Tank device in `org` owned by `owner`, with its token.
async fn tank_device(
    app: &TestApp,
    world: &World,
    template: DeviceTemplateId,
    org: OrgId,
    owner: Option<UserId>,
    name: &str,
) -> (DeviceId, String) {
    let by = cli(world.root_admin);
    let device = arbor_app::model::NewDevice {
        name: name.into(),
        template,
        owner,
        metafields: Vec::new(),
    };
    let id = app.app().create_device(&by, org, &device).await.unwrap();
    let token = app.app().device_token(&by, id).await.unwrap();
    (id, token)
}

/// A device API GET; asserts the status and returns the body.
async fn device(app: &TestApp, path_and_query: &str, status: u16) -> String {
    let response = app
        .http
        .get(app.url(&format!("/external/api/{path_and_query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), status, "{path_and_query}");
    response.text().await.unwrap()
}

/// A GET answered as text (the CSV report): status, content type, body.
async fn get_text(app: &TestApp, path: &str, token: &str) -> (u16, String, String) {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The server's time (the test app's manual clock).
fn now_ms(app: &TestApp) -> i64 {
    use arbor_app::model::Clock as _;
    app.clock().now_ms()
}

async fn users_read_values_history_timeline_report_and_service_and_control_the_device(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let (id, token) = tank_device(&app, &world, template, world.child, None, "Tank 1").await;
    let admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let base = format!("/api/v1/devices/{}", id.0);

    // Before any value: the default of V3, nothing for V1 and V2.
    let values = get(&app, &format!("{base}/datastreams"), &admin).await;
    assert_eq!(values.status, 200, "{values:?}");
    let items = values.body["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| i["pin"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(items[0]["value"], Value::Null);
    assert_eq!(items[2]["value"], json!("idle"));
    assert_eq!(items[2]["updated_at"], Value::Null);
    assert_eq!(items[0]["value_type"], "integer");

    // The device sends: V1 now, an hour of V2 as timestamped points, a
    // note that looks like a formula, an event, a widget property, and
    // one request that is refused.
    device(&app, &format!("update?token={token}&V1=42"), 200).await;
    let start = (now_ms(&app) - 3_600_000) / 60_000 * 60_000;
    let points: Vec<Value> = (0..120)
        .map(|i| {
            json!([
                start + i * 30_000,
                20.0 + f64::from(i32::try_from(i).unwrap()) / 2.0
            ])
        })
        .collect();
    let posted = app
        .http
        .post(app.url(&format!("/external/api/batch/update?token={token}&pin=V2")))
        .header("content-type", "application/json")
        .body(Value::Array(points.clone()).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    device(
        &app,
        &format!("update?token={token}&V3=%3DHYPERLINK(%22x%22)"),
        200,
    )
    .await;
    device(
        &app,
        &format!("logEvent?token={token}&code=overheat&description=%2Bhot"),
        200,
    )
    .await;
    device(
        &app,
        &format!("update/property?token={token}&pin=V1&label=Fill"),
        200,
    )
    .await;
    device(&app, &format!("update?token={token}&V9=1"), 400).await;

    let values = get(&app, &format!("{base}/datastreams"), &admin).await;
    let items = values.body["items"].as_array().unwrap();
    assert_eq!(items[0]["value"], json!(42));
    assert_eq!(items[0]["properties"], json!({ "label": "Fill" }));
    assert_eq!(items[1]["value"], json!(79.5));
    assert_eq!(items[2]["value"], json!("=HYPERLINK(\"x\")"));
    assert!(items[0]["updated_at"].as_i64().unwrap() > start);

    // Raw history, paged three points at a time, is every point sent.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let from = start - 1;
    let mut pages = 0;
    loop {
        let mut path = format!("{base}/datastreams/V2/history?from={from}&limit=50");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(&app, &path, &admin).await;
        assert_eq!(page.status, 200, "{page:?}");
        pages += 1;
        for p in page.body["points"].as_array().unwrap() {
            seen.push((p["at"].as_i64().unwrap(), p["value"].as_f64().unwrap()));
        }
        match page.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let sent: Vec<(i64, f64)> = points
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(seen, sent);

    // By minute: two points each; by hour: what falls in each hour.
    let minutes = get(
        &app,
        &format!("{base}/datastreams/v2/history?from={start}&granularity=minute"),
        &admin,
    )
    .await;
    assert_eq!(minutes.status, 200, "{minutes:?}");
    let buckets = minutes.body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    assert_eq!(
        buckets[0],
        json!({ "at": start, "count": 2, "min": 20.0, "max": 20.5, "avg": 20.25, "sum": 40.5 })
    );
    let hours = get(
        &app,
        &format!("{base}/datastreams/2/history?from={start}&granularity=hour"),
        &admin,
    )
    .await;
    let counted: i64 = hours.body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 120);
    // Text datastreams count, and have no numbers.
    let notes = get(
        &app,
        &format!("{base}/datastreams/V3/history?granularity=day"),
        &admin,
    )
    .await;
    let day = &notes.body["buckets"][0];
    assert_eq!(
        (day["count"].clone(), day["avg"].clone()),
        (json!(1), Value::Null)
    );

    // Bad requests are 400 problems and change nothing.
    for bad in [
        format!("{base}/datastreams/V9/history"),
        format!("{base}/datastreams/V256/history"),
        format!("{base}/datastreams/X/history"),
        format!("{base}/datastreams/V2/history?from=10&to=5"),
        format!("{base}/datastreams/V2/history?cursor=nope"),
        format!("{base}/datastreams/V2/history?from=0&granularity=minute"),
        format!("{base}/datastreams/V2/history?granularity=week"),
    ] {
        let reply = get(&app, &bad, &admin).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert!(reply.body["detail"].is_string(), "{bad}: {reply:?}");
    }

    // Control: clamped to the datastream's max; the device reads it back.
    let mark = audit_mark(&app).await;
    let written = post(
        &app,
        &format!("{base}/datastreams/V1"),
        &admin,
        json!({ "value": 150 }),
    )
    .await;
    assert_eq!(written.status, 200, "{written:?}");
    assert_eq!(written.body["value"], json!(100));
    assert_eq!(
        device(&app, &format!("get?token={token}&V1"), 200).await,
        "100"
    );
    let written = post(
        &app,
        &format!("{base}/datastreams/V2"),
        &admin,
        json!({ "value": "21,5" }),
    )
    .await;
    assert_eq!(written.body["value"], json!(21.5), "{written:?}");
    let rows = audit_since(&app, mark).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.action.as_str(), r.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("device.control", "allowed"), ("device.control", "allowed")]
    );
    assert_eq!(rows[0].details["pin"], json!(1));
    for bad in [
        json!({ "value": "full" }),
        json!({ "value": null }),
        json!({ "value": true }),
        json!({ "value": 1, "owner_id": 1 }),
    ] {
        let reply = post(&app, &format!("{base}/datastreams/V1"), &admin, bad.clone()).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
    }
    let reply = post(
        &app,
        &format!("{base}/datastreams/V9"),
        &admin,
        json!({ "value": 1 }),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        device(&app, &format!("get?token={token}&V1"), 200).await,
        "100"
    );

    // The timeline: the event and the first contact, newest first.
    let timeline = get(&app, &format!("{base}/timeline"), &admin).await;
    assert_eq!(timeline.status, 200, "{timeline:?}");
    let entries = timeline.body["items"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("event", "overheat"), ("online", "arbor.online")]);
    assert_eq!(entries[0]["level"], "critical");
    assert_eq!(entries[0]["description"], "+hot");
    let first = get(&app, &format!("{base}/timeline?limit=1"), &admin).await;
    let next = first.body["next"].as_str().unwrap();
    let older = get(
        &app,
        &format!("{base}/timeline?limit=1&cursor={next}"),
        &admin,
    )
    .await;
    assert_eq!(older.body["items"][0]["code"], "arbor.online");

    // The report: one row per point, texts neutralized against formulas.
    let (status, content_type, csv) = get_text(
        &app,
        &format!("{base}/report.csv?pins=V1,V3&from={start}"),
        &admin,
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/csv; charset=utf-8"),
        "{csv}"
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,unix_ms,pin,datastream,value");
    assert_eq!(lines.len(), 1 + 3, "{csv}");
    assert!(lines.iter().any(|l| l.ends_with(",V1,Level,42")), "{csv}");
    assert!(lines.iter().any(|l| l.ends_with(",V1,Level,100")), "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(r#",V3,'=Note,"'=HYPERLINK(""x"")""#)),
        "{csv}"
    );
    assert!(lines[1].starts_with("20"), "RFC 3339 time: {csv}");
    let (status, _, all) = get_text(&app, &format!("{base}/report.csv?from={start}"), &admin).await;
    assert_eq!(
        (status, all.lines().count()),
        (200, 1 + 2 + 121 + 1),
        "{all}"
    );
    let (status, _, _) = get_text(&app, &format!("{base}/report.csv?pins=V7"), &admin).await;
    assert_eq!(status, 400);

    // The service tab: the latest requests with their outcome and address.
    let service = get(&app, &format!("{base}/service"), &admin).await;
    assert_eq!(service.status, 200, "{service:?}");
    let requests = service.body["requests"].as_array().unwrap();
    let endpoints: Vec<(&str, bool)> = requests
        .iter()
        .map(|r| (r["endpoint"].as_str().unwrap(), r["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        endpoints[..6],
        [
            ("get", true),
            ("get", true),
            ("update", false),
            ("update/property", true),
            ("logEvent", true),
            ("update", true),
        ]
    );
    assert_eq!(requests[2]["error"], "no datastream on that pin");
    assert_eq!(service.body["last_address"], "127.0.0.1");
    assert_eq!(service.body["online"], true);
    assert!(service.body["token_last_used_at"].as_i64().unwrap() >= start);
    assert_eq!(
        service.body["properties"],
        json!([{ "pin": 1, "name": "label", "value": "Fill" }])
    );
    // Reads are not audited when allowed.
    let mark = audit_mark(&app).await;
    get(&app, &format!("{base}/service"), &admin).await;
    get(&app, &format!("{base}/timeline"), &admin).await;
    assert!(audit_since(&app, mark).await.is_empty());
    app.stop().await;
}

async fn deleting_data_removes_what_it_says_and_keeps_the_device_and_its_ownership_history(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let owner = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let (id, token) = tank_device(&app, &world, template, world.child, None, "Tank").await;
    let admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let base = format!("/api/v1/devices/{}", id.0);
    let moved = post(
        &app,
        &format!("{base}/transfer"),
        &admin,
        json!({ "user_id": owner.0 }),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let now = now_ms(&app);
    let points: Vec<Value> = (0..10)
        .map(|i| json!([now - 10_000 + i * 1000, i]))
        .collect();
    let posted = app
        .http
        .post(app.url(&format!("/external/api/batch/update?token={token}&pin=V2")))
        .body(Value::Array(points).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    device(&app, &format!("update?token={token}&V1=7&V3=on"), 200).await;
    device(&app, &format!("logEvent?token={token}&code=overheat"), 200).await;

    // A range of V2's history only.
    let mark = audit_mark(&app).await;
    let cut = delete(
        &app,
        &format!(
            "{base}/data?pins=V2&from={}&to={}",
            now - 10_000,
            now - 5_000
        ),
        &admin,
    )
    .await;
    assert_eq!(cut.status, 200, "{cut:?}");
    assert_eq!(cut.body, json!({ "history": 5, "values": 0, "events": 0 }));
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("device.data.delete", "allowed")
    );
    assert_eq!(rows[0].details["deleted"]["history"], json!(5));
    let left = get(
        &app,
        &format!("{base}/datastreams/V2/history?from=0"),
        &admin,
    )
    .await;
    assert_eq!(left.body["points"].as_array().unwrap().len(), 5);

    // Bad requests change nothing.
    for bad in [
        format!("{base}/data?from=1"),
        format!("{base}/data?pins=V9"),
        format!("{base}/data?from=9&to=1"),
    ] {
        let reply = delete(&app, &bad, &admin).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
    }
    let left = get(
        &app,
        &format!("{base}/datastreams/V2/history?from=0"),
        &admin,
    )
    .await;
    assert_eq!(left.body["points"].as_array().unwrap().len(), 5);

    // One datastream entirely: its history and current value go.
    let one = delete(&app, &format!("{base}/data?pins=V1"), &admin).await;
    assert_eq!(one.body, json!({ "history": 1, "values": 1, "events": 0 }));
    let values = get(&app, &format!("{base}/datastreams"), &admin).await;
    assert_eq!(values.body["items"][0]["value"], Value::Null);
    assert_eq!(values.body["items"][2]["value"], json!("on"));

    // Everything: the rest of the history, values and events — but the
    // device, and the timeline's ownership entry, stay.
    let all = delete(&app, &format!("{base}/data"), &admin).await;
    assert_eq!(
        all.body,
        json!({ "history": 6, "values": 2, "events": 2 }),
        "{all:?}"
    );
    let timeline = get(&app, &format!("{base}/timeline"), &admin).await;
    let codes: Vec<&str> = timeline.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["arbor.ownership"]);
    assert_eq!(get(&app, &base, &admin).await.status, 200);
    assert_eq!(
        device(&app, &format!("get?token={token}&V3"), 200).await,
        "idle"
    );
    app.stop().await;
}

async fn the_timeline_shows_transfers_and_a_device_coming_back_online(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let staff = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let (id, token) = tank_device(&app, &world, template, world.child, None, "Tank").await;
    let admin = app.login("admin@root.test", PASSWORD).await;
    let base = format!("/api/v1/devices/{}", id.0);
    let first = now_ms(&app);
    device(&app, &format!("update?token={token}&V1=1"), 200).await;
    let moved = post(
        &app,
        &format!("{base}/transfer"),
        &admin,
        json!({ "user_id": staff.0 }),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    // Two minutes later (past the 60 s heartbeat) the device calls again.
    app.clock().advance(120_000);
    // Several requests at once: one pair of offline/online entries.
    let mut requests = Vec::new();
    for v in 0..6 {
        let url = app.url(&format!("/external/api/update?token={token}&V1={v}"));
        let http = app.http.clone();
        requests.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    let timeline = get(&app, &format!("{base}/timeline"), &admin).await;
    let entries = timeline.body["items"].as_array().unwrap();
    let codes: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["online", "offline", "ownership", "online"],
        "{entries:?}"
    );
    assert_eq!(entries[0]["at"], json!(first + 120_000));
    assert_eq!(entries[1]["at"], json!(first + 60_000));
    let description = entries[2]["description"].as_str().unwrap();
    assert_eq!(
        description,
        format!(
            "owner unclaimed → user {}, organization {} → {}",
            staff.0, world.child.0, world.child.0
        )
    );
    app.stop().await;
}

/// The data routes: (method, path tail, the permission group's action).
const ROUTES: [(&str, &str, &str); 7] = [
    ("GET", "datastreams", "view"),
    ("GET", "datastreams/V1/history", "view"),
    ("POST", "datastreams/V1", "control"),
    ("GET", "timeline", "view_timeline"),
    ("GET", "report.csv", "download_reports"),
    ("GET", "service", "service_tab"),
    ("DELETE", "data", "delete_data"),
];

/// The audit action of each route.
const ACTIONS: [&str; 7] = [
    "device.datastreams.view",
    "device.history.view",
    "device.control",
    "device.timeline.view",
    "device.report",
    "device.service.view",
    "device.data.delete",
];

/// Device classes relative to Child's User.
const CLASSES: [&str; 6] = ["own", "member", "suborg", "sibling", "other", "deleted"];

/// Whether a set allows `action` on a device of `class` (SPEC.md section 4
/// rule 5): the owner's `own_devices.*`, or `org_devices.*` with the
/// device's org in Child's scope. `service_tab` has no owner variant.
fn allows(set: &[&str], class: &str, action: &str) -> bool {
    let holds = |p: String| set.contains(&p.as_str());
    let own = class == "own" && action != "service_tab" && holds(format!("own_devices.{action}"));
    // Sub-orgs are in scope only with `organizations.switch_to_suborgs`.
    let scoped = matches!(class, "own" | "member")
        || (class == "suborg" && holds("organizations.switch_to_suborgs".into()));
    own || (scoped && holds(format!("org_devices.{action}")))
}

async fn every_data_route_answers_every_device_class_as_the_rule_says(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let user = email(BuiltinRole::User, "child");
    let user_id = user_id(&app, &user).await;
    let member = user_id_of(&app, &email(BuiltinRole::Staff, "child")).await;
    let (own, _) = tank_device(&app, &world, template, world.child, Some(user_id), "Own").await;
    let (member, _) =
        tank_device(&app, &world, template, world.child, Some(member), "Staff's").await;
    let (suborg, _) = tank_device(&app, &world, template, world.grandchild, None, "Grand").await;
    let (sibling, _) = tank_device(&app, &world, template, world.sibling, None, "Sib").await;
    let other_admin = user_id_of(&app, "admin@other.test").await;
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
    let (deleted, _) = tank_device(&app, &world, template, world.child, None, "Gone").await;
    app.app()
        .delete_device(&cli(world.root_admin), deleted)
        .await
        .unwrap();
    let devices = [own, member, suborg, sibling, other, deleted];

    // Child's User with: nothing; owner's view; owner's everything; the
    // org's view; the org's everything.
    let own_all = [
        "own_devices.view",
        "own_devices.control",
        "own_devices.view_timeline",
        "own_devices.download_reports",
        "own_devices.delete_data",
    ];
    let org_all = [
        "org_devices.view",
        "org_devices.control",
        "org_devices.view_timeline",
        "org_devices.download_reports",
        "org_devices.delete_data",
        "org_devices.service_tab",
    ];
    let mut org_deep = org_all.to_vec();
    org_deep.push("organizations.switch_to_suborgs");
    let sets: [&[&str]; 6] = [
        &[],
        &["own_devices.view"],
        &own_all,
        &["org_devices.view"],
        &["org_devices.view", "organizations.switch_to_suborgs"],
        &org_deep,
    ];
    let device_orgs = [world.child, world.child, world.grandchild];
    let mut cells = 0;
    let mut outcomes = std::collections::BTreeSet::new();
    for set in sets {
        let root = app.login("admin@root.test", PASSWORD).await;
        let saved = put(
            &app,
            &format!(
                "/api/v1/orgs/{}/roles/{}/permissions",
                world.child.0,
                world.role(BuiltinRole::User).0
            ),
            &root,
            json!({ "permissions": set }),
        )
        .await;
        assert_eq!(saved.status, 200, "{saved:?}");
        let token = app.login(&user, PASSWORD).await;
        for (r, (method, tail, action)) in ROUTES.iter().enumerate() {
            for (c, device) in devices.iter().enumerate() {
                let class = CLASSES[c];
                let visible = allows(set, class, "view");
                let want = if allows(set, class, action) {
                    200
                } else if visible {
                    403
                } else {
                    404
                };
                outcomes.insert(want);
                let path = format!("/api/v1/devices/{}/{tail}", device.0);
                let body = (*method == "POST").then(|| json!({ "value": 5 }));
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let mark = audit_mark(&app).await;
                let reply = call(&app, method.clone(), &path, &token, None, body).await;
                let cell = format!("{set:?} {method} {path} ({class})");
                assert_eq!(reply.status, want, "{cell}: {reply:?}");
                cells += 1;
                let rows = audit_since(&app, mark).await;
                let reads = method == Method::GET;
                if want == 200 && reads {
                    assert!(
                        rows.is_empty(),
                        "{cell}: reads are audited when refused {rows:?}"
                    );
                    continue;
                }
                assert_eq!(rows.len(), 1, "{cell}: one audit row {rows:?}");
                let row = &rows[0];
                assert_eq!(row.action, ACTIONS[r], "{cell}");
                assert_eq!(row.actor, Some(user_id.0), "{cell}");
                if want >= 400 {
                    let outcome = if want == 403 { "forbidden" } else { "hidden" };
                    assert_eq!(row.outcome, outcome, "{cell}: {row:?}");
                    assert_eq!(row.actor_home_org, Some(world.child.0), "{cell}");
                    // A hidden device's denial is the caller's own org's;
                    // a visible one's is its org's (in the caller's scope).
                    let logged = if want == 404 {
                        world.child
                    } else {
                        device_orgs[c]
                    };
                    assert_eq!(row.target_org, Some(logged.0), "{cell}: {row:?}");
                    assert!(reply.body["detail"].is_string(), "{cell}: {reply:?}");
                } else {
                    assert_eq!(row.outcome, "allowed", "{cell}");
                }
            }
        }
    }
    assert_eq!(cells, sets.len() * ROUTES.len() * CLASSES.len());
    assert_eq!(outcomes.into_iter().collect::<Vec<_>>(), [200, 403, 404]);
    app.stop().await;
}

async fn user_id_of(app: &TestApp, email: &str) -> UserId {
    user_id(app, email).await
}

async fn cross_site_cookie_writes_to_device_data_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let (id, token) = tank_device(&app, &world, template, world.child, None, "Tank").await;
    device(&app, &format!("update?token={token}&V1=7"), 200).await;
    let admin = app.login("admin@root.test", PASSWORD).await;
    let base = format!("/api/v1/devices/{}", id.0);
    let before = get(&app, &format!("{base}/datastreams"), &admin).await.body;
    let writes = [
        (
            Method::POST,
            format!("{base}/datastreams/V1"),
            Some(json!({ "value": 99 })),
        ),
        (Method::DELETE, format!("{base}/data"), None),
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
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 2 * writes.len(), "{rows:#?}");
    for row in &rows {
        assert_eq!(row.actor, Some(world.root_admin.0), "{row:?}");
        assert_eq!(row.actor_home_org, Some(world.root.0), "{row:?}");
        assert_ne!(row.outcome, "allowed", "{row:?}");
    }
    assert_eq!(
        get(&app, &format!("{base}/datastreams"), &admin).await.body,
        before
    );
    assert_eq!(
        device(&app, &format!("get?token={token}&V1"), 200).await,
        "7"
    );
    app.stop().await;
}

/// A Server-Sent Events stream being read.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, path: &str, token: &str) -> Events {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream",
            "{path}"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (name, data), or `None` if none comes within 5 s or
    /// the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = None;
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(d.trim()).unwrap());
                    }
                }
                match data {
                    Some(data) => return Some((name, data)),
                    None => continue, // a keep-alive comment
                }
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(5), self.response.chunk())
                    .await
                    .ok()?
                    .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event, which must be `name` on `device`; its data.
    async fn expect(&mut self, name: &str, device: DeviceId) -> Value {
        let (got, data) = self
            .next()
            .await
            .unwrap_or_else(|| panic!("no {name} event"));
        assert_eq!(
            (got.as_str(), &data["device_id"]),
            (name, &json!(device.0)),
            "{data}"
        );
        data
    }
}

async fn live_updates_reach_only_who_may_view_and_stop_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = tank(&app, &world).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let saved = put(
        &app,
        &format!(
            "/api/v1/orgs/{}/roles/{}/permissions",
            world.child.0,
            world.role(BuiltinRole::User).0
        ),
        &root,
        json!({ "permissions": ["own_devices.view"] }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let owner = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let staff = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    let (a, a_token) = tank_device(&app, &world, template, world.child, Some(owner), "A").await;
    let (peer, _) = tank_device(&app, &world, template, world.child, Some(staff), "Peer").await;
    let (s, s_token) = tank_device(&app, &world, template, world.sibling, None, "S").await;
    let admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let user = app
        .login(&email(BuiltinRole::User, "child"), PASSWORD)
        .await;
    let sibling = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;

    // Streams of devices the user may not view answer 404, audited at home.
    let mark = audit_mark(&app).await;
    for hidden in [s, peer, DeviceId(999_999)] {
        let reply = get(&app, &format!("/api/v1/devices/{}/stream", hidden.0), &user).await;
        assert_eq!(reply.status, 404, "{reply:?}");
    }
    let rows = audit_since(&app, mark).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.outcome == "hidden" && r.target_org == Some(world.child.0))
    );

    let mut admin_all = Events::open(&app, "/api/v1/devices/stream", &admin).await;
    let mut user_a = Events::open(&app, &format!("/api/v1/devices/{}/stream", a.0), &user).await;
    let mut sibling_all = Events::open(&app, "/api/v1/devices/stream", &sibling).await;

    // A's first call: online, then the value — to Child's Admin and A's owner.
    device(&app, &format!("update?token={a_token}&V1=5"), 200).await;
    for stream in [&mut admin_all, &mut user_a] {
        let online = stream.expect("online", a).await;
        assert_eq!(online["offline_at"], Value::Null);
        let value = stream.expect("value", a).await;
        assert_eq!(
            (value["pin"].clone(), value["value"].clone()),
            (json!(1), json!(5))
        );
    }
    // Sibling's device reaches Sibling's Admin only: its first event is S's.
    device(&app, &format!("update?token={s_token}&V1=9"), 200).await;
    sibling_all.expect("online", s).await;
    assert_eq!(sibling_all.expect("value", s).await["value"], json!(9));
    device(
        &app,
        &format!("logEvent?token={a_token}&code=overheat&description=hot"),
        200,
    )
    .await;
    let logged = admin_all.expect("event", a).await;
    assert_eq!(
        (logged["code"].clone(), logged["level"].clone()),
        (json!("overheat"), json!("critical"))
    );
    user_a.expect("event", a).await;

    // A user's control reaches the stream too.
    let written = post(
        &app,
        &format!("/api/v1/devices/{}/datastreams/V1", a.0),
        &admin,
        json!({ "value": 7 }),
    )
    .await;
    assert_eq!(written.status, 200, "{written:?}");
    assert_eq!(user_a.expect("value", a).await["value"], json!(7));
    assert_eq!(admin_all.expect("value", a).await["value"], json!(7));

    // Transferred to Staff: the former owner's stream ends with A's next
    // change; Child's Admin still sees it; Sibling never saw any of A.
    let moved = post(
        &app,
        &format!("/api/v1/devices/{}/transfer", a.0),
        &admin,
        json!({ "user_id": staff.0 }),
    )
    .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    device(&app, &format!("update?token={a_token}&V1=8"), 200).await;
    let (name, data) = user_a.next().await.unwrap();
    assert_eq!(
        (name.as_str(), data),
        ("end", json!({ "reason": "access" }))
    );
    assert!(user_a.next().await.is_none(), "the stream is over");
    assert_eq!(admin_all.expect("value", a).await["value"], json!(8));
    device(&app, &format!("update?token={s_token}&V1=10"), 200).await;
    assert_eq!(sibling_all.expect("value", s).await["value"], json!(10));

    // Removing Child Admin's view stops A's flow to them at once, too.
    let saved = put(
        &app,
        &format!(
            "/api/v1/orgs/{}/roles/{}/permissions",
            world.child.0,
            world.role(BuiltinRole::Admin).0
        ),
        &root,
        json!({ "permissions": ["users.view"] }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    device(&app, &format!("update?token={a_token}&V1=11"), 200).await;
    device(&app, &format!("update?token={s_token}&V1=12"), 200).await;
    assert_eq!(sibling_all.expect("value", s).await["value"], json!(12));
    assert!(
        admin_all.next().await.is_none(),
        "nothing of A reaches Child's Admin now"
    );
    app.stop().await;
}
