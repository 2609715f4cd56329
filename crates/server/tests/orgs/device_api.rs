//! The Blynk-compatible device HTTP API over HTTP (issue 12, item 1), on
//! both engines: every endpoint's documented request forms and answers,
//! Blynk's error bodies byte for byte, parsing and clamping, isolation
//! between devices' tokens, a regenerated or deleted device's token refused
//! at once (on a second node too), the per-device rate limit and body
//! limit, and the last-seen time written at most once a second.

use crate::support::*;
use arbor_core::DeviceId;
use arbor_core::template::{
    Event, EventLevel, Metafield, MetafieldType, Scalar, TemplateContent, ValueType,
};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::{Value, json};

both_engines!(every_endpoint_answers_the_documented_request_forms);
both_engines!(refusals_answer_blynk_s_bodies_byte_for_byte_and_change_nothing);
both_engines!(values_are_parsed_to_the_datastream_type_and_clamped);
both_engines!(a_token_reaches_its_own_device_only_and_dies_when_regenerated_or_deleted);
both_engines!(a_device_over_its_rate_or_body_limit_is_refused);
both_engines!(device_requests_mark_the_device_seen_at_most_once_a_second);
both_engines!(data_get_answers_history_raw_and_aggregated);

const INVALID_TOKEN: &str = r#"{"error":{"message":"Invalid token."}}"#;

/// The events a device logged, without the timeline's own entries
/// (`arbor.online`, …).
fn logged_events(
    events: Vec<arbor_app::model::DeviceEventRecord>,
) -> Vec<arbor_app::model::DeviceEventRecord> {
    events
        .into_iter()
        .filter(|e| !e.code.starts_with("arbor."))
        .collect()
}

fn blynk_error(message: &str) -> String {
    json!({ "error": { "message": message } }).to_string()
}

/// The "Boiler" template, enabled for Child: V1 integer 0–100, V2 double
/// −20–120, V3 string (default "idle"), V4 enum off/eco, V5 double
/// (location parts); event `overheat`; metafields Serial and Floor.
async fn boiler(app: &TestApp, world: &World) -> arbor_core::DeviceTemplateId {
    let by = cli(world.root_admin);
    let mut level = stream(1, "Level", ValueType::Integer);
    level.min = Some(0.0);
    level.max = Some(100.0);
    let mut temperature = stream(2, "Temperature", ValueType::Double);
    temperature.min = Some(-20.0);
    temperature.max = Some(120.0);
    let mut status = stream(3, "Status", ValueType::String);
    status.default_value = Some(Scalar::Text("idle".into()));
    let mut mode = stream(4, "Mode", ValueType::Enum);
    mode.enum_values = vec!["off".into(), "eco".into()];
    let content = TemplateContent {
        name: "Boiler".into(),
        datastreams: vec![
            level,
            temperature,
            status,
            mode,
            stream(5, "Location", ValueType::Double),
        ],
        events: vec![Event {
            code: "overheat".into(),
            name: "Overheat".into(),
            level: EventLevel::Critical,
        }],
        metafields: vec![
            Metafield {
                name: "Serial".into(),
                value_type: MetafieldType::Text,
                default_value: String::new(),
            },
            Metafield {
                name: "Floor".into(),
                value_type: MetafieldType::Number,
                default_value: "0".into(),
            },
        ],
        ..TemplateContent::default()
    };
    let template = app.app().create_template(&by, content).await.unwrap().id;
    app.app()
        .enable_device_template(&by, world.child, template)
        .await
        .unwrap();
    template
}

/// A Boiler device in Child with its token.
async fn boiler_device(
    app: &TestApp,
    world: &World,
    template: arbor_core::DeviceTemplateId,
    name: &str,
) -> (DeviceId, String) {
    let device = arbor_app::model::NewDevice {
        name: name.into(),
        template,
        owner: None,
        metafields: vec![("Serial".into(), format!("SN-{name}"))],
    };
    let by = cli(world.root_admin);
    let id = app
        .app()
        .create_device(&by, world.child, &device)
        .await
        .unwrap();
    let token = app.app().device_token(&by, id).await.unwrap();
    (id, token)
}

