//! Store hygiene: what an attacker's probe found — text the engines treat
//! differently, ids that came back, orgs that could not be deleted, search
//! wildcards, and version bumps nothing asked for.

use crate::support::proofs;
use crate::support::*;
use arbor_app::{AppError, NewMember, OrgEdit};
use arbor_core::{BuiltinRole, OrgType, UserId};
use arbor_store::generate::{GenConfig, generate, generated_roots};
use arbor_store::{AuditEvent, ClientKind, Engine, NewOrg, NewUser, StoreError};
use sqlx::Connection;

both_engines!(
    a_nul_byte_is_refused_as_invalid_and_never_stored,
    ids_of_deleted_rows_are_never_handed_out_again,
    search_folds_case_alike_and_matches_wildcards_literally,
    the_authz_version_moves_only_with_an_authorization_fact,
);

fn is_invalid(err: &AppError) -> bool {
    matches!(err, AppError::Invalid { .. })
}

async fn a_nul_byte_is_refused_as_invalid_and_never_stored(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let by = web(h.admin);
    // Names the store validates, on both engines (PostgreSQL used to answer
    // "busy" after twelve retries; SQLite stored the byte).
    let err = app
        .create_suborg(
            &by,
            h.root.id,
            &NewOrg::named("Bad\0Name", OrgType::Business),
        )
        .await
        .unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    let edit = OrgEdit {
        description: Some("first line\0".into()),
        ..OrgEdit::default()
    };
    let err = app.update_org(&by, h.root.id, &edit).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    let err = app
        .add_member(
            &by,
            h.root.id,
            &NewMember {
                user: NewUser::active("nul@acme.example", "Nul\0l"),
                role: h.role(BuiltinRole::Staff),
            },
        )
        .await
        .unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    let err = app.create_role(&by, "Ops\0").await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    let mut tx = db.store().read().await.unwrap();
    let org = tx.org(h.root.id).await.unwrap();
    assert!(!org.description.contains('\0'));
    assert!(tx.all_orgs().await.unwrap().len() == 1);
    tx.finish().await.unwrap();

    // Text the store takes as given (mail is composed by the app) reaches
    // the database: PostgreSQL refuses the byte, and that is an invalid
    // value, not contention to retry.
    let mut tx = db.store().write().await.unwrap();
    let result = tx
        .enqueue_mail(&proofs::invite(), "x@acme.example", "Hi", "a\0b", None)
        .await;
    match db.store().engine() {
        Engine::Postgres => match result {
            Err(StoreError::Invalid { field, reason }) => {
                assert_eq!(field, "value");
                assert!(reason.contains("NUL"), "{reason}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        },
        Engine::Sqlite => assert!(result.is_ok(), "{result:?}"),
    }
}

async fn ids_of_deleted_rows_are_never_handed_out_again(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let by = web(h.admin);
    // The newest org goes; the next one gets a new id (SQLite used to hand
    // out the same one, and the deleted org's audit rows named the new org).
    suborg(app, h.admin, h.root.id, "First").await;
    let newest = suborg(app, h.admin, h.root.id, "Newest").await;
    app.delete_org(&by, newest, false, &Default::default())
        .await
        .unwrap();
    let next = suborg(app, h.admin, h.root.id, "Next").await;
    assert!(next.0 > newest.0, "{next:?} after deleted {newest:?}");

    // Likewise for users, through the use cases and through the data
    // generator, which loads explicit ids.
    let gone = member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::Staff,
        "gone@acme.example",
    )
    .await;
    app.delete_user(&by, gone, None).await.unwrap();
    let again = member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::Staff,
        "again@acme.example",
    )
    .await;
    assert!(again.0 > gone.0, "{again:?} after deleted {gone:?}");
    app.delete_user(&by, again, None).await.unwrap();
    let config = GenConfig {
        orgs: 3,
        levels: 2,
        users: 3,
        devices: 2,
        ..GenConfig::default()
    };
    generate(db.store(), &config, |_, _, _| {}).await.unwrap();
    let root = *generated_roots(db.store()).await.unwrap().last().unwrap();
    let mut tx = db.store().read().await.unwrap();
    let filter = arbor_store::UserFilter::new(arbor_core::policy::UserList {
        scope: arbor_core::Scope {
            home: tx.org_path(root).await.unwrap(),
            descendants: true,
        },
        everyone: true,
        me: arbor_core::UserId(0),
    });
    let page = arbor_store::PageRequest::first(100);
    let users = tx.list_users(&filter, &page).await.unwrap().items;
    tx.finish().await.unwrap();
    assert_eq!(users.len(), 3);
    assert!(
        users.iter().all(|u| u.id.0 > again.0),
        "generated {:?} after deleted {again:?}",
        users.iter().map(|u| u.id).collect::<Vec<UserId>>()
    );
    // And the ids after the generator's continue past its own.
    let after = member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::Staff,
        "after@acme.example",
    )
    .await;
    assert!(users.iter().all(|u| u.id.0 < after.0));
}

