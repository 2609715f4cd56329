//! History retention (issue 12, item 4) on both engines: values and events
//! older than their template's retention (else the server's default) are
//! pruned and newer ones kept, a template's own retention overrides the
//! default either way, the background pruner does the same on its own, and
//! device writes made while a prune runs all succeed.

use crate::support::*;
use arbor_app::App;
use arbor_app::model::Clock as _;
use arbor_core::device_data::bounds::DAY_MS;
use arbor_core::template::{Datastream, Event, EventLevel, TemplateContent, ValueType};
use arbor_core::{DeviceId, DeviceTemplateId};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

both_engines!(values_and_events_past_the_default_retention_are_pruned_and_newer_kept);
both_engines!(a_template_s_own_retention_overrides_the_server_default);
both_engines!(device_writes_during_a_prune_all_succeed);

/// A template with an integer datastream on V1 and an event `ping`,
/// keeping `days` of history (`None`: the server's default), enabled for
/// Child.
async fn template(app: &TestApp, world: &World, name: &str, days: Option<i64>) -> DeviceTemplateId {
    let by = cli(world.root_admin);
    let content = TemplateContent {
        name: name.into(),
        datastreams: vec![Datastream {
            pin: 1,
            name: "Counter".into(),
            value_type: ValueType::Integer,
            enum_values: Vec::new(),
            min: None,
            max: None,
            units: String::new(),
            default_value: None,
            decimals: None,
        }],
        events: vec![Event {
            code: "ping".into(),
            name: "Ping".into(),
            level: EventLevel::Info,
        }],
        history_retention_days: days,
        ..TemplateContent::default()
    };
    let id = app.app().create_template(&by, content).await.unwrap().id;
    app.app()
        .enable_device_template(&by, world.child, id)
        .await
        .unwrap();
    id
}

/// A device of `template` in Child, with its token.
async fn device(
    app: &TestApp,
    world: &World,
    template: DeviceTemplateId,
    name: &str,
) -> (DeviceId, String) {
    let by = cli(world.root_admin);
    let new = arbor_app::model::NewDevice {
        name: name.into(),
        template,
        owner: None,
        metafields: Vec::new(),
    };
    let id = app
        .app()
        .create_device(&by, world.child, &new)
        .await
        .unwrap();
    (id, app.app().device_token(&by, id).await.unwrap())
}