/// A device API answer: status, content type and body text.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    Answer {
        status,
        content_type,
        body,
    }
}

/// `GET /external/api/{path_and_query}` on `base`.
async fn device_get_at(app: &TestApp, base: &str, path_and_query: &str) -> Answer {
    send(
        app.http
            .get(format!("{base}/external/api/{path_and_query}")),
    )
    .await
}

async fn device_get(app: &TestApp, path_and_query: &str) -> Answer {
    device_get_at(app, &app.base, path_and_query).await
}

/// Asserts a 200 and returns its body.
async fn ok(app: &TestApp, path_and_query: &str) -> String {
    let answer = device_get(app, path_and_query).await;
    assert_eq!(answer.status, 200, "{path_and_query}: {answer:?}");
    answer.body
}

/// Asserts Blynk's 400 with exactly `body`.
async fn refused(app: &TestApp, path_and_query: &str, body: &str) {
    let answer = device_get(app, path_and_query).await;
    assert_eq!(
        (
            answer.status,
            answer.body.as_str(),
            answer.content_type.as_str()
        ),
        (400, body, "application/json"),
        "{path_and_query}"
    );
}

async fn post_batch(app: &TestApp, query: &str, body: String) -> Answer {
    send(
        app.http
            .post(app.url(&format!("/external/api/batch/update?{query}")))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

async fn history(app: &TestApp, device: DeviceId, pin: u16) -> Vec<(i64, String)> {
    let mut tx = app.db.store().read().await.unwrap();
    let points = tx
        .value_history(device, pin, 0, i64::MAX, 100_000)
        .await
        .unwrap();
    tx.finish().await.unwrap();
    points
        .into_iter()
        .map(|p| (p.at, p.value.display()))
        .collect()
}

async fn every_endpoint_answers_the_documented_request_forms(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (device, t) = boiler_device(&app, &world, template, "B1").await;
    let now = app.db.store().now_ms();

    // update: `&V1=42`, read back with get as plain text.
    let answer = device_get(&app, &format!("update?token={t}&V1=42")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    let answer = device_get(&app, &format!("get?token={t}&V1")).await;
    assert_eq!(
        (
            answer.status,
            answer.body.as_str(),
            answer.content_type.as_str()
        ),
        (200, "42", "text/plain; charset=utf-8")
    );
    // `&v1=` in lower case, and the trailing-slash form of the docs.
    ok(&app, &format!("update?token={t}&v1=43")).await;
    assert_eq!(ok(&app, &format!("get?token={t}&v1")).await, "43");
    ok(&app, &format!("update/?token={t}&V1=44")).await;
    assert_eq!(ok(&app, &format!("get/?token={t}&V1=")).await, "44");
    // `&dataStreamId=ID&value=` (a datastream's id is its pin number).
    ok(&app, &format!("update?token={t}&dataStreamId=2&value=21.5")).await;
    assert_eq!(
        ok(&app, &format!("get?token={t}&dataStreamId=2")).await,
        "21.5"
    );
    // A string with a space (`+`) and a multi-part value.
    ok(&app, &format!("update?token={t}&V3=heating+up")).await;
    assert_eq!(ok(&app, &format!("get?token={t}&V3")).await, "heating up");
    ok(
        &app,
        &format!("update?token={t}&pin=V5&value=13.4&value=52.5"),
    )
    .await;
    assert_eq!(ok(&app, &format!("get?token={t}&V5")).await, "[13.4,52.5]");
    // get with several pins: a JSON object; getAll: every value.
    let answer = device_get(&app, &format!("get?token={t}&V1&V2")).await;
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&answer.body).unwrap(),
        json!({ "v1": 44, "v2": 21.5 })
    );
    let all: Value = serde_json::from_str(&ok(&app, &format!("getAll?token={t}")).await).unwrap();
    assert_eq!(
        all,
        json!({ "v1": 44, "v2": 21.5, "v3": "heating up", "v5": [13.4, 52.5] })
    );

    // batch/update, GET: several pins at one timestamp.
    ok(&app, &format!("batch/update?token={t}&V1=7&V4=eco")).await;
    let both: Value =
        serde_json::from_str(&ok(&app, &format!("get?token={t}&V1&V4")).await).unwrap();
    assert_eq!(both, json!({ "v1": 7, "v4": "eco" }));
    // batch/update, POST: timestamped points of one pin, into history; an
    // older batch does not turn back the current value.
    let answer = post_batch(
        &app,
        &format!("token={t}&pin=v2"),
        format!(
            "[[{},1.0],[{},2.5],[{},3]]",
            now - 3000,
            now - 2000,
            now - 1000
        ),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, ""),
        "{answer:?}"
    );
    assert_eq!(
        history(&app, device, 2).await,
        vec![
            (now - 3000, "1".to_owned()),
            (now - 2000, "2.5".to_owned()),
            (now - 1000, "3".to_owned()),
            (now, "21.5".to_owned()),
        ]
    );
    assert_eq!(ok(&app, &format!("get?token={t}&V2")).await, "21.5");

    // isHardwareConnected: true after its calls, false for a device that
    // never called, false again once the heartbeat passed.
    let answer = device_get(&app, &format!("isHardwareConnected?token={t}")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "true"));
    let (_, quiet) = boiler_device(&app, &world, template, "B2").await;
    assert_eq!(
        ok(&app, &format!("isHardwareConnected?token={quiet}")).await,
        "false",
        "asking does not make a device connected"
    );
    app.clock().advance(61_000);
    assert_eq!(
        ok(&app, &format!("isHardwareConnected?token={t}")).await,
        "false"
    );

    // logEvent: a code of the template, with a description.
    ok(
        &app,
        &format!("logEvent?token={t}&code=overheat&description=Boiler+too+hot"),
    )
    .await;
    let mut tx = app.db.store().read().await.unwrap();
    let events = logged_events(tx.device_events(device, 10).await.unwrap());
    tx.finish().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].code.as_str(), events[0].level.as_str()),
        ("overheat", "critical")
    );
    assert_eq!(events[0].description, "Boiler too hot");

    // update/property: widget properties of a pin.
    ok(
        &app,
        &format!("update/property?token={t}&pin=V1&label=Water+level&color=%23D3435C"),
    )
    .await;
    ok(
        &app,
        &format!("update/property?token={t}&pin=V4&labels=Off&labels=Eco&isDisabled=true"),
    )
    .await;
    let mut tx = app.db.store().read().await.unwrap();
    let properties: Vec<(u16, String, String)> = tx
        .pin_properties(device)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.pin, p.name, p.value))
        .collect();
    tx.finish().await.unwrap();
    assert_eq!(
        properties,
        vec![
            (1, "color".into(), "#D3435C".into()),
            (1, "label".into(), "Water level".into()),
            (4, "isDisabled".into(), "true".into()),
            (4, "labels".into(), r#"["Off","Eco"]"#.into()),
        ]
    );

    // device/meta by id (position, from 1) or name; device/meta/update.
    let serial = r#"{"type":"Text","value":"SN-B1"}"#;
    assert_eq!(
        ok(&app, &format!("device/meta?token={t}&metaFieldId=1")).await,
        serial
    );
    assert_eq!(
        ok(&app, &format!("device/meta?token={t}&metaFieldName=Serial")).await,
        serial
    );
    assert_eq!(
        ok(&app, &format!("device/meta?token={t}&metaFieldId=2")).await,
        r#"{"type":"Number","value":"0"}"#,
        "the template's default while the device has none"
    );
    ok(
        &app,
        &format!("device/meta/update?token={t}&metaFieldName=Serial&value=SN+42"),
    )
    .await;
    ok(
        &app,
        &format!("device/meta/update?token={t}&metaFieldId=2&value=3"),
    )
    .await;
    assert_eq!(
        ok(&app, &format!("device/meta?token={t}&metaFieldId=1")).await,
        r#"{"type":"Text","value":"SN 42"}"#
    );
    assert_eq!(
        ok(&app, &format!("device/meta?token={t}&metaFieldName=Floor")).await,
        r#"{"type":"Number","value":"3"}"#
    );
    // Users see the device's metafield in the management API too.
    let admin = app.login("admin@root.test", PASSWORD).await;
    let shown = get(&app, &format!("/api/v1/devices/{}", device.0), &admin).await;
    assert_eq!(shown.body["metafields"]["Serial"], "SN 42", "{shown:?}");
}

