//! Conflicting operations racing each other: the invariants hold, one wins,
//! the others get a clear error.

use crate::support::*;
use arbor_app::AppError;
use arbor_core::BuiltinRole;
use arbor_store::AuditOutcome;
use std::sync::Arc;

both_engines!(
    concurrent_transfers_of_one_device_have_one_winner,
    two_admins_demoting_each_other_leave_one_admin,
    two_admins_demoting_themselves_leave_one_admin,
    moves_and_creates_racing_keep_every_path_consistent,
);

const TASKS: usize = 32;

async fn concurrent_transfers_of_one_device_have_one_winner(db: TestDb) {
    let app = Arc::new(db.app.clone());
    let h = hierarchy(&app, "Acme", "boss@acme.example").await;
    let tpl = template(&app, &h, "Sensor").await;
    let org = suborg(&app, h.admin, h.root.id, "Client").await;
    app.enable_device_template(&web(h.admin), org, tpl)
        .await
        .unwrap();
    let from = member(
        &app,
        h.admin,
        org,
        &h,
        BuiltinRole::Staff,
        "from@client.example",
    )
    .await;
    let to = member(
        &app,
        h.admin,
        org,
        &h,
        BuiltinRole::Staff,
        "to@client.example",
    )
    .await;
    let d = device(&app, h.admin, org, tpl, "contested", Some(from)).await;

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let app = Arc::clone(&app);
        // Half the transfers come from the root Admin, half from the owner.
        let by = if i % 2 == 0 { h.admin } else { from };
        tasks.push(tokio::spawn(async move {
            app.transfer_device_to_user(&web(by), d, to).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(record) => {
                wins += 1;
                assert_eq!(record.owner, Some(to));
            }
            Err(AppError::Invalid { reason, .. }) => {
                assert_eq!(reason, "Can't transfer to the same owner")
            }
            // The previous owner may no longer see the device once it moved
            // away from them (Staff still sees it in scope, so this stays rare).
            Err(AppError::NotFound { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one transfer wins");
    let mut tx = app.store().read().await.unwrap();
    assert_eq!(tx.device(d).await.unwrap().owner, Some(to));
    let log = tx.audit_for_target(&format!("device:{d}")).await.unwrap();
    tx.finish().await.unwrap();
    let allowed = log
        .iter()
        .filter(|e| e.action == "device.transfer" && e.outcome == AuditOutcome::Allowed)
        .count();
    assert_eq!(allowed, 1, "one audit row per successful transfer");
    assert_eq!(
        log.iter().filter(|e| e.action == "device.transfer").count(),
        TASKS,
        "every attempt is audited"
    );
}

async fn two_admins_demoting_each_other_leave_one_admin(db: TestDb) {
    let app = Arc::new(db.app.clone());
    let h = hierarchy(&app, "Acme", "boss@acme.example").await;
    let staff = h.role(BuiltinRole::Staff);
    // Several orgs, each with exactly two Admins, raced in parallel.
    let mut orgs = Vec::new();
    for n in 0..4 {
        let org = suborg(&app, h.admin, h.root.id, &format!("Client {n}")).await;
        let x = member(
            &app,
            h.admin,
            org,
            &h,
            BuiltinRole::Admin,
            &format!("x{n}@c.example"),
        )
        .await;
        let y = member(
            &app,
            h.admin,
            org,
            &h,
            BuiltinRole::Admin,
            &format!("y{n}@c.example"),
        )
        .await;
        orgs.push((org, x, y));
    }
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let app = Arc::clone(&app);
        let (org, x, y) = orgs[i % orgs.len()];
        let (actor, target) = if (i / orgs.len()) % 2 == 0 {
            (x, y)
        } else {
            (y, x)
        };
        tasks.push(tokio::spawn(async move {
            app.change_member_role(&web(actor).in_org(org), target, org, staff)
                .await
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => {}
            // The loser is no longer an Admin (no users.edit, or the target is
            // more privileged), or would remove the last Admin.
            Err(AppError::Forbidden { .. } | AppError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    let mut tx = app.store().read().await.unwrap();
    for (org, x, y) in orgs {
        assert_eq!(tx.admin_count(org).await.unwrap(), 1, "org {org}");
        let x_admin =
            tx.member_role(x, org).await.unwrap().unwrap().0 == h.role(BuiltinRole::Admin);
        let y_admin =
            tx.member_role(y, org).await.unwrap().unwrap().0 == h.role(BuiltinRole::Admin);
        assert!(x_admin ^ y_admin);
    }
    tx.finish().await.unwrap();
}

async fn two_admins_demoting_themselves_leave_one_admin(db: TestDb) {
    let app = Arc::new(db.app.clone());
    let h = hierarchy(&app, "Acme", "boss@acme.example").await;
    let org = suborg(&app, h.admin, h.root.id, "Client").await;
    let x = member(&app, h.admin, org, &h, BuiltinRole::Admin, "x@c.example").await;
    let y = member(&app, h.admin, org, &h, BuiltinRole::Admin, "y@c.example").await;
    let user = h.role(BuiltinRole::User);
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let app = Arc::clone(&app);
        let me = if i % 2 == 0 { x } else { y };
        tasks.push(tokio::spawn(async move {
            app.change_member_role(&web(me), me, org, user).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(AppError::Forbidden { .. } | AppError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert!(ok >= 1);
    let mut tx = app.store().read().await.unwrap();
    assert_eq!(tx.admin_count(org).await.unwrap(), 1);
    tx.finish().await.unwrap();
}

/// Re-parenting and sub-org creation racing in one subtree: every path stays
/// its parent's path plus its own id, and the depth limit holds.
async fn moves_and_creates_racing_keep_every_path_consistent(db: TestDb) {
    let app = Arc::new(db.app.clone());
    let h = hierarchy(&app, "Acme", "boss@acme.example").await;
    let a = suborg(&app, h.admin, h.root.id, "A").await;
    let c = suborg(&app, h.admin, h.root.id, "C").await;
    let b = suborg(&app, h.admin, a, "B").await;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let app = Arc::clone(&app);
        let admin = h.admin;
        tasks.push(tokio::spawn(async move {
            let caller = web(admin);
            let outcome = match i % 4 {
                // B hops between A and C; A hops under C and back.
                0 => app
                    .move_org(&caller, b, if i % 8 == 0 { c } else { a }, true)
                    .await
                    .map(|_| ()),
                1 => app
                    .move_org(&caller, a, if i % 8 == 1 { c } else { h.root.id }, true)
                    .await
                    .map(|_| ()),
                _ => app
                    .create_suborg(
                        &caller,
                        b,
                        &arbor_store::NewOrg::named(format!("N{i}"), arbor_core::OrgType::Business),
                    )
                    .await
                    .map(|_| ()),
            };
            match outcome {
                Ok(()) | Err(AppError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut tx = app.store().read().await.unwrap();
    let orgs = tx.all_orgs().await.unwrap();
    tx.finish().await.unwrap();
    let by_id: std::collections::HashMap<_, _> = orgs.iter().map(|o| (o.id, o)).collect();
    for org in &orgs {
        assert!(org.path.depth() <= 4, "depth limit: {:?}", org.path);
        assert_eq!(org.path.id(), org.id);
        match org.parent {
            Some(parent) => assert_eq!(by_id[&parent].path.child(org.id), org.path),
            None => assert_eq!(org.path.depth(), 1),
        }
    }
    assert!(orgs.len() > 4, "some sub-orgs were created");
}
