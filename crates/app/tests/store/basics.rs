//! Schema constraints and the single use cases, one rule at a time.

use crate::support::proofs;
use crate::support::*;
use arbor_app::{AppError, NewMember};
use arbor_core::{BuiltinRole, OrgType, Permission, PermissionSet, UserStatus};
use arbor_store::{AuditOutcome, NewOrg, NewUser, PageRequest, StoreError, Table};

both_engines!(
    migrations_are_idempotent_and_email_is_unique_ignoring_case,
    suborg_copies_parent_permission_sets_and_depth_limit_holds,
    org_keeps_its_last_admin,
    moving_an_org_rewrites_its_subtree_paths,
    denied_attempts_change_nothing_and_are_audited,
    device_owner_must_be_a_member_of_the_device_org,
    suspended_user_and_revoked_session_are_denied,
);

async fn migrations_are_idempotent_and_email_is_unique_ignoring_case(db: TestDb) {
    db.store().migrate().await.unwrap();
    let app = &db.app;
    let h = hierarchy(app, "Acme", "Boss@Acme.example").await;
    let err = app
        .add_member(
            &web(h.admin),
            h.root.id,
            &NewMember {
                user: NewUser::active("boss@ACME.example", "Again"),
                role: h.role(BuiltinRole::Staff),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    // The database itself refuses the duplicate, with a domain error and no SQL.
    let mut tx = db.store().write().await.unwrap();
    let err = tx
        .insert_user(
            &arbor_core::Operator::setup().create_hierarchy(),
            &NewUser::active("BOSS@acme.EXAMPLE", "Dup"),
        )
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { what } => {
            assert_eq!(what, "a user with this email already exists")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    drop(tx);
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(tx.count_rows(Table::Users).await.unwrap(), 1);
    let found = tx
        .user_by_email("BOSS@ACME.EXAMPLE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.email, "Boss@Acme.example");
    tx.finish().await.unwrap();
}

async fn suborg_copies_parent_permission_sets_and_depth_limit_holds(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let user_role = h.role(BuiltinRole::User);
    let granted: PermissionSet = [Permission::OwnDevicesView].into_iter().collect();
    app.set_role_permissions(&web(h.admin), h.root.id, user_role, granted)
        .await
        .unwrap();
    let l2 = suborg(app, h.admin, h.root.id, "L2").await;
    let l3 = suborg(app, h.admin, l2, "L3").await;
    let l4 = suborg(app, h.admin, l3, "L4").await;
    let err = app
        .create_suborg(&web(h.admin), l4, &NewOrg::named("L5", OrgType::Business))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(
        tx.role_permissions(l4, user_role).await.unwrap(),
        granted,
        "copied down from the root through every level"
    );
    assert_eq!(
        tx.role_permissions(l4, h.role(BuiltinRole::Admin))
            .await
            .unwrap(),
        PermissionSet::all()
    );
    let path = tx.org_path(l4).await.unwrap();
    assert_eq!(path.ids(), &[h.root.id, l2, l3, l4]);
    tx.finish().await.unwrap();
    // PERSONAL orgs only have PERSONAL children.
    let personal = app
        .create_suborg(&web(h.admin), l2, &NewOrg::named("Home", OrgType::Personal))
        .await
        .unwrap();
    let err = app
        .create_suborg(
            &web(h.admin),
            personal.id,
            &NewOrg::named("Shop", OrgType::Business),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }));
}

async fn org_keeps_its_last_admin(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let org = suborg(app, h.admin, h.root.id, "Client").await;
    let x = member(
        app,
        h.admin,
        org,
        &h,
        BuiltinRole::Admin,
        "x@client.example",
    )
    .await;
    let err = app
        .change_member_role(&web(x), x, org, h.role(BuiltinRole::Staff))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    let err = app
        .change_member_role(&web(h.admin), x, org, h.role(BuiltinRole::User))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    let y = member(
        app,
        h.admin,
        org,
        &h,
        BuiltinRole::Admin,
        "y@client.example",
    )
    .await;
    app.change_member_role(&web(x), x, org, h.role(BuiltinRole::Staff))
        .await
        .unwrap();
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(tx.admin_count(org).await.unwrap(), 1);
    assert_eq!(
        tx.member_role(y, org).await.unwrap().unwrap().0,
        h.role(BuiltinRole::Admin)
    );
    let log = tx.audit_for_target(&format!("user:{x}")).await.unwrap();
    tx.finish().await.unwrap();
    let outcomes: Vec<_> = log.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            AuditOutcome::Failed,
            AuditOutcome::Failed,
            AuditOutcome::Allowed
        ]
    );
}