async fn refusals_answer_blynk_s_bodies_byte_for_byte_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (device, t) = boiler_device(&app, &world, template, "B1").await;
    ok(&app, &format!("update?token={t}&V1=10&V2=20")).await;
    let mark = audit_mark(&app).await;
    let version = app.db.store().authz_version().await.unwrap();

    // A wrong, missing or empty token, on every endpoint.
    for path in [
        "update?V1=1",
        "batch/update?V1=1",
        "get?V1",
        "getAll?",
        "isHardwareConnected?",
        "logEvent?code=overheat",
        "update/property?pin=V1&label=x",
        "device/meta?metaFieldId=1",
        "device/meta/update?metaFieldId=1&value=x",
    ] {
        refused(&app, &format!("{path}&token=not-a-token"), INVALID_TOKEN).await;
        refused(&app, path, INVALID_TOKEN).await;
        refused(&app, &format!("{path}&token="), INVALID_TOKEN).await;
    }
    let answer = post_batch(&app, "token=nope&pin=V1", "[]".into()).await;
    assert_eq!((answer.status, answer.body.as_str()), (400, INVALID_TOKEN));

    let wrong_pin = blynk_error("Wrong pin format.");
    let no_datastream = blynk_error("No datastream setup for that pin.");
    let mismatch = r#"{"error":{"message":"Value doesn't match the Datastream data type"}}"#;
    for pin in ["D1", "A0", "V256", "V", "x"] {
        refused(&app, &format!("update?token={t}&{pin}=1"), &wrong_pin).await;
        refused(&app, &format!("get?token={t}&{pin}"), &wrong_pin).await;
    }
    refused(&app, &format!("update?token={t}"), &wrong_pin).await;
    refused(&app, &format!("update?token={t}&V9=1"), &no_datastream).await;
    refused(&app, &format!("get?token={t}&V9"), &no_datastream).await;
    refused(
        &app,
        &format!("update?token={t}&dataStreamId=V1&value=1"),
        &blynk_error("Wrong dataStreamId format."),
    )
    .await;
    for value in ["abc", "NaN", "Infinity", "-inf", "", "1,234.5", "0x10"] {
        let encoded = value.replace(',', "%2C");
        refused(&app, &format!("update?token={t}&V2={encoded}"), mismatch).await;
    }
    refused(&app, &format!("update?token={t}&V4=turbo"), mismatch).await;
    refused(
        &app,
        &format!("update?token={t}&V3={}", "x".repeat(1025)),
        &blynk_error("Value is longer than 1024 bytes."),
    )
    .await;
    // All or nothing: a good pin with a bad one writes neither.
    refused(&app, &format!("update?token={t}&V1=55&V2=oops"), mismatch).await;
    refused(
        &app,
        &format!("batch/update?token={t}&V1=55&V9=1"),
        &no_datastream,
    )
    .await;
    assert_eq!(ok(&app, &format!("get?token={t}&V1")).await, "10");
    // A pin without value or default.
    refused(
        &app,
        &format!("get?token={t}&V4"),
        &blynk_error("No value for that pin."),
    )
    .await;

    // Timestamped batches: a point older than a month, too many points, a
    // body that is not [[ts, value], …], and a bad value: nothing stored.
    let now = app.db.store().now_ms();
    let month = 30 * 24 * 60 * 60 * 1000_i64;
    let answer = post_batch(
        &app,
        &format!("token={t}&pin=V2"),
        format!("[[{},1],[{},2]]", now - 1000, now - month - 1),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body),
        (
            400,
            blynk_error("Timestamp is more than a month in the past or the future.")
        )
    );
    let many: Vec<String> = (0..10_001).map(|i| format!("[{},1]", now - i)).collect();
    let answer = post_batch(
        &app,
        &format!("token={t}&pin=V2"),
        format!("[{}]", many.join(",")),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body),
        (
            400,
            blynk_error("Too many points in one batch (at most 10000).")
        )
    );
    for body in ["{}", "[[1]]", "not json", r#"[[1700000000000,"warm"]]"#] {
        let answer = post_batch(&app, &format!("token={t}&pin=V2"), body.into()).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (400, mismatch),
            "{body}"
        );
    }
    let answer = post_batch(&app, &format!("token={t}"), "[]".into()).await;
    assert_eq!((answer.status, answer.body), (400, wrong_pin.clone()));
    assert_eq!(
        history(&app, device, 2).await.len(),
        1,
        "only the first write"
    );

    // Events, properties and metafields.
    refused(
        &app,
        &format!("logEvent?token={t}&code=explosion"),
        &blynk_error("Event with that code is not in the template."),
    )
    .await;
    refused(
        &app,
        &format!("update/property?token={t}&pin=V1&size=3"),
        &blynk_error("Wrong property."),
    )
    .await;
    refused(
        &app,
        &format!("update/property?token={t}&pin=V1&color=red"),
        &blynk_error("Wrong property value."),
    )
    .await;
    refused(
        &app,
        &format!("update/property?token={t}&pin=V9&label=x"),
        &no_datastream,
    )
    .await;
    refused(
        &app,
        &format!("device/meta?token={t}&metaFieldId=x"),
        &blynk_error("Wrong metaField format."),
    )
    .await;
    refused(
        &app,
        &format!("device/meta?token={t}"),
        &blynk_error("Wrong metaField format."),
    )
    .await;
    for field in ["metaFieldId=0", "metaFieldId=3", "metaFieldName=serial"] {
        refused(
            &app,
            &format!("device/meta?token={t}&{field}"),
            &blynk_error("MetaField doesn't exist."),
        )
        .await;
    }
    refused(
        &app,
        &format!("device/meta/update?token={t}&metaFieldName=Floor&value=high"),
        &blynk_error("Wrong value."),
    )
    .await;
    let mut tx = app.db.store().read().await.unwrap();
    assert!(logged_events(tx.device_events(device, 10).await.unwrap()).is_empty());
    assert!(tx.pin_properties(device).await.unwrap().is_empty());
    assert_eq!(
        tx.device_metafield(device, "Floor").await.unwrap(),
        None,
        "the refused metafield value is not stored"
    );
    tx.finish().await.unwrap();

    // Device requests, good or refused, are not audit events and leave
    // the authorization version alone.
    assert_eq!(audit_since(&app, mark).await, Vec::new());
    assert_eq!(app.db.store().authz_version().await.unwrap(), version);
}

