//! The device data plane's storage (issue 12): values (current and
//! history, read by range), events, pin properties and device metafields,
//! written through a data transaction that a device's token opens — no
//! audit row, no authorization version, every row gone with its device.

use crate::support::*;
use arbor_app::HierarchyCreated;
use arbor_core::device_data::PinValue;
use arbor_core::template::{EventLevel, Scalar};
use arbor_store::{Table, TokenDevice, ValueWrite};

both_engines!(
    values_events_and_properties_are_kept_per_device_without_audit_or_authz_change,
    a_batch_of_old_points_goes_to_history_without_turning_back_the_current_value,
    a_deleted_device_takes_its_data_and_a_regenerated_token_finds_nothing,
);

fn number(n: f64) -> PinValue {
    PinValue::One(Scalar::Number(n))
}

async fn token_device(db: &TestDb, token: &str) -> Option<TokenDevice> {
    let mut tx = db.store().read().await.unwrap();
    let found = tx
        .device_for_token(&arbor_app::hash_token(token))
        .await
        .unwrap();
    tx.finish().await.unwrap();
    found
}

/// A device in the root org of a fresh hierarchy, with its token.
async fn provisioned(db: &TestDb) -> (HierarchyCreated, arbor_core::DeviceId, String) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let template = template(app, &h, "Thermo").await;
    let device = device(app, h.admin, h.root.id, template, "T1", None).await;
    let token = app.device_token(&web(h.admin), device).await.unwrap();
    (h, device, token)
}

async fn values_events_and_properties_are_kept_per_device_without_audit_or_authz_change(
    db: TestDb,
) {
    let (_, device, token) = provisioned(&db).await;
    let store = db.store();
    let found = token_device(&db, &token).await.unwrap();
    assert_eq!(found.id(), device);
    assert_eq!(found.last_seen_at(), None);
    let version = store.authz_version().await.unwrap();
    let audit = {
        let mut tx = store.read().await.unwrap();
        let n = tx.count_rows(Table::AuditEvents).await.unwrap();
        tx.finish().await.unwrap();
        n
    };

    let now = store.now_ms();
    let mut tx = store.data().await.unwrap();
    tx.put_values(
        &found,
        &[
            ValueWrite {
                pin: 0,
                at: now - 2000,
                value: number(20.5),
            },
            ValueWrite {
                pin: 0,
                at: now - 1000,
                value: number(21.0),
            },
            ValueWrite {
                pin: 7,
                at: now,
                value: PinValue::One(Scalar::Text("on".into())),
            },
            ValueWrite {
                pin: 9,
                at: now,
                value: PinValue::Many(vec![Scalar::Number(13.4), Scalar::Number(52.5)]),
            },
        ],
    )
    .await
    .unwrap();
    let event = tx
        .insert_device_event(&found, "overheat", EventLevel::Critical, "too hot")
        .await
        .unwrap();
    tx.set_pin_property(&found, 0, "label", "Boiler")
        .await
        .unwrap();
    tx.set_pin_property(&found, 0, "label", "Boiler 2")
        .await
        .unwrap();
    tx.set_device_metafield(&found, "Serial", "SN-9")
        .await
        .unwrap();
    tx.mark_device_seen(&found).await.unwrap();
    tx.commit_data().await.unwrap();

    let mut tx = store.read().await.unwrap();
    let current = tx.current_values(device, &[]).await.unwrap();
    assert_eq!(
        current.iter().map(|v| (v.pin, v.at)).collect::<Vec<_>>(),
        vec![(0, now - 1000), (7, now), (9, now)]
    );
    assert_eq!(current[0].value, number(21.0));
    assert_eq!(
        current[2].value,
        PinValue::Many(vec![Scalar::Number(13.4), Scalar::Number(52.5)])
    );
    let only = tx.current_values(device, &[7]).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].value, PinValue::One(Scalar::Text("on".into())));
    // History by range: [from, to).
    let history = tx
        .value_history(device, 0, now - 2000, now, 100)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|v| v.at).collect::<Vec<_>>(),
        vec![now - 2000, now - 1000]
    );
    let narrower = tx
        .value_history(device, 0, now - 1500, now, 100)
        .await
        .unwrap();
    assert_eq!(narrower.len(), 1);
    assert_eq!(narrower[0].value, number(21.0));
    let events = tx.device_events(device, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, event);
    assert_eq!(
        (
            events[0].code.as_str(),
            events[0].level.as_str(),
            events[0].description.as_str()
        ),
        ("overheat", "critical", "too hot")
    );
    let properties = tx.pin_properties(device).await.unwrap();
    assert_eq!(properties.len(), 1);
    assert_eq!(properties[0].value, "Boiler 2");
    assert_eq!(
        tx.device_metafield(device, "Serial")
            .await
            .unwrap()
            .as_deref(),
        Some("SN-9")
    );
    assert_eq!(tx.device(device).await.unwrap().last_seen_at, Some(now));
    let audit_after = tx.count_rows(Table::AuditEvents).await.unwrap();
    tx.finish().await.unwrap();

    // Device data is no one's audited action and no authorization fact.
    assert_eq!(audit_after, audit);
    assert_eq!(store.authz_version().await.unwrap(), version);
}