async fn moving_an_org_rewrites_its_subtree_paths(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let a = suborg(app, h.admin, h.root.id, "A").await;
    let b = suborg(app, h.admin, h.root.id, "B").await;
    let a1 = suborg(app, h.admin, a, "A1").await;
    let a11 = suborg(app, h.admin, a1, "A11").await;
    let err = app.move_org(&web(h.admin), a, a11, true).await.unwrap_err();
    assert!(
        matches!(err, AppError::Conflict { .. }),
        "into own subtree: {err:?}"
    );
    let err = app.move_org(&web(h.admin), a1, b, false).await.unwrap_err();
    assert!(matches!(
        err,
        AppError::Invalid {
            field: "confirm",
            ..
        }
    ));
    // A1 (with A11) under B: depth 2+2 = 4 fits.
    let moved = app.move_org(&web(h.admin), a1, b, true).await.unwrap();
    assert_eq!(moved.path.ids(), &[h.root.id, b, a1]);
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(
        tx.org_path(a11).await.unwrap().ids(),
        &[h.root.id, b, a1, a11]
    );
    assert_eq!(tx.org(a1).await.unwrap().parent, Some(b));
    assert_eq!(tx.subtree_size(a).await.unwrap(), 1);
    assert_eq!(tx.subtree_size(b).await.unwrap(), 3);
    tx.finish().await.unwrap();
    // A1 moves back; B cannot move under its own child.
    let err = app.move_org(&web(h.admin), a1, a, true).await;
    assert!(err.is_ok(), "moving back fits");
    let c = suborg(app, h.admin, b, "C").await;
    let err = app.move_org(&web(h.admin), b, c, true).await.unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }));
}

async fn denied_attempts_change_nothing_and_are_audited(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let org = suborg(app, h.admin, h.root.id, "Client").await;
    let staff = member(
        app,
        h.admin,
        org,
        &h,
        BuiltinRole::Staff,
        "s@client.example",
    )
    .await;
    // Staff lacks roles.edit: rule 4.
    let err = app
        .set_role_permissions(
            &web(staff),
            org,
            h.role(BuiltinRole::User),
            PermissionSet::EMPTY,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden { .. }), "{err:?}");
    // Staff may not add an Admin (rule 6: the Admin set exceeds its own).
    let err = app
        .add_member(
            &web(staff),
            org,
            &NewMember {
                user: NewUser::active("new@client.example", "New"),
                role: h.role(BuiltinRole::Admin),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden { .. }), "{err:?}");
    // A sibling's Staff cannot see the root org at all: 404, not 403.
    let err = app
        .create_suborg(
            &web(staff),
            h.root.id,
            &NewOrg::named("X", OrgType::Business),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(tx.count_rows(Table::Users).await.unwrap(), 2);
    assert_eq!(tx.count_rows(Table::Organizations).await.unwrap(), 2);
    let denied = tx
        .audit_for_target(&format!("role:{}", h.role(BuiltinRole::User)))
        .await
        .unwrap();
    tx.finish().await.unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].outcome, AuditOutcome::Forbidden);
    assert_eq!(denied[0].actor, Some(staff));
}

async fn device_owner_must_be_a_member_of_the_device_org(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let tpl = template(app, &h, "Sensor").await;
    let org = suborg(app, h.admin, h.root.id, "Client").await;
    // Template not enabled for the sub-org yet.
    let err = app
        .create_device(&web(h.admin), org, &new_device("d1", tpl, None))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Conflict { .. }), "{err:?}");
    app.enable_device_template(&web(h.admin), org, tpl)
        .await
        .unwrap();
    // The root Admin is not a member of the sub-org: the schema refuses.
    let err = app
        .create_device(&web(h.admin), org, &new_device("d2", tpl, Some(h.admin)))
        .await
        .unwrap_err();
    match err {
        AppError::Conflict { what } => assert!(what.contains("member"), "{what}"),
        other => panic!("{other:?}"),
    }
    let d = device(app, h.admin, org, tpl, "d3", None).await;
    let got = app.get_device(&web(h.admin), d).await.unwrap();
    assert_eq!(got.owner, None);
    let mut tx = db.store().read().await.unwrap();
    assert_eq!(tx.count_rows(Table::Devices).await.unwrap(), 1);
    assert_eq!(
        tx.device_metafields(d).await.unwrap(),
        vec![("Serial".to_string(), "SN-d3".to_string())]
    );
    tx.finish().await.unwrap();
}