async fn values_are_parsed_to_the_datastream_type_and_clamped(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (_, t) = boiler_device(&app, &world, template, "B1").await;
    for (pin, sent, read) in [
        ("V1", "250", "100"),
        ("V1", "-5", "0"),
        ("V1", "41.6", "42"),
        ("V1", "41%2C4", "41"),
        ("V1", "+7", "7"),
        ("V2", "1e3", "120"),
        ("V2", "21%2C25", "21.25"),
        ("V2", "-273.15", "-20"),
        ("V2", "%2036.6%20", "36.6"),
        ("V4", "eco", "eco"),
        ("V3", "%C3%BCber", "über"),
    ] {
        ok(&app, &format!("update?token={t}&{pin}={sent}")).await;
        assert_eq!(
            ok(&app, &format!("get?token={t}&{pin}")).await,
            read,
            "{pin}={sent}"
        );
    }
}

async fn a_token_reaches_its_own_device_only_and_dies_when_regenerated_or_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (a, ta) = boiler_device(&app, &world, template, "A").await;
    let (b, tb) = boiler_device(&app, &world, template, "B").await;
    ok(&app, &format!("update?token={ta}&V1=10")).await;
    ok(&app, &format!("update?token={tb}&V1=20")).await;
    ok(
        &app,
        &format!("device/meta/update?token={ta}&metaFieldId=1&value=mine"),
    )
    .await;
    assert_eq!(ok(&app, &format!("get?token={ta}&V1")).await, "10");
    assert_eq!(ok(&app, &format!("get?token={tb}&V1")).await, "20");
    assert_eq!(
        ok(&app, &format!("device/meta?token={tb}&metaFieldId=1")).await,
        r#"{"type":"Text","value":"SN-B"}"#
    );
    let all_b: Value =
        serde_json::from_str(&ok(&app, &format!("getAll?token={tb}")).await).unwrap();
    assert_eq!(all_b, json!({ "v1": 20, "v3": "idle" }));

    // Regenerated over the management API: the old token is refused at
    // once, here and on a second node; the new one reaches the same data.
    let admin = app.login("admin@root.test", PASSWORD).await;
    let renewed = post(
        &app,
        &format!("/api/v1/devices/{}/auth-token", a.0),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(renewed.status, 200, "{renewed:?}");
    let new = renewed.body["token"].as_str().unwrap().to_owned();
    let node = app.second_node().await;
    for base in [app.base.clone(), node.base.clone()] {
        for path in [
            format!("update?token={ta}&V1=99"),
            format!("get?token={ta}&V1"),
            format!("isHardwareConnected?token={ta}"),
        ] {
            let answer = device_get_at(&app, &base, &path).await;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (400, INVALID_TOKEN),
                "{path}"
            );
        }
        let answer = device_get_at(&app, &base, &format!("get?token={new}&V1")).await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "10"));
    }

    // Deleted: its token is refused at once, the other device untouched.
    let deleted = delete(&app, &format!("/api/v1/devices/{}", b.0), &admin).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    for base in [app.base.clone(), node.base.clone()] {
        let answer = device_get_at(&app, &base, &format!("update?token={tb}&V1=1")).await;
        assert_eq!((answer.status, answer.body.as_str()), (400, INVALID_TOKEN));
    }
    assert_eq!(ok(&app, &format!("get?token={new}&V1")).await, "10");
    node.stop().await;
}

