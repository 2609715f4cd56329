//! Store hygiene: what an attacker's probe found — text the engines treat
//! differently, ids that came back, orgs that could not be deleted, search
//! wildcards, and version bumps nothing asked for.

use crate::support::*;
use arbor_app::{AppError, NewMember, OrgEdit};
use arbor_core::{BuiltinRole, OrgType};
use arbor_store::{Allowed, Engine, NewOrg, NewUser, StoreError};

both_engines!(a_nul_byte_is_refused_as_invalid_and_never_stored,);

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
        .enqueue_mail(&Allowed::bootstrap(), "x@acme.example", "Hi", "a\0b")
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