async fn search_folds_case_alike_and_matches_wildcards_literally(db: TestDb) {
    let app = &db.app;
    let h = hierarchy(app, "Root", "boss@acme.example").await;
    let by = web(h.admin);
    let names = [
        "Ärzte GmbH",
        "100% Heat",
        "Hundred Percent",
        "a_b Works",
        "axb Works",
        "Back\\slash",
        "Backslash",
    ];
    let mut ids = std::collections::HashMap::new();
    for name in names {
        ids.insert(name, suborg(app, h.admin, h.root.id, name).await);
    }
    let search = async |q: &str| -> Vec<&str> {
        let page = app.search_orgs(&by, q, None, None).await.unwrap();
        let mut found: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| page.items.iter().any(|o| o.id == ids[n]))
            .collect();
        found.sort();
        found
    };
    assert_eq!(search("ärzte").await, ["Ärzte GmbH"]);
    assert_eq!(search("ÄRZTE").await, ["Ärzte GmbH"]);
    assert_eq!(search("Ärzte gmbh").await, ["Ärzte GmbH"]);
    assert_eq!(search("%").await, ["100% Heat"]);
    assert_eq!(search("0% h").await, ["100% Heat"]);
    assert_eq!(search("_").await, ["a_b Works"]);
    assert_eq!(search("a_b").await, ["a_b Works"]);
    assert_eq!(search("\\").await, ["Back\\slash"]);
    assert_eq!(search("k\\s").await, ["Back\\slash"]);
    assert_eq!(search("backslash").await, ["Backslash"]);
    assert!(matches!(
        app.search_orgs(&by, "a\0", None, None).await,
        Err(AppError::Invalid { .. })
    ));
    // The tree's subtree query shares the rules.
    let mut tx = db.store().read().await.unwrap();
    let subtree = tx
        .subtree_orgs(&h.root.path, Some("ÄRZTE"), 10)
        .await
        .unwrap();
    assert_eq!(subtree.len(), 1, "{subtree:?}");
    let subtree = tx.subtree_orgs(&h.root.path, Some("%"), 10).await.unwrap();
    assert_eq!(subtree.len(), 1, "{subtree:?}");
    tx.finish().await.unwrap();

    // Users: the name folds the same way, also after a rename.
    for (email, name) in [
        ("oel@acme.example", "Ölig Öl"),
        ("under@acme.example", "Under_score"),
        ("plain@acme.example", "Underscore"),
    ] {
        app.add_member(
            &by,
            h.root.id,
            &NewMember {
                user: NewUser::active(email, name),
                role: h.role(BuiltinRole::Staff),
            },
        )
        .await
        .unwrap();
    }
    let users = async |q: &str| -> Vec<String> {
        let query = arbor_app::users::UserQuery {
            search: Some(q.into()),
            ..Default::default()
        };
        let page = app
            .search_users(&by, &query, &arbor_store::PageRequest::first(50))
            .await
            .unwrap();
        let mut names: Vec<String> = page.items.into_iter().map(|u| u.name).collect();
        names.sort();
        names
    };
    assert_eq!(users("ÖLIG").await, ["Ölig Öl"]);
    assert_eq!(users("ölig öl").await, ["Ölig Öl"]);
    assert_eq!(users("r_s").await, ["Under_score"]);
    assert_eq!(users("_").await, ["Under_score"]);
    let oel = db
        .store()
        .read()
        .await
        .unwrap()
        .user_by_email("oel@acme.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = db.store().write().await.unwrap();
    tx.update_profile(&proofs::own_account(oel), oel, Some("Ärger"), None)
        .await
        .unwrap();
    tx.commit(AuditEvent::new(
        ClientKind::Cli,
        "test.rename",
        format!("user:{oel}"),
    ))
    .await
    .unwrap();
    assert_eq!(users("ÄRGER").await, ["Ärger"]);
    assert!(users("ölig").await.is_empty());
}