async fn a_device_over_its_rate_or_body_limit_is_refused(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.device_api.requests_per_second = 2;
        config.device_api.body_limit_bytes = 4096;
    })
    .await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (_, t) = boiler_device(&app, &world, template, "B1").await;
    let (_, other) = boiler_device(&app, &world, template, "B2").await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..12 {
        let answer = device_get(&app, &format!("update?token={t}&V1={i}")).await;
        statuses.push(answer.status);
        if answer.status == 429 && limited.is_none() {
            limited = Some(answer);
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    assert_eq!(limited.body, blynk_error("Too many requests."));
    // The limit is per device: another device is not held back.
    assert_eq!(ok(&app, &format!("get?token={other}&V3")).await, "idle");

    // A body over the device API's limit answers 413 in Blynk's form.
    let big = format!("[{}]", vec!["[1700000000000,1]"; 400].join(","));
    assert!(big.len() > 4096);
    let answer = post_batch(&app, &format!("token={other}&pin=V1"), big).await;
    assert_eq!(
        (answer.status, answer.body),
        (
            413,
            blynk_error("Request body is larger than the server accepts.")
        )
    );
}

async fn device_requests_mark_the_device_seen_at_most_once_a_second(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (device, t) = boiler_device(&app, &world, template, "B1").await;
    let seen = async || {
        let mut tx = app.db.store().read().await.unwrap();
        let at = tx.device(device).await.unwrap().last_seen_at;
        tx.finish().await.unwrap();
        at
    };
    assert_eq!(seen().await, None);
    // isHardwareConnected alone does not make a device seen.
    ok(&app, &format!("isHardwareConnected?token={t}")).await;
    assert_eq!(seen().await, None);
    let start = app.db.store().now_ms();
    ok(&app, &format!("get?token={t}&V3")).await;
    assert_eq!(seen().await, Some(start), "a read marks it seen");
    app.clock().advance(600);
    ok(&app, &format!("update?token={t}&V1=1")).await;
    assert_eq!(seen().await, Some(start), "not again within a second");
    app.clock().advance(600);
    ok(&app, &format!("update?token={t}&V1=2")).await;
    assert_eq!(seen().await, Some(start + 1200));
    // The device list's online filter follows.
    let admin = app.login("admin@root.test", PASSWORD).await;
    let online = get(&app, "/api/v1/devices?online=true&limit=500", &admin).await;
    let ids: Vec<i64> = online.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![device.0]);
}

