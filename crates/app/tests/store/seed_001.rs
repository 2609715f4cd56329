//! SPEC.md section 9 (seed 001), stored and queried through the use cases.

use crate::support::*;
use arbor_app::{App, AppError};
use arbor_core::{BuiltinRole, DeviceAction, DeviceId, OrgType, Permission, PermissionSet, UserId};
use arbor_store::{NewOrg, PageRequest};
use std::collections::BTreeSet;

both_engines!(seed_001_scenario_is_stored_and_queried);

async fn visible(app: &App, user: UserId) -> BTreeSet<DeviceId> {
    let mut seen = BTreeSet::new();
    let mut page = PageRequest::default();
    loop {
        let result = app.list_devices(&web(user), &page).await.unwrap();
        seen.extend(result.items.iter().map(|d| d.id));
        match result.next {
            Some(next) => page = PageRequest::after(Some(next), None),
            None => return seen,
        }
    }
}

async fn can_control(app: &App, user: UserId, device: DeviceId) -> bool {
    let mut tx = app.store().read().await.unwrap();
    let principal = tx.principal(user).await.unwrap().unwrap();
    let record = tx.device(device).await.unwrap();
    tx.finish().await.unwrap();
    let actor = principal.act_at_home().unwrap();
    actor
        .decide_device(DeviceAction::Control, &record.facts())
        .is_allowed()
}

async fn seed_001_scenario_is_stored_and_queried(db: TestDb) {
    let app = &db.app;
    let heat = hierarchy(app, "Heat Co", "a@heat.example").await;
    let a = heat.admin;
    let root = heat.root.id;
    let tpl = template(app, &heat, "Boiler").await;
    let hq_boiler = device(app, a, root, tpl, "HQ Boiler", Some(a)).await;

    let muller = suborg(app, a, root, "Muller Boiler Group").await;
    app.enable_device_template(&web(a), muller, tpl)
        .await
        .unwrap();
    let r = member(
        app,
        a,
        muller,
        &heat,
        BuiltinRole::Staff,
        "r@muller.example",
    )
    .await;
    let w = member(
        app,
        a,
        muller,
        &heat,
        BuiltinRole::Staff,
        "w@muller.example",
    )
    .await;
    let boiler = device(app, r, muller, tpl, "Boiler", Some(r)).await;
    let thermostat = device(app, w, muller, tpl, "Thermostat", Some(w)).await;

    let united = suborg(app, a, root, "United Heaters Inc.").await;
    let customer_m = app
        .create_suborg(
            &web(a),
            united,
            &NewOrg::named("Customer M", OrgType::Personal),
        )
        .await
        .unwrap()
        .id;
    let customer_h = suborg(app, a, united, "Customer H").await;
    for org in [united, customer_m, customer_h] {
        app.enable_device_template(&web(a), org, tpl).await.unwrap();
    }
    let m = member(
        app,
        a,
        customer_m,
        &heat,
        BuiltinRole::Admin,
        "m@customer.example",
    )
    .await;
    let h = member(
        app,
        a,
        customer_h,
        &heat,
        BuiltinRole::Admin,
        "h@customer.example",
    )
    .await;
    let pool_heater = device(app, m, customer_m, tpl, "Pool Heater", Some(m)).await;
    let h_thermostat = device(app, h, customer_h, tpl, "Thermostat", Some(h)).await;

    // U, role User, with own_devices.view and control granted in Muller.
    let u = member(app, a, muller, &heat, BuiltinRole::User, "u@muller.example").await;
    let granted: PermissionSet = [Permission::OwnDevicesView, Permission::OwnDevicesControl]
        .into_iter()
        .collect();
    let closure = app
        .set_role_permissions(&web(a), muller, heat.role(BuiltinRole::User), granted)
        .await
        .unwrap();
    assert!(closure.set.contains(Permission::OwnDevicesControl));
    // Before anything is transferred, U sees an empty list.
    assert!(visible(app, u).await.is_empty());
    let gift = device(app, r, muller, tpl, "Boiler 2", Some(r)).await;
    let moved = app.transfer_device_to_user(&web(r), gift, u).await.unwrap();
    assert_eq!(moved.owner, Some(u));
    assert!(matches!(
        app.transfer_device_to_user(&web(r), gift, u).await,
        Err(AppError::Invalid { reason, .. }) if reason == "Can't transfer to the same owner"
    ));

    let all: BTreeSet<_> = [
        hq_boiler,
        boiler,
        thermostat,
        pool_heater,
        h_thermostat,
        gift,
    ]
    .into_iter()
    .collect();
    assert_eq!(visible(app, a).await, all, "A sees every device");
    let muller_devices: BTreeSet<_> = [boiler, thermostat, gift].into_iter().collect();
    assert_eq!(visible(app, r).await, muller_devices);
    assert_eq!(visible(app, w).await, muller_devices);
    for staff in [r, w] {
        for d in [boiler, thermostat] {
            assert!(can_control(app, staff, d).await, "{staff} controls {d}");
        }
    }
    assert_eq!(visible(app, m).await, [pool_heater].into_iter().collect());
    assert_eq!(visible(app, h).await, [h_thermostat].into_iter().collect());
    assert_eq!(visible(app, u).await, [gift].into_iter().collect());
    assert!(can_control(app, u, gift).await);
    for user in [r, w, m, h, u] {
        assert!(!visible(app, user).await.contains(&hq_boiler));
        assert!(matches!(
            app.get_device(&web(user), hq_boiler).await,
            Err(AppError::NotFound { .. })
        ));
    }

    // Orgs: A sees the whole tree, M only their own org.
    let orgs = app
        .list_orgs(&web(a), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(orgs.items.len(), 5);
    let m_orgs = app
        .list_orgs(&web(m), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        m_orgs.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![customer_m]
    );
    // Users: R (Staff, users.view) sees Muller's members only.
    let users = app
        .list_users(&web(r), &PageRequest::default())
        .await
        .unwrap();
    let ids: BTreeSet<_> = users.items.iter().map(|u| u.id).collect();
    assert_eq!(ids, [r, w, u].into_iter().collect());

    // The transfer and the denied/failed attempts are in the audit log.
    let mut tx = app.store().read().await.unwrap();
    let log = tx
        .audit_for_target(&format!("device:{gift}"))
        .await
        .unwrap();
    tx.finish().await.unwrap();
    let actions: Vec<_> = log
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("device.create", "allowed"),
            ("device.transfer", "allowed"),
            ("device.transfer", "failed")
        ]
    );
}
