//! The audit log: refused reads are recorded once (allowed ones not at
//! all), and a row keeps meaning what it meant once its org is gone.

use crate::support::*;
use arbor_core::BuiltinRole;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::json;

both_engines!(
    a_refused_read_is_audited_once_and_an_allowed_read_not_at_all,
    ids_are_never_reused_and_old_rows_keep_the_name_they_were_written_with,
);

/// Defect 7: refused reads went unaudited (or were audited twice).
async fn a_refused_read_is_audited_once_and_an_allowed_read_not_at_all(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let (c, s) = (w.child.0, w.sibling.0);
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await.0;
    let sibling_admin = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await.0;
    let sibling = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;
    let user = app
        .login(&email(BuiltinRole::User, "child"), PASSWORD)
        .await;
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let who_can = format!("/api/v1/access/who-can?permission=organizations.settings&org_id={c}");
    // (token, actor, actor's home, path, status, action, outcome, target org)
    let refused = [
        (
            &sibling,
            sibling_admin,
            s,
            format!("/api/v1/orgs/{c}"),
            404,
            "org.view",
            "hidden",
            s,
        ),
        (
            &sibling,
            sibling_admin,
            s,
            "/api/v1/orgs/999999".into(),
            404,
            "org.view",
            "hidden",
            s,
        ),
        (
            &sibling,
            sibling_admin,
            s,
            format!("/api/v1/users/{child_user}"),
            404,
            "user.view",
            "hidden",
            s,
        ),
        (
            &sibling,
            sibling_admin,
            s,
            format!("/api/v1/orgs/{c}/permissions"),
            404,
            "role.matrix.view",
            "hidden",
            s,
        ),
        (
            &user,
            child_user,
            c,
            format!("/api/v1/orgs/{c}/permissions"),
            403,
            "role.matrix.view",
            "forbidden",
            c,
        ),
        (
            &user,
            child_user,
            c,
            "/api/v1/users.csv".into(),
            403,
            "user.export",
            "forbidden",
            c,
        ),
        (
            &user,
            child_user,
            c,
            "/api/v1/audit".into(),
            403,
            "user.actions_log",
            "forbidden",
            c,
        ),
        (
            &user,
            child_user,
            c,
            "/api/v1/roles".into(),
            403,
            "role.list",
            "forbidden",
            c,
        ),
        (
            &user,
            child_user,
            c,
            who_can.clone(),
            403,
            "access.who_can",
            "forbidden",
            c,
        ),
        (
            &user,
            child_user,
            c,
            format!("/api/v1/access/effective-permissions?user_id={child_user}&org_id={c}"),
            403,
            "access.effective_permissions",
            "forbidden",
            c,
        ),
    ];
    let mut failures = Vec::new();
    let explain =
        json!({ "user_id": child_user, "permission": "organizations.settings", "org_id": c });
    let refused = refused.into_iter().map(|r| (Method::GET, r)).chain([(
        Method::POST,
        (
            &user,
            child_user,
            c,
            "/api/v1/access/explain".to_owned(),
            403,
            "access.explain",
            "forbidden",
            c,
        ),
    )]);
    for (method, (token, actor, home, path, status, action, outcome, target_org)) in refused {
        let mark = audit_mark(&app).await;
        let body = (method == Method::POST).then(|| explain.clone());
        let reply = call(&app, method.clone(), &path, token, None, body).await;
        let rows = audit_since(&app, mark).await;
        let once = rows.len() == 1
            && rows[0].action == action
            && rows[0].outcome == outcome
            && rows[0].actor == Some(actor)
            && rows[0].actor_home_org == Some(home)
            && rows[0].target_org == Some(target_org);
        if reply.status != status || !once {
            failures.push(format!(
                "{method} {path} by {actor}: {} (want {status}), audit {rows:?}",
                reply.status
            ));
        }
    }
    // The same reads, allowed, write nothing.
    for path in [
        format!("/api/v1/orgs/{c}"),
        format!("/api/v1/users/{child_user}"),
        format!("/api/v1/orgs/{c}/permissions"),
        "/api/v1/users.csv".into(),
        "/api/v1/audit".into(),
        "/api/v1/roles".into(),
        who_can,
    ] {
        let mark = audit_mark(&app).await;
        let reply = get(&app, &path, &child_admin).await;
        let rows = audit_since(&app, mark).await;
        if reply.status != 200 || !rows.is_empty() {
            failures.push(format!(
                "GET {path} by Child's Admin: {}, audit {rows:?}",
                reply.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Defect 8: on SQLite a deleted org's id was handed to the next org, so
/// the deleted org's audit rows (`org:ID`) came to name the new one.
async fn ids_are_never_reused_and_old_rows_keep_the_name_they_were_written_with(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let create = async |name: &str| {
        let reply = post(
            &app,
            "/api/v1/orgs",
            &root,
            json!({ "parent_id": w.root.0, "name": name }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["id"].as_i64().unwrap()
    };
    // The newest org, renamed once, then deleted.
    let gone = create("Short-lived").await;
    let renamed = patch(
        &app,
        &format!("/api/v1/orgs/{gone}"),
        &root,
        json!({ "name": "Short-lived Ltd" }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let deleted = delete(&app, &format!("/api/v1/orgs/{gone}"), &root).await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let rows_of_gone = audit_since(&app, 0)
        .await
        .into_iter()
        .filter(|r| r.target == format!("org:{gone}"))
        .collect::<Vec<_>>();
    // The next org, and a change to it.
    let next = create("Successor").await;
    let edited = patch(
        &app,
        &format!("/api/v1/orgs/{next}"),
        &root,
        json!({ "contact": "ops@successor.test" }),
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    // The rows about the deleted org still say which org they were about.
    let rows = audit_since(&app, 0).await;
    let now_of_gone: Vec<&AuditRow> = rows
        .iter()
        .filter(|r| r.target == format!("org:{gone}"))
        .collect();
    let named = |r: &AuditRow, key: &str| r.details[key].as_str().map(str::to_owned);
    let update = now_of_gone
        .iter()
        .find(|r| r.action == "org.update")
        .unwrap();
    assert_eq!(named(update, "org_name").as_deref(), Some("Short-lived"));
    assert_eq!(named(update, "name").as_deref(), Some("Short-lived Ltd"));
    let removal = now_of_gone
        .iter()
        .find(|r| r.action == "org.delete")
        .unwrap();
    assert_eq!(
        named(removal, "org_name").as_deref(),
        Some("Short-lived Ltd")
    );
    let creation = rows
        .iter()
        .find(|r| r.action == "org.create" && r.details["created"] == gone)
        .unwrap();
    assert_eq!(named(creation, "name").as_deref(), Some("Short-lived"));
    // And no row about another org has come to name it.
    let mut reused = Vec::new();
    if next <= gone {
        reused.push(format!("the org id {gone} was handed out again ({next})"));
    }
    if now_of_gone.len() != rows_of_gone.len() {
        reused.push(format!("rows about org {gone} appeared: {now_of_gone:?}"));
    }

    // Users too: the newest account, removed, leaves its id unused.
    let user = w.role(BuiltinRole::User).0;
    let invite = async |address: &str| {
        let reply = post(
            &app,
            "/api/v1/users/invitations",
            &root,
            json!({ "email": address, "name": "Temp", "org_id": w.child.0, "role_id": user }),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["user_id"].as_i64().unwrap()
    };
    let temp = invite("temp@child.test").await;
    let revoked = delete(&app, &format!("/api/v1/users/{temp}/invitation"), &root).await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    let again = invite("again@child.test").await;
    if again <= temp {
        reused.push(format!("the user id {temp} was handed out again ({again})"));
    }
    assert!(reused.is_empty(), "{}", reused.join("\n"));
}