async fn data_get_answers_history_raw_and_aggregated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let template = boiler(&app, &world).await;
    let (_, t) = boiler_device(&app, &world, template, "B1").await;
    use arbor_app::model::Clock as _;
    let now = app.clock().now_ms();
    // Two hours of V2, a point every 10 minutes, starting on the hour.
    let start = (now - 2 * 3_600_000) / 3_600_000 * 3_600_000;
    let points: Vec<Value> = (0..12).map(|i| json!([start + i * 600_000, i])).collect();
    let posted = post_batch(
        &app,
        &format!("token={t}&pin=V2"),
        Value::Array(points).to_string(),
    )
    .await;
    assert_eq!(posted.status, 200, "{posted:?}");

    let raw: Value =
        serde_json::from_str(&ok(&app, &format!("data/get?token={t}&pin=V2&period=DAY")).await)
            .unwrap();
    let raw = raw.as_array().unwrap();
    assert_eq!(raw.len(), 12);
    assert_eq!(raw[0], json!({ "ts": start, "value": 0 }));
    assert_eq!(raw[11], json!({ "ts": start + 11 * 600_000, "value": 11 }));
    // The last hour only.
    let hour: Value = serde_json::from_str(
        &ok(
            &app,
            &format!("data/get?token={t}&dataStreamId=2&period=HOUR"),
        )
        .await,
    )
    .unwrap();
    assert!(
        hour.as_array()
            .unwrap()
            .iter()
            .all(|p| p["ts"].as_i64().unwrap() > now - 3_600_000)
    );
    // Hourly counts and averages.
    let counts: Value = serde_json::from_str(
        &ok(
            &app,
            &format!(
                "data/get?token={t}&pin=V2&period=DAY&granularityType=HOURLY&sourceType=COUNT"
            ),
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        counts,
        json!([{ "ts": start, "value": 6 }, { "ts": start + 3_600_000, "value": 6 }])
    );
    let averages: Value = serde_json::from_str(
        &ok(
            &app,
            &format!("data/get?token={t}&pin=V2&period=DAY&granularityType=HOURLY"),
        )
        .await,
    )
    .unwrap();
    assert_eq!(averages[0]["value"], json!(2.5));
    assert_eq!(averages[1]["value"], json!(8.5));
    // Every datastream at once, by pin.
    let all: Value =
        serde_json::from_str(&ok(&app, &format!("data/get?token={t}&period=DAY")).await).unwrap();
    let keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["v1", "v2", "v3", "v4", "v5"]);
    assert_eq!(all["v2"].as_array().unwrap().len(), 12);
    assert_eq!(all["v1"], json!([]));

    let wrong = blynk_error("Request with incorrect parameters");
    for query in [
        "period=YEAR",
        "period=THREE_MONTHS",
        "granularityType=WEEKLY",
        "sourceType=MEDIAN&granularityType=DAILY",
        "tzName=Australia/Sydney",
        "format=ISO_US",
    ] {
        refused(&app, &format!("data/get?token={t}&pin=V2&{query}"), &wrong).await;
    }
    refused(
        &app,
        &format!("data/get?token={t}&pin=V9&period=DAY"),
        &blynk_error("No datastream setup for that pin."),
    )
    .await;
    refused(
        &app,
        &format!("data/get?token={t}&pin=X2"),
        &blynk_error("Wrong pin format."),
    )
    .await;
    refused(&app, "data/get?token=nope&pin=V2", INVALID_TOKEN).await;
    app.stop().await;
}