async fn a_batch_of_old_points_goes_to_history_without_turning_back_the_current_value(db: TestDb) {
    let (_, device, token) = provisioned(&db).await;
    let store = db.store();
    let found = token_device(&db, &token).await.unwrap();
    let now = store.now_ms();
    let mut tx = store.data().await.unwrap();
    tx.put_values(
        &found,
        &[ValueWrite {
            pin: 0,
            at: now,
            value: number(30.0),
        }],
    )
    .await
    .unwrap();
    tx.commit_data().await.unwrap();
    // 1,200 older points: more than one INSERT statement's worth.
    let points: Vec<ValueWrite> = (0..1200)
        .map(|i| ValueWrite {
            pin: 0,
            at: now - 1_000_000 + i * 100,
            value: number(f64::from(i32::try_from(i).unwrap())),
        })
        .collect();
    let mut tx = store.data().await.unwrap();
    tx.put_values(&found, &points).await.unwrap();
    tx.commit_data().await.unwrap();

    let mut tx = store.read().await.unwrap();
    let current = tx.current_values(device, &[0]).await.unwrap();
    assert_eq!(
        (current[0].at, current[0].value.clone()),
        (now, number(30.0))
    );
    let history = tx
        .value_history(device, 0, now - 1_000_000, now + 1, 5000)
        .await
        .unwrap();
    assert_eq!(history.len(), 1201);
    assert_eq!(history[0].value, number(0.0));
    assert_eq!(history[1199].value, number(1199.0));
    let page = tx
        .value_history(device, 0, now - 1_000_000, now + 1, 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 10, "the limit bounds a range read");
    tx.finish().await.unwrap();
}

async fn a_deleted_device_takes_its_data_and_a_regenerated_token_finds_nothing(db: TestDb) {
    let (h, device, token) = provisioned(&db).await;
    let store = db.store();
    let found = token_device(&db, &token).await.unwrap();
    let mut tx = store.data().await.unwrap();
    tx.put_values(
        &found,
        &[ValueWrite {
            pin: 0,
            at: store.now_ms(),
            value: number(1.0),
        }],
    )
    .await
    .unwrap();
    tx.insert_device_event(&found, "overheat", EventLevel::Info, "")
        .await
        .unwrap();
    tx.set_pin_property(&found, 0, "color", "#D3435C")
        .await
        .unwrap();
    tx.commit_data().await.unwrap();

    let renewed = db
        .app
        .regenerate_device_token(&web(h.admin), device)
        .await
        .unwrap();
    assert!(
        token_device(&db, &token).await.is_none(),
        "the old token is dead"
    );
    assert_eq!(token_device(&db, &renewed).await.unwrap().id(), device);

    db.app.delete_device(&web(h.admin), device).await.unwrap();
    assert!(token_device(&db, &renewed).await.is_none());
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for table in [
        "datastream_values",
        "datastream_history",
        "device_events",
        "device_pin_properties",
        "device_metafields",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE device_id = $1"
        )))
        .bind(device.0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table} keeps nothing of a deleted device");
    }
    conn.close().await.unwrap();
}