async fn device_get(app: &TestApp, path_and_query: &str) -> (u16, String) {
    let response = app
        .http
        .get(app.url(&format!("/external/api/{path_and_query}")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Timestamped points `(at, value)` on V1, in requests of 10,000.
async fn send_points(app: &TestApp, token: &str, points: &[(i64, i64)]) {
    for chunk in points.chunks(10_000) {
        let body: Vec<_> = chunk.iter().map(|(at, v)| json!([at, v])).collect();
        let response = app
            .http
            .post(app.url(&format!("/external/api/batch/update?token={token}&pin=V1")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
    }
}

/// V1's history of `device`: (at, value).
async fn history(app: &TestApp, device: DeviceId) -> Vec<(i64, String)> {
    let mut tx = app.db.store().read().await.unwrap();
    let points = tx
        .value_history(device, 1, i64::MIN, i64::MAX, 1_000_000)
        .await
        .unwrap();
    tx.finish().await.unwrap();
    points
        .into_iter()
        .map(|p| (p.at, p.value.display()))
        .collect()
}

async fn event_times(app: &TestApp, device: DeviceId) -> Vec<i64> {
    let mut tx = app.db.store().read().await.unwrap();
    let events = tx.device_events(device, 1000).await.unwrap();
    tx.finish().await.unwrap();
    // The events the device logged (not the timeline's own online entries).
    let mut times: Vec<i64> = events
        .into_iter()
        .filter(|e| !e.code.starts_with("arbor."))
        .map(|e| e.at)
        .collect();
    times.sort_unstable();
    times
}

fn values(points: &[(i64, String)]) -> Vec<&str> {
    points.iter().map(|(_, v)| v.as_str()).collect()
}

/// V1's kept values of `device`, oldest first, joined by commas.
async fn kept(app: &TestApp, device: DeviceId) -> String {
    values(&history(app, device).await).join(",")
}

async fn values_and_events_past_the_default_retention_are_pruned_and_newer_kept(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    let plain = template(&app, &world, "Plain", None).await;
    let (id, token) = device(&app, &world, plain, "Meter").await;
    let t0 = app.clock().now_ms();
    // Points 29, 20, 10 and 1 days old, a value now and an event now.
    let ages = [29, 20, 10, 1];
    let points: Vec<(i64, i64)> = ages
        .iter()
        .zip(1..)
        .map(|(days, v)| (t0 - days * DAY_MS, v))
        .collect();
    send_points(&app, &token, &points).await;
    assert_eq!(
        device_get(&app, &format!("update?token={token}&V1=5"))
            .await
            .0,
        200
    );
    assert_eq!(
        device_get(&app, &format!("logEvent?token={token}&code=ping"))
            .await
            .0,
        200
    );
    // Nothing is past 30 days yet.
    let pruned = app.app().prune_history().await.unwrap();
    assert_eq!((pruned.rows(), pruned.transactions), (0, 0), "{pruned:?}");

    // 15 days on, the points then 29 and 20 days old are past 30 days.
    app.clock().advance(15 * DAY_MS);
    let pruned = app.app().prune_history().await.unwrap();
    assert_eq!((pruned.values, pruned.events), (2, 0), "{pruned:?}");
    assert_eq!(values(&history(&app, id).await), ["3", "4", "5"]);
    assert_eq!(event_times(&app, id).await, [t0]);
    // Pruned is pruned: a second run finds nothing and writes nothing.
    let again = app.app().prune_history().await.unwrap();
    assert_eq!((again.rows(), again.transactions), (0, 0), "{again:?}");

    // 35 days after t0 the rest is past retention too; the background
    // pruner removes it on its own.
    app.clock().advance(20 * DAY_MS);
    let pruner = tokio::spawn(arbor_server::retention::run(
        app.app().clone(),
        Duration::from_millis(20),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(history(&app, id).await.is_empty() && event_times(&app, id).await.is_empty()) {
        assert!(Instant::now() < deadline, "the background pruner never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pruner.abort();
    // The current value is the device's state, not history: it stays.
    assert_eq!(
        device_get(&app, &format!("get?token={token}&V1")).await,
        (200, "5".to_owned())
    );
    app.stop().await;
}

async fn a_template_s_own_retention_overrides_the_server_default(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = World::build(&app).await;
    // The server's default here is 10 days (`device_api.history_retention_days`).
    let limits = arbor_app::device_api::DeviceApiLimits {
        history_retention_days: 10,
        ..Default::default()
    };
    let served: App = app.app().clone().with_device_api_limits(limits);
    let daily = template(&app, &world, "Daily", Some(1)).await;
    let long = template(&app, &world, "Archive", Some(3650)).await;
    let plain = template(&app, &world, "Plain", None).await;
    // One more over HTTP, as an Admin sets it: a week.
    let admin = app.login("admin@root.test", PASSWORD).await;
    let weekly = post(
        &app,
        "/api/v1/device-templates",
        &admin,
        json!({ "name": "Weekly", "history_retention_days": 7,
                "datastreams": [{ "pin": 1, "name": "Counter", "value_type": "integer" }] }),
    )
    .await;
    assert_eq!(weekly.status, 201, "{weekly:?}");
    assert_eq!(weekly.body["history_retention_days"], 7);
    let weekly = DeviceTemplateId(weekly.body["id"].as_i64().unwrap());
    app.app()
        .enable_device_template(&cli(world.root_admin), world.child, weekly)
        .await
        .unwrap();

    let t0 = app.clock().now_ms();
    // Points 29, 20, 8 and 2 days and 12 hours old, on each device.
    let points: Vec<(i64, i64)> = [29 * DAY_MS, 20 * DAY_MS, 8 * DAY_MS, 2 * DAY_MS, DAY_MS / 2]
        .iter()
        .zip(1..)
        .map(|(age, v)| (t0 - age, v))
        .collect();
    let mut devices = Vec::new();
    for (template, name) in [
        (daily, "daily"),
        (weekly, "weekly"),
        (plain, "plain"),
        (long, "archive"),
    ] {
        let (id, token) = device(&app, &world, template, name).await;
        send_points(&app, &token, &points).await;
        devices.push(id);
    }
    let pruned = served.prune_history().await.unwrap();
    // Daily keeps 1 day, Weekly 7, Plain the default 10, Archive all.
    assert_eq!(pruned.values, 4 + 3 + 2, "{pruned:?}");
    assert_eq!(kept(&app, devices[0]).await, "5");
    assert_eq!(kept(&app, devices[1]).await, "4,5");
    assert_eq!(kept(&app, devices[2]).await, "3,4,5");
    assert_eq!(kept(&app, devices[3]).await, "1,2,3,4,5");

    // A year later the ten-year template still has every point.
    app.clock().advance(400 * DAY_MS);
    served.prune_history().await.unwrap();
    for id in &devices[..3] {
        assert!(history(&app, *id).await.is_empty());
    }
    assert_eq!(kept(&app, devices[3]).await, "1,2,3,4,5");

    // Its retention set back to the default (null over HTTP) lets it go
    // (a new login: a year ended the session).
    let admin = app.login("admin@root.test", PASSWORD).await;
    let edited = patch(
        &app,
        &format!("/api/v1/device-templates/{}", long.0),
        &admin,
        json!({ "history_retention_days": null }),
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert!(edited.body["history_retention_days"].is_null());
    let pruned = served.prune_history().await.unwrap();
    assert_eq!(pruned.values, 5, "{pruned:?}");
    assert!(history(&app, devices[3]).await.is_empty());
    app.stop().await;
}

async fn device_writes_during_a_prune_all_succeed(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.device_api.requests_per_second = 1_000_000;
    })
    .await;
    let world = World::build(&app).await;
    let plain = template(&app, &world, "Plain", None).await;
    // 40,000 points past retention on the device that keeps writing (the
    // same pin) and 20,000 on another.
    let (busy, busy_token) = device(&app, &world, plain, "busy").await;
    let (other, other_token) = device(&app, &world, plain, "other").await;
    let t0 = app.clock().now_ms();
    let old = |n: i64| -> Vec<(i64, i64)> { (0..n).map(|i| (t0 - 29 * DAY_MS + i, i)).collect() };
    send_points(&app, &busy_token, &old(40_000)).await;
    send_points(&app, &other_token, &old(20_000)).await;
    app.clock().advance(5 * DAY_MS);

    let first_done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let pruner = {
        let (app, first_done, stop) = (app.app().clone(), first_done.clone(), stop.clone());
        tokio::spawn(async move {
            let first = app.prune_history().await.unwrap();
            first_done.store(true, Ordering::SeqCst);
            let (mut removed, mut runs) = (first.rows(), 1);
            while !stop.load(Ordering::SeqCst) {
                removed += app.prune_history().await.unwrap().rows();
                runs += 1;
            }
            (first, removed, runs)
        })
    };
    // 8 writers of 60 updates each, every value unique.
    let during_first = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (http, base, token) = (app.http.clone(), app.base.clone(), busy_token.clone());
        let (first_done, during_first) = (first_done.clone(), during_first.clone());
        writers.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in 0..60 {
                let n = 1_000_000 + w * 1000 + i;
                let started = Instant::now();
                let response = http
                    .get(format!("{base}/external/api/update?token={token}&V1={n}"))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert_eq!(status, 200, "{n}: {}", response.text().await.unwrap());
                slowest = slowest.max(started.elapsed());
                if !first_done.load(Ordering::SeqCst) {
                    during_first.fetch_add(1, Ordering::SeqCst);
                }
            }
            slowest
        }));
    }
    let mut slowest = Duration::ZERO;
    for writer in writers {
        slowest = slowest.max(writer.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    let (first, removed, runs) = pruner.await.unwrap();
    eprintln!(
        "{engine:?}: {removed} rows pruned in {runs} runs (the first: {first:?}); {} of 480 \
         updates answered during the first run; slowest update {slowest:?}",
        during_first.load(Ordering::SeqCst)
    );
    assert_eq!(removed, 60_000);
    // In batches: at most PRUNE_BATCH_ROWS (1,000) rows per write transaction.
    let batch = u64::from(arbor_app::maintenance::PRUNE_BATCH_ROWS);
    assert!(first.transactions * batch >= first.rows(), "{first:?}");
    assert!(
        during_first.load(Ordering::SeqCst) > 0,
        "no update ran while the first prune did"
    );
    // Every update is in the history; nothing old is left.
    let kept = history(&app, busy).await;
    assert_eq!(kept.len(), 480);
    assert!(
        kept.iter()
            .all(|(_, v)| v.parse::<i64>().unwrap() >= 1_000_000)
    );
    assert!(history(&app, other).await.is_empty());
    app.stop().await;
}