async fn the_authz_version_moves_only_with_an_authorization_fact(db: TestDb) {
    let app = &db.app;
    let store = db.store();
    let h = hierarchy(app, "Acme", "boss@acme.example").await;
    let staff = member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::Staff,
        "staff@acme.example",
    )
    .await;
    let audit_rows = async || {
        let mut tx = store.read().await.unwrap();
        let n = tx
            .count_rows(arbor_store::Table::AuditEvents)
            .await
            .unwrap();
        tx.finish().await.unwrap();
        n
    };

    // An audit row alone: no new version.
    let v0 = store.authz_version().await.unwrap();
    let rows = audit_rows().await;
    let tx = store.write().await.unwrap();
    tx.commit(AuditEvent::new(ClientKind::Cli, "test.noop", "org:0"))
        .await
        .unwrap();
    // A denied attempt (Staff may not delete the root) is audited, no more.
    let err = app
        .delete_org(&web(staff), h.root.id, false, &Default::default())
        .await
        .unwrap_err();
    assert!(
        !matches!(err, AppError::Database(_) | AppError::Busy(_)),
        "{err:?}"
    );
    // A profile edit changes no authorization fact either.
    let mut tx = store.write().await.unwrap();
    tx.update_profile(
        &proofs::own_account(staff),
        staff,
        Some("Renamed"),
        Some("de"),
    )
    .await
    .unwrap();
    tx.commit(AuditEvent::new(
        ClientKind::Cli,
        "user.update",
        format!("user:{staff}"),
    ))
    .await
    .unwrap();
    assert_eq!(audit_rows().await, rows + 3);
    assert_eq!(store.authz_version().await.unwrap(), v0);

    // A write that changes facts (a user and a membership): one version,
    // and its change rows carry it.
    member(
        app,
        h.admin,
        h.root.id,
        &h,
        BuiltinRole::User,
        "user@acme.example",
    )
    .await;
    let v1 = store.authz_version().await.unwrap();
    assert_eq!(v1, v0 + 1);
    let feed = store.authz_changes(v0, v1).await.unwrap().changes;
    assert!(!feed.is_empty());

    // On PostgreSQL an audit-only commit no longer queues on the version
    // row: it goes through while another transaction holds that row.
    if store.engine() == Engine::Postgres {
        let mut holder = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql("BEGIN; SELECT value FROM authz_version WHERE id = 1 FOR UPDATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let tx = store.write().await.unwrap();
        let done = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tx.commit(AuditEvent::new(ClientKind::Cli, "test.noop", "org:0")),
        )
        .await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        assert!(matches!(done, Ok(Ok(()))), "{done:?}");
    }

    // The data generator loads rows beside the commit path; its changes are
    // stamped under one new version after loading, and none stays unstamped
    // (its first commit, through Tx, sets the new root's path: a version of
    // its own).
    let before = store.authz_version().await.unwrap();
    let config = GenConfig {
        orgs: 4,
        levels: 2,
        users: 5,
        devices: 3,
        ..GenConfig::default()
    };
    generate(store, &config, |_, _, _| {}).await.unwrap();
    let after = store.authz_version().await.unwrap();
    assert_eq!(after, before + 2);
    let feed = store.authz_changes(before, after).await.unwrap().changes;
    let users = feed
        .iter()
        .filter(|c| matches!(c, arbor_store::AuthzChange::User(_)))
        .count();
    assert!(users >= 5, "{feed:?}");
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let unstamped: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM authz_changes WHERE version IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(unstamped, 0);
    let loaded: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT version FROM authz_changes WHERE version > $1 AND kind = 'user'",
    )
    .bind(before)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(loaded, [after], "the bulk load's changes carry one version");
}