async fn suspended_user_and_revoked_session_are_denied(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let staff = member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::Staff,
        "s@acme.example",
    )
    .await;
    // A session, then a revocation: the next request is denied.
    let (token, hash) = arbor_app::new_token();
    assert_ne!(token, hash);
    let mut tx = db.store().write().await.unwrap();
    let by = proofs::login(staff);
    tx.insert_session(&by, staff, &hash, tx.now() + 3_600_000)
        .await
        .unwrap();
    tx.commit(arbor_store::AuditEvent::new(
        arbor_store::ClientKind::Web,
        "session.create",
        format!("user:{staff}"),
    ))
    .await
    .unwrap();
    let mut caller = web(staff);
    caller.session_token_hash = Some(hash.clone());
    app.list_orgs(&caller, &PageRequest::default())
        .await
        .unwrap();
    let mut tx = db.store().write().await.unwrap();
    assert_eq!(
        tx.revoke_sessions(&proofs::suspend(staff), staff)
            .await
            .unwrap(),
        1
    );
    tx.commit(arbor_store::AuditEvent::new(
        arbor_store::ClientKind::Web,
        "user.force_logout",
        format!("user:{staff}"),
    ))
    .await
    .unwrap();
    assert!(
        app.list_orgs(&caller, &PageRequest::default())
            .await
            .is_err()
    );
    // Suspension: denied everything, even without a session.
    let mut tx = db.store().write().await.unwrap();
    tx.set_user_status(&proofs::suspend(staff), staff, UserStatus::Suspended)
        .await
        .unwrap();
    tx.commit(arbor_store::AuditEvent::new(
        arbor_store::ClientKind::Web,
        "user.suspend",
        format!("user:{staff}"),
    ))
    .await
    .unwrap();
    assert!(
        app.list_devices(&web(staff), &PageRequest::default())
            .await
            .is_err()
    );
    // Time moves on: an expired session is revoked too.
    let (_, hash2) = arbor_app::new_token();
    let mut tx = db.store().write().await.unwrap();
    tx.insert_session(&by, h.admin, &hash2, tx.now() + 1000)
        .await
        .unwrap();
    tx.commit(arbor_store::AuditEvent::new(
        arbor_store::ClientKind::Web,
        "session.create",
        format!("user:{}", h.admin),
    ))
    .await
    .unwrap();
    let mut admin = web(h.admin);
    admin.session_token_hash = Some(hash2);
    app.list_orgs(&admin, &PageRequest::default())
        .await
        .unwrap();
    db.clock.advance(2000);
    assert!(
        app.list_orgs(&admin, &PageRequest::default())
            .await
            .is_err()
    );
}

/// SQLite is configured deliberately on every pooled connection.
#[tokio::test]
async fn sqlite_connections_use_wal_foreign_keys_normal_sync_and_a_busy_timeout() {
    let db = TestDb::sqlite().await;
    let settings: std::collections::BTreeMap<_, _> = db
        .store()
        .engine_settings()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(settings["journal_mode"], "wal");
    assert_eq!(settings["synchronous"], "1", "NORMAL");
    assert_eq!(settings["foreign_keys"], "1");
    assert_eq!(settings["busy_timeout"], "10000");
}

/// PostgreSQL tests run in a schema of their own.
#[tokio::test]
async fn postgres_tests_run_in_their_own_schema() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let settings: std::collections::BTreeMap<_, _> = db
        .store()
        .engine_settings()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(settings["search_path"].starts_with("t_"), "{settings:?}");
    assert_eq!(settings["transaction_isolation"], "read committed");
}
